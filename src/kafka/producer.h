/*
 * producer: the worker's Kafka producer. It owns the librdkafka producer
 * handle and its configuration (idempotent, acks=all, linger, compression,
 * produce requests in flight, large batches), hands every delivery report
 * to a hook with the message's opaque, and produces: one message with
 * headers (gw_producer_send), a failed message again
 * (gw_producer_republish). gw_producer_dlq_headers builds the header set of
 * a DLQ record and says how much of the message fits.
 *
 * Usage: gw_producer_new(); join gw_producer_queue() to the loop (loop/kq.h)
 * and call gw_producer_poll() when it is readable (delivery reports run from
 * there); at shutdown wait for gw_producer_outq_len() to reach 0;
 * gw_producer_free() purges what is left. Loop thread only, but for
 * gw_producer_txn_calls().
 *
 * Transactions (kafka.transactional; docs/worker.md, "Exactly-once
 * outputs"): made with a transactional.id, the producer opens a transaction
 * at the first message sent after the last commit or abort
 * (rd_kafka_begin_transaction, local), and the owner ends it with
 * gw_producer_txn_calls() (the consumed offsets go in the same
 * transaction), which blocks and is meant for a thread of its own
 * (kafka/txn_thread.h): it touches only the librdkafka handle. Delivery
 * reports of a transactional producer are events on the main queue
 * (served by gw_producer_poll() on the loop), so librdkafka's flush inside
 * commit and abort waits for the loop instead of running callbacks on the
 * calling thread. While an end is under way the owner holds what is sent
 * (gw_producer_hold(): librdkafka refuses a produce during a commit, and
 * the offsets must cover every output the commit makes visible) and
 * releases it afterwards, in order, into the next transaction.
 */
#ifndef GW_KAFKA_PRODUCER_H
#define GW_KAFKA_PRODUCER_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "config/config.h"

typedef struct gw_producer gw_producer;

typedef struct {
    void *ud; /* passed to every hook */
    /* One delivery report (from gw_producer_poll); msg_opaque is the opaque
     * the message was produced with. m is librdkafka's until return. */
    void (*delivered)(void *ud, const rd_kafka_message_t *m, void *msg_opaque);
    /* librdkafka's error callback reported a fatal error (already logged). */
    void (*fatal)(void *ud);
    /* A deferred message (gw_producer_defer) that the producer refused when
     * its time came (librdkafka holds the topic as missing or not
     * authorised, its queue is full: logged produce_failed) with err: no
     * report will come for it; the owner settles it. Key and value live
     * during the call only. NULL: retried a second later (without end). */
    void (*refused)(void *ud, void *msg_opaque, rd_kafka_resp_err_t err, const char *topic,
                    const void *key, size_t key_len, const void *val, size_t len);
} gw_producer_hooks;

/* k must outlive the producer; bootstrap is used during the call only.
 * Logs and returns GW_E_CONFIG when librdkafka rejects the configuration.
 * transactional_id non-NULL makes a transactional producer (with
 * k->transaction_timeout_ms); its rd_kafka_init_transactions() runs here and
 * blocks up to 30 s (it fences and aborts what an earlier producer with the
 * same id left open); GW_E_IO (logged txn_init_failed) when it fails. */
gw_err gw_producer_new(const gw_kafka_config *k, const char *bootstrap,
                       const char *transactional_id, const gw_producer_hooks *hooks,
                       gw_producer **out);

/*
 * Produce one message (key, value copied: RD_KAFKA_MSG_F_COPY); its delivery
 * report reaches hooks.delivered with opaque. headers may be NULL; they are
 * the producer's on success and destroyed on failure. On failure the error is
 * logged (produce_failed), kept for gw_producer_refusal() and GW_E_IO
 * returned: no report will come.
 */
gw_err gw_producer_send(gw_producer *p, const char *topic, const void *key, size_t key_len,
                        const void *val, size_t len, rd_kafka_headers_t *headers, void *opaque);
/* Why the last gw_producer_send that failed was refused
 * (RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, TOPIC_AUTHORIZATION_FAILED once
 * librdkafka holds the topic as not authorised, __QUEUE_FULL, ...);
 * RD_KAFKA_RESP_ERR_NO_ERROR when none was. */
rd_kafka_resp_err_t gw_producer_refusal(const gw_producer *p);
/*
 * An output error no retry of the same message can mend: too large, an
 * invalid or missing topic, a topic the client is not authorised to write
 * (an operator must grant the right first; librdkafka has no retry of its
 * own for it), a fatal producer. The worker replaces such an output at once
 * instead of producing it again (docs/worker.md, "At-least-once").
 */
bool gw_producer_err_permanent(rd_kafka_resp_err_t err);
/* Produce a reported message again to its topic: a copy of its headers (an
 * empty set when it had none), key and value. As gw_producer_send. */
gw_err gw_producer_republish(gw_producer *p, const rd_kafka_message_t *m, void *opaque);

/* A consumed message, as the DLQ record needs it. */
typedef struct {
    rd_kafka_headers_t *headers; /* the message's own; may be NULL */
    const char *topic;
    int32_t partition;
    int64_t offset;
    size_t len, key_len; /* of the payload and the key */
} gw_dlq_source;
/*
 * The headers of the DLQ record of consumed message m that failed with err: a
 * copy of m's headers, then error_code, error_name, error_message,
 * source_topic, source_partition, source_offset. The record must fit the
 * producer's message limit whatever came in (a message near the source
 * topic's limit plus these headers would not): when m's payload is longer
 * than max_payload or its key longer than max_key, both are cut to those
 * limits (*len, *key_len: the bytes of payload and key to send) and the
 * headers say so (payload_truncated = true, payload_size = m->len).
 */
rd_kafka_headers_t *gw_producer_dlq_headers(const gw_dlq_source *m, gw_err err, size_t max_payload,
                                            size_t max_key, size_t *len, size_t *key_len);
/*
 * Produce reported message m again at due_ms (wall clock, the caller's):
 * topic, key, value and headers are copied now and sent by the first
 * gw_producer_tick() at or after due_ms, with opaque. A send that fails
 * locally goes to hooks.refused (or, without that hook, is tried again a
 * second later). Such messages count in
 * gw_producer_outq_len(); gw_producer_free() drops them without a report.
 */
gw_err gw_producer_defer(gw_producer *p, const rd_kafka_message_t *m, void *opaque, int64_t due_ms);
/* Send every deferred message that is due. */
void gw_producer_tick(gw_producer *p, int64_t now_ms);
/* Deferred messages not yet sent (0 for NULL). */
size_t gw_producer_deferred(const gw_producer *p);
/* The producer hit a fatal error (rd_kafka_fatal_error): nothing more can
 * be delivered through it. */
bool gw_producer_fatal(gw_producer *p);
/*
 * Hold what gw_producer_send is given from now on: copied (headers taken),
 * not produced, until gw_producer_release(). gw_producer_outq_len() counts
 * them; gw_producer_inflight() does not.
 */
void gw_producer_hold(gw_producer *p);
/* Messages held (0 for NULL); *bytes (may be NULL) their key and value bytes. */
size_t gw_producer_held(const gw_producer *p, size_t *bytes);
/*
 * Stop holding and send the held messages in the order they were given.
 * keep (NULL: all) decides per message opaque: false drops the message and
 * the caller settles its opaque there (no report will come). A send that
 * fails goes to hooks.refused, as for a deferred message.
 */
void gw_producer_release(gw_producer *p, bool (*keep)(void *ud, void *opaque), void *ud);
/* Serve delivery reports and errors without waiting. */
void gw_producer_poll(gw_producer *p);
/* The producer's main queue (delivery reports). Owned by the producer. */
rd_kafka_queue_t *gw_producer_queue(gw_producer *p);
/* Messages not yet acknowledged or failed (rd_kafka_outq_len), deferred
 * ones included. */
int gw_producer_outq_len(gw_producer *p);
/* Messages produced and not yet reported (rd_kafka_outq_len): no held or
 * deferred ones. */
int gw_producer_inflight(gw_producer *p);
/* The librdkafka handle, for callers not yet on gw_producer_send. */
rd_kafka_t *gw_producer_handle(gw_producer *p);
/* ---- transactions ---- */

typedef enum {
    GW_TXN_OK,      /* committed (or nothing to commit) */
    GW_TXN_ABORTED, /* an abortable error: the transaction was aborted */
    GW_TXN_FATAL,   /* fenced or otherwise unusable: the producer must go */
} gw_txn_result;

/* Made with a transactional_id. */
bool gw_producer_transactional(const gw_producer *p);
/* A transaction is open (something was sent since the last commit/abort). */
bool gw_producer_txn_open(const gw_producer *p);
/* Wait up to timeout_ms for every message in flight to be acknowledged or
 * failed; their delivery reports are served from this call. */
void gw_producer_flush(gw_producer *p, int timeout_ms);

/* The bound of one blocking transaction call the worker makes. */
enum { GW_PRODUCER_TXN_CALL_MS = 10000 };

/* Owner's thread, before handing an end to gw_producer_txn_calls(): opens
 * a transaction when only offsets are to be committed. False: nothing to
 * end (none open and no offsets), or the producer is dead. */
bool gw_producer_txn_prepare(gw_producer *p, bool any_offsets);
/*
 * The blocking calls that end the open transaction; any thread, never two
 * at once, nothing produced meanwhile (gw_producer_hold). commit: offsets
 * (NULL or empty: none) are sent to the group of cgmd
 * (rd_kafka_send_offsets_to_transaction), then the transaction is
 * committed; !commit: aborted. Retriable errors (timeouts: a broker away)
 * are retried, the call resumed, each call at most call_max_ms,
 * until *deadline_ns (CLOCK_MONOTONIC, gw_producer_mono_ns; re-read before
 * every call, so another thread may bring it forward). An abortable error
 * aborts (GW_TXN_ABORTED, or GW_TXN_FATAL when even the abort fails); a
 * fatal error, or a commit still retriable at the deadline (it can be
 * resumed, never aborted), is GW_TXN_FATAL. Every failure is logged
 * (txn_failed). Touches nothing of p but the librdkafka handle: the owner
 * applies the outcome with gw_producer_txn_settle().
 */
gw_txn_result gw_producer_txn_calls(gw_producer *p, const rd_kafka_topic_partition_list_t *offsets,
                                    const rd_kafka_consumer_group_metadata_t *cgmd, bool commit,
                                    _Atomic int64_t *deadline_ns, int call_max_ms);
/* Owner's thread: the outcome of gw_producer_txn_calls (no transaction
 * open after OK or ABORTED; FATAL makes the producer dead). */
void gw_producer_txn_settle(gw_producer *p, gw_txn_result r);
/* CLOCK_MONOTONIC in ns, the clock of the deadlines above. */
int64_t gw_producer_mono_ns(void);
/* A transaction call returned GW_TXN_FATAL: the producer makes no more
 * transactional calls (gw_producer_txn_prepare is false) and sends nothing
 * more; its open transaction is ended by the broker (transaction timeout) or
 * by the next producer with the same transactional.id. */
bool gw_producer_txn_dead(const gw_producer *p);
/* Make it so (the owner can no longer tell which offsets to commit). */
void gw_producer_txn_give_up(gw_producer *p);

/* Purges what is queued or in flight (no report is served after), destroys
 * the handle. NULL is ok. */
void gw_producer_free(gw_producer *p);

#endif
