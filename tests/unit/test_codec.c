/* test_codec: round trips of every record (optional fields set and unset) in
 * every framing, schema evolution v1 -> current, fingerprints, the JSON form,
 * and the small helpers the codec owns (gw_buf, gw_uuid4, canonical form). */
#include "test_codec_util.h"

#include <math.h>
#include <stdlib.h>

#include "codec/canon.h"
#include "common/uuid.h"

static void roundtrip_one(gw_codec *c, gw_record_kind kind, bool full, gw_framing framing)
{
    gw_any_record in, out;
    gw_buf buf;
    gw_arena arena;
    gw_buf_init(&buf, 0);
    gw_arena_init(&arena, 1 << 20);
    sample_record(kind, full, &in);
    assert_int_equal(gw_codec_encode(c, kind, &in, 0, framing, &buf), GW_OK);
    assert_int_equal(gw_codec_decode(c, kind, buf.data, buf.len, &arena, &out), GW_OK);
    assert_records_equal(kind, &in, &out);
    /* re-encoding the decoded record gives the same bytes */
    size_t first = buf.len;
    assert_int_equal(gw_codec_encode(c, kind, &out, 0, framing, &buf), GW_OK);
    assert_int_equal(buf.len, 2 * first);
    assert_memory_equal(buf.data, buf.data + first, first);
    gw_arena_cleanup(&arena);
    gw_buf_cleanup(&buf);
}

static void test_roundtrip_all(void **state)
{
    gw_framing framings[] = {GW_FRAMING_BARE, GW_FRAMING_SINGLE_OBJECT, GW_FRAMING_CONFLUENT};
    for (int k = 0; k < GW_REC__COUNT; k++)
        for (int full = 0; full < 2; full++)
            for (size_t f = 0; f < 3; f++)
                roundtrip_one(*state, (gw_record_kind)k, full, framings[f]);
}

static void test_defaults_v1_writer(void **state)
{
    gw_codec *c = *state;
    gw_request in, out;
    gw_buf buf;
    gw_arena arena;
    gw_buf_init(&buf, 0);
    gw_arena_init(&arena, 0);
    sample_request(&in, true);
    in.messages = sample_messages;
    in.message_count = 3;
    assert_int_equal(gw_codec_encode(c, GW_REC_REQUEST, &in, 1, GW_FRAMING_SINGLE_OBJECT, &buf),
                     GW_OK);
    gw_codec_frame f;
    assert_int_equal(gw_codec_detect(c, GW_REC_REQUEST, buf.data, buf.len, &f), GW_OK);
    assert_int_equal(f.writer_version, 1);
    assert_int_equal(gw_codec_decode_request(c, buf.data, buf.len, &arena, &out), GW_OK);
    assert_string_equal(out.request_id, in.request_id);
    assert_int_equal(out.message_count, 3);
    assert_string_equal(out.messages[2].content, in.messages[2].content);
    assert_string_equal(out.system_prompt, "Be helpful.");
    assert_int_equal(out.capability_count, 2);
    assert_false(out.enable_cache);
    assert_string_equal(gw_map_get(&out.metadata, "trace"), "abc");
    /* the fields v1 lacks take the current schema's defaults */
    assert_int_equal(out.routing_strategy, GW_ROUTE_BALANCED);
    assert_false(out.stream);
    assert_null(out.model);
    assert_false(out.has_deadline);
    assert_null(out.reply_topic);
    assert_null(out.batch_id);
    assert_null(out.custom_id);
    assert_null(out.tenant_id);
    /* and the fields v3 added */
    assert_int_equal(out.tool_count, 0);
    assert_null(out.tool_choice);
    assert_null(out.response_format);
    assert_int_equal(out.stop_count, 0);
    assert_false(out.has_top_p);
    assert_false(out.has_seed);
    for (size_t i = 0; i < out.message_count; i++) {
        assert_int_equal(out.messages[i].tool_call_count, 0);
        assert_null(out.messages[i].tool_call_id);
    }
    /* the same through Confluent id 8 -> v1 */
    gw_buf_reset(&buf);
    assert_int_equal(gw_codec_encode(c, GW_REC_REQUEST, &in, 1, GW_FRAMING_CONFLUENT, &buf), GW_OK);
    assert_int_equal(buf.data[4], 8);
    assert_int_equal(gw_codec_decode_request(c, buf.data, buf.len, &arena, &out), GW_OK);
    assert_int_equal(out.routing_strategy, GW_ROUTE_BALANCED);
    /* bare v1 bytes are not a current datum: bare framing means the current schema
     * (here the first message's name union reads the next message's role) */
    gw_buf_reset(&buf);
    assert_int_equal(gw_codec_encode(c, GW_REC_REQUEST, &in, 1, GW_FRAMING_BARE, &buf), GW_OK);
    assert_int_not_equal(gw_codec_decode_request(c, buf.data, buf.len, &arena, &out), GW_OK);
    gw_arena_cleanup(&arena);
    gw_buf_cleanup(&buf);
}

/* fastavro's fingerprint(to_parsing_canonical_form(...), "CRC-64-AVRO") prints the
 * little-endian bytes (the single-object header order); these are the numbers.
 * The interop test checks the same against the live schemas. */
static void test_fingerprints(void **state)
{
    gw_codec *c = *state;
    assert_true(gw_codec_fingerprint(c, GW_REC_REQUEST, 1) == 0xf80c7ec8f32a0938ULL);
    assert_true(gw_codec_fingerprint(c, GW_REC_REQUEST, 2) == 0x9886fcc7c02b22fbULL);
    assert_true(gw_codec_fingerprint(c, GW_REC_REQUEST, 3) == 0x84669a50a82cd362ULL);
    assert_true(gw_codec_fingerprint(c, GW_REC_RESPONSE, 1) == 0x8f4fe92e3f7b2972ULL);
    assert_true(gw_codec_fingerprint(c, GW_REC_RESPONSE, 2) == 0x3d8a7958bc6164f4ULL);
    assert_true(gw_codec_fingerprint(c, GW_REC_CHUNK, 1) == 0x55561f4f99f2b13fULL);
    assert_true(gw_codec_fingerprint(c, GW_REC_CHUNK, 2) == 0x51c6c6484a0bc874ULL);
    assert_true(gw_codec_fingerprint(c, GW_REC_USAGE, 1) == 0xbdf3d20df36af64cULL);
    assert_true(gw_codec_fingerprint(c, GW_REC_USAGE, 2) == 0xf6a1e6c65d260407ULL);
    assert_int_equal(gw_codec_fingerprint(c, GW_REC_REQUEST, 4), 0);
    assert_true(gw_avro_fingerprint64("\"int\"", 5) == 0x7275d51a3f395c8fULL);
    const char *canon = gw_codec_canonical_form(c, GW_REC_CHUNK, 1);
    assert_non_null(canon);
    const char *prefix = "{\"name\":\"io.modelgw.StreamChunk\",\"type\":\"record\",\"fields\":"
                         "[{\"name\":\"request_id\",\"type\":\"string\"}";
    assert_true(strncmp(canon, prefix, strlen(prefix)) == 0);
    /* single-object header: C3 01 + fingerprint little-endian */
    gw_chunk ch;
    gw_buf buf;
    gw_buf_init(&buf, 0);
    sample_chunk(&ch, false);
    assert_int_equal(gw_codec_encode_chunk(c, &ch, GW_FRAMING_SINGLE_OBJECT, &buf), GW_OK);
    const uint8_t want[10] = {0xC3, 0x01, 0x74, 0xc8, 0x0b, 0x4a, 0x48, 0xc6, 0xc6, 0x51};
    assert_memory_equal(buf.data, want, 10);
    gw_buf_cleanup(&buf);
}

static void test_canonical_form_rules(void **state)
{
    gw_buf b;
    gw_buf_init(&b, 4096);
    assert_int_equal(
        gw_avro_canonical_form("{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}", &b),
        GW_OK);
    assert_string_equal((char *)b.data, "\"long\"");
    gw_buf_reset(&b);
    assert_int_equal(
        gw_avro_canonical_form(
            "{\"doc\":\"x\",\"fields\":[{\"type\":{\"symbols\":[\"A\"],\"type\":\"enum\",\"name\":"
            "\"E\"},\"name\":\"e\",\"default\":\"A\"},{\"name\":\"f\",\"type\":\"E\"},{\"name\":"
            "\"g\",\"type\":{\"type\":\"fixed\",\"size\":16,\"name\":\"other.F\"}}],"
            "\"namespace\":\"n\",\"name\":\"R\",\"type\":\"record\"}",
            &b),
        GW_OK);
    assert_string_equal(
        (char *)b.data,
        "{\"name\":\"n.R\",\"type\":\"record\",\"fields\":[{\"name\":\"e\",\"type\":"
        "{\"name\":\"n.E\",\"type\":\"enum\",\"symbols\":[\"A\"]}},{\"name\":\"f\","
        "\"type\":\"n.E\"},{\"name\":\"g\",\"type\":{\"name\":\"other.F\",\"type\":"
        "\"fixed\",\"size\":16}}]}");
    gw_buf_reset(&b);
    assert_int_equal(gw_avro_canonical_form("{\"type\":\"record\",\"name\":\"R\",\"fields\":"
                                            "[{\"name\":\"x\",\"type\":\"Undefined\"}]}",
                                            &b),
                     GW_E_CONFIG);
    assert_int_equal(gw_avro_canonical_form("not json", &b), GW_E_CONFIG);
    gw_buf_cleanup(&b);
}

static void test_confluent_ids(void **state)
{
    gw_codec *c = *state;
    gw_response r;
    gw_buf buf;
    gw_arena arena;
    gw_buf_init(&buf, 0);
    gw_arena_init(&arena, 0);
    sample_response(&r, true);
    assert_int_equal(gw_codec_encode_response(c, &r, GW_FRAMING_CONFLUENT, &buf), GW_OK);
    const uint8_t want[5] = {0, 0, 0, 0, 13};
    assert_memory_equal(buf.data, want, 5);
    gw_response out;
    assert_int_equal(gw_codec_decode_response(c, buf.data, buf.len, &arena, &out), GW_OK);
    assert_int_equal(out.tool_call_count, 2);
    assert_string_equal(out.tool_calls[1].name, "get_time");
    /* the same bytes as a request: id 13 is a response schema */
    gw_request req;
    assert_int_equal(gw_codec_decode_request(c, buf.data, buf.len, &arena, &req),
                     GW_E_CODEC_UNKNOWN_SCHEMA);
    buf.data[4] = 99;
    assert_int_equal(gw_codec_decode_response(c, buf.data, buf.len, &arena, &out),
                     GW_E_CODEC_UNKNOWN_SCHEMA);
    assert_int_equal(gw_codec_set_confluent_id(c, 5, GW_REC_USAGE, 9), GW_E_CONFIG);
    gw_arena_cleanup(&arena);
    gw_buf_cleanup(&buf);
}

static void test_framing_modes(void **state)
{
    gw_codec *c = gw_codec_new(NULL);
    assert_non_null(c);
    gw_request r, out;
    gw_buf buf;
    gw_arena arena;
    gw_buf_init(&buf, 0);
    gw_arena_init(&arena, 0);
    sample_request(&r, false);
    r.request_id = "";
    assert_int_equal(gw_codec_encode_request(c, &r, GW_FRAMING_BARE, &buf), GW_OK);
    assert_int_equal(buf.data[0], 0);
    /* AUTO reads a leading 00 as Confluent framing ... */
    assert_int_equal(gw_codec_decode_request(c, buf.data, buf.len, &arena, &out),
                     GW_E_CODEC_UNKNOWN_SCHEMA);
    /* ... BARE reads it as the datum it is */
    gw_codec_set_decode_framing(c, GW_FRAMING_BARE);
    assert_int_equal(gw_codec_decode_request(c, buf.data, buf.len, &arena, &out), GW_OK);
    assert_string_equal(out.request_id, "");
    gw_codec_set_decode_framing(c, GW_FRAMING_SINGLE_OBJECT);
    assert_int_equal(gw_codec_decode_request(c, buf.data, buf.len, &arena, &out),
                     GW_E_CODEC_BAD_MAGIC);
    gw_codec_set_decode_framing(c, GW_FRAMING_CONFLUENT);
    buf.data[0] = 0x42;
    assert_int_equal(gw_codec_decode_request(c, buf.data, buf.len, &arena, &out),
                     GW_E_CODEC_BAD_MAGIC);
    /* AUTO on encode writes single-object */
    gw_buf_reset(&buf);
    assert_int_equal(gw_codec_encode_request(c, &r, GW_FRAMING_AUTO, &buf), GW_OK);
    assert_int_equal(buf.data[0], 0xC3);
    /* encoding Confluent without an id for the version */
    assert_int_equal(gw_codec_encode_request(c, &r, GW_FRAMING_CONFLUENT, &buf),
                     GW_E_CODEC_UNKNOWN_SCHEMA);
    gw_arena_cleanup(&arena);
    gw_buf_cleanup(&buf);
    gw_codec_free(c);
}

/* UsageEvent v2 added trace_id and span_id: set, they round-trip; a v1
 * writer's event decodes with both null; a v1 reader's view (v1 encode of a
 * v2 record) drops them. */
static void test_usage_trace_fields(void **state)
{
    gw_codec *c = *state;
    gw_usage_event in, out;
    gw_buf buf;
    gw_arena arena;
    gw_buf_init(&buf, 0);
    gw_arena_init(&arena, 0);
    sample_usage(&in, false);
    in.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    in.span_id = "00f067aa0ba902b7";
    assert_int_equal(gw_codec_encode_usage(c, &in, GW_FRAMING_SINGLE_OBJECT, &buf), GW_OK);
    gw_codec_frame f;
    assert_int_equal(gw_codec_detect(c, GW_REC_USAGE, buf.data, buf.len, &f), GW_OK);
    assert_int_equal(f.writer_version, 2);
    assert_int_equal(gw_codec_decode(c, GW_REC_USAGE, buf.data, buf.len, &arena, &out), GW_OK);
    assert_string_equal(out.trace_id, in.trace_id);
    assert_string_equal(out.span_id, in.span_id);
    assert_string_equal(out.request_id, "req-1");
    assert_records_equal(GW_REC_USAGE, &in, &out);
    size_t v2_len = buf.len;

    gw_buf_reset(&buf);
    assert_int_equal(gw_codec_encode(c, GW_REC_USAGE, &in, 1, GW_FRAMING_SINGLE_OBJECT, &buf),
                     GW_OK);
    assert_int_equal(buf.len, v2_len - 2 - 32 - 2 - 16); /* two union indexes, two strings */
    assert_int_equal(gw_codec_detect(c, GW_REC_USAGE, buf.data, buf.len, &f), GW_OK);
    assert_int_equal(f.writer_version, 1);
    assert_int_equal(gw_codec_decode(c, GW_REC_USAGE, buf.data, buf.len, &arena, &out), GW_OK);
    assert_null(out.trace_id);
    assert_null(out.span_id);
    assert_string_equal(out.outcome, "success");
    assert_true(out.timestamp_ms == in.timestamp_ms);

    /* the JSON form names them; null when unset */
    json_t *j = gw_usage_to_json(&in);
    assert_string_equal(json_string_value(json_object_get(j, "trace_id")), in.trace_id);
    json_decref(j);
    j = gw_usage_to_json(&out);
    assert_true(json_is_null(json_object_get(j, "span_id")));
    json_decref(j);
    gw_arena_cleanup(&arena);
    gw_buf_cleanup(&buf);
}

static void test_block_encodings(void **state)
{
    /* arrays and maps in several blocks, one with a negative count + byte size */
    bytes x = {.n = 0};
    put_str(&x, "r1");
    put_str(&x, "did");
    put_long(&x, -1); /* block of 1 message, with its byte size */
    put_long(&x, 7);
    put_long(&x, 1), put_str(&x, "hi"), put_long(&x, 0), put_long(&x, 0), put_long(&x, 0);
    put_long(&x, 1);
    put_long(&x, 2), put_str(&x, "ok"), put_long(&x, 1), put_str(&x, "n");
    put_long(&x, -1), put_long(&x, 9); /* tool_calls: a block of 1 with its byte size */
    put_str(&x, "c1"), put_str(&x, "f"), put_str(&x, "{}");
    put_long(&x, 1); /* and a second block of 1 */
    put_str(&x, "c2"), put_str(&x, "g"), put_str(&x, "[]");
    put_long(&x, 0);
    put_long(&x, 0); /* tool_call_id null */
    put_long(&x, 0);
    put_long(&x, 0);     /* system_prompt null */
    put_double(&x, 1.5); /* temperature */
    put_long(&x, 100);   /* max_tokens */
    put_long(&x, 0);     /* capabilities [] */
    put_byte(&x, 1);     /* enable_cache */
    put_long(&x, -1);    /* metadata: 1 entry, byte size */
    put_long(&x, 4);
    put_str(&x, "k"), put_str(&x, "v");
    put_long(&x, 1);
    put_str(&x, "k2"), put_str(&x, "v2");
    put_long(&x, 0);
    put_long(&x, 4); /* CAPABILITY_MATCH */
    put_byte(&x, 0); /* stream */
    for (int i = 0; i < 6; i++)
        put_long(&x, 0); /* the optional strings and deadline */
    put_long(&x, 0);     /* tools [] */
    put_long(&x, 0);     /* tool_choice null */
    put_long(&x, 0);     /* response_format null */
    put_long(&x, -1);    /* stop: one block with its byte size */
    put_long(&x, 2);
    put_str(&x, "x");
    put_long(&x, 0);
    put_long(&x, 1); /* top_p */
    put_double(&x, 0.5);
    put_long(&x, 1); /* seed */
    put_long(&x, 42);
    gw_arena arena;
    gw_arena_init(&arena, 0);
    gw_request out;
    assert_int_equal(gw_codec_decode_request(*state, x.b, x.n, &arena, &out), GW_OK);
    assert_int_equal(out.message_count, 2);
    assert_int_equal(out.messages[1].role, GW_ROLE_ASSISTANT);
    assert_string_equal(out.messages[1].name, "n");
    assert_int_equal(out.messages[1].tool_call_count, 2);
    assert_string_equal(out.messages[1].tool_calls[1].arguments, "[]");
    assert_int_equal(out.stop_count, 1);
    assert_true(out.has_top_p && out.top_p == 0.5);
    assert_true(out.has_seed && out.seed == 42);
    assert_int_equal(out.metadata.count, 2);
    assert_string_equal(gw_map_get(&out.metadata, "k2"), "v2");
    assert_int_equal(out.routing_strategy, GW_ROUTE_CAPABILITY_MATCH);
    assert_true(out.temperature == 1.5);
    gw_arena_cleanup(&arena);
}

static void test_json(void **state)
{
    gw_arena arena;
    gw_arena_init(&arena, 0);
    json_error_t jerr;
    json_t *j = json_loads("{\"agent_did\":\"did:x\",\"messages\":[{\"role\":\"user\",\"content\":"
                           "\"hi\"}],\"routing_strategy\":\"fastest\",\"deadline_ms\":123,"
                           "\"metadata\":{\"a\":\"b\"},\"model\":null}",
                           0, &jerr);
    assert_non_null(j);
    gw_request r;
    assert_int_equal(gw_request_from_json(j, &arena, &r), GW_OK);
    assert_null(r.request_id); /* the caller generates one */
    assert_int_equal(r.messages[0].role, GW_ROLE_USER);
    assert_int_equal(r.routing_strategy, GW_ROUTE_FASTEST);
    assert_true(r.has_deadline);
    assert_true(r.temperature == 0.7);
    assert_int_equal(r.max_tokens, 1024);
    assert_true(r.enable_cache);
    assert_null(r.model);
    json_decref(j);

    const char *bad = NULL;
    j = json_loads("{\"agent_did\":\"d\",\"temprature\":1}", 0, &jerr);
    assert_int_equal(gw_record_from_json(GW_REC_REQUEST, j, &arena, &r, &bad),
                     GW_E_INVALID_REQUEST);
    assert_string_equal(bad, "temprature");
    json_decref(j);
    j = json_loads("{\"messages\":[{\"role\":\"WIZARD\",\"content\":\"x\"}]}", 0, &jerr);
    assert_int_equal(gw_record_from_json(GW_REC_REQUEST, j, &arena, &r, &bad),
                     GW_E_INVALID_REQUEST);
    assert_string_equal(bad, "role");
    json_decref(j);
    /* MessageRole has no default: an absent role is not silently SYSTEM */
    j = json_loads("{\"messages\":[{\"content\":\"x\"}]}", 0, &jerr);
    bad = NULL;
    assert_int_equal(gw_record_from_json(GW_REC_REQUEST, j, &arena, &r, &bad),
                     GW_E_INVALID_REQUEST);
    assert_string_equal(bad, "role");
    json_decref(j);

    /* JSON has no NaN: a decoded NaN prints as null (found by fuzz_decode) */
    sample_request(&r, false);
    r.temperature = NAN;
    j = gw_request_to_json(&r);
    assert_non_null(j);
    assert_true(json_is_null(json_object_get(j, "temperature")));
    json_decref(j);

    /* every record: struct -> JSON -> struct is the identity */
    for (int k = 0; k < GW_REC__COUNT; k++) {
        gw_any_record in, back;
        sample_record((gw_record_kind)k, true, &in);
        json_t *o = gw_record_to_json((gw_record_kind)k, &in);
        assert_int_equal(gw_record_from_json((gw_record_kind)k, o, &arena, &back, NULL), GW_OK);
        assert_records_equal((gw_record_kind)k, &in, &back);
        json_decref(o);
    }
    gw_arena_cleanup(&arena);
}

static void test_buf_and_uuid(void **state)
{
    gw_buf b;
    gw_buf_init(&b, 10);
    assert_int_equal(gw_buf_append(&b, "0123456789", 10), GW_OK);
    assert_int_equal(gw_buf_append_byte(&b, 'x'), GW_E_LIMIT);
    gw_buf_reset(&b);
    assert_int_equal(gw_buf_append(&b, "abc", 3), GW_OK);
    assert_int_equal(b.len, 3);
    gw_buf_cleanup(&b);
    char a[37], c[37];
    gw_uuid4(a);
    gw_uuid4(c);
    assert_int_equal(strlen(a), 36);
    assert_int_equal(a[14], '4');
    assert_true(strchr("89ab", a[19]) != NULL);
    assert_string_not_equal(a, c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_all),   cmocka_unit_test(test_defaults_v1_writer),
        cmocka_unit_test(test_fingerprints),    cmocka_unit_test(test_canonical_form_rules),
        cmocka_unit_test(test_confluent_ids),   cmocka_unit_test(test_framing_modes),
        cmocka_unit_test(test_block_encodings), cmocka_unit_test(test_json),
        cmocka_unit_test(test_buf_and_uuid),    cmocka_unit_test(test_usage_trace_fields),
    };
    return cmocka_run_group_tests(tests, codec_setup, codec_teardown);
}
