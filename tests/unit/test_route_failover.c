/*
 * Failover decision matrix: retry the same deployment with capped jittered
 * backoff, honour Retry-After up to the cap, move on, stop on caller errors,
 * context-length failover only to a larger window, STREAM_ERROR once a chunk
 * was published, E4102 with the attempt log when everything failed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "route/failover.h"

static gw_deployment deps[3] = {
    {.id = "a",
     .model = "ma",
     .latency_prior_ms = 1,
     .ttft_prior_ms = 1,
     .price_in_usd_per_mtok = 1,
     .price_out_usd_per_mtok = 1,
     .quality = 0.5,
     .context_window_tokens = 8000,
     .weight = 1},
    {.id = "b",
     .model = "mb",
     .latency_prior_ms = 1,
     .ttft_prior_ms = 1,
     .price_in_usd_per_mtok = 2,
     .price_out_usd_per_mtok = 2,
     .quality = 0.5,
     .context_window_tokens = 4000,
     .weight = 1},
    {.id = "c",
     .model = "mc",
     .latency_prior_ms = 1,
     .ttft_prior_ms = 1,
     .price_in_usd_per_mtok = 3,
     .price_out_usd_per_mtok = 3,
     .quality = 0.5,
     .context_window_tokens = 128000,
     .weight = 1},
};

typedef struct {
    gw_registry *reg;
    gw_route_plan plan;
    gw_failover fo;
    gw_failover_opts o;
    gw_rng rng;
} fx;

static int setup(void **st)
{
    fx *f = calloc(1, sizeof *f);
    assert_int_equal(gw_registry_new(deps, 3, GW_PROVIDER_MASK_ALL, NULL, 0, &f->reg), GW_OK);
    f->plan.count = 3; /* a, b, c in that order */
    for (uint16_t i = 0; i < 3; i++)
        f->plan.idx[i] = i;
    gw_failover_opts_from_config(gw_config_defaults(), &f->o);
    f->o.max_attempts_per_deployment = 2;
    f->o.base_backoff_ms = 100;
    f->o.max_backoff_ms = 400;
    f->o.max_retry_after_ms = 5000;
    f->o.max_total_attempts = 10;
    gw_rng_seed(&f->rng, 3);
    gw_failover_init(&f->fo, &f->o, f->reg, &f->plan, &f->rng);
    *st = f;
    return 0;
}

static int teardown(void **st)
{
    fx *f = *st;
    gw_registry_free(f->reg);
    free(f);
    return 0;
}

static gw_attempt_outcome failed(gw_err e, int http)
{
    return (gw_attempt_outcome){.err = e,
                                .http_status = http,
                                .retry_after_ms = -1,
                                .duration_ms = 7,
                                .deadline_left_ms = -1};
}

static const char *cur(fx *f)
{
    return gw_registry_get(f->reg, gw_failover_current(&f->fo))->id;
}

static void test_retry_then_next_then_success(void **st)
{
    fx *f = *st;
    assert_string_equal(cur(f), "a");
    gw_attempt_outcome o = failed(GW_E_PROVIDER_UNAVAILABLE, 503);
    gw_fo_decision d = gw_failover_on_outcome(&f->fo, &o);
    assert_int_equal(d.action, GW_FO_RETRY_SAME);
    assert_true(d.delay_ms >= 50 && d.delay_ms <= 100); /* equal jitter of 100 */
    assert_string_equal(cur(f), "a");
    d = gw_failover_on_outcome(&f->fo, &o); /* 2 attempts on a: move on */
    assert_int_equal(d.action, GW_FO_NEXT);
    assert_string_equal(cur(f), "b");
    o = failed(GW_E_PROVIDER_CONNECT_TIMEOUT, 0);
    d = gw_failover_on_outcome(&f->fo, &o);
    assert_int_equal(d.action, GW_FO_RETRY_SAME);
    o.err = GW_OK;
    d = gw_failover_on_outcome(&f->fo, &o);
    assert_int_equal(d.action, GW_FO_DONE);
    assert_int_equal(gw_failover_attempts(&f->fo), 4);
    assert_int_equal(gw_failover_failovers(&f->fo), 1);
}

static void test_backoff_capped(void **st)
{
    fx *f = *st;
    f->o.max_attempts_per_deployment = 6;
    gw_failover_init(&f->fo, &f->o, f->reg, &f->plan, &f->rng);
    gw_attempt_outcome o = failed(GW_E_PROVIDER_TRANSPORT, 0);
    int64_t hi[] = {100, 200, 400, 400, 400};
    for (int i = 0; i < 5; i++) {
        gw_fo_decision d = gw_failover_on_outcome(&f->fo, &o);
        assert_int_equal(d.action, GW_FO_RETRY_SAME);
        assert_true(d.delay_ms >= hi[i] / 2 && d.delay_ms <= hi[i]);
    }
}

static void test_retry_after_honoured_and_capped(void **st)
{
    fx *f = *st;
    gw_attempt_outcome o = failed(GW_E_PROVIDER_UNAVAILABLE, 503);
    o.retry_after_ms = 1500;
    gw_fo_decision d = gw_failover_on_outcome(&f->fo, &o);
    assert_int_equal(d.action, GW_FO_RETRY_SAME);
    assert_int_equal(d.delay_ms, 1500);
    gw_failover_init(&f->fo, &f->o, f->reg, &f->plan, &f->rng);
    o.retry_after_ms = 60000; /* above the cap: do not wait, go on */
    d = gw_failover_on_outcome(&f->fo, &o);
    assert_int_equal(d.action, GW_FO_NEXT);
    assert_string_equal(cur(f), "b");
    /* A retry that would pass the deadline goes on instead. */
    o.retry_after_ms = 1000;
    o.deadline_left_ms = 500;
    d = gw_failover_on_outcome(&f->fo, &o);
    assert_int_equal(d.action, GW_FO_NEXT);
    assert_string_equal(cur(f), "c");
}

static void test_rate_limited(void **st)
{
    fx *f = *st;
    gw_attempt_outcome o = failed(GW_E_PROVIDER_RATE_LIMITED, 429);
    o.retry_after_ms = 3000;
    gw_fo_decision d = gw_failover_on_outcome(&f->fo, &o); /* others left: go at once */
    assert_int_equal(d.action, GW_FO_NEXT);
    d = gw_failover_on_outcome(&f->fo, &o);
    assert_int_equal(d.action, GW_FO_NEXT);
    assert_string_equal(cur(f), "c");
    d = gw_failover_on_outcome(&f->fo, &o); /* last one: wait its Retry-After */
    assert_int_equal(d.action, GW_FO_RETRY_SAME);
    assert_int_equal(d.delay_ms, 3000);
}

static void test_caller_errors_stop(void **st)
{
    fx *f = *st;
    gw_err stops[] = {GW_E_PROVIDER_BAD_REQUEST, GW_E_INVALID_REQUEST, GW_E_NOMEM,
                      GW_E_BUDGET_EXCEEDED};
    for (size_t i = 0; i < sizeof stops / sizeof stops[0]; i++) {
        gw_failover_init(&f->fo, &f->o, f->reg, &f->plan, &f->rng);
        gw_attempt_outcome o = failed(stops[i], 400);
        gw_fo_decision d = gw_failover_on_outcome(&f->fo, &o);
        assert_int_equal(d.action, GW_FO_STOP);
        assert_int_equal(d.err, stops[i]);
    }
    /* Auth: never the same deployment again, but another one may work. */
    gw_failover_init(&f->fo, &f->o, f->reg, &f->plan, &f->rng);
    gw_attempt_outcome o = failed(GW_E_PROVIDER_AUTH, 401);
    assert_int_equal(gw_failover_on_outcome(&f->fo, &o).action, GW_FO_NEXT);
}

static void test_context_length(void **st)
{
    fx *f = *st;
    /* a (8k) says too long: b (4k) is smaller, c (128k) is larger. */
    gw_attempt_outcome o = failed(GW_E_PROVIDER_CONTEXT_LENGTH, 400);
    gw_fo_decision d = gw_failover_on_outcome(&f->fo, &o);
    assert_int_equal(d.action, GW_FO_NEXT);
    assert_string_equal(cur(f), "c");
    d = gw_failover_on_outcome(&f->fo, &o);
    assert_int_equal(d.action, GW_FO_STOP);
    assert_int_equal(d.err, GW_E_CONTEXT_TOO_LONG);
}

static void test_stream_after_first_chunk(void **st)
{
    fx *f = *st;
    gw_attempt_outcome o = failed(GW_E_PROVIDER_IDLE_TIMEOUT, 0);
    gw_fo_decision d = gw_failover_on_outcome(&f->fo, &o); /* before any chunk: retry */
    assert_int_equal(d.action, GW_FO_RETRY_SAME);
    o.chunk_published = true;
    d = gw_failover_on_outcome(&f->fo, &o);
    assert_int_equal(d.action, GW_FO_STOP);
    assert_int_equal(d.err, GW_E_STREAM_ERROR);
}

/* A safety block stops at once and keeps its name, before a chunk or after. */
static void test_content_blocked(void **st)
{
    fx *f = *st;
    gw_attempt_outcome o = failed(GW_E_PROVIDER_CONTENT_BLOCKED, 200);
    gw_fo_decision d = gw_failover_on_outcome(&f->fo, &o);
    assert_int_equal(d.action, GW_FO_STOP);
    assert_int_equal(d.err, GW_E_PROVIDER_CONTENT_BLOCKED);
    gw_failover_init(&f->fo, &f->o, f->reg, &f->plan, &f->rng);
    o.chunk_published = true;
    d = gw_failover_on_outcome(&f->fo, &o);
    assert_int_equal(d.action, GW_FO_STOP);
    assert_int_equal(d.err, GW_E_PROVIDER_CONTENT_BLOCKED);
}

static void test_all_failed_details(void **st)
{
    fx *f = *st;
    f->o.max_attempts_per_deployment = 1;
    gw_failover_init(&f->fo, &f->o, f->reg, &f->plan, &f->rng);
    gw_attempt_outcome o = failed(GW_E_PROVIDER_UNAVAILABLE, 503);
    assert_int_equal(gw_failover_on_outcome(&f->fo, &o).action, GW_FO_NEXT);
    assert_int_equal(gw_failover_on_denied(&f->fo, 900).action, GW_FO_NEXT); /* b: breaker */
    o = failed(GW_E_PROVIDER_TOTAL_TIMEOUT, 0);
    o.duration_ms = 30000;
    gw_fo_decision d = gw_failover_on_outcome(&f->fo, &o);
    assert_int_equal(d.action, GW_FO_STOP);
    assert_int_equal(d.err, GW_E_ALL_MODELS_UNAVAILABLE);
    gw_arena a;
    gw_arena_init(&a, 1 << 16);
    gw_map m;
    assert_int_equal(gw_failover_details(&f->fo, &a, &m), GW_OK);
    assert_string_equal(gw_map_get(&m, "attempt_count"), "3");
    assert_string_equal(gw_map_get(&m, "attempts"),
                        "[{\"deployment\":\"a\",\"code\":\"E4206\",\"http_status\":503,"
                        "\"duration_ms\":7},"
                        "{\"deployment\":\"b\",\"code\":\"E4103\",\"http_status\":0,"
                        "\"duration_ms\":0},"
                        "{\"deployment\":\"c\",\"code\":\"E4204\",\"http_status\":0,"
                        "\"duration_ms\":30000}]");
    gw_arena_cleanup(&a);
    /* The machine is finished: more outcomes are refused, not crashed on. */
    assert_int_equal(gw_failover_on_outcome(&f->fo, &o).action, GW_FO_STOP);
}

static void test_total_attempt_cap(void **st)
{
    fx *f = *st;
    f->o.max_attempts_per_deployment = 5;
    f->o.max_total_attempts = 3;
    gw_failover_init(&f->fo, &f->o, f->reg, &f->plan, &f->rng);
    gw_attempt_outcome o = failed(GW_E_PROVIDER_UNAVAILABLE, 503);
    assert_int_equal(gw_failover_on_outcome(&f->fo, &o).action, GW_FO_RETRY_SAME);
    assert_int_equal(gw_failover_on_outcome(&f->fo, &o).action, GW_FO_RETRY_SAME);
    gw_fo_decision d = gw_failover_on_outcome(&f->fo, &o);
    assert_int_equal(d.action, GW_FO_STOP);
    assert_int_equal(d.err, GW_E_ALL_MODELS_UNAVAILABLE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_retry_then_next_then_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backoff_capped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_honoured_and_capped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limited, setup, teardown),
        cmocka_unit_test_setup_teardown(test_caller_errors_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_context_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_after_first_chunk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_content_blocked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_failed_details, setup, teardown),
        cmocka_unit_test_setup_teardown(test_total_attempt_cap, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
