/*
 * breaker_private: what the breaker backends share: the vtable behind
 * gw_breaker and the in-memory transition logic (one gw_brk_cell per
 * deployment), which the in-memory backend uses directly and the Redis
 * backend uses as its fallback when Redis is unreachable. breaker_redis.lua
 * text in breaker_redis.c mirrors brk_cell_allow / brk_cell_record line by
 * line; change both together (the same behaviour tests run against both).
 */
#ifndef GW_ROUTE_BREAKER_PRIVATE_H
#define GW_ROUTE_BREAKER_PRIVATE_H

#include "route/breaker.h"
#include "route/rng.h"

typedef struct {
    gw_breaker_state st;
    int32_t open_count;   /* trips since last close */
    int32_t consec;       /* consecutive failures while CLOSED */
    int32_t ho_succ;      /* successful probes in this HALF_OPEN period */
    int64_t open_until;   /* OPEN: end of the cool-down */
    int64_t cooldown_end; /* 429 cool-down end */
    int64_t window_epoch; /* buckets that started before this are ignored */
    int64_t probe_until;  /* lease end; the lease is free when <= now */
    char probe_token[GW_BREAKER_TOKEN_MAX + 1];
    int64_t bstart[GW_BREAKER_MAX_BUCKETS];
    int32_t bcalls[GW_BREAKER_MAX_BUCKETS];
    int32_t bfail[GW_BREAKER_MAX_BUCKETS];
} gw_brk_cell;

void brk_cell_init(gw_brk_cell *c);
void brk_cell_allow(const gw_breaker_opts *o, gw_brk_cell *c, int64_t now, const char *token,
                    gw_breaker_decision *out);
/* jitter_u: uniform [0,1) used to scale the next cool-down. */
void brk_cell_record(const gw_breaker_opts *o, gw_brk_cell *c, int64_t now, const char *token,
                     const gw_breaker_outcome *oc, double jitter_u);
void brk_cell_stat(const gw_breaker_opts *o, const gw_brk_cell *c, int64_t now,
                   gw_breaker_stat *out);
/* Cool-down of the n-th trip (n >= 1) before jitter. */
int64_t brk_cooldown_ms(const gw_breaker_opts *o, int32_t n, double jitter_u);

typedef struct {
    bool (*allow)(gw_breaker *b, size_t idx, const char *token, gw_breaker_decision *out,
                  gw_breaker_allow_cb cb, void *ud);
    void (*record)(gw_breaker *b, size_t idx, const char *token, const gw_breaker_outcome *o);
    void (*snapshot)(gw_breaker *b, size_t idx, gw_breaker_stat *out);
    void (*free)(gw_breaker *b);
    void (*flush)(gw_breaker *b); /* NULL: nothing is batched */
} gw_breaker_ops;

struct gw_breaker {
    const gw_breaker_ops *ops;
    gw_breaker_opts o;
    size_t count;
    size_t pending; /* backend replies awaited */
};

#endif
