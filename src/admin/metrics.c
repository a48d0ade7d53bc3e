/*
 * metrics: see metrics.h.
 *
 * Series live in one open-addressing hash table keyed by (family, label
 * values joined with 0x1f). Histograms share one fixed bucket layout in
 * seconds, which suits both sub-millisecond cache hits and minute-long
 * generations.
 */
#include "admin/metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"

typedef struct {
    const char *name;
    gw_metric_type type;
    const char *help;
    int nlabels;
    const char *labels[3];
} family_def;

static const family_def families[GW_M__COUNT] = {
#define GW_METRIC_ROW(id, name, type, help, n, l1, l2, l3)                                         \
    {name, GW_MT_##type, help, n, {l1, l2, l3}},
    GW_METRIC_MAP(GW_METRIC_ROW)
#undef GW_METRIC_ROW
};

static const double bucket_bounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                       0.5,   1,     2.5,  5,     10,   30,  60};
enum { NBUCKETS = sizeof(bucket_bounds) / sizeof(bucket_bounds[0]), LABELS_MAX = 512 };

typedef struct {
    char *key; /* NULL = empty slot; label values joined by 0x1f */
    gw_metric_id id;
    double value; /* counter/gauge value; histogram sum */
    uint64_t count;
    uint64_t *buckets; /* histogram only: NBUCKETS cumulative-later counts */
} series;

struct gw_metrics {
    series *slots;
    size_t nslots; /* power of two, >= 2 * max_series */
    size_t used;
    size_t max_series;
    gw_metrics_collect_fn collect;
    void *collect_ud;
};

gw_metrics *gw_metrics_new(size_t max_series)
{
    gw_metrics *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    size_t n = 64;
    while (n < max_series * 2)
        n *= 2;
    m->slots = calloc(n, sizeof *m->slots);
    if (m->slots == NULL) {
        free(m);
        return NULL;
    }
    m->nslots = n;
    m->max_series = max_series;
    return m;
}

void gw_metrics_free(gw_metrics *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nslots; i++) {
        free(m->slots[i].key);
        free(m->slots[i].buckets);
    }
    free(m->slots);
    free(m);
}

void gw_metrics_set_collector(gw_metrics *m, gw_metrics_collect_fn fn, void *ud)
{
    m->collect = fn;
    m->collect_ud = ud;
}

static uint64_t hash_key(gw_metric_id id, const char *key)
{
    return gw_fnv1a64_str(1469598103934665603ULL ^ (uint64_t)id, key);
}

/* Joins the label values of one call into buf; returns 0 or -1 when too long. */
static int join_labels(gw_metric_id id, va_list ap, char *buf)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < families[id].nlabels; i++) {
        const char *v = va_arg(ap, const char *);
        if (v == NULL)
            v = "";
        size_t n = strlen(v);
        if (len + n + 2 > LABELS_MAX)
            return -1;
        if (i > 0)
            buf[len++] = '\x1f';
        memcpy(buf + len, v, n);
        len += n;
        buf[len] = '\0';
    }
    return 0;
}

static series *lookup(gw_metrics *m, gw_metric_id id, const char *key, int create)
{
    size_t mask = m->nslots - 1;
    for (size_t i = hash_key(id, key) & mask;; i = (i + 1) & mask) {
        series *s = &m->slots[i];
        if (s->key == NULL) {
            if (!create)
                return NULL;
            if (m->used >= m->max_series && id != GW_M_SERIES_DROPPED) {
                gw_metric_add(m, GW_M_SERIES_DROPPED, 1);
                return NULL;
            }
            s->key = strdup(key);
            if (s->key == NULL)
                return NULL;
            if (families[id].type == GW_MT_HISTOGRAM) {
                s->buckets = calloc(NBUCKETS, sizeof *s->buckets);
                if (s->buckets == NULL) {
                    free(s->key);
                    s->key = NULL;
                    return NULL;
                }
            }
            s->id = id;
            m->used++;
            return s;
        }
        if (s->id == id && strcmp(s->key, key) == 0)
            return s;
    }
}

static series *series_for(gw_metrics *m, gw_metric_id id, va_list ap, int create)
{
    char key[LABELS_MAX];
    if ((unsigned)id >= GW_M__COUNT || join_labels(id, ap, key) != 0)
        return NULL;
    return lookup(m, id, key, create);
}

void gw_metric_add(gw_metrics *m, gw_metric_id id, double v, ...)
{
    va_list ap;
    va_start(ap, v);
    series *s = series_for(m, id, ap, 1);
    va_end(ap);
    if (s != NULL)
        s->value += v;
}

void gw_metric_set(gw_metrics *m, gw_metric_id id, double v, ...)
{
    va_list ap;
    va_start(ap, v);
    series *s = series_for(m, id, ap, 1);
    va_end(ap);
    if (s != NULL)
        s->value = v;
}

void gw_metric_observe(gw_metrics *m, gw_metric_id id, double v, ...)
{
    va_list ap;
    va_start(ap, v);
    series *s = series_for(m, id, ap, 1);
    va_end(ap);
    if (s == NULL || s->buckets == NULL || isnan(v))
        return;
    for (int i = 0; i < NBUCKETS; i++)
        if (v <= bucket_bounds[i]) {
            s->buckets[i]++;
            break;
        }
    s->value += v;
    s->count++;
}

double gw_metric_get(gw_metrics *m, gw_metric_id id, ...)
{
    va_list ap;
    va_start(ap, id);
    series *s = series_for(m, id, ap, 0);
    va_end(ap);
    return s ? s->value : 0;
}

void gw_metric_clear(gw_metrics *m, gw_metric_id id)
{
    /* Rebuild the table without the family: deleting in place would break
     * the probe chains of other keys. Gauge families are small. */
    series *old = m->slots;
    size_t n = m->nslots;
    series *fresh = calloc(n, sizeof *fresh);
    if (fresh == NULL)
        return;
    m->slots = fresh;
    m->used = 0;
    size_t mask = n - 1;
    for (size_t i = 0; i < n; i++) {
        series *s = &old[i];
        if (s->key == NULL)
            continue;
        if (s->id == id) {
            free(s->key);
            free(s->buckets);
            continue;
        }
        size_t j = hash_key(s->id, s->key) & mask;
        while (fresh[j].key != NULL)
            j = (j + 1) & mask;
        fresh[j] = *s;
        m->used++;
    }
    free(old);
}

typedef struct {
    char *buf;
    size_t len, cap;
    int failed;
} out_buf;

static void out_printf(out_buf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(out_buf *o, const char *fmt, ...)
{
    if (o->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = 1;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap * 2 + (size_t)n;
        char *p = realloc(o->buf, cap);
        if (p == NULL) {
            o->failed = 1;
            return;
        }
        o->buf = p;
        o->cap = cap;
    }
}

/* Writes `{a="x",b="y"` (no closing brace) with escaped values. */
static void out_labels(out_buf *o, const family_def *f, const char *key)
{
    const char *p = key;
    for (int i = 0; i < f->nlabels; i++) {
        out_printf(o, "%s%s=\"", i == 0 ? "{" : ",", f->labels[i]);
        for (; *p && *p != '\x1f'; p++) {
            if (*p == '\\' || *p == '"')
                out_printf(o, "\\%c", *p);
            else if (*p == '\n')
                out_printf(o, "\\n");
            else
                out_printf(o, "%c", *p);
        }
        if (*p == '\x1f')
            p++;
        out_printf(o, "\"");
    }
}

static void out_value(out_buf *o, double v)
{
    if (isinf(v))
        out_printf(o, v > 0 ? "+Inf" : "-Inf");
    else if (isnan(v))
        out_printf(o, "NaN");
    else
        out_printf(o, "%.17g", v);
}

static void render_series(out_buf *o, const family_def *f, const series *s)
{
    if (f->type != GW_MT_HISTOGRAM) {
        out_printf(o, "%s", f->name);
        out_labels(o, f, s->key);
        out_printf(o, "%s ", f->nlabels ? "}" : "");
        out_value(o, s->value);
        out_printf(o, "\n");
        return;
    }
    uint64_t cum = 0;
    for (int b = 0; b <= NBUCKETS; b++) {
        cum += b < NBUCKETS ? s->buckets[b] : 0;
        out_printf(o, "%s_bucket", f->name);
        out_labels(o, f, s->key);
        out_printf(o, "%sle=\"", f->nlabels ? "," : "{");
        if (b < NBUCKETS)
            out_printf(o, "%g", bucket_bounds[b]);
        else
            out_printf(o, "+Inf");
        out_printf(o, "\"} %llu\n", (unsigned long long)(b < NBUCKETS ? cum : s->count));
    }
    out_printf(o, "%s_sum", f->name);
    out_labels(o, f, s->key);
    out_printf(o, "%s ", f->nlabels ? "}" : "");
    out_value(o, s->value);
    out_printf(o, "\n%s_count", f->name);
    out_labels(o, f, s->key);
    out_printf(o, "%s %llu\n", f->nlabels ? "}" : "", (unsigned long long)s->count);
}

int gw_metrics_render(gw_metrics *m, char **out, size_t *out_len)
{
    if (m->collect != NULL)
        m->collect(m, m->collect_ud);
    out_buf o = {.buf = malloc(8192), .len = 0, .cap = 8192};
    if (o.buf == NULL)
        return -1;
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    for (int id = 0; id < GW_M__COUNT; id++) {
        const family_def *f = &families[id];
        out_printf(&o, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                   type_names[f->type]);
        for (size_t i = 0; i < m->nslots; i++)
            if (m->slots[i].key != NULL && m->slots[i].id == (gw_metric_id)id)
                render_series(&o, f, &m->slots[i]);
    }
    if (o.failed) {
        free(o.buf);
        return -1;
    }
    *out = o.buf;
    *out_len = o.len;
    return 0;
}
