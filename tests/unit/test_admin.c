/* Tests for admin: a real HTTP exchange over loopback with the endpoint
 * driven by a libuv loop, the client in a second thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "admin/admin.h"

typedef struct {
    uint16_t port;
    const char *path;
    const char *header; /* one extra header line (without CRLF) or NULL */
    int flood;          /* slow connections opened (and left hanging) first */
    char resp[65536];
    uv_async_t done;
} client_job;

static int connect_to(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void *client(void *arg)
{
    client_job *j = arg;
    int slow[256];
    int nslow = 0;
    for (int i = 0; i < j->flood && i < 256; i++) {
        /* a request that never finishes its headers */
        int s = connect_to(j->port);
        if (s >= 0 && write(s, "GET /health HTTP/1.1\r\nHo", 25) == 25)
            slow[nslow++] = s;
        else if (s >= 0)
            close(s);
    }
    if (nslow > 0)
        usleep(200 * 1000); /* the endpoint accepts them all first */
    int fd = connect_to(j->port);
    if (fd >= 0) {
        /* no answer within this is a failure, not a hang */
        struct timeval tv = {.tv_sec = 10};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char req[512];
        int n =
            snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n%s%sConnection: close\r\n\r\n",
                     j->path, j->header ? j->header : "", j->header ? "\r\n" : "");
        if (write(fd, req, (size_t)n) == n) {
            size_t got = 0;
            ssize_t r;
            while ((r = read(fd, j->resp + got, sizeof j->resp - 1 - got)) > 0)
                got += (size_t)r;
            j->resp[got] = '\0';
        }
        close(fd);
    }
    for (int i = 0; i < nslow; i++)
        close(slow[i]);
    uv_async_send(&j->done);
    return NULL;
}

static void on_done(uv_async_t *a)
{
    uv_stop(a->loop);
}

static bool health(void *ud, char **json)
{
    *json = strdup(*(bool *)ud ? "{\"status\":\"healthy\"}" : "{\"status\":\"unhealthy\"}");
    return *(bool *)ud;
}

static bool ready(void *ud, char **json)
{
    *json = strdup(*(bool *)ud ? "{\"ready\":true}" : "{\"ready\":false}");
    return *(bool *)ud;
}

static void fetch_with(uv_loop_t *loop, uint16_t port, const char *path, const char *header,
                       int flood, char *out, size_t outlen)
{
    client_job *j = calloc(1, sizeof *j);
    j->port = port;
    j->path = path;
    j->header = header;
    j->flood = flood;
    uv_async_init(loop, &j->done, on_done);
    pthread_t t;
    pthread_create(&t, NULL, client, j);
    uv_run(loop, UV_RUN_DEFAULT);
    pthread_join(t, NULL);
    snprintf(out, outlen, "%s", j->resp);
    uv_close((uv_handle_t *)&j->done, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    free(j);
}

static void fetch(uv_loop_t *loop, uint16_t port, const char *path, char *out, size_t outlen)
{
    fetch_with(loop, port, path, NULL, 0, out, outlen);
}

/* A port free right now: the kernel picks one for a bound socket, which is
 * then closed (a port derived from the pid could land on another service's
 * or a cluster bus port, and did). */
static uint16_t test_port(int n)
{
    (void)n;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static void test_endpoints(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    gw_metrics *m = gw_metrics_new(64);
    gw_metric_add(m, GW_M_REQUESTS, 7, "success", "normal");
    bool healthy = true;
    gw_admin_handlers h = {.health = health, .ready = ready, .ud = &healthy};
    gw_admin *a = NULL;
    uint16_t port = test_port(0);
    gw_admin_opts o = {.listen = "127.0.0.1", .port = port};
    assert_int_equal(gw_admin_start(&loop, &o, m, &h, &a), GW_OK);
    assert_non_null(a);
    char resp[65536];

    fetch(&loop, port, "/metrics", resp, sizeof resp);
    assert_non_null(strstr(resp, "HTTP/1.1 200"));
    assert_non_null(strstr(resp, "modelgw_requests_total{outcome=\"success\",tier=\"normal\"} 7"));

    fetch(&loop, port, "/health", resp, sizeof resp);
    assert_non_null(strstr(resp, "HTTP/1.1 200"));
    assert_non_null(strstr(resp, "\"healthy\""));
    healthy = false;
    fetch(&loop, port, "/health", resp, sizeof resp);
    assert_non_null(strstr(resp, "HTTP/1.1 503"));
    fetch(&loop, port, "/ready", resp, sizeof resp);
    assert_non_null(strstr(resp, "HTTP/1.1 503"));
    assert_non_null(strstr(resp, "{\"ready\":false}"));
    fetch(&loop, port, "/nope", resp, sizeof resp);
    assert_non_null(strstr(resp, "HTTP/1.1 404"));

    gw_admin_stop(a);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    gw_metrics_free(m);
}

/* With a token, /metrics wants it (401 and a Bearer challenge otherwise);
 * the probes stay open. */
static void test_metrics_token(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    gw_metrics *m = gw_metrics_new(64);
    bool healthy = true;
    gw_admin_handlers h = {.health = health, .ready = ready, .ud = &healthy};
    gw_admin *a = NULL;
    uint16_t port = test_port(1);
    gw_admin_opts o = {.listen = "127.0.0.1", .port = port, .token = "s3cret-token"};
    assert_int_equal(gw_admin_start(&loop, &o, m, &h, &a), GW_OK);
    char resp[65536];
    fetch(&loop, port, "/metrics", resp, sizeof resp);
    assert_non_null(strstr(resp, "HTTP/1.1 401"));
    assert_non_null(strstr(resp, "WWW-Authenticate: Bearer"));
    assert_null(strstr(resp, "s3cret"));
    fetch_with(&loop, port, "/metrics", "Authorization: Bearer s3cret-toke", 0, resp, sizeof resp);
    assert_non_null(strstr(resp, "HTTP/1.1 401"));
    fetch_with(&loop, port, "/metrics", "Authorization: Bearer s3cret-token2", 0, resp,
               sizeof resp);
    assert_non_null(strstr(resp, "HTTP/1.1 401"));
    fetch_with(&loop, port, "/metrics", "Authorization: Bearer s3cret-token", 0, resp, sizeof resp);
    assert_non_null(strstr(resp, "HTTP/1.1 200"));
    fetch(&loop, port, "/health", resp, sizeof resp);
    assert_non_null(strstr(resp, "HTTP/1.1 200"));
    fetch(&loop, port, "/ready", resp, sizeof resp);
    assert_non_null(strstr(resp, "HTTP/1.1 200"));
    gw_admin_stop(a);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    gw_metrics_free(m);
}

/* Three times more hanging connections than the limit: the probe still gets
 * its answer, because the quietest connections are shut down to make room. */
static void test_probe_gets_in_under_a_flood(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    bool healthy = true;
    gw_admin_handlers h = {.health = health, .ready = ready, .ud = &healthy};
    gw_admin *a = NULL;
    uint16_t port = test_port(2);
    gw_admin_opts o = {.listen = "127.0.0.1", .port = port, .max_connections = 16};
    assert_int_equal(gw_admin_start(&loop, &o, NULL, &h, &a), GW_OK);
    char resp[65536];
    fetch_with(&loop, port, "/health", NULL, 48, resp, sizeof resp);
    assert_non_null(strstr(resp, "HTTP/1.1 200"));
    assert_non_null(strstr(resp, "\"healthy\""));
    assert_true(gw_admin_evictions(a) > 0);
    fetch_with(&loop, port, "/ready", NULL, 48, resp, sizeof resp);
    assert_non_null(strstr(resp, "HTTP/1.1 200"));
    gw_admin_stop(a);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_disabled(void **state)
{
    (void)state;
    gw_admin *a = (gw_admin *)1;
    gw_admin_handlers h = {0};
    gw_admin_opts off = {.listen = "127.0.0.1", .port = 0};
    assert_int_equal(gw_admin_start(uv_default_loop(), &off, NULL, &h, &a), GW_OK);
    assert_null(a);
    gw_admin_opts bad = {.listen = "not-an-ip", .port = 1234};
    assert_int_equal(gw_admin_start(uv_default_loop(), &bad, NULL, &h, &a), GW_E_CONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endpoints),
        cmocka_unit_test(test_metrics_token),
        cmocka_unit_test(test_probe_gets_in_under_a_flood),
        cmocka_unit_test(test_disabled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
