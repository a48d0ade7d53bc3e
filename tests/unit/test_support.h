/*
 * test_support: what the unit tests that talk to real processes share:
 * where the shared Redis is (MODELGW_REDIS), running a libuv loop until a
 * condition holds or some loop time has passed, and a modelgw-mockllm child
 * on a free port.
 *
 * Static functions in a header: CMake builds every tests/unit/test_*.c as an
 * executable of its own, so there is no support library to link. Include it
 * after <cmocka.h>.
 */
#ifndef GW_TEST_SUPPORT_H
#define GW_TEST_SUPPORT_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "loop/redis.h"

#define GW_TEST_REDIS_DEFAULT "127.0.0.1:16379"

/* MODELGW_REDIS ("host:port"; unset or empty: 127.0.0.1:16379) split into a
 * host (NUL-terminated in host) and a port (16379 when none is given). */
static inline void gw_test_redis_addr(char *host, size_t hostlen, int *port)
{
    const char *env = getenv("MODELGW_REDIS");
    snprintf(host, hostlen, "%s", env != NULL && env[0] ? env : GW_TEST_REDIS_DEFAULT);
    char *colon = strrchr(host, ':');
    *port = 16379;
    if (colon != NULL) {
        *colon = '\0';
        *port = atoi(colon + 1);
    }
}

/* What a Redis-backed test says when Redis does not answer. */
static inline void gw_test_redis_unreachable(const char *test, const char *host, int port)
{
    fprintf(stderr,
            "%s: Redis at %s:%d is not reachable: start it with `tools/services start` or set "
            "MODELGW_REDIS\n",
            test, host, port);
}

static inline void gw_test_tick(uv_timer_t *t)
{
    (void)t;
}

/* Runs loop until done(arg) holds or timeout_ms of loop time have passed;
 * returns done(arg). A 10 ms guard timer bounds each UV_RUN_ONCE: after
 * running due timers, ONCE would otherwise block in poll even though the
 * callback waited for has just run. */
static inline bool gw_test_run_until(uv_loop_t *loop, bool (*done)(const void *arg),
                                     const void *arg, uint64_t timeout_ms)
{
    uv_timer_t guard;
    uv_timer_init(loop, &guard);
    uv_timer_start(&guard, gw_test_tick, 10, 10);
    uv_update_time(loop);
    uint64_t start = uv_now(loop);
    bool ok;
    while (!(ok = done(arg)) && uv_now(loop) - start < timeout_ms)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

static inline bool gw_test_never(const void *arg)
{
    (void)arg;
    return false;
}

/* Lets ms of loop time pass with the loop running. */
static inline void gw_test_run_for(uv_loop_t *loop, uint64_t ms)
{
    gw_test_run_until(loop, gw_test_never, NULL, ms);
}

typedef struct {
    const int *count;
    int target;
} gw_test_count;

static inline bool gw_test_count_reached(const void *arg)
{
    const gw_test_count *c = arg;
    return *c->count >= c->target;
}

/* Runs loop until *count reaches target (callbacks counted by the test);
 * false after timeout_ms. */
static inline bool gw_test_wait_count(uv_loop_t *loop, const int *count, int target,
                                      uint64_t timeout_ms)
{
    gw_test_count c = {.count = count, .target = target};
    return gw_test_run_until(loop, gw_test_count_reached, &c, timeout_ms);
}

typedef struct {
    gw_redis *redis;
    bool want;
} gw_test_conn;

static inline bool gw_test_conn_reached(const void *arg)
{
    const gw_test_conn *c = arg;
    return gw_redis_is_connected(c->redis) == c->want;
}

/* Runs loop until the connection is ready (want) or down (!want); false
 * after timeout_ms. */
static inline bool gw_test_wait_redis(uv_loop_t *loop, gw_redis *r, bool want, uint64_t timeout_ms)
{
    gw_test_conn c = {.redis = r, .want = want};
    return gw_test_run_until(loop, gw_test_conn_reached, &c, timeout_ms);
}

/* A modelgw-mockllm child listening on 127.0.0.1:port. */
typedef struct {
    pid_t pid;
    int port;
    char base_url[64];
} gw_test_mock;

static inline void gw_test_mock_stop(gw_test_mock *m)
{
    if (m->pid <= 0)
        return;
    kill(m->pid, SIGTERM);
    waitpid(m->pid, NULL, 0);
    m->pid = 0;
}

/* Spawns $MODELGW_BUILD_DIR/modelgw-mockllm --port 0 followed by extra_args
 * (NULL-terminated, at most 8; may be NULL) and reads the port it announces
 * on stdout. 0, or -1 with a message on stderr. */
static inline int gw_test_mock_start(gw_test_mock *m, const char *const *extra_args)
{
    const char *dir = getenv("MODELGW_BUILD_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/modelgw-mockllm", dir ? dir : "build");
    const char *argv[12] = {path, "--port", "0"};
    for (size_t i = 0; extra_args != NULL && i < 8 && extra_args[i] != NULL; i++)
        argv[3 + i] = extra_args[i];
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    m->pid = fork();
    if (m->pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (m->pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execv(path, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    char line[128] = "";
    m->port = 0;
    bool ok = f != NULL && fgets(line, sizeof line, f) != NULL &&
              sscanf(line, "listening on 127.0.0.1:%d", &m->port) == 1;
    if (f != NULL)
        fclose(f);
    else
        close(fds[0]);
    if (!ok) {
        fprintf(stderr, "could not start %s (set MODELGW_BUILD_DIR)\n", path);
        gw_test_mock_stop(m);
        return -1;
    }
    snprintf(m->base_url, sizeof m->base_url, "http://127.0.0.1:%d", m->port);
    return 0;
}

#endif
