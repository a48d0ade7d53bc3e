/*
 * state_policy: what each feature does when the shared state fails.
 *
 * A gw_state that wraps another one (the Redis backend) and passes every
 * operation through. When the inner backend answers GW_E_STATE_UNAVAILABLE
 * (not connected, timed out, queue full), the feature's policy decides:
 *   limits (and budgets)  open: a local limiter (an in-memory backend owned
 *                         here) at rate / expected_workers and burst /
 *                         expected_workers, so the fleet as a whole stays
 *                         near the configured limit; budget checks pass and
 *                         charges are dropped (spend cannot be known locally);
 *   cache                 open: BYPASS for get_or_lock and wait, MISS for get,
 *                         writes dropped;
 *   idempotency           open: claimed without a lease (LOCKED_BY_ME),
 *                         completes and releases dropped;
 *   any feature, closed:  the caller gets GW_E_STATE_UNAVAILABLE.
 * Every fallback sets result.fallback and is counted (gw_state_get_stats).
 *
 * Invariants: inflight counts the wrapper's operation records; the wrapper
 * is released only when it was freed AND inflight is 0, so a late answer of
 * the inner backend always finds it.
 */
#include "state/state_private.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    gw_state base;
    gw_state *inner;
    gw_state *local; /* fallback limiter */
    gw_state_policy_opts o;
    gw_state_stats st;
    uint32_t inflight;
    bool freed;     /* gw_state_free ran and the base is closed */
    bool releasing; /* tearing down: late answers must not recurse */
} policy_state;

typedef enum { F_LIMITS, F_CACHE, F_IDEM } feature;

typedef struct {
    policy_state *w;
    feature f;
    void *cb;
    void *ud;
    bool reconcile; /* limit_reconcile: the fallback applies it locally */
    bool plain_get; /* cache_get: the fallback is a MISS, not a BYPASS */
    size_t n;
    gw_limit_key keys[GW_STATE_MAX_LIMIT_KEYS];
    char scopes[GW_STATE_MAX_LIMIT_KEYS][GW_STATE_MAX_NAME_BYTES + 1];
    char request_id[GW_STATE_MAX_NAME_BYTES + 1];
} pop;

static void maybe_release(policy_state *w)
{
    if (!w->freed || w->inflight > 0 || w->releasing)
        return;
    w->releasing = true;
    gw_state_free(w->inner);
    gw_state_free(w->local);
    free(w);
}

/* NULL when out of memory: the caller then answers with gw_state_nomem_*
 * (GW_E_NOMEM on the next turn, exactly once, without allocating; no
 * fallback: the inner backend was never asked). */
static pop *pop_new(policy_state *w, feature f, void *cb, void *ud)
{
    pop *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->w = w;
    p->f = f;
    p->cb = cb;
    p->ud = ud;
    w->inflight++;
    w->st.ops++;
    return p;
}

static void pop_done(pop *p)
{
    policy_state *w = p->w;
    free(p);
    w->inflight--;
    maybe_release(w);
}

static gw_state_fail policy_of(policy_state *w, feature f)
{
    return f == F_LIMITS ? w->o.limits : f == F_CACHE ? w->o.cache : w->o.idempotency;
}

/* True when the answer should be replaced by the feature's fallback. */
static bool wants_fallback(pop *p, gw_err err)
{
    policy_state *w = p->w;
    if (err != GW_E_STATE_UNAVAILABLE)
        return false;
    w->st.unavailable++;
    if (policy_of(w, p->f) == GW_STATE_FAIL_CLOSED || w->releasing) {
        w->st.failed_closed++;
        return false;
    }
    if (p->f == F_LIMITS)
        w->st.fallback_limits++;
    else if (p->f == F_CACHE)
        w->st.fallback_cache++;
    else
        w->st.fallback_idem++;
    return true;
}

/* ---- limits ------------------------------------------------------------------ */

static void copy_keys(pop *p, const gw_limit_key *keys, size_t n, uint32_t workers)
{
    p->n = n;
    for (size_t i = 0; i < n; i++) {
        strcpy(p->scopes[i], keys[i].scope);
        p->keys[i] = keys[i];
        p->keys[i].scope = p->scopes[i];
        p->keys[i].rate_per_min = keys[i].rate_per_min / workers;
        double burst = keys[i].burst / workers;
        /* What fits the fleet's bucket must not "never fit" the local share. */
        if (burst < keys[i].cost && keys[i].cost <= keys[i].burst)
            burst = keys[i].cost;
        p->keys[i].burst = burst;
    }
}

static void on_local_limit(void *ud, const gw_limit_result *res)
{
    pop *p = ud;
    gw_limit_result r = *res;
    r.fallback = true;
    ((gw_limit_cb)p->cb)(p->ud, &r);
    pop_done(p);
}

static void on_local_ack(void *ud, const gw_state_ack *res)
{
    pop *p = ud;
    gw_state_ack r = *res;
    r.fallback = true;
    ((gw_ack_cb)p->cb)(p->ud, &r);
    pop_done(p);
}

static void on_limit(void *ud, const gw_limit_result *res)
{
    pop *p = ud;
    if (wants_fallback(p, res->err)) {
        gw_state_limit_check(p->w->local, p->keys, p->n, on_local_limit, p);
        return;
    }
    ((gw_limit_cb)p->cb)(p->ud, res);
    pop_done(p);
}

static void pol_limit_check(gw_state *st, const gw_limit_key *keys, size_t n, gw_limit_cb cb,
                            void *ud)
{
    policy_state *w = (policy_state *)st;
    pop *p = pop_new(w, F_LIMITS, (void *)cb, ud);
    if (!p) {
        gw_state_nomem_limit(st, cb, ud);
        return;
    }
    copy_keys(p, keys, n, w->o.expected_workers);
    gw_state_limit_check(w->inner, keys, n, on_limit, p);
}

static void on_ack(void *ud, const gw_state_ack *res)
{
    pop *p = ud;
    if (wants_fallback(p, res->err)) {
        if (p->reconcile) {
            gw_state_limit_reconcile(p->w->local, p->request_id, p->keys, p->n, on_local_ack, p);
            return;
        }
        gw_state_ack r = {.err = GW_OK, .fallback = true};
        ((gw_ack_cb)p->cb)(p->ud, &r);
    } else {
        ((gw_ack_cb)p->cb)(p->ud, res);
    }
    pop_done(p);
}

static void pol_limit_reconcile(gw_state *st, const char *request_id, const gw_limit_key *keys,
                                size_t n, gw_ack_cb cb, void *ud)
{
    policy_state *w = (policy_state *)st;
    pop *p = pop_new(w, F_LIMITS, (void *)cb, ud);
    if (!p) {
        gw_state_nomem_ack(st, cb, ud);
        return;
    }
    copy_keys(p, keys, n, w->o.expected_workers);
    p->reconcile = true;
    strcpy(p->request_id, request_id);
    gw_state_limit_reconcile(w->inner, request_id, keys, n, on_ack, p);
}

/* ---- budgets -------------------------------------------------------------------- */

static void on_budget(void *ud, const gw_budget_result *res)
{
    pop *p = ud;
    if (wants_fallback(p, res->err)) {
        gw_budget_result r = {.err = GW_OK, .fallback = true};
        ((gw_budget_cb)p->cb)(p->ud, &r);
    } else {
        ((gw_budget_cb)p->cb)(p->ud, res);
    }
    pop_done(p);
}

static void pol_budget_check(gw_state *st, const char *agent, double estimate_usd,
                             const gw_budget_limits *lim, gw_budget_cb cb, void *ud)
{
    policy_state *w = (policy_state *)st;
    pop *p = pop_new(w, F_LIMITS, (void *)cb, ud);
    if (!p) {
        gw_state_nomem_budget(st, cb, ud);
        return;
    }
    gw_state_budget_check(w->inner, agent, estimate_usd, lim, on_budget, p);
}

static void pol_budget_charge(gw_state *st, const char *request_id, const char *agent,
                              double actual_usd, gw_ack_cb cb, void *ud)
{
    policy_state *w = (policy_state *)st;
    pop *p = pop_new(w, F_LIMITS, (void *)cb, ud);
    if (!p) {
        gw_state_nomem_ack(st, cb, ud);
        return;
    }
    gw_state_budget_charge(w->inner, request_id, agent, actual_usd, on_ack, p);
}

/* ---- cache and idempotency ---------------------------------------------------------- */

static void on_cache(void *ud, const gw_cache_result *res)
{
    pop *p = ud;
    if (wants_fallback(p, res->err)) {
        gw_cache_result r = {.err = GW_OK, .fallback = true};
        r.kind = p->f == F_IDEM ? GW_CACHE_LOCKED_BY_ME
                 : p->plain_get ? GW_CACHE_MISS
                                : GW_CACHE_BYPASS;
        ((gw_cache_cb)p->cb)(p->ud, &r);
    } else {
        ((gw_cache_cb)p->cb)(p->ud, res);
    }
    pop_done(p);
}

static void pol_cache_get(gw_state *st, const char *key, gw_cache_cb cb, void *ud)
{
    policy_state *w = (policy_state *)st;
    pop *p = pop_new(w, F_CACHE, (void *)cb, ud);
    if (!p) {
        gw_state_nomem_cache(st, cb, ud);
        return;
    }
    p->plain_get = true;
    gw_state_cache_get(w->inner, key, on_cache, p);
}

static void pol_cache_put(gw_state *st, const char *key, const uint8_t *data, size_t len,
                          int32_t ttl_s, const char *owner, gw_ack_cb cb, void *ud)
{
    policy_state *w = (policy_state *)st;
    pop *p = pop_new(w, F_CACHE, (void *)cb, ud);
    if (!p) {
        gw_state_nomem_ack(st, cb, ud);
        return;
    }
    gw_state_cache_put(w->inner, key, data, len, ttl_s, owner, on_ack, p);
}

static void pol_cache_get_or_lock(gw_state *st, const char *key, const char *owner, int32_t lock_ms,
                                  bool refresh, gw_cache_cb cb, void *ud)
{
    policy_state *w = (policy_state *)st;
    pop *p = pop_new(w, F_CACHE, (void *)cb, ud);
    if (!p) {
        gw_state_nomem_cache(st, cb, ud);
        return;
    }
    gw_state_cache_get_or_lock(w->inner, key, owner, lock_ms, refresh, on_cache, p);
}

static void pol_cache_unlock(gw_state *st, const char *key, const char *owner, gw_ack_cb cb,
                             void *ud)
{
    policy_state *w = (policy_state *)st;
    pop *p = pop_new(w, F_CACHE, (void *)cb, ud);
    if (!p) {
        gw_state_nomem_ack(st, cb, ud);
        return;
    }
    gw_state_cache_unlock(w->inner, key, owner, on_ack, p);
}

static void pol_idem_claim(gw_state *st, const char *request_id, const char *owner,
                           int32_t lease_ms, gw_cache_cb cb, void *ud)
{
    policy_state *w = (policy_state *)st;
    pop *p = pop_new(w, F_IDEM, (void *)cb, ud);
    if (!p) {
        gw_state_nomem_cache(st, cb, ud);
        return;
    }
    gw_state_idem_claim(w->inner, request_id, owner, lease_ms, on_cache, p);
}

static void pol_idem_complete(gw_state *st, const char *request_id, const char *owner,
                              const uint8_t *data, size_t len, int32_t ttl_s, gw_ack_cb cb,
                              void *ud)
{
    policy_state *w = (policy_state *)st;
    pop *p = pop_new(w, F_IDEM, (void *)cb, ud);
    if (!p) {
        gw_state_nomem_ack(st, cb, ud);
        return;
    }
    gw_state_idem_complete(w->inner, request_id, owner, data, len, ttl_s, on_ack, p);
}

static void pol_idem_release(gw_state *st, const char *request_id, const char *owner, gw_ack_cb cb,
                             void *ud)
{
    policy_state *w = (policy_state *)st;
    pop *p = pop_new(w, F_IDEM, (void *)cb, ud);
    if (!p) {
        gw_state_nomem_ack(st, cb, ud);
        return;
    }
    gw_state_idem_release(w->inner, request_id, owner, on_ack, p);
}

/* ---- admission and completion ------------------------------------------------------ */

/*
 * One call to the inner backend; when it answers STATE_UNAVAILABLE, the same
 * request is composed from this wrapper's own single operations, so each
 * feature follows its own policy (state_admit.c).
 */
typedef struct {
    policy_state *w;
    void *rq; /* gw_admit_req_copy / gw_complete_req_copy */
    void *cb;
    void *ud;
} pcall;

static pcall *pcall_new(policy_state *w, void *rq, void *cb, void *ud)
{
    pcall *c = calloc(1, sizeof *c);
    if (c == NULL) {
        free(rq);
        return NULL;
    }
    *c = (pcall){w, rq, cb, ud};
    w->inflight++;
    w->st.ops++;
    return c;
}

static void pcall_done(pcall *c)
{
    policy_state *w = c->w;
    free(c->rq);
    free(c);
    w->inflight--;
    maybe_release(w);
}

static void on_pol_admit(void *ud, const gw_admit_result *res)
{
    pcall *c = ud;
    if (res->err == GW_E_STATE_UNAVAILABLE && !c->w->releasing) {
        c->w->st.unavailable++;
        gw_state_admit_composed(&c->w->base, c->rq, (gw_admit_cb)c->cb, c->ud);
    } else {
        ((gw_admit_cb)c->cb)(c->ud, res);
    }
    pcall_done(c);
}

static void pol_admit(gw_state *st, const gw_admit_req *rq, gw_admit_cb cb, void *ud)
{
    policy_state *w = (policy_state *)st;
    gw_admit_req *copy = gw_admit_req_copy(rq);
    pcall *c = copy != NULL ? pcall_new(w, copy, (void *)cb, ud) : NULL;
    if (c == NULL) {
        gw_state_nomem_admit(st, cb, ud);
        return;
    }
    gw_state_admit(w->inner, rq, on_pol_admit, c);
}

static void on_pol_complete(void *ud, const gw_state_ack *res)
{
    pcall *c = ud;
    if (res->err == GW_E_STATE_UNAVAILABLE && !c->w->releasing) {
        c->w->st.unavailable++;
        gw_state_complete_composed(&c->w->base, c->rq, (gw_ack_cb)c->cb, c->ud);
    } else {
        ((gw_ack_cb)c->cb)(c->ud, res);
    }
    pcall_done(c);
}

static void pol_complete(gw_state *st, const gw_complete_req *rq, gw_ack_cb cb, void *ud)
{
    policy_state *w = (policy_state *)st;
    gw_complete_req *copy = gw_complete_req_copy(rq);
    pcall *c = copy != NULL ? pcall_new(w, copy, (void *)cb, ud) : NULL;
    if (c == NULL) {
        gw_state_nomem_ack(st, cb, ud);
        return;
    }
    gw_state_complete(w->inner, rq, on_pol_complete, c);
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static void pol_get_stats(const gw_state *st, gw_state_stats *out)
{
    *out = ((const policy_state *)st)->st;
}

static void pol_release(gw_state *st)
{
    policy_state *w = (policy_state *)st;
    w->freed = true;
    maybe_release(w);
}

static void pol_destroy(gw_state *st)
{
    gw_state_base_close(st, pol_release);
}

static const gw_state_ops policy_ops = {
    .limit_check = pol_limit_check,
    .limit_reconcile = pol_limit_reconcile,
    .budget_check = pol_budget_check,
    .budget_charge = pol_budget_charge,
    .cache_get = pol_cache_get,
    .cache_put = pol_cache_put,
    .cache_get_or_lock = pol_cache_get_or_lock,
    .cache_unlock = pol_cache_unlock,
    .idem_claim = pol_idem_claim,
    .idem_complete = pol_idem_complete,
    .idem_release = pol_idem_release,
    .admit = pol_admit,
    .complete = pol_complete,
    .get_stats = pol_get_stats,
    .destroy = pol_destroy,
};

gw_err gw_state_policy_new(uv_loop_t *loop, gw_state *inner, const gw_state_policy_opts *o,
                           gw_state **out)
{
    gw_err err = GW_E_NOMEM;
    *out = NULL;
    policy_state *w = calloc(1, sizeof(*w));
    if (!w)
        goto fail;
    w->inner = inner;
    w->o = *o;
    if (w->o.expected_workers == 0)
        w->o.expected_workers = 1;
    gw_state_opts lo = {.key_prefix = inner->prefix,
                        .max_entry_bytes = inner->max_entry_bytes,
                        .marker_ttl_ms = inner->marker_ttl_ms,
                        .max_keys = 100000};
    err = gw_state_mem_new(loop, &lo, &w->local);
    if (err != GW_OK)
        goto fail_w;
    gw_state_opts bo = {.key_prefix = inner->prefix,
                        .max_entry_bytes = inner->max_entry_bytes,
                        .marker_ttl_ms = inner->marker_ttl_ms};
    err = gw_state_base_init(&w->base, &policy_ops, loop, &bo);
    if (err != GW_OK)
        goto fail_local;
    *out = &w->base;
    return GW_OK;
fail_local:
    gw_state_free(w->local);
fail_w:
    free(w);
fail:
    return err;
}
