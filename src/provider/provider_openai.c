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

static json_t *build_body(const gw_deployment *d, const gw_request *req)
{
    json_t *root = json_object();
    if (root == NULL)
        return NULL;
    json_object_set_new(root, "model", json_string(d->model ? d->model : ""));
    json_object_set_new(root, "messages", gw_phttp_messages(req, true));
    json_object_set_new(root, "temperature", json_real(req->temperature));
    if (req->max_tokens > 0)
        json_object_set_new(root, "max_tokens", json_integer(req->max_tokens));
    if (req->stream) {
        json_object_set_new(root, "stream", json_true());
        json_object_set_new(root, "stream_options", json_pack("{s:b}", "include_usage", 1));
    }
    return root;
}

static gw_err add_headers(gw_phttp_call *c, const gw_deployment *d)
{
    return gw_phttp_auth(c, d, "Authorization");
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

const gw_phttp_dialect gw_openai_dialect = {
    .name = "openai",
    .path = "/v1/chat/completions",
    .ndjson = false,
    .build_body = build_body,
    .add_headers = add_headers,
    .parse_full = parse_full,
    .on_event = on_event,
};
