/*
 * semstore: the shared similarity index of the semantic cache.
 *
 * Entries live in a namespace (a string that must match exactly: tenant,
 * model choice, embedder, system prompt and parameter hashes, conversation
 * prefix). An entry holds an int8-quantised unit vector, the compared text
 * (the last user turn, for the guard rails) and the exact-cache key of the
 * stored response. It is indexed under one LSH bucket per band.
 *
 * Two backends, one behaviour:
 *   - Redis (plain Redis 7, no module): per namespace and band bucket a SET
 *     of entry ids, per entry a STRING with its blob, all with TTLs. A search
 *     is ONE script call: SRANDMEMBER (bounded) of every band bucket, ids
 *     ranked by the number of bands they share, cap, GET of each
 *     candidate's blob; ids whose blob expired are SREM'd on the way
 *     (lazy cleanup). Exact cosine is computed in the worker, never in Redis.
 *     Bucket sets are capped (random eviction) so one hot bucket cannot grow
 *     without limit. Key names are built inside the scripts, which suits a
 *     standalone Redis (not Redis Cluster); see docs/semantic-cache.md.
 *   - memory: the same structure in process (dev mode, unit tests).
 *
 * Callbacks run exactly once and never inside the call that started them.
 * Candidate pointers are valid only during the callback.
 */
#ifndef GW_SEMANTIC_SEMSTORE_H
#define GW_SEMANTIC_SEMSTORE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/err.h"
#include "semantic/embed.h"

typedef struct gw_semstore gw_semstore;
typedef struct gw_redis gw_redis;

enum {
    GW_SEM_MAX_CANDIDATES = 256,
    GW_SEM_MAX_TEXT = 4096, /* compared text stored per entry, bytes */
    GW_SEM_MAX_KEY = 256,
};

typedef struct {
    const char *id;
    const int8_t *vec; /* dim values */
    size_t dim;
    const char *text;      /* NUL-terminated */
    const char *exact_key; /* NUL-terminated */
} gw_sem_candidate;

typedef void (*gw_sem_search_cb)(void *ud, gw_err err, const gw_sem_candidate *c, size_t n);
typedef void (*gw_sem_put_cb)(void *ud, gw_err err);

typedef struct {
    const char *prefix;    /* key prefix, e.g. "mgw:" */
    size_t max_per_bucket; /* cap of one band bucket (default 512) */
    size_t max_candidates; /* per search (default 32, <= GW_SEM_MAX_CANDIDATES) */
    size_t max_entries;    /* memory backend only (default 100000) */
} gw_semstore_opts;

gw_err gw_semstore_mem_new(uv_loop_t *loop, const gw_semstore_opts *o, gw_semstore **out);
/* r must outlive the store; scripts are registered on r. */
gw_err gw_semstore_redis_new(uv_loop_t *loop, gw_redis *r, const gw_semstore_opts *o,
                             gw_semstore **out);
/* Pending callbacks are answered GW_E_SHUTTING_DOWN. */
void gw_semstore_free(gw_semstore *s);

void gw_semstore_search(gw_semstore *s, const char *ns, const uint64_t *band_keys, int bands,
                        gw_sem_search_cb cb, void *ud);
/* vec is a unit float vector; it is quantised to int8. */
void gw_semstore_put(gw_semstore *s, const char *ns, const char *id, const float *vec, size_t dim,
                     const char *text, const char *exact_key, const uint64_t *band_keys, int bands,
                     int32_t ttl_s, gw_sem_put_cb cb, void *ud);

/* Quantise a unit vector (scale so the largest |component| maps to 127). */
void gw_sem_quantise(const float *v, size_t dim, int8_t *out);
/* Cosine between a float query and a quantised candidate. */
double gw_sem_cosine_q(const float *q, const int8_t *c, size_t dim);

/* Entry blob: u16 dim | dim x i8 | u16 text_len | text | exact_key (rest). */
size_t gw_sem_blob_encode(const int8_t *q, size_t dim, const char *text, const char *exact_key,
                          uint8_t *out, size_t cap);
/* Points into blob; text and exact_key are copied NUL-terminated into the
 * given buffers. Returns 0 or -1 when malformed. */
int gw_sem_blob_decode(const uint8_t *blob, size_t len, gw_sem_candidate *c, char *text,
                       size_t text_cap, char *key, size_t key_cap);

#endif
