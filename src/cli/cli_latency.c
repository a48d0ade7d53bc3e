/*
 * cli_latency: exact latency percentiles for modelgw-bench (see the header
 * for the invariants).
 */
#include "cli/cli_latency.h"

#include <math.h>
#include <stdlib.h>

void gw_cli_lat_init(gw_cli_lat *l, size_t cap_count)
{
    l->samples_us = NULL;
    l->count = 0;
    l->alloc = 0;
    l->cap_count = cap_count;
    l->dropped = 0;
    l->sorted = true;
}

void gw_cli_lat_cleanup(gw_cli_lat *l)
{
    free(l->samples_us);
    gw_cli_lat_init(l, l->cap_count);
}

gw_err gw_cli_lat_add(gw_cli_lat *l, uint64_t value_us)
{
    if (l->count >= l->cap_count) {
        l->dropped++;
        return GW_E_LIMIT;
    }
    if (l->count == l->alloc) {
        size_t n = l->alloc ? l->alloc * 2 : 1024;
        if (n > l->cap_count)
            n = l->cap_count;
        uint32_t *p = realloc(l->samples_us, n * sizeof *p);
        if (!p)
            return GW_E_NOMEM;
        l->samples_us = p;
        l->alloc = n;
    }
    l->samples_us[l->count++] = value_us > UINT32_MAX ? UINT32_MAX : (uint32_t)value_us;
    l->sorted = false;
    return GW_OK;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a;
    uint32_t y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static uint32_t nearest_rank(const uint32_t *sorted, size_t n, double p)
{
    if (n == 0)
        return 0;
    if (!(p > 0)) /* also NaN */
        return sorted[0];
    if (p >= 100)
        return sorted[n - 1];
    double rank = ceil(p / 100.0 * (double)n);
    size_t idx = rank < 1 ? 0 : (size_t)rank - 1;
    return sorted[idx < n ? idx : n - 1];
}

uint32_t gw_cli_percentile_u32(uint32_t *v, size_t n, double p)
{
    if (n > 1)
        qsort(v, n, sizeof *v, cmp_u32);
    return nearest_rank(v, n, p);
}

uint32_t gw_cli_lat_percentile(gw_cli_lat *l, double p)
{
    if (!l->sorted && l->count > 1)
        qsort(l->samples_us, l->count, sizeof *l->samples_us, cmp_u32);
    l->sorted = true;
    return nearest_rank(l->samples_us, l->count, p);
}

double gw_cli_lat_mean(const gw_cli_lat *l)
{
    if (l->count == 0)
        return 0;
    double sum = 0;
    for (size_t i = 0; i < l->count; i++)
        sum += l->samples_us[i];
    return sum / (double)l->count;
}
