/*
 * metrics: the worker's Prometheus metrics, rendered in the text exposition
 * format (version 0.0.4) for /metrics.
 *
 * Every metric family is one row of GW_METRIC_MAP: name (with unit suffix,
 * base units, `_total` for counters), type, help text and up to three label
 * names. Callers update a series by family id and label values in the order
 * the row names them:
 *
 *   gw_metric_add(m, GW_M_REQUESTS, 1, "success", "high");
 *   gw_metric_observe(m, GW_M_REQUEST_DURATION, 0.012, "gpt-4o");
 *
 * The registry is owned by one worker and used only from its loop thread, so
 * it has no locks. The number of series is capped (label values come from
 * outside: model names, topics); past the cap new series are dropped and
 * counted in modelgw_metrics_series_dropped_total.
 */
#ifndef GW_ADMIN_METRICS_H
#define GW_ADMIN_METRICS_H

#include <stddef.h>

typedef enum { GW_MT_COUNTER, GW_MT_GAUGE, GW_MT_HISTOGRAM } gw_metric_type;

/* X(id, name, type, help, nlabels, label1, label2, label3) */
#define GW_METRIC_MAP(X)                                                                           \
    X(REQUESTS, "modelgw_requests_total", COUNTER, "Requests that reached an outcome.", 2,         \
      "outcome", "tier", NULL)                                                                     \
    X(REQUEST_DURATION, "modelgw_request_duration_seconds", HISTOGRAM,                             \
      "End-to-end time from intake to published response.", 1, "model", NULL, NULL)                \
    X(TTFT, "modelgw_time_to_first_token_seconds", HISTOGRAM,                                      \
      "Provider time to first token (or to the answer when not streamed).", 1, "model", NULL,      \
      NULL)                                                                                        \
    X(TOKENS, "modelgw_tokens_total", COUNTER, "Tokens processed, by model and kind.", 2, "model", \
      "kind", NULL)                                                                                \
    X(COST, "modelgw_cost_usd_total", COUNTER, "Billed cost in USD by model.", 1, "model", NULL,   \
      NULL)                                                                                        \
    X(CACHE, "modelgw_cache_operations_total", COUNTER, "Response cache lookups and stores.", 2,   \
      "tier", "result", NULL)                                                                      \
    X(RATE_LIMITED, "modelgw_rate_limit_denials_total", COUNTER,                                   \
      "Requests denied by a rate limit or budget, by limit.", 1, "limit", NULL, NULL)              \
    X(BREAKER_STATE, "modelgw_breaker_state", GAUGE,                                               \
      "Circuit breaker state per deployment (0 closed, 1 half-open, 2 open).", 1, "deployment",    \
      NULL, NULL)                                                                                  \
    X(CONCURRENCY_LIMIT, "modelgw_deployment_concurrency_limit", GAUGE,                            \
      "In-flight cap per deployment in this worker (adaptive when "                                \
      "routing.adaptive_concurrency is on).",                                                      \
      1, "deployment", NULL, NULL)                                                                 \
    X(PROVIDER_CALLS, "modelgw_provider_calls_total", COUNTER,                                     \
      "Provider call attempts by deployment and result code.", 2, "deployment", "code", NULL)      \
    X(FAILOVERS, "modelgw_failovers_total", COUNTER,                                               \
      "Moves from one deployment to the next within a request.", 1, "from", NULL, NULL)            \
    X(RETRIES, "modelgw_retries_total", COUNTER, "Retries on the same deployment.", 1,             \
      "deployment", NULL, NULL)                                                                    \
    X(IN_FLIGHT, "modelgw_in_flight_requests", GAUGE, "Requests held by this worker.", 0, NULL,    \
      NULL, NULL)                                                                                  \
    X(TXN_ENDING, "modelgw_txn_commit_in_progress_seconds", GAUGE,                                 \
      "kafka.transactional: how long the end of the transaction under way has taken (0: none).",   \
      0, NULL, NULL, NULL)                                                                         \
    X(TXN_HELD, "modelgw_txn_held_outputs", GAUGE,                                                 \
      "kafka.transactional: outputs held until the transaction under way has ended.", 0, NULL,     \
      NULL, NULL)                                                                                  \
    X(PAUSED_PARTITIONS, "modelgw_paused_partitions", GAUGE,                                       \
      "Assigned partitions currently paused, by tier.", 1, "tier", NULL, NULL)                     \
    X(CONSUMER_LAG, "modelgw_consumer_lag_messages", GAUGE,                                        \
      "Messages between the committed offset and the high watermark.", 2, "topic", "partition",    \
      NULL)                                                                                        \
    X(REDIS_FALLBACKS, "modelgw_redis_fallbacks_total", COUNTER,                                   \
      "Decisions taken without Redis under the failure policy, by feature.", 1, "feature", NULL,   \
      NULL)                                                                                        \
    X(DLQ, "modelgw_dlq_messages_total", COUNTER, "Undecodable messages sent to the DLQ.", 1,      \
      "error", NULL, NULL)                                                                         \
    X(OUTPUT_FAILURES, "modelgw_output_failures_total", COUNTER,                                   \
      "Outputs the broker would not take, replaced or undeliverable.", 3, "output", "error",       \
      "action")                                                                                    \
    X(CONSUMER_ERRORS, "modelgw_consumer_errors_total", COUNTER,                                   \
      "Errors the consumer reported, by librdkafka error name.", 1, "error", NULL, NULL)           \
    X(CHUNKS, "modelgw_stream_chunks_total", COUNTER, "Stream chunks published.", 0, NULL, NULL,   \
      NULL)                                                                                        \
    X(KEPT_USAGE_CORRUPT, "modelgw_kept_usage_corrupt_total", COUNTER,                             \
      "Kept answers whose stored usage event was unreadable (not replayed), by reason.", 1,        \
      "reason", NULL, NULL)                                                                        \
    X(SERIES_DROPPED, "modelgw_metrics_series_dropped_total", COUNTER,                             \
      "Series not recorded because the series cap was reached.", 0, NULL, NULL, NULL)

typedef enum {
#define GW_METRIC_ENUM(id, name, type, help, n, l1, l2, l3) GW_M_##id,
    GW_METRIC_MAP(GW_METRIC_ENUM)
#undef GW_METRIC_ENUM
        GW_M__COUNT
} gw_metric_id;

typedef struct gw_metrics gw_metrics;

gw_metrics *gw_metrics_new(size_t max_series);
void gw_metrics_free(gw_metrics *m);

/* Label values follow the family's label names; pass exactly nlabels strings. */
void gw_metric_add(gw_metrics *m, gw_metric_id id, double v, ...);
void gw_metric_set(gw_metrics *m, gw_metric_id id, double v, ...);
void gw_metric_observe(gw_metrics *m, gw_metric_id id, double v, ...);
/* Forget every series of a gauge family (before re-collecting it at scrape time). */
void gw_metric_clear(gw_metrics *m, gw_metric_id id);
/* Current value of a counter or gauge series; 0 when absent (tests, /health). */
double gw_metric_get(gw_metrics *m, gw_metric_id id, ...);

/* Called at the start of every render, to refresh gauges from their owners. */
typedef void (*gw_metrics_collect_fn)(gw_metrics *m, void *ud);
void gw_metrics_set_collector(gw_metrics *m, gw_metrics_collect_fn fn, void *ud);

/* Render the exposition text; the caller frees *out with free(). 0 on success. */
int gw_metrics_render(gw_metrics *m, char **out, size_t *out_len);

#endif
