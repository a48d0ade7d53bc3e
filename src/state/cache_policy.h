/*
 * cache_policy: what the response cache may do with one request, and the
 * exact cache key. Pure functions: no I/O, no allocation beyond the stack.
 *
 * Decision (gw_cache_policy_decide), in order:
 *   cache.enabled = false or request enable_cache = false -> bypass both ways;
 *   temperature > 0 and cache.temperature_above_zero = false -> bypass;
 *   metadata cache_refresh = true  -> do not read, but lock and store;
 *   metadata cache_no_store = true -> read, never store;
 *   metadata cache_ttl_s = N       -> TTL N seconds, capped at cache.max_ttl_s.
 * Malformed metadata values are GW_E_BAD_METADATA (a caller error).
 *
 * Storable answers (gw_cache_policy_storable): no error, not truncated, and a
 * finish reason listed in cache.store_finish_reasons ("stop" when the list
 * is empty).
 *
 * Key (gw_cache_key_compute): SHA-256, in hex, of a length-prefixed encoding
 * of every field that changes the answer: the namespace (tenant_id, else
 * agent_did; "*" when cache.shared), the preferred model, the routing
 * strategy, the system prompt, temperature, max_tokens, the capabilities
 * sorted, and each message's role, name and content; when a request has any
 * of them, the v3 fields too (tools, tool_choice, response_format, stop,
 * top_p, seed, each message's tool calls and tool_call_id). `stream` is left out,
 * so a streamed request can be answered from a non-streamed one.
 */
#ifndef GW_STATE_CACHE_POLICY_H
#define GW_STATE_CACHE_POLICY_H

#include <stdbool.h>

#include "common/err.h"
#include "config/config.h"
#include "model/model.h"

enum {
    GW_CACHE_KEY_HEX = 64 + 1,      /* hex digest + NUL */
    GW_CACHE_MAX_CAPABILITIES = 64, /* a request with more is GW_E_LIMIT */
};

typedef struct {
    bool lookup;   /* read the cache before routing */
    bool store;    /* store a storable answer */
    bool refresh;  /* cache_refresh: take the single-flight lock without reading */
    int32_t ttl_s; /* when storing */
} gw_cache_decision;

gw_err gw_cache_policy_decide(const gw_cache_config *cfg, const gw_request *req,
                              gw_cache_decision *out);

bool gw_cache_policy_storable(const gw_cache_config *cfg, gw_err err, const char *finish_reason,
                              bool truncated);

gw_err gw_cache_key_compute(const gw_request *req, bool shared, char out[GW_CACHE_KEY_HEX]);

#endif
