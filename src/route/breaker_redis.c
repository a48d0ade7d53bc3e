/*
 * breaker_redis: the fleet-wide breaker backend on Redis; see breaker.h.
 *
 * Two Lua scripts, registered with the connection's script registry:
 * src/route/lua/breaker_allow.lua answers allowed / denied{retry_in_ms} /
 * probe (SET NX PX lease) and performs the lazy OPEN -> HALF_OPEN move;
 * src/route/lua/breaker_record.lua adds an outcome to the time-bucketed
 * window and applies the transition. Both read the clock
 * with Redis TIME, so workers' clocks never matter. They mirror
 * brk_cell_allow / brk_cell_record in breaker.c exactly.
 *
 * Local view per deployment (rcell): the latest answer from Redis. While it
 * is younger than local_cache_ms, CLOSED is answered locally as ALLOWED; an
 * OPEN cool-down or a 429 cool-down is a definite end time, so it is
 * answered locally as DENIED until it ends. HALF_OPEN always asks Redis (the
 * probe lease lives there). Every outcome is also applied to a local
 * gw_brk_cell, which answers when Redis is unavailable.
 *
 * Batching: the successes and failures of ordinary (non-probe) calls need
 * no per-request atomicity, so they are counted per deployment in the
 * worker and sent as one outcome batch (kind 4 of breaker_record.lua) when
 * gw_breaker_flush runs (the worker's 100 ms tick) or a batch holds
 * BATCH_MAX outcomes; a probe's outcome, a 429 and an ignored outcome are
 * sent at once, after what is batched. So the fleet opens a breaker at most
 * BATCH_MAX outcomes (and one tick) per worker beyond its threshold, and
 * one half-open probe across the fleet is kept as before (the probe lease
 * lives in Redis). The local cell applies every outcome at once.
 *
 * Lifetime: each outstanding script call counts in base.pending; free marks
 * the breaker closing and the last reply releases the memory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route/breaker_private.h"
#include "route/registry.h"
#include "common/lua_scripts.h"
#include "loop/redis.h"

enum { KEY_MAX = 64 + GW_DEPLOYMENT_ID_MAX + 16, BATCH_MAX = 64 };

typedef struct {
    char key[KEY_MAX];   /* <prefix>brk:{<id>} */
    char probe[KEY_MAX]; /* <prefix>brk:{<id>}:probe */
    gw_breaker_stat view;
    int64_t view_at;     /* local ms of the last answer; -1 never */
    int64_t denied_till; /* definite denial (OPEN or 429 cool-down) end, local ms */
    bool rate_limited;
    gw_brk_cell local;        /* fallback: this worker's own view */
    int32_t ok, failed, tail; /* batched: successes, failures, trailing failures */
} rcell;

typedef struct {
    gw_breaker base;
    gw_redis *r;
    gw_redis_script *allow_s, *record_s;
    gw_rng rng;
    bool closing;
    rcell *cells;
} redis_breaker;

typedef struct {
    redis_breaker *rb;
    size_t idx;
    gw_breaker_allow_cb cb;
    void *ud;
    char token[GW_BREAKER_TOKEN_MAX + 1];
} allow_req;

typedef struct {
    redis_breaker *rb;
    size_t idx;
} record_req;

static int64_t now_ms(void)
{
    return gw_clock_monotonic_ms(NULL);
}

static void release(redis_breaker *rb)
{
    rb->base.pending--;
    if (rb->closing && rb->base.pending == 0) {
        free(rb->cells);
        free(rb);
    }
}

static gw_breaker_state state_of(long long v)
{
    return v == 1 ? GW_BREAKER_OPEN : v == 2 ? GW_BREAKER_HALF_OPEN : GW_BREAKER_CLOSED;
}

static long long elem(const redisReply *rep, size_t i)
{
    return gw_redis_reply_int(gw_redis_reply_elem(rep, i), 0);
}

static void on_allow(void *arg, gw_err err, const redisReply *rep)
{
    allow_req *q = arg;
    redis_breaker *rb = q->rb;
    rcell *c = &rb->cells[q->idx];
    int64_t now = now_ms();
    gw_breaker_decision d;
    if (err != GW_OK || rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements < 4) {
        brk_cell_allow(&rb->base.o, &c->local, now, q->token, &d);
        if (rb->base.o.fail_closed && d.verdict != GW_VERDICT_DENIED)
            d = (gw_breaker_decision){.verdict = GW_VERDICT_DENIED, .retry_in_ms = 1000};
        d.err = err == GW_OK ? GW_E_INTERNAL : err;
    } else {
        d = (gw_breaker_decision){.verdict = (gw_breaker_verdict)elem(rep, 0),
                                  .retry_in_ms = elem(rep, 1),
                                  .state = state_of(elem(rep, 2)),
                                  .rate_limited = elem(rep, 3) != 0};
        c->view.state = d.state;
        /* the view's remaining times are aged from view_at: an answer that
         * moves view_at must also replace them, or an ended cool-down would
         * look fresh again to gw_breaker_peek (and the router) */
        c->view.cooldown_remaining_ms = d.rate_limited ? d.retry_in_ms : 0;
        c->view.open_remaining_ms =
            d.verdict == GW_VERDICT_DENIED && d.state == GW_BREAKER_OPEN ? d.retry_in_ms : 0;
        c->view_at = now;
        bool definite = d.verdict == GW_VERDICT_DENIED && d.state != GW_BREAKER_HALF_OPEN;
        definite = definite || d.rate_limited;
        c->denied_till = definite ? now + d.retry_in_ms : 0;
        c->rate_limited = d.rate_limited;
    }
    if (!rb->closing)
        q->cb(q->ud, &d);
    else
        q->cb(q->ud,
              &(gw_breaker_decision){.verdict = GW_VERDICT_DENIED, .err = GW_E_SHUTTING_DOWN});
    free(q);
    release(rb);
}

static bool answer_locally(redis_breaker *rb, rcell *c, gw_breaker_decision *out)
{
    int64_t now = now_ms();
    if (c->denied_till > now) {
        *out = (gw_breaker_decision){.verdict = GW_VERDICT_DENIED,
                                     .retry_in_ms = c->denied_till - now,
                                     .state = c->view.state,
                                     .rate_limited = c->rate_limited};
        return true;
    }
    bool fresh = c->view_at >= 0 && now - c->view_at < rb->base.o.local_cache_ms;
    if (fresh && c->view.state == GW_BREAKER_CLOSED) {
        *out = (gw_breaker_decision){.verdict = GW_VERDICT_ALLOWED, .state = GW_BREAKER_CLOSED};
        return true;
    }
    return false;
}

static bool r_allow(gw_breaker *b, size_t idx, const char *token, gw_breaker_decision *out,
                    gw_breaker_allow_cb cb, void *ud)
{
    redis_breaker *rb = (redis_breaker *)b;
    rcell *c = &rb->cells[idx];
    if (answer_locally(rb, c, out))
        return true;
    allow_req *q = calloc(1, sizeof *q);
    if (q == NULL) {
        brk_cell_allow(&b->o, &c->local, now_ms(), token, out);
        out->err = GW_E_NOMEM;
        return true;
    }
    *q = (allow_req){.rb = rb, .idx = idx, .cb = cb, .ud = ud};
    snprintf(q->token, sizeof q->token, "%s", token != NULL ? token : "");
    char lease[24], ttl[24];
    snprintf(lease, sizeof lease, "%d", b->o.probe_lease_ms);
    snprintf(ttl, sizeof ttl, "%d", b->o.state_ttl_ms);
    const char *argv[] = {c->key, c->probe, q->token, lease, ttl};
    b->pending++;
    gw_redis_eval(rb->r, rb->allow_s, 2, 5, argv, NULL, on_allow, q);
    return false;
}

static void on_record(void *arg, gw_err err, const redisReply *rep)
{
    record_req *q = arg;
    redis_breaker *rb = q->rb;
    if (err == GW_OK && rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements >= 7 &&
        !rb->closing) {
        rcell *c = &rb->cells[q->idx];
        int64_t now = now_ms();
        gw_breaker_stat *v = &c->view;
        v->state = state_of(elem(rep, 0));
        v->open_remaining_ms = elem(rep, 1);
        v->cooldown_remaining_ms = elem(rep, 2);
        v->open_count = (int32_t)elem(rep, 3);
        v->window_calls = (int32_t)elem(rep, 4);
        v->window_failures = (int32_t)elem(rep, 5);
        v->consecutive_failures = (int32_t)elem(rep, 6);
        v->error_rate = v->window_calls > 0 ? (double)v->window_failures / v->window_calls : 0;
        c->view_at = now;
        int64_t rem = v->open_remaining_ms > v->cooldown_remaining_ms ? v->open_remaining_ms
                                                                      : v->cooldown_remaining_ms;
        c->denied_till = rem > 0 ? now + rem : 0;
        c->rate_limited = v->cooldown_remaining_ms > 0;
    }
    free(q);
    release(rb);
}

/* One breaker_record call: kind 0-3 for one outcome, 4 for the batch. */
static void send_record(redis_breaker *rb, size_t idx, const char *token, int kind, bool probe,
                        int64_t retry_after_ms, double u)
{
    gw_breaker *b = &rb->base;
    rcell *c = &rb->cells[idx];
    record_req *q = calloc(1, sizeof *q);
    if (q == NULL)
        return;
    *q = (record_req){.rb = rb, .idx = idx};
    const gw_breaker_opts *p = &b->o;
    char a[18][32];
    snprintf(a[0], 32, "%d", kind);
    snprintf(a[1], 32, "%d", probe ? 1 : 0);
    snprintf(a[2], 32, "%lld", (long long)retry_after_ms);
    snprintf(a[3], 32, "%.6f", u);
    snprintf(a[4], 32, "%d", p->bucket_ms);
    snprintf(a[5], 32, "%d", p->window_ms);
    snprintf(a[6], 32, "%d", p->min_calls);
    snprintf(a[7], 32, "%.6f", p->failure_rate);
    snprintf(a[8], 32, "%d", p->consecutive_failures);
    snprintf(a[9], 32, "%d", p->open_base_ms);
    snprintf(a[10], 32, "%d", p->open_max_ms);
    snprintf(a[11], 32, "%.6f", p->jitter);
    snprintf(a[12], 32, "%d", p->half_open_successes);
    snprintf(a[13], 32, "%d", p->state_ttl_ms);
    snprintf(a[14], 32, "%d", p->rate_limit_default_ms);
    snprintf(a[15], 32, "%d", p->rate_limit_max_ms);
    snprintf(a[16], 32, "%d", kind == 4 ? c->ok : 0);
    snprintf(a[17], 32, "%d", kind == 4 ? c->failed : 0);
    char tail[32];
    snprintf(tail, sizeof tail, "%d", kind == 4 ? c->tail : 0);
    const char *argv[] = {c->key, c->probe, a[0],  a[1],  token != NULL ? token : "",
                          a[2],   a[3],     a[4],  a[5],  a[6],
                          a[7],   a[8],     a[9],  a[10], a[11],
                          a[12],  a[13],    a[14], a[15], a[16],
                          a[17],  tail};
    b->pending++;
    gw_redis_eval(rb->r, rb->record_s, 2, 22, argv, NULL, on_record, q);
}

static void flush_cell(redis_breaker *rb, size_t idx)
{
    rcell *c = &rb->cells[idx];
    if (c->ok + c->failed == 0)
        return;
    send_record(rb, idx, NULL, 4, false, 0, gw_rng_unit(&rb->rng));
    c->ok = c->failed = c->tail = 0;
}

static void r_record(gw_breaker *b, size_t idx, const char *token, const gw_breaker_outcome *o)
{
    redis_breaker *rb = (redis_breaker *)b;
    rcell *c = &rb->cells[idx];
    double u = gw_rng_unit(&rb->rng);
    brk_cell_record(&b->o, &c->local, now_ms(), token, o, u);
    if (!o->probe && (o->kind == GW_OUTCOME_SUCCESS || o->kind == GW_OUTCOME_FAILURE)) {
        if (o->kind == GW_OUTCOME_SUCCESS) {
            c->ok++;
            c->tail = 0;
        } else {
            c->failed++;
            c->tail++;
        }
        if (c->ok + c->failed >= BATCH_MAX)
            flush_cell(rb, idx);
        return;
    }
    flush_cell(rb, idx); /* what came before goes first */
    send_record(rb, idx, token, (int)o->kind, o->probe, o->retry_after_ms, u);
}

static void r_flush(gw_breaker *b)
{
    redis_breaker *rb = (redis_breaker *)b;
    if (rb->closing)
        return;
    for (size_t i = 0; i < b->count; i++)
        flush_cell(rb, i);
}

static void r_snapshot(gw_breaker *b, size_t idx, gw_breaker_stat *out)
{
    rcell *c = &((redis_breaker *)b)->cells[idx];
    int64_t now = now_ms();
    *out = c->view;
    if (c->view_at < 0) {
        brk_cell_stat(&b->o, &c->local, now, out);
        out->age_ms = -1;
        return;
    }
    int64_t age = now - c->view_at;
    out->age_ms = age;
    out->open_remaining_ms = out->open_remaining_ms > age ? out->open_remaining_ms - age : 0;
    out->cooldown_remaining_ms =
        out->cooldown_remaining_ms > age ? out->cooldown_remaining_ms - age : 0;
    if (c->denied_till > now && out->state == GW_BREAKER_OPEN && out->open_remaining_ms == 0)
        out->open_remaining_ms = c->denied_till - now;
}

static void r_free(gw_breaker *b)
{
    redis_breaker *rb = (redis_breaker *)b;
    rb->closing = true;
    if (b->pending == 0) {
        free(rb->cells);
        free(rb);
    }
}

static const gw_breaker_ops redis_ops = {r_allow, r_record, r_snapshot, r_free, r_flush};

gw_err gw_breaker_redis_new(const gw_breaker_opts *o, const gw_registry *reg, gw_redis *r,
                            const char *key_prefix, uint64_t seed, gw_breaker **out)
{
    size_t n = gw_registry_count(reg);
    const char *pfx = key_prefix != NULL ? key_prefix : "";
    if (gw_breaker_opts_check(o, NULL, 0) != GW_OK || n == 0 || strlen(pfx) > 64)
        return GW_E_CONFIG;
    redis_breaker *rb = calloc(1, sizeof *rb);
    rcell *cells = calloc(n, sizeof *cells);
    if (rb == NULL || cells == NULL)
        goto nomem;
    rb->allow_s = gw_redis_script_add(r, gw_lua_script("route/breaker_allow"));
    rb->record_s = gw_redis_script_add(r, gw_lua_script("route/breaker_record"));
    if (rb->allow_s == NULL || rb->record_s == NULL)
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        const char *id = gw_registry_get(reg, i)->id;
        snprintf(cells[i].key, KEY_MAX, "%sbrk:{%s}", pfx, id);
        snprintf(cells[i].probe, KEY_MAX, "%sbrk:{%s}:probe", pfx, id);
        cells[i].view_at = -1;
        brk_cell_init(&cells[i].local);
    }
    rb->base = (gw_breaker){.ops = &redis_ops, .o = *o, .count = n};
    rb->r = r;
    gw_rng_seed(&rb->rng, seed);
    rb->cells = cells;
    *out = &rb->base;
    return GW_OK;
nomem:
    free(cells);
    free(rb);
    return GW_E_NOMEM;
}
