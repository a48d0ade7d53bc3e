/*
 * test_http_tls: a request's gw_http_transport TLS options (CA file, client
 * certificate and key, key password, verification off; the schema
 * registry's) reach curl, and only for that request. An https request goes
 * to a loopback socket that listens but never accepts (the kernel completes
 * the TCP handshake, so curl gets as far as setting up TLS, where it loads
 * the files): a CA file that does not exist fails with curl's message naming
 * that file, so does a client certificate; the next request on the same
 * client without transport options gets no such error (it times out waiting
 * for the server's TLS answer). The key password never shows in the result.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "loop/http_client.h"

typedef struct {
    int done;
    gw_err err;
    char detail[512];
} result;

static void on_done(void *ud, const gw_http_result *res)
{
    result *r = ud;
    r->done++;
    r->err = res->err;
    snprintf(r->detail, sizeof r->detail, "%s", res->transport_detail ? res->transport_detail : "");
}

/* A listening socket on 127.0.0.1 that is never accepted; its port in *port. */
static int listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 16), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void run(gw_http *h, uv_loop_t *loop, const gw_http_transport *t, int port, int32_t total_ms,
                result *r)
{
    char url[64];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/subjects", port);
    gw_http_opts o = {
        .url = url, .transport = t, .connect_timeout_ms = 2000, .total_timeout_ms = total_ms};
    gw_http_cbs cbs = {.on_done = on_done};
    gw_http_req *req = NULL;
    assert_int_equal(gw_http_start(h, &o, &cbs, r, &req), GW_OK);
    while (r->done == 0)
        uv_run(loop, UV_RUN_ONCE);
    assert_int_equal(r->done, 1);
}

/* first with t (which must fail naming want), then without options */
static void check(const gw_http_transport *t, const char *want, const char *secret)
{
    int port, fd = listener(&port);
    uv_loop_t loop;
    uv_loop_init(&loop);
    gw_http *h = NULL;
    assert_int_equal(gw_http_new(&loop, NULL, &h), GW_OK);
    result r = {0};
    run(h, &loop, t, port, 5000, &r);
    assert_int_equal(r.err, GW_E_PROVIDER_TRANSPORT);
    if (strstr(r.detail, want) == NULL)
        fail_msg("curl's message does not name %s: %s", want, r.detail);
    if (secret != NULL)
        assert_null(strstr(r.detail, secret));
    result plain = {0};
    run(h, &loop, NULL, port, 300, &plain); /* the system's CAs; the silent server times out */
    assert_int_not_equal(plain.err, GW_OK);
    assert_null(strstr(plain.detail, "/nonexistent/"));
    gw_http_free(h);
    while (uv_loop_alive(&loop))
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&loop), 0);
    close(fd);
}

static void test_ca_file_reaches_curl(void **state)
{
    (void)state;
    gw_http_transport t = {.ca_file = "/nonexistent/modelgw-test-ca.pem"};
    check(&t, "/nonexistent/modelgw-test-ca.pem", NULL);
}

static void test_client_cert_and_password_reach_curl(void **state)
{
    (void)state;
    gw_http_transport t = {.cert_file = "/nonexistent/modelgw-test-client.pem",
                           .key_file = "/nonexistent/modelgw-test-client.key",
                           .key_password = "tls-SECRET-pw",
                           .no_verify = true};
    check(&t, "/nonexistent/modelgw-test-client.pem", "tls-SECRET-pw");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ca_file_reaches_curl),
        cmocka_unit_test(test_client_cert_and_password_reach_curl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
