/* Unit tests for the NDJSON splitter (provider/ndjson.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "provider/ndjson.h"

static gw_err run(const char *s, size_t step, size_t max, char out[][128], int *count,
                  bool *pending)
{
    gw_ndjson p;
    gw_ndjson_init(&p, max);
    size_t len = strlen(s), off = 0;
    gw_err err = GW_OK;
    *count = 0;
    while (off < len && err == GW_OK) {
        size_t n = step == 0 ? len : (len - off < step ? len - off : step);
        err = gw_ndjson_feed(&p, s + off, n);
        off += n;
        bool got = true;
        while (err == GW_OK && got) {
            const char *line;
            size_t ll;
            err = gw_ndjson_next(&p, &line, &ll, &got);
            if (got && *count < 8) {
                assert_int_equal(strlen(line), ll);
                snprintf(out[(*count)++], 128, "%s", line);
            }
        }
    }
    *pending = gw_ndjson_pending(&p);
    gw_ndjson_cleanup(&p);
    return err;
}

static void test_lines_any_split(void **state)
{
    const char *s = "{\"a\":1}\n\n  \r\n{\"b\":2}\r\n{\"done\":true}\n";
    for (size_t step = 0; step < 6; step++) {
        char out[8][128];
        int n;
        bool pending;
        assert_int_equal(run(s, step, 64, out, &n, &pending), GW_OK);
        assert_int_equal(n, 3);
        assert_string_equal(out[0], "{\"a\":1}");
        assert_string_equal(out[1], "{\"b\":2}");
        assert_string_equal(out[2], "{\"done\":true}");
        assert_false(pending);
    }
}

static void test_partial_pending(void **state)
{
    char out[8][128];
    int n;
    bool pending;
    assert_int_equal(run("{\"a\":1}\n{\"b\":", 1, 64, out, &n, &pending), GW_OK);
    assert_int_equal(n, 1);
    assert_true(pending);
}

static void test_limit(void **state)
{
    char out[8][128];
    int n;
    bool pending;
    assert_int_equal(run("{\"aaaaaaaaaaaaaaaaaaaaaaaaaaa\":1}\n", 1, 16, out, &n, &pending),
                     GW_E_LIMIT);
    assert_int_equal(run("{\"aaaaaaaaaaaaaaaaaaaaaaaaaaa\":1}\n", 0, 16, out, &n, &pending),
                     GW_E_LIMIT);
    assert_int_equal(run("{\"a\":1}\n", 0, 7, out, &n, &pending), GW_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_any_split),
        cmocka_unit_test(test_partial_pending),
        cmocka_unit_test(test_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
