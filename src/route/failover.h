/*
 * failover: the retry and failover policy of one request, as a pure state
 * machine the worker pipeline drives. No I/O, no clock, no allocation: the
 * pipeline reports what happened, the machine says what to do next.
 *
 *   gw_failover_init(&fo, opts, reg, &plan, rng);
 *   for (;;) {
 *       idx = gw_failover_current(&fo);       // deployment to try now
 *       breaker allow idx -> denied? d = gw_failover_on_denied(&fo, retry_in)
 *                         -> call the provider -> d = gw_failover_on_outcome(&fo, &o)
 *       switch (d.action) RETRY_SAME: wait d.delay_ms, NEXT: go on, DONE: success,
 *                         STOP: answer with d.err (+ gw_failover_details)
 *   }
 *
 * Decisions, for an attempt that failed with err:
 *   a chunk of this request was already published -> STOP with E4604
 *       STREAM_ERROR (the stream ends with an explicit error chunk; no
 *       silent restart on another model, whose text would not continue it);
 *   caller errors (bad request, ...)            -> STOP with err;
 *   PROVIDER_CONTEXT_LENGTH                     -> NEXT to the first later
 *       candidate with a larger context window, else STOP with E4009;
 *   PROVIDER_AUTH                               -> NEXT (another deployment
 *       has other credentials), never a retry of the same one;
 *   429 with another candidate left             -> NEXT at once;
 *   other retryable provider errors (timeouts, 5xx, resets, bad responses)
 *       -> RETRY_SAME after a capped exponential backoff with equal jitter,
 *          or after Retry-After when the provider sent one (when it exceeds
 *          max_retry_after_ms: NEXT), at most max_attempts_per_deployment
 *          attempts per deployment, then NEXT;
 *   gateway errors (NOMEM, INTERNAL, ...)       -> STOP with err;
 *   breaker denied                              -> NEXT (logged as E4103);
 *   nothing left to try                         -> STOP with E4102
 *       ALL_MODELS_UNAVAILABLE, the attempt log in the error details.
 * A retry whose delay would pass the request's deadline becomes NEXT.
 */
#ifndef GW_ROUTE_FAILOVER_H
#define GW_ROUTE_FAILOVER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/err.h"
#include "config/config.h"
#include "model/model.h"
#include "route/registry.h"
#include "route/rng.h"
#include "route/router.h"

enum { GW_FAILOVER_MAX_ATTEMPTS = GW_CFG_MAX_TOTAL_ATTEMPTS };

typedef struct {
    int32_t max_attempts_per_deployment; /* >= 1 */
    int32_t base_backoff_ms;
    int32_t max_backoff_ms;
    int32_t max_retry_after_ms; /* a longer Retry-After moves to the next candidate */
    int32_t max_total_attempts; /* <= GW_FAILOVER_MAX_ATTEMPTS */
} gw_failover_opts;

/* retry.* of cfg; gw_config_defaults() gives the documented defaults. */
void gw_failover_opts_from_config(const gw_config *cfg, gw_failover_opts *o);

typedef struct {
    gw_err err;             /* GW_OK on success */
    int http_status;        /* 0 when none */
    int64_t retry_after_ms; /* -1 when none */
    bool chunk_published;   /* a chunk of this request already reached Kafka */
    int64_t duration_ms;
    int64_t deadline_left_ms; /* -1 when the request has no deadline */
} gw_attempt_outcome;

typedef struct {
    uint16_t idx; /* registry index */
    gw_err err;
    int http_status;
    int64_t duration_ms;
} gw_attempt;

typedef enum {
    GW_FO_RETRY_SAME, /* call gw_failover_current() again after delay_ms */
    GW_FO_NEXT,       /* call gw_failover_current() (a different deployment) now */
    GW_FO_DONE,       /* success */
    GW_FO_STOP,       /* answer with err */
} gw_fo_action;

typedef struct {
    gw_fo_action action;
    int64_t delay_ms;
    gw_err err; /* STOP: the error to answer with */
} gw_fo_decision;

typedef struct {
    gw_failover_opts o;
    const gw_registry *reg;
    const gw_route_plan *plan; /* must outlive the machine */
    gw_rng *rng;
    size_t cur;     /* position in plan */
    int32_t on_cur; /* attempts on plan->idx[cur] */
    int32_t calls;  /* provider calls made */
    gw_attempt log[GW_FAILOVER_MAX_ATTEMPTS];
    size_t log_count;
    bool finished;
} gw_failover;

void gw_failover_init(gw_failover *fo, const gw_failover_opts *o, const gw_registry *reg,
                      const gw_route_plan *plan, gw_rng *rng);
/* Registry index of the deployment to call now. */
size_t gw_failover_current(const gw_failover *fo);
/* 1-based number of the attempt about to be made / just made. */
int32_t gw_failover_attempts(const gw_failover *fo);
/* Failovers so far (moves to another deployment). */
int32_t gw_failover_failovers(const gw_failover *fo);
gw_fo_decision gw_failover_on_outcome(gw_failover *fo, const gw_attempt_outcome *o);
/* The breaker denied the current deployment (no call was made). */
gw_fo_decision gw_failover_on_denied(gw_failover *fo, int64_t retry_in_ms);
/*
 * Error details for the GatewayError: "attempts" = JSON array of
 * {"deployment","code","http_status","duration_ms"} and "attempt_count".
 * Strings are allocated from a.
 */
gw_err gw_failover_details(const gw_failover *fo, gw_arena *a, gw_map *out);

#endif
