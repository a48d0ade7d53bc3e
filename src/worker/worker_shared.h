/*
 * worker_shared: the worker's fleet coordination objects (state, routing,
 * semantic cache) and their shared Redis connection; see worker_shared.c.
 * Internal to src/worker.
 */
#ifndef GW_WORKER_WORKER_SHARED_H
#define GW_WORKER_WORKER_SHARED_H

#include "common/err.h"
#include "state/state.h"

typedef struct gw_worker gw_worker;

/* After the codec and providers exist. Logs what failed. */
gw_err gw_worker_open_shared(gw_worker *w);
/* Aborts live jobs, then frees everything open_shared built; idempotent. */
void gw_worker_release_shared(gw_worker *w);
/* Acknowledgement callbacks of fire-and-forget state writes (ud = worker):
 * count the write settled, log a failure. */
void gw_worker_bg_ack(void *ud, const gw_state_ack *a);
void gw_worker_bg_sem(void *ud, gw_err err);

#endif
