/*
 * state_private: the vtable behind gw_state and helpers the backends share.
 *
 * gw_state (state.c) validates arguments (lengths, counts, rates) once,
 * answering bad input with a named error on the next loop turn, so every
 * backend receives only well-formed calls. A backend implements each
 * operation with the rules of state.h (exactly once, never inside the call).
 */
#ifndef GW_STATE_STATE_PRIVATE_H
#define GW_STATE_STATE_PRIVATE_H

#include "state/state.h"

typedef struct {
    void (*limit_check)(gw_state *st, const gw_limit_key *keys, size_t n, gw_limit_cb cb, void *ud);
    void (*limit_reconcile)(gw_state *st, const char *request_id, const gw_limit_key *keys,
                            size_t n, gw_ack_cb cb, void *ud);
    void (*budget_check)(gw_state *st, const char *agent, double estimate_usd,
                         const gw_budget_limits *lim, gw_budget_cb cb, void *ud);
    void (*budget_charge)(gw_state *st, const char *request_id, const char *agent,
                          double actual_usd, gw_ack_cb cb, void *ud);
    void (*cache_get)(gw_state *st, const char *key, gw_cache_cb cb, void *ud);
    void (*cache_put)(gw_state *st, const char *key, const uint8_t *data, size_t len, int32_t ttl_s,
                      const char *owner, gw_ack_cb cb, void *ud);
    void (*cache_get_or_lock)(gw_state *st, const char *key, const char *owner, int32_t lock_ms,
                              bool refresh, gw_cache_cb cb, void *ud);
    void (*cache_unlock)(gw_state *st, const char *key, const char *owner, gw_ack_cb cb, void *ud);
    void (*idem_claim)(gw_state *st, const char *request_id, const char *owner, int32_t lease_ms,
                       gw_cache_cb cb, void *ud);
    void (*idem_complete)(gw_state *st, const char *request_id, const char *owner,
                          const uint8_t *data, size_t len, int32_t ttl_s, gw_ack_cb cb, void *ud);
    void (*idem_release)(gw_state *st, const char *request_id, const char *owner, gw_ack_cb cb,
                         void *ud);
    /* NULL: composed from the operations above (state_admit.c) */
    void (*admit)(gw_state *st, const gw_admit_req *rq, gw_admit_cb cb, void *ud);
    void (*complete)(gw_state *st, const gw_complete_req *rq, gw_ack_cb cb, void *ud);
    void (*get_stats)(const gw_state *st, gw_state_stats *out);
    long (*key_count)(const gw_state *st, long *without_ttl);
    void (*destroy)(gw_state *st);
} gw_state_ops;

enum { GW_STATE_NOMEM_SLOTS = 64 };

/* A call answered GW_E_NOMEM on the next turn: its record could not be
 * allocated (state.c). */
struct gw_state_nomem {
    int kind;
    void *cb;
    void *ud;
};

struct gw_state {
    const gw_state_ops *ops;
    uv_loop_t *loop;
    char prefix[GW_STATE_MAX_PREFIX_BYTES + 1];
    uint32_t max_entry_bytes;
    uint32_t marker_ttl_ms;
    /* one-shot answers delivered on the next loop turn (state.c) */
    struct gw_state_later *later_head, *later_tail;
    struct gw_state_nomem nomem[GW_STATE_NOMEM_SLOTS]; /* no memory for a later record */
    size_t nomem_count;
    uv_timer_t later_timer;
    void (*release)(gw_state *st);   /* gw_state_base_close: once the timer is closed */
    struct gw_state_waiter *waiters; /* gw_state_cache_wait in progress */
    bool closing;
};

/* Fill the common part (prefix, limits, timer). */
gw_err gw_state_base_init(gw_state *st, const gw_state_ops *ops, uv_loop_t *loop,
                          const gw_state_opts *o);
/* Answer everything queued with SHUTTING_DOWN, close the timer, then call
 * release(st) once libuv has closed it. */
void gw_state_base_close(gw_state *st, void (*release)(gw_state *st));

/* Next-turn delivery of results computed now. The result is copied, and so
 * are data bytes (cache hits). */
void gw_state_later_limit(gw_state *st, const gw_limit_result *res, gw_limit_cb cb, void *ud);
void gw_state_later_ack(gw_state *st, const gw_state_ack *res, gw_ack_cb cb, void *ud);
void gw_state_later_budget(gw_state *st, const gw_budget_result *res, gw_budget_cb cb, void *ud);
void gw_state_later_cache(gw_state *st, const gw_cache_result *res, gw_cache_cb cb, void *ud);

/* Next-turn GW_E_NOMEM answers for a call whose operation record could not be
 * allocated; they allocate nothing (a fixed ring in gw_state). The
 * gw_state_later_* functions fall back to these by themselves, so a backend
 * out of memory answers with either and the callback still runs exactly once,
 * never inside the call (unless GW_STATE_NOMEM_SLOTS answers already wait for
 * this turn: then inside it, the last resort). */
void gw_state_nomem_limit(gw_state *st, gw_limit_cb cb, void *ud);
void gw_state_nomem_ack(gw_state *st, gw_ack_cb cb, void *ud);
void gw_state_nomem_budget(gw_state *st, gw_budget_cb cb, void *ud);
void gw_state_nomem_cache(gw_state *st, gw_cache_cb cb, void *ud);
void gw_state_nomem_admit(gw_state *st, gw_admit_cb cb, void *ud);

/* state_admit.c: admission and completion composed from the single
 * operations of st (through the public functions, so a wrapper's per-feature
 * policy applies to each), with the results of the native forms. */
void gw_state_admit_composed(gw_state *st, const gw_admit_req *rq, gw_admit_cb cb, void *ud);
void gw_state_complete_composed(gw_state *st, const gw_complete_req *rq, gw_ack_cb cb, void *ud);
/* Deep copy (free() releases it); NULL when out of memory. */
gw_admit_req *gw_admit_req_copy(const gw_admit_req *rq);

/* Budget periods: "YYYYMMDD" and "YYYYMM" of a Unix ms time (UTC). */
void gw_state_periods(int64_t now_ms, char day[9], char month[7]);

enum { GW_STATE_BUDGET_DAY_TTL_S = 2 * 86400, GW_STATE_BUDGET_MONTH_TTL_S = 33 * 86400 };
/* USD <-> integer micro-USD, the unit budgets are stored in. */
int64_t gw_state_usd_to_micro(double usd);

#endif
