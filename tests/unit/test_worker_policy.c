/* Tests for worker/policy: capacity/pause decisions and stream coalescing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "worker/policy.h"

static const gw_capacity_cfg CFG = {.max_in_flight = 100,
                                    .low_share = 0.1,
                                    .normal_headroom = 0.1,
                                    .low_headroom = 0.25,
                                    .hysteresis = 0};

static void decide(const gw_capacity_cfg *cfg, uint32_t h, uint32_t n, uint32_t l, bool competing,
                   bool open[GW_TIER__COUNT])
{
    gw_capacity_state st = {
        .in_flight = {h, n, l}, .low_competing = competing, .was_open = {true, true, true}};
    gw_capacity_decide(cfg, &st, open);
}

static void test_idle_worker_takes_everything(void **state)
{
    bool open[3];
    decide(&CFG, 0, 0, 0, false, open);
    assert_true(open[GW_TIER_HIGH] && open[GW_TIER_NORMAL] && open[GW_TIER_LOW]);
}

static void test_lower_tiers_pause_first(void **state)
{
    bool open[3];
    decide(&CFG, 40, 35, 0, false, open); /* F = 75: low headroom reached */
    assert_true(open[GW_TIER_HIGH]);
    assert_true(open[GW_TIER_NORMAL]);
    assert_true(open[GW_TIER_LOW]);       /* below its floor of 10 */
    decide(&CFG, 50, 40, 0, false, open); /* F = 90: normal leaves 10 for high */
    assert_true(open[GW_TIER_HIGH]);
    assert_false(open[GW_TIER_NORMAL]);
    decide(&CFG, 89, 1, 10, true, open); /* low at its floor, F = 100 */
    assert_false(open[GW_TIER_HIGH]);
    assert_false(open[GW_TIER_NORMAL]);
    assert_false(open[GW_TIER_LOW]);
}

static void test_high_may_use_all_when_low_is_idle(void **state)
{
    bool open[3];
    decide(&CFG, 99, 0, 0, false, open);
    assert_true(open[GW_TIER_HIGH]);
    decide(&CFG, 100, 0, 0, false, open);
    assert_false(open[GW_TIER_HIGH]);
}

static void test_low_keeps_its_share(void **state)
{
    bool open[3];
    /* High saturates; low competes: high is held at C - R. */
    decide(&CFG, 90, 0, 0, true, open);
    assert_false(open[GW_TIER_HIGH]);
    assert_true(open[GW_TIER_LOW]);
    decide(&CFG, 90, 0, 9, true, open);
    assert_true(open[GW_TIER_LOW]);
    decide(&CFG, 90, 0, 10, true, open);
    assert_false(open[GW_TIER_LOW]);
    /* Even with high over the whole capacity (taken while low was idle), low
     * gets its floor: F may exceed C by at most R. */
    decide(&CFG, 100, 0, 0, true, open);
    assert_true(open[GW_TIER_LOW]);
    assert_false(open[GW_TIER_HIGH]);
}

static void test_hysteresis(void **state)
{
    gw_capacity_cfg cfg = CFG;
    cfg.hysteresis = 5;
    gw_capacity_state st = {.in_flight = {0, 88, 0}, .was_open = {true, false, true}};
    bool open[3];
    gw_capacity_decide(&cfg, &st, open);
    assert_false(open[GW_TIER_NORMAL]); /* 88 >= 90 - 5 */
    st.in_flight[GW_TIER_NORMAL] = 84;
    gw_capacity_decide(&cfg, &st, open);
    assert_true(open[GW_TIER_NORMAL]);
    st.was_open[GW_TIER_NORMAL] = true;
    st.in_flight[GW_TIER_NORMAL] = 89;
    gw_capacity_decide(&cfg, &st, open);
    assert_true(open[GW_TIER_NORMAL]);
}

static void test_tiny_capacity(void **state)
{
    gw_capacity_cfg cfg = {.max_in_flight = 1,
                           .low_share = 0.1,
                           .normal_headroom = 0.1,
                           .low_headroom = 0.25,
                           .hysteresis = 3};
    bool open[3];
    gw_capacity_state st = {.in_flight = {0, 0, 0}, .was_open = {false, false, false}};
    gw_capacity_decide(&cfg, &st, open);
    assert_true(open[GW_TIER_HIGH]); /* hysteresis never blocks an idle worker */
    assert_true(open[GW_TIER_LOW]);  /* floor ceil(0.1) = 1 */
}

static void test_coalescing(void **state)
{
    gw_coalesce_cfg c = {.coalesce_ms = 20, .coalesce_bytes = 100};
    uint32_t delay;
    assert_int_equal(gw_coalesce_on_delta(&c, 0, 3, false, &delay), GW_COALESCE_FLUSH);
    assert_int_equal(gw_coalesce_on_delta(&c, 1, 3, false, &delay), GW_COALESCE_ARM_TIMER);
    assert_int_equal(delay, 20);
    assert_int_equal(gw_coalesce_on_delta(&c, 1, 50, true, &delay), GW_COALESCE_WAIT);
    assert_int_equal(gw_coalesce_on_delta(&c, 1, 100, true, &delay), GW_COALESCE_FLUSH);
    c.coalesce_ms = 0;
    assert_int_equal(gw_coalesce_on_delta(&c, 5, 1, false, &delay), GW_COALESCE_FLUSH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_worker_takes_everything),
        cmocka_unit_test(test_lower_tiers_pause_first),
        cmocka_unit_test(test_high_may_use_all_when_low_is_idle),
        cmocka_unit_test(test_low_keeps_its_share),
        cmocka_unit_test(test_hysteresis),
        cmocka_unit_test(test_tiny_capacity),
        cmocka_unit_test(test_coalescing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
