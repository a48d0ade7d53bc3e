/* Tests for common/log: every line is one valid JSON object, whatever the
 * values (over-long, control bytes, invalid UTF-8, many fields). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

/* Runs fn with stderr redirected to a temporary file; returns what it wrote. */
static char *capture(void (*fn)(void))
{
    fflush(stderr);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    int saved = dup(STDERR_FILENO);
    dup2(fileno(tmp), STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    long n = ftell(tmp);
    fseek(tmp, 0, SEEK_END);
    n = ftell(tmp);
    rewind(tmp);
    char *out = calloc(1, (size_t)n + 1);
    assert_int_equal(fread(out, 1, (size_t)n, tmp), (size_t)n);
    fclose(tmp);
    return out;
}

/* Every line parses as a JSON object; returns the number of lines. */
static int check_lines(const char *text, json_t **last)
{
    int lines = 0;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        assert_true(nl - p < 8192);
        json_error_t e;
        json_t *j = json_loadb(p, (size_t)(nl - p), 0, &e);
        if (j == NULL)
            fail_msg("invalid JSON line: %s: %.*s", e.text, (int)(nl - p), p);
        assert_true(json_is_object(j));
        if (last != NULL) {
            json_decref(*last);
            *last = j;
        } else {
            json_decref(j);
        }
        lines++;
        p = nl + 1;
    }
    return lines;
}

static char big[20000];

static void log_long(void)
{
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    GW_INFO("long", "a", big, "b", big, "c", big, "d", big, "e", big);
}

static void test_overlong_values_stay_valid(void **state)
{
    char *out = capture(log_long);
    json_t *j = NULL;
    assert_int_equal(check_lines(out, &j), 1);
    assert_true(json_is_true(json_object_get(j, "truncated")));
    assert_true(strlen(json_string_value(json_object_get(j, "a"))) <= 2048);
    json_decref(j);
    free(out);
}

static void log_escapes(void)
{
    /* Quotes and backslashes near the cut, so a cut mid-escape would show. */
    static char q[5000];
    for (size_t i = 0; i < sizeof q - 1; i++)
        q[i] = i % 2 ? '"' : '\\';
    q[sizeof q - 1] = '\0';
    GW_WARN("escapes", "q", q, "ctl", "a\x01\x1f\x7f\tb\nc");
    /* Invalid UTF-8, a cut multi-byte sequence, an overlong and a surrogate. */
    GW_WARN("utf8", "bad", "\xff\xfe ok \xc3", "overlong", "\xc0\xaf", "surrogate", "\xed\xa0\x80",
            "good", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    static char mb[6000];
    for (size_t i = 0; i + 2 < sizeof mb; i += 2)
        memcpy(mb + i, "\xc3\xa9", 2);
    GW_WARN("multibyte", "v", mb);
}

static void test_escapes_and_utf8(void **state)
{
    char *out = capture(log_escapes);
    json_t *j = NULL;
    assert_int_equal(check_lines(out, &j), 3);
    json_decref(j);
    assert_non_null(strstr(out, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
    assert_non_null(strstr(out, "\\ufffd\\ufffd ok \\ufffd"));
    free(out);
}

static void log_many_fields(void)
{
    memset(big, 'y', 1500);
    big[1500] = '\0';
    GW_INFO("many", "k1", big, "k2", big, "k3", big, "k4", big, "k5", big, "k6", big, "k7", big,
            "k8", NULL, "k9", "short");
}

static void test_many_fields_never_overflow(void **state)
{
    char *out = capture(log_many_fields);
    json_t *j = NULL;
    assert_int_equal(check_lines(out, &j), 1);
    assert_true(json_is_true(json_object_get(j, "truncated")));
    json_decref(j);
    free(out);
}

static void log_levels(void)
{
    gw_log_set_level(GW_LOG_WARN);
    GW_INFO("hidden");
    GW_WARN("shown", "k", NULL);
    gw_log_set_level(GW_LOG_INFO);
}

static void test_level_threshold(void **state)
{
    char *out = capture(log_levels);
    json_t *j = NULL;
    assert_int_equal(check_lines(out, &j), 1);
    assert_string_equal(json_string_value(json_object_get(j, "event")), "shown");
    assert_string_equal(json_string_value(json_object_get(j, "level")), "warn");
    assert_true(json_is_null(json_object_get(j, "k")));
    assert_null(json_object_get(j, "truncated"));
    json_decref(j);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_overlong_values_stay_valid),
        cmocka_unit_test(test_escapes_and_utf8),
        cmocka_unit_test(test_many_fields_never_overflow),
        cmocka_unit_test(test_level_threshold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
