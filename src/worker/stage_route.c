/*
 * stage_route: routing and the failover loop of one request (docs/routing.md,
 * "How the worker pipeline calls this").
 *
 * Owns job->route.
 *
 *   ROUTE    gw_routing_route() ranks the candidates into job->route.plan;
 *            an error (E4008, E4010, E4009, E4002, E4103, E4102) is the
 *            response's error.
 *   ATTEMPT  one attempt: ask the breaker for gw_failover_current() (usually
 *            answered locally), then, when the deployment has rpm/tpm
 *            limits, reserve them (one limiter round trip, all-or-nothing),
 *            then start the provider call. on_done: gw_routing_report()
 *            (breaker outcome + latency sample), gw_failover_on_outcome(),
 *            and act: RETRY_SAME is AGAIN after the backoff timer, NEXT
 *            (failover) is AGAIN at once, DONE is ANSWERED, STOP is FAILED.
 *
 * Every step of an attempt that answers synchronously (a breaker answered
 * locally, a call that could not start) resumes the job; the run loop takes
 * that as its next turn, so a chain of failed attempts never recurses.
 *
 * A breaker denial and a deployment limit denial both count as "denied" for
 * the failover machine (the next candidate is tried at once; the attempt log
 * shows E4103 or the limiter's answer). Stream text that was not yet
 * published is dropped before a retry; once a chunk reached Kafka the
 * machine answers STOP with E4604 and the stream ends with an error chunk.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "route/registry.h"
#include "worker/pipeline.h"
#include "worker/worker_private.h"

static void attempt_admitted(gw_job *job);
static void act(gw_job *job, gw_fo_decision d);

gw_step gw_stage_route(gw_job *job)
{
    gw_routing *rt = job->w->routing;
    gw_job_route *r = &job->route;
    gw_err err = gw_routing_route(rt, &job->req, &r->plan);
    if (err != GW_OK) {
        job->ans.err_field = err == GW_E_UNKNOWN_MODEL ? "model" : NULL;
        job->w->n.errors++;
        return gw_job_fail(job, err, "error");
    }
    gw_routing_failover_init(rt, &r->fo, &r->plan);
    r->fo_ready = true;
    return GW_STEP_NEXT;
}
static void denied(gw_job *job, int64_t retry_in_ms)
{
    act(job, gw_failover_on_denied(&job->route.fo, retry_in_ms));
}

/* Deployment limits: answered through the state backend. */
static void on_dep_limit(void *ud, const gw_limit_result *res)
{
    gw_job *job = ud;
    if (job->aborted)
        return;
    if (res->err == GW_OK && res->verdict == GW_LIMIT_ALLOWED) {
        if (job->ans.dep->tpm_limit > 0 && job->route.dep_reserved_count < 8) {
            job->route.dep_reserved[job->route.dep_reserved_count] = (uint16_t)job->route.idx;
            job->route.dep_reserved_tokens[job->route.dep_reserved_count++] =
                job->route.plan.need_tokens > 0 ? job->route.plan.need_tokens : 1;
        }
        attempt_admitted(job);
        return;
    }
    if (res->err == GW_OK && res->verdict == GW_LIMIT_DENIED) {
        job->route.limit_name = res->limit_index == 0 ? "deploy_rpm" : "deploy_tpm";
        denied(job, res->retry_after_ms);
        return;
    }
    if (res->err != GW_OK && res->err != GW_E_STATE_UNAVAILABLE) {
        job->w->n.errors++;
        gw_job_resume(job, gw_job_fail(job, res->err, "error"));
        return;
    }
    /* NEVER_FITS on this deployment, or the limiter failed closed */
    denied(job, -1);
}

/* Reserve the deployment's RPM/TPM; true when nothing needs reserving. */
static bool check_dep_limits(gw_job *job, const gw_deployment *d)
{
    if (d->rpm_limit <= 0 && d->tpm_limit <= 0)
        return true;
    char *rpm = gw_arena_alloc(&job->arena, 96), *tpm = gw_arena_alloc(&job->arena, 96);
    if (rpm == NULL || tpm == NULL)
        return true;
    snprintf(rpm, 96, "deploy_rpm:%s", d->id);
    snprintf(tpm, 96, "deploy_tpm:%s", d->id);
    gw_limit_key keys[2];
    size_t n = 0;
    /* An unlimited dimension gets a bucket nothing can exhaust, so the key
     * index still names the limit (0 = rpm, 1 = tpm). */
    double huge = 1e15;
    keys[n++] = (gw_limit_key){rpm, d->rpm_limit > 0 ? (double)d->rpm_limit : huge,
                               d->rpm_limit > 0 ? (double)d->rpm_limit : huge, 1};
    double need = job->route.plan.need_tokens > 0 ? job->route.plan.need_tokens : 1;
    keys[n++] =
        (gw_limit_key){tpm, d->tpm_limit > 0 ? (double)d->tpm_limit : huge,
                       d->tpm_limit > 0 ? (double)d->tpm_limit : huge, d->tpm_limit > 0 ? need : 0};
    gw_state_limit_check(job->w->state, keys, n, on_dep_limit, job);
    return false;
}

static void on_allow(void *ud, const gw_breaker_decision *d)
{
    gw_job *job = ud;
    if (job->aborted)
        return;
    if (d->verdict == GW_VERDICT_DENIED) {
        denied(job, d->retry_in_ms);
        return;
    }
    job->route.probe = d->verdict == GW_VERDICT_PROBE;
    if (check_dep_limits(job, job->ans.dep))
        attempt_admitted(job);
}

gw_step gw_stage_attempt(gw_job *job)
{
    gw_worker *w = job->w;
    gw_job_route *r = &job->route;
    r->idx = gw_failover_current(&r->fo);
    job->ans.dep = gw_registry_get(gw_routing_registry(w->routing), r->idx);
    snprintf(r->token, sizeof r->token, "%s#%" PRId32, job->owner, gw_failover_attempts(&r->fo));
    r->probe = false;
    gw_breaker_decision d;
    if (gw_routing_allow(w->routing, r->idx, r->token, &d, on_allow, job))
        on_allow(job, &d);
    return GW_STEP_SUSPEND;
}

static void stop(gw_job *job, gw_err err)
{
    job->w->n.errors++;
    if (err == GW_E_ALL_MODELS_UNAVAILABLE) {
        gw_map m;
        if (gw_failover_details(&job->route.fo, &job->arena, &m) == GW_OK)
            for (size_t i = 0; i < m.count; i++)
                gw_job_add_detail(job, m.items[i].key, m.items[i].value);
        job->ans.err_detail = NULL; /* the last provider's message would mislead */
    }
    gw_job_resume(job, gw_job_fail(job, err, "error"));
}

static void act(gw_job *job, gw_fo_decision d)
{
    switch (d.action) {
    case GW_FO_RETRY_SAME:
        job->w->n.retries++;
        gw_job_drop_pending(job);
        gw_job_wait(job, d.delay_ms, GW_STEP_AGAIN);
        return;
    case GW_FO_NEXT:
        job->w->n.failovers++;
        gw_job_drop_pending(job);
        gw_job_resume(job, GW_STEP_AGAIN);
        return;
    case GW_FO_DONE:
        job->ans.err = GW_OK;
        job->ans.outcome = "success";
        job->w->n.succeeded++;
        gw_job_resume(job, GW_STEP_ANSWERED);
        return;
    case GW_FO_STOP:
        stop(job, d.err);
        return;
    }
}

static void copy_result(gw_job *job, const gw_provider_result *res)
{
    gw_job_answer *a = &job->ans;
    a->content = gw_arena_strndup(&job->arena, res->content ? res->content : "",
                                  res->content ? res->content_len : 0);
    a->finish_reason = gw_arena_strdup(&job->arena, res->finish_reason);
    a->tool_calls = NULL;
    a->tool_call_count = 0;
    gw_tool_call *calls = res->tool_call_count > 0
                              ? gw_arena_calloc(&job->arena, res->tool_call_count, sizeof *calls)
                              : NULL;
    for (size_t i = 0; calls != NULL && i < res->tool_call_count; i++) {
        calls[i].id = gw_arena_strdup(&job->arena, res->tool_calls[i].id);
        calls[i].name = gw_arena_strdup(&job->arena, res->tool_calls[i].name);
        calls[i].arguments = gw_arena_strdup(&job->arena, res->tool_calls[i].arguments);
        if (calls[i].id == NULL || calls[i].name == NULL || calls[i].arguments == NULL)
            calls = NULL; /* out of the job's memory: as a lost content, not a success */
    }
    if (calls != NULL) {
        a->tool_calls = calls;
        a->tool_call_count = res->tool_call_count;
    } else if (res->tool_call_count > 0) {
        a->content = NULL;
    }
    a->usage = res->usage;
    a->ttft_ms = res->ttft_ms;
    a->has_ttft = res->err == GW_OK;
    a->err_detail =
        res->error_detail != NULL ? gw_arena_strdup(&job->arena, res->error_detail) : NULL;
}

static void on_done(void *ud, const gw_provider_result *res)
{
    gw_job *job = ud;
    job->route.call = NULL;
    gw_job_trace_attempt_end(job, res);
    gw_routing_report(job->w->routing, job->route.idx, job->route.token, job->route.probe, res);
    int64_t left = -1;
    if (job->req.has_deadline) {
        left = job->req.deadline_ms - gw_worker_now_ms(job->w);
        left = left < 0 ? 0 : left;
    }
    copy_result(job, res);
    gw_attempt_outcome o = {
        /* An answer that does not fit the job's memory cap is not a success. */
        .err = res->err == GW_OK && job->ans.content == NULL ? GW_E_LIMIT : res->err,
        .http_status = res->http_status,
        .retry_after_ms = res->retry_after_ms,
        .chunk_published = job->out.chunk_seq > 0,
        .duration_ms = (int64_t)((uv_hrtime() - job->route.t0_ns) / 1000000u),
        .deadline_left_ms = left,
    };
    act(job, gw_failover_on_outcome(&job->route.fo, &o));
}

static void attempt_admitted(gw_job *job)
{
    gw_provider_cbs cbs = {
        .on_delta = gw_job_on_delta, .on_done = on_done, .on_tool_delta = gw_job_on_tool_delta};
    job->route.t0_ns = uv_hrtime();
    gw_job_trace_attempt_begin(job);
    gw_err err = gw_provider_call_start(job->w->providers, job->ans.dep, &job->req, &cbs, job,
                                        &job->route.call);
    if (err != GW_OK) {
        /* Nothing started (saturated queue, no adapter): an attempt that
         * failed at once, so the failover machine decides what is next. */
        gw_provider_result res = {.err = err, .retry_after_ms = -1, .finish_reason = "error"};
        on_done(job, &res);
    }
}
