/*
 * test_state: one behaviour suite run against both state backends.
 *
 * The in-memory backend runs with a stepped clock; the Redis backend runs
 * against the real redis-server of tools/services (MODELGW_REDIS, default
 * 127.0.0.1:16379) with a unique key prefix per run, and Redis TIME: where
 * the memory variant checks exact millisecond values, the Redis variant
 * checks the bounds that must hold whatever the timing. If Redis is not
 * reachable, the Redis group fails with a message saying so.
 *
 * A third group runs the same suite against a Redis Cluster (three masters
 * with a replica each: `tools/services start redis-cluster`, whose seed list
 * is MODELGW_REDIS_CLUSTER): the cluster client of src/loop routes every
 * script to its slot, and the Redis backend composes admission and completion
 * from single-slot operations. Without MODELGW_REDIS_CLUSTER the group is
 * skipped with a printed reason; with it set, an unreachable cluster fails.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loop/redis.h"
#include "state/state.h"
#include "test_state_util.h"
#include "test_support.h"

typedef struct {
    uv_loop_t loop;
    gw_redis *redis;
    gw_state *st;
    bool is_redis;
    bool is_cluster;
    char prefix[64];
    int64_t fake_now_ms;
} fixture;

static fixture F;

static int64_t fake_clock(void *ud)
{
    return ((fixture *)ud)->fake_now_ms;
}

static void wait_for(int *done, int target)
{
    if (!gw_test_wait_count(&F.loop, done, target, 15000))
        fail_msg("timed out waiting for %d callbacks (have %d)", target, *done);
}

/* Step the memory clock, or let real time pass for Redis. */
static void advance_ms(int64_t ms)
{
    if (F.is_redis)
        gw_test_run_for(&F.loop, (uint64_t)ms);
    else
        F.fake_now_ms += ms;
}

static void make_name(char *out, size_t n, const char *what)
{
    static int seq;
    snprintf(out, n, "%s-%d", what, ++seq);
}

/* ---- fixtures -------------------------------------------------------------- */

static int setup_common(bool redis, bool cluster)
{
    memset(&F, 0, sizeof(F));
    uv_loop_init(&F.loop);
    F.is_redis = redis;
    F.is_cluster = cluster;
    F.fake_now_ms = 1767225600000; /* 2026-01-01T00:00:00Z */
    snprintf(F.prefix, sizeof(F.prefix), "test:state:%d:%lld:", (int)getpid(),
             (long long)gw_state_clock_realtime_ms(NULL));
    gw_state_opts o = {.key_prefix = F.prefix, .max_entry_bytes = 1024};
    if (!redis) {
        o.clock = fake_clock;
        o.clock_ud = &F;
        return gw_state_mem_new(&F.loop, &o, &F.st) == GW_OK ? 0 : -1;
    }
    char host[128];
    int port;
    gw_test_redis_addr(host, sizeof(host), &port);
    gw_redis_opts ro = {.host = host, .port = port, .command_timeout_ms = 2000};
    if (cluster)
        ro.cluster_nodes = getenv("MODELGW_REDIS_CLUSTER");
    if (gw_redis_new(&F.loop, &ro, &F.redis) != GW_OK)
        return -1;
    if (gw_state_redis_new(&F.loop, F.redis, &o, &F.st) != GW_OK)
        return -1;
    if (!gw_test_wait_redis(&F.loop, F.redis, true, 5000)) {
        if (cluster)
            fprintf(stderr,
                    "test_state: the Redis Cluster at MODELGW_REDIS_CLUSTER=%s does not answer "
                    "(start it with `tools/services start redis-cluster`)\n",
                    ro.cluster_nodes);
        else
            gw_test_redis_unreachable("test_state", host, port);
        return -1;
    }
    if (cluster != gw_redis_is_cluster(F.redis))
        return -1;
    return 0;
}

static int setup_mem(void **s)
{
    return setup_common(false, false);
}

static int setup_redis(void **s)
{
    return setup_common(true, false);
}

static int setup_cluster(void **s)
{
    return setup_common(true, true);
}

static int teardown(void **s)
{
    gw_state_free(F.st);
    gw_redis_free(F.redis);
    uv_run(&F.loop, UV_RUN_DEFAULT);
    return uv_loop_close(&F.loop) == 0 ? 0 : -1;
}

/* ---- helpers for the tests ---------------------------------------------------- */

static gw_limit_result check_any(const gw_limit_key *keys, size_t n)
{
    result x = {0};
    CALL(gw_state_limit_check(F.st, keys, n, on_limit, &x));
    assert_int_equal(x.done, 0);
    wait_for(&x.done, 1);
    return x.limit;
}

static gw_limit_result check(const gw_limit_key *keys, size_t n)
{
    gw_limit_result r = check_any(keys, n);
    assert_int_equal(r.err, GW_OK);
    return r;
}

static gw_cache_result get_or_lock(const char *key, const char *owner, int32_t lock_ms)
{
    result x = {0};
    CALL(gw_state_cache_get_or_lock(F.st, key, owner, lock_ms, false, on_cache, &x));
    wait_for(&x.done, 1);
    assert_int_equal(x.cache.err, GW_OK);
    return x.cache;
}

static gw_state_ack ack_of_put(const char *key, const char *bytes, size_t len, const char *owner)
{
    result x = {0};
    CALL(gw_state_cache_put(F.st, key, (const uint8_t *)bytes, len, 60, owner, on_ack, &x));
    wait_for(&x.done, 1);
    return x.ack;
}

/* Raw GET of a full key name through the Redis connection (Redis only). */
typedef struct {
    int done;
    char val[128];
} raw;

static void on_raw(void *arg, gw_err err, const redisReply *rep)
{
    raw *r = arg;
    r->val[0] = '\0';
    if (err == GW_OK && rep->type == REDIS_REPLY_STRING)
        snprintf(r->val, sizeof(r->val), "%s", rep->str);
    r->done++;
}

static void raw_get(const char *key, char *out, size_t n)
{
    raw r = {0};
    const char *argv[2] = {"GET", key};
    gw_redis_command(F.redis, 2, argv, NULL, on_raw, &r);
    wait_for(&r.done, 1);
    snprintf(out, n, "%s", r.val);
}

/* ---- the behaviour suite ------------------------------------------------------ */

static void test_limit_burst_and_retry_after(void **s)
{
    char scope[64];
    make_name(scope, sizeof(scope), "agent_rpm:burst");
    gw_limit_key k = {.scope = scope, .rate_per_min = 600, .burst = 5, .cost = 1}; /* 100 ms */
    uint64_t t0 = uv_hrtime();
    int allowed = 0;
    gw_limit_result denied = {0};
    for (int i = 0; i < 20; i++) {
        gw_limit_result r = check(&k, 1);
        if (r.verdict == GW_LIMIT_ALLOWED)
            allowed++;
        else
            denied = r;
    }
    uint64_t elapsed_ms = (uv_hrtime() - t0) / 1000000;
    /* GCRA bound: at most burst + rate x elapsed. */
    assert_true(allowed >= 5);
    assert_true((uint64_t)allowed <= 5 + elapsed_ms / 100 + 1);
    assert_int_equal(denied.verdict, GW_LIMIT_DENIED);
    assert_int_equal(denied.limit_index, 0);
    assert_true(denied.retry_after_ms > 0);
    assert_true(denied.retry_after_ms <= 100);
    if (!F.is_redis) {
        /* Frozen clock: exactly burst admitted, the next unit due in exactly 100 ms. */
        assert_int_equal(allowed, 5);
        assert_int_equal(denied.retry_after_ms, 100);
        advance_ms(99);
        gw_limit_result r = check(&k, 1);
        assert_int_equal(r.verdict, GW_LIMIT_DENIED);
        assert_int_equal(r.retry_after_ms, 1);
        advance_ms(1);
    } else {
        gw_limit_result r = check(&k, 1);
        if (r.verdict == GW_LIMIT_DENIED)
            advance_ms(r.retry_after_ms);
        else
            return; /* time moved on by itself: the bound above still held */
    }
    /* After waiting exactly retry_after_ms the request fits. */
    assert_int_equal(check(&k, 1).verdict, GW_LIMIT_ALLOWED);
}

static void test_limit_long_run_bound(void **s)
{
    if (F.is_redis)
        skip(); /* needs a stepped clock; the Redis variant is the fleet test */
    char scope[64];
    make_name(scope, sizeof(scope), "agent_rpm:run");
    gw_limit_key k = {.scope = scope, .rate_per_min = 60, .burst = 10, .cost = 1};
    /* Load at 3x the rate for 2 minutes: one attempt every 333 ms. */
    int allowed = 0;
    for (int i = 0; i < 360; i++) {
        gw_limit_result r = check(&k, 1);
        if (r.verdict == GW_LIMIT_ALLOWED) {
            allowed++;
        } else {
            int64_t ra = r.retry_after_ms;
            assert_true(ra > 0 && ra <= 1000);
        }
        advance_ms(333);
    }
    assert_true(allowed <= 60 * 2 + 10);
    assert_true(allowed >= 60 * 2);
}

static void test_limit_all_or_nothing(void **s)
{
    /* two kinds of one name: one hash tag, so one slot in a cluster */
    char name[32], agent[64], deploy[64];
    make_name(name, sizeof(name), "aon");
    snprintf(agent, sizeof(agent), "agent_rpm:%s", name);
    snprintf(deploy, sizeof(deploy), "deploy_rpm:%s", name);
    /* Slow refill (1 per minute) so real time cannot blur the counts. */
    gw_limit_key keys[2] = {
        {.scope = agent, .rate_per_min = 1, .burst = 2, .cost = 1},
        {.scope = deploy, .rate_per_min = 1, .burst = 100, .cost = 1},
    };
    assert_int_equal(check(keys, 2).verdict, GW_LIMIT_ALLOWED);
    assert_int_equal(check(keys, 2).verdict, GW_LIMIT_ALLOWED);
    char before[128] = "", after[128] = "", full[256];
    /* rl:<kind>:{<name>}: the name is the hash tag (docs/state.md) */
    snprintf(full, sizeof(full), "%srl:deploy_rpm:{%s}", F.prefix, name);
    if (F.is_redis)
        raw_get(full, before, sizeof(before));
    gw_limit_result r = check(keys, 2);
    assert_int_equal(r.verdict, GW_LIMIT_DENIED);
    assert_int_equal(r.limit_index, 0);
    if (F.is_redis) {
        raw_get(full, after, sizeof(after));
        assert_true(before[0] != '\0');
        assert_string_equal(before, after);
    }
    /* The deployment bucket holds 2 of 100: 98 more fit, 99 would not. */
    gw_limit_key d = keys[1];
    d.cost = 99;
    assert_int_equal(check(&d, 1).verdict, GW_LIMIT_DENIED);
    d.cost = 98;
    assert_int_equal(check(&d, 1).verdict, GW_LIMIT_ALLOWED);
}

static void test_limit_never_fits(void **s)
{
    char name[32], a[64], b[64];
    make_name(name, sizeof(name), "nf");
    snprintf(a, sizeof(a), "agent_tpm:%s", name);
    snprintf(b, sizeof(b), "deploy_tpm:%s", name);
    gw_limit_key keys[2] = {
        {.scope = a, .rate_per_min = 1000, .burst = 1000, .cost = 500},
        {.scope = b, .rate_per_min = 100, .burst = 100, .cost = 500},
    };
    gw_limit_result r = check(keys, 2);
    assert_int_equal(r.verdict, GW_LIMIT_NEVER_FITS);
    assert_int_equal(r.limit_index, 1);
    /* Nothing was taken from the first key either. */
    keys[0].cost = 1000;
    assert_int_equal(check(keys, 1).verdict, GW_LIMIT_ALLOWED);
}

/* A cluster refuses one all-or-nothing check over keys of two names (two
 * slots) with a named error and writes nothing; the other backends take it. */
static void test_limit_keys_of_two_names(void **s)
{
    char a[64], b[64];
    make_name(a, sizeof(a), "agent_rpm:two");
    make_name(b, sizeof(b), "deploy_rpm:two");
    gw_limit_key keys[2] = {
        {.scope = a, .rate_per_min = 1, .burst = 1, .cost = 1},
        {.scope = b, .rate_per_min = 1, .burst = 1, .cost = 1},
    };
    gw_limit_result r = check_any(keys, 2);
    if (!F.is_cluster) {
        assert_int_equal(r.err, GW_OK);
        assert_int_equal(r.verdict, GW_LIMIT_ALLOWED);
        return;
    }
    assert_int_equal(r.err, GW_E_INTERNAL);
    /* nothing was taken: each key alone still has its one token */
    assert_int_equal(check(&keys[0], 1).verdict, GW_LIMIT_ALLOWED);
    assert_int_equal(check(&keys[1], 1).verdict, GW_LIMIT_ALLOWED);
}

/* A reconcile over an agent's key and a deployment's (two slots in a
 * cluster: one script per name, each with its own marker) applies once. */
static void test_limit_reconcile_two_names(void **s)
{
    char a[64], b[64], rid[64];
    make_name(a, sizeof(a), "agent_tpm:rec2");
    make_name(b, sizeof(b), "deploy_tpm:rec2");
    make_name(rid, sizeof(rid), "req");
    gw_limit_key k[2] = {{.scope = a, .rate_per_min = 1, .burst = 1000, .cost = 800},
                         {.scope = b, .rate_per_min = 1, .burst = 1000, .cost = 800}};
    assert_int_equal(check(&k[0], 1).verdict, GW_LIMIT_ALLOWED);
    assert_int_equal(check(&k[1], 1).verdict, GW_LIMIT_ALLOWED);
    gw_limit_key delta[2] = {k[0], k[1]};
    delta[0].cost = -500;
    delta[1].cost = -300;
    for (int i = 0; i < 2; i++) {
        result x = {0};
        CALL(gw_state_limit_reconcile(F.st, rid, delta, 2, on_ack, &x));
        wait_for(&x.done, 1);
        assert_int_equal(x.ack.err, GW_OK);
        assert_int_equal(x.ack.applied, i == 0);
    }
    /* 300 and 500 used: 700 and 500 fit, one more token on either does not */
    k[0].cost = 700;
    k[1].cost = 500;
    assert_int_equal(check(&k[0], 1).verdict, GW_LIMIT_ALLOWED);
    assert_int_equal(check(&k[1], 1).verdict, GW_LIMIT_ALLOWED);
    k[0].cost = k[1].cost = 1;
    assert_int_equal(check(&k[0], 1).verdict, GW_LIMIT_DENIED);
    assert_int_equal(check(&k[1], 1).verdict, GW_LIMIT_DENIED);
}

static void test_limit_reconcile_once(void **s)
{
    char scope[64], rid[64];
    make_name(scope, sizeof(scope), "agent_tpm:rec");
    make_name(rid, sizeof(rid), "req");
    gw_limit_key k = {.scope = scope, .rate_per_min = 1, .burst = 1000, .cost = 800};
    assert_int_equal(check(&k, 1).verdict, GW_LIMIT_ALLOWED);
    k.cost = 300;
    assert_int_equal(check(&k, 1).verdict, GW_LIMIT_DENIED);
    /* Reserved 800, used 300: refund 500, twice (a redelivered completion). */
    gw_limit_key delta = k;
    delta.cost = -500;
    for (int i = 0; i < 2; i++) {
        result x = {0};
        CALL(gw_state_limit_reconcile(F.st, rid, &delta, 1, on_ack, &x));
        wait_for(&x.done, 1);
        assert_int_equal(x.ack.err, GW_OK);
        assert_int_equal(x.ack.applied, i == 0);
    }
    /* 300 used: 600 more fit, then 200 more do not (a double refund would). */
    k.cost = 600;
    assert_int_equal(check(&k, 1).verdict, GW_LIMIT_ALLOWED);
    k.cost = 200;
    assert_int_equal(check(&k, 1).verdict, GW_LIMIT_DENIED);
    /* A charge above the reservation is applied, never denied. */
    char rid2[64];
    make_name(rid2, sizeof(rid2), "req");
    delta.cost = 5000;
    result x = {0};
    CALL(gw_state_limit_reconcile(F.st, rid2, &delta, 1, on_ack, &x));
    wait_for(&x.done, 1);
    assert_int_equal(x.ack.err, GW_OK);
    assert_true(x.ack.applied);
    k.cost = 1;
    gw_limit_result r = check(&k, 1);
    assert_int_equal(r.verdict, GW_LIMIT_DENIED);
    assert_true(r.retry_after_ms > 60000); /* the overdraft is paid back over time */
}

static gw_budget_result budget_check(const char *agent, double est, double day, double month)
{
    result x = {0};
    gw_budget_limits lim = {.daily_usd = day, .monthly_usd = month};
    CALL(gw_state_budget_check(F.st, agent, est, &lim, on_budget, &x));
    wait_for(&x.done, 1);
    return x.budget;
}

static void test_budgets(void **s)
{
    char agent[64], rid[64];
    make_name(agent, sizeof(agent), "did:example:budget");
    make_name(rid, sizeof(rid), "req");
    assert_int_equal(budget_check(agent, 0.5, 1.0, 10.0).err, GW_OK);
    for (int i = 0; i < 2; i++) {
        result x = {0};
        CALL(gw_state_budget_charge(F.st, rid, agent, 0.6, on_ack, &x));
        wait_for(&x.done, 1);
        assert_int_equal(x.ack.err, GW_OK);
        assert_int_equal(x.ack.applied, i == 0);
    }
    gw_budget_result r = budget_check(agent, 0.5, 1.0, 10.0);
    assert_int_equal(r.err, GW_E_BUDGET_EXCEEDED);
    assert_false(gw_err_retryable(r.err));
    assert_string_equal(r.period, "day");
    assert_true(r.spent_day_usd > 0.5999 && r.spent_day_usd < 0.6001);
    assert_int_equal(budget_check(agent, 0.3, 1.0, 10.0).err, GW_OK);
    r = budget_check(agent, 0.2, 0, 0.7);
    assert_int_equal(r.err, GW_E_BUDGET_EXCEEDED);
    assert_string_equal(r.period, "month");
    assert_int_equal(budget_check(agent, 1000, 0, 0).err, GW_OK); /* unlimited */
}

static void test_cache_put_get_miss(void **s)
{
    char key[64];
    make_name(key, sizeof(key), "cachekey");
    result x = {0};
    CALL(gw_state_cache_get(F.st, key, on_cache, &x));
    wait_for(&x.done, 1);
    assert_int_equal(x.cache.err, GW_OK);
    assert_int_equal(x.cache.kind, GW_CACHE_MISS);
    static const char bytes[] = "resp\0with\0nul";
    assert_int_equal(ack_of_put(key, bytes, sizeof(bytes), NULL).err, GW_OK);
    memset(&x, 0, sizeof(x));
    CALL(gw_state_cache_get(F.st, key, on_cache, &x));
    wait_for(&x.done, 1);
    assert_int_equal(x.cache.kind, GW_CACHE_HIT);
    assert_int_equal(x.cache.len, sizeof(bytes));
    assert_memory_equal(x.cache.data, bytes, sizeof(bytes));
    /* Above max_entry_bytes (1024 here): a named error, nothing stored. */
    static char big[2048];
    assert_int_equal(ack_of_put(key, big, sizeof(big), NULL).err, GW_E_LIMIT);
}

static void test_cache_single_flight(void **s)
{
    enum { N = 100 };
    char key[64], owners[N][32];
    make_name(key, sizeof(key), "sf");
    result x[N];
    memset(x, 0, sizeof(x));
    for (int i = 0; i < N; i++) {
        snprintf(owners[i], sizeof(owners[i]), "worker-%d", i);
        CALL(gw_state_cache_get_or_lock(F.st, key, owners[i], 5000, false, on_cache, &x[i]));
    }
    for (int i = 0; i < N; i++)
        wait_for(&x[i].done, 1);
    int mine = 0, owner = -1;
    for (int i = 0; i < N; i++) {
        assert_int_equal(x[i].cache.err, GW_OK);
        if (x[i].cache.kind == GW_CACHE_LOCKED_BY_ME) {
            mine++;
            owner = i;
        } else {
            assert_int_equal(x[i].cache.kind, GW_CACHE_LOCKED_BY_OTHER);
            assert_true(x[i].cache.lock_ttl_ms > 0);
        }
    }
    assert_int_equal(mine, 1);
    /* Two waiters; the owner stores; both are answered from it. */
    result w[2] = {{0}};
    CALL(gw_state_cache_wait(F.st, key, "waiter-a", 5000, 10000, on_cache, &w[0]));
    CALL(gw_state_cache_wait(F.st, key, "waiter-b", 5000, 10000, on_cache, &w[1]));
    gw_test_run_for(&F.loop, 20);
    assert_int_equal(ack_of_put(key, "answer", 6, owners[owner]).err, GW_OK);
    wait_for(&w[0].done, 1);
    wait_for(&w[1].done, 1);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(w[i].cache.kind, GW_CACHE_HIT);
        assert_memory_equal(w[i].cache.data, "answer", 6);
    }
}

static void test_cache_owner_fails(void **s)
{
    char key[64];
    make_name(key, sizeof(key), "sf-fail");
    assert_int_equal(get_or_lock(key, "a", 5000).kind, GW_CACHE_LOCKED_BY_ME);
    assert_int_equal(get_or_lock(key, "a", 5000).kind, GW_CACHE_LOCKED_BY_ME); /* re-entry */
    assert_int_equal(get_or_lock(key, "b", 5000).kind, GW_CACHE_LOCKED_BY_OTHER);
    /* Released by the failing owner: a waiter takes over. */
    result w = {0};
    CALL(gw_state_cache_wait(F.st, key, "b", 5000, 10000, on_cache, &w));
    result u = {0};
    CALL(gw_state_cache_unlock(F.st, key, "a", on_ack, &u));
    wait_for(&u.done, 1);
    assert_true(u.ack.applied);
    wait_for(&w.done, 1);
    assert_int_equal(w.cache.kind, GW_CACHE_LOCKED_BY_ME);
    /* A lock that expires (owner died) is taken over too. */
    char key2[64];
    make_name(key2, sizeof(key2), "sf-expire");
    assert_int_equal(get_or_lock(key2, "a", 50).kind, GW_CACHE_LOCKED_BY_ME);
    assert_int_equal(get_or_lock(key2, "b", 50).kind, GW_CACHE_LOCKED_BY_OTHER);
    advance_ms(60);
    assert_int_equal(get_or_lock(key2, "b", 50).kind, GW_CACHE_LOCKED_BY_ME);
    /* A waiter that runs out of time says so. */
    char key3[64];
    make_name(key3, sizeof(key3), "sf-wait");
    assert_int_equal(get_or_lock(key3, "a", 60000).kind, GW_CACHE_LOCKED_BY_ME);
    memset(&w, 0, sizeof(w));
    CALL(gw_state_cache_wait(F.st, key3, "b", 60000, 30, on_cache, &w));
    wait_for(&w.done, 1);
    assert_int_equal(w.cache.kind, GW_CACHE_LOCKED_BY_OTHER);
}

static void test_free_with_waiter_pending(void **s)
{
    gw_state *st2 = NULL;
    gw_state_opts o = {.key_prefix = F.prefix};
    if (F.is_redis) {
        assert_int_equal(gw_state_redis_new(&F.loop, F.redis, &o, &st2), GW_OK);
    } else {
        o.clock = fake_clock;
        o.clock_ud = &F;
        assert_int_equal(gw_state_mem_new(&F.loop, &o, &st2), GW_OK);
    }
    char key[64];
    make_name(key, sizeof(key), "sf-free");
    result x = {0};
    CALL(gw_state_cache_get_or_lock(st2, key, "a", 60000, false, on_cache, &x));
    wait_for(&x.done, 1);
    assert_int_equal(x.cache.kind, GW_CACHE_LOCKED_BY_ME);
    result w = {0};
    CALL(gw_state_cache_wait(st2, key, "b", 60000, 60000, on_cache, &w));
    gw_test_run_for(&F.loop, 30);
    gw_state_free(st2);
    wait_for(&w.done, 1);
    gw_test_run_for(&F.loop, 30);
    assert_int_equal(w.done, 1);
    assert_true(w.cache.err == GW_E_SHUTTING_DOWN ||
                (w.cache.err == GW_OK && w.cache.kind == GW_CACHE_LOCKED_BY_OTHER));
    CALL(gw_state_cache_unlock(F.st, key, "a", on_ack, &x));
    wait_for(&x.done, 2);
}

static gw_cache_result claim(const char *rid, const char *owner, int32_t lease_ms)
{
    result x = {0};
    CALL(gw_state_idem_claim(F.st, rid, owner, lease_ms, on_cache, &x));
    wait_for(&x.done, 1);
    assert_int_equal(x.cache.err, GW_OK);
    return x.cache;
}

static void test_idempotency(void **s)
{
    char rid[64];
    make_name(rid, sizeof(rid), "idem");
    assert_int_equal(claim(rid, "w1", 5000).kind, GW_CACHE_LOCKED_BY_ME);
    gw_cache_result r = claim(rid, "w2", 5000);
    assert_int_equal(r.kind, GW_CACHE_LOCKED_BY_OTHER);
    assert_true(r.lock_ttl_ms > 0 && r.lock_ttl_ms <= 5000);
    result x = {0};
    CALL(gw_state_idem_complete(F.st, rid, "w1", (const uint8_t *)"done!", 5, 60, on_ack, &x));
    wait_for(&x.done, 1);
    assert_int_equal(x.ack.err, GW_OK);
    assert_true(x.ack.applied);
    result y = {0};
    CALL(gw_state_idem_claim(F.st, rid, "w2", 5000, on_cache, &y));
    wait_for(&y.done, 1);
    assert_int_equal(y.cache.kind, GW_CACHE_HIT);
    assert_memory_equal(y.cache.data, "done!", 5);
    /* The first completion wins. */
    memset(&x, 0, sizeof(x));
    CALL(gw_state_idem_complete(F.st, rid, "w2", (const uint8_t *)"other", 5, 60, on_ack, &x));
    wait_for(&x.done, 1);
    assert_false(x.ack.applied);
    /* A lease that expires (worker killed) is taken over. */
    char rid2[64];
    make_name(rid2, sizeof(rid2), "idem");
    assert_int_equal(claim(rid2, "w1", 50).kind, GW_CACHE_LOCKED_BY_ME);
    assert_int_equal(claim(rid2, "w2", 50).kind, GW_CACHE_LOCKED_BY_OTHER);
    advance_ms(60);
    assert_int_equal(claim(rid2, "w2", 5000).kind, GW_CACHE_LOCKED_BY_ME);
    /* Released: someone else may claim at once. */
    memset(&x, 0, sizeof(x));
    CALL(gw_state_idem_release(F.st, rid2, "w2", on_ack, &x));
    wait_for(&x.done, 1);
    assert_true(x.ack.applied);
    assert_int_equal(claim(rid2, "w3", 5000).kind, GW_CACHE_LOCKED_BY_ME);
}

static void test_bad_input(void **s)
{
    char scope[400];
    memset(scope, 'x', sizeof(scope) - 1);
    scope[sizeof(scope) - 1] = '\0';
    gw_limit_key k = {.scope = scope, .rate_per_min = 1, .burst = 1, .cost = 1};
    result x = {0};
    CALL(gw_state_limit_check(F.st, &k, 1, on_limit, &x));
    wait_for(&x.done, 1);
    assert_int_equal(x.limit.err, GW_E_LIMIT);
    gw_limit_key many[GW_STATE_MAX_LIMIT_KEYS + 1];
    for (size_t i = 0; i < GW_STATE_MAX_LIMIT_KEYS + 1; i++)
        many[i] = (gw_limit_key){.scope = "a", .rate_per_min = 1, .burst = 1, .cost = 1};
    memset(&x, 0, sizeof(x));
    CALL(gw_state_limit_check(F.st, many, GW_STATE_MAX_LIMIT_KEYS + 1, on_limit, &x));
    wait_for(&x.done, 1);
    assert_int_equal(x.limit.err, GW_E_LIMIT);
    k.scope = "ok";
    k.rate_per_min = 0;
    memset(&x, 0, sizeof(x));
    CALL(gw_state_limit_check(F.st, &k, 1, on_limit, &x));
    wait_for(&x.done, 1);
    assert_int_equal(x.limit.err, GW_E_INTERNAL);
}

/* Redis: SCAN our prefix and check every key's PTTL. */
typedef struct {
    int done;
    char cursor[32];
    long keys, without_ttl;
    char names[1000][160];
    int count;
} scan_state;

static void on_scan(void *arg, gw_err err, const redisReply *rep)
{
    scan_state *sc = arg;
    assert_int_equal(err, GW_OK);
    snprintf(sc->cursor, sizeof(sc->cursor), "%s", gw_redis_reply_elem(rep, 0)->str);
    const redisReply *arr = gw_redis_reply_elem(rep, 1);
    for (size_t i = 0; i < arr->elements && sc->count < 1000; i++)
        snprintf(sc->names[sc->count++], sizeof(sc->names[0]), "%s", arr->element[i]->str);
    sc->done++;
}

static void on_pttl(void *arg, gw_err err, const redisReply *rep)
{
    scan_state *sc = arg;
    assert_int_equal(err, GW_OK);
    if (rep->integer == -1)
        sc->without_ttl++;
    if (rep->integer != -2)
        sc->keys++;
    sc->done++;
}

static void test_every_key_has_ttl(void **s)
{
    if (!F.is_redis) {
        long without = -1;
        long n = gw_state_mem_key_count(F.st, &without);
        assert_true(n > 0);
        assert_int_equal(without, 0);
        return;
    }
    static scan_state sc;
    memset(&sc, 0, sizeof(sc));
    char pattern[128];
    snprintf(pattern, sizeof(pattern), "%s*", F.prefix);
    /* A cluster: SCAN every node (masters and replicas) through its own
     * connection; PTTL then goes through the cluster client to the key's slot. */
    gw_redis *scan_on[8] = {F.redis};
    size_t nscan = 1;
    if (F.is_cluster) {
        char list[512];
        snprintf(list, sizeof list, "%s", getenv("MODELGW_REDIS_CLUSTER"));
        nscan = 0;
        for (char *save = NULL, *a = strtok_r(list, ",", &save); a && nscan < 8;
             a = strtok_r(NULL, ",", &save)) {
            char *colon = strrchr(a, ':');
            assert_non_null(colon);
            *colon = '\0';
            gw_redis_opts no = {.host = a, .port = atoi(colon + 1), .command_timeout_ms = 2000};
            assert_int_equal(gw_redis_new(&F.loop, &no, &scan_on[nscan]), GW_OK);
            assert_true(gw_test_wait_redis(&F.loop, scan_on[nscan], true, 5000));
            nscan++;
        }
    }
    for (size_t k = 0; k < nscan; k++) {
        strcpy(sc.cursor, "0");
        do {
            const char *argv[6] = {"SCAN", sc.cursor, "MATCH", pattern, "COUNT", "1000"};
            int target = sc.done + 1;
            gw_redis_command(scan_on[k], 6, argv, NULL, on_scan, &sc);
            wait_for(&sc.done, target);
        } while (strcmp(sc.cursor, "0") != 0);
        if (scan_on[k] != F.redis)
            gw_redis_free(scan_on[k]);
    }
    assert_true(sc.count > 0);
    int target = sc.done + sc.count;
    for (int i = 0; i < sc.count; i++) {
        const char *argv[2] = {"PTTL", sc.names[i]};
        gw_redis_command(F.redis, 2, argv, NULL, on_pttl, &sc);
    }
    wait_for(&sc.done, target);
    assert_int_equal(sc.without_ttl, 0);
}

/* ---- one call per request: admission and completion ------------------------------ */

typedef struct {
    int done;
    gw_admit_result r;
    uint8_t data[256]; /* idem or cache bytes */
    size_t len;
} admitted;

static void on_admitted(void *ud, const gw_admit_result *r)
{
    admitted *x = ud;
    assert_false(in_call);
    x->r = *r;
    const gw_cache_result *c = r->idem.kind == GW_CACHE_HIT ? &r->idem : &r->cache;
    x->len = 0;
    if (c->kind == GW_CACHE_HIT && c->data != NULL && c->len <= sizeof x->data) {
        memcpy(x->data, c->data, c->len);
        x->len = c->len;
    }
    x->r.idem.data = x->r.cache.data = NULL;
    x->done++;
}

static admitted admit(const char *rid, const char *owner, const char *ck, const gw_limit_key *keys,
                      const double *hit_cost, size_t n)
{
    admitted x = {0};
    gw_admit_req rq = {.request_id = rid,
                       .owner = owner,
                       .lease_ms = 5000,
                       .result_ttl_s = 60,
                       .keys = keys,
                       .hit_cost = hit_cost,
                       .nkeys = n,
                       .cache_key = ck,
                       .cache_lock = true,
                       .lock_ms = 5000};
    CALL(gw_state_admit(F.st, &rq, on_admitted, &x));
    assert_int_equal(x.done, 0);
    wait_for(&x.done, 1);
    if (x.r.err != GW_OK)
        fail_msg("admit: %s", gw_err_name(x.r.err));
    return x;
}

static gw_state_ack complete(const gw_complete_req *rq)
{
    result x = {0};
    CALL(gw_state_complete(F.st, rq, on_ack, &x));
    assert_int_equal(x.done, 0);
    wait_for(&x.done, 1);
    return x.ack;
}

static void test_admit_and_complete(void **s)
{
    char rid1[64], rid2[64], rid3[64], ck[64], scope[64];
    make_name(rid1, sizeof rid1, "adm");
    make_name(rid2, sizeof rid2, "adm");
    make_name(rid3, sizeof rid3, "adm");
    make_name(ck, sizeof ck, "ck");
    make_name(scope, sizeof scope, "agent_tpm");
    /* 100 tokens a minute, burst 100: a miss reserves 60, a hit costs 0 */
    gw_limit_key keys[1] = {{scope, 100, 100, 60}};
    double hit_cost[1] = {0};

    /* a fresh request: claimed, limits taken, cache locked */
    admitted a = admit(rid1, "w1", ck, keys, hit_cost, 1);
    assert_int_equal(a.r.idem.kind, GW_CACHE_LOCKED_BY_ME);
    assert_int_equal(a.r.limit.verdict, GW_LIMIT_ALLOWED);
    assert_int_equal(a.r.cache.kind, GW_CACHE_LOCKED_BY_ME);

    /* the same prompt from another request while the first runs: the lock is
     * another's, and the limiter has 40 left, less than a miss needs */
    admitted b = admit(rid2, "w2", ck, keys, hit_cost, 1);
    assert_int_equal(b.r.idem.kind, GW_CACHE_LOCKED_BY_ME);
    assert_int_equal(b.r.limit.verdict, GW_LIMIT_DENIED);
    assert_int_equal(b.r.limit.limit_index, 0);
    assert_true(b.r.limit.retry_after_ms > 0);
    assert_int_equal(b.r.cache.kind, GW_CACHE_MISS); /* denied before the cache lock */

    /* the first answers: kept, cached, 50 of the 60 tokens refunded */
    gw_limit_key refund[1] = {{scope, 100, 100, -50}};
    gw_complete_req done = {.request_id = rid1,
                            .owner = "w1",
                            .data = (const uint8_t *)"answer",
                            .len = 6,
                            .idem = GW_DONE_STORE,
                            .idem_ttl_s = 60,
                            .cache_key = ck,
                            .cache = GW_DONE_STORE,
                            .cache_ttl_s = 60,
                            .reconcile = refund,
                            .nreconcile = 1};
    gw_state_ack k = complete(&done);
    assert_int_equal(k.err, GW_OK);
    assert_true(k.applied);
    /* once per request id: a second completion changes nothing */
    k = complete(&done);
    assert_int_equal(k.err, GW_OK);
    assert_false(k.applied);

    /* a redelivery of the first: its kept answer, nothing else touched */
    admitted dup = admit(rid1, "w9", ck, keys, hit_cost, 1);
    assert_int_equal(dup.r.idem.kind, GW_CACHE_HIT);
    assert_int_equal(dup.len, 6);
    assert_memory_equal(dup.data, "answer", 6);

    /* with a fingerprint the answer is kept as "<fingerprint>|<answer>" */
    char ridf[64];
    make_name(ridf, sizeof ridf, "adm");
    admitted g = admit(ridf, "w8", NULL, NULL, NULL, 0);
    assert_int_equal(g.r.idem.kind, GW_CACHE_LOCKED_BY_ME);
    gw_complete_req kept = {.request_id = ridf,
                            .owner = "w8",
                            .data = (const uint8_t *)"answer",
                            .len = 6,
                            .fingerprint = "f00d",
                            .idem = GW_DONE_STORE,
                            .idem_ttl_s = 60};
    assert_true(complete(&kept).applied);
    admitted gk = admit(ridf, "w9", NULL, NULL, NULL, 0);
    assert_int_equal(gk.r.idem.kind, GW_CACHE_HIT);
    assert_int_equal(gk.len, 11);
    assert_memory_equal(gk.data, "f00d|answer", 11);

    /* the second again: a cache hit at the hit cost, kept as its answer */
    admitted c = admit(rid2, "w2", ck, keys, hit_cost, 1);
    assert_int_equal(c.r.limit.verdict, GW_LIMIT_ALLOWED);
    assert_int_equal(c.r.cache.kind, GW_CACHE_HIT);
    assert_true(c.r.hit_kept);
    assert_memory_equal(c.data, "answer", 6);
    assert_int_equal(claim(rid2, "w5", 5000).kind, GW_CACHE_HIT);

    /* the refund is real: a third request's miss (60) fits again (50 left
     * after the first's actual 10, minus nothing for the hit) once the
     * clock moved 6 s (10 tokens) */
    advance_ms(6100);
    char ck2[64];
    make_name(ck2, sizeof ck2, "ck");
    admitted d = admit(rid3, "w3", ck2, keys, hit_cost, 1);
    assert_int_equal(d.r.limit.verdict, GW_LIMIT_ALLOWED);
    assert_int_equal(d.r.cache.kind, GW_CACHE_LOCKED_BY_ME);
    /* a retryable failure: claim and lock released, nothing stored */
    gw_complete_req fail = {.request_id = rid3,
                            .owner = "w3",
                            .idem = GW_DONE_RELEASE,
                            .cache_key = ck2,
                            .cache = GW_DONE_RELEASE};
    k = complete(&fail);
    assert_int_equal(k.err, GW_OK);
    assert_false(k.applied);
    assert_int_equal(claim(rid3, "w4", 5000).kind, GW_CACHE_LOCKED_BY_ME);
    assert_int_equal(get_or_lock(ck2, "w4", 5000).kind, GW_CACHE_LOCKED_BY_ME);

    /* never fits, and a budget that is spent */
    char rid4[64], agent[64];
    make_name(rid4, sizeof rid4, "adm");
    make_name(agent, sizeof agent, "agent");
    gw_limit_key big[1] = {{scope, 100, 100, 500}};
    admitted e = admit(rid4, "w6", NULL, big, NULL, 1);
    assert_int_equal(e.r.limit.verdict, GW_LIMIT_NEVER_FITS);
    admitted f = {0};
    gw_admit_req rq = {.request_id = NULL,
                       .owner = "w7",
                       .agent = agent,
                       .budget = {.daily_usd = 1.0},
                       .estimate_usd = 2.0};
    CALL(gw_state_admit(F.st, &rq, on_admitted, &f));
    wait_for(&f.done, 1);
    assert_int_equal(f.r.err, GW_OK);
    assert_int_equal(f.r.budget.err, GW_E_BUDGET_EXCEEDED);
    assert_string_equal(f.r.budget.period, "day");
    rq.estimate_usd = 0.5;
    memset(&f, 0, sizeof f);
    CALL(gw_state_admit(F.st, &rq, on_admitted, &f));
    wait_for(&f.done, 1);
    assert_int_equal(f.r.budget.err, GW_OK);
}

#define SUITE                                                                                      \
    cmocka_unit_test(test_limit_burst_and_retry_after),                                            \
        cmocka_unit_test(test_limit_long_run_bound), cmocka_unit_test(test_limit_all_or_nothing),  \
        cmocka_unit_test(test_limit_never_fits), cmocka_unit_test(test_limit_keys_of_two_names),   \
        cmocka_unit_test(test_limit_reconcile_once),                                               \
        cmocka_unit_test(test_limit_reconcile_two_names), cmocka_unit_test(test_budgets),          \
        cmocka_unit_test(test_cache_put_get_miss), cmocka_unit_test(test_cache_single_flight),     \
        cmocka_unit_test(test_cache_owner_fails), cmocka_unit_test(test_idempotency),              \
        cmocka_unit_test(test_free_with_waiter_pending), cmocka_unit_test(test_bad_input),         \
        cmocka_unit_test(test_admit_and_complete), cmocka_unit_test(test_every_key_has_ttl)

int main(void)
{
    const struct CMUnitTest mem_tests[] = {SUITE};
    const struct CMUnitTest redis_tests[] = {SUITE};
    const struct CMUnitTest cluster_tests[] = {SUITE};
    int failed = cmocka_run_group_tests_name("state_memory", mem_tests, setup_mem, teardown);
    failed += cmocka_run_group_tests_name("state_redis", redis_tests, setup_redis, teardown);
    const char *nodes = getenv("MODELGW_REDIS_CLUSTER");
    if (nodes == NULL || nodes[0] == '\0')
        printf("state_cluster: SKIPPED: MODELGW_REDIS_CLUSTER is not set (start a cluster with "
               "`tools/services start redis-cluster` and export what it prints)\n");
    else
        failed +=
            cmocka_run_group_tests_name("state_cluster", cluster_tests, setup_cluster, teardown);
    return failed;
}
