/*
 * latency: per-deployment latency statistics for the FASTEST and BALANCED
 * strategies and for /health: an EWMA of time to first token and of total
 * time, with the sample count, shared by the fleet.
 *
 * Backends behind one interface: in-memory (dev mode, tests) and Redis (one
 * Lua script updates both EWMAs of a deployment atomically, keys with a TTL;
 * another reads every deployment in one round trip). The same hash carries
 * the fleet's adaptive concurrency cap of each deployment (field c), changed
 * by the batched flush. Reads never do I/O:
 * gw_latstats_get answers from the local copy and, when that copy is older
 * than refresh_ms, starts one asynchronous refresh for all deployments.
 */
#ifndef GW_ROUTE_LATENCY_H
#define GW_ROUTE_LATENCY_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "route/breaker.h"

typedef struct {
    double ttft_ms;  /* EWMA of time to first token; valid when samples > 0 */
    double total_ms; /* EWMA of total call time; valid when samples > 0 */
    int64_t samples;
    double fleet_cap; /* the fleet's adaptive concurrency cap (Redis backend); 0 unknown */
} gw_latency;

/* How the fleet applies cap changes (see src/route/aimd.h and
 * latency_record.lua): the deployment's bounds, the decrease factor and the
 * hold after a decrease. */
typedef struct {
    int32_t min, max;
    double decrease;
    int64_t hold_ms;
} gw_latstats_cap;

typedef struct gw_latstats gw_latstats;

/* alpha: weight of a new sample, 0 < alpha <= 1. */
gw_err gw_latstats_mem_new(size_t count, double alpha, gw_latstats **out);
typedef struct gw_redis gw_redis;
typedef struct gw_registry gw_registry;

/*
 * Redis backend: key <prefix>lat:{<id>} per deployment (hash t, T, n; TTL
 * ttl_s refreshed on every write). The local copy is refreshed from Redis at
 * most every refresh_ms (one script call for all deployments) and updated
 * from the reply of every record. Memory is released when the last pending
 * reply has been answered.
 */
gw_err gw_latstats_redis_new(const gw_registry *reg, gw_redis *r, const char *key_prefix,
                             double alpha, int32_t refresh_ms, int32_t ttl_s, gw_latstats **out);
/* Replies still awaited from the backend (0 for the in-memory one). */
size_t gw_latstats_pending(const gw_latstats *s);

/* Record one successful call; ttft_ms < 0 when unknown (then only total is updated). */
void gw_latstats_record(gw_latstats *s, size_t idx, double ttft_ms, double total_ms);
/* Add changes of the adaptive concurrency cap to idx's batch (the sum of
 * increases, the number of decreases); sent with the next flush, in the same
 * script call as the latency samples. The memory backend ignores them (one
 * process: the cap is local). */
void gw_latstats_concurrency(gw_latstats *s, size_t idx, double inc, int32_t dec,
                             const gw_latstats_cap *p);
/* Send what was batched (the Redis backend folds samples per deployment and
 * sends them on this call, or at 64 samples); the memory backend has nothing
 * to send. The worker calls it every 100 ms and before it stops. */
void gw_latstats_flush(gw_latstats *s);
/* Local view, no I/O. Zero samples when nothing is known. */
void gw_latstats_get(gw_latstats *s, size_t idx, gw_latency *out);
size_t gw_latstats_count(const gw_latstats *s);
void gw_latstats_free(gw_latstats *s);

#endif
