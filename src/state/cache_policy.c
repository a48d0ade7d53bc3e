/*
 * cache_policy: see cache_policy.h. The key encoding is versioned ("v1"):
 * change the tag whenever the encoding changes, so old entries never match.
 */
#include "state/cache_policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/sha.h"

/* "true"/"1"/"yes" -> 1, "false"/"0"/"no" -> 0, else -1. */
static int parse_bool(const char *s)
{
    static const char *const yes[] = {"true", "1", "yes"}, *const no[] = {"false", "0", "no"};
    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return 1;
        if (strcasecmp(s, no[i]) == 0)
            return 0;
    }
    return -1;
}

static gw_err meta_bool(const gw_request *req, const char *key, bool *out)
{
    const char *v = gw_map_get(&req->metadata, key);
    *out = false;
    if (!v)
        return GW_OK;
    int b = parse_bool(v);
    if (b < 0)
        return GW_E_BAD_METADATA;
    *out = b == 1;
    return GW_OK;
}

static gw_err meta_ttl(const gw_cache_config *cfg, const gw_request *req, int32_t *ttl_s)
{
    const char *v = gw_map_get(&req->metadata, "cache_ttl_s");
    *ttl_s = cfg->ttl_s;
    if (!v)
        return GW_OK;
    char *end;
    long long n = strtoll(v, &end, 10);
    if (end == v || *end != '\0' || n <= 0)
        return GW_E_BAD_METADATA;
    if (cfg->max_ttl_s > 0 && n > cfg->max_ttl_s)
        n = cfg->max_ttl_s;
    *ttl_s = (int32_t)n;
    return GW_OK;
}

gw_err gw_cache_policy_decide(const gw_cache_config *cfg, const gw_request *req,
                              gw_cache_decision *out)
{
    bool no_store, refresh;
    gw_err err;
    memset(out, 0, sizeof(*out));
    if ((err = meta_bool(req, "cache_no_store", &no_store)) != GW_OK)
        return err;
    if ((err = meta_bool(req, "cache_refresh", &refresh)) != GW_OK)
        return err;
    if ((err = meta_ttl(cfg, req, &out->ttl_s)) != GW_OK)
        return err;
    if (!cfg->enabled || !req->enable_cache)
        return GW_OK;
    if (req->temperature > 0 && !cfg->temperature_above_zero)
        return GW_OK;
    out->lookup = !refresh;
    out->refresh = refresh;
    out->store = !no_store && out->ttl_s > 0;
    return GW_OK;
}

bool gw_cache_policy_storable(const gw_cache_config *cfg, gw_err err, const char *finish_reason,
                              bool truncated)
{
    if (err != GW_OK || truncated || !finish_reason)
        return false;
    if (cfg->store_finish_reason_count == 0)
        return strcmp(finish_reason, "stop") == 0;
    for (size_t i = 0; i < cfg->store_finish_reason_count; i++)
        if (cfg->store_finish_reasons[i] &&
            strcmp(cfg->store_finish_reasons[i], finish_reason) == 0)
            return true;
    return false;
}

/* One field: 8-byte big-endian length (or all ones for "absent"), bytes. */
static void put_field(gw_sha256 *c, const char *s, size_t len, bool present)
{
    uint8_t n[8];
    uint64_t v = present ? (uint64_t)len : UINT64_MAX;
    for (int i = 0; i < 8; i++)
        n[i] = (uint8_t)(v >> (56 - 8 * i));
    gw_sha256_update(c, n, sizeof(n));
    if (present && len)
        gw_sha256_update(c, s, len);
}

static void put_str(gw_sha256 *c, const char *s)
{
    put_field(c, s, s ? strlen(s) : 0, s != NULL);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The request v3 fields (tools, tool calls, structured output, sampling),
 * hashed only when a request has any, so the keys of requests without them
 * stay what they were. */
static void put_v3_fields(gw_sha256 *c, const gw_request *req)
{
    bool any = req->tool_count > 0 || req->tool_choice != NULL || req->response_format != NULL ||
               req->stop_count > 0 || req->has_top_p || req->has_seed;
    for (size_t i = 0; !any && i < req->message_count; i++)
        any = req->messages[i].tool_call_count > 0 || req->messages[i].tool_call_id != NULL;
    if (!any)
        return;
    char num[64];
    put_str(c, "v3");
    snprintf(num, sizeof(num), "%zu", req->tool_count);
    put_str(c, num);
    for (size_t i = 0; i < req->tool_count; i++) {
        put_str(c, req->tools[i].name);
        put_str(c, req->tools[i].description);
        put_str(c, req->tools[i].parameters);
    }
    put_str(c, req->tool_choice);
    const gw_response_format *f = req->response_format;
    put_str(c, f ? f->type : NULL);
    put_str(c, f ? f->name : NULL);
    put_str(c, f ? f->schema : NULL);
    put_str(c, f && f->strict ? "strict" : "");
    snprintf(num, sizeof(num), "%zu", req->stop_count);
    put_str(c, num);
    for (size_t i = 0; i < req->stop_count; i++)
        put_str(c, req->stop[i]);
    snprintf(num, sizeof(num), "%.17g", req->top_p);
    put_str(c, req->has_top_p ? num : NULL);
    snprintf(num, sizeof(num), "%lld", (long long)req->seed);
    put_str(c, req->has_seed ? num : NULL);
    for (size_t i = 0; i < req->message_count; i++) {
        const gw_message *m = &req->messages[i];
        put_str(c, m->tool_call_id);
        snprintf(num, sizeof(num), "%zu", m->tool_call_count);
        put_str(c, num);
        for (size_t k = 0; k < m->tool_call_count; k++) {
            put_str(c, m->tool_calls[k].id);
            put_str(c, m->tool_calls[k].name);
            put_str(c, m->tool_calls[k].arguments);
        }
    }
}

gw_err gw_cache_key_compute(const gw_request *req, bool shared, char out[GW_CACHE_KEY_HEX])
{
    const char *caps[GW_CACHE_MAX_CAPABILITIES];
    if (req->capability_count > GW_CACHE_MAX_CAPABILITIES)
        return GW_E_LIMIT;
    gw_sha256 c;
    char num[64];
    gw_sha256_init(&c);
    put_str(&c, "v1");
    put_str(&c,
            shared ? "*" : (req->tenant_id && *req->tenant_id ? req->tenant_id : req->agent_did));
    put_str(&c, req->model);
    put_str(&c, gw_strategy_name(req->routing_strategy));
    put_str(&c, req->system_prompt);
    snprintf(num, sizeof(num), "%.17g", req->temperature == 0 ? 0.0 : req->temperature);
    put_str(&c, num);
    snprintf(num, sizeof(num), "%d", (int)req->max_tokens);
    put_str(&c, num);
    for (size_t i = 0; i < req->capability_count; i++)
        caps[i] = req->capabilities[i] ? req->capabilities[i] : "";
    qsort(caps, req->capability_count, sizeof(caps[0]), cmp_str);
    snprintf(num, sizeof(num), "%zu", req->capability_count);
    put_str(&c, num);
    for (size_t i = 0; i < req->capability_count; i++)
        put_str(&c, caps[i]);
    snprintf(num, sizeof(num), "%zu", req->message_count);
    put_str(&c, num);
    for (size_t i = 0; i < req->message_count; i++) {
        put_str(&c, gw_role_name(req->messages[i].role));
        put_str(&c, req->messages[i].name);
        put_str(&c, req->messages[i].content);
    }
    put_v3_fields(&c, req);
    uint8_t d[32];
    gw_sha256_final(&c, d);
    gw_hex(d, sizeof(d), out);
    return GW_OK;
}
