/*
 * test_state_util: the callback side shared by the state tests (test_state,
 * test_state_redis): one result record that any state callback fills, and the
 * CALL() guard that checks the state API's promise that a callback never runs
 * inside the call that started it.
 *
 * Static definitions in a header, like test_support.h: each test is an
 * executable of its own. Include after <cmocka.h>.
 */
#ifndef GW_TEST_STATE_UTIL_H
#define GW_TEST_STATE_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "state/state.h"

static bool in_call; /* set around every call: callbacks must never see it */

#define CALL(expr)                                                                                 \
    do {                                                                                           \
        in_call = true;                                                                            \
        expr;                                                                                      \
        in_call = false;                                                                           \
    } while (0)

/* What one state call answered; done counts the callbacks. A cache hit's
 * bytes are copied into data when they fit (cache.data then points there),
 * else cache.data is NULL: the state's buffer lives only during the callback. */
typedef struct {
    int done;
    gw_limit_result limit;
    gw_state_ack ack;
    gw_budget_result budget;
    gw_cache_result cache;
    uint8_t data[256];
} result;

static inline void on_limit(void *ud, const gw_limit_result *r)
{
    result *x = ud;
    assert_false(in_call);
    x->limit = *r;
    x->done++;
}

static inline void on_ack(void *ud, const gw_state_ack *r)
{
    result *x = ud;
    assert_false(in_call);
    x->ack = *r;
    x->done++;
}

static inline void on_budget(void *ud, const gw_budget_result *r)
{
    result *x = ud;
    assert_false(in_call);
    x->budget = *r;
    x->done++;
}

static inline void on_cache(void *ud, const gw_cache_result *r)
{
    result *x = ud;
    assert_false(in_call);
    x->cache = *r;
    x->cache.data = NULL;
    if (r->kind == GW_CACHE_HIT && r->data != NULL && r->len <= sizeof(x->data)) {
        memcpy(x->data, r->data, r->len);
        x->cache.data = x->data;
    }
    x->done++;
}

#endif
