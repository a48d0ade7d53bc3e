/*
 * stage_cache: the response cache of one request, exact tier then semantic
 * tier (docs/state.md, docs/semantic-cache.md).
 *
 *   ADMITTED  gw_cache_policy_decide (cache.*, enable_cache, metadata
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
#include "worker/stage.h"
#include "worker/worker_private.h"

static void checked(gw_job *job)
{
    job->stage = GW_STAGE_CACHE_CHECKED;
    gw_job_drive(job);
}

static void answered(gw_job *job, const char *tier)
{
    job->cached = true;
    job->cache_tier = tier;
    job->outcome = "cached";
    job->stage = GW_STAGE_PUBLISHING;
    gw_job_drive(job);
}

static void release_lock(gw_job *job)
{
    if (!job->cache_locked)
        return;
    job->cache_locked = false;
    job->w->bg_pending++;
    gw_state_cache_unlock(job->w->state, job->cache_key, job->owner, gw_worker_bg_ack, job->w);
}

/* ---- semantic tier ---------------------------------------------------------------- */

static void on_sem_entry(void *ud, const gw_cache_result *r)
{
    gw_job *job = ud;
    if (job->aborted)
        return;
    if (r->err != GW_OK || r->kind != GW_CACHE_HIT || !gw_job_answer_stored(job, r->data, r->len)) {
        checked(job); /* the entry expired since it was indexed: a miss */
        return;
    }
    job->w->n.cache_semantic_hits++;
    job->has_similarity = true;
    char *sim = gw_arena_alloc(&job->arena, 24);
    gw_kv *kv = gw_arena_alloc(&job->arena, sizeof *kv);
    if (sim != NULL && kv != NULL) {
        snprintf(sim, 24, "%.4f", job->similarity);
        *kv = (gw_kv){"cache_similarity", sim};
        job->resp_metadata = (gw_map){kv, 1};
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
        checked(job);
        return;
    }
    job->similarity = similarity;
    gw_state_cache_get(job->w->state, exact_key, on_sem_entry, job);
}

static void semantic(gw_job *job)
{
    gw_worker *w = job->w;
    if (w->semcache == NULL || !job->cdec.lookup) {
        job->w->n.cache_misses++;
        checked(job);
        return;
    }
    job->semq = gw_arena_calloc(&job->arena, 1, sizeof *job->semq);
    const char *tenant = w->cfg->cache.shared ? "*"
                         : job->req.tenant_id ? job->req.tenant_id
                                              : job->req.agent_did;
    if (job->semq == NULL || !gw_semcache_prepare(w->semcache, &job->req, tenant, job->semq)) {
        if (job->semq != NULL)
            gw_semcache_query_cleanup(job->semq);
        job->semq = NULL;
        job->w->n.cache_misses++;
        checked(job);
        return;
    }
    gw_semcache_lookup(w->semcache, job->semq, on_sem_lookup, job);
}

/* ---- exact tier --------------------------------------------------------------------- */

static void on_exact(void *ud, const gw_cache_result *r)
{
    gw_job *job = ud;
    if (job->aborted)
        return;
    if (r->err != GW_OK) { /* failure_policy.cache = closed, or a limit */
        job->w->n.errors++;
        gw_job_fail(job, r->err, "error");
        gw_job_drive(job);
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
        checked(job);
        return;
    case GW_CACHE_LOCKED_BY_ME:
        job->cache_locked = true;
        semantic(job);
        return;
    case GW_CACHE_LOCKED_BY_OTHER:
        if (!job->cache_waited) {
            job->cache_waited = true;
            int32_t wait = job->w->cfg->cache.singleflight_wait_ms;
            gw_state_cache_wait(job->w->state, job->cache_key, job->owner, wait, wait, on_exact,
                                job);
            return;
        }
        checked(job); /* waited long enough: serve it ourselves, uncached */
        return;
    case GW_CACHE_MISS:
        semantic(job);
        return;
    case GW_CACHE_BYPASS:
        checked(job);
        return;
    }
}

gw_step gw_stage_cache(gw_job *job)
{
    gw_worker *w = job->w;
    job->stage = GW_STAGE_CACHE_CHECKED;
    if (w->state == NULL || !w->cfg->cache.enabled)
        return GW_STEP_NEXT;
    gw_err err = gw_cache_policy_decide(&w->cfg->cache, &job->req, &job->cdec);
    if (err == GW_OK && (job->cdec.lookup || job->cdec.store))
        err = gw_cache_key_compute(&job->req, w->cfg->cache.shared, job->cache_key);
    if (err != GW_OK) {
        w->n.invalid++;
        job->err_field = "metadata";
        gw_job_fail(job, err, "invalid");
        return GW_STEP_NEXT;
    }
    if (!job->cdec.lookup && !job->cdec.store)
        return GW_STEP_NEXT;
    job->stage = GW_STAGE_ADMITTED;
    int32_t lock_ms = w->cfg->cache.singleflight_wait_ms;
    if (job->cdec.store)
        gw_state_cache_get_or_lock(w->state, job->cache_key, job->owner, lock_ms, job->cdec.refresh,
                                   on_exact, job);
    else
        gw_state_cache_get(w->state, job->cache_key, on_exact, job);
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
    job->acks_pending--;
    if (!job->aborted && job->stage == GW_STAGE_AWAITING_ACKS && job->acks_pending == 0)
        gw_job_drive(job);
}

void gw_stage_cache_finish(gw_job *job, const uint8_t *resp, size_t len)
{
    gw_worker *w = job->w;
    if (w->state == NULL || job->cached || job->cache_key[0] == '\0')
        return;
    bool storable = job->cdec.store && len > 0 &&
                    gw_cache_policy_storable(&w->cfg->cache, job->err, job->finish_reason, false);
    if (!storable) {
        release_lock(job);
        return;
    }
    w->bg_pending++;
    gw_state_cache_put(w->state, job->cache_key, resp, len, job->cdec.ttl_s,
                       job->cache_locked ? job->owner : NULL, gw_worker_bg_ack, w);
    gw_observe_cache_store(w->obs, "exact");
    job->cache_locked = false;
    if (w->semcache != NULL && job->semq != NULL) {
        gw_observe_cache_store(w->obs, "semantic");
        job->acks_pending++;
        gw_semcache_store(w->semcache, job->semq, job->cache_key, job->cdec.ttl_s, on_sem_stored,
                          job);
    }
}
