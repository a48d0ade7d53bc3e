/*
 * Tests of src/codec/resolve: Avro schema resolution as a transcoder. Each
 * case writes a datum with a writer schema (bytes built here by hand), and
 * checks the exact reader-schema bytes that come out, or the named error.
 * The end-to-end path (a real registry, a real producer's newer schema, the
 * worker) is tests/integration/test_schema_registry.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/codec.h"
#include "codec/resolve.h"
#include "codec/schemas.h"

/* ---- a tiny Avro writer for the tests ------------------------------------------- */

typedef struct {
    uint8_t b[4096];
    size_t n;
} bytes;

static void l(bytes *o, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    while (z >= 0x80) {
        o->b[o->n++] = (uint8_t)(z | 0x80);
        z >>= 7;
    }
    o->b[o->n++] = (uint8_t)z;
}

static void str(bytes *o, const char *s)
{
    l(o, (int64_t)strlen(s));
    memcpy(o->b + o->n, s, strlen(s));
    o->n += strlen(s);
}

static void f32(bytes *o, float f)
{
    memcpy(o->b + o->n, &f, 4);
    o->n += 4;
}

static void f64(bytes *o, double d)
{
    memcpy(o->b + o->n, &d, 8);
    o->n += 8;
}

/* Transcodes in with (writer, reader); the error, and the output in *got. */
static gw_err run(const char *writer, const char *reader, const bytes *in, gw_buf *got)
{
    gw_resolver *r = NULL;
    char why[256];
    gw_err err =
        gw_resolver_new(writer, strlen(writer), reader, strlen(reader), why, sizeof why, &r);
    if (err != GW_OK)
        return err;
    gw_buf_init(got, 1 << 16);
    err = gw_resolver_transcode(r, in->b, in->n, got);
    gw_resolver_free(r);
    return err;
}

static void expect(const char *writer, const char *reader, const bytes *in, const bytes *want)
{
    gw_buf got;
    gw_err err = run(writer, reader, in, &got);
    if (err != GW_OK)
        fail_msg("transcode: %s", gw_err_name(err));
    assert_int_equal(got.len, want->n);
    assert_memory_equal(got.data, want->b, want->n);
    gw_buf_cleanup(&got);
}

static void expect_err(const char *writer, const char *reader, const bytes *in, gw_err want)
{
    gw_buf got = {0};
    gw_err err = run(writer, reader, in, &got);
    if (err != want)
        fail_msg("want %s, got %s", gw_err_name(want), gw_err_name(err));
    gw_buf_cleanup(&got);
}

static gw_err incompatible(const char *writer, const char *reader, char *why, size_t n)
{
    gw_resolver *r = NULL;
    gw_err err = gw_resolver_new(writer, strlen(writer), reader, strlen(reader), why, n, &r);
    gw_resolver_free(r);
    return err;
}

/* ---- cases -------------------------------------------------------------------------- */

#define REC(fields)                                                                                \
    "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"t\",\"fields\":[" fields "]}"

static void test_identity_and_reorder(void **state)
{
    const char *w = REC("{\"name\":\"a\",\"type\":\"string\"},{\"name\":\"b\",\"type\":\"int\"}");
    const char *r = REC("{\"name\":\"b\",\"type\":\"int\"},{\"name\":\"a\",\"type\":\"string\"}");
    bytes in = {0}, want = {0};
    str(&in, "hi");
    l(&in, -7);
    expect(w, w, &in, &in);
    l(&want, -7);
    str(&want, "hi");
    expect(w, r, &in, &want);
}

static void test_added_fields_take_defaults(void **state)
{
    const char *w = REC("{\"name\":\"a\",\"type\":\"string\"}");
    const char *r =
        REC("{\"name\":\"a\",\"type\":\"string\"},"
            "{\"name\":\"n\",\"type\":[\"null\",\"string\"],\"default\":null},"
            "{\"name\":\"i\",\"type\":\"long\",\"default\":300},"
            "{\"name\":\"s\",\"type\":\"string\",\"default\":\"x\"},"
            "{\"name\":\"arr\",\"type\":{\"type\":\"array\",\"items\":\"int\"},\"default\":[1,2]},"
            "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":\"boolean\"},\"default\":{\"k\":"
            "true}},"
            "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\"]},"
            "\"default\":\"B\"},"
            "{\"name\":\"sub\",\"type\":{\"type\":\"record\",\"name\":\"S\",\"fields\":["
            "{\"name\":\"d\",\"type\":\"double\"}]},\"default\":{\"d\":1.5}},"
            "{\"name\":\"by\",\"type\":\"bytes\",\"default\":\"\\u00ff\\u0001\"}");
    bytes in = {0}, want = {0};
    str(&in, "q");
    str(&want, "q");
    l(&want, 0); /* union branch null */
    l(&want, 300);
    str(&want, "x");
    l(&want, 2);
    l(&want, 1);
    l(&want, 2);
    l(&want, 0);
    l(&want, 1);
    str(&want, "k");
    want.b[want.n++] = 1;
    l(&want, 0);
    l(&want, 1); /* enum B */
    f64(&want, 1.5);
    l(&want, 2);
    want.b[want.n++] = 0xff;
    want.b[want.n++] = 0x01;
    expect(w, r, &in, &want);
}

static void test_removed_fields_are_skipped(void **state)
{
    const char *w =
        REC("{\"name\":\"gone\",\"type\":{\"type\":\"array\",\"items\":{\"type\":\"map\","
            "\"values\":[\"null\",\"string\"]}}},"
            "{\"name\":\"a\",\"type\":\"string\"},"
            "{\"name\":\"f\",\"type\":{\"type\":\"fixed\",\"name\":\"F\",\"size\":3}}");
    const char *r = REC("{\"name\":\"a\",\"type\":\"string\"}");
    bytes in = {0}, want = {0};
    l(&in, -1); /* a block of one item with its byte size */
    l(&in, 6);
    l(&in, 1);
    str(&in, "k");
    l(&in, 1);
    str(&in, "v");
    l(&in, 0);
    l(&in, 0);
    str(&in, "keep");
    memcpy(in.b + in.n, "xyz", 3);
    in.n += 3;
    str(&want, "keep");
    expect(w, r, &in, &want);
}

static void test_promotions(void **state)
{
    const char *w = REC("{\"name\":\"a\",\"type\":\"int\"},{\"name\":\"b\",\"type\":\"int\"},"
                        "{\"name\":\"c\",\"type\":\"long\"},{\"name\":\"d\",\"type\":\"float\"},"
                        "{\"name\":\"e\",\"type\":\"string\"},{\"name\":\"f\",\"type\":\"bytes\"}");
    const char *r = REC("{\"name\":\"a\",\"type\":\"long\"},{\"name\":\"b\",\"type\":\"double\"},"
                        "{\"name\":\"c\",\"type\":\"float\"},{\"name\":\"d\",\"type\":\"double\"},"
                        "{\"name\":\"e\",\"type\":\"bytes\"},{\"name\":\"f\",\"type\":\"string\"}");
    bytes in = {0}, want = {0};
    l(&in, 5);
    l(&in, -3);
    l(&in, 1LL << 40);
    f32(&in, 0.25f);
    str(&in, "s");
    str(&in, "b");
    l(&want, 5);
    f64(&want, -3.0);
    f32(&want, (float)(1LL << 40));
    f64(&want, 0.25);
    str(&want, "s");
    str(&want, "b");
    expect(w, r, &in, &want);
    /* no demotion */
    char why[256];
    assert_int_equal(incompatible(r, w, why, sizeof why), GW_E_CODEC_INCOMPATIBLE);
    assert_non_null(strstr(why, "cannot be read as"));
}

static void test_unions(void **state)
{
    /* writer union -> reader plain type (per datum), plain -> reader union */
    const char *w = REC("{\"name\":\"u\",\"type\":[\"null\",\"int\"]},"
                        "{\"name\":\"p\",\"type\":\"string\"}");
    const char *r = REC("{\"name\":\"u\",\"type\":\"long\"},"
                        "{\"name\":\"p\",\"type\":[\"null\",\"int\",\"string\"]}");
    bytes in = {0}, want = {0};
    l(&in, 1);
    l(&in, 9);
    str(&in, "z");
    l(&want, 9);
    l(&want, 2);
    str(&want, "z");
    expect(w, r, &in, &want);
    /* the null branch cannot be read as long: this datum fails, the pair is fine */
    bytes nul = {0};
    l(&nul, 0);
    str(&nul, "z");
    expect_err(w, r, &nul, GW_E_CODEC_INCOMPATIBLE);
    /* a writer branch index outside the union */
    bytes bad = {0};
    l(&bad, 5);
    expect_err(w, r, &bad, GW_E_CODEC_BAD_DATA);
}

static void test_enums(void **state)
{
    const char *w = REC("{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\","
                        "\"symbols\":[\"A\",\"B\",\"NEW\"]}}");
    const char *r = REC("{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\","
                        "\"symbols\":[\"B\",\"A\",\"OTHER\"],\"default\":\"OTHER\"}}");
    const char *r_nodef = REC("{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\","
                              "\"symbols\":[\"B\",\"A\"]}}");
    bytes a = {0}, want = {0};
    l(&a, 0); /* A */
    l(&want, 1);
    expect(w, r, &a, &want);
    bytes nw = {0}, want2 = {0};
    l(&nw, 2); /* NEW: the reader's default */
    l(&want2, 2);
    expect(w, r, &nw, &want2);
    expect_err(w, r_nodef, &nw, GW_E_CODEC_BAD_DATA);
}

static void test_incompatible_pairs(void **state)
{
    char why[256];
    const char *w = REC("{\"name\":\"a\",\"type\":\"string\"}");
    assert_int_equal(incompatible(w,
                                  REC("{\"name\":\"a\",\"type\":\"string\"},"
                                      "{\"name\":\"req\",\"type\":\"int\"}"),
                                  why, sizeof why),
                     GW_E_CODEC_INCOMPATIBLE);
    assert_string_equal(why, "field t.R.req: the writer lacks it and it has no default");
    assert_int_equal(incompatible(w, REC("{\"name\":\"a\",\"type\":\"int\"}"), why, sizeof why),
                     GW_E_CODEC_INCOMPATIBLE);
    /* another record name */
    assert_int_equal(incompatible(w,
                                  "{\"type\":\"record\",\"name\":\"Other\",\"fields\":[{\"name\":"
                                  "\"a\",\"type\":\"string\"}]}",
                                  why, sizeof why),
                     GW_E_CODEC_INCOMPATIBLE);
    /* ... unless the reader names it as an alias */
    assert_int_equal(incompatible(w,
                                  "{\"type\":\"record\",\"name\":\"Other\",\"aliases\":[\"R\"],"
                                  "\"fields\":[{\"name\":\"b\",\"aliases\":[\"a\"],\"type\":"
                                  "\"string\"}]}",
                                  why, sizeof why),
                     GW_OK);
    /* a default that does not fit its type */
    assert_int_equal(incompatible(w, REC("{\"name\":\"x\",\"type\":\"int\",\"default\":\"no\"}"),
                                  why, sizeof why),
                     GW_E_CODEC_INCOMPATIBLE);
    /* fixed sizes differ */
    assert_int_equal(incompatible("{\"type\":\"fixed\",\"name\":\"F\",\"size\":4}",
                                  "{\"type\":\"fixed\",\"name\":\"F\",\"size\":8}", why,
                                  sizeof why),
                     GW_E_CODEC_INCOMPATIBLE);
    /* schemas that do not parse */
    assert_int_equal(incompatible("{", w, why, sizeof why), GW_E_CODEC_BAD_DATA);
    assert_int_equal(incompatible("\"nosuchtype\"", w, why, sizeof why), GW_E_CODEC_BAD_DATA);
    assert_int_equal(incompatible("[]", w, why, sizeof why), GW_E_CODEC_BAD_DATA);
}

static void test_recursive_and_namespaces(void **state)
{
    const char *list = "{\"type\":\"record\",\"name\":\"Node\",\"namespace\":\"a.b\",\"fields\":["
                       "{\"name\":\"v\",\"type\":\"int\"},"
                       "{\"name\":\"next\",\"type\":[\"null\",\"Node\"]}]}";
    const char *list_long =
        "{\"type\":\"record\",\"name\":\"Node\",\"namespace\":\"c\",\"fields\":["
        "{\"name\":\"next\",\"type\":[\"null\",\"c.Node\"]},"
        "{\"name\":\"v\",\"type\":\"long\"}]}";
    bytes in = {0}, want = {0};
    l(&in, 1);
    l(&in, 1);
    l(&in, 2);
    l(&in, 0);
    /* reader order: next first, then v */
    l(&want, 1);
    l(&want, 0);
    l(&want, 2);
    l(&want, 1);
    expect(list, list_long, &in, &want);
}

static void test_bad_input(void **state)
{
    const char *w = REC("{\"name\":\"a\",\"type\":\"string\"},"
                        "{\"name\":\"xs\",\"type\":{\"type\":\"array\",\"items\":\"null\"}}");
    bytes cut = {0};
    l(&cut, 10);
    memcpy(cut.b + cut.n, "abc", 3);
    cut.n += 3;
    expect_err(w, w, &cut, GW_E_CODEC_TRUNCATED);
    bytes trailing = {0};
    str(&trailing, "a");
    l(&trailing, 0);
    trailing.b[trailing.n++] = 7;
    expect_err(w, w, &trailing, GW_E_CODEC_TRAILING);
    /* a billion nulls take no bytes: the item cap stops them */
    bytes many = {0};
    str(&many, "a");
    l(&many, 1000000000);
    l(&many, 0);
    expect_err(w, w, &many, GW_E_CODEC_LIMIT);
    bytes neg = {0};
    str(&neg, "a");
    l(&neg, -3);
    l(&neg, -1); /* a negative byte size */
    expect_err(w, w, &neg, GW_E_CODEC_BAD_DATA);
    bytes overlong = {0};
    for (int i = 0; i < 11; i++)
        overlong.b[overlong.n++] = 0xff;
    expect_err(w, w, &overlong, GW_E_CODEC_BAD_DATA);
}

/* A newer InferenceRequest (an added optional field, fields reordered) read
 * by the current schema, then decoded by the codec as a bare datum. */
static void test_inference_request_newer_writer(void **state)
{
    const char *reader = NULL;
    const char *name =
        gw_codec_schema_name(GW_REC_REQUEST, gw_codec_current_version(GW_REC_REQUEST));
    for (size_t i = 0; i < gw_schema_source_count; i++)
        if (strcmp(gw_schema_sources[i].name, name) == 0)
            reader = gw_schema_sources[i].json;
    assert_non_null(reader);
    /* the writer: the current schema with one more optional field in front,
     * as a producer's compatible next version would add it */
    char *writer = malloc(strlen(reader) + 256);
    const char *fields = strstr(reader, "\"fields\"");
    assert_non_null(fields);
    const char *open = strchr(fields, '[');
    size_t head = (size_t)(open - reader) + 1;
    memcpy(writer, reader, head);
    strcpy(writer + head, "{\"name\":\"x_trace_note\",\"type\":[\"null\",\"string\"],"
                          "\"default\":null},");
    strcat(writer, reader + head);
    gw_resolver *r = NULL;
    char why[256];
    assert_int_equal(
        gw_resolver_new(writer, strlen(writer), reader, strlen(reader), why, sizeof why, &r),
        GW_OK);
    /* a request encoded by the codec (current version, bare), with the new
     * field in front as the writer puts it */
    gw_codec *c = gw_codec_new(NULL);
    assert_non_null(c);
    gw_codec_set_decode_framing(c, GW_FRAMING_BARE);
    gw_message m = {.role = GW_ROLE_USER, .content = "hello"};
    gw_request q;
    gw_codec_init_defaults(GW_REC_REQUEST, &q);
    q.request_id = "r-1";
    q.agent_did = "did:example:a";
    q.messages = &m;
    q.message_count = 1;
    q.max_tokens = 77;
    gw_buf cur;
    gw_buf_init(&cur, 1 << 16);
    assert_int_equal(gw_codec_encode(c, GW_REC_REQUEST, &q, 0, GW_FRAMING_BARE, &cur), GW_OK);
    bytes in = {0};
    l(&in, 1);
    str(&in, "note");
    memcpy(in.b + in.n, cur.data, cur.len);
    in.n += cur.len;
    gw_buf out;
    gw_buf_init(&out, 1 << 16);
    assert_int_equal(gw_resolver_transcode(r, in.b, in.n, &out), GW_OK);
    assert_int_equal(out.len, cur.len);
    assert_memory_equal(out.data, cur.data, cur.len);
    gw_arena a;
    gw_arena_init(&a, 1 << 20);
    gw_request back;
    assert_int_equal(gw_codec_decode_request(c, out.data, out.len, &a, &back), GW_OK);
    assert_string_equal(back.request_id, "r-1");
    assert_int_equal(back.max_tokens, 77);
    assert_string_equal(back.messages[0].content, "hello");
    gw_arena_cleanup(&a);
    gw_buf_cleanup(&out);
    gw_buf_cleanup(&cur);
    gw_codec_free(c);
    gw_resolver_free(r);
    free(writer);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity_and_reorder),
        cmocka_unit_test(test_added_fields_take_defaults),
        cmocka_unit_test(test_removed_fields_are_skipped),
        cmocka_unit_test(test_promotions),
        cmocka_unit_test(test_unions),
        cmocka_unit_test(test_enums),
        cmocka_unit_test(test_incompatible_pairs),
        cmocka_unit_test(test_recursive_and_namespaces),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_inference_request_newer_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
