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
#include <unistd.h>

#include "admin/admin.h"

typedef struct {
    uint16_t port;
    const char *path;
    char resp[65536];
    uv_async_t done;
} client_job;

static void *client(void *arg)
{
    client_job *j = arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(j->port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
        char req[256];
        int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                         j->path);
        if (write(fd, req, (size_t)n) == n) {
            size_t got = 0;
            ssize_t r;
            while ((r = read(fd, j->resp + got, sizeof j->resp - 1 - got)) > 0)
                got += (size_t)r;
            j->resp[got] = '\0';
        }
    }
    close(fd);
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

static bool ready(void *ud)
{
    return *(bool *)ud;
}

static void fetch(uv_loop_t *loop, uint16_t port, const char *path, char *out, size_t outlen)
{
    client_job *j = calloc(1, sizeof *j);
    j->port = port;
    j->path = path;
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
    uint16_t port = (uint16_t)(20000 + getpid() % 20000);
    assert_int_equal(gw_admin_start(&loop, "127.0.0.1", port, m, &h, &a), GW_OK);
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
    fetch(&loop, port, "/nope", resp, sizeof resp);
    assert_non_null(strstr(resp, "HTTP/1.1 404"));

    gw_admin_stop(a);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    gw_metrics_free(m);
}

static void test_disabled(void **state)
{
    (void)state;
    gw_admin *a = (gw_admin *)1;
    gw_admin_handlers h = {0};
    assert_int_equal(gw_admin_start(uv_default_loop(), "127.0.0.1", 0, NULL, &h, &a), GW_OK);
    assert_null(a);
    assert_int_equal(gw_admin_start(uv_default_loop(), "not-an-ip", 1234, NULL, &h, &a),
                     GW_E_CONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endpoints),
        cmocka_unit_test(test_disabled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
