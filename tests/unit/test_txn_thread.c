/* Tests for kafka/txn_thread and the transaction calls of kafka/producer
 * against librdkafka's mock cluster (in-process, no broker): an end handed
 * to the thread comes back on the loop thread through the uv_async; a
 * commit whose EndTxn answer is late is resumed after its call timed out
 * (not declared fatal) while its deadline allows; one still retriable at
 * the deadline is fatal; gw_txn_thread_wait blocks until the outcome. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "kafka/producer.h"
#include "kafka/txn_thread.h"

enum { API_END_TXN = 26 }; /* Kafka protocol ApiKey of EndTxn */

typedef struct {
    rd_kafka_t *owner; /* the handle that owns the mock cluster */
    rd_kafka_mock_cluster_t *mc;
    gw_producer *p;
    int reports, failed_reports;
    int done;
    gw_txn_result result;
    bool on_loop_thread;
    pthread_t loop_thread;
} fixture;

static void on_report(void *ud, const rd_kafka_message_t *m, void *opaque)
{
    fixture *f = ud;
    (void)opaque;
    f->reports++;
    f->failed_reports += m->err != RD_KAFKA_RESP_ERR_NO_ERROR;
}

static void on_done(void *ud, gw_txn_result r, const rd_kafka_topic_partition_list_t *offsets)
{
    fixture *f = ud;
    (void)offsets;
    f->done++;
    f->result = r;
    f->on_loop_thread = pthread_equal(pthread_self(), f->loop_thread);
}

static int setup(void **state)
{
    static fixture f;
    memset(&f, 0, sizeof f);
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    f.owner = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    assert_non_null(f.owner);
    f.mc = rd_kafka_mock_cluster_new(f.owner, 1);
    assert_non_null(f.mc);
    assert_int_equal(rd_kafka_mock_topic_create(f.mc, "out", 1, 1), 0);
    static char id[64];
    static int seq;
    snprintf(id, sizeof id, "txn-test-%d", ++seq);
    static gw_kafka_config k;
    k = (gw_kafka_config){.client_id = "t", .linger_ms = 0, .transaction_timeout_ms = 60000};
    gw_producer_hooks h = {.ud = &f, .delivered = on_report};
    assert_int_equal(gw_producer_new(&k, rd_kafka_mock_cluster_bootstraps(f.mc), id, &h, &f.p),
                     GW_OK);
    assert_true(gw_producer_transactional(f.p));
    f.loop_thread = pthread_self();
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    gw_producer_free(f->p);
    rd_kafka_mock_cluster_destroy(f->mc);
    rd_kafka_destroy(f->owner);
    return 0;
}

/* One output in the open transaction, acknowledged (its report served by
 * gw_producer_poll, as the loop does: delivery reports are events). */
static void produce_one(fixture *f)
{
    int want = f->reports + 1;
    assert_int_equal(gw_producer_send(f->p, "out", "k", 1, "v", 1, NULL, f), GW_OK);
    assert_true(gw_producer_txn_open(f->p));
    for (int i = 0; i < 1000 && f->reports < want; i++) {
        gw_producer_poll(f->p);
        if (f->reports < want)
            gw_producer_flush(f->p, 10);
    }
    assert_int_equal(f->reports, want);
    assert_int_equal(f->failed_reports, 0);
}

static int64_t in_ms(int ms)
{
    return gw_producer_mono_ns() + (int64_t)ms * 1000000;
}

static void test_commit_through_the_thread(void **state)
{
    fixture *f = *state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    gw_txn_thread *t = NULL;
    assert_int_equal(gw_txn_thread_new(&loop, f->p, on_done, f, &t), GW_OK);
    assert_false(gw_txn_thread_busy(t));

    produce_one(f);
    assert_true(gw_producer_txn_prepare(f->p, false));
    gw_producer_hold(f->p);
    assert_true(gw_txn_thread_submit(t, true, NULL, NULL, in_ms(30000)));
    assert_true(gw_txn_thread_busy(t));
    assert_false(gw_txn_thread_submit(t, true, NULL, NULL, in_ms(30000))); /* one at a time */
    /* held meanwhile: nothing reaches librdkafka during the commit */
    assert_int_equal(gw_producer_send(f->p, "out", "k", 1, "held", 4, NULL, f), GW_OK);
    assert_int_equal(gw_producer_held(f->p, NULL), 1);
    for (int i = 0; i < 3000 && f->done == 0; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        uv_sleep(1);
    }
    assert_int_equal(f->done, 1);
    assert_int_equal(f->result, GW_TXN_OK);
    assert_true(f->on_loop_thread); /* handed back through the uv_async */
    assert_false(gw_txn_thread_busy(t));
    gw_producer_txn_settle(f->p, f->result);
    assert_false(gw_producer_txn_open(f->p));

    /* the held output opens the next transaction; gw_txn_thread_wait
     * blocks until that one is committed too */
    gw_producer_release(f->p, NULL, NULL);
    assert_true(gw_producer_txn_open(f->p));
    for (int i = 0; i < 1000 && f->reports < 2; i++)
        gw_producer_flush(f->p, 10);
    assert_int_equal(f->reports, 2);
    assert_true(gw_producer_txn_prepare(f->p, false));
    assert_true(gw_txn_thread_submit(t, true, NULL, NULL, in_ms(30000)));
    assert_true(gw_txn_thread_wait(t, 30000));
    assert_int_equal(f->done, 2);
    assert_int_equal(f->result, GW_TXN_OK);
    assert_true(f->on_loop_thread);

    gw_txn_thread_close(t);
    uv_run(&loop, UV_RUN_DEFAULT); /* the async's close */
    gw_txn_thread_free(t);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* The EndTxn answer comes 2.5 s late: each 1 s call times out (retriable)
 * and the commit is resumed until it lands. */
static void test_late_commit_is_resumed(void **state)
{
    fixture *f = *state;
    produce_one(f);
    assert_true(gw_producer_txn_prepare(f->p, false));
    rd_kafka_mock_broker_push_request_error_rtts(f->mc, 1, API_END_TXN, 1,
                                                 RD_KAFKA_RESP_ERR_NO_ERROR, 2500);
    _Atomic int64_t deadline;
    atomic_init(&deadline, in_ms(20000));
    int64_t t0 = gw_producer_mono_ns();
    assert_int_equal(gw_producer_txn_calls(f->p, NULL, NULL, true, &deadline, 1000), GW_TXN_OK);
    assert_true(gw_producer_mono_ns() - t0 >= 2000 * 1000000LL); /* it did wait for it */
    gw_producer_txn_settle(f->p, GW_TXN_OK);
    assert_false(gw_producer_txn_dead(f->p));
}

/* Still unanswered at the deadline: a commit in progress can only be
 * resumed, never aborted, so it is fatal. */
static void test_commit_past_its_deadline_is_fatal(void **state)
{
    fixture *f = *state;
    produce_one(f);
    assert_true(gw_producer_txn_prepare(f->p, false));
    rd_kafka_mock_broker_push_request_error_rtts(f->mc, 1, API_END_TXN, 1,
                                                 RD_KAFKA_RESP_ERR_NO_ERROR, 4000);
    _Atomic int64_t deadline;
    atomic_init(&deadline, in_ms(1500));
    assert_int_equal(gw_producer_txn_calls(f->p, NULL, NULL, true, &deadline, 1000), GW_TXN_FATAL);
    gw_producer_txn_settle(f->p, GW_TXN_FATAL);
    assert_true(gw_producer_txn_dead(f->p));
    assert_false(gw_producer_txn_prepare(f->p, true)); /* no more calls */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commit_through_the_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_commit_is_resumed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_past_its_deadline_is_fatal, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
