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
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "common/log.h"

/* One open connection, in the order of its last request (oldest first). */
typedef struct gw_admin_conn {
    struct gw_admin_conn *prev, *next;
    int fd;
    bool evicted;
} gw_admin_conn;

struct gw_admin {
    struct MHD_Daemon *mhd;
    uv_poll_t poll;
    uv_timer_t timer;
    int closing_handles;
    gw_metrics *metrics;
    gw_admin_handlers h;
    uint16_t port;
    int listen_fd;
    char *token;
    gw_admin_conn *oldest, *newest;
    unsigned open, quiet_budget; /* open connections; how many may sit before eviction */
    uint64_t evictions;
    time_t log_second; /* mhd_log's rate limit */
    unsigned log_lines;
    uint64_t log_dropped;
};

enum { ADMIN_LOG_PER_S = 5 };

/* ---- connections ------------------------------------------------------------- */

static void conn_unlink(gw_admin *a, gw_admin_conn *k)
{
    if (k->prev)
        k->prev->next = k->next;
    else
        a->oldest = k->next;
    if (k->next)
        k->next->prev = k->prev;
    else
        a->newest = k->prev;
    k->prev = k->next = NULL;
}

static void conn_push(gw_admin *a, gw_admin_conn *k)
{
    k->prev = a->newest;
    k->next = NULL;
    if (a->newest)
        a->newest->next = k;
    else
        a->oldest = k;
    a->newest = k;
}

/* Over the budget: shut the quietest connection down (MHD sees the end of
 * the stream on its next turn and closes it), so that there is always room
 * for a probe. */
static void evict_quietest(gw_admin *a)
{
    unsigned live = 0;
    for (gw_admin_conn *k = a->oldest; k != NULL; k = k->next)
        live += !k->evicted;
    for (gw_admin_conn *k = a->oldest; k != NULL && live > a->quiet_budget; k = k->next) {
        if (k->evicted || k == a->newest)
            continue;
        shutdown(k->fd, SHUT_RDWR);
        k->evicted = true;
        a->evictions++;
        live--;
    }
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    gw_admin *a = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        gw_admin_conn *k = calloc(1, sizeof *k);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = k;
        if (k == NULL)
            return;
        k->fd = ci != NULL ? ci->connect_fd : -1;
        conn_push(a, k);
        a->open++;
        if (k->fd >= 0)
            evict_quietest(a);
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        gw_admin_conn *k = *socket_context;
        if (k == NULL)
            return;
        conn_unlink(a, k);
        a->open--;
        free(k);
        *socket_context = NULL;
    }
}

/* A request arrived: the connection is the most recently active one. */
static void conn_touch(gw_admin *a, struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    gw_admin_conn *k = ci != NULL ? ci->socket_context : NULL;
    if (k == NULL || k == a->newest)
        return;
    conn_unlink(a, k);
    conn_push(a, k);
}

/* libmicrohttpd's messages as JSON log lines; a flood of hostile
 * connections is a flood of messages, so at most ADMIN_LOG_PER_S a second
 * (the next line says how many were left out). */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    gw_admin *a = cls;
    time_t now = time(NULL);
    if (now != a->log_second) {
        a->log_second = now;
        a->log_lines = 0;
    }
    if (++a->log_lines > ADMIN_LOG_PER_S) {
        a->log_dropped++;
        return;
    }
    char msg[512], dropped[24];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    snprintf(dropped, sizeof dropped, "%llu", (unsigned long long)a->log_dropped);
    if (a->log_dropped > 0)
        GW_WARN("admin_http", "message", msg, "suppressed_before", dropped);
    else
        GW_WARN("admin_http", "message", msg);
    a->log_dropped = 0;
}

/* Constant-time: the comparison does not tell how much of the token matched. */
static bool token_ok(const gw_admin *a, struct MHD_Connection *c)
{
    if (a->token == NULL)
        return true;
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (auth == NULL || strncmp(auth, "Bearer ", 7) != 0)
        return false;
    const char *got = auth + 7;
    size_t n = strlen(a->token), m = strlen(got);
    unsigned char diff = (unsigned char)(n != m);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(a->token[i] ^ (i < m ? got[i] : 0));
    return diff == 0;
}

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
    conn_touch(a, c);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    if (strcmp(url, "/metrics") == 0) {
        if (!token_ok(a, c)) {
            char *body = strdup("unauthorized\n");
            if (body == NULL)
                return MHD_NO;
            struct MHD_Response *r =
                MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
            if (r == NULL) {
                free(body);
                return MHD_NO;
            }
            MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"modelgw\"");
            MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
            enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_UNAUTHORIZED, r);
            MHD_destroy_response(r);
            return ret;
        }
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
        char *json = NULL;
        bool ok = a->h.ready(a->h.ud, &json);
        if (json == NULL)
            return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "ready failed\n");
        return reply(c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, json, strlen(json),
                     "application/json");
    }
    return reply_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
}

static void arm_timer(gw_admin *a);

/* MHD accepts a few connections per turn and is not woken again for the
 * rest of the backlog (edge-triggered): turn again while connections wait,
 * a bounded number of times (evicted connections close on the next turn). */
static void run_mhd(gw_admin *a)
{
    for (int i = 0; i < 32; i++) {
        MHD_run(a->mhd);
        struct pollfd p = {.fd = a->listen_fd, .events = POLLIN};
        if (a->listen_fd < 0 || poll(&p, 1, 0) != 1 || (p.revents & POLLIN) == 0)
            break;
    }
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

static void admin_free(gw_admin *a)
{
    while (a->oldest != NULL) {
        gw_admin_conn *k = a->oldest;
        conn_unlink(a, k);
        free(k);
    }
    free(a->token);
    free(a);
}

gw_err gw_admin_start(uv_loop_t *loop, const gw_admin_opts *o, gw_metrics *metrics,
                      const gw_admin_handlers *h, gw_admin **out)
{
    *out = NULL;
    if (o->port == 0)
        return GW_OK;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(o->port)};
    if (inet_pton(AF_INET, o->listen ? o->listen : "127.0.0.1", &sa.sin_addr) != 1)
        return GW_E_CONFIG;
    gw_admin *a = calloc(1, sizeof *a);
    if (a == NULL)
        return GW_E_NOMEM;
    a->metrics = metrics;
    a->h = *h;
    if (o->token != NULL && o->token[0] != '\0' && (a->token = strdup(o->token)) == NULL) {
        free(a);
        return GW_E_NOMEM;
    }
    unsigned max = o->max_connections == 0 ? 64 : o->max_connections < 16 ? 16 : o->max_connections;
    unsigned reserve = max / 4 < 4 ? 4 : max / 4;
    a->quiet_budget = max - reserve;
    /* MHD's own limit is twice that: a connection shut down here is only
     * closed on MHD's next turn, and must not keep a probe out meanwhile. */
    unsigned timeout_s = o->connection_timeout_s == 0 ? 5 : o->connection_timeout_s;
    a->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, o->port, NULL, NULL, handle, a,
                              MHD_OPTION_EXTERNAL_LOGGER, mhd_log, a, MHD_OPTION_SOCK_ADDR,
                              (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT, 2 * max,
                              MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
                              MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536,
                              MHD_OPTION_NOTIFY_CONNECTION, on_connection, a, MHD_OPTION_END);
    if (a->mhd == NULL) {
        admin_free(a);
        return GW_E_IO;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    const union MHD_DaemonInfo *pinfo = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_BIND_PORT);
    a->port = pinfo ? pinfo->port : o->port;
    const union MHD_DaemonInfo *linfo = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_LISTEN_FD);
    a->listen_fd = linfo != NULL ? linfo->listen_fd : -1;
    if (info == NULL || uv_poll_init(loop, &a->poll, info->epoll_fd) != 0) {
        MHD_stop_daemon(a->mhd);
        admin_free(a);
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

uint64_t gw_admin_evictions(const gw_admin *a)
{
    return a ? a->evictions : 0;
}

static void on_closed(uv_handle_t *h)
{
    gw_admin *a = h->data;
    if (--a->closing_handles == 0)
        admin_free(a);
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
