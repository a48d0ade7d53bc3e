/*
 * aimd: the adaptive in-flight cap of one deployment (additive increase,
 * multiplicative decrease), driven by the provider's own signals.
 *
 * Pure: no I/O, no clock, no allocation. The caller feeds each finished call
 * (gw_aimd_on_result, with the time) and reads the cap (gw_aimd_limit);
 * src/route/routing.c pushes a changed cap to the provider layer's
 * per-deployment queue (gw_providers_set_limit) and shares the changes with
 * the fleet through the latency statistics' batched flush.
 *
 * The cap lives in [opts.min, max] (max: the deployment's max_concurrency)
 * and starts at max, so nothing changes until a provider signals pressure.
 *   - A congestion signal multiplies it by opts.decrease: a 429; a
 *     rate-limit header whose remaining/limit share is below
 *     opts.low_remaining (or remaining 0); with opts.latency_factor > 0, a
 *     recent time to first token above latency_factor times its slow
 *     baseline (after 20 samples). At most one decrease per hold (the recent
 *     total latency, clamped to 100..5000 ms, 1 s before any sample), so the
 *     burst of 429s that one overload causes counts once, as TCP counts one
 *     loss per round trip.
 *   - Any other success adds opts.increase / cap (so + increase per cap
 *     successes), except before the provider's Retry-After or the
 *     rate-limit window's reset after a congestion signal.
 * Invariants: min <= cap <= max; gw_aimd_limit() = floor(cap) >= 1.
 */
#ifndef GW_ROUTE_AIMD_H
#define GW_ROUTE_AIMD_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "provider/ratelimit.h"

typedef struct {
    bool enabled;
    int32_t min;           /* lowest cap, >= 1 */
    double increase;       /* added per cap successes */
    double decrease;       /* factor on a congestion signal, 0 < decrease < 1 */
    double latency_factor; /* 0: latency is no signal */
    double low_remaining;  /* remaining/limit share below this is a signal */
} gw_aimd_opts;

/* routing.adaptive_concurrency and routing.concurrency_* of cfg. */
void gw_aimd_opts_from_config(const gw_config *cfg, gw_aimd_opts *o);

typedef enum { GW_AIMD_SUCCESS, GW_AIMD_RATE_LIMITED, GW_AIMD_OTHER } gw_aimd_kind;

typedef struct {
    gw_aimd_kind kind;      /* OTHER: failures that say nothing about load (only headers count) */
    double ttft_ms;         /* SUCCESS: time to first token (or to the answer); < 0 unknown */
    double total_ms;        /* SUCCESS: the call's total time; < 0 unknown */
    int64_t retry_after_ms; /* the provider's Retry-After; -1 none */
    const gw_ratelimit *rl; /* the response's rate-limit headers; may be NULL */
} gw_aimd_signal;

typedef struct {
    double cap;
    int32_t max;
    double base_ttft_ms, recent_ttft_ms, recent_total_ms; /* valid once samples > 0 */
    int64_t samples;
    int64_t hold_until_ms; /* no decrease before */
    int64_t grow_after_ms; /* no increase before */
    double pend_inc;       /* changes not yet sent to the fleet */
    int32_t pend_dec;
    int64_t decreases; /* since init */
} gw_aimd;

/* max: the deployment's max_concurrency (>= 1). */
void gw_aimd_init(gw_aimd *a, const gw_aimd_opts *o, int32_t max);
/* One finished call at now_ms (any monotonic clock). True when the limit changed. */
bool gw_aimd_on_result(gw_aimd *a, const gw_aimd_opts *o, int64_t now_ms, const gw_aimd_signal *s);
/* floor(cap). */
int32_t gw_aimd_limit(const gw_aimd *a);
/* How long after a decrease further congestion signals are ignored. */
int64_t gw_aimd_hold_ms(const gw_aimd *a);
/* The changes since the last take (increase sum, decrease count); resets them. */
void gw_aimd_take(gw_aimd *a, double *inc, int32_t *dec);
/* Adopt the fleet's cap (changes not yet taken stay applied on top). True
 * when the limit changed. */
bool gw_aimd_adopt(gw_aimd *a, const gw_aimd_opts *o, double fleet_cap);

#endif
