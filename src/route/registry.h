/*
 * registry: the validated, immutable set of model deployments a worker may
 * route to, built once at start from the config's gw_deployment array.
 *
 * Every deployment gets a dense index 0..count-1 that the router, the
 * breaker and the latency statistics use for their per-deployment arrays.
 * The registry does not copy the deployments: the config that owns them must
 * outlive it. Validation rejects duplicate ids, ids that are not safe as
 * Redis key parts ([A-Za-z0-9._:-], 1..64 bytes), weight < 1, context
 * window <= 0, negative prices, quality outside 0..1, non-positive latency
 * priors and unknown provider kinds.
 *
 * A deployment whose provider kind has no adapter in this build or no
 * configured client (the provider mask) stays in the registry: routing to it
 * yields E4002 PROVIDER_NOT_CONFIGURED when no other candidate can serve.
 */
#ifndef GW_ROUTE_REGISTRY_H
#define GW_ROUTE_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "model/deployment.h"

enum { GW_REGISTRY_MAX = 64, GW_DEPLOYMENT_ID_MAX = 64 };

typedef struct gw_registry gw_registry;

/* Bit (1u << kind) set for each provider kind that has a working adapter. */
typedef uint32_t gw_provider_mask;
#define GW_PROVIDER_MASK_ALL ((gw_provider_mask)((1u << GW_PROVIDER__COUNT) - 1u))

/*
 * Validate deps[0..n) and build a registry over them (not copied).
 * On GW_E_CONFIG, errbuf (if not NULL) names the deployment and the setting.
 */
gw_err gw_registry_new(const gw_deployment *deps, size_t n, gw_provider_mask providers,
                       char *errbuf, size_t errlen, gw_registry **out);
void gw_registry_free(gw_registry *r);

size_t gw_registry_count(const gw_registry *r);
const gw_deployment *gw_registry_get(const gw_registry *r, size_t idx);
/* True when the deployment's provider kind is in the mask given at creation. */
bool gw_registry_provider_ready(const gw_registry *r, size_t idx);
/* Index of the deployment with this id, or -1. */
int gw_registry_find_id(const gw_registry *r, const char *id);
/*
 * Indexes of deployments whose id or model name equals name, into out[0..cap).
 * Returns how many matched (may exceed cap; only cap are written).
 */
size_t gw_registry_match(const gw_registry *r, const char *name, uint16_t *out, size_t cap);
/* Largest context window of all deployments (0 when empty). */
int32_t gw_registry_max_context(const gw_registry *r);

#endif
