/* test_codec_avroc: avro-c as an independent check of the hand-written codec.
 * avro-c's generic reader decodes what gw_codec writes (every record, optional
 * fields set and unset) and must see the same values; avro-c's resolver reads
 * current-schema data with the v1 reader schema; and avro-c under the capped
 * allocator refuses a hostile 2^46-byte length prefix instead of allocating. */
#include "test_codec_util.h"

#include <avro.h>
#include <stdlib.h>

#include "codec/schemas.h"

static avro_schema_t load_schema(const char *name)
{
    for (size_t i = 0; i < gw_schema_source_count; i++) {
        if (strcmp(gw_schema_sources[i].name, name) == 0) {
            avro_schema_t s = NULL;
            const char *j = gw_schema_sources[i].json;
            assert_int_equal(avro_schema_from_json_length(j, strlen(j), &s), 0);
            return s;
        }
    }
    fail_msg("no schema %s", name);
    return NULL;
}

/* avro-c value -> the plain JSON form of codec/json.h */
static json_t *value_to_json(avro_value_t *v)
{
    avro_value_t child;
    const char *name, *str;
    size_t n, size;
    int32_t i32;
    int64_t i64;
    int b, idx;
    double d;
    json_t *o;
    switch (avro_value_get_type(v)) {
    case AVRO_NULL:
        return json_null();
    case AVRO_BOOLEAN:
        avro_value_get_boolean(v, &b);
        return json_boolean(b);
    case AVRO_INT32:
        avro_value_get_int(v, &i32);
        return json_integer(i32);
    case AVRO_INT64:
        avro_value_get_long(v, &i64);
        return json_integer(i64);
    case AVRO_DOUBLE:
        avro_value_get_double(v, &d);
        return json_real(d);
    case AVRO_STRING:
        avro_value_get_string(v, &str, &size);
        return json_stringn(str, size - 1);
    case AVRO_ENUM:
        avro_value_get_enum(v, &idx);
        return json_string(avro_schema_enum_get(avro_value_get_schema(v), idx));
    case AVRO_UNION:
        avro_value_get_current_branch(v, &child);
        return value_to_json(&child);
    case AVRO_RECORD:
    case AVRO_MAP:
        o = json_object();
        avro_value_get_size(v, &n);
        for (size_t i = 0; i < n; i++) {
            avro_value_get_by_index(v, i, &child, &name);
            json_object_set_new(o, name, value_to_json(&child));
        }
        return o;
    case AVRO_ARRAY:
        o = json_array();
        avro_value_get_size(v, &n);
        for (size_t i = 0; i < n; i++) {
            avro_value_get_by_index(v, i, &child, NULL);
            json_array_append_new(o, value_to_json(&child));
        }
        return o;
    default:
        fail_msg("unexpected avro type");
        return NULL;
    }
}

static const char *source_of(gw_record_kind k)
{
    return gw_codec_schema_name(k, gw_codec_current_version(k));
}

static void test_avroc_reads_our_encoding(void **state)
{
    gw_codec *c = *state;
    for (int k = 0; k < GW_REC__COUNT; k++) {
        for (int full = 0; full < 2; full++) {
            gw_any_record in;
            gw_buf buf;
            gw_buf_init(&buf, 0);
            sample_record((gw_record_kind)k, full, &in);
            assert_int_equal(gw_codec_encode(c, (gw_record_kind)k, &in, 0, GW_FRAMING_BARE, &buf),
                             GW_OK);
            avro_schema_t schema = load_schema(source_of((gw_record_kind)k));
            avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
            avro_value_t value;
            assert_int_equal(avro_generic_value_new(iface, &value), 0);
            avro_reader_t rd = avro_reader_memory((const char *)buf.data, (int64_t)buf.len);
            assert_int_equal(avro_value_read(rd, &value), 0);
            char extra;
            assert_int_not_equal(avro_read(rd, &extra, 1), 0); /* all bytes consumed */
            json_t *theirs = value_to_json(&value);
            json_t *ours = gw_record_to_json((gw_record_kind)k, &in);
            if (!json_equal(theirs, ours)) {
                char *a = json_dumps(theirs, JSON_SORT_KEYS), *b = json_dumps(ours, JSON_SORT_KEYS);
                fail_msg("kind %d full %d\navro-c %s\nours   %s", k, full, a, b);
            }
            json_decref(theirs);
            json_decref(ours);
            avro_reader_free(rd);
            avro_value_decref(&value);
            avro_value_iface_decref(iface);
            avro_schema_decref(schema);
            gw_buf_cleanup(&buf);
        }
    }
}

/* Current writer, v1 reader: the new fields are skipped, the old ones read. */
static void test_avroc_resolves_current_to_v1(void **state)
{
    gw_codec *c = *state;
    gw_request in;
    gw_buf buf;
    gw_buf_init(&buf, 0);
    sample_request(&in, true);
    assert_int_equal(gw_codec_encode_request(c, &in, GW_FRAMING_BARE, &buf), GW_OK);
    avro_schema_t writer = load_schema("InferenceRequest");
    avro_schema_t reader = load_schema("InferenceRequest.v1");
    avro_value_iface_t *reader_iface = avro_generic_class_from_schema(reader);
    avro_value_iface_t *resolver = avro_resolved_writer_new(writer, reader);
    assert_non_null(resolver);
    avro_value_t dest, resolved;
    assert_int_equal(avro_generic_value_new(reader_iface, &dest), 0);
    assert_int_equal(avro_resolved_writer_new_value(resolver, &resolved), 0);
    avro_resolved_writer_set_dest(&resolved, &dest);
    avro_reader_t rd = avro_reader_memory((const char *)buf.data, (int64_t)buf.len);
    assert_int_equal(avro_value_read(rd, &resolved), 0);
    json_t *got = value_to_json(&dest);
    json_t *want = gw_request_to_json(&in);
    const char *newer[] = {
        "routing_strategy", "stream",    "model",     "deadline_ms", "reply_topic",
        "batch_id",         "custom_id", "tenant_id", "tools",       "tool_choice",
        "response_format",  "stop",      "top_p",     "seed"};
    for (size_t i = 0; i < sizeof newer / sizeof newer[0]; i++)
        json_object_del(want, newer[i]);
    /* v1's Message has no tool fields: the reader skips them */
    size_t mi;
    json_t *m;
    json_array_foreach(json_object_get(want, "messages"), mi, m)
    {
        json_object_del(m, "tool_calls");
        json_object_del(m, "tool_call_id");
    }
    assert_true(json_equal(got, want));
    json_decref(got);
    json_decref(want);
    avro_reader_free(rd);
    avro_value_decref(&resolved);
    avro_value_decref(&dest);
    avro_value_iface_decref(resolver);
    avro_value_iface_decref(reader_iface);
    avro_schema_decref(writer);
    avro_schema_decref(reader);
    gw_buf_cleanup(&buf);
}

/* Without the cap, avro-c asks malloc for 2^46 bytes here (ASan aborts on that). */
static void test_avroc_capped_allocator(void **state)
{
    gw_codec_cap_avro_allocator(1 << 20);
    bytes x = {.n = 0};
    put_long(&x, (int64_t)1 << 46);
    put_str(&x, "abc");
    avro_schema_t schema = load_schema("InferenceRequest");
    avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
    avro_value_t value;
    assert_int_equal(avro_generic_value_new(iface, &value), 0);
    avro_reader_t rd = avro_reader_memory((const char *)x.b, (int64_t)x.n);
    assert_int_not_equal(avro_value_read(rd, &value), 0);
    avro_reader_free(rd);
    avro_value_decref(&value);
    avro_value_iface_decref(iface);
    avro_schema_decref(schema);
    gw_codec_cap_avro_allocator(64 << 20);
}

static int setup(void **state)
{
    *state = gw_codec_new(NULL);
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    gw_codec_free(*state);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_avroc_reads_our_encoding),
        cmocka_unit_test(test_avroc_resolves_current_to_v1),
        cmocka_unit_test(test_avroc_capped_allocator),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
