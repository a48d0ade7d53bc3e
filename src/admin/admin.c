/*
 * admin: see admin.h.
 *
 * Invariant: MHD is only ever driven from the loop thread (MHD_run from the
 * poll or timer callbacks); the daemon is created without any threading flag.
 */
#include "admin/admin.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

struct gw_admin {
    struct MHD_Daemon *mhd;
    uv_poll_t poll;
    uv_timer_t timer;
    int closing_handles;
    gw_metrics *metrics;
    gw_admin_handlers h;
    uint16_t port;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, char *body, size_t len,
                             const char *ctype)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", ctype);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, const char *text)
{
    char *body = strdup(text);
    if (body == NULL)
        return MHD_NO;
    return reply(c, status, body, strlen(body), "text/plain; charset=utf-8");
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_size, void **con_cls)
{
    gw_admin *a = cls;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    if (strcmp(url, "/metrics") == 0) {
        char *body = NULL;
        size_t len = 0;
        if (gw_metrics_render(a->metrics, &body, &len) != 0)
            return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "render failed\n");
        return reply(c, MHD_HTTP_OK, body, len, "text/plain; version=0.0.4; charset=utf-8");
    }
    if (strcmp(url, "/health") == 0 && a->h.health != NULL) {
        char *json = NULL;
        bool ok = a->h.health(a->h.ud, &json);
        if (json == NULL)
            return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "health failed\n");
        return reply(c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, json, strlen(json),
                     "application/json");
    }
    if (strcmp(url, "/ready") == 0 && a->h.ready != NULL) {
        bool ok = a->h.ready(a->h.ud);
        return reply_text(c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                          ok ? "ready\n" : "not ready\n");
    }
    return reply_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
}

static void arm_timer(gw_admin *a);

static void run_mhd(gw_admin *a)
{
    MHD_run(a->mhd);
    arm_timer(a);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    run_mhd(p->data);
}

static void on_timer(uv_timer_t *t)
{
    run_mhd(t->data);
}

static void arm_timer(gw_admin *a)
{
    MHD_UNSIGNED_LONG_LONG to = 0;
    if (MHD_get_timeout(a->mhd, &to) == MHD_YES)
        uv_timer_start(&a->timer, on_timer, to, 0);
    else
        uv_timer_stop(&a->timer);
}

gw_err gw_admin_start(uv_loop_t *loop, const char *listen, uint16_t port, gw_metrics *metrics,
                      const gw_admin_handlers *h, gw_admin **out)
{
    *out = NULL;
    if (port == 0)
        return GW_OK;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, listen ? listen : "127.0.0.1", &sa.sin_addr) != 1)
        return GW_E_CONFIG;
    gw_admin *a = calloc(1, sizeof *a);
    if (a == NULL)
        return GW_E_NOMEM;
    a->metrics = metrics;
    a->h = *h;
    a->mhd =
        MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, port, NULL, NULL, handle, a,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT,
                         (unsigned)64, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                         MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536, MHD_OPTION_END);
    if (a->mhd == NULL) {
        free(a);
        return GW_E_IO;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    const union MHD_DaemonInfo *pinfo = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_BIND_PORT);
    a->port = pinfo ? pinfo->port : port;
    if (info == NULL || uv_poll_init(loop, &a->poll, info->epoll_fd) != 0) {
        MHD_stop_daemon(a->mhd);
        free(a);
        return GW_E_IO;
    }
    a->poll.data = a;
    uv_timer_init(loop, &a->timer);
    a->timer.data = a;
    uv_poll_start(&a->poll, UV_READABLE, on_poll);
    arm_timer(a);
    *out = a;
    return GW_OK;
}

uint16_t gw_admin_port(const gw_admin *a)
{
    return a ? a->port : 0;
}

static void on_closed(uv_handle_t *h)
{
    gw_admin *a = h->data;
    if (--a->closing_handles == 0)
        free(a);
}

void gw_admin_stop(gw_admin *a)
{
    if (a == NULL)
        return;
    uv_poll_stop(&a->poll);
    MHD_stop_daemon(a->mhd);
    a->mhd = NULL;
    a->closing_handles = 2;
    uv_close((uv_handle_t *)&a->poll, on_closed);
    uv_close((uv_handle_t *)&a->timer, on_closed);
}
