/*
 * provider_table: what modelgw knows about each provider kind, one row per
 * kind (the rows are in provider_table.def). Config parses `provider = "..."`
 * with the kind names, the registry checks a deployment's kind, provider.c
 * dispatches on `builtin` / `dialect`, provider_http.c takes the URL,
 * framing, auth and signer from the row, and modelgw-mockllm serves each
 * row's path in the row dialect's shape.
 *
 * Adding a provider: one adapter file (provider_<name>.c with its
 * gw_phttp_dialect) and one GW_PROVIDER_ROW in provider_table.def. See
 * docs/providers.md, "Adding a provider".
 */
#ifndef GW_PROVIDER_TABLE_H
#define GW_PROVIDER_TABLE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "model/deployment.h"

typedef struct gw_phttp_dialect gw_phttp_dialect; /* provider_http.h */
typedef struct gw_phttp_call gw_phttp_call;       /* provider_http.h */
typedef struct gw_provider_kind_info gw_provider_kind_info;

/* How an answer body is framed. */
typedef enum {
    GW_RESP_NONE,       /* not supported (or no HTTP) */
    GW_RESP_JSON,       /* one whole JSON document */
    GW_RESP_SSE,        /* text/event-stream (sse.c) */
    GW_RESP_NDJSON,     /* application/x-ndjson, one JSON object a line (ndjson.c) */
    GW_RESP_EVENTSTREAM /* binary application/vnd.amazon.eventstream (eventstream.c) */
} gw_resp_framing;

/* Writes the URL of one call into out (len bytes with the NUL). GW_E_CONFIG
 * when it does not fit, GW_E_PROVIDER_NOT_CONFIGURED without a base_url. The
 * deployment gives the model (Gemini puts it in the path) and base_url; the
 * row's options may give more (an Azure api-version). */
typedef gw_err (*gw_provider_url_fn)(const gw_provider_kind_info *k, const gw_deployment *d,
                                     bool stream, char *out, size_t len);

/* Signs a request that is complete but for its signature (AWS SigV4): may add
 * headers with gw_phttp_header (provider_http.h). Runs after the body and
 * every other header are written. */
typedef gw_err (*gw_provider_sign_fn)(const gw_provider_kind_info *k, gw_phttp_call *c,
                                      const gw_deployment *d, const char *method, const char *url,
                                      const char *body, size_t body_len);

struct gw_provider_kind_info {
    gw_provider_kind kind;
    const char *name;                /* the config value: provider = "openai" */
    bool builtin;                    /* answered in process (provider_mock.c), no HTTP */
    const gw_phttp_dialect *dialect; /* request writer and answer readers (provider_<x>.c) */
    const char *path;                /* appended to base_url by the default URL builder */
    gw_provider_url_fn url;          /* NULL: gw_provider_url_base_path */
    bool base_url_optional;          /* the url builder makes one without base_url (bedrock) */
    gw_resp_framing stream_framing;  /* a streamed answer */
    gw_resp_framing full_framing;    /* a non-streamed answer */
    struct {
        const char *header;  /* where the key goes unless the deployment sets auth_header */
        const char *scheme;  /* the key's prefix when it goes in Authorization ("Bearer") */
        const char *env_var; /* the usual api_key_env (examples and docs; not a default) */
    } auth;
    gw_provider_sign_fn sign; /* NULL: no request signing */
    const void *options;      /* dialect options, read by the row's dialect only */
};

/* The row of kind k; NULL when k is not a kind. */
const gw_provider_kind_info *gw_provider_info(gw_provider_kind k);
/* The row named name (case-insensitive, as gw_provider_kind_parse); NULL when unknown. */
const gw_provider_kind_info *gw_provider_info_find(const char *name);

/* The default URL builder: base_url without trailing '/' + k->path; a
 * base_url already ending in /v1 is not doubled when the path starts with /v1/
 * (so https://api.groq.com/openai/v1 works). */
gw_err gw_provider_url_base_path(const gw_provider_kind_info *k, const gw_deployment *d,
                                 bool stream, char *out, size_t len);

/* Append s to out (len bytes, *at used so far) percent-encoded: unreserved
 * characters (RFC 3986: ALPHA DIGIT - _ . ~) pass, anything else is %XX, so a
 * model or deployment name never changes the URL's structure. Keeps out
 * NUL-terminated; false when it does not fit. The URL builders of the
 * provider rows share it. */
bool gw_provider_url_escape(char *out, size_t len, size_t *at, const char *s);

#endif
