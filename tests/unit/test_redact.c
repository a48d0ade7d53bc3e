/* Unit tests for credential scrubbing (common/redact.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "common/redact.h"

static const char *red(const char *in, const char *secret, size_t cap)
{
    static char out[1024];
    gw_redact(in, strlen(in), secret, out, cap);
    return out;
}

static void test_bearer(void **state)
{
    assert_string_equal(red("got Authorization: Bearer abc.DEF-123 ok", NULL, 1024),
                        "got [REDACTED] ok");
    assert_string_equal(red("token bearer xyz123", NULL, 1024), "token [REDACTED]");
}

static void test_sk_keys(void **state)
{
    assert_string_equal(red("Incorrect API key provided: sk-proj-abcdef123456.", NULL, 1024),
                        "Incorrect API key provided: [REDACTED]");
    /* not a key: part of a word, or too short */
    assert_string_equal(red("task-list and sk-1", NULL, 1024), "task-list and sk-1");
}

static void test_keyed_fields(void **state)
{
    assert_string_equal(red("{\"x-api-key\": \"ant-secret-1\"}", NULL, 1024), "{\"[REDACTED]\"}");
    assert_string_equal(red("x-api-key: abc123\n", NULL, 1024), "[REDACTED]\n");
    assert_string_equal(red("url?api_key=zzz&x=1", NULL, 1024), "url?[REDACTED]&x=1");
}

static void test_exact_secret(void **state)
{
    assert_string_equal(red("the key was MySecretValue!", "MySecretValue", 1024),
                        "the key was [REDACTED]!");
    /* too short secrets are not used as patterns */
    assert_string_equal(red("abc abc", "abc", 1024), "abc abc");
}

static void test_truncation_after_scrub(void **state)
{
    /* The secret straddles the cut: nothing of it may leak. */
    const char *out = red("0123456789 MySecretValue", "MySecretValue", 16);
    assert_int_equal(strlen(out), 15);
    assert_null(strstr(out, "MySecret"));
    assert_null(strstr(out, "My"));
    /* never cut inside a UTF-8 sequence */
    out = red("abc\xC3\xA9xyz", NULL, 5);
    assert_string_equal(out, "abc");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bearer),
        cmocka_unit_test(test_sk_keys),
        cmocka_unit_test(test_keyed_fields),
        cmocka_unit_test(test_exact_secret),
        cmocka_unit_test(test_truncation_after_scrub),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
