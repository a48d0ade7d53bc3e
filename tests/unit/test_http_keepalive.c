/*
 * test_http_keepalive: http_client reuses connections against a real
 * modelgw-mockllm. Forty requests one after another open one connection
 * (gw_http_connects), forty with four in flight at most four; every answer
 * is complete. Headers over the in-request store and a borrowed body also
 * arrive intact (the mock answers 200 only to a well-formed request).
 * Requests waiting in the FIFO keep their own copies of a long URL and of a
 * body that is not lent (the caller's buffers are overwritten right after
 * gw_http_start), and a recycled easy handle that posted does a plain GET
 * when asked (the mock answers POST /health with 404). URLs are parsed once
 * and kept (CURLOPT_CURLU): one easy handle moving between kept URLs, URLs
 * past the cache and a URL curl refuses still reaches the right path each
 * time, and a refused URL fails alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "loop/http_client.h"
#include "test_support.h"

static gw_test_mock mock;

static int start_mock(void **state)
{
    (void)state;
    return gw_test_mock_start(&mock, NULL);
}

static int stop_mock(void **state)
{
    (void)state;
    gw_test_mock_stop(&mock);
    return 0;
}

enum { N = 40 };

static int finished, ok;

static gw_err on_data(void *ud, const char *p, size_t n)
{
    (void)ud;
    (void)p;
    (void)n;
    return GW_OK;
}

static void on_done(void *ud, const gw_http_result *res)
{
    (void)ud;
    finished++;
    if (res->err == GW_OK && res->status == 200 && strstr(res->body, "chat.completion"))
        ok++;
}

static void start(gw_http *h, const char *long_header)
{
    char url[256];
    snprintf(url, sizeof url, "%s/v1/chat/completions", mock.base_url);
    static const char body[] =
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    gw_http_opts o = {.url = url,
                      .headers = {"Content-Type: application/json", "x-request-id: r1"},
                      .header_count = 2,
                      .body = body,
                      .body_len = sizeof body - 1,
                      .body_borrowed = true,
                      .total_timeout_ms = 5000};
    if (long_header != NULL)
        o.headers[o.header_count++] = long_header;
    gw_http_cbs cbs = {.on_data = on_data, .on_done = on_done};
    gw_http_req *req = NULL;
    assert_int_equal(gw_http_start(h, &o, &cbs, NULL, &req), GW_OK);
}

static void run(long max_active, bool sequential, const char *long_header, uint64_t max_connects)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    gw_http *h = NULL;
    gw_http_config cfg = {.max_active = max_active};
    assert_int_equal(gw_http_new(&loop, &cfg, &h), GW_OK);
    finished = ok = 0;
    for (int i = 0; i < N; i++) {
        start(h, long_header);
        if (sequential)
            assert_true(gw_test_wait_count(&loop, &finished, i + 1, 10000));
    }
    assert_true(gw_test_wait_count(&loop, &finished, N, 10000));
    assert_int_equal(ok, N);
    assert_true(gw_http_connects(h) >= 1);
    assert_true(gw_http_connects(h) <= max_connects);
    gw_http_free(h);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_sequential_requests_share_one_connection(void **state)
{
    (void)state;
    run(1, true, NULL, 1);
}

static void test_four_in_flight_use_at_most_four(void **state)
{
    (void)state;
    run(4, false, NULL, 4);
}

static void test_long_headers_and_borrowed_body(void **state)
{
    (void)state;
    static char line[2100];
    memcpy(line, "x-long: ", 8);
    memset(line + 8, 'a', sizeof line - 9);
    line[sizeof line - 1] = '\0';
    run(2, false, line, 2);
}

static int get_ok;

static void on_done_health(void *ud, const gw_http_result *res)
{
    (void)ud;
    finished++;
    if (res->err == GW_OK && res->status == 200 && strstr(res->body, "\"ok\""))
        get_ok++;
}

static void test_waiting_requests_own_url_and_body_get_after_post(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    gw_http *h = NULL;
    gw_http_config cfg = {.max_active = 1};
    assert_int_equal(gw_http_new(&loop, &cfg, &h), GW_OK);
    finished = ok = get_ok = 0;
    enum { M = 8 };
    for (int i = 0; i < M; i++) {
        char url[600], pad[400], body[128];
        memset(pad, 'a', sizeof pad - 1);
        pad[sizeof pad - 1] = '\0';
        bool post = i % 2 == 0;
        snprintf(url, sizeof url, "%s/%s?pad=%s", mock.base_url,
                 post ? "v1/chat/completions" : "health", pad);
        int bl =
            snprintf(body, sizeof body,
                     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"%d\"}]}", i);
        gw_http_opts o = {.url = url,
                          .headers = {"Content-Type: application/json"},
                          .header_count = 1,
                          .body = post ? body : NULL,
                          .body_len = post ? (size_t)bl : 0,
                          .total_timeout_ms = 5000};
        gw_http_cbs cbs = {.on_data = on_data, .on_done = post ? on_done : on_done_health};
        gw_http_req *req = NULL;
        assert_int_equal(gw_http_start(h, &o, &cbs, NULL, &req), GW_OK);
        memset(url, 'x', sizeof url); /* the request must not read these again */
        memset(body, 'x', sizeof body);
    }
    assert_true(gw_test_wait_count(&loop, &finished, M, 10000));
    assert_int_equal(ok, M / 2);
    assert_int_equal(get_ok, M / 2);
    assert_int_equal(gw_http_connects(h), 1); /* one kept-alive socket throughout */
    gw_http_free(h);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* One request on a handle of its own (max_active 1): POST to chat when post,
 * else GET /health; each URL distinct through its query (tag). */
static void start_tagged(gw_http *h, bool post, int tag)
{
    char url[256];
    snprintf(url, sizeof url, "%s/%s?tag=%d", mock.base_url,
             post ? "v1/chat/completions" : "health", tag);
    static const char body[] =
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    gw_http_opts o = {.url = url,
                      .headers = {"Content-Type: application/json"},
                      .header_count = 1,
                      .body = post ? body : NULL,
                      .body_len = post ? sizeof body - 1 : 0,
                      .body_borrowed = true,
                      .total_timeout_ms = 5000};
    gw_http_cbs cbs = {.on_data = on_data, .on_done = post ? on_done : on_done_health};
    gw_http_req *req = NULL;
    assert_int_equal(gw_http_start(h, &o, &cbs, NULL, &req), GW_OK);
}

static void test_many_urls_on_one_handle_reach_their_paths(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    gw_http *h = NULL;
    gw_http_config cfg = {.max_active = 1};
    assert_int_equal(gw_http_new(&loop, &cfg, &h), GW_OK);
    finished = ok = get_ok = 0;
    /* 100 distinct URLs (over the 64 kept), then the first ones again: the
     * one easy handle moves between kept CURLUs and plain URLs both ways */
    enum { M = 100, AGAIN = 20 };
    for (int i = 0; i < M + AGAIN; i++)
        start_tagged(h, i % 2 == 0, i < M ? i : i - M);
    assert_true(gw_test_wait_count(&loop, &finished, M + AGAIN, 20000));
    assert_int_equal(ok, (M + AGAIN) / 2);
    assert_int_equal(get_ok, (M + AGAIN) / 2);
    assert_int_equal(gw_http_connects(h), 1);
    gw_http_free(h);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static int bad_done;
static gw_err bad_err;

static void on_done_bad(void *ud, const gw_http_result *res)
{
    (void)ud;
    finished++;
    bad_done++;
    bad_err = res->err;
}

static void test_refused_url_fails_alone(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    gw_http *h = NULL;
    gw_http_config cfg = {.max_active = 1};
    assert_int_equal(gw_http_new(&loop, &cfg, &h), GW_OK);
    finished = ok = get_ok = bad_done = 0;
    start_tagged(h, true, 1);
    gw_http_opts o = {.url = "http://[::1/v1/chat/completions", .total_timeout_ms = 5000};
    gw_http_cbs cbs = {.on_data = on_data, .on_done = on_done_bad};
    gw_http_req *req = NULL;
    assert_int_equal(gw_http_start(h, &o, &cbs, NULL, &req), GW_OK);
    start_tagged(h, false, 2);
    start_tagged(h, true, 1);
    assert_true(gw_test_wait_count(&loop, &finished, 4, 10000));
    assert_int_equal(bad_done, 1);
    assert_int_equal(bad_err, GW_E_PROVIDER_TRANSPORT);
    assert_int_equal(ok, 2);
    assert_int_equal(get_ok, 1);
    gw_http_free(h);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sequential_requests_share_one_connection),
        cmocka_unit_test(test_four_in_flight_use_at_most_four),
        cmocka_unit_test(test_long_headers_and_borrowed_body),
        cmocka_unit_test(test_waiting_requests_own_url_and_body_get_after_post),
        cmocka_unit_test(test_many_urls_on_one_handle_reach_their_paths),
        cmocka_unit_test(test_refused_url_fails_alone),
    };
    return cmocka_run_group_tests(tests, start_mock, stop_mock);
}
