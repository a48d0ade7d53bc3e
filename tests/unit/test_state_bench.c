/*
 * test_state_bench: cost per state decision against the real redis-server.
 *
 * For each operation, N decisions are pipelined over the one async
 * connection (at most `window` in flight) and we report: round trips per
 * decision (commands sent / decisions), client CPU per decision (getrusage
 * of this process), Redis CPU per decision (INFO cpu before/after; other
 * clients of a shared server add noise) and throughput.
 * As a unit test it runs a small N and asserts only correctness (every
 * answer OK, one command per decision). For real numbers:
 *   MODELGW_STATE_BENCH_N=100000 build-x/test_state_bench
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "loop/redis.h"
#include "state/state.h"
#include "test_support.h"

static uv_loop_t loop;
static gw_redis *redis;
static gw_state *st;
static char prefix[64];
static long n_ops = 2000;
static const int window = 500;

typedef enum { OP_LIMIT, OP_CACHE_GET_HIT, OP_CACHE_GET_OR_LOCK, OP_CACHE_PUT } op_kind;

typedef struct {
    op_kind kind;
    long issued, done, errors;
} bench;

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static void issue(bench *b);

static void on_limit(void *ud, const gw_limit_result *r)
{
    bench *b = ud;
    b->done++;
    b->errors += r->err != GW_OK;
    issue(b);
}

static void on_cache(void *ud, const gw_cache_result *r)
{
    bench *b = ud;
    b->done++;
    b->errors += r->err != GW_OK;
    issue(b);
}

static void on_ack(void *ud, const gw_state_ack *r)
{
    bench *b = ud;
    b->done++;
    b->errors += r->err != GW_OK;
    issue(b);
}

static const uint8_t value[1024] = {1};

static void issue(bench *b)
{
    if (b->issued >= n_ops)
        return;
    long i = b->issued++;
    char name[64];
    switch (b->kind) {
    case OP_LIMIT: {
        /* The pipeline's decision: agent RPM + TPM and deployment RPM + TPM. */
        gw_limit_key k[4] = {
            {.scope = "agent_rpm:bench", .rate_per_min = 1e9, .burst = 1e9, .cost = 1},
            {.scope = "agent_tpm:bench", .rate_per_min = 1e12, .burst = 1e12, .cost = 1500},
            {.scope = "deploy_rpm:bench", .rate_per_min = 1e9, .burst = 1e9, .cost = 1},
            {.scope = "deploy_tpm:bench", .rate_per_min = 1e12, .burst = 1e12, .cost = 1500},
        };
        gw_state_limit_check(st, k, 4, on_limit, b);
        break;
    }
    case OP_CACHE_GET_HIT:
        gw_state_cache_get(st, "bench-hit", on_cache, b);
        break;
    case OP_CACHE_GET_OR_LOCK:
        snprintf(name, sizeof(name), "bench-miss-%ld", i);
        gw_state_cache_get_or_lock(st, name, "worker-1", 30000, false, on_cache, b);
        break;
    case OP_CACHE_PUT:
        snprintf(name, sizeof(name), "bench-miss-%ld", i);
        gw_state_cache_put(st, name, value, sizeof(value), 60, "worker-1", on_ack, b);
        break;
    }
}

typedef struct {
    const long *done;
    long target;
} count_long;

static bool reached(const void *arg)
{
    const count_long *c = arg;
    return *c->done >= c->target;
}

static void run_until(long *done, long target)
{
    count_long c = {.done = done, .target = target};
    if (!gw_test_run_until(&loop, reached, &c, 110000))
        fail_msg("benchmark did not finish (%ld of %ld)", *done, target);
}

typedef struct {
    long done;
    double cpu_s;
} info_result;

static void on_info(void *arg, gw_err err, const redisReply *rep)
{
    info_result *x = arg;
    x->cpu_s = 0;
    if (err == GW_OK && rep->type == REDIS_REPLY_STRING) {
        const char *u = strstr(rep->str, "used_cpu_user:");
        const char *s = strstr(rep->str, "used_cpu_sys:");
        if (u && s)
            x->cpu_s = atof(u + 14) + atof(s + 13);
    }
    x->done++;
}

static double server_cpu_s(void)
{
    info_result x = {0};
    const char *argv[2] = {"INFO", "cpu"};
    gw_redis_command(redis, 2, argv, NULL, on_info, &x);
    run_until(&x.done, 1);
    return x.cpu_s;
}

static void run_bench(const char *name, op_kind kind)
{
    bench b = {.kind = kind};
    gw_redis_stats s0, s1;
    gw_redis_get_stats(redis, &s0);
    double srv0 = server_cpu_s();
    double c0 = cpu_s();
    uint64_t t0 = uv_hrtime();
    for (int i = 0; i < window; i++)
        issue(&b);
    run_until(&b.done, n_ops);
    double wall_s = (double)(uv_hrtime() - t0) / 1e9;
    double cpu = cpu_s() - c0;
    double srv = server_cpu_s() - srv0;
    gw_redis_get_stats(redis, &s1);
    double rt = (double)(s1.commands - s0.commands - 1) / (double)n_ops; /* minus one INFO */
    printf("bench %-22s n=%ld  round_trips/decision=%.2f  client_cpu=%.2f us/op  "
           "redis_cpu=%.2f us/op  throughput=%.0f ops/s  errors=%ld\n",
           name, n_ops, rt, cpu * 1e6 / (double)n_ops, srv * 1e6 / (double)n_ops,
           (double)n_ops / wall_s, b.errors);
    assert_int_equal(b.errors, 0);
    assert_true(rt > 0.99 && rt < 1.01);
}

static void on_seed(void *ud, const gw_state_ack *r)
{
    bench *b = ud;
    b->errors += r->err != GW_OK;
    b->done++;
}

static void test_bench(void **s)
{
    bench seed = {0};
    gw_state_cache_put(st, "bench-hit", value, sizeof(value), 300, NULL, on_seed, &seed);
    run_until(&seed.done, 1);
    assert_int_equal(seed.errors, 0);
    run_bench("limit_check(4 keys)", OP_LIMIT);
    run_bench("cache_get(hit 1KiB)", OP_CACHE_GET_HIT);
    run_bench("cache_get_or_lock(miss)", OP_CACHE_GET_OR_LOCK);
    run_bench("cache_put(1KiB)", OP_CACHE_PUT);
}

static int setup(void **s)
{
    const char *n = getenv("MODELGW_STATE_BENCH_N");
    if (n && atol(n) > 0)
        n_ops = atol(n);
    uv_loop_init(&loop);
    char host[128];
    int port;
    gw_test_redis_addr(host, sizeof(host), &port);
    gw_redis_opts ro = {.host = host, .port = port, .command_timeout_ms = 10000};
    if (gw_redis_new(&loop, &ro, &redis) != GW_OK)
        return -1;
    snprintf(prefix, sizeof(prefix), "bench:%d:", (int)getpid());
    gw_state_opts so = {.key_prefix = prefix};
    if (gw_state_redis_new(&loop, redis, &so, &st) != GW_OK)
        return -1;
    if (!gw_test_wait_redis(&loop, redis, true, 5000)) {
        gw_test_redis_unreachable("test_state_bench", host, port);
        return -1;
    }
    return 0;
}

static int teardown(void **s)
{
    gw_state_free(st);
    gw_redis_free(redis);
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_bench)};
    return cmocka_run_group_tests_name("state_bench", tests, setup, teardown);
}
