/*
 * provider_openai: the OpenAI Chat Completions dialect (POST
 * /v1/chat/completions), which every OpenAI-compatible server also speaks
 * (vLLM, llama.cpp server, LM Studio, Groq, Together...). Auth is
 * "Authorization: Bearer <key>" unless the deployment names another header;
 * extra headers come from the deployment. Streams are SSE ending with
 * "data: [DONE]"; usage comes in the last chunk (stream_options.include_usage).
 * Tools go as "tools" (type function), tool_choice as the string or
 * {"type":"function","function":{"name":...}}; response_format as OpenAI's
 * json_object / json_schema; tool calls come back in message.tool_calls (or
 * delta.tool_calls pieces keyed by index), their arguments a JSON string.
 * The deployment's quirk bits (openai_quirks, from its preset or quirks
 * list) rename or refuse the few fields some compatible servers reject.
 */
#include "provider/provider_openai.h"

#include <string.h>

#include "provider/openai_scan.h"

static void write_tool_choice(gw_jbuf *j, const gw_request *req, uint32_t quirks)
{
    if (req->tool_count == 0 || req->tool_choice == NULL)
        return;
    gw_jbuf_lit(j, ",\"tool_choice\":");
    if ((quirks & GW_QUIRK_REQUIRED_AS_ANY) && strcmp(req->tool_choice, "required") == 0) {
        gw_jbuf_str(j, "any");
    } else if (gw_phttp_tool_mode(req) == GW_TOOLS_NAMED) {
        gw_jbuf_lit(j, "{\"type\":\"function\",\"function\":{\"name\":");
        gw_jbuf_str(j, req->tool_choice);
        gw_jbuf_lit(j, "}}");
    } else {
        gw_jbuf_str(j, req->tool_choice);
    }
}

static void write_response_format(gw_jbuf *j, const gw_request *req, uint32_t quirks)
{
    const gw_response_format *f = req->response_format;
    if (f == NULL)
        return;
    bool schema = strcmp(f->type, "json_schema") == 0, object = strcmp(f->type, "json_object") == 0;
    if (((schema && (quirks & GW_QUIRK_NO_JSON_SCHEMA)) ||
         (object && (quirks & GW_QUIRK_NO_JSON_OBJECT))) &&
        j->err == GW_OK) {
        j->err = GW_E_PROVIDER_UNSUPPORTED; /* the server rejects it: the next deployment */
        return;
    }
    if (schema) {
        gw_jbuf_lit(j, ",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":");
        gw_jbuf_str(j, f->name ? f->name : "response");
        gw_jbuf_lit(j, ",\"schema\":");
        gw_jbuf_json(j, f->schema, true);
        gw_jbuf_lit(j, f->strict ? ",\"strict\":true}}" : ",\"strict\":false}}");
    } else if (object) {
        gw_jbuf_lit(j, ",\"response_format\":{\"type\":\"json_object\"}");
    } else if (strcmp(f->type, "text") != 0 && j->err == GW_OK) {
        j->err = GW_E_INVALID_REQUEST; /* validated earlier; never sent unknown */
    }
}

/* stop, top_p, seed. */
static void write_sampling(gw_jbuf *j, const gw_request *req, uint32_t quirks)
{
    if (req->stop_count > 0) {
        gw_jbuf_lit(j, ",\"stop\":[");
        for (size_t i = 0; i < req->stop_count; i++) {
            gw_jbuf_lit(j, i ? "," : "");
            gw_jbuf_str(j, req->stop[i]);
        }
        gw_jbuf_lit(j, "]");
    }
    if (req->has_top_p) {
        gw_jbuf_lit(j, ",\"top_p\":");
        gw_jbuf_real(j, req->top_p);
    }
    if (req->has_seed) {
        gw_jbuf_lit(j, quirks & GW_QUIRK_RANDOM_SEED ? ",\"random_seed\":" : ",\"seed\":");
        gw_jbuf_int(j, req->seed);
    }
}

/* d->openai_quirks (the deployment's preset or quirks list) change a few
 * fields for servers that reject OpenAI's; see provider_preset.def. */
static void write_body(gw_jbuf *j, const gw_deployment *d, const gw_request *req)
{
    uint32_t quirks = d->openai_quirks;
    gw_jbuf_lit(j, "{\"model\":");
    gw_jbuf_str(j, d->model);
    gw_jbuf_lit(j, ",\"messages\":");
    gw_phttp_write_messages(j, req, true, GW_MSGS_OPENAI);
    gw_jbuf_lit(j, ",\"temperature\":");
    gw_jbuf_real(j, req->temperature);
    if (req->max_tokens > 0) {
        gw_jbuf_lit(j, quirks & GW_QUIRK_MAX_COMPLETION_TOKENS ? ",\"max_completion_tokens\":"
                                                               : ",\"max_tokens\":");
        gw_jbuf_int(j, req->max_tokens);
    }
    gw_phttp_write_function_tools(j, req);
    write_tool_choice(j, req, quirks);
    write_response_format(j, req, quirks);
    write_sampling(j, req, quirks);
    if (req->stream)
        gw_jbuf_lit(j, quirks & GW_QUIRK_NO_STREAM_OPTIONS
                           ? ",\"stream\":true"
                           : ",\"stream\":true,\"stream_options\":{\"include_usage\":true}");
    gw_jbuf_lit(j, "}");
}

static void read_usage(gw_phttp_call *c, json_t *usage)
{
    if (json_is_object(usage))
        gw_phttp_usage(c, json_object_get(usage, "prompt_tokens"),
                       json_object_get(usage, "completion_tokens"));
}

/* tool_calls of a message (whole) or of a delta (pieces, by index). */
static gw_err read_tool_calls(gw_phttp_call *c, json_t *calls)
{
    if (calls == NULL || json_is_null(calls))
        return GW_OK;
    if (!json_is_array(calls))
        return GW_E_PROVIDER_BAD_RESPONSE;
    size_t i;
    json_t *tc;
    json_array_foreach(calls, i, tc)
    {
        json_t *fn = json_object_get(tc, "function");
        json_t *args = json_object_get(fn, "arguments");
        json_t *index = json_object_get(tc, "index");
        int key = json_is_integer(index) ? (int)json_integer_value(index) : (int)i;
        if (key < 0 || key >= 1 << 20)
            return GW_E_PROVIDER_BAD_RESPONSE;
        gw_err e = gw_phttp_tool(c, key, json_string_value(json_object_get(tc, "id")),
                                 json_string_value(json_object_get(fn, "name")),
                                 json_is_string(args) ? json_string_value(args) : "",
                                 json_is_string(args) ? json_string_length(args) : 0);
        if (e != GW_OK)
            return e;
    }
    return GW_OK;
}

static gw_err parse_full(gw_phttp_call *c, json_t *root)
{
    json_t *err = json_object_get(root, "error");
    if (err != NULL && !json_is_null(err)) {
        gw_phttp_inband_error(c, err);
        return GW_E_PROVIDER_ERROR;
    }
    json_t *choice = json_array_get(json_object_get(root, "choices"), 0);
    json_t *msg = json_object_get(choice, "message");
    json_t *content = json_object_get(msg, "content");
    if (!json_is_object(msg) || !(json_is_string(content) || json_is_null(content)))
        return GW_E_PROVIDER_BAD_RESPONSE;
    gw_err e = gw_phttp_text(c, json_string_value(content) ? json_string_value(content) : "",
                             json_string_length(content));
    if (e == GW_OK)
        e = read_tool_calls(c, json_object_get(msg, "tool_calls"));
    if (e != GW_OK)
        return e;
    gw_phttp_finish(c, json_string_value(json_object_get(choice, "finish_reason")));
    read_usage(c, json_object_get(root, "usage"));
    return GW_OK;
}

static gw_err on_event(gw_phttp_call *c, const char *event, json_t *data)
{
    json_t *err = json_object_get(data, "error");
    if (err != NULL && !json_is_null(err))
        return gw_phttp_inband_error(c, err);
    json_t *choice = json_array_get(json_object_get(data, "choices"), 0);
    if (choice != NULL) {
        json_t *delta = json_object_get(choice, "delta");
        json_t *content = json_object_get(delta, "content");
        if (json_is_string(content)) {
            gw_err e = gw_phttp_text(c, json_string_value(content), json_string_length(content));
            if (e != GW_OK)
                return e;
        }
        gw_err e = read_tool_calls(c, json_object_get(delta, "tool_calls"));
        if (e != GW_OK)
            return e;
        gw_phttp_finish(c, json_string_value(json_object_get(choice, "finish_reason")));
    }
    read_usage(c, json_object_get(data, "usage"));
    return GW_OK;
}

/* ---- fast paths without a jansson tree (same answers; see jscan.h) ---- */

/* The fields: openai_scan's one-pass reader, or gw_jscan with the same paths
 * when it falls back (which may fall back to jansson in turn). */
static gw_jscan_result scan_fields(const char *doc, size_t len, const char *msg_key,
                                   gw_jscan_field f[GW_OAI__COUNT], gw_openai_prefix *prefix)
{
    if (gw_openai_scan(doc, len, msg_key, f, prefix) == GW_JSCAN_OK)
        return GW_JSCAN_OK;
    static const char *const paths[GW_OAI__COUNT][GW_JSCAN_MAX_PATH] = {
        [GW_OAI_ERROR] = {"error"},
        [GW_OAI_CHOICE] = {"choices", "#0"},
        [GW_OAI_MSG] = {"choices", "#0", NULL},
        [GW_OAI_TEXT] = {"choices", "#0", NULL, "content"},
        [GW_OAI_FINISH] = {"choices", "#0", "finish_reason"},
        [GW_OAI_PROMPT] = {"usage", "prompt_tokens"},
        [GW_OAI_COMPLETION] = {"usage", "completion_tokens"},
        [GW_OAI_TOOLS] = {"choices", "#0", NULL, "tool_calls"},
    };
    for (size_t i = 0; i < GW_OAI__COUNT; i++) {
        memcpy(f[i].path, paths[i], sizeof f[i].path);
        if (i == GW_OAI_MSG || i == GW_OAI_TEXT || i == GW_OAI_TOOLS)
            f[i].path[2] = msg_key;
    }
    return gw_jscan(doc, len, f, GW_OAI__COUNT);
}

_Static_assert(sizeof(gw_openai_prefix) <= GW_PHTTP_MEMO_BYTES, "the prefix fits the call's memo");

/* A streamed event resumes after the opening bytes it shares with the one
 * before (openai_scan.h); a whole answer is one document. */
static gw_err apply_raw(gw_phttp_call *c, const char *doc, size_t len, const char *msg_key,
                        bool full, bool *handled)
{
    gw_jscan_field f[GW_OAI__COUNT];
    gw_openai_prefix *prefix = full ? NULL : gw_phttp_memo(c);
    if (scan_fields(doc, len, msg_key, f, prefix) != GW_JSCAN_OK ||
        (f[GW_OAI_ERROR].kind != GW_JSON_ABSENT && f[GW_OAI_ERROR].kind != GW_JSON_NULL) ||
        (f[GW_OAI_TOOLS].kind != GW_JSON_ABSENT && f[GW_OAI_TOOLS].kind != GW_JSON_NULL))
        return GW_OK; /* not handled: jansson decides (tool calls take the tree path) */
    *handled = true;
    if (full && (f[GW_OAI_MSG].kind != GW_JSON_OBJECT ||
                 (f[GW_OAI_TEXT].kind != GW_JSON_STRING && f[GW_OAI_TEXT].kind != GW_JSON_NULL)))
        return GW_E_PROVIDER_BAD_RESPONSE;
    if (f[GW_OAI_CHOICE].kind != GW_JSON_ABSENT || full) {
        gw_err e = gw_phttp_text_field(c, &f[GW_OAI_TEXT]);
        if (e != GW_OK)
            return e;
        gw_phttp_finish_field(c, &f[GW_OAI_FINISH]);
    }
    gw_phttp_usage_fields(c, &f[GW_OAI_PROMPT], &f[GW_OAI_COMPLETION]);
    return GW_OK;
}

static gw_err parse_full_raw(gw_phttp_call *c, const char *doc, size_t len, bool *handled)
{
    return apply_raw(c, doc, len, "message", true, handled);
}

static gw_err on_event_raw(gw_phttp_call *c, const char *event, const char *doc, size_t len,
                           bool *handled)
{
    (void)event;
    return apply_raw(c, doc, len, "delta", false, handled);
}

const gw_phttp_dialect gw_openai_dialect = {
    .name = "openai",
    .write_body = write_body,
    .parse_full = parse_full,
    .on_event = on_event,
    .parse_full_raw = parse_full_raw,
    .on_event_raw = on_event_raw,
};
