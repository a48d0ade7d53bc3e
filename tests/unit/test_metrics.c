/* Tests for admin/metrics: series updates, the series cap, label escaping
 * and the exposition text. The integration test parses real output with the
 * prometheus_client parser; here we check exact lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "admin/metrics.h"

static char *render(gw_metrics *m)
{
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(gw_metrics_render(m, &out, &len), 0);
    assert_int_equal(strlen(out), len);
    return out;
}

static void test_counter_and_labels(void **state)
{
    (void)state;
    gw_metrics *m = gw_metrics_new(64);
    gw_metric_add(m, GW_M_REQUESTS, 1, "success", "high");
    gw_metric_add(m, GW_M_REQUESTS, 2, "success", "high");
    gw_metric_add(m, GW_M_REQUESTS, 1, "error", "low");
    assert_true(gw_metric_get(m, GW_M_REQUESTS, "success", "high") == 3);
    assert_true(gw_metric_get(m, GW_M_REQUESTS, "error", "low") == 1);
    assert_true(gw_metric_get(m, GW_M_REQUESTS, "error", "high") == 0);
    char *out = render(m);
    assert_non_null(strstr(out, "# TYPE modelgw_requests_total counter\n"));
    assert_non_null(strstr(out, "modelgw_requests_total{outcome=\"success\",tier=\"high\"} 3\n"));
    assert_non_null(strstr(out, "modelgw_requests_total{outcome=\"error\",tier=\"low\"} 1\n"));
    free(out);
    gw_metrics_free(m);
}

static void test_histogram(void **state)
{
    (void)state;
    gw_metrics *m = gw_metrics_new(64);
    gw_metric_observe(m, GW_M_REQUEST_DURATION, 0.003, "m1");
    gw_metric_observe(m, GW_M_REQUEST_DURATION, 0.2, "m1");
    gw_metric_observe(m, GW_M_REQUEST_DURATION, 100, "m1");
    char *out = render(m);
    assert_non_null(
        strstr(out, "modelgw_request_duration_seconds_bucket{model=\"m1\",le=\"0.001\"} 0\n"));
    assert_non_null(
        strstr(out, "modelgw_request_duration_seconds_bucket{model=\"m1\",le=\"0.005\"} 1\n"));
    assert_non_null(
        strstr(out, "modelgw_request_duration_seconds_bucket{model=\"m1\",le=\"0.25\"} 2\n"));
    assert_non_null(
        strstr(out, "modelgw_request_duration_seconds_bucket{model=\"m1\",le=\"60\"} 2\n"));
    assert_non_null(
        strstr(out, "modelgw_request_duration_seconds_bucket{model=\"m1\",le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(out, "modelgw_request_duration_seconds_count{model=\"m1\"} 3\n"));
    free(out);
    gw_metrics_free(m);
}

static void test_escaping_and_cap(void **state)
{
    (void)state;
    gw_metrics *m = gw_metrics_new(2);
    gw_metric_add(m, GW_M_DLQ, 1, "a\"b\\c\nd");
    gw_metric_add(m, GW_M_DLQ, 1, "second");
    gw_metric_add(m, GW_M_DLQ, 1, "third");  /* over the cap */
    gw_metric_add(m, GW_M_DLQ, 1, "fourth"); /* over the cap */
    assert_true(gw_metric_get(m, GW_M_DLQ, "third") == 0);
    assert_true(gw_metric_get(m, GW_M_SERIES_DROPPED) == 2);
    char *out = render(m);
    assert_non_null(strstr(out, "modelgw_dlq_messages_total{error=\"a\\\"b\\\\c\\nd\"} 1\n"));
    assert_non_null(strstr(out, "modelgw_metrics_series_dropped_total 2\n"));
    free(out);
    gw_metrics_free(m);
}

static void collect(gw_metrics *m, void *ud)
{
    int *calls = ud;
    (*calls)++;
    gw_metric_clear(m, GW_M_PAUSED_PARTITIONS);
    gw_metric_set(m, GW_M_PAUSED_PARTITIONS, *calls, "low");
}

static void test_collector_and_clear(void **state)
{
    (void)state;
    gw_metrics *m = gw_metrics_new(64);
    int calls = 0;
    gw_metric_add(m, GW_M_CHUNKS, 5);
    gw_metric_set(m, GW_M_PAUSED_PARTITIONS, 9, "normal");
    gw_metrics_set_collector(m, collect, &calls);
    char *out = render(m);
    assert_int_equal(calls, 1);
    assert_null(strstr(out, "tier=\"normal\""));
    assert_non_null(strstr(out, "modelgw_paused_partitions{tier=\"low\"} 1\n"));
    assert_non_null(strstr(out, "modelgw_stream_chunks_total 5\n"));
    free(out);
    gw_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_and_labels),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_escaping_and_cap),
        cmocka_unit_test(test_collector_and_clear),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
