/*
 * state: the public entry points of the state interface (state.h).
 *
 * Every call is checked here once (lengths, counts, rates, sizes) so that
 * backends only see well-formed arguments; a bad call is answered with a
 * named error on the next loop turn, like any other answer. This file also
 * owns the next-turn delivery queue that the memory backend and the failure
 * policy use, and the single-flight waiter (gw_state_cache_wait), which is
 * built on get_or_lock and so works the same over every backend.
 *
 * Invariants: a "later" record is on st->later_* from the call that queued it
 * until its callback ran; a waiter is on st->waiters until it answered.
 *
 * Out of memory: an operation whose record (a "later" record, a backend's
 * operation record, a waiter) cannot be allocated is answered GW_E_NOMEM on
 * the next turn from a fixed ring in gw_state (st->nomem, no allocation), so
 * the exactly-once, never-inside-the-call contract holds without memory.
 * Only when more than GW_STATE_NOMEM_SLOTS such answers wait for one turn is
 * the next one answered inside the call (the last resort: still exactly once).
 */
#include "state/state_private.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A later_kind is also kept in st->nomem[].kind. */
typedef enum { LATER_LIMIT, LATER_ACK, LATER_BUDGET, LATER_CACHE, LATER_ADMIT } later_kind;

struct gw_state_later {
    struct gw_state_later *next;
    later_kind kind;
    void *cb;
    void *ud;
    union {
        gw_limit_result limit;
        gw_state_ack ack;
        gw_budget_result budget;
        gw_cache_result cache;
        gw_admit_result admit;
    } u;
    uint8_t data[]; /* copy of a cache hit's bytes */
};

typedef struct gw_state_waiter waiter;
struct gw_state_waiter {
    uv_timer_t timer;
    waiter *prev, *next; /* on st->waiters until answered */
    gw_state *st;
    char key[GW_STATE_MAX_NAME_BYTES + 1];
    char owner[GW_STATE_MAX_NAME_BYTES + 1];
    int32_t lock_ms;
    uint64_t deadline_ms; /* loop time */
    uint32_t backoff_ms;
    gw_cache_cb cb;
    void *ud;
};

static void waiter_finish(waiter *w, const gw_cache_result *res);

int64_t gw_state_clock_realtime_ms(void *ud)
{
    struct timespec ts;
    (void)ud;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void gw_state_periods(int64_t now_ms, char day[9], char month[7])
{
    time_t secs = (time_t)(now_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    unsigned y = (unsigned)(tm.tm_year + 1900) % 10000u;
    unsigned mo = (unsigned)(tm.tm_mon + 1) % 100u, d = (unsigned)tm.tm_mday % 100u;
    snprintf(day, 9, "%04u%02u%02u", y, mo, d);
    snprintf(month, 7, "%04u%02u", y, mo);
}

int64_t gw_state_usd_to_micro(double usd)
{
    return (int64_t)llround(usd * 1e6);
}

/* ---- next-turn delivery ---------------------------------------------------- */

static void deliver(struct gw_state_later *l, bool shutting_down)
{
    switch (l->kind) {
    case LATER_LIMIT:
        if (shutting_down)
            l->u.limit.err = GW_E_SHUTTING_DOWN;
        ((gw_limit_cb)l->cb)(l->ud, &l->u.limit);
        break;
    case LATER_ACK:
        if (shutting_down)
            l->u.ack.err = GW_E_SHUTTING_DOWN;
        ((gw_ack_cb)l->cb)(l->ud, &l->u.ack);
        break;
    case LATER_BUDGET:
        if (shutting_down)
            l->u.budget.err = GW_E_SHUTTING_DOWN;
        ((gw_budget_cb)l->cb)(l->ud, &l->u.budget);
        break;
    case LATER_CACHE:
        if (shutting_down) {
            l->u.cache.err = GW_E_SHUTTING_DOWN;
            l->u.cache.data = NULL;
            l->u.cache.len = 0;
        }
        ((gw_cache_cb)l->cb)(l->ud, &l->u.cache);
        break;
    case LATER_ADMIT:
        if (shutting_down)
            l->u.admit = (gw_admit_result){.err = GW_E_SHUTTING_DOWN};
        ((gw_admit_cb)l->cb)(l->ud, &l->u.admit);
        break;
    }
}

/* Answers err (GW_E_NOMEM or GW_E_SHUTTING_DOWN) to a call that has no
 * record. */
static void deliver_err(int kind, void *cb, void *ud, gw_err err)
{
    switch ((later_kind)kind) {
    case LATER_LIMIT: {
        gw_limit_result r = {.err = err};
        ((gw_limit_cb)cb)(ud, &r);
        break;
    }
    case LATER_ACK: {
        gw_state_ack r = {.err = err};
        ((gw_ack_cb)cb)(ud, &r);
        break;
    }
    case LATER_BUDGET: {
        gw_budget_result r = {.err = err};
        ((gw_budget_cb)cb)(ud, &r);
        break;
    }
    case LATER_CACHE: {
        gw_cache_result r = {.err = err, .kind = GW_CACHE_MISS};
        ((gw_cache_cb)cb)(ud, &r);
        break;
    }
    case LATER_ADMIT: {
        gw_admit_result r = {.err = err};
        ((gw_admit_cb)cb)(ud, &r);
        break;
    }
    }
}

static void drain_later(gw_state *st, bool shutting_down)
{
    /* Detach first: callbacks may queue new answers for the next turn. */
    struct gw_state_later *l = st->later_head;
    st->later_head = st->later_tail = NULL;
    size_t nn = st->nomem_count;
    struct gw_state_nomem nomem[GW_STATE_NOMEM_SLOTS];
    memcpy(nomem, st->nomem, nn * sizeof nomem[0]);
    st->nomem_count = 0;
    for (size_t i = 0; i < nn; i++)
        deliver_err(nomem[i].kind, nomem[i].cb, nomem[i].ud,
                    shutting_down ? GW_E_SHUTTING_DOWN : GW_E_NOMEM);
    while (l) {
        struct gw_state_later *next = l->next;
        deliver(l, shutting_down);
        free(l);
        l = next;
    }
}

static void later_timer_cb(uv_timer_t *t)
{
    drain_later(t->data, false);
}

/* GW_E_NOMEM on the next turn, without allocating (see the top). */
static void nomem_push(gw_state *st, later_kind kind, void *cb, void *ud)
{
    if (st->nomem_count == GW_STATE_NOMEM_SLOTS) {
        deliver_err(kind, cb, ud, GW_E_NOMEM); /* last resort: answer now */
        return;
    }
    st->nomem[st->nomem_count++] = (struct gw_state_nomem){.kind = kind, .cb = cb, .ud = ud};
    if (!st->closing)
        uv_timer_start(&st->later_timer, later_timer_cb, 0, 0);
}

void gw_state_nomem_limit(gw_state *st, gw_limit_cb cb, void *ud)
{
    nomem_push(st, LATER_LIMIT, (void *)cb, ud);
}

void gw_state_nomem_ack(gw_state *st, gw_ack_cb cb, void *ud)
{
    nomem_push(st, LATER_ACK, (void *)cb, ud);
}

void gw_state_nomem_budget(gw_state *st, gw_budget_cb cb, void *ud)
{
    nomem_push(st, LATER_BUDGET, (void *)cb, ud);
}

void gw_state_nomem_cache(gw_state *st, gw_cache_cb cb, void *ud)
{
    nomem_push(st, LATER_CACHE, (void *)cb, ud);
}

void gw_state_nomem_admit(gw_state *st, gw_admit_cb cb, void *ud)
{
    nomem_push(st, LATER_ADMIT, (void *)cb, ud);
}

/* NULL when out of memory: the caller then answers with nomem_push. */
static struct gw_state_later *later_new(later_kind kind, void *cb, void *ud, size_t extra)
{
    struct gw_state_later *l = calloc(1, sizeof(*l) + extra);
    if (!l)
        return NULL;
    l->kind = kind;
    l->cb = cb;
    l->ud = ud;
    return l;
}

static void later_push(gw_state *st, struct gw_state_later *l)
{
    if (st->later_tail)
        st->later_tail->next = l;
    else
        st->later_head = l;
    st->later_tail = l;
    if (!st->closing)
        uv_timer_start(&st->later_timer, later_timer_cb, 0, 0);
}

void gw_state_later_limit(gw_state *st, const gw_limit_result *res, gw_limit_cb cb, void *ud)
{
    struct gw_state_later *l = later_new(LATER_LIMIT, (void *)cb, ud, 0);
    if (!l) {
        nomem_push(st, LATER_LIMIT, (void *)cb, ud);
        return;
    }
    l->u.limit = *res;
    later_push(st, l);
}

void gw_state_later_ack(gw_state *st, const gw_state_ack *res, gw_ack_cb cb, void *ud)
{
    struct gw_state_later *l = later_new(LATER_ACK, (void *)cb, ud, 0);
    if (!l) {
        nomem_push(st, LATER_ACK, (void *)cb, ud);
        return;
    }
    l->u.ack = *res;
    later_push(st, l);
}

void gw_state_later_budget(gw_state *st, const gw_budget_result *res, gw_budget_cb cb, void *ud)
{
    struct gw_state_later *l = later_new(LATER_BUDGET, (void *)cb, ud, 0);
    if (!l) {
        nomem_push(st, LATER_BUDGET, (void *)cb, ud);
        return;
    }
    l->u.budget = *res;
    later_push(st, l);
}

void gw_state_later_cache(gw_state *st, const gw_cache_result *res, gw_cache_cb cb, void *ud)
{
    size_t extra = (res->kind == GW_CACHE_HIT && res->data) ? res->len : 0;
    struct gw_state_later *l = later_new(LATER_CACHE, (void *)cb, ud, extra);
    if (!l) {
        nomem_push(st, LATER_CACHE, (void *)cb, ud);
        return;
    }
    l->u.cache = *res;
    if (extra) {
        memcpy(l->data, res->data, extra);
        l->u.cache.data = l->data;
    }
    later_push(st, l);
}

/* ---- lifecycle --------------------------------------------------------------- */

gw_err gw_state_base_init(gw_state *st, const gw_state_ops *ops, uv_loop_t *loop,
                          const gw_state_opts *o)
{
    const char *prefix = (o && o->key_prefix) ? o->key_prefix : "";
    if (strlen(prefix) > GW_STATE_MAX_PREFIX_BYTES)
        return GW_E_CONFIG;
    st->ops = ops;
    st->loop = loop;
    strcpy(st->prefix, prefix);
    st->max_entry_bytes = (o && o->max_entry_bytes) ? o->max_entry_bytes : 4u << 20;
    st->marker_ttl_ms = (o && o->marker_ttl_ms) ? o->marker_ttl_ms : 24u * 3600 * 1000;
    uv_timer_init(loop, &st->later_timer);
    st->later_timer.data = st;
    return GW_OK;
}

static void on_later_closed(uv_handle_t *h)
{
    gw_state *st = h->data;
    st->release(st);
}

void gw_state_base_close(gw_state *st, void (*release)(gw_state *st))
{
    st->closing = true;
    uv_timer_stop(&st->later_timer);
    /* Waiters between polls are answered now; one that is mid-poll is
     * answered with its poll's result, which always comes (below, or from
     * the backend's shutdown). */
    waiter *w = st->waiters;
    st->waiters = NULL;
    while (w) {
        waiter *next = w->next;
        w->prev = w->next = NULL;
        w->st = NULL; /* orphan: never touches st again */
        if (uv_is_active((uv_handle_t *)&w->timer)) {
            gw_cache_result r = {.err = GW_E_SHUTTING_DOWN, .kind = GW_CACHE_MISS};
            waiter_finish(w, &r);
        }
        w = next;
    }
    while (st->later_head || st->nomem_count)
        drain_later(st, true);
    st->release = release; /* kept in st: closing needs no allocation */
    uv_close((uv_handle_t *)&st->later_timer, on_later_closed);
}

void gw_state_free(gw_state *st)
{
    if (st)
        st->ops->destroy(st);
}

void gw_state_get_stats(const gw_state *st, gw_state_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (st->ops->get_stats)
        st->ops->get_stats(st, out);
}

long gw_state_mem_key_count(const gw_state *st, long *without_ttl)
{
    if (!st->ops->key_count) {
        if (without_ttl)
            *without_ttl = -1;
        return -1;
    }
    return st->ops->key_count(st, without_ttl);
}

/* ---- argument checks --------------------------------------------------------- */

static bool name_ok(const char *s)
{
    return s && *s && strnlen(s, GW_STATE_MAX_NAME_BYTES + 1) <= GW_STATE_MAX_NAME_BYTES;
}

static gw_err check_keys(const gw_limit_key *keys, size_t n, bool signed_cost)
{
    if (!keys || n == 0)
        return GW_E_INTERNAL;
    if (n > GW_STATE_MAX_LIMIT_KEYS)
        return GW_E_LIMIT;
    for (size_t i = 0; i < n; i++) {
        if (!name_ok(keys[i].scope))
            return GW_E_LIMIT;
        if (!(keys[i].rate_per_min > 0) || !isfinite(keys[i].rate_per_min) ||
            !(keys[i].burst > 0) || !isfinite(keys[i].burst) || !isfinite(keys[i].cost))
            return GW_E_INTERNAL;
        if (!signed_cost && keys[i].cost < 0)
            return GW_E_INTERNAL;
    }
    return GW_OK;
}

static void bad_limit(gw_state *st, gw_err err, gw_limit_cb cb, void *ud)
{
    gw_limit_result r = {.err = err};
    gw_state_later_limit(st, &r, cb, ud);
}

static void bad_ack(gw_state *st, gw_err err, gw_ack_cb cb, void *ud)
{
    gw_state_ack r = {.err = err};
    gw_state_later_ack(st, &r, cb, ud);
}

static void bad_cache(gw_state *st, gw_err err, gw_cache_cb cb, void *ud)
{
    gw_cache_result r = {.err = err, .kind = GW_CACHE_MISS};
    gw_state_later_cache(st, &r, cb, ud);
}

/* ---- dispatch ------------------------------------------------------------------ */

void gw_state_limit_check(gw_state *st, const gw_limit_key *keys, size_t n, gw_limit_cb cb,
                          void *ud)
{
    gw_err err = check_keys(keys, n, false);
    if (err != GW_OK)
        bad_limit(st, err, cb, ud);
    else
        st->ops->limit_check(st, keys, n, cb, ud);
}

void gw_state_limit_reconcile(gw_state *st, const char *request_id, const gw_limit_key *keys,
                              size_t n, gw_ack_cb cb, void *ud)
{
    gw_err err = check_keys(keys, n, true);
    if (err == GW_OK && !name_ok(request_id))
        err = GW_E_LIMIT;
    if (err != GW_OK)
        bad_ack(st, err, cb, ud);
    else
        st->ops->limit_reconcile(st, request_id, keys, n, cb, ud);
}

void gw_state_budget_check(gw_state *st, const char *agent, double estimate_usd,
                           const gw_budget_limits *lim, gw_budget_cb cb, void *ud)
{
    if (!name_ok(agent) || !lim || !(estimate_usd >= 0) || !isfinite(estimate_usd)) {
        gw_budget_result r = {.err = name_ok(agent) ? GW_E_INTERNAL : GW_E_LIMIT};
        gw_state_later_budget(st, &r, cb, ud);
        return;
    }
    st->ops->budget_check(st, agent, estimate_usd, lim, cb, ud);
}

void gw_state_budget_charge(gw_state *st, const char *request_id, const char *agent,
                            double actual_usd, gw_ack_cb cb, void *ud)
{
    if (!name_ok(request_id) || !name_ok(agent))
        bad_ack(st, GW_E_LIMIT, cb, ud);
    else if (!(actual_usd >= 0) || !isfinite(actual_usd))
        bad_ack(st, GW_E_INTERNAL, cb, ud);
    else
        st->ops->budget_charge(st, request_id, agent, actual_usd, cb, ud);
}

void gw_state_cache_get(gw_state *st, const char *key, gw_cache_cb cb, void *ud)
{
    if (!name_ok(key))
        bad_cache(st, GW_E_LIMIT, cb, ud);
    else
        st->ops->cache_get(st, key, cb, ud);
}

void gw_state_cache_put(gw_state *st, const char *key, const uint8_t *data, size_t len,
                        int32_t ttl_s, const char *owner, gw_ack_cb cb, void *ud)
{
    if (!name_ok(key) || (owner && !name_ok(owner)) || len > st->max_entry_bytes)
        bad_ack(st, GW_E_LIMIT, cb, ud);
    else if (ttl_s <= 0 || (!data && len))
        bad_ack(st, GW_E_INTERNAL, cb, ud);
    else
        st->ops->cache_put(st, key, data, len, ttl_s, owner, cb, ud);
}

void gw_state_cache_get_or_lock(gw_state *st, const char *key, const char *owner, int32_t lock_ms,
                                bool refresh, gw_cache_cb cb, void *ud)
{
    if (!name_ok(key) || !name_ok(owner))
        bad_cache(st, GW_E_LIMIT, cb, ud);
    else if (lock_ms <= 0)
        bad_cache(st, GW_E_INTERNAL, cb, ud);
    else
        st->ops->cache_get_or_lock(st, key, owner, lock_ms, refresh, cb, ud);
}

void gw_state_cache_unlock(gw_state *st, const char *key, const char *owner, gw_ack_cb cb, void *ud)
{
    if (!name_ok(key) || !name_ok(owner))
        bad_ack(st, GW_E_LIMIT, cb, ud);
    else
        st->ops->cache_unlock(st, key, owner, cb, ud);
}

void gw_state_idem_claim(gw_state *st, const char *request_id, const char *owner, int32_t lease_ms,
                         gw_cache_cb cb, void *ud)
{
    if (!name_ok(request_id) || !name_ok(owner))
        bad_cache(st, GW_E_LIMIT, cb, ud);
    else if (lease_ms <= 0)
        bad_cache(st, GW_E_INTERNAL, cb, ud);
    else
        st->ops->idem_claim(st, request_id, owner, lease_ms, cb, ud);
}

void gw_state_idem_complete(gw_state *st, const char *request_id, const char *owner,
                            const uint8_t *data, size_t len, int32_t ttl_s, gw_ack_cb cb, void *ud)
{
    if (!name_ok(request_id) || !name_ok(owner) || len > st->max_entry_bytes)
        bad_ack(st, GW_E_LIMIT, cb, ud);
    else if (ttl_s <= 0 || (!data && len))
        bad_ack(st, GW_E_INTERNAL, cb, ud);
    else
        st->ops->idem_complete(st, request_id, owner, data, len, ttl_s, cb, ud);
}

void gw_state_idem_release(gw_state *st, const char *request_id, const char *owner, gw_ack_cb cb,
                           void *ud)
{
    if (!name_ok(request_id) || !name_ok(owner))
        bad_ack(st, GW_E_LIMIT, cb, ud);
    else
        st->ops->idem_release(st, request_id, owner, cb, ud);
}

static void later_admit(gw_state *st, gw_err err, gw_admit_cb cb, void *ud)
{
    struct gw_state_later *l = later_new(LATER_ADMIT, (void *)cb, ud, 0);
    if (!l) {
        nomem_push(st, LATER_ADMIT, (void *)cb, ud);
        return;
    }
    l->u.admit = (gw_admit_result){.err = err};
    later_push(st, l);
}

void gw_state_admit(gw_state *st, const gw_admit_req *rq, gw_admit_cb cb, void *ud)
{
    bool ok = rq->nkeys <= GW_STATE_MAX_LIMIT_KEYS &&
              (!rq->request_id || name_ok(rq->request_id)) &&
              (!rq->cache_key || name_ok(rq->cache_key)) && (!rq->agent || name_ok(rq->agent)) &&
              (!(rq->request_id || rq->cache_key) || name_ok(rq->owner));
    for (size_t i = 0; ok && i < rq->nkeys; i++)
        ok = name_ok(rq->keys[i].scope) && rq->keys[i].rate_per_min > 0 && rq->keys[i].burst > 0;
    if (!ok)
        later_admit(st, GW_E_LIMIT, cb, ud);
    else if (st->ops->admit != NULL)
        st->ops->admit(st, rq, cb, ud);
    else
        gw_state_admit_composed(st, rq, cb, ud);
}

void gw_state_complete(gw_state *st, const gw_complete_req *rq, gw_ack_cb cb, void *ud)
{
    bool ok = rq->nreconcile <= GW_STATE_MAX_LIMIT_KEYS &&
              (!rq->request_id || name_ok(rq->request_id)) &&
              (!rq->cache_key || name_ok(rq->cache_key)) && (!rq->agent || name_ok(rq->agent)) &&
              name_ok(rq->owner) && rq->len <= st->max_entry_bytes;
    for (size_t i = 0; ok && i < rq->nreconcile; i++)
        ok = name_ok(rq->reconcile[i].scope);
    if (!ok)
        bad_ack(st, GW_E_LIMIT, cb, ud);
    else if (st->ops->complete != NULL)
        st->ops->complete(st, rq, cb, ud);
    else
        gw_state_complete_composed(st, rq, cb, ud);
}

/* ---- single-flight waiter ------------------------------------------------------- */

static void waiter_closed(uv_handle_t *h)
{
    free(h->data);
}

static void waiter_poll(uv_timer_t *t);

static void waiter_finish(waiter *w, const gw_cache_result *res)
{
    if (w->prev)
        w->prev->next = w->next;
    else if (w->st)
        w->st->waiters = w->next;
    if (w->next)
        w->next->prev = w->prev;
    uv_timer_stop(&w->timer);
    w->cb(w->ud, res);
    uv_close((uv_handle_t *)&w->timer, waiter_closed);
}

static void waiter_result(void *ud, const gw_cache_result *res)
{
    waiter *w = ud;
    uint64_t now = uv_now(w->timer.loop);
    if (w->st && res->err == GW_OK && res->kind == GW_CACHE_LOCKED_BY_OTHER &&
        now < w->deadline_ms && !w->st->closing) {
        uint64_t wait = w->backoff_ms;
        if (wait > w->deadline_ms - now)
            wait = w->deadline_ms - now;
        w->backoff_ms = w->backoff_ms * 2 > 100 ? 100 : w->backoff_ms * 2;
        uv_timer_start(&w->timer, waiter_poll, wait, 0);
        return;
    }
    waiter_finish(w, res);
}

static void waiter_poll(uv_timer_t *t)
{
    waiter *w = t->data;
    gw_state_cache_get_or_lock(w->st, w->key, w->owner, w->lock_ms, false, waiter_result, w);
}

void gw_state_cache_wait(gw_state *st, const char *key, const char *owner, int32_t lock_ms,
                         int32_t wait_ms, gw_cache_cb cb, void *ud)
{
    if (!name_ok(key) || !name_ok(owner)) {
        bad_cache(st, GW_E_LIMIT, cb, ud);
        return;
    }
    waiter *w = calloc(1, sizeof(*w));
    if (!w) {
        gw_state_nomem_cache(st, cb, ud);
        return;
    }
    w->st = st;
    strcpy(w->key, key);
    strcpy(w->owner, owner);
    w->lock_ms = lock_ms;
    w->deadline_ms = uv_now(st->loop) + (uint64_t)(wait_ms > 0 ? wait_ms : 0);
    w->backoff_ms = 5;
    w->cb = cb;
    w->ud = ud;
    uv_timer_init(st->loop, &w->timer);
    w->timer.data = w;
    w->next = st->waiters;
    if (w->next)
        w->next->prev = w;
    st->waiters = w;
    uv_timer_start(&w->timer, waiter_poll, 0, 0);
}
