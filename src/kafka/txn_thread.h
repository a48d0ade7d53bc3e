/*
 * txn_thread: the thread that runs a transactional producer's blocking
 * calls (gw_producer_txn_calls: send offsets, commit, abort), so that the
 * loop stays live while a transaction ends, through a broker outage too
 * (docs/worker.md, "Exactly-once outputs").
 *
 * One end at a time: the loop submits it (gw_txn_thread_submit), the thread
 * runs it and hands the outcome back through a uv_async, and the loop's
 * done callback applies it. The thread touches only what a submission hands
 * it (the producer's librdkafka handle, the offsets, the group metadata,
 * the deadline) and the hand-off fields under the mutex; every other piece
 * of state stays the loop's. The transactional API is thereby serialized:
 * nothing but this thread makes those calls once it exists.
 *
 * Lifetime: gw_txn_thread_new() on the loop; gw_txn_thread_close() before
 * the loop ends (closes the uv_async; a later outcome is dropped, its
 * callback never runs); gw_txn_thread_free() after the loop ended and
 * before the producer is freed (joins the thread, bringing its deadline
 * forward so it stops retrying).
 */
#ifndef GW_KAFKA_TXN_THREAD_H
#define GW_KAFKA_TXN_THREAD_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/err.h"
#include "kafka/producer.h"

typedef struct gw_txn_thread gw_txn_thread;

/* The outcome of one end, on the loop thread. offsets are the ones
 * submitted (NULL when none), borrowed for the call. */
typedef void (*gw_txn_done_fn)(void *ud, gw_txn_result r,
                               const rd_kafka_topic_partition_list_t *offsets);

gw_err gw_txn_thread_new(uv_loop_t *loop, gw_producer *prod, gw_txn_done_fn done, void *ud,
                         gw_txn_thread **out);
/* Hand an end to the thread (commit with offsets and cgmd, both taken, may
 * be NULL; or abort), retried until deadline_ns (gw_producer_mono_ns
 * clock). False when one is still under way (nothing taken then). */
bool gw_txn_thread_submit(gw_txn_thread *t, bool commit, rd_kafka_topic_partition_list_t *offsets,
                          rd_kafka_consumer_group_metadata_t *cgmd, int64_t deadline_ns);
/* An end was submitted and its outcome not yet applied. */
bool gw_txn_thread_busy(const gw_txn_thread *t);
/* Bring the deadline of the end under way forward to deadline_ns (never
 * later): it stops retrying after its current call. */
void gw_txn_thread_hurry(gw_txn_thread *t, int64_t deadline_ns);
/*
 * Block the loop until the end under way is over (its done callback then
 * runs from here) or timeout_ms passed (false, still busy). The producer's
 * delivery reports are served meanwhile (an abort waits for them).
 */
bool gw_txn_thread_wait(gw_txn_thread *t, int timeout_ms);
/* Close the uv_async (loop thread; before the loop ends). NULL is ok. */
void gw_txn_thread_close(gw_txn_thread *t);
/* Join and free (after the loop ended). NULL is ok. */
void gw_txn_thread_free(gw_txn_thread *t);

#endif
