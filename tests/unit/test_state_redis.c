/*
 * test_state_redis: the Redis connection and the failure policy against a
 * PRIVATE redis-server that this test starts on its own port and stops and
 * restarts at will (the shared one of tools/services is never touched).
 *
 * Covers: NOSCRIPT recovery after SCRIPT FLUSH, the per-command timeout with
 * a late reply dropped safely, the bounded queue failing fast, Redis killed
 * mid-way (every callback still called exactly once, never inside the call;
 * open policies fall back, closed ones report STATE_UNAVAILABLE), reconnect
 * after a restart, and no key left without a TTL.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loop/redis.h"
#include "state/state.h"
#include "test_state_util.h"
#include "test_support.h"

static uv_loop_t loop;
static pid_t server_pid;
static int server_port;
static void wait_for(int *done, int target)
{
    if (!gw_test_wait_count(&loop, done, target, 15000))
        fail_msg("timed out waiting for %d callbacks (have %d)", target, *done);
}

static void wait_connected(gw_redis *r, bool want)
{
    if (!gw_test_wait_redis(&loop, r, want, 15000))
        fail_msg("redis connection never became %s", want ? "ready" : "down");
}

/* ---- the private server ---------------------------------------------------- */

static void server_start(void)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", server_port);
    server_pid = fork();
    if (server_pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--enable-debug-command", "yes", (char *)NULL);
        _exit(127);
    }
}

static void server_kill(void)
{
    if (server_pid > 0) {
        kill(server_pid, SIGKILL);
        waitpid(server_pid, NULL, 0);
        server_pid = 0;
    }
}

static int group_setup(void **s)
{
    uv_loop_init(&loop);
    server_port = 20000 + (int)(getpid() % 20000);
    server_start();
    usleep(200000);
    if (waitpid(server_pid, NULL, WNOHANG) != 0) {
        fprintf(stderr, "could not start a private redis-server on port %d\n", server_port);
        return -1;
    }
    return 0;
}

static int group_teardown(void **s)
{
    server_kill();
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop) == 0 ? 0 : -1;
}

static gw_redis *connect_private(uint32_t command_timeout_ms, uint32_t max_pending)
{
    gw_redis_opts o = {.host = "127.0.0.1",
                       .port = server_port,
                       .command_timeout_ms = command_timeout_ms,
                       .max_pending = max_pending,
                       .reconnect_min_ms = 20,
                       .reconnect_max_ms = 200,
                       .connect_timeout_ms = 500};
    gw_redis *r = NULL;
    assert_int_equal(gw_redis_new(&loop, &o, &r), GW_OK);
    wait_connected(r, true);
    return r;
}

static void close_all(gw_state *st, gw_redis *r)
{
    gw_state_free(st);
    gw_redis_free(r);
    uv_run(&loop, UV_RUN_DEFAULT);
}

/* ---- callbacks --------------------------------------------------------------- */

typedef struct {
    int done;
    gw_err err;
    long long integer;
} cmd_result;

static void on_cmd(void *arg, gw_err err, const redisReply *rep)
{
    cmd_result *c = arg;
    assert_false(in_call);
    c->done++;
    c->err = err;
    c->integer = rep ? rep->integer : 0;
}

static void command(gw_redis *r, cmd_result *c, int argc, const char **argv)
{
    CALL(gw_redis_command(r, argc, argv, NULL, on_cmd, c));
}

static gw_limit_result check(gw_state *st, const char *scope, double rate, double burst)
{
    gw_limit_key k = {.scope = scope, .rate_per_min = rate, .burst = burst, .cost = 1};
    result x = {0};
    CALL(gw_state_limit_check(st, &k, 1, on_limit, &x));
    wait_for(&x.done, 1);
    return x.limit;
}

static gw_state *state_on(gw_redis *r, const char *prefix)
{
    gw_state_opts o = {.key_prefix = prefix};
    gw_state *st = NULL;
    assert_int_equal(gw_state_redis_new(&loop, r, &o, &st), GW_OK);
    return st;
}

/* ---- tests ---------------------------------------------------------------------- */

static void test_noscript_recovery(void **s)
{
    gw_redis *r = connect_private(1000, 0);
    gw_state *st = state_on(r, "noscript:");
    assert_int_equal(check(st, "a", 600, 10).verdict, GW_LIMIT_ALLOWED);
    cmd_result c = {0};
    const char *flush[2] = {"SCRIPT", "FLUSH"};
    command(r, &c, 2, flush);
    wait_for(&c.done, 1);
    assert_int_equal(c.err, GW_OK);
    gw_limit_result l = check(st, "a", 600, 10);
    assert_int_equal(l.err, GW_OK);
    assert_int_equal(l.verdict, GW_LIMIT_ALLOWED);
    gw_redis_stats stats;
    gw_redis_get_stats(r, &stats);
    assert_true(stats.noscript_reloads >= 1);
    close_all(st, r);
}

static void test_timeout_and_late_reply(void **s)
{
    gw_redis *r = connect_private(100, 0);
    cmd_result slow = {0}, ping = {0};
    const char *sleep_cmd[3] = {"DEBUG", "SLEEP", "0.3"};
    const char *ping_cmd[1] = {"PING"};
    command(r, &slow, 3, sleep_cmd);
    wait_for(&slow.done, 1);
    assert_int_equal(slow.err, GW_E_STATE_UNAVAILABLE);
    gw_test_run_for(&loop, 400); /* the real reply arrives now and must be dropped */
    command(r, &ping, 1, ping_cmd);
    wait_for(&ping.done, 1);
    assert_int_equal(ping.err, GW_OK);
    assert_int_equal(slow.done, 1); /* exactly once */
    gw_redis_stats stats;
    gw_redis_get_stats(r, &stats);
    assert_int_equal(stats.timeouts, 1);
    assert_int_equal(stats.late_replies, 1);
    assert_int_equal(stats.pending, 0);
    close_all(NULL, r);
}

static void test_queue_full_fails_fast(void **s)
{
    gw_redis *r = connect_private(1000, 10);
    enum { N = 25 };
    cmd_result c[N];
    memset(c, 0, sizeof(c));
    const char *ping_cmd[1] = {"PING"};
    for (int i = 0; i < N; i++)
        command(r, &c[i], 1, ping_cmd);
    int ok = 0, unavailable = 0;
    for (int i = 0; i < N; i++) {
        wait_for(&c[i].done, 1);
        assert_int_equal(c[i].done, 1);
        ok += c[i].err == GW_OK;
        unavailable += c[i].err == GW_E_STATE_UNAVAILABLE;
    }
    assert_int_equal(ok, 10);
    assert_int_equal(unavailable, N - 10);
    gw_redis_stats stats;
    gw_redis_get_stats(r, &stats);
    assert_int_equal(stats.rejected_full, N - 10);
    close_all(NULL, r);
}

static void test_stop_restart_with_policies(void **s)
{
    gw_redis *r = connect_private(300, 0);
    gw_state *inner = state_on(r, "policy:");
    gw_state_policy_opts po = {.limits = GW_STATE_FAIL_OPEN,
                               .cache = GW_STATE_FAIL_OPEN,
                               .idempotency = GW_STATE_FAIL_CLOSED,
                               .expected_workers = 2};
    gw_state *st = NULL;
    assert_int_equal(gw_state_policy_new(&loop, inner, &po, &st), GW_OK);
    gw_limit_result l = check(st, "agent_rpm:x", 60, 4);
    assert_int_equal(l.err, GW_OK);
    assert_false(l.fallback);

    /* Operations in flight when Redis dies still get exactly one answer. */
    enum { N = 20 };
    result inflight[N];
    memset(inflight, 0, sizeof(inflight));
    for (int i = 0; i < N; i++)
        CALL(gw_state_cache_get_or_lock(st, "k", "me", 1000, false, on_cache, &inflight[i]));
    server_kill();
    for (int i = 0; i < N; i++) {
        wait_for(&inflight[i].done, 1);
        assert_int_equal(inflight[i].done, 1);
        assert_int_equal(inflight[i].cache.err, GW_OK);
    }
    wait_connected(r, false);

    /* limits open: the local limiter at rate/2 and burst/2 (4/2 = 2). */
    int allowed = 0;
    for (int i = 0; i < 5; i++) {
        l = check(st, "agent_rpm:y", 60, 4);
        assert_int_equal(l.err, GW_OK);
        assert_true(l.fallback);
        allowed += l.verdict == GW_LIMIT_ALLOWED;
    }
    assert_int_equal(allowed, 2);
    /* cache open: bypass; idempotency closed: the error. */
    result c = {0};
    CALL(gw_state_cache_get_or_lock(st, "k2", "me", 1000, false, on_cache, &c));
    wait_for(&c.done, 1);
    assert_int_equal(c.cache.kind, GW_CACHE_BYPASS);
    assert_true(c.cache.fallback);
    result id = {0};
    CALL(gw_state_idem_claim(st, "req-1", "me", 1000, on_cache, &id));
    wait_for(&id.done, 1);
    assert_int_equal(id.cache.err, GW_E_STATE_UNAVAILABLE);
    gw_state_stats ss;
    gw_state_get_stats(st, &ss);
    assert_true(ss.fallback_limits >= 5);
    assert_true(ss.fallback_cache >= 1);
    assert_true(ss.failed_closed >= 1);

    /* Back again: reconnect with backoff, shared state answers again. */
    server_start();
    wait_connected(r, true);
    l = check(st, "agent_rpm:z", 60, 4);
    assert_int_equal(l.err, GW_OK);
    assert_false(l.fallback);
    memset(&id, 0, sizeof(id));
    CALL(gw_state_idem_claim(st, "req-1", "me", 1000, on_cache, &id));
    wait_for(&id.done, 1);
    assert_int_equal(id.cache.err, GW_OK);
    assert_int_equal(id.cache.kind, GW_CACHE_LOCKED_BY_ME);
    gw_redis_stats rs;
    gw_redis_get_stats(r, &rs);
    assert_true(rs.disconnects >= 1);
    assert_true(rs.connects >= 2);

    /* No key without a TTL. */
    cmd_result keys = {0};
    const char *argv[2] = {"EVAL", "local n = 0 for _, k in ipairs(redis.call('KEYS', '*')) do "
                                   "if redis.call('PTTL', k) == -1 then n = n + 1 end end "
                                   "return n"};
    const char *full[3] = {argv[0], argv[1], "0"};
    command(r, &keys, 3, full);
    wait_for(&keys.done, 1);
    assert_int_equal(keys.err, GW_OK);
    assert_int_equal(keys.integer, 0);
    close_all(st, r);
}

static void test_closed_limits_report_unavailable(void **s)
{
    gw_redis *r = connect_private(300, 0);
    gw_state *inner = state_on(r, "closed:");
    gw_state_policy_opts po = {.limits = GW_STATE_FAIL_CLOSED, .expected_workers = 1};
    gw_state *st = NULL;
    assert_int_equal(gw_state_policy_new(&loop, inner, &po, &st), GW_OK);
    server_kill();
    wait_connected(r, false);
    gw_limit_result l = check(st, "agent_rpm:q", 60, 4);
    assert_int_equal(l.err, GW_E_STATE_UNAVAILABLE);
    assert_false(l.fallback);
    server_start();
    wait_connected(r, true);
    close_all(st, r);
}

static void test_paused_server_reconnects(void **s)
{
    gw_redis *r = connect_private(100, 0);
    const char *ping_cmd[1] = {"PING"};
    kill(server_pid, SIGSTOP);
    /* The TCP connection stays up; silence makes the client reconnect. */
    int answered = 0;
    while (gw_redis_is_connected(r)) {
        cmd_result c = {0};
        command(r, &c, 1, ping_cmd);
        wait_for(&c.done, 1);
        assert_int_equal(c.err, GW_E_STATE_UNAVAILABLE);
        assert_true(++answered < 100);
    }
    kill(server_pid, SIGCONT);
    wait_connected(r, true);
    cmd_result c = {0};
    command(r, &c, 1, ping_cmd);
    wait_for(&c.done, 1);
    assert_int_equal(c.err, GW_OK);
    gw_redis_stats stats;
    gw_redis_get_stats(r, &stats);
    assert_true(stats.disconnects >= 1);
    close_all(NULL, r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_noscript_recovery),
        cmocka_unit_test(test_timeout_and_late_reply),
        cmocka_unit_test(test_queue_full_fails_fast),
        cmocka_unit_test(test_stop_restart_with_policies),
        cmocka_unit_test(test_closed_limits_report_unavailable),
        cmocka_unit_test(test_paused_server_reconnects),
    };
    return cmocka_run_group_tests_name("state_redis_failures", tests, group_setup, group_teardown);
}
