/*
 * Router and registry: tables of deployments and requests; each strategy
 * picks what it should; capability, context, preferred-model, provider and
 * breaker filters with their distinct errors; weighted tie spreading over
 * many seeded draws; FASTEST moving to the faster deployment once latency
 * samples arrive; exploration of deployments without samples (the issue's
 * scenario replayed offline, the share bound, eligibility, strategies that
 * never explore).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "route/failover.h"
#include "route/router.h"

#define DEP(id_, kind_, model_, lat, ttft, pin, pout, q, ctx, w)                                   \
    {                                                                                              \
        .id = id_, .provider = kind_, .model = model_, .latency_prior_ms = lat,                    \
        .ttft_prior_ms = ttft, .price_in_usd_per_mtok = pin, .price_out_usd_per_mtok = pout,       \
        .quality = q, .context_window_tokens = ctx, .weight = w                                    \
    }

/* fast, cheap, smart (chat code vision), coder (chat code, small context). */
static gw_deployment deps[4] = {
    DEP("fast", GW_PROVIDER_MOCK, "m-fast", 100, 50, 10, 30, 0.7, 32000, 1),
    DEP("cheap", GW_PROVIDER_MOCK, "m-cheap", 800, 300, 0.1, 0.2, 0.5, 32000, 1),
    DEP("smart", GW_PROVIDER_MOCK, "m-smart", 1500, 600, 15, 60, 0.95, 128000, 1),
    DEP("coder", GW_PROVIDER_MOCK, "m-coder", 600, 200, 1, 2, 0.8, 8000, 1),
};

static void set_caps(gw_deployment *d, int n, ...)
{
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        d->capabilities[i] = va_arg(ap, const char *);
    va_end(ap);
    d->capability_count = (size_t)n;
}

static gw_registry *reg4(void)
{
    set_caps(&deps[0], 1, "chat");
    set_caps(&deps[1], 1, "chat");
    set_caps(&deps[2], 3, "chat", "code", "vision");
    set_caps(&deps[3], 2, "chat", "code");
    gw_registry *r = NULL;
    assert_int_equal(gw_registry_new(deps, 4, GW_PROVIDER_MASK_ALL, NULL, 0, &r), GW_OK);
    return r;
}

static gw_message msg = {.role = GW_ROLE_USER, .content = "hello there, how are you?"};

static gw_request mkreq(gw_strategy s, int32_t max_tokens)
{
    return (gw_request){.request_id = "r1",
                        .messages = &msg,
                        .message_count = 1,
                        .max_tokens = max_tokens,
                        .routing_strategy = s};
}

static const char *first(gw_registry *r, const gw_request *req, const gw_route_view *v)
{
    gw_router_opts o;
    gw_router_opts_from_config(gw_config_defaults(), &o);
    gw_route_plan p;
    gw_err e = gw_route(r, &o, req, v, NULL, &p);
    assert_int_equal(e, GW_OK);
    assert_true(p.count >= 1);
    return gw_registry_get(r, p.idx[0])->id;
}

static gw_err route_err(gw_registry *r, const gw_request *req, const gw_route_view *v)
{
    gw_router_opts o;
    gw_router_opts_from_config(gw_config_defaults(), &o);
    gw_route_plan p;
    return gw_route(r, &o, req, v, NULL, &p);
}

/* The options come from the config table only: its defaults, or a --set. */
static void test_opts_from_config(void **st)
{
    (void)st;
    const gw_config *def = gw_config_defaults();
    gw_router_opts o;
    gw_router_opts_from_config(def, &o);
    assert_int_equal(o.max_fallbacks, 3);
    assert_true(o.w_latency == 1.0 && o.w_cost == 1.0 && o.w_quality == 1.0);
    assert_int_equal(o.min_samples, 5);
    assert_true(o.tie_rel_eps == 0.02);
    assert_true(o.explore_share == 0.1 && o.explore_rate == 0.02);
    gw_failover_opts fo;
    gw_failover_opts_from_config(def, &fo);
    assert_int_equal(fo.max_attempts_per_deployment, 2);
    assert_int_equal(fo.max_retry_after_ms, 10000);
    assert_int_equal(fo.max_total_attempts, 6);
    gw_breaker_opts bo;
    gw_breaker_opts_from_config(def, &bo);
    assert_int_equal(bo.window_ms, 30000);
    assert_int_equal(bo.open_base_ms, 5000);
    assert_int_equal(bo.local_cache_ms, 250);
    assert_int_equal(bo.probe_lease_ms, 30000);
    assert_int_equal(bo.rate_limit_default_ms, 1000);
    assert_int_equal(bo.rate_limit_max_ms, 10000); /* retry.max_retry_after_ms */
    assert_int_equal(bo.state_ttl_ms, 3600000);
    assert_int_equal(gw_breaker_opts_check(&bo, NULL, 0), GW_OK);

    const char *sets[] = {"routing.tie_rel_eps=0.1", "retry.max_total_attempts=3",
                          "retry.max_retry_after_ms=0", "breaker.rate_limit_max_ms=7000"};
    char err[256] = "";
    gw_config *cfg = NULL;
    assert_int_equal(gw_config_load_with(NULL, sets, 4, &cfg, err, sizeof err), GW_OK);
    gw_router_opts_from_config(cfg, &o);
    gw_failover_opts_from_config(cfg, &fo);
    gw_breaker_opts_from_config(cfg, &bo);
    assert_true(o.tie_rel_eps == 0.1);
    assert_int_equal(fo.max_total_attempts, 3);
    assert_int_equal(bo.rate_limit_max_ms, 7000);
    gw_config_free(cfg);
}

static void test_registry_validation(void **st)
{
    (void)st;
    char err[200];
    gw_registry *r = NULL;
    gw_deployment bad[2] = {deps[0], deps[0]};
    assert_int_equal(gw_registry_new(bad, 2, GW_PROVIDER_MASK_ALL, err, sizeof err, &r),
                     GW_E_CONFIG);
    assert_non_null(strstr(err, "duplicate"));
    bad[1].id = "other";
    bad[1].weight = 0;
    assert_int_equal(gw_registry_new(bad, 2, GW_PROVIDER_MASK_ALL, err, sizeof err, &r),
                     GW_E_CONFIG);
    assert_non_null(strstr(err, "weight"));
    bad[1].weight = 1;
    bad[1].context_window_tokens = 0;
    assert_int_equal(gw_registry_new(bad, 2, GW_PROVIDER_MASK_ALL, err, sizeof err, &r),
                     GW_E_CONFIG);
    assert_non_null(strstr(err, "context_window"));
    bad[1].context_window_tokens = 10;
    bad[1].id = "has space";
    assert_int_equal(gw_registry_new(bad, 2, GW_PROVIDER_MASK_ALL, err, sizeof err, &r),
                     GW_E_CONFIG);
    bad[1].id = "other";
    bad[1].quality = 1.5;
    assert_int_equal(gw_registry_new(bad, 2, GW_PROVIDER_MASK_ALL, err, sizeof err, &r),
                     GW_E_CONFIG);
    bad[1].quality = 0.5;
    bad[1].provider = (gw_provider_kind)99;
    assert_int_equal(gw_registry_new(bad, 2, GW_PROVIDER_MASK_ALL, err, sizeof err, &r),
                     GW_E_CONFIG);
    assert_int_equal(gw_registry_new(bad, 0, GW_PROVIDER_MASK_ALL, err, sizeof err, &r),
                     GW_E_CONFIG);

    r = reg4();
    assert_int_equal(gw_registry_count(r), 4);
    assert_int_equal(gw_registry_find_id(r, "smart"), 2);
    assert_int_equal(gw_registry_find_id(r, "nope"), -1);
    uint16_t m[4];
    assert_int_equal(gw_registry_match(r, "m-coder", m, 4), 1);
    assert_int_equal(m[0], 3);
    assert_int_equal(gw_registry_max_context(r), 128000);
    gw_registry_free(r);
}

static void test_each_strategy(void **st)
{
    (void)st;
    gw_registry *r = reg4();
    gw_request q = mkreq(GW_ROUTE_FASTEST, 100);
    assert_string_equal(first(r, &q, NULL), "fast");
    q.stream = true;
    assert_string_equal(first(r, &q, NULL), "fast");
    q = mkreq(GW_ROUTE_CHEAPEST, 100);
    assert_string_equal(first(r, &q, NULL), "cheap");
    q = mkreq(GW_ROUTE_BEST_QUALITY, 100);
    assert_string_equal(first(r, &q, NULL), "smart");
    /* Normalised: coder is second-cheapest, mid latency, good quality. */
    q = mkreq(GW_ROUTE_BALANCED, 100);
    assert_string_equal(first(r, &q, NULL), "coder");
    const char *code[] = {"code"};
    q = mkreq(GW_ROUTE_CAPABILITY_MATCH, 100);
    q.capabilities = code;
    q.capability_count = 1;
    assert_string_equal(first(r, &q, NULL), "coder"); /* 1 unneeded vs smart's 2 */
    /* BALANCED with all weight on quality is BEST_QUALITY. */
    gw_router_opts o;
    gw_router_opts_from_config(gw_config_defaults(), &o);
    o.w_latency = o.w_cost = 0;
    o.w_quality = 1;
    q = mkreq(GW_ROUTE_BALANCED, 100);
    gw_route_plan p;
    assert_int_equal(gw_route(r, &o, &q, NULL, NULL, &p), GW_OK);
    assert_string_equal(gw_registry_get(r, p.idx[0])->id, "smart");
    gw_registry_free(r);
}

static void test_fallback_chain_capped(void **st)
{
    (void)st;
    gw_registry *r = reg4();
    gw_router_opts o;
    gw_router_opts_from_config(gw_config_defaults(), &o);
    gw_route_plan p;
    gw_request q = mkreq(GW_ROUTE_CHEAPEST, 100);
    o.max_fallbacks = 1;
    assert_int_equal(gw_route(r, &o, &q, NULL, NULL, &p), GW_OK);
    assert_int_equal(p.count, 2);
    o.max_fallbacks = 10;
    assert_int_equal(gw_route(r, &o, &q, NULL, NULL, &p), GW_OK);
    assert_int_equal(p.count, 4);
    const char *want[] = {"cheap", "coder", "fast", "smart"};
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(gw_registry_get(r, p.idx[i])->id, want[i]);
    gw_registry_free(r);
}

static void test_capability_and_context_filters(void **st)
{
    (void)st;
    gw_registry *r = reg4();
    const char *vision[] = {"vision"}, *audio[] = {"audio"};
    gw_request q = mkreq(GW_ROUTE_CHEAPEST, 100);
    q.capabilities = vision;
    q.capability_count = 1;
    assert_string_equal(first(r, &q, NULL), "smart");
    q.capabilities = audio;
    assert_int_equal(route_err(r, &q, NULL), GW_E_NO_CAPABLE_MODEL);
    /* 10000 completion tokens: coder's 8000 window is out; the cheapest that fits. */
    q = mkreq(GW_ROUTE_CHEAPEST, 10000);
    assert_string_equal(first(r, &q, NULL), "cheap");
    q = mkreq(GW_ROUTE_CHEAPEST, 40000);
    assert_string_equal(first(r, &q, NULL), "smart");
    q = mkreq(GW_ROUTE_CHEAPEST, 200000);
    assert_int_equal(route_err(r, &q, NULL), GW_E_CONTEXT_TOO_LONG);
    /* Capability filter comes first: code + too long for coder -> smart. */
    const char *code[] = {"code"};
    q = mkreq(GW_ROUTE_CHEAPEST, 10000);
    q.capabilities = code;
    q.capability_count = 1;
    assert_string_equal(first(r, &q, NULL), "smart");
    gw_registry_free(r);
}

/* A request with tools goes only to deployments with the "tools" capability,
 * whether or not the caller listed it. */
static void test_tools_need_the_capability(void **st)
{
    (void)st;
    gw_registry *r = reg4();
    static gw_tool tool = {.name = "get_weather"};
    gw_request q = mkreq(GW_ROUTE_CHEAPEST, 100);
    q.tools = &tool;
    q.tool_count = 1;
    assert_int_equal(route_err(r, &q, NULL), GW_E_NO_CAPABLE_MODEL);
    gw_registry_free(r);
    set_caps(&deps[2], 4, "chat", "code", "vision", "tools");
    set_caps(&deps[3], 3, "chat", "code", "tools");
    r = NULL;
    assert_int_equal(gw_registry_new(deps, 4, GW_PROVIDER_MASK_ALL, NULL, 0, &r), GW_OK);
    gw_router_opts o;
    gw_router_opts_from_config(gw_config_defaults(), &o);
    gw_route_plan p;
    assert_int_equal(gw_route(r, &o, &q, NULL, NULL, &p), GW_OK);
    assert_int_equal(p.count, 2); /* only coder and smart, cheapest first */
    assert_string_equal(gw_registry_get(r, p.idx[0])->id, "coder");
    assert_string_equal(gw_registry_get(r, p.idx[1])->id, "smart");
    q.tool_count = 0; /* without tools every deployment is a candidate again */
    assert_string_equal(first(r, &q, NULL), "cheap");
    gw_registry_free(r);
}

static void test_preferred_model(void **st)
{
    (void)st;
    gw_registry *r = reg4();
    gw_request q = mkreq(GW_ROUTE_CHEAPEST, 100);
    q.model = "smart";
    assert_string_equal(first(r, &q, NULL), "smart");
    q.model = "m-coder";
    assert_string_equal(first(r, &q, NULL), "coder");
    q.model = "gpt-99";
    assert_int_equal(route_err(r, &q, NULL), GW_E_UNKNOWN_MODEL);
    q.model = "coder";
    q.max_tokens = 9000;
    assert_int_equal(route_err(r, &q, NULL), GW_E_CONTEXT_TOO_LONG);
    q.model = ""; /* empty is "no preference" */
    q.max_tokens = 100;
    assert_string_equal(first(r, &q, NULL), "cheap");
    gw_registry_free(r);
}

static void test_provider_not_configured(void **st)
{
    (void)st;
    gw_deployment d[2] = {deps[0], deps[1]};
    d[0].id = "oa";
    d[0].provider = GW_PROVIDER_OPENAI;
    d[0].capability_count = 0;
    d[1].capability_count = 0;
    gw_registry *r = NULL;
    assert_int_equal(gw_registry_new(d, 2, 1u << GW_PROVIDER_MOCK, NULL, 0, &r), GW_OK);
    assert_false(gw_registry_provider_ready(r, 0));
    gw_request q = mkreq(GW_ROUTE_FASTEST, 100);
    q.model = "oa";
    assert_int_equal(route_err(r, &q, NULL), GW_E_PROVIDER_NOT_CONFIGURED);
    q.model = NULL; /* the unconfigured one is skipped */
    assert_string_equal(first(r, &q, NULL), "cheap");
    gw_registry_free(r);
}

static gw_breaker_state states[4];
static gw_latency lats[4];
static int inflight[4];

static gw_breaker_state view_state(void *ud, size_t i)
{
    (void)ud;
    return states[i];
}

static void view_lat(void *ud, size_t i, gw_latency *out)
{
    (void)ud;
    *out = lats[i];
}

static int view_inflight(void *ud, size_t i)
{
    (void)ud;
    return inflight[i];
}

static const gw_route_view view = {view_state, view_lat, view_inflight, NULL};

static void test_breaker_filter(void **st)
{
    (void)st;
    gw_registry *r = reg4();
    memset(states, 0, sizeof states);
    gw_request q = mkreq(GW_ROUTE_CHEAPEST, 100);
    states[1] = GW_BREAKER_OPEN;
    assert_string_equal(first(r, &q, &view), "coder");
    states[3] = GW_BREAKER_HALF_OPEN; /* half-open ranks after every closed one */
    assert_string_equal(first(r, &q, &view), "fast");
    states[0] = states[2] = states[3] = GW_BREAKER_OPEN;
    assert_int_equal(route_err(r, &q, &view), GW_E_ALL_MODELS_UNAVAILABLE);
    q.model = "cheap";
    assert_int_equal(route_err(r, &q, &view), GW_E_CIRCUIT_OPEN);
    memset(states, 0, sizeof states);
    gw_registry_free(r);
}

/* Two deployments that tie on every score; only weight and in-flight differ. */
static void test_tie_spreading(void **st)
{
    (void)st;
    gw_deployment d[2] = {deps[0], deps[0]};
    d[1].id = "fast2";
    d[0].capability_count = d[1].capability_count = 0;
    d[0].weight = 3;
    d[1].weight = 1;
    gw_registry *r = NULL;
    assert_int_equal(gw_registry_new(d, 2, GW_PROVIDER_MASK_ALL, NULL, 0, &r), GW_OK);
    gw_router_opts o;
    gw_router_opts_from_config(gw_config_defaults(), &o);
    o.explore_share = o.explore_rate = 0; /* ties alone */
    gw_rng rng;
    gw_rng_seed(&rng, 42);
    gw_request q = mkreq(GW_ROUTE_FASTEST, 100);
    gw_route_plan p;
    int n0 = 0;
    const int N = 20000;
    memset(states, 0, sizeof states);
    memset(lats, 0, sizeof lats);
    memset(inflight, 0, sizeof inflight);
    for (int i = 0; i < N; i++) {
        assert_int_equal(gw_route(r, &o, &q, &view, &rng, &p), GW_OK);
        assert_int_equal(p.count, 2);
        n0 += p.idx[0] == 0;
    }
    /* weight 3:1 -> 75 %; binomial sd ~0.3 %, so +-2 % is > 6 sd. */
    assert_true(n0 > N * 0.73 && n0 < N * 0.77);
    /* Equal weights, 3 in flight on the first: 1/(1+3) vs 1 -> 20 % / 80 %. */
    d[0].weight = 1;
    inflight[0] = 3;
    n0 = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(gw_route(r, &o, &q, &view, &rng, &p), GW_OK);
        n0 += p.idx[0] == 0;
    }
    assert_true(n0 > N * 0.18 && n0 < N * 0.22);
    /* Same seed, same sequence. */
    gw_rng a, b;
    gw_rng_seed(&a, 7);
    gw_rng_seed(&b, 7);
    for (int i = 0; i < 100; i++) {
        gw_route_plan pa, pb;
        gw_route(r, &o, &q, &view, &a, &pa);
        gw_route(r, &o, &q, &view, &b, &pb);
        assert_int_equal(pa.idx[0], pb.idx[0]);
    }
    memset(inflight, 0, sizeof inflight);
    gw_registry_free(r);
}

static gw_latstats *g_stats;

static void stats_lat(void *ud, size_t i, gw_latency *out)
{
    (void)ud;
    gw_latstats_get(g_stats, i, out);
}

/* Priors say "a" is faster; reality says "b". FASTEST must move to b. */
static void test_fastest_shifts_to_observed(void **st)
{
    (void)st;
    gw_deployment d[2] = {deps[0], deps[0]};
    d[0].id = "a";
    d[1].id = "b";
    d[0].capability_count = d[1].capability_count = 0;
    d[0].latency_prior_ms = 100;
    d[1].latency_prior_ms = 200;
    const double real_ms[2] = {300, 100};
    gw_registry *r = NULL;
    assert_int_equal(gw_registry_new(d, 2, GW_PROVIDER_MASK_ALL, NULL, 0, &r), GW_OK);
    assert_int_equal(gw_latstats_mem_new(2, 0.3, &g_stats), GW_OK);
    gw_router_opts o;
    gw_router_opts_from_config(gw_config_defaults(), &o);
    o.explore_share = o.explore_rate = 0; /* the ranking alone */
    gw_route_view v = {.latency = stats_lat};
    gw_rng rng;
    gw_rng_seed(&rng, 1);
    gw_request q = mkreq(GW_ROUTE_FASTEST, 100);
    int picks_b_last10 = 0, first_b = -1;
    for (int i = 0; i < 30; i++) {
        gw_route_plan p;
        assert_int_equal(gw_route(r, &o, &q, &v, &rng, &p), GW_OK);
        size_t k = p.idx[0];
        gw_latstats_record(g_stats, k, real_ms[k] / 3, real_ms[k]);
        if (k == 1 && first_b < 0)
            first_b = i;
        if (i >= 20)
            picks_b_last10 += k == 1;
    }
    /* a serves until min_samples (5) real samples replace its prior. */
    assert_int_equal(first_b, o.min_samples);
    assert_int_equal(picks_b_last10, 10);
    gw_latency l;
    gw_latstats_get(g_stats, 1, &l);
    assert_true(l.samples > 20);
    assert_true(l.total_ms > 99.9 && l.total_ms < 100.1);
    gw_latstats_free(g_stats);
    gw_registry_free(r);
}

/* Two mock deployments without priors (both 1000 ms): "fast" answers in 20
 * ms, "smart" in 40 ms with a higher quality. */
static gw_registry *issue_pair(gw_deployment *d)
{
    d[0] = deps[0];
    d[1] = deps[2];
    d[0].capability_count = d[1].capability_count = 0;
    d[0].latency_prior_ms = d[1].latency_prior_ms = 1000;
    d[0].ttft_prior_ms = d[1].ttft_prior_ms = 300;
    d[0].price_in_usd_per_mtok = d[1].price_in_usd_per_mtok = 1;
    d[0].price_out_usd_per_mtok = d[1].price_out_usd_per_mtok = 1;
    gw_registry *r = NULL;
    assert_int_equal(gw_registry_new(d, 2, GW_PROVIDER_MASK_ALL, NULL, 0, &r), GW_OK);
    return r;
}

/* Route one request and feed its (real) latency back, as the worker does. */
static size_t route_and_learn(gw_registry *r, const gw_router_opts *o, gw_strategy s,
                              const gw_route_view *v, gw_rng *rng)
{
    static const double real_ms[2] = {20, 40};
    gw_request q = mkreq(s, 100);
    gw_route_plan p;
    assert_int_equal(gw_route(r, o, &q, v, rng, &p), GW_OK);
    size_t k = p.idx[0];
    gw_latstats_record(g_stats, k, real_ms[k] / 2, real_ms[k]);
    return k;
}

/* The issue's scenario, offline: 300 BALANCED requests went to the slower,
 * better deployment; without exploration FASTEST then kept choosing it (the
 * unsampled 20 ms one kept its 1,000 ms prior for ever). With the default
 * exploration FASTEST tries the cold one and converges to it. */
static void test_fastest_explores_cold_deployment(void **st)
{
    (void)st;
    gw_deployment d[2];
    gw_registry *r = issue_pair(d);
    gw_route_view v = {.latency = stats_lat};
    gw_router_opts o;
    gw_router_opts_from_config(gw_config_defaults(), &o);
    gw_rng rng;
    gw_rng_seed(&rng, 2026);

    /* The defect: no exploration, 300 BALANCED to "smart", then FASTEST 6/6 "smart". */
    gw_router_opts off = o;
    off.explore_share = off.explore_rate = 0;
    assert_int_equal(gw_latstats_mem_new(2, 0.2, &g_stats), GW_OK);
    for (int i = 0; i < 300; i++)
        assert_int_equal(route_and_learn(r, &off, GW_ROUTE_BALANCED, &v, &rng), 1);
    for (int i = 0; i < 6; i++)
        assert_int_equal(route_and_learn(r, &off, GW_ROUTE_FASTEST, &v, &rng), 1);

    /* The fix, from the same state: FASTEST explores "fast" and moves to it. */
    int first_fast = -1, fast_last100 = 0;
    for (int i = 0; i < 400; i++) {
        size_t k = route_and_learn(r, &o, GW_ROUTE_FASTEST, &v, &rng);
        if (k == 0 && first_fast < 0)
            first_fast = i;
        if (i >= 300)
            fast_last100 += k == 0;
    }
    /* P(no exploration in 100 draws) = 0.9^100 < 3e-5; the seed is fixed anyway. */
    assert_true(first_fast >= 0 && first_fast < 100);
    /* Only explore_rate (2 %) still goes to "smart": expected 98 of 100. */
    assert_true(fast_last100 >= 90);
    gw_latency l;
    gw_latstats_get(g_stats, 0, &l);
    assert_true(l.samples >= o.min_samples);
    assert_true(l.total_ms > 19.9 && l.total_ms < 20.1);
    gw_latstats_free(g_stats);

    /* BALANCED explores too: from scratch, "fast" gets samples while "smart" leads. */
    assert_int_equal(gw_latstats_mem_new(2, 0.2, &g_stats), GW_OK);
    int fast_n = 0;
    for (int i = 0; i < 300; i++)
        fast_n += route_and_learn(r, &o, GW_ROUTE_BALANCED, &v, &rng) == 0;
    gw_latstats_get(g_stats, 0, &l);
    assert_true(l.samples >= o.min_samples);
    assert_true(fast_n >= o.min_samples);
    gw_latstats_free(g_stats);
    gw_registry_free(r);
}

/* A leader with samples ("fast") and a cold CLOSED one ("cheap"): the cold
 * one gets explore_share + (1 - explore_share) * explore_rate of the leads
 * (11.8 % with the defaults), never more than the bound; an OPEN, HALF_OPEN
 * or incapable deployment is never explored; CHEAPEST, BEST_QUALITY and
 * CAPABILITY_MATCH never explore. */
static void test_explore_share_bounded(void **st)
{
    (void)st;
    gw_registry *r = reg4(); /* fast, cheap, smart, coder */
    gw_router_opts o;
    gw_router_opts_from_config(gw_config_defaults(), &o);
    gw_rng rng;
    gw_rng_seed(&rng, 99);
    memset(states, 0, sizeof states);
    memset(lats, 0, sizeof lats);
    memset(inflight, 0, sizeof inflight);
    lats[0] = (gw_latency){.ttft_ms = 10, .total_ms = 20, .samples = 100};
    states[2] = GW_BREAKER_OPEN;      /* smart: never */
    states[3] = GW_BREAKER_HALF_OPEN; /* coder: left to the breaker's probe */
    gw_request q = mkreq(GW_ROUTE_FASTEST, 100);
    const int N = 20000;
    int led[4] = {0};
    for (int i = 0; i < N; i++) {
        gw_route_plan p;
        assert_int_equal(gw_route(r, &o, &q, &view, &rng, &p), GW_OK);
        led[p.idx[0]]++;
        if (p.idx[0] != 0)
            assert_int_equal(p.idx[1], 0); /* the former leader is the first fallback */
    }
    assert_int_equal(led[2], 0);
    assert_int_equal(led[3], 0);
    /* Expected 0.118 N; binomial sd 0.0023 N; the bound share + rate = 0.12 N
     * plus 2 sd, and at least share - 1 %. */
    double cold = (double)led[1] / N;
    assert_true(cold <= o.explore_share + o.explore_rate + 0.005);
    assert_true(cold >= o.explore_share - 0.01);

    /* A capability filter: "code" leaves smart (open) and coder: coder is
     * the only eligible one, so nothing is explored in its place. */
    states[3] = GW_BREAKER_CLOSED;
    const char *code = "code";
    q.capabilities = &code;
    q.capability_count = 1;
    for (int i = 0; i < 1000; i++) {
        gw_route_plan p;
        assert_int_equal(gw_route(r, &o, &q, &view, &rng, &p), GW_OK);
        assert_int_equal(p.idx[0], 3);
        assert_int_equal(p.count, 1);
    }
    q.capabilities = NULL;
    q.capability_count = 0;

    /* Strategies that do not learn latency never explore. */
    const gw_strategy fixed[] = {GW_ROUTE_CHEAPEST, GW_ROUTE_BEST_QUALITY,
                                 GW_ROUTE_CAPABILITY_MATCH};
    for (size_t s = 0; s < 3; s++) {
        q.routing_strategy = fixed[s];
        gw_route_plan p0;
        assert_int_equal(gw_route(r, &o, &q, &view, &rng, &p0), GW_OK);
        for (int i = 0; i < 2000; i++) {
            gw_route_plan p;
            assert_int_equal(gw_route(r, &o, &q, &view, &rng, &p), GW_OK);
            assert_int_equal(p.idx[0], p0.idx[0]);
        }
    }
    memset(states, 0, sizeof states);
    memset(lats, 0, sizeof lats);
    gw_registry_free(r);
}

static void test_latency_ewma(void **st)
{
    (void)st;
    gw_latstats *s = NULL;
    assert_int_equal(gw_latstats_mem_new(1, 0.5, &s), GW_OK);
    gw_latency l;
    gw_latstats_get(s, 0, &l);
    assert_int_equal(l.samples, 0);
    gw_latstats_record(s, 0, 10, 100);
    gw_latstats_record(s, 0, -1, 200); /* ttft unknown: only total moves */
    gw_latstats_get(s, 0, &l);
    assert_int_equal(l.samples, 2);
    assert_true(l.total_ms == 150);
    assert_true(l.ttft_ms == 10);
    gw_latstats_get(s, 5, &l); /* out of range: zeros, no crash */
    assert_int_equal(l.samples, 0);
    gw_latstats_free(s);
    assert_int_equal(gw_latstats_mem_new(1, 0, &s), GW_E_CONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opts_from_config),
        cmocka_unit_test(test_registry_validation),
        cmocka_unit_test(test_each_strategy),
        cmocka_unit_test(test_fallback_chain_capped),
        cmocka_unit_test(test_capability_and_context_filters),
        cmocka_unit_test(test_tools_need_the_capability),
        cmocka_unit_test(test_preferred_model),
        cmocka_unit_test(test_provider_not_configured),
        cmocka_unit_test(test_breaker_filter),
        cmocka_unit_test(test_tie_spreading),
        cmocka_unit_test(test_fastest_shifts_to_observed),
        cmocka_unit_test(test_fastest_explores_cold_deployment),
        cmocka_unit_test(test_explore_share_bounded),
        cmocka_unit_test(test_latency_ewma),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
