/*
 * provider_bedrock: the AWS Bedrock Converse API (POST
 * {base}/model/{modelId}/converse, /converse-stream for a stream).
 *
 * Request: the system prompt and system-role messages as `system` text
 * blocks; the other messages as `messages[{role, content:[blocks]}]` with
 * consecutive messages of one role merged into one turn (Bedrock wants user
 * and assistant turns to alternate): text blocks, an ASSISTANT message's
 * calls as `toolUse {toolUseId, name, input}` blocks, TOOL results as
 * `toolResult {toolUseId, content:[{text}]}` blocks of a user turn;
 * `inferenceConfig {maxTokens, temperature (clamped to 0..1), topP,
 * stopSequences}`; tools as `toolConfig {tools:[{toolSpec:{name,
 * description, inputSchema:{json}}}], toolChoice {auto | any | tool}}`.
 * There is no tool_choice none: its tools are sent without a choice only when
 * the conversation holds tool blocks (Bedrock then requires toolConfig), else
 * nothing. response_format is a forced json_response tool, as for Anthropic.
 * No seed.
 *
 * Answer: output.message.content text and toolUse blocks, stopReason,
 * usage inputTokens / outputTokens. Stream: event stream messages by
 * :event-type (messageStart, contentBlockStart with a toolUse start,
 * contentBlockDelta with delta.text or delta.toolUse.input, contentBlockStop,
 * messageStop with the stopReason: the terminator, metadata with usage);
 * exception messages end the call with the error their type names.
 *
 * Auth: SigV4 computed by sigv4.c (gw_bedrock_sign adds Host, X-Amz-Date,
 * X-Amz-Security-Token and Authorization); a deployment with an api_key
 * sends it as a bearer token instead (Bedrock API keys).
 */
#include "provider/provider_bedrock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "provider/sigv4.h"

/* ---- URL and signing ---- */

const char *gw_bedrock_region(const gw_deployment *d)
{
    const char *r = d->region;
    if (r == NULL || r[0] == '\0')
        r = getenv("AWS_REGION");
    if (r == NULL || r[0] == '\0')
        r = getenv("AWS_DEFAULT_REGION");
    return r != NULL && r[0] != '\0' ? r : NULL;
}

/* A region is letters, digits and '-' only (it goes into a host name). */
static bool region_ok(const char *r)
{
    for (; *r; r++)
        if (!((*r >= 'a' && *r <= 'z') || (*r >= '0' && *r <= '9') || *r == '-'))
            return false;
    return true;
}

gw_err gw_bedrock_url(const gw_provider_kind_info *k, const gw_deployment *d, bool stream,
                      char *out, size_t len)
{
    (void)k;
    if (d->model == NULL || d->model[0] == '\0')
        return GW_E_PROVIDER_NOT_CONFIGURED;
    int n;
    if (d->base_url != NULL && d->base_url[0] != '\0') {
        size_t bl = strlen(d->base_url);
        while (bl > 0 && d->base_url[bl - 1] == '/')
            bl--;
        n = snprintf(out, len, "%.*s/model/", (int)bl, d->base_url);
    } else {
        const char *region = gw_bedrock_region(d);
        if (region == NULL || !region_ok(region))
            return GW_E_PROVIDER_NOT_CONFIGURED;
        n = snprintf(out, len, "https://bedrock-runtime.%s.amazonaws.com/model/", region);
    }
    if (n < 0 || (size_t)n >= len)
        return GW_E_CONFIG;
    size_t at = (size_t)n;
    if (!gw_provider_url_escape(out, len, &at, d->model))
        return GW_E_CONFIG;
    n = snprintf(out + at, len - at, stream ? "/converse-stream" : "/converse");
    return n < 0 || (size_t)n >= len - at ? GW_E_CONFIG : GW_OK;
}

/* The headers SigV4 covers, sorted: host, x-amz-date, x-amz-security-token. */
static gw_err sign_headers(gw_phttp_call *c, const gw_sigv4_input *in)
{
    char auth[GW_SIGV4_AUTH_MAX];
    gw_err err = gw_sigv4_authorization(in, auth, sizeof auth);
    if (err == GW_OK)
        err = gw_phttp_header(c, "Host", in->headers[0].value);
    if (err == GW_OK)
        err = gw_phttp_header(c, "X-Amz-Date", in->amz_date);
    if (err == GW_OK && in->header_count == 3)
        err = gw_phttp_header(c, "X-Amz-Security-Token", in->headers[2].value);
    if (err == GW_OK)
        err = gw_phttp_header(c, "Authorization", auth);
    memset(auth, 0, sizeof auth);
    return err == GW_E_INVALID_REQUEST ? GW_E_PROVIDER_NOT_CONFIGURED : err;
}

gw_err gw_bedrock_sign(const gw_provider_kind_info *k, gw_phttp_call *c, const gw_deployment *d,
                       const char *method, const char *url, const char *body, size_t body_len)
{
    (void)k;
    if (d->api_key != NULL && d->api_key[0] != '\0')
        return GW_OK; /* a Bedrock API key: the bearer header is written already */
    const char *id = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY");
    const char *token = getenv("AWS_SESSION_TOKEN"), *region = gw_bedrock_region(d);
    if (id == NULL || id[0] == '\0' || secret == NULL || secret[0] == '\0' || region == NULL ||
        !region_ok(region))
        return GW_E_PROVIDER_NOT_CONFIGURED;
    char host[256], date[GW_SIGV4_DATE_LEN + 1];
    const char *path, *query;
    size_t path_len;
    if (gw_sigv4_url_parts(url, host, sizeof host, &path, &path_len, &query) != GW_OK ||
        query != NULL)
        return GW_E_PROVIDER_NOT_CONFIGURED; /* a base_url with a query is not signed */
    gw_sigv4_amz_date((int64_t)time(NULL), date);
    gw_sigv4_header hs[3] = {{"host", host, strlen(host)},
                             {"x-amz-date", date, GW_SIGV4_DATE_LEN},
                             {"x-amz-security-token", token, token ? strlen(token) : 0}};
    gw_sigv4_input in = {.method = method,
                         .path = path,
                         .path_len = path_len,
                         .headers = hs,
                         .header_count = token != NULL && token[0] != '\0' ? 3 : 2,
                         .payload = body,
                         .payload_len = body_len,
                         .amz_date = date,
                         .region = region,
                         .service = "bedrock",
                         .key_id = id,
                         .secret = secret};
    return sign_headers(c, &in);
}

/* ---- request ---- */

#define FORMAT_TOOL "json_response"

static const char *format_tool(const gw_request *req)
{
    const gw_response_format *f = req->response_format;
    if (f == NULL || strcmp(f->type, "text") == 0)
        return NULL;
    return FORMAT_TOOL;
}

static void write_text_block(gw_jbuf *j, const char *text, bool *first)
{
    gw_jbuf_lit(j, *first ? "{\"text\":" : ",{\"text\":");
    gw_jbuf_str(j, text);
    gw_jbuf_lit(j, "}");
    *first = false;
}

static void write_system(gw_jbuf *j, const gw_request *req)
{
    bool first = true;
    for (size_t i = 0; i <= req->message_count; i++) {
        const char *t = i == 0                                        ? req->system_prompt
                        : req->messages[i - 1].role == GW_ROLE_SYSTEM ? req->messages[i - 1].content
                                                                      : NULL;
        if (t == NULL || t[0] == '\0')
            continue;
        gw_jbuf_lit(j, first ? ",\"system\":[" : "");
        write_text_block(j, t, &first);
    }
    if (!first)
        gw_jbuf_lit(j, "]");
}

/* The content blocks of one message (appended to the open turn). */
static void write_blocks(gw_jbuf *j, const gw_message *m, bool *first)
{
    if (m->role == GW_ROLE_TOOL && m->tool_call_id != NULL) {
        gw_jbuf_lit(j, *first ? "{\"toolResult\":{\"toolUseId\":"
                              : ",{\"toolResult\":{\"toolUseId\":");
        gw_jbuf_str(j, m->tool_call_id);
        gw_jbuf_lit(j, ",\"content\":[{\"text\":");
        gw_jbuf_str(j, m->content ? m->content : "");
        gw_jbuf_lit(j, "}]}}");
        *first = false;
        return;
    }
    bool calls = m->role == GW_ROLE_ASSISTANT && m->tool_call_count > 0;
    if (m->content != NULL && (m->content[0] != '\0' || !calls))
        write_text_block(j, m->content, first);
    for (size_t i = 0; calls && i < m->tool_call_count; i++) {
        const gw_tool_call *t = &m->tool_calls[i];
        gw_jbuf_lit(j, *first ? "{\"toolUse\":{\"toolUseId\":" : ",{\"toolUse\":{\"toolUseId\":");
        gw_jbuf_str(j, t->id);
        gw_jbuf_lit(j, ",\"name\":");
        gw_jbuf_str(j, t->name);
        gw_jbuf_lit(j, ",\"input\":");
        gw_jbuf_json(j, t->arguments && t->arguments[0] ? t->arguments : "{}", true);
        gw_jbuf_lit(j, "}}");
        *first = false;
    }
    if (*first) /* a message with no text: Bedrock refuses an empty turn */
        write_text_block(j, " ", first);
}

static void write_messages(gw_jbuf *j, const gw_request *req)
{
    gw_jbuf_lit(j, "\"messages\":[");
    int open = -1; /* the role of the open turn: 0 user, 1 assistant */
    bool first = true;
    for (size_t i = 0; i < req->message_count; i++) {
        const gw_message *m = &req->messages[i];
        if (m->role == GW_ROLE_SYSTEM)
            continue;
        int role = m->role == GW_ROLE_ASSISTANT ? 1 : 0;
        if (role != open) {
            if (open >= 0)
                gw_jbuf_lit(j, "]},");
            gw_jbuf_lit(j, role ? "{\"role\":\"assistant\",\"content\":["
                                : "{\"role\":\"user\",\"content\":[");
            open = role;
            first = true;
        }
        write_blocks(j, m, &first);
    }
    gw_jbuf_lit(j, open >= 0 ? "]}]" : "]");
}

static void write_inference(gw_jbuf *j, const gw_request *req)
{
    gw_jbuf_lit(j, ",\"inferenceConfig\":{\"temperature\":");
    gw_jbuf_real(j, req->temperature > 1 ? 1 : req->temperature < 0 ? 0 : req->temperature);
    if (req->max_tokens > 0) {
        gw_jbuf_lit(j, ",\"maxTokens\":");
        gw_jbuf_int(j, req->max_tokens);
    }
    if (req->has_top_p) {
        gw_jbuf_lit(j, ",\"topP\":");
        gw_jbuf_real(j, req->top_p);
    }
    for (size_t i = 0; i < req->stop_count; i++) {
        gw_jbuf_lit(j, i ? "," : ",\"stopSequences\":[");
        gw_jbuf_str(j, req->stop[i]);
    }
    gw_jbuf_lit(j, req->stop_count > 0 ? "]}" : "}");
}

static void write_tool_spec(gw_jbuf *j, const char *name, const char *desc, const char *schema)
{
    gw_jbuf_lit(j, "{\"toolSpec\":{\"name\":");
    gw_jbuf_str(j, name);
    if (desc != NULL) {
        gw_jbuf_lit(j, ",\"description\":");
        gw_jbuf_str(j, desc);
    }
    gw_jbuf_lit(j, ",\"inputSchema\":{\"json\":");
    gw_jbuf_json(j, schema ? schema : GW_PHTTP_EMPTY_SCHEMA, true);
    gw_jbuf_lit(j, "}}}");
}

static bool has_tool_blocks(const gw_request *req)
{
    for (size_t i = 0; i < req->message_count; i++)
        if (req->messages[i].tool_call_count > 0 || req->messages[i].tool_call_id != NULL)
            return true;
    return false;
}

static void write_tools(gw_jbuf *j, const gw_request *req)
{
    const gw_response_format *f = req->response_format;
    if (format_tool(req) != NULL) {
        if (req->tool_count > 0 && j->err == GW_OK) {
            j->err = GW_E_PROVIDER_UNSUPPORTED; /* the forced format tool takes tool_choice */
            return;
        }
        gw_jbuf_lit(j, ",\"toolConfig\":{\"tools\":[");
        write_tool_spec(j, FORMAT_TOOL, "Answer with this tool; its input is the answer.",
                        strcmp(f->type, "json_schema") == 0 ? f->schema : "{\"type\":\"object\"}");
        gw_jbuf_lit(j, "],\"toolChoice\":{\"tool\":{\"name\":\"" FORMAT_TOOL "\"}}}");
        return;
    }
    gw_tool_mode mode = gw_phttp_tool_mode(req);
    if (req->tool_count == 0 || (mode == GW_TOOLS_NONE && !has_tool_blocks(req)))
        return;
    gw_jbuf_lit(j, ",\"toolConfig\":{\"tools\":[");
    for (size_t i = 0; i < req->tool_count; i++) {
        gw_jbuf_lit(j, i ? "," : "");
        write_tool_spec(j, req->tools[i].name, req->tools[i].description, req->tools[i].parameters);
    }
    gw_jbuf_lit(j, "]");
    if (mode == GW_TOOLS_AUTO && req->tool_choice != NULL)
        gw_jbuf_lit(j, ",\"toolChoice\":{\"auto\":{}}");
    else if (mode == GW_TOOLS_REQUIRED)
        gw_jbuf_lit(j, ",\"toolChoice\":{\"any\":{}}");
    else if (mode == GW_TOOLS_NAMED) {
        gw_jbuf_lit(j, ",\"toolChoice\":{\"tool\":{\"name\":");
        gw_jbuf_str(j, req->tool_choice);
        gw_jbuf_lit(j, "}}");
    }
    gw_jbuf_lit(j, "}");
}

static void write_body(gw_jbuf *j, const gw_deployment *d, const gw_request *req)
{
    (void)d; /* the model is in the URL */
    gw_jbuf_lit(j, "{");
    write_messages(j, req);
    write_system(j, req);
    write_inference(j, req);
    write_tools(j, req);
    gw_jbuf_lit(j, "}");
}

/* ---- answers ---- */

/* Bedrock's stop reasons beyond the common ones: a guardrail or the content
 * filter stepping in is a blocked answer (E4214 PROVIDER_CONTENT_BLOCKED,
 * finish reason content_filter), as Gemini's safety blocks are. */
static void finish(gw_phttp_call *c, const char *reason)
{
    if (reason != NULL &&
        (strcmp(reason, "guardrail_intervened") == 0 || strcmp(reason, "content_filtered") == 0)) {
        gw_phttp_blocked(c, reason);
        return;
    }
    gw_phttp_finish(c, reason);
}

static gw_err read_block(gw_phttp_call *c, int index, json_t *block)
{
    json_t *text = json_object_get(block, "text");
    json_t *use = json_object_get(block, "toolUse");
    if (json_is_object(use)) {
        char *input = json_dumps(json_object_get(use, "input"), JSON_COMPACT | JSON_ENCODE_ANY);
        gw_err e = gw_phttp_tool(c, index, json_string_value(json_object_get(use, "toolUseId")),
                                 json_string_value(json_object_get(use, "name")),
                                 input ? input : "", input ? strlen(input) : 0);
        free(input);
        return e;
    }
    if (json_is_string(text))
        return gw_phttp_text(c, json_string_value(text), json_string_length(text));
    return GW_OK; /* reasoning and other blocks are not part of the answer */
}

static gw_err parse_full(gw_phttp_call *c, json_t *root)
{
    json_t *content =
        json_object_get(json_object_get(json_object_get(root, "output"), "message"), "content");
    if (!json_is_array(content))
        return GW_E_PROVIDER_BAD_RESPONSE;
    size_t i;
    json_t *block;
    json_array_foreach(content, i, block)
    {
        gw_err e = read_block(c, (int)i, block);
        if (e != GW_OK)
            return e;
    }
    finish(c, json_string_value(json_object_get(root, "stopReason")));
    json_t *u = json_object_get(root, "usage");
    gw_phttp_usage(c, json_object_get(u, "inputTokens"), json_object_get(u, "outputTokens"));
    return GW_OK;
}

/* contentBlockIndex of a stream event; -1 when missing or out of range. */
static int block_index(json_t *data)
{
    json_t *index = json_object_get(data, "contentBlockIndex");
    if (!json_is_integer(index) || json_integer_value(index) < 0 ||
        json_integer_value(index) >= 1 << 20)
        return -1;
    return (int)json_integer_value(index);
}

static gw_err on_block_event(gw_phttp_call *c, bool start, json_t *data)
{
    int index = block_index(data);
    if (start) {
        json_t *use = json_object_get(json_object_get(data, "start"), "toolUse");
        if (!json_is_object(use))
            return GW_OK;
        if (index < 0)
            return GW_E_STREAM_ERROR;
        return gw_phttp_tool(c, index, json_string_value(json_object_get(use, "toolUseId")),
                             json_string_value(json_object_get(use, "name")), "", 0);
    }
    json_t *delta = json_object_get(data, "delta");
    json_t *text = json_object_get(delta, "text");
    json_t *input = json_object_get(json_object_get(delta, "toolUse"), "input");
    if (json_is_string(input)) {
        if (index < 0)
            return GW_E_STREAM_ERROR;
        return gw_phttp_tool(c, index, NULL, NULL, json_string_value(input),
                             json_string_length(input));
    }
    if (json_is_string(text))
        return gw_phttp_text(c, json_string_value(text), json_string_length(text));
    return GW_OK;
}

static gw_err on_event(gw_phttp_call *c, const char *event, json_t *data)
{
    if (event == NULL || !json_is_object(data))
        return GW_E_STREAM_ERROR;
    if (strcmp(event, "contentBlockStart") == 0)
        return on_block_event(c, true, data);
    if (strcmp(event, "contentBlockDelta") == 0)
        return on_block_event(c, false, data);
    if (strcmp(event, "messageStop") == 0) {
        finish(c, json_string_value(json_object_get(data, "stopReason")));
        gw_phttp_terminated(c);
    } else if (strcmp(event, "metadata") == 0) {
        json_t *u = json_object_get(data, "usage");
        gw_phttp_usage(c, json_object_get(u, "inputTokens"), json_object_get(u, "outputTokens"));
    }
    return GW_OK; /* messageStart, contentBlockStop and unknown events */
}

gw_err gw_bedrock_exception_err(const char *type)
{
    static const struct {
        const char *type;
        gw_err err;
    } map[] = {
        {"throttlingException", GW_E_PROVIDER_RATE_LIMITED},
        {"serviceUnavailableException", GW_E_PROVIDER_UNAVAILABLE},
        {"internalServerException", GW_E_PROVIDER_UNAVAILABLE},
        {"modelStreamErrorException", GW_E_STREAM_ERROR},
        {"modelTimeoutException", GW_E_PROVIDER_TOTAL_TIMEOUT},
        {"validationException", GW_E_PROVIDER_BAD_REQUEST},
        {"accessDeniedException", GW_E_PROVIDER_AUTH},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcasecmp(type, map[i].type) == 0)
            return map[i].err;
    return GW_E_STREAM_ERROR;
}

static gw_err on_exception(gw_phttp_call *c, const char *type, const char *payload, size_t len)
{
    (void)c, (void)payload, (void)len; /* the payload is the detail already */
    return gw_bedrock_exception_err(type);
}

const gw_phttp_dialect gw_bedrock_dialect = {
    .name = "bedrock",
    .write_body = write_body,
    .parse_full = parse_full,
    .on_event = on_event,
    .format_tool = format_tool,
    .on_exception = on_exception,
};
