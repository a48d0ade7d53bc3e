/* Tests for loop/kq: a librdkafka queue served on a libuv loop, through the
 * io-event pipe and lazily (no pipe: after loop iterations and by a timer
 * while ops are due). The op is a real delivery report: a producer pointed
 * at a closed port fails its one message after message.timeout.ms, and
 * nothing else wakes the loop, so the report arrives only if kq serves the
 * queue by itself. A guard timer ends a loop that would wait for ever; the
 * report must come before it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <string.h>

#include "loop/kq.h"

enum { GUARD_MS = 10000 }; /* the report is due after 300 ms */

typedef struct {
    rd_kafka_t *rk;
    gw_kq kq;
    uv_timer_t guard;
    uv_loop_t *loop;
    int reports;
    uint64_t reported_ms; /* loop time of the report */
    bool guard_fired;
} fixture;

static void on_report(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)m;
    fixture *f = opaque;
    f->reports++;
    f->reported_ms = uv_now(f->loop);
    gw_kq_close(&f->kq);
    uv_close((uv_handle_t *)&f->guard, NULL);
}

static bool serve(void *ud)
{
    fixture *f = ud;
    rd_kafka_poll(f->rk, 0);
    return false;
}

static bool pending(void *ud)
{
    fixture *f = ud;
    return rd_kafka_outq_len(f->rk) > 0;
}

static void on_guard(uv_timer_t *t)
{
    fixture *f = t->data;
    f->guard_fired = true;
    gw_kq_close(&f->kq);
    uv_close((uv_handle_t *)&f->guard, NULL);
}

static rd_kafka_t *unreachable_producer(fixture *f)
{
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(c, "bootstrap.servers", "127.0.0.1:1", err, sizeof err),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(c, "message.timeout.ms", "300", err, sizeof err),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(c, "log_level", "0", err, sizeof err), RD_KAFKA_CONF_OK);
    rd_kafka_conf_set_dr_msg_cb(c, on_report);
    rd_kafka_conf_set_opaque(c, f);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    assert_non_null(rk);
    return rk;
}

/* One message that fails after 300 ms; the loop runs until its report was
 * served or the 10 s guard fired. */
static void run(bool lazy)
{
    fixture f;
    memset(&f, 0, sizeof f);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    f.loop = &loop;
    f.rk = unreachable_producer(&f);
    rd_kafka_queue_t *q = rd_kafka_queue_get_main(f.rk);
    gw_err e = lazy ? gw_kq_init_lazy(&f.kq, &loop, q, serve, pending, 20, &f)
                    : gw_kq_init(&f.kq, &loop, q, serve, &f);
    assert_int_equal(e, GW_OK);
    uv_timer_init(&loop, &f.guard);
    f.guard.data = &f;
    uv_timer_start(&f.guard, on_guard, GUARD_MS, 0);
    assert_int_equal(
        rd_kafka_producev(f.rk, RD_KAFKA_V_TOPIC("t"), RD_KAFKA_V_VALUE("v", 1), RD_KAFKA_V_END),
        RD_KAFKA_RESP_ERR_NO_ERROR);
    uint64_t guard_due_ms = uv_now(&loop) + GUARD_MS;
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_false(f.guard_fired);
    assert_int_equal(f.reports, 1);
    /* served by kq, not by the guard's wake-up (after which the loop's
     * check phase would serve it too) */
    assert_true(f.reported_ms < guard_due_ms);
    assert_int_equal(rd_kafka_outq_len(f.rk), 0);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(f.rk);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_pipe_mode_serves_a_report(void **state)
{
    (void)state;
    run(false);
}

static void test_lazy_mode_serves_a_report_on_an_idle_loop(void **state)
{
    (void)state;
    run(true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipe_mode_serves_a_report),
        cmocka_unit_test(test_lazy_mode_serves_a_report_on_an_idle_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
