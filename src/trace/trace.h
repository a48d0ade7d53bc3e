/*
 * trace: W3C trace context and span export as OTLP/HTTP JSON.
 *
 * The context half is pure: parse and format `traceparent`
 * (00-<trace id>-<parent id>-<flags>), hex ids, random ids. The export half
 * is one gw_tracer per worker on its loop: finished spans are encoded as
 * OTLP JSON span objects and queued (at most queue_spans; more are dropped
 * and counted), then sent in batches of at most batch_spans to the
 * collector's /v1/traces URL through libcurl on the loop (loop/http_client),
 * one export request at a time, every flush_interval_ms or as soon as a
 * batch is full. A failed export drops its batch (counted and logged, never
 * retried): a collector outage costs spans, never memory or the loop.
 *
 * Without an endpoint the tracer still makes ids (a request without a
 * traceparent gets a new trace id for its logs and outputs) but queues
 * nothing. Attribute values are cut at GW_TRACE_MAX_VALUE bytes and invalid
 * UTF-8 becomes '?', so every span is valid JSON of bounded size.
 *
 * Not thread-safe: one tracer per loop, used on that loop only.
 */
#ifndef GW_TRACE_TRACE_H
#define GW_TRACE_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/err.h"

enum {
    GW_TRACEPARENT_LEN = 55, /* "00-" 32 "-" 16 "-" 2 */
    GW_TRACESTATE_MAX = 512, /* W3C: 32 members of at most 256 bytes; we keep 512 bytes */
    GW_TRACE_MAX_ATTRS = 24,
    GW_TRACE_MAX_VALUE = 256,
};

/* Span kinds as OTLP numbers them. */
typedef enum {
    GW_SPAN_INTERNAL = 1,
    GW_SPAN_SERVER = 2,
    GW_SPAN_CLIENT = 3,
    GW_SPAN_PRODUCER = 4,
    GW_SPAN_CONSUMER = 5,
} gw_span_kind;

typedef struct {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t flags; /* bit 0: sampled */
} gw_trace_ctx;

/*
 * Parses a traceparent header value (W3C Trace Context level 1): version 00
 * exactly 55 characters; a higher version (not ff) its first 55 characters
 * followed by the end or '-'. Lowercase hex; all-zero ids are invalid. On
 * success fills out (span_id = the caller's span, the parent of ours).
 */
bool gw_traceparent_parse(const char *s, size_t n, gw_trace_ctx *out);
/* "00-<trace>-<span>-<flags>" into out[GW_TRACEPARENT_LEN + 1]. */
void gw_traceparent_format(const gw_trace_ctx *c, char *out);
/* Lowercase hex of n bytes into out[2n + 1]. */
void gw_trace_hex(const uint8_t *b, size_t n, char *out);
/* A tracestate value worth passing on: printable ASCII, at most
 * GW_TRACESTATE_MAX bytes. */
bool gw_tracestate_ok(const char *s, size_t n);

/* ---- spans -------------------------------------------------------------------- */

typedef enum { GW_ATTR_STR, GW_ATTR_INT, GW_ATTR_DBL, GW_ATTR_BOOL } gw_attr_type;

typedef struct {
    const char *key; /* a static name (OpenTelemetry semantic conventions) */
    gw_attr_type type;
    const char *s; /* borrowed until gw_tracer_end returns; NULL skips the attribute */
    int64_t i;
    double d;
} gw_span_attr;

/* A finished span as the caller describes it; everything is copied by
 * gw_tracer_end. */
typedef struct {
    const char *name;
    gw_span_kind kind;
    const uint8_t *trace_id;  /* 16 bytes */
    const uint8_t *span_id;   /* 8 bytes */
    const uint8_t *parent_id; /* 8 bytes, or NULL for a root span */
    uint64_t start_unix_ns, end_unix_ns;
    bool error;              /* OTLP status ERROR (else UNSET) */
    const char *status_text; /* with error: a short reason (an error name) */
    gw_span_attr attrs[GW_TRACE_MAX_ATTRS];
    size_t attr_count;
} gw_span;

/* Appends one attribute; silently ignored past GW_TRACE_MAX_ATTRS or when a
 * string value is NULL. */
void gw_span_str(gw_span *s, const char *key, const char *v);
void gw_span_int(gw_span *s, const char *key, int64_t v);
void gw_span_dbl(gw_span *s, const char *key, double v);
void gw_span_bool(gw_span *s, const char *key, bool v);

/* ---- the tracer ----------------------------------------------------------------- */

typedef struct {
    const char *endpoint; /* NULL or "": no export */
    const char *service_name;
    const char *service_instance; /* service.instance.id (the worker id); may be NULL */
    double sample_ratio;
    int32_t batch_spans, queue_spans, flush_interval_ms, timeout_ms;
} gw_tracer_opts;

typedef struct {
    uint64_t queued, exported, dropped_queue_full, dropped_export_failed, exports, export_failures;
} gw_tracer_stats;

typedef struct gw_tracer gw_tracer;

/* Copies opts. Nothing runs until gw_tracer_start. */
gw_err gw_tracer_new(uv_loop_t *loop, const gw_tracer_opts *opts, gw_tracer **out);
/* Starts the flush timer and the HTTP client (when an endpoint is set). */
gw_err gw_tracer_start(gw_tracer *t);
/* Sends what is queued (one last batch at a time until empty or a failure)
 * and stops the timer; the loop keeps running until the last export ends
 * (at most timeout_ms per batch). Idempotent. */
void gw_tracer_shutdown(gw_tracer *t);
/* Cancels an export in flight; memory goes with the loop's close callbacks. */
void gw_tracer_free(gw_tracer *t);

/* service.instance.id of the spans exported from now on (copied). */
void gw_tracer_set_instance(gw_tracer *t, const char *id);
/* Spans are exported (an endpoint is set). */
bool gw_tracer_enabled(const gw_tracer *t);
/* Random ids (never all zero). */
void gw_tracer_new_trace_id(gw_tracer *t, uint8_t id[16]);
void gw_tracer_new_span_id(gw_tracer *t, uint8_t id[8]);
/* The sampling decision for a new trace (sample_ratio). */
bool gw_tracer_sample(gw_tracer *t);
/* Queues a finished span (only when enabled; the caller checks sampling). */
void gw_tracer_end(gw_tracer *t, const gw_span *s);
/* Starts an export now when none is in flight and spans wait. */
void gw_tracer_flush(gw_tracer *t);
void gw_tracer_get_stats(const gw_tracer *t, gw_tracer_stats *out);

/* The OTLP ExportTraceServiceRequest JSON of spans already encoded by
 * gw_span_encode, joined by commas in spans_json (for tests and the
 * exporter). The caller frees the result. NULL when out of memory. */
char *gw_trace_envelope(const char *service_name, const char *service_instance,
                        const char *spans_json, size_t spans_len);
/* One span as an OTLP JSON object; the caller frees it. NULL when out of memory. */
char *gw_span_encode(const gw_span *s, size_t *len);

/* Wall-clock nanoseconds since the Unix epoch. */
uint64_t gw_trace_now_unix_ns(void);

#endif
