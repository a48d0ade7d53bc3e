/*
 * http_client: libcurl multi-socket on libuv; see http_client.h.
 *
 * Invariants: every gw_http_req in h->reqs is either added to the multi
 * handle (in_multi) or waiting in the FIFO h->wait_head..wait_tail (never
 * both); h->in_multi counts the former and stays <= h->max_active. A req
 * leaves the list (and the FIFO) before its on_done runs and is freed only by
 * its timer's close callback. A sock_ctx exists for each socket curl
 * asked us to watch; it stays in h->socks (indexed by fd) when curl stops
 * watching a kept-alive socket, so that the next transfer on it reuses the
 * uv_poll, and is closed when curl closes the socket (on_close_socket) or
 * when h is freed; it is freed by its poll handle's close callback.
 *
 * URLs are parsed once: h->urls keeps up to URL_CACHE parsed URLs (CURLU),
 * handed to curl with CURLOPT_CURLU, so a transfer skips curl's URL parse
 * and the normalised URL string curl prints from it. They live as long as h
 * (an easy handle may point at one until it is cleaned up). An easy handle
 * remembers which CURLU it last used (easy_uh): curl 7.88 makes its URL
 * string (state.url) from the CURLU only when it has none, and keeps it across
 * transfers, so a handle that moves to another CURLU first drops it with
 * CURLOPT_URL NULL, or a retry of the connection would use the old URL.
 */
#include "loop/http_client.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

enum {
    EASY_POOL = 512,  /* idle easy handles kept: the default max_active, so none churn */
    REQ_POOL = 1024,  /* finished gw_http_req kept for reuse */
    HDR_INLINE = 768, /* header bytes stored inside the request */
    URL_INLINE = 256, /* URL bytes stored inside the request */
    URL_CACHE = 64,   /* parsed URLs kept; more distinct URLs are parsed per transfer */
};

typedef struct {
    char *url; /* as given to gw_http_start */
    size_t len;
    CURLU *uh;
} url_entry;

typedef struct {
    CURL *easy;
    CURLU *uh; /* the CURLU the handle's last transfer used, or NULL */
} easy_slot;

struct gw_http {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    int open_handles; /* timer + polls; h is freed when it reaches 0 after close */
    bool closing;
    gw_http_req *reqs;
    size_t active;   /* requests started and not finished or cancelled */
    size_t in_multi; /* of those, handed to curl */
    size_t max_active;
    gw_http_req *wait_head, *wait_tail; /* FIFO of requests not yet handed to curl */
    bool feeding;                       /* feed_multi is running (no re-entry) */
    easy_slot spare[EASY_POOL];         /* idle easy handles kept for reuse */
    size_t spare_count;
    gw_http_req *free_reqs; /* singly linked through next */
    size_t free_count;
    uint64_t connects;       /* CURLINFO_NUM_CONNECTS of finished transfers */
    struct sock_ctx **socks; /* by fd: watched or parked sockets */
    size_t socks_cap;
    url_entry urls[URL_CACHE];
    size_t url_count;
    bool proxy_env; /* a proxy variable was set at gw_http_new */
};

typedef struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    gw_http *h;
} sock_ctx;

struct gw_http_req {
    gw_http *h;
    gw_http_req *prev, *next;
    gw_http_req *wait_prev, *wait_next;
    bool in_multi, waiting;
    CURL *easy;
    CURLU *easy_uh; /* what easy's last transfer used (see the file comment) */
    CURLU *uh;      /* the URL parsed (from h->urls), or NULL: url is set */
    struct curl_slist hnodes[GW_HTTP_MAX_HEADERS + 1]; /* built in place; curl only reads it */
    char *hstore;                                      /* header text when over HDR_INLINE */
    char hinline[HDR_INLINE];
    /* what setup_easy needs when the request is handed to curl: an easy
     * handle is taken only then, so at most max_active of them exist */
    char *url;     /* url_inline or url_own */
    char *url_own; /* when over URL_INLINE */
    char url_inline[URL_INLINE];
    const char *body; /* NULL: GET; the caller's (borrowed) or body_own */
    char *body_own;
    size_t body_len;
    int32_t connect_ms;
    const gw_http_transport *transport; /* NULL or one that sets something */
    gw_http_cbs cbs;
    void *ud;
    uv_timer_t timer;
    bool stream, token_seen, got_byte;
    long status;
    uint64_t start_ms, last_byte_ms;
    int32_t ttft_ms, idle_ms, total_ms;
    gw_err abort_err;
    char *buf;
    size_t len, cap, max;
    bool cut;
    int64_t retry_after_ms;
    double first_byte_ms;
    char errbuf[CURL_ERROR_SIZE];
};

static void http_maybe_free(gw_http *h)
{
    if (!h->closing || h->open_handles != 0)
        return;
    while (h->free_reqs != NULL) {
        gw_http_req *r = h->free_reqs;
        h->free_reqs = r->next;
        free(r);
    }
    free(h->socks);
    free(h);
}

/* A zeroed request, recycled when one is free. */
static gw_http_req *req_alloc(gw_http *h)
{
    gw_http_req *r = h->free_reqs;
    if (r == NULL)
        return calloc(1, sizeof *r);
    h->free_reqs = r->next;
    h->free_count--;
    memset(r, 0, sizeof *r);
    return r;
}

/* Body buffers are not kept: with a thousand requests pooled they cost more
 * memory (~20 MiB peak RSS in tools/bench/http.sh) than their malloc costs. */
static void req_recycle(gw_http *h, gw_http_req *r)
{
    free(r->buf);
    r->buf = NULL;
    r->cap = 0;
    if (h->closing || h->free_count == REQ_POOL) {
        free(r);
        return;
    }
    r->next = h->free_reqs;
    h->free_reqs = r;
    h->free_count++;
}

/* ---- multi-socket glue ---- */

static void check_done(gw_http *h);

static void on_poll(uv_poll_t *p, int status, int events)
{
    sock_ctx *s = p->data;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running;
    curl_multi_socket_action(s->h->multi, s->fd, flags, &running);
    check_done(s->h);
}

static void on_poll_closed(uv_handle_t *hd)
{
    sock_ctx *s = hd->data;
    gw_http *h = s->h;
    free(s);
    h->open_handles--;
    http_maybe_free(h);
}

static void sock_close(gw_http *h, curl_socket_t fd)
{
    if (fd < 0 || (size_t)fd >= h->socks_cap || h->socks[fd] == NULL)
        return;
    sock_ctx *s = h->socks[fd];
    h->socks[fd] = NULL;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, on_poll_closed);
}

/* The socket's sock_ctx, kept from an earlier transfer or new. */
static sock_ctx *sock_get(gw_http *h, curl_socket_t fd)
{
    if (fd < 0)
        return NULL;
    if ((size_t)fd >= h->socks_cap) {
        size_t cap = h->socks_cap ? h->socks_cap : 64;
        while (cap <= (size_t)fd)
            cap *= 2;
        sock_ctx **n = realloc(h->socks, cap * sizeof *n);
        if (n == NULL)
            return NULL;
        memset(n + h->socks_cap, 0, (cap - h->socks_cap) * sizeof *n);
        h->socks = n;
        h->socks_cap = cap;
    }
    if (h->socks[fd] != NULL)
        return h->socks[fd];
    sock_ctx *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    if (uv_poll_init_socket(h->loop, &s->poll, fd) != 0) {
        free(s);
        return NULL;
    }
    s->fd = fd;
    s->h = h;
    s->poll.data = s;
    h->open_handles++;
    h->socks[fd] = s;
    return s;
}

/* curl closes a socket: its poll handle goes first (libuv must not watch a
 * closed fd). Sockets curl closes without this callback (the threaded
 * resolver's) keep a stopped sock_ctx, which a later socket with the same fd
 * number reuses: a stopped uv_poll holds nothing of the old socket. */
static int on_close_socket(void *clientp, curl_socket_t fd)
{
    sock_close(clientp, fd);
    return close(fd);
}

static int on_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
    gw_http *h = userp;
    sock_ctx *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) { /* parked: kept for the next transfer on this socket */
            uv_poll_stop(&s->poll);
            curl_multi_assign(h->multi, fd, NULL);
        }
        return 0;
    }
    if (s == NULL) {
        s = sock_get(h, fd);
        if (s == NULL)
            return -1;
        curl_multi_assign(h->multi, fd, s);
    }
    int ev = 0;
    if (what & CURL_POLL_IN)
        ev |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        ev |= UV_WRITABLE;
    uv_poll_start(&s->poll, ev, on_poll);
    return 0;
}

static void on_multi_timer(uv_timer_t *t)
{
    gw_http *h = t->data;
    int running;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(h);
}

static int on_timer_change(CURLM *m, long timeout_ms, void *userp)
{
    gw_http *h = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&h->timer);
    else
        uv_timer_start(&h->timer, on_multi_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

/* Whether one of the variables curl takes a proxy from is set (non-empty, as
 * curl_getenv counts it): <scheme>_proxy and its upper case, all_proxy,
 * ALL_PROXY, no_proxy, NO_PROXY. libcurl 7.88 reads them again for every
 * transfer (create_conn: up to five getenv calls, each a scan of the
 * environment). When none is set, every easy handle is told once what curl
 * would have found, no proxy (an empty CURLOPT_PROXY and CURLOPT_NOPROXY: curl
 * then reads neither); when one is, curl goes on reading them itself, so
 * proxies from the environment work as before. Read once, at start-up. */
static bool proxy_env_set(void)
{
    static const char *const names[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                                        "all_proxy",  "ALL_PROXY",  "no_proxy",    "NO_PROXY"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = getenv(names[i]);
        if (v != NULL && v[0] != '\0')
            return true;
    }
    return false;
}

gw_err gw_http_new(uv_loop_t *loop, const gw_http_config *cfg, gw_http **out)
{
    static bool global_done; /* curl_global_init is process-wide by nature */
    if (!global_done && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return GW_E_INTERNAL;
    global_done = true;
    gw_http *h = calloc(1, sizeof *h);
    if (h == NULL)
        return GW_E_NOMEM;
    h->loop = loop;
    h->proxy_env = proxy_env_set();
    h->multi = curl_multi_init();
    if (h->multi == NULL) {
        free(h);
        return GW_E_NOMEM;
    }
    long max_conns = cfg && cfg->max_connects > 0 ? cfg->max_connects : 512;
    h->max_active = (size_t)(cfg && cfg->max_active > 0 ? cfg->max_active : max_conns);
    /* By default a host may have as many connections as there are transfers
     * in curl, so that no transfer waits inside curl for a connection slot:
     * libcurl 7.88 retries such a transfer (URL parse, connection setup,
     * cache search: ~44,000 instructions) each time any transfer ends, and
     * with 512 handed over against 256 per host that was ~2.8 futile
     * retries per request, a third of the worker's instructions. */
    long host_conns =
        cfg && cfg->max_host_connections > 0 ? cfg->max_host_connections : (long)h->max_active;
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_timer_change);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, host_conns);
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, max_conns);
    uv_timer_init(loop, &h->timer);
    h->timer.data = h;
    h->open_handles = 1;
    *out = h;
    return GW_OK;
}

static void on_http_timer_closed(uv_handle_t *hd)
{
    gw_http *h = hd->data;
    h->open_handles--;
    http_maybe_free(h);
}

static void req_release(gw_http_req *r);

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud);
static size_t on_header(char *p, size_t size, size_t nmemb, void *ud);

/* Easy handles are recycled without curl_easy_reset: the options that are the
 * same for every transfer are set once here, and setup_easy sets every option
 * that differs between transfers each time (URL, headers, body or GET, the
 * per-request pointers, the connect timeout), so nothing of an earlier
 * transfer carries over. */
static CURL *easy_get(gw_http *h, CURLU **last_uh)
{
    *last_uh = NULL;
    if (h->spare_count > 0) {
        easy_slot *s = &h->spare[--h->spare_count];
        *last_uh = s->uh;
        return s->easy;
    }
    CURL *e = curl_easy_init();
    if (e == NULL)
        return NULL;
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, h);
    if (!h->proxy_env) { /* no proxy, as curl would find; see proxy_env_set */
        curl_easy_setopt(e, CURLOPT_PROXY, "");
        curl_easy_setopt(e, CURLOPT_NOPROXY, "");
    }
    return e;
}

static void easy_put(gw_http *h, CURL *e, CURLU *last_uh, bool custom)
{
    if (h->spare_count == EASY_POOL || h->closing || custom) {
        curl_easy_cleanup(e);
        return;
    }
    /* drop the pointers into the finished request (header nodes, body, error
     * buffer) so that nothing can reach them before the next setup_easy */
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(e, CURLOPT_PRIVATE, NULL);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, NULL);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, NULL);
    h->spare[h->spare_count++] = (easy_slot){e, last_uh};
}

void gw_http_free(gw_http *h)
{
    while (h->reqs != NULL)
        gw_http_cancel(h->reqs);
    h->closing = true;
    while (h->spare_count > 0)
        curl_easy_cleanup(h->spare[--h->spare_count].easy);
    curl_multi_cleanup(h->multi); /* may call on_socket(REMOVE), on_close_socket */
    h->multi = NULL;
    for (size_t i = 0; i < h->url_count; i++) { /* no easy handle points at them now */
        curl_url_cleanup(h->urls[i].uh);
        memset(h->urls[i].url, 0, h->urls[i].len); /* may hold a key (query) */
        free(h->urls[i].url);
    }
    h->url_count = 0;
    for (size_t fd = 0; fd < h->socks_cap; fd++)
        sock_close(h, (curl_socket_t)fd);
    uv_timer_stop(&h->timer);
    uv_close((uv_handle_t *)&h->timer, on_http_timer_closed);
}

uv_loop_t *gw_http_loop(const gw_http *h)
{
    return h->loop;
}

size_t gw_http_active(const gw_http *h)
{
    return h->active;
}

uint64_t gw_http_connects(const gw_http *h)
{
    return h->connects;
}

/* ---- Retry-After ---- */

int64_t gw_http_parse_retry_after(const char *v, size_t n, int64_t now_unix_s)
{
    char tmp[128];
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\r' || v[n - 1] == '\n'))
        n--;
    while (n > 0 && *v == ' ') {
        v++;
        n--;
    }
    if (n == 0 || n >= sizeof tmp)
        return -1;
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    bool digits = true;
    for (size_t i = 0; i < n; i++)
        digits = digits && tmp[i] >= '0' && tmp[i] <= '9';
    if (digits)
        return n > 9 ? -1 : (int64_t)atol(tmp) * 1000;
    time_t t = curl_getdate(tmp, NULL);
    if (t == (time_t)-1)
        return -1;
    int64_t d = ((int64_t)t - now_unix_s) * 1000;
    return d < 0 ? 0 : d;
}

int64_t gw_http_parse_retry_after_ms(const char *v, size_t n)
{
    int64_t ms = 0;
    size_t i = 0;
    while (i < n && v[i] == ' ')
        i++;
    size_t start = i;
    while (i < n && v[i] >= '0' && v[i] <= '9' && i - start < 12)
        ms = ms * 10 + (v[i++] - '0');
    if (i == start)
        return -1;
    if (i < n && v[i] == '.') /* fractions are dropped */
        for (i++; i < n && v[i] >= '0' && v[i] <= '9'; i++)
            ;
    while (i < n && (v[i] == ' ' || v[i] == '\r' || v[i] == '\n'))
        i++;
    return i == n ? ms : -1;
}

/* ---- per-request timeouts ---- */

static void on_req_timer(uv_timer_t *t);

static void req_arm(gw_http_req *r)
{
    uint64_t next = UINT64_MAX;
    if (r->total_ms > 0)
        next = r->start_ms + (uint64_t)r->total_ms;
    if (r->ttft_ms > 0 && !r->token_seen && r->start_ms + (uint64_t)r->ttft_ms < next)
        next = r->start_ms + (uint64_t)r->ttft_ms;
    if (r->idle_ms > 0 && r->got_byte && r->last_byte_ms + (uint64_t)r->idle_ms < next)
        next = r->last_byte_ms + (uint64_t)r->idle_ms;
    if (next == UINT64_MAX) {
        uv_timer_stop(&r->timer);
        return;
    }
    uint64_t now = uv_now(r->h->loop);
    uv_timer_start(&r->timer, on_req_timer, next > now ? next - now : 0, 0);
}

static void complete(gw_http_req *r, CURLcode rc);

static void on_req_timer(uv_timer_t *t)
{
    gw_http_req *r = t->data;
    uint64_t now = uv_now(r->h->loop);
    gw_err err = GW_OK;
    if (r->total_ms > 0 && now >= r->start_ms + (uint64_t)r->total_ms)
        err = GW_E_PROVIDER_TOTAL_TIMEOUT;
    else if (r->ttft_ms > 0 && !r->token_seen && now >= r->start_ms + (uint64_t)r->ttft_ms)
        err = GW_E_PROVIDER_FIRST_TOKEN_TIMEOUT;
    else if (r->idle_ms > 0 && r->got_byte && now >= r->last_byte_ms + (uint64_t)r->idle_ms)
        err = GW_E_PROVIDER_IDLE_TIMEOUT;
    if (err == GW_OK) {
        req_arm(r);
        return;
    }
    r->abort_err = err;
    complete(r, CURLE_ABORTED_BY_CALLBACK);
}

void gw_http_req_token_seen(gw_http_req *r)
{
    if (r->token_seen)
        return;
    r->token_seen = true;
    req_arm(r);
}

static void note_byte(gw_http_req *r)
{
    r->last_byte_ms = uv_now(r->h->loop);
    if (r->got_byte)
        return;
    r->got_byte = true;
    r->first_byte_ms = (double)(r->last_byte_ms - r->start_ms);
    if (!r->stream)
        r->token_seen = true;
    req_arm(r);
}

/* ---- curl callbacks ---- */

static bool header_is(const char *p, size_t n, const char *name, size_t *vstart)
{
    size_t l = strlen(name);
    if (n <= l || strncasecmp(p, name, l) != 0 || p[l] != ':')
        return false;
    *vstart = l + 1;
    return true;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    gw_http_req *r = ud;
    size_t n = size * nmemb;
    note_byte(r);
    if (r->cbs.on_header != NULL)
        r->cbs.on_header(r->ud, p, n);
    size_t v;
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        r->retry_after_ms = -1; /* a new response (after 1xx) */
    } else if (header_is(p, n, "retry-after-ms", &v)) {
        int64_t ms = gw_http_parse_retry_after_ms(p + v, n - v);
        if (ms >= 0)
            r->retry_after_ms = ms;
    } else if (header_is(p, n, "retry-after", &v) && r->retry_after_ms < 0) {
        r->retry_after_ms = gw_http_parse_retry_after(p + v, n - v, (int64_t)time(NULL));
    }
    return n;
}

static bool buffer_put(gw_http_req *r, const char *p, size_t n)
{
    if (r->len + n > r->max) {
        n = r->max - r->len;
        r->cut = true;
    }
    if (r->len + n + 1 > r->cap) {
        size_t c = r->cap ? r->cap : 4096;
        while (c < r->len + n + 1)
            c *= 2;
        char *b = realloc(r->buf, c);
        if (b == NULL)
            return false;
        r->buf = b;
        r->cap = c;
    }
    memcpy(r->buf + r->len, p, n);
    r->len += n;
    r->buf[r->len] = '\0';
    return true;
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud)
{
    gw_http_req *r = ud;
    size_t n = size * nmemb;
    note_byte(r);
    if (r->status == 0)
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
    bool ok_status = r->status >= 200 && r->status < 300;
    if (r->stream && ok_status) {
        gw_err err = r->cbs.on_data(r->ud, p, n);
        if (err != GW_OK) {
            r->abort_err = err;
            return 0;
        }
        return n;
    }
    if (!buffer_put(r, p, n)) {
        r->abort_err = GW_E_NOMEM;
        return 0;
    }
    if (r->cut && ok_status) {
        r->abort_err = GW_E_LIMIT;
        return 0;
    }
    return n;
}

/* ---- lifecycle ---- */

static void on_req_timer_closed(uv_handle_t *hd)
{
    gw_http_req *r = hd->data;
    gw_http *h = r->h;
    req_recycle(h, r);
    h->open_handles--;
    http_maybe_free(h);
}

/* ---- the FIFO in front of curl ---- */

static void wait_remove(gw_http *h, gw_http_req *r)
{
    if (r->wait_prev)
        r->wait_prev->wait_next = r->wait_next;
    else
        h->wait_head = r->wait_next;
    if (r->wait_next)
        r->wait_next->wait_prev = r->wait_prev;
    else
        h->wait_tail = r->wait_prev;
    r->wait_prev = r->wait_next = NULL;
    r->waiting = false;
}

static void wait_push(gw_http *h, gw_http_req *r)
{
    r->wait_prev = h->wait_tail;
    r->wait_next = NULL;
    if (h->wait_tail)
        h->wait_tail->wait_next = r;
    else
        h->wait_head = r;
    h->wait_tail = r;
    r->waiting = true;
}

static void complete(gw_http_req *r, CURLcode rc);
static void setup_easy(gw_http_req *r);

/* Hand waiting requests to curl while there is room. A request curl refuses
 * completes with GW_E_INTERNAL (its on_done runs from here, never from inside
 * gw_http_start). */
static void feed_multi(gw_http *h)
{
    if (h->feeding)
        return;
    h->feeding = true;
    while (h->multi != NULL && !h->closing && h->wait_head != NULL && h->in_multi < h->max_active) {
        gw_http_req *r = h->wait_head;
        wait_remove(h, r);
        if (r->easy == NULL && (r->easy = easy_get(h, &r->easy_uh)) != NULL)
            setup_easy(r);
        if (r->easy == NULL) {
            r->abort_err = GW_E_NOMEM;
            complete(r, CURLE_OUT_OF_MEMORY);
            continue;
        }
        CURLMcode mc = curl_multi_add_handle(h->multi, r->easy);
        if (mc == CURLM_RECURSIVE_API_CALL) { /* called from a curl callback: later */
            r->wait_next = h->wait_head;
            if (h->wait_head)
                h->wait_head->wait_prev = r;
            else
                h->wait_tail = r;
            h->wait_head = r;
            r->waiting = true;
            break;
        }
        if (mc != CURLM_OK) {
            r->abort_err = GW_E_INTERNAL;
            complete(r, CURLE_FAILED_INIT);
            continue;
        }
        r->in_multi = true;
        h->in_multi++;
    }
    h->feeding = false;
}

static void req_free_copies(gw_http_req *r)
{
    free(r->hstore);
    free(r->url_own);
    free(r->body_own);
    r->hstore = r->url_own = r->body_own = NULL;
}

/* Detach from curl and the list; the memory goes when the timer is closed. */
static void req_release(gw_http_req *r)
{
    gw_http *h = r->h;
    if (r->prev)
        r->prev->next = r->next;
    else
        h->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    h->active--;
    if (r->waiting)
        wait_remove(h, r);
    if (r->in_multi) {
        curl_multi_remove_handle(h->multi, r->easy);
        h->in_multi--;
    }
    if (r->easy != NULL)
        easy_put(h, r->easy, r->easy_uh, r->transport != NULL);
    r->easy = NULL;
    req_free_copies(r);
    uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)&r->timer, on_req_timer_closed);
    feed_multi(h);
}

static gw_err map_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return GW_OK;
    case CURLE_OPERATION_TIMEDOUT: /* only the connect timeout is given to curl */
        return GW_E_PROVIDER_CONNECT_TIMEOUT;
    case CURLE_OUT_OF_MEMORY:
        return GW_E_NOMEM;
    default:
        return GW_E_PROVIDER_TRANSPORT;
    }
}

static void complete(gw_http_req *r, CURLcode rc)
{
    gw_http_result res = {0};
    res.err = r->abort_err != GW_OK ? r->abort_err : map_curl(rc);
    if (r->status == 0 && r->easy != NULL)
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
    long connects = 0;
    if (r->in_multi && curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK &&
        connects > 0)
        r->h->connects += (uint64_t)connects;
    res.status = (int)r->status;
    res.retry_after_ms = r->retry_after_ms;
    res.body = r->buf ? r->buf : "";
    res.body_len = r->len;
    res.body_cut = r->cut;
    res.first_byte_ms = r->got_byte ? r->first_byte_ms : -1;
    res.total_ms = (double)(uv_now(r->h->loop) - r->start_ms);
    if (res.err == GW_E_PROVIDER_TRANSPORT || res.err == GW_E_PROVIDER_CONNECT_TIMEOUT)
        res.transport_detail = r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc);
    gw_http_cbs cbs = r->cbs;
    void *ud = r->ud;
    req_release(r); /* r->buf stays valid until the close callback */
    cbs.on_done(ud, &res);
}

static void check_done(gw_http *h)
{
    CURLMsg *m;
    int left;
    while (h->multi != NULL && (m = curl_multi_info_read(h->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        gw_http_req *r = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        complete(r, m->data.result);
    }
    feed_multi(h);
}

/* Copy the header lines (and "Expect:", no 100-continue wait) into r and
 * link them as the list curl reads: one allocation at most, none when small. */
static gw_err setup_headers(gw_http_req *r, const gw_http_opts *o)
{
    static const char expect[] = "Expect:";
    if (o->header_count > GW_HTTP_MAX_HEADERS)
        return GW_E_LIMIT;
    size_t need = sizeof expect;
    for (size_t i = 0; i < o->header_count; i++)
        need += strlen(o->headers[i]) + 1;
    char *w = r->hinline;
    if (need > sizeof r->hinline) {
        w = r->hstore = malloc(need);
        if (w == NULL)
            return GW_E_NOMEM;
    }
    for (size_t i = 0; i <= o->header_count; i++) {
        const char *line = i < o->header_count ? o->headers[i] : expect;
        size_t n = strlen(line) + 1;
        memcpy(w, line, n);
        r->hnodes[i].data = w;
        r->hnodes[i].next = i < o->header_count ? &r->hnodes[i + 1] : NULL;
        w += n;
    }
    return GW_OK;
}

/* The parsed form of url (len bytes), from h->urls or parsed and kept there;
 * NULL when the cache is full or curl does not take the URL (then curl parses
 * it in the transfer and reports the error as before). The flags are the ones
 * curl 7.88 parses a CURLOPT_URL with. */
static CURLU *url_parsed(gw_http *h, const char *url, size_t len)
{
    for (size_t i = 0; i < h->url_count; i++)
        if (h->urls[i].len == len && memcmp(h->urls[i].url, url, len) == 0)
            return h->urls[i].uh;
    if (h->url_count == URL_CACHE)
        return NULL;
    CURLU *uh = curl_url();
    char *copy = malloc(len + 1);
    if (uh == NULL || copy == NULL ||
        curl_url_set(uh, CURLUPART_URL, url, CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME) !=
            CURLUE_OK) {
        curl_url_cleanup(uh);
        free(copy);
        return NULL;
    }
    memcpy(copy, url, len + 1);
    h->urls[h->url_count++] = (url_entry){copy, len, uh};
    return uh;
}

/* Copy what the transfer needs past gw_http_start: headers, URL, and the body
 * unless the caller lends it for the request's life. */
static gw_err copy_opts(gw_http_req *r, const gw_http_opts *o)
{
    gw_err err = setup_headers(r, o);
    if (err != GW_OK)
        return err;
    size_t n = strlen(o->url) + 1;
    r->uh = url_parsed(r->h, o->url, n - 1);
    r->url = r->url_inline;
    if (r->uh != NULL)
        r->url_inline[0] = '\0'; /* curl reads the CURLU */
    else if (n > sizeof r->url_inline && (r->url = r->url_own = malloc(n)) == NULL)
        return GW_E_NOMEM;
    else
        memcpy(r->url, o->url, n);
    r->body = o->body;
    r->body_len = o->body_len;
    if (o->body != NULL && !o->body_borrowed) {
        r->body = r->body_own = malloc(o->body_len + 1);
        if (r->body_own == NULL)
            return GW_E_NOMEM;
        memcpy(r->body_own, o->body, o->body_len);
        r->body_own[o->body_len] = '\0';
    }
    r->connect_ms = o->connect_timeout_ms;
    const gw_http_transport *t = o->transport;
    bool custom = t != NULL && (t->ca_file || t->cert_file || t->key_file || t->key_password ||
                                t->http1_only || t->no_verify);
    r->transport = custom ? t : NULL;
    return GW_OK;
}

static void setup_url(gw_http_req *r)
{
    CURL *e = r->easy;
    if (r->uh == NULL) {
        curl_easy_setopt(e, CURLOPT_CURLU, NULL); /* or curl would use it, not the URL */
        curl_easy_setopt(e, CURLOPT_URL, r->url);
    } else if (r->easy_uh != r->uh) {
        curl_easy_setopt(e, CURLOPT_URL, NULL); /* curl makes it again from the CURLU */
        curl_easy_setopt(e, CURLOPT_CURLU, r->uh);
    } /* else: the same CURLU as the handle's last transfer, and its URL string */
    r->easy_uh = r->uh;
}

static void setup_easy(gw_http_req *r)
{
    CURL *e = r->easy;
    setup_url(r);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, &r->hnodes[0]);
    if (r->body != NULL) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L); /* a recycled handle may have posted */
    }
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    /* 0 is curl's default (300 s) */
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, r->connect_ms > 0 ? (long)r->connect_ms : 0L);
    const gw_http_transport *t = r->transport;
    if (t == NULL)
        return; /* a pooled handle: only ever default transport options */
    if (t->ca_file != NULL)
        curl_easy_setopt(e, CURLOPT_CAINFO, t->ca_file);
    if (t->cert_file != NULL)
        curl_easy_setopt(e, CURLOPT_SSLCERT, t->cert_file);
    if (t->key_file != NULL)
        curl_easy_setopt(e, CURLOPT_SSLKEY, t->key_file);
    if (t->key_password != NULL)
        curl_easy_setopt(e, CURLOPT_KEYPASSWD, t->key_password);
    if (t->http1_only)
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    if (t->no_verify) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
}

gw_err gw_http_start(gw_http *h, const gw_http_opts *o, const gw_http_cbs *cbs, void *ud,
                     gw_http_req **out)
{
    if (h->closing)
        return GW_E_SHUTTING_DOWN;
    gw_http_req *r = req_alloc(h);
    if (r == NULL)
        return GW_E_NOMEM;
    r->h = h;
    r->cbs = *cbs;
    r->ud = ud;
    r->stream = o->stream;
    r->ttft_ms = o->first_token_timeout_ms;
    r->idle_ms = o->idle_timeout_ms;
    r->total_ms = o->total_timeout_ms;
    r->max = o->max_body_bytes ? o->max_body_bytes : GW_HTTP_DEFAULT_MAX_BODY;
    r->retry_after_ms = -1;
    gw_err err = copy_opts(r, o);
    bool direct = err == GW_OK && h->wait_head == NULL && h->in_multi < h->max_active;
    if (direct) {
        r->easy = easy_get(h, &r->easy_uh);
        if (r->easy == NULL)
            err = GW_E_NOMEM;
        else
            setup_easy(r);
    }
    if (direct && err == GW_OK && curl_multi_add_handle(h->multi, r->easy) != CURLM_OK)
        err = GW_E_INTERNAL;
    if (err != GW_OK) {
        req_free_copies(r);
        if (r->easy)
            easy_put(h, r->easy, r->easy_uh, r->transport != NULL);
        r->easy = NULL;
        req_recycle(h, r);
        return err;
    }
    uv_timer_init(h->loop, &r->timer);
    r->timer.data = r;
    h->open_handles++;
    r->start_ms = uv_now(h->loop);
    r->next = h->reqs;
    if (h->reqs)
        h->reqs->prev = r;
    h->reqs = r;
    h->active++;
    if (direct) {
        r->in_multi = true;
        h->in_multi++;
    } else {
        wait_push(h, r);
    }
    req_arm(r);
    *out = r;
    return GW_OK;
}

void gw_http_cancel(gw_http_req *r)
{
    req_release(r);
}
