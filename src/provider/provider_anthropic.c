/*
 * provider_anthropic: the Anthropic Messages dialect (POST /v1/messages).
 * The system prompt (and any system-role message) goes to the top-level
 * "system" field; max_tokens is required (DEFAULT_MAX_TOKENS when the request
 * has none); the anthropic-version header (the deployment's, else the row's
 * options); the key goes in x-api-key (the row's auth). Stream events:
 * message_start (input tokens), content_block_start (a tool_use block),
 * content_block_delta (text, or a tool's input_json_delta piece),
 * message_delta (stop_reason, output tokens), message_stop (the terminator),
 * ping, error. Tools go as tools[].input_schema; tool_choice auto / any
 * (required) / tool (named) / none; ASSISTANT tool calls as tool_use blocks and
 * TOOL results as tool_result blocks of a user turn. response_format has no
 * native form: a json_response tool with the schema is forced and its input
 * is the answer text (with tools as well, PROVIDER_UNSUPPORTED). No seed.
 */
#include "provider/provider_anthropic.h"

#include <stdlib.h>
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

/* The tool that carries a structured answer (json_object / json_schema):
 * Anthropic has no response_format, so the request forces a call of this
 * tool with the schema as its input_schema, and its input is the answer. */
#define FORMAT_TOOL "json_response"

static const char *format_tool(const gw_request *req)
{
    const gw_response_format *f = req->response_format;
    if (f == NULL || strcmp(f->type, "text") == 0)
        return NULL;
    return FORMAT_TOOL;
}

static void write_tool(gw_jbuf *j, const char *name, const char *desc, const char *schema)
{
    gw_jbuf_lit(j, "{\"name\":");
    gw_jbuf_str(j, name);
    if (desc != NULL) {
        gw_jbuf_lit(j, ",\"description\":");
        gw_jbuf_str(j, desc);
    }
    gw_jbuf_lit(j, ",\"input_schema\":");
    gw_jbuf_json(j, schema ? schema : GW_PHTTP_EMPTY_SCHEMA, true);
    gw_jbuf_lit(j, "}");
}

static void write_tools(gw_jbuf *j, const gw_request *req)
{
    const gw_response_format *f = req->response_format;
    if (format_tool(req) != NULL) {
        if (req->tool_count > 0 && j->err == GW_OK) {
            /* the forced format tool would take the caller's tool_choice */
            j->err = GW_E_PROVIDER_UNSUPPORTED;
            return;
        }
        gw_jbuf_lit(j, ",\"tools\":[");
        write_tool(j, FORMAT_TOOL, "Answer with this tool; its input is the answer.",
                   strcmp(f->type, "json_schema") == 0 ? f->schema : "{\"type\":\"object\"}");
        gw_jbuf_lit(j, "],\"tool_choice\":{\"type\":\"tool\",\"name\":\"" FORMAT_TOOL "\"}");
        return;
    }
    if (req->tool_count == 0)
        return;
    gw_jbuf_lit(j, ",\"tools\":[");
    for (size_t i = 0; i < req->tool_count; i++) {
        gw_jbuf_lit(j, i ? "," : "");
        write_tool(j, req->tools[i].name, req->tools[i].description, req->tools[i].parameters);
    }
    gw_jbuf_lit(j, "]");
    switch (gw_phttp_tool_mode(req)) {
    case GW_TOOLS_NONE:
        gw_jbuf_lit(j, ",\"tool_choice\":{\"type\":\"none\"}");
        break;
    case GW_TOOLS_AUTO:
        if (req->tool_choice != NULL)
            gw_jbuf_lit(j, ",\"tool_choice\":{\"type\":\"auto\"}");
        break;
    case GW_TOOLS_REQUIRED:
        gw_jbuf_lit(j, ",\"tool_choice\":{\"type\":\"any\"}");
        break;
    case GW_TOOLS_NAMED:
        gw_jbuf_lit(j, ",\"tool_choice\":{\"type\":\"tool\",\"name\":");
        gw_jbuf_str(j, req->tool_choice);
        gw_jbuf_lit(j, "}");
        break;
    }
}

static void write_body(gw_jbuf *j, const gw_deployment *d, const gw_request *req)
{
    gw_jbuf_lit(j, "{\"model\":");
    gw_jbuf_str(j, d->model);
    gw_jbuf_lit(j, ",\"max_tokens\":");
    gw_jbuf_int(j, req->max_tokens > 0 ? req->max_tokens : DEFAULT_MAX_TOKENS);
    write_system(j, req);
    gw_jbuf_lit(j, ",\"messages\":");
    gw_phttp_write_messages(j, req, false, GW_MSGS_ANTHROPIC);
    gw_jbuf_lit(j, ",\"temperature\":");
    gw_jbuf_real(j, req->temperature > 1 ? 1 : req->temperature);
    write_tools(j, req);
    if (req->stop_count > 0) {
        gw_jbuf_lit(j, ",\"stop_sequences\":[");
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
    /* seed: Anthropic has none; not sent (OpenAI's is best effort too) */
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

/* A tool_use block: whole (its input object) or the start of a streamed one
 * (input_json_delta pieces follow). */
static gw_err read_tool_use(gw_phttp_call *c, int block, json_t *b, bool whole)
{
    char *input =
        whole ? json_dumps(json_object_get(b, "input"), JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    gw_err e = gw_phttp_tool(c, block, json_string_value(json_object_get(b, "id")),
                             json_string_value(json_object_get(b, "name")), input ? input : "",
                             input ? strlen(input) : 0);
    free(input);
    return e;
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
        const char *btype = json_string_value(json_object_get(block, "type"));
        gw_err e = GW_OK;
        if (btype != NULL && strcmp(btype, "tool_use") == 0)
            e = read_tool_use(c, (int)i, block, true);
        else if (json_is_string(text))
            e = gw_phttp_text(c, json_string_value(text), json_string_length(text));
        if (e != GW_OK)
            return e;
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
    } else if (strcmp(type, "content_block_start") == 0) {
        json_t *b = json_object_get(data, "content_block");
        const char *btype = json_string_value(json_object_get(b, "type"));
        json_t *index = json_object_get(data, "index");
        if (btype != NULL && strcmp(btype, "tool_use") == 0) {
            if (!json_is_integer(index) || json_integer_value(index) < 0 ||
                json_integer_value(index) >= 1 << 20)
                return GW_E_STREAM_ERROR;
            return read_tool_use(c, (int)json_integer_value(index), b, false);
        }
    } else if (strcmp(type, "content_block_delta") == 0) {
        json_t *delta = json_object_get(data, "delta");
        json_t *text = json_object_get(delta, "text");
        json_t *part = json_object_get(delta, "partial_json");
        json_t *index = json_object_get(data, "index");
        if (json_is_string(part)) {
            if (!json_is_integer(index) || json_integer_value(index) < 0 ||
                json_integer_value(index) >= 1 << 20)
                return GW_E_STREAM_ERROR;
            return gw_phttp_tool(c, (int)json_integer_value(index), NULL, NULL,
                                 json_string_value(part), json_string_length(part));
        }
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

enum { F_TYPE, F_START_IN, F_TEXT, F_STOP, F_IN, F_OUT, F_PARTIAL, F_BLOCK, F__COUNT };

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
        [F_PARTIAL] = {.path = {"delta", "partial_json"}},
        [F_BLOCK] = {.path = {"content_block", "type"}},
    };
    if (gw_jscan(doc, len, f, F__COUNT) != GW_JSCAN_OK || f[F_TYPE].escaped)
        return GW_OK; /* not handled: jansson decides */
    const char *type = f[F_TYPE].raw;
    size_t tl = f[F_TYPE].raw_len;
    if (f[F_TYPE].kind != GW_JSON_STRING) {
        type = event;
        tl = strlen(event);
    }
    if (type_is(type, tl, "error") || f[F_PARTIAL].kind != GW_JSON_ABSENT ||
        f[F_BLOCK].kind != GW_JSON_ABSENT)
        return GW_OK; /* the in-band error path keeps its text; tool blocks take the tree path */
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
    .format_tool = format_tool,
};
