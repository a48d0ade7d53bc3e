/*
 * admin: the per-worker admin HTTP endpoint (/metrics, /health, /ready).
 *
 * libmicrohttpd runs without a thread of its own: its epoll fd is watched by
 * a uv_poll on the worker's loop and MHD_run() is called when it is readable
 * (and from a uv_timer for MHD's connection timeouts). Handlers therefore run
 * on the loop thread and read worker state without locks. Responses are
 * built in memory; a scrape never blocks the loop on I/O.
 *
 * Bound to loopback by default (admin.listen); port 0 disables it.
 */
#ifndef GW_ADMIN_ADMIN_H
#define GW_ADMIN_ADMIN_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "admin/metrics.h"
#include "common/err.h"

typedef struct gw_admin gw_admin;

typedef struct {
    /* /health: fill *json (malloc'd, caller frees) and return true when healthy (200) or false
     * (503). */
    bool (*health)(void *ud, char **json);
    /* /ready: true once the worker is assigned partitions and its state backend is connected. */
    bool (*ready)(void *ud);
    void *ud;
} gw_admin_handlers;

/* listen: IPv4 address; port 0 = disabled (returns GW_OK and *out = NULL). */
gw_err gw_admin_start(uv_loop_t *loop, const char *listen, uint16_t port, gw_metrics *metrics,
                      const gw_admin_handlers *h, gw_admin **out);
/* The bound port (useful when started with an ephemeral port request). */
uint16_t gw_admin_port(const gw_admin *a);
/* Stops accepting and frees after the loop closes the handles. */
void gw_admin_stop(gw_admin *a);

#endif
