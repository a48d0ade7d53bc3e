/*
 * semstore_redis: the semantic index on plain Redis 7; see semstore.h.
 *
 * Keys (all with TTLs):
 *   <prefix>sb:{<ns>}:<band key hex> SET of entry ids      EX >= the newest entry's TTL
 *   <prefix>sv:{<ns>}:<id>           STRING entry blob     EX ttl
 * The namespace is the hash tag, so that every key one script builds is in
 * one Redis Cluster slot; the scripts get <prefix>sv:{<ns>}: as KEYS[1] (read
 * by nobody: it routes the call to that slot's node). An ns that is empty or
 * starts with '}' is written as "{~}<ns>" (an empty tag would hash whole keys).
 * One EVALSHA per search (src/semantic/lua/semstore_search.lua: candidates
 * ranked by shared bands, bounded work) and one per store
 * (src/semantic/lua/semstore_put.lua).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "semantic/semstore_private.h"
#include "common/lua_scripts.h"
#include "loop/redis.h"

typedef struct {
    gw_semstore base;
    gw_redis *r;
    gw_redis_script *search;
    gw_redis_script *put;
    gw_sem_candidate cand[GW_SEM_MAX_CANDIDATES];
    char text[GW_SEM_MAX_CANDIDATES][GW_SEM_MAX_TEXT + 1];
    char key[GW_SEM_MAX_CANDIDATES][GW_SEM_MAX_KEY];
    char ids[GW_SEM_MAX_CANDIDATES][GW_SEM_MAX_KEY];
} redis_store;

typedef struct {
    redis_store *s;
    gw_sem_search_cb search_cb;
    gw_sem_put_cb put_cb;
    void *ud;
} op;

enum { MAX_ARGS = 7 + GW_LSH_MAX_BANDS, NS_MAX = 512 };

/* "{ns}" (or "{~}ns") and the routing key <prefix>sv:{ns}: */
static void tagged_ns(const redis_store *s, const char *ns, char *tagged, char *route)
{
    snprintf(tagged, NS_MAX, ns[0] != '\0' && ns[0] != '}' ? "{%s}" : "{~}%s", ns);
    snprintf(route, 2 * NS_MAX, "%ssv:%s:", s->base.prefix, tagged);
}

static void on_search(void *arg, gw_err err, const redisReply *reply)
{
    op *o = arg;
    redis_store *s = o->s;
    size_t n = 0;
    if (err == GW_OK && reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i + 1 < reply->elements && n < s->base.opts.max_candidates; i += 2) {
            const redisReply *id = reply->element[i], *blob = reply->element[i + 1];
            if (id->type != REDIS_REPLY_STRING || blob->type != REDIS_REPLY_STRING ||
                id->len >= GW_SEM_MAX_KEY)
                continue;
            gw_sem_candidate *c = &s->cand[n];
            if (gw_sem_blob_decode((const uint8_t *)blob->str, blob->len, c, s->text[n],
                                   sizeof s->text[n], s->key[n], sizeof s->key[n]) != 0)
                continue; /* a malformed entry is skipped, never trusted */
            memcpy(s->ids[n], id->str, id->len);
            s->ids[n][id->len] = '\0';
            c->id = s->ids[n];
            n++;
        }
    } else if (err == GW_OK) {
        err = GW_E_INTERNAL;
    }
    o->search_cb(o->ud, err, s->cand, n);
    free(o);
}

static void r_search(gw_semstore *base, const char *ns, const uint64_t *band_keys, int bands,
                     gw_sem_search_cb cb, void *ud)
{
    redis_store *s = (redis_store *)base;
    op *o = malloc(sizeof *o);
    if (o == NULL || bands > GW_LSH_MAX_BANDS) {
        free(o);
        cb(ud, GW_E_NOMEM, NULL, 0); /* allocation failure: the one synchronous answer */
        return;
    }
    *o = (op){.s = s, .search_cb = cb, .ud = ud};
    char maxc[16], hex[GW_LSH_MAX_BANDS][17], tagged[NS_MAX], route[2 * NS_MAX];
    const char *argv[MAX_ARGS];
    tagged_ns(s, ns, tagged, route);
    snprintf(maxc, sizeof maxc, "%zu", s->base.opts.max_candidates);
    argv[0] = route;
    argv[1] = s->base.prefix;
    argv[2] = tagged;
    argv[3] = maxc;
    for (int i = 0; i < bands; i++) {
        snprintf(hex[i], sizeof hex[i], "%016" PRIx64, band_keys[i]);
        argv[4 + i] = hex[i];
    }
    gw_redis_eval(s->r, s->search, 1, 4 + bands, argv, NULL, on_search, o);
}

static void on_put(void *arg, gw_err err, const redisReply *reply)
{
    op *o = arg;
    o->put_cb(o->ud, err);
    free(o);
}

static void r_put(gw_semstore *base, const char *ns, const char *id, const uint8_t *blob,
                  size_t len, const uint64_t *band_keys, int bands, int32_t ttl_s, gw_sem_put_cb cb,
                  void *ud)
{
    redis_store *s = (redis_store *)base;
    op *o = malloc(sizeof *o);
    if (o == NULL || blob == NULL || bands > GW_LSH_MAX_BANDS || ttl_s < 1) {
        free(o);
        cb(ud, blob == NULL ? GW_E_LIMIT : GW_E_NOMEM);
        return;
    }
    *o = (op){.s = s, .put_cb = cb, .ud = ud};
    char ttl[16], cap[16], hex[GW_LSH_MAX_BANDS][17], tagged[NS_MAX], route[2 * NS_MAX];
    const char *argv[MAX_ARGS];
    size_t argl[MAX_ARGS];
    tagged_ns(s, ns, tagged, route);
    snprintf(ttl, sizeof ttl, "%d", ttl_s);
    snprintf(cap, sizeof cap, "%zu", s->base.opts.max_per_bucket);
    const char *fixed[7] = {route, s->base.prefix, tagged, id, ttl, (const char *)blob, cap};
    for (int i = 0; i < 7; i++) {
        argv[i] = fixed[i];
        argl[i] = i == 5 ? len : strlen(fixed[i]);
    }
    for (int i = 0; i < bands; i++) {
        snprintf(hex[i], sizeof hex[i], "%016" PRIx64, band_keys[i]);
        argv[7 + i] = hex[i];
        argl[7 + i] = 16;
    }
    gw_redis_eval(s->r, s->put, 1, 7 + bands, argv, argl, on_put, o);
}

static void r_destroy(gw_semstore *base)
{
    free(base);
}

static const gw_semstore_vt redis_vt = {r_search, r_put, r_destroy};

gw_err gw_semstore_redis_new(uv_loop_t *loop, gw_redis *r, const gw_semstore_opts *o,
                             gw_semstore **out)
{
    redis_store *s = calloc(1, sizeof *s);
    if (s == NULL)
        return GW_E_NOMEM;
    gw_semstore_init_base(&s->base, &redis_vt, o);
    s->r = r;
    s->search = gw_redis_script_add(r, gw_lua_script("semantic/semstore_search"));
    s->put = gw_redis_script_add(r, gw_lua_script("semantic/semstore_put"));
    if (s->search == NULL || s->put == NULL) {
        free(s);
        return GW_E_NOMEM;
    }
    *out = &s->base;
    return GW_OK;
}
