/*
 * pipeline: the table of stages and the one loop that runs a job through it.
 * See pipeline.h for the outcomes and docs/worker.md for the table.
 */
#include <assert.h>
#include <stdio.h>

#include "common/log.h"
#include "worker/pipeline.h"
#include "worker/worker_private.h"

typedef struct {
    gw_step (*fn)(gw_job *job);
    gw_stage next;  /* where NEXT goes */
    bool may_stop;  /* ANSWERED and FAILED are legal here (they go to KEEP) */
    bool may_again; /* AGAIN is legal here */
} gw_stage_row;

/* The pipeline. Adding a stage: one X() line in job.h, one row here, one
 * function. */
static const gw_stage_row table[GW_STAGE__COUNT] = {
    [GW_STAGE_DECODE] = {gw_stage_decode, GW_STAGE_VALIDATE, true, false},
    [GW_STAGE_VALIDATE] = {gw_stage_validate, GW_STAGE_ADMIT, true, false},
    [GW_STAGE_ADMIT] = {gw_stage_admit, GW_STAGE_SEMANTIC, true, true},
    [GW_STAGE_SEMANTIC] = {gw_stage_semantic, GW_STAGE_ROUTE, true, false},
    [GW_STAGE_ROUTE] = {gw_stage_route, GW_STAGE_ATTEMPT, true, false},
    [GW_STAGE_ATTEMPT] = {gw_stage_attempt, GW_STAGE_KEEP, true, true},
    [GW_STAGE_KEEP] = {gw_stage_keep, GW_STAGE_PUBLISH, false, false},
    [GW_STAGE_PUBLISH] = {gw_stage_publish, GW_STAGE_ACKS, false, true},
    [GW_STAGE_ACKS] = {gw_stage_acks, GW_STAGE_DONE, false, false},
    [GW_STAGE_DONE] = {NULL, GW_STAGE_DONE, false, false},
};

static const char *const stage_names[GW_STAGE__COUNT] = {
#define GW_STAGE_NAME(name, doc) #name,
    GW_STAGE_MAP(GW_STAGE_NAME)
#undef GW_STAGE_NAME
};

const char *gw_stage_name(gw_stage s)
{
    return (unsigned)s < GW_STAGE__COUNT ? stage_names[s] : "UNKNOWN";
}

const char *gw_step_name(gw_step s)
{
    static const char *const names[] = {"NEXT", "AGAIN", "SUSPEND", "ANSWERED", "FAILED"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "UNKNOWN";
}

/* Where an outcome of stage `from` leads; GW_STAGE__COUNT when illegal. */
static gw_stage target(gw_stage from, gw_step s)
{
    const gw_stage_row *r = &table[from];
    switch (s) {
    case GW_STEP_NEXT:
        return r->next;
    case GW_STEP_AGAIN:
        return r->may_again ? from : GW_STAGE__COUNT;
    case GW_STEP_ANSWERED:
    case GW_STEP_FAILED:
        return r->may_stop ? GW_STAGE_KEEP : GW_STAGE__COUNT;
    case GW_STEP_SUSPEND:
        break;
    }
    return GW_STAGE__COUNT;
}

bool gw_stage_move_legal(gw_stage from, gw_stage to)
{
    if ((unsigned)from >= GW_STAGE__COUNT || from == GW_STAGE_DONE)
        return false;
    for (int s = GW_STEP_NEXT; s <= GW_STEP_FAILED; s++)
        if (s != GW_STEP_SUSPEND && target(from, (gw_step)s) == to)
            return true;
    return false;
}

/* The one place a job's stage changes. */
static void set_stage(gw_job *job, gw_step outcome, gw_stage to)
{
    gw_stage from = job->stage;
    if (to == GW_STAGE__COUNT) {
        /* A stage returned an outcome its row does not allow: a bug. The
         * request still gets an answer (an internal error), never a hang. */
        GW_ERROR("stage_move_illegal", "request_id", job->req.request_id, "stage",
                 gw_stage_name(from), "outcome", gw_step_name(outcome));
        assert(!"illegal stage move");
        if (from < GW_STAGE_KEEP) {
            gw_job_fail(job, GW_E_INTERNAL, "error");
            to = GW_STAGE_KEEP;
        } else {
            to = table[from].next;
        }
    }
    if (gw_log_get_level() <= GW_LOG_DEBUG)
        GW_DEBUG("stage", "request_id", job->req.request_id, "from", gw_stage_name(from), "to",
                 gw_stage_name(to), "outcome", gw_step_name(outcome));
    job->stage = to;
    gw_job_trace_stage(job, from, to);
    if (job->w->stage_hook != NULL)
        job->w->stage_hook(job->w->stage_hook_ud, job, from, to);
}

/*
 * The run loop. Each turn runs the current stage (or takes the outcome a
 * completion left while the loop was on the stack) and moves the job. It
 * returns when the stage waits for an operation or the job is done (and
 * freed by the worker).
 */
static void run(gw_job *job)
{
    job->driving = true;
    for (;;) {
        gw_step s;
        if (job->has_resume) {
            job->has_resume = false;
            s = (gw_step)job->resumed;
        } else {
            assert(job->stage < GW_STAGE_DONE);
            job->turns++;
            s = table[job->stage].fn(job);
        }
        if (s == GW_STEP_SUSPEND) {
            if (job->has_resume)
                continue; /* answered before the stage returned */
            job->driving = false;
            return;
        }
        set_stage(job, s, target(job->stage, s));
        if (job->stage == GW_STAGE_DONE) {
            job->driving = false;
            gw_worker_job_finished(job->w, job); /* frees the job */
            return;
        }
    }
}

void gw_job_resume(gw_job *job, gw_step outcome)
{
    if (job->aborted)
        return;
    assert(outcome != GW_STEP_SUSPEND);
    assert(!job->has_resume);
    job->resumed = (uint8_t)outcome;
    job->has_resume = true;
    if (!job->driving)
        run(job);
}

void gw_job_run(gw_job *job, const gw_job_msg *msg)
{
    /* DECODE never suspends: it reads the message while it is still the
     * caller's and drops the pointer. */
    job->in.msg = msg;
    job->stage = GW_STAGE_DECODE;
    run(job);
}

static void on_wait_timer(uv_timer_t *t)
{
    gw_job *job = t->data;
    gw_job_resume(job, (gw_step)job->wait_outcome);
}

void gw_job_wait(gw_job *job, int64_t delay_ms, gw_step outcome)
{
    if (!job->wait_init) {
        uv_timer_init(job->w->loop, &job->wait_timer);
        job->wait_timer.data = job;
        job->wait_init = true;
    }
    job->wait_outcome = (uint8_t)outcome;
    uv_timer_start(&job->wait_timer, on_wait_timer, delay_ms < 0 ? 0 : (uint64_t)delay_ms, 0);
}
