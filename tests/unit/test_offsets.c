/* Tests for kafka/offsets: the per-partition tracker of pending offsets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdlib.h>

#include "kafka/offsets.h"

static void test_in_order(void **state)
{
    gw_offsets o;
    assert_int_equal(gw_offsets_init(&o, 64), GW_OK);
    assert_int_equal(gw_offsets_committable(&o), -1);
    for (int64_t i = 10; i < 20; i++)
        assert_int_equal(gw_offsets_track(&o, i), GW_OFFSETS_TRACKED);
    assert_int_equal(gw_offsets_committable(&o), 10);
    assert_int_equal(gw_offsets_runahead(&o), 10);
    for (int64_t i = 10; i < 20; i++) {
        assert_true(gw_offsets_done(&o, i));
        assert_int_equal(gw_offsets_committable(&o), i + 1);
    }
    assert_int_equal(gw_offsets_pending(&o), 0);
    assert_int_equal(gw_offsets_runahead(&o), 0);
    gw_offsets_cleanup(&o);
}

static void test_out_of_order(void **state)
{
    gw_offsets o;
    gw_offsets_init(&o, 64);
    for (int64_t i = 0; i < 5; i++)
        gw_offsets_track(&o, i);
    assert_true(gw_offsets_done(&o, 3));
    assert_true(gw_offsets_done(&o, 1));
    assert_int_equal(gw_offsets_committable(&o), 0); /* 0 still pending */
    assert_true(gw_offsets_done(&o, 0));
    assert_int_equal(gw_offsets_committable(&o), 2); /* 2 pending */
    assert_true(gw_offsets_done(&o, 4));
    assert_int_equal(gw_offsets_committable(&o), 2);
    assert_true(gw_offsets_done(&o, 2));
    assert_int_equal(gw_offsets_committable(&o), 5);
    gw_offsets_cleanup(&o);
}

static void test_gaps_are_not_waited_for(void **state)
{
    gw_offsets o;
    gw_offsets_init(&o, 64);
    gw_offsets_track(&o, 5);
    gw_offsets_track(&o, 9); /* 6..8: transaction markers or compacted */
    gw_offsets_track(&o, 10);
    assert_true(gw_offsets_done(&o, 5));
    assert_int_equal(gw_offsets_committable(&o), 9);
    assert_true(gw_offsets_done(&o, 10));
    assert_int_equal(gw_offsets_committable(&o), 9);
    assert_true(gw_offsets_done(&o, 9));
    assert_int_equal(gw_offsets_committable(&o), 11);
    /* After an empty moment a gap starts a new window. */
    gw_offsets_track(&o, 500);
    assert_int_equal(gw_offsets_committable(&o), 500);
    gw_offsets_cleanup(&o);
}

static void test_duplicates_and_bad_done(void **state)
{
    gw_offsets o;
    gw_offsets_init(&o, 64);
    gw_offsets_track(&o, 0);
    gw_offsets_track(&o, 1);
    assert_int_equal(gw_offsets_track(&o, 1), GW_OFFSETS_DUPLICATE);
    assert_int_equal(gw_offsets_track(&o, 0), GW_OFFSETS_DUPLICATE);
    assert_true(gw_offsets_done(&o, 1));
    assert_false(gw_offsets_done(&o, 1)); /* twice */
    assert_false(gw_offsets_done(&o, 7)); /* never tracked */
    assert_false(gw_offsets_done(&o, -3));
    assert_int_equal(gw_offsets_pending(&o), 1);
    assert_int_equal(gw_offsets_committable(&o), 0);
    gw_offsets_cleanup(&o);
}

static void test_window_cap(void **state)
{
    gw_offsets o;
    gw_offsets_init(&o, 100); /* rounds up to 128 */
    assert_int_equal(gw_offsets_capacity(&o), 128);
    for (int64_t i = 0; i < 128; i++)
        assert_int_equal(gw_offsets_track(&o, i), GW_OFFSETS_TRACKED);
    assert_int_equal(gw_offsets_track(&o, 128), GW_OFFSETS_FULL);
    assert_int_equal(gw_offsets_runahead(&o), 128);
    assert_true(gw_offsets_done(&o, 0));
    assert_int_equal(gw_offsets_track(&o, 128), GW_OFFSETS_TRACKED); /* the ring wrapped */
    assert_int_equal(gw_offsets_track(&o, 129), GW_OFFSETS_FULL);
    for (int64_t i = 128; i > 0; i--)
        assert_true(gw_offsets_done(&o, i));
    assert_int_equal(gw_offsets_committable(&o), 129);
    gw_offsets_cleanup(&o);
}

/* Random completion order over a long run against a naive model. */
static void test_random_against_model(void **state)
{
    enum { N = 20000, W = 256 };
    gw_offsets o;
    gw_offsets_init(&o, W);
    static bool done[N];
    int64_t pend[W + 1];
    int npend = 0;
    int64_t next = 0, want = 0;
    srand(7);
    while (next < N || npend > 0) {
        bool room = next - want < W; /* the window counts from the lowest pending */
        if (next < N && room && (rand() % 3 != 0 || npend == 0)) {
            assert_int_equal(gw_offsets_track(&o, next), GW_OFFSETS_TRACKED);
            pend[npend++] = next++;
        } else {
            int k = rand() % npend;
            assert_true(gw_offsets_done(&o, pend[k]));
            done[pend[k]] = true;
            pend[k] = pend[--npend];
        }
        while (want < next && done[want])
            want++;
        assert_int_equal(gw_offsets_committable(&o), want);
    }
    gw_offsets_cleanup(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order),
        cmocka_unit_test(test_out_of_order),
        cmocka_unit_test(test_gaps_are_not_waited_for),
        cmocka_unit_test(test_duplicates_and_bad_done),
        cmocka_unit_test(test_window_cap),
        cmocka_unit_test(test_random_against_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
