/*
 * health: the read-only view of routing state for /health and metrics: per
 * deployment its provider, whether the provider is configured, breaker state,
 * recent error rate, latency EWMAs and in-flight count, plus a status word.
 *
 * Reads only local views (gw_breaker_snapshot, gw_latstats_get): no I/O, so
 * the admin endpoint can call it on the loop at any time.
 *
 * Status: "not_configured" (no adapter for the provider), "down" (breaker
 * OPEN or a 429 cool-down running), "degraded" (HALF_OPEN, or window error
 * rate >= 0.2), else "up".
 */
#ifndef GW_ROUTE_HEALTH_H
#define GW_ROUTE_HEALTH_H

#include <jansson.h>

#include "route/breaker.h"
#include "route/latency.h"
#include "route/registry.h"

typedef struct {
    const char *id;
    const char *provider; /* "mock", "openai", ... */
    const char *model;
    const char *status; /* see above; static string */
    bool provider_ready;
    gw_breaker_stat breaker;
    gw_latency latency;
    int inflight;
} gw_route_health;

/* Optional in-flight source (gw_providers_inflight through a closure). */
typedef int (*gw_inflight_fn)(void *ud, size_t idx);

/* Fill out[0..min(count, cap)); returns the registry's count. b, s, inflight may be NULL. */
size_t gw_route_health_read(const gw_registry *reg, gw_breaker *b, gw_latstats *s,
                            gw_inflight_fn inflight, void *ud, gw_route_health *out, size_t cap);
/* {"deployments":[{...}], "available": n} as a new jansson object (NULL on OOM). */
json_t *gw_route_health_json(const gw_registry *reg, gw_breaker *b, gw_latstats *s,
                             gw_inflight_fn inflight, void *ud);

#endif
