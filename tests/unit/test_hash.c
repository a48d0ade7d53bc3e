/*
 * common/hash.h: FNV-1a against the published test vectors, the string form
 * against the byte form, NULL as "", and fmix64 against known values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/hash.h"

static void test_fnv1a64_vectors(void **state)
{
    (void)state;
    /* from the FNV reference test suite (64-bit FNV-1a) */
    assert_true(gw_fnv1a64(GW_FNV64_BASIS, "", 0) == 0xcbf29ce484222325ULL);
    assert_true(gw_fnv1a64(GW_FNV64_BASIS, "a", 1) == 0xaf63dc4c8601ec8cULL);
    assert_true(gw_fnv1a64(GW_FNV64_BASIS, "foobar", 6) == 0x85944171f73967e8ULL);
    /* continuing from h is hashing the concatenation */
    assert_true(gw_fnv1a64(gw_fnv1a64(GW_FNV64_BASIS, "foo", 3), "bar", 3) ==
                gw_fnv1a64(GW_FNV64_BASIS, "foobar", 6));
}

static void test_fnv1a64_str(void **state)
{
    (void)state;
    const char *s = "How do I sort a list in Python?";
    assert_true(gw_fnv1a64_str(7, s) == gw_fnv1a64(7, s, strlen(s)));
    assert_true(gw_fnv1a64_str(GW_FNV64_BASIS, NULL) == GW_FNV64_BASIS);
    assert_true(gw_fnv1a64_str(GW_FNV64_BASIS, "") == GW_FNV64_BASIS);
}

static void test_fmix64(void **state)
{
    (void)state;
    assert_true(gw_fmix64(0) == 0);
    /* MurmurHash3 fmix64(1) */
    assert_true(gw_fmix64(1) == 0xb456bcfc34c2cb2cULL);
    assert_true(gw_fmix64(1) != gw_fmix64(2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fnv1a64_vectors),
        cmocka_unit_test(test_fnv1a64_str),
        cmocka_unit_test(test_fmix64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
