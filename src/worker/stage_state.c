/*
 * stage_state: the fleet-wide admission of one request (docs/state.md).
 * Owns job->idem and job->adm.
 *
 *   IDEMPOTENCY gw_state_idem_claim(request_id, job owner, lease).
 *              Claimed: go on. HIT (answered before, by any worker): replay
 *              the kept response, outcome "duplicate", no provider call.
 *              LOCKED_BY_OTHER (a live worker holds the lease): poll the claim
 *              with backoff, never longer than the remaining lease, until the
 *              answer appears (replayed) or the lease ends (taken over). The
 *              copy is never dropped and the provider is never called while
 *              another worker holds the lease.
 *   ADMISSION  agent limits and budget: ONE gw_state_limit_check with the
 *              agent's RPM (cost 1) and TPM (prompt estimate + max_tokens;
 *              all-or-nothing) and gw_state_budget_check with the estimated
 *              cost on the first routing candidate, issued together (one
 *              pipelined round trip). Deployment RPM/TPM are reserved per
 *              attempt in stage_route.c, where the deployment is known.
 *              Denied: limits.on_limit = reject answers RATE_LIMITED (E4300)
 *              with retry_after_ms and the limit's name; delay holds the job
 *              on its timer (within the deadline and limits.max_delay_ms)
 *              and checks again. NEVER_FITS: E4301; over budget: E4302.
 *   KEEP       an answer to keep (success, non-retryable error) under a
 *              claim: gw_state_idem_complete with the kept response, and only
 *              after its answer is the response published, so a response
 *              visible on Kafka always has its kept copy (no second provider
 *              call for a redelivery after a crash in between). A failed
 *              write is logged and counted, and the answer published anyway.
 *   after      gw_stage_state_finish: reconcile every reserved TPM key once
 *              (actual - reserved; a cache hit or a failure refunds it all),
 *              charge the budget with the real cost, release the idempotency
 *              claim after a retryable error (a resend is served anew).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "route/registry.h"
#include "route/routing.h"
#include "worker/pipeline.h"
#include "worker/worker_private.h"

enum { IDEM_POLL_MIN_MS = 20, IDEM_POLL_MAX_MS = 500 };

/* ---- idempotency ------------------------------------------------------------- */

/* AGAIN after a wait (the claim is asked again), or FAILED. */
static gw_step wait_for_other(gw_job *job, int64_t lease_left_ms)
{
    gw_job_idem *id = &job->idem;
    int64_t lease_ms = job->w->cfg->idempotency.lease_ms;
    if (id->wait_ms > 2 * lease_ms) {
        /* A lease that keeps being renewed for twice its length is not a
         * live worker's answer on its way: answer so the request is not
         * held forever (retryable, the client may resend). */
        job->w->n.errors++;
        return gw_job_fail(job, GW_E_STATE_UNAVAILABLE, "error");
    }
    int64_t delay = IDEM_POLL_MIN_MS << (id->wait_ms > 0 ? 2 : 0);
    delay = id->wait_ms / 2 > delay ? id->wait_ms / 2 : delay;
    delay = delay > IDEM_POLL_MAX_MS ? IDEM_POLL_MAX_MS : delay;
    if (lease_left_ms > 0 && lease_left_ms + 1 < delay)
        delay = lease_left_ms + 1;
    id->wait_ms += (int32_t)delay;
    gw_job_wait(job, delay, GW_STEP_AGAIN);
    return GW_STEP_SUSPEND;
}

static gw_step claimed(gw_job *job, const gw_cache_result *r)
{
    if (r->err != GW_OK) { /* failure_policy.idempotency = closed */
        job->w->n.errors++;
        return gw_job_fail(job, r->err, "error");
    }
    switch (r->kind) {
    case GW_CACHE_HIT:
        if (!gw_job_answer_stored(job, r->data, r->len)) {
            GW_WARN("idempotency_unreadable", "request_id", job->req.request_id);
            return GW_STEP_NEXT;
        }
        job->ans.duplicate = true;
        job->ans.outcome = "duplicate";
        job->w->n.duplicates++;
        return GW_STEP_ANSWERED;
    case GW_CACHE_LOCKED_BY_OTHER:
        return wait_for_other(job, r->lock_ttl_ms);
    default:
        job->idem.claimed = r->kind == GW_CACHE_LOCKED_BY_ME && !r->fallback;
        return GW_STEP_NEXT;
    }
}

static void on_claim(void *ud, const gw_cache_result *r)
{
    gw_job *job = ud;
    if (job->aborted)
        return;
    gw_step s = claimed(job, r);
    if (s != GW_STEP_SUSPEND) /* SUSPEND: waiting on the timer, which resumes */
        gw_job_resume(job, s);
}

gw_step gw_stage_idempotency(gw_job *job)
{
    gw_worker *w = job->w;
    if (w->state == NULL || !w->cfg->idempotency.enabled)
        return GW_STEP_NEXT;
    gw_state_idem_claim(w->state, job->req.request_id, job->owner, w->cfg->idempotency.lease_ms,
                        on_claim, job);
    return GW_STEP_SUSPEND;
}

/* ---- limits and budget ---------------------------------------------------------- */

static int32_t max_tokens_of(const gw_job *job)
{
    return job->req.max_tokens > 0 ? job->req.max_tokens : job->w->cfg->worker.default_max_tokens;
}

/* The agent's limit keys; returns how many (0..2). names[] name each key. */
static size_t agent_keys(gw_job *job, gw_limit_key keys[2], const char *names[2])
{
    int64_t rpm = 0, tpm = 0;
    const char *agent = job->req.agent_did ? job->req.agent_did : "";
    gw_config_agent_limits(job->w->cfg, agent, &rpm, &tpm);
    size_t n = 0, len = strlen(agent) + 16;
    if (rpm > 0) {
        char *scope = gw_arena_alloc(&job->arena, len);
        if (scope != NULL) {
            snprintf(scope, len, "agent_rpm:%s", agent);
            names[n] = "agent_rpm";
            keys[n++] = (gw_limit_key){scope, (double)rpm, (double)rpm, 1};
        }
    }
    if (tpm > 0) {
        char *scope = gw_arena_alloc(&job->arena, len);
        if (scope != NULL) {
            snprintf(scope, len, "agent_tpm:%s", agent);
            names[n] = "agent_tpm";
            double need = gw_estimate_prompt_tokens(&job->req) + max_tokens_of(job);
            keys[n++] = (gw_limit_key){scope, (double)tpm, (double)tpm, need};
        }
    }
    return n;
}

static bool may_delay(const gw_job *job, int64_t retry_ms)
{
    const gw_config *cfg = job->w->cfg;
    if (cfg->limits.on_limit != GW_CFG_ON_LIMIT_DELAY)
        return false;
    if (job->adm.delayed_ms + retry_ms > cfg->limits.max_delay_ms)
        return false;
    return !job->req.has_deadline || gw_worker_now_ms(job->w) + retry_ms < job->req.deadline_ms;
}

static gw_step rate_limited(gw_job *job, const gw_limit_result *r, const char *name)
{
    char *ms = gw_arena_alloc(&job->arena, 24);
    if (ms != NULL)
        snprintf(ms, 24, "%" PRId64, r->retry_after_ms);
    gw_job_add_detail(job, "retry_after_ms", ms);
    gw_job_add_detail(job, "limit", name);
    job->w->n.rate_limited++;
    return gw_job_fail(job, GW_E_RATE_LIMITED, "rate_limited");
}

/* Both answers are in: decide. AGAIN (after a delay) suspends on the timer. */
static gw_step limits_decided(gw_job *job)
{
    gw_job_admission *ad = &job->adm;
    const gw_limit_result *l = &ad->limit_res;
    const gw_budget_result *b = &ad->budget_res;
    const char *names[2] = {NULL, NULL};
    gw_limit_key keys[2];
    size_t n = agent_keys(job, keys, names);
    const char *name =
        l->limit_index >= 0 && (size_t)l->limit_index < n ? names[l->limit_index] : "agent";
    if (l->err != GW_OK) {
        job->w->n.errors++;
        return gw_job_fail(job, l->err, "error");
    }
    if (l->verdict == GW_LIMIT_NEVER_FITS) {
        gw_job_add_detail(job, "limit", name);
        return gw_job_fail(job, GW_E_RATE_LIMIT_NEVER_FITS, "rate_limited");
    }
    if (l->verdict == GW_LIMIT_DENIED) {
        if (!may_delay(job, l->retry_after_ms))
            return rate_limited(job, l, name);
        ad->delayed_ms += l->retry_after_ms;
        gw_job_wait(job, l->retry_after_ms, GW_STEP_AGAIN);
        return GW_STEP_SUSPEND;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], "agent_tpm") == 0)
            ad->reserved_tokens = (int32_t)keys[i].cost;
    if (b->err == GW_E_BUDGET_EXCEEDED) {
        gw_job_add_detail(job, "period", b->period);
        return gw_job_fail(job, GW_E_BUDGET_EXCEEDED, "budget_exceeded");
    }
    if (b->err != GW_OK) {
        job->w->n.errors++;
        return gw_job_fail(job, b->err, "error");
    }
    return GW_STEP_NEXT;
}

static void maybe_decided(gw_job *job)
{
    if (job->aborted || !job->adm.limit_answered || !job->adm.budget_answered)
        return;
    gw_step s = limits_decided(job);
    if (s != GW_STEP_SUSPEND)
        gw_job_resume(job, s);
}

static void on_limit(void *ud, const gw_limit_result *r)
{
    gw_job *job = ud;
    job->adm.limit_res = *r;
    job->adm.limit_answered = true;
    maybe_decided(job);
}

static void on_budget(void *ud, const gw_budget_result *r)
{
    gw_job *job = ud;
    job->adm.budget_res = *r;
    job->adm.budget_res.period = r->period ? gw_arena_strdup(&job->arena, r->period) : NULL;
    job->adm.budget_answered = true;
    maybe_decided(job);
}

/* The estimated cost of the request on its first routing candidate. */
static double estimate_cost(gw_job *job)
{
    gw_route_plan plan;
    if (gw_routing_route(job->w->routing, &job->req, &plan) != GW_OK || plan.count == 0)
        return 0;
    const gw_deployment *d = gw_registry_get(gw_routing_registry(job->w->routing), plan.idx[0]);
    return gw_route_estimate_cost_usd(d, plan.prompt_tokens_est, max_tokens_of(job));
}

gw_step gw_stage_admission(gw_job *job)
{
    gw_worker *w = job->w;
    gw_job_admission *ad = &job->adm;
    if (w->state == NULL)
        return GW_STEP_NEXT;
    const char *names[2];
    gw_limit_key keys[2];
    size_t n = agent_keys(job, keys, names);
    gw_budget_limits lim = {0};
    const char *agent = job->req.agent_did ? job->req.agent_did : "";
    gw_config_agent_budget(w->cfg, agent, &lim.daily_usd, &lim.monthly_usd);
    bool budget = lim.daily_usd > 0 || lim.monthly_usd > 0;
    if (n == 0 && !budget)
        return GW_STEP_NEXT;
    ad->limit_answered = n == 0;
    ad->limit_res = (gw_limit_result){.verdict = GW_LIMIT_ALLOWED, .limit_index = -1};
    ad->budget_answered = !budget;
    ad->budget_res = (gw_budget_result){0};
    /* Issued back to back: both leave in one write to Redis. */
    if (n > 0)
        gw_state_limit_check(w->state, keys, n, on_limit, job);
    if (budget)
        gw_state_budget_check(w->state, agent, estimate_cost(job), &lim, on_budget, job);
    return GW_STEP_SUSPEND;
}

/* ---- keeping the answer (KEEP) ------------------------------------------------- */

static bool keeps_answer(const gw_job *job)
{
    return job->ans.err == GW_OK || !gw_err_retryable(job->ans.err);
}

bool gw_stage_state_keeps(const gw_job *job)
{
    return job->idem.claimed && !job->ans.duplicate && job->w->state != NULL && keeps_answer(job);
}

static void on_kept(void *ud, const gw_state_ack *a)
{
    gw_job *job = ud;
    if (job->aborted)
        return;
    if (a->err != GW_OK || a->fallback) {
        /* Not kept (failed, or skipped by the open failure policy): the
         * answer is published anyway; a redelivery may call again. */
        job->w->n.idem_keep_failed++;
        GW_WARN("idempotency_keep_failed", "request_id", job->req.request_id, "error",
                a->err != GW_OK ? gw_err_name(a->err) : gw_err_name(GW_E_STATE_UNAVAILABLE),
                "fallback", a->fallback ? "true" : "false");
    }
    gw_job_resume(job, GW_STEP_NEXT);
}

/*
 * Before publishing an answer to keep under an idempotency claim: store the
 * kept response (copied into the arena: store_buf is the worker's) and wait
 * for Redis. NEXT when there is nothing to keep, or it cannot be encoded or
 * copied (the claim is then settled after publishing).
 */
gw_step gw_stage_keep(gw_job *job)
{
    gw_worker *w = job->w;
    gw_job_fix_answer(job);
    if (!gw_stage_state_keeps(job))
        return GW_STEP_NEXT;
    gw_response r;
    gw_job_make_response(job, job->out.answer_err, &r);
    gw_buf_reset(&w->store_buf);
    if (gw_codec_encode(w->store_codec, GW_REC_RESPONSE, &r, 0, GW_FRAMING_SINGLE_OBJECT,
                        &w->store_buf) != GW_OK ||
        w->store_buf.len == 0)
        return GW_STEP_NEXT;
    uint8_t *kept = gw_arena_alloc(&job->arena, w->store_buf.len);
    if (kept == NULL)
        return GW_STEP_NEXT;
    memcpy(kept, w->store_buf.data, w->store_buf.len);
    job->idem.claimed = false; /* completed here, not after publishing */
    gw_state_idem_complete(w->state, job->req.request_id, job->owner, kept, w->store_buf.len,
                           w->cfg->idempotency.result_ttl_s, on_kept, job);
    return GW_STEP_SUSPEND;
}

/* ---- after the answer ------------------------------------------------------------ */

static size_t reconcile_keys(gw_job *job, gw_limit_key *keys, size_t cap)
{
    gw_worker *w = job->w;
    bool billed = job->ans.err == GW_OK && !job->ans.cached && !job->ans.duplicate;
    double actual = billed ? job->ans.usage.total_tokens : 0;
    size_t n = 0;
    if (job->adm.reserved_tokens > 0) {
        const char *names[2];
        gw_limit_key ak[2];
        size_t an = agent_keys(job, ak, names);
        for (size_t i = 0; i < an; i++)
            if (strcmp(names[i], "agent_tpm") == 0) {
                keys[n] = ak[i];
                keys[n++].cost = actual - job->adm.reserved_tokens;
            }
    }
    const gw_registry *reg = gw_routing_registry(w->routing);
    for (size_t i = 0; i < job->route.dep_reserved_count && n < cap; i++) {
        const gw_deployment *d = gw_registry_get(reg, job->route.dep_reserved[i]);
        size_t len = strlen(d->id) + 16;
        char *scope = gw_arena_alloc(&job->arena, len);
        if (scope == NULL)
            continue;
        snprintf(scope, len, "deploy_tpm:%s", d->id);
        /* only the last attempt's deployment served the answer */
        bool served = billed && i + 1 == job->route.dep_reserved_count && d == job->ans.dep;
        keys[n++] = (gw_limit_key){scope, (double)d->tpm_limit, (double)d->tpm_limit,
                                   (served ? actual : 0) - job->route.dep_reserved_tokens[i]};
    }
    return n;
}

void gw_stage_state_finish(gw_job *job, const uint8_t *resp, size_t len)
{
    gw_worker *w = job->w;
    if (w->state == NULL)
        return;
    gw_limit_key keys[GW_STATE_MAX_LIMIT_KEYS];
    size_t n = reconcile_keys(job, keys, GW_STATE_MAX_LIMIT_KEYS);
    if (n > 0) {
        w->bg_pending++;
        gw_state_limit_reconcile(w->state, job->req.request_id, keys, n, gw_worker_bg_ack, w);
    }
    double daily = 0, monthly = 0;
    const char *agent = job->req.agent_did ? job->req.agent_did : "";
    gw_config_agent_budget(w->cfg, agent, &daily, &monthly);
    if ((daily > 0 || monthly > 0) && job->ans.err == GW_OK && !job->ans.cached &&
        !job->ans.duplicate && job->ans.dep != NULL) {
        double cost = gw_route_estimate_cost_usd(job->ans.dep, job->ans.usage.prompt_tokens,
                                                 job->ans.usage.completion_tokens);
        w->bg_pending++;
        gw_state_budget_charge(w->state, job->req.request_id, agent, cost, gw_worker_bg_ack, w);
    }
    if (!job->idem.claimed)
        return;
    job->idem.claimed = false;
    w->bg_pending++;
    /* Still claimed: a retryable error (rate limited, providers down), and a
     * resend with the same request id is served anew; or an answer to keep
     * that KEEPING could not encode or copy, kept now from the published
     * bytes when they exist. */
    if (len > 0 && keeps_answer(job))
        gw_state_idem_complete(w->state, job->req.request_id, job->owner, resp, len,
                               w->cfg->idempotency.result_ttl_s, gw_worker_bg_ack, w);
    else
        gw_state_idem_release(w->state, job->req.request_id, job->owner, gw_worker_bg_ack, w);
}
