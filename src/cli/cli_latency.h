/*
 * cli_latency: a bounded recorder of latency samples and their percentiles,
 * for modelgw-bench.
 *
 * Samples are kept exactly (microseconds, uint32) in one growable array with
 * a hard cap on the count, so percentiles are exact (nearest-rank on the
 * sorted samples), not bucketed. At the cap further samples are counted in
 * `dropped` but not stored. 10 million samples cost 40 MB.
 *
 * Invariant: count <= cap_count; samples[0..count) are valid; sorted says
 * whether they are in ascending order (set by gw_cli_lat_percentile, cleared
 * by gw_cli_lat_add).
 */
#ifndef GW_CLI_LATENCY_H
#define GW_CLI_LATENCY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct {
    uint32_t *samples_us;
    size_t count;
    size_t alloc;
    size_t cap_count;
    size_t dropped;
    bool sorted;
} gw_cli_lat;

void gw_cli_lat_init(gw_cli_lat *l, size_t cap_count);
void gw_cli_lat_cleanup(gw_cli_lat *l);
/* GW_E_NOMEM when the array cannot grow; GW_E_LIMIT (sample counted as
 * dropped) at the cap. Values above UINT32_MAX µs are clamped. */
gw_err gw_cli_lat_add(gw_cli_lat *l, uint64_t value_us);
/* Nearest-rank percentile, p in [0,100]; 0 when there are no samples.
 * p=100 is the maximum, p=0 the minimum. Sorts on first use. */
uint32_t gw_cli_lat_percentile(gw_cli_lat *l, double p);
double gw_cli_lat_mean(const gw_cli_lat *l);

/* Percentile of a plain array (sorted in place), same rule. */
uint32_t gw_cli_percentile_u32(uint32_t *v, size_t n, double p);

#endif
