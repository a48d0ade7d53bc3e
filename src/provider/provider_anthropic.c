/*
 * provider_anthropic: the Anthropic Messages dialect (POST /v1/messages).
 * The system prompt (and any system-role message) goes to the top-level
 * "system" field; max_tokens is required (DEFAULT_MAX_TOKENS when the request
 * has none); headers x-api-key and anthropic-version. Stream events:
 * message_start (input tokens), content_block_delta (text), message_delta
 * (stop_reason, output tokens), message_stop (the terminator), ping, error.
 */
#include "provider/provider_anthropic.h"

#include <stdlib.h>
#include <string.h>

enum { DEFAULT_MAX_TOKENS = 1024 };

static json_t *system_text(const gw_request *req)
{
    size_t n = req->system_prompt ? strlen(req->system_prompt) : 0;
    for (size_t i = 0; i < req->message_count; i++)
        if (req->messages[i].role == GW_ROLE_SYSTEM && req->messages[i].content)
            n += strlen(req->messages[i].content) + 2;
    if (n == 0)
        return NULL;
    char *s = malloc(n + 1);
    if (s == NULL)
        return NULL;
    s[0] = '\0';
    if (req->system_prompt)
        strcat(s, req->system_prompt);
    for (size_t i = 0; i < req->message_count; i++) {
        if (req->messages[i].role != GW_ROLE_SYSTEM || !req->messages[i].content)
            continue;
        if (s[0])
            strcat(s, "\n\n");
        strcat(s, req->messages[i].content);
    }
    json_t *j = json_string(s);
    free(s);
    return j;
}

static json_t *build_body(const gw_deployment *d, const gw_request *req)
{
    json_t *root = json_object();
    if (root == NULL)
        return NULL;
    json_object_set_new(root, "model", json_string(d->model ? d->model : ""));
    json_object_set_new(root, "max_tokens",
                        json_integer(req->max_tokens > 0 ? req->max_tokens : DEFAULT_MAX_TOKENS));
    json_t *sys = system_text(req);
    if (sys != NULL)
        json_object_set_new(root, "system", sys);
    json_t *msgs = gw_phttp_messages(req, false);
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        if (role != NULL && strcmp(role, "tool") == 0)
            json_object_set_new(m, "role", json_string("user"));
        json_object_del(m, "name");
    }
    json_object_set_new(root, "messages", msgs);
    json_object_set_new(root, "temperature",
                        json_real(req->temperature > 1 ? 1 : req->temperature));
    if (req->stream)
        json_object_set_new(root, "stream", json_true());
    return root;
}

static gw_err add_headers(gw_phttp_call *c, const gw_deployment *d)
{
    gw_err err = gw_phttp_header(c, "anthropic-version",
                                 d->anthropic_version ? d->anthropic_version : "2023-06-01");
    return err != GW_OK ? err : gw_phttp_auth(c, d, "x-api-key");
}

static gw_err parse_full(gw_phttp_call *c, json_t *root)
{
    const char *type = json_string_value(json_object_get(root, "type"));
    if (type != NULL && strcmp(type, "error") == 0) {
        gw_phttp_inband_error(c, json_object_get(root, "error"));
        return GW_E_PROVIDER_ERROR;
    }
    json_t *content = json_object_get(root, "content");
    if (!json_is_array(content))
        return GW_E_PROVIDER_BAD_RESPONSE;
    size_t i;
    json_t *block;
    json_array_foreach(content, i, block)
    {
        json_t *text = json_object_get(block, "text");
        if (json_is_string(text)) {
            gw_err e = gw_phttp_text(c, json_string_value(text), json_string_length(text));
            if (e != GW_OK)
                return e;
        }
    }
    gw_phttp_finish(c, json_string_value(json_object_get(root, "stop_reason")));
    json_t *u = json_object_get(root, "usage");
    gw_phttp_usage(c, json_object_get(u, "input_tokens"), json_object_get(u, "output_tokens"));
    return GW_OK;
}

static gw_err on_event(gw_phttp_call *c, const char *event, json_t *data)
{
    const char *type = json_string_value(json_object_get(data, "type"));
    if (type == NULL)
        type = event;
    if (strcmp(type, "error") == 0)
        return gw_phttp_inband_error(c, json_object_get(data, "error"));
    if (strcmp(type, "message_start") == 0) {
        json_t *u = json_object_get(json_object_get(data, "message"), "usage");
        gw_phttp_usage(c, json_object_get(u, "input_tokens"), NULL);
    } else if (strcmp(type, "content_block_delta") == 0) {
        json_t *text = json_object_get(json_object_get(data, "delta"), "text");
        if (json_is_string(text))
            return gw_phttp_text(c, json_string_value(text), json_string_length(text));
    } else if (strcmp(type, "message_delta") == 0) {
        gw_phttp_finish(
            c, json_string_value(json_object_get(json_object_get(data, "delta"), "stop_reason")));
        json_t *u = json_object_get(data, "usage");
        gw_phttp_usage(c, json_object_get(u, "input_tokens"), json_object_get(u, "output_tokens"));
    } else if (strcmp(type, "message_stop") == 0) {
        gw_phttp_terminated(c);
    }
    return GW_OK; /* ping, content_block_start/stop and unknown events */
}

const gw_phttp_dialect gw_anthropic_dialect = {
    .name = "anthropic",
    .path = "/v1/messages",
    .ndjson = false,
    .build_body = build_body,
    .add_headers = add_headers,
    .parse_full = parse_full,
    .on_event = on_event,
};
