/*
 * breaker: one circuit breaker per deployment, shared by the whole fleet.
 *
 * Semantics (identical in both backends; docs/routing.md has the diagram):
 *   CLOSED    calls flow; outcomes land in a time-bucketed window
 *             (window_ms / bucket_ms buckets). It trips to OPEN when the
 *             window holds >= min_calls calls and failures/calls >=
 *             failure_rate, or after consecutive_failures failures in a row.
 *   OPEN      calls are denied for a cool-down of open_base_ms * 2^(n-1)
 *             (n = trips since the breaker last closed), capped at
 *             open_max_ms and scaled by a random factor in [1-jitter, 1].
 *   HALF_OPEN after the cool-down: exactly one probe at a time across the
 *             fleet (a lease, SET NX PX in Redis); half_open_successes
 *             successful probes close it; a failed probe re-opens it with the
 *             next, longer cool-down.
 *   A provider 429 does not count as a failure: it sets a shared cool-down
 *   of its Retry-After (capped; a default when absent) during which every
 *   call is denied, whatever the state.
 *
 * Backends behind one interface: in-memory (dev mode, unit tests; injectable
 * clock, answers synchronously) and Redis (one Lua script records an outcome
 * and applies the transition atomically using Redis TIME, another answers
 * allow; every key has a TTL; the answer is cached locally for
 * local_cache_ms so most allow calls cost no round trip).
 *
 * gw_breaker_allow answers synchronously when it can (returns true and fills
 * *out); otherwise it returns false and cb runs exactly once, later, never
 * inside the call. When Redis fails the Redis backend answers from a local
 * in-memory breaker that sees every outcome this worker records (fail-open to
 * this process's own view), or denies when fail_closed is set
 * (failure_policy.breaker = closed); either way with err =
 * GW_E_STATE_UNAVAILABLE in the decision so callers can count it.
 */
#ifndef GW_ROUTE_BREAKER_H
#define GW_ROUTE_BREAKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#include "config/config.h"

enum { GW_BREAKER_MAX_BUCKETS = 120, GW_BREAKER_TOKEN_MAX = 128 };

typedef enum { GW_BREAKER_CLOSED, GW_BREAKER_OPEN, GW_BREAKER_HALF_OPEN } gw_breaker_state;

const char *gw_breaker_state_name(gw_breaker_state s); /* "closed" | "open" | "half_open" */

typedef struct {
    int32_t bucket_ms;             /* width of one window bucket */
    int32_t window_ms;             /* window length; window_ms / bucket_ms <= MAX_BUCKETS */
    int32_t min_calls;             /* rate trip needs at least this many calls in the window */
    double failure_rate;           /* 0 < rate <= 1 */
    int32_t consecutive_failures;  /* trip after this many failures in a row; 0 = off */
    int32_t open_base_ms;          /* first cool-down */
    int32_t open_max_ms;           /* cool-down cap */
    double jitter;                 /* 0..1: cool-down scaled by a factor in [1-jitter, 1] */
    int32_t half_open_successes;   /* successful probes needed to close */
    int32_t probe_lease_ms;        /* a probe that never reports frees the slot after this */
    int32_t rate_limit_default_ms; /* cool-down after a 429 without Retry-After */
    int32_t rate_limit_max_ms;     /* cap on a provider's Retry-After */
    int32_t local_cache_ms;        /* Redis backend: how long a worker trusts its cached view */
    int32_t state_ttl_ms;          /* Redis backend: TTL of every breaker key */
    bool fail_closed; /* Redis unavailable: deny (true) or use the local view (false) */
} gw_breaker_opts;

/* breaker.*, retry.max_retry_after_ms (the 429 cool-down cap when above 0) and
 * failure_policy.breaker of cfg; gw_config_defaults() gives the documented
 * defaults. state_ttl_ms is raised to 2 x window_ms and 4 x open_max_ms. */
void gw_breaker_opts_from_config(const gw_config *cfg, gw_breaker_opts *o);
gw_err gw_breaker_opts_check(const gw_breaker_opts *o, char *errbuf, size_t errlen);

typedef enum {
    GW_OUTCOME_SUCCESS,
    GW_OUTCOME_FAILURE,      /* timeouts, 5xx, resets, truncated streams, bad responses */
    GW_OUTCOME_IGNORED,      /* caller errors (4xx but 408/429), gateway-side errors */
    GW_OUTCOME_RATE_LIMITED, /* 429: shared cool-down, no trip */
} gw_outcome_kind;

/* How an attempt's result counts for the breaker. */
gw_outcome_kind gw_breaker_classify(gw_err err, int http_status);

typedef struct {
    gw_outcome_kind kind;
    bool probe;             /* the attempt was admitted as the half-open probe */
    int64_t retry_after_ms; /* RATE_LIMITED: provider's Retry-After; -1 when none */
} gw_breaker_outcome;

typedef enum { GW_VERDICT_ALLOWED, GW_VERDICT_DENIED, GW_VERDICT_PROBE } gw_breaker_verdict;

typedef struct {
    gw_breaker_verdict verdict;
    int64_t retry_in_ms; /* DENIED: earliest time worth asking again */
    gw_breaker_state state;
    bool rate_limited; /* DENIED by a provider 429 cool-down */
    gw_err err;        /* GW_OK, or STATE_UNAVAILABLE when the local fallback answered */
} gw_breaker_decision;

typedef void (*gw_breaker_allow_cb)(void *ud, const gw_breaker_decision *d);

/* What the health endpoint shows; the backend's latest known view. */
typedef struct {
    gw_breaker_state state;
    int64_t open_remaining_ms;
    int64_t cooldown_remaining_ms;
    int32_t open_count; /* trips since it last closed */
    int32_t window_calls;
    int32_t window_failures;
    int32_t consecutive_failures;
    double error_rate; /* window_failures / window_calls, 0 when no calls */
    int64_t age_ms;    /* how old this view is (0 for the in-memory backend) */
} gw_breaker_stat;

typedef struct gw_breaker gw_breaker;
typedef int64_t (*gw_clock_fn)(void *ud); /* milliseconds, monotonic enough */

/* Monotonic milliseconds (CLOCK_MONOTONIC); the default clock. */
int64_t gw_clock_monotonic_ms(void *ud);

/* In-memory backend for count deployments. clock NULL = gw_clock_monotonic_ms. */
gw_err gw_breaker_mem_new(const gw_breaker_opts *o, size_t count, gw_clock_fn clock, void *clock_ud,
                          uint64_t seed, gw_breaker **out);

typedef struct gw_redis gw_redis;
typedef struct gw_registry gw_registry;

/*
 * Redis backend over the connection r (which must outlive the breaker's use;
 * free the breaker before or after gw_redis_free: memory is released when
 * the last pending reply has been answered). Keys, with <id> the deployment
 * id: <prefix>brk:{<id>} (hash) and <prefix>brk:{<id>}:probe (lease).
 */
gw_err gw_breaker_redis_new(const gw_breaker_opts *o, const gw_registry *reg, gw_redis *r,
                            const char *key_prefix, uint64_t seed, gw_breaker **out);

/* Answer now (true, *out filled) or later through cb (false). token names the
 * caller (request id + attempt), <= GW_BREAKER_TOKEN_MAX bytes; it holds the
 * probe lease when the verdict is PROBE. */
bool gw_breaker_allow(gw_breaker *b, size_t idx, const char *token, gw_breaker_decision *out,
                      gw_breaker_allow_cb cb, void *ud);
/* Fire and forget: applies the transition (Redis: asynchronously). */
void gw_breaker_record(gw_breaker *b, size_t idx, const char *token, const gw_breaker_outcome *o);
/* Send the outcomes batched per deployment (the Redis backend); the worker
 * calls it every 100 ms and before it stops. */
void gw_breaker_flush(gw_breaker *b);
/* The latest known state without I/O (for the router's filter); OPEN also
 * while a 429 cool-down runs (the deployment is not callable). */
gw_breaker_state gw_breaker_peek(gw_breaker *b, size_t idx);
/* The latest known view without I/O (for /health). */
void gw_breaker_snapshot(gw_breaker *b, size_t idx, gw_breaker_stat *out);
size_t gw_breaker_count(const gw_breaker *b);
/* Replies still awaited from the backend (0 for the in-memory one). */
size_t gw_breaker_pending(const gw_breaker *b);
void gw_breaker_free(gw_breaker *b);

#endif
