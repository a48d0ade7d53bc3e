/*
 * Tests of src/trace: traceparent parsing and formatting (W3C Trace Context
 * level 1 rules), span encoding as OTLP JSON (valid JSON whatever the input,
 * bounded values), the export envelope, and the tracer's bounded queue.
 * The export over HTTP is tested end to end in tests/integration/test_trace.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "trace/trace.h"

static const char *const good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

static bool parse(const char *s, gw_trace_ctx *c)
{
    return gw_traceparent_parse(s, strlen(s), c);
}

static void test_parse_valid(void **state)
{
    gw_trace_ctx c;
    assert_true(parse(good, &c));
    assert_int_equal(c.trace_id[0], 0x4b);
    assert_int_equal(c.trace_id[15], 0x36);
    assert_int_equal(c.span_id[0], 0x00);
    assert_int_equal(c.span_id[7], 0xb7);
    assert_int_equal(c.flags, 1);
    char out[GW_TRACEPARENT_LEN + 1];
    gw_traceparent_format(&c, out);
    assert_string_equal(out, good);
    /* a later version: its first 55 characters, then '-' and more */
    assert_true(parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra", &c));
    assert_int_equal(c.flags, 0);
}

static void test_parse_invalid(void **state)
{
    static const char *const bad[] = {
        "",
        "00-abc-def-01",
        "tp-poison",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", /* v00 with more */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  /* uppercase */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  /* zero trace */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  /* zero span */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* version ff */
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* separator */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",  /* flags */
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", /* v01, no '-' */
        "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",  /* misplaced '-' */
    };
    gw_trace_ctx c;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (parse(bad[i], &c))
            fail_msg("accepted %s", bad[i]);
    assert_false(gw_traceparent_parse(NULL, 0, &c));
    /* a value cut short of its length is not read past n */
    assert_false(gw_traceparent_parse(good, 54, &c));
}

static void test_tracestate(void **state)
{
    assert_true(gw_tracestate_ok("vendor=abc,other=1", 18));
    assert_false(gw_tracestate_ok("a=\n", 3));
    assert_false(gw_tracestate_ok("", 0));
    char big[GW_TRACESTATE_MAX + 2];
    memset(big, 'a', sizeof big);
    assert_false(gw_tracestate_ok(big, sizeof big));
    assert_true(gw_tracestate_ok(big, GW_TRACESTATE_MAX));
}

static json_t *attr(json_t *span, const char *key)
{
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(span, "attributes"), i, a)
    {
        if (strcmp(json_string_value(json_object_get(a, "key")), key) == 0)
            return json_object_get(a, "value");
    }
    return NULL;
}

static void test_span_encode(void **state)
{
    uint8_t trace[16] = {1, 2, 3}, id[8] = {9}, parent[8] = {0, 0, 0, 0, 0, 0, 0, 7};
    gw_span s = {.name = "chat gpt-4o",
                 .kind = GW_SPAN_CLIENT,
                 .trace_id = trace,
                 .span_id = id,
                 .parent_id = parent,
                 .start_unix_ns = 1000,
                 .end_unix_ns = 2500,
                 .error = true,
                 .status_text = "PROVIDER_5XX"};
    char hostile[600];
    memset(hostile, 'x', sizeof hostile);
    memcpy(hostile, "a\"b\\c\n\xff\xc3\xa9", 9); /* quote, backslash, newline, bad UTF-8, é */
    hostile[sizeof hostile - 1] = '\0';
    gw_span_str(&s, "gen_ai.request.model", "gpt-4o");
    gw_span_int(&s, "gen_ai.usage.input_tokens", 12);
    gw_span_dbl(&s, "gen_ai.request.temperature", 0.5);
    gw_span_bool(&s, "modelgw.stream", true);
    gw_span_str(&s, "modelgw.hostile", hostile);
    gw_span_str(&s, "modelgw.absent", NULL); /* skipped */
    size_t len;
    char *js = gw_span_encode(&s, &len);
    assert_non_null(js);
    assert_int_equal(strlen(js), len);
    json_error_t e;
    json_t *o = json_loads(js, 0, &e);
    if (o == NULL)
        fail_msg("invalid JSON (%s): %s", e.text, js);
    assert_string_equal(json_string_value(json_object_get(o, "traceId")),
                        "01020300000000000000000000000000");
    assert_string_equal(json_string_value(json_object_get(o, "spanId")), "0900000000000000");
    assert_string_equal(json_string_value(json_object_get(o, "parentSpanId")), "0000000000000007");
    assert_int_equal(json_integer_value(json_object_get(o, "kind")), 3);
    assert_string_equal(json_string_value(json_object_get(o, "startTimeUnixNano")), "1000");
    assert_string_equal(json_string_value(json_object_get(o, "endTimeUnixNano")), "2500");
    json_t *st = json_object_get(o, "status");
    assert_int_equal(json_integer_value(json_object_get(st, "code")), 2);
    assert_string_equal(json_string_value(json_object_get(st, "message")), "PROVIDER_5XX");
    assert_string_equal(
        json_string_value(json_object_get(attr(o, "gen_ai.request.model"), "stringValue")),
        "gpt-4o");
    assert_string_equal(
        json_string_value(json_object_get(attr(o, "gen_ai.usage.input_tokens"), "intValue")), "12");
    assert_true(json_real_value(
                    json_object_get(attr(o, "gen_ai.request.temperature"), "doubleValue")) == 0.5);
    assert_true(json_is_true(json_object_get(attr(o, "modelgw.stream"), "boolValue")));
    assert_null(attr(o, "modelgw.absent"));
    const char *h = json_string_value(json_object_get(attr(o, "modelgw.hostile"), "stringValue"));
    assert_non_null(h);
    assert_memory_equal(h, "a\"b\\c\n?\xc3\xa9", 9);
    assert_int_equal(strlen(h), GW_TRACE_MAX_VALUE);
    json_decref(o);
    free(js);
}

static void test_span_attr_cap_and_root(void **state)
{
    uint8_t trace[16] = {1}, id[8] = {2};
    gw_span s = {.name = "r",
                 .kind = GW_SPAN_CONSUMER,
                 .trace_id = trace,
                 .span_id = id,
                 .start_unix_ns = 5,
                 .end_unix_ns = 3}; /* an end before the start is clamped */
    for (int i = 0; i < GW_TRACE_MAX_ATTRS + 5; i++)
        gw_span_int(&s, "k", i);
    assert_int_equal(s.attr_count, GW_TRACE_MAX_ATTRS);
    size_t len;
    char *js = gw_span_encode(&s, &len);
    json_t *o = json_loads(js, 0, NULL);
    assert_non_null(o);
    assert_null(json_object_get(o, "parentSpanId"));
    assert_string_equal(json_string_value(json_object_get(o, "endTimeUnixNano")), "5");
    assert_int_equal(json_object_size(json_object_get(o, "status")), 0);
    assert_int_equal(json_array_size(json_object_get(o, "attributes")), GW_TRACE_MAX_ATTRS);
    json_decref(o);
    free(js);
}

static void test_envelope(void **state)
{
    const char *spans = "{\"name\":\"a\"},{\"name\":\"b\"}";
    char *env = gw_trace_envelope("svc\"x", "w-1", spans, strlen(spans));
    json_t *o = json_loads(env, 0, NULL);
    assert_non_null(o);
    json_t *rs = json_array_get(json_object_get(o, "resourceSpans"), 0);
    json_t *attrs = json_object_get(json_object_get(rs, "resource"), "attributes");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(attrs, 0), "value"), "stringValue")),
                        "svc\"x");
    assert_string_equal(json_string_value(json_object_get(json_array_get(attrs, 1), "key")),
                        "service.instance.id");
    json_t *ss = json_array_get(json_object_get(rs, "scopeSpans"), 0);
    assert_int_equal(json_array_size(json_object_get(ss, "spans")), 2);
    json_decref(o);
    free(env);
}

/* Not started: nothing is sent, so the queue fills to its cap and the rest
 * is dropped and counted. */
static void test_queue_bounded(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    gw_tracer_opts o = {.endpoint = "http://127.0.0.1:9/v1/traces",
                        .service_name = "t",
                        .sample_ratio = 1,
                        .batch_spans = 100,
                        .queue_spans = 3};
    gw_tracer *t;
    assert_int_equal(gw_tracer_new(&loop, &o, &t), GW_OK);
    assert_true(gw_tracer_enabled(t));
    uint8_t trace[16], id[8];
    gw_tracer_new_trace_id(t, trace);
    gw_tracer_new_span_id(t, id);
    gw_span s = {.name = "x", .kind = GW_SPAN_INTERNAL, .trace_id = trace, .span_id = id};
    for (int i = 0; i < 5; i++)
        gw_tracer_end(t, &s);
    gw_tracer_stats st;
    gw_tracer_get_stats(t, &st);
    assert_int_equal(st.queued, 3);
    assert_int_equal(st.dropped_queue_full, 2);
    gw_tracer_free(t);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_disabled_and_ids(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    gw_tracer_opts o = {.endpoint = "", .sample_ratio = 0};
    gw_tracer *t;
    assert_int_equal(gw_tracer_new(&loop, &o, &t), GW_OK);
    assert_false(gw_tracer_enabled(t));
    assert_int_equal(gw_tracer_start(t), GW_OK);
    assert_false(gw_tracer_sample(t)); /* ratio 0 */
    uint8_t a[16], b[16];
    gw_tracer_new_trace_id(t, a);
    gw_tracer_new_trace_id(t, b);
    assert_memory_not_equal(a, b, 16);
    gw_span s = {.name = "x", .trace_id = a, .span_id = a};
    gw_tracer_end(t, &s); /* ignored */
    gw_tracer_stats st;
    gw_tracer_get_stats(t, &st);
    assert_int_equal(st.queued, 0);
    gw_tracer_shutdown(t);
    gw_tracer_free(t);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_invalid),
        cmocka_unit_test(test_tracestate),
        cmocka_unit_test(test_span_encode),
        cmocka_unit_test(test_span_attr_cap_and_root),
        cmocka_unit_test(test_envelope),
        cmocka_unit_test(test_queue_bounded),
        cmocka_unit_test(test_disabled_and_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
