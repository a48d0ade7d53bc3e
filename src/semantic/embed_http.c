/* embed_http: see embed_http.h. */
#include "semantic/embed_http.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "loop/http_client.h"
#include "provider/provider_http.h"
#include "common/sha.h"

enum {
    MAX_BATCH_CAP = 256,
    BATCH_BYTES = 1024 * 1024, /* a batch whose texts reach this leaves at once */
    MAX_BODY_CAP = 64 * 1024 * 1024,
};

typedef struct waiter {
    struct waiter *next;
    gw_embed_cb cb;
    void *ud;
} waiter;

/* One distinct text of a batch and everyone waiting for its vector. */
typedef struct {
    uint8_t key[32];
    char *text;
    size_t len;
    waiter *waiters;
} item;

typedef struct batch {
    struct batch *prev, *next; /* in-flight list */
    gw_embed_http *h;
    gw_http_req *req;
    size_t n, bytes;
    item items[]; /* max_batch */
} batch;

/* An answer for the next loop turn (cache hit or early error). */
typedef struct ready {
    struct ready *next;
    gw_embed_cb cb;
    void *ud;
    gw_err err;
    float vec[]; /* dim values when err == GW_OK */
} ready;

typedef struct lru_node {
    struct lru_node *hnext, *prev, *next;
    uint8_t key[32];
    float vec[];
} lru_node;

struct gw_embed_http {
    gw_http *http;
    const gw_deployment *d;
    gw_embed_http_opts o;
    gw_embedder_stats *stats;
    char tag[128];
    char url[1024];
    bool ollama;
    uv_timer_t batch_timer, ready_timer;
    int open_handles;
    batch *pending;  /* texts waiting for the window to end, or NULL */
    batch *inflight; /* batches whose HTTP call is running */
    ready *rhead, *rtail;
    size_t queued; /* waiters in pending + inflight */
    lru_node **buckets;
    size_t nbuckets, count;
    lru_node *mru, *lru;
};

/* ---- per-text LRU ---- */

static size_t bucket_of(const gw_embed_http *h, const uint8_t key[32])
{
    uint64_t x;
    memcpy(&x, key, sizeof x);
    return (size_t)(x & (h->nbuckets - 1));
}

static lru_node *lru_find(gw_embed_http *h, const uint8_t key[32])
{
    if (h->nbuckets == 0)
        return NULL;
    for (lru_node *n = h->buckets[bucket_of(h, key)]; n != NULL; n = n->hnext)
        if (memcmp(n->key, key, 32) == 0)
            return n;
    return NULL;
}

static void lru_unlink(gw_embed_http *h, lru_node *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        h->mru = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        h->lru = n->prev;
    n->prev = n->next = NULL;
}

static void lru_push_front(gw_embed_http *h, lru_node *n)
{
    n->next = h->mru;
    n->prev = NULL;
    if (h->mru)
        h->mru->prev = n;
    h->mru = n;
    if (h->lru == NULL)
        h->lru = n;
}

static void lru_evict(gw_embed_http *h)
{
    lru_node *n = h->lru;
    lru_unlink(h, n);
    lru_node **pp = &h->buckets[bucket_of(h, n->key)];
    while (*pp != n)
        pp = &(*pp)->hnext;
    *pp = n->hnext;
    h->count--;
    free(n);
}

static void lru_put(gw_embed_http *h, const uint8_t key[32], const float *vec)
{
    if (h->nbuckets == 0 || lru_find(h, key) != NULL)
        return;
    if (h->count == h->o.cache_entries)
        lru_evict(h);
    lru_node *n = malloc(sizeof *n + h->o.dim * sizeof(float));
    if (n == NULL)
        return; /* a cache miss later, nothing worse */
    memcpy(n->key, key, 32);
    memcpy(n->vec, vec, h->o.dim * sizeof(float));
    size_t b = bucket_of(h, key);
    n->hnext = h->buckets[b];
    h->buckets[b] = n;
    lru_push_front(h, n);
    h->count++;
}

/* ---- answers on the next loop turn ---- */

static void drain_ready(uv_timer_t *t)
{
    gw_embed_http *h = t->data;
    ready *r = h->rhead;
    h->rhead = h->rtail = NULL;
    while (r != NULL) {
        ready *next = r->next;
        r->cb(r->ud, r->err, r->err == GW_OK ? r->vec : NULL, r->err == GW_OK ? h->o.dim : 0);
        free(r);
        r = next;
    }
}

static void answer_later(gw_embed_http *h, gw_embed_cb cb, void *ud, gw_err err, const float *vec)
{
    size_t extra = err == GW_OK ? h->o.dim * sizeof(float) : 0;
    ready *r = malloc(sizeof *r + extra);
    if (r == NULL) {
        cb(ud, GW_E_NOMEM, NULL, 0); /* last resort: no memory to defer with */
        return;
    }
    if (err != GW_OK)
        h->stats->errors++;
    r->next = NULL;
    r->cb = cb;
    r->ud = ud;
    r->err = err;
    if (extra && vec != NULL)
        memcpy(r->vec, vec, extra);
    if (h->rtail)
        h->rtail->next = r;
    else
        h->rhead = r;
    h->rtail = r;
    uv_timer_start(&h->ready_timer, drain_ready, 0, 0);
}

/* ---- batches ---- */

static void answer_item(gw_embed_http *h, item *it, gw_err err, const float *vec)
{
    waiter *w = it->waiters;
    it->waiters = NULL;
    while (w != NULL) {
        waiter *next = w->next;
        h->queued--;
        if (err != GW_OK)
            h->stats->errors++;
        w->cb(w->ud, err, err == GW_OK ? vec : NULL, err == GW_OK ? h->o.dim : 0);
        free(w);
        w = next;
    }
}

/* Moves every waiter of b to the ready queue (answers must not run inside
 * the caller's gw_embedder_embed) and frees b. */
static void fail_batch_later(gw_embed_http *h, batch *b, gw_err err)
{
    for (size_t i = 0; i < b->n; i++) {
        for (waiter *w = b->items[i].waiters, *next; w != NULL; w = next) {
            next = w->next;
            h->queued--;
            answer_later(h, w->cb, w->ud, err, NULL);
            free(w);
        }
        free(b->items[i].text);
    }
    free(b);
}

static void free_batch(batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->items[i].text);
    free(b);
}

static void inflight_remove(gw_embed_http *h, batch *b)
{
    if (b->prev)
        b->prev->next = b->next;
    else
        h->inflight = b->next;
    if (b->next)
        b->next->prev = b->prev;
}

static gw_err read_vector(json_t *v, size_t dim, float *out)
{
    if (!json_is_array(v))
        return GW_E_PROVIDER_BAD_RESPONSE;
    if (json_array_size(v) != dim)
        return GW_E_CONFIG; /* the deployment's model is not the configured one */
    for (size_t k = 0; k < dim; k++) {
        json_t *x = json_array_get(v, k);
        if (!json_is_number(x) || !isfinite(json_number_value(x)))
            return GW_E_PROVIDER_BAD_RESPONSE;
        out[k] = (float)json_number_value(x);
    }
    gw_l2_normalise(out, dim);
    return GW_OK;
}

/* Vectors of a 2xx body into out[n * dim], in input order. */
static gw_err parse_vectors(const gw_embed_http *h, const char *body, size_t len, size_t n,
                            float *out)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *arr = json_object_get(root, h->ollama ? "embeddings" : "data");
    gw_err err = GW_OK;
    bool seen[MAX_BATCH_CAP] = {false};
    if (!json_is_array(arr) || json_array_size(arr) != n)
        err = GW_E_PROVIDER_BAD_RESPONSE;
    for (size_t i = 0; err == GW_OK && i < n; i++) {
        json_t *el = json_array_get(arr, i);
        size_t idx = i;
        if (!h->ollama) {
            json_t *ix = json_object_get(el, "index");
            if (json_is_integer(ix))
                idx = (size_t)json_integer_value(ix);
            el = json_object_get(el, "embedding");
        }
        if (idx >= n || seen[idx]) {
            err = GW_E_PROVIDER_BAD_RESPONSE;
            break;
        }
        seen[idx] = true;
        err = read_vector(el, h->o.dim, out + idx * h->o.dim);
    }
    json_decref(root);
    return err;
}

static void on_http_done(void *ud, const gw_http_result *res)
{
    batch *b = ud;
    gw_embed_http *h = b->h;
    inflight_remove(h, b);
    gw_err err = res->err;
    if (err == GW_OK && (res->status < 200 || res->status > 299))
        err = gw_phttp_map_status(res->status, res->body, res->body_len);
    float *vecs = NULL;
    if (err == GW_OK) {
        vecs = malloc(b->n * h->o.dim * sizeof(float));
        err = vecs == NULL ? GW_E_NOMEM : parse_vectors(h, res->body, res->body_len, b->n, vecs);
    }
    for (size_t i = 0; i < b->n; i++) {
        const float *v = err == GW_OK ? vecs + i * h->o.dim : NULL;
        if (v != NULL)
            lru_put(h, b->items[i].key, v);
        answer_item(h, &b->items[i], err, v);
    }
    free(vecs);
    free_batch(b);
}

static char *batch_body(const gw_embed_http *h, const batch *b)
{
    json_t *root = json_object();
    json_t *in = json_array();
    char *s = NULL;
    if (root == NULL || in == NULL)
        goto cleanup;
    for (size_t i = 0; i < b->n; i++)
        if (json_array_append_new(in, json_stringn(b->items[i].text, b->items[i].len)) != 0)
            goto cleanup;
    if (json_object_set_new(root, "model", json_string(h->d->model ? h->d->model : "")) != 0 ||
        json_object_set(root, "input", in) != 0)
        goto cleanup;
    s = json_dumps(root, JSON_COMPACT);
cleanup:
    json_decref(in);
    json_decref(root);
    return s;
}

/* "Authorization: Bearer <key>" or "<auth_header>: <key>"; NULL without a key. */
static char *auth_header(const gw_deployment *d)
{
    if (d->api_key == NULL || d->api_key[0] == '\0')
        return NULL;
    const char *name = d->auth_header ? d->auth_header : "Authorization";
    bool bearer = strcasecmp(name, "Authorization") == 0;
    size_t n = strlen(name) + strlen(d->api_key) + 16;
    char *v = malloc(n);
    if (v != NULL)
        snprintf(v, n, "%s: %s%s", name, bearer ? "Bearer " : "", d->api_key);
    return v;
}

static gw_err start_batch(gw_embed_http *h, batch *b)
{
    gw_http_opts o = {.url = h->url};
    o.headers[o.header_count++] = "Content-Type: application/json";
    char *auth = auth_header(h->d);
    if (auth != NULL)
        o.headers[o.header_count++] = auth;
    for (size_t i = 0; i < h->d->extra_header_count && o.header_count < GW_HTTP_MAX_HEADERS; i++)
        o.headers[o.header_count++] = h->d->extra_headers[i];
    char *body = batch_body(h, b);
    gw_err err = GW_E_NOMEM;
    if (body != NULL) {
        o.body = body;
        o.body_len = strlen(body);
        o.connect_timeout_ms = h->d->connect_timeout_ms;
        o.total_timeout_ms = h->o.timeout_ms;
        size_t max_body = h->o.max_batch * h->o.dim * 32 + 65536;
        o.max_body_bytes = max_body > MAX_BODY_CAP ? MAX_BODY_CAP : max_body;
        gw_http_cbs cbs = {.on_done = on_http_done};
        err = gw_http_start(h->http, &o, &cbs, b, &b->req);
    }
    if (auth != NULL) {
        memset(auth, 0, strlen(auth)); /* do not leave the key in freed memory */
        free(auth);
    }
    free(body);
    return err;
}

static void flush(gw_embed_http *h)
{
    batch *b = h->pending;
    h->pending = NULL;
    uv_timer_stop(&h->batch_timer);
    if (b == NULL)
        return;
    gw_err err = start_batch(h, b);
    if (err != GW_OK) {
        fail_batch_later(h, b, err);
        return;
    }
    h->stats->http_calls++;
    h->stats->http_texts += b->n;
    b->prev = NULL;
    b->next = h->inflight;
    if (h->inflight)
        h->inflight->prev = b;
    h->inflight = b;
}

static void on_window(uv_timer_t *t)
{
    flush(t->data);
}

/* The item of pending or in-flight batches with this key, or NULL. */
static item *find_item(gw_embed_http *h, const uint8_t key[32])
{
    for (size_t i = 0; h->pending != NULL && i < h->pending->n; i++)
        if (memcmp(h->pending->items[i].key, key, 32) == 0)
            return &h->pending->items[i];
    for (batch *b = h->inflight; b != NULL; b = b->next)
        for (size_t i = 0; i < b->n; i++)
            if (memcmp(b->items[i].key, key, 32) == 0)
                return &b->items[i];
    return NULL;
}

static gw_err enqueue(gw_embed_http *h, const uint8_t key[32], const char *text, size_t len,
                      waiter *w)
{
    if (h->pending == NULL) {
        h->pending = calloc(1, sizeof *h->pending + h->o.max_batch * sizeof(item));
        if (h->pending == NULL)
            return GW_E_NOMEM;
        h->pending->h = h;
    }
    batch *b = h->pending;
    item *it = &b->items[b->n];
    it->text = malloc(len + 1);
    if (it->text == NULL)
        return GW_E_NOMEM;
    memcpy(it->text, text, len);
    it->text[len] = '\0';
    it->len = len;
    memcpy(it->key, key, 32);
    it->waiters = w;
    b->n++;
    b->bytes += len;
    h->queued++;
    if (b->n == h->o.max_batch || b->bytes >= BATCH_BYTES)
        flush(h);
    else if (b->n == 1)
        uv_timer_start(&h->batch_timer, on_window, (uint64_t)h->o.batch_window_ms, 0);
    return GW_OK;
}

static void text_key(const gw_embed_http *h, const char *text, size_t len, uint8_t out[32])
{
    gw_sha256 s;
    gw_sha256_init(&s);
    gw_sha256_update(&s, h->tag, strlen(h->tag) + 1);
    gw_sha256_update(&s, text, len);
    gw_sha256_final(&s, out);
}

void gw_embed_http_embed(gw_embed_http *h, const char *text, size_t len, gw_embed_cb cb, void *ud)
{
    if (len == 0 || text == NULL) {
        answer_later(h, cb, ud, GW_E_INVALID_REQUEST, NULL);
        return;
    }
    if (len > h->o.max_text_bytes) {
        answer_later(h, cb, ud, GW_E_LIMIT, NULL);
        return;
    }
    uint8_t key[32];
    text_key(h, text, len, key);
    lru_node *n = lru_find(h, key);
    if (n != NULL) {
        h->stats->cache_hits++;
        lru_unlink(h, n);
        lru_push_front(h, n);
        answer_later(h, cb, ud, GW_OK, n->vec);
        return;
    }
    if (h->queued >= h->o.max_queued) {
        answer_later(h, cb, ud, GW_E_PROVIDER_SATURATED, NULL);
        return;
    }
    waiter *w = malloc(sizeof *w);
    if (w == NULL) {
        answer_later(h, cb, ud, GW_E_NOMEM, NULL);
        return;
    }
    *w = (waiter){.cb = cb, .ud = ud};
    item *it = find_item(h, key);
    if (it != NULL) {
        h->stats->coalesced++;
        w->next = it->waiters;
        it->waiters = w;
        h->queued++;
        return;
    }
    if (enqueue(h, key, text, len, w) != GW_OK) {
        free(w);
        answer_later(h, cb, ud, GW_E_NOMEM, NULL);
    }
}

/* ---- lifecycle ---- */

static void sanitise(const char *s, char *out, size_t cap)
{
    size_t j = 0;
    for (; s != NULL && s[j] != '\0' && j + 1 < cap; j++) {
        char c = s[j];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        out[j] = ok ? c : '_';
    }
    out[j] = '\0';
}

void gw_embed_http_tag(const gw_deployment *d, size_t dim, char *out, size_t outlen)
{
    /* Readable part cut to 40 characters; the hash keeps full names apart. */
    char model[41];
    sanitise(d->model, model, sizeof model);
    gw_sha256 s;
    uint8_t digest[32];
    char hex[9];
    const char *kind = gw_provider_kind_name(d->provider);
    gw_sha256_init(&s);
    gw_sha256_update(&s, kind, strlen(kind) + 1);
    gw_sha256_update(&s, d->model ? d->model : "", d->model ? strlen(d->model) : 0);
    gw_sha256_final(&s, digest);
    gw_hex(digest, 4, hex);
    snprintf(out, outlen, "%s-%s-%s-v%d-d%zu", kind, model, hex, GW_EMBED_HTTP_VERSION, dim);
}

static void apply_defaults(gw_embed_http_opts *o, const gw_deployment *d)
{
    if (o->batch_window_ms <= 0)
        o->batch_window_ms = 2;
    if (o->max_batch == 0)
        o->max_batch = 32;
    if (o->max_batch > MAX_BATCH_CAP)
        o->max_batch = MAX_BATCH_CAP;
    if (o->max_queued == 0)
        o->max_queued = 4096;
    if (o->cache_entries == 0)
        o->cache_entries = 4096;
    if (o->max_text_bytes == 0)
        o->max_text_bytes = GW_EMBED_MAX_TEXT;
    if (o->timeout_ms <= 0)
        o->timeout_ms = d->total_timeout_ms > 0 ? d->total_timeout_ms : 10000;
}

gw_err gw_embed_http_new(gw_http *http, const gw_deployment *d, const gw_embed_http_opts *o,
                         gw_embedder_stats *stats, gw_embed_http **out)
{
    if (d == NULL || d->base_url == NULL || d->model == NULL ||
        (d->provider != GW_PROVIDER_OPENAI && d->provider != GW_PROVIDER_OLLAMA))
        return GW_E_CONFIG;
    gw_embed_http *h = calloc(1, sizeof *h);
    if (h == NULL)
        return GW_E_NOMEM;
    h->http = http;
    h->d = d;
    h->o = *o;
    apply_defaults(&h->o, d);
    h->stats = stats;
    h->ollama = d->provider == GW_PROVIDER_OLLAMA;
    size_t bl = strlen(d->base_url);
    while (bl > 0 && d->base_url[bl - 1] == '/')
        bl--;
    snprintf(h->url, sizeof h->url, "%.*s%s", (int)bl, d->base_url,
             h->ollama ? "/api/embed" : "/v1/embeddings");
    gw_embed_http_tag(d, h->o.dim, h->tag, sizeof h->tag);
    if (h->o.cache_entries != SIZE_MAX) {
        h->nbuckets = 1;
        while (h->nbuckets < 2 * h->o.cache_entries)
            h->nbuckets <<= 1;
        h->buckets = calloc(h->nbuckets, sizeof *h->buckets);
        if (h->buckets == NULL) {
            free(h);
            return GW_E_NOMEM;
        }
    }
    uv_loop_t *loop = gw_http_loop(http);
    uv_timer_init(loop, &h->batch_timer);
    uv_timer_init(loop, &h->ready_timer);
    h->batch_timer.data = h->ready_timer.data = h;
    h->open_handles = 2;
    *out = h;
    return GW_OK;
}

static void on_closed(uv_handle_t *hd)
{
    gw_embed_http *h = hd->data;
    if (--h->open_handles == 0)
        free(h);
}

void gw_embed_http_free(gw_embed_http *h)
{
    if (h == NULL)
        return;
    uv_timer_stop(&h->batch_timer);
    uv_timer_stop(&h->ready_timer);
    while (h->inflight != NULL) {
        batch *b = h->inflight;
        inflight_remove(h, b);
        gw_http_cancel(b->req);
        for (size_t i = 0; i < b->n; i++)
            answer_item(h, &b->items[i], GW_E_SHUTTING_DOWN, NULL);
        free_batch(b);
    }
    if (h->pending != NULL) {
        for (size_t i = 0; i < h->pending->n; i++)
            answer_item(h, &h->pending->items[i], GW_E_SHUTTING_DOWN, NULL);
        free_batch(h->pending);
        h->pending = NULL;
    }
    while (h->rhead != NULL) {
        ready *r = h->rhead;
        h->rhead = r->next;
        r->cb(r->ud, r->err == GW_OK ? GW_E_SHUTTING_DOWN : r->err, NULL, 0);
        free(r);
    }
    while (h->mru != NULL) {
        lru_node *n = h->mru;
        h->mru = n->next;
        free(n);
    }
    free(h->buckets);
    uv_close((uv_handle_t *)&h->batch_timer, on_closed);
    uv_close((uv_handle_t *)&h->ready_timer, on_closed);
}
