/*
 * embed_http: embedders behind an HTTP deployment (internal to
 * src/semantic/; callers use embedder.h).
 *
 * Dialects: OpenAI-compatible POST {base_url}/v1/embeddings and Ollama POST
 * {base_url}/api/embed, both with {"model": ..., "input": [texts...]}.
 *
 * Batching: texts asked for within batch_window_ms go out as ONE request of
 * at most max_batch texts (a full batch leaves at once). A text identical to
 * one already waiting or in flight joins it instead of being sent twice.
 *
 * Caching: every returned vector is L2-normalised and kept in a bounded LRU
 * keyed by sha256(embedder tag, text); a hit is answered on the next loop
 * turn without I/O.
 *
 * Checks: the response must carry exactly one vector per input, each of the
 * configured dimension (another dimension is GW_E_CONFIG: the deployment is
 * not the model the cache was configured for), all numbers finite; anything
 * else is GW_E_PROVIDER_BAD_RESPONSE. HTTP statuses map as for chat calls
 * (gw_phttp_map_status). The API key goes into one header and nowhere else.
 *
 * Invariants: every waiter is in exactly one place (the pending batch, one
 * in-flight batch, or the ready queue) and is answered exactly once; the
 * number of waiters never exceeds max_queued.
 */
#ifndef GW_SEMANTIC_EMBED_HTTP_H
#define GW_SEMANTIC_EMBED_HTTP_H

#include "semantic/embedder.h"

typedef struct gw_embed_http gw_embed_http;

gw_err gw_embed_http_new(gw_http *http, const gw_deployment *d, const gw_embed_http_opts *o,
                         gw_embedder_stats *stats, gw_embed_http **out);
void gw_embed_http_free(gw_embed_http *h);
void gw_embed_http_embed(gw_embed_http *h, const char *text, size_t len, gw_embed_cb cb, void *ud);
/* The tag of deployment d with dimension dim, into out. */
void gw_embed_http_tag(const gw_deployment *d, size_t dim, char *out, size_t outlen);

#define GW_EMBED_HTTP_VERSION 1

#endif
