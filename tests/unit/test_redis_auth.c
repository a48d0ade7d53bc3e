/*
 * test_redis_auth: the connection's AUTH against a PRIVATE redis-server that
 * this test starts on its own port with a password for the default user and
 * an ACL user (alice): "AUTH user password" with the user and the password
 * given directly or read from environment variables, "AUTH password" for the
 * default user, and a wrong password refused (the connection never becomes
 * ready, and nothing is sent on it).
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
#include "test_support.h"

static uv_loop_t loop;
static pid_t server_pid;
static int server_port;

static int group_setup(void **s)
{
    uv_loop_init(&loop);
    server_port = 12000 + (int)(getpid() % 1000); /* below the ephemeral range */
    server_pid = fork();
    if (server_pid == 0) {
        char port[16];
        snprintf(port, sizeof port, "%d", server_port);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--requirepass", "default-secret", "--user", "alice", "on",
               ">alice-secret", "~*", "&*", "+@all", (char *)NULL);
        _exit(127);
    }
    usleep(300000);
    if (waitpid(server_pid, NULL, WNOHANG) != 0) {
        fprintf(stderr, "could not start a private redis-server on port %d\n", server_port);
        return -1;
    }
    return 0;
}

static int group_teardown(void **s)
{
    if (server_pid > 0) {
        kill(server_pid, SIGKILL);
        waitpid(server_pid, NULL, 0);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop) == 0 ? 0 : -1;
}

typedef struct {
    int done;
    gw_err err;
    char str[128];
} reply;

static void on_reply(void *arg, gw_err err, const redisReply *rep)
{
    reply *x = arg;
    x->done++;
    x->err = err;
    x->str[0] = '\0';
    if (rep != NULL && (rep->type == REDIS_REPLY_STRING || rep->type == REDIS_REPLY_STATUS ||
                        rep->type == REDIS_REPLY_ERROR))
        snprintf(x->str, sizeof x->str, "%s", rep->str);
}

static gw_redis *open_with(const char *user, const char *user_env, const char *pw,
                           const char *pw_env)
{
    gw_redis_opts o = {.host = "127.0.0.1",
                       .port = server_port,
                       .username = user,
                       .username_env = user_env,
                       .password = pw,
                       .password_env = pw_env,
                       .connect_timeout_ms = 500,
                       .reconnect_min_ms = 50,
                       .reconnect_max_ms = 200};
    gw_redis *r = NULL;
    assert_int_equal(gw_redis_new(&loop, &o, &r), GW_OK);
    return r;
}

static void close_redis(gw_redis *r)
{
    gw_redis_free(r);
    gw_test_run_for(&loop, 20);
}

static reply run(gw_redis *r, int argc, const char *const *argv)
{
    reply x = {0};
    gw_redis_command(r, argc, argv, NULL, on_reply, &x);
    assert_true(gw_test_wait_count(&loop, &x.done, 1, 5000));
    return x;
}

/* Who the connection is authenticated as. */
static void assert_whoami(gw_redis *r, const char *user)
{
    const char *argv[2] = {"ACL", "WHOAMI"};
    reply x = run(r, 2, argv);
    assert_int_equal(x.err, GW_OK);
    assert_string_equal(x.str, user);
}

static void test_acl_user_and_password(void **s)
{
    gw_redis *r = open_with("alice", NULL, "alice-secret", NULL);
    gw_redis_script *sc = gw_redis_script_add(r, "return redis.call('PING')");
    assert_non_null(sc);
    assert_true(gw_test_wait_redis(&loop, r, true, 5000));
    assert_whoami(r, "alice");
    reply x = {0};
    gw_redis_eval(r, sc, 0, 0, NULL, NULL, on_reply, &x);
    assert_true(gw_test_wait_count(&loop, &x.done, 1, 5000));
    assert_int_equal(x.err, GW_OK);
    assert_string_equal(x.str, "PONG");
    close_redis(r);
}

static void test_from_environment(void **s)
{
    setenv("TEST_REDIS_AUTH_USER", "alice", 1);
    setenv("TEST_REDIS_AUTH_PASSWORD", "alice-secret", 1);
    gw_redis *r = open_with(NULL, "TEST_REDIS_AUTH_USER", NULL, "TEST_REDIS_AUTH_PASSWORD");
    assert_true(gw_test_wait_redis(&loop, r, true, 5000));
    assert_whoami(r, "alice");
    close_redis(r);
    unsetenv("TEST_REDIS_AUTH_USER");
    unsetenv("TEST_REDIS_AUTH_PASSWORD");
}

static void test_default_user_password_only(void **s)
{
    gw_redis *r = open_with(NULL, NULL, "default-secret", NULL);
    assert_true(gw_test_wait_redis(&loop, r, true, 5000));
    assert_whoami(r, "default");
    close_redis(r);
}

static void test_wrong_password_refused(void **s)
{
    gw_redis *r = open_with("alice", NULL, "not-her-secret", NULL);
    gw_test_run_for(&loop, 800);
    assert_false(gw_redis_is_connected(r));
    const char *argv[1] = {"PING"};
    reply x = run(r, 1, argv);
    assert_int_equal(x.err, GW_E_STATE_UNAVAILABLE);
    gw_redis_stats st;
    gw_redis_get_stats(r, &st);
    assert_true(st.connect_failures > 0);
    assert_int_equal(st.connects, 0);
    close_redis(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_acl_user_and_password),
        cmocka_unit_test(test_from_environment),
        cmocka_unit_test(test_default_user_password_only),
        cmocka_unit_test(test_wrong_password_refused),
    };
    return cmocka_run_group_tests_name("redis_auth", tests, group_setup, group_teardown);
}
