/*
 * state_admit: one call per request for admission and one for completion
 * (state.h). A backend with a native form (Redis: one Lua script each)
 * answers them itself; otherwise, and when the failure policy must decide
 * feature by feature, they are composed here from the single operations in
 * the documented order, with the same results.
 */
#include "state/state_private.h"

#include <stdlib.h>
#include <string.h>

/* ---- copies of a request ----------------------------------------------------------- */

static size_t str_size(const char *s)
{
    return s != NULL ? strlen(s) + 1 : 0;
}

static char *str_put(char **at, const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    memcpy(*at, s, n);
    char *out = *at;
    *at += n;
    return out;
}

/* "<fingerprint>|<bytes>" (what the scripts keep as an idempotency answer);
 * NULL with *len untouched when there is no fingerprint or no memory. */
static uint8_t *with_fingerprint(const char *fp, const uint8_t *data, size_t *len)
{
    if (fp == NULL || fp[0] == '\0')
        return NULL;
    size_t n = strlen(fp);
    uint8_t *out = malloc(n + 1 + *len);
    if (out == NULL)
        return NULL;
    memcpy(out, fp, n);
    out[n] = '|';
    if (*len > 0)
        memcpy(out + n + 1, data, *len);
    *len += n + 1;
    return out;
}

/* ---- composed admission ------------------------------------------------------------ */

typedef struct {
    gw_state *st;
    gw_admit_req *rq; /* gw_admit_req_copy */
    gw_admit_result res;
    gw_admit_cb cb;
    void *ud;
    uint8_t *hit; /* a copy of the cached bytes (valid until the answer) */
    size_t hit_len;
} admit_op;

static void admit_free(admit_op *o)
{
    free(o->hit);
    free(o->rq);
    free(o);
}

static void admit_done(admit_op *o)
{
    if (o->res.cache.kind == GW_CACHE_HIT) {
        o->res.cache.data = o->hit;
        o->res.cache.len = o->hit_len;
    }
    o->cb(o->ud, &o->res);
    admit_free(o);
}

static bool claimed(const admit_op *o)
{
    return o->rq->request_id != NULL && o->res.idem.kind == GW_CACHE_LOCKED_BY_ME &&
           !o->res.idem.fallback;
}

static void on_kept_hit(void *ud, const gw_state_ack *a)
{
    admit_op *o = ud;
    o->res.hit_kept = a->err == GW_OK && !a->fallback;
    admit_done(o);
}

static void on_lock(void *ud, const gw_cache_result *r)
{
    admit_op *o = ud;
    o->res.cache = *r;
    if (r->err == GW_OK && r->kind == GW_CACHE_HIT) {
        /* stored by another between the peek and the lock */
        o->hit = malloc(r->len ? r->len : 1);
        if (o->hit == NULL) {
            o->res.cache.err = GW_E_NOMEM;
        } else {
            memcpy(o->hit, r->data, r->len);
            o->hit_len = r->len;
        }
    }
    admit_done(o);
}

/* Step 5: keep a hit as the idempotency answer, or take the lock on a miss. */
static void admit_finish(admit_op *o)
{
    gw_state *st = o->st;
    if (o->res.cache.kind == GW_CACHE_HIT) {
        if (claimed(o)) {
            size_t len = o->hit_len;
            uint8_t *kept = with_fingerprint(o->rq->fingerprint, o->hit, &len);
            gw_state_idem_complete(st, o->rq->request_id, o->rq->owner, kept ? kept : o->hit,
                                   kept ? len : o->hit_len, o->rq->result_ttl_s, on_kept_hit, o);
            free(kept); /* copied by the call */
            return;
        }
        admit_done(o);
        return;
    }
    if (o->rq->cache_key != NULL && o->rq->cache_lock && o->res.cache.kind != GW_CACHE_BYPASS) {
        gw_state_cache_get_or_lock(st, o->rq->cache_key, o->rq->owner, o->rq->lock_ms,
                                   o->rq->cache_refresh, on_lock, o);
        return;
    }
    admit_done(o);
}

static void on_budget(void *ud, const gw_budget_result *r)
{
    admit_op *o = ud;
    o->res.budget = *r;
    if (r->err != GW_OK) {
        admit_done(o);
        return;
    }
    admit_finish(o);
}

static bool budget_limited(const gw_admit_req *rq)
{
    return rq->agent != NULL && (rq->budget.daily_usd > 0 || rq->budget.monthly_usd > 0);
}

static void on_limits(void *ud, const gw_limit_result *r)
{
    admit_op *o = ud;
    o->res.limit = *r;
    if (r->err != GW_OK || r->verdict != GW_LIMIT_ALLOWED) {
        admit_done(o);
        return;
    }
    if (o->res.cache.kind != GW_CACHE_HIT && budget_limited(o->rq)) {
        gw_state_budget_check(o->st, o->rq->agent, o->rq->estimate_usd, &o->rq->budget, on_budget,
                              o);
        return;
    }
    admit_finish(o);
}

/* Step 3: the limiter with the hit or the miss cost. */
static void admit_limits(admit_op *o)
{
    if (o->rq->nkeys == 0) {
        on_limits(o, &(gw_limit_result){.verdict = GW_LIMIT_ALLOWED, .limit_index = -1});
        return;
    }
    gw_limit_key keys[GW_STATE_MAX_LIMIT_KEYS];
    bool hit = o->res.cache.kind == GW_CACHE_HIT;
    for (size_t i = 0; i < o->rq->nkeys; i++) {
        keys[i] = o->rq->keys[i];
        if (hit)
            keys[i].cost = o->rq->hit_cost[i];
    }
    gw_state_limit_check(o->st, keys, o->rq->nkeys, on_limits, o);
}

static void on_peek(void *ud, const gw_cache_result *r)
{
    admit_op *o = ud;
    o->res.cache = *r;
    o->res.cache.data = NULL;
    if (r->err != GW_OK) {
        admit_done(o);
        return;
    }
    if (r->kind == GW_CACHE_HIT) {
        o->hit = malloc(r->len ? r->len : 1);
        if (o->hit == NULL) {
            o->res.cache.err = GW_E_NOMEM;
            admit_done(o);
            return;
        }
        memcpy(o->hit, r->data, r->len);
        o->hit_len = r->len;
    }
    admit_limits(o);
}

/* Step 2: read the exact cache (not on refresh). */
static void admit_peek(admit_op *o)
{
    if (o->rq->cache_key == NULL) {
        o->res.cache.kind = GW_CACHE_MISS;
        admit_limits(o);
        return;
    }
    if (o->rq->cache_refresh) {
        o->res.cache.kind = GW_CACHE_MISS;
        admit_limits(o);
        return;
    }
    gw_state_cache_get(o->st, o->rq->cache_key, on_peek, o);
}

static void on_claim(void *ud, const gw_cache_result *r)
{
    admit_op *o = ud;
    o->res.idem = *r;
    if (r->err != GW_OK || r->kind == GW_CACHE_LOCKED_BY_OTHER) {
        admit_done(o);
        return;
    }
    if (r->kind == GW_CACHE_HIT) {
        /* the kept answer: handed over while its bytes are valid */
        o->cb(o->ud, &o->res);
        admit_free(o);
        return;
    }
    admit_peek(o);
}

void gw_state_admit_composed(gw_state *st, const gw_admit_req *rq, gw_admit_cb cb, void *ud)
{
    admit_op *o = calloc(1, sizeof *o);
    gw_admit_req *copy = o != NULL ? gw_admit_req_copy(rq) : NULL;
    if (copy == NULL) {
        free(o);
        gw_state_nomem_admit(st, cb, ud);
        return;
    }
    o->st = st;
    o->cb = cb;
    o->ud = ud;
    o->rq = copy;
    o->res.limit = (gw_limit_result){.verdict = GW_LIMIT_ALLOWED, .limit_index = -1};
    o->res.idem.kind = GW_CACHE_MISS;
    o->res.cache.kind = GW_CACHE_MISS;
    if (rq->request_id == NULL) {
        admit_peek(o);
        return;
    }
    gw_state_idem_claim(st, o->rq->request_id, o->rq->owner, rq->lease_ms, on_claim, o);
}

/* ---- composed completion ----------------------------------------------------------- */

typedef struct {
    int pending;
    gw_state_ack ack; /* the first error; applied from the idempotency store */
    gw_ack_cb cb;
    void *ud;
} complete_op;

static void complete_one(complete_op *o, const gw_state_ack *a, bool idem_store)
{
    if (a->err != GW_OK && o->ack.err == GW_OK)
        o->ack.err = a->err;
    if (a->fallback)
        o->ack.fallback = true;
    if (idem_store)
        o->ack.applied = a->err == GW_OK && a->applied;
    if (--o->pending == 0) {
        o->cb(o->ud, &o->ack);
        free(o);
    }
}

static void on_part(void *ud, const gw_state_ack *a)
{
    complete_one(ud, a, false);
}

static void on_idem_part(void *ud, const gw_state_ack *a)
{
    complete_one(ud, a, true);
}

void gw_state_complete_composed(gw_state *st, const gw_complete_req *rq, gw_ack_cb cb, void *ud)
{
    complete_op *o = calloc(1, sizeof *o);
    if (o == NULL) {
        gw_state_nomem_ack(st, cb, ud);
        return;
    }
    o->cb = cb;
    o->ud = ud;
    o->pending = 1; /* held until every part is started */
    if (rq->request_id != NULL && rq->idem == GW_DONE_STORE) {
        o->pending++;
        size_t len = rq->len;
        uint8_t *kept = with_fingerprint(rq->fingerprint, rq->data, &len);
        gw_state_idem_complete(st, rq->request_id, rq->owner, kept ? kept : rq->data,
                               kept ? len : rq->len, rq->idem_ttl_s, on_idem_part, o);
        free(kept); /* copied by the call */
    } else if (rq->request_id != NULL && rq->idem == GW_DONE_RELEASE) {
        o->pending++;
        gw_state_idem_release(st, rq->request_id, rq->owner, on_part, o);
    }
    if (rq->cache_key != NULL && rq->cache == GW_DONE_STORE) {
        o->pending++;
        gw_state_cache_put(st, rq->cache_key, rq->data, rq->len, rq->cache_ttl_s, rq->owner,
                           on_part, o);
    } else if (rq->cache_key != NULL && rq->cache == GW_DONE_RELEASE) {
        o->pending++;
        gw_state_cache_unlock(st, rq->cache_key, rq->owner, on_part, o);
    }
    if (rq->nreconcile > 0 && rq->request_id != NULL) {
        o->pending++;
        gw_state_limit_reconcile(st, rq->request_id, rq->reconcile, rq->nreconcile, on_part, o);
    }
    if (rq->agent != NULL && rq->charge_usd > 0 && rq->request_id != NULL) {
        o->pending++;
        gw_state_budget_charge(st, rq->request_id, rq->agent, rq->charge_usd, on_part, o);
    }
    /* nothing to write still answers on the next turn, never inside the call */
    gw_state_later_ack(st, &(gw_state_ack){.err = GW_OK}, on_part, o);
}

/* ---- copies for a later retry (the failure policy) ------------------------------- */

struct gw_admit_copy {
    gw_admit_req rq;
    gw_limit_key keys[GW_STATE_MAX_LIMIT_KEYS];
    double hit_cost[GW_STATE_MAX_LIMIT_KEYS];
    char strings[];
};

gw_admit_req *gw_admit_req_copy(const gw_admit_req *rq)
{
    size_t strings = str_size(rq->request_id) + str_size(rq->owner) + str_size(rq->agent) +
                     str_size(rq->cache_key) + str_size(rq->fingerprint);
    for (size_t i = 0; i < rq->nkeys; i++)
        strings += str_size(rq->keys[i].scope);
    struct gw_admit_copy *c = calloc(1, sizeof *c + strings);
    if (c == NULL)
        return NULL;
    c->rq = *rq;
    char *at = c->strings;
    c->rq.request_id = str_put(&at, rq->request_id);
    c->rq.owner = str_put(&at, rq->owner);
    c->rq.agent = str_put(&at, rq->agent);
    c->rq.cache_key = str_put(&at, rq->cache_key);
    c->rq.fingerprint = str_put(&at, rq->fingerprint);
    for (size_t i = 0; i < rq->nkeys && i < GW_STATE_MAX_LIMIT_KEYS; i++) {
        c->keys[i] = rq->keys[i];
        c->keys[i].scope = str_put(&at, rq->keys[i].scope);
        c->hit_cost[i] = rq->hit_cost != NULL ? rq->hit_cost[i] : rq->keys[i].cost;
    }
    c->rq.keys = c->keys;
    c->rq.hit_cost = c->hit_cost;
    return &c->rq; /* the first member: free() takes it */
}

struct gw_complete_copy {
    gw_complete_req rq;
    gw_limit_key keys[GW_STATE_MAX_LIMIT_KEYS];
    char strings[];
};

gw_complete_req *gw_complete_req_copy(const gw_complete_req *rq)
{
    size_t strings = str_size(rq->request_id) + str_size(rq->owner) + str_size(rq->agent) +
                     str_size(rq->cache_key) + str_size(rq->fingerprint) + rq->len;
    for (size_t i = 0; i < rq->nreconcile; i++)
        strings += str_size(rq->reconcile[i].scope);
    struct gw_complete_copy *c = calloc(1, sizeof *c + strings);
    if (c == NULL)
        return NULL;
    c->rq = *rq;
    char *at = c->strings;
    if (rq->len > 0) {
        memcpy(at, rq->data, rq->len);
        c->rq.data = (const uint8_t *)at;
        at += rq->len;
    }
    c->rq.request_id = str_put(&at, rq->request_id);
    c->rq.owner = str_put(&at, rq->owner);
    c->rq.agent = str_put(&at, rq->agent);
    c->rq.cache_key = str_put(&at, rq->cache_key);
    c->rq.fingerprint = str_put(&at, rq->fingerprint);
    for (size_t i = 0; i < rq->nreconcile && i < GW_STATE_MAX_LIMIT_KEYS; i++) {
        c->keys[i] = rq->reconcile[i];
        c->keys[i].scope = str_put(&at, rq->reconcile[i].scope);
    }
    c->rq.reconcile = c->keys;
    return &c->rq;
}
