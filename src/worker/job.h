/*
 * job: one request's state machine, from the consumed Kafka message to the
 * broker's acknowledgement of every output it produced.
 *
 * gw_job_drive() advances a job stage by stage; each stage is one function
 * that either moves on or suspends until a callback (provider, delivery
 * report, timer) drives it again. Stages still owned by later issues are
 * explicit pass-throughs that name the issue; they do nothing else.
 *
 * Memory: everything a job derives (decoded request, response, usage event)
 * lives in its arena, capped by the codec's max_alloc_bytes. The job is freed
 * in one place (gw_job_free, through the worker once DONE) and, when it owns
 * a uv timer, only after the timer's close callback.
 */
#ifndef GW_WORKER_JOB_H
#define GW_WORKER_JOB_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/err.h"
#include "model/model.h"
#include "provider/provider.h"
#include "route/failover.h"
#include "route/router.h"
#include "semantic/semcache.h"
#include "state/cache_policy.h"
#include "state/state.h"
#include "worker/policy.h"

/* X(name, doc) */
#define GW_STAGE_MAP(X)                                                                            \
    X(RECEIVED, "taken from the consumer, not yet decoded")                                        \
    X(DECODED, "Avro decoded into the arena")                                                      \
    X(VALIDATED, "limits, enums and deadline checked")                                             \
    X(DEDUPED, "idempotency claimed (or the stored answer is being replayed)")                     \
    X(ADMITTED, "agent rate limits and budget passed")                                             \
    X(CACHE_CHECKED, "response cache missed (exact, then semantic)")                               \
    X(ROUTED,                                                                                      \
      "candidates ranked; the next attempt is being admitted (breaker, deployment limits)")        \
    X(CALLING, "provider call in flight, or waiting for an admission answer or a backoff timer")   \
    X(KEEPING, "kept response stored for redeliveries before publishing")                          \
    X(PUBLISHING, "response, final chunk and usage being produced")                                \
    X(AWAITING_ACKS, "waiting for the broker to acknowledge every output")                         \
    X(DONE, "all outputs acknowledged; offset may be committed")

typedef enum {
#define GW_STAGE_ENUM(name, doc) GW_STAGE_##name,
    GW_STAGE_MAP(GW_STAGE_ENUM)
#undef GW_STAGE_ENUM
        GW_STAGE__COUNT
} gw_stage;

const char *gw_stage_name(gw_stage s);

typedef struct gw_worker gw_worker;
struct gw_part;

typedef struct gw_job {
    struct gw_job *prev, *next; /* the worker's live list */
    gw_worker *w;
    gw_stage stage;
    gw_arena arena;
    struct gw_part *part;
    uint32_t part_gen;
    int64_t offset;
    gw_tier tier;
    rd_kafka_headers_t *pass_headers; /* trace/correlation headers to copy on outputs */

    gw_request req;
    const gw_deployment *dep;
    gw_provider_call *call;
    gw_err err;            /* outcome error; GW_OK on success */
    const char *err_field; /* for caller errors */
    const char *err_detail;
    const char *outcome; /* usage outcome */

    /* provider result, copied into the arena */
    const char *content;
    const char *finish_reason;
    gw_token_usage usage;
    double ttft_ms;
    bool has_ttft;
    int64_t t_start_ns;

    /* streaming */
    bool streaming;
    gw_buf pending; /* delta text not yet published */
    int32_t chunk_seq;
    uv_timer_t coalesce_timer;
    bool timer_init, timer_armed;

    /* the answer, fixed once: the kept record and the published one are equal */
    bool answer_fixed;
    gw_error_rec *answer_err;
    double answer_ms;

    uint32_t acks_pending;
    uint32_t republishes;
    bool publish_failed;
    bool aborted; /* shutdown: late callbacks return at once */

    /* identity: unique per job in the fleet (worker id + sequence number);
     * the owner of the idempotency lease and of the cache lock */
    char owner[96];
    uv_timer_t wait_timer; /* backoff, limit delay, idempotency polling */
    bool wait_init;
    void (*on_wait)(struct gw_job *job);
    int handles_open; /* timers still to close before the job is freed */

    /* idempotency (stage_state.c) */
    bool idem_claimed;    /* this job holds the lease: complete it (KEEPING or at the end) */
    int32_t idem_wait_ms; /* waited so far for another worker's lease */

    /* limits and budget (stage_state.c) */
    int32_t reserved_tokens;  /* agent TPM reservation; 0 = none */
    uint16_t dep_reserved[8]; /* registry indexes whose deployment TPM we reserved */
    int32_t dep_reserved_tokens[8];
    size_t dep_reserved_count;
    int64_t delayed_ms; /* on_limit = delay: held so far */
    bool limit_answered, budget_answered;
    gw_limit_result limit_res;
    gw_budget_result budget_res;
    const char *limit_name; /* the limit that denied */
    int64_t retry_after_ms; /* RATE_LIMITED answer */

    /* cache (stage_cache.c) */
    gw_cache_decision cdec;
    char cache_key[GW_CACHE_KEY_HEX];
    bool cache_locked; /* this job holds the single-flight lock */
    bool cache_waited; /* waited once for another owner's answer */
    bool cached;       /* answered from the cache (or a duplicate replay) */
    const char *cache_tier;
    bool has_similarity;
    double similarity;
    double saved_cost_usd;
    gw_sem_query *semq; /* in the arena; cleaned up in gw_job_free */
    gw_map resp_metadata;
    gw_response *stored; /* decoded stored answer (cache hit or duplicate) */
    bool duplicate;      /* idempotency HIT: republish *stored as it was */

    /* routing (stage_route.c) */
    gw_route_plan plan;
    gw_failover fo;
    bool fo_ready;
    size_t att_idx;
    bool att_probe;
    char att_token[128];
    uint64_t att_t0_ns;
    gw_map err_details; /* extra GatewayError details (attempt log, retry_after_ms) */
} gw_job;

/* Takes the message's bytes (decoding, or copying to the DLQ) before return;
 * m stays the caller's. Starts driving. NULL only when out of memory. */
gw_job *gw_job_start(gw_worker *w, const rd_kafka_message_t *m, struct gw_part *p, gw_tier tier);
void gw_job_drive(gw_job *job);
/* A delivery report for an output of this job. */
void gw_job_on_delivery(gw_job *job, const rd_kafka_message_t *m);
/* Shutdown deadline: stop the provider call; the job ends unacknowledged. */
void gw_job_abort(gw_job *job);
void gw_job_free(gw_job *job);

#endif
