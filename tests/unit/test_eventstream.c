/* Unit tests for the AWS event stream parser (provider/eventstream.c):
 * hand-built frames, every split of the input, every header type, CRC
 * mismatches, lengths, the size limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "provider/eventstream.h"

static size_t frame(char *out, size_t cap, const char *event, const char *payload)
{
    const char *names[] = {":event-type", ":content-type", ":message-type"};
    const char *values[] = {event, "application/json", "event"};
    return gw_es_write(out, cap, names, values, 3, payload, strlen(payload));
}

static void test_crc32_known_value(void **state)
{
    (void)state;
    /* the IEEE CRC32 check value */
    assert_int_equal(gw_es_crc32(0, "123456789", 9), 0xCBF43926u);
    /* continued over two pieces = over the whole */
    uint32_t c = gw_es_crc32(0, "1234", 4);
    assert_int_equal(gw_es_crc32(c, "56789", 5), 0xCBF43926u);
}

/* A frame from the AWS event stream documentation's test vectors: no
 * headers, payload {'foo':'bar'}. */
static void test_reference_vector(void **state)
{
    (void)state;
    static const unsigned char v[] = {0x00, 0x00, 0x00, 0x1D, 0x00, 0x00, 0x00, 0x00, 0xFD, 0x52,
                                      0x8C, 0x5A, 0x7B, 0x27, 0x66, 0x6F, 0x6F, 0x27, 0x3A, 0x27,
                                      0x62, 0x61, 0x72, 0x27, 0x7D, 0xC3, 0x65, 0x39, 0x36};
    gw_es p;
    gw_es_init(&p, 1024);
    assert_int_equal(gw_es_feed(&p, (const char *)v, sizeof v), GW_OK);
    gw_es_message m;
    bool got;
    assert_int_equal(gw_es_next(&p, &m, &got), GW_OK);
    assert_true(got);
    assert_int_equal(m.header_count, 0);
    assert_string_equal(m.payload, "{'foo':'bar'}");
    char w[64];
    assert_int_equal(gw_es_write(w, sizeof w, NULL, NULL, 0, "{'foo':'bar'}", 13), sizeof v);
    assert_memory_equal(w, v, sizeof v);
    gw_es_cleanup(&p);
}

/* Three frames fed at every split point: the same messages come out. */
static void test_every_split(void **state)
{
    (void)state;
    char in[1024];
    size_t n = frame(in, sizeof in, "messageStart", "{\"role\":\"assistant\"}");
    n += frame(in + n, sizeof in - n, "contentBlockDelta", "{\"delta\":{\"text\":\"hi\"}}");
    n += frame(in + n, sizeof in - n, "messageStop", "{\"stopReason\":\"end_turn\"}");
    assert_true(n > 100);
    for (size_t cut1 = 0; cut1 <= n; cut1++) {
        for (size_t step = 1; step <= 3; step++) {
            gw_es p;
            gw_es_init(&p, 4096);
            char seen[3][32];
            int count = 0;
            size_t off = 0;
            while (off < n) {
                size_t k = off < cut1 ? (cut1 - off < step ? cut1 - off : step) : n - off;
                assert_int_equal(gw_es_feed(&p, in + off, k), GW_OK);
                off += k;
                gw_es_message m;
                bool got = true;
                while (got) {
                    assert_int_equal(gw_es_next(&p, &m, &got), GW_OK);
                    if (!got)
                        break;
                    size_t l;
                    const char *t = gw_es_header_str(&m, ":event-type", &l);
                    assert_non_null(t);
                    assert_true(count < 3);
                    snprintf(seen[count++], sizeof seen[0], "%.*s", (int)l, t);
                    assert_int_equal(strlen(m.payload), m.payload_len);
                }
            }
            assert_int_equal(count, 3);
            assert_string_equal(seen[0], "messageStart");
            assert_string_equal(seen[1], "contentBlockDelta");
            assert_string_equal(seen[2], "messageStop");
            assert_false(gw_es_pending(&p));
            gw_es_cleanup(&p);
        }
    }
}

static gw_err parse_one(const char *in, size_t n, size_t max, gw_es_message *m, bool *got, gw_es *p)
{
    gw_es_init(p, max);
    gw_err err = gw_es_feed(p, in, n);
    if (err == GW_OK)
        err = gw_es_next(p, m, got);
    return err;
}

static void test_bad_prelude_crc(void **state)
{
    (void)state;
    char in[256];
    size_t n = frame(in, sizeof in, "messageStop", "{}");
    in[9] ^= 1;
    gw_es p;
    gw_es_message m;
    bool got;
    assert_int_equal(parse_one(in, n, 4096, &m, &got, &p), GW_E_STREAM_ERROR);
    assert_int_equal(gw_es_error(&p), GW_ES_PRELUDE_CRC);
    assert_string_equal(gw_es_why_str(gw_es_error(&p)), "event stream prelude CRC mismatch");
    /* sticky */
    assert_int_equal(gw_es_feed(&p, in, 1), GW_E_STREAM_ERROR);
    assert_int_equal(gw_es_next(&p, &m, &got), GW_E_STREAM_ERROR);
    gw_es_cleanup(&p);
}

static void test_bad_message_crc(void **state)
{
    (void)state;
    char in[256];
    size_t n = frame(in, sizeof in, "messageStop", "{\"stopReason\":\"end_turn\"}");
    for (size_t at = 12; at < n; at++) { /* any flipped byte after the prelude */
        in[at] ^= 0x20;
        gw_es p;
        gw_es_message m;
        bool got = true;
        assert_int_equal(parse_one(in, n, 4096, &m, &got, &p), GW_E_STREAM_ERROR);
        assert_false(got);
        assert_int_equal(gw_es_error(&p), GW_ES_MESSAGE_CRC);
        gw_es_cleanup(&p);
        in[at] ^= 0x20;
    }
}

static void test_oversize(void **state)
{
    (void)state;
    static char in[8192];
    char payload[4000];
    memset(payload, 'x', sizeof payload - 1);
    payload[sizeof payload - 1] = '\0';
    size_t n = frame(in, sizeof in, "contentBlockDelta", payload);
    gw_es p;
    gw_es_message m;
    bool got;
    /* the prelude alone is enough to refuse it */
    gw_es_init(&p, 1024);
    assert_int_equal(gw_es_feed(&p, in, 12), GW_OK);
    assert_int_equal(gw_es_next(&p, &m, &got), GW_E_LIMIT);
    assert_int_equal(gw_es_error(&p), GW_ES_TOO_LONG);
    gw_es_cleanup(&p);
    /* exactly at the limit passes */
    assert_int_equal(parse_one(in, n, n, &m, &got, &p), GW_OK);
    assert_true(got);
    gw_es_cleanup(&p);
    /* input not taken beyond the bound */
    gw_es_init(&p, 1024);
    static char big[GW_ES_FEED_MAX_BYTES + 2048];
    assert_int_equal(gw_es_feed(&p, big, sizeof big), GW_E_LIMIT);
    assert_int_equal(gw_es_error(&p), GW_ES_FEED_TOO_LARGE);
    gw_es_cleanup(&p);
}

/* A frame with one header of every type, built by hand. */
static size_t typed_frame(char *out, unsigned bad_type)
{
    char h[256];
    size_t hl = 0;
    static const struct {
        unsigned type;
        size_t len;
    } vals[] = {{0, 0}, {1, 0}, {2, 1}, {3, 2}, {4, 4}, {5, 8}, {6, 3}, {7, 5}, {8, 8}, {9, 16}};
    for (size_t i = 0; i < 10; i++) {
        h[hl++] = 2;
        h[hl++] = 'h';
        h[hl++] = (char)('0' + i);
        h[hl++] = (char)(i == 5 && bad_type ? bad_type : vals[i].type);
        if (vals[i].type == 6 || vals[i].type == 7) {
            h[hl++] = 0;
            h[hl++] = (char)vals[i].len;
        }
        memset(h + hl, vals[i].type == 7 ? 's' : 1, vals[i].len);
        hl += vals[i].len;
    }
    size_t total = 16 + hl + 2;
    out[0] = 0, out[1] = 0, out[2] = (char)(total >> 8), out[3] = (char)total;
    out[4] = 0, out[5] = 0, out[6] = 0, out[7] = (char)hl;
    uint32_t c = gw_es_crc32(0, out, 8);
    for (int k = 0; k < 4; k++)
        out[8 + k] = (char)(c >> (24 - 8 * k));
    memcpy(out + 12, h, hl);
    memcpy(out + 12 + hl, "{}", 2);
    c = gw_es_crc32(0, out, total - 4);
    for (int k = 0; k < 4; k++)
        out[total - 4 + k] = (char)(c >> (24 - 8 * k));
    return total;
}

static void test_header_types(void **state)
{
    (void)state;
    char in[512];
    size_t n = typed_frame(in, 0);
    gw_es p;
    gw_es_message m;
    bool got;
    assert_int_equal(parse_one(in, n, 4096, &m, &got, &p), GW_OK);
    assert_true(got);
    assert_int_equal(m.header_count, 10);
    static const size_t lens[10] = {0, 0, 1, 2, 4, 8, 3, 5, 8, 16};
    for (size_t i = 0; i < 10; i++) {
        assert_int_equal(m.headers[i].type, i);
        assert_int_equal(m.headers[i].value_len, lens[i]);
    }
    size_t l;
    const char *s = gw_es_header_str(&m, "h7", &l);
    assert_non_null(s);
    assert_int_equal(l, 5);
    assert_memory_equal(s, "sssss", 5);
    assert_null(gw_es_header_str(&m, "h6", &l)); /* bytes, not a string */
    assert_string_equal(m.payload, "{}");
    gw_es_cleanup(&p);
    /* an unknown type (10) is a malformed header */
    n = typed_frame(in, 10);
    assert_int_equal(parse_one(in, n, 4096, &m, &got, &p), GW_E_STREAM_ERROR);
    assert_int_equal(gw_es_error(&p), GW_ES_BAD_HEADER);
    gw_es_cleanup(&p);
}

static void put32(char *p, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        p[k] = (char)(v >> (24 - 8 * k));
}

static void test_bad_lengths(void **state)
{
    (void)state;
    char in[64] = {0};
    gw_es p;
    gw_es_message m;
    bool got;
    /* total under the minimum */
    put32(in, 12);
    put32(in + 4, 0);
    put32(in + 8, gw_es_crc32(0, in, 8));
    assert_int_equal(parse_one(in, 12, 4096, &m, &got, &p), GW_E_STREAM_ERROR);
    assert_int_equal(gw_es_error(&p), GW_ES_BAD_LENGTH);
    gw_es_cleanup(&p);
    /* headers longer than the message */
    put32(in, 20);
    put32(in + 4, 8);
    put32(in + 8, gw_es_crc32(0, in, 8));
    assert_int_equal(parse_one(in, 12, 4096, &m, &got, &p), GW_E_STREAM_ERROR);
    assert_int_equal(gw_es_error(&p), GW_ES_BAD_LENGTH);
    gw_es_cleanup(&p);
    /* a header name running past its block (CRCs right) */
    put32(in, 20);
    put32(in + 4, 4);
    put32(in + 8, gw_es_crc32(0, in, 8));
    memcpy(in + 12,
           "\x09"
           "abc",
           4);
    put32(in + 16, gw_es_crc32(0, in, 16));
    assert_int_equal(parse_one(in, 20, 4096, &m, &got, &p), GW_E_STREAM_ERROR);
    assert_int_equal(gw_es_error(&p), GW_ES_BAD_HEADER);
    gw_es_cleanup(&p);
}

static void test_truncated_pending(void **state)
{
    (void)state;
    char in[256];
    size_t n = frame(in, sizeof in, "messageStop", "{}");
    gw_es p;
    gw_es_message m;
    bool got = true;
    assert_int_equal(parse_one(in, n - 1, 4096, &m, &got, &p), GW_OK);
    assert_false(got);
    assert_true(gw_es_pending(&p));
    gw_es_cleanup(&p);
}

static void test_too_many_headers(void **state)
{
    (void)state;
    const char *names[GW_ES_MAX_HEADERS + 1], *values[GW_ES_MAX_HEADERS + 1];
    char nm[GW_ES_MAX_HEADERS + 1][8];
    for (int i = 0; i <= GW_ES_MAX_HEADERS; i++) {
        snprintf(nm[i], sizeof nm[i], "h%d", i);
        names[i] = nm[i];
        values[i] = "v";
    }
    char in[1024];
    size_t n = gw_es_write(in, sizeof in, names, values, GW_ES_MAX_HEADERS + 1, "{}", 2);
    assert_true(n > 0);
    gw_es p;
    gw_es_message m;
    bool got;
    assert_int_equal(parse_one(in, n, 4096, &m, &got, &p), GW_E_STREAM_ERROR);
    assert_int_equal(gw_es_error(&p), GW_ES_TOO_MANY);
    gw_es_cleanup(&p);
    /* the writer refuses what does not fit */
    assert_int_equal(gw_es_write(in, 20, names, values, 1, "{}", 2), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32_known_value), cmocka_unit_test(test_reference_vector),
        cmocka_unit_test(test_every_split),       cmocka_unit_test(test_bad_prelude_crc),
        cmocka_unit_test(test_bad_message_crc),   cmocka_unit_test(test_oversize),
        cmocka_unit_test(test_header_types),      cmocka_unit_test(test_bad_lengths),
        cmocka_unit_test(test_truncated_pending), cmocka_unit_test(test_too_many_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
