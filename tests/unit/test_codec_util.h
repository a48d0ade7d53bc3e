/*
 * test_codec_util: shared helpers of the codec unit tests: sample records
 * with every optional field set or unset, a byte builder for hand-made
 * (hostile) Avro, JSON comparison of records, and the codec every test
 * group starts from.
 */
#ifndef TEST_CODEC_UTIL_H
#define TEST_CODEC_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "codec/codec.h"
#include "codec/json.h"

/* cmocka group setup: a codec with the default limits and the Confluent
 * schema ids the corpora use (7: request v2, 8: request v1, 9: response v1,
 * 10: chunk v1, 11: usage v1, 12: request v3, 13: response v2, 14: chunk v2,
 * 15: usage v2). */
static inline int codec_setup(void **state)
{
    gw_codec *c = gw_codec_new(NULL);
    if (c == NULL)
        return -1;
    gw_codec_set_confluent_id(c, 7, GW_REC_REQUEST, 2);
    gw_codec_set_confluent_id(c, 8, GW_REC_REQUEST, 1);
    gw_codec_set_confluent_id(c, 9, GW_REC_RESPONSE, 1);
    gw_codec_set_confluent_id(c, 10, GW_REC_CHUNK, 1);
    gw_codec_set_confluent_id(c, 11, GW_REC_USAGE, 1);
    gw_codec_set_confluent_id(c, 12, GW_REC_REQUEST, 3);
    gw_codec_set_confluent_id(c, 13, GW_REC_RESPONSE, 2);
    gw_codec_set_confluent_id(c, 14, GW_REC_CHUNK, 2);
    gw_codec_set_confluent_id(c, 15, GW_REC_USAGE, 2);
    *state = c;
    return 0;
}

static inline int codec_teardown(void **state)
{
    gw_codec_free(*state);
    return 0;
}

typedef struct {
    uint8_t b[4096];
    size_t n;
} bytes;

static inline void put_raw(bytes *x, const void *p, size_t n)
{
    memcpy(x->b + x->n, p, n);
    x->n += n;
}

static inline void put_byte(bytes *x, uint8_t c)
{
    x->b[x->n++] = c;
}

static inline void put_long(bytes *x, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    while (z >= 0x80) {
        put_byte(x, (uint8_t)(z | 0x80));
        z >>= 7;
    }
    put_byte(x, (uint8_t)z);
}

static inline void put_str(bytes *x, const char *s)
{
    put_long(x, (int64_t)strlen(s));
    put_raw(x, s, strlen(s));
}

static inline void put_double(bytes *x, double d)
{
    uint64_t v;
    memcpy(&v, &d, 8);
    for (int i = 0; i < 8; i++)
        put_byte(x, (uint8_t)(v >> (8 * i)));
}

static gw_message sample_messages[3] = {
    {.role = GW_ROLE_SYSTEM, .content = "You are terse.", .name = NULL},
    {.role = GW_ROLE_USER,
     .content = "What is the capital of France? Answer in one word, please.",
     .name = "alice"},
    {.role = GW_ROLE_ASSISTANT,
     .content = "Paris \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
     .name = NULL},
};
static const char *sample_caps[2] = {"chat", "tools"};
static gw_tool_call sample_calls[2] = {
    {.id = "call_1", .name = "get_weather", .arguments = "{\"city\":\"Par\u00eds\"}"},
    {.id = "call_2", .name = "get_time", .arguments = "{}"},
};
static gw_message sample_tool_messages[2] = {
    {.role = GW_ROLE_ASSISTANT, .content = "", .tool_calls = sample_calls, .tool_call_count = 2},
    {.role = GW_ROLE_TOOL,
     .content = "{\"temp_c\":21}",
     .name = "get_weather",
     .tool_call_id = "call_1"},
};
static gw_tool sample_tools[2] = {
    {.name = "get_weather",
     .description = "Current weather",
     .parameters = "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}"},
    {.name = "get_time"},
};
static gw_response_format sample_format = {
    .type = "json_schema", .name = "w", .schema = "{\"type\":\"object\"}", .strict = true};
static const char *sample_stop[2] = {"\n\n", "END"};
static gw_tool_call_delta sample_deltas[2] = {
    {.index = 0, .id = "call_1", .name = "get_weather", .arguments = "{\"ci"},
    {.index = 1, .arguments = "ty\":1}"},
};
static gw_kv sample_kv[2] = {{"team", "search"}, {"trace", "abc"}};

/* full: every optional field set. */
static inline void sample_request(gw_request *r, bool full)
{
    gw_codec_init_defaults(GW_REC_REQUEST, r);
    r->request_id = "6f1c3a52-0d7e-4b7a-9a57-3e1f0c0d2a11";
    r->agent_did = "did:example:agent-42";
    r->messages = sample_messages;
    r->message_count = 3;
    r->temperature = 0.25;
    r->max_tokens = 512;
    if (!full)
        return;
    r->system_prompt = "Be helpful.";
    r->capabilities = sample_caps;
    r->capability_count = 2;
    r->enable_cache = false;
    r->metadata.items = sample_kv;
    r->metadata.count = 2;
    r->routing_strategy = GW_ROUTE_CHEAPEST;
    r->stream = true;
    r->model = "gpt-4o-mini";
    r->has_deadline = true;
    r->deadline_ms = 1790000000123;
    r->reply_topic = "replies.x";
    r->batch_id = "batch-1";
    r->custom_id = "row-7";
    r->tenant_id = "tenant-a";
    r->messages = sample_tool_messages;
    r->message_count = 2;
    r->tools = sample_tools;
    r->tool_count = 2;
    r->tool_choice = "required";
    r->response_format = &sample_format;
    r->stop = sample_stop;
    r->stop_count = 2;
    r->has_top_p = true;
    r->top_p = 0.9;
    r->has_seed = true;
    r->seed = -7;
}

static gw_error_rec sample_error = {"E4102", "all models unavailable", true, {sample_kv, 2}};

static inline void sample_response(gw_response *r, bool full)
{
    gw_codec_init_defaults(GW_REC_RESPONSE, r);
    r->request_id = "req-1";
    r->content = full ? "" : "Paris";
    r->model_id = "m1";
    r->provider = "mock";
    r->token_usage = (gw_token_usage){12, 3, 15};
    r->latency_ms = 12.5;
    if (!full)
        return;
    r->cached = true;
    r->finish_reason = "stop";
    r->error = &sample_error;
    r->metadata.items = sample_kv;
    r->metadata.count = 1;
    r->custom_id = "row-7";
    r->batch_id = "batch-1";
    r->tool_calls = sample_calls;
    r->tool_call_count = 2;
}

static inline void sample_chunk(gw_chunk *c, bool full)
{
    gw_codec_init_defaults(GW_REC_CHUNK, c);
    c->request_id = "req-1";
    c->seq = full ? 7 : 0;
    c->content = "Par";
    if (!full)
        return;
    c->is_final = true;
    c->has_usage = true;
    c->token_usage = (gw_token_usage){1, 2, 3};
    c->finish_reason = "length";
    c->error = &sample_error;
    c->tool_calls = sample_deltas;
    c->tool_call_count = 2;
}

static inline void sample_usage(gw_usage_event *u, bool full)
{
    gw_codec_init_defaults(GW_REC_USAGE, u);
    u->event_id = "ev-1";
    u->request_id = "req-1";
    u->agent_did = "did:a";
    u->tenant_id = "t";
    u->priority = "normal";
    u->prompt_tokens = 10;
    u->completion_tokens = 20;
    u->total_tokens = 30;
    u->cost_usd = 0.000123;
    u->latency_ms = 250.0;
    u->attempts = 1;
    u->outcome = "success";
    u->timestamp_ms = 1790000000000;
    if (!full)
        return;
    u->batch_id = "b";
    u->custom_id = "c";
    u->model_id = "m1";
    u->provider = "openai";
    u->saved_cost_usd = 0.5;
    u->has_ttft = true;
    u->ttft_ms = 80.0;
    u->cached = true;
    u->cache_tier = "semantic";
    u->has_similarity = true;
    u->cache_similarity = 0.97;
    u->failovers = 2;
    u->error_code = "E4200";
    u->trace_id = "0af7651916cd43dd8448eb211c80319c";
    u->span_id = "b7ad6b7169203331";
}

/* A record of kind with every optional field set (full) or none. */
static inline void *sample_record(gw_record_kind kind, bool full, void *storage)
{
    switch (kind) {
    case GW_REC_REQUEST:
        sample_request(storage, full);
        break;
    case GW_REC_RESPONSE:
        sample_response(storage, full);
        break;
    case GW_REC_CHUNK:
        sample_chunk(storage, full);
        break;
    default:
        sample_usage(storage, full);
        break;
    }
    return storage;
}

static inline void assert_records_equal(gw_record_kind kind, const void *a, const void *b)
{
    json_t *ja = gw_record_to_json(kind, a);
    json_t *jb = gw_record_to_json(kind, b);
    assert_non_null(ja);
    assert_non_null(jb);
    if (!json_equal(ja, jb)) {
        char *sa = json_dumps(ja, JSON_SORT_KEYS);
        char *sb = json_dumps(jb, JSON_SORT_KEYS);
        print_error("want %s\n got %s\n", sa, sb);
        free(sa);
        free(sb);
        fail();
    }
    json_decref(ja);
    json_decref(jb);
}

#endif
