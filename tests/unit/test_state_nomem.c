/*
 * test_state_nomem: out of memory in the state module and the Redis
 * connection. The allocation seam is calloc itself: this executable defines
 * calloc (glibc's own is __libc_calloc), failing every call while `failing`
 * is set, around the one call under test. Every operation must still call
 * back exactly once with GW_E_NOMEM, never inside the call (answers beyond
 * the fixed ring of GW_STATE_NOMEM_SLOTS are the documented last resort:
 * inside the call, still exactly once); nothing aborts.
 *
 * Under AddressSanitizer calloc belongs to the sanitizer, so the tests skip.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop/redis.h"
#include "state/state.h"
#include "state/state_private.h"
#include "test_state_util.h"
#include "test_support.h"

#if defined(__SANITIZE_ADDRESS__)
#define SEAM 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SEAM 0
#endif
#endif
#ifndef SEAM
#define SEAM 1
#endif

static bool failing;

#if SEAM
void *__libc_calloc(size_t n, size_t size);
void *calloc(size_t n, size_t size)
{
    if (failing)
        return NULL;
    return __libc_calloc(n, size);
}
#endif

#define NEED_SEAM()                                                                                \
    do {                                                                                           \
        if (!SEAM) {                                                                               \
            print_message("skipped: calloc cannot be replaced under AddressSanitizer\n");          \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* CALL() with every calloc failing. */
#define CALL_NOMEM(expr)                                                                           \
    do {                                                                                           \
        failing = true;                                                                            \
        CALL(expr);                                                                                \
        failing = false;                                                                           \
    } while (0)

static uv_loop_t loop;

static void run_until(int *done, int target)
{
    if (!gw_test_wait_count(&loop, done, target, 5000))
        fail_msg("timed out waiting for %d callbacks (have %d)", target, *done);
}

static gw_state *mem_state(void)
{
    gw_state *st = NULL;
    gw_state_opts o = {.key_prefix = "t:"};
    assert_int_equal(gw_state_mem_new(&loop, &o, &st), GW_OK);
    return st;
}

static gw_state *policy_state(gw_state *inner)
{
    gw_state *st = NULL;
    gw_state_policy_opts o = {.limits = GW_STATE_FAIL_OPEN,
                              .cache = GW_STATE_FAIL_OPEN,
                              .idempotency = GW_STATE_FAIL_OPEN,
                              .expected_workers = 1};
    assert_int_equal(gw_state_policy_new(&loop, inner, &o, &st), GW_OK);
    return st;
}

static void close_state(gw_state *st)
{
    gw_state_free(st);
    gw_test_run_for(&loop, 20);
}

/* Every operation of st, with calloc failing: NOMEM each, next turn. With
 * works_after, a limit check afterwards (memory back) is allowed. */
static void every_operation(gw_state *st, bool works_after)
{
    result x[12];
    memset(x, 0, sizeof x);
    gw_limit_key k = {.scope = "a", .rate_per_min = 60, .burst = 5, .cost = 1};
    gw_budget_limits lim = {.daily_usd = 1};
    static const uint8_t data[4] = "abc";
    CALL_NOMEM(gw_state_limit_check(st, &k, 1, on_limit, &x[0]));
    CALL_NOMEM(gw_state_limit_reconcile(st, "r1", &k, 1, on_ack, &x[1]));
    CALL_NOMEM(gw_state_budget_check(st, "ag", 0.1, &lim, on_budget, &x[2]));
    CALL_NOMEM(gw_state_budget_charge(st, "r1", "ag", 0.1, on_ack, &x[3]));
    CALL_NOMEM(gw_state_cache_get(st, "k", on_cache, &x[4]));
    CALL_NOMEM(gw_state_cache_put(st, "k", data, 3, 60, "o", on_ack, &x[5]));
    CALL_NOMEM(gw_state_cache_get_or_lock(st, "k", "o", 1000, false, on_cache, &x[6]));
    CALL_NOMEM(gw_state_cache_unlock(st, "k", "o", on_ack, &x[7]));
    CALL_NOMEM(gw_state_idem_claim(st, "r1", "o", 1000, on_cache, &x[8]));
    CALL_NOMEM(gw_state_idem_complete(st, "r1", "o", data, 3, 60, on_ack, &x[9]));
    CALL_NOMEM(gw_state_idem_release(st, "r1", "o", on_ack, &x[10]));
    CALL_NOMEM(gw_state_cache_wait(st, "k", "o", 1000, 100, on_cache, &x[11]));
    for (int i = 0; i < 12; i++) {
        if (x[i].done != 0)
            fail_msg("operation %d answered inside the call", i);
    }
    int sum = 0;
    for (int spin = 0; spin < 100 && sum < 12; spin++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        sum = 0;
        for (int i = 0; i < 12; i++)
            sum += x[i].done;
    }
    for (int i = 0; i < 12; i++)
        if (x[i].done != 1)
            fail_msg("operation %d answered %d times", i, x[i].done);
    assert_int_equal(x[0].limit.err, GW_E_NOMEM);
    assert_int_equal(x[1].ack.err, GW_E_NOMEM);
    assert_int_equal(x[2].budget.err, GW_E_NOMEM);
    assert_int_equal(x[3].ack.err, GW_E_NOMEM);
    assert_int_equal(x[4].cache.err, GW_E_NOMEM);
    assert_int_equal(x[5].ack.err, GW_E_NOMEM);
    assert_int_equal(x[6].cache.err, GW_E_NOMEM);
    assert_int_equal(x[7].ack.err, GW_E_NOMEM);
    assert_int_equal(x[8].cache.err, GW_E_NOMEM);
    assert_int_equal(x[9].ack.err, GW_E_NOMEM);
    assert_int_equal(x[10].ack.err, GW_E_NOMEM);
    assert_int_equal(x[11].cache.err, GW_E_NOMEM);

    if (!works_after)
        return;
    /* Memory is back: the state works as before. */
    result ok = {0};
    CALL(gw_state_limit_check(st, &k, 1, on_limit, &ok));
    run_until(&ok.done, 1);
    assert_int_equal(ok.limit.err, GW_OK);
    assert_int_equal(ok.limit.verdict, GW_LIMIT_ALLOWED);
}

static void test_memory_backend_nomem(void **state)
{
    (void)state;
    NEED_SEAM();
    gw_state *st = mem_state();
    every_operation(st, true);
    close_state(st);
}

static void test_policy_wrapper_nomem(void **state)
{
    (void)state;
    NEED_SEAM();
    gw_state *st = policy_state(mem_state());
    every_operation(st, true);
    close_state(st);
}

/* More failures in one turn than the ring holds: the ring's answers come on
 * the next turn, the rest inside the call; each exactly once. */
static void test_ring_overflow(void **state)
{
    (void)state;
    NEED_SEAM();
    gw_state *st = mem_state();
    enum { N = GW_STATE_NOMEM_SLOTS + 5 };
    int done[N] = {0};
    result x[N];
    memset(x, 0, sizeof x);
    gw_limit_key k = {.scope = "a", .rate_per_min = 60, .burst = 5, .cost = 1};
    failing = true;
    for (int i = 0; i < N; i++)
        gw_state_limit_check(st, &k, 1, on_limit, &x[i]);
    failing = false;
    for (int i = 0; i < N; i++)
        done[i] = x[i].done;
    for (int i = 0; i < GW_STATE_NOMEM_SLOTS; i++)
        assert_int_equal(done[i], 0);
    for (int i = GW_STATE_NOMEM_SLOTS; i < N; i++)
        assert_int_equal(done[i], 1);
    uv_run(&loop, UV_RUN_NOWAIT);
    for (int i = 0; i < N; i++) {
        assert_int_equal(x[i].done, 1);
        assert_int_equal(x[i].limit.err, GW_E_NOMEM);
    }
    close_state(st);
}

/* gw_state_free with NOMEM answers still queued: SHUTTING_DOWN, once. */
static void test_free_with_nomem_queued(void **state)
{
    (void)state;
    NEED_SEAM();
    gw_state *st = mem_state();
    result x = {0};
    CALL_NOMEM(gw_state_cache_get(st, "k", on_cache, &x));
    assert_int_equal(x.done, 0);
    gw_state_free(st);
    assert_int_equal(x.done, 1);
    assert_int_equal(x.cache.err, GW_E_SHUTTING_DOWN);
    gw_test_run_for(&loop, 20);
    assert_int_equal(x.done, 1);
}

typedef struct {
    int done;
    gw_err err;
} redis_result;

static void on_redis(void *arg, gw_err err, const redisReply *reply)
{
    redis_result *x = arg;
    assert_false(in_call);
    assert_null(reply);
    x->err = err;
    x->done++;
}

/* The Redis backend: no memory for an operation record -> NOMEM on the next
 * turn. No server is needed (port 1 never answers). */
static void test_redis_backend_nomem(void **state)
{
    (void)state;
    NEED_SEAM();
    gw_redis_opts o = {.host = "127.0.0.1", .port = 1};
    gw_redis *r = NULL;
    assert_int_equal(gw_redis_new(&loop, &o, &r), GW_OK);
    gw_state *st = NULL;
    gw_state_opts so = {.key_prefix = "t:"};
    assert_int_equal(gw_state_redis_new(&loop, r, &so, &st), GW_OK);
    every_operation(st, false);
    gw_state *pst = policy_state(st);
    every_operation(pst, false);
    close_state(pst);
    gw_redis_free(r);
    gw_test_run_for(&loop, 20);
}

/* The Redis connection: no memory for a command's record -> NOMEM on the
 * next turn. */
static void test_redis_command_nomem(void **state)
{
    (void)state;
    NEED_SEAM();
    gw_redis_opts o = {.host = "127.0.0.1", .port = 1};
    gw_redis *r = NULL;
    assert_int_equal(gw_redis_new(&loop, &o, &r), GW_OK);
    gw_redis_script *s = gw_redis_script_add(r, "return 1");
    assert_non_null(s);
    redis_result a = {0}, b = {0};
    const char *argv[2] = {"GET", "k"};
    CALL_NOMEM(gw_redis_command(r, 2, argv, NULL, on_redis, &a));
    CALL_NOMEM(gw_redis_eval(r, s, 0, 0, argv, NULL, on_redis, &b));
    assert_int_equal(a.done + b.done, 0);
    run_until(&b.done, 1);
    assert_int_equal(a.done, 1);
    assert_int_equal(a.err, GW_E_NOMEM);
    assert_int_equal(b.err, GW_E_NOMEM);
    gw_redis_free(r);
    gw_test_run_for(&loop, 20);
    assert_int_equal(a.done, 1);
    assert_int_equal(b.done, 1);
}

static int group_setup(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_loop_close(&loop);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_backend_nomem), cmocka_unit_test(test_policy_wrapper_nomem),
        cmocka_unit_test(test_ring_overflow),        cmocka_unit_test(test_free_with_nomem_queued),
        cmocka_unit_test(test_redis_backend_nomem),  cmocka_unit_test(test_redis_command_nomem),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
