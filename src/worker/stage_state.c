/*
 * stage_state: the fleet-wide admission and completion of one request
 * (docs/state.md). Owns job->idem and job->adm.
 *
 *   ADMIT   ONE gw_state_admit call (one Lua script with Redis: one round
 *           trip before the provider call) with every decision that must be
 *           atomic for the request:
 *             idempotency: the claim on request_id (job owner, lease). HIT
 *               (answered before, by any worker): replay the kept response,
 *               outcome "duplicate", no provider call. LOCKED_BY_OTHER (a
 *               live worker holds the lease): the whole admission is asked
 *               again with backoff, never longer than the remaining lease,
 *               until the answer appears (replayed) or the lease ends (taken
 *               over);
 *             agent limits: RPM (cost 1) and TPM (prompt estimate +
 *               max_tokens on a miss, nothing on a cache hit; all or
 *               nothing). Denied: limits.on_limit = reject answers
 *               RATE_LIMITED (E4300) with retry_after_ms and the limit's
 *               name; delay holds the job on its timer (within the deadline
 *               and limits.max_delay_ms) and admits again. NEVER_FITS: E4301;
 *             budget, on a miss, with the cost estimated on the first
 *               routing candidate: over budget E4302;
 *             exact cache (stage_cache.c reads the decision): a hit answers,
 *               and is kept as the request's idempotency answer in the same
 *               call; a miss takes the single-flight lock.
 *           Deployment RPM/TPM are reserved per attempt in stage_route.c.
 *   KEEP    an answer to keep (success, non-retryable error) under a claim:
 *           ONE gw_state_complete call with every write that follows the
 *           answer (kept response, cache entry, lock and lease released,
 *           tokens reconciled, budget charged), awaited before the answer is
 *           published, so a response visible on Kafka always has its kept
 *           copy. A failed write is logged and counted, and the answer
 *           published anyway.
 *   after   gw_stage_state_finish: when KEEP did not complete (no claim, or
 *           a retryable error that releases it), the same completion call,
 *           not awaited.
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

/* ---- the request's keys ----------------------------------------------------------- */

static int32_t max_tokens_of(const gw_job *job)
{
    return job->req.max_tokens > 0 ? job->req.max_tokens : job->w->cfg->worker.default_max_tokens;
}

/* The agent's limit keys (cost = the miss cost) and what a cache hit costs;
 * returns how many (0..2). names[] name each key. */
static size_t agent_keys(gw_job *job, gw_limit_key keys[2], double hit_cost[2],
                         const char *names[2])
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
            hit_cost[n] = 1;
            keys[n++] = (gw_limit_key){scope, (double)rpm, (double)rpm, 1};
        }
    }
    if (tpm > 0) {
        char *scope = gw_arena_alloc(&job->arena, len);
        if (scope != NULL) {
            snprintf(scope, len, "agent_tpm:%s", agent);
            names[n] = "agent_tpm";
            hit_cost[n] = 0; /* a cached answer spends no tokens */
            double need = gw_estimate_prompt_tokens(&job->req) + max_tokens_of(job);
            keys[n++] = (gw_limit_key){scope, (double)tpm, (double)tpm, need};
        }
    }
    return n;
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

/* ---- ADMIT: the answer, decision by decision -------------------------------------- */

/* AGAIN after a wait (the admission is asked again), or FAILED. */
static gw_step wait_for_other(gw_job *job, int64_t lease_left_ms)
{
    gw_job_idem *id = &job->idem;
    if (id->wait_ms > job->w->cfg->idempotency.max_wait_ms) {
        /* Leases are renewed while their call runs, so a live owner can
         * hold one for long: past idempotency.max_wait_ms, answer so the
         * copy is not held forever (retryable, the client may resend). */
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

/*
 * A kept answer is "<fingerprint>[#c<plan>][#u<usage hex>]|<response>": the
 * request's content hash, then (answers kept with their outputs) the cuts of
 * the chunks first published and the usage event first published, then the
 * response. Answers kept before fingerprints have no prefix. The prefix is
 * text without '|' (it travels as a string to the state backends).
 */
enum { KEPT_PREFIX_MAX = 64 << 10, KEPT_USAGE_MAX = 8 << 10 };

static int hexval(uint8_t c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A kept usage event's bytes, from its hex: the bytes and their length, or
 * the reason they are unusable. "no memory" is not the stored value's fault
 * and comes back as NULL bytes with no reason. The bytes were published in
 * the output framing of the worker that kept them, so any framing is read;
 * a Confluent id this worker did not register is read as the current
 * UsageEvent version (the one every worker of this build registers). */
static const char *kept_usage_bytes(gw_job *job, const uint8_t *hex, size_t n, uint8_t **out,
                                    size_t *out_len)
{
    *out = NULL;
    if (n > 2 * KEPT_USAGE_MAX)
        return "too_large";
    if (n == 0)
        return "undecodable";
    if (n % 2 != 0)
        return "odd_length";
    size_t len = n / 2;
    uint8_t *u = gw_arena_alloc(&job->arena, len);
    if (u == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return "bad_hex";
        u[i] = (uint8_t)(hi << 4 | lo);
    }
    gw_usage_event ev;
    const gw_codec *c = job->w->codec;
    gw_err err = gw_codec_decode_as(c, GW_FRAMING_AUTO, GW_REC_USAGE, u, len, &job->arena, &ev);
    if (err == GW_E_CODEC_UNKNOWN_SCHEMA && u[0] == 0x00 && len > 5)
        err =
            gw_codec_decode_as(c, GW_FRAMING_BARE, GW_REC_USAGE, u + 5, len - 5, &job->arena, &ev);
    if (err == GW_E_NOMEM)
        return NULL;
    if (err == GW_E_CODEC_UNKNOWN_SCHEMA)
        return "unknown_schema"; /* a newer build's version, say: unverifiable */
    if (err != GW_OK)
        return "undecodable";
    if (ev.request_id == NULL || job->req.request_id == NULL ||
        strcmp(ev.request_id, job->req.request_id) != 0)
        return "other_request";
    *out = u;
    *out_len = len;
    return NULL;
}

/*
 * The extras between the fingerprint and '|': #c<plan> and #u<hex>.
 *
 * A usage event that cannot be read back is logged, counted
 * (modelgw_kept_usage_corrupt_total) and not replayed: the duplicate then
 * publishes only its own event (outcome duplicate, nothing billed), as for
 * an answer kept without one. For billing that is the safer way to be
 * wrong: the stored bytes are the only copy of the event with its event_id,
 * so an event made up again would carry a new event_id and bill the
 * provider call twice whenever the first owner did publish it (the usual
 * case), and bytes that do not decode, or name another request, are no
 * event a consumer can de-duplicate or trust. The loss, one event in the
 * rare case that its owner died before publishing, is visible in the metric.
 */
static void kept_extras(gw_job *job, const uint8_t *p, size_t n)
{
    while (n > 1 && p[0] == '#') {
        size_t k = 1;
        while (k < n && p[k] != '#')
            k++;
        if (p[1] == 'c' && k - 2 <= GW_STREAM_PLAN_CAP) {
            job->ans.replay_plan = gw_arena_strndup(&job->arena, (const char *)p + 2, k - 2);
        } else if (p[1] == 'u') {
            uint8_t *u = NULL;
            size_t len = 0;
            const char *why = kept_usage_bytes(job, p + 2, k - 2, &u, &len);
            if (why != NULL) {
                GW_WARN("kept_usage_corrupt", "request_id", job->req.request_id, "reason", why);
                gw_observe_kept_usage_corrupt(job->w->obs, why);
            } else if (u != NULL) {
                job->ans.kept_usage = u;
                job->ans.kept_usage_len = len;
            }
        }
        p += k;
        n -= k;
    }
}

/* Points *data / *len at the response and returns false when the
 * fingerprint is another request's: the request id was reused for other
 * content. */
static bool same_request(gw_job *job, const uint8_t **data, size_t *len)
{
    size_t n = GW_CACHE_KEY_HEX - 1;
    if (*len <= n || ((*data)[n] != '|' && (*data)[n] != '#'))
        return true; /* no fingerprint: nothing to compare */
    for (size_t i = 0; i < n; i++)
        if (hexval((*data)[i]) < 0)
            return true; /* not a fingerprint: an answer of its own */
    size_t bar = n;
    while (bar < *len && bar < KEPT_PREFIX_MAX && (*data)[bar] != '|')
        bar++;
    if (bar >= *len || (*data)[bar] != '|')
        return true; /* no end of prefix: let the decoder name it */
    bool same = job->idem.fp[0] == '\0' || memcmp(*data, job->idem.fp, n) == 0;
    if (same)
        kept_extras(job, *data + n, bar - n);
    *data += bar + 1;
    *len -= bar + 1;
    return same;
}

/*
 * The prefix this job's answer is kept with (see above): the fingerprint,
 * and for an answer of its own the chunk cuts (when the chunks carried the
 * answer's text) and the usage event's bytes. NULL = the bare fingerprint.
 */
static const char *kept_prefix(gw_job *job)
{
    const gw_job_out *o = &job->out;
    size_t n = GW_CACHE_KEY_HEX - 1;
    if (job->idem.fp[0] == '\0' || job->ans.duplicate)
        return NULL;
    bool plan = o->plan_ok && o->plan.len > 0;
    size_t usage_len = 0;
    const uint8_t *usage_rec = gw_job_usage_bytes(job, &usage_len);
    bool usage = usage_rec != NULL && usage_len <= KEPT_USAGE_MAX;
    if (!plan && !usage)
        return NULL;
    size_t cap = n + (plan ? o->plan.len + 2 : 0) + (usage ? 2 * usage_len + 2 : 0) + 1;
    char *s = gw_arena_alloc(&job->arena, cap);
    if (s == NULL)
        return NULL;
    memcpy(s, job->idem.fp, n);
    size_t at = n;
    if (plan) {
        memcpy(s + at, "#c", 2);
        memcpy(s + at + 2, o->plan.data, o->plan.len);
        at += 2 + o->plan.len;
    }
    if (usage) {
        static const char hex[] = "0123456789abcdef";
        memcpy(s + at, "#u", 2);
        at += 2;
        for (size_t i = 0; i < usage_len; i++) {
            s[at++] = hex[usage_rec[i] >> 4];
            s[at++] = hex[usage_rec[i] & 15];
        }
    }
    s[at] = '\0';
    return s;
}

/* NEXT: claimed (or not asked); SUSPEND: waiting; ANSWERED; FAILED. */
static gw_step idempotency_decided(gw_job *job, const gw_cache_result *r)
{
    if (r->err != GW_OK) { /* failure_policy.idempotency = closed */
        job->w->n.errors++;
        return gw_job_fail(job, r->err, "error");
    }
    switch (r->kind) {
    case GW_CACHE_HIT: {
        job->idem.settled = true; /* answered before: no lease was taken */
        const uint8_t *data = r->data;
        size_t len = r->len;
        if (!same_request(job, &data, &len)) {
            /* never another request's answer: a named error instead */
            job->w->n.invalid++;
            job->ans.err_field = "request_id";
            return gw_job_fail(job, GW_E_REQUEST_ID_REUSED, "invalid");
        }
        if (!gw_job_answer_stored(job, data, len)) {
            GW_WARN("idempotency_unreadable", "request_id", job->req.request_id);
            job->w->n.errors++;
            return gw_job_fail(job, GW_E_INTERNAL, "error");
        }
        job->ans.duplicate = true;
        job->ans.outcome = "duplicate";
        job->w->n.duplicates++;
        return GW_STEP_ANSWERED;
    }
    case GW_CACHE_LOCKED_BY_OTHER:
        return wait_for_other(job, r->lock_ttl_ms);
    case GW_CACHE_LOCKED_BY_ME:
        job->idem.claimed = !r->fallback;
        job->idem.renewed_ms = gw_worker_now_ms(job->w);
        return GW_STEP_NEXT;
    default:
        return GW_STEP_NEXT;
    }
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

/* NEXT: admitted; SUSPEND: held on the timer (AGAIN later); FAILED. */
static gw_step limits_decided(gw_job *job, const gw_admit_result *res)
{
    gw_job_admission *ad = &job->adm;
    const gw_limit_result *l = &res->limit;
    const char *name = l->limit_index >= 0 && (size_t)l->limit_index < ad->nkeys
                           ? ad->names[l->limit_index]
                           : "agent";
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
    bool hit = res->cache.kind == GW_CACHE_HIT;
    for (size_t i = 0; i < ad->nkeys; i++)
        if (strcmp(ad->names[i], "agent_tpm") == 0)
            ad->reserved_tokens = hit ? 0 : (int32_t)ad->keys[i].cost;
    const gw_budget_result *b = &res->budget;
    if (b->err == GW_E_BUDGET_EXCEEDED) {
        gw_job_add_detail(job, "period",
                          b->period ? gw_arena_strdup(&job->arena, b->period) : "day");
        return gw_job_fail(job, GW_E_BUDGET_EXCEEDED, "budget_exceeded");
    }
    if (b->err != GW_OK) {
        job->w->n.errors++;
        return gw_job_fail(job, b->err, "error");
    }
    return GW_STEP_NEXT;
}

static void on_admit(void *ud, const gw_admit_result *res)
{
    gw_job *job = ud;
    if (job->aborted)
        return;
    gw_step s;
    if (res->err != GW_OK) {
        job->w->n.errors++;
        s = gw_job_fail(job, res->err, "error");
    } else if ((s = idempotency_decided(job, &res->idem)) == GW_STEP_NEXT &&
               (s = limits_decided(job, res)) == GW_STEP_NEXT) {
        s = gw_stage_cache_admitted(job, &res->cache);
        if (s == GW_STEP_ANSWERED && res->hit_kept) {
            job->idem.claimed = false; /* the hit is already the kept answer */
            job->idem.settled = true;
        }
    }
    if (s != GW_STEP_SUSPEND) /* SUSPEND: a timer or a waiter resumes it */
        gw_job_resume(job, s);
}

gw_step gw_stage_admit(gw_job *job)
{
    gw_worker *w = job->w;
    gw_job_admission *ad = &job->adm;
    if (w->state == NULL)
        return GW_STEP_NEXT;
    gw_admit_req rq = {.owner = job->owner};
    gw_step s = gw_stage_cache_request(job, &rq);
    if (s != GW_STEP_NEXT)
        return s;
    if (w->cfg->idempotency.enabled) {
        job->idem.asked = true;
        /* the content hash: the exact cache's key when that is not shared
         * across tenants (the same hash, computed once), else its own */
        if (rq.cache_key != NULL && !w->cfg->cache.shared)
            memcpy(job->idem.fp, rq.cache_key, sizeof job->idem.fp);
        else if (job->idem.fp[0] == '\0' &&
                 gw_cache_key_compute(&job->req, false, job->idem.fp) != GW_OK)
            job->idem.fp[0] = '\0';
        rq.fingerprint = job->idem.fp[0] ? job->idem.fp : NULL;
        rq.request_id = job->req.request_id;
        rq.lease_ms = w->cfg->idempotency.lease_ms;
        rq.result_ttl_s = w->cfg->idempotency.result_ttl_s;
    }
    ad->nkeys = agent_keys(job, ad->keys, ad->hit_cost, ad->names);
    rq.keys = ad->keys;
    rq.hit_cost = ad->hit_cost;
    rq.nkeys = ad->nkeys;
    const char *agent = job->req.agent_did ? job->req.agent_did : "";
    gw_config_agent_budget(w->cfg, agent, &rq.budget.daily_usd, &rq.budget.monthly_usd);
    if (rq.budget.daily_usd > 0 || rq.budget.monthly_usd > 0) {
        rq.agent = agent;
        rq.estimate_usd = estimate_cost(job);
    }
    if (rq.request_id == NULL && rq.cache_key == NULL && rq.nkeys == 0 && rq.agent == NULL)
        return GW_STEP_NEXT; /* nothing to ask */
    gw_state_admit(w->state, &rq, on_admit, job);
    return GW_STEP_SUSPEND;
}

/* ---- completion --------------------------------------------------------------------- */

static bool keeps_answer(const gw_job *job)
{
    return job->ans.err == GW_OK || !gw_err_retryable(job->ans.err);
}

bool gw_stage_state_keeps(const gw_job *job)
{
    return job->idem.claimed && !job->ans.duplicate && job->w->state != NULL && keeps_answer(job);
}

/* The limiter deltas of the request: actual - reserved per key. */
static size_t reconcile_keys(gw_job *job, gw_limit_key *keys, size_t cap)
{
    gw_worker *w = job->w;
    const gw_job_admission *ad = &job->adm;
    bool billed = job->ans.err == GW_OK && !job->ans.cached && !job->ans.duplicate;
    double actual = billed ? job->ans.usage.total_tokens : 0;
    size_t n = 0;
    if (ad->reserved_tokens > 0)
        for (size_t i = 0; i < ad->nkeys && n < cap; i++)
            if (strcmp(ad->names[i], "agent_tpm") == 0) {
                keys[n] = ad->keys[i];
                keys[n++].cost = actual - ad->reserved_tokens;
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

/* Fill the completion of this job's admission; keys has room for
 * GW_STATE_MAX_LIMIT_KEYS. False when there is nothing to write. */
static bool completion(gw_job *job, const uint8_t *resp, size_t len, gw_complete_req *rq,
                       gw_limit_key *keys)
{
    gw_worker *w = job->w;
    *rq = (gw_complete_req){.owner = job->owner, .data = resp, .len = len};
    /* Held for sure, or perhaps (a claim whose answer was lost to a timeout
     * may have been applied late): kept or released by owner either way, so
     * no lease outlives its request. */
    if (job->idem.claimed || (job->idem.asked && !job->idem.settled)) {
        rq->request_id = job->req.request_id;
        rq->idem = len > 0 && keeps_answer(job) ? GW_DONE_STORE : GW_DONE_RELEASE;
        /* the extras only with an answer to store (a release reads none) */
        const char *prefix = rq->idem == GW_DONE_STORE ? kept_prefix(job) : NULL;
        rq->fingerprint = prefix ? prefix : job->idem.fp[0] ? job->idem.fp : NULL;
        rq->idem_ttl_s = w->cfg->idempotency.result_ttl_s;
    }
    rq->nreconcile = reconcile_keys(job, keys, GW_STATE_MAX_LIMIT_KEYS);
    rq->reconcile = keys;
    const char *agent = job->req.agent_did ? job->req.agent_did : "";
    double daily = 0, monthly = 0;
    gw_config_agent_budget(w->cfg, agent, &daily, &monthly);
    if ((daily > 0 || monthly > 0) && job->ans.err == GW_OK && !job->ans.cached &&
        !job->ans.duplicate && job->ans.dep != NULL) {
        rq->agent = agent;
        rq->charge_usd = gw_route_estimate_cost_usd(job->ans.dep, job->ans.usage.prompt_tokens,
                                                    job->ans.usage.completion_tokens);
    }
    if (rq->nreconcile > 0 || rq->charge_usd > 0)
        rq->request_id = job->req.request_id; /* once-per-request markers */
    if (!job->ans.duplicate)
        gw_stage_cache_completion(job, rq);
    return rq->idem != GW_DONE_NONE || rq->cache != GW_DONE_NONE || rq->nreconcile > 0 ||
           rq->charge_usd > 0;
}

/* ---- completions that did not reach Redis ---------------------------------------- */

/*
 * A completion answered with an error or by the open policy's fallback did
 * not reach Redis: its releases and stores are sent again from the worker's
 * tick with backoff until Redis takes them, for at most REDO_MAX_AGE_MS (by
 * then every lease and lock it releases has expired). Without this, a lease
 * or lock taken by a late copy of an admission (run when Redis came back)
 * would stay until its TTL. Bounded by count and bytes: past them the oldest
 * is dropped and counted.
 */
enum {
    REDO_MAX = 65536,
    REDO_MAX_BYTES = 64 << 20,
    REDO_MAX_AGE_MS = 120000,
    REDO_FIRST_MS = 200,
    REDO_BACKOFF_MAX_MS = 2000,
    REDO_PER_TICK = 256, /* paced: a burst would time out on a Redis just back */
};

struct gw_redo {
    struct gw_redo *next;
    gw_worker *w;
    int64_t first_ms, next_ms;
    int32_t delay_ms;
    size_t bytes;
    gw_complete_req *rq; /* gw_complete_req_copy */
};

static void redo_free(gw_worker *w, struct gw_redo *r)
{
    w->redo_bytes -= r->bytes;
    free(r->rq);
    free(r);
}

static void redo_push(gw_worker *w, struct gw_redo *r)
{
    r->next = NULL;
    if (w->redo_tail)
        w->redo_tail->next = r;
    else
        w->redo_head = r;
    w->redo_tail = r;
    w->redo_count++;
}

static struct gw_redo *redo_pop(gw_worker *w)
{
    struct gw_redo *r = w->redo_head;
    if (r == NULL)
        return NULL;
    w->redo_head = r->next;
    if (w->redo_head == NULL)
        w->redo_tail = NULL;
    w->redo_count--;
    return r;
}

static bool reached(const gw_state_ack *a)
{
    return a->err == GW_OK && !a->fallback;
}

/* A completion given up on: counted, and logged at most once a second (an
 * outage can drop thousands). Its leases and locks expire by their TTLs. */
static void redo_dropped(gw_worker *w, const char *request_id, const char *why)
{
    w->n.redo_dropped++;
    int64_t now = gw_worker_now_ms(w);
    if (now - w->redo_warned_ms < 1000)
        return;
    w->redo_warned_ms = now;
    char n[24];
    snprintf(n, sizeof n, "%" PRIu64, w->n.redo_dropped);
    GW_WARN("completion_dropped", "request_id", request_id, "reason", why, "dropped_total", n);
}

static void redo_later(gw_worker *w, const gw_complete_req *rq)
{
    if (w->run == GW_RUN_DONE || w->state == NULL)
        return;
    struct gw_redo *r = calloc(1, sizeof *r);
    gw_complete_req *copy = r != NULL ? gw_complete_req_copy(rq) : NULL;
    if (copy == NULL) {
        free(r);
        redo_dropped(w, rq->request_id, "no memory");
        return;
    }
    int64_t now = gw_worker_now_ms(w);
    *r = (struct gw_redo){.w = w,
                          .first_ms = now,
                          .next_ms = now + REDO_FIRST_MS,
                          .delay_ms = REDO_FIRST_MS,
                          .bytes = rq->len + sizeof *r,
                          .rq = copy};
    while (w->redo_count >= REDO_MAX || w->redo_bytes + r->bytes > REDO_MAX_BYTES) {
        struct gw_redo *old = redo_pop(w);
        if (old == NULL)
            break;
        redo_dropped(w, old->rq->request_id, "queue full");
        redo_free(w, old);
    }
    w->redo_bytes += r->bytes;
    redo_push(w, r);
}

static void on_redone(void *ud, const gw_state_ack *a)
{
    struct gw_redo *r = ud;
    gw_worker *w = r->w;
    w->redo_bytes += r->bytes; /* held again until settled below */
    /* Redis takes writes again: everything queued is due at once (paced by
     * the tick); a failure brings the backoff back */
    w->redo_all_due = reached(a);
    if (reached(a) || w->run == GW_RUN_DONE ||
        gw_worker_now_ms(w) - r->first_ms > REDO_MAX_AGE_MS) {
        if (!reached(a))
            redo_dropped(w, r->rq->request_id, w->run == GW_RUN_DONE ? "shutdown" : "too old");
        redo_free(w, r);
    } else {
        r->delay_ms = r->delay_ms * 2 > REDO_BACKOFF_MAX_MS ? REDO_BACKOFF_MAX_MS : r->delay_ms * 2;
        r->next_ms = gw_worker_now_ms(w) + r->delay_ms;
        redo_push(w, r);
    }
    gw_worker_bg_ack(w, &(gw_state_ack){.err = GW_OK});
}

void gw_stage_state_redo(gw_worker *w)
{
    if (w->state == NULL)
        return;
    int64_t now = gw_worker_now_ms(w);
    /* FIFO with growing delays: send what is due, at most REDO_PER_TICK a
     * tick, and keep the rest in order */
    size_t sent = 0;
    for (size_t n = w->redo_count; n > 0; n--) {
        struct gw_redo *r = redo_pop(w);
        if ((r->next_ms > now && !w->redo_all_due) || sent >= REDO_PER_TICK) {
            redo_push(w, r);
            continue;
        }
        sent++;
        w->redo_bytes -= r->bytes;
        w->n.redo_sent++;
        w->bg_pending++;
        gw_state_complete(w->state, r->rq, on_redone, r);
    }
}

void gw_stage_state_redo_clear(gw_worker *w)
{
    struct gw_redo *r;
    while ((r = redo_pop(w)) != NULL)
        redo_free(w, r);
}

/* A background completion's answer: one that did not reach Redis is redone. */
typedef struct {
    gw_worker *w;
    gw_complete_req *rq; /* copy, kept until Redis answered */
} bg_completion;

static void on_bg_completed(void *ud, const gw_state_ack *a)
{
    bg_completion *b = ud;
    if (!reached(a))
        redo_later(b->w, b->rq);
    gw_worker_bg_ack(b->w, a->fallback ? &(gw_state_ack){.err = GW_OK} : a);
    free(b->rq);
    free(b);
}

static void on_kept(void *ud, const gw_state_ack *a)
{
    gw_job *job = ud;
    if (job->aborted)
        return;
    if (!reached(a)) {
        gw_complete_req rq;
        gw_limit_key keys[GW_STATE_MAX_LIMIT_KEYS];
        job->idem.completed = false;
        if (completion(job, job->idem.kept, job->idem.kept_len, &rq, keys))
            redo_later(job->w, &rq);
        job->idem.completed = true;
    }
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
 * KEEP: an answer to keep under an idempotency claim is stored, with every
 * other write that follows the answer, in one call the job waits for. The
 * kept bytes are copied into the arena (store_buf is the worker's). NEXT when
 * there is nothing to keep, or it cannot be encoded or copied (the
 * completion then goes out after publishing).
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
    job->idem.kept = kept;
    job->idem.kept_len = w->store_buf.len;
    gw_complete_req rq;
    gw_limit_key keys[GW_STATE_MAX_LIMIT_KEYS];
    completion(job, kept, w->store_buf.len, &rq, keys);
    job->idem.completed = true;
    gw_state_complete(w->state, &rq, on_kept, job);
    return GW_STEP_SUSPEND;
}

/* ---- lease renewal ------------------------------------------------------------------ */

static void on_renewed(void *ud, const gw_cache_result *r)
{
    gw_worker *w = ud;
    if (r->err == GW_OK && r->kind == GW_CACHE_LOCKED_BY_OTHER) {
        /* taken over: this job's lease had run out (a stall longer than it) */
        w->n.idem_lease_lost++;
        GW_WARN("idempotency_lease_lost", "error", gw_err_name(GW_E_STATE_UNAVAILABLE));
    }
    gw_worker_bg_ack(w, &(gw_state_ack){.err = r->err});
}

void gw_stage_state_renew_leases(gw_worker *w)
{
    if (w->state == NULL || !w->cfg->idempotency.enabled)
        return;
    int64_t now = gw_worker_now_ms(w), lease = w->cfg->idempotency.lease_ms;
    for (gw_job *job = w->jobs; job != NULL; job = job->next) {
        if (!job->idem.claimed || job->idem.completed || job->aborted ||
            job->stage >= GW_STAGE_KEEP || now - job->idem.renewed_ms < lease / 3)
            continue;
        /* the same owner's claim renews its own lease (value_or_lock) */
        job->idem.renewed_ms = now;
        w->bg_pending++;
        gw_state_idem_claim(w->state, job->req.request_id, job->owner, (int32_t)lease, on_renewed,
                            w);
    }
}

void gw_stage_state_finish(gw_job *job, const uint8_t *resp, size_t len)
{
    gw_worker *w = job->w;
    if (w->state == NULL || job->idem.completed)
        return;
    job->idem.completed = true;
    gw_complete_req rq;
    gw_limit_key keys[GW_STATE_MAX_LIMIT_KEYS];
    if (!completion(job, resp, len, &rq, keys))
        return;
    bg_completion *b = calloc(1, sizeof *b);
    b->rq = b != NULL ? gw_complete_req_copy(&rq) : NULL;
    w->bg_pending++;
    if (b == NULL || b->rq == NULL) { /* no memory: sent, never redone */
        free(b);
        gw_state_complete(w->state, &rq, gw_worker_bg_ack, w);
        return;
    }
    b->w = w;
    gw_state_complete(w->state, &rq, on_bg_completed, b);
}
