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
 * The embedder is any gw_embedder (embedder.h). A synchronous one (the
 * hashing embedder) embeds inside gw_semcache_prepare; an HTTP one embeds
 * asynchronously as the first step of gw_semcache_lookup (or of
 * gw_semcache_store when no lookup ran), and the vector is kept in the query
 * so a lookup followed by a store embeds once.
 *
 * gw_sem_query is filled by gw_semcache_prepare and must stay alive (and
 * unmoved) until the lookup or store callback has run; it lives in the job.
 * Call gw_semcache_query_cleanup when done with it (it frees the vector of an
 * embedder wider than GW_EMBED_HASH_DIM; a no-op otherwise).
 *
 * Pipeline use: prepare -> lookup (async) -> on a hit fetch the exact-cache
 * entry named by exact_key; after a successful exact-tier store -> store.
 */
#ifndef GW_SEMANTIC_SEMCACHE_H
#define GW_SEMANTIC_SEMCACHE_H

#include <stdbool.h>

#include "model/model.h"
#include "semantic/embed.h"
#include "semantic/embedder.h"
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

typedef void (*gw_sem_lookup_cb)(void *ud, gw_err err, const char *exact_key, double similarity);

typedef struct {
    char ns[200];     /* "<embedder tag>:<hash>" */
    char id[65];      /* entry id: hash of the exact key */
    const char *text; /* last user turn (points into the request) */
    size_t text_len;
    double threshold;
    float *vec; /* dim values: vec_inline, or allocated for wider embedders */
    size_t dim;
    bool embedded; /* vec and band_keys are filled */
    float vec_inline[GW_EMBED_HASH_DIM];
    uint64_t band_keys[GW_LSH_MAX_BANDS];
    int bands;
    /* asynchronous bookkeeping */
    gw_semcache *c;
    gw_sem_lookup_cb cb;
    gw_sem_put_cb put_cb;
    void *ud;
    int32_t ttl_s;
    char hit_key[GW_SEM_MAX_KEY];   /* lookup: the hit */
    char store_key[GW_SEM_MAX_KEY]; /* store: the exact key being indexed */
} gw_sem_query;

/* With the built-in hashing embedder, embedded synchronously. */
gw_err gw_semcache_new(gw_semstore *store, const gw_semcache_opts *o, gw_semcache **out);
/* With any embedder; e must outlive the cache. The LSH has e's dimension. */
gw_err gw_semcache_new_with(gw_semstore *store, gw_embedder *e, const gw_semcache_opts *o,
                            gw_semcache **out);
void gw_semcache_free(gw_semcache *c);
/* The namespace tag of the cache's embedder ("hash-v1-d512", ...). */
const char *gw_semcache_embedder_tag(const gw_semcache *c);

/* Eligibility and query preparation. Returns false (and leaves q unusable)
 * when the request may not use the semantic tier. tenant and model_choice
 * are the same strings the exact tier namespaces with. */
bool gw_semcache_prepare(gw_semcache *c, const gw_request *req, const char *tenant,
                         gw_sem_query *q);

/* Find the best match: cb(exact_key or NULL on a miss, similarity). An
 * embedding failure is reported as err (treat it as a miss). */
void gw_semcache_lookup(gw_semcache *c, gw_sem_query *q, gw_sem_lookup_cb cb, void *ud);

/* Index q under exact_key (copied) for ttl_s seconds. */
void gw_semcache_store(gw_semcache *c, gw_sem_query *q, const char *exact_key, int32_t ttl_s,
                       gw_sem_put_cb cb, void *ud);

/* Frees what prepare allocated; safe after a failed prepare and twice. */
void gw_semcache_query_cleanup(gw_sem_query *q);

#endif
