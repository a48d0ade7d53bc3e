/*
 * config_rows: every setting of modelgw, one row each, and the rules that
 * span several settings.
 *
 * To add a setting: add the field to config.h (or model/deployment.h), add
 * one row here, describe it in config/modelgw.conf, and regenerate the table
 * in docs/configuration.md (tests/unit/test_config.c checks all three agree).
 * Row macros check at compile time that the field has the row's C type.
 */
#include "config/config_private.h"
#include "provider/provider_preset.h"
#include "provider/provider_table.h"

#include <string.h>

#define MS_MAX  86400000.0 /* one day */
#define S_MAX   31536000.0 /* one year */
#define BIG     1e12
#define USD_MAX 1e9

/* Row constructors; GW_ROW_T is the struct the current table describes. */
#define B(p, f, def, doc)                                                                          \
    {                                                                                              \
        p, GW_CT_BOOL, GW_CFG_OFF(GW_ROW_T, f, bool), 0, 0, 1, NULL, NULL, def, doc                \
    }
#define I(p, f, lo, hi, def, doc)                                                                  \
    {                                                                                              \
        p, GW_CT_INT, GW_CFG_OFF(GW_ROW_T, f, int32_t), 0, lo, hi, NULL, NULL, def, doc            \
    }
#define I64(p, f, lo, hi, def, doc)                                                                \
    {                                                                                              \
        p, GW_CT_INT64, GW_CFG_OFF(GW_ROW_T, f, int64_t), 0, lo, hi, NULL, NULL, def, doc          \
    }
#define D(p, f, lo, hi, def, doc)                                                                  \
    {                                                                                              \
        p, GW_CT_DOUBLE, GW_CFG_OFF(GW_ROW_T, f, double), 0, lo, hi, NULL, NULL, def, doc          \
    }
#define S(p, f, minlen, def, doc)                                                                  \
    {                                                                                              \
        p, GW_CT_STRING, GW_CFG_OFF(GW_ROW_T, f, const char *), 0, minlen, 0, NULL, NULL, def, doc \
    }
#define E(p, f, etype, names, def, doc)                                                            \
    {                                                                                              \
        p, GW_CT_ENUM, GW_CFG_OFF(GW_ROW_T, f, etype), 0, 0, 0, names, NULL, def, doc              \
    }
#define ENV(p, f, secret, def, doc)                                                                \
    {                                                                                              \
        p, GW_CT_ENV, GW_CFG_OFF(GW_ROW_T, f, const char *),                                       \
            GW_CFG_OFF(GW_ROW_T, secret, const char *), 0, 0, NULL, NULL, def, doc                 \
    }
#define SL(p, f, count, max, def, doc)                                                             \
    {                                                                                              \
        p, GW_CT_STRLIST, GW_CFG_OFF(GW_ROW_T, f[0], const char *),                                \
            GW_CFG_OFF(GW_ROW_T, count, size_t), 0, max, NULL, NULL, def, doc                      \
    }
#define L(p, f, etype, count, lo, hi, sub, def, doc)                                               \
    {                                                                                              \
        p, GW_CT_LIST, GW_CFG_OFF(GW_ROW_T, f, etype *), GW_CFG_OFF(GW_ROW_T, count, size_t), lo,  \
            hi, NULL, sub, def, doc                                                                \
    }
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *const framing_names[] = {"auto", "bare", "single_object", "confluent", NULL};
static const char *const compression_names[] = {"none", "gzip", "snappy", "lz4", "zstd", NULL};
static const char *const backend_names[] = {"redis", "memory", NULL};
static const char *const redis_mode_names[] = {"standalone", "cluster", NULL};
static const char *const on_limit_names[] = {"reject", "delay", NULL};
static const char *const policy_names[] = {"open", "closed", NULL};
static const char *const http_version_names[] = {"auto", "1.1", NULL};
static const char *const level_names[] = {"debug", "info", "warn", "error", "off", NULL};

_Static_assert(GW_LOG_OFF == 4, "level_names follows gw_log_level");

const char *gw_cfg_framing_name(gw_cfg_framing f)
{
    return (unsigned)f < COUNT(framing_names) - 1 ? framing_names[f] : "?";
}

const char *gw_cfg_compression_name(gw_cfg_compression c)
{
    return (unsigned)c < COUNT(compression_names) - 1 ? compression_names[c] : "?";
}

const char *gw_cfg_fail_policy_name(gw_cfg_fail_policy p)
{
    return (unsigned)p < COUNT(policy_names) - 1 ? policy_names[p] : "?";
}

/* ---- list elements ---------------------------------------------------- */

static gw_err validate_deployment(gw_cfg_ctx *ctx, void *elem, const char *elem_path);

#define GW_ROW_T gw_deployment
static const gw_cfg_row deployment_rows[] = {
    S("id", id, 1, NULL, "Unique id of the deployment; a request's `model` names it"),
    E("preset", preset, gw_preset, gw_preset_names, "none",
      "OpenAI-compatible preset: fills provider, base_url, api_key_env and quirks (keys set here "
      "win); see docs/providers.md"),
    E("provider", provider, gw_provider_kind, gw_provider_kind_names, NULL,
      "Provider dialect (required unless a preset gives it)"),
    S("model", model, 1, NULL, "Model name sent to the provider"),
    S("base_url", base_url, 0, "",
      "Endpoint base URL (http:// or https://); required for every provider but mock and "
      "bedrock (default https://bedrock-runtime.{region}.amazonaws.com) unless a preset gives it"),
    ENV("api_key_env", api_key_env, api_key, "",
        "Environment variable that holds the API key (never the key itself); default from the "
        "preset"),
    S("auth_header", auth_header, 0, "",
      "Header carrying the key; default `Authorization` (Bearer), `x-api-key` for anthropic, "
      "`api-key` for azure, `x-goog-api-key` for gemini"),
    S("anthropic_version", anthropic_version, 1, "2023-06-01",
      "`anthropic-version` header (anthropic only)"),
    S("api_version", api_version, 0, "",
      "`api-version` query parameter (azure only; empty: 2024-10-21)"),
    SL("quirks", quirks, quirk_count, GW_MAX_QUIRKS, "",
       "OpenAI dialect quirk flags (no_stream_options, random_seed, required_as_any, "
       "max_completion_tokens, no_json_schema, no_json_object); default from the preset"),
    S("region", region, 0, "",
      "AWS region (bedrock only; empty: AWS_REGION, then AWS_DEFAULT_REGION)"),
    SL("extra_headers", extra_headers, extra_header_count, GW_MAX_EXTRA_HEADERS, "",
       "Extra request headers, each \"Name: value\""),
    SL("capabilities", capabilities, capability_count, GW_MAX_CAPABILITIES, "text",
       "What the model can do (text, code, vision, embedding, ...)"),
    I("context_window", context_window_tokens, 1, 100000000, "8192",
      "Context window in tokens (prompt + max_tokens must fit)"),
    D("price_in_usd_per_mtok", price_in_usd_per_mtok, 0, 1e6, "0",
      "Price of one million input tokens, USD"),
    D("price_out_usd_per_mtok", price_out_usd_per_mtok, 0, 1e6, "0",
      "Price of one million output tokens, USD"),
    D("quality", quality, 0, 1, "0.5", "Quality score for BEST_QUALITY and BALANCED"),
    D("latency_prior_ms", latency_prior_ms, 0, MS_MAX, "1000",
      "Expected total latency until enough samples are observed"),
    D("ttft_prior_ms", ttft_prior_ms, 0, MS_MAX, "300",
      "Expected time to first token until enough samples are observed"),
    I("weight", weight, 1, 1000000, "1", "Load-balancing weight among equally ranked candidates"),
    I("max_concurrency", max_concurrency, 1, 1000000, "256",
      "Most calls in flight to this deployment from one worker"),
    I64("rpm", rpm_limit, 0, BIG, "0", "Fleet-wide requests per minute to it; 0 = unlimited"),
    I64("tpm", tpm_limit, 0, BIG, "0", "Fleet-wide tokens per minute to it; 0 = unlimited"),
    S("tls.ca_file", tls_ca_file, 0, "",
      "PEM CA bundle that verifies the endpoint (a private CA); empty: the system's"),
    S("tls.cert_file", tls_cert_file, 0, "", "Client certificate (PEM) for mutual TLS"),
    S("tls.key_file", tls_key_file, 0, "",
      "Private key (PEM) of tls.cert_file; empty: in the certificate file"),
    E("http_version", http_version, gw_http_version, http_version_names, "auto",
      "`auto`: HTTP/2 over TLS when the endpoint offers it (many calls share one connection), "
      "else HTTP/1.1; `1.1`: never HTTP/2"),
    I("timeouts.connect_ms", connect_timeout_ms, 1, MS_MAX, "@timeouts.connect_ms",
      "Connect timeout"),
    I("timeouts.first_token_ms", first_token_timeout_ms, 1, MS_MAX, "@timeouts.first_token_ms",
      "Time allowed until the first token (or the whole answer when not streaming)"),
    I("timeouts.idle_ms", idle_timeout_ms, 1, MS_MAX, "@timeouts.idle_ms",
      "Longest silence between streamed chunks"),
    I("timeouts.total_ms", total_timeout_ms, 1, MS_MAX, "@timeouts.total_ms",
      "Total time of one call"),
    I("mock.latency_ms", mock_latency_ms, 0, MS_MAX, "@mock.latency_ms",
      "Mock provider: total time of a non-streamed answer"),
    I("mock.ttft_ms", mock_ttft_ms, 0, MS_MAX, "@mock.ttft_ms",
      "Mock provider: time to the first streamed chunk"),
    I("mock.chunk_delay_ms", mock_chunk_delay_ms, 0, MS_MAX, "@mock.chunk_delay_ms",
      "Mock provider: delay between streamed chunks"),
    D("mock.failure_rate", mock_failure_rate, 0, 1, "@mock.failure_rate",
      "Mock provider: fraction of requests that fail (deterministic per request id)"),
};
#undef GW_ROW_T

/* A deployment's preset gives the defaults of the rows it names. */
static const char *deployment_default(const void *elem, const gw_cfg_row *row, char *buf,
                                      size_t len)
{
    const gw_deployment *d = elem;
    const gw_preset_info *p = gw_preset_get(d->preset);
    if (p == NULL || p->id == GW_PRESET_NONE)
        return NULL;
    if (strcmp(row->path, "provider") == 0)
        return gw_provider_kind_name(p->kind);
    if (strcmp(row->path, "base_url") == 0)
        return p->base_url;
    if (strcmp(row->path, "api_key_env") == 0)
        return p->api_key_env;
    if (strcmp(row->path, "quirks") == 0 && p->quirks != 0)
        return gw_quirks_format(p->quirks, buf, len) ? buf : NULL;
    return NULL;
}

static const gw_cfg_table deployment_table = {"deployment",           deployment_rows,
                                              COUNT(deployment_rows), sizeof(gw_deployment),
                                              validate_deployment,    deployment_default};

#define GW_ROW_T gw_cfg_agent_limit
static const gw_cfg_row agent_limit_rows[] = {
    S("agent", agent, 1, NULL, "The agent (agent_did) these limits apply to"),
    I64("rpm", rpm, 0, BIG, "@limits.default_rpm", "Requests per minute; 0 = unlimited"),
    I64("tpm", tpm, 0, BIG, "@limits.default_tpm", "Tokens per minute; 0 = unlimited"),
};
#undef GW_ROW_T

static const gw_cfg_table agent_limit_table = {
    "agent", agent_limit_rows, COUNT(agent_limit_rows), sizeof(gw_cfg_agent_limit), NULL, NULL};

#define GW_ROW_T gw_cfg_agent_budget
static const gw_cfg_row agent_budget_rows[] = {
    S("agent", agent, 1, NULL, "The agent (agent_did) this budget applies to"),
    D("daily_usd", daily_usd, 0, USD_MAX, "@budgets.default_daily_usd",
      "Spend per UTC day, USD; 0 = unlimited"),
    D("monthly_usd", monthly_usd, 0, USD_MAX, "@budgets.default_monthly_usd",
      "Spend per UTC month, USD; 0 = unlimited"),
};
#undef GW_ROW_T

static const gw_cfg_table agent_budget_table = {
    "agent", agent_budget_rows, COUNT(agent_budget_rows), sizeof(gw_cfg_agent_budget), NULL, NULL};

/* ---- the top level ---------------------------------------------------- */

#define GW_ROW_T gw_config
static const gw_cfg_row top_rows[] = {
    /* kafka */
    S("kafka.bootstrap", kafka.bootstrap, 1, "127.0.0.1:9092", "Kafka bootstrap servers"),
    S("kafka.group_id", kafka.group_id, 1, "modelgw", "Consumer group shared by the fleet"),
    S("kafka.group_instance_id", kafka.group_instance_id, 0, "",
      "Static membership id (group.instance.id), unique per worker; none = dynamic"),
    S("kafka.client_id", kafka.client_id, 1, "modelgw", "Kafka client.id"),
    S("kafka.topics.high", kafka.topics.high, 1, "llm.requests.high", "High-priority requests"),
    S("kafka.topics.normal", kafka.topics.normal, 1, "llm.requests.normal",
      "Normal-priority requests"),
    S("kafka.topics.low", kafka.topics.low, 1, "llm.requests.low", "Low-priority requests"),
    S("kafka.topics.responses", kafka.topics.responses, 1, "llm.responses",
      "Responses (unless a request names its reply_topic)"),
    S("kafka.topics.chunks", kafka.topics.chunks, 1, "llm.chunks", "Stream chunks"),
    S("kafka.topics.usage", kafka.topics.usage, 1, "llm.usage", "Usage and cost events"),
    S("kafka.topics.dlq", kafka.topics.dlq, 1, "llm.dlq",
      "Dead letters: undecodable requests, undeliverable outputs"),
    I("kafka.max_partition_runahead", kafka.max_partition_runahead, 1, 1000000, "20000",
      "Messages a partition may run past its commit watermark before it is paused"),
    I("kafka.commit_interval_ms", kafka.commit_interval_ms, 10, MS_MAX, "1000",
      "How often stored offsets are committed (with kafka.transactional: how often a "
      "transaction ends)"),
    I("kafka.session_timeout_ms", kafka.session_timeout_ms, 1000, 3600000, "10000",
      "Consumer group session timeout"),
    I("kafka.max_poll_interval_ms", kafka.max_poll_interval_ms, 1000, MS_MAX, "300000",
      "Consumer max.poll.interval.ms"),
    I("kafka.prefetch_max_messages", kafka.prefetch_max_messages, 1, 10000000, "100000",
      "queued.min.messages; the worker uses at least 100000 (smaller stalls fetches up to 1 s)"),
    I("kafka.prefetch_max_kbytes", kafka.prefetch_max_kbytes, 1, 2097151, "16384",
      "Prefetch bytes of the consumer queue (queued.max.messages.kbytes); a fetch is half"),
    I("kafka.linger_ms", kafka.linger_ms, 0, 900000, "0",
      "Producer batching delay (0: send at once; under load batches still form)"),
    E("kafka.compression", kafka.compression, gw_cfg_compression, compression_names, "lz4",
      "Compression of responses, chunks, usage and DLQ records (librdkafka compression.type)"),
    I("kafka.produce_in_flight", kafka.produce_in_flight, 1, 5, "3",
      "Produce requests in flight per broker connection (max.in.flight.requests.per."
      "connection); at 5 librdkafka's broker thread spins while a partition waits"),
    E("kafka.framing", kafka.framing, gw_cfg_framing, framing_names, "auto",
      "How requests are framed; auto detects each message"),
    E("kafka.output_framing", kafka.output_framing, gw_cfg_framing, framing_names, "single_object",
      "How responses, chunks and usage are framed (not auto)"),
    SL("kafka.properties", kafka.properties, kafka.property_count, GW_CFG_MAX_KAFKA_PROPERTIES, "",
       "Extra librdkafka properties, each \"key=value\", applied last"),
    SL("kafka.reply_topics", kafka.reply_topics, kafka.reply_topic_count, GW_CFG_MAX_REPLY_TOPICS,
       "",
       "Topics a request may name as reply_topic: names or fnmatch patterns (\"replies.*\"); "
       "none = only kafka.topics.responses; internal (__*), request, chunk, usage and DLQ topics "
       "never"),
    I("kafka.output_retry_ms", kafka.output_retry_ms, 0, MS_MAX, "30000",
      "An output whose delivery failed is produced again with backoff for this long, then "
      "dead-lettered (a reply_topic response: an error response on kafka.topics.responses)"),
    B("kafka.transactional", kafka.transactional, "false",
      "Exactly-once outputs: responses, chunks, usage and consumed offsets in one Kafka "
      "transaction per commit interval (read them with isolation.level=read_committed)"),
    S("kafka.transactional_id_prefix", kafka.transactional_id_prefix, 1, "modelgw",
      "transactional.id = this prefix, a dash, then kafka.group_instance_id (or the worker id "
      "when none)"),
    I("kafka.transaction_timeout_ms", kafka.transaction_timeout_ms, 1000, 900000, "60000",
      "transaction.timeout.ms: the broker aborts a dead worker's open transaction after this; "
      "a commit a broker outage holds up is resumed this long"),
    ENV("kafka.sasl_password_env", kafka.sasl_password_env, kafka.sasl_password, "",
        "Environment variable holding the SASL password (sasl.password); none = not set"),
    ENV("kafka.ssl_key_password_env", kafka.ssl_key_password_env, kafka.ssl_key_password, "",
        "Environment variable holding the TLS private key's password (ssl.key.password)"),
    /* worker */
    I("worker.max_in_flight", worker.max_in_flight, 1, 1000000, "1024",
      "Requests one worker holds at once; intake pauses at this bound"),
    D("worker.low_share", worker.low_share, 0, 1, "0.1",
      "Fraction of max_in_flight kept for the low tier so it never starves"),
    D("worker.normal_headroom", worker.normal_headroom, 0, 0.5, "0.1",
      "Fraction of max_in_flight the normal tier leaves free for high (normal pauses first)"),
    D("worker.low_headroom", worker.low_headroom, 0, 0.9, "0.25",
      "Fraction of max_in_flight the low tier leaves free for high and normal (beyond "
      "low_share)"),
    D("worker.resume_hysteresis", worker.resume_hysteresis, 0, 0.5, "0.03125",
      "A paused tier resumes this fraction of max_in_flight (at least 1 slot) below the "
      "threshold that paused it"),
    I("worker.drain_timeout_ms", worker.drain_timeout_ms, 0, MS_MAX, "30000",
      "On SIGTERM, time allowed for in-flight work to finish"),
    I("worker.max_tokens_limit", worker.max_tokens_limit, 1, 10000000, "32768",
      "Largest max_tokens a request may ask for"),
    I("worker.default_max_tokens", worker.default_max_tokens, 1, 10000000, "1024",
      "max_tokens for a request that sets none"),
    I("worker.max_request_bytes", worker.max_request_bytes, 64, 1 << 30, "1048576",
      "Largest encoded request accepted"),
    I("worker.max_messages", worker.max_messages, 1, 1000000, "256",
      "Most messages in one request"),
    I("worker.max_content_bytes", worker.max_content_bytes, 1, 1 << 30, "524288",
      "Most text (all messages and the system prompt) in one request"),
    I("worker.chunk_coalesce_ms", worker.chunk_coalesce_ms, 0, 60000, "20",
      "Streamed text after the first chunk is batched for up to this long"),
    I("worker.chunk_coalesce_bytes", worker.chunk_coalesce_bytes, 1, 1 << 20, "256",
      "A batched chunk is sent once this much text is pending"),
    B("worker.dev", worker.dev, "false",
      "Embedded dev mode: in-process Kafka mock cluster instead of kafka.bootstrap"),
    S("worker.dev_bootstrap_file", worker.dev_bootstrap_file, 1, "/tmp/modelgw-dev.bootstrap",
      "Dev mode writes the mock cluster's bootstrap address here for the CLI"),
    /* redis */
    E("redis.mode", redis.mode, gw_cfg_redis_mode, redis_mode_names, "standalone",
      "standalone: one Redis at host:port; cluster: a Redis Cluster from redis.nodes"),
    S("redis.nodes", redis.nodes, 0, "",
      "Cluster seed nodes, \"host:port,host:port,...\" (cluster mode; any reachable one will do)"),
    S("redis.host", redis.host, 1, "127.0.0.1", "Redis host"),
    I("redis.port", redis.port, 1, 65535, "6379", "Redis port"),
    ENV("redis.password_env", redis.password_env, redis.password, "",
        "Environment variable holding the Redis password; none = no AUTH"),
    ENV("redis.username_env", redis.username_env, redis.username, "",
        "Environment variable holding a Redis ACL user name (AUTH user password); none = default "
        "user"),
    I("redis.db", redis.db, 0, 1000, "0", "Redis database number"),
    I("redis.connect_timeout_ms", redis.connect_timeout_ms, 1, MS_MAX, "1000", "Connect timeout"),
    I("redis.command_timeout_ms", redis.command_timeout_ms, 1, MS_MAX, "500",
      "A command without a reply by then counts as a Redis failure"),
    I("redis.reconnect_min_ms", redis.reconnect_min_ms, 1, MS_MAX, "100",
      "First reconnect delay; doubles up to reconnect_max_ms"),
    I("redis.reconnect_max_ms", redis.reconnect_max_ms, 1, MS_MAX, "5000",
      "Longest reconnect delay"),
    S("redis.key_prefix", redis.key_prefix, 0,
      "modelgw:", "Prefix of every key, to share one Redis between deployments or tests"),
    I("redis.expected_workers", redis.expected_workers, 1, 100000, "1",
      "Workers in the fleet; local fallback limits are the limit divided by this"),
    /* state */
    E("state.backend", state.backend, gw_cfg_state_backend, backend_names, "redis",
      "Shared state: redis (fleet) or memory (one process)"),
    /* routing */
    I("routing.max_fallbacks", routing.max_fallbacks, 0, 64, "3",
      "Candidates tried after the first"),
    D("routing.w_latency", routing.w_latency, 0, 1000, "1", "BALANCED weight of latency"),
    D("routing.w_cost", routing.w_cost, 0, 1000, "1", "BALANCED weight of cost"),
    D("routing.w_quality", routing.w_quality, 0, 1000, "1", "BALANCED weight of quality"),
    D("routing.ewma_alpha", routing.ewma_alpha, 0.001, 1, "0.2",
      "Weight of a new latency sample in the moving averages"),
    I("routing.min_samples", routing.min_samples, 0, 1000000, "5",
      "Samples needed before observed latency replaces the prior"),
    D("routing.tie_rel_eps", routing.tie_rel_eps, 0, 1, "0.02",
      "Candidates whose scores are within this relative distance tie (spread by weight)"),
    I("routing.stats_refresh_ms", routing.stats_refresh_ms, 10, MS_MAX, "1000",
      "How often a worker reads the fleet's latency statistics"),
    I("routing.stats_ttl_s", routing.stats_ttl_s, 1, S_MAX, "86400",
      "TTL of the latency statistics in the state backend"),
    D("routing.explore_share", routing.explore_share, 0, 0.5, "0.1",
      "FASTEST/BALANCED: share of requests sent to a deployment with fewer than min_samples"),
    D("routing.explore_rate", routing.explore_rate, 0, 0.5, "0.02",
      "FASTEST/BALANCED: share of requests sent to a random other eligible deployment"),
    B("routing.adaptive_concurrency", routing.adaptive_concurrency, "true",
      "AIMD in-flight cap per deployment (between concurrency_min and max_concurrency)"),
    I("routing.concurrency_min", routing.concurrency_min, 1, 1000000, "1",
      "Lowest adaptive in-flight cap"),
    D("routing.concurrency_increase", routing.concurrency_increase, 0.01, 1000, "1",
      "Added to the adaptive cap for every cap successful calls"),
    D("routing.concurrency_decrease", routing.concurrency_decrease, 0.05, 0.95, "0.5",
      "Factor applied to the adaptive cap on a 429, a rate limit nearly used up or slow calls"),
    D("routing.concurrency_latency_factor", routing.concurrency_latency_factor, 0, 100, "0",
      "Time to first token over this times its baseline lowers the cap; 0 = off"),
    D("routing.concurrency_low_remaining", routing.concurrency_low_remaining, 0, 1, "0.05",
      "A rate-limit header's remaining/limit below this lowers the cap"),
    /* retry */
    I("retry.max_attempts_per_deployment", retry.max_attempts_per_deployment, 1, 100, "2",
      "Attempts on one deployment before failing over"),
    I("retry.base_backoff_ms", retry.base_backoff_ms, 0, MS_MAX, "100",
      "First retry delay; doubles with jitter"),
    I("retry.max_backoff_ms", retry.max_backoff_ms, 0, MS_MAX, "2000", "Longest retry delay"),
    I("retry.max_retry_after_ms", retry.max_retry_after_ms, 0, MS_MAX, "10000",
      "Longest provider Retry-After honoured before failing over instead"),
    I("retry.max_total_attempts", retry.max_total_attempts, 1, GW_CFG_MAX_TOTAL_ATTEMPTS, "6",
      "Provider calls for one request across all deployments (retries and failovers)"),
    /* breaker */
    I("breaker.window_ms", breaker.window_ms, 100, MS_MAX, "30000", "Failure-rate window"),
    I("breaker.bucket_ms", breaker.bucket_ms, 10, MS_MAX, "1000", "Window bucket size"),
    I("breaker.min_calls", breaker.min_calls, 1, 1000000, "10",
      "Calls in the window before the failure rate can trip"),
    D("breaker.failure_rate", breaker.failure_rate, 0.01, 1, "0.5",
      "Failure rate that opens the breaker"),
    I("breaker.consecutive_failures", breaker.consecutive_failures, 1, 1000000, "5",
      "Consecutive failures that open the breaker"),
    I("breaker.open_base_ms", breaker.open_base_ms, 1, MS_MAX, "5000", "First open cool-down"),
    I("breaker.open_max_ms", breaker.open_max_ms, 1, MS_MAX, "60000",
      "Longest cool-down; it doubles each time a probe fails"),
    D("breaker.jitter", breaker.jitter, 0, 1, "0.2", "Random spread of a cool-down (fraction)"),
    I("breaker.half_open_successes", breaker.half_open_successes, 1, 1000, "2",
      "Successful probes that close the breaker"),
    I("breaker.local_cache_ms", breaker.local_cache_ms, 0, 60000, "250",
      "How long a worker trusts its cached copy of a breaker's state"),
    I("breaker.probe_lease_ms", breaker.probe_lease_ms, 1, MS_MAX, "30000",
      "A half-open probe that never reports frees the probe slot after this"),
    I("breaker.rate_limit_default_ms", breaker.rate_limit_default_ms, 1, MS_MAX, "1000",
      "Shared cool-down after a provider 429 without Retry-After"),
    I("breaker.rate_limit_max_ms", breaker.rate_limit_max_ms, 1, MS_MAX, "60000",
      "Longest 429 cool-down when retry.max_retry_after_ms is 0 (otherwise that caps it)"),
    I("breaker.state_ttl_ms", breaker.state_ttl_ms, 1000, MS_MAX, "3600000",
      "TTL of the breaker keys in Redis; raised to 2 x window_ms and 4 x open_max_ms if shorter"),
    /* limits */
    I64("limits.default_rpm", limits.default_rpm, 0, BIG, "0",
        "Requests per minute per agent; 0 = unlimited"),
    I64("limits.default_tpm", limits.default_tpm, 0, BIG, "0",
        "Tokens per minute per agent; 0 = unlimited"),
    E("limits.on_limit", limits.on_limit, gw_cfg_on_limit, on_limit_names, "reject",
      "A limited request gets an error (reject) or is held and retried (delay)"),
    I("limits.max_delay_ms", limits.max_delay_ms, 0, MS_MAX, "10000",
      "on_limit = delay: longest hold (the request's deadline still applies)"),
    L("limits.agents", limits.agents, gw_cfg_agent_limit, limits.agent_count, 0, GW_CFG_MAX_AGENTS,
      &agent_limit_table, NULL, "Per-agent limit overrides"),
    /* budgets */
    D("budgets.default_daily_usd", budgets.default_daily_usd, 0, USD_MAX, "0",
      "Spend per agent per UTC day, USD; 0 = unlimited"),
    D("budgets.default_monthly_usd", budgets.default_monthly_usd, 0, USD_MAX, "0",
      "Spend per agent per UTC month, USD; 0 = unlimited"),
    L("budgets.agents", budgets.agents, gw_cfg_agent_budget, budgets.agent_count, 0,
      GW_CFG_MAX_AGENTS, &agent_budget_table, NULL, "Per-agent budget overrides"),
    /* cache */
    B("cache.enabled", cache.enabled, "true", "Response cache on or off"),
    I("cache.ttl_s", cache.ttl_s, 1, S_MAX, "3600", "Lifetime of a cached answer"),
    I("cache.max_ttl_s", cache.max_ttl_s, 1, S_MAX, "604800",
      "Cap on a request's cache_ttl_s metadata"),
    B("cache.shared", cache.shared, "false",
      "One cache for every tenant instead of one namespace per agent"),
    B("cache.temperature_above_zero", cache.temperature_above_zero, "true",
      "Cache answers of requests with temperature > 0"),
    SL("cache.store_finish_reasons", cache.store_finish_reasons, cache.store_finish_reason_count,
       GW_CFG_MAX_FINISH_REASONS, "stop,length", "Finish reasons of answers that are stored"),
    I("cache.singleflight_wait_ms", cache.singleflight_wait_ms, 0, MS_MAX, "30000",
      "How long identical requests wait for the one in flight"),
    I("cache.max_entry_bytes", cache.max_entry_bytes, 1, 1 << 30, "1048576",
      "Larger answers are not cached"),
    B("cache.semantic.enabled", cache.semantic.enabled, "false",
      "Semantic tier: similar prompts answered from cache"),
    D("cache.semantic.threshold", cache.semantic.threshold, 0, 1, "0.80",
      "Cosine similarity a candidate needs before the verifier checks it: the recall knob "
      "(0.80 for the hash embedder and all-MiniLM-L6-v2: docs/semantic-cache.md)"),
    D("cache.semantic.threshold_floor", cache.semantic.threshold_floor, 0, 1, "0.80",
      "Per-request thresholds (metadata) cannot go below this"),
    I("cache.semantic.max_messages", cache.semantic.max_messages, 1, 1000, "4",
      "Longer conversations are not matched semantically"),
    I("cache.semantic.max_prompt_bytes", cache.semantic.max_prompt_bytes, 1, 4096, "2048",
      "Longer last user turns are not matched semantically (at most 4096, the text stored "
      "per entry for the verifier)"),
    S("cache.semantic.embedder", cache.semantic.embedder, 1, "hash",
      "\"hash\" (built in) or the id of an embedding deployment"),
    I("cache.semantic.dim", cache.semantic.dim, 8, 8192, "512",
      "Vector size: 512 for the hash embedder, the model's for an embedding deployment"),
    I("cache.semantic.bands", cache.semantic.bands, 1, 256, "20", "LSH bands"),
    I("cache.semantic.rows", cache.semantic.rows, 1, 64, "10", "Hyperplanes per LSH band"),
    I("cache.semantic.max_candidates", cache.semantic.max_candidates, 1, 10000, "64",
      "Most stored vectors compared exactly per lookup"),
    /* idempotency */
    B("idempotency.enabled", idempotency.enabled, "true",
      "Claim each request id before calling a provider"),
    I("idempotency.lease_ms", idempotency.lease_ms, 100, MS_MAX, "10000",
      "A claim not renewed for this long is taken over; a worker renews the claims of its "
      "running requests every third of it, so only a dead worker's lapse"),
    I("idempotency.max_wait_ms", idempotency.max_wait_ms, 100, MS_MAX, "120000",
      "Longest a redelivered copy waits for the live worker that holds its claim (then E4501, "
      "retryable)"),
    I("idempotency.result_ttl_s", idempotency.result_ttl_s, 1, S_MAX, "86400",
      "How long a finished answer is kept for redeliveries"),
    /* failure policy */
    E("failure_policy.limits", failure_policy.limits, gw_cfg_fail_policy, policy_names, "open",
      "Redis down: local limiter (open) or error (closed)"),
    E("failure_policy.cache", failure_policy.cache, gw_cfg_fail_policy, policy_names, "open",
      "Redis down: bypass the cache (open) or error (closed)"),
    E("failure_policy.idempotency", failure_policy.idempotency, gw_cfg_fail_policy, policy_names,
      "open", "Redis down: proceed without a claim (open) or error (closed)"),
    E("failure_policy.breaker", failure_policy.breaker, gw_cfg_fail_policy, policy_names, "open",
      "Redis down: local breaker (open) or error (closed)"),
    /* admin */
    S("admin.listen", admin.listen, 1, "127.0.0.1", "Admin HTTP address (/metrics, /health)"),
    I("admin.port", admin.port, 0, 65535, "0", "Admin HTTP port; 0 = off"),
    I("admin.max_connections", admin.max_connections, 16, 4096, "64",
      "Open admin connections at most; idle and slow ones are closed first, so probes get in"),
    I("admin.connection_timeout_s", admin.connection_timeout_s, 1, 3600, "5",
      "An admin connection silent this long is closed"),
    ENV("admin.token_env", admin.token_env, admin.token, "",
        "Environment variable holding a bearer token /metrics requires; none = /metrics open"),
    /* log */
    E("log.level", log.level, gw_log_level, level_names, "info", "Lowest level logged"),
    B("log.debug_content", log.debug_content, "false",
      "Log prompt and completion text (never in production)"),
    /* schema registry */
    S("schema_registry.url", schema_registry.url, 0, "",
      "Confluent schema registry API base; empty = unknown schema ids go to the DLQ"),
    S("schema_registry.username", schema_registry.username, 0, "", "Basic-auth user; empty = none"),
    ENV("schema_registry.password_env", schema_registry.password_env, schema_registry.password, "",
        "Environment variable holding the basic-auth password"),
    I("schema_registry.timeout_ms", schema_registry.timeout_ms, 100, 60000, "5000",
      "Timeout of one registry request"),
    I("schema_registry.max_wait_ms", schema_registry.max_wait_ms, 100, MS_MAX, "10000",
      "Longest a request waits for its writer schema (retries included; its deadline caps it)"),
    I("schema_registry.cache_entries", schema_registry.cache_entries, 1, 65536, "256",
      "Schema ids cached (resolved or failed)"),
    I("schema_registry.negative_ttl_ms", schema_registry.negative_ttl_ms, 1000, MS_MAX, "30000",
      "An unknown or incompatible id is not asked again for this long"),
    B("schema_registry.register_outputs", schema_registry.register_outputs, "false",
      "At start, register the output schemas under `<topic>-value`; confluent output framing "
      "writes the returned ids"),
    I("schema_registry.register_timeout_ms", schema_registry.register_timeout_ms, 1000, MS_MAX,
      "60000", "Start retries the registration this long (backoff to 5 s), then the worker exits"),
    S("schema_registry.tls.ca_file", schema_registry.tls_ca_file, 0, "",
      "CA certificates (PEM) for an https registry; empty = the system's"),
    S("schema_registry.tls.cert_file", schema_registry.tls_cert_file, 0, "",
      "Client certificate (PEM) for an https registry; empty = none"),
    S("schema_registry.tls.key_file", schema_registry.tls_key_file, 0, "",
      "The client certificate's private key (PEM); empty = in tls.cert_file"),
    ENV("schema_registry.tls.key_password_env", schema_registry.tls_key_password_env,
        schema_registry.tls_key_password, "",
        "Environment variable holding the private key's password"),
    B("schema_registry.tls.verify", schema_registry.tls_verify, "true",
      "Verify the registry's certificate and host name (false only for testing)"),
    /* trace */
    S("trace.endpoint", trace.endpoint, 0, "",
      "OTLP/HTTP JSON traces URL (http://host:4318/v1/traces); empty = no span export"),
    S("trace.service_name", trace.service_name, 1, "modelgw", "service.name of exported spans"),
    D("trace.sample_ratio", trace.sample_ratio, 0, 1, "1",
      "Share of new traces exported; a request's traceparent decides for its own"),
    I("trace.batch_spans", trace.batch_spans, 1, 10000, "512", "Most spans in one export request"),
    I("trace.queue_spans", trace.queue_spans, 1, 1000000, "8192",
      "Most spans waiting for export; more are dropped and counted"),
    I("trace.flush_interval_ms", trace.flush_interval_ms, 10, 60000, "1000",
      "Longest a span waits before its batch is sent"),
    I("trace.timeout_ms", trace.timeout_ms, 100, 60000, "5000", "Timeout of one export request"),
    /* deployment defaults */
    I("timeouts.connect_ms", timeouts.connect_ms, 1, MS_MAX, "5000",
      "Default connect timeout of a deployment"),
    I("timeouts.first_token_ms", timeouts.first_token_ms, 1, MS_MAX, "60000",
      "Default time to first token of a deployment"),
    I("timeouts.idle_ms", timeouts.idle_ms, 1, MS_MAX, "30000",
      "Default longest silence between chunks"),
    I("timeouts.total_ms", timeouts.total_ms, 1, MS_MAX, "300000",
      "Default total time of one call"),
    I("mock.latency_ms", mock.latency_ms, 0, MS_MAX, "0", "Default mock answer time"),
    I("mock.ttft_ms", mock.ttft_ms, 0, MS_MAX, "0", "Default mock time to first chunk"),
    I("mock.chunk_delay_ms", mock.chunk_delay_ms, 0, MS_MAX, "0",
      "Default mock delay between chunks"),
    D("mock.failure_rate", mock.failure_rate, 0, 1, "0", "Default mock failure rate"),
    /* the registry */
    L("deployments", deployments, gw_deployment, deployment_count, 1, GW_CFG_MAX_DEPLOYMENTS,
      &deployment_table, NULL, "The model registry"),
};
#undef GW_ROW_T

const gw_cfg_table gw_cfg_top = {"setting",         top_rows, COUNT(top_rows),
                                 sizeof(gw_config), NULL,     NULL};

/* ---- rules across settings ------------------------------------------- */

/* quirks: known names, for the OpenAI dialect only; their bits into openai_quirks. */
static gw_err validate_quirks(gw_cfg_ctx *ctx, gw_deployment *d, const char *elem_path)
{
    char path[300];
    snprintf(path, sizeof(path), "%s.quirks", elem_path);
    d->openai_quirks = 0;
    for (size_t i = 0; i < d->quirk_count; i++) {
        uint32_t bit = gw_quirk_parse(d->quirks[i]);
        if (bit == 0) {
            char names[256];
            gw_quirks_format(UINT32_MAX >> (32 - GW_QUIRK__COUNT), names, sizeof names);
            return gw_cfg_fail(ctx, NULL, path, "\"%.64s\" is not one of: %s", d->quirks[i], names);
        }
        d->openai_quirks |= bit;
    }
    if (d->quirk_count > 0 && d->provider != GW_PROVIDER_OPENAI && d->provider != GW_PROVIDER_AZURE)
        return gw_cfg_fail(ctx, NULL, path,
                           "quirks are for the openai dialect (provider openai or "
                           "azure), not \"%s\"",
                           gw_provider_kind_name(d->provider));
    return GW_OK;
}

static gw_err validate_deployment(gw_cfg_ctx *ctx, void *elem, const char *elem_path)
{
    gw_deployment *d = elem;
    char path[300];
    const gw_provider_kind_info *k = gw_provider_info(d->provider);
    if (!k->builtin && !k->base_url_optional && d->base_url == NULL) {
        snprintf(path, sizeof(path), "%s.base_url", elem_path);
        return gw_cfg_fail(ctx, NULL, path, "required for provider \"%s\"",
                           gw_provider_kind_name(d->provider));
    }
    if (d->base_url != NULL && strncmp(d->base_url, "http://", 7) != 0 &&
        strncmp(d->base_url, "https://", 8) != 0) {
        snprintf(path, sizeof(path), "%s.base_url", elem_path);
        return gw_cfg_fail(ctx, NULL, path, "must start with http:// or https://");
    }
    if (d->tls_key_file != NULL && d->tls_cert_file == NULL) {
        snprintf(path, sizeof(path), "%s.tls.key_file", elem_path);
        return gw_cfg_fail(ctx, NULL, path, "needs tls.cert_file");
    }
    for (size_t i = 0; i < d->extra_header_count; i++) {
        const char *colon = strchr(d->extra_headers[i], ':');
        if (colon == NULL || colon == d->extra_headers[i] || strchr(d->extra_headers[i], '\n')) {
            snprintf(path, sizeof(path), "%s.extra_headers", elem_path);
            return gw_cfg_fail(ctx, NULL, path, "item %zu is not \"Name: value\"", i);
        }
    }
    gw_err e = validate_quirks(ctx, d, elem_path);
    if (e != GW_OK)
        return e;
    if (d->first_token_timeout_ms > d->total_timeout_ms ||
        d->connect_timeout_ms > d->total_timeout_ms || d->idle_timeout_ms > d->total_timeout_ms) {
        snprintf(path, sizeof(path), "%s.timeouts.total_ms", elem_path);
        return gw_cfg_fail(ctx, NULL, path, "%d is below connect_ms, first_token_ms or idle_ms",
                           (int)d->total_timeout_ms);
    }
    if (d->auth_header == NULL) {
        const char *h = gw_provider_info(d->provider)->auth.header;
        d->auth_header = h != NULL ? h : "Authorization";
    }
    return GW_OK;
}

static bool one_of(const char *s, const char *const *names)
{
    for (size_t i = 0; names[i] != NULL; i++)
        if (strcmp(s, names[i]) == 0)
            return true;
    return false;
}

static gw_err validate_kafka(gw_cfg_ctx *ctx, const gw_kafka_config *k)
{
    const char *const in[] = {k->topics.high, k->topics.normal, k->topics.low, NULL};
    static const char *const in_names[] = {"high", "normal", "low"};
    const char *const out[] = {k->topics.responses, k->topics.chunks, k->topics.usage,
                               k->topics.dlq};
    static const char *const out_names[] = {"responses", "chunks", "usage", "dlq"};
    char path[64];
    for (size_t i = 1; i < 3; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(in[i], in[j]) == 0) {
                snprintf(path, sizeof(path), "kafka.topics.%s", in_names[i]);
                return gw_cfg_fail(ctx, NULL, path, "same topic as kafka.topics.%s", in_names[j]);
            }
    for (size_t i = 0; i < 4; i++)
        if (one_of(out[i], in)) {
            snprintf(path, sizeof(path), "kafka.topics.%s", out_names[i]);
            return gw_cfg_fail(ctx, NULL, path, "\"%s\" is also a request topic", out[i]);
        }
    if (k->output_framing == GW_CFG_FRAMING_AUTO)
        return gw_cfg_fail(ctx, NULL, "kafka.output_framing", "auto is for input only");
    /* Each transaction lives one commit interval (plus its commit): a
     * timeout shorter than that would have the broker abort every one. */
    if (k->transactional && k->transaction_timeout_ms <= k->commit_interval_ms)
        return gw_cfg_fail_rule(ctx, "kafka.transaction_timeout_ms", "kafka.commit_interval_ms",
                                "%d is not above kafka.commit_interval_ms %d",
                                (int)k->transaction_timeout_ms, (int)k->commit_interval_ms);
    for (size_t i = 0; i < k->property_count; i++) {
        const char *eq = strchr(k->properties[i], '=');
        if (eq == NULL || eq == k->properties[i])
            return gw_cfg_fail(ctx, NULL, "kafka.properties", "item %zu is not \"key=value\"", i);
    }
    return GW_OK;
}

static gw_err validate_worker(gw_cfg_ctx *ctx, const gw_worker_config *w)
{
    if (w->default_max_tokens > w->max_tokens_limit)
        return gw_cfg_fail_rule(ctx, "worker.default_max_tokens", "worker.max_tokens_limit",
                                "%d is above worker.max_tokens_limit %d",
                                (int)w->default_max_tokens, (int)w->max_tokens_limit);
    if (w->max_content_bytes > w->max_request_bytes)
        return gw_cfg_fail_rule(ctx, "worker.max_content_bytes", "worker.max_request_bytes",
                                "%d is above worker.max_request_bytes %d",
                                (int)w->max_content_bytes, (int)w->max_request_bytes);
    return GW_OK;
}

static gw_err validate_schema_registry(gw_cfg_ctx *ctx, const gw_config *cfg)
{
    const gw_schema_registry_config *r = &cfg->schema_registry;
    bool off = r->url == NULL || r->url[0] == '\0';
    if (r->register_outputs && off)
        return gw_cfg_fail_rule(ctx, "schema_registry.register_outputs", "schema_registry.url",
                                "registering the output schemas needs schema_registry.url");
    if (cfg->kafka.output_framing == GW_CFG_FRAMING_CONFLUENT && !r->register_outputs)
        return gw_cfg_fail_rule(ctx, "kafka.output_framing", "schema_registry.register_outputs",
                                "confluent output framing needs schema ids: set "
                                "schema_registry.register_outputs = true");
    if (r->tls_key_file != NULL && r->tls_key_file[0] != '\0' &&
        (r->tls_cert_file == NULL || r->tls_cert_file[0] == '\0'))
        return gw_cfg_fail_rule(ctx, "schema_registry.tls.key_file",
                                "schema_registry.tls.cert_file",
                                "a private key without its client certificate");
    return GW_OK;
}

static gw_err validate_cache(gw_cfg_ctx *ctx, const gw_config *cfg)
{
    static const char *const reasons[] = {"stop", "length", "content_filter", "tool_calls", NULL};
    const gw_cache_config *c = &cfg->cache;
    for (size_t i = 0; i < c->store_finish_reason_count; i++)
        if (!one_of(c->store_finish_reasons[i], reasons))
            return gw_cfg_fail(ctx, NULL, "cache.store_finish_reasons",
                               "\"%.64s\" is not one of: stop, length, content_filter, tool_calls",
                               c->store_finish_reasons[i]);
    if (c->ttl_s > c->max_ttl_s)
        return gw_cfg_fail_rule(ctx, "cache.ttl_s", "cache.max_ttl_s",
                                "%d is above cache.max_ttl_s %d", (int)c->ttl_s, (int)c->max_ttl_s);
    if (c->semantic.threshold_floor > c->semantic.threshold)
        return gw_cfg_fail_rule(ctx, "cache.semantic.threshold_floor", "cache.semantic.threshold",
                                "%g is above cache.semantic.threshold %g",
                                c->semantic.threshold_floor, c->semantic.threshold);
    if (c->semantic.bands * c->semantic.rows > 1024)
        return gw_cfg_fail_rule(ctx, "cache.semantic.rows", "cache.semantic.bands",
                                "bands x rows is %d, the maximum is 1024",
                                (int)(c->semantic.bands * c->semantic.rows));
    if (strcmp(c->semantic.embedder, "hash") != 0 &&
        gw_config_deployment(cfg, c->semantic.embedder) == NULL)
        return gw_cfg_fail(ctx, NULL, "cache.semantic.embedder",
                           "\"%.64s\" is neither \"hash\" nor a deployment id",
                           c->semantic.embedder);
    return GW_OK;
}

static gw_err check_order(gw_cfg_ctx *ctx, int32_t lo, int32_t hi, const char *lo_path,
                          const char *hi_path)
{
    if (lo <= hi)
        return GW_OK;
    return gw_cfg_fail_rule(ctx, lo_path, hi_path, "%d is above %s %d", (int)lo, hi_path, (int)hi);
}

gw_err gw_cfg_validate_top(gw_cfg_ctx *ctx)
{
    const gw_config *cfg = ctx->cfg;
    gw_err e = validate_kafka(ctx, &cfg->kafka);
    if (e == GW_OK)
        e = validate_worker(ctx, &cfg->worker);
    if (e == GW_OK)
        e = check_order(ctx, cfg->redis.reconnect_min_ms, cfg->redis.reconnect_max_ms,
                        "redis.reconnect_min_ms", "redis.reconnect_max_ms");
    if (e == GW_OK && cfg->redis.mode == GW_CFG_REDIS_CLUSTER &&
        (cfg->redis.nodes == NULL || cfg->redis.nodes[0] == '\0'))
        e = gw_cfg_fail(ctx, NULL, "redis.nodes", "redis.mode = cluster needs seed nodes");
    if (e == GW_OK && cfg->redis.mode == GW_CFG_REDIS_CLUSTER && cfg->redis.db != 0)
        e = gw_cfg_fail(ctx, NULL, "redis.db", "a Redis Cluster has database 0 only");
    if (e == GW_OK)
        e = check_order(ctx, cfg->retry.base_backoff_ms, cfg->retry.max_backoff_ms,
                        "retry.base_backoff_ms", "retry.max_backoff_ms");
    if (e == GW_OK)
        e = check_order(ctx, cfg->breaker.bucket_ms, cfg->breaker.window_ms, "breaker.bucket_ms",
                        "breaker.window_ms");
    if (e == GW_OK)
        e = check_order(ctx, cfg->breaker.open_base_ms, cfg->breaker.open_max_ms,
                        "breaker.open_base_ms", "breaker.open_max_ms");
    if (e == GW_OK && cfg->routing.w_latency + cfg->routing.w_cost + cfg->routing.w_quality <= 0)
        e = gw_cfg_fail(ctx, NULL, "routing.w_quality",
                        "the BALANCED weights must not all be zero");
    if (e == GW_OK)
        e = validate_cache(ctx, cfg);
    if (e == GW_OK)
        e = validate_schema_registry(ctx, cfg);
    return e;
}
