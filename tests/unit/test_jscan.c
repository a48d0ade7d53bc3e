/* Unit tests for the allocation-free JSON scanner (provider/jscan.c): every
 * answer it gives must equal jansson's (json_loadb, flags 0) on the same
 * document; it may only fall back. Checked on a corpus of provider events
 * and on generated and mutated documents (escapes, surrogate pairs, UTF-8,
 * numbers, duplicate keys, truncation). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "provider/jscan.h"

/* ---- the differential check ---- */

static json_t *walk(json_t *v, const char *const *path)
{
    for (size_t i = 0; v != NULL && i < GW_JSCAN_MAX_PATH && path[i] != NULL; i++)
        v = path[i][0] == '#' ? json_array_get(v, (size_t)atoi(path[i] + 1))
                              : json_object_get(v, path[i]);
    return v;
}

static gw_json_kind kind_of(const json_t *v)
{
    if (v == NULL)
        return GW_JSON_ABSENT;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return GW_JSON_OBJECT;
    case JSON_ARRAY:
        return GW_JSON_ARRAY;
    case JSON_STRING:
        return GW_JSON_STRING;
    case JSON_INTEGER:
        return GW_JSON_INTEGER;
    case JSON_REAL:
        return GW_JSON_REAL;
    case JSON_TRUE:
        return GW_JSON_TRUE;
    case JSON_FALSE:
        return GW_JSON_FALSE;
    default:
        return GW_JSON_NULL;
    }
}

/* 1 when jscan handled the document, 0 when it fell back; fails the test on
 * any difference from jansson. */
static int check_doc(const char *doc, size_t len, const char *const paths[][GW_JSCAN_MAX_PATH],
                     size_t n)
{
    gw_jscan_field f[GW_JSCAN_MAX_FIELDS];
    memset(f, 0, sizeof f);
    for (size_t i = 0; i < n; i++)
        memcpy(f[i].path, paths[i], sizeof f[i].path);
    json_error_t je;
    json_t *root = json_loadb(doc, len, 0, &je);
    if (gw_jscan(doc, len, f, n) != GW_JSCAN_OK) {
        json_decref(root);
        return 0;
    }
    if (root == NULL)
        fail_msg("jscan accepted what jansson rejects (%s): %.*s", je.text, (int)len, doc);
    for (size_t i = 0; i < n; i++) {
        json_t *v = walk(root, f[i].path);
        assert_int_equal(kind_of(v), f[i].kind);
        if (f[i].kind == GW_JSON_INTEGER)
            assert_true(json_integer_value(v) == f[i].integer);
        if (f[i].kind != GW_JSON_STRING)
            continue;
        char *out = malloc(f[i].raw_len + 1);
        assert_non_null(out);
        size_t ol = gw_jscan_unescape(f[i].raw, f[i].raw_len, out);
        assert_int_equal(ol, json_string_length(v));
        assert_memory_equal(out, json_string_value(v), ol);
        assert_int_equal(out[ol], '\0');
        free(out);
    }
    json_decref(root);
    return 1;
}

static const char *const OPENAI[][GW_JSCAN_MAX_PATH] = {
    {"error"},
    {"choices", "#0"},
    {"choices", "#0", "delta", "content"},
    {"choices", "#0", "message", "content"},
    {"choices", "#0", "finish_reason"},
    {"usage", "prompt_tokens"},
    {"usage", "completion_tokens"},
    {"a", "#1", "b"},
};
static const char *const ANTHROPIC[][GW_JSCAN_MAX_PATH] = {
    {"type"},
    {"message", "usage", "input_tokens"},
    {"delta", "text"},
    {"delta", "stop_reason"},
    {"usage", "input_tokens"},
    {"usage", "output_tokens"},
};
/* provider_gemini.c's paths: twelve, the deepest six segments */
static const char *const GEMINI[][GW_JSCAN_MAX_PATH] = {
    {"error"},
    {"promptFeedback", "blockReason"},
    {"candidates", "#0"},
    {"candidates", "#0", "content", "parts", "#0", "text"},
    {"candidates", "#0", "content", "parts", "#1"},
    {"candidates", "#0", "content", "parts", "#0", "functionCall"},
    {"candidates", "#0", "content", "parts", "#0", "thought"},
    {"candidates", "#0", "finishReason"},
    {"usageMetadata", "promptTokenCount"},
    {"usageMetadata", "candidatesTokenCount"},
    {"usageMetadata", "thoughtsTokenCount"},
    {"candidates", "#1"},
};
#define NPATHS(a) (sizeof(a) / sizeof(a[0]))

static int check_both(const char *doc, size_t len)
{
    return check_doc(doc, len, OPENAI, NPATHS(OPENAI)) +
           check_doc(doc, len, ANTHROPIC, NPATHS(ANTHROPIC));
}

/* ---- corpus ---- */

static const char *const CORPUS[] = {
    "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"m\","
    "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
    "\"finish_reason\":null}]}",
    "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"finish_reason\":null}]}",
    "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"line\\nbreak \\\"q\\\" \\\\ \\/ "
    "\\t\\r\\b\\f\"}}]}",
    "{\"choices\":[{\"delta\":{\"content\":\"\\u00e9\\u4e2d\\uD83D\\uDE00 \\ud83d\\ude00 "
    "caf\xc3\xa9 "
    "\xe4\xb8\xad \xf0\x9f\x98\x80\"}}]}",
    "{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}],"
    "\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":-0,\"total_tokens\":12.5}}",
    "{\"choices\":[],\"usage\":{\"prompt_tokens\":9007199254740993,\"completion_tokens\":3}}",
    "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":null},\"finish_reason\":"
    "\"stop\"}],\"usage\":null}",
    "{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"error\":null}",
    "{\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}",
    "{\"choices\":{\"0\":{\"delta\":{\"content\":\"not an array\"}}}}",
    "{\"choices\":[1,{\"delta\":{\"content\":\"second\"}}]}",
    "{\"choices\":[{\"delta\":{\"content\":\"a\"},\"delta\":{\"content\":\"b\"}}]}",
    "{\"choices\":[{\"delta\":{\"content\":\"a\",\"content\":\"b\"}}]}",
    "{\"choices\":[{\"delta\":{\"content\":5}}], \"usage\": {\"prompt_tokens\": 1.0}}",
    "  [ {\"a\" : [ 0 , { \"b\" : true } ] } ]  \r\n",
    "{\"a\":[0,{\"b\":false}],\"a\":[0,{\"b\":null}]}",
    "{\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":25,"
    "\"output_tokens\":1}}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":"
    "\"Hi \\u2603\"}}",
    "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},"
    "\"usage\":{\"output_tokens\":15}}",
    "{\"type\":\"message_stop\"}",
    "{\"type\":\"ping\"}",
    "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}",
    "{\"type\":\"mess\\u0061ge_stop\"}",
    "{\"t\\u0079pe\":\"message_stop\"}",
    /* rejected by jansson: jscan must fall back */
    "{\"choices\":[{\"delta\":{\"content\":\"\\u0000\"}}]}",
    "{\"choices\":[{\"delta\":{\"content\":\"\\ud800\"}}]}",
    "{\"choices\":[{\"delta\":{\"content\":\"\\udc00\\ud800\"}}]}",
    "{\"choices\":[{\"delta\":{\"content\":\"\\ud800\\u0041\"}}]}",
    "{\"choices\":[{\"delta\":{\"content\":\"\\x\"}}]}",
    "{\"choices\":[{\"delta\":{\"content\":\"\\u12G4\"}}]}",
    "{\"choices\":[{\"delta\":{\"content\":\"tab\there\"}}]}",
    "{\"choices\":[{\"delta\":{\"content\":\"\xc0\xaf\"}}]}",
    "{\"choices\":[{\"delta\":{\"content\":\"\xed\xa0\x80\"}}]}",
    "{\"choices\":[{\"delta\":{\"content\":\"\xf4\x90\x80\x80\"}}]}",
    "{\"choices\":[{\"delta\":{\"content\":\"\xe4\xb8\"}}]}",
    "{\"usage\":{\"prompt_tokens\":01}}",
    "{\"usage\":{\"prompt_tokens\":1.}}",
    "{\"usage\":{\"prompt_tokens\":-}}",
    "{\"usage\":{\"prompt_tokens\":1e3}}",
    "{\"usage\":{\"prompt_tokens\":99999999999999999999}}",
    "{\"a\":1,}",
    "[1,]",
    "{\"a\":tru}",
    "{\"a\":truex}",
    "{\"a\" 1}",
    "{\"a\":1} x",
    "\"just a string\"",
    "42",
    "",
    "   ",
    "{",
    "{\"a\":\"unterminated}",
};

static void test_corpus(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof CORPUS / sizeof CORPUS[0]; i++)
        check_both(CORPUS[i], strlen(CORPUS[i]));
}

/* The fast path is really taken for the usual events. */
static void test_usual_events_handled(void **state)
{
    (void)state;
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(check_doc(CORPUS[i], strlen(CORPUS[i]), OPENAI, NPATHS(OPENAI)), 1);
    for (size_t i = 16; i < 22; i++)
        assert_int_equal(check_doc(CORPUS[i], strlen(CORPUS[i]), ANTHROPIC, NPATHS(ANTHROPIC)), 1);
}

static const char *const GEMINI_EVENTS[] = {
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hello\"}],\"role\":\"model\"},"
    "\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":8,\"totalTokenCount\":8},"
    "\"modelVersion\":\"gemini-2.5-flash\",\"responseId\":\"abc\"}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\" w\\u00f6rld\\n\"}],\"role\":"
    "\"model\"},\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{"
    "\"promptTokenCount\":8,\"candidatesTokenCount\":2,\"thoughtsTokenCount\":40,"
    "\"totalTokenCount\":50}}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\"}],\"role\":\"model\"},"
    "\"finishReason\":\"MAX_TOKENS\"}]}",
    /* the shapes that take the tree path: a thought, two parts, a call, a block */
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"hmm\",\"thought\":true}]}}]}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"},{\"text\":\"b\"}]}}]}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"f\","
    "\"args\":{\"x\":[1,{\"y\":null}]}}}]},\"finishReason\":\"STOP\"}]}",
    "{\"promptFeedback\":{\"blockReason\":\"SAFETY\",\"safetyRatings\":[]}}",
    "{\"candidates\":[{\"finishReason\":\"SAFETY\",\"safetyRatings\":[{\"category\":"
    "\"HARM_CATEGORY_HARASSMENT\",\"probability\":\"HIGH\"}]}]}",
    "{\"error\":{\"code\":500,\"message\":\"internal\",\"status\":\"INTERNAL\"}}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\",\"text\":\"b\"}]}}]}",
};

/* The Gemini paths, deep ones included, agree with jansson on their events
 * and on the whole corpus; the usual text chunks are handled. */
static void test_gemini_paths(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof GEMINI_EVENTS / sizeof GEMINI_EVENTS[0]; i++) {
        int h = check_doc(GEMINI_EVENTS[i], strlen(GEMINI_EVENTS[i]), GEMINI, NPATHS(GEMINI));
        if (i < 9)
            assert_int_equal(h, 1);
        else
            assert_int_equal(h, 0); /* a wanted key given twice */
    }
    for (size_t i = 0; i < sizeof CORPUS / sizeof CORPUS[0]; i++)
        check_doc(CORPUS[i], strlen(CORPUS[i]), GEMINI, NPATHS(GEMINI));
    assert_int_equal(NPATHS(GEMINI), GW_JSCAN_MAX_FIELDS);
}

/* Integers up to int64's ends are read as jansson reads them; one past
 * either end is jansson's overflow error, so a fallback. */
static void test_int64_limits(void **state)
{
    (void)state;
    static const char ok[] = "{\"usage\":{\"prompt_tokens\":9223372036854775807,"
                             "\"completion_tokens\":-9223372036854775808},"
                             "\"seed\":1234567890123456789}";
    assert_int_equal(check_doc(ok, sizeof ok - 1, OPENAI, NPATHS(OPENAI)), 1);
    static const char *const over[] = {
        "{\"usage\":{\"prompt_tokens\":9223372036854775808}}",
        "{\"usage\":{\"completion_tokens\":-9223372036854775809}}",
        "{\"seed\":10000000000000000000,\"usage\":{}}",
    };
    for (size_t i = 0; i < sizeof over / sizeof over[0]; i++)
        assert_int_equal(check_doc(over[i], strlen(over[i]), OPENAI, NPATHS(OPENAI)), 0);
}

static void test_nul_inside_length(void **state)
{
    (void)state;
    static const char doc[] = "{\"choices\":[{\"delta\":{\"content\":\"a\0b\"}}]}";
    assert_int_equal(check_both(doc, sizeof doc - 1), 0);
    static const char doc2[] = "{\"type\":\"ping\"}\0";
    assert_int_equal(check_both(doc2, sizeof doc2 - 1), 0);
}

/* ---- generated documents ---- */

typedef struct {
    char *b;
    size_t len, cap;
    uint32_t rng;
} gen;

static uint32_t rnd(gen *g)
{
    g->rng ^= g->rng << 13;
    g->rng ^= g->rng >> 17;
    g->rng ^= g->rng << 5;
    return g->rng;
}

static void put(gen *g, const char *s, size_t n)
{
    if (g->len + n + 1 > g->cap) {
        while (g->len + n + 1 > g->cap)
            g->cap *= 2;
        g->b = realloc(g->b, g->cap);
        assert_non_null(g->b);
    }
    memcpy(g->b + g->len, s, n);
    g->len += n;
}

static void puts_(gen *g, const char *s)
{
    put(g, s, strlen(s));
}

static void gen_u(gen *g, unsigned cp)
{
    char t[8];
    snprintf(t, sizeof t, rnd(g) % 2 ? "\\u%04x" : "\\u%04X", cp);
    puts_(g, t);
}

static void gen_string_piece(gen *g)
{
    static const char *const bits[] = {
        "a",
        "content",
        " ",
        "\\n",
        "\\\"",
        "\\\\",
        "\\/",
        "\\b",
        "\\f",
        "\\r",
        "\\t",
        "\xc3\xa9",
        "\xe2\x98\x83",
        "\xf0\x9f\x98\x80",
        "\xef\xbf\xbf",
        "\xf4\x8f\xbf\xbf",
        "\x7f", /* rarely: what jansson rejects */
        "\t",
        "\x01",
        "\xc0\xaf",
        "\xed\xa0\x80",
        "\xf5\x80\x80\x80",
        "\xe4\xb8",
        "\x80",
        "\\q",
        "\\u00",
        "\\",
    };
    uint32_t r = rnd(g) % 100;
    if (r < 60) {
        puts_(g, bits[rnd(g) % 17]);
    } else if (r < 70) {
        gen_u(g, rnd(g) % 0x800);
    } else if (r < 80) {
        gen_u(g, 0xD800 + rnd(g) % 0x400);
        gen_u(g, 0xDC00 + rnd(g) % 0x400);
    } else if (r < 84) {
        gen_u(g, 0xD800 + rnd(g) % 0x800); /* a lone surrogate */
    } else if (r < 90) {
        gen_u(g, rnd(g) % 0x10000);
    } else if (r < 94) {
        gen_u(g, 0);
    } else {
        puts_(g, bits[17 + rnd(g) % 10]);
    }
}

static void gen_string(gen *g, bool key)
{
    static const char *const keys[] = {
        "choices",       "delta", "content", "message", "usage", "prompt_tokens",
        "finish_reason", "type",  "text",    "error",   "a",     "b"};
    puts_(g, "\"");
    if (key && rnd(g) % 8 != 0) {
        puts_(g, keys[rnd(g) % 12]);
    } else {
        int n = (int)(rnd(g) % 6);
        for (int i = 0; i < n; i++)
            gen_string_piece(g);
    }
    puts_(g, "\"");
}

static void gen_number(gen *g)
{
    static const char *const nums[] = {
        "0",
        "-0",
        "7",
        "-12",
        "1234567890123",
        "123456789012345678",
        "1.5",
        "-0.25",
        "0.0",
        "1e3",
        "01",
        "1.",
        "-",
        "1234567890123456789",
        "99999999999999999999",
        "2E-2",
        ".5",
        "+1",
    };
    puts_(g, nums[rnd(g) % 18]);
}

static void gen_value(gen *g, int depth)
{
    uint32_t r = rnd(g) % (depth > 4 ? 5 : 8);
    static const char *const ws[] = {"", "", " ", "\n", "\t", "\r\n "};
    puts_(g, ws[rnd(g) % 6]);
    switch (r) {
    case 0:
        gen_string(g, false);
        break;
    case 1:
        gen_number(g);
        break;
    case 2:
        puts_(g, rnd(g) % 2 ? "true" : "null");
        break;
    case 3:
        puts_(g, "false");
        break;
    case 4:
        gen_string(g, false);
        break;
    case 5:
    case 6: {
        puts_(g, "{");
        int n = (int)(rnd(g) % 5);
        for (int i = 0; i < n; i++) {
            if (i)
                puts_(g, ",");
            gen_string(g, true);
            puts_(g, ":");
            gen_value(g, depth + 1);
        }
        puts_(g, "}");
        break;
    }
    default: {
        puts_(g, "[");
        int n = (int)(rnd(g) % 4);
        for (int i = 0; i < n; i++) {
            if (i)
                puts_(g, ",");
            gen_value(g, depth + 1);
        }
        puts_(g, "]");
    }
    }
    puts_(g, ws[rnd(g) % 6]);
}

static void test_generated(void **state)
{
    (void)state;
    gen g = {.cap = 256, .rng = 0x9E3779B9u};
    g.b = malloc(g.cap);
    assert_non_null(g.b);
    int handled = 0, total = 20000;
    for (int i = 0; i < total; i++) {
        g.len = 0;
        puts_(&g, rnd(&g) % 4 ? "{" : "[");
        bool obj = g.b[0] == '{';
        int n = 1 + (int)(rnd(&g) % 4);
        for (int k = 0; k < n; k++) {
            if (k)
                puts_(&g, ",");
            if (obj) {
                gen_string(&g, true);
                puts_(&g, ":");
            }
            gen_value(&g, 1);
        }
        puts_(&g, obj ? "}" : "]");
        uint32_t m = rnd(&g) % 8;
        if (m == 0 && g.len > 1) /* truncate */
            g.len = rnd(&g) % g.len;
        else if (m == 1) /* flip a byte */
            g.b[rnd(&g) % g.len] = (char)(rnd(&g) & 0xFF);
        handled += check_both(g.b, g.len);
        check_doc(g.b, g.len, GEMINI, NPATHS(GEMINI));
    }
    free(g.b);
    /* the generator is meant to hit both outcomes often */
    assert_true(handled > total / 10);
    assert_true(handled < 2 * total - total / 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus),       cmocka_unit_test(test_usual_events_handled),
        cmocka_unit_test(test_gemini_paths), cmocka_unit_test(test_nul_inside_length),
        cmocka_unit_test(test_generated),    cmocka_unit_test(test_int64_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
