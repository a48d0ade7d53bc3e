/*
 * semstore_mem: the semantic index in process (dev mode, unit tests); the
 * same structure as the Redis backend: per (namespace, band key) a capped
 * set of ids, per (namespace, id) an entry blob with an expiry. Expired
 * entries are dropped when met (lazy, as in Redis). Answers are deferred to
 * the next loop turn through a queue drained by a uv_idle handle.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "semantic/semstore_private.h"

typedef struct node {
    struct node *next;
    char *key;
    uint8_t *blob; /* entry */
    size_t len;
    uint64_t expires_ms;
    char **ids; /* bucket */
    size_t nids;
} node;

typedef struct op {
    struct op *next;
    gw_sem_search_cb search_cb;
    gw_sem_put_cb put_cb;
    void *ud;
    gw_err err;
    char ns[GW_SEM_MAX_KEY];
    uint64_t band_keys[GW_LSH_MAX_BANDS];
    int bands;
} op;

typedef struct {
    const char *id;
    int count;
    uint32_t slot; /* its slot in the index, to empty it afterwards */
} ranked;

enum { NBUCKETS = 1 << 16 };

typedef struct {
    gw_semstore base;
    uv_loop_t *loop;
    uv_idle_t idle;
    node *table[NBUCKETS];
    size_t entries;
    op *head, *tail;
    uint64_t rng;
    ranked *rank; /* GW_LSH_MAX_BANDS * max_per_bucket entries */
    size_t rank_cap;
    int32_t *set;     /* open-addressing index into rank (+1), 0 = empty */
    size_t set_slots; /* power of two > 2 * rank_cap */
    gw_sem_candidate cand[GW_SEM_MAX_CANDIDATES];
    char text[GW_SEM_MAX_CANDIDATES][GW_SEM_MAX_TEXT + 1];
    char key[GW_SEM_MAX_CANDIDATES][GW_SEM_MAX_KEY];
} mem_store;

static uint64_t fnv(const char *s)
{
    return gw_fnv1a64_str(1469598103934665603ULL, s);
}

static node **slot(mem_store *m, const char *key)
{
    node **p = &m->table[fnv(key) & (NBUCKETS - 1)];
    while (*p != NULL && strcmp((*p)->key, key) != 0)
        p = &(*p)->next;
    return p;
}

static void node_free(node *n)
{
    for (size_t i = 0; i < n->nids; i++)
        free(n->ids[i]);
    free(n->ids);
    free(n->blob);
    free(n->key);
    free(n);
}

static node *get_or_add(mem_store *m, const char *key)
{
    node **p = slot(m, key);
    if (*p == NULL) {
        node *n = calloc(1, sizeof *n);
        if (n == NULL || (n->key = strdup(key)) == NULL) {
            free(n);
            return NULL;
        }
        *p = n;
    }
    return *p;
}

static void entry_key(char *out, size_t cap, const char *ns, const char *id)
{
    snprintf(out, cap, "v\x1f%s\x1f%s", ns, id);
}

static void bucket_key(char *out, size_t cap, const char *ns, uint64_t k)
{
    snprintf(out, cap, "b\x1f%s\x1f%016" PRIx64, ns, k);
}

/* Candidate from an entry when present and not expired; drops it otherwise. */
static int load_entry(mem_store *m, const char *ns, const char *id, size_t n)
{
    char k[2 * GW_SEM_MAX_KEY + 8];
    entry_key(k, sizeof k, ns, id);
    node **p = slot(m, k);
    if (*p == NULL)
        return -1;
    if ((*p)->expires_ms <= uv_now(m->loop)) {
        node *dead = *p;
        *p = dead->next;
        node_free(dead);
        m->entries--;
        return -1;
    }
    gw_sem_candidate *c = &m->cand[n];
    if (gw_sem_blob_decode((*p)->blob, (*p)->len, c, m->text[n], sizeof m->text[n], m->key[n],
                           sizeof m->key[n]) != 0)
        return -1;
    c->id = id;
    return 0;
}

static int by_count(const void *a, const void *b)
{
    return ((const ranked *)b)->count - ((const ranked *)a)->count;
}

/* Same ranking as the Redis script: ids by the number of bands shared. Each
 * bucket contributes a window of up to max_candidates members from a
 * random start (Redis samples with SRANDMEMBER), which bounds the work per
 * lookup whatever the index size. */
static void run_search(mem_store *m, op *o)
{
    size_t maxc = m->base.opts.max_candidates, nr = 0, n = 0, mask = m->set_slots - 1;
    for (int b = 0; b < o->bands; b++) {
        char k[GW_SEM_MAX_KEY + 32];
        bucket_key(k, sizeof k, o->ns, o->band_keys[b]);
        node *bucket = *slot(m, k);
        size_t window = bucket ? bucket->nids : 0, start = 0;
        if (window > maxc) {
            m->rng = m->rng * 6364136223846793005ULL + 1442695040888963407ULL;
            start = (size_t)(m->rng >> 33) % window;
            window = maxc;
        }
        for (size_t w = 0; w < window && nr < m->rank_cap; w++) {
            const char *id = bucket->ids[(start + w) % bucket->nids];
            size_t h = fnv(id) & mask;
            while (m->set[h] != 0 && strcmp(m->rank[m->set[h] - 1].id, id) != 0)
                h = (h + 1) & mask;
            if (m->set[h] != 0) {
                m->rank[m->set[h] - 1].count++;
            } else {
                m->rank[nr] = (ranked){id, 1, (uint32_t)h};
                m->set[h] = (int32_t)++nr;
            }
        }
    }
    /* Empty the index again in O(nr): clearing by recorded slot, since
     * re-probing after earlier clears would break the probe chains. */
    for (size_t i = 0; i < nr; i++)
        m->set[m->rank[i].slot] = 0;
    qsort(m->rank, nr, sizeof m->rank[0], by_count);
    for (size_t i = 0; i < nr && n < maxc; i++)
        if (load_entry(m, o->ns, m->rank[i].id, n) == 0)
            n++;
    o->search_cb(o->ud, GW_OK, m->cand, n);
}

static void on_idle(uv_idle_t *h)
{
    mem_store *m = h->data;
    op *list = m->head;
    m->head = m->tail = NULL;
    uv_idle_stop(&m->idle);
    while (list != NULL) {
        op *o = list;
        list = o->next;
        if (o->search_cb != NULL)
            run_search(m, o);
        else
            o->put_cb(o->ud, o->err);
        free(o);
    }
}

static void enqueue(mem_store *m, op *o)
{
    o->next = NULL;
    if (m->tail)
        m->tail->next = o;
    else
        m->head = o;
    m->tail = o;
    uv_idle_start(&m->idle, on_idle);
}

static void m_search(gw_semstore *base, const char *ns, const uint64_t *band_keys, int bands,
                     gw_sem_search_cb cb, void *ud)
{
    mem_store *m = (mem_store *)base;
    op *o = calloc(1, sizeof *o);
    if (o == NULL || bands > GW_LSH_MAX_BANDS || strlen(ns) >= sizeof o->ns) {
        free(o);
        cb(ud, GW_E_LIMIT, NULL, 0);
        return;
    }
    o->search_cb = cb;
    o->ud = ud;
    snprintf(o->ns, sizeof o->ns, "%s", ns);
    memcpy(o->band_keys, band_keys, sizeof(uint64_t) * (size_t)bands);
    o->bands = bands;
    enqueue(m, o);
}

static gw_err bucket_add(mem_store *m, node *b, const char *id)
{
    for (size_t i = 0; i < b->nids; i++)
        if (strcmp(b->ids[i], id) == 0)
            return GW_OK;
    char *copy = strdup(id);
    if (copy == NULL)
        return GW_E_NOMEM;
    if (b->nids >= m->base.opts.max_per_bucket) {
        m->rng = m->rng * 6364136223846793005ULL + 1442695040888963407ULL;
        size_t victim = (size_t)(m->rng >> 33) % b->nids;
        free(b->ids[victim]);
        b->ids[victim] = copy;
        return GW_OK;
    }
    char **ids = realloc(b->ids, (b->nids + 1) * sizeof *ids);
    if (ids == NULL) {
        free(copy);
        return GW_E_NOMEM;
    }
    b->ids = ids;
    b->ids[b->nids++] = copy;
    return GW_OK;
}

static gw_err do_put(mem_store *m, const char *ns, const char *id, const uint8_t *blob, size_t len,
                     const uint64_t *band_keys, int bands, int32_t ttl_s)
{
    char k[2 * GW_SEM_MAX_KEY + 8];
    entry_key(k, sizeof k, ns, id);
    if (*slot(m, k) == NULL && m->entries >= m->base.opts.max_entries)
        return GW_E_LIMIT;
    node *e = get_or_add(m, k);
    uint8_t *copy = malloc(len);
    if (e == NULL || copy == NULL) {
        free(copy);
        return GW_E_NOMEM;
    }
    if (e->blob == NULL)
        m->entries++;
    free(e->blob);
    memcpy(copy, blob, len);
    e->blob = copy;
    e->len = len;
    e->expires_ms = uv_now(m->loop) + (uint64_t)ttl_s * 1000;
    for (int b = 0; b < bands; b++) {
        bucket_key(k, sizeof k, ns, band_keys[b]);
        node *bucket = get_or_add(m, k);
        gw_err err = bucket ? bucket_add(m, bucket, id) : GW_E_NOMEM;
        if (err != GW_OK)
            return err;
    }
    return GW_OK;
}

static void m_put(gw_semstore *base, const char *ns, const char *id, const uint8_t *blob,
                  size_t len, const uint64_t *band_keys, int bands, int32_t ttl_s, gw_sem_put_cb cb,
                  void *ud)
{
    mem_store *m = (mem_store *)base;
    op *o = calloc(1, sizeof *o);
    if (o == NULL) {
        cb(ud, GW_E_NOMEM);
        return;
    }
    o->put_cb = cb;
    o->ud = ud;
    if (blob == NULL || bands > GW_LSH_MAX_BANDS || ttl_s < 1 || strlen(ns) >= GW_SEM_MAX_KEY ||
        strlen(id) >= GW_SEM_MAX_KEY)
        o->err = GW_E_LIMIT;
    else
        o->err = do_put(m, ns, id, blob, len, band_keys, bands, ttl_s);
    enqueue(m, o);
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

static void m_destroy(gw_semstore *base)
{
    mem_store *m = (mem_store *)base;
    while (m->head != NULL) {
        op *o = m->head;
        m->head = o->next;
        if (o->search_cb)
            o->search_cb(o->ud, GW_E_SHUTTING_DOWN, NULL, 0);
        else
            o->put_cb(o->ud, GW_E_SHUTTING_DOWN);
        free(o);
    }
    for (size_t i = 0; i < NBUCKETS; i++)
        while (m->table[i] != NULL) {
            node *n = m->table[i];
            m->table[i] = n->next;
            node_free(n);
        }
    free(m->rank);
    free(m->set);
    uv_close((uv_handle_t *)&m->idle, on_closed);
}

static const gw_semstore_vt mem_vt = {m_search, m_put, m_destroy};

gw_err gw_semstore_mem_new(uv_loop_t *loop, const gw_semstore_opts *o, gw_semstore **out)
{
    mem_store *m = calloc(1, sizeof *m);
    if (m == NULL)
        return GW_E_NOMEM;
    gw_semstore_init_base(&m->base, &mem_vt, o);
    m->loop = loop;
    m->rng = 0x2545F4914F6CDD1DULL;
    m->rank_cap = (size_t)GW_LSH_MAX_BANDS * m->base.opts.max_per_bucket;
    m->set_slots = 1;
    while (m->set_slots < 2 * m->rank_cap)
        m->set_slots <<= 1;
    m->rank = malloc(m->rank_cap * sizeof *m->rank);
    m->set = calloc(m->set_slots, sizeof *m->set);
    if (m->rank == NULL || m->set == NULL) {
        free(m->rank);
        free(m->set);
        free(m);
        return GW_E_NOMEM;
    }
    uv_idle_init(loop, &m->idle);
    m->idle.data = m;
    *out = &m->base;
    return GW_OK;
}
