/*
 * latency: EWMA arithmetic, dispatch, and the in-memory backend; see
 * latency.h. Invariant: a gw_latency with samples == 0 holds zeros.
 */
#include "route/latency_private.h"

#include <stdlib.h>
#include <string.h>

void lat_ewma_apply(gw_latency *l, double alpha, double ttft_ms, double total_ms)
{
    if (l->samples == 0) {
        l->total_ms = total_ms;
        l->ttft_ms = ttft_ms >= 0 ? ttft_ms : total_ms;
    } else {
        l->total_ms += alpha * (total_ms - l->total_ms);
        if (ttft_ms >= 0)
            l->ttft_ms += alpha * (ttft_ms - l->ttft_ms);
    }
    l->samples++;
}

void gw_latstats_record(gw_latstats *s, size_t idx, double ttft_ms, double total_ms)
{
    if (idx < s->count && total_ms >= 0)
        s->ops->record(s, idx, ttft_ms, total_ms);
}

void gw_latstats_concurrency(gw_latstats *s, size_t idx, double inc, int32_t dec,
                             const gw_latstats_cap *p)
{
    if (s != NULL && idx < s->count && s->ops->concurrency != NULL)
        s->ops->concurrency(s, idx, inc, dec, p);
}

void gw_latstats_flush(gw_latstats *s)
{
    if (s != NULL && s->ops->flush != NULL)
        s->ops->flush(s);
}

void gw_latstats_get(gw_latstats *s, size_t idx, gw_latency *out)
{
    memset(out, 0, sizeof *out);
    if (idx < s->count)
        s->ops->get(s, idx, out);
}

size_t gw_latstats_pending(const gw_latstats *s)
{
    return s->pending;
}

size_t gw_latstats_count(const gw_latstats *s)
{
    return s->count;
}

void gw_latstats_free(gw_latstats *s)
{
    if (s != NULL)
        s->ops->free(s);
}

typedef struct {
    gw_latstats base;
    gw_latency *l;
} mem_stats;

static void mem_record(gw_latstats *s, size_t idx, double ttft_ms, double total_ms)
{
    lat_ewma_apply(&((mem_stats *)s)->l[idx], s->alpha, ttft_ms, total_ms);
}

static void mem_get(gw_latstats *s, size_t idx, gw_latency *out)
{
    *out = ((mem_stats *)s)->l[idx];
}

static void mem_free(gw_latstats *s)
{
    free(((mem_stats *)s)->l);
    free(s);
}

static const gw_latstats_ops mem_ops = {mem_record, mem_get, mem_free, NULL, NULL};

gw_err gw_latstats_mem_new(size_t count, double alpha, gw_latstats **out)
{
    if (count == 0 || !(alpha > 0 && alpha <= 1))
        return GW_E_CONFIG;
    mem_stats *m = calloc(1, sizeof *m);
    gw_latency *l = calloc(count, sizeof *l);
    if (m == NULL || l == NULL) {
        free(m);
        free(l);
        return GW_E_NOMEM;
    }
    m->base = (gw_latstats){.ops = &mem_ops, .count = count, .alpha = alpha};
    m->l = l;
    *out = &m->base;
    return GW_OK;
}
