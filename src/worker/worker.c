/*
 * worker: intake by priority tier, capacity, the live job list and graceful
 * shutdown, all on one libuv loop. The Kafka clients are kafka/consumer.h
 * (assignment, pause/resume, offset store, seek, commit) and
 * kafka/producer.h (produce, delivery reports). See worker.h and
 * docs/worker.md.
 *
 * Invariants:
 *  - in_flight[t] counts live jobs taken from tier t (revoked ones included);
 *    job_count is their sum.
 *  - A partition's committable offset is stored (rd_kafka_offsets_store) only
 *    from its tracker (gw_consumer_store), so the group never commits past
 *    unfinished work; the auto-committer sends what is stored.
 *  - p->paused mirrors what librdkafka was told for an assigned partition
 *    (gw_consumer_set_paused is the only writer besides rebalances).
 *  - A tracker's run-ahead never exceeds its window (gw_offsets_capacity);
 *    intake pauses the partition at kafka.max_partition_runahead, below it.
 *  - kafka.transactional: offsets are committed only in the producer's
 *    transaction, with the outputs of the work they cover (txn_try_commit,
 *    txn_end_sync); a job whose partition's generation moved on produces
 *    nothing (gw_worker_output_muted), so no output is committed twice.
 *  - kafka.transactional: only the transaction thread (kafka/txn_thread.h)
 *    makes the blocking transaction calls; while one runs (txn_phase not
 *    IDLE) the producer holds new outputs, released on the loop after it.
 */
#include "worker/worker.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "common/log.h"
#include "kafka/txn_thread.h"
#include "worker/pipeline.h"
#include "worker/register_outputs.h"
#include "worker/worker_private.h"
#include "worker/worker_shared.h"

enum {
    INTAKE_BUDGET = 512,
    GW_FENCE_WINDOW_MIN_MS = 30000, /* fenced again within this: another process has the id */
    GW_TOPIC_DESCRIBE_MS = 5000,
    GW_TXN_STUCK_MS = GW_OBSERVE_TXN_STUCK_MS, /* an end this long: txn_commit_deferred */
    /* held outputs (a commit under way) past which intake stops */
    GW_TXN_HELD_MAX = 16384,
    GW_TXN_HELD_MAX_BYTES = 64 << 20,
    /* a delivery report waits at most this for the loop to wake by itself:
     * it frees a slot and completes an offset, neither urgent by a few ms;
     * above 100 req/s the loop wakes for the next request sooner */
    GW_DR_DELAY_MS = 20,
};

static int64_t wall_clock_ms(void *ud)
{
    (void)ud;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

int64_t gw_worker_now_ms(const gw_worker *w)
{
    return w->clock(w->clock_ud);
}

/* ---- partitions and capacity ------------------------------------------------- */

static void set_paused(gw_worker *w, gw_part *p, bool pause)
{
    if (!gw_consumer_set_paused(w->consumer, p, pause))
        return;
    if (pause)
        w->n.pauses++;
    else
        w->n.resumes++;
}

static bool part_should_pause(const gw_worker *w, const gw_part *p)
{
    return w->run != GW_RUN_RUNNING || p->runahead_full;
}

static void sync_tier(gw_worker *w, gw_tier t)
{
    const gw_part_table *tb = gw_consumer_parts(w->consumer, t);
    for (int32_t i = 0; i < tb->count; i++)
        if (tb->items[i] != NULL && tb->items[i]->assigned)
            set_paused(w, tb->items[i], part_should_pause(w, tb->items[i]));
}

/* Does the low tier have work in flight or messages waiting locally? */
static bool low_competing(gw_worker *w)
{
    return w->in_flight[GW_TIER_LOW] > 0 ||
           rd_kafka_queue_length(gw_consumer_tier_queue(w->consumer, GW_TIER_LOW)) > 0;
}

static void apply_capacity(gw_worker *w)
{
    gw_capacity_state st;
    memcpy(st.in_flight, w->in_flight, sizeof st.in_flight);
    memcpy(st.was_open, w->tier_open, sizeof st.was_open);
    st.low_competing = low_competing(w);
    bool open[GW_TIER__COUNT];
    gw_capacity_decide(&w->cap_cfg, &st, open);
    memcpy(w->tier_open, open, sizeof open);
}

static void maybe_finish_drain(gw_worker *w);

void gw_worker_job_finished(gw_worker *w, gw_job *job)
{
    gw_part *p = job->in.part;
    assert(w->in_flight[job->in.tier] > 0);
    assert(w->job_count ==
           w->in_flight[GW_TIER_HIGH] + w->in_flight[GW_TIER_NORMAL] + w->in_flight[GW_TIER_LOW]);
    if (p != NULL && !job->out.publish_failed && p->assigned && p->generation == job->in.part_gen &&
        p->offs_ready) {
        /* Same generation: the offset was tracked by this tracker, once. */
        bool was_pending = gw_offsets_done(&p->offs, job->in.offset);
        assert(was_pending);
        (void)was_pending;
        gw_consumer_store(w->consumer, p);
        if (p->runahead_full &&
            gw_offsets_runahead(&p->offs) < w->cfg->kafka.max_partition_runahead / 2 + 1) {
            p->runahead_full = false;
            set_paused(w, p, part_should_pause(w, p));
        }
    } else if (job->out.publish_failed) {
        w->n.publish_failed++;
    }
    w->in_flight[job->in.tier]--;
    if (job->prev)
        job->prev->next = job->next;
    else
        w->jobs = job->next;
    if (job->next)
        job->next->prev = job->prev;
    w->job_count--;
    w->n.done++;
    gw_job_free(job);
    if (w->run == GW_RUN_RUNNING)
        gw_kq_kick(&w->tkq[GW_TIER_HIGH]); /* capacity freed: take waiting work */
    else if (w->run == GW_RUN_DRAINING)
        maybe_finish_drain(w);
}

/* ---- intake --------------------------------------------------------------------- */

static void job_link(gw_worker *w, gw_job *job)
{
    job->next = w->jobs;
    if (w->jobs)
        w->jobs->prev = job;
    w->jobs = job;
    w->job_count++;
    w->in_flight[job->in.tier]++;
}

/*
 * The consumer's handle is fatally broken. A static member fenced by its own
 * group.instance.id after a coordinator restart (librdkafka 2.0.2 makes that
 * fatal) gets a new handle and rejoins; fenced again soon after that, another
 * live process holds the same id and this worker stops. Any other fatal
 * error stops the worker: the drain still publishes and stores what is done.
 */
static void consumer_fatal(gw_worker *w)
{
    char reason[256] = "";
    rd_kafka_resp_err_t e = gw_consumer_fatal_error(w->consumer, reason, sizeof reason);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR || w->consumer_reset != 0)
        return;
    const gw_kafka_config *k = &w->cfg->kafka;
    if (e == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID && w->run == GW_RUN_RUNNING) {
        int64_t window = 3 * (int64_t)k->session_timeout_ms;
        if (window < GW_FENCE_WINDOW_MIN_MS)
            window = GW_FENCE_WINDOW_MIN_MS;
        if (w->last_fence_ms == 0 || gw_worker_now_ms(w) - w->last_fence_ms >= window) {
            GW_WARN("consumer_fenced", "group_instance_id", k->group_instance_id, "error", reason,
                    "action", "replacing the consumer and rejoining the group");
            w->consumer_reset = 1;
            return;
        }
        GW_ERROR("consumer_fenced_again", "group_instance_id", k->group_instance_id, "error",
                 reason, "action",
                 "stopping: another running process uses this kafka.group_instance_id");
    } else {
        GW_ERROR("consumer_fatal", "error", reason);
    }
    w->fatal = true;
    gw_worker_stop(w);
}

static void intake_error(gw_worker *w, const rd_kafka_message_t *m)
{
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
        return;
    GW_WARN("consumer_error", "error", rd_kafka_message_errstr(m), "error_name",
            rd_kafka_err2name(m->err), "topic", m->rkt ? rd_kafka_topic_name(m->rkt) : NULL);
    gw_observe_consumer_error(w->obs, m);
    consumer_fatal(w);
}

static void intake(gw_worker *w, const rd_kafka_message_t *m)
{
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        intake_error(w, m);
        return;
    }
    int t = gw_consumer_tier_of(w->consumer, rd_kafka_topic_name(m->rkt));
    gw_part *p = t < 0 ? NULL : gw_consumer_part(w->consumer, (gw_tier)t, m->partition);
    /* Not assigned (a stale message of a revoked assignment) or shutting down:
     * not tracked, so never committed; whoever owns the partition reads it. */
    if (p == NULL || !p->assigned || !p->offs_ready || w->run != GW_RUN_RUNNING)
        return;
    switch (gw_offsets_track(&p->offs, m->offset)) {
    case GW_OFFSETS_DUPLICATE:
        return;
    case GW_OFFSETS_FULL:
        p->runahead_full = true;
        set_paused(w, p, true);
        gw_consumer_seek(w->consumer, p, m->offset);
        return;
    case GW_OFFSETS_TRACKED:
        break;
    }
    if (p->pubs_ready) /* transactional: same offsets, same window */
        (void)gw_offsets_track(&p->pubs, m->offset);
    w->n.received++;
    gw_observe_consumer_ok(w->obs, t);
    gw_job *job = gw_job_new(w, p, m->offset, (gw_tier)t);
    if (job == NULL) {
        GW_ERROR("job_alloc_failed", "topic", w->tier_topics[t]);
        w->fatal = true;
        gw_worker_stop(w);
        return;
    }
    job_link(w, job);
    assert(gw_offsets_runahead(&p->offs) <= (int64_t)gw_offsets_capacity(&p->offs));
    if (gw_offsets_runahead(&p->offs) >= w->cfg->kafka.max_partition_runahead) {
        p->runahead_full = true;
        set_paused(w, p, true);
    }
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
        hdrs = NULL;
    gw_job_msg jm = {.payload = m->payload,
                     .len = m->len,
                     .key = m->key,
                     .key_len = m->key_len,
                     .topic = rd_kafka_topic_name(m->rkt),
                     .partition = m->partition,
                     .offset = m->offset,
                     .headers = hdrs};
    gw_job_run(job, &jm);
}

static bool txn_held_full(gw_worker *w);
static void txn_try_commit(gw_worker *w);

/* The consumer queue: rebalances, errors, and the few messages fetched before
 * their partition was forwarded to its tier queue. */
static bool serve_consumer(void *ud)
{
    gw_worker *w = ud;
    w->n.consumer_wakeups++;
    for (int i = 0; i < INTAKE_BUDGET; i++) {
        if (w->consumer == NULL || w->run == GW_RUN_DONE)
            return false;
        rd_kafka_message_t *m = gw_consumer_poll(w->consumer);
        if (m == NULL)
            return false;
        intake(w, m);
        rd_kafka_message_destroy(m);
    }
    return true;
}

/*
 * Intake by priority: take the next message from the highest tier that the
 * capacity policy leaves open and that has one waiting. A closed tier's
 * messages simply wait in its local queue (bounded by the prefetch limits);
 * nothing is paused for capacity, so nothing prefetched is thrown away.
 * Returns true when the budget ran out with work left.
 */
static bool serve_tiers(void *ud)
{
    gw_worker *w = ud;
    w->n.consumer_wakeups++;
    for (int i = 0; i < INTAKE_BUDGET; i++) {
        if (w->run != GW_RUN_RUNNING || txn_held_full(w))
            return false;
        apply_capacity(w);
        rd_kafka_message_t *m = NULL;
        for (int t = 0; t < GW_TIER__COUNT && m == NULL; t++)
            if (w->tier_open[t])
                m = rd_kafka_consume_queue(gw_consumer_tier_queue(w->consumer, (gw_tier)t), 0);
        if (m == NULL)
            return false;
        intake(w, m);
        rd_kafka_message_destroy(m);
    }
    return true;
}

static bool serve_producer(void *ud)
{
    gw_worker *w = ud;
    w->n.producer_serves++; /* once per loop iteration or timer: lazy, see kq.h */
    if (w->prod != NULL)
        gw_producer_poll(w->prod);
    if (w->txn_phase == GW_TXN_FLUSHING)
        txn_try_commit(w);
    if (w->run == GW_RUN_DRAINING)
        maybe_finish_drain(w);
    return false;
}

/* Outputs await their delivery reports (lazy producer queue, see kq.h). */
static bool producer_pending(void *ud)
{
    gw_worker *w = ud;
    return w->prod != NULL &&
           (gw_producer_inflight(w->prod) > 0 || gw_producer_deferred(w->prod) > 0);
}

/* ---- transactions (kafka.transactional) ------------------------------------------ */

bool gw_worker_output_muted(const gw_worker *w, const gw_job *job)
{
    const gw_part *p = job->in.part;
    if (!gw_producer_transactional(w->prod))
        return false;
    /* a dead transactional producer sends nothing more (txn_fatal) */
    return gw_producer_txn_dead(w->prod) ||
           (p != NULL && (!p->assigned || p->generation != job->in.part_gen));
}

/* The held job of partition p, generation gen, at offset off; -1 none.
 * A walk: only held jobs, and only while some are held. */
static int held_find(const gw_worker *w, const gw_part *p, uint32_t gen, int64_t off)
{
    for (uint32_t i = 0; i < w->held_count; i++) {
        const gw_job *j = w->held[i];
        if (j->in.part == p && j->in.part_gen == gen && j->in.offset == off)
            return (int)i;
    }
    return -1;
}

static gw_job *held_take(gw_worker *w, uint32_t i)
{
    gw_job *j = w->held[i];
    w->held[i] = w->held[--w->held_count];
    return j;
}

/* Resume, in offset order, the held jobs whose turn has come. Iterative: a
 * resumed job publishes from here and its own turn does not recurse. */
static void release_held(gw_worker *w, gw_part *p)
{
    if (w->releasing)
        return;
    w->releasing = true;
    int i;
    while (w->held_count > 0 && p->pubs_ready &&
           (i = held_find(w, p, p->generation, gw_offsets_committable(&p->pubs))) >= 0)
        gw_job_resume(held_take(w, (uint32_t)i), GW_STEP_AGAIN);
    w->releasing = false;
}

/* Held jobs whose partition was revoked or rewound: they go on, muted. */
static void release_stale(gw_worker *w)
{
    for (uint32_t i = 0; i < w->held_count;) {
        const gw_part *p = w->held[i]->in.part;
        if (p->assigned && p->generation == w->held[i]->in.part_gen) {
            i++;
            continue;
        }
        gw_job_resume(held_take(w, i), GW_STEP_AGAIN);
    }
}

bool gw_worker_publish_turn(gw_worker *w, gw_job *job)
{
    gw_part *p = job->in.part;
    if (!gw_producer_transactional(w->prod) || p == NULL || gw_worker_output_muted(w, job) ||
        !p->pubs_ready)
        return true;
    if (gw_offsets_committable(&p->pubs) != job->in.offset) {
        if (w->held_count == w->held_cap) {
            uint32_t cap = w->held_cap ? w->held_cap * 2 : 64;
            gw_job **h = realloc(w->held, cap * sizeof *h);
            if (h == NULL)
                return true; /* out of memory: publish now (at-least-once for this one) */
            w->held = h;
            w->held_cap = cap;
        }
        w->held[w->held_count++] = job;
        return false;
    }
    bool was_pending = gw_offsets_done(&p->pubs, job->in.offset);
    assert(was_pending);
    (void)was_pending;
    release_held(w, p);
    return true;
}

/* The transaction could not be ended cleanly: the producer is fenced or
 * broken. The broker aborts what it held; the group serves it again. */
static void txn_fatal(gw_worker *w)
{
    GW_ERROR("txn_fatal", "action",
             "stopping: the broker or this worker's restart ends the open transaction; what it "
             "did not commit is served again by the group");
    w->fatal = true;
    gw_worker_stop(w);
}

/* How long an end may take before /ready says so, and txn_commit_deferred is
 * logged: a healthy broker ends a transaction in a few ms. */
int64_t gw_worker_txn_ending_ms(const gw_worker *w)
{
    if (w->txn_phase == GW_TXN_IDLE)
        return 0;
    int64_t ms = gw_worker_now_ms(w) - w->txn_since_ms;
    return ms > 0 ? ms : 1;
}

/* A held output, when the end is over: kept (produced into the next
 * transaction) while its job may still publish; else dropped and settled as
 * unacknowledged: its partition was revoked or rewound (the next reader
 * answers it), or is being given up, or the worker is done. */
static bool held_keep(void *ud, void *opaque)
{
    gw_worker *w = ud;
    gw_job *job = opaque;
    bool keep = !w->txn_drop_held && w->run != GW_RUN_DONE &&
                (job == NULL || !gw_worker_output_muted(w, job));
    if (!keep && job != NULL) {
        w->n.txn_muted++;
        gw_job_delivered(job, false);
    }
    return keep;
}

static void txn_release_held(gw_worker *w)
{
    gw_producer_release(w->prod, held_keep, w);
    if (w->run == GW_RUN_RUNNING)
        gw_kq_kick(&w->tkq[GW_TIER_HIGH]); /* intake may have stopped on the held bound */
}

static void txn_count(gw_worker *w, gw_txn_result r, const rd_kafka_topic_partition_list_t *offs)
{
    uint64_t us = (uv_hrtime() - w->txn_t0_ns) / 1000;
    w->n.txn_us_total += us;
    if (us > w->n.txn_us_max)
        w->n.txn_us_max = us;
    if (r == GW_TXN_OK)
        w->n.txn_commits++;
    if (gw_log_get_level() <= GW_LOG_DEBUG) {
        char e[24], n[16];
        snprintf(e, sizeof e, "%.1f", (double)us / 1000.0);
        snprintf(n, sizeof n, "%d", offs != NULL ? offs->cnt : 0);
        GW_DEBUG("txn_committed", "end_ms", e, "partitions", n, "ok",
                 r == GW_TXN_OK ? "true" : "false");
    }
}

/*
 * The outcome of an end (the transaction thread's, on the loop): OK marks
 * the offsets committed; ABORTED sends the partitions back to their last
 * committed offsets (not while they are being given up: txn_sync); FATAL
 * stops the worker. Then the held outputs go out (or are dropped) and the
 * next transaction may begin.
 */
static void on_txn_done(void *ud, gw_txn_result r, const rd_kafka_topic_partition_list_t *offs)
{
    gw_worker *w = ud;
    bool gone = w->txn_sync || w->txn_orphan; /* its partitions were given up */
    w->txn_orphan = false;
    gw_producer_txn_settle(w->prod, r);
    txn_count(w, r, offs);
    if (r == GW_TXN_OK && offs != NULL && !gone)
        gw_consumer_txn_committed(w->consumer, offs);
    if (r == GW_TXN_ABORTED) {
        w->n.txn_aborts++;
        GW_WARN("txn_aborted", "action",
                !gone ? "serving the partitions again from the last commit"
                      : "the partitions' next owner serves them from the last commit");
        if (!gone && gw_consumer_rewind(w->consumer) != GW_OK) {
            gw_producer_txn_give_up(w->prod); /* where to resume is unknown: commit nothing */
            r = GW_TXN_FATAL;
        }
    }
    w->txn_phase = GW_TXN_IDLE;
    w->txn_last_ms = gw_worker_now_ms(w);
    if (w->txn_sync) /* txn_end_sync decides what becomes of the held outputs */
        w->txn_drop_held = w->txn_drop_held || r != GW_TXN_OK;
    else
        txn_release_held(w);
    if (r == GW_TXN_FATAL)
        txn_fatal(w);
}

/* FLUSHING: once every output in flight is reported (their jobs are done,
 * so the offsets cover exactly what the transaction holds), the offsets and
 * the commit go to the transaction thread, retried while the transaction
 * can still commit (kafka.transaction_timeout_ms from the interval's end). */
static void txn_try_commit(gw_worker *w)
{
    if (w->txn_phase != GW_TXN_FLUSHING)
        return;
    if (gw_producer_inflight(w->prod) > 0) {
        int64_t ms = gw_worker_txn_ending_ms(w);
        if (ms >= GW_TXN_STUCK_MS && !w->txn_wait_logged) {
            char n[16];
            snprintf(n, sizeof n, "%d", gw_producer_inflight(w->prod));
            GW_WARN("txn_commit_deferred", "unacknowledged", n, "action",
                    "the commit waits until every output is acknowledged; new outputs are held");
            w->txn_wait_logged = true;
        }
        return;
    }
    rd_kafka_topic_partition_list_t *offs = gw_consumer_txn_offsets(w->consumer);
    if (!gw_producer_txn_prepare(w->prod, offs != NULL)) {
        if (offs != NULL)
            rd_kafka_topic_partition_list_destroy(offs);
        w->txn_phase = GW_TXN_IDLE; /* nothing to commit */
        w->txn_last_ms = gw_worker_now_ms(w);
        txn_release_held(w);
        return;
    }
    rd_kafka_consumer_group_metadata_t *md =
        offs != NULL ? gw_consumer_group_metadata(w->consumer) : NULL;
    int64_t deadline_ns =
        gw_producer_mono_ns() + (int64_t)w->cfg->kafka.transaction_timeout_ms * 1000000;
    w->txn_phase = GW_TXN_COMMITTING;
    bool ok = gw_txn_thread_submit(w->txn_thread, true, offs, md, deadline_ns);
    assert(ok);
    (void)ok;
}

/* The commit interval ended: hold new outputs, commit once the ones in
 * flight are reported. The loop goes on meanwhile. */
static void txn_seal(gw_worker *w)
{
    if (w->txn_phase != GW_TXN_IDLE || w->txn_sync || w->txn_thread == NULL ||
        gw_producer_txn_dead(w->prod))
        return;
    w->txn_phase = GW_TXN_FLUSHING;
    w->txn_since_ms = gw_worker_now_ms(w);
    w->txn_t0_ns = uv_hrtime();
    w->txn_wait_logged = false;
    gw_producer_hold(w->prod);
    txn_try_commit(w);
}

/* The loop waits for the transaction thread; false when it is still busy
 * at the bound (its commit can only be resumed: the worker stops). */
static bool txn_wait(gw_worker *w)
{
    uint64_t t0 = uv_hrtime();
    gw_txn_thread_hurry(w->txn_thread,
                        gw_producer_mono_ns() + (int64_t)GW_PRODUCER_TXN_CALL_MS * 1000000);
    bool done = gw_txn_thread_wait(w->txn_thread, 3 * GW_PRODUCER_TXN_CALL_MS);
    uint64_t us = (uv_hrtime() - t0) / 1000;
    if (us > w->n.txn_loop_us_max)
        w->n.txn_loop_us_max = us;
    if (!done) {
        GW_ERROR("txn_failed", "step", "wait", "error",
                 "the transaction thread did not finish within its bound");
        gw_producer_txn_give_up(w->prod);
        txn_fatal(w);
    }
    return done;
}

/* The part of txn_end_sync after the end under way: flush on the loop
 * (outputs sent meanwhile go into this transaction and are waited for
 * too), then commit or abort through the thread and wait for it. */
static void txn_end_now(gw_worker *w, bool commit)
{
    uint64_t t0 = uv_hrtime();
    gw_producer_flush(w->prod, GW_PRODUCER_TXN_CALL_MS);
    uint64_t us = (uv_hrtime() - t0) / 1000;
    if (us > w->n.txn_loop_us_max)
        w->n.txn_loop_us_max = us;
    commit = commit && gw_producer_inflight(w->prod) == 0; /* else the offsets would not cover */
    rd_kafka_topic_partition_list_t *offs = commit ? gw_consumer_txn_offsets(w->consumer) : NULL;
    bool any = commit ? gw_producer_txn_prepare(w->prod, offs != NULL)
                      : gw_producer_txn_open(w->prod) && !gw_producer_txn_dead(w->prod);
    if (!any) {
        if (offs != NULL)
            rd_kafka_topic_partition_list_destroy(offs);
        return;
    }
    rd_kafka_consumer_group_metadata_t *md =
        offs != NULL ? gw_consumer_group_metadata(w->consumer) : NULL;
    w->txn_phase = GW_TXN_COMMITTING;
    w->txn_since_ms = gw_worker_now_ms(w);
    w->txn_t0_ns = uv_hrtime();
    gw_producer_hold(w->prod);
    (void)gw_txn_thread_submit(w->txn_thread, commit, offs, md,
                               gw_producer_mono_ns() + (int64_t)GW_PRODUCER_TXN_CALL_MS * 1000000);
    (void)txn_wait(w);
}

/*
 * End the open transaction now, the loop waiting (bounded), because the
 * partitions are being given up: a revoke, a replaced consumer handle, the
 * exit. commit: what is done goes in with its outputs; otherwise (a lost
 * assignment, a fenced member, a drain that timed out) it is aborted. An
 * end already under way is waited for first (its deadline brought forward;
 * its outcome applied as usual, without a rewind); an abort or failure
 * there leaves nothing to commit. Outputs held at the end are dropped: the
 * partitions' next owner answers their requests.
 */
static void txn_end_sync(gw_worker *w, bool commit)
{
    if (!gw_producer_transactional(w->prod) || w->txn_thread == NULL || w->txn_sync)
        return;
    w->txn_sync = true;
    w->txn_drop_held = false;
    if (w->txn_phase != GW_TXN_IDLE) {
        char ms[24];
        snprintf(ms, sizeof ms, "%" PRId64, gw_worker_txn_ending_ms(w));
        GW_INFO("txn_end_under_way", "phase", w->txn_phase == GW_TXN_FLUSHING ? "flush" : "commit",
                "ms", ms, "action", "finished first: the partitions are being given up");
    }
    if (gw_producer_txn_dead(w->prod) || (w->txn_phase == GW_TXN_COMMITTING && !txn_wait(w)))
        goto out;
    /* an end still FLUSHING was not with the thread yet: this one takes over;
     * the held outputs go into it (dropped after a failed end) */
    w->txn_phase = GW_TXN_IDLE;
    txn_release_held(w);
    if (!gw_producer_txn_dead(w->prod))
        txn_end_now(w, commit && !w->txn_drop_held);
out:
    w->txn_drop_held = true;
    txn_release_held(w); /* what was held during the wait */
    w->txn_drop_held = false;
    w->txn_sync = false;
}

/*
 * The partitions are lost (a lost assignment, a fenced member): nothing more
 * of theirs may be committed, and nothing needs waiting for, so the loop
 * does not wait (a broker outage is what loses them). An end under way goes
 * on (its commit was consistent when handed over; KIP-447 fences it if the
 * group moved on) and its outcome is applied without a rewind (txn_orphan);
 * an open transaction is aborted through the thread. Outputs stay held
 * until then; those of the lost partitions are dropped at the release.
 */
static void txn_give_up(gw_worker *w)
{
    if (!gw_producer_transactional(w->prod) || w->txn_thread == NULL ||
        gw_producer_txn_dead(w->prod) || w->txn_sync)
        return;
    if (w->txn_phase == GW_TXN_COMMITTING) {
        w->txn_orphan = true;
        return;
    }
    if (!gw_producer_txn_open(w->prod)) {
        if (w->txn_phase == GW_TXN_FLUSHING) { /* nothing was sent: nothing to end */
            w->txn_phase = GW_TXN_IDLE;
            txn_release_held(w);
        }
        return;
    }
    if (w->txn_phase == GW_TXN_IDLE) {
        w->txn_since_ms = gw_worker_now_ms(w);
        w->txn_t0_ns = uv_hrtime();
        gw_producer_hold(w->prod);
    }
    w->txn_phase = GW_TXN_COMMITTING;
    w->txn_orphan = true;
    GW_INFO("txn_abort_started", "action",
            "the partitions were lost: their open transaction is aborted, the loop goes on");
    int64_t deadline_ns =
        gw_producer_mono_ns() + (int64_t)w->cfg->kafka.transaction_timeout_ms * 1000000;
    bool ok = gw_txn_thread_submit(w->txn_thread, false, NULL, NULL, deadline_ns);
    assert(ok);
    (void)ok;
}

/* The held outputs reached their bound: intake stops until the end is over. */
static bool txn_held_full(gw_worker *w)
{
    size_t bytes;
    size_t n = gw_producer_held(w->prod, &bytes);
    return n >= GW_TXN_HELD_MAX || bytes >= GW_TXN_HELD_MAX_BYTES;
}

/* Partitions are being revoked: what is done goes in the group with its
 * outputs before another member takes them (the loop waits for that); a
 * lost assignment cannot commit: its transaction is aborted without
 * waiting. At exit, finish_shutdown has ended the transaction already. */
static void on_revoking(void *ud, bool lost)
{
    gw_worker *w = ud;
    if (w->run == GW_RUN_DONE)
        return;
    if (lost)
        txn_give_up(w);
    else
        txn_end_sync(w, true);
}

/* The transactional.id: the prefix and the static member id, stable across
 * restarts (a restarted worker aborts what its predecessor left open), or
 * the worker id (a dead worker's transaction then holds read_committed
 * readers until kafka.transaction_timeout_ms). */
static const char *txn_id(gw_worker *w, char *buf, size_t size)
{
    const gw_kafka_config *k = &w->cfg->kafka;
    if (!k->transactional)
        return NULL;
    bool stable = k->group_instance_id != NULL && k->group_instance_id[0] != '\0';
    snprintf(buf, size, "%s-%s", k->transactional_id_prefix,
             stable ? k->group_instance_id : w->worker_id);
    if (!stable)
        GW_WARN("txn_id_unstable", "transactional_id", buf, "hint",
                "set kafka.group_instance_id: a killed worker's open transaction then ends "
                "when it restarts, not after kafka.transaction_timeout_ms");
    return buf;
}

/* ---- hooks of the Kafka clients ----------------------------------------------- */

static void on_delivery(void *ud, const rd_kafka_message_t *m, void *msg_opaque)
{
    if (msg_opaque != NULL)
        gw_job_on_delivery((gw_job *)msg_opaque, m);
}

static void on_resend_refused(void *ud, void *msg_opaque, rd_kafka_resp_err_t err,
                              const char *topic, const void *key, size_t key_len, const void *val,
                              size_t len)
{
    if (msg_opaque != NULL)
        gw_job_resend_refused((gw_job *)msg_opaque, err, topic, key, key_len, val, len);
}

/* The worker's sink: the Kafka producer, the job as the report's opaque. */
static gw_err kafka_send(void *ud, const char *topic, const void *key, size_t key_len,
                         const void *val, size_t len, rd_kafka_headers_t *hdrs, gw_job *job,
                         rd_kafka_resp_err_t *refusal)
{
    gw_worker *w = ud;
    gw_err err = gw_producer_send(w->prod, topic, key, key_len, val, len, hdrs, job);
    *refusal = err == GW_OK ? RD_KAFKA_RESP_ERR_NO_ERROR : gw_producer_refusal(w->prod);
    return err;
}

/* After an assignment: new partitions start resumed; pause what must be. */
static void on_assigned(void *ud)
{
    gw_worker *w = ud;
    for (int t = 0; t < GW_TIER__COUNT; t++) {
        sync_tier(w, (gw_tier)t);
        const gw_part_table *tb = gw_consumer_parts(w->consumer, (gw_tier)t);
        for (int32_t i = 0; i < tb->count; i++)
            if (tb->items[i] != NULL && tb->items[i]->assigned) {
                gw_observe_consumer_ok(w->obs, t); /* and the group: it let us in */
                break;
            }
    }
}

static void on_consumer_fatal(void *ud)
{
    consumer_fatal(ud);
}

static void on_producer_fatal(void *ud)
{
    gw_worker *w = ud;
    char reason[256] = "";
    rd_kafka_fatal_error(gw_producer_handle(w->prod), reason, sizeof reason);
    GW_ERROR("producer_fatal", "error", reason, "action",
             "stopping: outputs not yet acknowledged stay uncommitted and are served again");
    w->fatal = true;
    gw_worker_stop(w);
}

static void on_consumer_stats(void *ud, const char *json, size_t len)
{
    gw_worker *w = ud;
    gw_observe_kafka_stats(w->obs, json, len);
}

/* ---- set-up ---------------------------------------------------------------------- */

static gw_err make_clients(gw_worker *w)
{
    gw_producer_hooks ph = {.ud = w,
                            .delivered = on_delivery,
                            .fatal = on_producer_fatal,
                            .refused = on_resend_refused};
    char tid[256];
    gw_err err =
        gw_producer_new(&w->cfg->kafka, w->bootstrap, txn_id(w, tid, sizeof tid), &ph, &w->prod);
    if (err != GW_OK)
        return err;
    /* The consumer must be able to fetch the largest record a request topic
     * accepts, or that record stalls its partition. */
    int64_t max_record = gw_kafka_max_message_bytes(gw_producer_handle(w->prod), w->tier_topics,
                                                    GW_TIER__COUNT, GW_TOPIC_DESCRIBE_MS);
    gw_consumer_hooks ch = {.ud = w,
                            .assigned = on_assigned,
                            .fatal = on_consumer_fatal,
                            .stats = on_consumer_stats,
                            .stats_interval_ms = GW_OBSERVE_STATS_INTERVAL_MS,
                            .revoking = on_revoking};
    return gw_consumer_new(&w->cfg->kafka, w->bootstrap, w->tier_topics, max_record, &ch,
                           &w->consumer);
}

static gw_framing framing_of(gw_cfg_framing f)
{
    switch (f) {
    case GW_CFG_FRAMING_BARE:
        return GW_FRAMING_BARE;
    case GW_CFG_FRAMING_CONFLUENT:
        return GW_FRAMING_CONFLUENT;
    case GW_CFG_FRAMING_SINGLE_OBJECT:
        return GW_FRAMING_SINGLE_OBJECT;
    default:
        return GW_FRAMING_AUTO;
    }
}

static void init_policies(gw_worker *w)
{
    const gw_config *cfg = w->cfg;
    uint32_t c = (uint32_t)cfg->worker.max_in_flight;
    uint32_t h = (uint32_t)((double)c * cfg->worker.resume_hysteresis);
    w->cap_cfg = (gw_capacity_cfg){.max_in_flight = c,
                                   .low_share = cfg->worker.low_share,
                                   .normal_headroom = cfg->worker.normal_headroom,
                                   .low_headroom = cfg->worker.low_headroom,
                                   .hysteresis = h > 1 ? h : 1};
    for (int t = 0; t < GW_TIER__COUNT; t++)
        w->tier_open[t] = true;
    const gw_kafka_config *k = &cfg->kafka;
    w->vlimits =
        (gw_validate_limits){.max_tokens_limit = cfg->worker.max_tokens_limit,
                             .max_content_bytes = (uint64_t)cfg->worker.max_content_bytes,
                             .default_reply_topic = k->topics.responses,
                             .reply_topics = k->reply_topics,
                             .reply_topic_count = k->reply_topic_count,
                             .forbidden = {k->topics.high, k->topics.normal, k->topics.low,
                                           k->topics.chunks, k->topics.usage, k->topics.dlq},
                             .forbidden_count = 6};
    w->coalesce = (gw_coalesce_cfg){.coalesce_ms = (uint32_t)cfg->worker.chunk_coalesce_ms,
                                    .coalesce_bytes = (uint32_t)cfg->worker.chunk_coalesce_bytes};
    w->tier_topics[GW_TIER_HIGH] = cfg->kafka.topics.high;
    w->tier_topics[GW_TIER_NORMAL] = cfg->kafka.topics.normal;
    w->tier_topics[GW_TIER_LOW] = cfg->kafka.topics.low;
}

gw_err gw_worker_new_offline(uv_loop_t *loop, const gw_config *cfg, gw_clock_fn clock,
                             void *clock_ud, gw_worker **out)
{
    gw_worker *w = calloc(1, sizeof *w);
    if (w == NULL)
        return GW_E_NOMEM;
    w->loop = loop;
    w->cfg = cfg;
    w->run = GW_RUN_STARTING;
    w->clock = clock != NULL ? clock : wall_clock_ms;
    w->clock_ud = clock_ud;
    init_policies(w);
    gw_codec_limits lim;
    gw_codec_limits_default(&lim);
    lim.max_message_bytes = (size_t)cfg->worker.max_request_bytes;
    lim.max_messages = (size_t)cfg->worker.max_messages;
    w->codec = gw_codec_new(&lim);
    gw_err err = GW_E_CONFIG;
    if (w->codec == NULL)
        goto fail;
    gw_codec_set_decode_framing(w->codec, framing_of(cfg->kafka.framing));
    w->out_framing = framing_of(cfg->kafka.output_framing);
    if (w->out_framing == GW_FRAMING_AUTO)
        w->out_framing = GW_FRAMING_SINGLE_OBJECT;
    gw_buf_init(&w->scratch, lim.max_message_bytes * 2);
    if ((err = gw_providers_new(loop, &w->providers)) != GW_OK)
        goto fail;
    if ((err = gw_observe_new(w, &w->obs)) != GW_OK)
        goto fail;
    if ((err = gw_worker_open_shared(w)) != GW_OK)
        goto fail;
    *out = w;
    return GW_OK;
fail:
    gw_worker_free(w);
    return err;
}

gw_err gw_worker_new(uv_loop_t *loop, const gw_config *cfg, const char *bootstrap, gw_worker **out)
{
    gw_worker *w = NULL;
    gw_err err = gw_worker_new_offline(loop, cfg, NULL, NULL, &w);
    if (err != GW_OK)
        return err;
    w->bootstrap = strdup(bootstrap ? bootstrap : cfg->kafka.bootstrap);
    if (w->bootstrap == NULL)
        err = GW_E_NOMEM;
    else if ((err = make_clients(w)) == GW_OK) {
        w->sink = (gw_sink){kafka_send, w};
        *out = w;
        return GW_OK;
    }
    gw_worker_free(w);
    return err;
}

/* ---- run and shutdown ------------------------------------------------------------ */

static void on_signal(uv_signal_t *h, int signum)
{
    gw_worker *w = h->data;
    w->signals++;
    if (w->signals > 1) {
        GW_WARN("shutdown_forced", "signal", signum == SIGINT ? "SIGINT" : "SIGTERM");
        _exit(GW_EXIT_INTERRUPT);
    }
    GW_INFO("shutdown_requested", "signal", signum == SIGINT ? "SIGINT" : "SIGTERM");
    gw_worker_stop(w);
}

static gw_err open_consumer_queues(gw_worker *w)
{
    if (gw_kq_init(&w->ckq, w->loop, gw_consumer_queue(w->consumer), serve_consumer, w) != GW_OK)
        return GW_E_IO;
    for (int t = 0; t < GW_TIER__COUNT; t++)
        if (gw_kq_init(&w->tkq[t], w->loop, gw_consumer_tier_queue(w->consumer, (gw_tier)t),
                       serve_tiers, w) != GW_OK)
            return GW_E_IO;
    return GW_OK;
}

/*
 * A new consumer handle, in two ticks: first the old one's partitions are
 * given up and the queue adapters closed (their uv handles close on this
 * loop turn), then the new handle is made, subscribed and joined to the loop.
 * Jobs in flight finish meanwhile and publish; their offsets are not stored
 * (the partition's generation moved on), they are served again unless the
 * carried offset already covers them.
 */
static void consumer_reset_step(gw_worker *w)
{
    if (w->consumer_reset == 1) {
        bool fenced = gw_consumer_fenced(w->consumer);
        if (fenced)
            w->last_fence_ms = gw_worker_now_ms(w);
        if (fenced)
            txn_give_up(w); /* a fenced member cannot commit offsets */
        else
            txn_end_sync(w, true);
        gw_consumer_give_up(w->consumer);
        gw_kq_close(&w->ckq);
        for (int t = 0; t < GW_TIER__COUNT; t++)
            gw_kq_close(&w->tkq[t]);
        w->consumer_reset = 2;
        return;
    }
    w->consumer_reset = 0;
    if (gw_consumer_recreate(w->consumer) != GW_OK || open_consumer_queues(w) != GW_OK) {
        GW_ERROR("consumer_recreate_failed", "action", "stopping");
        w->fatal = true;
        gw_worker_stop(w);
        return;
    }
    w->n.consumer_resets++;
    GW_INFO("consumer_recreated", "group", w->cfg->kafka.group_id);
}

/* A fetch failed because a record is larger than the receive limit: size it
 * again from the topics (or double it) and replace the handle. */
static void check_record_limit(gw_worker *w)
{
    if (!gw_consumer_record_too_large(w->consumer) || w->consumer_reset != 0)
        return;
    int64_t max_record = gw_kafka_max_message_bytes(gw_producer_handle(w->prod), w->tier_topics,
                                                    GW_TIER__COUNT, GW_TOPIC_DESCRIBE_MS);
    gw_consumer_set_max_record_bytes(w->consumer, max_record);
    GW_WARN("fetch_limit_raised", "action", "replacing the consumer with a larger receive limit");
    w->consumer_reset = 1;
}

static void on_tick(uv_timer_t *t)
{
    gw_worker *w = t->data;
    gw_routing_flush(w->routing); /* batched breaker outcomes and latency samples */
    gw_stage_state_renew_leases(w);
    gw_stage_state_redo(w);
    if (w->run == GW_RUN_RUNNING) {
        if (w->consumer_reset != 0)
            consumer_reset_step(w);
        else
            check_record_limit(w);
    }
    if (gw_producer_deferred(w->prod) > 0)
        gw_producer_tick(w->prod, gw_worker_now_ms(w)); /* outputs produced again after backoff */
    if (w->held_count > 0)
        release_stale(w);
    if (w->txn_phase == GW_TXN_FLUSHING)
        txn_try_commit(w);
    else if (gw_producer_transactional(w->prod) && w->run != GW_RUN_DONE &&
             gw_worker_now_ms(w) - w->txn_last_ms >= w->cfg->kafka.commit_interval_ms)
        txn_seal(w); /* one transaction per commit interval */
    if (w->run == GW_RUN_DRAINING)
        maybe_finish_drain(w);
    else if (w->run == GW_RUN_RUNNING && w->consumer_reset == 0)
        gw_kq_kick(&w->ckq); /* poll the consumer regularly (max.poll.interval.ms) */
}

gw_err gw_worker_start(gw_worker *w)
{
    const gw_kafka_config *k = &w->cfg->kafka;
    gw_err err = gw_register_outputs(w); /* ids for confluent outputs, before any intake */
    if (err != GW_OK)
        return err;
    if (gw_consumer_subscribe(w->consumer) != GW_OK)
        return GW_E_IO;
    w->run = GW_RUN_RUNNING;
    if (open_consumer_queues(w) != GW_OK ||
        gw_kq_init_lazy(&w->pkq, w->loop, gw_producer_queue(w->prod), serve_producer,
                        producer_pending, GW_DR_DELAY_MS, w) != GW_OK)
        return GW_E_IO;
    uv_signal_init(w->loop, &w->sigterm);
    uv_signal_init(w->loop, &w->sigint);
    w->sigterm.data = w->sigint.data = w;
    uv_signal_start(&w->sigterm, on_signal, SIGTERM);
    uv_signal_start(&w->sigint, on_signal, SIGINT);
    uv_timer_init(w->loop, &w->drain_timer);
    uv_timer_init(w->loop, &w->tick_timer);
    w->drain_timer.data = w->tick_timer.data = w;
    uv_timer_start(&w->tick_timer, on_tick, 100, 100);
    if (gw_observe_start(w->obs) != GW_OK)
        return GW_E_IO;
    if (gw_producer_transactional(w->prod) &&
        gw_txn_thread_new(w->loop, w->prod, on_txn_done, w, &w->txn_thread) != GW_OK)
        return GW_E_IO;
    w->txn_last_ms = gw_worker_now_ms(w);
    GW_INFO("worker_started", "bootstrap", w->bootstrap, "group", k->group_id, "high",
            k->topics.high, "normal", k->topics.normal, "low", k->topics.low);
    return GW_OK;
}

static void pause_all(gw_worker *w)
{
    for (int t = 0; t < GW_TIER__COUNT; t++)
        sync_tier(w, (gw_tier)t);
}

static void on_drain_timer_closed(uv_handle_t *h)
{
    gw_worker_release_shared(h->data);
}

static void log_txn_counters(const gw_worker *w)
{
    char c[24], a[24], m[24], avg[24], max[24], loop[24];
    const gw_worker_counters *n = &w->n;
    snprintf(c, sizeof c, "%" PRIu64, n->txn_commits);
    snprintf(a, sizeof a, "%" PRIu64, n->txn_aborts);
    snprintf(m, sizeof m, "%" PRIu64, n->txn_muted);
    snprintf(avg, sizeof avg, "%.1f",
             n->txn_commits > 0 ? (double)n->txn_us_total / 1000.0 / (double)n->txn_commits : 0.0);
    snprintf(max, sizeof max, "%.1f", (double)n->txn_us_max / 1000.0);
    snprintf(loop, sizeof loop, "%.1f", (double)n->txn_loop_us_max / 1000.0);
    GW_INFO("txn_stats", "commits", c, "aborts", a, "muted_outputs", m, "end_ms_avg", avg,
            "end_ms_max", max, "loop_wait_ms_max", loop);
}

static void finish_shutdown(gw_worker *w, bool drained)
{
    if (w->run == GW_RUN_DONE)
        return;
    w->run = GW_RUN_DONE;
    for (gw_job *j = w->jobs; j != NULL; j = j->next)
        gw_job_abort(j);
    gw_routing_flush(w->routing);
    /* Transactional: a drained worker commits its last transaction; after the
     * deadline, aborted jobs may have outputs in it: abort, the group serves
     * the interval again. */
    txn_end_sync(w, drained);
    rd_kafka_resp_err_t err = gw_consumer_commit_sync(w->consumer);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        GW_ERROR("final_commit_failed", "error", rd_kafka_err2str(err));
        drained = false;
    }
    gw_kq_close(&w->ckq);
    for (int t = 0; t < GW_TIER__COUNT; t++)
        gw_kq_close(&w->tkq[t]);
    gw_consumer_close(w->consumer); /* leaves the group */
    gw_kq_close(&w->pkq);
    uv_timer_stop(&w->drain_timer);
    uv_timer_stop(&w->tick_timer);
    gw_observe_stop(w->obs);
    /* State, routing and the semantic cache go on a clean stack (this may run
     * inside one of their callbacks); their free answers what is pending. */
    uv_close((uv_handle_t *)&w->drain_timer, on_drain_timer_closed);
    uv_close((uv_handle_t *)&w->tick_timer, NULL);
    uv_close((uv_handle_t *)&w->sigterm, NULL);
    uv_close((uv_handle_t *)&w->sigint, NULL);
    gw_txn_thread_close(w->txn_thread);
    w->exit_code = drained && !w->fatal ? GW_EXIT_OK : GW_EXIT_FAILURE;
    char n[24], f[24], pz[24], rs[24], cw[24], pw[24];
    snprintf(n, sizeof n, "%" PRIu64, w->n.done);
    snprintf(f, sizeof f, "%u", w->job_count);
    snprintf(pz, sizeof pz, "%" PRIu64, w->n.pauses);
    snprintf(rs, sizeof rs, "%" PRIu64, w->n.resumes);
    snprintf(cw, sizeof cw, "%" PRIu64, w->n.consumer_wakeups);
    snprintf(pw, sizeof pw, "%" PRIu64, w->n.producer_serves);
    GW_INFO("worker_stopped", "drained", drained ? "true" : "false", "requests_done", n,
            "unfinished", f, "pauses", pz, "resumes", rs, "consumer_wakeups", cw, "producer_serves",
            pw);
    if (gw_producer_transactional(w->prod))
        log_txn_counters(w);
}

static void maybe_finish_drain(gw_worker *w)
{
    if (w->run == GW_RUN_DRAINING && w->txn_phase == GW_TXN_IDLE && !w->txn_sync &&
        w->job_count == 0 && w->bg_pending == 0 && gw_producer_outq_len(w->prod) == 0)
        finish_shutdown(w, true);
}

void gw_worker_bg_settled(gw_worker *w)
{
    if (w->run == GW_RUN_DRAINING)
        maybe_finish_drain(w);
}

static void on_drain_timeout(uv_timer_t *t)
{
    gw_worker *w = t->data;
    GW_WARN("drain_timeout", "drain_timeout_ms", NULL);
    finish_shutdown(w, false);
}

void gw_worker_stop(gw_worker *w)
{
    if (w->run == GW_RUN_STARTING) {
        w->run = GW_RUN_DONE;
        return;
    }
    if (w->run != GW_RUN_RUNNING)
        return;
    w->run = GW_RUN_DRAINING;
    pause_all(w);
    uv_timer_start(&w->drain_timer, on_drain_timeout, (uint64_t)w->cfg->worker.drain_timeout_ms, 0);
    maybe_finish_drain(w);
}

int gw_worker_exit_code(const gw_worker *w)
{
    return w->exit_code;
}

void gw_worker_free(gw_worker *w)
{
    if (w == NULL)
        return;
    gw_worker_release_shared(w);
    while (w->jobs != NULL) {
        gw_job *j = w->jobs;
        w->jobs = j->next;
        gw_job_abort(j);
        gw_job_free(j);
    }
    free(w->held);
    gw_txn_thread_free(w->txn_thread); /* joined before the producer goes */
    gw_consumer_free(w->consumer);
    gw_producer_free(w->prod);
    if (w->providers)
        gw_providers_free(w->providers);
    gw_observe_free(w->obs);
    gw_codec_free(w->codec);
    gw_buf_cleanup(&w->scratch);
    free(w->bootstrap);
    free(w);
}
