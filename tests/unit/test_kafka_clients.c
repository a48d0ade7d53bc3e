/* Tests for kafka/kconf and kafka/producer without a broker: property values
 * of any length, secrets from the environment winning over kafka.properties,
 * a failed message produced again later (gw_producer_defer, _tick) with
 * its key, value and headers intact, and messages held while a transaction
 * ends (gw_producer_hold, _release). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "kafka/kconf.h"
#include "kafka/producer.h"

static void test_long_property_and_env_secrets(void **state)
{
    (void)state;
    static char rack[2100];
    memcpy(rack, "client.rack=", 12);
    memset(rack + 12, 'r', sizeof rack - 13);
    rack[sizeof rack - 1] = '\0';
    gw_kafka_config k = {.client_id = "t",
                         .properties = {rack, "sasl.password=from-the-file"},
                         .property_count = 2,
                         .sasl_password = "from-the-env",
                         .ssl_key_password = "key-pass"};
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    assert_true(gw_kconf_common(c, &k, "127.0.0.1:1"));
    char v[4096];
    size_t n = sizeof v;
    assert_int_equal(rd_kafka_conf_get(c, "client.rack", v, &n), RD_KAFKA_CONF_OK);
    assert_int_equal(strlen(v), sizeof rack - 13); /* not cut at 512 bytes */
    n = sizeof v;
    assert_int_equal(rd_kafka_conf_get(c, "sasl.password", v, &n), RD_KAFKA_CONF_OK);
    assert_string_equal(v, "from-the-env");
    n = sizeof v;
    assert_int_equal(rd_kafka_conf_get(c, "ssl.key.password", v, &n), RD_KAFKA_CONF_OK);
    assert_string_equal(v, "key-pass");
    rd_kafka_conf_destroy(c);

    gw_kafka_config bad = {.client_id = "t", .properties = {"no-equals-sign"}, .property_count = 1};
    c = rd_kafka_conf_new();
    assert_false(gw_kconf_common(c, &bad, "127.0.0.1:1"));
    rd_kafka_conf_destroy(c);
}

typedef struct {
    gw_producer *p;
    int reports;
    bool defer; /* defer the next report's message */
    char key[32], val[32], hdr[32];
    void *opaque;
    int refused; /* hooks.refused calls */
    char refused_topic[32], refused_val[32];
    void *refused_opaque;
    rd_kafka_resp_err_t refused_err;
    char order[64]; /* values reported, in order */
    int dropped;    /* held messages dropped by keep_not_b */
} recorder;

static void on_refused(void *ud, void *opaque, rd_kafka_resp_err_t err, const char *topic,
                       const void *key, size_t key_len, const void *val, size_t len)
{
    recorder *r = ud;
    r->refused_err = err;
    (void)key;
    (void)key_len;
    r->refused++;
    r->refused_opaque = opaque;
    snprintf(r->refused_topic, sizeof r->refused_topic, "%s", topic);
    snprintf(r->refused_val, sizeof r->refused_val, "%.*s", (int)len, (const char *)val);
}

static void on_report(void *ud, const rd_kafka_message_t *m, void *opaque)
{
    recorder *r = ud;
    r->reports++;
    r->opaque = opaque;
    snprintf(r->key, sizeof r->key, "%.*s", (int)m->key_len, (const char *)m->key);
    snprintf(r->val, sizeof r->val, "%.*s", (int)m->len, (const char *)m->payload);
    size_t at = strlen(r->order);
    snprintf(r->order + at, sizeof r->order - at, "%.*s,", (int)m->len, (const char *)m->payload);
    rd_kafka_headers_t *h = NULL;
    const void *hv = NULL;
    size_t hl = 0;
    r->hdr[0] = '\0';
    if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(h, "request_id", &hv, &hl) == RD_KAFKA_RESP_ERR_NO_ERROR)
        snprintf(r->hdr, sizeof r->hdr, "%.*s", (int)hl, (const char *)hv);
    if (r->defer) {
        r->defer = false;
        assert_int_equal(gw_producer_defer(r->p, m, opaque, 1000), GW_OK);
    }
}

static void wait_reports(recorder *r, int want)
{
    for (int i = 0; i < 500 && r->reports < want; i++) {
        gw_producer_poll(r->p);
        if (r->reports < want)
            rd_kafka_poll(gw_producer_handle(r->p), 10);
    }
    assert_int_equal(r->reports, want);
}

static void test_defer_and_tick(void **state)
{
    (void)state;
    recorder r = {0};
    gw_kafka_config k = {.client_id = "t", .linger_ms = 0};
    gw_producer_hooks h = {.ud = &r, .delivered = on_report};
    assert_int_equal(gw_producer_new(&k, "127.0.0.1:1", NULL, &h, &r.p), GW_OK);
    rd_kafka_headers_t *hd = rd_kafka_headers_new(1);
    rd_kafka_header_add(hd, "request_id", -1, "req-7", -1);
    int tag;
    assert_int_equal(gw_producer_send(r.p, "some-topic", "key-7", 5, "value-7", 7, hd, &tag),
                     GW_OK);
    /* no broker: purge the message so that its (failed) report comes now */
    r.defer = true;
    rd_kafka_purge(gw_producer_handle(r.p), RD_KAFKA_PURGE_F_QUEUE);
    wait_reports(&r, 1);
    assert_int_equal(gw_producer_deferred(r.p), 1);
    assert_true(gw_producer_outq_len(r.p) >= 1); /* the drain waits for it */

    gw_producer_tick(r.p, 999); /* not due yet */
    assert_int_equal(gw_producer_deferred(r.p), 1);
    gw_producer_tick(r.p, 1000);
    assert_int_equal(gw_producer_deferred(r.p), 0);
    assert_true(gw_producer_outq_len(r.p) >= 1); /* now in librdkafka's queue */

    /* The copy carries the same key, value, headers and opaque. */
    memset(r.key, 0, sizeof r.key);
    rd_kafka_purge(gw_producer_handle(r.p), RD_KAFKA_PURGE_F_QUEUE);
    wait_reports(&r, 2);
    assert_string_equal(r.key, "key-7");
    assert_string_equal(r.val, "value-7");
    assert_string_equal(r.hdr, "req-7");
    assert_ptr_equal(r.opaque, &tag);
    assert_false(gw_producer_fatal(r.p));

    /* Deferred messages are dropped without a report by free. */
    r.defer = true;
    assert_int_equal(gw_producer_send(r.p, "some-topic", "k", 1, "v", 1, NULL, &tag), GW_OK);
    rd_kafka_purge(gw_producer_handle(r.p), RD_KAFKA_PURGE_F_QUEUE);
    wait_reports(&r, 3);
    assert_int_equal(gw_producer_deferred(r.p), 1);
    gw_producer_free(r.p);
}

/* A deferred resend the producer refuses when it is due (here: its queue is
 * full) goes to hooks.refused once, not back into the retry list: the owner
 * replaces it (the worker: DLQ or an error response), so no partition waits
 * on an output that is refused again every second. */
static void test_refused_resend_goes_to_the_hook(void **state)
{
    (void)state;
    recorder r = {0};
    gw_kafka_config k = {.client_id = "t",
                         .linger_ms = 0,
                         .properties = {"queue.buffering.max.messages=1"},
                         .property_count = 1};
    gw_producer_hooks h = {.ud = &r, .delivered = on_report, .refused = on_refused};
    assert_int_equal(gw_producer_new(&k, "127.0.0.1:1", NULL, &h, &r.p), GW_OK);
    assert_int_equal(gw_producer_refusal(r.p), RD_KAFKA_RESP_ERR_NO_ERROR);
    int tag;
    r.defer = true;
    assert_int_equal(gw_producer_send(r.p, "out-topic", "k", 1, "first", 5, NULL, &tag), GW_OK);
    rd_kafka_purge(gw_producer_handle(r.p), RD_KAFKA_PURGE_F_QUEUE);
    wait_reports(&r, 1);
    assert_int_equal(gw_producer_deferred(r.p), 1);
    /* another message fills the queue of one: the resend will be refused */
    assert_int_equal(gw_producer_send(r.p, "out-topic", "k", 1, "second", 6, NULL, NULL), GW_OK);
    gw_producer_tick(r.p, 1000);
    assert_int_equal(r.refused, 1);
    assert_int_equal(r.refused_err, RD_KAFKA_RESP_ERR__QUEUE_FULL); /* the reason, passed on */
    assert_int_equal(gw_producer_refusal(r.p), RD_KAFKA_RESP_ERR__QUEUE_FULL);
    assert_ptr_equal(r.refused_opaque, &tag);
    assert_string_equal(r.refused_topic, "out-topic");
    assert_string_equal(r.refused_val, "first");
    assert_int_equal(gw_producer_deferred(r.p), 0);
    gw_producer_tick(r.p, 5000); /* nothing is retried */
    assert_int_equal(r.refused, 1);
    gw_producer_free(r.p);
}

static int tag_b;

static bool keep_not_b(void *ud, void *opaque)
{
    recorder *r = ud;
    if (opaque != &tag_b)
        return true;
    r->dropped++;
    return false;
}

/* While a transaction ends the producer holds what it is given (nothing
 * reaches librdkafka), and releases it in the order given, minus what the
 * owner drops (a partition that moved on); the headers travel along. */
static void test_hold_and_release(void **state)
{
    (void)state;
    recorder r = {0};
    gw_kafka_config k = {.client_id = "t", .linger_ms = 0};
    gw_producer_hooks h = {.ud = &r, .delivered = on_report};
    assert_int_equal(gw_producer_new(&k, "127.0.0.1:1", NULL, &h, &r.p), GW_OK);
    int tag_a, tag_c;
    gw_producer_hold(r.p);
    rd_kafka_headers_t *hd = rd_kafka_headers_new(1);
    rd_kafka_header_add(hd, "request_id", -1, "req-c", -1);
    assert_int_equal(gw_producer_send(r.p, "t1", "ka", 2, "a", 1, NULL, &tag_a), GW_OK);
    assert_int_equal(gw_producer_send(r.p, "t1", "kb", 2, "bb", 2, NULL, &tag_b), GW_OK);
    assert_int_equal(gw_producer_send(r.p, "t1", "kc", 2, "ccc", 3, hd, &tag_c), GW_OK);
    size_t bytes = 0;
    assert_int_equal(gw_producer_held(r.p, &bytes), 3);
    assert_int_equal(bytes, 6 + 6);
    /* the drain waits for them (librdkafka's count also holds the error
     * events of the absent broker: read it between two equal reads) */
    int before, outq, after;
    do {
        before = gw_producer_inflight(r.p);
        outq = gw_producer_outq_len(r.p);
        after = gw_producer_inflight(r.p);
    } while (before != after);
    assert_int_equal(outq - before, 3);
    /* nothing reached librdkafka: a purge reports nothing */
    rd_kafka_purge(gw_producer_handle(r.p), RD_KAFKA_PURGE_F_QUEUE);
    for (int i = 0; i < 5; i++)
        rd_kafka_poll(gw_producer_handle(r.p), 10);
    assert_int_equal(r.reports, 0);

    gw_producer_release(r.p, keep_not_b, &r);
    assert_int_equal(r.dropped, 1);
    assert_int_equal(gw_producer_held(r.p, NULL), 0);
    /* sent directly again once released */
    assert_int_equal(gw_producer_send(r.p, "t1", "kd", 2, "d", 1, NULL, NULL), GW_OK);
    rd_kafka_purge(gw_producer_handle(r.p), RD_KAFKA_PURGE_F_QUEUE);
    wait_reports(&r, 3);
    assert_string_equal(r.order, "a,ccc,d,"); /* in the order sent */
    assert_string_equal(r.hdr, "");           /* the last (d) had none */
    gw_producer_free(r.p);

    /* held messages left at free are freed without a report */
    recorder r2 = {0};
    h.ud = &r2;
    assert_int_equal(gw_producer_new(&k, "127.0.0.1:1", NULL, &h, &r2.p), GW_OK);
    gw_producer_hold(r2.p);
    assert_int_equal(gw_producer_send(r2.p, "t1", "k", 1, "v", 1, rd_kafka_headers_new(1), NULL),
                     GW_OK);
    gw_producer_free(r2.p);
    assert_int_equal(r2.reports, 0);
}

/* Which output errors are replaced at once rather than produced again: what
 * no retry can mend (too large, missing or invalid topic, not authorised),
 * never what a broker outage or a leader move causes. */
static void test_permanent_errors(void **state)
{
    (void)state;
    static const rd_kafka_resp_err_t permanent[] = {
        RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
        RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
        RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC,
        RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,
        RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE,
        RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION,
        RD_KAFKA_RESP_ERR__FATAL,
    };
    static const rd_kafka_resp_err_t transient[] = {
        RD_KAFKA_RESP_ERR__MSG_TIMED_OUT,       RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        RD_KAFKA_RESP_ERR__TRANSPORT,           RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,  RD_KAFKA_RESP_ERR__QUEUE_FULL,
        RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE, RD_KAFKA_RESP_ERR_NO_ERROR,
    };
    for (size_t i = 0; i < sizeof permanent / sizeof *permanent; i++)
        assert_true(gw_producer_err_permanent(permanent[i]));
    for (size_t i = 0; i < sizeof transient / sizeof *transient; i++)
        assert_false(gw_producer_err_permanent(transient[i]));
}

/* The producer's librdkafka setting named key, as made. */
static void assert_prop(gw_producer *p, const char *key, const char *want)
{
    char v[64];
    size_t n = sizeof v;
    assert_int_equal(rd_kafka_conf_get(rd_kafka_conf(gw_producer_handle(p)), key, v, &n),
                     RD_KAFKA_CONF_OK);
    assert_string_equal(v, want);
}

/* kafka.compression and kafka.produce_in_flight reach librdkafka;
 * kafka.properties, applied last, still win over both. */
static void test_compression_and_in_flight(void **state)
{
    (void)state;
    gw_producer *p = NULL;
    gw_kafka_config k = {
        .client_id = "t", .compression = GW_CFG_COMPRESSION_ZSTD, .produce_in_flight = 2};
    assert_int_equal(gw_producer_new(&k, "127.0.0.1:1", NULL, NULL, &p), GW_OK);
    assert_prop(p, "compression.type", "zstd");
    assert_prop(p, "max.in.flight.requests.per.connection", "2");
    gw_producer_free(p);

    k.compression = GW_CFG_COMPRESSION_NONE;
    k.produce_in_flight = 1;
    assert_int_equal(gw_producer_new(&k, "127.0.0.1:1", NULL, NULL, &p), GW_OK);
    assert_prop(p, "compression.type", "none");
    assert_prop(p, "max.in.flight.requests.per.connection", "1");
    gw_producer_free(p);

    k.compression = GW_CFG_COMPRESSION_LZ4;
    k.properties[0] = "compression.type=snappy";
    k.properties[1] = "max.in.flight.requests.per.connection=5";
    k.property_count = 2;
    assert_int_equal(gw_producer_new(&k, "127.0.0.1:1", NULL, NULL, &p), GW_OK);
    assert_prop(p, "compression.type", "snappy");
    assert_prop(p, "max.in.flight.requests.per.connection", "5");
    gw_producer_free(p);

    /* every name the config accepts is one librdkafka takes */
    for (int c = GW_CFG_COMPRESSION_NONE; c <= GW_CFG_COMPRESSION_ZSTD; c++) {
        gw_kafka_config kc = {.client_id = "t", .compression = (gw_cfg_compression)c};
        assert_int_equal(gw_producer_new(&kc, "127.0.0.1:1", NULL, NULL, &p), GW_OK);
        assert_prop(p, "compression.type", gw_cfg_compression_name((gw_cfg_compression)c));
        gw_producer_free(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_long_property_and_env_secrets),
        cmocka_unit_test(test_defer_and_tick),
        cmocka_unit_test(test_compression_and_in_flight),
        cmocka_unit_test(test_refused_resend_goes_to_the_hook),
        cmocka_unit_test(test_hold_and_release),
        cmocka_unit_test(test_permanent_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
