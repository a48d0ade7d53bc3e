/* Tests for state/redis host names: a name is resolved off the loop thread
 * (hiredis 0.14 would call a blocking getaddrinfo inside redisAsyncConnect),
 * a connection through "localhost" reaches the real Redis of tools/services,
 * an unresolvable name fails like a refused connect, and freeing the client
 * while a resolution is in flight releases everything (checked under ASan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "loop/redis.h"
#include "test_support.h"

static int replies;
static gw_err last_err;

static void on_reply(void *arg, gw_err err, const redisReply *reply)
{
    (void)arg;
    (void)reply;
    last_err = err;
    replies++;
}

static gw_redis *client(uv_loop_t *loop, const char *host, int port)
{
    gw_redis_opts o = {.host = host, .port = port};
    gw_redis_opts_defaults(&o);
    gw_redis *r = NULL;
    assert_int_equal(gw_redis_new(loop, &o, &r), GW_OK);
    return r;
}

static void test_localhost_by_name(void **state)
{
    (void)state;
    char host[128];
    int port;
    gw_test_redis_addr(host, sizeof host, &port);
    uv_loop_t loop;
    uv_loop_init(&loop);
    gw_redis *r = client(&loop, "localhost", port);
    if (!gw_test_wait_redis(&loop, r, true, 5000))
        gw_test_redis_unreachable("test_localhost_by_name", "localhost", port);
    const char *argv[] = {"PING"};
    replies = 0;
    gw_redis_command(r, 1, argv, NULL, on_reply, NULL);
    assert_true(gw_test_wait_count(&loop, &replies, 1, 5000));
    assert_int_equal(last_err, GW_OK);
    gw_redis_free(r);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_unresolvable_name_fails(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    gw_redis *r = client(&loop, "no-such-host.invalid", 6379);
    /* However long the resolver takes, the loop keeps running meanwhile. */
    gw_redis_stats st = {0};
    for (int i = 0; i < 200 && st.connect_failures == 0; i++) {
        gw_test_run_for(&loop, 50);
        gw_redis_get_stats(r, &st);
    }
    assert_false(gw_redis_is_connected(r));
    assert_true(st.connect_failures >= 1);
    replies = 0;
    const char *argv[] = {"PING"};
    gw_redis_command(r, 1, argv, NULL, on_reply, NULL);
    assert_true(gw_test_wait_count(&loop, &replies, 1, 2000));
    assert_int_equal(last_err, GW_E_STATE_UNAVAILABLE);
    gw_redis_free(r);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_free_while_resolving(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    gw_redis *r = client(&loop, "localhost", 16379);
    gw_redis_free(r); /* the resolution is still on the thread pool */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_localhost_by_name),
        cmocka_unit_test(test_unresolvable_name_fails),
        cmocka_unit_test(test_free_while_resolving),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
