/*
 * consumer: the worker's librdkafka consumer, its per-tier partition table
 * and offset store; see consumer.h (invariants there) and docs/worker.md.
 */
#include "kafka/consumer.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "kafka/kconf.h"

enum { MAX_PARTITIONS = 4096, GW_REWIND_LOOKUP_MS = 5000 };

struct gw_consumer {
    rd_kafka_t *rk;
    char *bootstrap;                      /* for a new handle (gw_consumer_recreate) */
    int64_t max_record_bytes;             /* largest request record the topics accept; 0 unknown */
    rd_kafka_queue_t *cq;                 /* consumer queue (main queue forwarded to it) */
    rd_kafka_queue_t *tq[GW_TIER__COUNT]; /* per tier: its partitions' fetch queues forward here */
    const gw_kafka_config *k;
    const char *tier_topics[GW_TIER__COUNT];
    gw_part_table parts[GW_TIER__COUNT];
    gw_consumer_hooks hooks;
    bool record_too_large; /* a fetch failed on receive.message.max.bytes */
    bool auth_failed;      /* a broker refused the credentials; cleared by an assignment */
    bool transactional;    /* offsets go through the producer's transactions */
};

/* ---- the partition table ------------------------------------------------------- */

static gw_part *part_get(gw_consumer *c, gw_tier t, int32_t partition, bool create)
{
    gw_part_table *tb = &c->parts[t];
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
        p->carry = -1;
        p->txn_committed = -1;
        tb->items[partition] = p;
    }
    return tb->items[partition];
}

int gw_consumer_tier_of(const gw_consumer *c, const char *topic)
{
    for (int t = 0; t < GW_TIER__COUNT; t++)
        if (strcmp(c->tier_topics[t], topic) == 0)
            return t;
    return -1;
}

const gw_part_table *gw_consumer_parts(const gw_consumer *c, gw_tier t)
{
    static const gw_part_table empty = {NULL, 0};
    return c != NULL ? &c->parts[t] : &empty;
}

gw_part *gw_consumer_part(gw_consumer *c, gw_tier t, int32_t partition)
{
    return part_get(c, t, partition, false);
}

const char *gw_consumer_topic(const gw_consumer *c, gw_tier t)
{
    return c->tier_topics[t];
}

/* ---- pause, store, seek -------------------------------------------------------- */

bool gw_consumer_set_paused(gw_consumer *c, gw_part *p, bool pause)
{
    assert(p->assigned || !p->paused);
    if (p->paused == pause || !p->assigned)
        return false;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, c->tier_topics[p->tier], p->partition);
    rd_kafka_resp_err_t err =
        pause ? rd_kafka_pause_partitions(c->rk, l) : rd_kafka_resume_partitions(c->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        return false;
    p->paused = pause;
    return true;
}

void gw_consumer_store(gw_consumer *c, gw_part *p)
{
    if (!p->assigned || !p->offs_ready || c->transactional)
        return;
    int64_t off = gw_offsets_committable(&p->offs);
    if (off < 0 || off == p->stored)
        return;
    /* The tracker's committable offset only grows within a generation, and
     * p->stored is reset with every new one. */
    assert(off > p->stored);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, c->tier_topics[p->tier], p->partition)->offset = off;
    rd_kafka_resp_err_t err = rd_kafka_offsets_store(c->rk, l);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR && l->elems[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
        p->stored = off;
    rd_kafka_topic_partition_list_destroy(l);
}

void gw_consumer_store_all(gw_consumer *c)
{
    for (int t = 0; t < GW_TIER__COUNT; t++)
        for (int32_t i = 0; i < c->parts[t].count; i++)
            if (c->parts[t].items[i] != NULL)
                gw_consumer_store(c, c->parts[t].items[i]);
}

void gw_consumer_seek(gw_consumer *c, gw_part *p, int64_t offset)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, c->tier_topics[p->tier], p->partition)->offset = offset;
    rd_kafka_error_t *e = rd_kafka_seek_partitions(c->rk, l, 0);
    if (e != NULL) {
        GW_ERROR("seek_failed", "topic", c->tier_topics[p->tier], "error",
                 rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

rd_kafka_resp_err_t gw_consumer_commit_sync(gw_consumer *c)
{
    if (c->transactional)
        return RD_KAFKA_RESP_ERR_NO_ERROR;
    gw_consumer_store_all(c);
    rd_kafka_resp_err_t err = rd_kafka_commit(c->rk, NULL, 0);
    return err == RD_KAFKA_RESP_ERR__NO_OFFSET ? RD_KAFKA_RESP_ERR_NO_ERROR : err;
}

/* ---- rebalance ----------------------------------------------------------------- */

/* A new generation of p: fresh trackers (the publish tracker too when
 * transactional), nothing paused for run-ahead. */
static void part_fresh(gw_consumer *c, gw_part *p, uint32_t window)
{
    if (p->offs_ready)
        gw_offsets_cleanup(&p->offs);
    p->offs_ready = gw_offsets_init(&p->offs, window) == GW_OK;
    if (p->pubs_ready)
        gw_offsets_cleanup(&p->pubs);
    p->pubs_ready = c->transactional && gw_offsets_init(&p->pubs, window) == GW_OK;
    if (c->transactional && !p->pubs_ready && p->offs_ready) {
        gw_offsets_cleanup(&p->offs); /* both or neither: intake skips the partition */
        p->offs_ready = false;
    }
    p->generation++;
    p->runahead_full = false;
}

/*
 * After a handle was given up (gw_consumer_give_up), what it had finished
 * but could not commit is resumed from: a partition assigned again starts at
 * its carried offset when that is past the group's committed one, and the
 * carried offset is stored, so the next commit holds it.
 */
static void apply_carry(gw_consumer *c, rd_kafka_topic_partition_list_t *parts)
{
    bool any = false;
    for (int i = 0; i < parts->cnt && !any; i++) {
        int t = gw_consumer_tier_of(c, parts->elems[i].topic);
        gw_part *p = t < 0 ? NULL : part_get(c, (gw_tier)t, parts->elems[i].partition, false);
        any = p != NULL && p->carry >= 0;
    }
    if (!any)
        return;
    rd_kafka_topic_partition_list_t *committed = rd_kafka_topic_partition_list_copy(parts);
    rd_kafka_resp_err_t err = rd_kafka_committed(c->rk, committed, 5000);
    for (int i = 0; i < parts->cnt; i++) {
        int t = gw_consumer_tier_of(c, parts->elems[i].topic);
        gw_part *p = t < 0 ? NULL : part_get(c, (gw_tier)t, parts->elems[i].partition, false);
        if (p == NULL || p->carry < 0)
            continue;
        int64_t have = err == RD_KAFKA_RESP_ERR_NO_ERROR ? committed->elems[i].offset : -1;
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR && p->carry > have) {
            parts->elems[i].offset = p->carry;
            char part[16], from[24], to[24];
            snprintf(part, sizeof part, "%" PRId32, p->partition);
            snprintf(from, sizeof from, "%" PRId64, have);
            snprintf(to, sizeof to, "%" PRId64, p->carry);
            GW_INFO("offset_carried", "topic", parts->elems[i].topic, "partition", part,
                    "committed", from, "resume_at", to);
        }
        p->carry = -1;
    }
    rd_kafka_topic_partition_list_destroy(committed);
}

static void store_carried(gw_consumer *c, rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; i < parts->cnt; i++) {
        int t = gw_consumer_tier_of(c, parts->elems[i].topic);
        gw_part *p = t < 0 ? NULL : part_get(c, (gw_tier)t, parts->elems[i].partition, false);
        if (p == NULL || parts->elems[i].offset < 0)
            continue;
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, parts->elems[i].topic, p->partition)->offset =
            parts->elems[i].offset;
        if (rd_kafka_offsets_store(c->rk, l) == RD_KAFKA_RESP_ERR_NO_ERROR &&
            l->elems[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
            p->stored = parts->elems[i].offset;
        rd_kafka_topic_partition_list_destroy(l);
    }
}

static void on_assign(gw_consumer *c, rd_kafka_topic_partition_list_t *parts)
{
    uint32_t window = (uint32_t)c->k->max_partition_runahead * 2;
    apply_carry(c, parts);
    for (int i = 0; i < parts->cnt; i++) {
        int t = gw_consumer_tier_of(c, parts->elems[i].topic);
        gw_part *p = t < 0 ? NULL : part_get(c, (gw_tier)t, parts->elems[i].partition, true);
        if (p == NULL)
            continue;
        part_fresh(c, p, window);
        p->assigned = true;
        p->paused = false;
        p->stored = -1;
        p->txn_committed = -1;
    }
    rd_kafka_assign(c->rk, parts);
    store_carried(c, parts);
    for (int i = 0; i < parts->cnt; i++) {
        int t = gw_consumer_tier_of(c, parts->elems[i].topic);
        rd_kafka_queue_t *pq = t < 0 ? NULL
                                     : rd_kafka_queue_get_partition(c->rk, parts->elems[i].topic,
                                                                    parts->elems[i].partition);
        if (pq == NULL)
            continue;
        rd_kafka_queue_forward(pq, c->tq[t]);
        rd_kafka_queue_destroy(pq);
    }
    if (c->hooks.assigned != NULL)
        c->hooks.assigned(c->hooks.ud);
    char n[16];
    snprintf(n, sizeof n, "%d", parts->cnt);
    GW_INFO("partitions_assigned", "count", n);
}

static void on_revoke(gw_consumer *c, rd_kafka_topic_partition_list_t *parts)
{
    bool lost = rd_kafka_assignment_lost(c->rk);
    if (c->transactional) {
        if (c->hooks.revoking != NULL)
            c->hooks.revoking(c->hooks.ud, lost);
    } else if (!lost) {
        /* Synchronous, but only here and at exit: the group must hold what is
         * done before another member takes these partitions. */
        rd_kafka_resp_err_t err = gw_consumer_commit_sync(c);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
            GW_WARN("revoke_commit_failed", "error", rd_kafka_err2str(err));
    }
    for (int i = 0; i < parts->cnt; i++) {
        int t = gw_consumer_tier_of(c, parts->elems[i].topic);
        gw_part *p = t < 0 ? NULL : part_get(c, (gw_tier)t, parts->elems[i].partition, false);
        if (p == NULL)
            continue;
        p->assigned = false;
        p->paused = false;
        p->generation++;
    }
    rd_kafka_assign(c->rk, NULL);
    char n[16];
    snprintf(n, sizeof n, "%d", parts->cnt);
    GW_INFO("partitions_revoked", "count", n, "lost", lost ? "true" : "false");
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    gw_consumer *c = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        c->auth_failed = false; /* the group answered: the credentials pass */
        on_assign(c, parts);
    } else
        on_revoke(c, parts);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    gw_consumer *c = opaque;
    if (strstr(reason, "receive.message.max.bytes") != NULL)
        c->record_too_large = true; /* a fetch response over the receive limit */
    if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION)
        c->auth_failed = true;
    if (gw_kconf_error(rk, err, reason) && c->hooks.fatal != NULL)
        c->hooks.fatal(c->hooks.ud);
}

static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    gw_consumer *c = opaque;
    if (c->hooks.stats != NULL)
        c->hooks.stats(c->hooks.ud, json, len);
    return 0; /* librdkafka frees json */
}

/* ---- transactional offsets ---------------------------------------------------- */

rd_kafka_topic_partition_list_t *gw_consumer_txn_offsets(gw_consumer *c)
{
    rd_kafka_topic_partition_list_t *l = NULL;
    for (int t = 0; t < GW_TIER__COUNT; t++)
        for (int32_t i = 0; i < c->parts[t].count; i++) {
            gw_part *p = c->parts[t].items[i];
            if (p == NULL || !p->assigned || !p->offs_ready)
                continue;
            int64_t off = gw_offsets_committable(&p->offs);
            if (off < 0 || off == p->txn_committed)
                continue;
            if (l == NULL)
                l = rd_kafka_topic_partition_list_new(8);
            rd_kafka_topic_partition_list_add(l, c->tier_topics[t], p->partition)->offset = off;
        }
    return l;
}

void gw_consumer_txn_committed(gw_consumer *c, const rd_kafka_topic_partition_list_t *offsets)
{
    for (int i = 0; offsets != NULL && i < offsets->cnt; i++) {
        int t = gw_consumer_tier_of(c, offsets->elems[i].topic);
        gw_part *p = t < 0 ? NULL : part_get(c, (gw_tier)t, offsets->elems[i].partition, false);
        if (p != NULL && p->assigned)
            p->txn_committed = offsets->elems[i].offset;
    }
}

rd_kafka_consumer_group_metadata_t *gw_consumer_group_metadata(gw_consumer *c)
{
    return rd_kafka_consumer_group_metadata(c->rk);
}

/* The group's committed offsets of the assigned partitions that have no
 * transaction's offset yet (*l NULL when every one has). False when they
 * could not be read. */
static bool rewind_lookup(gw_consumer *c, rd_kafka_topic_partition_list_t **l)
{
    *l = NULL;
    for (int t = 0; t < GW_TIER__COUNT; t++)
        for (int32_t i = 0; i < c->parts[t].count; i++) {
            gw_part *p = c->parts[t].items[i];
            if (p == NULL || !p->assigned || p->txn_committed >= 0)
                continue;
            if (*l == NULL)
                *l = rd_kafka_topic_partition_list_new(8);
            rd_kafka_topic_partition_list_add(*l, c->tier_topics[t], p->partition);
        }
    if (*l == NULL)
        return true;
    bool ok = rd_kafka_committed(c->rk, *l, GW_REWIND_LOOKUP_MS) == RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int i = 0; ok && i < (*l)->cnt; i++)
        ok = (*l)->elems[i].err == RD_KAFKA_RESP_ERR_NO_ERROR;
    return ok;
}

gw_err gw_consumer_rewind(gw_consumer *c)
{
    rd_kafka_topic_partition_list_t *group = NULL;
    bool known = rewind_lookup(c, &group);
    uint32_t window = (uint32_t)c->k->max_partition_runahead * 2, n = 0;
    for (int t = 0; t < GW_TIER__COUNT; t++)
        for (int32_t i = 0; i < c->parts[t].count; i++) {
            gw_part *p = c->parts[t].items[i];
            if (p == NULL || !p->assigned)
                continue;
            part_fresh(c, p, window); /* jobs in flight no longer touch it */
            int64_t to = p->txn_committed;
            rd_kafka_topic_partition_t *g =
                to >= 0 || group == NULL
                    ? NULL
                    : rd_kafka_topic_partition_list_find(group, c->tier_topics[t], p->partition);
            if (g != NULL)
                to = g->offset;
            if (to < 0)
                to = RD_KAFKA_OFFSET_BEGINNING; /* the group has none: auto.offset.reset */
            if (known)
                gw_consumer_seek(c, p, to);
            n++;
        }
    if (group != NULL)
        rd_kafka_topic_partition_list_destroy(group);
    char cnt[16];
    snprintf(cnt, sizeof cnt, "%u", n);
    if (!known) {
        GW_ERROR("txn_rewind_failed", "partitions", cnt, "error",
                 "the group's committed offsets could not be read");
        return GW_E_IO;
    }
    GW_WARN("txn_rewind", "partitions", cnt, "action",
            "served again from the last committed offsets");
    if (c->hooks.assigned != NULL)
        c->hooks.assigned(c->hooks.ud);
    return GW_OK;
}

/* ---- set-up -------------------------------------------------------------------- */

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
static bool conf_prefetch(rd_kafka_conf_t *c, const gw_kafka_config *k, int64_t max_record)
{
    int64_t kbytes = k->prefetch_max_kbytes < 64 ? 64 : k->prefetch_max_kbytes;
    int64_t fetch_bytes = kbytes * 1024 / 2;
    int64_t min_msgs = k->prefetch_max_messages < 100000 ? 100000 : k->prefetch_max_messages;
    /* A broker returns at least one whole record batch per fetch even when it
     * is larger than fetch.max.bytes (up to the topic's max.message.bytes, 1
     * MiB by default, more where raised): a receive limit below that fails
     * the fetch and tears the connection down, over and over. */
    int64_t receive_bytes = (fetch_bytes > 8 * 1024 * 1024 ? fetch_bytes : 8 * 1024 * 1024) + 65536;
    /* ...and a topic may accept records larger than that (max.message.bytes,
     * read at start): one such record must still be fetchable, or its
     * partition stalls for good. */
    if (max_record + 1024 * 1024 > receive_bytes)
        receive_bytes = max_record + 1024 * 1024;
    if (receive_bytes > 2147483647)
        receive_bytes = 2147483647;
    return gw_kconf_int(c, "queued.min.messages", min_msgs) &&
           gw_kconf_int(c, "queued.max.messages.kbytes", kbytes) &&
           gw_kconf_int(c, "message.max.bytes", fetch_bytes) &&
           gw_kconf_int(c, "fetch.max.bytes", fetch_bytes) &&
           gw_kconf_int(c, "max.partition.fetch.bytes", fetch_bytes) &&
           gw_kconf_int(c, "receive.message.max.bytes", receive_bytes);
}

static rd_kafka_t *make_consumer(gw_consumer *kc, const char *bootstrap)
{
    const gw_kafka_config *k = kc->k;
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    bool ok = gw_kconf_set(c, "group.id", k->group_id) &&
              (k->group_instance_id == NULL || k->group_instance_id[0] == '\0' ||
               gw_kconf_set(c, "group.instance.id", k->group_instance_id)) &&
              gw_kconf_set(c, "enable.auto.offset.store", "false") &&
              gw_kconf_set(c, "enable.auto.commit", k->transactional ? "false" : "true") &&
              gw_kconf_int(c, "auto.commit.interval.ms", k->commit_interval_ms) &&
              gw_kconf_set(c, "auto.offset.reset", "earliest") &&
              gw_kconf_set(c, "partition.assignment.strategy", "roundrobin") &&
              gw_kconf_int(c, "session.timeout.ms", k->session_timeout_ms) &&
              gw_kconf_int(c, "max.poll.interval.ms", k->max_poll_interval_ms) &&
              conf_prefetch(c, k, kc->max_record_bytes) &&
              gw_kconf_set(c, "enable.partition.eof", "false") && gw_kconf_common(c, k, bootstrap);
    if (!ok) {
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    rd_kafka_conf_set_error_cb(c, on_error);
    rd_kafka_conf_set_opaque(c, kc);
    rd_kafka_conf_set_rebalance_cb(c, on_rebalance);
    if (kc->hooks.stats != NULL) {
        char v[16], err[128];
        snprintf(v, sizeof v, "%d", kc->hooks.stats_interval_ms);
        rd_kafka_conf_set(c, "statistics.interval.ms", v, err, sizeof err);
        rd_kafka_conf_set_stats_cb(c, on_stats);
    }
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    if (rk == NULL) {
        GW_ERROR("consumer_create_failed", "error", err);
        rd_kafka_conf_destroy(c);
    }
    return rk;
}

gw_err gw_consumer_new(const gw_kafka_config *k, const char *bootstrap,
                       const char *const tier_topics[GW_TIER__COUNT], int64_t max_record_bytes,
                       const gw_consumer_hooks *hooks, gw_consumer **out)
{
    gw_consumer *c = calloc(1, sizeof *c);
    if (c == NULL)
        return GW_E_NOMEM;
    c->k = k;
    c->transactional = k->transactional;
    c->max_record_bytes = max_record_bytes;
    c->bootstrap = strdup(bootstrap);
    if (c->bootstrap == NULL) {
        free(c);
        return GW_E_NOMEM;
    }
    for (int t = 0; t < GW_TIER__COUNT; t++)
        c->tier_topics[t] = tier_topics[t];
    if (hooks != NULL)
        c->hooks = *hooks;
    c->rk = make_consumer(c, bootstrap);
    if (c->rk == NULL) {
        free(c->bootstrap);
        free(c);
        return GW_E_CONFIG;
    }
    rd_kafka_poll_set_consumer(c->rk);
    c->cq = rd_kafka_queue_get_consumer(c->rk);
    for (int t = 0; t < GW_TIER__COUNT; t++)
        c->tq[t] = rd_kafka_queue_new(c->rk);
    *out = c;
    return GW_OK;
}

/* ---- a new handle after a fence ---------------------------------------------------- */

bool gw_consumer_fenced(gw_consumer *c)
{
    return rd_kafka_fatal_error(c->rk, NULL, 0) == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID;
}

bool gw_consumer_auth_failed(const gw_consumer *c)
{
    return c != NULL && c->auth_failed;
}

bool gw_consumer_record_too_large(const gw_consumer *c)
{
    return c->record_too_large;
}

void gw_consumer_give_up(gw_consumer *c)
{
    uint32_t n = 0;
    for (int t = 0; t < GW_TIER__COUNT; t++)
        for (int32_t i = 0; i < c->parts[t].count; i++) {
            gw_part *p = c->parts[t].items[i];
            if (p == NULL || !p->assigned)
                continue;
            int64_t done = p->offs_ready ? gw_offsets_committable(&p->offs) : -1;
            /* Transactional: what is done but uncommitted is in a transaction
             * that is aborted (or was committed with its offsets): no carry. */
            p->carry = c->transactional ? -1 : done > p->stored ? done : p->stored;
            p->assigned = false;
            p->paused = false;
            p->generation++;
            n++;
        }
    char cnt[16];
    snprintf(cnt, sizeof cnt, "%u", n);
    GW_INFO("partitions_revoked", "count", cnt, "lost", "true", "reason", "consumer replaced");
}

gw_err gw_consumer_recreate(gw_consumer *c)
{
    /* The old handle. A healthy one (replaced for a larger receive limit)
     * commits what is stored and leaves the group, so the new one is
     * assigned at once; a fenced or fatal one cannot leave or commit and is
     * destroyed without closing. */
    bool healthy =
        c->rk != NULL && rd_kafka_fatal_error(c->rk, NULL, 0) == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (healthy)
        rd_kafka_consumer_close(c->rk);
    if (c->cq)
        rd_kafka_queue_destroy(c->cq);
    for (int t = 0; t < GW_TIER__COUNT; t++)
        if (c->tq[t])
            rd_kafka_queue_destroy(c->tq[t]);
    c->cq = NULL;
    memset(c->tq, 0, sizeof c->tq);
    if (c->rk != NULL && healthy)
        rd_kafka_destroy(c->rk);
    else if (c->rk != NULL)
        rd_kafka_destroy_flags(c->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    c->rk = make_consumer(c, c->bootstrap);
    c->record_too_large = false;
    if (c->rk == NULL)
        return GW_E_CONFIG;
    rd_kafka_poll_set_consumer(c->rk);
    c->cq = rd_kafka_queue_get_consumer(c->rk);
    for (int t = 0; t < GW_TIER__COUNT; t++)
        c->tq[t] = rd_kafka_queue_new(c->rk);
    return gw_consumer_subscribe(c);
}

void gw_consumer_set_max_record_bytes(gw_consumer *c, int64_t bytes)
{
    if (bytes > c->max_record_bytes)
        c->max_record_bytes = bytes;
    else /* the topics said nothing new (or nothing): double it */
        c->max_record_bytes =
            c->max_record_bytes < 8 * 1024 * 1024 ? 16 * 1024 * 1024 : c->max_record_bytes * 2;
    if (c->max_record_bytes > 1024 * 1024 * 1024)
        c->max_record_bytes = 1024 * 1024 * 1024;
}

int64_t gw_kafka_max_message_bytes(rd_kafka_t *rk, const char *const *topics, size_t n,
                                   int timeout_ms)
{
    rd_kafka_ConfigResource_t *res[GW_TIER__COUNT];
    if (n > GW_TIER__COUNT)
        n = GW_TIER__COUNT;
    for (size_t i = 0; i < n; i++)
        res[i] = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topics[i]);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    char err[128];
    rd_kafka_AdminOptions_set_request_timeout(opt, timeout_ms, err, sizeof err);
    rd_kafka_DescribeConfigs(rk, res, n, opt, q);
    int64_t max = -1;
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
    const char *why = "timed out";
    if (ev != NULL && rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR)
        why = rd_kafka_event_error_string(ev);
    const rd_kafka_DescribeConfigs_result_t *r =
        ev != NULL && rd_kafka_event_error(ev) == RD_KAFKA_RESP_ERR_NO_ERROR
            ? rd_kafka_event_DescribeConfigs_result(ev)
            : NULL;
    size_t cnt = 0;
    const rd_kafka_ConfigResource_t **rr =
        r != NULL ? rd_kafka_DescribeConfigs_result_resources(r, &cnt) : NULL;
    for (size_t i = 0; i < cnt; i++) {
        size_t ne = 0;
        const rd_kafka_ConfigEntry_t **e = rd_kafka_ConfigResource_configs(rr[i], &ne);
        for (size_t j = 0; j < ne; j++) {
            const char *v = rd_kafka_ConfigEntry_value(e[j]);
            if (strcmp(rd_kafka_ConfigEntry_name(e[j]), "max.message.bytes") == 0 && v != NULL) {
                int64_t b = strtoll(v, NULL, 10);
                max = b > max ? b : max;
            }
        }
    }
    if (max < 0)
        GW_WARN("topic_limits_unknown", "error", why);
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_queue_destroy(q);
    for (size_t i = 0; i < n; i++)
        rd_kafka_ConfigResource_destroy(res[i]);
    return max;
}

gw_err gw_consumer_subscribe(gw_consumer *c)
{
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(3);
    for (int t = 0; t < GW_TIER__COUNT; t++)
        rd_kafka_topic_partition_list_add(topics, c->tier_topics[t], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(c->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        GW_ERROR("subscribe_failed", "error", rd_kafka_err2str(err));
        return GW_E_IO;
    }
    return GW_OK;
}

rd_kafka_queue_t *gw_consumer_queue(gw_consumer *c)
{
    return c->cq;
}

rd_kafka_queue_t *gw_consumer_tier_queue(gw_consumer *c, gw_tier t)
{
    return c != NULL ? c->tq[t] : NULL;
}

rd_kafka_message_t *gw_consumer_poll(gw_consumer *c)
{
    return rd_kafka_consumer_poll(c->rk, 0);
}

rd_kafka_resp_err_t gw_consumer_fatal_error(gw_consumer *c, char *reason, size_t size)
{
    return rd_kafka_fatal_error(c->rk, reason, size);
}

void gw_consumer_close(gw_consumer *c)
{
    rd_kafka_consumer_close(c->rk);
}

void gw_consumer_free(gw_consumer *c)
{
    if (c == NULL)
        return;
    if (c->cq)
        rd_kafka_queue_destroy(c->cq);
    for (int t = 0; t < GW_TIER__COUNT; t++)
        if (c->tq[t])
            rd_kafka_queue_destroy(c->tq[t]);
    if (c->rk)
        rd_kafka_destroy(c->rk);
    free(c->bootstrap);
    for (int t = 0; t < GW_TIER__COUNT; t++) {
        for (int32_t i = 0; i < c->parts[t].count; i++) {
            gw_part *p = c->parts[t].items[i];
            if (p != NULL && p->offs_ready)
                gw_offsets_cleanup(&p->offs);
            if (p != NULL && p->pubs_ready)
                gw_offsets_cleanup(&p->pubs);
            free(p);
        }
        free(c->parts[t].items);
    }
    free(c);
}
