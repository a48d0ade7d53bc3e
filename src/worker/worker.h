/*
 * worker: the modelgw worker process: one libuv loop that consumes
 * InferenceRequests from the priority tier topics, drives each through the
 * request pipeline (worker/job.h) and publishes responses, stream chunks,
 * usage events and DLQ records, committing offsets at-least-once.
 *
 * Usage (main): gw_worker_new() with a validated config and a loop,
 * gw_worker_start() (connects, subscribes, installs SIGTERM/SIGINT handlers),
 * uv_run(), then gw_worker_exit_code() and gw_worker_free(). The loop ends
 * after a graceful shutdown (first signal, or gw_worker_stop()).
 *
 * docs/worker.md describes intake, priorities, offsets and shutdown.
 */
#ifndef GW_WORKER_WORKER_H
#define GW_WORKER_WORKER_H

#include <uv.h>

#include "common/err.h"
#include "config/config.h"

typedef struct gw_worker gw_worker;

/* Exit codes of the modelgw process (documented in docs/worker.md). */
enum {
    GW_EXIT_OK = 0,         /* graceful shutdown, everything acknowledged committed */
    GW_EXIT_FAILURE = 1,    /* runtime failure (Kafka fatal error, drain incomplete) */
    GW_EXIT_USAGE = 2,      /* bad command line or configuration */
    GW_EXIT_INTERRUPT = 130 /* second signal during shutdown: exit at once */
};

/* cfg must outlive the worker. bootstrap overrides cfg->kafka.bootstrap when
 * not NULL (dev mode passes the mock cluster's address). */
gw_err gw_worker_new(uv_loop_t *loop, const gw_config *cfg, const char *bootstrap, gw_worker **out);
gw_err gw_worker_start(gw_worker *w);
/* Begin a graceful shutdown (what the first SIGTERM does). */
void gw_worker_stop(gw_worker *w);
int gw_worker_exit_code(const gw_worker *w);
/* After uv_run returned. */
void gw_worker_free(gw_worker *w);

#endif
