/*
 * test_http_proxy_env: http_client reads the proxy variables of the
 * environment once, at gw_http_new, and keeps curl's behaviour: with none
 * set it tells curl "no proxy" (so curl stops reading them per transfer);
 * with one set curl still uses it. A modelgw-mockllm stands in for the proxy:
 * a request for a URL nobody listens on (127.0.0.1 port 1) gets an HTTP
 * answer only through it, and is refused when sent directly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "loop/http_client.h"
#include "test_support.h"

static gw_test_mock mock;

static const char *const VARS[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                                   "all_proxy",  "ALL_PROXY",  "no_proxy",    "NO_PROXY"};

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof VARS / sizeof VARS[0]; i++)
        unsetenv(VARS[i]);
}

static int setup(void **state)
{
    (void)state;
    clear_env();
    return gw_test_mock_start(&mock, NULL);
}

static int teardown(void **state)
{
    (void)state;
    gw_test_mock_stop(&mock);
    clear_env();
    return 0;
}

static int finished;
static gw_http_result last;

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
    last.err = res->err;
    last.status = res->status;
}

/* Two POSTs (a new easy handle, then a recycled one) to 127.0.0.1:1 through
 * a gw_http made under the current environment; both must end alike. */
static void post_twice(gw_err want_err, bool want_status)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    gw_http *h = NULL;
    gw_http_config cfg = {.max_active = 1};
    assert_int_equal(gw_http_new(&loop, &cfg, &h), GW_OK);
    finished = 0;
    for (int i = 0; i < 2; i++) {
        static const char body[] = "{}";
        gw_http_opts o = {.url = "http://127.0.0.1:1/v1/chat/completions",
                          .headers = {"Content-Type: application/json"},
                          .header_count = 1,
                          .body = body,
                          .body_len = sizeof body - 1,
                          .total_timeout_ms = 5000};
        gw_http_cbs cbs = {.on_data = on_data, .on_done = on_done};
        gw_http_req *req = NULL;
        last = (gw_http_result){.err = GW_E_INTERNAL};
        assert_int_equal(gw_http_start(h, &o, &cbs, NULL, &req), GW_OK);
        assert_true(gw_test_wait_count(&loop, &finished, i + 1, 10000));
        assert_int_equal(last.err, want_err);
        if (want_status)
            assert_true(last.status >= 200 && last.status < 600);
    }
    gw_http_free(h);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_no_proxy_variables_connect_directly(void **state)
{
    (void)state;
    clear_env();
    post_twice(GW_E_PROVIDER_TRANSPORT, false);
}

static void test_http_proxy_variable_is_used(void **state)
{
    (void)state;
    clear_env();
    setenv("http_proxy", mock.base_url, 1);
    post_twice(GW_OK, true);
    clear_env();
    setenv("ALL_PROXY", mock.base_url, 1);
    post_twice(GW_OK, true);
}

static void test_no_proxy_variable_still_applies(void **state)
{
    (void)state;
    clear_env();
    setenv("http_proxy", mock.base_url, 1);
    setenv("no_proxy", "127.0.0.1", 1);
    post_twice(GW_E_PROVIDER_TRANSPORT, false);
}

/* Empty variables count as unset, as curl reads them. */
static void test_empty_variables_mean_no_proxy(void **state)
{
    (void)state;
    clear_env();
    setenv("http_proxy", "", 1);
    setenv("no_proxy", "", 1);
    post_twice(GW_E_PROVIDER_TRANSPORT, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_proxy_variables_connect_directly),
        cmocka_unit_test(test_http_proxy_variable_is_used),
        cmocka_unit_test(test_no_proxy_variable_still_applies),
        cmocka_unit_test(test_empty_variables_mean_no_proxy),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
