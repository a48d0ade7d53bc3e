/*
 * stage_cache: the response cache of one request, exact tier then semantic
 * tier (docs/state.md, docs/semantic-cache.md). Owns job->cache.
 *
 *   CACHE     gw_cache_policy_decide (cache.*, enable_cache, metadata
 *             cache_no_store / cache_refresh / cache_ttl_s, temperature).
 *             Exact: gw_state_cache_get_or_lock(key, job owner, lock) in one
 *             round trip (a plain get when the answer will not be stored).
 *             HIT: answer from it (cached = true, tier "exact", nothing
 *             billed, saved_cost_usd; replayed as chunks when streaming).
 *             LOCKED_BY_ME: this job calls the provider and stores.
 *             LOCKED_BY_OTHER: gw_state_cache_wait, bounded by
 *             cache.singleflight_wait_ms: HIT answers, LOCKED_BY_ME (the
 *             owner failed) takes over, a timeout goes on uncached.
 *             Semantic (after an exact miss, when eligible): prepare, lookup,
 *             then the exact entry the hit names; a hit needs no
 *             single-flight lock, so ours is released; similarity goes to
 *             the response metadata ("cache_similarity") and the usage event.
 *   after     gw_stage_cache_finish: a storable answer (gw_cache_policy_storable:
 *             no error, not truncated, an allowed finish reason) is put in
 *             the exact tier, which releases the lock, then indexed in the
 *             semantic tier; otherwise the lock is released.
 *
 * The single-flight lock's lease is cache.singleflight_wait_ms: waiters give
 * up after that long anyway, and an owner that died frees it then.
 */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "worker/pipeline.h"
#include "worker/worker_private.h"

/* The cache did not answer: on to routing. */
static void missed(gw_job *job)
{
    gw_job_resume(job, GW_STEP_NEXT);
}

static void answered(gw_job *job, const char *tier)
{
    job->ans.cached = true;
    job->ans.cache_tier = tier;
    job->ans.outcome = "cached";
    gw_job_resume(job, GW_STEP_ANSWERED);
}

static void release_lock(gw_job *job)
{
    if (!job->cache.locked)
        return;
    job->cache.locked = false;
    job->w->bg_pending++;
    gw_state_cache_unlock(job->w->state, job->cache.key, job->owner, gw_worker_bg_ack, job->w);
}

/* ---- semantic tier ---------------------------------------------------------------- */

static void on_sem_entry(void *ud, const gw_cache_result *r)
{
    gw_job *job = ud;
    if (job->aborted)
        return;
    if (r->err != GW_OK || r->kind != GW_CACHE_HIT || !gw_job_answer_stored(job, r->data, r->len)) {
        missed(job); /* the entry expired since it was indexed: a miss */
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
    answered(job, "semantic");
}

static void on_sem_lookup(void *ud, gw_err err, const char *exact_key, double similarity)
{
    gw_job *job = ud;
    if (job->aborted)
        return;
    if (err != GW_OK || exact_key == NULL) {
        job->w->n.cache_misses++;
        missed(job);
        return;
    }
    job->cache.similarity = similarity;
    gw_state_cache_get(job->w->state, exact_key, on_sem_entry, job);
}

static void semantic(gw_job *job)
{
    gw_worker *w = job->w;
    if (w->semcache == NULL || !job->cache.dec.lookup) {
        job->w->n.cache_misses++;
        missed(job);
        return;
    }
    job->cache.semq = gw_arena_calloc(&job->arena, 1, sizeof *job->cache.semq);
    const char *tenant = w->cfg->cache.shared ? "*"
                         : job->req.tenant_id ? job->req.tenant_id
                                              : job->req.agent_did;
    if (job->cache.semq == NULL ||
        !gw_semcache_prepare(w->semcache, &job->req, tenant, job->cache.semq)) {
        if (job->cache.semq != NULL)
            gw_semcache_query_cleanup(job->cache.semq);
        job->cache.semq = NULL;
        job->w->n.cache_misses++;
        missed(job);
        return;
    }
    gw_semcache_lookup(w->semcache, job->cache.semq, on_sem_lookup, job);
}

/* ---- exact tier --------------------------------------------------------------------- */

static void on_exact(void *ud, const gw_cache_result *r)
{
    gw_job *job = ud;
    if (job->aborted)
        return;
    if (r->err != GW_OK) { /* failure_policy.cache = closed, or a limit */
        job->w->n.errors++;
        gw_job_resume(job, gw_job_fail(job, r->err, "error"));
        return;
    }
    switch (r->kind) {
    case GW_CACHE_HIT:
        if (gw_job_answer_stored(job, r->data, r->len)) {
            job->w->n.cache_exact_hits++;
            release_lock(job);
            answered(job, "exact");
            return;
        }
        GW_WARN("cache_entry_unreadable", "request_id", job->req.request_id);
        missed(job);
        return;
    case GW_CACHE_LOCKED_BY_ME:
        job->cache.locked = true;
        semantic(job);
        return;
    case GW_CACHE_LOCKED_BY_OTHER:
        if (!job->cache.waited) {
            job->cache.waited = true;
            int32_t wait = job->w->cfg->cache.singleflight_wait_ms;
            gw_state_cache_wait(job->w->state, job->cache.key, job->owner, wait, wait, on_exact,
                                job);
            return;
        }
        missed(job); /* waited long enough: serve it ourselves, uncached */
        return;
    case GW_CACHE_MISS:
        semantic(job);
        return;
    case GW_CACHE_BYPASS:
        missed(job);
        return;
    }
}

gw_step gw_stage_cache(gw_job *job)
{
    gw_worker *w = job->w;
    gw_job_cache *c = &job->cache;
    if (w->state == NULL || !w->cfg->cache.enabled)
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
    int32_t lock_ms = w->cfg->cache.singleflight_wait_ms;
    if (c->dec.store)
        gw_state_cache_get_or_lock(w->state, c->key, job->owner, lock_ms, c->dec.refresh, on_exact,
                                   job);
    else
        gw_state_cache_get(w->state, c->key, on_exact, job);
    return GW_STEP_SUSPEND;
}

/* ---- after the answer ------------------------------------------------------------------ */

static void on_sem_stored(void *ud, gw_err err)
{
    gw_job *job = ud;
    if (err != GW_OK && err != GW_E_SHUTTING_DOWN)
        GW_WARN("semantic_store_failed", "request_id", job->req.request_id, "error",
                gw_err_name(err));
    /* counted as an output: the job (and its query) lives until this returns */
    gw_job_delivered(job, true);
}

void gw_stage_cache_finish(gw_job *job, const uint8_t *resp, size_t len)
{
    gw_worker *w = job->w;
    if (w->state == NULL || job->ans.cached || job->cache.key[0] == '\0')
        return;
    bool storable =
        job->cache.dec.store && len > 0 &&
        gw_cache_policy_storable(&w->cfg->cache, job->ans.err, job->ans.finish_reason, false);
    if (!storable) {
        release_lock(job);
        return;
    }
    w->bg_pending++;
    gw_state_cache_put(w->state, job->cache.key, resp, len, job->cache.dec.ttl_s,
                       job->cache.locked ? job->owner : NULL, gw_worker_bg_ack, w);
    gw_observe_cache_store(w->obs, "exact");
    job->cache.locked = false;
    if (w->semcache != NULL && job->cache.semq != NULL) {
        gw_observe_cache_store(w->obs, "semantic");
        job->out.acks_pending++;
        gw_semcache_store(w->semcache, job->cache.semq, job->cache.key, job->cache.dec.ttl_s,
                          on_sem_stored, job);
    }
}
