/*
 * kafka_smoke: end-to-end check of librdkafka against the real broker.
 *
 * Owns: producing N messages with headers to an existing topic through an
 * idempotent acks=all producer, then consuming them back in a fresh consumer
 * group and checking that every payload, key and header arrived exactly once.
 *
 * Invariants: the message count is capped (SMOKE_MAX_COUNT); every wait has a
 * deadline; the program exits 0 only when all N messages were delivered and
 * read back intact. Driven by tests/integration/test_kafka_smoke.py.
 *
 * Usage: kafka_smoke --bootstrap HOST:PORT --topic T --group G [--count N]
 */
#include <librdkafka/rdkafka.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SMOKE_MAX_COUNT  10000
#define SMOKE_MAX_PARTS  64
#define SMOKE_TIMEOUT_MS 60000
#define SMOKE_MARKER     "modelgw-smoke"

typedef struct smoke_opts {
    const char *bootstrap;
    const char *topic;
    const char *group;
    long count;
} smoke_opts;

typedef struct smoke_state {
    long delivered;       /* delivery reports without error */
    long delivery_errors; /* delivery reports with an error */
    unsigned char *seen;  /* seen[i] = times message i was consumed */
    long consumed;        /* distinct messages consumed and verified */
    long bad;             /* messages that failed verification */
    bool partition_seen[SMOKE_MAX_PARTS];
} smoke_state;

static void smoke_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("kafka_smoke: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int64_t smoke_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void smoke_payload(char *buf, size_t cap, const char *topic, long i)
{
    snprintf(buf, cap, "payload %ld of %s", i, topic);
}

static int smoke_parse_args(int argc, char **argv, smoke_opts *o)
{
    o->count = 100;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--bootstrap") == 0) {
            o->bootstrap = argv[i + 1];
        } else if (strcmp(argv[i], "--topic") == 0) {
            o->topic = argv[i + 1];
        } else if (strcmp(argv[i], "--group") == 0) {
            o->group = argv[i + 1];
        } else if (strcmp(argv[i], "--count") == 0) {
            o->count = strtol(argv[i + 1], NULL, 10);
        } else {
            smoke_fail("unknown option %s", argv[i]);
            return -1;
        }
    }
    if (!o->bootstrap || !o->topic || !o->group || o->count < 1 || o->count > SMOKE_MAX_COUNT) {
        smoke_fail("usage: kafka_smoke --bootstrap HOST:PORT --topic T --group G [--count 1..%d]",
                   SMOKE_MAX_COUNT);
        return -1;
    }
    return 0;
}

static int smoke_set(rd_kafka_conf_t *conf, const char *key, const char *value)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, key, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        smoke_fail("config %s=%s: %s", key, value, errstr);
        return -1;
    }
    return 0;
}

static void smoke_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    smoke_state *st = opaque;
    if (m->err) {
        st->delivery_errors++;
        smoke_fail("delivery failed: %s", rd_kafka_err2str(m->err));
    } else {
        st->delivered++;
    }
}

static rd_kafka_t *smoke_new_producer(const smoke_opts *o, smoke_state *st)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (smoke_set(conf, "bootstrap.servers", o->bootstrap) ||
        smoke_set(conf, "enable.idempotence", "true") || smoke_set(conf, "acks", "all") ||
        smoke_set(conf, "linger.ms", "5") || smoke_set(conf, "message.timeout.ms", "60000")) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, smoke_on_delivery);
    rd_kafka_conf_set_opaque(conf, st);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        smoke_fail("producer: %s", errstr);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

static int smoke_produce_one(rd_kafka_t *rk, const smoke_opts *o, long i)
{
    char key[32], seq[32], payload[512];
    snprintf(key, sizeof(key), "key-%ld", i);
    snprintf(seq, sizeof(seq), "%ld", i);
    smoke_payload(payload, sizeof(payload), o->topic, i);
    static const char binary[4] = {0, 1, 2, 3};
    rd_kafka_resp_err_t err;
    for (;;) {
        err = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(o->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE(payload, strlen(payload)),
            RD_KAFKA_V_HEADER("seq", seq, (ssize_t)strlen(seq)),
            RD_KAFKA_V_HEADER("marker", SMOKE_MARKER, -1),
            RD_KAFKA_V_HEADER("binary", binary, (ssize_t)sizeof(binary)), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        rd_kafka_poll(rk, 100);
    }
    if (err) {
        smoke_fail("produce %ld: %s", i, rd_kafka_err2str(err));
        return -1;
    }
    rd_kafka_poll(rk, 0);
    return 0;
}

static int smoke_produce(const smoke_opts *o, smoke_state *st)
{
    int rc = -1;
    rd_kafka_t *rk = smoke_new_producer(o, st);
    if (!rk)
        return -1;
    for (long i = 0; i < o->count; i++) {
        if (smoke_produce_one(rk, o, i) != 0)
            goto cleanup;
    }
    rd_kafka_resp_err_t err = rd_kafka_flush(rk, SMOKE_TIMEOUT_MS);
    if (err) {
        smoke_fail("flush: %s (%d still queued)", rd_kafka_err2str(err), rd_kafka_outq_len(rk));
        goto cleanup;
    }
    if (st->delivered != o->count || st->delivery_errors) {
        smoke_fail("delivered %ld of %ld, %ld errors", st->delivered, o->count,
                   st->delivery_errors);
        goto cleanup;
    }
    rc = 0;
cleanup:
    rd_kafka_destroy(rk);
    return rc;
}

/* Finds header NAME and checks it equals the LEN bytes at WANT. */
static bool smoke_header_is(rd_kafka_headers_t *hdrs, const char *name, const void *want,
                            size_t len)
{
    const void *val = NULL;
    size_t size = 0;
    if (!hdrs || rd_kafka_header_get_last(hdrs, name, &val, &size) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return false;
    return size == len && (len == 0 || memcmp(val, want, len) == 0);
}

/* Verifies one consumed message; returns its index, or -1 when it is wrong. */
static long smoke_check_message(const smoke_opts *o, rd_kafka_message_t *m)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *seqv = NULL;
    size_t seqlen = 0;
    char seq[32], key[32], payload[512];
    static const char binary[4] = {0, 1, 2, 3};
    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(hdrs, "seq", &seqv, &seqlen) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        seqlen == 0 || seqlen >= sizeof(seq)) {
        smoke_fail("message at offset %" PRId64 " has no seq header", m->offset);
        return -1;
    }
    memcpy(seq, seqv, seqlen);
    seq[seqlen] = '\0';
    char *end = NULL;
    long i = strtol(seq, &end, 10);
    if (*end != '\0' || i < 0 || i >= o->count) {
        smoke_fail("bad seq header '%s'", seq);
        return -1;
    }
    snprintf(key, sizeof(key), "key-%ld", i);
    smoke_payload(payload, sizeof(payload), o->topic, i);
    bool ok = m->len == strlen(payload) && memcmp(m->payload, payload, m->len) == 0 &&
              m->key_len == strlen(key) && memcmp(m->key, key, m->key_len) == 0 &&
              smoke_header_is(hdrs, "marker", SMOKE_MARKER, strlen(SMOKE_MARKER)) &&
              smoke_header_is(hdrs, "binary", binary, sizeof(binary));
    if (!ok) {
        smoke_fail("message %ld: payload, key or headers differ", i);
        return -1;
    }
    return i;
}

static rd_kafka_t *smoke_new_consumer(const smoke_opts *o)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (smoke_set(conf, "bootstrap.servers", o->bootstrap) ||
        smoke_set(conf, "group.id", o->group) || smoke_set(conf, "auto.offset.reset", "earliest") ||
        smoke_set(conf, "enable.auto.commit", "false") ||
        smoke_set(conf, "isolation.level", "read_committed")) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!rk) {
        smoke_fail("consumer: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

static void smoke_take(const smoke_opts *o, smoke_state *st, rd_kafka_message_t *m)
{
    long i = smoke_check_message(o, m);
    if (i < 0) {
        st->bad++;
        return;
    }
    if (st->seen[i]++ == 0)
        st->consumed++;
    else
        smoke_fail("message %ld consumed twice", i);
    if (m->partition >= 0 && m->partition < SMOKE_MAX_PARTS)
        st->partition_seen[m->partition] = true;
}

static int smoke_consume(const smoke_opts *o, smoke_state *st)
{
    int rc = -1;
    rd_kafka_t *rk = smoke_new_consumer(o);
    if (!rk)
        return -1;
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, o->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err) {
        smoke_fail("subscribe: %s", rd_kafka_err2str(err));
        goto cleanup;
    }
    int64_t deadline = smoke_now_ms() + SMOKE_TIMEOUT_MS;
    while (st->consumed < o->count && smoke_now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            /* not enabled; ignore */
        } else if (m->err) {
            smoke_fail("consume: %s", rd_kafka_message_errstr(m));
        } else {
            smoke_take(o, st, m);
        }
        rd_kafka_message_destroy(m);
    }
    rc = (st->consumed == o->count && st->bad == 0) ? 0 : -1;
    if (rc != 0)
        smoke_fail("consumed %ld of %ld, %ld bad", st->consumed, o->count, st->bad);
cleanup:
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

int main(int argc, char **argv)
{
    smoke_opts o = {0};
    smoke_state st = {0};
    int rc = 1;
    if (smoke_parse_args(argc, argv, &o) != 0)
        return 2;
    st.seen = calloc((size_t)o.count, 1);
    if (!st.seen)
        return 1;
    fprintf(stderr, "kafka_smoke: librdkafka %s, topic %s, %ld messages\n", rd_kafka_version_str(),
            o.topic, o.count);
    if (smoke_produce(&o, &st) != 0 || smoke_consume(&o, &st) != 0)
        goto cleanup;
    int parts = 0;
    for (int p = 0; p < SMOKE_MAX_PARTS; p++)
        parts += st.partition_seen[p];
    printf("kafka_smoke: produced %ld, consumed %ld, partitions %d, ok\n", st.delivered,
           st.consumed, parts);
    rc = 0;
cleanup:
    free(st.seen);
    return rc;
}
