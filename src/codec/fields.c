/* fields: the tables of codec_private.h, one row per Avro field in schema order. */
#include "codec/codec_private.h"
#include "codec/schemas.h"

#include <string.h>

#define F(type, fname, kind_)                                                                      \
    {                                                                                              \
#fname, kind_, offsetof(type, fname), 0, 0, NULL, 0                                        \
    }
#define FD(type, fname, kind_, d)                                                                  \
    {                                                                                              \
#fname, kind_, offsetof(type, fname), 0, d, NULL, 0                                        \
    }
#define FA(type, fname, kind_, aux)                                                                \
    {                                                                                              \
#fname, kind_, offsetof(type, fname), offsetof(type, aux), 0, NULL, 0                      \
    }
/* An array of records (sub) bounded by the limit lim, count at aux. */
#define FR(type, fname, aux, sub_, lim_)                                                           \
    {                                                                                              \
#fname, GW_F_REC_ARRAY, offsetof(type, fname), offsetof(type, aux), 0, sub_, lim_          \
    }
/* ["null", record sub]: a pointer to it. */
#define FO(type, fname, sub_)                                                                      \
    {                                                                                              \
#fname, GW_F_OPT_REC, offsetof(type, fname), 0, 0, sub_, 0                                 \
    }
#define DESC(name, type, rows)                                                                     \
    {                                                                                              \
        name, rows, sizeof(rows) / sizeof(rows[0]), sizeof(type)                                   \
    }

static const gw_field tool_call_fields[] = {
    F(gw_tool_call, id, GW_F_STR),
    F(gw_tool_call, name, GW_F_STR),
    F(gw_tool_call, arguments, GW_F_STR),
};
static const gw_record_desc tool_call_desc = DESC("ToolCall", gw_tool_call, tool_call_fields);

static const gw_field tool_call_delta_fields[] = {
    F(gw_tool_call_delta, index, GW_F_INT),
    F(gw_tool_call_delta, id, GW_F_OPT_STR),
    F(gw_tool_call_delta, name, GW_F_OPT_STR),
    F(gw_tool_call_delta, arguments, GW_F_STR),
};
static const gw_record_desc tool_call_delta_desc =
    DESC("ToolCallDelta", gw_tool_call_delta, tool_call_delta_fields);

static const gw_field tool_fields[] = {
    F(gw_tool, name, GW_F_STR),
    F(gw_tool, description, GW_F_OPT_STR),
    F(gw_tool, parameters, GW_F_OPT_STR),
};
static const gw_record_desc tool_desc = DESC("Tool", gw_tool, tool_fields);

static const gw_field response_format_fields[] = {
    F(gw_response_format, type, GW_F_STR),
    F(gw_response_format, name, GW_F_OPT_STR),
    F(gw_response_format, schema, GW_F_OPT_STR),
    F(gw_response_format, strict, GW_F_BOOL),
};
static const gw_record_desc response_format_desc =
    DESC("ResponseFormat", gw_response_format, response_format_fields);

/* Message of request v1 and v2, and (with the tool fields) of v3. */
#define MESSAGE_V1_FIELDS                                                                          \
    F(gw_message, role, GW_F_ROLE), F(gw_message, content, GW_F_STR),                              \
        F(gw_message, name, GW_F_OPT_STR)
static const gw_field message_v1_fields[] = {MESSAGE_V1_FIELDS};
static const gw_field message_v2_fields[] = {
    MESSAGE_V1_FIELDS,
    FR(gw_message, tool_calls, tool_call_count, &tool_call_desc, GW_LIM_TOOL_CALLS),
    F(gw_message, tool_call_id, GW_F_OPT_STR),
};
static const gw_record_desc message_v1 = DESC("Message", gw_message, message_v1_fields);
static const gw_record_desc message_v2 = DESC("Message", gw_message, message_v2_fields);

static const gw_field usage_fields[] = {
    F(gw_token_usage, prompt_tokens, GW_F_INT),
    F(gw_token_usage, completion_tokens, GW_F_INT),
    F(gw_token_usage, total_tokens, GW_F_INT),
};
const gw_record_desc gw_desc_token_usage = DESC("TokenUsage", gw_token_usage, usage_fields);

static const gw_field error_fields[] = {
    F(gw_error_rec, code, GW_F_STR),
    F(gw_error_rec, message, GW_F_STR),
    F(gw_error_rec, retryable, GW_F_BOOL),
    F(gw_error_rec, details, GW_F_STR_MAP),
};
const gw_record_desc gw_desc_gateway_error = DESC("GatewayError", gw_error_rec, error_fields);

#define REQUEST_V1_FIELDS(message_desc)                                                            \
    F(gw_request, request_id, GW_F_STR), F(gw_request, agent_did, GW_F_STR),                       \
        FR(gw_request, messages, message_count, message_desc, GW_LIM_MESSAGES),                    \
        F(gw_request, system_prompt, GW_F_OPT_STR), FD(gw_request, temperature, GW_F_DOUBLE, 0.7), \
        FD(gw_request, max_tokens, GW_F_INT, 1024),                                                \
        FA(gw_request, capabilities, GW_F_STR_ARRAY, capability_count),                            \
        FD(gw_request, enable_cache, GW_F_BOOL, 1), F(gw_request, metadata, GW_F_STR_MAP)

#define REQUEST_V2_FIELDS(message_desc)                                                            \
    REQUEST_V1_FIELDS(message_desc),                                                               \
        FD(gw_request, routing_strategy, GW_F_STRATEGY, GW_ROUTE_BALANCED),                        \
        F(gw_request, stream, GW_F_BOOL), F(gw_request, model, GW_F_OPT_STR),                      \
        FA(gw_request, deadline_ms, GW_F_OPT_LONG, has_deadline),                                  \
        F(gw_request, reply_topic, GW_F_OPT_STR), F(gw_request, batch_id, GW_F_OPT_STR),           \
        F(gw_request, custom_id, GW_F_OPT_STR), F(gw_request, tenant_id, GW_F_OPT_STR)

static const gw_field request_v1_fields[] = {REQUEST_V1_FIELDS(&message_v1)};
static const gw_field request_v2_fields[] = {REQUEST_V2_FIELDS(&message_v1)};
static const gw_field request_v3_fields[] = {
    REQUEST_V2_FIELDS(&message_v2),
    FR(gw_request, tools, tool_count, &tool_desc, GW_LIM_TOOLS),
    F(gw_request, tool_choice, GW_F_OPT_STR),
    FO(gw_request, response_format, &response_format_desc),
    FA(gw_request, stop, GW_F_STR_ARRAY, stop_count),
    FA(gw_request, top_p, GW_F_OPT_DOUBLE, has_top_p),
    FA(gw_request, seed, GW_F_OPT_LONG, has_seed),
};
static const gw_record_desc request_v1 = DESC("InferenceRequest", gw_request, request_v1_fields);
static const gw_record_desc request_v2 = DESC("InferenceRequest", gw_request, request_v2_fields);
static const gw_record_desc request_v3 = DESC("InferenceRequest", gw_request, request_v3_fields);

#define RESPONSE_V1_FIELDS                                                                         \
    F(gw_response, request_id, GW_F_STR), F(gw_response, content, GW_F_STR),                       \
        F(gw_response, model_id, GW_F_STR), F(gw_response, provider, GW_F_STR),                    \
        F(gw_response, token_usage, GW_F_USAGE), F(gw_response, latency_ms, GW_F_DOUBLE),          \
        F(gw_response, cached, GW_F_BOOL), F(gw_response, finish_reason, GW_F_OPT_STR),            \
        F(gw_response, error, GW_F_OPT_ERROR), F(gw_response, metadata, GW_F_STR_MAP),             \
        F(gw_response, custom_id, GW_F_OPT_STR), F(gw_response, batch_id, GW_F_OPT_STR)
static const gw_field response_v1_fields[] = {RESPONSE_V1_FIELDS};
static const gw_field response_v2_fields[] = {
    RESPONSE_V1_FIELDS,
    FR(gw_response, tool_calls, tool_call_count, &tool_call_desc, GW_LIM_TOOL_CALLS),
};
static const gw_record_desc response_v1 =
    DESC("InferenceResponse", gw_response, response_v1_fields);
static const gw_record_desc response_v2 =
    DESC("InferenceResponse", gw_response, response_v2_fields);

#define CHUNK_V1_FIELDS                                                                            \
    F(gw_chunk, request_id, GW_F_STR), F(gw_chunk, seq, GW_F_INT), F(gw_chunk, content, GW_F_STR), \
        F(gw_chunk, is_final, GW_F_BOOL), FA(gw_chunk, token_usage, GW_F_OPT_USAGE, has_usage),    \
        F(gw_chunk, finish_reason, GW_F_OPT_STR), F(gw_chunk, error, GW_F_OPT_ERROR)
static const gw_field chunk_v1_fields[] = {CHUNK_V1_FIELDS};
static const gw_field chunk_v2_fields[] = {
    CHUNK_V1_FIELDS,
    FR(gw_chunk, tool_calls, tool_call_count, &tool_call_delta_desc, GW_LIM_TOOL_CALLS),
};
static const gw_record_desc chunk_v1 = DESC("StreamChunk", gw_chunk, chunk_v1_fields);
static const gw_record_desc chunk_v2 = DESC("StreamChunk", gw_chunk, chunk_v2_fields);

#define USAGE_V1_FIELDS                                                                            \
    F(gw_usage_event, event_id, GW_F_STR), F(gw_usage_event, request_id, GW_F_STR),                \
        F(gw_usage_event, agent_did, GW_F_STR), F(gw_usage_event, tenant_id, GW_F_STR),            \
        F(gw_usage_event, batch_id, GW_F_OPT_STR), F(gw_usage_event, custom_id, GW_F_OPT_STR),     \
        F(gw_usage_event, model_id, GW_F_OPT_STR), F(gw_usage_event, provider, GW_F_OPT_STR),      \
        F(gw_usage_event, priority, GW_F_STR), F(gw_usage_event, prompt_tokens, GW_F_INT),         \
        F(gw_usage_event, completion_tokens, GW_F_INT), F(gw_usage_event, total_tokens, GW_F_INT), \
        F(gw_usage_event, cost_usd, GW_F_DOUBLE), F(gw_usage_event, saved_cost_usd, GW_F_DOUBLE),  \
        F(gw_usage_event, latency_ms, GW_F_DOUBLE),                                                \
        FA(gw_usage_event, ttft_ms, GW_F_OPT_DOUBLE, has_ttft),                                    \
        F(gw_usage_event, cached, GW_F_BOOL), F(gw_usage_event, cache_tier, GW_F_OPT_STR),         \
        FA(gw_usage_event, cache_similarity, GW_F_OPT_DOUBLE, has_similarity),                     \
        F(gw_usage_event, attempts, GW_F_INT), F(gw_usage_event, failovers, GW_F_INT),             \
        F(gw_usage_event, outcome, GW_F_STR), F(gw_usage_event, error_code, GW_F_OPT_STR),         \
        F(gw_usage_event, timestamp_ms, GW_F_LONG)
static const gw_field usage_v1_fields[] = {USAGE_V1_FIELDS};
static const gw_field usage_v2_fields[] = {
    USAGE_V1_FIELDS,
    F(gw_usage_event, trace_id, GW_F_OPT_STR),
    F(gw_usage_event, span_id, GW_F_OPT_STR),
};
static const gw_record_desc usage_v1 = DESC("UsageEvent", gw_usage_event, usage_v1_fields);
static const gw_record_desc usage_v2 = DESC("UsageEvent", gw_usage_event, usage_v2_fields);

/* Ordered by kind, then version; the last row of a kind is its current version. */
const gw_schema_version gw_schema_versions[] = {
    {GW_REC_REQUEST, 1, "InferenceRequest.v1", &request_v1},
    {GW_REC_REQUEST, 2, "InferenceRequest.v2", &request_v2},
    {GW_REC_REQUEST, 3, "InferenceRequest", &request_v3},
    {GW_REC_RESPONSE, 1, "InferenceResponse.v1", &response_v1},
    {GW_REC_RESPONSE, 2, "InferenceResponse", &response_v2},
    {GW_REC_CHUNK, 1, "StreamChunk.v1", &chunk_v1},
    {GW_REC_CHUNK, 2, "StreamChunk", &chunk_v2},
    {GW_REC_USAGE, 1, "UsageEvent.v1", &usage_v1},
    {GW_REC_USAGE, 2, "UsageEvent", &usage_v2},
};
const size_t gw_schema_version_count = sizeof(gw_schema_versions) / sizeof(gw_schema_versions[0]);

size_t gw_limit_of(const gw_codec_limits *lim, gw_limit_sel sel)
{
    switch (sel) {
    case GW_LIM_MESSAGES:
        return lim->max_messages;
    case GW_LIM_TOOLS:
        return lim->max_tools;
    case GW_LIM_TOOL_CALLS:
        return lim->max_tool_calls;
    }
    return 0;
}

int gw_schema_version_index(gw_record_kind kind, int version)
{
    for (size_t i = 0; i < gw_schema_version_count; i++) {
        if (gw_schema_versions[i].kind == kind && gw_schema_versions[i].version == version)
            return (int)i;
    }
    return -1;
}

int gw_codec_current_version(gw_record_kind kind)
{
    int v = 0;
    for (size_t i = 0; i < gw_schema_version_count; i++) {
        if (gw_schema_versions[i].kind == kind && gw_schema_versions[i].version > v)
            v = gw_schema_versions[i].version;
    }
    return v;
}

const gw_record_desc *gw_current_desc(gw_record_kind kind)
{
    int i = gw_schema_version_index(kind, gw_codec_current_version(kind));
    return i < 0 ? NULL : gw_schema_versions[i].desc;
}

const char *gw_codec_schema_name(gw_record_kind kind, int version)
{
    int i = gw_schema_version_index(kind, version);
    return i < 0 ? NULL : gw_schema_versions[i].source;
}

const char *gw_codec_current_schema_json(gw_record_kind kind)
{
    const char *name = gw_codec_schema_name(kind, gw_codec_current_version(kind));
    for (size_t i = 0; name != NULL && i < gw_schema_source_count; i++)
        if (strcmp(gw_schema_sources[i].name, name) == 0)
            return gw_schema_sources[i].json;
    return NULL;
}

void gw_desc_init_defaults(const gw_record_desc *d, void *rec)
{
    memset(rec, 0, d->struct_size);
    unsigned char *base = rec;
    for (size_t i = 0; i < d->field_count; i++) {
        const gw_field *f = &d->fields[i];
        if (f->dflt == 0)
            continue;
        switch (f->kind) {
        case GW_F_INT:
            *(int32_t *)(base + f->off) = (int32_t)f->dflt;
            break;
        case GW_F_DOUBLE:
            *(double *)(base + f->off) = f->dflt;
            break;
        case GW_F_BOOL:
            *(bool *)(base + f->off) = true;
            break;
        case GW_F_STRATEGY:
            *(gw_strategy *)(base + f->off) = (gw_strategy)f->dflt;
            break;
        default:
            break;
        }
    }
}

void gw_codec_init_defaults(gw_record_kind kind, void *rec)
{
    const gw_record_desc *d = gw_current_desc(kind);
    if (d != NULL)
        gw_desc_init_defaults(d, rec);
}
