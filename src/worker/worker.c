/*
 * worker: Kafka intake with priority tiers, per-partition offset tracking,
 * capacity-driven pause/resume, delivery reports and graceful shutdown, all
 * on one libuv loop. See worker.h and docs/worker.md.
 *
 * Invariants:
 *  - in_flight[t] counts live jobs taken from tier t (revoked ones included).
 *  - A partition's committable offset is stored (rd_kafka_offsets_store) only
 *    from its tracker, so the group never commits past unfinished work; the
 *    auto-committer sends what is stored.
 *  - p->paused mirrors what librdkafka was told for an assigned partition.
 */
#include "worker/worker.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "common/log.h"
#include "worker/worker_private.h"
#include "worker/worker_shared.h"

enum { INTAKE_BUDGET = 512, MAX_PARTITIONS = 4096 };

int64_t gw_worker_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void on_rdkafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    gw_log_level l = level <= 3   ? GW_LOG_ERROR
                     : level <= 4 ? GW_LOG_WARN
                     : level <= 6 ? GW_LOG_INFO
                                  : GW_LOG_DEBUG;
    gw_log(l, "rdkafka", "client", rd_kafka_name(rk), "facility", fac, "message", buf,
           (const char *)0);
}

/* ---- partitions and capacity ------------------------------------------------- */

static gw_part *part_get(gw_worker *w, gw_tier t, int32_t partition, bool create)
{
    gw_part_table *tb = &w->parts[t];
    if (partition < 0 || partition >= MAX_PARTITIONS)
        return NULL;
    if (partition >= tb->count) {
        if (!create)
            return NULL;
        gw_part **items = realloc(tb->items, (size_t)(partition + 1) * sizeof *items);
        if (items == NULL)
            return NULL;
        memset(items + tb->count, 0, (size_t)(partition + 1 - tb->count) * sizeof *items);
        tb->items = items;
        tb->count = partition + 1;
    }
    if (tb->items[partition] == NULL && create) {
        gw_part *p = calloc(1, sizeof *p);
        if (p == NULL)
            return NULL;
        p->tier = t;
        p->partition = partition;
        p->stored = -1;
        tb->items[partition] = p;
    }
    return tb->items[partition];
}

static int tier_of_topic(const gw_worker *w, const char *topic)
{
    for (int t = 0; t < GW_TIER__COUNT; t++)
        if (strcmp(w->tier_topics[t], topic) == 0)
            return t;
    return -1;
}

static void set_paused(gw_worker *w, gw_part *p, bool pause)
{
    if (p->paused == pause || !p->assigned)
        return;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, w->tier_topics[p->tier], p->partition);
    rd_kafka_resp_err_t err = pause ? rd_kafka_pause_partitions(w->consumer, l)
                                    : rd_kafka_resume_partitions(w->consumer, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        p->paused = pause;
        if (pause)
            w->n.pauses++;
        else
            w->n.resumes++;
    }
}

static bool part_should_pause(const gw_worker *w, const gw_part *p)
{
    return w->run != GW_RUN_RUNNING || p->runahead_full;
}

static void sync_tier(gw_worker *w, gw_tier t)
{
    gw_part_table *tb = &w->parts[t];
    for (int32_t i = 0; i < tb->count; i++)
        if (tb->items[i] != NULL && tb->items[i]->assigned)
            set_paused(w, tb->items[i], part_should_pause(w, tb->items[i]));
}

/* Does the low tier have work in flight or messages waiting locally? */
static bool low_competing(gw_worker *w)
{
    return w->in_flight[GW_TIER_LOW] > 0 || rd_kafka_queue_length(w->tq[GW_TIER_LOW]) > 0;
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

/* Store the tracker's committable offset when it moved. */
static void store_offset(gw_worker *w, gw_part *p)
{
    if (!p->assigned || !p->offs_ready)
        return;
    int64_t c = gw_offsets_committable(&p->offs);
    if (c < 0 || c == p->stored)
        return;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, w->tier_topics[p->tier], p->partition)->offset = c;
    rd_kafka_resp_err_t err = rd_kafka_offsets_store(w->consumer, l);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR && l->elems[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
        p->stored = c;
    rd_kafka_topic_partition_list_destroy(l);
}

static void store_all(gw_worker *w)
{
    for (int t = 0; t < GW_TIER__COUNT; t++)
        for (int32_t i = 0; i < w->parts[t].count; i++)
            if (w->parts[t].items[i] != NULL)
                store_offset(w, w->parts[t].items[i]);
}

static void maybe_finish_drain(gw_worker *w);

void gw_worker_job_finished(gw_worker *w, gw_job *job)
{
    gw_part *p = job->part;
    if (!job->publish_failed && p->assigned && p->generation == job->part_gen && p->offs_ready) {
        gw_offsets_done(&p->offs, job->offset);
        store_offset(w, p);
        if (p->runahead_full &&
            gw_offsets_runahead(&p->offs) < w->cfg->kafka.max_partition_runahead / 2 + 1) {
            p->runahead_full = false;
            set_paused(w, p, part_should_pause(w, p));
        }
    } else if (job->publish_failed) {
        w->n.publish_failed++;
    }
    w->in_flight[job->tier]--;
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
    w->in_flight[job->tier]++;
}

/* Seek a partition back to offset (asynchronous) so a message we could not
 * take is fetched again later. */
static void seek_back(gw_worker *w, gw_part *p, int64_t offset)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, w->tier_topics[p->tier], p->partition)->offset = offset;
    rd_kafka_error_t *e = rd_kafka_seek_partitions(w->consumer, l, 0);
    if (e != NULL) {
        GW_ERROR("seek_failed", "topic", w->tier_topics[p->tier], "error",
                 rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

static void intake_error(gw_worker *w, const rd_kafka_message_t *m)
{
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
        return;
    GW_WARN("consumer_error", "error", rd_kafka_message_errstr(m), "topic",
            m->rkt ? rd_kafka_topic_name(m->rkt) : NULL);
    char reason[256];
    if (rd_kafka_fatal_error(w->consumer, reason, sizeof reason) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        GW_ERROR("consumer_fatal", "error", reason);
        w->fatal = true;
        gw_worker_stop(w);
    }
}

static void intake(gw_worker *w, const rd_kafka_message_t *m)
{
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        intake_error(w, m);
        return;
    }
    int t = tier_of_topic(w, rd_kafka_topic_name(m->rkt));
    gw_part *p = t < 0 ? NULL : part_get(w, (gw_tier)t, m->partition, false);
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
        seek_back(w, p, m->offset);
        return;
    case GW_OFFSETS_TRACKED:
        break;
    }
    w->n.received++;
    gw_job *job = gw_job_start(w, m, p, (gw_tier)t);
    if (job == NULL) {
        GW_ERROR("job_alloc_failed", "topic", w->tier_topics[t]);
        w->fatal = true;
        gw_worker_stop(w);
        return;
    }
    job_link(w, job);
    if (gw_offsets_runahead(&p->offs) >= w->cfg->kafka.max_partition_runahead) {
        p->runahead_full = true;
        set_paused(w, p, true);
    }
    gw_job_drive(job);
}

/* The consumer queue: rebalances, errors, and the few messages fetched before
 * their partition was forwarded to its tier queue. */
static bool serve_consumer(void *ud)
{
    gw_worker *w = ud;
    w->n.consumer_wakeups++;
    for (int i = 0; i < INTAKE_BUDGET; i++) {
        if (w->consumer == NULL || w->run == GW_RUN_DONE)
            return false;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(w->consumer, 0);
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
        if (w->run != GW_RUN_RUNNING)
            return false;
        apply_capacity(w);
        rd_kafka_message_t *m = NULL;
        for (int t = 0; t < GW_TIER__COUNT && m == NULL; t++)
            if (w->tier_open[t])
                m = rd_kafka_consume_queue(w->tq[t], 0);
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
    w->n.producer_wakeups++;
    if (w->producer != NULL)
        rd_kafka_poll(w->producer, 0);
    if (w->run == GW_RUN_DRAINING)
        maybe_finish_drain(w);
    return false;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    if (m->_private != NULL)
        gw_job_on_delivery((gw_job *)m->_private, m);
}

/* ---- rebalance ------------------------------------------------------------------ */

static void on_assign(gw_worker *w, rd_kafka_topic_partition_list_t *parts)
{
    uint32_t window = (uint32_t)w->cfg->kafka.max_partition_runahead * 2;
    for (int i = 0; i < parts->cnt; i++) {
        int t = tier_of_topic(w, parts->elems[i].topic);
        gw_part *p = t < 0 ? NULL : part_get(w, (gw_tier)t, parts->elems[i].partition, true);
        if (p == NULL)
            continue;
        if (p->offs_ready)
            gw_offsets_cleanup(&p->offs);
        p->offs_ready = gw_offsets_init(&p->offs, window) == GW_OK;
        p->generation++;
        p->assigned = true;
        p->paused = false;
        p->runahead_full = false;
        p->stored = -1;
    }
    rd_kafka_assign(w->consumer, parts);
    for (int i = 0; i < parts->cnt; i++) {
        int t = tier_of_topic(w, parts->elems[i].topic);
        rd_kafka_queue_t *pq =
            t < 0 ? NULL
                  : rd_kafka_queue_get_partition(w->consumer, parts->elems[i].topic,
                                                 parts->elems[i].partition);
        if (pq == NULL)
            continue;
        rd_kafka_queue_forward(pq, w->tq[t]);
        rd_kafka_queue_destroy(pq);
    }
    for (int t = 0; t < GW_TIER__COUNT; t++)
        sync_tier(w, (gw_tier)t);
    char n[16];
    snprintf(n, sizeof n, "%d", parts->cnt);
    GW_INFO("partitions_assigned", "count", n);
}

static void on_revoke(gw_worker *w, rd_kafka_topic_partition_list_t *parts)
{
    bool lost = rd_kafka_assignment_lost(w->consumer);
    if (!lost) {
        store_all(w);
        /* Synchronous, but only here and at exit: the group must hold what is
         * done before another member takes these partitions. */
        rd_kafka_resp_err_t err = rd_kafka_commit(w->consumer, NULL, 0);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
            GW_WARN("revoke_commit_failed", "error", rd_kafka_err2str(err));
    }
    for (int i = 0; i < parts->cnt; i++) {
        int t = tier_of_topic(w, parts->elems[i].topic);
        gw_part *p = t < 0 ? NULL : part_get(w, (gw_tier)t, parts->elems[i].partition, false);
        if (p == NULL)
            continue;
        p->assigned = false;
        p->paused = false;
        p->generation++;
    }
    rd_kafka_assign(w->consumer, NULL);
    char n[16];
    snprintf(n, sizeof n, "%d", parts->cnt);
    GW_INFO("partitions_revoked", "count", n, "lost", lost ? "true" : "false");
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    gw_worker *w = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
        on_assign(w, parts);
    else
        on_revoke(w, parts);
}

static void on_kafka_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    gw_worker *w = opaque;
    GW_WARN("kafka_error", "client", rd_kafka_name(rk), "error", reason);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        w->fatal = true;
        gw_worker_stop(w);
    }
}

/* ---- set-up ---------------------------------------------------------------------- */

static bool conf_set(rd_kafka_conf_t *c, const char *k, const char *v)
{
    char err[256];
    if (v == NULL)
        return true;
    if (rd_kafka_conf_set(c, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) {
        GW_ERROR("kafka_config", "property", k, "error", err);
        return false;
    }
    return true;
}

static bool conf_int(rd_kafka_conf_t *c, const char *k, int64_t v)
{
    char s[32];
    snprintf(s, sizeof s, "%" PRId64, v);
    return conf_set(c, k, s);
}

/* kafka.properties ("key=value") apply to both clients, last; a property the
 * client type does not know is only warned about by librdkafka. */
static bool conf_common(gw_worker *w, rd_kafka_conf_t *c)
{
    const gw_kafka_config *k = &w->cfg->kafka;
    bool ok =
        conf_set(c, "bootstrap.servers", w->bootstrap) && conf_set(c, "client.id", k->client_id);
    for (size_t i = 0; ok && i < k->property_count; i++) {
        char kv[512];
        snprintf(kv, sizeof kv, "%s", k->properties[i]);
        char *eq = strchr(kv, '=');
        if (eq == NULL)
            return false;
        *eq = '\0';
        ok = conf_set(c, kv, eq + 1);
    }
    rd_kafka_conf_set_log_cb(c, on_rdkafka_log);
    rd_kafka_conf_set_error_cb(c, on_kafka_error);
    rd_kafka_conf_set_opaque(c, w);
    return ok;
}

/*
 * Prefetch in librdkafka 2.0.2: a partition is not fetched while the consumer
 * queue holds queued.min.messages or queued.max.messages.kbytes, and that
 * decision is only re-made when the broker thread wakes up, at most 1 s later
 * (no fetch.queue.backoff.ms before 2.1). A threshold that one fetch response
 * can cross therefore caps intake at about one threshold per second. So the
 * byte limit is the real bound: every fetch response is capped at half of it
 * (fetch.max.bytes, max.partition.fetch.bytes), and the message-count
 * threshold is kept out of the way (at least 100000). The queue stays under
 * the byte threshold as long as the worker drains it, and it always does:
 * messages of closed tiers are paused away, never left queued.
 */
static bool conf_prefetch(rd_kafka_conf_t *c, const gw_kafka_config *k)
{
    int64_t kbytes = k->prefetch_max_kbytes < 64 ? 64 : k->prefetch_max_kbytes;
    int64_t fetch_bytes = kbytes * 1024 / 2;
    int64_t min_msgs = k->prefetch_max_messages < 100000 ? 100000 : k->prefetch_max_messages;
    /* A broker returns at least one whole record batch per fetch even when it
     * is larger than fetch.max.bytes (up to the topic's max.message.bytes, 1
     * MiB by default, more where raised): a receive limit below that fails
     * the fetch and tears the connection down, over and over. */
    int64_t receive_bytes = (fetch_bytes > 8 * 1024 * 1024 ? fetch_bytes : 8 * 1024 * 1024) + 65536;
    return conf_int(c, "queued.min.messages", min_msgs) &&
           conf_int(c, "queued.max.messages.kbytes", kbytes) &&
           conf_int(c, "message.max.bytes", fetch_bytes) &&
           conf_int(c, "fetch.max.bytes", fetch_bytes) &&
           conf_int(c, "max.partition.fetch.bytes", fetch_bytes) &&
           conf_int(c, "receive.message.max.bytes", receive_bytes);
}

static gw_err make_consumer(gw_worker *w)
{
    const gw_kafka_config *k = &w->cfg->kafka;
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    bool ok = conf_set(c, "group.id", k->group_id) &&
              (k->group_instance_id == NULL || k->group_instance_id[0] == '\0' ||
               conf_set(c, "group.instance.id", k->group_instance_id)) &&
              conf_set(c, "enable.auto.offset.store", "false") &&
              conf_set(c, "enable.auto.commit", "true") &&
              conf_int(c, "auto.commit.interval.ms", k->commit_interval_ms) &&
              conf_set(c, "auto.offset.reset", "earliest") &&
              conf_set(c, "partition.assignment.strategy", "roundrobin") &&
              conf_int(c, "session.timeout.ms", k->session_timeout_ms) &&
              conf_int(c, "max.poll.interval.ms", k->max_poll_interval_ms) && conf_prefetch(c, k) &&
              conf_set(c, "enable.partition.eof", "false") && conf_common(w, c);
    if (!ok) {
        rd_kafka_conf_destroy(c);
        return GW_E_CONFIG;
    }
    rd_kafka_conf_set_rebalance_cb(c, on_rebalance);
    gw_observe_kafka_conf(c);
    char err[512];
    w->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    if (w->consumer == NULL) {
        GW_ERROR("consumer_create_failed", "error", err);
        rd_kafka_conf_destroy(c);
        return GW_E_CONFIG;
    }
    rd_kafka_poll_set_consumer(w->consumer);
    w->cq = rd_kafka_queue_get_consumer(w->consumer);
    for (int t = 0; t < GW_TIER__COUNT; t++)
        w->tq[t] = rd_kafka_queue_new(w->consumer);
    return GW_OK;
}

static gw_err make_producer(gw_worker *w)
{
    const gw_kafka_config *k = &w->cfg->kafka;
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    bool ok = conf_set(c, "enable.idempotence", "true") && conf_set(c, "acks", "all") &&
              conf_int(c, "linger.ms", k->linger_ms) && conf_set(c, "compression.type", "lz4") &&
              conf_set(c, "batch.num.messages", "10000") && conf_common(w, c);
    if (!ok) {
        rd_kafka_conf_destroy(c);
        return GW_E_CONFIG;
    }
    rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
    char err[512];
    w->producer = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    if (w->producer == NULL) {
        GW_ERROR("producer_create_failed", "error", err);
        rd_kafka_conf_destroy(c);
        return GW_E_CONFIG;
    }
    w->pq = rd_kafka_queue_get_main(w->producer);
    return GW_OK;
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
    w->cap_cfg = (gw_capacity_cfg){.max_in_flight = c,
                                   .low_share = cfg->worker.low_share,
                                   .normal_headroom = 0.10,
                                   .low_headroom = 0.25,
                                   .hysteresis = c / 32 > 1 ? c / 32 : 1};
    for (int t = 0; t < GW_TIER__COUNT; t++)
        w->tier_open[t] = true;
    w->vlimits = (gw_validate_limits){.max_tokens_limit = cfg->worker.max_tokens_limit,
                                      .max_content_bytes = (uint64_t)cfg->worker.max_content_bytes,
                                      .reply_topic_prefix = NULL};
    w->coalesce = (gw_coalesce_cfg){.coalesce_ms = (uint32_t)cfg->worker.chunk_coalesce_ms,
                                    .coalesce_bytes = (uint32_t)cfg->worker.chunk_coalesce_bytes};
    w->tier_topics[GW_TIER_HIGH] = cfg->kafka.topics.high;
    w->tier_topics[GW_TIER_NORMAL] = cfg->kafka.topics.normal;
    w->tier_topics[GW_TIER_LOW] = cfg->kafka.topics.low;
}

gw_err gw_worker_new(uv_loop_t *loop, const gw_config *cfg, const char *bootstrap, gw_worker **out)
{
    gw_worker *w = calloc(1, sizeof *w);
    if (w == NULL)
        return GW_E_NOMEM;
    w->loop = loop;
    w->cfg = cfg;
    w->run = GW_RUN_STARTING;
    w->bootstrap = strdup(bootstrap ? bootstrap : cfg->kafka.bootstrap);
    init_policies(w);
    gw_codec_limits lim;
    gw_codec_limits_default(&lim);
    lim.max_message_bytes = (size_t)cfg->worker.max_request_bytes;
    lim.max_messages = (size_t)cfg->worker.max_messages;
    w->codec = gw_codec_new(&lim);
    gw_err err = GW_E_CONFIG;
    if (w->bootstrap == NULL || w->codec == NULL)
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
    if ((err = make_consumer(w)) != GW_OK || (err = make_producer(w)) != GW_OK)
        goto fail;
    *out = w;
    return GW_OK;
fail:
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

static void on_tick(uv_timer_t *t)
{
    gw_worker *w = t->data;
    if (w->run == GW_RUN_DRAINING)
        maybe_finish_drain(w);
    else if (w->run == GW_RUN_RUNNING)
        gw_kq_kick(&w->ckq); /* poll the consumer regularly (max.poll.interval.ms) */
}

gw_err gw_worker_start(gw_worker *w)
{
    const gw_kafka_config *k = &w->cfg->kafka;
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(3);
    for (int t = 0; t < GW_TIER__COUNT; t++)
        rd_kafka_topic_partition_list_add(topics, w->tier_topics[t], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(w->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        GW_ERROR("subscribe_failed", "error", rd_kafka_err2str(err));
        return GW_E_IO;
    }
    w->run = GW_RUN_RUNNING;
    if (gw_kq_init(&w->ckq, w->loop, w->cq, serve_consumer, w) != GW_OK ||
        gw_kq_init(&w->pkq, w->loop, w->pq, serve_producer, w) != GW_OK)
        return GW_E_IO;
    for (int t = 0; t < GW_TIER__COUNT; t++)
        if (gw_kq_init(&w->tkq[t], w->loop, w->tq[t], serve_tiers, w) != GW_OK)
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

static void finish_shutdown(gw_worker *w, bool drained)
{
    if (w->run == GW_RUN_DONE)
        return;
    w->run = GW_RUN_DONE;
    for (gw_job *j = w->jobs; j != NULL; j = j->next)
        gw_job_abort(j);
    store_all(w);
    rd_kafka_resp_err_t err = rd_kafka_commit(w->consumer, NULL, 0);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        GW_ERROR("final_commit_failed", "error", rd_kafka_err2str(err));
        drained = false;
    }
    gw_kq_close(&w->ckq);
    for (int t = 0; t < GW_TIER__COUNT; t++)
        gw_kq_close(&w->tkq[t]);
    rd_kafka_consumer_close(w->consumer); /* leaves the group */
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
    w->exit_code = drained && !w->fatal ? GW_EXIT_OK : GW_EXIT_FAILURE;
    char n[24], f[24], pz[24], rs[24], cw[24], pw[24];
    snprintf(n, sizeof n, "%" PRIu64, w->n.done);
    snprintf(f, sizeof f, "%u", w->job_count);
    snprintf(pz, sizeof pz, "%" PRIu64, w->n.pauses);
    snprintf(rs, sizeof rs, "%" PRIu64, w->n.resumes);
    snprintf(cw, sizeof cw, "%" PRIu64, w->n.consumer_wakeups);
    snprintf(pw, sizeof pw, "%" PRIu64, w->n.producer_wakeups);
    GW_INFO("worker_stopped", "drained", drained ? "true" : "false", "requests_done", n,
            "unfinished", f, "pauses", pz, "resumes", rs, "consumer_wakeups", cw,
            "producer_wakeups", pw);
}

static void maybe_finish_drain(gw_worker *w)
{
    if (w->run == GW_RUN_DRAINING && w->job_count == 0 && w->bg_pending == 0 &&
        rd_kafka_outq_len(w->producer) == 0)
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
    if (w->cq)
        rd_kafka_queue_destroy(w->cq);
    for (int t = 0; t < GW_TIER__COUNT; t++)
        if (w->tq[t])
            rd_kafka_queue_destroy(w->tq[t]);
    if (w->pq)
        rd_kafka_queue_destroy(w->pq);
    if (w->consumer)
        rd_kafka_destroy(w->consumer);
    if (w->producer) {
        rd_kafka_purge(w->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_destroy(w->producer);
    }
    for (int t = 0; t < GW_TIER__COUNT; t++) {
        for (int32_t i = 0; i < w->parts[t].count; i++) {
            gw_part *p = w->parts[t].items[i];
            if (p != NULL && p->offs_ready)
                gw_offsets_cleanup(&p->offs);
            free(p);
        }
        free(w->parts[t].items);
    }
    if (w->providers)
        gw_providers_free(w->providers);
    gw_observe_free(w->obs);
    gw_codec_free(w->codec);
    gw_buf_cleanup(&w->scratch);
    free(w->bootstrap);
    free(w);
}
