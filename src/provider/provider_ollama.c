/*
 * provider_ollama: the Ollama chat dialect (POST /api/chat). Streams are
 * NDJSON, one object per line; the last has "done": true with done_reason,
 * prompt_eval_count and eval_count (the token counts). Ollama streams by
 * default, so "stream" is always sent explicitly. Optional Bearer auth for
 * Ollama behind a proxy. Tools go as "tools" (OpenAI's shape); tool calls
 * come back whole in message.tool_calls with arguments as an object and no
 * ids (ids are made up: call_0, call_1, ...); Ollama has no tool_choice, so
 * "required" or a named tool is PROVIDER_UNSUPPORTED and "none" sends no
 * tools. response_format: "format": "json" or the JSON Schema itself.
 */
#include "provider/provider_ollama.h"

#include <stdlib.h>
#include <string.h>

static void write_body(gw_jbuf *j, const gw_deployment *d, const gw_request *req)
{
    gw_tool_mode mode = gw_phttp_tool_mode(req);
    if ((mode == GW_TOOLS_REQUIRED || mode == GW_TOOLS_NAMED) && j->err == GW_OK)
        j->err = GW_E_PROVIDER_UNSUPPORTED; /* Ollama has no tool_choice */
    gw_jbuf_lit(j, "{\"model\":");
    gw_jbuf_str(j, d->model);
    gw_jbuf_lit(j, ",\"messages\":");
    gw_phttp_write_messages(j, req, true, GW_MSGS_OLLAMA);
    gw_jbuf_lit(j, req->stream ? ",\"stream\":true" : ",\"stream\":false");
    if (mode != GW_TOOLS_NONE)
        gw_phttp_write_function_tools(j, req);
    const gw_response_format *f = req->response_format;
    if (f != NULL && strcmp(f->type, "json_object") == 0) {
        gw_jbuf_lit(j, ",\"format\":\"json\"");
    } else if (f != NULL && strcmp(f->type, "json_schema") == 0) {
        gw_jbuf_lit(j, ",\"format\":");
        gw_jbuf_json(j, f->schema, true);
    }
    gw_jbuf_lit(j, ",\"options\":{\"temperature\":");
    gw_jbuf_real(j, req->temperature);
    if (req->max_tokens > 0) {
        gw_jbuf_lit(j, ",\"num_predict\":");
        gw_jbuf_int(j, req->max_tokens);
    }
    if (req->has_top_p) {
        gw_jbuf_lit(j, ",\"top_p\":");
        gw_jbuf_real(j, req->top_p);
    }
    if (req->has_seed) {
        gw_jbuf_lit(j, ",\"seed\":");
        gw_jbuf_int(j, req->seed);
    }
    if (req->stop_count > 0) {
        gw_jbuf_lit(j, ",\"stop\":[");
        for (size_t i = 0; i < req->stop_count; i++) {
            gw_jbuf_lit(j, i ? "," : "");
            gw_jbuf_str(j, req->stop[i]);
        }
        gw_jbuf_lit(j, "]");
    }
    gw_jbuf_lit(j, "}}");
}

/* message.tool_calls: whole calls, arguments as an object, no ids. */
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
        char *text = json_is_string(args) ? NULL
                     : args != NULL       ? json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY)
                                          : NULL;
        const char *a = json_is_string(args) ? json_string_value(args) : text ? text : "";
        gw_err e = gw_phttp_tool(c, -1, json_string_value(json_object_get(tc, "id")),
                                 json_string_value(json_object_get(fn, "name")), a, strlen(a));
        free(text);
        if (e != GW_OK)
            return e;
    }
    return GW_OK;
}

static gw_err read_object(gw_phttp_call *c, json_t *o)
{
    json_t *err = json_object_get(o, "error");
    if (err != NULL && !json_is_null(err))
        return gw_phttp_inband_error(c, err);
    json_t *msg = json_object_get(o, "message");
    json_t *content = json_object_get(msg, "content");
    if (json_is_string(content)) {
        gw_err e = gw_phttp_text(c, json_string_value(content), json_string_length(content));
        if (e != GW_OK)
            return e;
    }
    gw_err e = read_tool_calls(c, json_object_get(msg, "tool_calls"));
    if (e != GW_OK)
        return e;
    if (json_is_true(json_object_get(o, "done"))) {
        gw_phttp_finish(c, json_string_value(json_object_get(o, "done_reason")));
        gw_phttp_usage(c, json_object_get(o, "prompt_eval_count"),
                       json_object_get(o, "eval_count"));
        gw_phttp_terminated(c);
    }
    return GW_OK;
}

static gw_err parse_full(gw_phttp_call *c, json_t *root)
{
    if (!json_is_object(json_object_get(root, "message")))
        return json_object_get(root, "error") ? GW_E_PROVIDER_ERROR : GW_E_PROVIDER_BAD_RESPONSE;
    gw_err err = read_object(c, root);
    return err == GW_E_STREAM_ERROR ? GW_E_PROVIDER_ERROR : err;
}

static gw_err on_event(gw_phttp_call *c, const char *event, json_t *data)
{
    return read_object(c, data);
}

const gw_phttp_dialect gw_ollama_dialect = {
    .name = "ollama",
    .write_body = write_body,
    .parse_full = parse_full,
    .on_event = on_event,
};
