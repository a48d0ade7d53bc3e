/*
 * stage_route: routing and the failover loop of one request (docs/routing.md,
 * "How the worker pipeline calls this").
 *
 *   CACHE_CHECKED  gw_routing_route() ranks the candidates into job->plan; an
 *                  error (E4008, E4010, E4009, E4002, E4103, E4102) is the
 *                  response's error.
 *   ROUTED         one attempt: ask the breaker for gw_failover_current()
 *                  (usually answered locally), then, when the deployment has
 *                  rpm/tpm limits, reserve them (one limiter round trip,
 *                  all-or-nothing), then start the provider call.
 *   CALLING        on_done: gw_routing_report() (breaker outcome + latency
 *                  sample), gw_failover_on_outcome(), and act: RETRY_SAME on
 *                  the wait timer, NEXT (back to ROUTED), DONE, STOP.
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
#include "worker/stage.h"
#include "worker/worker_private.h"

static void attempt_admitted(gw_job *job);
static void act(gw_job *job, gw_fo_decision d);

gw_step gw_stage_route(gw_job *job)
{
    gw_routing *rt = job->w->routing;
    gw_err err = gw_routing_route(rt, &job->req, &job->plan);
    if (err != GW_OK) {
        job->err_field = err == GW_E_UNKNOWN_MODEL ? "model" : NULL;
        job->w->n.errors++;
        gw_job_fail(job, err, "error");
        return GW_STEP_NEXT;
    }
    gw_routing_failover_init(rt, &job->fo, &job->plan);
    job->fo_ready = true;
    job->stage = GW_STAGE_ROUTED;
    return GW_STEP_NEXT;
}

static void denied(gw_job *job, int64_t retry_in_ms)
{
    act(job, gw_failover_on_denied(&job->fo, retry_in_ms));
}

/* Deployment limits: answered through the state backend. */
static void on_dep_limit(void *ud, const gw_limit_result *res)
{
    gw_job *job = ud;
    if (job->aborted)
        return;
    if (res->err == GW_OK && res->verdict == GW_LIMIT_ALLOWED) {
        if (job->dep->tpm_limit > 0 && job->dep_reserved_count < 8) {
            job->dep_reserved[job->dep_reserved_count] = (uint16_t)job->att_idx;
            job->dep_reserved_tokens[job->dep_reserved_count++] =
                job->plan.need_tokens > 0 ? job->plan.need_tokens : 1;
        }
        attempt_admitted(job);
        return;
    }
    if (res->err == GW_OK && res->verdict == GW_LIMIT_DENIED) {
        job->limit_name = res->limit_index == 0 ? "deploy_rpm" : "deploy_tpm";
        denied(job, res->retry_after_ms);
        return;
    }
    if (res->err != GW_OK && res->err != GW_E_STATE_UNAVAILABLE) {
        job->w->n.errors++;
        gw_job_fail(job, res->err, "error");
        gw_job_drive(job);
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
    double need = job->plan.need_tokens > 0 ? job->plan.need_tokens : 1;
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
    job->att_probe = d->verdict == GW_VERDICT_PROBE;
    if (check_dep_limits(job, job->dep))
        attempt_admitted(job);
}

gw_step gw_stage_attempt(gw_job *job)
{
    gw_worker *w = job->w;
    job->att_idx = gw_failover_current(&job->fo);
    job->dep = gw_registry_get(gw_routing_registry(w->routing), job->att_idx);
    snprintf(job->att_token, sizeof job->att_token, "%s#%" PRId32, job->owner,
             gw_failover_attempts(&job->fo));
    job->att_probe = false;
    job->stage = GW_STAGE_CALLING;
    gw_breaker_decision d;
    if (gw_routing_allow(w->routing, job->att_idx, job->att_token, &d, on_allow, job))
        on_allow(job, &d);
    return GW_STEP_SUSPEND;
}

static void retry_now(gw_job *job)
{
    job->stage = GW_STAGE_ROUTED;
    gw_job_drive(job);
}

static void stop(gw_job *job, gw_err err)
{
    job->w->n.errors++;
    if (err == GW_E_ALL_MODELS_UNAVAILABLE) {
        gw_map m;
        if (gw_failover_details(&job->fo, &job->arena, &m) == GW_OK)
            for (size_t i = 0; i < m.count; i++)
                gw_job_add_detail(job, m.items[i].key, m.items[i].value);
        job->err_detail = NULL; /* the last provider's message would mislead */
    }
    gw_job_fail(job, err, "error");
    gw_job_drive(job);
}

static void act(gw_job *job, gw_fo_decision d)
{
    switch (d.action) {
    case GW_FO_RETRY_SAME:
        job->w->n.retries++;
        gw_job_drop_pending(job);
        job->stage = GW_STAGE_CALLING;
        gw_job_wait(job, d.delay_ms, retry_now);
        return;
    case GW_FO_NEXT:
        job->w->n.failovers++;
        gw_job_drop_pending(job);
        retry_now(job);
        return;
    case GW_FO_DONE:
        job->err = GW_OK;
        job->outcome = "success";
        job->w->n.succeeded++;
        job->stage = GW_STAGE_PUBLISHING;
        gw_job_drive(job);
        return;
    case GW_FO_STOP:
        stop(job, d.err);
        return;
    }
}

static void copy_result(gw_job *job, const gw_provider_result *res)
{
    job->content = gw_arena_strndup(&job->arena, res->content ? res->content : "",
                                    res->content ? res->content_len : 0);
    job->finish_reason = gw_arena_strdup(&job->arena, res->finish_reason);
    job->usage = res->usage;
    job->ttft_ms = res->ttft_ms;
    job->has_ttft = res->err == GW_OK;
    job->err_detail =
        res->error_detail != NULL ? gw_arena_strdup(&job->arena, res->error_detail) : NULL;
}

static void on_done(void *ud, const gw_provider_result *res)
{
    gw_job *job = ud;
    job->call = NULL;
    gw_routing_report(job->w->routing, job->att_idx, job->att_token, job->att_probe, res);
    int64_t left = -1;
    if (job->req.has_deadline) {
        left = job->req.deadline_ms - gw_worker_now_ms();
        left = left < 0 ? 0 : left;
    }
    copy_result(job, res);
    gw_attempt_outcome o = {
        /* An answer that does not fit the job's memory cap is not a success. */
        .err = res->err == GW_OK && job->content == NULL ? GW_E_LIMIT : res->err,
        .http_status = res->http_status,
        .retry_after_ms = res->retry_after_ms,
        .chunk_published = job->chunk_seq > 0,
        .duration_ms = (int64_t)((uv_hrtime() - job->att_t0_ns) / 1000000u),
        .deadline_left_ms = left,
    };
    act(job, gw_failover_on_outcome(&job->fo, &o));
}

static void attempt_admitted(gw_job *job)
{
    gw_provider_cbs cbs = {.on_delta = gw_job_on_delta, .on_done = on_done};
    job->att_t0_ns = uv_hrtime();
    gw_err err =
        gw_provider_call_start(job->w->providers, job->dep, &job->req, &cbs, job, &job->call);
    if (err != GW_OK) {
        /* Nothing started (saturated queue, no adapter): an attempt that
         * failed at once, so the failover machine decides what is next. */
        gw_provider_result res = {.err = err, .retry_after_ms = -1, .finish_reason = "error"};
        on_done(job, &res);
    }
}
