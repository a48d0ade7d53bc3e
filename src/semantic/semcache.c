/* semcache: see semcache.h. */
#include "semantic/semcache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sha.h"
#include "semantic/verify.h"

/* embedder NULL: the built-in hashing embedder, called directly. */
struct gw_semcache {
    gw_semstore *store;
    gw_embedder *embedder;
    gw_semcache_opts o;
    gw_lsh lsh;
    size_t dim;
    char tag[128];
};

static gw_err semcache_init(gw_semstore *store, gw_embedder *e, const gw_semcache_opts *o,
                            gw_semcache **out)
{
    gw_semcache *c = calloc(1, sizeof *c);
    if (c == NULL)
        return GW_E_NOMEM;
    c->store = store;
    c->embedder = e;
    c->o = *o;
    c->dim = e ? gw_embedder_dim(e) : GW_EMBED_HASH_DIM;
    if (gw_lsh_init(&c->lsh, c->dim, o->bands, o->rows, o->seed) != 0) {
        free(c);
        return GW_E_CONFIG;
    }
    if (e != NULL)
        snprintf(c->tag, sizeof c->tag, "%s", gw_embedder_name(e));
    else
        gw_embedder_tag(GW_EMBED_HASH_ID, GW_EMBED_HASH_VERSION, GW_EMBED_HASH_DIM, c->tag,
                        sizeof c->tag);
    *out = c;
    return GW_OK;
}

gw_err gw_semcache_new(gw_semstore *store, const gw_semcache_opts *o, gw_semcache **out)
{
    return semcache_init(store, NULL, o, out);
}

gw_err gw_semcache_new_with(gw_semstore *store, gw_embedder *e, const gw_semcache_opts *o,
                            gw_semcache **out)
{
    if (e == NULL)
        return GW_E_CONFIG;
    return semcache_init(store, e, o, out);
}

void gw_semcache_free(gw_semcache *c)
{
    if (c == NULL)
        return;
    gw_lsh_cleanup(&c->lsh);
    free(c);
}

const char *gw_semcache_embedder_tag(const gw_semcache *c)
{
    return c->tag;
}

static void put_field(gw_sha256 *h, const char *s)
{
    /* Length-prefixed so ("ab","c") and ("a","bc") differ. */
    size_t n = s ? strlen(s) : 0;
    uint8_t len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)(n >> (8 * i));
    gw_sha256_update(h, len, sizeof len);
    if (n)
        gw_sha256_update(h, s, n);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The request v3 fields (tools, tool_choice, response_format, stop, top_p,
 * seed, and the earlier turns' tool calls and tool results), only when a
 * request has any: requests without them keep the namespace they had, and
 * only requests with identical tool and format settings are neighbours. */
static void put_v3_fields(gw_sha256 *h, const gw_request *req, size_t last)
{
    bool any = req->tool_count > 0 || req->tool_choice != NULL || req->response_format != NULL ||
               req->stop_count > 0 || req->has_top_p || req->has_seed;
    for (size_t i = 0; !any && i < req->message_count; i++)
        any = req->messages[i].tool_call_count > 0 || req->messages[i].tool_call_id != NULL ||
              req->messages[i].role == GW_ROLE_TOOL;
    if (!any)
        return;
    char num[64];
    put_field(h, "|v3|");
    snprintf(num, sizeof num, "%zu", req->tool_count);
    put_field(h, num);
    for (size_t i = 0; i < req->tool_count; i++) {
        put_field(h, req->tools[i].name);
        put_field(h, req->tools[i].description);
        put_field(h, req->tools[i].parameters);
    }
    put_field(h, req->tool_choice ? req->tool_choice : "|default|");
    const gw_response_format *f = req->response_format;
    put_field(h, f ? f->type : "|none|");
    put_field(h, f ? f->name : NULL);
    put_field(h, f ? f->schema : NULL);
    put_field(h, f && f->strict ? "strict" : "");
    snprintf(num, sizeof num, "%zu", req->stop_count);
    put_field(h, num);
    for (size_t i = 0; i < req->stop_count; i++)
        put_field(h, req->stop[i]);
    snprintf(num, sizeof num, "%d|%.17g|%d|%lld", req->has_top_p, req->has_top_p ? req->top_p : 0,
             req->has_seed, req->has_seed ? (long long)req->seed : 0);
    put_field(h, num);
    for (size_t i = 0; i < last; i++) {
        const gw_message *m = &req->messages[i];
        put_field(h, m->name);
        put_field(h, m->tool_call_id);
        snprintf(num, sizeof num, "%zu", m->tool_call_count);
        put_field(h, num);
        for (size_t k = 0; k < m->tool_call_count; k++) {
            put_field(h, m->tool_calls[k].id);
            put_field(h, m->tool_calls[k].name);
            put_field(h, m->tool_calls[k].arguments);
        }
    }
}

/* Everything but the last user turn's text must match exactly. */
static void namespace_hash(const gw_semcache *c, const gw_request *req, const char *tenant,
                           size_t last, char out[65])
{
    gw_sha256 h;
    gw_sha256_init(&h);
    char num[64];
    put_field(&h, tenant);
    put_field(&h, c->tag);
    put_field(&h, req->model);
    put_field(&h, gw_strategy_name(req->routing_strategy));
    put_field(&h, req->system_prompt);
    snprintf(num, sizeof num, "%.6f|%d", req->temperature, req->max_tokens);
    put_field(&h, num);
    const char *caps[32];
    size_t ncaps = req->capability_count < 32 ? req->capability_count : 32;
    for (size_t i = 0; i < ncaps; i++)
        caps[i] = req->capabilities[i];
    qsort(caps, ncaps, sizeof caps[0], cmp_str);
    for (size_t i = 0; i < ncaps; i++)
        put_field(&h, caps[i]);
    put_field(&h, "|conversation|");
    for (size_t i = 0; i < last; i++) {
        put_field(&h, gw_role_name(req->messages[i].role));
        put_field(&h, req->messages[i].content);
    }
    put_v3_fields(&h, req, last);
    uint8_t d[32];
    gw_sha256_final(&h, d);
    gw_hex(d, 16, out);
}

static double request_threshold(const gw_semcache *c, const gw_request *req)
{
    const char *v = gw_map_get(&req->metadata, "cache_similarity_threshold");
    double t = c->o.threshold;
    if (v != NULL) {
        char *end = NULL;
        double x = strtod(v, &end);
        if (end != v && *end == '\0' && x <= 1.0)
            t = x;
    }
    return t < c->o.threshold_floor ? c->o.threshold_floor : t;
}

/* Embeds now when the embedder is synchronous; leaves q->embedded false otherwise. */
static void embed_now(gw_semcache *c, gw_sem_query *q)
{
    bool done = true;
    if (c->embedder == NULL)
        gw_embed_hash(q->text, q->text_len, q->vec);
    else
        done = gw_embedder_embed_now(c->embedder, q->text, q->text_len, q->vec);
    if (done) {
        gw_lsh_keys(&c->lsh, q->vec, q->band_keys);
        q->embedded = true;
    }
}

bool gw_semcache_prepare(gw_semcache *c, const gw_request *req, const char *tenant, gw_sem_query *q)
{
    q->vec = NULL;
    q->embedded = false;
    if (!c->o.enabled || req->message_count == 0 || req->message_count > (size_t)c->o.max_messages)
        return false;
    size_t last = req->message_count - 1;
    const gw_message *m = &req->messages[last];
    if (m->role != GW_ROLE_USER || m->content == NULL)
        return false;
    size_t len = strlen(m->content);
    /* Stored texts are cut at GW_SEM_MAX_TEXT: a longer prompt could be
     * verified against a cut one, so it is never matched semantically. */
    if (len == 0 || len > c->o.max_prompt_bytes || len > GW_SEM_MAX_TEXT)
        return false;
    char hash[65];
    namespace_hash(c, req, tenant, last, hash);
    snprintf(q->ns, sizeof q->ns, "%s:%s", c->tag, hash);
    q->text = m->content;
    q->text_len = len;
    q->threshold = request_threshold(c, req);
    q->bands = c->o.bands;
    q->c = c;
    q->dim = c->dim;
    q->vec = c->dim <= GW_EMBED_HASH_DIM ? q->vec_inline : malloc(c->dim * sizeof(float));
    if (q->vec == NULL)
        return false;
    embed_now(c, q);
    return true;
}

void gw_semcache_query_cleanup(gw_sem_query *q)
{
    if (q->vec != NULL && q->vec != q->vec_inline)
        free(q->vec);
    q->vec = NULL;
}

/* Copies an asynchronously computed vector into q (and its band keys). */
static gw_err take_vector(gw_sem_query *q, gw_err err, const float *vec, size_t dim)
{
    if (err != GW_OK)
        return err;
    if (dim != q->dim || vec == NULL)
        return GW_E_CONFIG;
    memcpy(q->vec, vec, dim * sizeof(float));
    gw_lsh_keys(&q->c->lsh, q->vec, q->band_keys);
    q->embedded = true;
    return GW_OK;
}

/* Candidates above the threshold are verified best first; the first that
 * passes is the hit. At most SEM_MAX_VERIFY are verified per lookup, which
 * bounds the worker's CPU per lookup whatever the index returns. */
enum { SEM_MAX_VERIFY = 8 };
_Static_assert((int)GW_SEMV_MAX_TEXT >= (int)GW_SEM_MAX_TEXT,
               "the verifier must take every stored text");

static void on_candidates(void *ud, gw_err err, const gw_sem_candidate *cand, size_t n)
{
    gw_sem_query *q = ud;
    double sims[GW_SEM_MAX_CANDIDATES];
    if (n > GW_SEM_MAX_CANDIDATES)
        n = GW_SEM_MAX_CANDIDATES;
    for (size_t i = 0; err == GW_OK && i < n; i++)
        sims[i] = cand[i].dim == q->dim ? gw_sem_cosine_q(q->vec, cand[i].vec, cand[i].dim) : -2;
    double best = -1;
    const char *best_key = NULL;
    for (int tries = 0; err == GW_OK && tries < SEM_MAX_VERIFY && best_key == NULL; tries++) {
        size_t top = n;
        for (size_t i = 0; i < n; i++)
            if (sims[i] >= q->threshold && (top == n || sims[i] > sims[top]))
                top = i;
        if (top == n)
            break;
        if (gw_sem_verify(q->text, q->text_len, cand[top].text, strlen(cand[top].text)) ==
            GW_SEMV_OK) {
            best = sims[top];
            best_key = cand[top].exact_key;
        }
        sims[top] = -2; /* verified */
    }
    if (best_key != NULL) {
        snprintf(q->hit_key, sizeof q->hit_key, "%s", best_key);
        q->cb(q->ud, GW_OK, q->hit_key, best);
    } else {
        q->cb(q->ud, err, NULL, 0);
    }
}

static void lookup_embedded(void *ud, gw_err err, const float *vec, size_t dim)
{
    gw_sem_query *q = ud;
    err = take_vector(q, err, vec, dim);
    if (err != GW_OK) {
        q->cb(q->ud, err, NULL, 0);
        return;
    }
    gw_semstore_search(q->c->store, q->ns, q->band_keys, q->bands, on_candidates, q);
}

void gw_semcache_lookup(gw_semcache *c, gw_sem_query *q, gw_sem_lookup_cb cb, void *ud)
{
    q->cb = cb;
    q->ud = ud;
    if (!q->embedded) {
        gw_embedder_embed(c->embedder, q->text, q->text_len, lookup_embedded, q);
        return;
    }
    gw_semstore_search(c->store, q->ns, q->band_keys, q->bands, on_candidates, q);
}

static void put_now(gw_sem_query *q)
{
    gw_semstore_put(q->c->store, q->ns, q->id, q->vec, q->dim, q->text, q->store_key, q->band_keys,
                    q->bands, q->ttl_s, q->put_cb, q->ud);
}

static void store_embedded(void *ud, gw_err err, const float *vec, size_t dim)
{
    gw_sem_query *q = ud;
    err = take_vector(q, err, vec, dim);
    if (err != GW_OK) {
        q->put_cb(q->ud, err);
        return;
    }
    put_now(q);
}

void gw_semcache_store(gw_semcache *c, gw_sem_query *q, const char *exact_key, int32_t ttl_s,
                       gw_sem_put_cb cb, void *ud)
{
    gw_sha256 h;
    uint8_t d[32];
    gw_sha256_init(&h);
    gw_sha256_update(&h, exact_key, strlen(exact_key));
    gw_sha256_final(&h, d);
    gw_hex(d, 16, q->id);
    snprintf(q->store_key, sizeof q->store_key, "%s", exact_key);
    q->ttl_s = ttl_s;
    q->put_cb = cb;
    q->ud = ud;
    if (!q->embedded) {
        gw_embedder_embed(c->embedder, q->text, q->text_len, store_embedded, q);
        return;
    }
    put_now(q);
}
