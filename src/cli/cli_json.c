/*
 * cli_json: wire records <-> JSON for the command-line tools (see the header).
 */
#include "cli/cli_json.h"

#include <stdio.h>
#include <string.h>

static void set_str(json_t *o, const char *k, const char *v)
{
    if (v)
        json_object_set_new(o, k, json_string(v));
}

static json_t *map_json(const gw_map *m)
{
    json_t *o = json_object();
    for (size_t i = 0; i < m->count; i++)
        set_str(o, m->items[i].key, m->items[i].value);
    return o;
}

static json_t *usage_json(const gw_token_usage *u)
{
    return json_pack("{s:i, s:i, s:i}", "prompt_tokens", u->prompt_tokens, "completion_tokens",
                     u->completion_tokens, "total_tokens", u->total_tokens);
}

static json_t *error_json(const gw_error_rec *e)
{
    json_t *o = json_object();
    set_str(o, "code", e->code);
    set_str(o, "message", e->message);
    json_object_set_new(o, "retryable", json_boolean(e->retryable));
    json_object_set_new(o, "details", map_json(&e->details));
    return o;
}

json_t *gw_cli_json_response(const gw_response *r)
{
    json_t *o = json_object();
    set_str(o, "request_id", r->request_id);
    set_str(o, "content", r->content);
    set_str(o, "model_id", r->model_id);
    set_str(o, "provider", r->provider);
    json_object_set_new(o, "token_usage", usage_json(&r->token_usage));
    json_object_set_new(o, "latency_ms", json_real(r->latency_ms));
    json_object_set_new(o, "cached", json_boolean(r->cached));
    set_str(o, "finish_reason", r->finish_reason);
    if (r->error)
        json_object_set_new(o, "error", error_json(r->error));
    json_object_set_new(o, "metadata", map_json(&r->metadata));
    set_str(o, "custom_id", r->custom_id);
    set_str(o, "batch_id", r->batch_id);
    return o;
}

json_t *gw_cli_json_chunk(const gw_chunk *c)
{
    json_t *o = json_object();
    set_str(o, "request_id", c->request_id);
    json_object_set_new(o, "seq", json_integer(c->seq));
    set_str(o, "content", c->content);
    json_object_set_new(o, "is_final", json_boolean(c->is_final));
    if (c->has_usage)
        json_object_set_new(o, "token_usage", usage_json(&c->token_usage));
    set_str(o, "finish_reason", c->finish_reason);
    if (c->error)
        json_object_set_new(o, "error", error_json(c->error));
    return o;
}

json_t *gw_cli_json_usage(const gw_usage_event *u)
{
    json_t *o = json_object();
    set_str(o, "event_id", u->event_id);
    set_str(o, "request_id", u->request_id);
    set_str(o, "agent_did", u->agent_did);
    set_str(o, "tenant_id", u->tenant_id);
    set_str(o, "batch_id", u->batch_id);
    set_str(o, "custom_id", u->custom_id);
    set_str(o, "model_id", u->model_id);
    set_str(o, "provider", u->provider);
    set_str(o, "priority", u->priority);
    json_object_set_new(o, "prompt_tokens", json_integer(u->prompt_tokens));
    json_object_set_new(o, "completion_tokens", json_integer(u->completion_tokens));
    json_object_set_new(o, "total_tokens", json_integer(u->total_tokens));
    json_object_set_new(o, "cost_usd", json_real(u->cost_usd));
    json_object_set_new(o, "saved_cost_usd", json_real(u->saved_cost_usd));
    json_object_set_new(o, "latency_ms", json_real(u->latency_ms));
    if (u->has_ttft)
        json_object_set_new(o, "ttft_ms", json_real(u->ttft_ms));
    json_object_set_new(o, "cached", json_boolean(u->cached));
    set_str(o, "cache_tier", u->cache_tier);
    if (u->has_similarity)
        json_object_set_new(o, "cache_similarity", json_real(u->cache_similarity));
    json_object_set_new(o, "attempts", json_integer(u->attempts));
    json_object_set_new(o, "failovers", json_integer(u->failovers));
    set_str(o, "outcome", u->outcome);
    set_str(o, "error_code", u->error_code);
    json_object_set_new(o, "timestamp_ms", json_integer(u->timestamp_ms));
    return o;
}

#define FAIL(code, ...)                                                                            \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        rc = (code);                                                                               \
        goto cleanup;                                                                              \
    } while (0)

/* Optional string field: absent/null keeps *dst. */
static gw_err opt_str(json_t *o, const char *k, gw_arena *a, const char **dst, char *err,
                      size_t errlen)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v))
        return GW_OK;
    if (!json_is_string(v)) {
        snprintf(err, errlen, "%s must be a string", k);
        return GW_E_INVALID_REQUEST;
    }
    *dst = gw_arena_strndup(a, json_string_value(v), json_string_length(v));
    return *dst ? GW_OK : GW_E_NOMEM;
}

static gw_err req_messages(json_t *root, gw_arena *a, gw_request *req, char *err, size_t errlen)
{
    gw_err rc = GW_OK;
    json_t *msgs = json_object_get(root, "messages");
    json_t *prompt = json_object_get(root, "prompt");
    if (!msgs && json_is_string(prompt)) {
        req->messages = gw_arena_calloc(a, 1, sizeof *req->messages);
        if (!req->messages)
            return GW_E_NOMEM;
        req->messages[0].role = GW_ROLE_USER;
        req->messages[0].content = gw_arena_strdup(a, json_string_value(prompt));
        req->message_count = 1;
        return req->messages[0].content ? GW_OK : GW_E_NOMEM;
    }
    if (!json_is_array(msgs))
        FAIL(GW_E_INVALID_REQUEST, "messages must be an array (or give a prompt string)");
    size_t n = json_array_size(msgs);
    req->messages = gw_arena_calloc(a, n ? n : 1, sizeof *req->messages);
    if (!req->messages)
        return GW_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(msgs, i);
        const char *role = json_string_value(json_object_get(m, "role"));
        int r = role ? gw_role_parse(role) : -1;
        if (r < 0)
            FAIL(GW_E_INVALID_REQUEST, "messages[%zu].role is missing or unknown", i);
        if (!json_is_string(json_object_get(m, "content")))
            FAIL(GW_E_INVALID_REQUEST, "messages[%zu].content must be a string", i);
        gw_message *gm = &req->messages[i];
        gm->role = (gw_role)r;
        if ((rc = opt_str(m, "content", a, &gm->content, err, errlen)) != GW_OK ||
            (rc = opt_str(m, "name", a, &gm->name, err, errlen)) != GW_OK)
            goto cleanup;
    }
    req->message_count = n;
cleanup:
    return rc;
}

static gw_err req_lists(json_t *root, gw_arena *a, gw_request *req, char *err, size_t errlen)
{
    gw_err rc = GW_OK;
    json_t *caps = json_object_get(root, "capabilities");
    if (caps && !json_is_null(caps)) {
        if (!json_is_array(caps))
            FAIL(GW_E_INVALID_REQUEST, "capabilities must be an array of strings");
        size_t n = json_array_size(caps);
        req->capabilities = gw_arena_calloc(a, n ? n : 1, sizeof *req->capabilities);
        if (!req->capabilities)
            return GW_E_NOMEM;
        for (size_t i = 0; i < n; i++) {
            const char *s = json_string_value(json_array_get(caps, i));
            if (!s)
                FAIL(GW_E_INVALID_REQUEST, "capabilities[%zu] must be a string", i);
            req->capabilities[i] = gw_arena_strdup(a, s);
        }
        req->capability_count = n;
    }
    json_t *md = json_object_get(root, "metadata");
    if (md && !json_is_null(md)) {
        if (!json_is_object(md))
            FAIL(GW_E_INVALID_REQUEST, "metadata must be an object of strings");
        size_t n = json_object_size(md);
        req->metadata.items = gw_arena_calloc(a, n ? n : 1, sizeof *req->metadata.items);
        if (!req->metadata.items)
            return GW_E_NOMEM;
        req->metadata.count = 0;
        const char *k;
        json_t *v;
        json_object_foreach(md, k, v)
        {
            if (!json_is_string(v))
                FAIL(GW_E_INVALID_REQUEST, "metadata.%s must be a string", k);
            gw_kv *kv = &req->metadata.items[req->metadata.count++];
            kv->key = gw_arena_strdup(a, k);
            kv->value = gw_arena_strdup(a, json_string_value(v));
        }
    }
cleanup:
    return rc;
}

static gw_err req_scalars(json_t *root, gw_request *req, char *err, size_t errlen)
{
    gw_err rc = GW_OK;
    json_t *v;
    if ((v = json_object_get(root, "temperature")) && !json_is_null(v)) {
        if (!json_is_number(v))
            FAIL(GW_E_INVALID_REQUEST, "temperature must be a number");
        req->temperature = json_number_value(v);
    }
    if ((v = json_object_get(root, "max_tokens")) && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) > INT32_MAX ||
            json_integer_value(v) < INT32_MIN)
            FAIL(GW_E_INVALID_REQUEST, "max_tokens must be an integer");
        req->max_tokens = (int32_t)json_integer_value(v);
    }
    if ((v = json_object_get(root, "enable_cache")) && !json_is_null(v))
        req->enable_cache = json_is_true(v);
    if ((v = json_object_get(root, "stream")) && !json_is_null(v))
        req->stream = json_is_true(v);
    if ((v = json_object_get(root, "deadline_ms")) && !json_is_null(v)) {
        if (!json_is_integer(v))
            FAIL(GW_E_INVALID_REQUEST, "deadline_ms must be an integer (unix ms)");
        req->has_deadline = true;
        req->deadline_ms = json_integer_value(v);
    }
    if ((v = json_object_get(root, "routing_strategy")) && !json_is_null(v)) {
        int s = json_is_string(v) ? gw_strategy_parse(json_string_value(v)) : -1;
        if (s < 0)
            FAIL(GW_E_INVALID_REQUEST, "routing_strategy is not a known strategy");
        req->routing_strategy = (gw_strategy)s;
    }
cleanup:
    return rc;
}

gw_err gw_cli_json_request(const char *text, size_t len, gw_arena *a, gw_request *req,
                           char *priority_out, size_t priority_len, char *err, size_t errlen)
{
    gw_err rc = GW_OK;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    err[0] = '\0';
    if (!json_is_object(root))
        FAIL(GW_E_INVALID_REQUEST, "not a JSON object: %s", root ? "wrong type" : jerr.text);
    static const char *const strs[] = {"request_id",  "agent_did", "system_prompt", "model",
                                       "reply_topic", "batch_id",  "custom_id",     "tenant_id"};
    const char **dsts[] = {&req->request_id, &req->agent_did,   &req->system_prompt,
                           &req->model,      &req->reply_topic, &req->batch_id,
                           &req->custom_id,  &req->tenant_id};
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++)
        if ((rc = opt_str(root, strs[i], a, dsts[i], err, errlen)) != GW_OK)
            goto cleanup;
    if ((rc = req_messages(root, a, req, err, errlen)) != GW_OK ||
        (rc = req_lists(root, a, req, err, errlen)) != GW_OK ||
        (rc = req_scalars(root, req, err, errlen)) != GW_OK)
        goto cleanup;
    json_t *p = json_object_get(root, "priority");
    if (p && !json_is_null(p)) {
        const char *ps = json_string_value(p);
        if (!ps || (strcmp(ps, "high") && strcmp(ps, "normal") && strcmp(ps, "low")))
            FAIL(GW_E_INVALID_REQUEST, "priority must be high, normal or low");
        if (priority_out)
            snprintf(priority_out, priority_len, "%s", ps);
    }
cleanup:
    json_decref(root);
    if (rc == GW_E_NOMEM && !err[0])
        snprintf(err, errlen, "out of memory");
    return rc;
}
