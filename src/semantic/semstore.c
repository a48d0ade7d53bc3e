/* semstore: backend-independent parts (quantisation, blob format, option
 * defaults, dispatch); see semstore.h. */
#include "semantic/semstore.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "semantic/semstore_private.h"

void gw_semstore_init_base(gw_semstore *s, const gw_semstore_vt *vt, const gw_semstore_opts *o)
{
    s->vt = vt;
    s->opts = *o;
    if (s->opts.max_per_bucket == 0)
        s->opts.max_per_bucket = 512;
    if (s->opts.max_candidates == 0)
        s->opts.max_candidates = 32;
    if (s->opts.max_candidates > GW_SEM_MAX_CANDIDATES)
        s->opts.max_candidates = GW_SEM_MAX_CANDIDATES;
    if (s->opts.max_entries == 0)
        s->opts.max_entries = 100000;
    snprintf(s->prefix, sizeof s->prefix, "%s", o->prefix ? o->prefix : "mgw:");
}

void gw_semstore_free(gw_semstore *s)
{
    if (s != NULL)
        s->vt->destroy(s);
}

void gw_semstore_search(gw_semstore *s, const char *ns, const uint64_t *band_keys, int bands,
                        gw_sem_search_cb cb, void *ud)
{
    s->vt->search(s, ns, band_keys, bands, cb, ud);
}

void gw_semstore_put(gw_semstore *s, const char *ns, const char *id, const float *vec, size_t dim,
                     const char *text, const char *exact_key, const uint64_t *band_keys, int bands,
                     int32_t ttl_s, gw_sem_put_cb cb, void *ud)
{
    enum { BLOB_MAX = 2 + GW_EMBED_MAX_DIM + 2 + GW_SEM_MAX_TEXT + GW_SEM_MAX_KEY };
    static _Thread_local int8_t q[GW_EMBED_MAX_DIM];
    static _Thread_local uint8_t blob[BLOB_MAX];
    size_t len = 0;
    if (dim <= GW_EMBED_MAX_DIM) {
        gw_sem_quantise(vec, dim, q);
        len = gw_sem_blob_encode(q, dim, text, exact_key, blob, sizeof blob);
    }
    s->vt->put(s, ns, id, len ? blob : NULL, len, band_keys, bands, ttl_s, cb, ud);
}

void gw_sem_quantise(const float *v, size_t dim, int8_t *out)
{
    float max = 0;
    for (size_t i = 0; i < dim; i++)
        if (fabsf(v[i]) > max)
            max = fabsf(v[i]);
    float scale = max > 0 ? 127.0f / max : 0;
    for (size_t i = 0; i < dim; i++)
        out[i] = (int8_t)lrintf(v[i] * scale);
}

double gw_sem_cosine_q(const float *q, const int8_t *c, size_t dim)
{
    /* The candidate's norm in integers (vectorises); the dot product over the
     * query's non-zero components, which are few for hashed text. */
    int32_t nc = 0;
    for (size_t i = 0; i < dim; i++)
        nc += (int32_t)c[i] * c[i];
    double dot = 0, nq = 0;
    for (size_t i = 0; i < dim; i++) {
        if (q[i] == 0)
            continue;
        dot += (double)q[i] * c[i];
        nq += (double)q[i] * q[i];
    }
    if (nq == 0 || nc == 0)
        return 0;
    return dot / (sqrt(nq) * sqrt((double)nc));
}

size_t gw_sem_blob_encode(const int8_t *q, size_t dim, const char *text, const char *exact_key,
                          uint8_t *out, size_t cap)
{
    size_t tlen = strlen(text), klen = strlen(exact_key);
    if (tlen > GW_SEM_MAX_TEXT)
        tlen = GW_SEM_MAX_TEXT;
    if (klen >= GW_SEM_MAX_KEY || dim > GW_EMBED_MAX_DIM)
        return 0;
    size_t need = 2 + dim + 2 + tlen + klen;
    if (need > cap)
        return 0;
    out[0] = (uint8_t)(dim >> 8);
    out[1] = (uint8_t)dim;
    memcpy(out + 2, q, dim);
    out[2 + dim] = (uint8_t)(tlen >> 8);
    out[3 + dim] = (uint8_t)tlen;
    memcpy(out + 4 + dim, text, tlen);
    memcpy(out + 4 + dim + tlen, exact_key, klen);
    return need;
}

int gw_sem_blob_decode(const uint8_t *blob, size_t len, gw_sem_candidate *c, char *text,
                       size_t text_cap, char *key, size_t key_cap)
{
    if (len < 4)
        return -1;
    size_t dim = ((size_t)blob[0] << 8) | blob[1];
    if (dim == 0 || dim > GW_EMBED_MAX_DIM || len < 4 + dim)
        return -1;
    size_t tlen = ((size_t)blob[2 + dim] << 8) | blob[3 + dim];
    if (len < 4 + dim + tlen || tlen >= text_cap)
        return -1;
    size_t klen = len - 4 - dim - tlen;
    if (klen == 0 || klen >= key_cap)
        return -1;
    memcpy(text, blob + 4 + dim, tlen);
    text[tlen] = '\0';
    memcpy(key, blob + 4 + dim + tlen, klen);
    key[klen] = '\0';
    c->vec = (const int8_t *)(blob + 2);
    c->dim = dim;
    c->text = text;
    c->exact_key = key;
    return 0;
}
