/*
 * mllm_dialect: request parsing with jansson, answers written with printf
 * (faster than building jansson trees on the mock's hot path). Every string
 * that came from the request is JSON-escaped on the way out.
 */
#include "mockllm/mllm_dialect.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/hash.h"
#include "provider/eventstream.h"

static const char *const vocab[32] = {
    "alpha",  "bravo",  "charlie", "delta", "echo",    "foxtrot",  "golf",    "hotel",
    "india",  "juliet", "kilo",    "lima",  "mike",    "november", "oscar",   "papa",
    "quebec", "romeo",  "sierra",  "tango", "uniform", "victor",   "whiskey", "xray",
    "yankee", "zulu",   "one",     "two",   "three",   "four",     "five",    "six"};

bool gw_mllm_chat_api(const char *dialect, gw_mllm_api *out)
{
    static const struct {
        const char *name;
        gw_mllm_api api;
    } chat[] = {
        {"openai", GW_MLLM_OPENAI},   {"anthropic", GW_MLLM_ANTHROPIC}, {"ollama", GW_MLLM_OLLAMA},
        {"bedrock", GW_MLLM_BEDROCK}, {"gemini", GW_MLLM_GEMINI},
    };
    for (size_t i = 0; dialect != NULL && i < sizeof chat / sizeof chat[0]; i++) {
        if (strcmp(chat[i].name, dialect) == 0) {
            *out = chat[i].api;
            return true;
        }
    }
    return false;
}

static uint64_t mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

/* Text of a message content: a string, or an array of {type:text,text}. */
static void content_text(json_t *content, uint64_t *seed, int *bytes, char *keep, size_t keep_len)
{
    if (json_is_string(content)) {
        const char *s = json_string_value(content);
        size_t n = json_string_length(content);
        *seed = gw_fnv1a64(*seed, s, n);
        *bytes += (int)(n > 1000000 ? 1000000 : n);
        if (keep)
            snprintf(keep, keep_len, "%s", s);
        return;
    }
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part)
    {
        content_text(json_object_get(part, "text"), seed, bytes, keep, keep_len);
        json_t *inner = json_object_get(part, "content"); /* a tool_result block */
        if (json_is_string(inner))
            content_text(inner, seed, bytes, NULL, 0);
    }
}

static void parse_messages(json_t *root, gw_mllm_call *c)
{
    uint64_t seed = 1469598103934665603ULL;
    int tokens = 0;
    json_t *sys = json_object_get(root, "system");
    if (sys != NULL) {
        int b = 0;
        content_text(sys, &seed, &b, NULL, 0);
        tokens += (b + 3) / 4 + 4;
    }
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(root, "messages"), i, m)
    {
        int b = 0;
        const char *role = json_string_value(json_object_get(m, "role"));
        bool user = role != NULL && strcmp(role, "user") == 0;
        content_text(json_object_get(m, "content"), &seed, &b, user ? c->prompt : NULL,
                     sizeof c->prompt);
        tokens += (b + 3) / 4 + 4;
    }
    c->seed = seed;
    c->prompt_tokens = tokens;
}

static int opt_int(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (int)json_integer_value(v) : -1;
}

static gw_err parse_embed_inputs(json_t *root, gw_mllm_call *c, char *errmsg, size_t errlen)
{
    json_t *in = json_object_get(root, "input");
    if (json_is_string(in)) {
        c->input_seeds[0] =
            gw_fnv1a64(1469598103934665603ULL, json_string_value(in), json_string_length(in));
        c->input_count = 1;
        c->prompt_tokens = (int)(json_string_length(in) + 3) / 4;
        snprintf(c->prompt, sizeof c->prompt, "%s", json_string_value(in));
        return GW_OK;
    }
    if (!json_is_array(in) || json_array_size(in) == 0 ||
        json_array_size(in) > GW_MLLM_MAX_INPUTS) {
        snprintf(errmsg, errlen, "'input' must be a string or 1..%d strings", GW_MLLM_MAX_INPUTS);
        return GW_E_INVALID_REQUEST;
    }
    size_t i;
    json_t *s;
    json_array_foreach(in, i, s)
    {
        if (!json_is_string(s)) {
            snprintf(errmsg, errlen, "'input' items must be strings");
            return GW_E_INVALID_REQUEST;
        }
        c->input_seeds[i] =
            gw_fnv1a64(1469598103934665603ULL, json_string_value(s), json_string_length(s));
        c->prompt_tokens += (int)(json_string_length(s) + 3) / 4;
    }
    c->input_count = json_array_size(in);
    return GW_OK;
}

/* A JSON value for schema (deterministic from seed): objects get every
 * property (at most 16, nested at most 4 deep), strings a vocabulary word,
 * integers and numbers a number, booleans true, arrays one item. */
static json_t *gen_value(json_t *schema, uint64_t seed, int depth)
{
    const char *type = json_string_value(json_object_get(schema, "type"));
    json_t *en = json_object_get(schema, "enum");
    if (json_is_array(en) && json_array_size(en) > 0)
        return json_deep_copy(json_array_get(en, seed % json_array_size(en)));
    if (type == NULL)
        type = json_is_object(json_object_get(schema, "properties")) ? "object" : "string";
    if (strcasecmp(type, "object") == 0) {
        json_t *o = json_object();
        const char *k;
        json_t *v;
        int n = 0;
        json_object_foreach(json_object_get(schema, "properties"), k, v)
        {
            if (depth >= 4 || n++ == 16)
                break;
            json_object_set_new(o, k, gen_value(v, mix(seed + (uint64_t)n), depth + 1));
        }
        return o;
    }
    if (strcasecmp(type, "array") == 0) {
        json_t *a = json_array();
        if (depth < 4)
            json_array_append_new(
                a, gen_value(json_object_get(schema, "items"), mix(seed), depth + 1));
        return a;
    }
    if (strcasecmp(type, "integer") == 0)
        return json_integer((json_int_t)(seed % 100));
    if (strcasecmp(type, "number") == 0)
        return json_real((double)(seed % 1000) / 10.0);
    if (strcasecmp(type, "boolean") == 0)
        return json_true();
    if (strcasecmp(type, "null") == 0)
        return json_null();
    return json_string(vocab[seed % 32]);
}

static void set_args(gw_mllm_call *c, json_t *schema)
{
    json_t *v = gen_value(schema, c->seed, 0);
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(v);
    c->tool_args_len = 0;
    c->tool_args[0] = '\0';
    if (text != NULL && strlen(text) < sizeof c->tool_args) {
        c->tool_args_len = strlen(text);
        memcpy(c->tool_args, text, c->tool_args_len + 1);
    } else {
        snprintf(c->tool_args, sizeof c->tool_args, "{}");
        c->tool_args_len = 2;
    }
    free(text);
}

/* The last message answers a tool call (OpenAI/Ollama role tool, Anthropic a
 * user turn holding a tool_result block). */
static bool last_is_tool_result(json_t *root)
{
    json_t *msgs = json_object_get(root, "messages");
    json_t *last = json_array_get(msgs, json_array_size(msgs) - 1);
    const char *role = json_string_value(json_object_get(last, "role"));
    if (role != NULL && strcmp(role, "tool") == 0)
        return true;
    size_t i;
    json_t *part;
    json_array_foreach(json_object_get(last, "content"), i, part)
    {
        const char *t = json_string_value(json_object_get(part, "type"));
        if ((t != NULL && strcmp(t, "tool_result") == 0) || json_object_get(part, "toolResult"))
            return true;
    }
    return false;
}

/* Bedrock: a message holds toolUse or toolResult blocks. */
static bool has_tool_blocks(json_t *root)
{
    size_t i, k;
    json_t *m, *part;
    json_array_foreach(json_object_get(root, "messages"), i, m)
    {
        json_array_foreach(json_object_get(m, "content"), k, part)
        {
            if (json_object_get(part, "toolUse") || json_object_get(part, "toolResult"))
                return true;
        }
    }
    return false;
}

/* Name and parameter schema of tool i in the dialect's shape. */
static const char *tool_at(gw_mllm_api api, json_t *tools, size_t i, json_t **schema)
{
    json_t *t = json_array_get(tools, i);
    if (api == GW_MLLM_BEDROCK) {
        json_t *spec = json_object_get(t, "toolSpec");
        *schema = json_object_get(json_object_get(spec, "inputSchema"), "json");
        return json_string_value(json_object_get(spec, "name"));
    }
    if (api == GW_MLLM_ANTHROPIC) {
        *schema = json_object_get(t, "input_schema");
        return json_string_value(json_object_get(t, "name"));
    }
    json_t *fn = json_object_get(t, "function");
    *schema = json_object_get(fn, "parameters");
    return json_string_value(json_object_get(fn, "name"));
}

/* The forced tool's name; "" for any tool (required/any); NULL for none
 * (tool_choice none); "*" for the model's choice (auto, absent). */
static const char *forced_tool(gw_mllm_api api, json_t *choice)
{
    if (choice == NULL)
        return "*";
    if (json_is_string(choice)) {
        const char *s = json_string_value(choice);
        return strcmp(s, "none") == 0 ? NULL : strcmp(s, "required") == 0 ? "" : "*";
    }
    if (json_object_get(choice, "any") != NULL) /* Bedrock */
        return "";
    if (json_object_get(choice, "tool") != NULL)
        return json_string_value(json_object_get(json_object_get(choice, "tool"), "name"));
    const char *type = json_string_value(json_object_get(choice, "type"));
    if (type == NULL)
        return "*";
    if (strcmp(type, "none") == 0)
        return NULL;
    if (strcmp(type, "any") == 0)
        return "";
    if (strcmp(type, "tool") == 0)
        return json_string_value(json_object_get(choice, "name"));
    if (strcmp(type, "function") == 0)
        return json_string_value(json_object_get(json_object_get(choice, "function"), "name"));
    return "*";
}

static gw_err plan_tools(gw_mllm_api api, json_t *root, gw_mllm_call *c, char *errmsg,
                         size_t errlen)
{
    json_t *tcfg = api == GW_MLLM_BEDROCK ? json_object_get(root, "toolConfig") : root;
    json_t *tools = json_object_get(tcfg, "tools");
    if (api == GW_MLLM_BEDROCK && tcfg == NULL && has_tool_blocks(root)) {
        snprintf(errmsg, errlen,
                 "The toolConfig field must be defined when using toolUse and "
                 "toolResult content blocks.");
        return GW_E_INVALID_REQUEST;
    }
    if (tools != NULL && !json_is_array(tools)) {
        snprintf(errmsg, errlen, "'tools' must be an array");
        return GW_E_INVALID_REQUEST;
    }
    for (size_t i = 0; i < json_array_size(tools); i++) {
        json_t *schema;
        if (tool_at(api, tools, i, &schema) == NULL) {
            snprintf(errmsg, errlen, "tools[%zu]: a name is required", i);
            return GW_E_INVALID_REQUEST;
        }
        if ((api == GW_MLLM_ANTHROPIC || api == GW_MLLM_BEDROCK) && !json_is_object(schema)) {
            snprintf(errmsg, errlen, "tools.%zu.input_schema: Field required", i);
            return GW_E_INVALID_REQUEST;
        }
    }
    const char *forced = forced_tool(
        api, json_object_get(tcfg, api == GW_MLLM_BEDROCK ? "toolChoice" : "tool_choice"));
    if (json_array_size(tools) > 0 && forced != NULL && !last_is_tool_result(root)) {
        size_t pick = 0;
        json_t *schema = NULL;
        if (forced[0] != '\0' && strcmp(forced, "*") != 0) {
            for (pick = 0; pick < json_array_size(tools); pick++) {
                const char *name = tool_at(api, tools, pick, &schema);
                if (strcmp(name, forced) == 0)
                    break;
            }
            if (pick == json_array_size(tools)) {
                snprintf(errmsg, errlen, "tool_choice names a tool that is not in tools");
                return GW_E_INVALID_REQUEST;
            }
        }
        snprintf(c->tool_name, sizeof c->tool_name, "%s", tool_at(api, tools, pick, &schema));
        set_args(c, schema);
        c->tool_call = true;
        return GW_OK;
    }
    /* structured output: OpenAI response_format, Ollama format */
    json_t *rf = json_object_get(root, api == GW_MLLM_OLLAMA ? "format" : "response_format");
    const char *rtype = json_string_value(json_object_get(rf, "type"));
    if (api == GW_MLLM_OLLAMA && json_is_object(rf)) {
        set_args(c, rf);
        c->structured = true;
    } else if (api == GW_MLLM_OLLAMA && json_is_string(rf)) {
        json_t *any = json_pack("{s:s,s:{s:{s:s}}}", "type", "object", "properties", "answer",
                                "type", "string");
        set_args(c, any);
        json_decref(any);
        c->structured = true;
    } else if (rtype != NULL && strcmp(rtype, "json_schema") == 0) {
        json_t *schema = json_object_get(json_object_get(rf, "json_schema"), "schema");
        if (!json_is_object(schema)) {
            snprintf(errmsg, errlen, "response_format.json_schema.schema must be an object");
            return GW_E_INVALID_REQUEST;
        }
        set_args(c, schema);
        c->structured = true;
    } else if (rtype != NULL && strcmp(rtype, "json_object") == 0) {
        json_t *any = json_pack("{s:s,s:{s:{s:s}}}", "type", "object", "properties", "answer",
                                "type", "string");
        set_args(c, any);
        json_decref(any);
        c->structured = true;
    }
    return GW_OK;
}

bool gw_mllm_arg_piece(const gw_mllm_call *c, int i, const char **p, size_t *n)
{
    size_t off = 0;
    for (int k = 0;; k++) {
        if (off >= c->tool_args_len)
            return false;
        size_t end = off + GW_MLLM_ARG_PIECE;
        if (end > c->tool_args_len)
            end = c->tool_args_len;
        while (end < c->tool_args_len && ((unsigned char)c->tool_args[end] & 0xC0) == 0x80)
            end++;
        if (k == i) {
            *p = c->tool_args + off;
            *n = end - off;
            return true;
        }
        off = end;
    }
}

static int arg_pieces(const gw_mllm_call *c)
{
    int n = 0;
    const char *p;
    size_t len;
    while (gw_mllm_arg_piece(c, n, &p, &len))
        n++;
    return n;
}

static gw_err plan_tools(gw_mllm_api api, json_t *root, gw_mllm_call *c, char *errmsg,
                         size_t errlen);

static gw_err parse_bedrock(json_t *root, gw_mllm_call *c, char *errmsg, size_t errlen)
{
    if (!json_is_array(json_object_get(root, "messages"))) {
        snprintf(errmsg, errlen,
                 "1 validation error detected: Value null at 'messages' failed "
                 "to satisfy constraint: Member must not be null");
        return GW_E_INVALID_REQUEST;
    }
    c->max_tokens = opt_int(json_object_get(root, "inferenceConfig"), "maxTokens");
    parse_messages(root, c);
    return plan_tools(GW_MLLM_BEDROCK, root, c, errmsg, errlen);
}

/* ---- Gemini (generateContent): contents / parts, functionDeclarations ---- */

/* Hashes the text parts of one Gemini content (and functionResponse
 * bodies); keeps the text when keep is given. */
static void gemini_parts(json_t *parts, uint64_t *seed, int *bytes, char *keep, size_t keep_len)
{
    size_t i;
    json_t *part;
    json_array_foreach(parts, i, part)
    {
        content_text(json_object_get(part, "text"), seed, bytes, keep, keep_len);
        json_t *resp = json_object_get(part, "functionResponse");
        char *t = resp != NULL ? json_dumps(resp, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        if (t != NULL) {
            *seed = gw_fnv1a64(*seed, t, strlen(t));
            *bytes += (int)strlen(t);
            free(t);
        }
    }
}

static void gemini_messages(json_t *root, gw_mllm_call *c)
{
    uint64_t seed = 1469598103934665603ULL;
    int tokens = 0, b = 0;
    json_t *sys = json_object_get(root, "systemInstruction");
    if (sys != NULL) {
        gemini_parts(json_object_get(sys, "parts"), &seed, &b, NULL, 0);
        tokens += (b + 3) / 4 + 4;
    }
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(root, "contents"), i, m)
    {
        b = 0;
        const char *role = json_string_value(json_object_get(m, "role"));
        bool user = role == NULL || strcmp(role, "user") == 0;
        gemini_parts(json_object_get(m, "parts"), &seed, &b, user ? c->prompt : NULL,
                     sizeof c->prompt);
        tokens += (b + 3) / 4 + 4;
    }
    c->seed = seed;
    c->prompt_tokens = tokens;
}

static bool gemini_last_is_result(json_t *root)
{
    json_t *contents = json_object_get(root, "contents");
    json_t *last = json_array_get(contents, json_array_size(contents) - 1);
    size_t i;
    json_t *part;
    json_array_foreach(json_object_get(last, "parts"), i,
                       part) if (json_object_get(part, "functionResponse") != NULL) return true;
    return false;
}

/* Every functionDeclaration of every tools entry, as one array (new reference). */
static json_t *gemini_decls(json_t *root)
{
    json_t *all = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(root, "tools"), i, t)
    {
        json_t *d = json_object_get(t, "functionDeclarations");
        if (json_is_array(d))
            json_array_extend(all, d);
    }
    return all;
}

/* As forced_tool: the named (allowedFunctionNames[0]) tool, "" for ANY,
 * NULL for NONE, "*" for AUTO or nothing said. */
static const char *gemini_forced(json_t *root)
{
    json_t *fc = json_object_get(json_object_get(root, "toolConfig"), "functionCallingConfig");
    const char *mode = json_string_value(json_object_get(fc, "mode"));
    if (mode == NULL || strcasecmp(mode, "AUTO") == 0)
        return "*";
    if (strcasecmp(mode, "NONE") == 0)
        return NULL;
    const char *name =
        json_string_value(json_array_get(json_object_get(fc, "allowedFunctionNames"), 0));
    return name != NULL ? name : "";
}

static gw_err gemini_plan(json_t *root, gw_mllm_call *c, char *errmsg, size_t errlen)
{
    json_t *decls = gemini_decls(root);
    const char *forced = gemini_forced(root);
    gw_err err = GW_OK;
    size_t n = json_array_size(decls), pick = 0;
    for (size_t i = 0; i < n && err == GW_OK; i++) {
        if (json_string_value(json_object_get(json_array_get(decls, i), "name")) == NULL) {
            snprintf(errmsg, errlen, "tools[0].function_declarations[%zu].name: required", i);
            err = GW_E_INVALID_REQUEST;
        }
        if (err == GW_OK && forced != NULL && forced[0] != '\0' && strcmp(forced, "*") != 0 &&
            strcmp(json_string_value(json_object_get(json_array_get(decls, i), "name")), forced) ==
                0)
            pick = i + 1;
    }
    if (err == GW_OK && n > 0 && forced != NULL && !gemini_last_is_result(root)) {
        bool named = forced[0] != '\0' && strcmp(forced, "*") != 0;
        if (named && pick == 0) {
            snprintf(errmsg, errlen, "allowedFunctionNames names no function declaration");
            err = GW_E_INVALID_REQUEST;
        } else {
            json_t *d = json_array_get(decls, named ? pick - 1 : 0);
            snprintf(c->tool_name, sizeof c->tool_name, "%s",
                     json_string_value(json_object_get(d, "name")));
            set_args(c, json_object_get(d, "parameters"));
            c->tool_call = true;
        }
    }
    json_decref(decls);
    json_t *gc = json_object_get(root, "generationConfig");
    const char *mime = json_string_value(json_object_get(gc, "responseMimeType"));
    if (err == GW_OK && !c->tool_call && mime != NULL && strcmp(mime, "application/json") == 0) {
        json_t *schema = json_object_get(gc, "responseSchema");
        json_t *any = json_pack("{s:s,s:{s:{s:s}}}", "type", "object", "properties", "answer",
                                "type", "string");
        set_args(c, json_is_object(schema) ? schema : any);
        json_decref(any);
        c->structured = true;
    }
    return err;
}

static gw_err parse_gemini(json_t *root, gw_mllm_call *c, char *errmsg, size_t errlen)
{
    if (!json_is_array(json_object_get(root, "contents"))) {
        snprintf(errmsg, errlen, "* GenerateContentRequest.contents: contents is not specified");
        return GW_E_INVALID_REQUEST;
    }
    c->max_tokens = opt_int(json_object_get(root, "generationConfig"), "maxOutputTokens");
    gemini_messages(root, c);
    return gemini_plan(root, c, errmsg, errlen);
}

static gw_err parse_root(gw_mllm_api api, json_t *root, gw_mllm_call *c, char *errmsg,
                         size_t errlen)
{
    if (api == GW_MLLM_GEMINI)
        return parse_gemini(root, c, errmsg, errlen);
    const char *model = json_string_value(json_object_get(root, "model"));
    if (api == GW_MLLM_BEDROCK) /* the model is in the path (gw_mllm_aws_path) */
        return parse_bedrock(root, c, errmsg, errlen);
    if (model == NULL) {
        snprintf(errmsg, errlen, "'model' is required");
        return GW_E_INVALID_REQUEST;
    }
    snprintf(c->model, sizeof c->model, "%s", model);
    if (api == GW_MLLM_OPENAI_EMBED || api == GW_MLLM_OLLAMA_EMBED) {
        c->dims = opt_int(root, "dimensions");
        const char *fmt = json_string_value(json_object_get(root, "encoding_format"));
        c->embed_base64 = fmt != NULL && strcmp(fmt, "base64") == 0;
        return parse_embed_inputs(root, c, errmsg, errlen);
    }
    if (!json_is_array(json_object_get(root, "messages"))) {
        snprintf(errmsg, errlen, "'messages' must be an array");
        return GW_E_INVALID_REQUEST;
    }
    json_t *stream = json_object_get(root, "stream");
    c->stream = api == GW_MLLM_OLLAMA ? !json_is_false(stream) : json_is_true(stream);
    c->include_usage =
        json_is_true(json_object_get(json_object_get(root, "stream_options"), "include_usage"));
    c->max_tokens = opt_int(root, "max_tokens");
    if (c->max_tokens < 0)
        c->max_tokens = opt_int(root, "max_completion_tokens");
    if (api == GW_MLLM_OLLAMA)
        c->max_tokens = opt_int(json_object_get(root, "options"), "num_predict");
    if (api == GW_MLLM_ANTHROPIC && c->max_tokens < 1) {
        snprintf(errmsg, errlen, "max_tokens: Field required");
        return GW_E_INVALID_REQUEST;
    }
    parse_messages(root, c);
    return plan_tools(api, root, c, errmsg, errlen);
}

gw_err gw_mllm_call_parse(gw_mllm_api api, const char *body, size_t len, gw_mllm_call *c,
                          char *errmsg, size_t errlen)
{
    memset(c, 0, offsetof(gw_mllm_call, input_seeds));
    c->id[0] = '\0'; /* the fields after input_seeds: a connection reuses its call */
    c->tool_call = c->structured = false;
    c->tool_name[0] = c->tool_args[0] = '\0';
    c->tool_args_len = 0;
    c->api = api;
    json_error_t je;
    json_t *root = json_loadb(body, len, 0, &je);
    if (root == NULL || !json_is_object(root)) {
        snprintf(errmsg, errlen, "body is not a JSON object");
        json_decref(root);
        return GW_E_INVALID_REQUEST;
    }
    gw_err err = parse_root(api, root, c, errmsg, errlen);
    json_decref(root);
    snprintf(c->id, sizeof c->id, "%016llx", (unsigned long long)mix(c->seed));
    return err;
}

void gw_mllm_call_plan(gw_mllm_call *c, int tokens, int embed_dims)
{
    if (c->tool_call || c->structured) { /* the answer is the generated JSON, in pieces */
        bool whole = c->api == GW_MLLM_OLLAMA || c->api == GW_MLLM_GEMINI; /* calls in one piece */
        c->ntok = whole && c->tool_call ? 1 : arg_pieces(c);
        if (c->ntok < 1)
            c->ntok = 1;
        return;
    }
    c->ntok = tokens < 1 ? 1 : tokens;
    if (c->max_tokens > 0 && c->max_tokens < c->ntok) {
        c->ntok = c->max_tokens;
        c->length_cut = true;
    }
    if (c->dims < 1 || c->dims > 4096)
        c->dims = embed_dims;
}

const char *gw_mllm_token(const gw_mllm_call *c, int i, bool *leading_space)
{
    *leading_space = i > 0;
    return vocab[mix(c->seed + (uint64_t)i) % 32];
}

const char *gw_mllm_content_type(const gw_mllm_call *c)
{
    if (!c->stream)
        return "application/json";
    if (c->api == GW_MLLM_BEDROCK)
        return "application/vnd.amazon.eventstream";
    return c->api == GW_MLLM_OLLAMA ? "application/x-ndjson" : "text/event-stream";
}

static void put_text(const gw_mllm_call *c, gw_mllm_buf *b)
{
    if (c->structured) {
        gw_mllm_buf_json_str(b, c->tool_args, c->tool_args_len);
        return;
    }
    if (c->tool_call)
        return; /* the answer is the call */
    for (int i = 0; i < c->ntok; i++) {
        bool sp;
        const char *w = gw_mllm_token(c, i, &sp);
        if (sp)
            gw_mllm_buf_put(b, " ", 1);
        gw_mllm_buf_puts(b, w);
    }
}

static void put_model(const gw_mllm_call *c, gw_mllm_buf *b)
{
    gw_mllm_buf_json_str(b, c->model, strlen(c->model));
}

static const char *finish(const gw_mllm_call *c)
{
    if (c->api == GW_MLLM_GEMINI)
        return c->length_cut && !c->tool_call ? "MAX_TOKENS" : "STOP"; /* calls end with STOP */
    if (c->tool_call)
        return c->api == GW_MLLM_ANTHROPIC || c->api == GW_MLLM_BEDROCK ? "tool_use"
               : c->api == GW_MLLM_OLLAMA                               ? "stop"
                                                                        : "tool_calls";
    if (c->api == GW_MLLM_BEDROCK && c->guardrail)
        return "guardrail_intervened";
    if (c->api == GW_MLLM_ANTHROPIC || c->api == GW_MLLM_BEDROCK)
        return c->length_cut ? "max_tokens" : "end_turn";
    return c->length_cut ? "length" : "stop";
}

static bool embed_body(const gw_mllm_call *c, gw_mllm_buf *b);

static void put_tool_name(const gw_mllm_call *c, gw_mllm_buf *b)
{
    gw_mllm_buf_json_str(b, c->tool_name, strlen(c->tool_name));
}

static void put_ollama_calls(const gw_mllm_call *c, gw_mllm_buf *b)
{
    gw_mllm_buf_puts(b, ",\"tool_calls\":[{\"function\":{\"name\":\"");
    put_tool_name(c, b);
    gw_mllm_buf_puts(b, "\",\"arguments\":");
    gw_mllm_buf_put(b, c->tool_args, c->tool_args_len);
    gw_mllm_buf_puts(b, "}}]");
}

/* ---- Bedrock Converse ---- */

static void bedrock_tool_use(const gw_mllm_call *c, gw_mllm_buf *b)
{
    gw_mllm_buf_printf(b, "{\"toolUse\":{\"toolUseId\":\"tooluse_%.12s\",\"name\":\"", c->id);
    put_tool_name(c, b);
}

static bool bedrock_full(const gw_mllm_call *c, gw_mllm_buf *b)
{
    gw_mllm_buf_puts(b, "{\"output\":{\"message\":{\"role\":\"assistant\",\"content\":[");
    if (c->tool_call) {
        bedrock_tool_use(c, b);
        gw_mllm_buf_puts(b, "\",\"input\":");
        gw_mllm_buf_put(b, c->tool_args, c->tool_args_len);
        gw_mllm_buf_puts(b, "}}");
    } else {
        gw_mllm_buf_puts(b, "{\"text\":\"");
        put_text(c, b);
        gw_mllm_buf_puts(b, "\"}");
    }
    return gw_mllm_buf_printf(b,
                              "]}},\"stopReason\":\"%s\",\"usage\":{\"inputTokens\":%d,"
                              "\"outputTokens\":%d,\"totalTokens\":%d},\"metrics\":"
                              "{\"latencyMs\":1}}",
                              finish(c), c->prompt_tokens, c->ntok, c->prompt_tokens + c->ntok);
}

/* One event stream message: an event of type event (or, with exception, an
 * exception of that type) holding the JSON payload json. */
static bool bedrock_frame(gw_mllm_buf *b, const char *event, bool exception, const char *json)
{
    const char *names[] = {exception ? ":exception-type" : ":event-type", ":content-type",
                           ":message-type"};
    const char *values[] = {event, "application/json", exception ? "exception" : "event"};
    size_t cap = strlen(json) + 256;
    char *out = malloc(cap);
    if (out == NULL)
        return false;
    size_t n = gw_es_write(out, cap, names, values, 3, json, strlen(json));
    bool ok = n > 0 && gw_mllm_buf_put(b, out, n);
    free(out);
    return ok;
}

/* bedrock_frame of a payload built with printf in a scratch buffer. */
static bool bedrock_event(gw_mllm_buf *b, const char *event, const gw_mllm_buf *json)
{
    return !json->overflow && bedrock_frame(b, event, false, json->p ? json->p : "{}");
}

static bool bedrock_head(const gw_mllm_call *c, gw_mllm_buf *b)
{
    bool ok = bedrock_frame(b, "messageStart", false, "{\"role\":\"assistant\"}");
    if (!c->tool_call)
        return ok;
    gw_mllm_buf j;
    gw_mllm_buf_init(&j, 64 * 1024);
    gw_mllm_buf_printf(&j,
                       "{\"contentBlockIndex\":0,\"start\":{\"toolUse\":{\"toolUseId\":"
                       "\"tooluse_%.12s\",\"name\":\"",
                       c->id);
    put_tool_name(c, &j);
    gw_mllm_buf_puts(&j, "\"}}}");
    ok = ok && bedrock_event(b, "contentBlockStart", &j);
    gw_mllm_buf_cleanup(&j);
    return ok;
}

/* Token or argument piece i as a contentBlockDelta. */
static bool bedrock_delta(const gw_mllm_call *c, int i, gw_mllm_buf *b)
{
    gw_mllm_buf j;
    gw_mllm_buf_init(&j, 64 * 1024);
    if (c->tool_call || c->structured) {
        const char *p = "";
        size_t n = 0;
        gw_mllm_arg_piece(c, i, &p, &n);
        gw_mllm_buf_puts(&j, c->tool_call
                                 ? "{\"contentBlockIndex\":0,\"delta\":{\"toolUse\":{\"input\":\""
                                 : "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"");
        gw_mllm_buf_json_str(&j, p, n);
        gw_mllm_buf_puts(&j, c->tool_call ? "\"}}}" : "\"}}");
    } else {
        bool sp;
        const char *w = gw_mllm_token(c, i, &sp);
        gw_mllm_buf_printf(&j, "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"%s%s\"}}",
                           sp ? " " : "", w);
    }
    bool ok = bedrock_event(b, "contentBlockDelta", &j);
    gw_mllm_buf_cleanup(&j);
    return ok;
}

static bool bedrock_tail(const gw_mllm_call *c, bool terminator, gw_mllm_buf *b)
{
    bool ok = bedrock_frame(b, "contentBlockStop", false, "{\"contentBlockIndex\":0}");
    if (!terminator)
        return ok;
    gw_mllm_buf j;
    gw_mllm_buf_init(&j, 4096);
    gw_mllm_buf_printf(&j, "{\"stopReason\":\"%s\"}", finish(c));
    ok = ok && bedrock_event(b, "messageStop", &j);
    j.len = 0;
    j.overflow = false;
    gw_mllm_buf_printf(&j,
                       "{\"usage\":{\"inputTokens\":%d,\"outputTokens\":%d,\"totalTokens\":%d},"
                       "\"metrics\":{\"latencyMs\":1}}",
                       c->prompt_tokens, c->ntok, c->prompt_tokens + c->ntok);
    ok = ok && bedrock_event(b, "metadata", &j);
    gw_mllm_buf_cleanup(&j);
    return ok;
}

/* Gemini: the one part of the answer (text, or the whole function call). */
static void gemini_part(const gw_mllm_call *c, gw_mllm_buf *b)
{
    if (c->tool_call) {
        gw_mllm_buf_puts(b, "{\"functionCall\":{\"name\":\"");
        put_tool_name(c, b);
        gw_mllm_buf_puts(b, "\",\"args\":");
        gw_mllm_buf_put(b, c->tool_args, c->tool_args_len);
        gw_mllm_buf_puts(b, "}}");
        return;
    }
    gw_mllm_buf_puts(b, "{\"text\":\"");
    put_text(c, b);
    gw_mllm_buf_puts(b, "\"}");
}

/* Gemini: usageMetadata (out < 0: none counted yet), modelVersion, responseId, "}". */
static bool gemini_end(const gw_mllm_call *c, int out, gw_mllm_buf *b)
{
    if (out < 0)
        gw_mllm_buf_printf(b, "\"usageMetadata\":{\"promptTokenCount\":%d,\"totalTokenCount\":%d}",
                           c->prompt_tokens, c->prompt_tokens);
    else
        gw_mllm_buf_printf(b,
                           "\"usageMetadata\":{\"promptTokenCount\":%d,\"candidatesTokenCount\":%d,"
                           "\"totalTokenCount\":%d}",
                           c->prompt_tokens, out, c->prompt_tokens + out);
    gw_mllm_buf_puts(b, ",\"modelVersion\":\"");
    put_model(c, b);
    return gw_mllm_buf_printf(b, "\",\"responseId\":\"%.16s\"}", c->id);
}

static bool gemini_full(const gw_mllm_call *c, gw_mllm_buf *b)
{
    gw_mllm_buf_puts(b, "{\"candidates\":[{\"content\":{\"parts\":[");
    gemini_part(c, b);
    gw_mllm_buf_printf(b, "],\"role\":\"model\"},\"finishReason\":\"%s\",\"index\":0}],",
                       finish(c));
    return gemini_end(c, c->ntok, b);
}

/* One streamed Gemini chunk: a text (or structured) piece, or the whole call. */
static bool gemini_chunk(const gw_mllm_call *c, int i, gw_mllm_buf *b)
{
    gw_mllm_buf_puts(b, "data: {\"candidates\":[{\"content\":{\"parts\":[");
    if (c->tool_call) {
        gemini_part(c, b);
    } else if (c->structured) {
        const char *p = "";
        size_t n = 0;
        gw_mllm_arg_piece(c, i, &p, &n);
        gw_mllm_buf_puts(b, "{\"text\":\"");
        gw_mllm_buf_json_str(b, p, n);
        gw_mllm_buf_puts(b, "\"}");
    } else {
        bool sp;
        const char *w = gw_mllm_token(c, i, &sp);
        gw_mllm_buf_printf(b, "{\"text\":\"%s%s\"}", sp ? " " : "", w);
    }
    gw_mllm_buf_puts(b, "],\"role\":\"model\"},\"index\":0}],");
    gemini_end(c, -1, b);
    return gw_mllm_buf_puts(b, "\n\n");
}

/* The last Gemini chunk: empty text, the finish reason and the usage. */
static bool gemini_tail(const gw_mllm_call *c, gw_mllm_buf *b)
{
    gw_mllm_buf_printf(b,
                       "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\"}],\"role\":"
                       "\"model\"},\"finishReason\":\"%s\",\"index\":0}],",
                       finish(c));
    gemini_end(c, c->ntok, b);
    return gw_mllm_buf_puts(b, "\n\n");
}

static const char SAFETY_CANDIDATE[] =
    "{\"candidates\":[{\"finishReason\":\"SAFETY\",\"index\":0,\"safetyRatings\":[{"
    "\"category\":\"HARM_CATEGORY_DANGEROUS_CONTENT\",\"probability\":\"HIGH\","
    "\"blocked\":true}]}],";

bool gw_mllm_safety_body(const gw_mllm_call *c, gw_mllm_buf *b)
{
    gw_mllm_buf_puts(b, SAFETY_CANDIDATE);
    return gemini_end(c, 0, b);
}

bool gw_mllm_stream_safety(const gw_mllm_call *c, gw_mllm_buf *b)
{
    gw_mllm_buf_puts(b, "data: ");
    gw_mllm_buf_puts(b, SAFETY_CANDIDATE);
    gemini_end(c, 0, b);
    return gw_mllm_buf_puts(b, "\n\n");
}

bool gw_mllm_full_body(const gw_mllm_call *c, gw_mllm_buf *b)
{
    switch (c->api) {
    case GW_MLLM_OPENAI:
        gw_mllm_buf_printf(b,
                           "{\"id\":\"chatcmpl-%s\",\"object\":\"chat.completion\","
                           "\"created\":1700000000,\"model\":\"",
                           c->id);
        put_model(c, b);
        gw_mllm_buf_puts(b, "\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                            "\"content\":");
        if (c->tool_call) {
            gw_mllm_buf_printf(b,
                               "null,\"tool_calls\":[{\"id\":\"call_%.12s\",\"type\":"
                               "\"function\",\"function\":{\"name\":\"",
                               c->id);
            put_tool_name(c, b);
            gw_mllm_buf_puts(b, "\",\"arguments\":\"");
            gw_mllm_buf_json_str(b, c->tool_args, c->tool_args_len);
            gw_mllm_buf_puts(b, "\"}}]");
        } else {
            gw_mllm_buf_puts(b, "\"");
            put_text(c, b);
            gw_mllm_buf_puts(b, "\"");
        }
        return gw_mllm_buf_printf(
            b,
            "},\"logprobs\":null,\"finish_reason\":\"%s\"}],\"usage\":{\"prompt_tokens\":%d,"
            "\"completion_tokens\":%d,\"total_tokens\":%d}}",
            finish(c), c->prompt_tokens, c->ntok, c->prompt_tokens + c->ntok);
    case GW_MLLM_ANTHROPIC:
        gw_mllm_buf_printf(b,
                           "{\"id\":\"msg_%s\",\"type\":\"message\",\"role\":\"assistant\","
                           "\"model\":\"",
                           c->id);
        put_model(c, b);
        if (c->tool_call) {
            gw_mllm_buf_printf(b,
                               "\",\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_%.12s\","
                               "\"name\":\"",
                               c->id);
            put_tool_name(c, b);
            gw_mllm_buf_puts(b, "\",\"input\":");
            gw_mllm_buf_put(b, c->tool_args, c->tool_args_len);
        } else {
            gw_mllm_buf_puts(b, "\",\"content\":[{\"type\":\"text\",\"text\":\"");
            put_text(c, b);
            gw_mllm_buf_puts(b, "\"");
        }
        return gw_mllm_buf_printf(b,
                                  "}],\"stop_reason\":\"%s\",\"stop_sequence\":null,"
                                  "\"usage\":{\"input_tokens\":%d,\"output_tokens\":%d}}",
                                  finish(c), c->prompt_tokens, c->ntok);
    case GW_MLLM_GEMINI:
        return gemini_full(c, b);
    case GW_MLLM_OLLAMA:
        gw_mllm_buf_puts(b, "{\"model\":\"");
        put_model(c, b);
        gw_mllm_buf_puts(b, "\",\"created_at\":\"2024-01-01T00:00:00Z\",\"message\":{\"role\":"
                            "\"assistant\",\"content\":\"");
        put_text(c, b);
        gw_mllm_buf_puts(b, "\"");
        if (c->tool_call)
            put_ollama_calls(c, b);
        return gw_mllm_buf_printf(
            b,
            "},\"done_reason\":\"%s\",\"done\":true,\"total_duration\":1000,"
            "\"load_duration\":10,\"prompt_eval_count\":%d,\"prompt_eval_duration\":100,"
            "\"eval_count\":%d,\"eval_duration\":500}",
            finish(c), c->prompt_tokens, c->ntok);
    case GW_MLLM_BEDROCK:
        return bedrock_full(c, b);
    default:
        return embed_body(c, b);
    }
}

static void sse_event(gw_mllm_buf *b, const char *name)
{
    if (name != NULL)
        gw_mllm_buf_printf(b, "event: %s\n", name);
    gw_mllm_buf_puts(b, "data: ");
}

static void openai_chunk_head(const gw_mllm_call *c, gw_mllm_buf *b)
{
    sse_event(b, NULL);
    gw_mllm_buf_printf(b,
                       "{\"id\":\"chatcmpl-%s\",\"object\":\"chat.completion.chunk\","
                       "\"created\":1700000000,\"model\":\"",
                       c->id);
    put_model(c, b);
    gw_mllm_buf_puts(b, "\",\"choices\":[");
}

bool gw_mllm_stream_head(const gw_mllm_call *c, gw_mllm_buf *b)
{
    if (c->api == GW_MLLM_BEDROCK)
        return bedrock_head(c, b);
    if (c->api == GW_MLLM_OPENAI) {
        openai_chunk_head(c, b);
        return gw_mllm_buf_printf(b,
                                  "{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":"
                                  "%s},\"logprobs\":null,\"finish_reason\":null}]}\n\n",
                                  c->tool_call ? "null" : "\"\"");
    }
    if (c->api == GW_MLLM_ANTHROPIC) {
        sse_event(b, "message_start");
        gw_mllm_buf_printf(b,
                           "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_%s\","
                           "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"",
                           c->id);
        put_model(c, b);
        gw_mllm_buf_printf(b,
                           "\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,"
                           "\"usage\":{\"input_tokens\":%d,\"output_tokens\":1}}}\n\n",
                           c->prompt_tokens);
        sse_event(b, "content_block_start");
        if (c->tool_call) {
            gw_mllm_buf_printf(b,
                               "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
                               "{\"type\":\"tool_use\",\"id\":\"toolu_%.12s\",\"name\":\"",
                               c->id);
            put_tool_name(c, b);
            gw_mllm_buf_puts(b, "\",\"input\":{}}}\n\n");
        } else {
            gw_mllm_buf_puts(b, "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
                                "{\"type\":\"text\",\"text\":\"\"}}\n\n");
        }
        sse_event(b, "ping");
        return gw_mllm_buf_puts(b, "{\"type\": \"ping\"}\n\n");
    }
    return true;
}

/* Piece i of a tool call or structured answer as one stream event. */
static bool stream_piece(const gw_mllm_call *c, int i, gw_mllm_buf *b)
{
    const char *p = "";
    size_t n = 0;
    gw_mllm_arg_piece(c, i, &p, &n);
    if (c->api == GW_MLLM_OPENAI) {
        openai_chunk_head(c, b);
        if (c->structured) {
            gw_mllm_buf_puts(b, "{\"index\":0,\"delta\":{\"content\":\"");
        } else if (i == 0) {
            gw_mllm_buf_printf(b,
                               "{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":"
                               "\"call_%.12s\",\"type\":\"function\",\"function\":{\"name\":\"",
                               c->id);
            put_tool_name(c, b);
            gw_mllm_buf_puts(b, "\",\"arguments\":\"");
        } else {
            gw_mllm_buf_puts(b, "{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
                                "\"function\":{\"arguments\":\"");
        }
        gw_mllm_buf_json_str(b, p, n);
        return gw_mllm_buf_puts(b, c->structured
                                       ? "\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n"
                                       : "\"}}]},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
    }
    if (c->api == GW_MLLM_ANTHROPIC) {
        sse_event(b, "content_block_delta");
        gw_mllm_buf_puts(b, "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
                            "{\"type\":\"input_json_delta\",\"partial_json\":\"");
        gw_mllm_buf_json_str(b, p, n);
        return gw_mllm_buf_puts(b, "\"}}\n\n");
    }
    gw_mllm_buf_puts(b, "{\"model\":\"");
    put_model(c, b);
    gw_mllm_buf_puts(b, "\",\"created_at\":\"2024-01-01T00:00:00Z\",\"message\":"
                        "{\"role\":\"assistant\",\"content\":\"");
    if (c->structured)
        gw_mllm_buf_json_str(b, p, n);
    gw_mllm_buf_puts(b, "\"");
    if (c->tool_call)
        put_ollama_calls(c, b);
    return gw_mllm_buf_puts(b, "},\"done\":false}\n");
}

bool gw_mllm_stream_token(const gw_mllm_call *c, int i, gw_mllm_buf *b)
{
    if (c->api == GW_MLLM_BEDROCK)
        return bedrock_delta(c, i, b);
    if (c->api == GW_MLLM_GEMINI)
        return gemini_chunk(c, i, b);
    if (c->tool_call || c->structured)
        return stream_piece(c, i, b);
    bool sp;
    const char *w = gw_mllm_token(c, i, &sp);
    if (c->api == GW_MLLM_OPENAI) {
        openai_chunk_head(c, b);
        return gw_mllm_buf_printf(b,
                                  "{\"index\":0,\"delta\":{\"content\":\"%s%s\"},"
                                  "\"logprobs\":null,\"finish_reason\":null}]}\n\n",
                                  sp ? " " : "", w);
    }
    if (c->api == GW_MLLM_ANTHROPIC) {
        sse_event(b, "content_block_delta");
        return gw_mllm_buf_printf(b,
                                  "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
                                  "{\"type\":\"text_delta\",\"text\":\"%s%s\"}}\n\n",
                                  sp ? " " : "", w);
    }
    gw_mllm_buf_puts(b, "{\"model\":\"");
    put_model(c, b);
    return gw_mllm_buf_printf(b,
                              "\",\"created_at\":\"2024-01-01T00:00:00Z\",\"message\":"
                              "{\"role\":\"assistant\",\"content\":\"%s%s\"},\"done\":false}\n",
                              sp ? " " : "", w);
}

static bool openai_tail(const gw_mllm_call *c, bool terminator, gw_mllm_buf *b)
{
    openai_chunk_head(c, b);
    gw_mllm_buf_printf(b,
                       "{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":"
                       "\"%s\"}]}\n\n",
                       finish(c));
    if (c->include_usage) {
        openai_chunk_head(c, b);
        gw_mllm_buf_printf(b,
                           "],\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,"
                           "\"total_tokens\":%d}}\n\n",
                           c->prompt_tokens, c->ntok, c->prompt_tokens + c->ntok);
    }
    return terminator ? gw_mllm_buf_puts(b, "data: [DONE]\n\n") : !b->overflow;
}

bool gw_mllm_stream_tail(const gw_mllm_call *c, bool terminator, gw_mllm_buf *b)
{
    if (c->api == GW_MLLM_BEDROCK)
        return bedrock_tail(c, terminator, b);
    if (c->api == GW_MLLM_GEMINI) /* no terminator event: the finishReason chunk ends it */
        return terminator ? gemini_tail(c, b) : !b->overflow;
    if (c->api == GW_MLLM_OPENAI)
        return openai_tail(c, terminator, b);
    if (c->api == GW_MLLM_ANTHROPIC) {
        sse_event(b, "content_block_stop");
        gw_mllm_buf_puts(b, "{\"type\":\"content_block_stop\",\"index\":0}\n\n");
        sse_event(b, "message_delta");
        gw_mllm_buf_printf(b,
                           "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"%s\","
                           "\"stop_sequence\":null},\"usage\":{\"output_tokens\":%d}}\n\n",
                           finish(c), c->ntok);
        if (!terminator)
            return !b->overflow;
        sse_event(b, "message_stop");
        return gw_mllm_buf_puts(b, "{\"type\":\"message_stop\"}\n\n");
    }
    if (!terminator)
        return !b->overflow;
    gw_mllm_buf_puts(b, "{\"model\":\"");
    put_model(c, b);
    return gw_mllm_buf_printf(
        b,
        "\",\"created_at\":\"2024-01-01T00:00:00Z\",\"message\":{\"role\":\"assistant\","
        "\"content\":\"\"},\"done_reason\":\"%s\",\"done\":true,\"total_duration\":1000,"
        "\"load_duration\":10,\"prompt_eval_count\":%d,\"prompt_eval_duration\":100,"
        "\"eval_count\":%d,\"eval_duration\":500}\n",
        finish(c), c->prompt_tokens, c->ntok);
}

bool gw_mllm_bedrock_exception(const gw_mllm_call *c, const char *type, const char *msg,
                               gw_mllm_buf *b)
{
    (void)c;
    gw_mllm_buf j;
    gw_mllm_buf_init(&j, 4096);
    gw_mllm_buf_puts(&j, "{\"message\":\"");
    gw_mllm_buf_json_str(&j, msg, strlen(msg));
    gw_mllm_buf_puts(&j, "\"}");
    bool ok = !j.overflow && bedrock_frame(b, type, true, j.p);
    gw_mllm_buf_cleanup(&j);
    return ok;
}

bool gw_mllm_stream_error(const gw_mllm_call *c, gw_mllm_buf *b)
{
    if (c->api == GW_MLLM_BEDROCK)
        return bedrock_frame(b, "modelStreamErrorException", true,
                             "{\"message\":\"The model stream had an error.\"}");
    if (c->api == GW_MLLM_GEMINI)
        return gw_mllm_buf_puts(b, "data: {\"error\":{\"code\":500,\"message\":\"An internal "
                                   "error has occurred.\",\"status\":\"INTERNAL\"}}\n\n");
    if (c->api == GW_MLLM_ANTHROPIC) {
        sse_event(b, "error");
        return gw_mllm_buf_puts(b, "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                                   "\"message\":\"Overloaded\"}}\n\n");
    }
    if (c->api == GW_MLLM_OPENAI) {
        sse_event(b, NULL);
        return gw_mllm_buf_puts(b, "{\"error\":{\"message\":\"The server had an error while "
                                   "processing your request.\",\"type\":\"server_error\"}}\n\n");
    }
    return gw_mllm_buf_puts(b,
                            "{\"error\":\"an error was encountered while running the model\"}\n");
}

static const char *err_type(gw_mllm_api api, int status)
{
    bool anth = api == GW_MLLM_ANTHROPIC;
    switch (status) {
    case 400:
        return "invalid_request_error";
    case 401:
        return "authentication_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 429:
        return anth ? "rate_limit_error" : "rate_limit_exceeded";
    case 529:
        return "overloaded_error";
    default:
        return status >= 500 ? (anth ? "api_error" : "server_error") : "invalid_request_error";
    }
}

/* google.rpc.Code names of the statuses the mock answers. */
static const char *gemini_status(int status)
{
    switch (status) {
    case 400:
        return "INVALID_ARGUMENT";
    case 401:
        return "UNAUTHENTICATED";
    case 403:
        return "PERMISSION_DENIED";
    case 404:
        return "NOT_FOUND";
    case 408:
    case 504:
        return "DEADLINE_EXCEEDED";
    case 429:
        return "RESOURCE_EXHAUSTED";
    case 503:
        return "UNAVAILABLE";
    default:
        return status >= 500 ? "INTERNAL" : "UNKNOWN";
    }
}

bool gw_mllm_error_body(gw_mllm_api api, int status, const char *msg, gw_mllm_buf *b)
{
    if (api == GW_MLLM_GEMINI) {
        gw_mllm_buf_printf(b, "{\"error\":{\"code\":%d,\"message\":\"", status);
        gw_mllm_buf_json_str(b, msg, strlen(msg));
        return gw_mllm_buf_printf(b, "\",\"status\":\"%s\"}}", gemini_status(status));
    }
    const char *type = err_type(api, status);
    if (api == GW_MLLM_BEDROCK) {
        gw_mllm_buf_puts(b, "{\"message\":\"");
        gw_mllm_buf_json_str(b, msg, strlen(msg));
        return gw_mllm_buf_puts(b, "\"}");
    }
    if (api == GW_MLLM_ANTHROPIC)
        gw_mllm_buf_printf(b, "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":\"",
                           type);
    else if (api == GW_MLLM_OLLAMA || api == GW_MLLM_OLLAMA_EMBED)
        gw_mllm_buf_puts(b, "{\"error\":\"");
    else
        gw_mllm_buf_puts(b, "{\"error\":{\"message\":\"");
    gw_mllm_buf_json_str(b, msg, strlen(msg));
    if (api == GW_MLLM_ANTHROPIC)
        return gw_mllm_buf_puts(b, "\"}}");
    if (api == GW_MLLM_OLLAMA || api == GW_MLLM_OLLAMA_EMBED)
        return gw_mllm_buf_puts(b, "\"}");
    return gw_mllm_buf_printf(
        b, "\",\"type\":\"%s\",\"param\":null,\"code\":%s}}", type,
        status == 400 && strstr(msg, "context") ? "\"context_length_exceeded\"" : "null");
}

/* Deterministic unit vector component j of input k. */
static float embed_value(const gw_mllm_call *c, size_t k, int j)
{
    uint64_t x = mix(c->input_seeds[k] + (uint64_t)j * 0x9E37ULL);
    return (float)((double)(x >> 11) / (double)(1ULL << 53) * 2.0 - 1.0);
}

static void put_base64(gw_mllm_buf *b, const unsigned char *p, size_t n)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        char o[4] = {t[(v >> 18) & 63], t[(v >> 12) & 63], i + 1 < n ? t[(v >> 6) & 63] : '=',
                     i + 2 < n ? t[v & 63] : '='};
        gw_mllm_buf_put(b, o, 4);
    }
}

static void put_vector(const gw_mllm_call *c, size_t k, gw_mllm_buf *b)
{
    float v[4096];
    double norm = 0;
    for (int j = 0; j < c->dims; j++) {
        v[j] = embed_value(c, k, j);
        norm += (double)v[j] * v[j];
    }
    double inv = norm > 0 ? 1.0 / __builtin_sqrt(norm) : 0;
    for (int j = 0; j < c->dims; j++)
        v[j] = (float)(v[j] * inv);
    if (c->embed_base64) {
        gw_mllm_buf_puts(b, "\"");
        put_base64(b, (const unsigned char *)v, sizeof(float) * (size_t)c->dims);
        gw_mllm_buf_puts(b, "\"");
        return;
    }
    gw_mllm_buf_puts(b, "[");
    for (int j = 0; j < c->dims; j++)
        gw_mllm_buf_printf(b, j ? ",%.6f" : "%.6f", (double)v[j]);
    gw_mllm_buf_puts(b, "]");
}

static bool embed_body(const gw_mllm_call *c, gw_mllm_buf *b)
{
    bool oai = c->api == GW_MLLM_OPENAI_EMBED;
    if (oai)
        gw_mllm_buf_puts(b, "{\"object\":\"list\",\"data\":[");
    else {
        gw_mllm_buf_puts(b, "{\"model\":\"");
        put_model(c, b);
        gw_mllm_buf_puts(b, "\",\"embeddings\":[");
    }
    for (size_t k = 0; k < c->input_count; k++) {
        if (k)
            gw_mllm_buf_puts(b, ",");
        if (oai)
            gw_mllm_buf_printf(b, "{\"object\":\"embedding\",\"index\":%zu,\"embedding\":", k);
        put_vector(c, k, b);
        if (oai)
            gw_mllm_buf_puts(b, "}");
    }
    if (!oai)
        return gw_mllm_buf_printf(b,
                                  "],\"total_duration\":1000,\"load_duration\":10,"
                                  "\"prompt_eval_count\":%d}",
                                  c->prompt_tokens);
    gw_mllm_buf_puts(b, "],\"model\":\"");
    put_model(c, b);
    return gw_mllm_buf_printf(b, "\",\"usage\":{\"prompt_tokens\":%d,\"total_tokens\":%d}}",
                              c->prompt_tokens, c->prompt_tokens);
}
