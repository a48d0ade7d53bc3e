/*
 * embedder: see embedder.h. The hashing embedder computes its vector at once
 * and parks the answer on a queue drained by a zero timer, so its callback
 * runs on the next loop turn like every other asynchronous answer.
 */
#include "semantic/embedder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "semantic/embed_http.h"

typedef struct hash_job {
    struct hash_job *next;
    gw_embed_cb cb;
    void *ud;
    float vec[GW_EMBED_HASH_DIM];
} hash_job;

enum { NOMEM_SLOTS = 64 };

/* Hash: jobs waiting for the next turn, FIFO; the timer is the only handle.
 * Calls whose job could not be allocated wait in a fixed ring to be answered
 * GW_E_NOMEM on the next turn too. */
typedef struct {
    uv_timer_t timer;
    hash_job *head, *tail;
    struct {
        gw_embed_cb cb;
        void *ud;
    } nomem[NOMEM_SLOTS];
    size_t nomem_count;
} hash_impl;

struct gw_embedder {
    char tag[128];
    size_t dim;
    gw_embedder_stats stats;
    hash_impl *hash; /* exactly one of hash and http is set */
    gw_embed_http *http;
};

static void hash_closed(uv_handle_t *h)
{
    free(h->data);
}

static void hash_answer_all(hash_impl *hi, gw_err err)
{
    hash_job *j = hi->head;
    hi->head = hi->tail = NULL;
    size_t nn = hi->nomem_count;
    hi->nomem_count = 0;
    for (size_t i = 0; i < nn; i++)
        hi->nomem[i].cb(hi->nomem[i].ud, err != GW_OK ? err : GW_E_NOMEM, NULL, 0);
    while (j != NULL) {
        hash_job *next = j->next;
        j->cb(j->ud, err, err == GW_OK ? j->vec : NULL, err == GW_OK ? GW_EMBED_HASH_DIM : 0);
        free(j);
        j = next;
    }
}

static void hash_drain(uv_timer_t *t)
{
    hash_answer_all(t->data, GW_OK);
}

gw_err gw_embedder_hash_new(uv_loop_t *loop, gw_embedder **out)
{
    gw_embedder *e = calloc(1, sizeof *e);
    hash_impl *hi = calloc(1, sizeof *hi);
    if (e == NULL || hi == NULL) {
        free(e);
        free(hi);
        return GW_E_NOMEM;
    }
    uv_timer_init(loop, &hi->timer);
    hi->timer.data = hi;
    e->hash = hi;
    e->dim = GW_EMBED_HASH_DIM;
    gw_embedder_tag(GW_EMBED_HASH_ID, GW_EMBED_HASH_VERSION, GW_EMBED_HASH_DIM, e->tag,
                    sizeof e->tag);
    *out = e;
    return GW_OK;
}

gw_err gw_embedder_http_new(gw_http *http, const gw_deployment *d, const gw_embed_http_opts *o,
                            gw_embedder **out)
{
    if (o == NULL || o->dim == 0 || o->dim > GW_EMBED_MAX_DIM)
        return GW_E_CONFIG;
    gw_embedder *e = calloc(1, sizeof *e);
    if (e == NULL)
        return GW_E_NOMEM;
    gw_err err = gw_embed_http_new(http, d, o, &e->stats, &e->http);
    if (err != GW_OK) {
        free(e);
        return err;
    }
    e->dim = o->dim;
    gw_embed_http_tag(d, o->dim, e->tag, sizeof e->tag);
    *out = e;
    return GW_OK;
}

void gw_embedder_free(gw_embedder *e)
{
    if (e == NULL)
        return;
    if (e->hash != NULL) {
        hash_answer_all(e->hash, GW_E_SHUTTING_DOWN);
        uv_timer_stop(&e->hash->timer);
        uv_close((uv_handle_t *)&e->hash->timer, hash_closed);
    }
    gw_embed_http_free(e->http);
    free(e);
}

void gw_embedder_embed(gw_embedder *e, const char *text, size_t len, gw_embed_cb cb, void *ud)
{
    e->stats.texts++;
    if (e->http != NULL) {
        gw_embed_http_embed(e->http, text, len, cb, ud);
        return;
    }
    hash_impl *hi = e->hash;
    hash_job *j = malloc(sizeof *j);
    if (j == NULL) {
        e->stats.errors++;
        if (hi->nomem_count == NOMEM_SLOTS) { /* last resort: answer now */
            cb(ud, GW_E_NOMEM, NULL, 0);
            return;
        }
        hi->nomem[hi->nomem_count].cb = cb;
        hi->nomem[hi->nomem_count++].ud = ud;
        uv_timer_start(&hi->timer, hash_drain, 0, 0);
        return;
    }
    j->next = NULL;
    j->cb = cb;
    j->ud = ud;
    gw_embed_hash(text, len, j->vec);
    if (hi->tail != NULL)
        hi->tail->next = j;
    else
        hi->head = j;
    hi->tail = j;
    uv_timer_start(&hi->timer, hash_drain, 0, 0);
}

bool gw_embedder_embed_now(gw_embedder *e, const char *text, size_t len, float *out)
{
    if (e->hash == NULL)
        return false;
    e->stats.texts++;
    gw_embed_hash(text, len, out);
    return true;
}

const char *gw_embedder_name(const gw_embedder *e)
{
    return e->tag;
}

size_t gw_embedder_dim(const gw_embedder *e)
{
    return e->dim;
}

void gw_embedder_stats_get(const gw_embedder *e, gw_embedder_stats *out)
{
    *out = e->stats;
}
