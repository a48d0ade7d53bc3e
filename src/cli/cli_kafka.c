/*
 * cli_kafka: Kafka clients for the command-line tools (see the header).
 */
#include "cli/cli_kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/uuid.h"

gw_err gw_cli_topics_from_prefix(gw_cli_topics *t, const char *prefix)
{
    const char *p = prefix && *prefix ? prefix : "llm";
    if (strlen(p) > GW_CLI_TOPIC_MAX - 20)
        return GW_E_LIMIT;
    snprintf(t->high, sizeof t->high, "%s.requests.high", p);
    snprintf(t->normal, sizeof t->normal, "%s.requests.normal", p);
    snprintf(t->low, sizeof t->low, "%s.requests.low", p);
    snprintf(t->responses, sizeof t->responses, "%s.responses", p);
    snprintf(t->chunks, sizeof t->chunks, "%s.chunks", p);
    snprintf(t->usage, sizeof t->usage, "%s.usage", p);
    snprintf(t->dlq, sizeof t->dlq, "%s.dlq", p);
    return GW_OK;
}

const char *gw_cli_topics_tier(const gw_cli_topics *t, const char *tier)
{
    if (strcmp(tier, "high") == 0)
        return t->high;
    if (strcmp(tier, "normal") == 0)
        return t->normal;
    if (strcmp(tier, "low") == 0)
        return t->low;
    return NULL;
}

static bool read_bootstrap_file(const char *path, char *out, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool ok = fgets(out, (int)n, f) != NULL;
    fclose(f);
    if (!ok)
        return false;
    out[strcspn(out, " \t\r\n")] = '\0';
    return out[0] != '\0';
}

void gw_cli_bootstrap(const char *flag, char *out, size_t n, const char **source)
{
    static char path[4096];
    const char *env = getenv("MODELGW_KAFKA");
    if (flag && *flag) {
        snprintf(out, n, "%s", flag);
        *source = "flag";
        return;
    }
    if (env && *env) {
        snprintf(out, n, "%s", env);
        *source = "env MODELGW_KAFKA";
        return;
    }
    const char *run = getenv("MODELGW_RUN_DIR");
    snprintf(path, sizeof path, "%s/dev.bootstrap", run && *run ? run : "./run");
    if (read_bootstrap_file(path, out, n)) {
        *source = path;
        return;
    }
    snprintf(out, n, "%s", GW_CLI_DEFAULT_BOOTSTRAP);
    *source = "default";
}

static bool conf_set(rd_kafka_conf_t *c, const char *k, const char *v, char *err, size_t errlen)
{
    return rd_kafka_conf_set(c, k, v, err, errlen) == RD_KAFKA_CONF_OK;
}

/* Extra "key=value" properties (gw_cli_kafka_properties): not owned. */
static const char *const *g_extra;
static size_t g_extra_n;

void gw_cli_kafka_properties(const char *const *kv, size_t n)
{
    g_extra = kv;
    g_extra_n = n;
}

/* Applies the extra properties last; false with the bad one in err. */
static bool conf_extra(rd_kafka_conf_t *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < g_extra_n; i++) {
        char k[128];
        const char *eq = strchr(g_extra[i], '=');
        size_t klen = eq ? (size_t)(eq - g_extra[i]) : 0;
        if (klen == 0 || klen >= sizeof k) {
            snprintf(err, errlen, "Kafka property %zu is not key=value", i + 1);
            return false;
        }
        memcpy(k, g_extra[i], klen);
        k[klen] = '\0';
        if (!conf_set(c, k, eq + 1, err, errlen))
            return false;
    }
    return true;
}

typedef struct {
    gw_cli_delivery_fn fn;
    void *opaque;
} delivery_ctx;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    delivery_ctx *d = opaque;
    if (d && d->fn)
        d->fn(d->opaque, m->_private, m->err);
}

rd_kafka_t *gw_cli_producer_new(const char *bootstrap, gw_cli_producer_kind kind,
                                gw_cli_delivery_fn dr, void *opaque, char *err, size_t errlen)
{
    /* Owned by the producer; gw_cli_producer_free() frees it. */
    delivery_ctx *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->fn = dr;
    d->opaque = opaque;
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    bool bulk = kind == GW_CLI_PRODUCER_BULK;
    bool ok = conf_set(c, "bootstrap.servers", bootstrap, err, errlen) &&
              conf_set(c, "client.id", "modelgw-cli", err, errlen) &&
              conf_set(c, "enable.idempotence", "true", err, errlen) &&
              conf_set(c, "acks", "all", err, errlen) &&
              conf_set(c, "linger.ms", bulk ? "20" : "1", err, errlen) &&
              conf_set(c, "batch.num.messages", "10000", err, errlen) &&
              conf_set(c, "queue.buffering.max.messages", "1000000", err, errlen) &&
              conf_set(c, "compression.codec", bulk ? "lz4" : "none", err, errlen) &&
              conf_set(c, "log_level", "3", err, errlen) && conf_extra(c, err, errlen);
    if (!ok) {
        rd_kafka_conf_destroy(c);
        free(d);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
    rd_kafka_conf_set_opaque(c, d);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, errlen);
    if (!rk) {
        rd_kafka_conf_destroy(c);
        free(d);
    }
    return rk;
}

int gw_cli_producer_free(rd_kafka_t *rk, int flush_timeout_ms)
{
    if (!rk)
        return 0;
    rd_kafka_flush(rk, flush_timeout_ms);
    int left = rd_kafka_outq_len(rk);
    delivery_ctx *d = rd_kafka_opaque(rk);
    rd_kafka_destroy(rk);
    free(d);
    return left;
}

rd_kafka_t *gw_cli_consumer_new(const char *bootstrap, char *err, size_t errlen)
{
    char uuid[37], group[64];
    gw_uuid4(uuid);
    snprintf(group, sizeof group, "modelgw-cli-%s", uuid);
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    bool ok = conf_set(c, "bootstrap.servers", bootstrap, err, errlen) &&
              conf_set(c, "group.id", group, err, errlen) &&
              conf_set(c, "client.id", "modelgw-cli", err, errlen) &&
              conf_set(c, "enable.auto.commit", "false", err, errlen) &&
              conf_set(c, "enable.auto.offset.store", "false", err, errlen) &&
              conf_set(c, "fetch.wait.max.ms", "10", err, errlen) &&
              conf_set(c, "log_level", "3", err, errlen) && conf_extra(c, err, errlen);
    if (!ok) {
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, errlen);
    if (!rk) {
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    return rk;
}

/* Partition count of topic (0 when it does not exist). */
static int partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms, gw_err *rc)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    int n = 0;
    *rc = GW_OK;
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        *rc = GW_E_IO;
    else if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
        n = md->topics[0].partition_cnt;
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return n;
}

static gw_err create_topic(rd_kafka_t *rk, const char *topic, int partitions, int timeout_ms,
                           char *err, size_t errlen)
{
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, -1, err, errlen);
    if (!nt)
        return GW_E_INVALID_REQUEST;
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(opt, timeout_ms, NULL, 0);
    rd_kafka_CreateTopics(rk, &nt, 1, opt, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
    gw_err rc = GW_E_IO;
    if (ev) {
        const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
        size_t cnt = 0;
        const rd_kafka_topic_result_t **tr =
            res ? rd_kafka_CreateTopics_result_topics(res, &cnt) : NULL;
        rd_kafka_resp_err_t te =
            cnt == 1 ? rd_kafka_topic_result_error(tr[0]) : rd_kafka_event_error(ev);
        if (te == RD_KAFKA_RESP_ERR_NO_ERROR || te == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            rc = GW_OK;
        else
            snprintf(err, errlen, "creating topic %s: %s", topic, rd_kafka_err2str(te));
        rd_kafka_event_destroy(ev);
    } else {
        snprintf(err, errlen, "creating topic %s: timed out", topic);
    }
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}

gw_err gw_cli_ensure_topics(rd_kafka_t *rk, const char *const *topics, size_t n, int partitions,
                            int timeout_ms, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        gw_err rc;
        int cnt = partition_count(rk, topics[i], timeout_ms, &rc);
        if (rc != GW_OK) {
            snprintf(err, errlen, "Kafka metadata for %s: no answer within %d ms", topics[i],
                     timeout_ms);
            return rc;
        }
        if (cnt == 0) {
            rc = create_topic(rk, topics[i], partitions, timeout_ms, err, errlen);
            if (rc != GW_OK)
                return rc;
        }
    }
    return GW_OK;
}

static gw_err add_topic_partitions(rd_kafka_t *c, rd_kafka_topic_partition_list_t *l,
                                   const char *topic, bool from_beginning, int timeout_ms,
                                   char *err, size_t errlen)
{
    gw_err rc;
    int cnt = 0;
    for (int tries = 0; tries < 20 && cnt == 0; tries++) {
        cnt = partition_count(c, topic, timeout_ms, &rc);
        if (rc != GW_OK) {
            snprintf(err, errlen, "Kafka metadata for %s: no answer within %d ms", topic,
                     timeout_ms);
            return rc;
        }
        if (cnt == 0) /* just created: metadata may lag */
            rd_kafka_poll(c, 100);
    }
    if (cnt == 0) {
        snprintf(err, errlen, "topic %s does not exist", topic);
        return GW_E_IO;
    }
    for (int p = 0; p < cnt; p++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(c, topic, p, &lo, &hi, timeout_ms);
        /* just created: the leader may not be known to the broker yet */
        for (int tries = 0; tries < 20 && (e == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
                                           e == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE);
             tries++) {
            rd_kafka_poll(c, 100);
            e = rd_kafka_query_watermark_offsets(c, topic, p, &lo, &hi, timeout_ms);
        }
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(err, errlen, "watermarks of %s[%d]: %s", topic, p, rd_kafka_err2str(e));
            return GW_E_IO;
        }
        rd_kafka_topic_partition_list_add(l, topic, p)->offset =
            from_beginning ? RD_KAFKA_OFFSET_BEGINNING : hi;
    }
    return GW_OK;
}

gw_err gw_cli_assign(rd_kafka_t *consumer, const char *const *topics, size_t n, bool from_beginning,
                     int timeout_ms, char *err, size_t errlen)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
    gw_err rc = GW_OK;
    for (size_t i = 0; i < n && rc == GW_OK; i++)
        rc = add_topic_partitions(consumer, l, topics[i], from_beginning, timeout_ms, err, errlen);
    if (rc == GW_OK) {
        rd_kafka_resp_err_t e = rd_kafka_assign(consumer, l);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(err, errlen, "assign: %s", rd_kafka_err2str(e));
            rc = GW_E_IO;
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    return rc;
}

bool gw_cli_header(const rd_kafka_message_t *msg, const char *name, char *out, size_t n)
{
    rd_kafka_headers_t *h = NULL;
    const void *v;
    size_t len;
    if (rd_kafka_message_headers(msg, &h) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return false;
    if (rd_kafka_header_get_last(h, name, &v, &len) != RD_KAFKA_RESP_ERR_NO_ERROR || !v)
        return false;
    if (len >= n)
        return false;
    memcpy(out, v, len);
    out[len] = '\0';
    return true;
}

rd_kafka_resp_err_t gw_cli_produce(rd_kafka_t *rk, const char *topic, const char *key,
                                   const void *value, size_t len, const char *content_type,
                                   void *msg_opaque, int timeout_ms)
{
    int64_t until = gw_cli_now_ms() + timeout_ms;
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
            RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_HEADER("request_id", key, (ssize_t)strlen(key)),
            RD_KAFKA_V_HEADER("content-type", content_type, (ssize_t)strlen(content_type)),
            RD_KAFKA_V_OPAQUE(msg_opaque), RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || gw_cli_now_ms() >= until)
            return e;
        rd_kafka_poll(rk, 10);
    }
}

int64_t gw_cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t gw_cli_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
