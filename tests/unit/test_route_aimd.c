/*
 * The adaptive concurrency cap (src/route/aimd.c) on a stepped clock: starts
 * at max; halves on a 429 once per hold; grows by one per cap successes back
 * to max and no further; never below min (nor 1); waits for Retry-After and
 * the rate-limit reset before growing; low remaining headers and rising
 * latency lower it; the fleet's value is adopted with local changes on top;
 * disabled it never moves.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "route/aimd.h"

static gw_aimd_opts opts(void)
{
    gw_aimd_opts o;
    gw_aimd_opts_from_config(gw_config_defaults(), &o);
    return o;
}

static bool ok(gw_aimd *a, const gw_aimd_opts *o, int64_t now, double ttft, double total)
{
    gw_aimd_signal s = {
        .kind = GW_AIMD_SUCCESS, .ttft_ms = ttft, .total_ms = total, .retry_after_ms = -1};
    return gw_aimd_on_result(a, o, now, &s);
}

static bool limited(gw_aimd *a, const gw_aimd_opts *o, int64_t now, int64_t retry_after_ms)
{
    gw_aimd_signal s = {.kind = GW_AIMD_RATE_LIMITED, .retry_after_ms = retry_after_ms};
    return gw_aimd_on_result(a, o, now, &s);
}

static void test_defaults(void **st)
{
    (void)st;
    gw_aimd_opts o = opts();
    assert_true(o.enabled);
    assert_int_equal(o.min, 1);
    assert_true(o.increase == 1.0 && o.decrease == 0.5);
    assert_true(o.latency_factor == 0 && o.low_remaining == 0.05);
}

static void test_decrease_and_recover(void **st)
{
    (void)st;
    gw_aimd_opts o = opts();
    gw_aimd a;
    gw_aimd_init(&a, &o, 16);
    assert_int_equal(gw_aimd_limit(&a), 16);
    int64_t t = 1000;
    for (int i = 0; i < 10; i++) /* 40 ms calls: hold 100 ms (the floor) */
        ok(&a, &o, t += 10, 20, 40);
    assert_int_equal(gw_aimd_limit(&a), 16); /* never above max */
    assert_int_equal(gw_aimd_hold_ms(&a), 100);
    assert_true(limited(&a, &o, t, 0));
    assert_int_equal(gw_aimd_limit(&a), 8);
    /* a burst of 429s within the hold counts once */
    for (int i = 0; i < 5; i++)
        assert_false(limited(&a, &o, t + 1 + i, 0));
    assert_int_equal(gw_aimd_limit(&a), 8);
    assert_int_equal(a.decreases, 1);
    /* after the hold each 429 halves again, down to min (1) and no further */
    for (int i = 1; i <= 6; i++)
        limited(&a, &o, t + 200 * i, 0);
    assert_int_equal(gw_aimd_limit(&a), 1);
    assert_int_equal(a.decreases, 7); /* 16 8 4 2 1, then it stays at 1 */
    /* additive increase: + 1/cap per success; 1 -> 16 takes about (16^2 - 1) / 2 = 127 */
    t += 5000;
    int n = 0;
    while (gw_aimd_limit(&a) < 16 && n < 1000) {
        ok(&a, &o, t += 10, 20, 40);
        n++;
    }
    assert_int_equal(gw_aimd_limit(&a), 16);
    assert_true(n >= 115 && n <= 130);
    for (int i = 0; i < 100; i++)
        ok(&a, &o, t += 10, 20, 40);
    assert_true(a.cap == 16);
}

static void test_min_and_retry_after(void **st)
{
    (void)st;
    gw_aimd_opts o = opts();
    o.min = 3;
    gw_aimd a;
    gw_aimd_init(&a, &o, 8);
    for (int i = 0; i < 5; i++)
        limited(&a, &o, 10000 * (i + 1), 2000);
    assert_int_equal(gw_aimd_limit(&a), 3);
    /* Retry-After 2 s: no growth before it ends */
    int64_t t = 50000;
    for (int i = 0; i < 50; i++)
        ok(&a, &o, t + i * 10, 5, 10);
    assert_int_equal(gw_aimd_limit(&a), 3);
    assert_true(a.cap == 3);
    for (int i = 0; i < 50; i++)
        ok(&a, &o, t + 2000 + i, 5, 10);
    assert_true(gw_aimd_limit(&a) > 3);
    /* min above max: the cap is max */
    o.min = 50;
    gw_aimd_init(&a, &o, 8);
    limited(&a, &o, 1, -1);
    assert_int_equal(gw_aimd_limit(&a), 8);
}

static void test_headers_signal(void **st)
{
    (void)st;
    gw_aimd_opts o = opts();
    gw_aimd a;
    gw_aimd_init(&a, &o, 32);
    gw_ratelimit rl = {0};
    const char *h[] = {"x-ratelimit-limit-requests: 1000", "x-ratelimit-remaining-requests: 500",
                       "x-ratelimit-reset-requests: 1s"};
    for (int i = 0; i < 3; i++)
        gw_ratelimit_header(&rl, h[i], strlen(h[i]), 0);
    gw_aimd_signal s = {.kind = GW_AIMD_SUCCESS, .ttft_ms = 5, .total_ms = 10, .rl = &rl};
    assert_false(gw_aimd_on_result(&a, &o, 100, &s)); /* half left: fine */
    assert_int_equal(gw_aimd_limit(&a), 32);
    const char *low = "x-ratelimit-remaining-requests: 40"; /* 4 % < 5 % */
    gw_ratelimit_header(&rl, low, strlen(low), 0);
    assert_true(gw_aimd_on_result(&a, &o, 200, &s));
    assert_int_equal(gw_aimd_limit(&a), 16);
    /* no growth until the window's reset (1 s), even from plain successes */
    gw_aimd_signal plain = {.kind = GW_AIMD_SUCCESS, .ttft_ms = 5, .total_ms = 10};
    for (int i = 0; i < 100; i++)
        gw_aimd_on_result(&a, &o, 300 + i, &plain);
    assert_true(a.cap == 16);
    for (int i = 0; i < 100; i++)
        gw_aimd_on_result(&a, &o, 1200 + i, &plain);
    assert_true(a.cap > 16);
    /* an error response with "remaining 0" and no limit counts too */
    gw_ratelimit zero = {0};
    const char *z = "x-ratelimit-remaining-tokens: 0";
    gw_ratelimit_header(&zero, z, strlen(z), 0);
    gw_aimd_signal err = {.kind = GW_AIMD_OTHER, .retry_after_ms = -1, .rl = &zero};
    int32_t before = gw_aimd_limit(&a);
    gw_aimd_on_result(&a, &o, 10000, &err);
    assert_int_equal(gw_aimd_limit(&a), before / 2);
    /* a failure without headers says nothing */
    gw_aimd_signal bare = {.kind = GW_AIMD_OTHER, .retry_after_ms = -1};
    before = gw_aimd_limit(&a);
    gw_aimd_on_result(&a, &o, 20000, &bare);
    assert_int_equal(gw_aimd_limit(&a), before);
}

static void test_latency_signal(void **st)
{
    (void)st;
    gw_aimd_opts o = opts();
    gw_aimd a;
    gw_aimd_init(&a, &o, 64);
    int64_t t = 0;
    /* off by default: ten times slower changes nothing */
    for (int i = 0; i < 30; i++)
        ok(&a, &o, t += 10, 100, 200);
    for (int i = 0; i < 30; i++)
        ok(&a, &o, t += 10, 1000, 2000);
    assert_int_equal(gw_aimd_limit(&a), 64);
    o.latency_factor = 3;
    gw_aimd_init(&a, &o, 64);
    for (int i = 0; i < 30; i++)
        ok(&a, &o, t += 10, 100, 200);
    assert_int_equal(gw_aimd_limit(&a), 64);
    for (int i = 0; i < 10 && gw_aimd_limit(&a) == 64; i++)
        ok(&a, &o, t += 10, 1000, 2000);
    assert_int_equal(gw_aimd_limit(&a), 32);
    assert_int_equal(a.decreases, 1);
}

static void test_fleet_adopt_and_take(void **st)
{
    (void)st;
    gw_aimd_opts o = opts();
    gw_aimd a;
    gw_aimd_init(&a, &o, 10);
    limited(&a, &o, 1000, -1); /* 10 -> 5 */
    double inc;
    int32_t dec;
    gw_aimd_take(&a, &inc, &dec);
    assert_int_equal(dec, 1);
    assert_true(inc == 0);
    gw_aimd_take(&a, &inc, &dec);
    assert_int_equal(dec, 0);
    /* the fleet says 2 (another worker halved too) */
    assert_true(gw_aimd_adopt(&a, &o, 2.0));
    assert_int_equal(gw_aimd_limit(&a), 2);
    /* local growth not yet sent stays on top of the fleet's value */
    ok(&a, &o, 5000, 5, 10); /* + 1/2 */
    assert_false(gw_aimd_adopt(&a, &o, 2.0));
    assert_true(a.cap == 2.5);
    /* out of range or unknown values are clamped or ignored */
    assert_true(gw_aimd_adopt(&a, &o, 1e9));
    assert_int_equal(gw_aimd_limit(&a), 10);
    assert_false(gw_aimd_adopt(&a, &o, 0));
    assert_int_equal(gw_aimd_limit(&a), 10);
}

static void test_disabled(void **st)
{
    (void)st;
    gw_aimd_opts o = opts();
    o.enabled = false;
    gw_aimd a;
    gw_aimd_init(&a, &o, 12);
    for (int i = 0; i < 10; i++)
        assert_false(limited(&a, &o, 1000 * i, -1));
    assert_false(gw_aimd_adopt(&a, &o, 1));
    assert_int_equal(gw_aimd_limit(&a), 12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_decrease_and_recover),
        cmocka_unit_test(test_min_and_retry_after),
        cmocka_unit_test(test_headers_signal),
        cmocka_unit_test(test_latency_signal),
        cmocka_unit_test(test_fleet_adopt_and_take),
        cmocka_unit_test(test_disabled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
