/*
 * state_config: the state stack of a worker, from its configuration.
 *
 * Free in this order when shutting down: gw_state_free(state), then
 * gw_redis_free(redis) (which answers what is still in flight with
 * GW_E_SHUTTING_DOWN), then run the loop until its handles are closed.
 */
#ifndef GW_STATE_STATE_CONFIG_H
#define GW_STATE_STATE_CONFIG_H

#include "config/config.h"
#include "loop/redis.h"
#include "state/state.h"

/* redis.* settings as connection options (defaults for unset values). */
void gw_redis_opts_from_config(const gw_config *cfg, gw_redis_opts *o);

/* Memory backend in dev mode or with state.backend = memory (*redis_out
 * NULL); otherwise a Redis connection (*redis_out, shared with other
 * modules) under the failure policy of failure_policy.*. */
gw_err gw_state_open(uv_loop_t *loop, const gw_config *cfg, gw_state_clock_fn clock, void *clock_ud,
                     gw_redis **redis_out, gw_state **out);

#endif
