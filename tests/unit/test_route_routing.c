/*
 * The routing facade over a real default config (dev-mode memory backends):
 * route, allow, report provider results; failures trip the breaker and the
 * router then skips the deployment; a 429 blocks it without tripping;
 * successes feed the latency statistics; /health shows it all; invalid
 * breaker settings are refused with a message; the adaptive concurrency cap
 * in single-worker mode (memory backends) and with it switched off.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "route/routing.h"

static gw_deployment deps[2] = {
    {.id = "primary",
     .model = "m1",
     .latency_prior_ms = 100,
     .ttft_prior_ms = 10,
     .quality = 0.9,
     .context_window_tokens = 8000,
     .weight = 1,
     .provider = GW_PROVIDER_MOCK},
    {.id = "backup",
     .model = "m2",
     .latency_prior_ms = 100,
     .ttft_prior_ms = 10,
     .quality = 0.5,
     .context_window_tokens = 8000,
     .weight = 1,
     .provider = GW_PROVIDER_MOCK},
};

static gw_message msg = {.role = GW_ROLE_USER, .content = "hi"};

static gw_config *cfg_new(void)
{
    gw_config *cfg = NULL;
    assert_int_equal(gw_config_default(&cfg), GW_OK);
    cfg->deployments = deps;
    cfg->deployment_count = 2;
    return cfg;
}

static void cfg_free(gw_config *cfg)
{
    cfg->deployments = NULL;
    cfg->deployment_count = 0;
    gw_config_free(cfg);
}

static void test_facade_end_to_end(void **st)
{
    (void)st;
    gw_config *cfg = cfg_new();
    gw_routing *rt = NULL;
    char err[256];
    assert_int_equal(gw_routing_new(cfg, NULL, NULL, GW_PROVIDER_MASK_ALL, 9, err, sizeof err, &rt),
                     GW_OK);
    gw_request q = {.request_id = "r",
                    .messages = &msg,
                    .message_count = 1,
                    .max_tokens = 10,
                    .routing_strategy = GW_ROUTE_BEST_QUALITY};
    gw_route_plan p;
    assert_int_equal(gw_routing_route(rt, &q, &p), GW_OK);
    assert_int_equal(p.idx[0], 0);
    assert_int_equal(p.count, 2);
    gw_failover fo;
    gw_routing_failover_init(rt, &fo, &p);
    gw_breaker_decision d;
    assert_true(gw_routing_allow(rt, 0, "r#1", &d, NULL, NULL));
    assert_int_equal(d.verdict, GW_VERDICT_ALLOWED);
    gw_provider_result fail503 = {
        .err = GW_E_PROVIDER_UNAVAILABLE, .http_status = 503, .retry_after_ms = -1};
    for (int i = 0; i < cfg->breaker.consecutive_failures; i++)
        gw_routing_report(rt, 0, "r#1", false, &fail503);
    assert_int_equal(gw_breaker_peek(gw_routing_breaker(rt), 0), GW_BREAKER_OPEN);
    assert_int_equal(gw_routing_route(rt, &q, &p), GW_OK);
    assert_int_equal(p.count, 1);
    assert_int_equal(p.idx[0], 1); /* the open primary is skipped */
    /* A 429 on the backup blocks it without tripping: nothing left. */
    gw_provider_result r429 = {
        .err = GW_E_PROVIDER_RATE_LIMITED, .http_status = 429, .retry_after_ms = 3000};
    gw_routing_report(rt, 1, "r#2", false, &r429);
    assert_int_equal(gw_routing_route(rt, &q, &p), GW_E_ALL_MODELS_UNAVAILABLE);
    gw_breaker_stat s;
    gw_breaker_snapshot(gw_routing_breaker(rt), 1, &s);
    assert_int_equal(s.state, GW_BREAKER_CLOSED);
    assert_true(s.cooldown_remaining_ms > 0);
    q.model = "backup";
    assert_int_equal(gw_routing_route(rt, &q, &p), GW_E_CIRCUIT_OPEN);
    /* Successes feed the latency statistics. */
    gw_provider_result ok = {.err = GW_OK, .retry_after_ms = -1, .ttft_ms = 12, .latency_ms = 80};
    gw_routing_report(rt, 1, "r#3", false, &ok);
    gw_latency l;
    gw_latstats_get(gw_routing_latency(rt), 1, &l);
    assert_int_equal(l.samples, 1);
    assert_true(l.total_ms == 80 && l.ttft_ms == 12);
    json_t *h = gw_routing_health_json(rt);
    assert_non_null(h);
    char *txt = json_dumps(h, JSON_COMPACT);
    assert_non_null(strstr(txt, "\"status\":\"down\""));
    free(txt);
    json_decref(h);
    gw_routing_free(rt);
    cfg_free(cfg);
}

static void test_facade_rejects_bad_settings(void **st)
{
    (void)st;
    gw_config *cfg = cfg_new();
    gw_routing *rt = NULL;
    char err[256] = "";
    cfg->breaker.bucket_ms = 10;
    cfg->breaker.window_ms = 100000; /* 10,000 buckets */
    assert_int_equal(gw_routing_new(cfg, NULL, NULL, GW_PROVIDER_MASK_ALL, 1, err, sizeof err, &rt),
                     GW_E_CONFIG);
    assert_non_null(strstr(err, "bucket"));
    cfg->breaker.window_ms = 10000;
    deps[1].weight = 0;
    assert_int_equal(gw_routing_new(cfg, NULL, NULL, GW_PROVIDER_MASK_ALL, 1, err, sizeof err, &rt),
                     GW_E_CONFIG);
    assert_non_null(strstr(err, "backup"));
    deps[1].weight = 1;
    cfg_free(cfg);
}

/* Memory backends: the cap lives in the worker alone. A 429 halves it, a
 * flush changes nothing (no fleet), /health shows it; off, it stays at
 * max_concurrency. */
static void test_facade_adaptive_cap_in_memory(void **st)
{
    (void)st;
    gw_config *cfg = cfg_new();
    deps[0].max_concurrency = deps[1].max_concurrency = 8;
    gw_routing *rt = NULL;
    assert_int_equal(gw_routing_new(cfg, NULL, NULL, GW_PROVIDER_MASK_ALL, 3, NULL, 0, &rt), GW_OK);
    assert_int_equal(gw_routing_concurrency_limit(rt, 0), 8);
    gw_provider_result r429 = {.err = GW_E_PROVIDER_RATE_LIMITED,
                               .http_status = 429,
                               .retry_after_ms = 0,
                               .content = "",
                               .finish_reason = "error"};
    gw_routing_report(rt, 0, "t", false, &r429);
    assert_int_equal(gw_routing_concurrency_limit(rt, 0), 4);
    assert_int_equal(gw_routing_concurrency_limit(rt, 1), 8);
    gw_routing_flush(rt);
    assert_int_equal(gw_routing_concurrency_limit(rt, 0), 4);
    json_t *h = gw_routing_health_json(rt);
    json_t *d0 = json_array_get(json_object_get(h, "deployments"), 0);
    assert_int_equal(json_integer_value(json_object_get(d0, "concurrency_limit")), 4);
    json_decref(h);
    gw_routing_free(rt);

    cfg->routing.adaptive_concurrency = false;
    assert_int_equal(gw_routing_new(cfg, NULL, NULL, GW_PROVIDER_MASK_ALL, 3, NULL, 0, &rt), GW_OK);
    gw_routing_report(rt, 0, "t", false, &r429);
    assert_int_equal(gw_routing_concurrency_limit(rt, 0), 8);
    gw_routing_free(rt);
    deps[0].max_concurrency = deps[1].max_concurrency = 0;
    cfg_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_facade_end_to_end),
        cmocka_unit_test(test_facade_rejects_bad_settings),
        cmocka_unit_test(test_facade_adaptive_cap_in_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
