/*
 * routing: the one object the worker pipeline holds for everything in this
 * directory: the registry, the router options, the failover options, the
 * breaker and the latency statistics (Redis or in-memory backends), the
 * tie-break rng, and the in-flight source. It owns all of them except the
 * config, the Redis connection and the providers, which must outlive it.
 *
 * Per request:  gw_routing_route()  then  gw_routing_failover_init().
 * Per attempt:  gw_routing_allow()  ->  provider call  ->  gw_routing_report()
 *               (breaker outcome + latency sample, issued together; the
 *               deployment's adaptive in-flight cap, pushed to the providers'
 *               queue when it changes) ->
 *               gw_failover_on_outcome().
 * See docs/routing.md for the full sequence.
 */
#ifndef GW_ROUTE_ROUTING_H
#define GW_ROUTE_ROUTING_H

#include <jansson.h>

#include "config/config.h"
#include "provider/provider.h"
#include "route/breaker.h"
#include "route/failover.h"
#include "route/latency.h"
#include "route/registry.h"
#include "route/router.h"

typedef struct gw_routing gw_routing;

/*
 * Build from cfg. redis NULL selects the in-memory backends (dev mode,
 * state.backend = memory); otherwise keys start with cfg->redis.key_prefix.
 * providers (may be NULL) supplies in-flight counts for load balancing.
 * mask: provider kinds with a working adapter. GW_E_CONFIG with errbuf set
 * when the deployments or the breaker settings are invalid.
 */
gw_err gw_routing_new(const gw_config *cfg, gw_redis *redis, gw_providers *providers,
                      gw_provider_mask mask, uint64_t seed, char *errbuf, size_t errlen,
                      gw_routing **out);
void gw_routing_free(gw_routing *rt);

const gw_registry *gw_routing_registry(const gw_routing *rt);
gw_breaker *gw_routing_breaker(gw_routing *rt);
gw_latstats *gw_routing_latency(gw_routing *rt);

/* gw_route with the live view (breaker peek, latency, in-flight). */
gw_err gw_routing_route(gw_routing *rt, const gw_request *req, gw_route_plan *plan);
/* plan must outlive fo. */
void gw_routing_failover_init(gw_routing *rt, gw_failover *fo, const gw_route_plan *plan);
/* gw_breaker_allow for the deployment at registry index idx. */
bool gw_routing_allow(gw_routing *rt, size_t idx, const char *token, gw_breaker_decision *out,
                      gw_breaker_allow_cb cb, void *ud);
/* Record one attempt's result: breaker outcome and, on success, a latency sample. */
void gw_routing_report(gw_routing *rt, size_t idx, const char *token, bool was_probe,
                       const gw_provider_result *res);
/* Send the breaker outcomes and latency samples batched since the last
 * flush (one script call per deployment with Redis). Every 100 ms from the
 * worker's tick, and before it stops. */
void gw_routing_flush(gw_routing *rt);
/* The in-flight cap in force for the deployment at idx: the adaptive one
 * (src/route/aimd.h) when routing.adaptive_concurrency is on, else its
 * max_concurrency. For /metrics and /health. */
int gw_routing_concurrency_limit(const gw_routing *rt, size_t idx);
/* The routing part of /health (new reference; NULL on OOM). */
json_t *gw_routing_health_json(gw_routing *rt);

#endif
