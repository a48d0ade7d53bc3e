/*
 * Unit tests for the OpenAI fast path (provider/openai_scan.c): on every
 * document it must give exactly gw_jscan's answer for the same paths (which
 * the jscan tests hold to jansson's), or fall back; it may fall back only
 * where gw_jscan would, or on a top level that is not an object. Checked on
 * the usual chunk and completion shapes, on a held-out corpus of shapes from
 * other OpenAI-compatible servers (vLLM, llama.cpp server, Ollama, Groq,
 * Together, Azure, DeepSeek, OpenRouter: written from their documented
 * answers, not tuned on), each of them mutated byte by byte, and on
 * generated documents with the wanted keys in random order, nesting and
 * duplicates. Every document is also read resuming after the opening the
 * document checked before it taught (gw_openai_prefix), which must change
 * nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "provider/openai_scan.h"

/* ---- the differential check ---- */

static void set_paths(gw_jscan_field f[GW_OAI__COUNT], const char *msg_key)
{
    static const char *const paths[GW_OAI__COUNT][GW_JSCAN_MAX_PATH] = {
        [GW_OAI_ERROR] = {"error"},
        [GW_OAI_CHOICE] = {"choices", "#0"},
        [GW_OAI_MSG] = {"choices", "#0", "?"},
        [GW_OAI_TEXT] = {"choices", "#0", "?", "content"},
        [GW_OAI_FINISH] = {"choices", "#0", "finish_reason"},
        [GW_OAI_PROMPT] = {"usage", "prompt_tokens"},
        [GW_OAI_COMPLETION] = {"usage", "completion_tokens"},
        [GW_OAI_TOOLS] = {"choices", "#0", "?", "tool_calls"},
    };
    for (size_t i = 0; i < GW_OAI__COUNT; i++) {
        memcpy(f[i].path, paths[i], sizeof f[i].path);
        if (i == GW_OAI_MSG || i == GW_OAI_TEXT || i == GW_OAI_TOOLS)
            f[i].path[2] = msg_key;
    }
}

typedef struct {
    int fast, general, both_ok, resumed;
} tally;

/* Carried from one checked document to the next, so that sequences of
 * related documents exercise the resume after a shared opening. */
static gw_openai_prefix carried;

static bool same_fields(const gw_jscan_field *a, const gw_jscan_field *b)
{
    for (size_t i = 0; i < GW_OAI__COUNT; i++)
        if (a[i].kind != b[i].kind || a[i].raw != b[i].raw || a[i].raw_len != b[i].raw_len ||
            a[i].escaped != b[i].escaped || a[i].integer != b[i].integer)
            return false;
    return true;
}

/* With the carried prefix the answer must be the one without it. */
static void check_resume(const char *doc, size_t len, const char *msg_key, gw_jscan_result want,
                         const gw_jscan_field *want_f, tally *t)
{
    gw_jscan_field f[GW_OAI__COUNT];
    bool shares =
        carried.len > 0 && carried.len < len && memcmp(doc, carried.bytes, carried.len) == 0;
    gw_jscan_result r = gw_openai_scan(doc, len, msg_key, f, &carried);
    if (r != want || (r == GW_JSCAN_OK && !same_fields(f, want_f)))
        fail_msg("resumed scan differs: %.*s", (int)len, doc);
    if (t != NULL && shares)
        t->resumed++;
}

/* Runs both paths on doc; fails on any difference where the fast path
 * answered. Returns 1 when the fast path answered. */
static int check_key(const char *doc, size_t len, const char *msg_key, tally *t)
{
    gw_jscan_field fast[GW_OAI__COUNT], ref[GW_OAI__COUNT];
    memset(fast, 0xA5, sizeof fast); /* nothing may be left unset */
    set_paths(ref, msg_key);
    gw_jscan_result rf = gw_openai_scan(doc, len, msg_key, fast, NULL);
    gw_jscan_result rr = gw_jscan(doc, len, ref, GW_OAI__COUNT);
    check_resume(doc, len, msg_key, rf, fast, t);
    if (t != NULL) {
        t->fast += rf == GW_JSCAN_OK;
        t->general += rr == GW_JSCAN_OK;
    }
    if (rf != GW_JSCAN_OK) {
        /* it may fall back where jscan does, or on a top level not an object */
        size_t i = 0;
        while (i < len && (doc[i] == ' ' || doc[i] == '\t' || doc[i] == '\n' || doc[i] == '\r'))
            i++;
        if (rr == GW_JSCAN_OK && i < len && doc[i] == '{')
            fail_msg("fast path fell back where jscan answered: %.*s", (int)len, doc);
        return 0;
    }
    if (rr != GW_JSCAN_OK)
        fail_msg("fast path answered where jscan falls back: %.*s", (int)len, doc);
    if (t != NULL)
        t->both_ok++;
    if (!same_fields(fast, ref))
        fail_msg("fields differ: %.*s", (int)len, doc);
    return 1;
}

static int check(const char *doc, size_t len, tally *t)
{
    return check_key(doc, len, "delta", t) + check_key(doc, len, "message", t);
}

/* ---- shapes ---- */

/* What modelgw-mockllm and OpenAI send; the fast path must take them all. */
static const char *const USUAL[] = {
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
    "\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
    "\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]}",
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
    "\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" word\"},"
    "\"logprobs\":null,\"finish_reason\":null}]}",
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
    "\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,"
    "\"finish_reason\":\"stop\"}]}",
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
    "\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,"
    "\"completion_tokens\":16,\"total_tokens\":25}}",
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1700000000,\"model\":"
    "\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
    "\"Hello there \\u00e9\\n\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"stop\"}],"
    "\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":3,\"total_tokens\":12,"
    "\"prompt_tokens_details\":{\"cached_tokens\":0},\"completion_tokens_details\":"
    "{\"reasoning_tokens\":0}},\"system_fingerprint\":\"fp_1\"}",
};

/* Held out: other servers' shapes, never used to tune the fast path. All are
 * valid and within jscan's subset, so both paths must answer. */
static const char *const HELD_OUT[] = {
    /* vLLM: stop_reason, logprobs objects, usage null per chunk */
    "{\"id\":\"cmpl-a1\",\"object\":\"chat.completion.chunk\",\"created\":1718000000,\"model\":"
    "\"meta-llama/Llama-3-8B\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" the\"},"
    "\"logprobs\":{\"content\":[{\"token\":\" the\",\"logprob\":-0.25,\"bytes\":[32,116,104,"
    "101],\"top_logprobs\":[]}]},\"finish_reason\":null,\"stop_reason\":null}],\"usage\":null}",
    "{\"id\":\"cmpl-a1\",\"object\":\"chat.completion.chunk\",\"created\":1718000000,\"model\":"
    "\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"logprobs\":null,"
    "\"finish_reason\":\"length\",\"stop_reason\":128009}],\"usage\":{\"prompt_tokens\":17,"
    "\"total_tokens\":33,\"completion_tokens\":16}}",
    /* llama.cpp server: fields in another order, timings */
    "{\"choices\":[{\"finish_reason\":null,\"index\":0,\"delta\":{\"content\":\"Hi\"}}],"
    "\"created\":1718000001,\"id\":\"chatcmpl-xyz\",\"model\":\"gpt-3.5-turbo\","
    "\"system_fingerprint\":\"b3000-abc\",\"object\":\"chat.completion.chunk\"}",
    "{\"choices\":[{\"finish_reason\":\"stop\",\"index\":0,\"delta\":{}}],\"created\":1,"
    "\"id\":\"c\",\"model\":\"x\",\"object\":\"chat.completion.chunk\",\"usage\":"
    "{\"completion_tokens\":5,\"prompt_tokens\":4,\"total_tokens\":9},\"timings\":"
    "{\"prompt_n\":4,\"prompt_ms\":12.5,\"predicted_n\":5,\"predicted_per_second\":40.1}}",
    /* Ollama's OpenAI endpoint */
    "{\"id\":\"chatcmpl-42\",\"object\":\"chat.completion.chunk\",\"created\":1718000002,"
    "\"model\":\"llama3\",\"system_fingerprint\":\"fp_ollama\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"role\":\"assistant\",\"content\":\"\\u003cthink\\u003e\"},"
    "\"finish_reason\":null}]}",
    /* Groq: x_groq at the top and in the last chunk with usage inside it */
    "{\"id\":\"chatcmpl-g\",\"object\":\"chat.completion.chunk\",\"created\":1718000003,"
    "\"model\":\"llama3-8b-8192\",\"system_fingerprint\":\"fp_179b0f92c9\",\"choices\":"
    "[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,"
    "\"finish_reason\":null}],\"x_groq\":{\"id\":\"req_01j\"}}",
    "{\"id\":\"chatcmpl-g\",\"object\":\"chat.completion.chunk\",\"created\":1718000003,"
    "\"model\":\"llama3-8b-8192\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,"
    "\"finish_reason\":\"stop\"}],\"x_groq\":{\"id\":\"req_01j\",\"usage\":{\"queue_time\":"
    "0.02,\"prompt_tokens\":12,\"prompt_time\":0.003,\"completion_tokens\":20,"
    "\"completion_time\":0.016,\"total_tokens\":32,\"total_time\":0.019}}}",
    /* Together: token object, null usage, finish reason eos */
    "{\"id\":\"8a1\",\"object\":\"chat.completion.chunk\",\"created\":1718000004,\"model\":"
    "\"mistralai/Mixtral-8x7B-Instruct-v0.1\",\"choices\":[{\"index\":0,\"text\":\" Paris\","
    "\"logprobs\":null,\"finish_reason\":null,\"seed\":null,\"delta\":{\"token_id\":6233,"
    "\"role\":\"assistant\",\"content\":\" Paris\",\"tool_calls\":null}}],\"usage\":null}",
    "{\"id\":\"8a1\",\"object\":\"chat.completion.chunk\",\"created\":1718000004,\"choices\":"
    "[{\"index\":0,\"text\":\"\",\"logprobs\":null,\"finish_reason\":\"eos\",\"seed\":"
    "4711000000000000000,\"delta\":{\"token_id\":2,\"role\":\"assistant\",\"content\":\"\","
    "\"tool_calls\":null}}],\"usage\":{\"prompt_tokens\":19,\"completion_tokens\":8,"
    "\"total_tokens\":27}}",
    /* OpenAI tool call pieces and refusal */
    "{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\","
    "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,"
    "\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":"
    "{\"name\":\"get_weather\",\"arguments\":\"\"}}],\"refusal\":null},\"logprobs\":null,"
    "\"finish_reason\":null}]}",
    "{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\","
    "\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
    "{\"arguments\":\"{\\\"city\\\": \\\"Par\"}}]},\"logprobs\":null,\"finish_reason\":null}]}",
    "{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\","
    "\"choices\":[{\"index\":0,\"delta\":{\"refusal\":\"I can\\u2019t help with that.\"},"
    "\"logprobs\":null,\"finish_reason\":null}]}",
    /* Azure: prompt_filter_results first, content_filter_results per choice */
    "{\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\","
    "\"prompt_filter_results\":[{\"prompt_index\":0,\"content_filter_results\":{\"hate\":"
    "{\"filtered\":false,\"severity\":\"safe\"},\"jailbreak\":{\"filtered\":false,"
    "\"detected\":false}}}]}",
    "{\"choices\":[{\"content_filter_results\":{\"hate\":{\"filtered\":false,\"severity\":"
    "\"safe\"}},\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null,\"index\":0,"
    "\"logprobs\":null}],\"created\":1718000005,\"id\":\"chatcmpl-az\",\"model\":"
    "\"gpt-4o-2024-05-13\",\"object\":\"chat.completion.chunk\",\"system_fingerprint\":"
    "\"fp_abc\"}",
    /* DeepSeek: reasoning_content next to content, usage with cache fields */
    "{\"id\":\"d1\",\"object\":\"chat.completion.chunk\",\"created\":1718000006,\"model\":"
    "\"deepseek-reasoner\",\"system_fingerprint\":\"fp_7e73fd9a08\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"content\":null,\"reasoning_content\":\"Let me think\"},\"logprobs\":null,"
    "\"finish_reason\":null}]}",
    "{\"id\":\"d1\",\"object\":\"chat.completion.chunk\",\"created\":1718000006,\"model\":"
    "\"deepseek-chat\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"logprobs\":null,"
    "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":20,"
    "\"total_tokens\":30,\"prompt_tokens_details\":{\"cached_tokens\":0},"
    "\"prompt_cache_hit_tokens\":0,\"prompt_cache_miss_tokens\":10}}",
    /* OpenRouter: provider name, native_finish_reason, an in-band error */
    "{\"id\":\"gen-1\",\"provider\":\"Together\",\"model\":\"meta-llama/llama-3-70b\",\"object\":"
    "\"chat.completion.chunk\",\"created\":1718000007,\"choices\":[{\"index\":0,\"delta\":"
    "{\"role\":\"assistant\",\"content\":\"\\ud83d\\ude00 ok\"},\"finish_reason\":null,"
    "\"native_finish_reason\":null,\"logprobs\":null}]}",
    "{\"id\":\"gen-2\",\"object\":\"chat.completion.chunk\",\"created\":1718000007,\"model\":"
    "\"x\",\"error\":{\"code\":502,\"message\":\"Provider returned error\"},\"choices\":[{"
    "\"index\":0,\"delta\":{\"content\":\"\"},\"finish_reason\":\"error\"}]}",
    /* whitespace-formatted (pretty-printed) answer, as some proxies send */
    "{\n  \"id\" : \"c\",\n  \"choices\" : [ {\n    \"index\" : 0,\n    \"message\" : {\n"
    "      \"role\" : \"assistant\",\n      \"content\" : \"caf\xc3\xa9 \xe4\xb8\xad "
    "\xf0\x9f\x98\x80\"\n    },\n    \"finish_reason\" : \"stop\"\n  } ],\n  \"usage\" : "
    "{ \"prompt_tokens\" : 3 , \"completion_tokens\" : 4 }\n}\n",
};

/* Valid or not, each must agree; several are fallbacks on purpose. */
static const char *const EDGES[] = {
    "{\"choices\":[{\"delta\":{\"content\":\"a\"},\"delta\":{\"content\":\"b\"}}]}",
    "{\"choices\":[{\"delta\":{\"content\":\"a\",\"content\":\"b\"}}]}",
    "{\"choices\":1,\"choices\":[{\"delta\":{\"content\":\"b\"}}]}",
    "{\"usage\":{\"prompt_tokens\":1},\"usage\":{\"prompt_tokens\":2}}",
    "{\"usage\":{\"prompt_tokens\":1,\"prompt_tokens\":2}}",
    "{\"error\":null,\"error\":null}",
    "{\"choices\":[{\"finish_reason\":null,\"finish_reason\":\"stop\"}]}",
    "{\"id\":1,\"id\":2,\"choices\":[]}",
    "{\"choices\":[{\"delta\":{\"x\":1,\"x\":2,\"content\":\"dup elsewhere\"}}]}",
    "{\"choices\":[{\"delta\":[1,2]},{\"delta\":{\"content\":\"second\"}}]}",
    "{\"choices\":[null,{\"delta\":{\"content\":\"second\"}}]}",
    "{\"choices\":[\"s\\n\"],\"usage\":[1,2]}",
    "{\"choices\":[7],\"usage\":\"none\"}",
    "{\"choices\":[{\"delta\":{\"content\":5,\"tool_calls\":{}}}],\"usage\":"
    "{\"prompt_tokens\":1.5,\"completion_tokens\":-7}}",
    "{\"choices\":[{\"delta\":{\"content\":true}}],\"usage\":{\"prompt_tokens\":false,"
    "\"completion_tokens\":null}}",
    "{\"choices\":{\"#0\":{\"delta\":{\"content\":\"not an array\"}}}}",
    "{\"choices\":[{\"message\":{\"content\":\"m\"},\"delta\":{\"content\":\"d\"}}]}",
    "{\"ch\\u006fices\":[{\"delta\":{\"content\":\"escaped key\"}}]}",
    "{\"x\":{\"k\\n\":1},\"choices\":[]}",
    "{\"choices\":[{\"delta\":{\"content\":\"\\u0000\"}}]}",
    "{\"choices\":[{\"delta\":{\"content\":\"\\ud800\"}}]}",
    "{\"model\":\"\xc0\xaf\",\"choices\":[]}",
    "{\"created\":1e9,\"choices\":[]}",
    "{\"created\":12345678901234567890,\"choices\":[]}",
    "{\"usage\":{\"prompt_tokens\":9223372036854775807,\"completion_tokens\":-9223372036854775808}"
    "}",
    "{\"usage\":{\"prompt_tokens\":9223372036854775808}}",
    "{\"usage\":{\"completion_tokens\":-9223372036854775809}}",
    "{\"seed\":1234567890123456789,\"choices\":[]}",
    "{\"usage\":{\"prompt_tokens\":123456789012345678}}",
    "{\"usage\":{\"prompt_tokens\":-0}}",
    "{\"choices\":[],}",
    "{\"choices\":[],\"a\":[1,]}",
    "{\"choices\":[]} x",
    "{\"choices\":[]}   \r\n\t",
    "  {\"choices\":[]}",
    "[{\"choices\":[]}]",
    "\"s\"",
    "",
    "{",
    "{\"a\"",
    "{\"a\":",
    "{\"a\":1",
    "{}",
    "{\"choices\":[{}]}",
    "{\"choices\":[{\"delta\":{}}]}",
    "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
    "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
    "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
};

#define COUNT(a) (sizeof(a) / sizeof(a[0]))

static void test_usual_shapes_take_the_fast_path(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(USUAL); i++)
        assert_int_equal(check(USUAL[i], strlen(USUAL[i]), NULL), 2);
}

static void test_held_out_shapes_agree_and_take_the_fast_path(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(HELD_OUT); i++) {
        const char *d = HELD_OUT[i];
        json_error_t je;
        json_t *root = json_loads(d, 0, &je);
        if (root == NULL)
            fail_msg("held-out document %zu is not valid JSON: %s", i, je.text);
        json_decref(root);
        if (check(d, strlen(d), NULL) != 2)
            fail_msg("held-out document %zu fell back", i);
    }
}

static void test_edges_agree(void **state)
{
    (void)state;
    tally t = {0};
    for (size_t i = 0; i < COUNT(EDGES); i++)
        check(EDGES[i], strlen(EDGES[i]), &t);
    /* both outcomes occur: the fallbacks above are real */
    assert_true(t.both_ok > 10);
    assert_true(t.fast < (int)(2 * COUNT(EDGES)));
}

/* The answers the dialect reads, spot-checked on one chunk. */
static void test_values(void **state)
{
    (void)state;
    static const char doc[] =
        "{\"choices\":[{\"delta\":{\"content\":\"a\\nb\"},\"finish_reason\":\"stop\"}],"
        "\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":34}}";
    gw_jscan_field f[GW_OAI__COUNT];
    assert_int_equal(gw_openai_scan(doc, sizeof doc - 1, "delta", f, NULL), GW_JSCAN_OK);
    assert_int_equal(f[GW_OAI_ERROR].kind, GW_JSON_ABSENT);
    assert_int_equal(f[GW_OAI_CHOICE].kind, GW_JSON_OBJECT);
    assert_int_equal(f[GW_OAI_MSG].kind, GW_JSON_OBJECT);
    assert_int_equal(f[GW_OAI_TEXT].kind, GW_JSON_STRING);
    assert_int_equal(f[GW_OAI_TEXT].raw_len, 4);
    assert_memory_equal(f[GW_OAI_TEXT].raw, "a\\nb", 4);
    assert_true(f[GW_OAI_TEXT].escaped);
    assert_int_equal(f[GW_OAI_FINISH].kind, GW_JSON_STRING);
    assert_int_equal(f[GW_OAI_PROMPT].integer, 12);
    assert_int_equal(f[GW_OAI_COMPLETION].integer, 34);
    assert_int_equal(f[GW_OAI_TOOLS].kind, GW_JSON_ABSENT);
    assert_int_equal(gw_openai_scan(doc, sizeof doc - 1, "message", f, NULL), GW_JSCAN_OK);
    assert_int_equal(f[GW_OAI_MSG].kind, GW_JSON_ABSENT);
    assert_int_equal(f[GW_OAI_TEXT].kind, GW_JSON_ABSENT);
}

/* The chunks of one stream share their opening: the second and later resume
 * after it, with the answers of a full scan; a changed opening, an opening
 * followed by what is not a key, and a first member that is wanted do not
 * resume wrongly. */
static void test_stream_resumes_after_the_shared_opening(void **state)
{
    (void)state;
    gw_openai_prefix p = {0};
    gw_jscan_field f[GW_OAI__COUNT], g[GW_OAI__COUNT];
    for (size_t i = 0; i < 4; i++) {
        const char *d = USUAL[i];
        size_t n = strlen(d);
        bool shares = p.len > 0 && memcmp(d, p.bytes, p.len) == 0;
        assert_int_equal(gw_openai_scan(d, n, "delta", f, &p), GW_JSCAN_OK);
        assert_int_equal(gw_openai_scan(d, n, "delta", g, NULL), GW_JSCAN_OK);
        assert_true(same_fields(f, g));
        assert_true(p.len > 0);
        assert_int_equal(d[p.len], '"');
        if (i > 0)
            assert_true(shares);
    }
    static const char *const after[] = {
        "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
        "\"model\":\"gpt-4o-mini\",}",
        "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
        "\"model\":\"gpt-4o-mini\",\"x\":1}",
        "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
        "\"model\":\"gpt-4o-mini\",\"choices\":[],\"choices\":[]}",
        "{\"id\":\"chatcmpl-2\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
        "\"model\":\"gpt-4o-mini\",\"choices\":[{\"delta\":{\"content\":\"x\"}}]}",
        "{\"choices\":[{\"delta\":{\"content\":\"first\"}}],\"id\":\"a\"}",
    };
    for (size_t i = 0; i < COUNT(after); i++) {
        size_t n = strlen(after[i]);
        gw_openai_prefix q = p;
        gw_jscan_result want = gw_openai_scan(after[i], n, "delta", g, NULL);
        assert_int_equal(gw_openai_scan(after[i], n, "delta", f, &q), want);
        if (want == GW_JSCAN_OK)
            assert_true(same_fields(f, g));
        check(after[i], n, NULL);
    }
}

/* ---- mutations and generated documents ---- */

static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static const char BYTES[] = "{}[],:\" \\nu0aA-.1e\x80\xc3\xa9\x01tfnl";

/* Each corpus document cut, with a byte flipped, inserted or removed, and
 * with a piece of another document spliced in. */
static void test_mutated_corpus_agrees(void **state)
{
    (void)state;
    const char *const *sets[] = {USUAL, HELD_OUT, EDGES};
    size_t counts[] = {COUNT(USUAL), COUNT(HELD_OUT), COUNT(EDGES)};
    uint32_t rng = 0x2545F491u;
    char buf[2048];
    tally t = {0};
    for (int round = 0; round < 60; round++) {
        for (size_t s = 0; s < 3; s++) {
            for (size_t i = 0; i < counts[s]; i++) {
                const char *d = sets[s][i];
                size_t n = strlen(d);
                if (n == 0 || n + 64 > sizeof buf)
                    continue;
                check(d, n, NULL); /* its opening is carried to the mutant */
                memcpy(buf, d, n);
                size_t at = rnd(&rng) % n;
                switch (rnd(&rng) % 5) {
                case 0:
                    n = at;
                    break;
                case 1:
                    buf[at] = BYTES[rnd(&rng) % (sizeof BYTES - 1)];
                    break;
                case 2:
                    memmove(buf + at + 1, buf + at, n - at);
                    buf[at] = BYTES[rnd(&rng) % (sizeof BYTES - 1)];
                    n++;
                    break;
                case 3:
                    memmove(buf + at, buf + at + 1, n - at - 1);
                    n--;
                    break;
                default: {
                    const char *o = HELD_OUT[rnd(&rng) % COUNT(HELD_OUT)];
                    size_t on = strlen(o), from = rnd(&rng) % on, k = 1 + rnd(&rng) % 40;
                    if (from + k > on)
                        k = on - from;
                    memmove(buf + at + k, buf + at, n - at);
                    memcpy(buf + at, o + from, k);
                    n += k;
                }
                }
                check(buf, n, &t);
            }
        }
    }
    assert_true(t.both_ok > 500); /* many mutants stay valid */
    assert_true(t.resumed > 500); /* and many share the opening of the one before */
    assert_true(t.general > t.both_ok / 2);
}

typedef struct {
    char *b;
    size_t len, cap;
    uint32_t rng;
} gen;

static void put(gen *g, const char *s)
{
    size_t n = strlen(s);
    if (g->len + n + 1 > g->cap) {
        while (g->len + n + 1 > g->cap)
            g->cap *= 2;
        g->b = realloc(g->b, g->cap);
        assert_non_null(g->b);
    }
    memcpy(g->b + g->len, s, n);
    g->len += n;
}

static void gen_value(gen *g, int depth);

static void gen_scalar(gen *g)
{
    static const char *const v[] = {
        "null",
        "true",
        "false",
        "0",
        "-3",
        "17",
        "2.5",
        "1e2",
        "\"\"",
        "\"text\"",
        "\"a\\nb\\u00e9\"",
        "\"\\ud83d\\ude00\"",
        "\"\xc3\xa9\"",
        "99999999999999999999",
        "\"\\u0000\"",
        "\"tab\there\"",
    };
    put(g, v[rnd(&g->rng) % (sizeof v / sizeof v[0])]);
}

static void gen_key(gen *g)
{
    static const char *const k[] = {
        "choices",       "delta",         "message",           "content",    "usage", "error",
        "finish_reason", "prompt_tokens", "completion_tokens", "tool_calls", "index", "x_groq",
        "logprobs",      "role",          "c\\u006ftent"};
    put(g, "\"");
    put(g, k[rnd(&g->rng) % (sizeof k / sizeof k[0])]);
    put(g, "\":");
}

static void gen_object(gen *g, int depth)
{
    put(g, "{");
    int n = (int)(rnd(&g->rng) % 5);
    for (int i = 0; i < n; i++) {
        if (i)
            put(g, rnd(&g->rng) % 64 ? "," : " , ");
        gen_key(g);
        gen_value(g, depth + 1);
    }
    put(g, "}");
}

static void gen_value(gen *g, int depth)
{
    uint32_t r = rnd(&g->rng) % (depth > 5 ? 2 : 6);
    if (r == 0 || r == 1) {
        gen_scalar(g);
    } else if (r < 5) {
        gen_object(g, depth);
    } else {
        put(g, "[");
        int n = (int)(rnd(&g->rng) % 4);
        for (int i = 0; i < n; i++) {
            if (i)
                put(g, ",");
            gen_value(g, depth + 1);
        }
        put(g, "]");
    }
}

static void test_generated_agree(void **state)
{
    (void)state;
    gen g = {.cap = 256, .rng = 0x9E3779B9u};
    g.b = malloc(g.cap);
    assert_non_null(g.b);
    tally t = {0};
    int total = 30000;
    for (int i = 0; i < total; i++) {
        g.len = 0;
        gen_object(&g, 0);
        if (rnd(&g.rng) % 10 == 0 && g.len > 1)
            g.b[rnd(&g.rng) % g.len] = BYTES[rnd(&g.rng) % (sizeof BYTES - 1)];
        check(g.b, g.len, &t);
    }
    free(g.b);
    /* both outcomes are frequent */
    assert_true(t.both_ok > total / 5);
    assert_true(t.both_ok < 2 * total - total / 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usual_shapes_take_the_fast_path),
        cmocka_unit_test(test_held_out_shapes_agree_and_take_the_fast_path),
        cmocka_unit_test(test_edges_agree),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_stream_resumes_after_the_shared_opening),
        cmocka_unit_test(test_mutated_corpus_agrees),
        cmocka_unit_test(test_generated_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
