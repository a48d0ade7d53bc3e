/*
 * provider_anthropic: the Anthropic Messages dialect (POST /v1/messages).
 * The system prompt (and any system-role message) goes to the top-level
 * "system" field; max_tokens is required (DEFAULT_MAX_TOKENS when the request
 * has none); the anthropic-version header (the deployment's, else the row's
 * options); the key goes in x-api-key (the row's auth). Stream events:
 * message_start (input tokens), content_block_delta (text), message_delta
 * (stop_reason, output tokens), message_stop (the terminator), ping, error.
 */
#include "provider/provider_anthropic.h"

#include <string.h>

enum { DEFAULT_MAX_TOKENS = 1024 };

/* The system prompt and any system-role messages, joined by blank lines;
 * no field when there is none. */
static void write_system(gw_jbuf *j, const gw_request *req)
{
    bool any = req->system_prompt != NULL && req->system_prompt[0] != '\0';
    for (size_t i = 0; !any && i < req->message_count; i++)
        any = req->messages[i].role == GW_ROLE_SYSTEM && req->messages[i].content != NULL;
    if (!any)
        return;
    gw_jbuf_lit(j, ",\"system\":\"");
    bool text = false; /* something non-empty written */
    if (req->system_prompt != NULL) {
        gw_jbuf_str_part(j, req->system_prompt);
        text = req->system_prompt[0] != '\0';
    }
    for (size_t i = 0; i < req->message_count; i++) {
        const gw_message *m = &req->messages[i];
        if (m->role != GW_ROLE_SYSTEM || m->content == NULL)
            continue;
        if (text)
            gw_jbuf_lit(j, "\\n\\n");
        gw_jbuf_str_part(j, m->content);
        text = text || m->content[0] != '\0';
    }
    gw_jbuf_lit(j, "\"");
}

static void write_body(gw_jbuf *j, const gw_deployment *d, const gw_request *req)
{
    gw_jbuf_lit(j, "{\"model\":");
    gw_jbuf_str(j, d->model);
    gw_jbuf_lit(j, ",\"max_tokens\":");
    gw_jbuf_int(j, req->max_tokens > 0 ? req->max_tokens : DEFAULT_MAX_TOKENS);
    write_system(j, req);
    gw_jbuf_lit(j, ",\"messages\":");
    gw_phttp_write_messages(j, req, false, true);
    gw_jbuf_lit(j, ",\"temperature\":");
    gw_jbuf_real(j, req->temperature > 1 ? 1 : req->temperature);
    if (req->stream)
        gw_jbuf_lit(j, ",\"stream\":true");
    gw_jbuf_lit(j, "}");
}

const gw_anthropic_options gw_anthropic_default_options = {.version = "2023-06-01"};

static gw_err add_headers(gw_phttp_call *c, const gw_deployment *d)
{
    const gw_anthropic_options *o = gw_phttp_kind(c)->options;
    const char *version = d->anthropic_version ? d->anthropic_version
                          : o != NULL          ? o->version
                                               : gw_anthropic_default_options.version;
    return gw_phttp_header(c, "anthropic-version", version);
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

/* ---- stream events without a jansson tree (same answers; see jscan.h) ---- */

enum { F_TYPE, F_START_IN, F_TEXT, F_STOP, F_IN, F_OUT, F__COUNT };

static bool type_is(const char *type, size_t n, const char *name)
{
    return strlen(name) == n && memcmp(type, name, n) == 0;
}

static gw_err on_event_raw(gw_phttp_call *c, const char *event, const char *doc, size_t len,
                           bool *handled)
{
    gw_jscan_field f[F__COUNT] = {
        [F_TYPE] = {.path = {"type"}},
        [F_START_IN] = {.path = {"message", "usage", "input_tokens"}},
        [F_TEXT] = {.path = {"delta", "text"}},
        [F_STOP] = {.path = {"delta", "stop_reason"}},
        [F_IN] = {.path = {"usage", "input_tokens"}},
        [F_OUT] = {.path = {"usage", "output_tokens"}},
    };
    if (gw_jscan(doc, len, f, F__COUNT) != GW_JSCAN_OK || f[F_TYPE].escaped)
        return GW_OK; /* not handled: jansson decides */
    const char *type = f[F_TYPE].raw;
    size_t tl = f[F_TYPE].raw_len;
    if (f[F_TYPE].kind != GW_JSON_STRING) {
        type = event;
        tl = strlen(event);
    }
    if (type_is(type, tl, "error"))
        return GW_OK; /* the in-band error path keeps its text */
    *handled = true;
    if (type_is(type, tl, "message_start")) {
        gw_phttp_usage_fields(c, &f[F_START_IN], NULL);
    } else if (type_is(type, tl, "content_block_delta")) {
        return gw_phttp_text_field(c, &f[F_TEXT]);
    } else if (type_is(type, tl, "message_delta")) {
        gw_phttp_finish_field(c, &f[F_STOP]);
        gw_phttp_usage_fields(c, &f[F_IN], &f[F_OUT]);
    } else if (type_is(type, tl, "message_stop")) {
        gw_phttp_terminated(c);
    }
    return GW_OK;
}

const gw_phttp_dialect gw_anthropic_dialect = {
    .name = "anthropic",
    .write_body = write_body,
    .add_headers = add_headers,
    .parse_full = parse_full,
    .on_event = on_event,
    .on_event_raw = on_event_raw,
};
