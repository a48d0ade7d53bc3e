/*
 * config: the worker's configuration, loaded from one libconfig file.
 *
 * Every setting is one row of a table (config_rows.c): its path, type, the
 * offset of its field in gw_config (or in a list element such as
 * gw_deployment), bounds, default and one line of documentation. Parsing,
 * validation, defaults, the --set override, the dump and the documented
 * reference (docs/configuration.md, config/modelgw.conf) all come from those
 * tables, so adding a setting is one row plus one field. The table is the
 * only place a default is written: modules take their options from a
 * gw_config (gw_config_defaults() when there is no file).
 *
 * Errors name the file, the line and the full setting path:
 *   config/modelgw.conf:42: kafka.max_in_flght: unknown setting
 *   config/modelgw.conf:17: worker.max_in_flight: 0 is below the minimum 1
 *
 * Secrets never live in the file. A setting ending in `_env` names an
 * environment variable; the loader reads it with getenv() at load time into a
 * field (gw_deployment.api_key, gw_redis_config.password) that no printer,
 * dump or error message ever shows. An unset variable leaves the field NULL.
 *
 * Ownership: a gw_config owns every string and array it points to; they live
 * until gw_config_free(). After loading and the command-line overrides, the
 * config is read-only: pass it as `const gw_config *` and share it freely.
 */
#ifndef GW_CONFIG_CONFIG_H
#define GW_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "common/log.h"
#include "model/deployment.h"

enum {
    GW_CFG_MAX_DEPLOYMENTS = 256,
    GW_CFG_MAX_AGENTS = 4096,
    GW_CFG_MAX_KAFKA_PROPERTIES = 32,
    GW_CFG_MAX_REPLY_TOPICS = 64,
    GW_CFG_MAX_FINISH_REASONS = 8,
    GW_CFG_MAX_TOTAL_ATTEMPTS = 16, /* retry.max_total_attempts */
};

/* Kafka message framing. AUTO (input only) detects by the first bytes. */
typedef enum {
    GW_CFG_FRAMING_AUTO,
    GW_CFG_FRAMING_BARE,
    GW_CFG_FRAMING_SINGLE_OBJECT,
    GW_CFG_FRAMING_CONFLUENT,
} gw_cfg_framing;

/* Compression of the worker's outputs (librdkafka compression.type). */
typedef enum {
    GW_CFG_COMPRESSION_NONE,
    GW_CFG_COMPRESSION_GZIP,
    GW_CFG_COMPRESSION_SNAPPY,
    GW_CFG_COMPRESSION_LZ4,
    GW_CFG_COMPRESSION_ZSTD,
} gw_cfg_compression;

typedef enum { GW_CFG_STATE_REDIS, GW_CFG_STATE_MEMORY } gw_cfg_state_backend;
typedef enum { GW_CFG_REDIS_STANDALONE, GW_CFG_REDIS_CLUSTER } gw_cfg_redis_mode;
typedef enum { GW_CFG_ON_LIMIT_REJECT, GW_CFG_ON_LIMIT_DELAY } gw_cfg_on_limit;
/* What a feature does when Redis fails: OPEN = local fallback, CLOSED = error. */
typedef enum { GW_CFG_FAIL_OPEN, GW_CFG_FAIL_CLOSED } gw_cfg_fail_policy;

typedef struct {
    const char *bootstrap;         /* "host:port,..." (ignored in dev mode) */
    const char *group_id;          /* consumer group of the fleet */
    const char *group_instance_id; /* static membership; NULL = dynamic */
    const char *client_id;
    struct {
        const char *high, *normal, *low;              /* request tiers */
        const char *responses, *chunks, *usage, *dlq; /* outputs */
    } topics;
    int32_t max_partition_runahead; /* messages past a partition's commit watermark */
    int32_t commit_interval_ms;
    int32_t session_timeout_ms;
    int32_t max_poll_interval_ms;
    int32_t prefetch_max_messages;  /* librdkafka queued.min.messages */
    int32_t prefetch_max_kbytes;    /* librdkafka queued.max.messages.kbytes */
    int32_t linger_ms;              /* producer batching delay */
    gw_cfg_compression compression; /* of the outputs */
    int32_t produce_in_flight;      /* max.in.flight.requests.per.connection; 0 = librdkafka's */
    gw_cfg_framing framing;         /* how requests are read */
    gw_cfg_framing output_framing;  /* how outputs are written (never AUTO) */
    const char *properties[GW_CFG_MAX_KAFKA_PROPERTIES]; /* "key=value", applied last */
    size_t property_count;
    /* reply_topic allow-list: exact names or fnmatch(3) patterns; none = only
     * topics.responses (worker/validate.h) */
    const char *reply_topics[GW_CFG_MAX_REPLY_TOPICS];
    size_t reply_topic_count;
    int32_t output_retry_ms;             /* an undeliverable output is retried this long */
    bool transactional;                  /* exactly-once outputs (kafka/txn in worker.c) */
    const char *transactional_id_prefix; /* transactional.id = prefix-<instance or worker id> */
    int32_t transaction_timeout_ms;      /* transaction.timeout.ms */
    const char *sasl_password_env;       /* variable holding sasl.password; NULL = none */
    const char *sasl_password;           /* resolved secret or NULL; never log */
    const char *ssl_key_password_env;    /* variable holding ssl.key.password; NULL = none */
    const char *ssl_key_password;        /* resolved secret or NULL; never log */
} gw_kafka_config;

typedef struct {
    int32_t max_in_flight;          /* requests one process holds at once */
    double low_share;               /* fraction of capacity kept for the low tier */
    double normal_headroom;         /* fraction normal leaves free for high */
    double low_headroom;            /* fraction low leaves free for high and normal */
    double resume_hysteresis;       /* fraction below its threshold a paused tier resumes at */
    int32_t drain_timeout_ms;       /* graceful shutdown budget */
    int32_t max_tokens_limit;       /* a request's max_tokens may not exceed this */
    int32_t default_max_tokens;     /* when a request leaves max_tokens unset */
    int32_t max_request_bytes;      /* encoded request size limit */
    int32_t max_messages;           /* messages per request */
    int32_t max_content_bytes;      /* total text of one request */
    int32_t chunk_coalesce_ms;      /* stream chunk batching window */
    int32_t chunk_coalesce_bytes;   /* flush a chunk once this much text is pending */
    bool dev;                       /* embedded mode: mock Kafka cluster, memory state */
    const char *dev_bootstrap_file; /* where dev mode writes its bootstrap address */
} gw_worker_config;

typedef struct {
    gw_cfg_redis_mode mode; /* standalone (host:port) or cluster (nodes) */
    const char *nodes;      /* cluster seeds "host:port,host:port" */
    const char *host;
    int32_t port;
    const char *password_env; /* name of the variable; NULL = no AUTH */
    const char *password;     /* resolved secret or NULL; never log */
    const char *username_env; /* ACL user name's variable; NULL = default user */
    const char *username;     /* resolved or NULL */
    int32_t db;
    int32_t connect_timeout_ms;
    int32_t command_timeout_ms;
    int32_t reconnect_min_ms;
    int32_t reconnect_max_ms;
    const char *key_prefix;   /* every key starts with it */
    int32_t expected_workers; /* divides limits for the local fallback */
} gw_redis_config;

typedef struct {
    gw_cfg_state_backend backend;
} gw_state_config;

typedef struct {
    int32_t max_fallbacks;               /* candidates after the first */
    double w_latency, w_cost, w_quality; /* BALANCED weights */
    double ewma_alpha;
    int32_t min_samples; /* below this, the latency prior is used */
    double tie_rel_eps;  /* scores within this relative distance tie */
    int32_t stats_refresh_ms;
    int32_t stats_ttl_s;
    double explore_share;        /* FASTEST/BALANCED: share of requests sent to a deployment below
                                    min_samples */
    double explore_rate;         /* FASTEST/BALANCED: share sent to a random other candidate */
    bool adaptive_concurrency;   /* AIMD in-flight cap per deployment */
    int32_t concurrency_min;     /* the cap never goes below this */
    double concurrency_increase; /* added to the cap per cap successes */
    double concurrency_decrease; /* the cap is multiplied by this on a congestion signal */
    double concurrency_latency_factor; /* latency over this times its baseline is a
                                          congestion signal; 0: off */
    double concurrency_low_remaining;  /* remaining/limit of a rate-limit header below this is
                                          a congestion signal */
} gw_routing_config;

typedef struct {
    int32_t max_attempts_per_deployment;
    int32_t base_backoff_ms;
    int32_t max_backoff_ms;
    int32_t max_retry_after_ms;
    int32_t max_total_attempts; /* provider calls per request, all deployments */
} gw_retry_config;

typedef struct {
    int32_t window_ms;
    int32_t bucket_ms;
    int32_t min_calls;
    double failure_rate;
    int32_t consecutive_failures;
    int32_t open_base_ms;
    int32_t open_max_ms;
    double jitter; /* fraction of the cool-down */
    int32_t half_open_successes;
    int32_t local_cache_ms;
    int32_t probe_lease_ms;        /* a probe that never reports frees the slot after this */
    int32_t rate_limit_default_ms; /* 429 cool-down without Retry-After */
    int32_t rate_limit_max_ms;     /* 429 cool-down cap when retry.max_retry_after_ms is 0 */
    int32_t state_ttl_ms;          /* TTL of the Redis keys (raised to fit window, cool-down) */
} gw_breaker_config;

typedef struct {
    const char *agent; /* agent_did */
    int64_t rpm;       /* 0 = unlimited */
    int64_t tpm;
} gw_cfg_agent_limit;

typedef struct {
    int64_t default_rpm; /* per agent; 0 = unlimited */
    int64_t default_tpm;
    gw_cfg_on_limit on_limit;
    int32_t max_delay_ms; /* on_limit = delay: longest hold */
    gw_cfg_agent_limit *agents;
    size_t agent_count;
} gw_limits_config;

typedef struct {
    const char *agent;
    double daily_usd; /* 0 = unlimited */
    double monthly_usd;
} gw_cfg_agent_budget;

typedef struct {
    double default_daily_usd; /* 0 = unlimited */
    double default_monthly_usd;
    gw_cfg_agent_budget *agents;
    size_t agent_count;
} gw_budgets_config;

typedef struct {
    bool enabled;
    double threshold;       /* cosine similarity for a hit */
    double threshold_floor; /* per-request thresholds cannot go below */
    int32_t max_messages;
    int32_t max_prompt_bytes;
    const char *embedder; /* "hash" or a deployment id */
    int32_t dim;
    int32_t bands;
    int32_t rows;
    int32_t max_candidates;
} gw_semantic_config;

typedef struct {
    bool enabled;
    int32_t ttl_s;
    int32_t max_ttl_s; /* cap on per-request cache_ttl_s */
    bool shared;       /* one namespace for all tenants */
    bool temperature_above_zero;
    const char *store_finish_reasons[GW_CFG_MAX_FINISH_REASONS];
    size_t store_finish_reason_count;
    int32_t singleflight_wait_ms;
    int32_t max_entry_bytes;
    gw_semantic_config semantic;
} gw_cache_config;

typedef struct {
    bool enabled;
    int32_t lease_ms;
    int32_t max_wait_ms;
    int32_t result_ttl_s;
} gw_idempotency_config;

typedef struct {
    gw_cfg_fail_policy limits, cache, idempotency, breaker;
} gw_failure_policy_config;

typedef struct {
    const char *listen;
    int32_t port;                 /* 0 = no admin endpoint */
    int32_t max_connections;      /* open connections at most; some kept for probes */
    int32_t connection_timeout_s; /* an idle or slow connection is closed after this */
    const char *token_env;        /* variable holding the bearer token /metrics requires */
    const char *token;            /* resolved secret or NULL (= /metrics open); never log */
} gw_admin_config;

typedef struct {
    gw_log_level level;
    bool debug_content; /* log prompt and completion text */
} gw_log_config;

/* The Confluent schema registry (docs/schemas.md, "Schema registry"); off while url is "". */
typedef struct {
    const char *url; /* API base, e.g. http://registry:8081 */
    const char *username;
    const char *password_env; /* variable holding the basic-auth password; NULL = none */
    const char *password;     /* resolved secret or NULL; never log */
    int32_t timeout_ms, max_wait_ms, cache_entries, negative_ttl_ms;
    bool register_outputs;            /* register the output schemas at start (TopicNameStrategy) */
    int32_t register_timeout_ms;      /* start gives up registering after this */
    const char *tls_ca_file;          /* CA bundle for https; "" = the system's */
    const char *tls_cert_file;        /* client certificate (PEM); "" = none */
    const char *tls_key_file;         /* its private key (PEM); "" = in tls_cert_file */
    const char *tls_key_password_env; /* variable holding the key's password */
    const char *tls_key_password;     /* resolved secret or NULL; never log */
    bool tls_verify;                  /* verify the registry's certificate and host name */
} gw_schema_registry_config;

/* Span export (docs/observability.md, "Traces"); off while endpoint is "". */
typedef struct {
    const char *endpoint; /* OTLP/HTTP JSON traces URL, e.g. http://collector:4318/v1/traces */
    const char *service_name;
    double sample_ratio; /* new traces; a request's traceparent decides for its own */
    int32_t batch_spans, queue_spans, flush_interval_ms, timeout_ms;
} gw_trace_config;

/* Defaults copied into every deployment that does not set its own. */
typedef struct {
    int32_t connect_ms, first_token_ms, idle_ms, total_ms;
} gw_timeouts_config;

typedef struct {
    int32_t latency_ms, ttft_ms, chunk_delay_ms;
    double failure_rate;
} gw_mock_config;

typedef struct gw_cfg_priv gw_cfg_priv;

typedef struct {
    const char *source; /* file path, or "(defaults)" */
    gw_kafka_config kafka;
    gw_worker_config worker;
    gw_redis_config redis;
    gw_state_config state;
    gw_routing_config routing;
    gw_retry_config retry;
    gw_breaker_config breaker;
    gw_limits_config limits;
    gw_budgets_config budgets;
    gw_cache_config cache;
    gw_idempotency_config idempotency;
    gw_failure_policy_config failure_policy;
    gw_admin_config admin;
    gw_log_config log;
    gw_trace_config trace;
    gw_schema_registry_config schema_registry;
    gw_timeouts_config timeouts;
    gw_mock_config mock;
    gw_deployment *deployments; /* the model registry, in file order */
    size_t deployment_count;
    gw_cfg_priv *priv; /* string pool and bookkeeping; not for callers */
} gw_config;

/*
 * Load and validate path. On success *out owns a new config. On failure
 * *out is NULL and errbuf holds one line naming the file, the line and the
 * setting. GW_E_IO when the file cannot be read, GW_E_CONFIG when invalid,
 * GW_E_NOMEM.
 */
gw_err gw_config_load(const char *path, gw_config **out, char *errbuf, size_t errlen);

/*
 * Load path (NULL: no file; the deployments list is then empty) with the
 * command line's --set overrides, each "path=value":
 *   kafka.bootstrap=127.0.0.1:9092   worker.dev=true   cache.semantic.threshold=0.9
 *   deployments[0].base_url=http://...   deployments[gpt4o].weight=2 (by id)
 *   limits.agents[did:example:a].rpm=60
 * Any scalar or string-list setting (lists comma-separated). Every setting
 * is resolved once, from the first layer that has it: an override (the last
 * one of the same setting wins), the file, the table's default. A default
 * that deployments or agents inherit (timeouts.*, mock.*,
 * limits.default_rpm, ...) reaches every element that did not set its own.
 * Errors name where the value came from: "--set path=value: path: ..." or
 * "file:line: path: ...".
 */
gw_err gw_config_load_with(const char *path, const char *const *sets, size_t set_count,
                           gw_config **out, char *errbuf, size_t errlen);

/* Every default, no deployments, as a new config the caller frees. */
gw_err gw_config_default(gw_config **out);

/*
 * The same defaults, built once and shared (read-only, never freed): what
 * library modules and tools use for options that have no file, e.g.
 * gw_router_opts_from_config(gw_config_defaults(), &o). Aborts when out of
 * memory at first use.
 */
const gw_config *gw_config_defaults(void);

void gw_config_free(gw_config *cfg);

/* The deployment with this id, or NULL. */
const gw_deployment *gw_config_deployment(const gw_config *cfg, const char *id);

/* Effective limits of an agent (its override, else the defaults). 0 = unlimited. */
void gw_config_agent_limits(const gw_config *cfg, const char *agent, int64_t *rpm, int64_t *tpm);
void gw_config_agent_budget(const gw_config *cfg, const char *agent, double *daily_usd,
                            double *monthly_usd);

/*
 * The reference: one Markdown table row per setting (path, type, range,
 * default, doc). docs/configuration.md embeds exactly this text.
 */
void gw_config_write_reference(FILE *out);

/* The effective values, one "path = value;" line each; secrets never shown. */
void gw_config_dump(const gw_config *cfg, FILE *out);

/* Names for enum values (as written in the file). */
const char *gw_cfg_framing_name(gw_cfg_framing f);
/* librdkafka's compression.type value ("none", "lz4", ...). */
const char *gw_cfg_compression_name(gw_cfg_compression c);
const char *gw_cfg_fail_policy_name(gw_cfg_fail_policy p);

#endif
