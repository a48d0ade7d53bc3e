/*
 * stage_cache: the response cache of one request, exact tier then semantic
 * tier (docs/state.md, docs/semantic-cache.md). Owns job->cache.
 *
 *   ADMIT     (stage_state.c asks; this file decides) gw_cache_policy_decide
 *             (cache.*, enable_cache, metadata cache_no_store /
 *             cache_refresh / cache_ttl_s, temperature) fills the exact
 *             tier's part of the admission: read the entry, take the
 *             single-flight lock on a miss when the answer will be stored.
 *             HIT: answer from it (cached = true, tier "exact", nothing
 *             billed, saved_cost_usd; replayed as chunks when streaming).
 *             LOCKED_BY_ME: this job calls the provider and stores.
 *             LOCKED_BY_OTHER: gw_state_cache_wait, bounded by
 *             cache.singleflight_wait_ms: HIT answers, LOCKED_BY_ME (the
 *             owner failed) takes over, a timeout goes on uncached.
 *   SEMANTIC  after an exact miss, when eligible: prepare, lookup, then the
 *             exact entry the hit names; a hit needs no single-flight lock,
 *             so ours is released; similarity goes to the response metadata
 *             ("cache_similarity") and the usage event.
 *   after     gw_stage_cache_completion: a storable answer
 *             (gw_cache_policy_storable: no error, not truncated, an allowed
 *             finish reason) is stored in the exact tier, which releases the
 *             lock, in the request's completion call; otherwise the lock is
 *             released there. gw_stage_cache_finish then indexes it in the
 *             semantic tier.
 *
 * The single-flight lock's lease is cache.singleflight_wait_ms: waiters give
 * up after that long anyway, and an owner that died frees it then.
 */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "worker/pipeline.h"
#include "worker/worker_private.h"

static void answer(gw_job *job, const char *tier)
{
    job->ans.cached = true;
    job->ans.cache_tier = tier;
    job->ans.outcome = "cached";
}

static void release_lock(gw_job *job)
{
    if (!job->cache.locked && !job->cache.asked)
        return;
    job->cache.locked = job->cache.asked = false;
    job->w->bg_pending++;
    gw_state_cache_unlock(job->w->state, job->cache.key, job->owner, gw_worker_bg_ack, job->w);
}

/* ---- exact tier (in ADMIT) ---------------------------------------------------------- */

gw_step gw_stage_cache_request(gw_job *job, gw_admit_req *rq)
{
    gw_worker *w = job->w;
    gw_job_cache *c = &job->cache;
    if (!w->cfg->cache.enabled)
        return GW_STEP_NEXT;
    gw_err err = gw_cache_policy_decide(&w->cfg->cache, &job->req, &c->dec);
    if (err == GW_OK && (c->dec.lookup || c->dec.store))
        err = gw_cache_key_compute(&job->req, w->cfg->cache.shared, c->key);
    if (err != GW_OK) {
        w->n.invalid++;
        job->ans.err_field = "metadata";
        return gw_job_fail(job, err, "invalid");
    }
    if (!c->dec.lookup && !c->dec.store)
        return GW_STEP_NEXT;
    rq->cache_key = c->key;
    rq->cache_lock = c->dec.store;
    c->asked = c->dec.store;
    rq->cache_refresh = c->dec.refresh || !c->dec.lookup;
    rq->lock_ms = w->cfg->cache.singleflight_wait_ms;
    return GW_STEP_NEXT;
}

/* A single-flight wait's answer (or a cache error). */
static void on_waited(void *ud, const gw_cache_result *r)
{
    gw_job *job = ud;
    if (job->aborted)
        return;
    if (r->err != GW_OK) {
        job->w->n.errors++;
        gw_job_resume(job, gw_job_fail(job, r->err, "error"));
        return;
    }
    if (r->kind == GW_CACHE_HIT && gw_job_answer_stored(job, r->data, r->len)) {
        job->w->n.cache_exact_hits++;
        answer(job, "exact");
        gw_job_resume(job, GW_STEP_ANSWERED);
        return;
    }
    /* LOCKED_BY_ME: the owner failed, this job serves and stores; a timeout
     * (LOCKED_BY_OTHER) goes on uncached */
    job->cache.locked = r->kind == GW_CACHE_LOCKED_BY_ME;
    gw_job_resume(job, GW_STEP_NEXT);
}

gw_step gw_stage_cache_admitted(gw_job *job, const gw_cache_result *r)
{
    gw_job_cache *c = &job->cache;
    if (r->err != GW_OK) { /* failure_policy.cache = closed, or a limit */
        job->w->n.errors++;
        return gw_job_fail(job, r->err, "error");
    }
    /* A definite answer: a hit or another's lock took no lock of ours (a
     * miss did: LOCKED_BY_ME). Only a lost or bypassed answer stays "asked". */
    if (r->kind == GW_CACHE_HIT || r->kind == GW_CACHE_LOCKED_BY_OTHER)
        c->asked = false;
    switch (r->kind) {
    case GW_CACHE_HIT:
        if (gw_job_answer_stored(job, r->data, r->len)) {
            job->w->n.cache_exact_hits++;
            answer(job, "exact");
            return GW_STEP_ANSWERED;
        }
        GW_WARN("cache_entry_unreadable", "request_id", job->req.request_id);
        return GW_STEP_NEXT;
    case GW_CACHE_LOCKED_BY_ME:
        c->locked = true;
        return GW_STEP_NEXT;
    case GW_CACHE_LOCKED_BY_OTHER: {
        c->waited = true;
        c->asked = true; /* the wait takes the lock when its owner fails */
        int32_t wait = job->w->cfg->cache.singleflight_wait_ms;
        gw_state_cache_wait(job->w->state, c->key, job->owner, wait, wait, on_waited, job);
        return GW_STEP_SUSPEND;
    }
    case GW_CACHE_MISS:
    case GW_CACHE_BYPASS:
        return GW_STEP_NEXT;
    }
    return GW_STEP_NEXT;
}

/* ---- semantic tier (SEMANTIC) -------------------------------------------------------- */

static void on_sem_entry(void *ud, const gw_cache_result *r)
{
    gw_job *job = ud;
    if (job->aborted)
        return;
    if (r->err != GW_OK || r->kind != GW_CACHE_HIT || !gw_job_answer_stored(job, r->data, r->len)) {
        gw_job_resume(job, GW_STEP_NEXT); /* the entry expired since it was indexed: a miss */
        return;
    }
    job->w->n.cache_semantic_hits++;
    job->cache.has_similarity = true;
    char *sim = gw_arena_alloc(&job->arena, 24);
    gw_kv *kv = gw_arena_alloc(&job->arena, sizeof *kv);
    if (sim != NULL && kv != NULL) {
        snprintf(sim, 24, "%.4f", job->cache.similarity);
        *kv = (gw_kv){"cache_similarity", sim};
        job->ans.resp_metadata = (gw_map){kv, 1};
    }
    release_lock(job);
    answer(job, "semantic");
    gw_job_resume(job, GW_STEP_ANSWERED);
}

static void on_sem_lookup(void *ud, gw_err err, const char *exact_key, double similarity)
{
    gw_job *job = ud;
    if (job->aborted)
        return;
    if (err != GW_OK || exact_key == NULL) {
        job->w->n.cache_misses++;
        gw_job_resume(job, GW_STEP_NEXT);
        return;
    }
    job->cache.similarity = similarity;
    gw_state_cache_get(job->w->state, exact_key, on_sem_entry, job);
}

gw_step gw_stage_semantic(gw_job *job)
{
    gw_worker *w = job->w;
    gw_job_cache *c = &job->cache;
    if (w->state == NULL || c->key[0] == '\0')
        return GW_STEP_NEXT; /* no cache for this request */
    if (w->semcache == NULL || !c->dec.lookup) {
        w->n.cache_misses++;
        return GW_STEP_NEXT;
    }
    c->semq = gw_arena_calloc(&job->arena, 1, sizeof *c->semq);
    const char *tenant = w->cfg->cache.shared ? "*"
                         : job->req.tenant_id ? job->req.tenant_id
                                              : job->req.agent_did;
    if (c->semq == NULL || !gw_semcache_prepare(w->semcache, &job->req, tenant, c->semq)) {
        if (c->semq != NULL)
            gw_semcache_query_cleanup(c->semq);
        c->semq = NULL;
        w->n.cache_misses++;
        return GW_STEP_NEXT;
    }
    gw_semcache_lookup(w->semcache, c->semq, on_sem_lookup, job);
    return GW_STEP_SUSPEND;
}

/* ---- after the answer -------------------------------------------------------------- */

static bool storable(const gw_job *job)
{
    return job->cache.dec.store && !job->ans.cached &&
           gw_cache_policy_storable(&job->w->cfg->cache, job->ans.err, job->ans.finish_reason,
                                    false);
}

void gw_stage_cache_completion(gw_job *job, gw_complete_req *rq)
{
    gw_job_cache *c = &job->cache;
    if (c->key[0] == '\0' || job->ans.cached)
        goto unlock;
    if (rq->len > 0 && storable(job)) {
        rq->cache_key = c->key;
        rq->cache = GW_DONE_STORE;
        rq->cache_ttl_s = c->dec.ttl_s;
        c->stored = true;
        c->locked = c->asked = false;
        gw_observe_cache_store(job->w->obs, "exact");
        return;
    }
unlock:
    /* held, or perhaps (a lock whose answer was lost to a timeout): released
     * by owner either way */
    if (c->locked || c->asked) {
        rq->cache_key = c->key;
        rq->cache = GW_DONE_RELEASE;
        c->locked = c->asked = false;
    }
}

static void on_sem_stored(void *ud, gw_err err)
{
    gw_job *job = ud;
    if (err != GW_OK && err != GW_E_SHUTTING_DOWN)
        GW_WARN("semantic_store_failed", "request_id", job->req.request_id, "error",
                gw_err_name(err));
    /* counted as an output: the job (and its query) lives until this returns */
    gw_job_delivered(job, true);
}

void gw_stage_cache_finish(gw_job *job)
{
    gw_worker *w = job->w;
    gw_job_cache *c = &job->cache;
    if (!c->stored || w->semcache == NULL || c->semq == NULL)
        return;
    gw_observe_cache_store(w->obs, "semantic");
    job->out.acks_pending++;
    gw_semcache_store(w->semcache, c->semq, c->key, c->dec.ttl_s, on_sem_stored, job);
}
