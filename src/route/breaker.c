/*
 * breaker: options, outcome classification, the in-memory transition logic
 * (gw_brk_cell) and the in-memory backend; see breaker.h for the semantics
 * and breaker_private.h for how the Redis backend mirrors this logic.
 */
#include "route/breaker_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *gw_breaker_state_name(gw_breaker_state s)
{
    switch (s) {
    case GW_BREAKER_CLOSED:
        return "closed";
    case GW_BREAKER_OPEN:
        return "open";
    case GW_BREAKER_HALF_OPEN:
        return "half_open";
    }
    return "unknown";
}

void gw_breaker_opts_from_config(const gw_config *cfg, gw_breaker_opts *o)
{
    const gw_breaker_config *b = &cfg->breaker;
    *o = (gw_breaker_opts){.bucket_ms = b->bucket_ms,
                           .window_ms = b->window_ms,
                           .min_calls = b->min_calls,
                           .failure_rate = b->failure_rate,
                           .consecutive_failures = b->consecutive_failures,
                           .open_base_ms = b->open_base_ms,
                           .open_max_ms = b->open_max_ms,
                           .jitter = b->jitter,
                           .half_open_successes = b->half_open_successes,
                           .probe_lease_ms = b->probe_lease_ms,
                           .rate_limit_default_ms = b->rate_limit_default_ms,
                           .rate_limit_max_ms = b->rate_limit_max_ms,
                           .local_cache_ms = b->local_cache_ms,
                           .state_ttl_ms = b->state_ttl_ms,
                           .fail_closed = cfg->failure_policy.breaker == GW_CFG_FAIL_CLOSED};
    if (cfg->retry.max_retry_after_ms > 0)
        o->rate_limit_max_ms = cfg->retry.max_retry_after_ms;
    /* Keys must outlive the longest state they remember. */
    int64_t ttl = o->state_ttl_ms;
    if ((int64_t)o->window_ms * 2 > ttl)
        ttl = (int64_t)o->window_ms * 2;
    if ((int64_t)o->open_max_ms * 4 > ttl)
        ttl = (int64_t)o->open_max_ms * 4;
    o->state_ttl_ms = ttl > INT32_MAX ? INT32_MAX : (int32_t)ttl;
}

gw_err gw_breaker_opts_check(const gw_breaker_opts *o, char *errbuf, size_t errlen)
{
    const char *bad = NULL;
    if (o->bucket_ms < 1 || o->window_ms < o->bucket_ms)
        bad = "breaker.bucket_ms must be >= 1 and <= breaker.window_ms";
    else if (o->window_ms / o->bucket_ms > GW_BREAKER_MAX_BUCKETS)
        bad = "breaker.window_ms / breaker.bucket_ms must be <= 120";
    else if (o->min_calls < 1 || !(o->failure_rate > 0 && o->failure_rate <= 1))
        bad = "breaker.min_calls must be >= 1 and breaker.failure_rate within (0, 1]";
    else if (o->consecutive_failures < 0)
        bad = "breaker.consecutive_failures must be >= 0";
    else if (o->open_base_ms < 1 || o->open_max_ms < o->open_base_ms)
        bad = "breaker.open_base_ms must be >= 1 and <= breaker.open_max_ms";
    else if (!(o->jitter >= 0 && o->jitter <= 1))
        bad = "breaker.jitter must be within [0, 1]";
    else if (o->half_open_successes < 1 || o->probe_lease_ms < 1)
        bad = "breaker.half_open_successes and the probe lease must be >= 1";
    else if (o->rate_limit_default_ms < 1 || o->rate_limit_max_ms < 1 || o->local_cache_ms < 0 ||
             o->state_ttl_ms < o->window_ms)
        bad = "breaker rate-limit cool-downs must be >= 1, state TTL >= window";
    if (bad == NULL)
        return GW_OK;
    if (errbuf != NULL && errlen > 0)
        snprintf(errbuf, errlen, "%s", bad);
    return GW_E_CONFIG;
}

gw_outcome_kind gw_breaker_classify(gw_err err, int http_status)
{
    if (err == GW_OK)
        return GW_OUTCOME_SUCCESS;
    if (err == GW_E_PROVIDER_RATE_LIMITED || http_status == 429)
        return GW_OUTCOME_RATE_LIMITED;
    if (http_status == 408)
        return GW_OUTCOME_FAILURE;
    switch (err) {
    case GW_E_PROVIDER_ERROR:
    case GW_E_PROVIDER_CONNECT_TIMEOUT:
    case GW_E_PROVIDER_FIRST_TOKEN_TIMEOUT:
    case GW_E_PROVIDER_IDLE_TIMEOUT:
    case GW_E_PROVIDER_TOTAL_TIMEOUT:
    case GW_E_PROVIDER_UNAVAILABLE:
    case GW_E_PROVIDER_TRANSPORT:
    case GW_E_PROVIDER_BAD_RESPONSE:
    case GW_E_STREAM_ERROR:
        return GW_OUTCOME_FAILURE;
    default:
        return http_status >= 500 ? GW_OUTCOME_FAILURE : GW_OUTCOME_IGNORED;
    }
}

int64_t gw_clock_monotonic_ms(void *ud)
{
    (void)ud;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- transition logic ------------------------------------------------- */

void brk_cell_init(gw_brk_cell *c)
{
    memset(c, 0, sizeof *c);
    c->st = GW_BREAKER_CLOSED;
}

int64_t brk_cooldown_ms(const gw_breaker_opts *o, int32_t n, double jitter_u)
{
    double d = o->open_base_ms;
    for (int32_t i = 1; i < n && d < o->open_max_ms; i++)
        d *= 2;
    if (d > o->open_max_ms)
        d = o->open_max_ms;
    int64_t v = (int64_t)(d * (1.0 - o->jitter * jitter_u));
    return v < 1 ? 1 : v;
}

static int nbuckets(const gw_breaker_opts *o)
{
    return (int)(o->window_ms / o->bucket_ms);
}

static void window_sum(const gw_breaker_opts *o, const gw_brk_cell *c, int64_t now, int32_t *calls,
                       int32_t *fails)
{
    *calls = *fails = 0;
    for (int i = 0; i < nbuckets(o); i++) {
        if (c->bstart[i] > now - o->window_ms && c->bstart[i] >= c->window_epoch) {
            *calls += c->bcalls[i];
            *fails += c->bfail[i];
        }
    }
}

static void bucket_add(const gw_breaker_opts *o, gw_brk_cell *c, int64_t now, bool failed)
{
    int64_t b = now / o->bucket_ms;
    int i = (int)(b % nbuckets(o));
    if (c->bstart[i] != b * o->bucket_ms) {
        c->bstart[i] = b * o->bucket_ms;
        c->bcalls[i] = 0;
        c->bfail[i] = 0;
    }
    c->bcalls[i]++;
    c->bfail[i] += failed ? 1 : 0;
}

static void trip(const gw_breaker_opts *o, gw_brk_cell *c, int64_t now, double jitter_u)
{
    c->open_count++;
    c->st = GW_BREAKER_OPEN;
    c->open_until = now + brk_cooldown_ms(o, c->open_count, jitter_u);
    c->consec = 0;
    c->ho_succ = 0;
    c->window_epoch = now + 1;
}

static void release_probe(gw_brk_cell *c, const char *token)
{
    if (token != NULL && strcmp(c->probe_token, token) == 0) {
        c->probe_until = 0;
        c->probe_token[0] = '\0';
    }
}

void brk_cell_allow(const gw_breaker_opts *o, gw_brk_cell *c, int64_t now, const char *token,
                    gw_breaker_decision *out)
{
    *out = (gw_breaker_decision){.verdict = GW_VERDICT_ALLOWED, .state = c->st};
    if (c->cooldown_end > now) {
        *out = (gw_breaker_decision){.verdict = GW_VERDICT_DENIED,
                                     .retry_in_ms = c->cooldown_end - now,
                                     .state = c->st,
                                     .rate_limited = true};
        return;
    }
    if (c->st == GW_BREAKER_CLOSED)
        return;
    if (c->st == GW_BREAKER_OPEN) {
        if (now < c->open_until) {
            out->verdict = GW_VERDICT_DENIED;
            out->retry_in_ms = c->open_until - now;
            return;
        }
        c->st = GW_BREAKER_HALF_OPEN;
        c->ho_succ = 0;
    }
    out->state = GW_BREAKER_HALF_OPEN;
    if (c->probe_until > now) {
        out->verdict = GW_VERDICT_DENIED;
        out->retry_in_ms = c->probe_until - now;
        return;
    }
    snprintf(c->probe_token, sizeof c->probe_token, "%s", token != NULL ? token : "");
    c->probe_until = now + o->probe_lease_ms;
    out->verdict = GW_VERDICT_PROBE;
}

static void record_closed(const gw_breaker_opts *o, gw_brk_cell *c, int64_t now, bool failed,
                          double jitter_u)
{
    bucket_add(o, c, now, failed);
    if (!failed) {
        c->consec = 0;
        return;
    }
    c->consec++;
    int32_t calls, fails;
    window_sum(o, c, now, &calls, &fails);
    bool by_rate = calls >= o->min_calls && (double)fails >= o->failure_rate * calls;
    bool by_run = o->consecutive_failures > 0 && c->consec >= o->consecutive_failures;
    if (by_rate || by_run)
        trip(o, c, now, jitter_u);
}

void brk_cell_record(const gw_breaker_opts *o, gw_brk_cell *c, int64_t now, const char *token,
                     const gw_breaker_outcome *oc, double jitter_u)
{
    bool probe = oc->probe && c->st == GW_BREAKER_HALF_OPEN;
    if (oc->probe)
        release_probe(c, token);
    switch (oc->kind) {
    case GW_OUTCOME_RATE_LIMITED: {
        int64_t d = oc->retry_after_ms > 0 ? oc->retry_after_ms : o->rate_limit_default_ms;
        if (d > o->rate_limit_max_ms)
            d = o->rate_limit_max_ms;
        if (now + d > c->cooldown_end)
            c->cooldown_end = now + d;
        return;
    }
    case GW_OUTCOME_IGNORED:
        return;
    case GW_OUTCOME_SUCCESS:
    case GW_OUTCOME_FAILURE:
        break;
    }
    bool failed = oc->kind == GW_OUTCOME_FAILURE;
    if (c->st == GW_BREAKER_CLOSED) {
        record_closed(o, c, now, failed, jitter_u);
    } else if (probe && failed) {
        trip(o, c, now, jitter_u);
    } else if (probe && ++c->ho_succ >= o->half_open_successes) {
        c->st = GW_BREAKER_CLOSED;
        c->open_count = 0;
        c->consec = 0;
        c->ho_succ = 0;
        c->window_epoch = now + 1;
    }
}

void brk_cell_stat(const gw_breaker_opts *o, const gw_brk_cell *c, int64_t now,
                   gw_breaker_stat *out)
{
    memset(out, 0, sizeof *out);
    out->state = c->st;
    if (c->st == GW_BREAKER_OPEN && c->open_until > now)
        out->open_remaining_ms = c->open_until - now;
    if (c->cooldown_end > now)
        out->cooldown_remaining_ms = c->cooldown_end - now;
    out->open_count = c->open_count;
    out->consecutive_failures = c->consec;
    window_sum(o, c, now, &out->window_calls, &out->window_failures);
    out->error_rate =
        out->window_calls > 0 ? (double)out->window_failures / out->window_calls : 0.0;
}

/* ---- public dispatch --------------------------------------------------- */

bool gw_breaker_allow(gw_breaker *b, size_t idx, const char *token, gw_breaker_decision *out,
                      gw_breaker_allow_cb cb, void *ud)
{
    if (idx >= b->count) {
        *out = (gw_breaker_decision){.verdict = GW_VERDICT_DENIED, .err = GW_E_INTERNAL};
        return true;
    }
    return b->ops->allow(b, idx, token, out, cb, ud);
}

void gw_breaker_flush(gw_breaker *b)
{
    if (b != NULL && b->ops->flush != NULL)
        b->ops->flush(b);
}

void gw_breaker_record(gw_breaker *b, size_t idx, const char *token, const gw_breaker_outcome *o)
{
    if (idx < b->count)
        b->ops->record(b, idx, token, o);
}

void gw_breaker_snapshot(gw_breaker *b, size_t idx, gw_breaker_stat *out)
{
    memset(out, 0, sizeof *out);
    if (idx < b->count)
        b->ops->snapshot(b, idx, out);
}

gw_breaker_state gw_breaker_peek(gw_breaker *b, size_t idx)
{
    gw_breaker_stat s;
    gw_breaker_snapshot(b, idx, &s);
    if (s.cooldown_remaining_ms > 0 || (s.state == GW_BREAKER_OPEN && s.open_remaining_ms > 0))
        return GW_BREAKER_OPEN;
    return s.state == GW_BREAKER_OPEN ? GW_BREAKER_HALF_OPEN : s.state;
}

size_t gw_breaker_pending(const gw_breaker *b)
{
    return b->pending;
}

size_t gw_breaker_count(const gw_breaker *b)
{
    return b->count;
}

void gw_breaker_free(gw_breaker *b)
{
    if (b != NULL)
        b->ops->free(b);
}

/* ---- in-memory backend ------------------------------------------------- */

typedef struct {
    gw_breaker base;
    gw_clock_fn clock;
    void *clock_ud;
    gw_rng rng;
    gw_brk_cell *cells;
} mem_breaker;

static bool mem_allow(gw_breaker *b, size_t idx, const char *token, gw_breaker_decision *out,
                      gw_breaker_allow_cb cb, void *ud)
{
    mem_breaker *m = (mem_breaker *)b;
    brk_cell_allow(&b->o, &m->cells[idx], m->clock(m->clock_ud), token, out);
    return true;
}

static void mem_record(gw_breaker *b, size_t idx, const char *token, const gw_breaker_outcome *o)
{
    mem_breaker *m = (mem_breaker *)b;
    brk_cell_record(&b->o, &m->cells[idx], m->clock(m->clock_ud), token, o, gw_rng_unit(&m->rng));
}

static void mem_snapshot(gw_breaker *b, size_t idx, gw_breaker_stat *out)
{
    mem_breaker *m = (mem_breaker *)b;
    brk_cell_stat(&b->o, &m->cells[idx], m->clock(m->clock_ud), out);
}

static void mem_free(gw_breaker *b)
{
    mem_breaker *m = (mem_breaker *)b;
    free(m->cells);
    free(m);
}

static const gw_breaker_ops mem_ops = {mem_allow, mem_record, mem_snapshot, mem_free, NULL};

gw_err gw_breaker_mem_new(const gw_breaker_opts *o, size_t count, gw_clock_fn clock, void *clock_ud,
                          uint64_t seed, gw_breaker **out)
{
    if (gw_breaker_opts_check(o, NULL, 0) != GW_OK || count == 0)
        return GW_E_CONFIG;
    mem_breaker *m = calloc(1, sizeof *m);
    gw_brk_cell *cells = calloc(count, sizeof *cells);
    if (m == NULL || cells == NULL) {
        free(m);
        free(cells);
        return GW_E_NOMEM;
    }
    for (size_t i = 0; i < count; i++)
        brk_cell_init(&cells[i]);
    m->base = (gw_breaker){.ops = &mem_ops, .o = *o, .count = count};
    m->clock = clock != NULL ? clock : gw_clock_monotonic_ms;
    m->clock_ud = clock_ud;
    gw_rng_seed(&m->rng, seed);
    m->cells = cells;
    *out = &m->base;
    return GW_OK;
}
