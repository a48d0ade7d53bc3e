/*
 * http_client: HTTP requests on the worker's libuv loop through libcurl's
 * multi-socket API (CURLMOPT_SOCKETFUNCTION + CURLMOPT_TIMERFUNCTION driven
 * by uv_poll and uv_timer, as in curl's docs/examples/multi-uv.c). Never
 * curl_easy_perform: nothing here blocks the loop.
 *
 * One gw_http per loop owns one multi handle, so every request shares one
 * connection cache: keep-alive reuse, HTTP/2 multiplexing where the server
 * offers it (CURLPIPE_MULTIPLEX), at most max_host_connections per host
 * (by default max_active, so that no transfer waits inside curl for a
 * connection: libcurl 7.88 re-runs a waiting transfer's URL parse and
 * connection setup each time any transfer ends). URLs are parsed once and
 * kept (CURLOPT_CURLU). At most max_active transfers are handed to curl at
 * once; further requests wait in a FIFO here and are added as transfers end. (libcurl 7.88's
 * curl_multi_remove_handle is linear in the number of transfers it holds:
 * with thousands of requests parked inside curl waiting for a connection it
 * took a quarter of the worker's CPU.) A queued request's timeouts run from
 * gw_http_start.
 *
 * Timeouts per request: connect (curl's CURLOPT_CONNECTTIMEOUT_MS), first
 * token (from start until gw_http_req_token_seen(), or until the first
 * response byte when the caller never calls it because the answer is not
 * streamed), idle (no byte received for that long) and total. The last three
 * run on one uv timer per request, re-armed lazily (a received byte only
 * stamps a time). Each yields its own gw_err.
 *
 * Per request there is one allocation (the gw_http_req, recycled through a
 * free list) plus curl's own: header lines are copied into the request and
 * handed to curl as a list built in place (no curl_slist_append), easy
 * handles are recycled, and a borrowed body is not copied.
 *
 * Bodies: a 2xx body of a streaming request is handed to on_data as it
 * arrives and never buffered here; any other body is buffered up to
 * max_body_bytes (a longer success body is GW_E_LIMIT; a longer error body is
 * cut, since only its start is reported). Retry-After (seconds or HTTP date)
 * and retry-after-ms headers are parsed into retry_after_ms; every header
 * line also goes to the optional on_header (the provider adapters read the
 * rate-limit headers there).
 *
 * Callbacks never run inside gw_http_start (curl is driven from the loop),
 * and on_done runs exactly once unless the request was cancelled. The result
 * and its body live only during on_done.
 */
#ifndef GW_LOOP_HTTP_CLIENT_H
#define GW_LOOP_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/err.h"

typedef struct gw_http gw_http;
typedef struct gw_http_req gw_http_req;

typedef struct {
    long max_host_connections; /* per host; default max_active */
    long max_connects;         /* connection cache size; default 512 */
    long max_active;           /* transfers inside curl at once; default max_connects */
} gw_http_config;

enum { GW_HTTP_MAX_HEADERS = 24, GW_HTTP_DEFAULT_MAX_BODY = 8 * 1024 * 1024 };

/* Per-destination transport options (a deployment's, the schema registry's;
 * they outlive its requests). A transfer with any of them set runs on an
 * easy handle of its own (never returned to the pool), so nothing carries
 * over to transfers to other destinations. */
typedef struct {
    const char *ca_file;      /* PEM bundle that verifies the server; NULL: the system's */
    const char *cert_file;    /* client certificate (PEM) for mutual TLS; NULL: none */
    const char *key_file;     /* its private key (PEM); NULL: in cert_file */
    const char *key_password; /* the key's password (CURLOPT_KEYPASSWD); a secret */
    bool http1_only;          /* never HTTP/2 (default: HTTP/2 over TLS when offered) */
    bool no_verify;           /* do not verify the server's certificate and name (tests only) */
} gw_http_transport;

typedef struct {
    const char *url;
    const gw_http_transport *transport;       /* NULL: defaults */
    const char *headers[GW_HTTP_MAX_HEADERS]; /* "Name: value"; copied by curl */
    size_t header_count;
    const char *body; /* POST body, copied unless body_borrowed; NULL for GET */
    size_t body_len;
    bool body_borrowed; /* body stays valid until on_done runs or the request is
                           cancelled: curl reads it in place, no copy */
    bool stream;        /* hand a 2xx body to on_data as it arrives */
    int32_t connect_timeout_ms, first_token_timeout_ms, idle_timeout_ms,
        total_timeout_ms;  /* 0: none */
    size_t max_body_bytes; /* 0: GW_HTTP_DEFAULT_MAX_BODY */
} gw_http_opts;

typedef struct {
    gw_err err;             /* GW_OK when a full response arrived (any status) */
    int status;             /* HTTP status, 0 when none was received */
    int64_t retry_after_ms; /* -1 when the response had none */
    const char *body;       /* buffered body (not for a streamed 2xx); NUL-terminated */
    size_t body_len;
    bool body_cut; /* an error body longer than the limit was cut */
    double first_byte_ms, total_ms;
    const char *transport_detail; /* curl's message for a transport error, else NULL */
} gw_http_result;

typedef struct {
    /* Streamed 2xx bytes. Return non-GW_OK to abort: on_done then gets that err. */
    gw_err (*on_data)(void *ud, const char *p, size_t n);
    void (*on_done)(void *ud, const gw_http_result *res);
    /* Optional: each response header line as received ("Name: value\r\n",
     * status lines included; a new "HTTP/" line starts another response
     * after a 1xx). Lives during the call only; must not call into h. */
    void (*on_header)(void *ud, const char *line, size_t n);
} gw_http_cbs;

gw_err gw_http_new(uv_loop_t *loop, const gw_http_config *cfg, gw_http **out);
/* Cancels what is left; memory is released by the loop's close callbacks. */
void gw_http_free(gw_http *h);

gw_err gw_http_start(gw_http *h, const gw_http_opts *o, const gw_http_cbs *cbs, void *ud,
                     gw_http_req **out);
/* Stop a request; its on_done is never called. Not from inside its own callbacks. */
void gw_http_cancel(gw_http_req *r);
/* The caller saw the first token: the first-token timeout stops applying. */
void gw_http_req_token_seen(gw_http_req *r);

/* Parse a Retry-After value (delta-seconds or HTTP date) into ms from now; -1 if invalid. */
int64_t gw_http_parse_retry_after(const char *v, size_t n, int64_t now_unix_s);
/* Parse retry-after-ms (a non-negative number, fractions allowed); -1 if invalid. */
int64_t gw_http_parse_retry_after_ms(const char *v, size_t n);

/* The loop h runs on. */
uv_loop_t *gw_http_loop(const gw_http *h);

/* Requests in flight on h (for tests and metrics). */
size_t gw_http_active(const gw_http *h);

/* New connections curl opened for finished transfers on h (CURLINFO_NUM_CONNECTS
 * summed): with keep-alive working this stays near the number of parallel
 * connections, not the number of requests. */
uint64_t gw_http_connects(const gw_http *h);

#endif
