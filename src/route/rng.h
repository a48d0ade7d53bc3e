/*
 * rng: a tiny seedable pseudo-random generator (splitmix64) for routing tie
 * breaks, backoff jitter and breaker cool-down jitter.
 *
 * Not for anything secret. Each owner keeps its own state (a worker, a test),
 * so a fixed seed gives a reproducible sequence; there is no global state.
 */
#ifndef GW_ROUTE_RNG_H
#define GW_ROUTE_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s;
} gw_rng;

static inline void gw_rng_seed(gw_rng *r, uint64_t seed)
{
    r->s = seed;
}

static inline uint64_t gw_rng_next(gw_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static inline double gw_rng_unit(gw_rng *r)
{
    return (double)(gw_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

#endif
