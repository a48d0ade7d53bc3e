/*
 * aimd: the adaptive in-flight cap; see aimd.h.
 */
#include "route/aimd.h"

#include <math.h>

enum { LAT_MIN_SAMPLES = 20, HOLD_MIN_MS = 100, HOLD_MAX_MS = 5000, HOLD_DEFAULT_MS = 1000 };

#define RECENT_ALPHA 0.2
#define BASE_ALPHA   0.01

void gw_aimd_opts_from_config(const gw_config *cfg, gw_aimd_opts *o)
{
    const gw_routing_config *r = &cfg->routing;
    *o = (gw_aimd_opts){.enabled = r->adaptive_concurrency,
                        .min = r->concurrency_min,
                        .increase = r->concurrency_increase,
                        .decrease = r->concurrency_decrease,
                        .latency_factor = r->concurrency_latency_factor,
                        .low_remaining = r->concurrency_low_remaining};
}

static double clamp_cap(const gw_aimd *a, const gw_aimd_opts *o, double c)
{
    double lo = o->min < a->max ? o->min : a->max;
    if (lo < 1)
        lo = 1;
    return c < lo ? lo : c > a->max ? a->max : c;
}

void gw_aimd_init(gw_aimd *a, const gw_aimd_opts *o, int32_t max)
{
    *a = (gw_aimd){.max = max > 0 ? max : 1};
    a->cap = clamp_cap(a, o, a->max);
}

int32_t gw_aimd_limit(const gw_aimd *a)
{
    int32_t l = (int32_t)floor(a->cap);
    return l < 1 ? 1 : l;
}

int64_t gw_aimd_hold_ms(const gw_aimd *a)
{
    if (a->samples == 0 || a->recent_total_ms <= 0)
        return HOLD_DEFAULT_MS;
    double h = a->recent_total_ms;
    return h < HOLD_MIN_MS ? HOLD_MIN_MS : h > HOLD_MAX_MS ? HOLD_MAX_MS : (int64_t)h;
}

static void observe_latency(gw_aimd *a, const gw_aimd_signal *s)
{
    if (s->kind != GW_AIMD_SUCCESS || s->total_ms < 0)
        return;
    double t = s->ttft_ms >= 0 ? s->ttft_ms : s->total_ms;
    if (a->samples++ == 0) {
        a->base_ttft_ms = a->recent_ttft_ms = t;
        a->recent_total_ms = s->total_ms;
        return;
    }
    a->recent_ttft_ms += RECENT_ALPHA * (t - a->recent_ttft_ms);
    a->recent_total_ms += RECENT_ALPHA * (s->total_ms - a->recent_total_ms);
    a->base_ttft_ms += BASE_ALPHA * (t - a->base_ttft_ms);
}

/* Why this result says the deployment is overloaded; false when it does not. */
static bool congested(const gw_aimd *a, const gw_aimd_opts *o, const gw_aimd_signal *s)
{
    if (s->kind == GW_AIMD_RATE_LIMITED)
        return true;
    if (s->rl != NULL) {
        double share = gw_ratelimit_remaining_share(s->rl);
        if (share >= 0 && share <= o->low_remaining)
            return true;
    }
    return o->latency_factor > 0 && s->kind == GW_AIMD_SUCCESS && a->samples >= LAT_MIN_SAMPLES &&
           a->recent_ttft_ms > o->latency_factor * a->base_ttft_ms;
}

bool gw_aimd_on_result(gw_aimd *a, const gw_aimd_opts *o, int64_t now_ms, const gw_aimd_signal *s)
{
    if (!o->enabled)
        return false;
    int32_t before = gw_aimd_limit(a);
    observe_latency(a, s);
    if (congested(a, o, s)) {
        int64_t wait = s->retry_after_ms;
        int64_t reset = s->rl != NULL ? gw_ratelimit_reset_ms(s->rl) : -1;
        if (reset > wait)
            wait = reset;
        if (wait < 0 && s->kind == GW_AIMD_RATE_LIMITED)
            wait = gw_aimd_hold_ms(a);
        if (wait > 0 && now_ms + wait > a->grow_after_ms)
            a->grow_after_ms = now_ms + wait;
        if (now_ms < a->hold_until_ms)
            return false;
        a->cap = clamp_cap(a, o, a->cap * o->decrease);
        a->hold_until_ms = now_ms + gw_aimd_hold_ms(a);
        a->pend_dec++;
        a->decreases++;
    } else if (s->kind == GW_AIMD_SUCCESS && now_ms >= a->grow_after_ms && a->cap < a->max) {
        double inc = o->increase / a->cap;
        double c = clamp_cap(a, o, a->cap + inc);
        a->pend_inc += c - a->cap;
        a->cap = c;
    }
    return gw_aimd_limit(a) != before;
}

void gw_aimd_take(gw_aimd *a, double *inc, int32_t *dec)
{
    *inc = a->pend_inc;
    *dec = a->pend_dec;
    a->pend_inc = 0;
    a->pend_dec = 0;
}

bool gw_aimd_adopt(gw_aimd *a, const gw_aimd_opts *o, double fleet_cap)
{
    if (!o->enabled || !(fleet_cap > 0))
        return false;
    int32_t before = gw_aimd_limit(a);
    double c = fleet_cap + a->pend_inc;
    if (a->pend_dec > 0 && a->cap < c)
        c = a->cap;
    a->cap = clamp_cap(a, o, c);
    return gw_aimd_limit(a) != before;
}
