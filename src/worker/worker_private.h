/*
 * worker_private: the gw_worker struct and what worker.c defines for the rest
 * of src/worker (job.c, the pipeline stages, observe.c, worker_shared.c).
 * worker.c keeps intake, capacity, the live job list and shutdown; the Kafka
 * clients are kafka/consumer.h and kafka/producer.h. Not for other modules.
 */
#ifndef GW_WORKER_PRIVATE_H
#define GW_WORKER_PRIVATE_H

#include <librdkafka/rdkafka.h>

#include "codec/codec.h"
#include "common/buf.h"
#include "config/config.h"
#include "loop/kq.h"
#include "kafka/consumer.h"
#include "kafka/producer.h"
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
#include "worker/worker_shared.h"

typedef enum { GW_RUN_STARTING, GW_RUN_RUNNING, GW_RUN_DRAINING, GW_RUN_DONE } gw_run_state;
typedef enum { GW_TXN_IDLE, GW_TXN_FLUSHING, GW_TXN_COMMITTING } gw_txn_phase;

typedef struct {
    uint64_t received, dlq, invalid, expired, errors, succeeded, done, publish_failed;
    uint64_t pauses, resumes, consumer_wakeups, producer_serves, consumer_resets;
    uint64_t duplicates, cache_exact_hits, cache_semantic_hits, cache_misses, rate_limited;
    uint64_t retries, failovers, bg_errors;
    uint64_t idem_keep_failed;         /* kept response not stored before publishing */
    uint64_t idem_lease_lost;          /* a renewal found the lease taken over */
    uint64_t redo_sent, redo_dropped;  /* completions sent again; given up */
    uint64_t txn_commits, txn_aborts;  /* kafka.transactional: transactions ended */
    uint64_t txn_muted;                /* outputs of a job whose partition moved on, not sent */
    uint64_t txn_us_total, txn_us_max; /* ends, from the interval's end to the outcome */
    uint64_t txn_loop_us_max;          /* longest the loop waited in a transaction's end */
} gw_worker_counters;

/*
 * Where a job's outputs go: the Kafka producer in the worker, a recording
 * sink in the unit tests. send() copies the value and key; it owns hdrs on
 * success and on failure (returns non-OK after logging, with *refusal set to
 * librdkafka's reason). Each record sent is later reported through
 * gw_job_on_delivery() or gw_job_delivered().
 */
typedef struct {
    gw_err (*send)(void *ud, const char *topic, const void *key, size_t key_len, const void *val,
                   size_t len, rd_kafka_headers_t *hdrs, gw_job *job, rd_kafka_resp_err_t *refusal);
    void *ud;
} gw_sink;

/* Wall-clock milliseconds (Unix); a stepped clock in the unit tests. */
typedef int64_t (*gw_clock_fn)(void *ud);

struct gw_worker {
    uv_loop_t *loop;
    const gw_config *cfg;
    char *bootstrap;
    gw_codec *codec;
    gw_providers *providers;
    gw_framing out_framing;

    /* The consumer owns the tier queues and the partition table
     * (gw_consumer_tier_queue, gw_consumer_parts); both clients exist from
     * gw_worker_new until gw_worker_free. */
    gw_consumer *consumer;
    gw_producer *prod;
    gw_kq ckq, pkq, tkq[GW_TIER__COUNT]; /* consumer queue, producer queue, tier queues */
    gw_sink sink;                        /* where jobs' outputs go: prod, or a test's */
    gw_clock_fn clock;
    void *clock_ud;
    /* Called on every stage move when set (the unit tests record them). */
    void (*stage_hook)(void *ud, const gw_job *job, gw_stage from, gw_stage to);
    void *stage_hook_ud;

    const char *tier_topics[GW_TIER__COUNT];
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
    /* completions that did not reach Redis, sent again (stage_state.c) */
    struct gw_redo *redo_head, *redo_tail;
    size_t redo_count, redo_bytes;
    bool redo_all_due;      /* the last one sent reached Redis: the rest go now */
    int64_t redo_warned_ms; /* last completion_dropped log line */

    gw_observe *obs;            /* metrics, admin endpoint, usage accounting (worker/observe.h) */
    struct gw_regpath *regpath; /* schema registry for unknown Confluent ids (decode_registry.c) */
    gw_job *jobs;               /* doubly linked list of live jobs */
    uint32_t job_count;
    gw_buf scratch; /* encoder output, reused */

    gw_run_state run;
    uv_signal_t sigterm, sigint;
    uv_timer_t drain_timer, tick_timer;
    int signals;
    int exit_code;
    bool fatal;
    /* Replacing the consumer's handle (worker.c): 0 no, 1 requested, 2 queue
     * adapters closing (the next tick makes the new handle). */
    int consumer_reset;
    int64_t last_fence_ms; /* when the last fenced handle was replaced; 0 never */
    /* kafka.transactional: how the open transaction ends (worker.c,
     * "transactions"). IDLE: outputs are produced into it; FLUSHING: the
     * interval ended, new outputs are held (gw_producer_hold) until every
     * output in flight is reported; COMMITTING: the offsets and the commit
     * are with the transaction thread, outputs still held. */
    gw_txn_phase txn_phase;
    struct gw_txn_thread *txn_thread; /* runs the blocking calls; NULL before start */
    int64_t txn_last_ms;              /* when the last end finished (wall clock) */
    int64_t txn_since_ms;             /* when the end under way began (FLUSHING) */
    uint64_t txn_t0_ns;               /* the same, uv_hrtime */
    bool txn_sync;                    /* inside txn_end_sync (revoke, reset, exit) */
    bool txn_orphan;                  /* the end under way is of partitions given up */
    bool txn_drop_held;               /* the held outputs' partitions are given up */
    bool txn_wait_logged;             /* txn_commit_deferred logged for this end */
    /* Transactional: jobs suspended in PUBLISH until every earlier offset of
     * their partition has published (gw_worker_publish_turn); unordered, at
     * most job_count. */
    gw_job **held;
    uint32_t held_count, held_cap;
    bool releasing; /* inside release_held (resumed jobs publish from there) */
    gw_worker_counters n;
};

enum { GW_OUT_RESPONSES, GW_OUT_CHUNKS, GW_OUT_USAGE, GW_OUT_DLQ };

/* A job reached DONE: mark its offset done (when its partition's generation
 * is still the job's), unlink and free it, take waiting work. */
void gw_worker_job_finished(gw_worker *w, gw_job *job);
int64_t gw_worker_now_ms(const gw_worker *w);
/* kafka.transactional: the job's partition was revoked or rewound since it
 * was taken, so its outputs must not be produced (the partition's next
 * reader answers it, from the idempotency store). False otherwise. */
bool gw_worker_output_muted(const gw_worker *w, const gw_job *job);
/* kafka.transactional: may the job publish now? True when it is the lowest
 * offset of its partition not yet published (it is then marked published and
 * the next such job, if held, is resumed with GW_STEP_AGAIN), when its
 * outputs are muted, or when not transactional. False: the job is held and
 * PUBLISH must return GW_STEP_SUSPEND. */
bool gw_worker_publish_turn(gw_worker *w, gw_job *job);
/* The worker without its Kafka clients (the unit tests give it a sink and a
 * clock): codec, providers, observability, shared state from the config. */
gw_err gw_worker_new_offline(uv_loop_t *loop, const gw_config *cfg, gw_clock_fn clock,
                             void *clock_ud, gw_worker **out);
/* kafka.transactional: ms the end of the transaction under way has taken
 * so far; 0 when none is under way. */
int64_t gw_worker_txn_ending_ms(const gw_worker *w);
/* A background state write was acknowledged (drain bookkeeping). */
void gw_worker_bg_settled(gw_worker *w);

#endif
