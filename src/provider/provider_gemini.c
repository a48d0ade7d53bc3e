/*
 * provider_gemini: the Google Gemini API dialect (POST
 * {base}/v1beta/models/{model}:generateContent, and
 * :streamGenerateContent?alt=sse for streams). The key goes in
 * x-goog-api-key (the row's auth), never in the URL.
 *
 * Request: system prompt and system-role messages joined into
 * systemInstruction; user / assistant messages as contents with roles user /
 * model and text parts (empty ones are left out: Gemini refuses empty text),
 * messages of one role in a row sharing one turn; ASSISTANT tool calls as
 * functionCall parts (args an object; for Gemini 3 models the first of a turn
 * with Google's placeholder thoughtSignature); TOOL results as
 * functionResponse parts of a user turn, named after the call they answer
 * (its name from the ASSISTANT message holding the tool_call_id, else the
 * message's own name), the response being the result when it is a JSON
 * object, else {"output": text}. temperature, max_tokens,
 * top_p, stop, seed and response_format go in generationConfig
 * (responseMimeType application/json, responseSchema); tools as one
 * functionDeclarations entry; tool_choice as
 * toolConfig.functionCallingConfig (AUTO / ANY / NONE, allowedFunctionNames
 * for a named tool). response_format with tools is PROVIDER_UNSUPPORTED
 * (Gemini refuses a JSON mime type with function calling).
 *
 * Answer: candidates[0].content.parts, text (thought parts skipped) and
 * functionCall (whole, ids call_<n> made up when Gemini gives none);
 * finishReason STOP, MAX_TOKENS, and the safety reasons that end the call
 * with PROVIDER_CONTENT_BLOCKED (finish content_filter), as does
 * promptFeedback.blockReason; usageMetadata promptTokenCount and
 * candidatesTokenCount (+ thoughtsTokenCount, billed as output). A stream is
 * SSE, one partial GenerateContentResponse per event, with no terminator
 * event: the chunk holding a finishReason (or a prompt block) ends it.
 */
#include "provider/provider_gemini.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- URL ---- */

gw_err gw_gemini_url(const gw_provider_kind_info *k, const gw_deployment *d, bool stream, char *out,
                     size_t len)
{
    (void)k;
    if (d->base_url == NULL || d->base_url[0] == '\0' || d->model == NULL || d->model[0] == '\0')
        return GW_E_PROVIDER_NOT_CONFIGURED;
    size_t bl = strlen(d->base_url);
    while (bl > 0 && d->base_url[bl - 1] == '/')
        bl--;
    if (bl >= 7 && memcmp(d->base_url + bl - 7, "/v1beta", 7) == 0)
        bl -= 7;
    const char *model = strncmp(d->model, "models/", 7) == 0 ? d->model + 7 : d->model;
    if (model[0] == '\0')
        return GW_E_PROVIDER_NOT_CONFIGURED;
    int n = snprintf(out, len, "%.*s/v1beta/models/", (int)bl, d->base_url);
    if (n < 0 || (size_t)n >= len)
        return GW_E_CONFIG;
    size_t at = (size_t)n;
    if (!gw_provider_url_escape(out, len, &at, model))
        return GW_E_CONFIG;
    n = snprintf(out + at, len - at, "%s",
                 stream ? ":streamGenerateContent?alt=sse" : ":generateContent");
    return n < 0 || (size_t)n >= len - at ? GW_E_CONFIG : GW_OK;
}

/* ---- request ---- */

static bool has_text(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* systemInstruction: the system prompt and system-role messages, joined by
 * blank lines; nothing when there is no such text. */
static void write_system(gw_jbuf *j, const gw_request *req)
{
    bool any = has_text(req->system_prompt);
    for (size_t i = 0; !any && i < req->message_count; i++)
        any = req->messages[i].role == GW_ROLE_SYSTEM && has_text(req->messages[i].content);
    if (!any)
        return;
    gw_jbuf_lit(j, ",\"systemInstruction\":{\"parts\":[{\"text\":\"");
    bool text = false;
    if (has_text(req->system_prompt)) {
        gw_jbuf_str_part(j, req->system_prompt);
        text = true;
    }
    for (size_t i = 0; i < req->message_count; i++) {
        const gw_message *m = &req->messages[i];
        if (m->role != GW_ROLE_SYSTEM || !has_text(m->content))
            continue;
        gw_jbuf_lit(j, text ? "\\n\\n" : "");
        gw_jbuf_str_part(j, m->content);
        text = true;
    }
    gw_jbuf_lit(j, "\"}]}");
}

/* The name of the call id answers: from the nearest earlier ASSISTANT
 * message holding it; NULL when none does. */
static const char *call_name(const gw_request *req, size_t before, const char *id)
{
    for (size_t i = before; i-- > 0;) {
        const gw_message *m = &req->messages[i];
        for (size_t k = 0; m->role == GW_ROLE_ASSISTANT && k < m->tool_call_count; k++)
            if (m->tool_calls[k].id != NULL && strcmp(m->tool_calls[k].id, id) == 0)
                return m->tool_calls[k].name;
    }
    return NULL;
}

/* The contents being written: messages of one role in a row share one turn
 * (Gemini wants user and model turns to alternate). */
typedef struct {
    const char *role; /* the open turn's role; NULL before the first */
    size_t parts;     /* parts written in it */
    bool sign;        /* replayed calls need a thought signature (Gemini 3) */
} turns;

/* Continue the open turn when it has role, else close it and open one;
 * then the separator before the next part. */
static void part_of(gw_jbuf *j, turns *t, const char *role)
{
    if (t->role == NULL || strcmp(t->role, role) != 0) {
        gw_jbuf_lit(j, t->role != NULL ? "]},{\"role\":\"" : "{\"role\":\"");
        gw_jbuf_lit(j, role);
        gw_jbuf_lit(j, "\",\"parts\":[");
        t->role = role;
        t->parts = 0;
    }
    gw_jbuf_lit(j, t->parts++ > 0 ? "," : "");
}

static void write_text(gw_jbuf *j, turns *t, const char *role, const char *text)
{
    part_of(j, t, role);
    gw_jbuf_lit(j, "{\"text\":");
    gw_jbuf_str(j, text);
    gw_jbuf_lit(j, "}");
}

/* An ASSISTANT message with calls: its text, then functionCall parts. The
 * first call of a turn carries Google's documented placeholder signature
 * when t->sign: the real one was not kept, and Gemini 3 refuses a replayed
 * call without any. */
static void write_calls(gw_jbuf *j, turns *t, const gw_message *m)
{
    if (has_text(m->content))
        write_text(j, t, "model", m->content);
    for (size_t i = 0; i < m->tool_call_count; i++) {
        const gw_tool_call *c = &m->tool_calls[i];
        part_of(j, t, "model");
        gw_jbuf_lit(j, "{\"functionCall\":{\"name\":");
        gw_jbuf_str(j, c->name);
        gw_jbuf_lit(j, ",\"args\":");
        gw_jbuf_json(j, has_text(c->arguments) ? c->arguments : "{}", true);
        gw_jbuf_lit(j, t->sign && i == 0 ? "},\"thoughtSignature\":\"" GW_GEMINI_SKIP_SIGNATURE
                                           "\"}"
                                         : "}}");
    }
}

static bool is_result(const gw_message *m)
{
    return m->role == GW_ROLE_TOOL && m->tool_call_id != NULL;
}

/* A result as a functionResponse.response object. */
static void write_result_value(gw_jbuf *j, const char *content)
{
    json_error_t je;
    json_t *v = has_text(content) ? json_loads(content, 0, &je) : NULL;
    bool object = json_is_object(v);
    json_decref(v);
    if (object) {
        gw_jbuf_json(j, content, true);
        return;
    }
    gw_jbuf_lit(j, "{\"output\":");
    gw_jbuf_str(j, content ? content : "");
    gw_jbuf_lit(j, "}");
}

/* TOOL message i as a functionResponse part of a user turn, named after the
 * call it answers. */
static void write_result(gw_jbuf *j, turns *t, const gw_request *req, size_t i)
{
    const gw_message *m = &req->messages[i];
    const char *name = call_name(req, i, m->tool_call_id);
    if (name == NULL)
        name = m->name;
    if (!has_text(name) && j->err == GW_OK)
        j->err = GW_E_INVALID_REQUEST; /* a functionResponse needs the function's name */
    part_of(j, t, "user");
    gw_jbuf_lit(j, "{\"functionResponse\":{\"name\":");
    gw_jbuf_str(j, name);
    gw_jbuf_lit(j, ",\"response\":");
    write_result_value(j, m->content);
    gw_jbuf_lit(j, "}}");
}

/* Model names of the Gemini 3 family ("gemini-3-pro-preview",
 * "gemini-3.1-flash"; a "models/" prefix allowed). */
static bool needs_signature(const char *model)
{
    if (model != NULL && strncmp(model, "models/", 7) == 0)
        model += 7;
    return model != NULL && strncmp(model, "gemini-3", 8) == 0 &&
           (model[8] == '-' || model[8] == '.' || model[8] == '\0');
}

static void write_contents(gw_jbuf *j, const gw_deployment *d, const gw_request *req)
{
    turns t = {.sign = needs_signature(d->model)};
    gw_jbuf_lit(j, "\"contents\":[");
    for (size_t i = 0; i < req->message_count; i++) {
        const gw_message *m = &req->messages[i];
        if (m->role == GW_ROLE_ASSISTANT && m->tool_call_count > 0)
            write_calls(j, &t, m);
        else if (is_result(m))
            write_result(j, &t, req, i);
        else if (m->role != GW_ROLE_SYSTEM && has_text(m->content))
            write_text(j, &t, m->role == GW_ROLE_ASSISTANT ? "model" : "user", m->content);
    }
    gw_jbuf_lit(j, t.role != NULL ? "]}]" : "]");
}

static void write_tools(gw_jbuf *j, const gw_request *req)
{
    if (req->tool_count == 0)
        return;
    gw_jbuf_lit(j, ",\"tools\":[{\"functionDeclarations\":[");
    for (size_t i = 0; i < req->tool_count; i++) {
        const gw_tool *t = &req->tools[i];
        gw_jbuf_lit(j, i ? ",{\"name\":" : "{\"name\":");
        gw_jbuf_str(j, t->name);
        if (t->description != NULL) {
            gw_jbuf_lit(j, ",\"description\":");
            gw_jbuf_str(j, t->description);
        }
        if (t->parameters != NULL) { /* none: Gemini refuses an object without properties */
            gw_jbuf_lit(j, ",\"parameters\":");
            gw_jbuf_json(j, t->parameters, true);
        }
        gw_jbuf_lit(j, "}");
    }
    gw_jbuf_lit(j, "]}]");
    switch (gw_phttp_tool_mode(req)) {
    case GW_TOOLS_NONE:
        gw_jbuf_lit(j, ",\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"NONE\"}}");
        break;
    case GW_TOOLS_AUTO:
        if (req->tool_choice != NULL)
            gw_jbuf_lit(j, ",\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"AUTO\"}}");
        break;
    case GW_TOOLS_REQUIRED:
        gw_jbuf_lit(j, ",\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"ANY\"}}");
        break;
    case GW_TOOLS_NAMED:
        gw_jbuf_lit(j, ",\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"ANY\","
                       "\"allowedFunctionNames\":[");
        gw_jbuf_str(j, req->tool_choice);
        gw_jbuf_lit(j, "]}}");
        break;
    }
}

static void write_generation_config(gw_jbuf *j, const gw_request *req)
{
    gw_jbuf_lit(j, ",\"generationConfig\":{\"temperature\":");
    gw_jbuf_real(j, req->temperature);
    if (req->max_tokens > 0) {
        gw_jbuf_lit(j, ",\"maxOutputTokens\":");
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
    gw_jbuf_lit(j, req->stop_count > 0 ? "]" : "");
    if (req->has_seed) {
        gw_jbuf_lit(j, ",\"seed\":");
        gw_jbuf_int(j, req->seed);
    }
    const gw_response_format *f = req->response_format;
    if (f != NULL && strcmp(f->type, "text") != 0) {
        gw_jbuf_lit(j, ",\"responseMimeType\":\"application/json\"");
        if (strcmp(f->type, "json_schema") == 0) {
            gw_jbuf_lit(j, ",\"responseSchema\":");
            gw_jbuf_json(j, f->schema, true);
        }
    }
    gw_jbuf_lit(j, "}");
}

static void write_body(gw_jbuf *j, const gw_deployment *d, const gw_request *req)
{
    const gw_response_format *f = req->response_format;
    if (f != NULL && strcmp(f->type, "text") != 0 && req->tool_count > 0 && j->err == GW_OK)
        j->err = GW_E_PROVIDER_UNSUPPORTED; /* a JSON mime type with function calling */
    gw_jbuf_lit(j, "{");
    write_contents(j, d, req); /* the model itself is in the URL */
    write_system(j, req);
    write_tools(j, req);
    write_generation_config(j, req);
    gw_jbuf_lit(j, "}");
}

/* ---- answer ---- */

const char *gw_gemini_finish(const char *raw, size_t len, bool *blocked)
{
    static const char *const safety[] = {"SAFETY", "RECITATION",  "BLOCKLIST", "PROHIBITED_CONTENT",
                                         "SPII",   "IMAGE_SAFETY"};
    *blocked = false;
    for (size_t i = 0; i < sizeof safety / sizeof safety[0]; i++) {
        if (strlen(safety[i]) == len && memcmp(raw, safety[i], len) == 0) {
            *blocked = true;
            return "content_filter";
        }
    }
    if (len == 10 && memcmp(raw, "MAX_TOKENS", 10) == 0)
        return "length";
    return "stop";
}

static bool is_malformed_call(const char *raw, size_t len)
{
    return len == 23 && memcmp(raw, "MALFORMED_FUNCTION_CALL", 23) == 0;
}

/* A token count as reported (has: an integer was there), kept within
 * 0..INT32_MAX so that a sum of two never overflows. */
static int64_t bounded(bool has, int64_t v)
{
    return !has ? 0 : v < 0 ? 0 : v > INT32_MAX ? INT32_MAX : v;
}

/* Usage: promptTokenCount; candidatesTokenCount plus thoughtsTokenCount
 * (thinking is billed as output). Both answer paths report through here. */
static void report_usage(gw_phttp_call *c, bool has_p, int64_t p, bool has_o, int64_t o, bool has_t,
                         int64_t t)
{
    gw_phttp_usage_counts(c, has_p ? bounded(true, p) : -1,
                          has_o || has_t ? bounded(has_o, o) + bounded(has_t, t) : -1);
}

static void read_usage(gw_phttp_call *c, json_t *u)
{
    if (!json_is_object(u))
        return;
    json_t *p = json_object_get(u, "promptTokenCount");
    json_t *o = json_object_get(u, "candidatesTokenCount");
    json_t *t = json_object_get(u, "thoughtsTokenCount");
    report_usage(c, json_is_integer(p), json_integer_value(p), json_is_integer(o),
                 json_integer_value(o), json_is_integer(t), json_integer_value(t));
}

static gw_err read_parts(gw_phttp_call *c, json_t *parts)
{
    size_t i;
    json_t *part;
    json_array_foreach(parts, i, part)
    {
        json_t *text = json_object_get(part, "text");
        json_t *call = json_object_get(part, "functionCall");
        gw_err e = GW_OK;
        if (json_is_object(call)) {
            json_t *args = json_object_get(call, "args");
            char *a = args != NULL ? json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
            e = gw_phttp_tool(c, -1, json_string_value(json_object_get(call, "id")),
                              json_string_value(json_object_get(call, "name")), a ? a : "",
                              a ? strlen(a) : 0);
            free(a);
        } else if (json_is_string(text) && !json_is_true(json_object_get(part, "thought"))) {
            e = gw_phttp_text(c, json_string_value(text), json_string_length(text));
        }
        if (e != GW_OK)
            return e;
    }
    return GW_OK;
}

/* One GenerateContentResponse: the whole answer (full) or a stream chunk. */
static gw_err read_response(gw_phttp_call *c, json_t *root, bool full)
{
    json_t *err = json_object_get(root, "error");
    if (err != NULL && !json_is_null(err)) {
        gw_phttp_inband_error(c, err);
        return full ? GW_E_PROVIDER_ERROR : GW_E_STREAM_ERROR;
    }
    read_usage(c, json_object_get(root, "usageMetadata"));
    json_t *block = json_object_get(json_object_get(root, "promptFeedback"), "blockReason");
    if (json_is_string(block)) {
        gw_phttp_blocked(c, json_string_value(block));
        gw_phttp_terminated(c);
        return GW_OK;
    }
    json_t *cand = json_array_get(json_object_get(root, "candidates"), 0);
    if (!json_is_object(cand))
        return full ? GW_E_PROVIDER_BAD_RESPONSE : GW_OK; /* a chunk of usage only */
    gw_err e = read_parts(c, json_object_get(json_object_get(cand, "content"), "parts"));
    json_t *fr = json_object_get(cand, "finishReason");
    if (e != GW_OK || !json_is_string(fr))
        return e;
    const char *raw = json_string_value(fr);
    size_t len = json_string_length(fr);
    if (is_malformed_call(raw, len)) {
        gw_phttp_inband_error(c, fr);
        return full ? GW_E_PROVIDER_BAD_RESPONSE : GW_E_STREAM_ERROR;
    }
    bool blocked;
    const char *finish = gw_gemini_finish(raw, len, &blocked);
    if (blocked)
        gw_phttp_blocked(c, raw);
    gw_phttp_finish(c, finish);
    gw_phttp_terminated(c);
    return GW_OK;
}

static gw_err parse_full(gw_phttp_call *c, json_t *root)
{
    return read_response(c, root, true);
}

static gw_err on_event(gw_phttp_call *c, const char *event, json_t *data)
{
    (void)event;
    return read_response(c, data, false);
}

/* ---- text chunks without a jansson tree (same answers; see jscan.h) ---- */

enum {
    F_ERROR,
    F_BLOCK,
    F_CAND,
    F_TEXT,
    F_PART1,
    F_CALL0,
    F_THOUGHT,
    F_FINISH,
    F_PROMPT,
    F_OUT,
    F_THOUGHTS,
    F__COUNT
};

static bool absent_or(const gw_jscan_field *f, gw_json_kind also)
{
    return f->kind == GW_JSON_ABSENT || f->kind == also;
}

/* Only the common shape is taken here: one text part (not a thought, no
 * call), a finish reason that is not a block; anything else goes to the
 * tree. */
static gw_err apply_raw(gw_phttp_call *c, const char *doc, size_t len, bool *handled)
{
    gw_jscan_field f[F__COUNT] = {
        [F_ERROR] = {.path = {"error"}},
        [F_BLOCK] = {.path = {"promptFeedback", "blockReason"}},
        [F_CAND] = {.path = {"candidates", "#0"}},
        [F_TEXT] = {.path = {"candidates", "#0", "content", "parts", "#0", "text"}},
        [F_PART1] = {.path = {"candidates", "#0", "content", "parts", "#1"}},
        [F_CALL0] = {.path = {"candidates", "#0", "content", "parts", "#0", "functionCall"}},
        [F_THOUGHT] = {.path = {"candidates", "#0", "content", "parts", "#0", "thought"}},
        [F_FINISH] = {.path = {"candidates", "#0", "finishReason"}},
        [F_PROMPT] = {.path = {"usageMetadata", "promptTokenCount"}},
        [F_OUT] = {.path = {"usageMetadata", "candidatesTokenCount"}},
        [F_THOUGHTS] = {.path = {"usageMetadata", "thoughtsTokenCount"}},
    };
    if (gw_jscan(doc, len, f, F__COUNT) != GW_JSCAN_OK || !absent_or(&f[F_ERROR], GW_JSON_NULL) ||
        f[F_BLOCK].kind != GW_JSON_ABSENT || f[F_CAND].kind != GW_JSON_OBJECT ||
        f[F_TEXT].kind != GW_JSON_STRING || f[F_PART1].kind != GW_JSON_ABSENT ||
        f[F_CALL0].kind != GW_JSON_ABSENT || !absent_or(&f[F_THOUGHT], GW_JSON_FALSE) ||
        !absent_or(&f[F_FINISH], GW_JSON_STRING) || f[F_FINISH].escaped)
        return GW_OK;
    bool blocked = false;
    const char *finish = NULL;
    if (f[F_FINISH].kind == GW_JSON_STRING) {
        finish = gw_gemini_finish(f[F_FINISH].raw, f[F_FINISH].raw_len, &blocked);
        if (blocked || is_malformed_call(f[F_FINISH].raw, f[F_FINISH].raw_len))
            return GW_OK;
    }
    *handled = true;
    gw_err e = gw_phttp_text_field(c, &f[F_TEXT]);
    if (e != GW_OK)
        return e;
    report_usage(c, f[F_PROMPT].kind == GW_JSON_INTEGER, f[F_PROMPT].integer,
                 f[F_OUT].kind == GW_JSON_INTEGER, f[F_OUT].integer,
                 f[F_THOUGHTS].kind == GW_JSON_INTEGER, f[F_THOUGHTS].integer);
    if (finish != NULL) {
        gw_phttp_finish(c, finish);
        gw_phttp_terminated(c);
    }
    return GW_OK;
}

static gw_err parse_full_raw(gw_phttp_call *c, const char *doc, size_t len, bool *handled)
{
    return apply_raw(c, doc, len, handled);
}

static gw_err on_event_raw(gw_phttp_call *c, const char *event, const char *doc, size_t len,
                           bool *handled)
{
    (void)event;
    return apply_raw(c, doc, len, handled);
}

/* ---- errors ---- */

static bool contains(const char *s, size_t n, const char *needle)
{
    size_t l = strlen(needle);
    for (size_t i = 0; s != NULL && i + l <= n; i++)
        if (memcmp(s + i, needle, l) == 0)
            return true;
    return false;
}

int64_t gw_gemini_retry_delay_ms(const char *body, size_t len)
{
    static const char key[] = "\"retryDelay\"";
    size_t kl = sizeof key - 1, i = 0;
    while (i + kl <= len && memcmp(body + i, key, kl) != 0)
        i++;
    if (i + kl > len)
        return -1;
    for (i += kl; i < len && (body[i] == ' ' || body[i] == ':' || body[i] == '"'); i++)
        ;
    int64_t whole = 0, frac_ms = 0, scale = 100;
    size_t digits = 0;
    for (; i < len && body[i] >= '0' && body[i] <= '9' && digits < 7; i++, digits++)
        whole = whole * 10 + (body[i] - '0');
    if (digits == 0)
        return -1;
    if (i < len && body[i] == '.')
        for (i++; i < len && body[i] >= '0' && body[i] <= '9'; i++, scale /= 10)
            frac_ms += scale > 0 ? (body[i] - '0') * scale : 0;
    if (i >= len || body[i] != 's' || whole > 86400)
        return -1;
    return whole * 1000 + frac_ms;
}

static gw_err map_status(gw_phttp_call *c, int status, const char *body, size_t len)
{
    if (status == 429)
        gw_phttp_retry_after(c, gw_gemini_retry_delay_ms(body, len));
    if (status == 400 &&
        (contains(body, len, "API_KEY_INVALID") || contains(body, len, "API key not valid")))
        return GW_E_PROVIDER_AUTH;
    if (status == 400 && contains(body, len, "exceeds the maximum number of tokens"))
        return GW_E_PROVIDER_CONTEXT_LENGTH;
    return gw_phttp_map_status(status, body, len);
}

const gw_phttp_dialect gw_gemini_dialect = {
    .name = "gemini",
    .write_body = write_body,
    .parse_full = parse_full,
    .on_event = on_event,
    .parse_full_raw = parse_full_raw,
    .on_event_raw = on_event_raw,
    .map_status = map_status,
};
