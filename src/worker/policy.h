/*
 * policy: the pure decisions of the worker, kept apart from I/O so they can be
 * unit-tested: which priority tiers may take new work (capacity and pause
 * policy), and when buffered stream text becomes a StreamChunk (coalescing).
 *
 * Capacity rule (C = max_in_flight, F = total in flight, f[t] per tier):
 *   R = ceil(C * low_share)           slots guaranteed to low
 *   Hn = ceil(C * normal_headroom)     slots normal leaves free for high
 *   Hl = ceil(C * low_headroom)        slots low leaves free for high+normal
 *   low is "competing" when it has work in flight or known backlog.
 *   high   open iff F < C  and, when low competes, f[high]+f[normal] < C - R
 *   normal open iff F < C - Hn and, when low competes, f[high]+f[normal] < C - R
 *   low    open iff f[low] < R  or  F < C - Hl
 * So high is served first (it may use every slot low does not claim), normal
 * is paused first when capacity runs short, and low always keeps R slots: it
 * never starves, however much high-tier work waits. A tier reopens only once
 * it is `hysteresis` slots below the threshold that closed it, so a worker at
 * the boundary does not pause and resume on every message.
 * F may exceed C by at most R: a low message taken through its floor while
 * high+normal had filled C (high then stays closed until F drops).
 */
#ifndef GW_WORKER_POLICY_H
#define GW_WORKER_POLICY_H

#include <stdbool.h>
#include <stdint.h>

typedef enum { GW_TIER_HIGH, GW_TIER_NORMAL, GW_TIER_LOW, GW_TIER__COUNT } gw_tier;

const char *gw_tier_name(gw_tier t); /* "high" | "normal" | "low" */

typedef struct {
    uint32_t max_in_flight; /* C, >= 1 */
    double low_share;       /* 0..0.5 */
    double normal_headroom; /* 0..0.5 */
    double low_headroom;    /* 0..0.9, >= normal_headroom makes sense */
    uint32_t hysteresis;    /* slots; 0 = none */
} gw_capacity_cfg;

typedef struct {
    uint32_t in_flight[GW_TIER__COUNT];
    bool low_competing;            /* low has in-flight work or known backlog */
    bool was_open[GW_TIER__COUNT]; /* the previous decision (hysteresis) */
} gw_capacity_state;

/* Fills open[t] for every tier. */
void gw_capacity_decide(const gw_capacity_cfg *cfg, const gw_capacity_state *st,
                        bool open[GW_TIER__COUNT]);

/*
 * Coalescing of streamed text: the first chunk of a stream is published at
 * once (time to first token matters most); later text is buffered until
 * either coalesce_bytes are pending or coalesce_ms have passed since the
 * text began to wait, so a fast model does not make one Kafka message per
 * token. The final chunk flushes whatever is pending.
 */
typedef enum {
    GW_COALESCE_FLUSH,     /* publish the pending text now */
    GW_COALESCE_ARM_TIMER, /* start the timer (delay_ms), publish when it fires */
    GW_COALESCE_WAIT,      /* a timer is already armed: keep buffering */
} gw_coalesce_action;

typedef struct {
    uint32_t coalesce_ms;    /* 0 = publish every delta */
    uint32_t coalesce_bytes; /* flush threshold */
} gw_coalesce_cfg;

gw_coalesce_action gw_coalesce_on_delta(const gw_coalesce_cfg *cfg, uint32_t chunks_published,
                                        size_t pending_bytes, bool timer_armed, uint32_t *delay_ms);

#endif
