/*
 * consumer: the worker's Kafka consumer. It owns the librdkafka consumer
 * handle and its configuration (eager roundrobin group, manual offset store,
 * auto-commit, the prefetch limits), one local queue per priority tier that
 * every assigned partition's fetch queue is forwarded to, and the per-tier
 * partition table with each partition's offset tracker (kafka/offsets.h).
 *
 * It does the librdkafka side of intake: assignment and revocation (fresh
 * trackers, generation bumps, queue forwarding, the synchronous commit on
 * revoke), pausing and resuming one partition, storing a partition's
 * committable offset, seeking back, the final commit and close. What to take
 * and when to pause is the worker's (worker/worker.c); it is told through
 * gw_consumer_hooks.
 *
 * Usage: gw_consumer_new(), then gw_consumer_subscribe(); join
 * gw_consumer_queue() and every gw_consumer_tier_queue() to the loop
 * (loop/kq.h) and poll the first with gw_consumer_poll() (rebalance
 * callbacks run from there), consume the others with
 * rd_kafka_consume_queue(). At shutdown gw_consumer_commit_sync(), close the
 * kq adapters, gw_consumer_close(); gw_consumer_free() after the loop ended.
 * Loop thread only: nothing here is thread-safe. Every hook runs from
 * gw_consumer_poll() (or from gw_consumer_close(), for the last revoke).
 *
 * Invariants:
 *  - A partition's committable offset is stored (rd_kafka_offsets_store) only
 *    from its tracker (gw_consumer_store), so the group never commits past
 *    unfinished work; the auto-committer sends what is stored. Within one
 *    generation the stored offset never moves backwards.
 *  - p->paused mirrors what librdkafka was told for an assigned partition;
 *    an unassigned partition is never marked paused.
 *
 * Transactional mode (kafka.transactional): nothing is stored or committed
 * by the consumer (enable.auto.commit=false); the worker reads the
 * committable offsets (gw_consumer_txn_offsets) and commits them in its
 * producer's transaction, and the revoke calls hooks.revoking instead of
 * committing. gw_consumer_rewind() sends every assigned partition back to
 * its last committed offset after an aborted transaction.
 */
#ifndef GW_KAFKA_CONSUMER_H
#define GW_KAFKA_CONSUMER_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "config/config.h"
#include "kafka/offsets.h"
#include "worker/policy.h"

/*
 * One assigned (or once assigned) partition of a tier topic. Never freed
 * before the consumer: jobs keep a pointer; `generation` changes on every
 * (re)assignment, so a job of an older assignment never touches the tracker
 * of the new one. The consumer sets every field but runahead_full (the
 * worker's); the worker tracks and completes offsets in `offs`.
 */
typedef struct gw_part {
    gw_tier tier;
    int32_t partition;
    bool assigned;
    bool paused;         /* what we last told librdkafka */
    bool runahead_full;  /* paused because run-ahead reached the cap */
    uint32_t generation; /* bumped on assign and on revoke */
    gw_offsets offs;
    bool offs_ready;
    /* Transactional only: offsets taken and not yet published (a job
     * publishes when it is the lowest, so what a transaction holds is
     * always a prefix of the partition); same window as offs. */
    gw_offsets pubs;
    bool pubs_ready;
    int64_t stored;        /* last offset handed to rd_kafka_offsets_store; -1 none */
    int64_t carry;         /* finished up to here when its handle was given up; -1 none */
    int64_t txn_committed; /* transactional: last offset committed in a transaction during
                            * this assignment; -1 none yet */
} gw_part;

typedef struct {
    gw_part **items; /* indexed by partition id; NULL where never assigned */
    int32_t count;
} gw_part_table;

typedef struct gw_consumer gw_consumer;

typedef struct {
    void *ud; /* passed to every hook */
    /* After an assignment was applied (trackers fresh, queues forwarded),
     * before it is logged: set each assigned partition's pause state. */
    void (*assigned)(void *ud);
    /* librdkafka's error callback reported a fatal error (already logged). */
    void (*fatal)(void *ud);
    /* A statistics JSON (from gw_consumer_poll); NULL: no statistics.
     * librdkafka frees json after the call. */
    void (*stats)(void *ud, const char *json, size_t len);
    int stats_interval_ms; /* statistics.interval.ms when stats is set */
    /* Transactional mode: the assigned partitions are about to be given up
     * (lost: the group already gave them to another member). The worker ends
     * its open transaction here; partitions are still assigned. */
    void (*revoking)(void *ud, bool lost);
} gw_consumer_hooks;

/*
 * k and tier_topics (one topic per tier) must outlive the consumer;
 * bootstrap is copied. The tracker window is twice
 * k->max_partition_runahead. max_record_bytes: the largest record the tier
 * topics accept (gw_kafka_max_message_bytes; <= 0 unknown): the receive
 * limit is raised to fetch one. Logs and returns GW_E_CONFIG when librdkafka
 * rejects the configuration.
 */
gw_err gw_consumer_new(const gw_kafka_config *k, const char *bootstrap,
                       const char *const tier_topics[GW_TIER__COUNT], int64_t max_record_bytes,
                       const gw_consumer_hooks *hooks, gw_consumer **out);

/*
 * The largest max.message.bytes of these topics (DescribeConfigs through any
 * client handle rk, waiting at most timeout_ms; the broker's default where a
 * topic sets none); -1 when unknown (logged as topic_limits_unknown).
 */
int64_t gw_kafka_max_message_bytes(rd_kafka_t *rk, const char *const *topics, size_t n,
                                   int timeout_ms);

/*
 * Replacing the librdkafka handle (librdkafka 2.0.2 makes a fenced static
 * member's handle fatally broken; a record over the receive limit needs a
 * handle with a larger one). Two steps, with the caller's queue adapters
 * closed in between: gw_consumer_give_up() takes every assigned partition as
 * lost (generation bumped, so finishing jobs leave it alone) and keeps what
 * its tracker had finished as its carry; gw_consumer_recreate() destroys the
 * old handle and its queues without closing it, makes a new one with the
 * same configuration and subscribes. A partition assigned again resumes from
 * its carry when that is past the committed offset (logged offset_carried).
 * The partition table survives: jobs keep their gw_part pointers.
 */
void gw_consumer_give_up(gw_consumer *c);
gw_err gw_consumer_recreate(gw_consumer *c);
/* The record size the next handle must fetch: bytes when larger than the
 * current one, else the current one doubled (at least 16 MiB, at most 1 GiB). */
void gw_consumer_set_max_record_bytes(gw_consumer *c, int64_t bytes);
/* The handle's fatal error is FENCED_INSTANCE_ID (a static member fenced). */
bool gw_consumer_fenced(gw_consumer *c);
/* A fetch failed on receive.message.max.bytes since the handle was made. */
bool gw_consumer_record_too_large(const gw_consumer *c);
/* A broker refused the consumer's credentials (SASL authentication failed,
 * librdkafka's _AUTHENTICATION error; it retries by itself) since the last
 * assignment. */
bool gw_consumer_auth_failed(const gw_consumer *c);
/* Subscribe to the tier topics (logs subscribe_failed; GW_E_IO). */
gw_err gw_consumer_subscribe(gw_consumer *c);

/* The consumer queue (the main queue is forwarded to it): rebalances,
 * errors, statistics and the messages fetched before their partition was
 * forwarded. Owned by the consumer. */
rd_kafka_queue_t *gw_consumer_queue(gw_consumer *c);
/* Tier t's local queue (NULL when c is NULL). Owned by the consumer. */
rd_kafka_queue_t *gw_consumer_tier_queue(gw_consumer *c, gw_tier t);
/* Next event or message of the consumer queue, without waiting; NULL when
 * empty. Runs the rebalance, error and statistics callbacks. */
rd_kafka_message_t *gw_consumer_poll(gw_consumer *c);
/* rd_kafka_fatal_error() of the handle. */
rd_kafka_resp_err_t gw_consumer_fatal_error(gw_consumer *c, char *reason, size_t size);

/* The tier whose topic this is, or -1. */
int gw_consumer_tier_of(const gw_consumer *c, const char *topic);
/* Tier t's partition table (an empty one when c is NULL). */
const gw_part_table *gw_consumer_parts(const gw_consumer *c, gw_tier t);
/* A partition that is or was assigned; NULL when never assigned. */
gw_part *gw_consumer_part(gw_consumer *c, gw_tier t, int32_t partition);
const char *gw_consumer_topic(const gw_consumer *c, gw_tier t);

/* Pause or resume an assigned partition. True when librdkafka was told (the
 * state changed); false when unassigned, already so, or librdkafka failed. */
bool gw_consumer_set_paused(gw_consumer *c, gw_part *p, bool pause);
/* Store the tracker's committable offset when it moved. */
void gw_consumer_store(gw_consumer *c, gw_part *p);
/* gw_consumer_store for every partition. */
void gw_consumer_store_all(gw_consumer *c);
/* Seek p back to offset (asynchronous) so a message that could not be taken
 * is fetched again later; logs seek_failed. */
void gw_consumer_seek(gw_consumer *c, gw_part *p, int64_t offset);
/* Store every partition's committable offset and commit synchronously (it
 * blocks: only on revoke and at exit). RD_KAFKA_RESP_ERR__NO_OFFSET (nothing
 * to commit) is reported as no error. Does nothing in transactional mode. */
rd_kafka_resp_err_t gw_consumer_commit_sync(gw_consumer *c);
/* Transactional mode: the committable offset of every assigned partition
 * whose offset moved since its last transaction (NULL when none), for
 * rd_kafka_send_offsets_to_transaction; the caller destroys it. */
rd_kafka_topic_partition_list_t *gw_consumer_txn_offsets(gw_consumer *c);
/* Those offsets were committed: remember them per partition (those still
 * assigned). */
void gw_consumer_txn_committed(gw_consumer *c, const rd_kafka_topic_partition_list_t *offsets);
/* The group metadata the transaction's offsets are fenced with (KIP-447:
 * a member of an older generation cannot commit); the caller destroys it. */
rd_kafka_consumer_group_metadata_t *gw_consumer_group_metadata(gw_consumer *c);
/*
 * After an aborted transaction: every assigned partition gets a fresh
 * tracker and a new generation (jobs in flight no longer touch it) and is
 * sought back to its last committed offset (the transaction's, else the
 * group's, read with rd_kafka_committed: blocks up to 5 s; the beginning
 * when the group has none), so what the aborted transaction held is served
 * again; hooks.assigned runs after (pause states). Logs txn_rewind. GW_E_IO
 * (logged txn_rewind_failed, nothing sought) when the group's offsets could
 * not be read: the caller must then commit nothing more.
 */
gw_err gw_consumer_rewind(gw_consumer *c);
/* rd_kafka_consumer_close(): leaves the group (the revoke runs from here). */
void gw_consumer_close(gw_consumer *c);
/* Destroys the queues and the handle, then the partition table. NULL is ok. */
void gw_consumer_free(gw_consumer *c);

#endif
