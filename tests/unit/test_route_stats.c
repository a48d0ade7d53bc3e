/*
 * Latency statistics shared through Redis (one worker records, another
 * reads the same EWMA as the in-memory formula gives), and the health view
 * (status words and JSON); the adaptive concurrency cap one facade lowers
 * on 429s reaches another facade through the same batched flush. Redis from MODELGW_REDIS (default
 * 127.0.0.1:16379); the Redis test fails clearly when it is unreachable.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "route/health.h"
#include "route/routing.h"
#include "loop/redis.h"
#include "test_support.h"

static gw_deployment deps[2] = {
    {.id = "d1",
     .model = "m1",
     .latency_prior_ms = 1,
     .ttft_prior_ms = 1,
     .quality = 0.5,
     .context_window_tokens = 1000,
     .weight = 1,
     .provider = GW_PROVIDER_MOCK},
    {.id = "d2",
     .model = "m2",
     .latency_prior_ms = 1,
     .ttft_prior_ms = 1,
     .quality = 0.5,
     .context_window_tokens = 1000,
     .weight = 1,
     .provider = GW_PROVIDER_OPENAI},
};

static void tick_cb(uv_timer_t *t)
{
    (void)t;
}

static void closed(uv_handle_t *h)
{
    (void)h;
}

/* Two writers' statistics through Redis (cluster: a Redis Cluster). */
static void latency_shared(const char *cluster)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    uv_timer_t tick;
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, tick_cb, 10, 10);
    char host[128];
    int port;
    gw_test_redis_addr(host, sizeof host, &port);
    gw_redis *ra = NULL, *rb = NULL;
    gw_redis_opts ro = {.host = host, .port = port, .cluster_nodes = cluster};
    gw_redis_opts_defaults(&ro);
    assert_int_equal(gw_redis_new(&loop, &ro, &ra), GW_OK);
    assert_int_equal(gw_redis_new(&loop, &ro, &rb), GW_OK);
    if (!gw_test_wait_redis(&loop, ra, true, 3000) || !gw_test_wait_redis(&loop, rb, true, 3000))
        fail_msg("Redis at %s (port %d unless a cluster) is unreachable (tools/services start, "
                 "tools/services start redis-cluster, MODELGW_REDIS, MODELGW_REDIS_CLUSTER)",
                 cluster ? cluster : host, port);
    assert_int_equal(gw_redis_is_cluster(ra), cluster != NULL);
    gw_registry *reg = NULL;
    assert_int_equal(gw_registry_new(deps, 2, GW_PROVIDER_MASK_ALL, NULL, 0, &reg), GW_OK);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "test:lat:%d:%u:", (int)getpid(), (unsigned)rand());
    gw_latstats *a = NULL, *b = NULL, *mem = NULL;
    assert_int_equal(gw_latstats_redis_new(reg, ra, prefix, 0.25, 0, 60, &a), GW_OK);
    assert_int_equal(gw_latstats_redis_new(reg, rb, prefix, 0.25, 0, 60, &b), GW_OK);
    assert_int_equal(gw_latstats_mem_new(2, 0.25, &mem), GW_OK);
    const double samples[][2] = {{40, 200}, {-1, 400}, {80, 120}, {20, 100}};
    for (size_t i = 0; i < 4; i++) {
        gw_latstats_record(a, 1, samples[i][0], samples[i][1]);
        gw_latstats_record(mem, 1, samples[i][0], samples[i][1]);
    }
    gw_latstats_flush(a); /* one batch of four, as the worker's tick sends it */
    for (int i = 0; i < 500 && gw_latstats_pending(a) > 0; i++)
        uv_run(&loop, UV_RUN_ONCE);
    gw_latency want, got;
    gw_latstats_get(mem, 1, &want);
    gw_latstats_get(a, 1, &got); /* the writer's copy follows its own replies */
    assert_int_equal(got.samples, 4);
    gw_latstats_get(b, 1, &got); /* starts a refresh (refresh_ms = 0) */
    for (int i = 0; i < 500 && gw_latstats_pending(b) > 0; i++)
        uv_run(&loop, UV_RUN_ONCE);
    gw_latstats_get(b, 1, &got);
    assert_int_equal(got.samples, want.samples);
    assert_true(fabs(got.total_ms - want.total_ms) < 0.01);
    assert_true(fabs(got.ttft_ms - want.ttft_ms) < 0.01);
    gw_latstats_get(b, 0, &got);
    assert_int_equal(got.samples, 0);
    for (int i = 0; i < 500 && gw_latstats_pending(b) > 0; i++)
        uv_run(&loop, UV_RUN_ONCE);
    gw_latstats_free(a);
    gw_latstats_free(b);
    gw_latstats_free(mem);
    gw_registry_free(reg);
    gw_redis_free(ra);
    gw_redis_free(rb);
    uv_close((uv_handle_t *)&tick, closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}

static void test_redis_latency_shared(void **st)
{
    (void)st;
    latency_shared(NULL);
}

static void test_cluster_latency_shared(void **st)
{
    (void)st;
    const char *cluster = getenv("MODELGW_REDIS_CLUSTER");
    if (cluster == NULL || cluster[0] == '\0') {
        printf("test_cluster_latency_shared: SKIPPED: MODELGW_REDIS_CLUSTER is not set "
               "(tools/services start redis-cluster)\n");
        skip();
    }
    latency_shared(cluster);
}

static void pump(uv_loop_t *loop, gw_routing *rt)
{
    for (int i = 0; i < 500 && gw_latstats_pending(gw_routing_latency(rt)) > 0; i++)
        uv_run(loop, UV_RUN_ONCE);
}

/* Two workers' facades on one Redis: worker A sees 429s on d1 and halves
 * its cap (16 -> 8 -> 4, one decrease per hold); after A's flush, B adopts
 * 4 at its next flush without a call of its own; B's successes then raise
 * the shared cap, which A adopts. */
static void test_redis_cap_shared(void **st)
{
    (void)st;
    uv_loop_t loop;
    uv_loop_init(&loop);
    char host[128];
    int port;
    gw_test_redis_addr(host, sizeof host, &port);
    gw_redis *ra = NULL, *rb = NULL;
    gw_redis_opts ro = {.host = host, .port = port};
    gw_redis_opts_defaults(&ro);
    assert_int_equal(gw_redis_new(&loop, &ro, &ra), GW_OK);
    assert_int_equal(gw_redis_new(&loop, &ro, &rb), GW_OK);
    if (!gw_test_wait_redis(&loop, ra, true, 3000) || !gw_test_wait_redis(&loop, rb, true, 3000))
        fail_msg("Redis at %s:%d is unreachable (tools/services start, MODELGW_REDIS)", host, port);
    gw_config *cfg = NULL;
    assert_int_equal(gw_config_default(&cfg), GW_OK);
    gw_deployment d[2] = {deps[0], deps[1]};
    d[0].max_concurrency = d[1].max_concurrency = 16;
    cfg->deployments = d;
    cfg->deployment_count = 2;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "test:cap:%d:%u:", (int)getpid(), (unsigned)rand());
    cfg->redis.key_prefix = prefix;
    cfg->routing.stats_refresh_ms = 10;
    cfg->routing.stats_ttl_s = 60; /* the keys go away on their own */
    gw_routing *a = NULL, *b = NULL;
    assert_int_equal(gw_routing_new(cfg, ra, NULL, GW_PROVIDER_MASK_ALL, 1, NULL, 0, &a), GW_OK);
    assert_int_equal(gw_routing_new(cfg, rb, NULL, GW_PROVIDER_MASK_ALL, 2, NULL, 0, &b), GW_OK);
    gw_provider_result r429 = {.err = GW_E_PROVIDER_RATE_LIMITED,
                               .http_status = 429,
                               .retry_after_ms = -1,
                               .content = "",
                               .finish_reason = "error"};
    gw_routing_report(a, 0, "t", false, &r429);
    assert_int_equal(gw_routing_concurrency_limit(a, 0), 8);
    gw_routing_report(a, 0, "t", false, &r429); /* within the hold: counts once */
    assert_int_equal(gw_routing_concurrency_limit(a, 0), 8);
    gw_routing_flush(a);
    pump(&loop, a);
    assert_int_equal(gw_routing_concurrency_limit(b, 0), 16);
    assert_int_equal(gw_routing_concurrency_limit(b, 1), 16);
    for (int i = 0; i < 50 && gw_routing_concurrency_limit(b, 0) != 8; i++) {
        gw_routing_flush(b); /* reads the fleet's values (refresh_ms 10), then adopts */
        pump(&loop, b);
        usleep(11000);
    }
    assert_int_equal(gw_routing_concurrency_limit(b, 0), 8);
    assert_int_equal(gw_routing_concurrency_limit(b, 1), 16); /* d2 untouched */
    /* B's successes: + 1/cap each; 40 of them take 8 to 12 */
    gw_provider_result ok = {.err = GW_OK,
                             .http_status = 200,
                             .retry_after_ms = -1,
                             .content = "x",
                             .content_len = 1,
                             .finish_reason = "stop",
                             .ttft_ms = 5,
                             .latency_ms = 10};
    for (int i = 0; i < 40; i++)
        gw_routing_report(b, 0, "t", false, &ok);
    int raised = gw_routing_concurrency_limit(b, 0);
    assert_true(raised > 8);
    gw_routing_flush(b);
    pump(&loop, b);
    for (int i = 0; i < 50 && gw_routing_concurrency_limit(a, 0) != raised; i++) {
        gw_routing_flush(a);
        pump(&loop, a);
        usleep(11000);
    }
    assert_int_equal(gw_routing_concurrency_limit(a, 0), raised);
    gw_routing_free(a);
    gw_routing_free(b);
    for (int i = 0; i < 50; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    cfg->deployments = NULL;
    cfg->deployment_count = 0;
    cfg->redis.key_prefix = NULL;
    gw_config_free(cfg);
    gw_redis_free(ra);
    gw_redis_free(rb);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}

static int64_t now_v = 1000000;

static int64_t clock_fn(void *ud)
{
    (void)ud;
    return now_v;
}

static int inflight_fn(void *ud, size_t idx)
{
    (void)ud;
    return (int)idx + 2;
}

static void test_health_view(void **st)
{
    (void)st;
    gw_registry *reg = NULL;
    assert_int_equal(gw_registry_new(deps, 2, 1u << GW_PROVIDER_MOCK, NULL, 0, &reg), GW_OK);
    gw_breaker_opts o;
    gw_breaker_opts_from_config(gw_config_defaults(), &o);
    gw_breaker *b = NULL;
    assert_int_equal(gw_breaker_mem_new(&o, 2, clock_fn, NULL, 1, &b), GW_OK);
    gw_latstats *s = NULL;
    assert_int_equal(gw_latstats_mem_new(2, 0.5, &s), GW_OK);
    gw_latstats_record(s, 0, 10, 50);
    gw_route_health h[2];
    assert_int_equal(gw_route_health_read(reg, b, s, inflight_fn, NULL, h, 2), 2);
    assert_string_equal(h[0].status, "up");
    assert_string_equal(h[1].status, "not_configured");
    assert_int_equal(h[0].inflight, 2);
    gw_breaker_outcome fail = {.kind = GW_OUTCOME_FAILURE, .retry_after_ms = -1};
    for (int i = 0; i < 5; i++)
        gw_breaker_record(b, 0, "t", &fail);
    assert_int_equal(gw_breaker_peek(b, 0), GW_BREAKER_OPEN);
    gw_route_health_read(reg, b, s, NULL, NULL, h, 2);
    assert_string_equal(h[0].status, "down");
    now_v += 60000; /* cool-down over: half-open on the next allow */
    assert_int_equal(gw_breaker_peek(b, 0), GW_BREAKER_HALF_OPEN);
    gw_route_health_read(reg, b, s, NULL, NULL, h, 2);
    assert_string_equal(h[0].status, "degraded");
    json_t *j = gw_route_health_json(reg, b, s, NULL, NULL);
    assert_non_null(j);
    char *txt = json_dumps(j, JSON_COMPACT);
    assert_non_null(strstr(txt, "\"id\":\"d1\""));
    assert_non_null(strstr(txt, "\"state\":\"half_open\""));
    assert_non_null(strstr(txt, "\"status\":\"not_configured\""));
    assert_int_equal(json_integer_value(json_object_get(j, "available")), 1);
    free(txt);
    json_decref(j);
    gw_breaker_free(b);
    gw_latstats_free(s);
    gw_registry_free(reg);
}

int main(void)
{
    srand((unsigned)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_view),
        cmocka_unit_test(test_redis_latency_shared),
        cmocka_unit_test(test_redis_cap_shared),
        cmocka_unit_test(test_cluster_latency_shared),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
