/*
 * Rate-limit headers of providers (src/provider/ratelimit.c): OpenAI
 * durations, Anthropic RFC 3339 resets, the remaining share and the reset of
 * the scarcer resource, and bad values ignored.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "provider/ratelimit.h"

static int64_t dur(const char *s)
{
    return gw_ratelimit_parse_duration_ms(s, strlen(s));
}

static bool feed(gw_ratelimit *rl, const char *line, int64_t now_ms)
{
    return gw_ratelimit_header(rl, line, strlen(line), now_ms);
}

static void test_durations(void **st)
{
    (void)st;
    assert_int_equal(dur("1s"), 1000);
    assert_int_equal(dur("6m0s"), 360000);
    assert_int_equal(dur("20ms"), 20);
    assert_int_equal(dur("1h2m3.5s"), 3723500);
    assert_int_equal(dur("1.5s"), 1500);
    assert_int_equal(dur("7"), 7000);
    assert_int_equal(dur(" 2s\r\n"), 2000);
    assert_int_equal(dur("0s"), 0);
    assert_int_equal(dur(""), -1);
    assert_int_equal(dur("s"), -1);
    assert_int_equal(dur("1x"), -1);
    assert_int_equal(dur("1.2.3s"), -1);
    assert_int_equal(dur("25h"), -1); /* beyond a day */
    assert_int_equal(dur("99999999999999999999999999999999999s"), -1);
}

static void test_openai_headers(void **st)
{
    (void)st;
    gw_ratelimit rl = {0};
    assert_true(feed(&rl, "x-ratelimit-limit-requests: 100\r\n", 0));
    assert_true(feed(&rl, "X-RateLimit-Remaining-Requests: 3\r\n", 0));
    assert_true(feed(&rl, "x-ratelimit-reset-requests: 6m0s\r\n", 0));
    assert_true(feed(&rl, "x-ratelimit-limit-tokens: 10000\r\n", 0));
    assert_true(feed(&rl, "x-ratelimit-remaining-tokens: 5000\r\n", 0));
    assert_true(feed(&rl, "x-ratelimit-reset-tokens: 20ms\r\n", 0));
    assert_int_equal(rl.limit_requests, 100);
    assert_int_equal(rl.remaining_requests, 3);
    assert_int_equal(rl.reset_requests_ms, 360000);
    assert_int_equal(rl.reset_tokens_ms, 20);
    assert_true(gw_ratelimit_remaining_share(&rl) == 0.03);
    assert_int_equal(gw_ratelimit_reset_ms(&rl), 360000); /* requests are scarcer */
    /* not ours, or bad values: ignored, the fields unchanged */
    assert_false(feed(&rl, "content-type: application/json\r\n", 0));
    assert_false(feed(&rl, "x-ratelimit-remaining-requests: -1\r\n", 0));
    assert_false(feed(&rl, "x-ratelimit-remaining-requests: 12abc\r\n", 0));
    assert_false(feed(&rl, "x-ratelimit-remaining-widgets: 1\r\n", 0));
    assert_false(feed(&rl, "x-ratelimit-reset-tokens: soon\r\n", 0));
    assert_false(feed(&rl, "x-ratelimit-remaining-requests\r\n", 0));
    assert_false(feed(&rl, "x-ratelimit-remaining-requests: 1234567890123456\r\n", 0));
    assert_int_equal(rl.remaining_requests, 3);
    assert_int_equal(rl.reset_tokens_ms, 20);
}

static void test_anthropic_headers(void **st)
{
    (void)st;
    gw_ratelimit rl = {0};
    /* 2026-12-04T17:00:00Z = 1796403600 s */
    int64_t now = 1796403600000LL;
    assert_true(feed(&rl, "anthropic-ratelimit-requests-limit: 50\r\n", now));
    assert_true(feed(&rl, "anthropic-ratelimit-requests-remaining: 40\r\n", now));
    assert_true(feed(&rl, "anthropic-ratelimit-requests-reset: 2026-12-04T17:00:02Z\r\n", now));
    assert_true(feed(&rl, "anthropic-ratelimit-input-tokens-limit: 1000\r\n", now));
    assert_true(feed(&rl, "anthropic-ratelimit-input-tokens-remaining: 30\r\n", now));
    assert_true(feed(&rl, "anthropic-ratelimit-output-tokens-remaining: 500\r\n", now));
    assert_true(
        feed(&rl, "anthropic-ratelimit-tokens-reset: 2026-12-04T18:00:00.500+01:00\r\n", now));
    assert_int_equal(rl.reset_requests_ms, 2000);
    assert_int_equal(rl.remaining_tokens, 30); /* the scarcer of input and output */
    assert_int_equal(rl.reset_tokens_ms, 500);
    assert_true(gw_ratelimit_remaining_share(&rl) == 0.03);
    assert_int_equal(gw_ratelimit_reset_ms(&rl), 500);
    /* a reset in the past is 0; malformed times are ignored */
    assert_true(feed(&rl, "anthropic-ratelimit-requests-reset: 2026-12-04T16:59:00Z\r\n", now));
    assert_int_equal(rl.reset_requests_ms, 0);
    assert_false(feed(&rl, "anthropic-ratelimit-requests-reset: tomorrow\r\n", now));
    assert_false(feed(&rl, "anthropic-ratelimit-requests-reset: 2026-12-04T16:59:00Q\r\n", now));
    assert_false(feed(&rl, "anthropic-ratelimit-requests-reset: 2027-12-04T16:59:00Z\r\n", now));
}

static void test_share_without_limit(void **st)
{
    (void)st;
    gw_ratelimit rl = {0};
    assert_true(gw_ratelimit_remaining_share(&rl) == -1);
    assert_int_equal(gw_ratelimit_reset_ms(&rl), -1);
    feed(&rl, "x-ratelimit-remaining-tokens: 10\r\n", 0);
    assert_true(gw_ratelimit_remaining_share(&rl) == -1); /* no limit: unknown */
    feed(&rl, "x-ratelimit-remaining-requests: 0\r\n", 0);
    assert_true(gw_ratelimit_remaining_share(&rl) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_openai_headers),
        cmocka_unit_test(test_anthropic_headers),
        cmocka_unit_test(test_share_without_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
