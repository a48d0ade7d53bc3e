/* producer: the worker's librdkafka producer; see producer.h. */
#include "kafka/producer.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "kafka/kconf.h"

/* A message to produce again later (gw_producer_defer). */
typedef struct gw_deferred {
    struct gw_deferred *next;
    char *topic;
    void *key, *val;
    size_t key_len, len;
    rd_kafka_headers_t *hdrs;
    void *opaque;
    int64_t due_ms;
} gw_deferred;

struct gw_producer {
    rd_kafka_t *rk;
    rd_kafka_queue_t *pq; /* main queue: delivery reports */
    gw_producer_hooks hooks;
    gw_deferred *deferred; /* unordered; short (only failed outputs) */
    size_t deferred_count;
    /* Transactional: messages sent while a transaction ends (gw_producer_hold),
     * in the order sent; due_ms unused. Sent by gw_producer_release. */
    gw_deferred *held_head, *held_tail;
    size_t held_count, held_bytes;
    bool holding;
    /* Delivery reports as events (transactional): librdkafka's flush inside
     * commit and abort then waits for them instead of serving callbacks on the
     * thread that calls it (rd_kafka_flush in RD_KAFKA_DR_MODE_EVENT). */
    bool dr_events;
    bool transactional;          /* made with a transactional.id */
    bool txn_open;               /* begun, not yet committed or aborted */
    bool txn_dead;               /* a transaction call ended in GW_TXN_FATAL: no more calls */
    rd_kafka_resp_err_t refusal; /* why the last failed gw_producer_send was refused */
};

enum {
    GW_TXN_INIT_MS = 30000,
    GW_TXN_RETRY_PAUSE_NS = 100 * 1000 * 1000,
    GW_EVENTS_BUDGET = 4096, /* events served per gw_producer_poll */
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    gw_producer *p = opaque;
    if (p->hooks.delivered != NULL)
        p->hooks.delivered(p->hooks.ud, m, m->_private);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    gw_producer *p = opaque;
    if (gw_kconf_error(rk, err, reason) && p->hooks.fatal != NULL)
        p->hooks.fatal(p->hooks.ud);
}

/* The transactional properties, or nothing when id is NULL. */
static bool conf_txn(rd_kafka_conf_t *c, const gw_kafka_config *k, const char *id)
{
    return id == NULL || (gw_kconf_set(c, "transactional.id", id) &&
                          gw_kconf_int(c, "transaction.timeout.ms", k->transaction_timeout_ms));
}

/* rd_kafka_init_transactions: registers the id with its coordinator, fencing
 * and aborting what an earlier producer with the same id left open. */
static gw_err txn_init(gw_producer *p, const char *id)
{
    rd_kafka_error_t *e = rd_kafka_init_transactions(p->rk, GW_TXN_INIT_MS);
    if (e == NULL) {
        p->transactional = true;
        GW_INFO("txn_ready", "transactional_id", id);
        return GW_OK;
    }
    GW_ERROR("txn_init_failed", "transactional_id", id, "error", rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
    return GW_E_IO;
}

gw_err gw_producer_new(const gw_kafka_config *k, const char *bootstrap,
                       const char *transactional_id, const gw_producer_hooks *hooks,
                       gw_producer **out)
{
    gw_producer *p = calloc(1, sizeof *p);
    if (p == NULL)
        return GW_E_NOMEM;
    if (hooks != NULL)
        p->hooks = *hooks;
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    bool ok = gw_kconf_set(c, "enable.idempotence", "true") && gw_kconf_set(c, "acks", "all") &&
              gw_kconf_int(c, "linger.ms", k->linger_ms) &&
              gw_kconf_set(c, "compression.type", gw_cfg_compression_name(k->compression)) &&
              (k->produce_in_flight <= 0 ||
               gw_kconf_int(c, "max.in.flight.requests.per.connection", k->produce_in_flight)) &&
              gw_kconf_set(c, "batch.num.messages", "10000") && conf_txn(c, k, transactional_id) &&
              gw_kconf_common(c, k, bootstrap);
    if (!ok) {
        rd_kafka_conf_destroy(c);
        free(p);
        return GW_E_CONFIG;
    }
    rd_kafka_conf_set_error_cb(c, on_error);
    rd_kafka_conf_set_opaque(c, p);
    p->dr_events = transactional_id != NULL;
    if (p->dr_events)
        rd_kafka_conf_set_events(c, RD_KAFKA_EVENT_DR | RD_KAFKA_EVENT_ERROR);
    else
        rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
    char err[512];
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    if (p->rk == NULL) {
        GW_ERROR("producer_create_failed", "error", err);
        rd_kafka_conf_destroy(c);
        free(p);
        return GW_E_CONFIG;
    }
    p->pq = rd_kafka_queue_get_main(p->rk);
    if (transactional_id != NULL && txn_init(p, transactional_id) != GW_OK) {
        gw_producer_free(p);
        return GW_E_IO;
    }
    *out = p;
    return GW_OK;
}

/* Open a transaction before the first message after a commit or abort. */
static bool txn_begin(gw_producer *p)
{
    if (!p->transactional || p->txn_open)
        return true;
    if (p->txn_dead)
        return false;
    rd_kafka_error_t *e = rd_kafka_begin_transaction(p->rk);
    if (e != NULL) {
        GW_ERROR("txn_failed", "step", "begin", "error", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        return false;
    }
    p->txn_open = true;
    return true;
}

static void deferred_free(gw_deferred *d);

/* A message sent while a transaction ends: copied, sent by
 * gw_producer_release in the order held. Takes headers. */
static gw_err hold(gw_producer *p, const char *topic, const void *key, size_t key_len,
                   const void *val, size_t len, rd_kafka_headers_t *headers, void *opaque)
{
    gw_deferred *d = calloc(1, sizeof *d);
    if (d == NULL)
        goto fail;
    d->topic = strdup(topic);
    d->key = key_len > 0 ? malloc(key_len) : NULL;
    d->val = len > 0 ? malloc(len) : NULL;
    d->hdrs = headers;
    headers = NULL;
    if (d->topic == NULL || (key_len > 0 && d->key == NULL) || (len > 0 && d->val == NULL))
        goto fail;
    if (key_len > 0)
        memcpy(d->key, key, key_len);
    if (len > 0)
        memcpy(d->val, val, len);
    d->key_len = key_len;
    d->len = len;
    d->opaque = opaque;
    if (p->held_tail != NULL)
        p->held_tail->next = d;
    else
        p->held_head = d;
    p->held_tail = d;
    p->held_count++;
    p->held_bytes += len + key_len;
    return GW_OK;
fail:
    if (d != NULL)
        deferred_free(d);
    if (headers != NULL)
        rd_kafka_headers_destroy(headers);
    p->refusal = RD_KAFKA_RESP_ERR__QUEUE_FULL;
    GW_ERROR("produce_failed", "topic", topic, "error", "out of memory holding the output");
    return GW_E_NOMEM;
}

gw_err gw_producer_send(gw_producer *p, const char *topic, const void *key, size_t key_len,
                        const void *val, size_t len, rd_kafka_headers_t *headers, void *opaque)
{
    if (p->holding)
        return hold(p, topic, key, key_len, val, len, headers, opaque);
    rd_kafka_resp_err_t err =
        !txn_begin(p) ? RD_KAFKA_RESP_ERR__STATE
        : headers != NULL
            ? rd_kafka_producev(
                  p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key_len),
                  RD_KAFKA_V_VALUE((void *)val, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                  RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END)
            : rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key_len),
                                RD_KAFKA_V_VALUE((void *)val, len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(opaque),
                                RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (headers != NULL)
            rd_kafka_headers_destroy(headers);
        p->refusal = err;
        GW_ERROR("produce_failed", "topic", topic, "error", rd_kafka_err2str(err), "error_name",
                 rd_kafka_err2name(err));
        return GW_E_IO;
    }
    return GW_OK;
}

rd_kafka_resp_err_t gw_producer_refusal(const gw_producer *p)
{
    return p->refusal;
}

bool gw_producer_err_permanent(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR__FATAL:
    /* librdkafka reports a missing topic only after waiting
     * topic.metadata.propagation.max.ms for it (a moving leader it retries
     * itself); while it holds the topic as missing it refuses every produce
     * to it at once */
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    /* no WRITE (or DESCRIBE) on the topic: the same answer until an
     * operator grants it; once a metadata refresh saw it, librdkafka refuses
     * every produce to the topic at once */
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
        return true;
    default:
        return false;
    }
}

gw_err gw_producer_republish(gw_producer *p, const rd_kafka_message_t *m, void *opaque)
{
    rd_kafka_headers_t *h = NULL, *copy = NULL;
    if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR)
        copy = rd_kafka_headers_copy(h);
    return gw_producer_send(p, rd_kafka_topic_name(m->rkt), m->key, m->key_len, m->payload, m->len,
                            copy ? copy : rd_kafka_headers_new(1), opaque);
}

rd_kafka_headers_t *gw_producer_dlq_headers(const gw_dlq_source *m, gw_err err, size_t max_payload,
                                            size_t max_key, size_t *len, size_t *key_len)
{
    rd_kafka_headers_t *h =
        m->headers != NULL ? rd_kafka_headers_copy(m->headers) : rd_kafka_headers_new(8);
    char part[16], off[24];
    snprintf(part, sizeof part, "%" PRId32, m->partition);
    snprintf(off, sizeof off, "%" PRId64, m->offset);
    rd_kafka_header_add(h, "error_code", -1, gw_err_code(err), -1);
    rd_kafka_header_add(h, "error_name", -1, gw_err_name(err), -1);
    rd_kafka_header_add(h, "error_message", -1, gw_strerror(err), -1);
    rd_kafka_header_add(h, "source_topic", -1, m->topic ? m->topic : "", -1);
    rd_kafka_header_add(h, "source_partition", -1, part, -1);
    rd_kafka_header_add(h, "source_offset", -1, off, -1);
    *len = m->len;
    *key_len = m->key_len;
    if (*len > max_payload || *key_len > max_key) {
        char size[24];
        snprintf(size, sizeof size, "%zu", m->len);
        rd_kafka_header_add(h, "payload_truncated", -1, "true", -1);
        rd_kafka_header_add(h, "payload_size", -1, size, -1);
        *len = *len > max_payload ? max_payload : *len;
        *key_len = *key_len > max_key ? max_key : *key_len;
    }
    return h;
}

gw_err gw_producer_defer(gw_producer *p, const rd_kafka_message_t *m, void *opaque, int64_t due_ms)
{
    gw_deferred *d = calloc(1, sizeof *d);
    if (d == NULL)
        return GW_E_NOMEM;
    d->topic = strdup(rd_kafka_topic_name(m->rkt));
    d->key = m->key_len > 0 ? malloc(m->key_len) : NULL;
    d->val = m->len > 0 ? malloc(m->len) : NULL;
    if (d->topic == NULL || (m->key_len > 0 && d->key == NULL) || (m->len > 0 && d->val == NULL)) {
        free(d->topic);
        free(d->key);
        free(d->val);
        free(d);
        return GW_E_NOMEM;
    }
    if (m->key_len > 0)
        memcpy(d->key, m->key, m->key_len);
    if (m->len > 0)
        memcpy(d->val, m->payload, m->len);
    d->key_len = m->key_len;
    d->len = m->len;
    rd_kafka_headers_t *h = NULL;
    if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR)
        d->hdrs = rd_kafka_headers_copy(h);
    d->opaque = opaque;
    d->due_ms = due_ms;
    d->next = p->deferred;
    p->deferred = d;
    p->deferred_count++;
    return GW_OK;
}

static void deferred_free(gw_deferred *d)
{
    if (d->hdrs != NULL)
        rd_kafka_headers_destroy(d->hdrs);
    free(d->topic);
    free(d->key);
    free(d->val);
    free(d);
}

void gw_producer_tick(gw_producer *p, int64_t now_ms)
{
    gw_deferred **pp = &p->deferred;
    while (*pp != NULL) {
        gw_deferred *d = *pp;
        if (d->due_ms > now_ms) {
            pp = &d->next;
            continue;
        }
        /* a copy: gw_producer_send destroys the headers when it fails */
        rd_kafka_headers_t *h =
            d->hdrs != NULL ? rd_kafka_headers_copy(d->hdrs) : rd_kafka_headers_new(1);
        bool sent = gw_producer_send(p, d->topic, d->key, d->key_len, d->val, d->len, h,
                                     d->opaque) == GW_OK;
        if (!sent && p->hooks.refused == NULL) {
            d->due_ms = now_ms + 1000; /* queue full or the like: a second later */
            pp = &d->next;
            continue;
        }
        *pp = d->next;
        p->deferred_count--;
        if (!sent) /* the owner replaces it: a retry would be refused the same way */
            p->hooks.refused(p->hooks.ud, d->opaque, p->refusal, d->topic, d->key, d->key_len,
                             d->val, d->len);
        deferred_free(d);
    }
}

size_t gw_producer_deferred(const gw_producer *p)
{
    return p != NULL ? p->deferred_count : 0;
}

void gw_producer_hold(gw_producer *p)
{
    p->holding = true;
}

size_t gw_producer_held(const gw_producer *p, size_t *bytes)
{
    if (bytes != NULL)
        *bytes = p != NULL ? p->held_bytes : 0;
    return p != NULL ? p->held_count : 0;
}

void gw_producer_release(gw_producer *p, bool (*keep)(void *ud, void *opaque), void *ud)
{
    p->holding = false;
    /* detached first: a hook below may send (a replacement), which must not
     * land behind messages still to be released */
    gw_deferred *d = p->held_head;
    p->held_head = p->held_tail = NULL;
    p->held_count = p->held_bytes = 0;
    while (d != NULL) {
        gw_deferred *next = d->next;
        if (keep == NULL || keep(ud, d->opaque)) {
            rd_kafka_headers_t *h = d->hdrs;
            d->hdrs = NULL; /* gw_producer_send owns them now */
            if (gw_producer_send(p, d->topic, d->key, d->key_len, d->val, d->len, h, d->opaque) !=
                    GW_OK &&
                p->hooks.refused != NULL)
                p->hooks.refused(p->hooks.ud, d->opaque, p->refusal, d->topic, d->key, d->key_len,
                                 d->val, d->len);
        }
        deferred_free(d);
        d = next;
    }
}

bool gw_producer_fatal(gw_producer *p)
{
    return rd_kafka_fatal_error(p->rk, NULL, 0) != RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* One event of the main queue (dr_events): delivery reports to the hook,
 * errors as the error callback would have them. */
static void serve_event(gw_producer *p, rd_kafka_event_t *ev)
{
    switch (rd_kafka_event_type(ev)) {
    case RD_KAFKA_EVENT_DR: {
        const rd_kafka_message_t *m;
        while ((m = rd_kafka_event_message_next(ev)) != NULL)
            on_delivery(p->rk, m, p);
        break;
    }
    case RD_KAFKA_EVENT_ERROR: {
        rd_kafka_resp_err_t err = rd_kafka_event_error(ev);
        on_error(p->rk, rd_kafka_event_error_is_fatal(ev) ? RD_KAFKA_RESP_ERR__FATAL : (int)err,
                 rd_kafka_event_error_string(ev), p);
        break;
    }
    default:
        break;
    }
    rd_kafka_event_destroy(ev);
}

void gw_producer_poll(gw_producer *p)
{
    if (!p->dr_events) {
        rd_kafka_poll(p->rk, 0);
        return;
    }
    rd_kafka_event_t *ev;
    for (int i = 0; i < GW_EVENTS_BUDGET && (ev = rd_kafka_queue_poll(p->pq, 0)) != NULL; i++)
        serve_event(p, ev);
}

rd_kafka_queue_t *gw_producer_queue(gw_producer *p)
{
    return p->pq;
}

int gw_producer_outq_len(gw_producer *p)
{
    return rd_kafka_outq_len(p->rk) + (int)p->deferred_count + (int)p->held_count;
}

int gw_producer_inflight(gw_producer *p)
{
    return rd_kafka_outq_len(p->rk);
}

rd_kafka_t *gw_producer_handle(gw_producer *p)
{
    return p->rk;
}

/* ---- transactions ------------------------------------------------------------- */

bool gw_producer_transactional(const gw_producer *p)
{
    return p != NULL && p->transactional;
}

bool gw_producer_txn_open(const gw_producer *p)
{
    return p != NULL && p->txn_open;
}

static int64_t mono_ns(void);

void gw_producer_flush(gw_producer *p, int timeout_ms)
{
    if (!p->dr_events) {
        rd_kafka_flush(p->rk, timeout_ms);
        return;
    }
    /* librdkafka's flush would wait for this thread to serve the reports */
    (void)rd_kafka_flush(p->rk, 0); /* wakes the brokers: linger ends now */
    int64_t end_ns = mono_ns() + (int64_t)timeout_ms * 1000000;
    while (rd_kafka_outq_len(p->rk) > 0) {
        int64_t left_ms = (end_ns - mono_ns()) / 1000000;
        if (left_ms <= 0)
            break;
        rd_kafka_event_t *ev = rd_kafka_queue_poll(p->pq, left_ms < 10 ? (int)left_ms : 10);
        if (ev != NULL)
            serve_event(p, ev);
    }
}

static void txn_log(const char *step, const rd_kafka_error_t *e)
{
    GW_WARN("txn_failed", "step", step, "error", rd_kafka_error_string(e), "fatal",
            rd_kafka_error_is_fatal(e) ? "true" : "false", "abortable",
            rd_kafka_error_txn_requires_abort(e) ? "true" : "false");
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t gw_producer_mono_ns(void)
{
    return mono_ns();
}

/* The time one call may take: what is left before the deadline, at most
 * max_ms, at least 100 ms. */
static int call_ms(const _Atomic int64_t *deadline_ns, int max_ms)
{
    int64_t left_ms = (atomic_load(deadline_ns) - mono_ns()) / 1000000;
    return left_ms < 100 ? 100 : left_ms > max_ms ? max_ms : (int)left_ms;
}

static bool past(const _Atomic int64_t *deadline_ns)
{
    return mono_ns() >= atomic_load(deadline_ns);
}

static void retry_pause(void)
{
    struct timespec pause = {0, GW_TXN_RETRY_PAUSE_NS};
    nanosleep(&pause, NULL);
}

/* Abort, retried while retriable and time is left (at least twice). */
static gw_txn_result abort_calls(gw_producer *p, _Atomic int64_t *deadline_ns, int max_ms)
{
    for (int tries = 0;; tries++) {
        rd_kafka_error_t *e = rd_kafka_abort_transaction(p->rk, call_ms(deadline_ns, max_ms));
        if (e == NULL)
            return GW_TXN_ABORTED;
        txn_log("abort", e);
        bool retry = rd_kafka_error_is_retriable(e) && !rd_kafka_error_is_fatal(e);
        rd_kafka_error_destroy(e);
        if (!retry || (tries > 0 && past(deadline_ns)))
            return GW_TXN_FATAL;
        retry_pause();
    }
}

/* One step of a commit, retried while its error is retriable and time is
 * left (resumed: librdkafka continues the step in progress). NULL: done;
 * else the last error (the caller's). */
static rd_kafka_error_t *txn_step(gw_producer *p, const rd_kafka_topic_partition_list_t *offsets,
                                  const rd_kafka_consumer_group_metadata_t *cgmd,
                                  const _Atomic int64_t *deadline_ns, int max_ms)
{
    for (;;) {
        int t = call_ms(deadline_ns, max_ms);
        rd_kafka_error_t *e = offsets != NULL
                                  ? rd_kafka_send_offsets_to_transaction(p->rk, offsets, cgmd, t)
                                  : rd_kafka_commit_transaction(p->rk, t);
        if (e == NULL || !rd_kafka_error_is_retriable(e) || rd_kafka_error_txn_requires_abort(e) ||
            rd_kafka_error_is_fatal(e) || past(deadline_ns))
            return e;
        txn_log(offsets != NULL ? "send_offsets" : "commit", e);
        rd_kafka_error_destroy(e);
        retry_pause(); /* a timeout used up its wait; anything else failed at once */
    }
}

gw_txn_result gw_producer_txn_calls(gw_producer *p, const rd_kafka_topic_partition_list_t *offsets,
                                    const rd_kafka_consumer_group_metadata_t *cgmd, bool commit,
                                    _Atomic int64_t *deadline_ns, int call_max_ms)
{
    if (!commit)
        return abort_calls(p, deadline_ns, call_max_ms);
    const char *step = "send_offsets";
    rd_kafka_error_t *e = offsets != NULL && offsets->cnt > 0
                              ? txn_step(p, offsets, cgmd, deadline_ns, call_max_ms)
                              : NULL;
    if (e == NULL) {
        step = "commit";
        e = txn_step(p, NULL, NULL, deadline_ns, call_max_ms);
    }
    if (e == NULL)
        return GW_TXN_OK;
    txn_log(step, e);
    /* A commit still retriable at the deadline is in progress: it can only
     * be resumed, not aborted (offsets not yet sent can be). The broker (or
     * the next producer with this transactional.id) finishes it either way,
     * atomically. */
    bool stuck = rd_kafka_error_is_fatal(e) ||
                 (strcmp(step, "commit") == 0 && rd_kafka_error_is_retriable(e) &&
                  !rd_kafka_error_txn_requires_abort(e));
    rd_kafka_error_destroy(e);
    if (stuck)
        return GW_TXN_FATAL;
    /* the abort gets a call of its own even when the commit used the time */
    int64_t floor_ns = mono_ns() + (int64_t)call_max_ms * 1000000;
    if (atomic_load(deadline_ns) < floor_ns)
        atomic_store(deadline_ns, floor_ns);
    return abort_calls(p, deadline_ns, call_max_ms);
}

bool gw_producer_txn_prepare(gw_producer *p, bool any_offsets)
{
    if (p->txn_dead || (!p->txn_open && !any_offsets))
        return false;
    if (!txn_begin(p)) { /* logged */
        p->txn_dead = true;
        return false;
    }
    return true;
}

void gw_producer_txn_settle(gw_producer *p, gw_txn_result r)
{
    if (r == GW_TXN_FATAL)
        p->txn_dead = true;
    else
        p->txn_open = false;
}

bool gw_producer_txn_dead(const gw_producer *p)
{
    return p != NULL && p->txn_dead;
}

void gw_producer_txn_give_up(gw_producer *p)
{
    p->txn_dead = true;
}

void gw_producer_free(gw_producer *p)
{
    if (p == NULL)
        return;
    while (p->deferred != NULL) {
        gw_deferred *d = p->deferred;
        p->deferred = d->next;
        deferred_free(d);
    }
    while (p->held_head != NULL) {
        gw_deferred *d = p->held_head;
        p->held_head = d->next;
        deferred_free(d);
    }
    if (p->pq)
        rd_kafka_queue_destroy(p->pq);
    if (p->rk) {
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_destroy(p->rk);
    }
    free(p);
}
