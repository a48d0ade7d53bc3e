/*
 * router: picks the deployments that may serve a request, best first.
 *
 * Pure and allocation-free: the result goes into a caller-provided
 * gw_route_plan; the live state (breaker states, latency statistics,
 * in-flight counts) comes through a gw_route_view of callbacks, so the
 * router is testable with plain tables. One call costs a few microseconds
 * for tens of deployments.
 *
 * Filters, in order, each with its own error when nothing survives it:
 *   preferred model (request.model matches a deployment id or model name)
 *                                          -> E4008 UNKNOWN_MODEL
 *   required capabilities                  -> E4010 NO_CAPABLE_MODEL
 *   context: estimated prompt + max_tokens <= context window
 *                                          -> E4009 CONTEXT_TOO_LONG
 *   provider adapter configured            -> E4002 PROVIDER_NOT_CONFIGURED
 *   breaker not OPEN                       -> E4103 CIRCUIT_OPEN when a model
 *                                             was named, else E4102
 * Ranking by the request's strategy (lower score is better):
 *   FASTEST          EWMA time to first token (streamed) or total time,
 *                    the deployment's prior until min_samples samples;
 *   CHEAPEST         prompt_est * price_in + max_tokens * price_out;
 *   BEST_QUALITY     -quality;
 *   BALANCED         w_latency*L + w_cost*C + w_quality*(1-Q), each of L, C,
 *                    Q min-max normalised over the candidates;
 *   CAPABILITY_MATCH 2 * (capabilities not asked for) + (1 - quality).
 * HALF_OPEN deployments rank after all CLOSED ones (their allow call may
 * deny). Candidates whose scores are within tie_rel_eps of each other form a
 * tie group, ordered by a weighted random draw with weight / (1 + in-flight)
 * from the caller's seedable rng. The plan keeps 1 + max_fallbacks entries.
 *
 * Exploration (FASTEST and BALANCED only, and only with an rng): a
 * deployment below min_samples is ranked by its prior, which may keep it
 * from ever being tried. So with probability explore_share a cold CLOSED
 * candidate (uniformly among them) is moved to the front, else with
 * probability explore_rate any CLOSED candidate behind the leader is; the
 * former leader comes next. A cold deployment thus gets at most
 * explore_share + explore_rate of the traffic it is eligible for until it
 * has min_samples samples, and every candidate keeps a trickle of
 * explore_rate / (n - 1) so its statistics stay fresh. Exploration only
 * reorders what passed the filters. CHEAPEST, BEST_QUALITY and
 * CAPABILITY_MATCH never explore: their scores do not depend on latency.
 */
#ifndef GW_ROUTE_ROUTER_H
#define GW_ROUTE_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "config/config.h"
#include "model/model.h"
#include "route/breaker.h"
#include "route/latency.h"
#include "route/registry.h"
#include "route/rng.h"

typedef struct {
    int32_t max_fallbacks; /* plan length is 1 + max_fallbacks (capped by GW_REGISTRY_MAX) */
    double w_latency, w_cost, w_quality;
    int32_t min_samples;  /* latency samples before observed EWMA replaces the prior */
    double tie_rel_eps;   /* scores within this relative distance tie */
    double explore_share; /* FASTEST/BALANCED: P(a cold candidate leads), see below */
    double explore_rate;  /* FASTEST/BALANCED: P(a random other candidate leads) */
} gw_router_opts;

/* routing.* of cfg; gw_config_defaults() gives the documented defaults. */
void gw_router_opts_from_config(const gw_config *cfg, gw_router_opts *o);

/* Live state. Any callback may be NULL: CLOSED, no samples, zero in flight. */
typedef struct {
    gw_breaker_state (*breaker_state)(void *ud, size_t idx);
    void (*latency)(void *ud, size_t idx, gw_latency *out);
    int (*inflight)(void *ud, size_t idx);
    void *ud;
} gw_route_view;

typedef struct {
    uint16_t idx[GW_REGISTRY_MAX]; /* registry indexes, best first */
    double score[GW_REGISTRY_MAX];
    size_t count;
    int32_t prompt_tokens_est;
    int32_t need_tokens; /* prompt estimate + max_tokens */
} gw_route_plan;

/* Rank candidates for req into *plan. rng may be NULL (ties keep registry order). */
gw_err gw_route(const gw_registry *reg, const gw_router_opts *o, const gw_request *req,
                const gw_route_view *view, gw_rng *rng, gw_route_plan *plan);

/* Estimated cost in USD of serving req (prompt estimate, max_tokens) on d. */
double gw_route_estimate_cost_usd(const gw_deployment *d, int32_t prompt_tokens,
                                  int32_t completion_tokens);

#endif
