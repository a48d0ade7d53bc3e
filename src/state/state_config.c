/*
 * state_config: builds the worker's state stack from gw_config.
 *
 *   worker.dev or state.backend = memory  -> memory backend (no policy: it
 *                                            cannot be unavailable)
 *   otherwise                             -> gw_redis connection + Redis
 *                                            backend wrapped in the failure
 *                                            policy (failure_policy.*)
 * With redis.mode = cluster the connection is a cluster client (redis.nodes
 * are its seeds) behind the same gw_redis API. The connection is returned too so other modules
 * (breakers, latency stats) share it: one connection per worker, one pipeline.
 */
#include "state/state_config.h"

void gw_redis_opts_from_config(const gw_config *cfg, gw_redis_opts *o)
{
    const gw_redis_config *rc = &cfg->redis;
    *o = (gw_redis_opts){
        .host = rc->host,
        .port = rc->port,
        .password = rc->password,
        .username = rc->username,
        .db = rc->db,
        .connect_timeout_ms = rc->connect_timeout_ms > 0 ? (uint32_t)rc->connect_timeout_ms : 0,
        .command_timeout_ms = rc->command_timeout_ms > 0 ? (uint32_t)rc->command_timeout_ms : 0,
        .reconnect_min_ms = rc->reconnect_min_ms > 0 ? (uint32_t)rc->reconnect_min_ms : 0,
        .reconnect_max_ms = rc->reconnect_max_ms > 0 ? (uint32_t)rc->reconnect_max_ms : 0,
        .cluster_nodes = rc->mode == GW_CFG_REDIS_CLUSTER ? rc->nodes : NULL,
    };
    gw_redis_opts_defaults(o);
}

static gw_state_fail fail_of(gw_cfg_fail_policy p)
{
    return p == GW_CFG_FAIL_CLOSED ? GW_STATE_FAIL_CLOSED : GW_STATE_FAIL_OPEN;
}

gw_err gw_state_open(uv_loop_t *loop, const gw_config *cfg, gw_state_clock_fn clock, void *clock_ud,
                     gw_redis **redis_out, gw_state **out)
{
    gw_err err;
    *out = NULL;
    *redis_out = NULL;
    gw_state_opts so = {
        .key_prefix = cfg->redis.key_prefix,
        .max_entry_bytes =
            cfg->cache.max_entry_bytes > 0 ? (uint32_t)cfg->cache.max_entry_bytes : 0,
        .clock = clock,
        .clock_ud = clock_ud,
    };
    if (cfg->worker.dev || cfg->state.backend == GW_CFG_STATE_MEMORY)
        return gw_state_mem_new(loop, &so, out);
    gw_redis_opts ro;
    gw_redis_opts_from_config(cfg, &ro);
    gw_redis *r = NULL;
    gw_state *inner = NULL;
    err = gw_redis_new(loop, &ro, &r);
    if (err != GW_OK)
        goto fail;
    err = gw_state_redis_new(loop, r, &so, &inner);
    if (err != GW_OK)
        goto fail_redis;
    gw_state_policy_opts po = {
        .limits = fail_of(cfg->failure_policy.limits),
        .cache = fail_of(cfg->failure_policy.cache),
        .idempotency = fail_of(cfg->failure_policy.idempotency),
        .expected_workers =
            cfg->redis.expected_workers > 0 ? (uint32_t)cfg->redis.expected_workers : 1,
    };
    err = gw_state_policy_new(loop, inner, &po, out);
    if (err != GW_OK)
        goto fail_inner;
    *redis_out = r;
    return GW_OK;
fail_inner:
    gw_state_free(inner);
fail_redis:
    gw_redis_free(r);
fail:
    return err;
}
