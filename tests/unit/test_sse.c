/* Unit tests for the SSE parser (provider/sse.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "provider/sse.h"

enum { MAX_EVENTS = 16 };

typedef struct {
    char event[64];
    char data[256];
    char id[64];
} got_event;

/* Feed s in pieces of step bytes (0 = all at once); collect events. */
static gw_err run(const char *s, size_t step, size_t max, got_event *evs, int *count)
{
    gw_sse p;
    gw_sse_init(&p, max);
    size_t len = strlen(s), off = 0;
    *count = 0;
    gw_err err = GW_OK;
    while (off < len && err == GW_OK) {
        size_t n = step == 0 ? len : (len - off < step ? len - off : step);
        err = gw_sse_feed(&p, s + off, n);
        off += n;
        bool got = true;
        while (err == GW_OK && got) {
            gw_sse_event ev;
            err = gw_sse_next(&p, &ev, &got);
            if (got && *count < MAX_EVENTS) {
                snprintf(evs[*count].event, 64, "%s", ev.event);
                snprintf(evs[*count].data, 256, "%s", ev.data);
                snprintf(evs[*count].id, 64, "%s", ev.id);
                assert_int_equal(strlen(ev.data), ev.data_len);
                (*count)++;
            }
        }
    }
    gw_sse_cleanup(&p);
    return err;
}

static void check_all_splits(const char *s, int want, const char *const *datas,
                             const char *const *names)
{
    size_t steps[] = {0, 1, 2, 3, 5, 7};
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        got_event evs[MAX_EVENTS];
        int n;
        assert_int_equal(run(s, steps[k], 1024, evs, &n), GW_OK);
        assert_int_equal(n, want);
        for (int i = 0; i < n; i++) {
            assert_string_equal(evs[i].data, datas[i]);
            if (names)
                assert_string_equal(evs[i].event, names[i]);
        }
    }
}

static void test_basic_lf(void **state)
{
    const char *d[] = {"hello", "world"};
    check_all_splits("data: hello\n\ndata: world\n\n", 2, d, NULL);
}

static void test_multiline_and_crlf(void **state)
{
    const char *d[] = {"a\nb\nc", "x"};
    const char *n[] = {"message", "delta"};
    check_all_splits("data: a\r\ndata: b\r\ndata:c\r\n\r\nevent: delta\r\ndata: x\r\n\r\n", 2, d,
                     n);
}

static void test_cr_only(void **state)
{
    const char *d[] = {"one", "two"};
    check_all_splits("data: one\r\rdata: two\r\r", 2, d, NULL);
}

static void test_comments_and_fields(void **state)
{
    const char *d[] = {"{\"type\":\"ping\"}", "last"};
    const char *n[] = {"ping", "message"};
    check_all_splits(": keepalive\n\nevent: ping\nid: 7\nretry: 3000\nunknown: x\n"
                     "data: {\"type\":\"ping\"}\n\n:comment\ndata: last\n\n",
                     2, d, n);
    gw_sse p;
    gw_sse_init(&p, 1024);
    const char *s = "retry: 2500\nid: abc\ndata: z\n\n";
    assert_int_equal(gw_sse_feed(&p, s, strlen(s)), GW_OK);
    gw_sse_event ev;
    bool got;
    assert_int_equal(gw_sse_next(&p, &ev, &got), GW_OK);
    assert_true(got);
    assert_string_equal(ev.id, "abc");
    assert_int_equal(gw_sse_retry_ms(&p), 2500);
    assert_false(gw_sse_pending(&p));
    gw_sse_cleanup(&p);
}

static void test_event_without_data_not_dispatched(void **state)
{
    got_event evs[MAX_EVENTS];
    int n;
    assert_int_equal(run("event: x\n\ndata\n\n", 1, 1024, evs, &n), GW_OK);
    /* "data" with no colon is a data field with an empty value. */
    assert_int_equal(n, 1);
    assert_string_equal(evs[0].data, "");
    assert_string_equal(evs[0].event, "message");
}

static void test_bom_and_no_space(void **state)
{
    const char *d[] = {"v", " two spaces"};
    check_all_splits("\xEF\xBB\xBF"
                     "data:v\n\ndata:  two spaces\n\n",
                     2, d, NULL);
}

static void test_limit(void **state)
{
    got_event evs[MAX_EVENTS];
    int n;
    char big[200];
    memset(big, 'a', sizeof big);
    big[sizeof big - 1] = '\0';
    char s[300];
    snprintf(s, sizeof s, "data: %s\n\n", big);
    assert_int_equal(run(s, 0, 64, evs, &n), GW_E_LIMIT);
    assert_int_equal(run(s, 1, 64, evs, &n), GW_E_LIMIT);
    /* many data lines adding up over the limit */
    assert_int_equal(
        run("data: 0123456789\ndata: 0123456789\ndata: 0123456789\n\n", 1, 24, evs, &n),
        GW_E_LIMIT);
    /* the error is sticky */
    gw_sse p;
    gw_sse_init(&p, 8);
    assert_int_equal(gw_sse_feed(&p, s, strlen(s)), GW_OK);
    gw_sse_event ev;
    bool got;
    assert_int_equal(gw_sse_next(&p, &ev, &got), GW_E_LIMIT);
    assert_int_equal(gw_sse_feed(&p, "data: x\n\n", 9), GW_E_LIMIT);
    gw_sse_cleanup(&p);
}

static void test_pending_at_eof(void **state)
{
    gw_sse p;
    gw_sse_init(&p, 1024);
    const char *s = "data: complete\n\ndata: partial";
    assert_int_equal(gw_sse_feed(&p, s, strlen(s)), GW_OK);
    gw_sse_event ev;
    bool got;
    assert_int_equal(gw_sse_next(&p, &ev, &got), GW_OK);
    assert_true(got);
    assert_int_equal(gw_sse_next(&p, &ev, &got), GW_OK);
    assert_false(got);
    assert_true(gw_sse_pending(&p));
    gw_sse_cleanup(&p);
}

static void test_openai_stream(void **state)
{
    const char *d[] = {"{\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}", "[DONE]"};
    check_all_splits("data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: [DONE]\n\n",
                     2, d, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_lf),
        cmocka_unit_test(test_multiline_and_crlf),
        cmocka_unit_test(test_cr_only),
        cmocka_unit_test(test_comments_and_fields),
        cmocka_unit_test(test_event_without_data_not_dispatched),
        cmocka_unit_test(test_bom_and_no_space),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_pending_at_eof),
        cmocka_unit_test(test_openai_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
