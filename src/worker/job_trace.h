/*
 * job_trace: the trace context of one request and its spans
 * (docs/observability.md, "Traces").
 *
 * The pipeline calls three hooks: gw_job_trace_stage() on every stage move
 * (pipeline.c, set_stage), gw_job_trace_attempt_begin() just before a
 * provider call starts and gw_job_trace_attempt_end() when it ends
 * (stage_route.c). Everything else is read from the job's state, so the
 * stages carry no trace code of their own.
 *
 * Leaving DECODE the context is fixed: the request's `traceparent` header
 * when it parses (our request span becomes its child and follows its sampled
 * flag), else a new trace id (sampled by trace.sample_ratio). The outputs'
 * traceparent header then names our request span as parent (an unparseable
 * traceparent is passed on as it came). Each provider attempt gets its own
 * span id, sent as the HTTP call's traceparent (with the request's
 * tracestate). Spans are ended and queued only when the export is on and the
 * trace is sampled; ids are made either way (the request_done log line
 * carries trace_id).
 *
 * Owned by the job (job->trace), written only here.
 */
#ifndef GW_WORKER_JOB_TRACE_H
#define GW_WORKER_JOB_TRACE_H

#include <stdbool.h>
#include <stdint.h>

#include "provider/provider.h"
#include "trace/trace.h"

struct gw_job;

typedef struct {
    bool started;                            /* the context is fixed (left DECODE) */
    bool has_parent;                         /* the request carried a valid traceparent */
    gw_trace_ctx ctx;                        /* trace id, our request span id, flags */
    uint8_t parent_id[8];                    /* the caller's span (when has_parent) */
    char trace_hex[33];                      /* for logs */
    char span_hex[17];                       /* our request span, for logs */
    char attempt_tp[GW_TRACEPARENT_LEN + 1]; /* the provider call's traceparent */
    const char *tracestate;                  /* arena copy, or NULL */
    uint64_t start_unix_ns;                  /* intake */
    uint64_t stage_start_ns;                 /* entering ADMIT or SEMANTIC (first entry) */
    uint8_t attempt_id[8];                   /* the current provider attempt's span */
    uint64_t attempt_start_ns;
    bool attempt_open;
    int32_t attempt_no;
} gw_job_trace;

/* A stage move (pipeline.c, set_stage); from and to are gw_stage values. */
void gw_job_trace_stage(struct gw_job *job, int from, int to);
/* A provider call is about to start: a new span id, into job->req.traceparent. */
void gw_job_trace_attempt_begin(struct gw_job *job);
/* The provider call ended with res (before the job acts on it). */
void gw_job_trace_attempt_end(struct gw_job *job, const gw_provider_result *res);

#endif
