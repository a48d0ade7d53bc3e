/*
 * test_http_queue: http_client's hand-off limit (gw_http_config.max_active)
 * against a real modelgw-mockllm: with max_active 2, twenty requests all
 * complete with status 200 and the right body; with max_active 1, a queued
 * request can be cancelled (its on_done never runs), a queued request's
 * total timeout fires while it waits behind a slow one, and the request
 * queued behind them still completes.
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

enum { N = 20 };

typedef struct {
    int done, status;
    gw_err err;
    bool ok_body;
} result;

static int finished;

static gw_err on_data(void *ud, const char *p, size_t n)
{
    (void)ud;
    (void)p;
    (void)n;
    return GW_OK;
}

static void on_done(void *ud, const gw_http_result *res)
{
    result *r = ud;
    r->done++;
    r->status = res->status;
    r->err = res->err;
    r->ok_body = res->body != NULL && strstr(res->body, "chat.completion") != NULL;
    finished++;
}

static gw_http_req *start(gw_http *h, result *r, const char *fault, int32_t total_ms)
{
    char url[256];
    snprintf(url, sizeof url, "%s/v1/chat/completions", mock.base_url);
    static const char body[] =
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    gw_http_opts o = {.url = url,
                      .headers = {"Content-Type: application/json"},
                      .header_count = 1,
                      .body = body,
                      .body_len = sizeof body - 1,
                      .total_timeout_ms = total_ms};
    if (fault != NULL)
        o.headers[o.header_count++] = fault;
    gw_http_cbs cbs = {.on_data = on_data, .on_done = on_done};
    gw_http_req *req = NULL;
    assert_int_equal(gw_http_start(h, &o, &cbs, r, &req), GW_OK);
    return req;
}

static void run_until_finished(uv_loop_t *loop, int target)
{
    assert_true(gw_test_wait_count(loop, &finished, target, 10000));
}

static void test_all_complete_through_the_queue(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    gw_http *h = NULL;
    gw_http_config cfg = {.max_active = 2};
    assert_int_equal(gw_http_new(&loop, &cfg, &h), GW_OK);
    result r[N] = {0};
    finished = 0;
    for (int i = 0; i < N; i++)
        start(h, &r[i], NULL, 5000);
    assert_int_equal(gw_http_active(h), N);
    run_until_finished(&loop, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].done, 1);
        assert_int_equal(r[i].err, GW_OK);
        assert_int_equal(r[i].status, 200);
        assert_true(r[i].ok_body);
    }
    assert_int_equal(gw_http_active(h), 0);
    gw_http_free(h);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_cancel_queued_and_timeout_while_queued(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    gw_http *h = NULL;
    gw_http_config cfg = {.max_active = 1};
    assert_int_equal(gw_http_new(&loop, &cfg, &h), GW_OK);
    result slow = {0}, queued_cancel = {0}, queued_timeout = {0}, last = {0};
    finished = 0;
    start(h, &slow, "x-mock-fault: latency:600", 5000);    /* holds the one slot */
    gw_http_req *c = start(h, &queued_cancel, NULL, 5000); /* waits */
    start(h, &queued_timeout, NULL, 200);                  /* times out waiting */
    start(h, &last, NULL, 5000);                           /* runs after slow */
    gw_http_cancel(c);
    run_until_finished(&loop, 3);
    assert_int_equal(queued_cancel.done, 0);
    assert_int_equal(queued_timeout.done, 1);
    assert_int_equal(queued_timeout.err, GW_E_PROVIDER_TOTAL_TIMEOUT);
    assert_int_equal(slow.done, 1);
    assert_int_equal(slow.status, 200);
    assert_int_equal(last.done, 1);
    assert_int_equal(last.status, 200);
    assert_true(last.ok_body);
    gw_http_free(h);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_complete_through_the_queue),
        cmocka_unit_test(test_cancel_queued_and_timeout_while_queued),
    };
    return cmocka_run_group_tests(tests, start_mock, stop_mock);
}
