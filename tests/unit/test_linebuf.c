/* Unit tests for the bounded line splitter (provider/linebuf.c) that the SSE
 * and NDJSON parsers share, and for the provider table (provider_table.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "provider/linebuf.h"
#include "provider/provider_http.h"
#include "provider/provider_table.h"

enum { MAX_LINES = 16 };

typedef struct {
    char text[MAX_LINES][128];
    int count;
    bool pending; /* bytes of an unfinished line left at the end */
} lines;

/* Feed s (len bytes) in pieces of step bytes (0 = all at once), taking every
 * complete line after each feed. */
static gw_err run(const char *s, size_t len, size_t step, size_t max, bool cr, bool bom, lines *out)
{
    gw_linebuf b;
    gw_linebuf_init(&b, max, cr, bom);
    memset(out, 0, sizeof *out);
    size_t off = 0;
    gw_err err = GW_OK;
    while (off < len && err == GW_OK) {
        size_t n = step == 0 ? len : (len - off < step ? len - off : step);
        err = gw_linebuf_feed(&b, s + off, n);
        off += n;
        bool got = true;
        while (err == GW_OK && got) {
            char *line;
            size_t ll;
            err = gw_linebuf_next(&b, &line, &ll, &got);
            if (!got)
                break;
            assert_true(ll <= max);
            assert_int_equal(line[ll], '\0');
            assert_null(memchr(line, '\n', ll));
            if (out->count < MAX_LINES)
                snprintf(out->text[out->count], sizeof out->text[0], "%s", line);
            out->count++;
        }
    }
    size_t rest;
    (void)gw_linebuf_rest(&b, &rest);
    out->pending = rest > 0;
    gw_linebuf_cleanup(&b);
    return err;
}

/* s gives want lines (wanted[]) however it is split. */
static void check_splits(const char *s, bool cr, bool bom, int want, const char *const *wanted,
                         bool pending)
{
    size_t len = strlen(s);
    for (size_t step = 0; step <= len; step++) {
        lines got;
        assert_int_equal(run(s, len, step, 64, cr, bom, &got), GW_OK);
        assert_int_equal(got.count, want);
        for (int i = 0; i < want; i++)
            assert_string_equal(got.text[i], wanted[i]);
        assert_int_equal(got.pending, pending);
    }
}

static void test_split_across_calls(void **state)
{
    const char *w[] = {"first line", "second", "third"};
    check_splits("first line\nsecond\nthird\n", false, false, 3, w, false);
    check_splits("first line\nsecond\nthird\n", true, false, 3, w, false);
    const char *w2[] = {"done"};
    check_splits("done\nhalf a li", false, false, 1, w2, true);
}

static void test_crlf(void **state)
{
    /* LF mode (NDJSON): CRLF is one end of line, a lone CR is content */
    const char *w[] = {"a", "b\rc", "d"};
    check_splits("a\r\nb\rc\nd\r\n", false, false, 3, w, false);
    /* CR mode (SSE): CR, LF and CRLF each end one line, even when the CRLF is split */
    const char *w2[] = {"a", "b", "c", "", "d"};
    check_splits("a\r\nb\rc\n\r\nd\r", true, false, 5, w2, false);
    /* a CR at the end of a feed, its LF in the next: still one end of line */
    gw_linebuf b;
    gw_linebuf_init(&b, 64, true, false);
    char *line;
    size_t n;
    bool got;
    assert_int_equal(gw_linebuf_feed(&b, "x\r", 2), GW_OK);
    assert_int_equal(gw_linebuf_next(&b, &line, &n, &got), GW_OK);
    assert_true(got);
    assert_string_equal(line, "x");
    assert_int_equal(gw_linebuf_feed(&b, "\ny\n", 3), GW_OK);
    assert_int_equal(gw_linebuf_next(&b, &line, &n, &got), GW_OK);
    assert_true(got);
    assert_string_equal(line, "y");
    assert_int_equal(gw_linebuf_next(&b, &line, &n, &got), GW_OK);
    assert_false(got);
    gw_linebuf_cleanup(&b);
}

static void test_empty_lines(void **state)
{
    const char *w[] = {"", "", "x", ""};
    check_splits("\n\nx\n\n", false, false, 4, w, false);
    check_splits("\r\n\nx\r\r\n", true, false, 4, w, false);
    /* nothing fed: no line, nothing pending */
    lines got;
    assert_int_equal(run("", 0, 0, 8, false, false, &got), GW_OK);
    assert_int_equal(got.count, 0);
    assert_false(got.pending);
}

static void test_bom(void **state)
{
    const char *w[] = {"data", "\xEF\xBB\xBFsecond"};
    check_splits("\xEF\xBB\xBF"
                 "data\n\xEF\xBB\xBFsecond\n",
                 true, true, 2, w, false);
    /* without skip_bom the BOM is content */
    const char *w2[] = {"\xEF\xBB\xBF"
                        "data"};
    check_splits("\xEF\xBB\xBF"
                 "data\n",
                 false, false, 1, w2, false);
}

static void test_over_long_line(void **state)
{
    char s[64];
    lines got;
    /* exactly the limit: fine, with or without CR before the LF */
    assert_int_equal(run("12345678\n", 9, 0, 8, false, false, &got), GW_OK);
    assert_int_equal(got.count, 1);
    assert_int_equal(run("12345678\r\n", 10, 0, 8, false, false, &got), GW_OK);
    assert_string_equal(got.text[0], "12345678");
    /* one over: complete or still pending, any split */
    snprintf(s, sizeof s, "ok\n123456789\n");
    for (size_t step = 0; step <= strlen(s); step++) {
        assert_int_equal(run(s, strlen(s), step, 8, false, false, &got), GW_E_LIMIT);
        assert_int_equal(run(s, strlen(s), step, 8, true, false, &got), GW_E_LIMIT);
    }
    assert_int_equal(run("123456789", 9, 0, 8, false, false, &got), GW_E_LIMIT);
    /* the error is sticky */
    gw_linebuf b;
    gw_linebuf_init(&b, 4, false, false);
    char *line;
    size_t n;
    bool got_line;
    assert_int_equal(gw_linebuf_feed(&b, "toolong\n", 8), GW_OK);
    assert_int_equal(gw_linebuf_next(&b, &line, &n, &got_line), GW_E_LIMIT);
    assert_false(got_line);
    assert_int_equal(gw_linebuf_feed(&b, "a\n", 2), GW_E_LIMIT);
    assert_int_equal(gw_linebuf_next(&b, &line, &n, &got_line), GW_E_LIMIT);
    gw_linebuf_cleanup(&b);
    /* pending input is bounded by max_line + GW_LINEBUF_FEED_MAX_BYTES */
    gw_linebuf_init(&b, 4, false, false);
    char *big = calloc(1, GW_LINEBUF_FEED_MAX_BYTES + 5);
    assert_non_null(big);
    assert_int_equal(gw_linebuf_feed(&b, big, GW_LINEBUF_FEED_MAX_BYTES + 4), GW_OK);
    assert_int_equal(gw_linebuf_feed(&b, "x", 1), GW_E_LIMIT);
    free(big);
    gw_linebuf_cleanup(&b);
}

static void test_provider_table(void **state)
{
    for (int k = 0; k < GW_PROVIDER__COUNT; k++) {
        const gw_provider_kind_info *row = gw_provider_info((gw_provider_kind)k);
        assert_non_null(row);
        assert_int_equal(row->kind, k);
        assert_string_equal(row->name, gw_provider_kind_name((gw_provider_kind)k));
        assert_ptr_equal(gw_provider_info_find(row->name), row);
        /* every kind is served somehow: in process, or over HTTP by a dialect */
        assert_true(row->builtin || (row->dialect != NULL && row->path != NULL &&
                                     row->auth.header != NULL && row->auth.scheme != NULL));
    }
    assert_null(gw_provider_info(GW_PROVIDER__COUNT));
    assert_null(gw_provider_info_find("nope"));
    assert_ptr_equal(gw_provider_info_find("OpenAI"), gw_provider_info(GW_PROVIDER_OPENAI));
    assert_null(gw_provider_kind_names[GW_PROVIDER__COUNT]);
    assert_true(gw_provider_info(GW_PROVIDER_MOCK)->builtin);
    assert_int_equal(gw_provider_info(GW_PROVIDER_OLLAMA)->stream_framing, GW_RESP_NDJSON);
    assert_string_equal(gw_provider_info(GW_PROVIDER_ANTHROPIC)->auth.header, "x-api-key");

    /* the default URL builder */
    const gw_provider_kind_info *oa = gw_provider_info(GW_PROVIDER_OPENAI);
    char url[64];
    gw_deployment d = {.base_url = "http://h:1/"};
    assert_int_equal(gw_provider_url_base_path(oa, &d, false, url, sizeof url), GW_OK);
    assert_string_equal(url, "http://h:1/v1/chat/completions");
    d.base_url = "https://api.groq.com/openai/v1";
    assert_int_equal(gw_provider_url_base_path(oa, &d, true, url, sizeof url), GW_OK);
    assert_string_equal(url, "https://api.groq.com/openai/v1/chat/completions");
    assert_int_equal(gw_provider_url_base_path(oa, &d, true, url, 16), GW_E_CONFIG);
    d.base_url = "";
    assert_int_equal(gw_provider_url_base_path(oa, &d, true, url, sizeof url),
                     GW_E_PROVIDER_NOT_CONFIGURED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_across_calls), cmocka_unit_test(test_crlf),
        cmocka_unit_test(test_empty_lines),        cmocka_unit_test(test_bom),
        cmocka_unit_test(test_over_long_line),     cmocka_unit_test(test_provider_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
