/*
 * cli_batch: OpenAI Batch-API lines in, chat.completion lines out (see the
 * header). Uses jansson; every size is bounded before anything is copied.
 */
#include "cli/cli_batch.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define FAIL(code, ...)                                                                            \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        rc = (code);                                                                               \
        goto cleanup;                                                                              \
    } while (0)

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t hash_pair(uint64_t seed, const char *a, const char *b)
{
    uint64_t h = seed;
    for (const char *p = a; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ 0xffu) * 1099511628211ULL; /* separator no string contains */
    for (const char *p = b; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return mix64(h);
}

void gw_cli_batch_request_id(const char *batch_id, const char *custom_id, char out[37])
{
    uint64_t hi = hash_pair(1469598103934665603ULL, batch_id, custom_id);
    uint64_t lo = hash_pair(0x9e3779b97f4a7c15ULL, custom_id, batch_id);
    uint8_t b[16];
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(hi >> (56 - 8 * i));
        b[8 + i] = (uint8_t)(lo >> (56 - 8 * i));
    }
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x80); /* version 8: custom */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

/* Text of a message's content: a string, or an array of {"type":"text"} parts. */
static gw_err content_text(json_t *c, gw_arena *a, const char **out, char *err, size_t errlen)
{
    gw_err rc = GW_OK;
    if (json_is_string(c)) {
        *out = gw_arena_strndup(a, json_string_value(c), json_string_length(c));
        return *out ? GW_OK : GW_E_NOMEM;
    }
    if (!json_is_array(c))
        FAIL(GW_E_INVALID_REQUEST, "message content must be a string or an array of parts");
    size_t total = 0, i;
    json_t *part;
    json_array_foreach(c, i, part)
    {
        json_t *t = json_object_get(part, "text");
        const char *type = json_string_value(json_object_get(part, "type"));
        if (!type || strcmp(type, "text") != 0 || !json_is_string(t))
            FAIL(GW_E_INVALID_REQUEST, "content part %zu is not a text part", i);
        total += json_string_length(t);
    }
    char *s = gw_arena_alloc(a, total + 1);
    if (!s)
        return GW_E_NOMEM;
    size_t off = 0;
    json_array_foreach(c, i, part)
    {
        json_t *t = json_object_get(part, "text");
        memcpy(s + off, json_string_value(t), json_string_length(t));
        off += json_string_length(t);
    }
    s[off] = '\0';
    *out = s;
cleanup:
    return rc;
}

/* body.messages -> req->messages; a leading system message becomes system_prompt. */
static gw_err parse_messages(json_t *msgs, gw_arena *a, gw_request *req, char *err, size_t errlen)
{
    gw_err rc = GW_OK;
    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        FAIL(GW_E_INVALID_REQUEST, "body.messages must be a non-empty array");
    size_t n = json_array_size(msgs);
    if (n > GW_CLI_BATCH_MAX_MESSAGES)
        FAIL(GW_E_LIMIT, "body.messages has %zu entries (limit %d)", n, GW_CLI_BATCH_MAX_MESSAGES);
    req->messages = gw_arena_calloc(a, n, sizeof *req->messages);
    if (!req->messages)
        return GW_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(msgs, i);
        const char *role = json_string_value(json_object_get(m, "role"));
        int r = role ? gw_role_parse(role) : -1;
        if (r < 0)
            FAIL(GW_E_INVALID_REQUEST, "messages[%zu].role is missing or unknown", i);
        const char *text = NULL;
        rc = content_text(json_object_get(m, "content"), a, &text, err, errlen);
        if (rc != GW_OK)
            goto cleanup;
        if (r == GW_ROLE_SYSTEM && i == 0 && !req->system_prompt) {
            req->system_prompt = text;
            continue;
        }
        gw_message *gm = &req->messages[req->message_count++];
        gm->role = (gw_role)r;
        gm->content = text;
        const char *name = json_string_value(json_object_get(m, "name"));
        gm->name = name ? gw_arena_strdup(a, name) : NULL;
    }
    if (req->message_count == 0)
        FAIL(GW_E_INVALID_REQUEST, "body.messages holds only a system message");
cleanup:
    return rc;
}

static gw_err parse_metadata(json_t *md, gw_arena *a, gw_request *req, char *err, size_t errlen)
{
    gw_err rc = GW_OK;
    if (!md)
        return GW_OK;
    if (!json_is_object(md))
        FAIL(GW_E_INVALID_REQUEST, "body.metadata must be an object of strings");
    size_t n = json_object_size(md);
    req->metadata.items = gw_arena_calloc(a, n ? n : 1, sizeof *req->metadata.items);
    if (!req->metadata.items)
        return GW_E_NOMEM;
    const char *k;
    json_t *v;
    json_object_foreach(md, k, v)
    {
        if (!json_is_string(v))
            FAIL(GW_E_INVALID_REQUEST, "body.metadata.%s must be a string", k);
        gw_kv *kv = &req->metadata.items[req->metadata.count++];
        kv->key = gw_arena_strdup(a, k);
        kv->value = gw_arena_strdup(a, json_string_value(v));
    }
cleanup:
    return rc;
}

static gw_err parse_body(json_t *body, const gw_cli_batch_opts *o, gw_arena *a, gw_request *req,
                         char *err, size_t errlen)
{
    gw_err rc = GW_OK;
    if (!json_is_object(body))
        FAIL(GW_E_INVALID_REQUEST, "body must be an object");
    rc = parse_messages(json_object_get(body, "messages"), a, req, err, errlen);
    if (rc != GW_OK)
        goto cleanup;
    json_t *mt = json_object_get(body, "max_completion_tokens");
    if (!mt)
        mt = json_object_get(body, "max_tokens");
    if (mt &&
        (!json_is_integer(mt) || json_integer_value(mt) < 1 || json_integer_value(mt) > INT32_MAX))
        FAIL(GW_E_INVALID_REQUEST, "body.max_tokens must be a positive integer");
    req->max_tokens = mt ? (int32_t)json_integer_value(mt) : GW_CLI_BATCH_DEFAULT_TOKENS;
    json_t *t = json_object_get(body, "temperature");
    if (t && !json_is_number(t))
        FAIL(GW_E_INVALID_REQUEST, "body.temperature must be a number");
    req->temperature = t ? json_number_value(t) : 1.0; /* OpenAI's default */
    const char *model = json_string_value(json_object_get(body, "model"));
    if (model && *model && strcmp(model, "auto") != 0 && !o->ignore_model)
        req->model = gw_arena_strdup(a, model);
    rc = parse_metadata(json_object_get(body, "metadata"), a, req, err, errlen);
cleanup:
    return rc;
}

gw_err gw_cli_batch_parse_line(const char *line, size_t len, const gw_cli_batch_opts *o,
                               gw_arena *a, gw_request *req, char *err, size_t errlen)
{
    gw_err rc = GW_OK;
    json_t *root = NULL;
    memset(req, 0, sizeof *req);
    err[0] = '\0';
    if (len > GW_CLI_BATCH_MAX_LINE_BYTES)
        FAIL(GW_E_LIMIT, "line is %zu bytes (limit %d)", len, GW_CLI_BATCH_MAX_LINE_BYTES);
    json_error_t jerr;
    root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(root))
        FAIL(GW_E_INVALID_REQUEST, "not a JSON object: %s", root ? "wrong type" : jerr.text);
    const char *cid = json_string_value(json_object_get(root, "custom_id"));
    if (!cid || !*cid)
        FAIL(GW_E_INVALID_REQUEST, "custom_id is missing or empty");
    if (strlen(cid) > GW_CLI_BATCH_MAX_CUSTOM_ID)
        FAIL(GW_E_LIMIT, "custom_id longer than %d bytes", GW_CLI_BATCH_MAX_CUSTOM_ID);
    const char *url = json_string_value(json_object_get(root, "url"));
    if (url && strcmp(url, "/v1/chat/completions") != 0)
        FAIL(GW_E_INVALID_REQUEST, "url %.64s is not supported (only /v1/chat/completions)", url);
    const char *method = json_string_value(json_object_get(root, "method"));
    if (method && strcmp(method, "POST") != 0)
        FAIL(GW_E_INVALID_REQUEST, "method must be POST");
    rc = parse_body(json_object_get(root, "body"), o, a, req, err, errlen);
    if (rc != GW_OK)
        goto cleanup;
    char id[37];
    gw_cli_batch_request_id(o->batch_id, cid, id);
    req->request_id = gw_arena_strdup(a, id);
    req->custom_id = gw_arena_strdup(a, cid);
    req->batch_id = gw_arena_strdup(a, o->batch_id);
    req->agent_did = gw_arena_strdup(a, o->agent_did);
    req->enable_cache = true;
    req->routing_strategy = GW_ROUTE_BALANCED;
    if (!req->request_id || !req->custom_id || !req->batch_id || !req->agent_did)
        rc = GW_E_NOMEM;
cleanup:
    json_decref(root);
    if (rc == GW_E_NOMEM && !err[0])
        snprintf(err, errlen, "out of memory");
    return rc;
}

int gw_cli_batch_status_code(const gw_response *r)
{
    if (!r->error)
        return 200;
    gw_err e = gw_err_from_code(r->error->code ? r->error->code : "");
    switch (gw_err_domain(e)) {
    case GW_DOMAIN_CALLER:
        return 400;
    case GW_DOMAIN_POLICY:
        return 429;
    case GW_DOMAIN_PROVIDER:
        return 502;
    default:
        return 500;
    }
}

static json_t *completion_body(const gw_response *r, long long created_s)
{
    char id[96];
    snprintf(id, sizeof id, "chatcmpl-%.60s", r->request_id ? r->request_id : "");
    json_t *choice = json_pack("{s:i, s:{s:s, s:s}, s:s}", "index", 0, "message", "role",
                               "assistant", "content", r->content ? r->content : "",
                               "finish_reason", r->finish_reason ? r->finish_reason : "stop");
    return json_pack("{s:s, s:s, s:I, s:s, s:[o], s:{s:i, s:i, s:i}, s:{s:s, s:b, s:f}}", "id", id,
                     "object", "chat.completion", "created", (json_int_t)created_s, "model",
                     r->model_id ? r->model_id : "", "choices", choice, "usage", "prompt_tokens",
                     r->token_usage.prompt_tokens, "completion_tokens",
                     r->token_usage.completion_tokens, "total_tokens", r->token_usage.total_tokens,
                     "modelgw", "provider", r->provider ? r->provider : "", "cached", r->cached,
                     "latency_ms", r->latency_ms);
}

static json_t *error_body(const gw_response *r)
{
    gw_err e = gw_err_from_code(r->error->code ? r->error->code : "");
    return json_pack("{s:{s:s, s:s, s:s, s:b}}", "error", "message",
                     r->error->message ? r->error->message : gw_strerror(e), "type",
                     gw_domain_name(gw_err_domain(e)), "code", r->error->code ? r->error->code : "",
                     "retryable", r->error->retryable);
}

char *gw_cli_batch_output_line(const gw_response *r, const char *custom_id, long long created_s)
{
    char id[96];
    snprintf(id, sizeof id, "batch_req_%.60s", r->request_id ? r->request_id : "");
    json_t *body = r->error ? error_body(r) : completion_body(r, created_s);
    if (!body)
        return NULL;
    json_t *root = json_pack("{s:s, s:s, s:{s:i, s:s, s:o}, s:n}", "id", id, "custom_id", custom_id,
                             "response", "status_code", gw_cli_batch_status_code(r), "request_id",
                             r->request_id ? r->request_id : "", "body", body, "error");
    if (!root)
        return NULL;
    char *s = json_dumps(root, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(root);
    return s;
}

gw_err gw_cli_batch_output_custom_id(const char *line, size_t len, char *out, size_t outlen)
{
    json_t *root = json_loadb(line, len, 0, NULL);
    const char *cid = json_string_value(json_object_get(root, "custom_id"));
    gw_err rc = GW_E_INVALID_REQUEST;
    if (cid && strlen(cid) < outlen) {
        memcpy(out, cid, strlen(cid) + 1);
        rc = GW_OK;
    }
    json_decref(root);
    return rc;
}
