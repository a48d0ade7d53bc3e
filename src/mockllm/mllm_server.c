/*
 * mllm_server: connections, routing, scheduling of answers and faults.
 *
 * Invariants: a conn is in exactly one state; it has at most one job; the
 * timer runs only for its job; the read buffer never exceeds READ_MAX (a
 * client sending more than one maximal request before reading answers is
 * disconnected). A conn is freed when both its handles are closed.
 */
#include "mockllm/mllm_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mockllm/mllm_aws.h"
#include "mockllm/mllm_dialect.h"
#include "mockllm/mllm_http.h"
#include "provider/provider_http.h"
#include "provider/provider_table.h"

enum {
    READ_MAX = GW_MLLM_MAX_HEAD_BYTES + GW_MLLM_MAX_BODY_BYTES,
    OUT_MAX = 64 * 1024 * 1024,
    DRIP_PIECE = 16,
};

typedef enum { CONN_READING, CONN_BUSY, CONN_HUNG, CONN_CLOSING } conn_state;
typedef enum { JOB_NONE, JOB_FULL, JOB_STREAM, JOB_DRIP } job_kind;

typedef struct conn conn;

struct gw_mllm_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    const gw_mllm_config *cfg;
    int port;
    bool closing;
    conn *conns; /* doubly linked, for shutdown */
    int64_t total;
    gw_mllm_counts paths, request_ids, models;
};

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    gw_mllm_server *srv;
    conn *prev, *next;
    int open_handles;
    conn_state state;
    char *rbuf;
    size_t rlen, rcap;
    bool keep_alive;
    bool in_process; /* inside process_input: finish_request must not recurse */
    job_kind job;
    gw_mllm_call call;
    gw_mllm_fault fault;
    int tok_idx, cut_at;
    int64_t delay_ms;
    gw_mllm_buf pending; /* JOB_DRIP: the body still to send */
    size_t pending_off;
};

typedef struct {
    uv_write_t req;
    conn *c;
    bool close_after;
    char data[];
} wreq;

static void conn_close(conn *c);
static void conn_shutdown(conn *c, bool reset);
static void process_input(conn *c);

/* ---- output ---- */

static void on_write(uv_write_t *req, int status)
{
    wreq *w = (wreq *)req;
    conn *c = w->c;
    bool close_after = w->close_after;
    free(w);
    if (status < 0 || close_after)
        conn_close(c);
}

static void send_bytes(conn *c, const char *p, size_t n, bool close_after)
{
    if (c->state == CONN_CLOSING)
        return;
    wreq *w = malloc(sizeof *w + n);
    if (w == NULL) {
        conn_close(c);
        return;
    }
    w->c = c;
    w->close_after = close_after;
    memcpy(w->data, p, n);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0) {
        free(w);
        conn_close(c);
    }
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 408:
        return "Request Timeout";
    case 413:
        return "Payload Too Large";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Status";
    }
}

/* The fault's rate-limit headers, in the shape of the request's dialect. */
static void put_ratelimit(const conn *c, gw_mllm_buf *b)
{
    const gw_mllm_fault *f = &c->fault;
    if (f->rl_remaining < 0)
        return;
    long long rem = (long long)f->rl_remaining, lim = (long long)f->rl_limit;
    if (c->call.api == GW_MLLM_ANTHROPIC) {
        time_t t = time(NULL) + 1;
        struct tm tm;
        gmtime_r(&t, &tm);
        char at[32];
        strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", &tm);
        gw_mllm_buf_printf(b,
                           "anthropic-ratelimit-requests-limit: %lld\r\n"
                           "anthropic-ratelimit-requests-remaining: %lld\r\n"
                           "anthropic-ratelimit-requests-reset: %s\r\n",
                           lim, rem, at);
        return;
    }
    gw_mllm_buf_printf(b,
                       "x-ratelimit-limit-requests: %lld\r\n"
                       "x-ratelimit-remaining-requests: %lld\r\n"
                       "x-ratelimit-reset-requests: 1s\r\n",
                       lim, rem);
}

static void put_head(conn *c, gw_mllm_buf *b, int status, const char *ctype, const char *extra,
                     long content_len)
{
    gw_mllm_buf_printf(b, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n", status, reason(status), ctype);
    if (content_len >= 0)
        gw_mllm_buf_printf(b, "Content-Length: %ld\r\n", content_len);
    else
        gw_mllm_buf_puts(b, "Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\n");
    if (!c->keep_alive)
        gw_mllm_buf_puts(b, "Connection: close\r\n");
    if (extra)
        gw_mllm_buf_puts(b, extra);
    put_ratelimit(c, b);
    gw_mllm_buf_puts(b, "\r\n");
}

static void finish_request(conn *c)
{
    c->job = JOB_NONE;
    if (c->state == CONN_CLOSING)
        return;
    c->state = CONN_READING;
    if (c->keep_alive && !c->in_process)
        process_input(c); /* an answer finished later: serve what is queued */
}

/* A complete response with a Content-Length body. */
static void respond(conn *c, int status, const char *ctype, const char *extra, const char *body,
                    size_t len)
{
    gw_mllm_buf b;
    gw_mllm_buf_init(&b, OUT_MAX);
    put_head(c, &b, status, ctype, extra, (long)len);
    gw_mllm_buf_put(&b, body, len);
    send_bytes(c, b.p, b.len, !c->keep_alive);
    gw_mllm_buf_cleanup(&b);
}

/* type: Bedrock's error code (NULL: the one of status). */
static void respond_error_typed(conn *c, gw_mllm_api api, int status, const char *type,
                                const char *msg, const char *extra)
{
    gw_mllm_buf b;
    gw_mllm_buf_init(&b, 64 * 1024);
    gw_mllm_error_body(api, status, msg, &b);
    char hdrs[512];
    if (api == GW_MLLM_BEDROCK) { /* the SDKs take the error code from this header */
        snprintf(hdrs, sizeof hdrs, "x-amzn-ErrorType: %s:http://internal.amazon.com/coral/\r\n%s",
                 type ? type : gw_mllm_aws_error_type(status), extra ? extra : "");
        extra = hdrs;
    }
    respond(c, status, "application/json", extra, b.p, b.len);
    gw_mllm_buf_cleanup(&b);
}

static void respond_error(conn *c, gw_mllm_api api, int status, const char *msg, const char *extra)
{
    respond_error_typed(c, api, status, NULL, msg, extra);
}

/* Append one chunk of chunked encoding holding body. */
static void put_chunk(gw_mllm_buf *out, const gw_mllm_buf *body)
{
    if (body->len == 0)
        return;
    gw_mllm_buf_printf(out, "%zx\r\n", body->len);
    gw_mllm_buf_put(out, body->p, body->len);
    gw_mllm_buf_puts(out, "\r\n");
}

/* ---- jobs ---- */

static void on_timer(uv_timer_t *t);

static void schedule(conn *c, int64_t ms)
{
    uv_timer_start(&c->timer, on_timer, (uint64_t)ms, 0);
}

static void send_full(conn *c)
{
    gw_mllm_buf body;
    gw_mllm_buf_init(&body, OUT_MAX);
    if (c->fault.malformed)
        gw_mllm_buf_puts(&body, "{\"id\":\"broken\",\"choices\":[{\"message\":{\"content\":\"");
    else if (c->fault.safety && c->call.api == GW_MLLM_GEMINI)
        gw_mllm_safety_body(&c->call, &body);
    else
        gw_mllm_full_body(&c->call, &body);
    if (c->fault.cut) {
        c->keep_alive = false;
        gw_mllm_buf out;
        gw_mllm_buf_init(&out, OUT_MAX);
        put_head(c, &out, 200, "application/json", NULL, (long)body.len);
        gw_mllm_buf_put(&out, body.p, body.len / 2);
        send_bytes(c, out.p, out.len, true);
        gw_mllm_buf_cleanup(&out);
    } else {
        respond(c, 200, "application/json", NULL, body.p, body.len);
    }
    gw_mllm_buf_cleanup(&body);
    finish_request(c);
}

static void drip_step(conn *c)
{
    gw_mllm_buf out, piece;
    gw_mllm_buf_init(&out, OUT_MAX);
    gw_mllm_buf_init(&piece, OUT_MAX);
    if (c->pending_off == 0)
        put_head(c, &out, 200, "application/json", NULL, -1);
    size_t n = c->pending.len - c->pending_off;
    if (n > DRIP_PIECE)
        n = DRIP_PIECE;
    gw_mllm_buf_put(&piece, c->pending.p + c->pending_off, n);
    c->pending_off += n;
    put_chunk(&out, &piece);
    bool done = c->pending_off == c->pending.len;
    if (done)
        gw_mllm_buf_puts(&out, "0\r\n\r\n");
    send_bytes(c, out.p, out.len, done && !c->keep_alive);
    gw_mllm_buf_cleanup(&out);
    gw_mllm_buf_cleanup(&piece);
    if (!done) {
        schedule(c, c->delay_ms);
        return;
    }
    gw_mllm_buf_cleanup(&c->pending);
    finish_request(c);
}

static bool blocked(const conn *c)
{
    return c->fault.safety && c->call.api == GW_MLLM_GEMINI;
}

/* Appends tokens to body; returns true when the stream must stop here (cut). */
static bool stream_tokens(conn *c, gw_mllm_buf *body, bool *paused)
{
    *paused = false;
    while (c->tok_idx < c->call.ntok) {
        if ((c->fault.cut || c->fault.sse_error || c->fault.throttle_event || blocked(c)) &&
            c->tok_idx == c->cut_at)
            return true;
        if (c->fault.malformed && c->tok_idx == c->cut_at)
            gw_mllm_buf_puts(body, c->call.api == GW_MLLM_OLLAMA
                                       ? "{\"message\": {broken\n"
                                       : "data: {\"choices\": [{broken\n\n");
        gw_mllm_stream_token(&c->call, c->tok_idx++, body);
        if (c->delay_ms > 0 && c->tok_idx < c->call.ntok) {
            *paused = true;
            return false;
        }
    }
    return false;
}

static void stream_step(conn *c)
{
    gw_mllm_buf out, body;
    gw_mllm_buf_init(&out, OUT_MAX);
    gw_mllm_buf_init(&body, OUT_MAX);
    if (c->tok_idx == 0) {
        put_head(c, &out, 200, gw_mllm_content_type(&c->call), NULL, -1);
        gw_mllm_stream_head(&c->call, &body);
    }
    bool paused;
    bool stop = stream_tokens(c, &body, &paused);
    if (!paused && !stop &&
        (c->fault.cut || c->fault.sse_error || c->fault.throttle_event || blocked(c)))
        stop = true; /* short answers still get cut before the tail */
    bool close_now = false, done = false;
    if (stop && c->fault.cut) {
        close_now = true;
    } else if (stop && blocked(c)) {
        gw_mllm_stream_safety(&c->call, &body);
        done = true;
    } else if (stop) {
        if (c->fault.throttle_event && c->call.api == GW_MLLM_BEDROCK)
            gw_mllm_bedrock_exception(&c->call, "throttlingException",
                                      "Too many tokens, please wait before trying again.", &body);
        else
            gw_mllm_stream_error(&c->call, &body);
        done = true;
    } else if (!paused) {
        gw_mllm_stream_tail(&c->call, !c->fault.noterm, &body);
        done = true;
    }
    put_chunk(&out, &body);
    if (done)
        gw_mllm_buf_puts(&out, "0\r\n\r\n");
    send_bytes(c, out.p, out.len, close_now || (done && !c->keep_alive));
    gw_mllm_buf_cleanup(&out);
    gw_mllm_buf_cleanup(&body);
    if (paused)
        schedule(c, c->delay_ms);
    else if (close_now)
        c->job = JOB_NONE;
    else
        finish_request(c);
}

static void on_timer(uv_timer_t *t)
{
    conn *c = t->data;
    if (c->state != CONN_BUSY)
        return;
    switch (c->job) {
    case JOB_FULL:
        send_full(c);
        break;
    case JOB_STREAM:
        stream_step(c);
        break;
    case JOB_DRIP:
        drip_step(c);
        break;
    default:
        break;
    }
}

/* ---- routing ---- */

static bool is_route(const gw_mllm_req *r, const char *method, const char *path)
{
    return r->method_len == strlen(method) && memcmp(r->method, method, r->method_len) == 0 &&
           r->path_len == strlen(path) && memcmp(r->path, path, r->path_len) == 0;
}

/* A provider row's path: literal, or with one "{model}" standing for a
 * non-empty path segment (Azure's deployment name). */
static bool is_row_route(const gw_mllm_req *r, const char *pattern)
{
    const char *hole = strstr(pattern, "{model}");
    if (hole == NULL)
        return is_route(r, "POST", pattern);
    size_t pre = (size_t)(hole - pattern), post = strlen(hole + 7);
    if (r->method_len != 4 || memcmp(r->method, "POST", 4) != 0 || r->path_len <= pre + post ||
        memcmp(r->path, pattern, pre) != 0 ||
        memcmp(r->path + r->path_len - post, hole + 7, post) != 0)
        return false;
    for (size_t i = pre; i < r->path_len - post; i++)
        if (r->path[i] == '/')
            return false;
    return true;
}

static bool query_has(const gw_mllm_req *r, const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; r->query != NULL && i + kl < r->query_len; i++)
        if ((i == 0 || r->query[i - 1] == '&') && memcmp(r->query + i, key, kl) == 0 &&
            r->query[i + kl] == '=')
            return true;
    return false;
}

/* Gemini's /v1beta/models/{model}:generateContent or :streamGenerateContent:
 * the model (one path segment) and whether it streams; false for any other
 * path. */
static bool gemini_target(const gw_mllm_req *r, const char **model, size_t *model_len, bool *stream)
{
    static const char pre[] = "/v1beta/models/";
    static const char full[] = ":generateContent", streamed[] = ":streamGenerateContent";
    size_t pl = sizeof pre - 1;
    if (r->method_len != 4 || memcmp(r->method, "POST", 4) != 0 || r->path_len <= pl ||
        memcmp(r->path, pre, pl) != 0)
        return false;
    const char *seg = r->path + pl;
    size_t n = r->path_len - pl;
    const char *colon = NULL; /* the last ':' (a fault-<spec> model may hold some) */
    for (size_t i = 0; i < n; i++)
        colon = seg[i] == ':' ? seg + i : colon;
    if (colon == NULL || colon == seg || memchr(seg, '/', n) != NULL)
        return false;
    size_t rest = n - (size_t)(colon - seg);
    *stream = rest == sizeof streamed - 1 && memcmp(colon, streamed, rest) == 0;
    if (!*stream && !(rest == sizeof full - 1 && memcmp(colon, full, rest) == 0))
        return false;
    *model = seg;
    *model_len = (size_t)(colon - seg);
    return true;
}

static gw_err collect_faults(conn *c, const gw_mllm_req *r, const char *path)
{
    gw_mllm_fault *f = &c->fault;
    gw_mllm_fault_init(f);
    size_t n;
    const char *h = gw_mllm_header_get(r, "x-mock-fault", &n);
    gw_err err = h ? gw_mllm_fault_parse(f, h, n) : GW_OK;
    if (err == GW_OK && strncmp(c->call.model, "fault-", 6) == 0)
        err = gw_mllm_fault_parse(f, c->call.model + 6, strlen(c->call.model + 6));
    const char *p = strstr(c->call.prompt, "[mock-fault:");
    if (err == GW_OK && p != NULL) {
        const char *e = strchr(p, ']');
        if (e != NULL)
            err = gw_mllm_fault_parse(f, p + 12, (size_t)(e - p - 12));
    }
    if (err == GW_OK)
        err = gw_mllm_rules_apply(c->srv->cfg, c->call.model, c->call.prompt, path, f);
    return err;
}

static void retry_headers(const gw_mllm_fault *f, char *out, size_t len)
{
    out[0] = '\0';
    if (f->retry_after_ms >= 0) {
        snprintf(out, len, "retry-after-ms: %lld\r\nRetry-After: %lld\r\n",
                 (long long)f->retry_after_ms, (long long)((f->retry_after_ms + 999) / 1000));
    } else if (f->retry_after_s >= 0) {
        snprintf(out, len, "Retry-After: %lld\r\n", (long long)f->retry_after_s);
    } else if (f->retry_after_date_s >= 0) {
        time_t t = time(NULL) + f->retry_after_date_s;
        struct tm tm;
        gmtime_r(&t, &tm);
        char d[64];
        strftime(d, sizeof d, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        snprintf(out, len, "Retry-After: %s\r\n", d);
    }
}

static void echo_auth(conn *c, const gw_mllm_req *r, gw_mllm_api api)
{
    size_t an = 0, kn = 0;
    const char *a = gw_mllm_header_get(r, "authorization", &an);
    const char *k = gw_mllm_header_get(r, "x-api-key", &kn);
    if (k == NULL)
        k = gw_mllm_header_get(r, "x-goog-api-key", &kn);
    char msg[1024];
    snprintf(msg, sizeof msg, "Incorrect API key provided. Authorization: %.*s; x-api-key: %.*s",
             (int)(an > 400 ? 400 : an), a ? a : "", (int)(kn > 400 ? 400 : kn), k ? k : "");
    respond_error(c, api, 401, msg, NULL);
}

/* Faults that replace the answer; true when the request was dealt with. */
static bool error_faults(conn *c, const gw_mllm_req *r, gw_mllm_api api, int64_t rid_count)
{
    gw_mllm_fault *f = &c->fault;
    char extra[256];
    if (f->reset) {
        conn_shutdown(c, true);
        return true;
    }
    if (f->hang) {
        c->state = CONN_HUNG;
        return true;
    }
    if (f->fail_times > 0 && rid_count <= f->fail_times) {
        char msg[128];
        snprintf(msg, sizeof msg, "mock failure %lld of %d", (long long)rid_count, f->fail_times);
        retry_headers(f, extra, sizeof extra);
        respond_error(c, api, f->fail_status, msg, extra);
    } else if (f->echo_auth) {
        echo_auth(c, r, api);
    } else if (f->context) {
        respond_error(c, api, 400,
                      api == GW_MLLM_GEMINI
                          ? "The input token count (9000) exceeds the maximum number of tokens "
                            "allowed (8192)."
                          : "This model's maximum context length is 8192 tokens. However, your "
                            "messages resulted in 9000 tokens (context_length_exceeded).",
                      NULL);
    } else if (f->status != 0) {
        char msg[64];
        snprintf(msg, sizeof msg, "mock fault: status %d", f->status);
        retry_headers(f, extra, sizeof extra);
        respond_error(c, api, f->status, msg, extra);
    } else {
        return false;
    }
    finish_request(c);
    return true;
}

static void start_answer(conn *c)
{
    const gw_mllm_config *cfg = c->srv->cfg;
    const gw_mllm_fault *f = &c->fault;
    int64_t latency = f->latency_ms >= 0 ? f->latency_ms : cfg->latency_ms;
    int64_t ttft = f->ttft_ms >= 0 ? f->ttft_ms : cfg->ttft_ms;
    c->delay_ms = f->drip_ms >= 0 ? f->drip_ms : cfg->token_delay_ms;
    bool chat = c->call.api <= GW_MLLM_GEMINI;
    if (chat && c->call.stream) {
        c->job = JOB_STREAM;
        c->tok_idx = 0;
        c->cut_at = c->call.ntok / 2 > 0 ? c->call.ntok / 2 : 1;
        if (ttft > 0)
            schedule(c, ttft);
        else
            stream_step(c);
    } else if (f->drip_ms > 0) {
        c->job = JOB_DRIP;
        gw_mllm_buf_init(&c->pending, OUT_MAX);
        gw_mllm_full_body(&c->call, &c->pending);
        c->pending_off = 0;
        schedule(c, latency);
    } else {
        c->job = JOB_FULL;
        if (latency > 0)
            schedule(c, latency);
        else
            send_full(c);
    }
}

/* Bedrock: the model and stream flag from the path, and SigV4 (verified with
 * the configured secret, else its form) or a bearer API key; false when the
 * request was answered with an error. */
static bool bedrock_request(conn *c, const gw_mllm_req *r)
{
    char why[256];
    const char *type = NULL;
    int status = 0;
    if (!gw_mllm_aws_path(r->path, r->path_len, &c->call)) {
        status = 404;
        snprintf(why, sizeof why, "no such model path");
    } else {
        status = gw_mllm_aws_check(r, c->srv->cfg->aws_secret, &type, why, sizeof why);
    }
    if (status == 0)
        return true;
    respond_error_typed(c, GW_MLLM_BEDROCK, status, type, why, NULL);
    finish_request(c);
    return false;
}

/* Gemini's checks before the body: a key in x-goog-api-key (403 as Google
 * answers without one) and SSE streams only (alt=sse); true when answered. */
static bool gemini_refused(conn *c, const gw_mllm_req *r)
{
    size_t n;
    const char *model;
    bool stream;
    gemini_target(r, &model, &n, &stream);
    const char *msg = NULL;
    int status = 403;
    if (gw_mllm_header_get(r, "x-goog-api-key", &n) == NULL || n == 0) {
        msg = "Method doesn't allow unregistered callers (callers without established identity). "
              "Please use API Key or other form of API consumer identity to call this API.";
    } else if (stream && !query_has(r, "alt")) {
        status = 400;
        msg = "modelgw-mockllm streams streamGenerateContent only as SSE (alt=sse)";
    }
    if (msg == NULL)
        return false;
    respond_error(c, GW_MLLM_GEMINI, status, msg, NULL);
    finish_request(c);
    return true;
}

/* Gemini names the model and the streaming in the URL, not in the body. */
static void gemini_from_url(conn *c, const gw_mllm_req *r)
{
    const char *model;
    size_t n;
    bool stream;
    if (!gemini_target(r, &model, &n, &stream))
        return;
    snprintf(c->call.model, sizeof c->call.model, "%.*s", (int)n, model);
    c->call.stream = stream;
}

static void serve_api(conn *c, const gw_mllm_req *r, gw_mllm_api api, const char *path,
                      int64_t rid_count)
{
    gw_mllm_server *s = c->srv;
    char errmsg[256];
    if (api == GW_MLLM_GEMINI && gemini_refused(c, r))
        return;
    gw_err err = gw_mllm_call_parse(api, r->body, r->body_len, &c->call, errmsg, sizeof errmsg);
    if (err == GW_OK && api == GW_MLLM_BEDROCK && !bedrock_request(c, r))
        return;
    if (api == GW_MLLM_GEMINI)
        gemini_from_url(c, r);
    if (err == GW_OK) {
        gw_mllm_counts_incr(&s->models, c->call.model, strlen(c->call.model));
        err = collect_faults(c, r, path);
        if (err != GW_OK)
            snprintf(errmsg, sizeof errmsg, "invalid mock fault spec");
    }
    if (err != GW_OK) {
        respond_error(c, api, 400, errmsg, NULL);
        finish_request(c);
        return;
    }
    int tokens = c->fault.tokens > 0 ? c->fault.tokens : s->cfg->tokens;
    gw_mllm_call_plan(&c->call, tokens, s->cfg->embed_dims);
    c->call.guardrail = c->fault.safety && c->call.api == GW_MLLM_BEDROCK;
    if (!error_faults(c, r, api, rid_count))
        start_answer(c);
}

static void send_stats(conn *c)
{
    gw_mllm_server *s = c->srv;
    gw_mllm_buf b;
    gw_mllm_buf_init(&b, OUT_MAX);
    gw_mllm_buf_printf(&b, "{\"total\":%lld,\"paths\":", (long long)s->total);
    gw_mllm_counts_json(&s->paths, &b);
    gw_mllm_buf_puts(&b, ",\"request_ids\":");
    gw_mllm_counts_json(&s->request_ids, &b);
    gw_mllm_buf_puts(&b, ",\"models\":");
    gw_mllm_counts_json(&s->models, &b);
    gw_mllm_buf_printf(&b, ",\"overflow\":%lld}",
                       (long long)(s->request_ids.overflow + s->models.overflow));
    respond(c, 200, "application/json", NULL, b.p, b.len);
    gw_mllm_buf_cleanup(&b);
}

static void reset_stats(gw_mllm_server *s)
{
    gw_mllm_counts_cleanup(&s->paths);
    gw_mllm_counts_cleanup(&s->request_ids);
    gw_mllm_counts_cleanup(&s->models);
    s->total = 0;
}

static const struct {
    const char *path;
    gw_mllm_api api;
} embed_routes[] = {
    {"/v1/embeddings", GW_MLLM_OPENAI_EMBED},
    {"/api/embed", GW_MLLM_OLLAMA_EMBED},
};

/* The API a POST serves: each provider table row's path, answered in its
 * dialect's shape (when the mock speaks it), then the embedding routes. */
static bool find_api(const gw_mllm_req *r, gw_mllm_api *api, const char **path)
{
    for (int k = 0; k < GW_PROVIDER__COUNT; k++) {
        const gw_provider_kind_info *row = gw_provider_info((gw_provider_kind)k);
        const char *model;
        size_t model_len;
        bool stream;
        bool gemini = row->kind == GW_PROVIDER_GEMINI; /* :generateContent or :stream... */
        bool bedrock_stream =
            row->kind == GW_PROVIDER_BEDROCK && is_row_route(r, "/model/{model}/converse-stream");
        if (row->dialect == NULL || row->path == NULL)
            continue;
        if (gemini ? !gemini_target(r, &model, &model_len, &stream)
                   : !is_row_route(r, row->path) && !bedrock_stream)
            continue;
        if (row->kind == GW_PROVIDER_AZURE && !query_has(r, "api-version"))
            continue; /* Azure answers 404 without an api-version */
        if (gw_mllm_chat_api(row->dialect->name, api)) {
            *path = row->path;
            return true;
        }
    }
    for (size_t i = 0; i < sizeof embed_routes / sizeof embed_routes[0]; i++) {
        if (is_route(r, "POST", embed_routes[i].path)) {
            *api = embed_routes[i].api;
            *path = embed_routes[i].path;
            return true;
        }
    }
    return false;
}

static void handle_request(conn *c, const gw_mllm_req *r)
{
    gw_mllm_server *s = c->srv;
    if (is_route(r, "GET", "/health")) {
        respond(c, 200, "application/json", NULL, "{\"status\":\"ok\"}", 15);
    } else if (is_route(r, "GET", "/stats")) {
        send_stats(c);
    } else if (is_route(r, "POST", "/stats/reset")) {
        reset_stats(s);
        respond(c, 200, "application/json", NULL, "{\"reset\":true}", 14);
    } else {
        s->total++;
        gw_mllm_counts_incr(&s->paths, r->path, r->path_len);
        size_t idn;
        const char *rid = gw_mllm_header_get(r, "x-request-id", &idn);
        int64_t rid_count = rid ? gw_mllm_counts_incr(&s->request_ids, rid, idn) : 0;
        gw_mllm_api api;
        const char *path;
        if (find_api(r, &api, &path)) {
            serve_api(c, r, api, path, rid_count);
            return;
        }
        respond_error(c, GW_MLLM_OPENAI, 404, "no such route", NULL);
    }
    finish_request(c);
}

/* ---- connections ---- */

static void on_handle_closed(uv_handle_t *h)
{
    conn *c = h->data;
    if (--c->open_handles > 0)
        return;
    gw_mllm_buf_cleanup(&c->pending);
    free(c->rbuf);
    free(c);
}

/* Unlinks c and closes its handles; reset sends an RST instead of a FIN
 * (the reset fault), falling back to a plain close. */
static void conn_shutdown(conn *c, bool reset)
{
    if (c->state == CONN_CLOSING)
        return;
    c->state = CONN_CLOSING;
    gw_mllm_server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    if (!reset || uv_tcp_close_reset(&c->tcp, on_handle_closed) != 0)
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

static void conn_close(conn *c)
{
    conn_shutdown(c, false);
}

static void process_input(conn *c)
{
    while (c->state == CONN_READING && c->rlen > 0) {
        gw_mllm_req r;
        bool complete;
        gw_err err = gw_mllm_parse(c->rbuf, c->rlen, &r, &complete);
        if (err != GW_OK) {
            c->keep_alive = false;
            int st = err == GW_E_LIMIT ? 413 : 400;
            respond_error(c, GW_MLLM_OPENAI, st, "malformed or oversized HTTP request", NULL);
            c->state = CONN_HUNG; /* closes after the write */
            return;
        }
        if (!complete)
            return;
        c->keep_alive = r.keep_alive;
        c->state = CONN_BUSY;
        c->in_process = true;
        handle_request(c, &r);
        c->in_process = false;
        memmove(c->rbuf, c->rbuf + r.total_len, c->rlen - r.total_len);
        c->rlen -= r.total_len;
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn *c = h->data;
    if (c->rcap - c->rlen < 16 * 1024 && c->rcap < READ_MAX) {
        size_t n = c->rcap ? c->rcap * 2 : 64 * 1024;
        if (n > READ_MAX)
            n = READ_MAX;
        char *p = realloc(c->rbuf, n);
        if (p != NULL) {
            c->rbuf = p;
            c->rcap = n;
        }
    }
    *buf = uv_buf_init(c->rbuf + c->rlen, (unsigned)(c->rcap - c->rlen));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    conn *c = st->data;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->rlen += (size_t)n;
    if (c->state == CONN_HUNG) {
        c->rlen = 0; /* a hung request ignores whatever else arrives */
        return;
    }
    if (c->rlen == c->rcap && c->rcap == READ_MAX && c->state != CONN_READING) {
        conn_close(c);
        return;
    }
    process_input(c);
}

static void on_connection(uv_stream_t *ls, int status)
{
    gw_mllm_server *s = ls->data;
    if (status < 0 || s->closing)
        return;
    conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return;
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->open_handles = 2;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

gw_err gw_mllm_server_new(uv_loop_t *loop, const gw_mllm_config *cfg, const char *host,
                          gw_mllm_server **out)
{
    gw_mllm_server *s = calloc(1, sizeof *s);
    if (s == NULL)
        return GW_E_NOMEM;
    s->loop = loop;
    s->cfg = cfg;
    struct sockaddr_in addr;
    if (uv_ip4_addr(host, cfg->port, &addr) != 0) {
        free(s);
        return GW_E_CONFIG;
    }
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    int rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 4096, on_connection);
    if (rc != 0) {
        uv_close((uv_handle_t *)&s->listener, NULL);
        uv_run(loop, UV_RUN_NOWAIT);
        free(s);
        return GW_E_IO;
    }
    struct sockaddr_storage got;
    int len = sizeof got;
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&got, &len);
    s->port = ntohs(((struct sockaddr_in *)&got)->sin_port);
    gw_mllm_counts_init(&s->paths);
    gw_mllm_counts_init(&s->request_ids);
    gw_mllm_counts_init(&s->models);
    *out = s;
    return GW_OK;
}

int gw_mllm_server_port(const gw_mllm_server *s)
{
    return s->port;
}

static void on_listener_closed(uv_handle_t *h)
{
    gw_mllm_server *s = h->data;
    gw_mllm_counts_cleanup(&s->paths);
    gw_mllm_counts_cleanup(&s->request_ids);
    gw_mllm_counts_cleanup(&s->models);
    free(s);
}

void gw_mllm_server_close(gw_mllm_server *s)
{
    s->closing = true;
    while (s->conns)
        conn_close(s->conns);
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}
