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
 *
 * Hostile clients: at most max_connections are open; a quarter of them
 * (at least 4) is kept for probes: when more than the rest are open, the
 * connection that has been quiet longest is shut down, so a flood of slow or
 * idle connections never locks /health and /ready out. A connection silent
 * for connection_timeout_s is closed. libmicrohttpd's own messages go to the
 * JSON log (admin_http). With a token, /metrics wants "Authorization: Bearer
 * <token>" (401 otherwise); /health and /ready stay open for probes.
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
    /* /health (liveness): fill *json (malloc'd, caller frees) and return true
     * when the process can work (200) or false (503). */
    bool (*health)(void *ud, char **json);
    /* /ready: fill *json (malloc'd, caller frees) and return true when ready
     * (200) or false (503). */
    bool (*ready)(void *ud, char **json);
    void *ud;
} gw_admin_handlers;

typedef struct {
    const char *listen;            /* IPv4 address; NULL = 127.0.0.1 */
    uint16_t port;                 /* 0 = disabled */
    const char *token;             /* bearer token /metrics wants; NULL or "" = none */
    unsigned max_connections;      /* 0 = 64; at least 16 */
    unsigned connection_timeout_s; /* 0 = 5 */
} gw_admin_opts;

/* Port 0 = disabled (returns GW_OK and *out = NULL). The token is copied. */
gw_err gw_admin_start(uv_loop_t *loop, const gw_admin_opts *opts, gw_metrics *metrics,
                      const gw_admin_handlers *h, gw_admin **out);
/* The bound port (useful when started with an ephemeral port request). */
uint16_t gw_admin_port(const gw_admin *a);
/* Connections shut down to keep room for probes, so far. */
uint64_t gw_admin_evictions(const gw_admin *a);
/* Stops accepting and frees after the loop closes the handles. */
void gw_admin_stop(gw_admin *a);

#endif
