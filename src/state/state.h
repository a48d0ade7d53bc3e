/*
 * state: the fleet-wide state every worker must agree on, behind one
 * interface: rate limits, spend budgets, the exact response cache with
 * single-flight, and idempotency leases.
 *
 * Three implementations of one vtable (state_private.h):
 *   - state_redis.c: production, shared by the fleet; one Lua script (or one
 *     plain command) per decision, so one round trip each; Redis TIME for the
 *     limiter; every key has a TTL;
 *   - state_mem.c: one process (dev mode, unit tests), the same semantics,
 *     with an injectable clock;
 *   - state_policy.c: the failure policy, wrapping another backend: when it
 *     answers GW_E_STATE_UNAVAILABLE, each feature either falls back locally
 *     ("open") or reports the error ("closed"); fallbacks are counted.
 *
 * Callback rules, the same for every backend:
 *   - every operation's callback runs exactly once, never inside the call
 *     that started it (the memory backend answers on the next loop turn);
 *   - pointers in a result (cached bytes) are valid only during the callback;
 *   - argument strings are copied before the call returns;
 *   - gw_state_free() answers what is still pending with GW_E_SHUTTING_DOWN
 *     (inside the call; single-flight waiters included) or, for operations
 *     already sent to Redis, when their reply arrives or gw_redis_free()
 *     runs; no callback touches the freed state.
 *
 * Limiter: GCRA, one key per limit holding its theoretical arrival time
 * (TAT). A limit with rate R per minute and burst B is a bucket of B units
 * refilled at R per minute: over any window of D minutes at most R*D + B
 * units are admitted. A check takes `cost` units from every key or from none
 * (all-or-nothing); a cost above B can never fit. Reconcile applies a signed
 * delta per key (refund < 0, charge > 0) once per request id, never denying.
 *
 * Keys (Redis; the memory backend uses the same names):
 *   <prefix>rl:<scope>          limiter TAT (ms)         PX until the bucket is full
 *   <prefix>rr:<request_id>     reconcile marker         PX marker_ttl
 *   <prefix>b:<agent>:d:<YYYYMMDD>, :m:<YYYYMM>  spend in micro-USD  EX 2 / 33 days
 *   <prefix>bc:<request_id>     budget charge marker     PX marker_ttl
 *   <prefix>c:<key>, cl:<key>   cache entry / single-flight lock
 *   <prefix>id:<request_id>, il:<request_id>  idempotency result / lease
 */
#ifndef GW_STATE_STATE_H
#define GW_STATE_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "common/err.h"

typedef struct gw_state gw_state;
typedef struct gw_redis gw_redis;

enum {
    GW_STATE_MAX_LIMIT_KEYS = 8,    /* limits checked by one decision */
    GW_STATE_MAX_NAME_BYTES = 256,  /* scope, agent, request id, owner, cache key */
    GW_STATE_MAX_PREFIX_BYTES = 64, /* key prefix */
    /* A released lease or lock is left as "~<owner>" this long: free for
     * anyone else, but a late copy of the owner's own claim (its reply lost
     * to a timeout, run after the release) cannot take it again. */
    GW_STATE_TOMBSTONE_MS = 30000,
};

/* Milliseconds since the Unix epoch; ud is the clock's context. */
typedef int64_t (*gw_state_clock_fn)(void *ud);
int64_t gw_state_clock_realtime_ms(void *ud);

/* ---- rate limits ----------------------------------------------------------- */

typedef struct {
    const char *scope;   /* "agent_rpm:<agent>", "deploy_tpm:<id>", ...; part of the key */
    double rate_per_min; /* sustained units per minute, > 0 */
    double burst;        /* bucket capacity in units, > 0 */
    double cost;         /* check: units taken (>= 0); reconcile: signed delta */
} gw_limit_key;

typedef enum { GW_LIMIT_ALLOWED, GW_LIMIT_DENIED, GW_LIMIT_NEVER_FITS } gw_limit_verdict;

typedef struct {
    gw_err err;               /* GW_OK: verdict is valid */
    bool fallback;            /* answered by the local fallback limiter */
    gw_limit_verdict verdict; /* when err == GW_OK */
    int64_t retry_after_ms;   /* DENIED: when all keys would admit this cost */
    int limit_index;          /* DENIED / NEVER_FITS: index in the caller's keys */
} gw_limit_result;

typedef void (*gw_limit_cb)(void *ud, const gw_limit_result *res);

/* Acknowledgement of a write. applied = false when the request id had already
 * been applied (exactly-once markers) or when the write was skipped (fallback). */
typedef struct {
    gw_err err;
    bool fallback;
    bool applied;
} gw_state_ack;

typedef void (*gw_ack_cb)(void *ud, const gw_state_ack *res);

void gw_state_limit_check(gw_state *st, const gw_limit_key *keys, size_t n, gw_limit_cb cb,
                          void *ud);
/* keys[i].cost is the delta (actual - reserved). Once per request_id. */
void gw_state_limit_reconcile(gw_state *st, const char *request_id, const gw_limit_key *keys,
                              size_t n, gw_ack_cb cb, void *ud);

/* ---- budgets ----------------------------------------------------------------- */

typedef struct {
    double daily_usd; /* 0 = unlimited */
    double monthly_usd;
} gw_budget_limits;

typedef struct {
    gw_err err; /* GW_OK or GW_E_BUDGET_EXCEEDED (non-retryable), or a failure */
    bool fallback;
    double spent_day_usd; /* before this request */
    double spent_month_usd;
    const char *period; /* EXCEEDED: "day" | "month" */
} gw_budget_result;

typedef void (*gw_budget_cb)(void *ud, const gw_budget_result *res);

/* Exceeded when spent + estimate > limit for the current UTC day or month. */
void gw_state_budget_check(gw_state *st, const char *agent, double estimate_usd,
                           const gw_budget_limits *lim, gw_budget_cb cb, void *ud);
/* Adds actual_usd to the agent's day and month, once per request_id. */
void gw_state_budget_charge(gw_state *st, const char *request_id, const char *agent,
                            double actual_usd, gw_ack_cb cb, void *ud);

/* ---- exact response cache and idempotency -------------------------------------- */

typedef enum {
    GW_CACHE_MISS,            /* get: nothing stored */
    GW_CACHE_HIT,             /* data/len hold the stored bytes */
    GW_CACHE_LOCKED_BY_ME,    /* get_or_lock / claim: the caller owns the work */
    GW_CACHE_LOCKED_BY_OTHER, /* someone else does; lock_ttl_ms left on their lease */
    GW_CACHE_BYPASS,          /* failure policy "open": go on without the cache */
} gw_cache_kind;

typedef struct {
    gw_err err;
    bool fallback;
    gw_cache_kind kind;
    const uint8_t *data; /* HIT: valid only during the callback */
    size_t len;
    int64_t lock_ttl_ms; /* LOCKED_BY_OTHER */
} gw_cache_result;

typedef void (*gw_cache_cb)(void *ud, const gw_cache_result *res);

/* key: an opaque id such as gw_cache_key_compute()'s hex digest. */
void gw_state_cache_get(gw_state *st, const char *key, gw_cache_cb cb, void *ud);
/* Store bytes for ttl_s and release the single-flight lock if owner holds it
 * (owner may be NULL). GW_E_LIMIT above the backend's max_entry_bytes. */
void gw_state_cache_put(gw_state *st, const char *key, const uint8_t *data, size_t len,
                        int32_t ttl_s, const char *owner, gw_ack_cb cb, void *ud);
/* One atomic step: HIT if stored (unless refresh), else take the lock for
 * lock_ms (LOCKED_BY_ME; also when owner already holds it), else
 * LOCKED_BY_OTHER. */
void gw_state_cache_get_or_lock(gw_state *st, const char *key, const char *owner, int32_t lock_ms,
                                bool refresh, gw_cache_cb cb, void *ud);
/* Release the lock if owner holds it (the owner's call failed). */
void gw_state_cache_unlock(gw_state *st, const char *key, const char *owner, gw_ack_cb cb,
                           void *ud);
/* A waiter: poll get_or_lock with backoff (5 ms doubling to 100 ms) until a
 * HIT, until the lock is taken over (LOCKED_BY_ME: the owner failed), or
 * until wait_ms has passed (LOCKED_BY_OTHER). One callback. */
void gw_state_cache_wait(gw_state *st, const char *key, const char *owner, int32_t lock_ms,
                         int32_t wait_ms, gw_cache_cb cb, void *ud);

/* Idempotency, same result kinds: LOCKED_BY_ME = claimed (also an expired
 * lease taken over, or a re-claim by the same owner), HIT = already done
 * (data = the stored response), LOCKED_BY_OTHER = leased by a live worker. */
void gw_state_idem_claim(gw_state *st, const char *request_id, const char *owner, int32_t lease_ms,
                         gw_cache_cb cb, void *ud);
/* Keep the response for ttl_s (the first completion wins) and drop the lease. */
void gw_state_idem_complete(gw_state *st, const char *request_id, const char *owner,
                            const uint8_t *data, size_t len, int32_t ttl_s, gw_ack_cb cb, void *ud);
void gw_state_idem_release(gw_state *st, const char *request_id, const char *owner, gw_ack_cb cb,
                           void *ud);

/* ---- one call per request: admission and completion ----------------------------- */

/*
 * Admission: every decision that must be atomic for one request, in one call
 * (one Lua script with Redis, so one round trip before the provider call):
 *
 *   1. idempotency claim (when request_id is set): HIT (the kept answer) or
 *      LOCKED_BY_OTHER ends the admission there; nothing else is touched;
 *   2. the exact cache is read (cache_key set, not refresh);
 *   3. the limiter keys take hit_cost on a cache hit, miss_cost otherwise,
 *      all-or-nothing (DENIED / NEVER_FITS end the admission; the claim stays
 *      with the caller, who releases it on completion);
 *   4. on a miss, the budget is checked against estimate_usd;
 *   5. a hit is kept as the request's idempotency answer at once (its lease
 *      dropped: nothing is left to complete); on a miss with cache_lock the
 *      single-flight lock is taken (or found held by another).
 */
typedef struct {
    const char *request_id; /* NULL: no idempotency claim */
    const char *owner;
    int32_t lease_ms;
    int32_t result_ttl_s;     /* a cache hit kept as the idempotency answer */
    const char *fingerprint;  /* the request's content hash, kept before an answer
                                 ("<fingerprint>|<bytes>"); NULL: none */
    const gw_limit_key *keys; /* .cost = miss cost */
    const double *hit_cost;   /* per key; NULL = the miss cost */
    size_t nkeys;
    const char *agent; /* budget; NULL or no limits = unchecked */
    gw_budget_limits budget;
    double estimate_usd;
    const char *cache_key; /* NULL: no exact cache */
    bool cache_lock;       /* take the single-flight lock on a miss */
    bool cache_refresh;    /* skip the stored value (and lock) */
    int32_t lock_ms;
} gw_admit_req;

typedef struct {
    gw_err err;              /* a failure of the call as a whole */
    gw_cache_result idem;    /* MISS (not asked), HIT, LOCKED_BY_ME, LOCKED_BY_OTHER, BYPASS */
    gw_limit_result limit;   /* ALLOWED unless denied (valid when idem did not end it) */
    gw_budget_result budget; /* err GW_E_BUDGET_EXCEEDED with period */
    gw_cache_result cache;   /* MISS, HIT (data), LOCKED_BY_ME, LOCKED_BY_OTHER, BYPASS */
    bool hit_kept;           /* a cache HIT was kept as the idempotency answer */
} gw_admit_result;

typedef void (*gw_admit_cb)(void *ud, const gw_admit_result *res);

void gw_state_admit(gw_state *st, const gw_admit_req *rq, gw_admit_cb cb, void *ud);

typedef enum { GW_DONE_NONE, GW_DONE_STORE, GW_DONE_RELEASE } gw_done_kind;

/*
 * Completion: every write that follows an answer, in one call: the
 * idempotency answer kept (STORE: first wins, lease dropped) or the lease
 * released; the cache entry stored (lock released) or the lock released;
 * limiter deltas reconciled and the budget charged, each once per request id.
 * data/len are the response bytes for both stores.
 */
typedef struct {
    const char *request_id;
    const char *owner;
    const uint8_t *data;
    size_t len;
    const char *fingerprint; /* kept before the idempotency answer, as in admit; the
                                worker may append extras (text without '|', see
                                docs/worker.md "A replay is a true duplicate") */
    gw_done_kind idem;
    int32_t idem_ttl_s;
    const char *cache_key;
    gw_done_kind cache;
    int32_t cache_ttl_s;
    const gw_limit_key *reconcile; /* .cost = signed delta */
    size_t nreconcile;
    const char *agent; /* budget charge when charge_usd > 0 */
    double charge_usd;
} gw_complete_req;

/* ack.applied: the idempotency answer was stored by this call. */
void gw_state_complete(gw_state *st, const gw_complete_req *rq, gw_ack_cb cb, void *ud);
/* A deep copy in one allocation (free() releases it), to send again later;
 * NULL when out of memory. */
gw_complete_req *gw_complete_req_copy(const gw_complete_req *rq);

/* ---- construction ------------------------------------------------------------- */

typedef struct {
    const char *key_prefix;   /* copied; "" allowed */
    uint32_t max_entry_bytes; /* cache/idempotency values; default 4 MiB */
    uint32_t marker_ttl_ms;   /* exactly-once markers; default 24 h */
    uint32_t max_keys;        /* memory backend: entries; default 1,000,000 */
    gw_state_clock_fn clock;  /* memory backend; NULL = realtime */
    void *clock_ud;
} gw_state_opts;

/* In-memory backend on loop (answers on the next loop turn). */
gw_err gw_state_mem_new(uv_loop_t *loop, const gw_state_opts *o, gw_state **out);
/* Redis backend over an existing connection, which it does not own and which
 * must outlive it. Registers its scripts on r. */
gw_err gw_state_redis_new(uv_loop_t *loop, gw_redis *r, const gw_state_opts *o, gw_state **out);

typedef enum { GW_STATE_FAIL_OPEN, GW_STATE_FAIL_CLOSED } gw_state_fail;

typedef struct {
    gw_state_fail limits;      /* open: local limiter at rate / expected_workers; budgets pass */
    gw_state_fail cache;       /* open: BYPASS (miss, no lock, writes dropped) */
    gw_state_fail idempotency; /* open: claimed without a lease, completes dropped */
    uint32_t expected_workers; /* >= 1 */
} gw_state_policy_opts;

/* The failure policy over inner (owned from now on, freed with the wrapper). */
gw_err gw_state_policy_new(uv_loop_t *loop, gw_state *inner, const gw_state_policy_opts *o,
                           gw_state **out);

typedef struct {
    uint64_t ops;             /* operations started */
    uint64_t unavailable;     /* inner answered STATE_UNAVAILABLE */
    uint64_t fallback_limits; /* answered by the local limiter (or budget passed) */
    uint64_t fallback_cache;  /* cache bypassed */
    uint64_t fallback_idem;   /* idempotency skipped */
    uint64_t failed_closed;   /* STATE_UNAVAILABLE reported to the caller */
} gw_state_stats;

/* Counters of the failure policy (zeros for a bare backend). */
void gw_state_get_stats(const gw_state *st, gw_state_stats *out);

void gw_state_free(gw_state *st);

/* Memory backend only (tests): live keys, and how many of them have no TTL
 * (always 0 by construction; the tests check it). -1 for other backends. */
long gw_state_mem_key_count(const gw_state *st, long *without_ttl);

#endif
