/*
 * worker_shared: the fleet coordination objects a worker holds for its
 * pipeline: the state stack (limits, budgets, exact cache, idempotency), the
 * routing facade (registry, breaker, latency statistics) and the semantic
 * cache (store + embedder), all built from the config and sharing one Redis
 * connection. With state.backend = memory (and in dev mode) every one of
 * them uses its in-memory backend and redis is NULL.
 *
 * Lifetime: built by gw_worker_new; released by gw_worker_release_shared
 * once no job can start another operation (after the drain, or at free).
 * Release order: semantic cache, embedder, semantic store, routing, state,
 * then the Redis connection, whose free answers every command still in
 * flight (GW_E_SHUTTING_DOWN); jobs still alive then are aborted and ignore
 * those answers. The embedder's HTTP client closes its handles on the loop,
 * which the caller runs afterwards.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "loop/http_client.h"
#include "provider/provider_table.h"
#include "semantic/embed_http.h"
#include "state/state_config.h"
#include "worker/decode_registry.h"
#include "worker/pipeline.h"
#include "worker/worker_private.h"
#include "worker/worker_shared.h"

/* Hyperplanes of the semantic LSH: the same in every worker of the fleet
 * (and in modelgw-semantic-eval's default), or they would not share buckets. */
enum { SEMANTIC_LSH_SEED = 7 };

static void make_worker_id(gw_worker *w)
{
    char host[32] = "host";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    for (char *c = host; *c; c++)
        if (*c == '/' || *c == ' ')
            *c = '-';
    uint64_t r = uv_hrtime() ^ ((uint64_t)getpid() << 32);
    snprintf(w->worker_id, sizeof w->worker_id, "%s-%d-%06" PRIx64, host, (int)getpid(),
             (uint64_t)((r * 0x9E3779B97F4A7C15ull) >> 40));
}

/* Provider kinds that can serve: built in (the provider table says so), or at
 * least one deployment of the kind has its credentials (no api_key_env, or
 * the variable is set). A kind left out answers E4002 when requested. */
static gw_provider_mask working_kinds(const gw_config *cfg)
{
    gw_provider_mask m = 0;
    for (int k = 0; k < GW_PROVIDER__COUNT; k++)
        if (gw_provider_info((gw_provider_kind)k)->builtin)
            m |= 1u << k; /* answered in process: nothing to configure */
    for (size_t i = 0; i < cfg->deployment_count; i++) {
        const gw_deployment *d = &cfg->deployments[i];
        bool needs_key = d->api_key_env != NULL && d->api_key_env[0] != '\0';
        if (!needs_key || d->api_key != NULL)
            m |= 1u << d->provider;
    }
    return m;
}

static gw_err open_semantic(gw_worker *w)
{
    const gw_semantic_config *sc = &w->cfg->cache.semantic;
    if (!w->cfg->cache.enabled || !sc->enabled)
        return GW_OK;
    gw_semstore_opts so = {.prefix = w->cfg->redis.key_prefix,
                           .max_candidates = (size_t)sc->max_candidates};
    gw_err err = w->redis ? gw_semstore_redis_new(w->loop, w->redis, &so, &w->semstore)
                          : gw_semstore_mem_new(w->loop, &so, &w->semstore);
    if (err != GW_OK)
        return err;
    gw_semcache_opts o = {.enabled = true,
                          .threshold = sc->threshold,
                          .threshold_floor = sc->threshold_floor,
                          .max_messages = sc->max_messages,
                          .max_prompt_bytes = (size_t)sc->max_prompt_bytes,
                          .bands = sc->bands,
                          .rows = sc->rows,
                          .seed = SEMANTIC_LSH_SEED};
    if (sc->embedder == NULL || strcmp(sc->embedder, "hash") == 0) {
        if (sc->dim != GW_EMBED_HASH_DIM) {
            GW_ERROR("semantic_dim_mismatch", "setting", "cache.semantic.dim", "required",
                     "512 for the hash embedder");
            return GW_E_CONFIG;
        }
        return gw_semcache_new(w->semstore, &o, &w->semcache);
    }
    const gw_deployment *d = gw_config_deployment(w->cfg, sc->embedder);
    if (d == NULL || (d->provider != GW_PROVIDER_OPENAI && d->provider != GW_PROVIDER_OLLAMA)) {
        GW_ERROR("semantic_embedder_unknown", "embedder", sc->embedder);
        return GW_E_CONFIG;
    }
    gw_embed_http_opts eo = {.dim = (size_t)sc->dim};
    if ((err = gw_http_new(w->loop, NULL, &w->embed_http)) != GW_OK ||
        (err = gw_embedder_http_new(w->embed_http, d, &eo, &w->embedder)) != GW_OK)
        return err;
    return gw_semcache_new_with(w->semstore, w->embedder, &o, &w->semcache);
}

gw_err gw_worker_open_shared(gw_worker *w)
{
    make_worker_id(w);
    gw_codec_limits lim = *gw_codec_get_limits(w->codec);
    w->store_codec = gw_codec_new(&lim);
    if (w->store_codec == NULL)
        return GW_E_NOMEM;
    gw_codec_set_decode_framing(w->store_codec, GW_FRAMING_SINGLE_OBJECT);
    gw_buf_init(&w->store_buf, lim.max_message_bytes * 2);
    gw_err err = gw_state_open(w->loop, w->cfg, w->clock, w->clock_ud, &w->redis, &w->state);
    if (err != GW_OK) {
        GW_ERROR("state_open_failed", "error", gw_err_name(err));
        return err;
    }
    char msg[256] = "";
    err = gw_routing_new(w->cfg, w->redis, w->providers, working_kinds(w->cfg),
                         uv_hrtime() ^ (uint64_t)getpid(), msg, sizeof msg, &w->routing);
    if (err != GW_OK) {
        GW_ERROR("routing_config", "error", msg[0] ? msg : gw_err_name(err));
        return err;
    }
    if ((err = open_semantic(w)) != GW_OK) {
        GW_ERROR("semantic_cache_open_failed", "error", gw_err_name(err));
        return err;
    }
    if ((err = gw_regpath_open(w)) != GW_OK) {
        GW_ERROR("schema_registry_open_failed", "error", gw_err_name(err));
        return err;
    }
    GW_INFO("worker_identity", "worker_id", w->worker_id, "state", w->redis ? "redis" : "memory",
            "semantic_cache", w->semcache ? "on" : "off");
    return GW_OK;
}

void gw_worker_release_shared(gw_worker *w)
{
    for (gw_job *j = w->jobs; j != NULL; j = j->next)
        gw_job_abort(j);
    gw_stage_state_redo_clear(w);
    gw_regpath_close(w);
    if (w->semcache) {
        gw_semcache_free(w->semcache);
        w->semcache = NULL;
    }
    if (w->embedder) {
        gw_embedder_free(w->embedder);
        w->embedder = NULL;
    }
    if (w->semstore) {
        gw_semstore_free(w->semstore);
        w->semstore = NULL;
    }
    if (w->routing) {
        gw_routing_free(w->routing);
        w->routing = NULL;
    }
    if (w->state) {
        gw_state_free(w->state);
        w->state = NULL;
    }
    if (w->redis) {
        gw_redis_free(w->redis);
        w->redis = NULL;
    }
    if (w->embed_http) {
        gw_http_free(w->embed_http);
        w->embed_http = NULL;
    }
    if (w->store_codec) {
        gw_codec_free(w->store_codec);
        w->store_codec = NULL;
        gw_buf_cleanup(&w->store_buf);
    }
}

static void bg_done(gw_worker *w, gw_err err)
{
    if (w->bg_pending > 0)
        w->bg_pending--;
    if (err != GW_OK && err != GW_E_SHUTTING_DOWN) {
        w->n.bg_errors++;
        GW_WARN("state_write_failed", "error", gw_err_name(err));
    }
    gw_worker_bg_settled(w);
}

void gw_worker_bg_ack(void *ud, const gw_state_ack *a)
{
    bg_done(ud, a->err);
}

void gw_worker_bg_sem(void *ud, gw_err err)
{
    bg_done(ud, err);
}
