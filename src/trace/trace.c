/*
 * trace: W3C trace context, span encoding as OTLP JSON, and the batched
 * exporter; see trace.h and docs/observability.md ("Traces").
 *
 * The queue is a ring of encoded span objects (each at most a few KiB: 24
 * attributes of at most GW_TRACE_MAX_VALUE bytes), capped at queue_spans.
 * One export is in flight at most; its body is built from the oldest
 * batch_spans entries, which leave the ring when the export starts.
 */
#include "trace/trace.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "loop/http_client.h"

/* ---- context -------------------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* n bytes from 2n lowercase hex characters; false on any other character. */
static bool unhex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static bool all_zero(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            return false;
    return true;
}

bool gw_traceparent_parse(const char *s, size_t n, gw_trace_ctx *out)
{
    gw_trace_ctx c;
    uint8_t version;
    if (s == NULL || n < GW_TRACEPARENT_LEN)
        return false;
    if (!unhex(s, &version, 1) || version == 0xff)
        return false;
    if (version == 0 && n != GW_TRACEPARENT_LEN)
        return false;
    if (n > GW_TRACEPARENT_LEN && s[GW_TRACEPARENT_LEN] != '-')
        return false;
    if (s[2] != '-' || s[35] != '-' || s[52] != '-')
        return false;
    if (!unhex(s + 3, c.trace_id, 16) || !unhex(s + 36, c.span_id, 8) ||
        !unhex(s + 53, &c.flags, 1))
        return false;
    if (all_zero(c.trace_id, 16) || all_zero(c.span_id, 8))
        return false;
    *out = c;
    return true;
}

void gw_trace_hex(const uint8_t *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

void gw_traceparent_format(const gw_trace_ctx *c, char *out)
{
    memcpy(out, "00-", 3);
    gw_trace_hex(c->trace_id, 16, out + 3);
    out[35] = '-';
    gw_trace_hex(c->span_id, 8, out + 36);
    out[52] = '-';
    gw_trace_hex(&c->flags, 1, out + 53);
}

bool gw_tracestate_ok(const char *s, size_t n)
{
    if (s == NULL || n == 0 || n > GW_TRACESTATE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

/* ---- span attributes -------------------------------------------------------------- */

static gw_span_attr *attr_slot(gw_span *s, const char *key, gw_attr_type type)
{
    if (s->attr_count >= GW_TRACE_MAX_ATTRS)
        return NULL;
    gw_span_attr *a = &s->attrs[s->attr_count++];
    memset(a, 0, sizeof *a);
    a->key = key;
    a->type = type;
    return a;
}

void gw_span_str(gw_span *s, const char *key, const char *v)
{
    gw_span_attr *a = v != NULL ? attr_slot(s, key, GW_ATTR_STR) : NULL;
    if (a != NULL)
        a->s = v;
}

void gw_span_int(gw_span *s, const char *key, int64_t v)
{
    gw_span_attr *a = attr_slot(s, key, GW_ATTR_INT);
    if (a != NULL)
        a->i = v;
}

void gw_span_dbl(gw_span *s, const char *key, double v)
{
    gw_span_attr *a = attr_slot(s, key, GW_ATTR_DBL);
    if (a != NULL)
        a->d = v;
}

void gw_span_bool(gw_span *s, const char *key, bool v)
{
    gw_span_attr *a = attr_slot(s, key, GW_ATTR_BOOL);
    if (a != NULL)
        a->i = v;
}

/* ---- JSON writing (bounded, always valid) ------------------------------------------- */

typedef struct {
    char *b;
    size_t len, cap;
    bool oom;
} jw;

static void jw_put(jw *w, const char *p, size_t n)
{
    if (w->oom)
        return;
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap ? w->cap : 512;
        while (w->len + n + 1 > cap)
            cap *= 2;
        char *b = realloc(w->b, cap);
        if (b == NULL) {
            w->oom = true;
            return;
        }
        w->b = b;
        w->cap = cap;
    }
    memcpy(w->b + w->len, p, n);
    w->len += n;
    w->b[w->len] = '\0';
}

static void jw_lit(jw *w, const char *s)
{
    jw_put(w, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    size_t len = p[0] < 0xc2 ? 0 : p[0] < 0xe0 ? 2 : p[0] < 0xf0 ? 3 : p[0] < 0xf5 ? 4 : 0;
    if (len == 0 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xf0 && p[1] < 0x90) ||
        (p[0] == 0xf4 && p[1] > 0x8f) || (p[0] == 0xed && p[1] > 0x9f))
        return 0;
    return len;
}

/* A JSON string of at most max input bytes, cut between whole characters. */
static void jw_str(jw *w, const char *s, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    if (n > max)
        n = max;
    jw_put(w, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c >= 0x80) {
            size_t l = utf8_len(p + i, n - i);
            if (l == 0) {
                jw_put(w, "?", 1);
                i++;
            } else {
                jw_put(w, (const char *)p + i, l);
                i += l;
            }
            continue;
        }
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            jw_put(w, e, 2);
        } else if (c < 0x20) {
            char e[8];
            snprintf(e, sizeof e, "\\u%04x", c);
            jw_put(w, e, 6);
        } else {
            jw_put(w, (const char *)&c, 1);
        }
        i++;
    }
    jw_put(w, "\"", 1);
}

static void jw_hex_field(jw *w, const char *name, const uint8_t *b, size_t n)
{
    char hex[33];
    gw_trace_hex(b, n, hex);
    jw_lit(w, ",\"");
    jw_lit(w, name);
    jw_lit(w, "\":\"");
    jw_lit(w, hex);
    jw_lit(w, "\"");
}

static void jw_attr(jw *w, const gw_span_attr *a)
{
    char num[96];
    jw_lit(w, "{\"key\":");
    jw_str(w, a->key, GW_TRACE_MAX_VALUE);
    switch (a->type) {
    case GW_ATTR_STR:
        jw_lit(w, ",\"value\":{\"stringValue\":");
        jw_str(w, a->s, GW_TRACE_MAX_VALUE);
        jw_lit(w, "}}");
        return;
    case GW_ATTR_INT:
        snprintf(num, sizeof num, ",\"value\":{\"intValue\":\"%" PRId64 "\"}}", a->i);
        break;
    case GW_ATTR_DBL:
        /* JSON has no NaN or infinity: such a value is sent as 0 */
        snprintf(num, sizeof num, ",\"value\":{\"doubleValue\":%.17g}}",
                 a->d == a->d && a->d < 1e308 && a->d > -1e308 ? a->d : 0.0);
        break;
    case GW_ATTR_BOOL:
        snprintf(num, sizeof num, ",\"value\":{\"boolValue\":%s}}", a->i ? "true" : "false");
        break;
    }
    jw_lit(w, num);
}

char *gw_span_encode(const gw_span *s, size_t *len)
{
    jw w = {0};
    char num[64];
    jw_lit(&w, "{\"name\":");
    jw_str(&w, s->name ? s->name : "span", GW_TRACE_MAX_VALUE);
    jw_hex_field(&w, "traceId", s->trace_id, 16);
    jw_hex_field(&w, "spanId", s->span_id, 8);
    if (s->parent_id != NULL)
        jw_hex_field(&w, "parentSpanId", s->parent_id, 8);
    snprintf(num, sizeof num, ",\"kind\":%d", (int)s->kind);
    jw_lit(&w, num);
    snprintf(num, sizeof num, ",\"startTimeUnixNano\":\"%" PRIu64 "\"", s->start_unix_ns);
    jw_lit(&w, num);
    snprintf(num, sizeof num, ",\"endTimeUnixNano\":\"%" PRIu64 "\"",
             s->end_unix_ns >= s->start_unix_ns ? s->end_unix_ns : s->start_unix_ns);
    jw_lit(&w, num);
    jw_lit(&w, ",\"attributes\":[");
    for (size_t i = 0; i < s->attr_count && i < GW_TRACE_MAX_ATTRS; i++) {
        if (i > 0)
            jw_lit(&w, ",");
        jw_attr(&w, &s->attrs[i]);
    }
    jw_lit(&w, "],\"status\":{");
    if (s->error) {
        jw_lit(&w, "\"code\":2,\"message\":");
        jw_str(&w, s->status_text ? s->status_text : "", GW_TRACE_MAX_VALUE);
    }
    jw_lit(&w, "}}");
    if (w.oom) {
        free(w.b);
        return NULL;
    }
    *len = w.len;
    return w.b;
}

char *gw_trace_envelope(const char *service_name, const char *service_instance,
                        const char *spans_json, size_t spans_len)
{
    jw w = {0};
    jw_lit(&w, "{\"resourceSpans\":[{\"resource\":{\"attributes\":["
               "{\"key\":\"service.name\",\"value\":{\"stringValue\":");
    jw_str(&w, service_name ? service_name : "modelgw", GW_TRACE_MAX_VALUE);
    jw_lit(&w, "}}");
    if (service_instance != NULL) {
        jw_lit(&w, ",{\"key\":\"service.instance.id\",\"value\":{\"stringValue\":");
        jw_str(&w, service_instance, GW_TRACE_MAX_VALUE);
        jw_lit(&w, "}}");
    }
    jw_lit(&w, ",{\"key\":\"service.version\",\"value\":{\"stringValue\":\"" MODELGW_VERSION
               "\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"modelgw\",\"version\":"
               "\"" MODELGW_VERSION "\"},\"spans\":[");
    jw_put(&w, spans_json, spans_len);
    jw_lit(&w, "]}]}]}");
    if (w.oom) {
        free(w.b);
        return NULL;
    }
    return w.b;
}

uint64_t gw_trace_now_unix_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- the tracer ---------------------------------------------------------------------- */

typedef struct {
    char *json;
    size_t len;
} queued_span;

struct gw_tracer {
    uv_loop_t *loop;
    gw_tracer_opts o; /* strings below are copies */
    char *endpoint, *service_name, *service_instance;
    uint64_t rng; /* splitmix64 state */
    gw_http *http;
    uv_timer_t timer;
    bool timer_init, started, shutting_down;
    gw_http_req *req; /* the export in flight, or NULL */
    size_t req_spans;
    queued_span *ring; /* capacity o.queue_spans */
    size_t head, count;
    gw_tracer_stats st;
};

static uint64_t next_rand(gw_tracer *t)
{
    uint64_t z = (t->rng += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static void rand_bytes(gw_tracer *t, uint8_t *b, size_t n)
{
    do {
        for (size_t i = 0; i < n; i += 8) {
            uint64_t r = next_rand(t);
            memcpy(b + i, &r, n - i < 8 ? n - i : 8);
        }
    } while (all_zero(b, n));
}

void gw_tracer_new_trace_id(gw_tracer *t, uint8_t id[16])
{
    rand_bytes(t, id, 16);
}

void gw_tracer_new_span_id(gw_tracer *t, uint8_t id[8])
{
    rand_bytes(t, id, 8);
}

bool gw_tracer_sample(gw_tracer *t)
{
    if (t->o.sample_ratio >= 1)
        return true;
    if (t->o.sample_ratio <= 0)
        return false;
    return (double)(next_rand(t) >> 11) / 9007199254740992.0 < t->o.sample_ratio;
}

bool gw_tracer_enabled(const gw_tracer *t)
{
    return t != NULL && t->endpoint != NULL;
}

static char *dup_or_null(const char *s)
{
    return s != NULL && s[0] != '\0' ? strdup(s) : NULL;
}

void gw_tracer_free(gw_tracer *t);

gw_err gw_tracer_new(uv_loop_t *loop, const gw_tracer_opts *opts, gw_tracer **out)
{
    gw_tracer *t = calloc(1, sizeof *t);
    if (t == NULL)
        return GW_E_NOMEM;
    t->loop = loop;
    t->o = *opts;
    t->o.batch_spans = opts->batch_spans > 0 ? opts->batch_spans : 512;
    t->o.queue_spans = opts->queue_spans > 0 ? opts->queue_spans : 8192;
    t->o.flush_interval_ms = opts->flush_interval_ms > 0 ? opts->flush_interval_ms : 1000;
    t->o.timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 5000;
    t->endpoint = dup_or_null(opts->endpoint);
    t->service_name = strdup(opts->service_name ? opts->service_name : "modelgw");
    t->service_instance = dup_or_null(opts->service_instance);
    if (getrandom(&t->rng, sizeof t->rng, GRND_NONBLOCK) != (ssize_t)sizeof t->rng)
        t->rng = gw_trace_now_unix_ns() ^ ((uint64_t)getpid() << 32);
    if (t->endpoint != NULL)
        t->ring = calloc((size_t)t->o.queue_spans, sizeof *t->ring);
    if (t->service_name == NULL || (opts->endpoint && opts->endpoint[0] && t->endpoint == NULL) ||
        (t->endpoint != NULL && t->ring == NULL)) {
        gw_tracer_free(t);
        return GW_E_NOMEM;
    }
    *out = t;
    return GW_OK;
}

static void on_timer(uv_timer_t *h)
{
    gw_tracer_flush(h->data);
}

gw_err gw_tracer_start(gw_tracer *t)
{
    if (t->endpoint == NULL || t->started)
        return GW_OK;
    gw_http_config hc = {.max_host_connections = 2, .max_connects = 2, .max_active = 1};
    gw_err err = gw_http_new(t->loop, &hc, &t->http);
    if (err != GW_OK)
        return err;
    uv_timer_init(t->loop, &t->timer);
    t->timer.data = t;
    t->timer_init = true;
    uv_timer_start(&t->timer, on_timer, (uint64_t)t->o.flush_interval_ms,
                   (uint64_t)t->o.flush_interval_ms);
    uv_unref((uv_handle_t *)&t->timer); /* the timer alone never keeps the loop alive */
    t->started = true;
    GW_INFO("trace_export_started", "endpoint", t->endpoint, "service_name", t->service_name);
    return GW_OK;
}

static void drop_batch_log(gw_tracer *t, const char *why, int status)
{
    t->st.export_failures++;
    /* the first failure and then one in a hundred: a collector outage must
     * not flood the log */
    if (t->st.export_failures % 100 != 1)
        return;
    char st[16], n[24], f[24];
    snprintf(st, sizeof st, "%d", status);
    snprintf(n, sizeof n, "%zu", t->req_spans);
    snprintf(f, sizeof f, "%" PRIu64, t->st.export_failures);
    GW_WARN("trace_export_failed", "endpoint", t->endpoint, "error", why, "http_status", st,
            "spans_dropped", n, "failures", f);
}

static void on_export_done(void *ud, const gw_http_result *res)
{
    gw_tracer *t = ud;
    t->req = NULL;
    t->st.exports++;
    if (res->err == GW_OK && res->status >= 200 && res->status < 300) {
        t->st.exported += t->req_spans;
    } else {
        t->st.dropped_export_failed += t->req_spans;
        drop_batch_log(t, res->err != GW_OK ? gw_err_name(res->err) : "http_status", res->status);
        t->req_spans = 0;
        return; /* the next tick tries again with what is queued */
    }
    t->req_spans = 0;
    if (t->count >= (size_t)t->o.batch_spans || (t->shutting_down && t->count > 0))
        gw_tracer_flush(t);
}

/* The oldest batch_spans spans, comma-joined, leave the ring. */
static char *take_batch(gw_tracer *t, size_t *len, size_t *n)
{
    jw w = {0};
    size_t k = 0;
    size_t cap = (size_t)t->o.queue_spans;
    while (t->count > 0 && k < (size_t)t->o.batch_spans) {
        queued_span *q = &t->ring[t->head];
        if (k > 0)
            jw_put(&w, ",", 1);
        jw_put(&w, q->json, q->len);
        free(q->json);
        q->json = NULL;
        t->head = (t->head + 1) % cap;
        t->count--;
        k++;
    }
    *n = k;
    if (w.oom) {
        free(w.b);
        return NULL;
    }
    *len = w.len;
    return w.b;
}

void gw_tracer_flush(gw_tracer *t)
{
    if (t == NULL || t->http == NULL || t->req != NULL || t->count == 0)
        return;
    size_t len = 0, n = 0;
    char *spans = take_batch(t, &len, &n);
    char *body = spans ? gw_trace_envelope(t->service_name, t->service_instance, spans, len) : NULL;
    free(spans);
    t->req_spans = n;
    if (body == NULL) {
        t->st.dropped_export_failed += n;
        drop_batch_log(t, "NOMEM", 0);
        t->req_spans = 0;
        return;
    }
    gw_http_opts o = {.url = t->endpoint,
                      .headers = {"Content-Type: application/json"},
                      .header_count = 1,
                      .body = body,
                      .body_len = strlen(body),
                      .connect_timeout_ms = t->o.timeout_ms,
                      .total_timeout_ms = t->o.timeout_ms,
                      .max_body_bytes = 64 * 1024};
    gw_http_cbs cbs = {.on_done = on_export_done};
    gw_err err = gw_http_start(t->http, &o, &cbs, t, &t->req);
    free(body); /* copied by the client (not borrowed) */
    if (err != GW_OK) {
        t->req = NULL;
        t->st.dropped_export_failed += n;
        drop_batch_log(t, gw_err_name(err), 0);
        t->req_spans = 0;
    }
}

void gw_tracer_end(gw_tracer *t, const gw_span *s)
{
    if (!gw_tracer_enabled(t) || t->shutting_down)
        return;
    if (t->count >= (size_t)t->o.queue_spans) {
        t->st.dropped_queue_full++;
        return;
    }
    size_t len;
    char *json = gw_span_encode(s, &len);
    if (json == NULL) {
        t->st.dropped_queue_full++;
        return;
    }
    size_t cap = (size_t)t->o.queue_spans;
    t->ring[(t->head + t->count) % cap] = (queued_span){json, len};
    t->count++;
    t->st.queued++;
    if (t->count >= (size_t)t->o.batch_spans)
        gw_tracer_flush(t);
}

void gw_tracer_shutdown(gw_tracer *t)
{
    if (t == NULL || t->shutting_down)
        return;
    t->shutting_down = true;
    if (t->timer_init)
        uv_timer_stop(&t->timer);
    gw_tracer_flush(t);
    char q[24], e[24], d[24], f[24];
    snprintf(q, sizeof q, "%" PRIu64, t->st.queued);
    snprintf(e, sizeof e, "%" PRIu64, t->st.exported);
    snprintf(d, sizeof d, "%" PRIu64, t->st.dropped_queue_full);
    snprintf(f, sizeof f, "%" PRIu64, t->st.dropped_export_failed);
    if (t->endpoint != NULL)
        GW_INFO("trace_export_stopping", "spans_queued", q, "spans_exported", e,
                "spans_dropped_queue_full", d, "spans_dropped_export_failed", f);
}

void gw_tracer_set_instance(gw_tracer *t, const char *id)
{
    char *copy = dup_or_null(id);
    if (copy == NULL && id != NULL && id[0] != '\0')
        return; /* out of memory: keep the old one */
    free(t->service_instance);
    t->service_instance = copy;
}

void gw_tracer_get_stats(const gw_tracer *t, gw_tracer_stats *out)
{
    *out = t->st;
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

void gw_tracer_free(gw_tracer *t)
{
    if (t == NULL)
        return;
    if (t->http != NULL)
        gw_http_free(t->http); /* cancels the export in flight: its on_done never runs */
    for (size_t i = 0; t->ring != NULL && i < t->count; i++)
        free(t->ring[(t->head + i) % (size_t)t->o.queue_spans].json);
    free(t->ring);
    free(t->endpoint);
    free(t->service_name);
    free(t->service_instance);
    if (t->timer_init) {
        uv_timer_stop(&t->timer);
        uv_close((uv_handle_t *)&t->timer, on_timer_closed);
        return;
    }
    free(t);
}
