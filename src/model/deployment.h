/*
 * deployment: one model deployment of the registry, as loaded from config.
 *
 * A deployment is a model served by one provider at one endpoint. It is
 * immutable after config load and lives as long as the config. The API key
 * is resolved from the environment variable named in the config
 * (api_key_env) at load time; it is never logged, never copied into an error
 * message and never written to Kafka. Only provider adapters read it.
 */
#ifndef GW_MODEL_DEPLOYMENT_H
#define GW_MODEL_DEPLOYMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The provider kinds, in the row order of provider/provider_table.def (their
 * one declaration): GW_PROVIDER_MOCK, GW_PROVIDER_OPENAI, ... */
typedef enum {
#define GW_PROVIDER_ROW(id, ...) GW_PROVIDER_##id,
#include "provider/provider_table.def"
#undef GW_PROVIDER_ROW
    GW_PROVIDER__COUNT
} gw_provider_kind;

/* The kinds' config names ("mock", "openai", ...), NULL-terminated. */
extern const char *const gw_provider_kind_names[GW_PROVIDER__COUNT + 1];
const char *gw_provider_kind_name(gw_provider_kind k); /* "mock", "openai", ... */
int gw_provider_kind_parse(const char *s);             /* -1 if unknown */

/* The OpenAI-compatible presets (GW_PRESET_NONE, GW_PRESET_GROQ, ...) and
 * the OpenAI adapter's quirk bits (GW_QUIRK_RANDOM_SEED, ...), in the row
 * order of provider/provider_preset.def (their one declaration). */
typedef enum {
#define GW_QUIRK_ROW(id, ...) GW_QUIRK_BIT_##id,
#define GW_PRESET_ROW(id, ...)
#include "provider/provider_preset.def"
#undef GW_QUIRK_ROW
#undef GW_PRESET_ROW
    GW_QUIRK__COUNT
} gw_quirk_bit;
enum {
#define GW_QUIRK_ROW(id, ...) GW_QUIRK_##id = 1u << GW_QUIRK_BIT_##id,
#define GW_PRESET_ROW(id, ...)
#include "provider/provider_preset.def"
#undef GW_QUIRK_ROW
#undef GW_PRESET_ROW
};
typedef enum {
#define GW_QUIRK_ROW(id, ...)
#define GW_PRESET_ROW(id, ...) GW_PRESET_##id,
#include "provider/provider_preset.def"
#undef GW_QUIRK_ROW
#undef GW_PRESET_ROW
    GW_PRESET__COUNT
} gw_preset;

enum { GW_MAX_CAPABILITIES = 16, GW_MAX_EXTRA_HEADERS = 8, GW_MAX_QUIRKS = GW_QUIRK__COUNT };

/* Which HTTP version a deployment's calls may use. */
typedef enum {
    GW_HTTP_VERSION_AUTO, /* HTTP/2 over TLS when the server offers it, else HTTP/1.1 */
    GW_HTTP_VERSION_1_1,  /* HTTP/1.1 only */
} gw_http_version;

typedef struct {
    const char *id;   /* deployment id, unique in the registry ("gpt4o-east") */
    gw_preset preset; /* GW_PRESET_NONE, or where provider, base_url, ... default from */
    gw_provider_kind provider;
    const char *model;       /* model name sent upstream ("gpt-4o") */
    const char *base_url;    /* "http://127.0.0.1:18080" ; unused by mock */
    const char *api_key_env; /* name of the environment variable; may be NULL */
    const char *api_key;     /* resolved secret or NULL; never log */
    const char *auth_header; /* "Authorization" (Bearer) or "x-api-key"; default by provider */
    const char *extra_headers[GW_MAX_EXTRA_HEADERS]; /* "Name: value" */
    size_t extra_header_count;
    const char *anthropic_version;     /* default "2023-06-01" */
    const char *api_version;           /* azure: the api-version query parameter; NULL: default */
    const char *quirks[GW_MAX_QUIRKS]; /* quirk names as configured (openai dialect) */
    size_t quirk_count;
    uint32_t openai_quirks; /* GW_QUIRK_* bits of quirks[], set by config validation */
    const char *region;     /* bedrock: the AWS region; NULL: AWS_REGION, then AWS_DEFAULT_REGION */

    const char *capabilities[GW_MAX_CAPABILITIES];
    size_t capability_count;
    int32_t context_window_tokens;
    double price_in_usd_per_mtok;
    double price_out_usd_per_mtok;
    double quality; /* 0..1 */
    double latency_prior_ms;
    double ttft_prior_ms;
    int32_t weight; /* load-balancing weight among ties, >= 1 */
    int32_t max_concurrency;
    int64_t rpm_limit; /* requests per minute to this deployment, fleet-wide; 0 = unlimited */
    int64_t tpm_limit; /* tokens per minute to this deployment, fleet-wide; 0 = unlimited */

    /* Transport: TLS files for private endpoints, HTTP version. */
    const char *tls_ca_file;   /* NULL: the system's CA bundle */
    const char *tls_cert_file; /* client certificate for mutual TLS; NULL: none */
    const char *tls_key_file;  /* its key; NULL: in the certificate file */
    gw_http_version http_version;

    int32_t connect_timeout_ms;
    int32_t first_token_timeout_ms;
    int32_t idle_timeout_ms;
    int32_t total_timeout_ms;

    /* Built-in mock provider behaviour (provider = mock). */
    int32_t mock_latency_ms;     /* total time for a non-streamed answer */
    int32_t mock_ttft_ms;        /* time to first chunk when streaming */
    int32_t mock_chunk_delay_ms; /* delay between chunks when streaming */
    double mock_failure_rate;    /* 0..1, deterministic per request id */
} gw_deployment;

/* True when the deployment lists capability cap. */
bool gw_deployment_has_capability(const gw_deployment *d, const char *cap);

#endif
