/* test_codec_hostile: bad input gets a named error, never a crash or a leak
 * (this suite runs under ASan+UBSan in the test-all script): the committed
 * hostile corpus (tests/data/avro/hostile/MANIFEST), every truncation of
 * valid messages, and each decoder and encoder limit. */
#include "test_codec_util.h"

#include <stdio.h>
#include <stdlib.h>

static gw_record_kind kind_named(const char *s)
{
    if (strcmp(s, "request") == 0)
        return GW_REC_REQUEST;
    if (strcmp(s, "response") == 0)
        return GW_REC_RESPONSE;
    if (strcmp(s, "chunk") == 0)
        return GW_REC_CHUNK;
    assert_string_equal(s, "usage");
    return GW_REC_USAGE;
}

static size_t read_file(const char *path, uint8_t *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    size_t n = fread(buf, 1, cap, f);
    assert_true(feof(f));
    fclose(f);
    return n;
}

/* Decodes every file of a MANIFEST and checks the error name it lists. */
static void run_manifest(gw_codec *c, const char *dir)
{
    const char *root = getenv("MODELGW_SOURCE_DIR");
    char path[1024], line[512];
    snprintf(path, sizeof path, "%s/%s/MANIFEST", root ? root : ".", dir);
    FILE *m = fopen(path, "r");
    if (m == NULL)
        fail_msg("cannot open %s", path);
    static uint8_t data[1 << 20];
    int checked = 0;
    while (fgets(line, sizeof line, m) != NULL) {
        char file[256], kind[32], want[64];
        if (line[0] == '#' || sscanf(line, "%255s %31s %63s", file, kind, want) != 3)
            continue;
        snprintf(path, sizeof path, "%s/%s/%s", root ? root : ".", dir, file);
        size_t n = read_file(path, data, sizeof data);
        gw_arena arena;
        gw_arena_init(&arena, 1 << 20);
        gw_any_record out;
        gw_err e = gw_codec_decode(c, kind_named(kind), data, n, &arena, &out);
        gw_arena_cleanup(&arena);
        if (strcmp(gw_err_name(e), want) != 0)
            fail_msg("%s: want %s, got %s", file, want, gw_err_name(e));
        checked++;
    }
    fclose(m);
    assert_true(checked >= 10);
}

static void test_hostile_corpus(void **state)
{
    run_manifest(*state, "tests/data/avro/hostile");
}

static void test_valid_corpus(void **state)
{
    run_manifest(*state, "tests/data/avro/valid");
}

/* Every proper prefix of a valid message is CODEC_TRUNCATED, in every framing. */
static void test_truncated_everywhere(void **state)
{
    gw_codec *c = *state;
    gw_framing framings[] = {GW_FRAMING_BARE, GW_FRAMING_SINGLE_OBJECT, GW_FRAMING_CONFLUENT};
    for (int k = 0; k < GW_REC__COUNT; k++) {
        for (size_t fi = 0; fi < 3; fi++) {
            if (framings[fi] == GW_FRAMING_CONFLUENT && k != GW_REC_REQUEST)
                continue;
            gw_any_record in, out;
            gw_buf buf;
            gw_buf_init(&buf, 0);
            sample_record((gw_record_kind)k, true, &in);
            assert_int_equal(gw_codec_encode(c, (gw_record_kind)k, &in, 0, framings[fi], &buf),
                             GW_OK);
            for (size_t n = 0; n < buf.len; n++) {
                /* a copy of exactly n bytes, so ASan sees any read past the end */
                uint8_t *cut = malloc(n ? n : 1);
                memcpy(cut, buf.data, n);
                gw_arena arena;
                gw_arena_init(&arena, 1 << 20);
                gw_err e = gw_codec_decode(c, (gw_record_kind)k, cut, n, &arena, &out);
                gw_arena_cleanup(&arena);
                free(cut);
                if (e != GW_E_CODEC_TRUNCATED)
                    fail_msg("kind %d framing %zu cut at %zu: %s", k, fi, n, gw_err_name(e));
            }
            gw_buf_cleanup(&buf);
        }
    }
}

static gw_err decode_with(const gw_codec_limits *lim, const bytes *x)
{
    gw_codec *c = gw_codec_new(lim);
    assert_non_null(c);
    gw_arena arena;
    gw_arena_init(&arena, 0);
    gw_request out;
    gw_err e = gw_codec_decode_request(c, x->b, x->n, &arena, &out);
    gw_arena_cleanup(&arena);
    gw_codec_free(c);
    return e;
}

static void test_decode_limits(void **state)
{
    gw_codec *c = *state;
    gw_request r;
    gw_buf buf;
    gw_buf_init(&buf, 0);
    sample_request(&r, true);
    assert_int_equal(gw_codec_encode_request(c, &r, GW_FRAMING_BARE, &buf), GW_OK);
    bytes x = {.n = buf.len};
    memcpy(x.b, buf.data, buf.len);
    gw_buf_cleanup(&buf);

    gw_codec_limits lim = {0};
    assert_int_equal(decode_with(&lim, &x), GW_OK);
    lim.max_message_bytes = x.n - 1;
    assert_int_equal(decode_with(&lim, &x), GW_E_CODEC_TOO_LARGE);
    lim = (gw_codec_limits){.max_messages = 1};
    assert_int_equal(decode_with(&lim, &x), GW_E_CODEC_LIMIT);
    lim = (gw_codec_limits){.max_tools = 1};
    assert_int_equal(decode_with(&lim, &x), GW_E_CODEC_LIMIT);
    lim = (gw_codec_limits){.max_tool_calls = 1};
    assert_int_equal(decode_with(&lim, &x), GW_E_CODEC_LIMIT);
    lim = (gw_codec_limits){.max_string_bytes = 40};
    assert_int_equal(decode_with(&lim, &x), GW_E_CODEC_LIMIT);
    lim = (gw_codec_limits){.max_map_entries = 1};
    assert_int_equal(decode_with(&lim, &x), GW_E_CODEC_LIMIT);
    lim = (gw_codec_limits){.max_capabilities = 1};
    assert_int_equal(decode_with(&lim, &x), GW_E_CODEC_LIMIT);
    lim = (gw_codec_limits){.max_alloc_bytes = 200};
    assert_int_equal(decode_with(&lim, &x), GW_E_CODEC_LIMIT);

    /* the caller's arena cap is the last line of defence */
    gw_arena arena;
    gw_arena_init(&arena, 300);
    gw_request out;
    assert_int_equal(gw_codec_decode_request(c, x.b, x.n, &arena, &out), GW_E_NOMEM);
    gw_arena_cleanup(&arena);
}

static void test_encode_limits(void **state)
{
    gw_codec *c = *state;
    gw_request r;
    gw_buf buf;
    sample_request(&r, true);
    gw_buf_init(&buf, 32);
    assert_int_equal(gw_codec_encode_request(c, &r, GW_FRAMING_BARE, &buf), GW_E_CODEC_TOO_LARGE);
    assert_int_equal(buf.len, 0);
    gw_buf_cleanup(&buf);

    gw_buf_init(&buf, 0);
    static gw_message many[257];
    for (size_t i = 0; i < 257; i++)
        many[i] = (gw_message){.role = GW_ROLE_USER, .content = "x", .name = NULL};
    r.messages = many;
    r.message_count = 257;
    assert_int_equal(gw_codec_encode_request(c, &r, GW_FRAMING_BARE, &buf), GW_E_CODEC_LIMIT);
    r.message_count = 256;
    assert_int_equal(gw_codec_encode_request(c, &r, GW_FRAMING_BARE, &buf), GW_OK);
    gw_buf_reset(&buf);
    many[3].content = "bad \xff utf8";
    assert_int_equal(gw_codec_encode_request(c, &r, GW_FRAMING_BARE, &buf), GW_E_CODEC_BAD_UTF8);
    many[3].content = "x";
    many[4].role = (gw_role)9;
    assert_int_equal(gw_codec_encode_request(c, &r, GW_FRAMING_BARE, &buf), GW_E_CODEC_BAD_DATA);
    assert_int_equal(buf.len, 0);
    gw_buf_cleanup(&buf);
}

/* Hand-made: a valid header and a string length far beyond everything. */
static void test_huge_prefixes(void **state)
{
    gw_codec *c = *state;
    const int64_t lens[] = {INT64_MAX, (int64_t)1 << 46, 262145, -1, INT64_MIN};
    const gw_err want[] = {GW_E_CODEC_LIMIT, GW_E_CODEC_LIMIT, GW_E_CODEC_LIMIT,
                           GW_E_CODEC_BAD_DATA, GW_E_CODEC_BAD_DATA};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        bytes x = {.n = 0};
        put_byte(&x, 0xC3);
        put_byte(&x, 0x01);
        uint64_t fp = gw_codec_fingerprint(c, GW_REC_REQUEST, 2);
        for (int k = 0; k < 8; k++)
            put_byte(&x, (uint8_t)(fp >> (8 * k)));
        put_long(&x, lens[i]);
        put_str(&x, "tail");
        gw_arena arena;
        gw_arena_init(&arena, 1 << 20);
        gw_request out;
        assert_int_equal(gw_codec_decode_request(c, x.b, x.n, &arena, &out), want[i]);
        gw_arena_cleanup(&arena);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostile_corpus),       cmocka_unit_test(test_valid_corpus),
        cmocka_unit_test(test_truncated_everywhere), cmocka_unit_test(test_decode_limits),
        cmocka_unit_test(test_encode_limits),        cmocka_unit_test(test_huge_prefixes),
    };
    return cmocka_run_group_tests(tests, codec_setup, codec_teardown);
}
