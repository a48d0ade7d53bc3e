/*
 * Circuit breaker behaviour, one suite run twice: against the in-memory
 * backend with an injected clock, and against the real Redis backend (Lua,
 * Redis TIME, real waiting) through three independent connections standing
 * for three workers. Redis comes from MODELGW_REDIS (default
 * 127.0.0.1:16379, started by tools/services); the Redis group fails with a
 * clear message when it is unreachable. Every run uses a unique key prefix.
 *
 * Covered: trip on consecutive failures and on failure rate with min_calls;
 * caller errors do not count; exactly one probe in half-open across many
 * concurrent allow calls from several workers; recovery closes; cool-down
 * grows up to its cap; a 429 with Retry-After 3 s denies for 3 s without
 * tripping; keys carry TTLs; the local cache answers without a round trip;
 * an unreachable Redis falls back to the local view.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "route/breaker.h"
#include "route/registry.h"
#include "loop/redis.h"
#include "test_support.h"

enum { WORKERS = 3 };

typedef struct {
    bool redis;
    uv_loop_t loop;
    uv_timer_t tick;
    gw_redis *conn[WORKERS];
    gw_breaker *b[WORKERS]; /* mem: the same breaker three times */
    int64_t fake_now;
    gw_registry *reg;
    char prefix[96];
    gw_breaker_opts o;
} harness;

static gw_deployment deps[1] = {{.id = "dep-1",
                                 .model = "m",
                                 .latency_prior_ms = 1,
                                 .ttft_prior_ms = 1,
                                 .quality = 0.5,
                                 .context_window_tokens = 1000,
                                 .weight = 1}};

static int64_t fake_clock(void *ud)
{
    return ((harness *)ud)->fake_now;
}

static void tick_cb(uv_timer_t *t)
{
    (void)t;
}

static void opts(gw_breaker_opts *o)
{
    gw_breaker_opts_from_config(gw_config_defaults(), o);
    o->bucket_ms = 100;
    o->window_ms = 1000;
    o->min_calls = 10;
    o->failure_rate = 0.5;
    o->consecutive_failures = 5;
    o->open_base_ms = 300;
    o->open_max_ms = 1200;
    o->jitter = 0.2;
    o->half_open_successes = 2;
    o->probe_lease_ms = 5000;
    o->rate_limit_default_ms = 1000;
    o->rate_limit_max_ms = 60000;
    o->local_cache_ms = 0; /* every allow asks the shared state */
    o->state_ttl_ms = 60000;
}

static bool flag_set(const void *flag)
{
    return *(const bool *)flag;
}

/* Run the loop until *flag or ~5 s passed. */
static void run_until(harness *h, const bool *flag)
{
    gw_test_run_until(&h->loop, flag_set, flag, 5000);
}

static bool all_connected(const void *arg)
{
    const harness *h = arg;
    for (int w = 0; w < WORKERS; w++)
        if (!gw_redis_is_connected(h->conn[w]))
            return false;
    return true;
}

static gw_err connect_all(harness *h, const char *host, int port, const char *cluster)
{
    for (int w = 0; w < WORKERS; w++) {
        gw_redis_opts ro = {.host = host, .port = port, .command_timeout_ms = 2000};
        ro.cluster_nodes = cluster; /* a Redis Cluster when set */
        gw_redis_opts_defaults(&ro);
        gw_err e = gw_redis_new(&h->loop, &ro, &h->conn[w]);
        if (e != GW_OK)
            return e;
    }
    return gw_test_run_until(&h->loop, all_connected, h, 3000) ? GW_OK : GW_E_STATE_UNAVAILABLE;
}

static int group_setup(void **st, bool redis, const char *cluster)
{
    harness *h = calloc(1, sizeof *h);
    h->redis = redis;
    uv_loop_init(&h->loop);
    uv_timer_init(&h->loop, &h->tick);
    uv_timer_start(&h->tick, tick_cb, 10, 10);
    assert_int_equal(gw_registry_new(deps, 1, GW_PROVIDER_MASK_ALL, NULL, 0, &h->reg), GW_OK);
    if (redis) {
        char host[128];
        int port;
        gw_test_redis_addr(host, sizeof host, &port);
        *st = h; /* group_teardown cleans up even when this fails */
        if (connect_all(h, host, port, cluster) != GW_OK) {
            if (cluster != NULL)
                fprintf(stderr, "test_breaker: the Redis Cluster at %s does not answer\n", cluster);
            else
                gw_test_redis_unreachable("test_breaker", host, port);
            return -1;
        }
    }
    *st = h;
    return 0;
}

static int group_setup_mem(void **st)
{
    return group_setup(st, false, NULL);
}

static int group_setup_redis(void **st)
{
    return group_setup(st, true, NULL);
}

/* The Redis Cluster of `tools/services start redis-cluster`. */
static int group_setup_cluster(void **st)
{
    return group_setup(st, true, getenv("MODELGW_REDIS_CLUSTER"));
}

static void on_closed(uv_handle_t *hd)
{
    (void)hd;
}

static int group_teardown(void **st)
{
    harness *h = *st;
    if (h == NULL)
        return 0;
    for (int w = 0; h->redis && w < WORKERS; w++)
        if (h->conn[w] != NULL)
            gw_redis_free(h->conn[w]);
    uv_close((uv_handle_t *)&h->tick, on_closed);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    uv_loop_close(&h->loop);
    gw_registry_free(h->reg);
    free(h);
    return 0;
}

static void make_breakers(harness *h, const gw_breaker_opts *o)
{
    h->o = *o;
    h->fake_now = 1000000;
    if (!h->redis) {
        assert_int_equal(gw_breaker_mem_new(o, 1, fake_clock, h, 5, &h->b[0]), GW_OK);
        h->b[1] = h->b[2] = h->b[0];
        return;
    }
    snprintf(h->prefix, sizeof h->prefix, "test:brk:%d:%u:", (int)getpid(), (unsigned)rand());
    for (int w = 0; w < WORKERS; w++)
        assert_int_equal(
            gw_breaker_redis_new(o, h->reg, h->conn[w], h->prefix, 5 + (uint64_t)w, &h->b[w]),
            GW_OK);
}

static int test_setup(void **st)
{
    harness *h = *st;
    gw_breaker_opts o;
    opts(&o);
    make_breakers(h, &o);
    return 0;
}

static int test_teardown(void **st)
{
    harness *h = *st;
    gw_breaker_free(h->b[0]);
    if (h->redis) {
        gw_breaker_free(h->b[1]);
        gw_breaker_free(h->b[2]);
    }
    memset(h->b, 0, sizeof h->b);
    return 0;
}

typedef struct {
    bool done;
    gw_breaker_decision d;
} allow_wait;

static void on_allow(void *ud, const gw_breaker_decision *d)
{
    allow_wait *a = ud;
    a->d = *d;
    a->done = true;
}

static gw_breaker_decision allow_w(harness *h, int w, const char *token)
{
    allow_wait a = {0};
    if (gw_breaker_allow(h->b[w], 0, token, &a.d, on_allow, &a))
        return a.d;
    run_until(h, &a.done);
    assert_true(a.done);
    assert_int_equal(a.d.err, GW_OK);
    return a.d;
}

static gw_breaker_decision allow(harness *h)
{
    return allow_w(h, 0, "t0");
}

static void settle(harness *h)
{
    for (int i = 0; i < 500; i++) {
        size_t p = 0;
        for (int w = 0; w < WORKERS; w++)
            p += gw_breaker_pending(h->b[w]);
        if (p == 0)
            return;
        uv_run(&h->loop, UV_RUN_ONCE);
    }
    fail_msg("breaker replies did not arrive");
}

static void record(harness *h, gw_outcome_kind k, bool probe, const char *token, int64_t ra)
{
    gw_breaker_outcome o = {.kind = k, .probe = probe, .retry_after_ms = ra};
    gw_breaker_record(h->b[0], 0, token, &o);
    gw_breaker_flush(h->b[0]); /* as the worker's tick does */
    settle(h);
}

static void wait_ms(harness *h, int64_t ms)
{
    if (!h->redis) {
        h->fake_now += ms;
        return;
    }
    gw_test_run_for(&h->loop, (uint64_t)ms);
}

static gw_breaker_stat stat_of(harness *h)
{
    gw_breaker_stat s;
    gw_breaker_snapshot(h->b[0], 0, &s);
    return s;
}

static void trip_by_run(harness *h)
{
    for (int i = 0; i < 4; i++) {
        record(h, GW_OUTCOME_FAILURE, false, "x", -1);
        assert_int_equal(allow(h).verdict, GW_VERDICT_ALLOWED);
    }
    record(h, GW_OUTCOME_FAILURE, false, "x", -1);
}

static void test_trips_on_consecutive_failures(void **st)
{
    harness *h = *st;
    trip_by_run(h);
    gw_breaker_decision d = allow(h);
    assert_int_equal(d.verdict, GW_VERDICT_DENIED);
    assert_int_equal(d.state, GW_BREAKER_OPEN);
    assert_false(d.rate_limited);
    assert_true(d.retry_in_ms > 0 && d.retry_in_ms <= 300);
    assert_int_equal(stat_of(h).open_count, 1);
}

static void test_trips_on_failure_rate(void **st)
{
    harness *h = *st;
    /* S F S F ... never 5 in a row; the 10th call makes 5/10 >= 0.5. */
    for (int i = 0; i < 9; i++) {
        record(h, i % 2 ? GW_OUTCOME_FAILURE : GW_OUTCOME_SUCCESS, false, "x", -1);
        assert_int_equal(allow(h).verdict, GW_VERDICT_ALLOWED);
    }
    gw_breaker_stat s = stat_of(h);
    assert_int_equal(s.window_calls, 9);
    assert_int_equal(s.window_failures, 4);
    record(h, GW_OUTCOME_FAILURE, false, "x", -1);
    assert_int_equal(allow(h).verdict, GW_VERDICT_DENIED);
    assert_int_equal(stat_of(h).state, GW_BREAKER_OPEN);
}

static void test_caller_errors_do_not_count(void **st)
{
    harness *h = *st;
    for (int i = 0; i < 12; i++)
        record(h, GW_OUTCOME_IGNORED, false, "x", -1);
    assert_int_equal(allow(h).verdict, GW_VERDICT_ALLOWED);
    gw_breaker_stat s = stat_of(h);
    assert_int_equal(s.window_calls, 0);
    assert_int_equal(s.state, GW_BREAKER_CLOSED);
    assert_int_equal(gw_breaker_classify(GW_OK, 200), GW_OUTCOME_SUCCESS);
    assert_int_equal(gw_breaker_classify(GW_E_PROVIDER_UNAVAILABLE, 503), GW_OUTCOME_FAILURE);
    assert_int_equal(gw_breaker_classify(GW_E_PROVIDER_TRANSPORT, 0), GW_OUTCOME_FAILURE);
    assert_int_equal(gw_breaker_classify(GW_E_STREAM_ERROR, 200), GW_OUTCOME_FAILURE);
    assert_int_equal(gw_breaker_classify(GW_E_PROVIDER_IDLE_TIMEOUT, 0), GW_OUTCOME_FAILURE);
    assert_int_equal(gw_breaker_classify(GW_E_PROVIDER_ERROR, 408), GW_OUTCOME_FAILURE);
    assert_int_equal(gw_breaker_classify(GW_E_PROVIDER_BAD_REQUEST, 400), GW_OUTCOME_IGNORED);
    assert_int_equal(gw_breaker_classify(GW_E_PROVIDER_AUTH, 401), GW_OUTCOME_IGNORED);
    assert_int_equal(gw_breaker_classify(GW_E_PROVIDER_RATE_LIMITED, 429), GW_OUTCOME_RATE_LIMITED);
}

/* Many allow calls at once from three workers: exactly one probe. */
static int count_probes(harness *h, int per_worker)
{
    allow_wait a[WORKERS][20];
    memset(a, 0, sizeof a);
    int probes = 0, answered = 0;
    for (int i = 0; i < per_worker; i++) {
        for (int w = 0; w < WORKERS; w++) {
            char tok[32];
            snprintf(tok, sizeof tok, "w%d-r%d", w, i);
            if (gw_breaker_allow(h->b[w], 0, tok, &a[w][i].d, on_allow, &a[w][i]))
                a[w][i].done = true;
        }
    }
    for (int w = 0; w < WORKERS; w++) {
        for (int i = 0; i < per_worker; i++) {
            run_until(h, &a[w][i].done);
            assert_true(a[w][i].done);
            assert_int_equal(a[w][i].d.err, GW_OK);
            probes += a[w][i].d.verdict == GW_VERDICT_PROBE;
            answered++;
        }
    }
    assert_int_equal(answered, WORKERS * per_worker);
    return probes;
}

static void test_half_open_one_probe_then_recovery(void **st)
{
    harness *h = *st;
    trip_by_run(h);
    wait_ms(h, 320);
    assert_int_equal(count_probes(h, 20), 1);
    /* Which token holds the lease is not known here: release by recording
     * as the holder would. Ask again as a known token after the lease ends. */
    test_teardown(st);
    test_setup(st);
    trip_by_run(h);
    wait_ms(h, 320);
    gw_breaker_decision d = allow_w(h, 1, "probe-1");
    assert_int_equal(d.verdict, GW_VERDICT_PROBE);
    assert_int_equal(d.state, GW_BREAKER_HALF_OPEN);
    d = allow_w(h, 2, "other");
    assert_int_equal(d.verdict, GW_VERDICT_DENIED);
    record(h, GW_OUTCOME_SUCCESS, true, "probe-1", -1);
    assert_int_equal(stat_of(h).state, GW_BREAKER_HALF_OPEN); /* needs 2 */
    assert_int_equal(allow_w(h, 2, "probe-2").verdict, GW_VERDICT_PROBE);
    record(h, GW_OUTCOME_SUCCESS, true, "probe-2", -1);
    gw_breaker_stat s = stat_of(h);
    assert_int_equal(s.state, GW_BREAKER_CLOSED);
    assert_int_equal(s.open_count, 0);
    assert_int_equal(allow_w(h, 1, "after").verdict, GW_VERDICT_ALLOWED);
    assert_int_equal(count_probes(h, 5), 0);
}

static void test_cooldown_grows_to_cap(void **st)
{
    harness *h = *st;
    trip_by_run(h);
    int64_t prev = allow(h).retry_in_ms;
    assert_true(prev >= 240 - 20 && prev <= 300);
    /* n-th cool-down: 300 * 2^(n-1), capped at 1200, times [0.8, 1]. */
    int64_t lo[] = {480, 960, 960}, hi[] = {600, 1200, 1200};
    for (int n = 0; n < 3; n++) {
        wait_ms(h, prev + 30);
        char tok[16];
        snprintf(tok, sizeof tok, "p%d", n);
        assert_int_equal(allow_w(h, 0, tok).verdict, GW_VERDICT_PROBE);
        record(h, GW_OUTCOME_FAILURE, true, tok, -1);
        gw_breaker_decision d = allow(h);
        assert_int_equal(d.verdict, GW_VERDICT_DENIED);
        /* Redis time moves on between record and allow: allow 50 ms slack. */
        assert_true(d.retry_in_ms >= lo[n] - 50 && d.retry_in_ms <= hi[n]);
        assert_int_equal(stat_of(h).open_count, n + 2);
        prev = d.retry_in_ms;
    }
}

static void test_rate_limit_cooldown_without_trip(void **st)
{
    harness *h = *st;
    record(h, GW_OUTCOME_RATE_LIMITED, false, "x", 3000);
    for (int w = 0; w < WORKERS; w++) {
        gw_breaker_decision d = allow_w(h, w, "y");
        assert_int_equal(d.verdict, GW_VERDICT_DENIED);
        assert_true(d.rate_limited);
        assert_int_equal(d.state, GW_BREAKER_CLOSED);
        assert_true(d.retry_in_ms > 2500 && d.retry_in_ms <= 3000);
    }
    gw_breaker_stat s = stat_of(h);
    assert_int_equal(s.state, GW_BREAKER_CLOSED);
    assert_int_equal(s.window_failures, 0);
    assert_int_equal(s.open_count, 0);
    wait_ms(h, 2000);
    assert_int_equal(allow(h).verdict, GW_VERDICT_DENIED);
    wait_ms(h, 1050);
    assert_int_equal(allow(h).verdict, GW_VERDICT_ALLOWED);
    /* The router's view agrees once the cool-down is over (the Redis
     * backend's allow reply used to refresh the view's age but keep the old
     * cool-down, so the router skipped the deployment for another 3 s). */
    assert_int_equal(gw_breaker_peek(h->b[0], 0), GW_BREAKER_CLOSED);
    assert_int_equal(stat_of(h).cooldown_remaining_ms, 0);
    /* A Retry-After above the cap is capped. */
    h->o.rate_limit_max_ms = 2000;
    test_teardown(st);
    make_breakers(h, &h->o);
    record(h, GW_OUTCOME_RATE_LIMITED, false, "x", 3600 * 1000);
    gw_breaker_decision d = allow(h);
    assert_true(d.retry_in_ms > 1500 && d.retry_in_ms <= 2000);
}

static void test_probe_lease_expires(void **st)
{
    harness *h = *st;
    h->o.probe_lease_ms = 200;
    test_teardown(st);
    make_breakers(h, &h->o);
    trip_by_run(h);
    wait_ms(h, 320);
    assert_int_equal(allow_w(h, 0, "lost").verdict, GW_VERDICT_PROBE);
    assert_int_equal(allow_w(h, 1, "b").verdict, GW_VERDICT_DENIED);
    wait_ms(h, 220); /* the probe never reported: its lease ran out */
    assert_int_equal(allow_w(h, 1, "b").verdict, GW_VERDICT_PROBE);
}

/* ---- Redis only ---------------------------------------------------------- */

typedef struct {
    bool done;
    long long v;
} int_wait;

static void on_int(void *arg, gw_err err, const redisReply *rep)
{
    int_wait *w = arg;
    w->v = err == GW_OK ? gw_redis_reply_int(rep, -99) : -99;
    w->done = true;
}

static long long pttl(harness *h, const char *suffix)
{
    char key[200];
    snprintf(key, sizeof key, "%sbrk:{dep-1}%s", h->prefix, suffix);
    const char *argv[] = {"PTTL", key};
    int_wait w = {0};
    gw_redis_command(h->conn[0], 2, argv, NULL, on_int, &w);
    run_until(h, &w.done);
    return w.v;
}

static void test_redis_keys_have_ttl(void **st)
{
    harness *h = *st;
    trip_by_run(h);
    wait_ms(h, 320);
    assert_int_equal(allow_w(h, 0, "p").verdict, GW_VERDICT_PROBE);
    long long t = pttl(h, "");
    assert_true(t > 0 && t <= 60000);
    t = pttl(h, ":probe");
    assert_true(t > 0 && t <= 5000);
}

static uint64_t commands(harness *h, int w)
{
    gw_redis_stats s;
    gw_redis_get_stats(h->conn[w], &s);
    return s.commands;
}

static void test_redis_local_cache(void **st)
{
    harness *h = *st;
    h->o.local_cache_ms = 60000;
    test_teardown(st);
    make_breakers(h, &h->o);
    uint64_t c0 = commands(h, 1);
    assert_int_equal(allow_w(h, 1, "a").verdict, GW_VERDICT_ALLOWED); /* asks Redis */
    assert_int_equal(commands(h, 1), c0 + 1);
    gw_breaker_decision d;
    assert_true(gw_breaker_allow(h->b[1], 0, "b", &d, on_allow, NULL)); /* local */
    assert_int_equal(d.verdict, GW_VERDICT_ALLOWED);
    assert_int_equal(commands(h, 1), c0 + 1);
    /* An OPEN answer is cached until its cool-down ends. */
    trip_by_run(h);
    assert_int_equal(allow_w(h, 2, "c").verdict, GW_VERDICT_DENIED);
    uint64_t c2 = commands(h, 2);
    assert_true(gw_breaker_allow(h->b[2], 0, "d", &d, on_allow, NULL));
    assert_int_equal(d.verdict, GW_VERDICT_DENIED);
    assert_int_equal(commands(h, 2), c2);
}

static void test_redis_unreachable_falls_back(void **st)
{
    harness *h = *st;
    gw_redis *dead = NULL;
    gw_redis_opts ro = {.host = "127.0.0.1", .port = 1, .connect_timeout_ms = 100};
    gw_redis_opts_defaults(&ro);
    assert_int_equal(gw_redis_new(&h->loop, &ro, &dead), GW_OK);
    gw_breaker *b = NULL;
    assert_int_equal(gw_breaker_redis_new(&h->o, h->reg, dead, "x:", 1, &b), GW_OK);
    allow_wait a = {0};
    if (!gw_breaker_allow(b, 0, "t", &a.d, on_allow, &a))
        run_until(h, &a.done);
    assert_int_equal(a.d.err, GW_E_STATE_UNAVAILABLE);
    assert_int_equal(a.d.verdict, GW_VERDICT_ALLOWED);
    /* Local outcomes still trip the local view. */
    gw_breaker_outcome o = {.kind = GW_OUTCOME_FAILURE, .retry_after_ms = -1};
    for (int i = 0; i < 5; i++)
        gw_breaker_record(b, 0, "t", &o);
    a.done = false;
    if (!gw_breaker_allow(b, 0, "t", &a.d, on_allow, &a))
        run_until(h, &a.done);
    assert_int_equal(a.d.verdict, GW_VERDICT_DENIED);
    for (int i = 0; i < 100 && gw_breaker_pending(b) > 0; i++)
        uv_run(&h->loop, UV_RUN_ONCE);
    gw_breaker_free(b);
    gw_redis_free(dead);
}

/* Outcomes counted in the worker and sent as one batch: a success then a
 * run of five failures trips the fleet's breaker at the flush; another
 * worker sees it open. */
static void test_batched_outcomes_trip_at_flush(void **st)
{
    harness *h = *st;
    gw_breaker_outcome ok = {.kind = GW_OUTCOME_SUCCESS, .retry_after_ms = -1};
    gw_breaker_outcome bad = {.kind = GW_OUTCOME_FAILURE, .retry_after_ms = -1};
    gw_breaker_record(h->b[0], 0, NULL, &ok);
    for (int i = 0; i < 5; i++)
        gw_breaker_record(h->b[0], 0, NULL, &bad);
    gw_breaker_flush(h->b[0]);
    settle(h);
    gw_breaker_decision d = allow_w(h, WORKERS - 1, "other");
    assert_int_equal(d.verdict, GW_VERDICT_DENIED);
    assert_int_equal(d.state, GW_BREAKER_OPEN);
}

#define BOTH(t) cmocka_unit_test_setup_teardown(t, test_setup, test_teardown)

int main(void)
{
    srand((unsigned)getpid());
    const struct CMUnitTest common[] = {
        BOTH(test_trips_on_consecutive_failures),     BOTH(test_trips_on_failure_rate),
        BOTH(test_batched_outcomes_trip_at_flush),    BOTH(test_caller_errors_do_not_count),
        BOTH(test_half_open_one_probe_then_recovery), BOTH(test_cooldown_grows_to_cap),
        BOTH(test_rate_limit_cooldown_without_trip),  BOTH(test_probe_lease_expires),
    };
    const struct CMUnitTest redis_only[] = {
        BOTH(test_redis_keys_have_ttl),
        BOTH(test_redis_local_cache),
        BOTH(test_redis_unreachable_falls_back),
    };
    int failed =
        cmocka_run_group_tests_name("breaker_mem", common, group_setup_mem, group_teardown);
    failed +=
        cmocka_run_group_tests_name("breaker_redis", common, group_setup_redis, group_teardown);
    failed += cmocka_run_group_tests_name("breaker_redis_only", redis_only, group_setup_redis,
                                          group_teardown);
    const char *cluster = getenv("MODELGW_REDIS_CLUSTER");
    if (cluster == NULL || cluster[0] == '\0')
        printf("breaker_cluster: SKIPPED: MODELGW_REDIS_CLUSTER is not set (start a cluster with "
               "`tools/services start redis-cluster`)\n");
    else
        failed += cmocka_run_group_tests_name("breaker_cluster", common, group_setup_cluster,
                                              group_teardown);
    return failed;
}
