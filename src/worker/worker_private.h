/*
 * worker_private: state shared by worker.c (Kafka intake, offsets, capacity,
 * shutdown) and job.c (the per-request state machine and its outputs).
 * Not for other modules.
 */
#ifndef GW_WORKER_PRIVATE_H
#define GW_WORKER_PRIVATE_H

#include <librdkafka/rdkafka.h>

#include "codec/codec.h"
#include "common/buf.h"
#include "config/config.h"
#include "loop/kq.h"
#include "kafka/offsets.h"
#include "provider/provider.h"
#include "route/routing.h"
#include "semantic/semcache.h"
#include "semantic/semstore.h"
#include "loop/redis.h"
#include "state/state.h"
#include "worker/job.h"
#include "worker/observe.h"
#include "worker/policy.h"
#include "worker/validate.h"

/*
 * One assigned (or once assigned) partition of a tier topic. Never freed
 * before the worker: jobs keep a pointer; `generation` changes on every
 * (re)assignment, so a job of an older assignment never touches the tracker
 * of the new one.
 */
typedef struct gw_part {
    gw_tier tier;
    int32_t partition;
    bool assigned;
    bool paused;         /* what we last told librdkafka */
    bool runahead_full;  /* paused because run-ahead reached the cap */
    uint32_t generation; /* bumped on assign and on revoke */
    gw_offsets offs;
    bool offs_ready;
    int64_t stored; /* last offset handed to rd_kafka_offsets_store; -1 none */
} gw_part;

typedef struct {
    gw_part **items; /* indexed by partition id */
    int32_t count;
} gw_part_table;

typedef enum { GW_RUN_STARTING, GW_RUN_RUNNING, GW_RUN_DRAINING, GW_RUN_DONE } gw_run_state;

typedef struct {
    uint64_t received, dlq, invalid, expired, errors, succeeded, done, publish_failed;
    uint64_t pauses, resumes, consumer_wakeups, producer_wakeups;
    uint64_t duplicates, cache_exact_hits, cache_semantic_hits, cache_misses, rate_limited;
    uint64_t retries, failovers, bg_errors;
    uint64_t idem_keep_failed; /* kept response not stored before publishing */
} gw_worker_counters;

struct gw_worker {
    uv_loop_t *loop;
    const gw_config *cfg;
    char *bootstrap;
    gw_codec *codec;
    gw_providers *providers;
    gw_framing out_framing;

    rd_kafka_t *consumer;
    rd_kafka_t *producer;
    rd_kafka_queue_t *cq;                 /* consumer queue (main queue forwarded to it) */
    rd_kafka_queue_t *pq;                 /* producer main queue: delivery reports */
    rd_kafka_queue_t *tq[GW_TIER__COUNT]; /* per tier: its partitions' fetch queues forward here */
    gw_kq ckq, pkq, tkq[GW_TIER__COUNT];
    rd_kafka_topic_t *out_topics[4]; /* responses, chunks, usage, dlq */

    const char *tier_topics[GW_TIER__COUNT];
    gw_part_table parts[GW_TIER__COUNT];
    gw_capacity_cfg cap_cfg;
    bool tier_open[GW_TIER__COUNT];
    uint32_t in_flight[GW_TIER__COUNT];
    gw_validate_limits vlimits;
    gw_coalesce_cfg coalesce;

    /* fleet coordination; NULL when the feature is off. redis is NULL with
     * the memory backends (dev mode, state.backend = memory). Freed by
     * gw_worker_release_shared() once no job can start another operation. */
    char worker_id[64]; /* "<host>-<pid>-<random>": logged at start, prefix of every job owner */
    uint64_t job_seq;
    gw_redis *redis;
    gw_state *state;
    gw_routing *routing;
    gw_semstore *semstore;
    gw_semcache *semcache;
    gw_embedder *embedder; /* an HTTP embedder (cache.semantic.embedder = deployment id) */
    struct gw_http *embed_http;
    gw_codec *store_codec; /* stored answers: single-object framing (carries the schema) */
    gw_buf store_buf;
    uint32_t bg_pending; /* fire-and-forget state writes not yet acknowledged */

    gw_observe *obs; /* metrics, admin endpoint, usage accounting (worker/observe.h) */
    gw_job *jobs;    /* doubly linked list of live jobs */
    uint32_t job_count;
    gw_buf scratch; /* encoder output, reused */

    gw_run_state run;
    uv_signal_t sigterm, sigint;
    uv_timer_t drain_timer, tick_timer;
    int signals;
    int exit_code;
    bool fatal;
    gw_worker_counters n;
};

enum { GW_OUT_RESPONSES, GW_OUT_CHUNKS, GW_OUT_USAGE, GW_OUT_DLQ };

/* worker.c, for job.c */
void gw_worker_job_finished(gw_worker *w, gw_job *job);
int64_t gw_worker_now_ms(void);
/* Acknowledgement callbacks of fire-and-forget state writes (ud = worker). */
void gw_worker_bg_ack(void *ud, const gw_state_ack *a);
void gw_worker_bg_sem(void *ud, gw_err err);

#endif
