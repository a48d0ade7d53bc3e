/*
 * observe: what a worker tells the outside about itself: usage accounting
 * (the UsageEvent of every request outcome), Prometheus metrics, the admin
 * endpoint's /health and /ready, Kafka consumer lag, and the per-request log
 * line. docs/observability.md is the reference for operators and consumers.
 *
 * One gw_observe per worker, owned by it, used only on its loop thread. It
 * owns the metrics registry and the admin endpoint; it reads worker state
 * (jobs, partitions, the state backend, routing) without owning any of it.
 *
 * Per-request metrics are derived at one point, gw_observe_outcome(), from
 * the job and its usage event (built by job.c), so the pipeline stages carry
 * no metric calls of their own: the job already records what matters (cache
 * tier, denying limit, the failover log of every attempt). Only events that
 * are not part of one outcome (DLQ, chunks, cache stores) have their calls.
 *
 * Invariants: exactly one gw_observe_outcome() per request that has a usage
 * event; credentials never reach a log line: provider text is passed through
 * gw_redact() with the deployment's key; prompt and completion text only with
 * log.debug_content.
 */
#ifndef GW_WORKER_OBSERVE_H
#define GW_WORKER_OBSERVE_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admin/metrics.h"
#include "common/err.h"
#include "model/deployment.h"
#include "model/model.h"

typedef struct gw_observe gw_observe;
struct gw_worker;
struct gw_job;

/* Creates the metrics registry for w (nothing is started). */
gw_err gw_observe_new(struct gw_worker *w, gw_observe **out);
/* Starts the admin endpoint (admin.listen:admin.port; port 0 = none). */
gw_err gw_observe_start(gw_observe *o);
/* Stops the admin endpoint (its handles close on the loop). Idempotent. */
void gw_observe_stop(gw_observe *o);
void gw_observe_free(gw_observe *o);

gw_metrics *gw_observe_metrics(gw_observe *o);
/* The span exporter (trace/trace.h); exists whether or not export is on. */
struct gw_tracer *gw_observe_tracer(gw_observe *o);
/* The admin port actually bound (0 when none). */
uint16_t gw_observe_admin_port(const gw_observe *o);

/* The consumer's statistics.interval.ms (kafka/consumer.h hooks). */
enum {
    GW_OBSERVE_STATS_INTERVAL_MS = 2000,
    /* kafka.transactional: an end of a transaction under way this long makes
     * /ready say not ready (a healthy broker takes a few ms) */
    GW_OBSERVE_TXN_STUCK_MS = 10000,
};
/* One statistics JSON of the consumer, parsed on the loop (the consumer's
 * stats hook runs from its poll) into modelgw_consumer_lag_messages. NULL o
 * is ignored. */
void gw_observe_kafka_stats(gw_observe *o, const char *json, size_t len);

/* ---- reports from outside the outcome ------------------------------------- */

/* An undecodable message went to the DLQ. */
void gw_observe_dlq(gw_observe *o, gw_err err);
/* An output was replaced (action "replaced") or given up ("undeliverable"):
 * output is response, reply, chunk, usage or dlq; error librdkafka's name. */
void gw_observe_output_failure(gw_observe *o, const char *output, const char *error,
                               const char *action);
/* The consumer reported error m (not a fetched message): counted; the last
 * error of a request topic, and a group refusal, are shown in /health (the
 * group also in /ready) until gw_observe_consumer_ok() clears them. */
void gw_observe_consumer_error(gw_observe *o, const rd_kafka_message_t *m);
/* A message was taken from tier's topic, or partitions of it were assigned:
 * its error (and the group's) is over. Cheap: called per message. */
void gw_observe_consumer_ok(gw_observe *o, int tier);
/* A stream chunk was handed to the producer. */
void gw_observe_chunk(gw_observe *o);
/* An answer was written to a cache tier ("exact" | "semantic"). */
void gw_observe_cache_store(gw_observe *o, const char *tier);
/* A kept answer's usage event was unreadable (stage_state.c); reason is
 * too_large, odd_length, bad_hex, undecodable, unknown_schema or
 * other_request. */
void gw_observe_kept_usage_corrupt(gw_observe *o, const char *reason);

/* ---- the outcome ---------------------------------------------------------- */

/* Billed USD for usage at d's prices (0 when d is NULL). */
double gw_observe_cost_usd(const gw_deployment *d, const gw_token_usage *usage);
/*
 * Once per request, after its usage event u was handed to the producer:
 * requests by outcome and tier, latency and TTFT histograms, tokens and cost,
 * cache hits and misses, rate-limit denials, and from the failover log the
 * provider calls, retries and failovers; then the per-request log line.
 */
void gw_observe_outcome(struct gw_job *job, const gw_usage_event *u);

#endif
