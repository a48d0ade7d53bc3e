/*
 * embedder: one asynchronous interface over every text embedder of the
 * semantic cache.
 *
 *   - "hash": the built-in hashing embedder (embed.h), GW_EMBED_HASH_DIM
 *     dimensions, no I/O. gw_embedder_embed answers on the next loop turn;
 *     gw_embedder_embed_now answers at once (the semantic tier uses that to
 *     skip the loop turn).
 *   - HTTP (embed_http.h): an embedding deployment of the registry, OpenAI
 *     /v1/embeddings or Ollama /api/embed, batched and cached per text.
 *
 * Each embedder has a tag "<id>-v<version>-d<dim>" that goes into the cache
 * namespace, so vectors of different embedders (or of a changed one) are
 * never compared with each other.
 *
 * Callbacks run exactly once and never inside the call that started them.
 * The vector handed to a callback is unit length (or all zeros for text
 * without features) and lives only during the callback. gw_embedder_free
 * answers what is still pending with GW_E_SHUTTING_DOWN; its memory is
 * released by the loop's close callbacks, so run the loop afterwards.
 */
#ifndef GW_SEMANTIC_EMBEDDER_H
#define GW_SEMANTIC_EMBEDDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/err.h"
#include "model/deployment.h"
#include "semantic/embed.h"

typedef struct gw_embedder gw_embedder;
typedef struct gw_http gw_http;

typedef void (*gw_embed_cb)(void *ud, gw_err err, const float *vec, size_t dim);

/* Options of an HTTP embedder; zero fields take the defaults. */
typedef struct {
    size_t dim; /* REQUIRED: the model's dimension; a response of another is an error */
    int32_t batch_window_ms; /* texts arriving within this window share one call (default 2) */
    size_t max_batch;        /* texts per HTTP call (default 32, at most 256) */
    size_t max_queued;       /* texts waiting or in flight (default 4096); beyond: SATURATED */
    size_t cache_entries;    /* per-text LRU of vectors (default 4096); SIZE_MAX: none */
    size_t max_text_bytes;   /* longer texts are refused with GW_E_LIMIT (default 64 KiB) */
    int32_t timeout_ms; /* per HTTP call (default: the deployment's total timeout, else 10 s) */
} gw_embed_http_opts;

typedef struct {
    uint64_t texts;      /* embed calls */
    uint64_t cache_hits; /* answered from the per-text LRU */
    uint64_t coalesced;  /* joined an identical text already waiting or in flight */
    uint64_t http_calls; /* HTTP requests sent */
    uint64_t http_texts; /* texts sent in them */
    uint64_t errors;     /* callbacks answered with an error */
} gw_embedder_stats;

gw_err gw_embedder_hash_new(uv_loop_t *loop, gw_embedder **out);
/* d (provider openai or ollama) and http must outlive the embedder; the API
 * key is read from d at each call and never copied into logs or errors. */
gw_err gw_embedder_http_new(gw_http *http, const gw_deployment *d, const gw_embed_http_opts *o,
                            gw_embedder **out);
void gw_embedder_free(gw_embedder *e);

void gw_embedder_embed(gw_embedder *e, const char *text, size_t len, gw_embed_cb cb, void *ud);
/* Synchronous embedding where the embedder can (the hashing one): fills
 * out[gw_embedder_dim(e)] and returns true; false for HTTP embedders. */
bool gw_embedder_embed_now(gw_embedder *e, const char *text, size_t len, float *out);

/* Namespace tag, e.g. "hash-v1-d512" or "openai-all-MiniLM-L6-v2-1a2b3c4d-v1-d384". */
const char *gw_embedder_name(const gw_embedder *e);
size_t gw_embedder_dim(const gw_embedder *e);
void gw_embedder_stats_get(const gw_embedder *e, gw_embedder_stats *out);

#endif
