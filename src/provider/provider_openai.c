/*
 * provider_openai: the OpenAI Chat Completions dialect (POST
 * /v1/chat/completions), which every OpenAI-compatible server also speaks
 * (vLLM, llama.cpp server, LM Studio, Groq, Together...). Auth is
 * "Authorization: Bearer <key>" unless the deployment names another header;
 * extra headers come from the deployment. Streams are SSE ending with
 * "data: [DONE]"; usage comes in the last chunk (stream_options.include_usage).
 */
#include "provider/provider_openai.h"

#include <string.h>

static void write_body(gw_jbuf *j, const gw_deployment *d, const gw_request *req)
{
    gw_jbuf_lit(j, "{\"model\":");
    gw_jbuf_str(j, d->model);
    gw_jbuf_lit(j, ",\"messages\":");
    gw_phttp_write_messages(j, req, true, false);
    gw_jbuf_lit(j, ",\"temperature\":");
    gw_jbuf_real(j, req->temperature);
    if (req->max_tokens > 0) {
        gw_jbuf_lit(j, ",\"max_tokens\":");
        gw_jbuf_int(j, req->max_tokens);
    }
    if (req->stream)
        gw_jbuf_lit(j, ",\"stream\":true,\"stream_options\":{\"include_usage\":true}");
    gw_jbuf_lit(j, "}");
}

static void read_usage(gw_phttp_call *c, json_t *usage)
{
    if (json_is_object(usage))
        gw_phttp_usage(c, json_object_get(usage, "prompt_tokens"),
                       json_object_get(usage, "completion_tokens"));
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
        json_t *content = json_object_get(json_object_get(choice, "delta"), "content");
        if (json_is_string(content)) {
            gw_err e = gw_phttp_text(c, json_string_value(content), json_string_length(content));
            if (e != GW_OK)
                return e;
        }
        gw_phttp_finish(c, json_string_value(json_object_get(choice, "finish_reason")));
    }
    read_usage(c, json_object_get(data, "usage"));
    return GW_OK;
}

/* ---- fast paths without a jansson tree (same answers; see jscan.h) ---- */

enum { F_ERROR, F_CHOICE, F_MSG, F_TEXT, F_FINISH, F_PROMPT, F_COMPLETION, F__COUNT };

static gw_err apply_raw(gw_phttp_call *c, const char *doc, size_t len, const char *msg_key,
                        bool full, bool *handled)
{
    gw_jscan_field f[F__COUNT] = {
        [F_ERROR] = {.path = {"error"}},
        [F_CHOICE] = {.path = {"choices", "#0"}},
        [F_MSG] = {.path = {"choices", "#0", msg_key}},
        [F_TEXT] = {.path = {"choices", "#0", msg_key, "content"}},
        [F_FINISH] = {.path = {"choices", "#0", "finish_reason"}},
        [F_PROMPT] = {.path = {"usage", "prompt_tokens"}},
        [F_COMPLETION] = {.path = {"usage", "completion_tokens"}},
    };
    if (gw_jscan(doc, len, f, F__COUNT) != GW_JSCAN_OK ||
        (f[F_ERROR].kind != GW_JSON_ABSENT && f[F_ERROR].kind != GW_JSON_NULL))
        return GW_OK; /* not handled: jansson decides */
    *handled = true;
    if (full && (f[F_MSG].kind != GW_JSON_OBJECT ||
                 (f[F_TEXT].kind != GW_JSON_STRING && f[F_TEXT].kind != GW_JSON_NULL)))
        return GW_E_PROVIDER_BAD_RESPONSE;
    if (f[F_CHOICE].kind != GW_JSON_ABSENT || full) {
        gw_err e = gw_phttp_text_field(c, &f[F_TEXT]);
        if (e != GW_OK)
            return e;
        gw_phttp_finish_field(c, &f[F_FINISH]);
    }
    gw_phttp_usage_fields(c, &f[F_PROMPT], &f[F_COMPLETION]);
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
