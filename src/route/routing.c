/*
 * routing: the facade over registry, router, failover, breaker and latency
 * statistics; see routing.h.
 */
#include "route/routing.h"

#include <stdio.h>
#include <stdlib.h>

#include "route/aimd.h"
#include "route/health.h"

struct gw_routing {
    const gw_config *cfg;
    gw_registry *reg;
    gw_router_opts ropts;
    gw_failover_opts fopts;
    gw_breaker *brk;
    gw_latstats *lat;
    gw_providers *providers;
    gw_rng rng;
    gw_aimd_opts aopts;
    gw_aimd *aimd;      /* per deployment; NULL when adaptive concurrency is off */
    double *fleet_seen; /* the fleet cap last adopted, per deployment */
};

static gw_breaker_state view_state(void *ud, size_t idx)
{
    return gw_breaker_peek(((gw_routing *)ud)->brk, idx);
}

static void view_latency(void *ud, size_t idx, gw_latency *out)
{
    gw_latstats_get(((gw_routing *)ud)->lat, idx, out);
}

static int view_inflight(void *ud, size_t idx)
{
    gw_routing *rt = ud;
    if (rt->providers == NULL)
        return 0;
    return gw_providers_inflight(rt->providers, gw_registry_get(rt->reg, idx));
}

static gw_err make_backends(gw_routing *rt, gw_redis *redis, uint64_t seed, char *errbuf,
                            size_t errlen)
{
    const gw_config *cfg = rt->cfg;
    gw_breaker_opts bo;
    gw_breaker_opts_from_config(cfg, &bo);
    gw_err e = gw_breaker_opts_check(&bo, errbuf, errlen);
    if (e != GW_OK)
        return e;
    size_t n = gw_registry_count(rt->reg);
    if (redis == NULL) {
        e = gw_breaker_mem_new(&bo, n, NULL, NULL, seed, &rt->brk);
        if (e == GW_OK)
            e = gw_latstats_mem_new(n, cfg->routing.ewma_alpha, &rt->lat);
    } else {
        const char *pfx = cfg->redis.key_prefix;
        e = gw_breaker_redis_new(&bo, rt->reg, redis, pfx, seed, &rt->brk);
        if (e == GW_OK)
            e = gw_latstats_redis_new(rt->reg, redis, pfx, cfg->routing.ewma_alpha,
                                      cfg->routing.stats_refresh_ms, cfg->routing.stats_ttl_s,
                                      &rt->lat);
    }
    if (e == GW_E_CONFIG && errbuf != NULL && errlen > 0)
        snprintf(errbuf, errlen, "routing: invalid ewma_alpha, stats or key prefix settings");
    return e;
}

static gw_err make_aimd(gw_routing *rt)
{
    gw_aimd_opts_from_config(rt->cfg, &rt->aopts);
    if (!rt->aopts.enabled)
        return GW_OK;
    size_t n = gw_registry_count(rt->reg);
    rt->aimd = calloc(n, sizeof *rt->aimd);
    rt->fleet_seen = calloc(n, sizeof *rt->fleet_seen);
    if (rt->aimd == NULL || rt->fleet_seen == NULL)
        return GW_E_NOMEM;
    for (size_t i = 0; i < n; i++)
        gw_aimd_init(&rt->aimd[i], &rt->aopts, gw_registry_get(rt->reg, i)->max_concurrency);
    return GW_OK;
}

gw_err gw_routing_new(const gw_config *cfg, gw_redis *redis, gw_providers *providers,
                      gw_provider_mask mask, uint64_t seed, char *errbuf, size_t errlen,
                      gw_routing **out)
{
    gw_routing *rt = calloc(1, sizeof *rt);
    if (rt == NULL)
        return GW_E_NOMEM;
    rt->cfg = cfg;
    rt->providers = providers;
    gw_rng_seed(&rt->rng, seed);
    gw_router_opts_from_config(cfg, &rt->ropts);
    gw_failover_opts_from_config(cfg, &rt->fopts);
    gw_err e =
        gw_registry_new(cfg->deployments, cfg->deployment_count, mask, errbuf, errlen, &rt->reg);
    if (e == GW_OK)
        e = make_backends(rt, redis, seed ^ 0x5bd1e995u, errbuf, errlen);
    if (e == GW_OK)
        e = make_aimd(rt);
    if (e != GW_OK) {
        gw_routing_free(rt);
        return e;
    }
    *out = rt;
    return GW_OK;
}

void gw_routing_free(gw_routing *rt)
{
    if (rt == NULL)
        return;
    gw_latstats_free(rt->lat);
    gw_breaker_free(rt->brk);
    gw_registry_free(rt->reg);
    free(rt->aimd);
    free(rt->fleet_seen);
    free(rt);
}

const gw_registry *gw_routing_registry(const gw_routing *rt)
{
    return rt->reg;
}

gw_breaker *gw_routing_breaker(gw_routing *rt)
{
    return rt->brk;
}

gw_latstats *gw_routing_latency(gw_routing *rt)
{
    return rt->lat;
}

gw_err gw_routing_route(gw_routing *rt, const gw_request *req, gw_route_plan *plan)
{
    gw_route_view v = {view_state, view_latency, view_inflight, rt};
    return gw_route(rt->reg, &rt->ropts, req, &v, &rt->rng, plan);
}

void gw_routing_failover_init(gw_routing *rt, gw_failover *fo, const gw_route_plan *plan)
{
    gw_failover_init(fo, &rt->fopts, rt->reg, plan, &rt->rng);
}

bool gw_routing_allow(gw_routing *rt, size_t idx, const char *token, gw_breaker_decision *out,
                      gw_breaker_allow_cb cb, void *ud)
{
    return gw_breaker_allow(rt->brk, idx, token, out, cb, ud);
}

/* The cap in force on the provider layer follows the controller's. */
static void push_limit(gw_routing *rt, size_t idx)
{
    if (rt->providers != NULL)
        gw_providers_set_limit(rt->providers, gw_registry_get(rt->reg, idx),
                               gw_aimd_limit(&rt->aimd[idx]));
}

/* Feed the deployment's adaptive cap; a changed cap goes to the provider layer at once. */
static void adapt(gw_routing *rt, size_t idx, const gw_provider_result *res)
{
    gw_aimd_signal s = {.kind = GW_AIMD_OTHER,
                        .ttft_ms = res->ttft_ms > 0 ? res->ttft_ms : -1,
                        .total_ms = res->latency_ms,
                        .retry_after_ms = res->retry_after_ms,
                        .rl = res->ratelimit.have != 0 ? &res->ratelimit : NULL};
    if (res->err == GW_OK)
        s.kind = GW_AIMD_SUCCESS;
    else if (res->http_status == 429 || res->err == GW_E_PROVIDER_RATE_LIMITED)
        s.kind = GW_AIMD_RATE_LIMITED;
    if (s.kind == GW_AIMD_OTHER && s.rl == NULL)
        return;
    if (gw_aimd_on_result(&rt->aimd[idx], &rt->aopts, gw_clock_monotonic_ms(NULL), &s))
        push_limit(rt, idx);
}

void gw_routing_report(gw_routing *rt, size_t idx, const char *token, bool was_probe,
                       const gw_provider_result *res)
{
    gw_breaker_outcome o = {.kind = gw_breaker_classify(res->err, res->http_status),
                            .probe = was_probe,
                            .retry_after_ms = res->retry_after_ms};
    gw_breaker_record(rt->brk, idx, token, &o);
    if (res->err == GW_OK)
        gw_latstats_record(rt->lat, idx, res->ttft_ms > 0 ? res->ttft_ms : -1, res->latency_ms);
    if (rt->aimd != NULL && idx < gw_registry_count(rt->reg) &&
        gw_registry_get(rt->reg, idx)->max_concurrency > 0)
        adapt(rt, idx, res);
}

/* Send the cap changes with the latency batch, then adopt the fleet's caps
 * (from the replies and reads of the latency statistics). */
static void share_caps(gw_routing *rt)
{
    for (size_t i = 0; i < gw_registry_count(rt->reg); i++) {
        gw_aimd *a = &rt->aimd[i];
        double inc;
        int32_t dec;
        gw_aimd_take(a, &inc, &dec);
        if (inc == 0 && dec == 0)
            continue;
        gw_latstats_cap p = {.min = rt->aopts.min,
                             .max = a->max,
                             .decrease = rt->aopts.decrease,
                             .hold_ms = gw_aimd_hold_ms(a)};
        gw_latstats_concurrency(rt->lat, i, inc, dec, &p);
    }
}

static void adopt_caps(gw_routing *rt)
{
    for (size_t i = 0; i < gw_registry_count(rt->reg); i++) {
        gw_latency l;
        gw_latstats_get(rt->lat, i, &l);
        if (!(l.fleet_cap > 0) || l.fleet_cap == rt->fleet_seen[i])
            continue;
        rt->fleet_seen[i] = l.fleet_cap;
        if (gw_aimd_adopt(&rt->aimd[i], &rt->aopts, l.fleet_cap))
            push_limit(rt, i);
    }
}

void gw_routing_flush(gw_routing *rt)
{
    if (rt == NULL)
        return;
    gw_breaker_flush(rt->brk);
    if (rt->aimd != NULL)
        share_caps(rt);
    gw_latstats_flush(rt->lat);
    if (rt->aimd != NULL)
        adopt_caps(rt);
}

int gw_routing_concurrency_limit(const gw_routing *rt, size_t idx)
{
    if (idx >= gw_registry_count(rt->reg))
        return 0;
    const gw_deployment *d = gw_registry_get(rt->reg, idx);
    if (rt->aimd == NULL || d->max_concurrency <= 0) /* 0: unlimited, nothing to adapt */
        return d->max_concurrency;
    return gw_aimd_limit(&rt->aimd[idx]);
}

static int health_inflight(void *ud, size_t idx)
{
    return view_inflight(ud, idx);
}

json_t *gw_routing_health_json(gw_routing *rt)
{
    json_t *root = gw_route_health_json(rt->reg, rt->brk, rt->lat, health_inflight, rt);
    json_t *deps = root != NULL ? json_object_get(root, "deployments") : NULL;
    for (size_t i = 0; i < json_array_size(deps); i++)
        json_object_set_new(json_array_get(deps, i), "concurrency_limit",
                            json_integer(gw_routing_concurrency_limit(rt, i)));
    return root;
}
