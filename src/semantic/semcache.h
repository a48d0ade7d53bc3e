/*
 * semcache: the semantic tier of the response cache.
 *
 * For an eligible request it derives the namespace that must match exactly
 * (tenant, model choice and strategy, embedder tag, system prompt, every
 * output-affecting parameter, the conversation before the last user turn),
 * embeds the last user turn, and asks the semstore for LSH candidates. A
 * candidate hits when its cosine reaches the threshold (per request through
 * metadata `cache_similarity_threshold`, never below the configured floor)
 * and the guard rails agree (numbers, negations, quotes, entity order). The
 * hit names the exact-cache key of the stored response: the response bytes
 * themselves stay in the exact tier, stored once.
 *
 * gw_sem_query is filled by gw_semcache_prepare and must stay alive (and
 * unmoved) until the lookup or store callback has run; it lives in the job.
 */
#ifndef GW_SEMANTIC_SEMCACHE_H
#define GW_SEMANTIC_SEMCACHE_H

#include <stdbool.h>

#include "model/model.h"
#include "semantic/embed.h"
#include "semantic/semstore.h"

typedef struct {
    bool enabled;
    double threshold;        /* default cosine threshold */
    double threshold_floor;  /* per-request thresholds are clamped up to this */
    int max_messages;        /* eligibility: at most this many messages */
    size_t max_prompt_bytes; /* eligibility: last user turn at most this long */
    int bands, rows;         /* LSH shape */
    uint64_t seed;           /* hyperplane seed: the same for the whole fleet */
} gw_semcache_opts;

typedef struct gw_semcache gw_semcache;

typedef struct {
    char ns[112];     /* "<embedder tag>:<hash>" */
    char id[65];      /* entry id: hash of the exact key */
    const char *text; /* last user turn (points into the request) */
    double threshold;
    float vec[GW_EMBED_HASH_DIM];
    uint64_t band_keys[GW_LSH_MAX_BANDS];
    int bands;
    /* lookup bookkeeping */
    void (*cb)(void *ud, gw_err err, const char *exact_key, double similarity);
    void *ud;
    char hit_key[GW_SEM_MAX_KEY];
} gw_sem_query;

gw_err gw_semcache_new(gw_semstore *store, const gw_semcache_opts *o, gw_semcache **out);
void gw_semcache_free(gw_semcache *c);

/* Eligibility and query preparation. Returns false (and leaves q unusable)
 * when the request may not use the semantic tier. tenant and model_choice
 * are the same strings the exact tier namespaces with. */
bool gw_semcache_prepare(gw_semcache *c, const gw_request *req, const char *tenant,
                         gw_sem_query *q);

/* Find the best match: cb(exact_key or NULL on a miss, similarity). */
void gw_semcache_lookup(gw_semcache *c, gw_sem_query *q,
                        void (*cb)(void *ud, gw_err err, const char *exact_key, double similarity),
                        void *ud);

/* Index q under exact_key for ttl_s seconds. */
void gw_semcache_store(gw_semcache *c, gw_sem_query *q, const char *exact_key, int32_t ttl_s,
                       gw_sem_put_cb cb, void *ud);

#endif
