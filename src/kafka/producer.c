/* producer: the worker's librdkafka producer; see producer.h. */
#include "kafka/producer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

gw_err gw_producer_new(const gw_kafka_config *k, const char *bootstrap,
                       const gw_producer_hooks *hooks, gw_producer **out)
{
    gw_producer *p = calloc(1, sizeof *p);
    if (p == NULL)
        return GW_E_NOMEM;
    if (hooks != NULL)
        p->hooks = *hooks;
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    bool ok = gw_kconf_set(c, "enable.idempotence", "true") && gw_kconf_set(c, "acks", "all") &&
              gw_kconf_int(c, "linger.ms", k->linger_ms) &&
              gw_kconf_set(c, "compression.type", "lz4") &&
              gw_kconf_set(c, "batch.num.messages", "10000") && gw_kconf_common(c, k, bootstrap);
    if (!ok) {
        rd_kafka_conf_destroy(c);
        free(p);
        return GW_E_CONFIG;
    }
    rd_kafka_conf_set_error_cb(c, on_error);
    rd_kafka_conf_set_opaque(c, p);
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
    *out = p;
    return GW_OK;
}

gw_err gw_producer_send(gw_producer *p, const char *topic, const void *key, size_t key_len,
                        const void *val, size_t len, rd_kafka_headers_t *headers, void *opaque)
{
    rd_kafka_resp_err_t err =
        headers != NULL
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
        GW_ERROR("produce_failed", "topic", topic, "error", rd_kafka_err2str(err));
        return GW_E_IO;
    }
    return GW_OK;
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
        if (gw_producer_send(p, d->topic, d->key, d->key_len, d->val, d->len, h, d->opaque) !=
            GW_OK) {
            d->due_ms = now_ms + 1000; /* queue full or the like: a second later */
            pp = &d->next;
            continue;
        }
        *pp = d->next;
        p->deferred_count--;
        deferred_free(d);
    }
}

size_t gw_producer_deferred(const gw_producer *p)
{
    return p != NULL ? p->deferred_count : 0;
}

bool gw_producer_fatal(gw_producer *p)
{
    return rd_kafka_fatal_error(p->rk, NULL, 0) != RD_KAFKA_RESP_ERR_NO_ERROR;
}

void gw_producer_poll(gw_producer *p)
{
    rd_kafka_poll(p->rk, 0);
}

rd_kafka_queue_t *gw_producer_queue(gw_producer *p)
{
    return p->pq;
}

int gw_producer_outq_len(gw_producer *p)
{
    return rd_kafka_outq_len(p->rk) + (int)p->deferred_count;
}

rd_kafka_t *gw_producer_handle(gw_producer *p)
{
    return p->rk;
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
    if (p->pq)
        rd_kafka_queue_destroy(p->pq);
    if (p->rk) {
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_destroy(p->rk);
    }
    free(p);
}
