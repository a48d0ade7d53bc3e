/*
 * job: one request, from the consumed Kafka message to the broker's
 * acknowledgement of every output it produced.
 *
 * A job moves through the pipeline of pipeline.h: one ordered table of
 * stages, each a function returning an outcome. The job's state is split by
 * owner: each part below names the one file that writes it (others may read
 * it). Stage names say what runs next, never what has finished.
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
#include "worker/job_trace.h"
#include "worker/policy.h"

/*
 * The pipeline, in order. X(name, doc). The table of functions and legal
 * moves is in pipeline.c; docs/worker.md shows it.
 */
#define GW_STAGE_MAP(X)                                                                            \
    X(DECODE, "Avro-decode the message into the arena (undecodable: dead-letter topic)")           \
    X(VALIDATE, "check limits, enums, identifiers and the deadline")                               \
    X(ADMIT, "one state call: idempotency claim, agent limits, budget, exact cache")               \
    X(SEMANTIC, "semantic cache tier after an exact miss")                                         \
    X(ROUTE, "rank the candidate deployments")                                                     \
    X(ATTEMPT, "breaker, deployment limits, provider call; retry and failover")                    \
    X(KEEP, "store the answer to keep for redeliveries before it is published")                    \
    X(PUBLISH, "produce the response, final chunk and usage event; cache and state writes")        \
    X(ACKS, "wait for the broker to acknowledge every output")                                     \
    X(DONE, "all outputs acknowledged; the offset may be committed")

typedef enum {
#define GW_STAGE_ENUM(name, doc) GW_STAGE_##name,
    GW_STAGE_MAP(GW_STAGE_ENUM)
#undef GW_STAGE_ENUM
        GW_STAGE__COUNT
} gw_stage;

const char *gw_stage_name(gw_stage s);

typedef struct gw_worker gw_worker;
struct gw_part;

/* A consumed message as the job sees it; valid only during gw_job_run(). */
typedef struct {
    const void *payload;
    size_t len;
    const void *key;
    size_t key_len;
    const char *topic;
    int32_t partition;
    int64_t offset;
    rd_kafka_headers_t *headers; /* the message's own; may be NULL */
} gw_job_msg;

/* worker.c and job.c: where the job came from. */
typedef struct {
    struct gw_part *part;
    uint32_t part_gen;
    int64_t offset;
    gw_tier tier;
    rd_kafka_headers_t *pass_headers; /* trace/correlation headers to copy on outputs */
    const gw_job_msg *msg;            /* during the first run only (DECODE) */
} gw_job_intake;

/* The answer, whoever gave it (job.c helpers: gw_job_fail, gw_job_answer_*). */
typedef struct {
    gw_err err;            /* GW_OK on success */
    const char *err_field; /* for caller errors */
    const char *err_detail;
    const char *outcome; /* usage outcome */
    gw_map err_details;  /* extra GatewayError details (attempt log, retry_after_ms) */
    const char *content;
    const char *finish_reason;
    const gw_tool_call *tool_calls; /* the answer's tool calls (arena) */
    size_t tool_call_count;
    gw_token_usage usage;
    double ttft_ms;
    bool has_ttft;
    const gw_deployment *dep; /* the deployment that answered (or last tried) */
    bool cached;              /* from the cache, or a duplicate's replay */
    bool duplicate;           /* idempotency HIT: republish the kept answer as it was */
    const char *cache_tier;
    gw_response *stored; /* decoded stored answer (cache hit or duplicate) */
    double saved_cost_usd;
    gw_map resp_metadata;
    /* A duplicate (idempotency HIT) of an answer kept with its outputs (job.c,
     * "replay"): the first owner's chunk cuts and its usage event's bytes. */
    const char *replay_plan; /* "<end>,<end>,..." of the non-final chunks; NULL none */
    const uint8_t *kept_usage;
    size_t kept_usage_len;
    bool dlq; /* went to the dead-letter topic: no answer is published */
} gw_job_answer;

/* stage_state.c: the claim (ADMIT) and the completion (KEEP, or after publishing). */
typedef struct {
    bool claimed;       /* this job holds the lease: complete it (KEEP, or after publishing) */
    bool asked;         /* a claim was sent: it may hold the lease even when the answer was
                           lost (a timeout): the completion releases it by owner */
    bool settled;       /* the lease is gone for sure (a replay, or a hit kept with it) */
    bool completed;     /* the completion call went out */
    int32_t wait_ms;    /* waited so far for another worker's lease */
    int64_t renewed_ms; /* worker clock of the claim or its last renewal */
    char fp[GW_CACHE_KEY_HEX]; /* the request's content hash, kept with its answer */
    const uint8_t *kept;       /* KEEP's bytes (in the arena), to redo the completion */
    size_t kept_len;
} gw_job_idem;

/* stage_state.c: limits and budget in ADMIT (and the reconcile on completion). */
typedef struct {
    gw_limit_key keys[2]; /* the agent's RPM / TPM keys; cost = the miss cost */
    double hit_cost[2];
    const char *names[2];
    size_t nkeys;
    int32_t reserved_tokens; /* agent TPM reservation; 0 = none */
    int64_t delayed_ms;      /* on_limit = delay: held so far */
} gw_job_admission;

/* stage_cache.c: the exact tier in ADMIT, SEMANTIC, the stores on completion. */
typedef struct {
    gw_cache_decision dec;
    char key[GW_CACHE_KEY_HEX];
    bool locked; /* this job holds the single-flight lock */
    bool asked;  /* a lock was asked for: released by owner on completion, held or not */
    bool waited; /* waited once for another owner's answer */
    bool stored; /* the completion stores the answer */
    bool has_similarity;
    double similarity;
    gw_sem_query *semq; /* in the arena; cleaned up in gw_job_free */
} gw_job_cache;

/* stage_route.c: ROUTE and ATTEMPT. */
typedef struct {
    gw_route_plan plan;
    gw_failover fo;
    bool fo_ready;
    size_t idx; /* registry index of the current attempt */
    bool probe;
    char token[128];
    uint64_t t0_ns;
    uint16_t dep_reserved[8]; /* registry indexes whose deployment TPM we reserved */
    int32_t dep_reserved_tokens[8];
    size_t dep_reserved_count;
    const char *limit_name; /* the deployment limit that denied */
    gw_provider_call *call;
} gw_job_route;

/* job.c: one streamed tool call of the answer, by index. Its arguments are
 * published in order: args_sent bytes went out, args holds the next ones. */
typedef struct {
    const char *id, *name; /* from the call's first piece (arena); NULL before */
    bool head_sent;        /* id and name went out in a chunk */
    bool whole;            /* not streamed live (no name on its first piece): final chunk only */
    gw_buf args;           /* arguments received and not yet published */
    size_t args_sent;      /* bytes of arguments published */
    uint64_t args_hash;    /* FNV-1a of those bytes (checked against the answer's) */
} gw_job_tool_piece;

enum {
    GW_JOB_MAX_TOOL_PIECES = 64,   /* calls streamed live; later ones go whole in the final chunk */
    GW_STREAM_PLAN_CAP = 16 << 10, /* chunk cuts kept with an answer (~2,000 chunks); a
                                      longer plan read back is ignored */
};

/* job.c (stream) and stage_publish.c: outputs. */
typedef struct {
    bool streaming;
    gw_buf pending;           /* delta text not yet published */
    gw_job_tool_piece *tools; /* streamed tool calls (arena, GW_JOB_MAX_TOOL_PIECES), or NULL */
    size_t tool_count;        /* indexes seen so far */
    size_t tools_pending;     /* bytes (and heads) received and not yet published */
    int32_t chunk_seq;
    /* The chunk series as published, kept with the answer so that a replay
     * publishes the same chunks byte for byte: the content bytes the
     * non-final chunks carried, their hash, and where each chunk ended. */
    size_t text_sent;
    uint64_t text_hash;
    gw_buf plan;              /* per non-final chunk "<end>[.<i>:<end>]...", comma-separated:
                                 cumulative offsets into the content and into tool call
                                 i's arguments; bounded */
    bool plan_lost;           /* over the bound, or a piece that is not the answer's */
    bool plan_ok;             /* fixed answer: content starts with what was sent */
    gw_usage_event usage;     /* fixed with the answer (gw_job_fix_answer) */
    const uint8_t *usage_rec; /* its encoded bytes (arena): kept, then published */
    size_t usage_len;
    uv_timer_t coalesce_timer;
    bool timer_init, timer_armed;
    bool answer_fixed; /* the kept record and the published one are equal */
    gw_error_rec *answer_err;
    double answer_ms;
    uint32_t acks_pending;
    uint32_t republishes;              /* outputs produced again after a failed delivery */
    int64_t retry_since_ms;            /* first failed delivery (worker clock); 0 = none yet */
    bool reply_refused;                /* the producer refused the reply_topic response at once */
    rd_kafka_resp_err_t reply_refusal; /* why (librdkafka's code) */
    bool publish_failed;
} gw_job_out;

typedef struct gw_job {
    struct gw_job *prev, *next; /* the worker's live list */
    gw_worker *w;
    gw_arena arena;
    gw_request req; /* DECODE writes it; read-only afterwards */
    int64_t t_start_ns;
    /* identity: unique per job in the fleet (worker id + sequence number);
     * the owner of the idempotency lease and of the cache lock */
    char owner[96];

    /* pipeline.c only */
    gw_stage stage;
    bool driving;          /* the run loop is on the stack */
    bool has_resume;       /* a completion arrived: its outcome is in `resumed` */
    uint8_t resumed;       /* gw_step */
    bool aborted;          /* shutdown: late completions are ignored */
    uint32_t turns;        /* stage functions run so far */
    uv_timer_t wait_timer; /* backoff, limit delay, idempotency polling */
    bool wait_init;
    uint8_t wait_outcome; /* gw_step the wait resumes with */
    int handles_open;     /* timers still to close before the job is freed */

    gw_job_intake in;
    gw_job_answer ans;
    gw_job_idem idem;
    gw_job_admission adm;
    gw_job_cache cache;
    gw_job_route route;
    gw_job_out out;
    gw_job_trace trace;     /* job_trace.c */
    struct gw_job_reg *reg; /* decode_registry.c: a message waiting for its writer schema */
} gw_job;

/* A new job for a consumed message (not yet run). NULL only when out of memory. */
gw_job *gw_job_new(gw_worker *w, struct gw_part *p, int64_t offset, gw_tier tier);
/* Run the pipeline from DECODE; msg is read during this call only. The job
 * may be finished (and freed) when this returns. */
void gw_job_run(gw_job *job, const gw_job_msg *msg);
/* A delivery report for one output of this job. */
void gw_job_on_delivery(gw_job *job, const rd_kafka_message_t *m);
/* The producer refused the resend of an output of this job (after a failed
 * delivery and its backoff): the output is replaced and its slot settled. */
void gw_job_resend_refused(gw_job *job, rd_kafka_resp_err_t err, const char *topic, const void *key,
                           size_t key_len, const void *val, size_t len);
/* One output acknowledged (ok) or given up (!ok: the offset is then never
 * committed, so the next owner of the partition serves the request again). */
void gw_job_delivered(gw_job *job, bool ok);
/* Shutdown deadline: stop the provider call; the job ends unacknowledged. */
void gw_job_abort(gw_job *job);
void gw_job_free(gw_job *job);

#endif
