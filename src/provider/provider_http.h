/*
 * provider_http: what the three HTTP dialects (OpenAI, Anthropic, Ollama)
 * share: one call's life on http_client, the streaming parser (SSE or
 * NDJSON), the answer text and usage being assembled, the mapping of HTTP
 * statuses and transport failures to gw_err, error-body redaction, and the
 * one final gw_provider_result. Each dialect file only says how to write the
 * request and how to read its JSON (a gw_phttp_dialect table).
 *
 * Rules enforced here for every dialect:
 * - a stream that ends without the dialect's terminator, or breaks mid-way,
 *   is GW_E_STREAM_ERROR, never a success;
 * - the answer text is bounded (GW_PHTTP_MAX_CONTENT), stream events by the
 *   parser limits (GW_PHTTP_MAX_EVENT);
 * - error bodies reach error_detail cut to GW_PHTTP_DETAIL_MAX bytes with
 *   credentials (and the deployment's own key) scrubbed;
 * - usage missing from the provider is estimated (gw_estimate_tokens).
 *
 * Internal to src/provider/: callers use provider.h.
 */
#ifndef GW_PROVIDER_HTTP_H
#define GW_PROVIDER_HTTP_H

#include <jansson.h>

#include "loop/http_client.h"
#include "provider/eventstream.h"
#include "provider/jscan.h"
#include "provider/ndjson.h"
#include "provider/provider.h"
#include "provider/provider_table.h"
#include "provider/sse.h"

enum {
    GW_PHTTP_MAX_CONTENT = 4 * 1024 * 1024,
    GW_PHTTP_MAX_EVENT = 1024 * 1024,
    GW_PHTTP_DETAIL_MAX = 512,
    GW_PHTTP_MAX_TOOL_CALLS = 64, /* tool calls in one answer (the codec's max_tool_calls) */
};

typedef struct gw_phttp_call gw_phttp_call;

/*
 * A request body written straight into one growing buffer (no JSON tree).
 * Strings are escaped as jansson's json_dumps does (", \\, control
 * characters; UTF-8 passes through); a string that is not valid UTF-8 makes
 * err GW_E_INVALID_REQUEST. Errors are sticky: check err once at the end.
 */
typedef struct {
    char *b;
    size_t len, cap;
    gw_err err;
} gw_jbuf;

void gw_jbuf_lit(gw_jbuf *j, const char *text);   /* raw JSON text */
void gw_jbuf_str(gw_jbuf *j, const char *s);      /* a quoted string; NULL writes "" */
void gw_jbuf_str_part(gw_jbuf *j, const char *s); /* escaped, without the quotes */
void gw_jbuf_real(gw_jbuf *j, double v);          /* as jansson prints a real */
void gw_jbuf_int(gw_jbuf *j, long long v);
/* JSON text given by the caller (a tool's parameters, a call's arguments),
 * checked and written compact; not JSON, or not an object when object_only,
 * makes err GW_E_INVALID_REQUEST. */
void gw_jbuf_json(gw_jbuf *j, const char *text, bool object_only);

#define GW_PHTTP_EMPTY_SCHEMA "{\"type\":\"object\",\"properties\":{}}"

/* Message shapes of the dialects. */
typedef enum { GW_MSGS_OPENAI, GW_MSGS_ANTHROPIC, GW_MSGS_OLLAMA } gw_msg_style;

/* What req asks of tools: NONE (no tools, or tool_choice "none"), AUTO,
 * REQUIRED (some tool must be called), NAMED (tool_choice names the tool). */
typedef enum { GW_TOOLS_NONE, GW_TOOLS_AUTO, GW_TOOLS_REQUIRED, GW_TOOLS_NAMED } gw_tool_mode;
gw_tool_mode gw_phttp_tool_mode(const gw_request *req);

/* What a dialect adapter (provider_<x>.c) implements; the rest of a
 * provider kind (path, framing, auth, signer) is its row in the provider
 * table (provider_table.def). */
struct gw_phttp_dialect {
    const char *name; /* the dialect family ("openai"): the mock server answers in its shape */
    /* The JSON body, appended to j (errors in j->err). */
    void (*write_body)(gw_jbuf *j, const gw_deployment *d, const gw_request *req);
    /* Optional: dialect headers beyond the key ("Name: value", gw_phttp_header);
     * returns GW_OK or NOMEM. The key itself is added from the row's auth. */
    gw_err (*add_headers)(gw_phttp_call *c, const gw_deployment *d);
    /* A complete non-streamed answer. */
    gw_err (*parse_full)(gw_phttp_call *c, json_t *root);
    /* One stream event (SSE event name + parsed data, one NDJSON object, or
     * an event stream message's :event-type + its JSON payload). */
    gw_err (*on_event)(gw_phttp_call *c, const char *event, json_t *data);
    /* Optional fast paths without a jansson tree (jscan.h). They set *handled
     * to false to leave the document to parse_full / on_event, which they
     * must do for anything gw_jscan falls back on. */
    gw_err (*parse_full_raw)(gw_phttp_call *c, const char *doc, size_t len, bool *handled);
    gw_err (*on_event_raw)(gw_phttp_call *c, const char *event, const char *doc, size_t len,
                           bool *handled);
    /* Optional: a non-2xx status (and its body) to gw_err when the dialect
     * knows more than gw_phttp_map_status (Gemini's 400 for a bad key, its
     * token-count message, a RetryInfo delay in the body given to
     * gw_phttp_retry_after). NULL: gw_phttp_map_status. */
    gw_err (*map_status)(gw_phttp_call *c, int status, const char *body, size_t len);
    /* Optional: the name of the tool whose call carries the structured
     * answer of req (a dialect without a native response_format forces one);
     * its arguments become the answer text, not a tool call. NULL: none. */
    const char *(*format_tool)(const gw_request *req);
    /* Optional (event stream framing): an exception or error message in a
     * 200 stream, by its :exception-type (or :error-code) and payload; returns
     * the gw_err the call ends with (the detail through gw_phttp_detail).
     * NULL: GW_E_STREAM_ERROR. */
    gw_err (*on_exception)(gw_phttp_call *c, const char *type, const char *payload, size_t len);
};

/* Start a call of kind k (its row: k->dialect must be set). */
gw_err gw_phttp_start(gw_http *h, const gw_provider_kind_info *k, const gw_deployment *d,
                      const gw_request *req, const gw_provider_cbs *cbs, void *ud,
                      gw_phttp_call **out);
void gw_phttp_cancel(gw_phttp_call *c);

/* ---- for dialect files ---- */

/* Add one "Name: value" header (copied). */
gw_err gw_phttp_header(gw_phttp_call *c, const char *name, const char *value);
/* Add the deployment's key under d->auth_header, else the row's auth.header;
 * in an Authorization header as "<auth.scheme> KEY" (Bearer). */
gw_err gw_phttp_auth(gw_phttp_call *c, const gw_deployment *d);
/* Keep text (redacted, cut) as the call's error detail. */
void gw_phttp_detail(gw_phttp_call *c, const char *text, size_t len);
/* The call's provider table row (for its options). */
const gw_provider_kind_info *gw_phttp_kind(const gw_phttp_call *c);
/* Streamed or whole answer text. */
gw_err gw_phttp_text(gw_phttp_call *c, const char *text, size_t len);
/* Normalised finish reason (copied). */
void gw_phttp_finish(gw_phttp_call *c, const char *reason);
void gw_phttp_usage(gw_phttp_call *c, json_t *prompt, json_t *completion);
/* A per-call area where a dialect's fast path keeps what one event tells
 * about the next (OpenAI: gw_openai_prefix); GW_PHTTP_MEMO_BYTES long,
 * aligned for any object, zeroed when the call starts. */
enum { GW_PHTTP_MEMO_BYTES = 256 };
void *gw_phttp_memo(gw_phttp_call *c);
/* A string value gw_jscan found (decoded when escaped); NULL for any other kind. */
const char *gw_phttp_jstr(gw_phttp_call *c, const gw_jscan_field *f, size_t *len);
/* gw_phttp_text / gw_phttp_finish / gw_phttp_usage from gw_jscan fields (non-strings,
 * non-integers are ignored, as the jansson forms do). */
gw_err gw_phttp_text_field(gw_phttp_call *c, const gw_jscan_field *f);
void gw_phttp_finish_field(gw_phttp_call *c, const gw_jscan_field *f);
void gw_phttp_usage_fields(gw_phttp_call *c, const gw_jscan_field *prompt,
                           const gw_jscan_field *completion);
/* The v3 fields every dialect relies on: tool names present and distinct, a
 * named tool_choice among the tools, response_format text / json_object /
 * json_schema (with a schema). GW_E_INVALID_REQUEST otherwise; checked before
 * any body is written. */
gw_err gw_phttp_check_request(const gw_request *req);
/* The request being answered. */
const gw_request *gw_phttp_req(const gw_phttp_call *c);
/* A piece of a tool call. key is the provider's handle for the call (the
 * OpenAI delta index, the Anthropic content block); key < 0 starts a new
 * call. id and name as the provider gives them (on the first piece; NULL
 * otherwise), args the next piece of the arguments' JSON text (may be empty).
 * When streaming, reported to on_tool_delta. The assembled calls reach
 * on_done (ids "call_<n>" where the provider gave none; empty arguments as
 * "{}"); a call without a name is PROVIDER_BAD_RESPONSE. GW_E_LIMIT beyond
 * GW_PHTTP_MAX_TOOL_CALLS calls or GW_PHTTP_MAX_CONTENT bytes of arguments. */
gw_err gw_phttp_tool(gw_phttp_call *c, int key, const char *id, const char *name, const char *args,
                     size_t args_len);
/* Usage as plain counts; a negative count is not reported, one of 2^30 or
 * more is reported as 2^30 - 1 (so prompt + completion fits the int32 total). */
void gw_phttp_usage_counts(gw_phttp_call *c, int64_t prompt, int64_t completion);
/* The provider's safety filter blocked the prompt or the answer (reason as
 * the provider names it, e.g. SAFETY): the call ends with
 * GW_E_PROVIDER_CONTENT_BLOCKED and finish_reason "content_filter" once the
 * answer is complete (a stream still needs its terminator), whatever text
 * came before. */
void gw_phttp_blocked(gw_phttp_call *c, const char *reason);
/* A retry delay the provider gave in its error body (used when no
 * Retry-After header gave one). */
void gw_phttp_retry_after(gw_phttp_call *c, int64_t ms);
/* The dialect's end-of-stream marker was seen. */
void gw_phttp_terminated(gw_phttp_call *c);
/* An error reported inside a 200 stream/body: keep its text (redacted) as the detail. */
gw_err gw_phttp_inband_error(gw_phttp_call *c, json_t *err);

/* Finish reasons of every dialect to "stop" | "length" | "content_filter" | "tool_calls". */
const char *gw_phttp_normalise_finish(const char *raw);
/* HTTP status (+ body for 400) to gw_err. */
gw_err gw_phttp_map_status(int status, const char *body, size_t len);
/* The messages array of req, with the system prompt first when
 * include_system. ASSISTANT messages with tool_calls and TOOL messages with a
 * tool_call_id take the style's tool shapes (OpenAI tool_calls / role tool
 * with tool_call_id; Ollama the same with argument objects and tool_name;
 * Anthropic tool_use blocks and consecutive results as one user turn of
 * tool_result blocks). Other messages: OpenAI shape; Anthropic without
 * system messages and names, "tool" sent as "user". */
void gw_phttp_write_messages(gw_jbuf *j, const gw_request *req, bool include_system,
                             gw_msg_style style);
/* ,"tools":[{"type":"function","function":{...}}] (OpenAI, Ollama); nothing
 * without tools. */
void gw_phttp_write_function_tools(gw_jbuf *j, const gw_request *req);

/* ---- for the unit tests and tests/fuzz/fuzz_dialects.c ---- */

/* One stream event as its framing hands it over: the SSE event name (NULL:
 * none) and data, an NDJSON line (event NULL), or an event stream message's
 * :event-type and JSON payload. data is NUL-terminated at data[len]. */
typedef struct {
    const char *event;
    const char *data;
    size_t len;
} gw_phttp_event;

/* The reading half of a call of kind k for req, without HTTP: a response of
 * status whose body (NUL-terminated at body[len]) arrived whole, or, for a
 * streamed req and a 2xx status, the n events then the end of the stream.
 * The result (and any deltas) reach cbs as a real call's would (ttft and
 * latency 0). GW_E_PROVIDER_NOT_CONFIGURED when k has no dialect or framing
 * for req, GW_E_NOMEM; GW_OK once on_done has run. */
gw_err gw_phttp_replay(const gw_provider_kind_info *k, const gw_deployment *d,
                       const gw_request *req, int status, const char *body, size_t len,
                       const gw_phttp_event *events, size_t n, const gw_provider_cbs *cbs,
                       void *ud);

#endif
