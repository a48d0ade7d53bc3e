/*
 * stage: the pipeline stages between validation and publishing, split by
 * concern. Internal to src/worker (job.c drives them).
 *
 *   stage_state.c  VALIDATED -> DEDUPED   idempotency claim (or replay of the kept answer)
 *                  DEDUPED   -> ADMITTED  agent RPM/TPM limits and budget, one pipelined trip
 *   stage_cache.c  ADMITTED  -> CACHE_CHECKED  exact tier with single-flight, then semantic
 *   stage_route.c  CACHE_CHECKED -> ROUTED     ranking (gw_routing_route)
 *                  ROUTED -> CALLING -> PUBLISHING  per attempt: breaker, deployment
 *                                                   limits, provider call, failover
 *   stage_state.c  KEEPING -> PUBLISHING  the kept response stored (idempotency
 *                                         complete) before the answer is published
 *
 * Rules every stage follows:
 *   - a stage either moves job->stage on and returns GW_STEP_NEXT, or starts
 *     exactly one asynchronous operation and returns GW_STEP_SUSPEND; that
 *     operation's callback moves the stage on and calls gw_job_drive();
 *   - every error path ends in gw_job_fail() (an error response and a usage
 *     event), so no request is dropped or left hanging;
 *   - a callback that finds job->aborted set (shutdown) returns at once.
 */
#ifndef GW_WORKER_STAGE_H
#define GW_WORKER_STAGE_H

#include "worker/job.h"

typedef enum { GW_STEP_NEXT, GW_STEP_SUSPEND } gw_step;

/* job.c */
void gw_job_fail(gw_job *job, gw_err err, const char *outcome);
/* Run fn(job) after delay_ms on the job's wait timer (one wait at a time). */
void gw_job_wait(gw_job *job, int64_t delay_ms, void (*fn)(gw_job *job));
void gw_job_on_delta(void *ud, const char *text, size_t len);
/* Discard stream text not yet published (before a silent retry or failover). */
void gw_job_drop_pending(gw_job *job);
/* Add one key/value to the error details (strings must outlive the job's outputs). */
void gw_job_add_detail(gw_job *job, const char *key, const char *value);
/* Answer from a stored InferenceResponse (cache hit or idempotent replay):
 * content, finish reason and model of the stored answer, replayed as chunks
 * when the request streams. false when the bytes do not decode. */
bool gw_job_answer_stored(gw_job *job, const uint8_t *data, size_t len);

/* stage_state.c */
gw_step gw_stage_idempotency(gw_job *job);
gw_step gw_stage_limits(gw_job *job);
/* True when the job holds the idempotency claim and its answer is one to keep
 * (success or a non-retryable error): it goes through KEEPING first. */
bool gw_stage_state_keeps(const gw_job *job);
/* KEEPING: complete the claim with resp (the kept response; must live as long
 * as the job) and move on to PUBLISHING when Redis answered, whatever the
 * answer (a failed write is logged and counted; the answer is never held). */
gw_step gw_stage_state_keep(gw_job *job, const uint8_t *resp, size_t len);
/* After the answer was published: release the idempotency claim if it was not
 * completed in KEEPING (complete it only when KEEPING could not run), reconcile
 * reserved tokens, charge the budget. Fire and forget (counted in
 * w->bg_pending). */
void gw_stage_state_finish(gw_job *job, const uint8_t *resp, size_t len);

/* stage_cache.c */
gw_step gw_stage_cache(gw_job *job);
/* Store a storable answer in both tiers, or release the single-flight lock. */
void gw_stage_cache_finish(gw_job *job, const uint8_t *resp, size_t len);

/* stage_route.c */
gw_step gw_stage_route(gw_job *job);
gw_step gw_stage_attempt(gw_job *job);

#endif
