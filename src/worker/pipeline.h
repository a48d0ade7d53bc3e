/*
 * pipeline: the request pipeline as one ordered table (pipeline.c), and the
 * stage functions it runs. Internal to src/worker.
 *
 * Every stage is a function gw_step fn(gw_job *) that returns one outcome:
 *
 *   NEXT      done here: go on to the row's next stage
 *   AGAIN     run this stage again (a poll, a limiter delay, a retry or
 *             failover; usually through gw_job_wait)
 *   SUSPEND   exactly one asynchronous operation was started; its completion
 *             calls gw_job_resume(job, outcome) with this stage's outcome
 *   ANSWERED  the answer is fixed (cache hit, replay, provider answer): KEEP
 *   FAILED    job->ans.err is set (gw_job_fail): KEEP, then PUBLISH; no
 *             request is dropped or left hanging
 *
 * Only pipeline.c changes job->stage (gw_job_set_stage checks each move
 * against the table and logs it at debug level). A completion that arrives
 * while the run loop is on the stack (a synchronous answer) is taken by the
 * loop as its next turn: resuming never recurses.
 *
 *   stage          file            state it owns (gw_job)
 *   DECODE         job.c           req, in, ans.dlq
 *   VALIDATE       job.c           -
 *   ADMIT          stage_state.c   idem, adm (the exact tier: stage_cache.c, cache)
 *   SEMANTIC       stage_cache.c   cache
 *   ROUTE/ATTEMPT  stage_route.c   route
 *   KEEP           stage_state.c   idem
 *   PUBLISH/ACKS   stage_publish.c out (job.c streams chunks into out)
 *
 * The answer (ans) is written only through the job.c helpers below.
 */
#ifndef GW_WORKER_PIPELINE_H
#define GW_WORKER_PIPELINE_H

#include "codec/codec.h"
#include "worker/job.h"

typedef enum {
    GW_STEP_NEXT,
    GW_STEP_AGAIN,
    GW_STEP_SUSPEND,
    GW_STEP_ANSWERED,
    GW_STEP_FAILED,
} gw_step;

const char *gw_step_name(gw_step s);

/* pipeline.c */
/* The completion of the current stage's operation. Ignored after abort. */
void gw_job_resume(gw_job *job, gw_step outcome);
/* Resume with outcome after delay_ms on the job's wait timer (one at a time). */
void gw_job_wait(gw_job *job, int64_t delay_ms, gw_step outcome);
/* Is from -> to a move the table allows? (for tests and asserts) */
bool gw_stage_move_legal(gw_stage from, gw_stage to);

/* job.c: the answer */
/* Set the error answer; returns GW_STEP_FAILED. */
gw_step gw_job_fail(gw_job *job, gw_err err, const char *outcome);
/* Add one key/value to the error details (strings must outlive the job's outputs). */
void gw_job_add_detail(gw_job *job, const char *key, const char *value);
/* Answer from a stored InferenceResponse (cache hit or idempotent replay):
 * content, finish reason and model of the stored answer, replayed as chunks
 * when the request streams. false when the bytes do not decode. */
bool gw_job_answer_stored(gw_job *job, const uint8_t *data, size_t len);
/* job.c: the stream */
void gw_job_on_delta(void *ud, const char *text, size_t len);
/* A streamed piece of a tool call (gw_provider_cbs.on_tool_delta): coalesced
 * into chunks with the text. */
void gw_job_on_tool_delta(void *ud, const gw_tool_call_delta *d);
/* The final chunk's tool-call deltas: what of the answer's calls no chunk
 * carried yet (each call whole when none was streamed). Arena; *n = 0 and
 * NULL when nothing is left. */
gw_tool_call_delta *gw_job_tool_rest(gw_job *job, size_t *n);
/* Discard stream text not yet published (before a silent retry or failover). */
void gw_job_drop_pending(gw_job *job);
/* Publish the pending text as one chunk (ATTEMPT only). */
void gw_job_flush_chunk(gw_job *job);
/* Stop the coalescing timer. */
void gw_job_stop_coalescing(gw_job *job);

/* The stages, in table order. */
gw_step gw_stage_decode(gw_job *job);   /* job.c */
gw_step gw_stage_validate(gw_job *job); /* job.c */
gw_step gw_stage_admit(gw_job *job);    /* stage_state.c */
gw_step gw_stage_semantic(gw_job *job); /* stage_cache.c */
gw_step gw_stage_route(gw_job *job);    /* stage_route.c */
gw_step gw_stage_attempt(gw_job *job);  /* stage_route.c */
gw_step gw_stage_keep(gw_job *job);     /* stage_state.c */
gw_step gw_stage_publish(gw_job *job);  /* stage_publish.c */
gw_step gw_stage_acks(gw_job *job);     /* stage_publish.c */

/* Shared-state writes that follow a published answer (fire and forget). */
/* stage_state.c: the completion call (kept answer or released claim, cache
 * store or lock release, reconcile, budget charge) when KEEP did not send it. */
void gw_stage_state_finish(gw_job *job, const uint8_t *resp, size_t len);
/* stage_cache.c: the exact tier's part of the admission; FAILED on bad
 * cache metadata. */
gw_step gw_stage_cache_request(gw_job *job, gw_admit_req *rq);
/* stage_cache.c: the exact tier's answer: NEXT (miss, locked), ANSWERED
 * (hit), SUSPEND (waiting for another owner), FAILED. */
gw_step gw_stage_cache_admitted(gw_job *job, const gw_cache_result *r);
/* stage_cache.c: the exact tier's part of the completion (store or release). */
void gw_stage_cache_completion(gw_job *job, gw_complete_req *rq);
/* stage_cache.c: index a stored answer in the semantic tier (after the
 * completion); counted as an output of the job. */
void gw_stage_cache_finish(gw_job *job);
/* stage_state.c: renew the idempotency leases of jobs still working (from
 * the worker's tick; a third of idempotency.lease_ms apart). */
void gw_stage_state_renew_leases(gw_worker *w);
/* stage_state.c: send again the completions that did not reach Redis (from
 * the worker's tick); _clear drops what is left (shutdown). */
void gw_stage_state_redo(gw_worker *w);
void gw_stage_state_redo_clear(gw_worker *w);
/* stage_state.c: the answer KEEP stores (success or a non-retryable error
 * under a claim). */
bool gw_stage_state_keeps(const gw_job *job);

/* stage_publish.c: fix the answer once (KEEP and PUBLISH), so the kept record and the
 * published one are equal. */
void gw_job_fix_answer(gw_job *job);
/* stage_publish.c: the fixed answer's usage event, encoded into the job's
 * arena on the first call (the bytes KEEP keeps and PUBLISH then sends);
 * NULL when the answer is not fixed or it cannot be encoded. */
const uint8_t *gw_job_usage_bytes(gw_job *job, size_t *len);
/* stage_publish.c: the response record for the fixed answer. */
void gw_job_make_response(gw_job *job, gw_error_rec *e, gw_response *r);
/* stage_publish.c: produce one record (encoded with the output framing). */
gw_err gw_job_publish_record(gw_job *job, gw_record_kind kind, const void *rec, const char *topic,
                             int32_t chunk_seq);
/* stage_publish.c: produce raw bytes; the job then waits for its report. */
gw_err gw_job_produce(gw_job *job, const char *topic, const void *key, size_t key_len,
                      const void *val, size_t len, rd_kafka_headers_t *hdrs);
const char *gw_job_topic(gw_worker *w, int out);
/* stage_publish.c: the headers of one output (pass-through, request_id,
 * content-type, chunk_seq when >= 0); the producer takes ownership. */
rd_kafka_headers_t *gw_job_out_headers(gw_job *job, gw_record_kind kind, int32_t chunk_seq);

#endif
