/*
 * router: candidate filtering, scoring and tie spreading; see router.h.
 *
 * Invariant: gw_route never allocates and never does I/O; everything lives in
 * the fixed arrays of the caller's plan and a stack array of candidates.
 */
#include "route/router.h"

#include <math.h>
#include <string.h>

#include "provider/provider.h"

typedef struct {
    uint16_t idx;
    bool half_open;
    bool cold; /* fewer than min_samples latency samples: its latency is the prior */
    double score;
    double w; /* tie-break weight: weight / (1 + in-flight) */
    double lat, cost, qual;
} cand;

void gw_router_opts_from_config(const gw_config *cfg, gw_router_opts *o)
{
    const gw_routing_config *r = &cfg->routing;
    *o = (gw_router_opts){.max_fallbacks = r->max_fallbacks,
                          .w_latency = r->w_latency,
                          .w_cost = r->w_cost,
                          .w_quality = r->w_quality,
                          .min_samples = r->min_samples,
                          .tie_rel_eps = r->tie_rel_eps,
                          .explore_share = r->explore_share,
                          .explore_rate = r->explore_rate};
}

double gw_route_estimate_cost_usd(const gw_deployment *d, int32_t prompt_tokens,
                                  int32_t completion_tokens)
{
    return ((double)prompt_tokens * d->price_in_usd_per_mtok +
            (double)completion_tokens * d->price_out_usd_per_mtok) /
           1e6;
}

/* The capabilities req asks for, and "tools" whenever it carries tools (a
 * deployment without it is never chosen for them, whatever the caller
 * listed). */
static bool has_caps(const gw_deployment *d, const gw_request *req)
{
    for (size_t i = 0; i < req->capability_count; i++)
        if (!gw_deployment_has_capability(d, req->capabilities[i]))
            return false;
    return req->tool_count == 0 || gw_deployment_has_capability(d, "tools");
}

static int unneeded_caps(const gw_deployment *d, const gw_request *req)
{
    int n = 0;
    for (size_t i = 0; i < d->capability_count; i++) {
        bool asked = false;
        for (size_t j = 0; j < req->capability_count && !asked; j++)
            asked = strcmp(d->capabilities[i], req->capabilities[j]) == 0;
        n += asked ? 0 : 1;
    }
    return n;
}

static bool name_matches(const gw_deployment *d, const char *name)
{
    return strcmp(d->id, name) == 0 || strcmp(d->model, name) == 0;
}

static double observed_latency(const gw_route_view *v, const gw_router_opts *o,
                               const gw_deployment *d, size_t idx, bool stream, bool *cold)
{
    gw_latency l = {0};
    if (v != NULL && v->latency != NULL)
        v->latency(v->ud, idx, &l);
    *cold = !(l.samples >= o->min_samples && l.samples > 0);
    if (!*cold)
        return stream && l.ttft_ms > 0 ? l.ttft_ms : l.total_ms;
    return stream ? d->ttft_prior_ms : d->latency_prior_ms;
}

/* Filter stage bookkeeping: which filter emptied the set decides the error. */
typedef struct {
    bool named, capable, fits, ready;
} survivors;

static size_t collect(const gw_registry *reg, const gw_request *req, const gw_route_view *v,
                      int64_t need, cand *c, survivors *s)
{
    const char *want = req->model != NULL && req->model[0] != '\0' ? req->model : NULL;
    size_t m = 0;
    for (size_t i = 0; i < gw_registry_count(reg); i++) {
        const gw_deployment *d = gw_registry_get(reg, i);
        if (want != NULL && !name_matches(d, want))
            continue;
        s->named = true;
        if (!has_caps(d, req))
            continue;
        s->capable = true;
        if (need > d->context_window_tokens)
            continue;
        s->fits = true;
        if (!gw_registry_provider_ready(reg, i))
            continue;
        s->ready = true;
        gw_breaker_state st = GW_BREAKER_CLOSED;
        if (v != NULL && v->breaker_state != NULL)
            st = v->breaker_state(v->ud, i);
        if (st == GW_BREAKER_OPEN)
            continue;
        int inflight = v != NULL && v->inflight != NULL ? v->inflight(v->ud, i) : 0;
        c[m] = (cand){.idx = (uint16_t)i, .half_open = st == GW_BREAKER_HALF_OPEN};
        c[m].w = (double)d->weight / (1.0 + (inflight > 0 ? inflight : 0));
        m++;
    }
    return m;
}

static gw_err empty_error(const gw_request *req, const survivors *s)
{
    if (!s->named)
        return req->model != NULL && req->model[0] != '\0' ? GW_E_UNKNOWN_MODEL
                                                           : GW_E_NO_CAPABLE_MODEL;
    if (!s->capable)
        return GW_E_NO_CAPABLE_MODEL;
    if (!s->fits)
        return GW_E_CONTEXT_TOO_LONG;
    if (!s->ready)
        return GW_E_PROVIDER_NOT_CONFIGURED;
    return req->model != NULL && req->model[0] != '\0' ? GW_E_CIRCUIT_OPEN
                                                       : GW_E_ALL_MODELS_UNAVAILABLE;
}

static double norm(double x, double lo, double hi)
{
    return hi > lo ? (x - lo) / (hi - lo) : 0.0;
}

static void score_balanced(const gw_router_opts *o, cand *c, size_t m)
{
    double lo[3] = {INFINITY, INFINITY, INFINITY}, hi[3] = {-INFINITY, -INFINITY, -INFINITY};
    for (size_t i = 0; i < m; i++) {
        double v[3] = {c[i].lat, c[i].cost, c[i].qual};
        for (int k = 0; k < 3; k++) {
            lo[k] = fmin(lo[k], v[k]);
            hi[k] = fmax(hi[k], v[k]);
        }
    }
    for (size_t i = 0; i < m; i++)
        c[i].score = o->w_latency * norm(c[i].lat, lo[0], hi[0]) +
                     o->w_cost * norm(c[i].cost, lo[1], hi[1]) +
                     o->w_quality * (1.0 - norm(c[i].qual, lo[2], hi[2]));
}

static void score_all(const gw_registry *reg, const gw_router_opts *o, const gw_request *req,
                      const gw_route_view *v, int32_t prompt, cand *c, size_t m)
{
    int32_t out_tokens = req->max_tokens > 0 ? req->max_tokens : 0;
    for (size_t i = 0; i < m; i++) {
        const gw_deployment *d = gw_registry_get(reg, c[i].idx);
        c[i].lat = observed_latency(v, o, d, c[i].idx, req->stream, &c[i].cold);
        c[i].cost = gw_route_estimate_cost_usd(d, prompt, out_tokens);
        c[i].qual = d->quality;
        switch (req->routing_strategy) {
        case GW_ROUTE_FASTEST:
            c[i].score = c[i].lat;
            break;
        case GW_ROUTE_CHEAPEST:
            c[i].score = c[i].cost;
            break;
        case GW_ROUTE_BEST_QUALITY:
            c[i].score = -d->quality;
            break;
        case GW_ROUTE_CAPABILITY_MATCH:
            c[i].score = 2.0 * unneeded_caps(d, req) + (1.0 - d->quality);
            break;
        default:
            break;
        }
    }
    if (req->routing_strategy == GW_ROUTE_BALANCED || req->routing_strategy >= GW_ROUTE__COUNT)
        score_balanced(o, c, m);
}

static bool before(const cand *a, const cand *b)
{
    if (a->half_open != b->half_open)
        return !a->half_open;
    return a->score < b->score;
}

static void sort_cands(cand *c, size_t m)
{
    for (size_t i = 1; i < m; i++) {
        cand x = c[i];
        size_t j = i;
        for (; j > 0 && before(&x, &c[j - 1]); j--)
            c[j] = c[j - 1];
        c[j] = x;
    }
}

static bool ties(const gw_router_opts *o, const cand *a, const cand *b)
{
    if (a->half_open != b->half_open)
        return false;
    double scale = fmax(fabs(a->score), fabs(b->score));
    return fabs(a->score - b->score) <= o->tie_rel_eps * scale + 1e-12;
}

/* Weighted random order of c[lo..hi] without replacement. */
static void spread(cand *c, size_t lo, size_t hi, gw_rng *rng)
{
    for (size_t k = lo; k < hi; k++) {
        double total = 0;
        for (size_t i = k; i <= hi; i++)
            total += c[i].w;
        double r = gw_rng_unit(rng) * total;
        size_t pick = hi;
        for (size_t i = k; i <= hi; i++) {
            r -= c[i].w;
            if (r < 0) {
                pick = i;
                break;
            }
        }
        cand t = c[k];
        c[k] = c[pick];
        c[pick] = t;
    }
}

/* The strategies whose ranking depends on observed latency, so they must
 * observe: CHEAPEST, BEST_QUALITY and CAPABILITY_MATCH rank by static
 * properties of the deployments, and exploring would only cost quality or
 * money. */
static bool learns_latency(gw_strategy s)
{
    return s == GW_ROUTE_FASTEST || s == GW_ROUTE_BALANCED || s >= GW_ROUTE__COUNT;
}

/* Index of the k-th (from 0) cold candidate of c[1..n), or 0. */
static size_t nth_cold(const cand *c, size_t n, size_t k)
{
    for (size_t i = 1; i < n; i++)
        if (c[i].cold && k-- == 0)
            return i;
    return 0;
}

/*
 * Exploration: with probability explore_share one of the cold CLOSED
 * candidates behind the leader (picked uniformly) leads instead; otherwise
 * with probability explore_rate a uniformly picked CLOSED candidate behind
 * the leader does. The former leader stays first among the others, so a
 * failed exploration fails over to it. Only candidates that passed every
 * filter take part; HALF_OPEN ones are left to the breaker's probe.
 */
static void explore(const gw_router_opts *o, cand *c, size_t m, gw_rng *rng)
{
    size_t closed = 0;
    while (closed < m && !c[closed].half_open)
        closed++;
    if (closed < 2)
        return;
    size_t cold = 0;
    for (size_t i = 1; i < closed; i++)
        cold += c[i].cold;
    size_t pick = 0;
    if (cold > 0 && o->explore_share > 0 && gw_rng_unit(rng) < o->explore_share)
        pick = nth_cold(c, closed, (size_t)(gw_rng_unit(rng) * (double)cold) % cold);
    if (pick == 0 && o->explore_rate > 0 && gw_rng_unit(rng) < o->explore_rate)
        pick = 1 + (size_t)(gw_rng_unit(rng) * (double)(closed - 1)) % (closed - 1);
    if (pick == 0)
        return;
    cand x = c[pick];
    memmove(&c[1], &c[0], pick * sizeof *c);
    c[0] = x;
}

gw_err gw_route(const gw_registry *reg, const gw_router_opts *o, const gw_request *req,
                const gw_route_view *view, gw_rng *rng, gw_route_plan *plan)
{
    cand c[GW_REGISTRY_MAX];
    survivors s = {0};
    int32_t prompt = gw_estimate_prompt_tokens(req);
    int64_t need = (int64_t)prompt + (req->max_tokens > 0 ? req->max_tokens : 0);
    plan->count = 0;
    plan->prompt_tokens_est = prompt;
    plan->need_tokens = need > INT32_MAX ? INT32_MAX : (int32_t)need;
    size_t m = collect(reg, req, view, need, c, &s);
    if (m == 0)
        return empty_error(req, &s);
    score_all(reg, o, req, view, prompt, c, m);
    sort_cands(c, m);
    for (size_t i = 0; rng != NULL && i < m;) {
        size_t j = i;
        while (j + 1 < m && ties(o, &c[i], &c[j + 1]))
            j++;
        if (j > i)
            spread(c, i, j, rng);
        i = j + 1;
    }
    if (rng != NULL && learns_latency(req->routing_strategy))
        explore(o, c, m, rng);
    size_t cap = o->max_fallbacks >= 0 ? (size_t)o->max_fallbacks + 1 : 1;
    plan->count = m < cap ? m : cap;
    for (size_t i = 0; i < plan->count; i++) {
        plan->idx[i] = c[i].idx;
        plan->score[i] = c[i].score;
    }
    return GW_OK;
}
