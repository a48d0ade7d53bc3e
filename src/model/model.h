/*
 * model: the C form of modelgw's wire data (schemas/NAME.avsc).
 *
 * These structs are plain data. Their strings and arrays live in an arena
 * owned by whoever decoded or built them (usually the request's gw_arena), so
 * there is no per-field free: the arena's cleanup frees all. A NULL char*
 * means an absent optional field; empty strings are "" (never NULL) for
 * required fields.
 *
 * Field names follow the schemas exactly; see docs/schemas.md.
 */
#ifndef GW_MODEL_MODEL_H
#define GW_MODEL_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"

typedef enum {
    GW_ROLE_SYSTEM,
    GW_ROLE_USER,
    GW_ROLE_ASSISTANT,
    GW_ROLE_TOOL,
    GW_ROLE__COUNT
} gw_role;

typedef enum {
    GW_ROUTE_FASTEST,
    GW_ROUTE_CHEAPEST,
    GW_ROUTE_BEST_QUALITY,
    GW_ROUTE_BALANCED,
    GW_ROUTE_CAPABILITY_MATCH,
    GW_ROUTE__COUNT
} gw_strategy;

/* Avro symbol names: "USER", "CHEAPEST", ... NULL when out of range. */
const char *gw_role_name(gw_role r);
const char *gw_strategy_name(gw_strategy s);
/* Parse symbol names (case-insensitive); return -1 when unknown. */
int gw_role_parse(const char *s);
int gw_strategy_parse(const char *s);

/* One entry of an Avro map<string>. */
typedef struct {
    const char *key;
    const char *value;
} gw_kv;

typedef struct {
    gw_kv *items;
    size_t count;
} gw_map;

/* Value of key in m, or NULL. */
const char *gw_map_get(const gw_map *m, const char *key);

/* One tool call of a model's answer (and of an ASSISTANT message replaying it). */
typedef struct {
    const char *id;        /* provider's call id; a TOOL message answers it by tool_call_id */
    const char *name;      /* the tool (function) name */
    const char *arguments; /* JSON object text */
} gw_tool_call;

/* A tool (function) the model may call. */
typedef struct {
    const char *name;
    const char *description; /* optional */
    const char *parameters;  /* optional: JSON Schema of the arguments, as JSON text */
} gw_tool;

/* Structured output (response_format). */
typedef struct {
    const char *type;   /* "text" | "json_object" | "json_schema" */
    const char *name;   /* optional: json_schema's name */
    const char *schema; /* optional: json_schema's JSON Schema, as JSON text */
    bool strict;
} gw_response_format;

/* One piece of a streamed tool call; deltas with the same index belong together. */
typedef struct {
    int32_t index;
    const char *id;        /* optional: on the first delta of a call */
    const char *name;      /* optional: on the first delta of a call */
    const char *arguments; /* the next piece of the arguments' JSON text */
} gw_tool_call_delta;

typedef struct {
    gw_role role;
    const char *content;
    const char *name; /* optional */
    /* --- added in request schema v3 --- */
    gw_tool_call *tool_calls; /* ASSISTANT: the calls the model made */
    size_t tool_call_count;
    const char *tool_call_id; /* optional; TOOL: the call this message answers */
} gw_message;

typedef struct {
    /* Not on the wire: the W3C trace context the provider call carries
     * (traceparent with the attempt's span id), set by the worker before
     * each attempt (worker/job_trace.c); NULL = send none. */
    const char *traceparent, *tracestate;
    /* --- fields of the seed's InferenceRequest (schema v1) --- */
    const char *request_id;
    const char *agent_did;
    gw_message *messages;
    size_t message_count;
    const char *system_prompt; /* optional */
    double temperature;
    int32_t max_tokens;
    const char **capabilities;
    size_t capability_count;
    bool enable_cache;
    gw_map metadata;
    /* --- added in schema v2; defaults apply when an older writer lacks them --- */
    gw_strategy routing_strategy; /* default BALANCED */
    bool stream;                  /* default false */
    const char *model;            /* optional preferred model */
    bool has_deadline;
    int64_t deadline_ms;     /* unix epoch ms, valid when has_deadline */
    const char *reply_topic; /* optional */
    const char *batch_id;    /* optional */
    const char *custom_id;   /* optional */
    const char *tenant_id;   /* optional; defaults to agent_did for namespacing */
    /* --- added in schema v3 --- */
    gw_tool *tools;
    size_t tool_count;
    const char *tool_choice;             /* optional: auto | none | required | a tool name */
    gw_response_format *response_format; /* optional */
    const char **stop;
    size_t stop_count;
    bool has_top_p;
    double top_p; /* valid when has_top_p */
    bool has_seed;
    int64_t seed; /* valid when has_seed */
} gw_request;

typedef struct {
    int32_t prompt_tokens;
    int32_t completion_tokens;
    int32_t total_tokens;
} gw_token_usage;

/* GatewayError on the wire. */
typedef struct {
    const char *code; /* "E4102" */
    const char *message;
    bool retryable;
    gw_map details;
} gw_error_rec;

typedef struct {
    const char *request_id;
    const char *content;
    const char *model_id;
    const char *provider;
    gw_token_usage token_usage;
    double latency_ms;
    bool cached;
    const char *finish_reason; /* optional: "stop", "length", ... */
    gw_error_rec *error;       /* optional */
    gw_map metadata;           /* custom_id, batch_id, cache_similarity, ... */
    const char *custom_id;     /* optional, echoed from the request */
    const char *batch_id;      /* optional, echoed from the request */
    /* --- added in schema v2 --- */
    gw_tool_call *tool_calls; /* finish_reason "tool_calls" */
    size_t tool_call_count;
} gw_response;

typedef struct {
    const char *request_id;
    int32_t seq; /* 0, 1, 2, ... per request */
    const char *content;
    bool is_final;
    bool has_usage;
    gw_token_usage token_usage; /* valid when has_usage (final chunk) */
    const char *finish_reason;  /* optional, final chunk */
    gw_error_rec *error;        /* optional */
    /* --- added in schema v2 --- */
    gw_tool_call_delta *tool_calls;
    size_t tool_call_count;
} gw_chunk;

/* What a billing or analytics consumer needs for one request outcome. */
typedef struct {
    const char *event_id; /* unique per event; request_id + attempt of publication */
    const char *request_id;
    const char *agent_did;
    const char *tenant_id;
    const char *batch_id;  /* optional */
    const char *custom_id; /* optional */
    const char *model_id;  /* optional: none when no model was reached */
    const char *provider;  /* optional */
    const char *priority;  /* "high" | "normal" | "low" */
    int32_t prompt_tokens;
    int32_t completion_tokens;
    int32_t total_tokens;
    double cost_usd;       /* billed: 0 for cache hits */
    double saved_cost_usd; /* what a cache hit would have cost */
    double latency_ms;
    bool has_ttft;
    double ttft_ms;
    bool cached;
    const char *cache_tier; /* optional: "exact" | "semantic" */
    bool has_similarity;
    double cache_similarity;
    int32_t attempts;
    int32_t failovers;
    const char
        *outcome; /* "success" | "cached" | "error" | "rate_limited" | "expired" | "invalid" */
    const char *error_code; /* optional */
    int64_t timestamp_ms;
    /* --- added in schema v2 --- */
    const char *trace_id; /* optional: 32 hex digits, the request's trace */
    const char *span_id;  /* optional: 16 hex digits, the gateway's request span */
} gw_usage_event;

#endif
