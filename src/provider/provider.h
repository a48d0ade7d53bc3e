/*
 * provider: the one interface every LLM provider adapter implements.
 *
 * A call is asynchronous on the worker's libuv loop. The caller starts it with
 * callbacks; the adapter reports streamed text as it arrives (on_delta, only
 * when the request streams) and exactly one final result (on_done). After
 * on_done returns, the call object is gone. gw_provider_call_cancel() stops a
 * call early; on_done is then never invoked. Adapters never block the loop.
 *
 * One file per dialect: provider_mock.c (built in, no I/O), provider_openai.c,
 * provider_anthropic.c, provider_ollama.c (HTTP over http_client.c); each
 * provider kind is one row of provider_table.def naming its adapter.
 *
 * Ownership: the request and deployment must outlive the call. Strings in a
 * gw_provider_result live only during on_done; copy what you keep.
 */
#ifndef GW_PROVIDER_PROVIDER_H
#define GW_PROVIDER_PROVIDER_H

#include <stdint.h>
#include <uv.h>

#include "common/err.h"
#include "model/deployment.h"
#include "model/model.h"
#include "provider/ratelimit.h"

typedef struct gw_provider_call gw_provider_call;
typedef struct gw_providers gw_providers;

typedef struct {
    gw_err err;             /* GW_OK on a complete answer */
    int http_status;        /* 0 when not HTTP or no response */
    int64_t retry_after_ms; /* -1 when the provider gave none */
    const char
        *error_detail;   /* provider error body: truncated, credentials redacted; may be NULL */
    const char *content; /* the whole answer text ("" on error) */
    size_t content_len;
    gw_token_usage usage;
    const char *finish_reason; /* normalised: "stop" | "length" | "content_filter" | "tool_calls" |
                                  "error" */
    double ttft_ms;            /* time to first token (or to the answer when not streamed) */
    double latency_ms;         /* total time of the call */
    bool streamed_any;         /* at least one delta was reported */
    /* The tool calls of the answer, assembled (finish_reason "tool_calls"). */
    const gw_tool_call *tool_calls;
    size_t tool_call_count;
    gw_ratelimit ratelimit; /* the response's rate-limit headers (none present: have == 0) */
} gw_provider_result;

typedef struct {
    /* Streamed text, in order; len > 0. Only when req->stream. */
    void (*on_delta)(void *ud, const char *text, size_t len);
    /* Exactly once unless cancelled. */
    void (*on_done)(void *ud, const gw_provider_result *res);
    /* Optional: a streamed piece of a tool call, in order (index 0, 1, ... in
     * order of first appearance; id and name on a call's first piece). Only
     * when req->stream. The strings live during the callback only. */
    void (*on_tool_delta)(void *ud, const gw_tool_call_delta *d);
} gw_provider_cbs;

/* Calls waiting for a deployment's concurrency cap, per deployment. */
enum { GW_PROVIDER_QUEUE_MAX = 4096 };

/* Everything adapters share: the loop, the HTTP client (created on first use). */
gw_err gw_providers_new(uv_loop_t *loop, gw_providers **out);
/* Call after every call finished or was cancelled. HTTP handles close
 * asynchronously: run the loop afterwards so their memory is released. */
void gw_providers_free(gw_providers *ps);

/* Start a call. On error nothing was started and no callback will run.
 * cbs->on_delta may be NULL. When d's cap (d->max_concurrency, or the lower
 * gw_providers_set_limit) calls of d are running,
 * the call waits in a bounded FIFO (GW_PROVIDER_QUEUE_MAX; when full:
 * GW_E_PROVIDER_SATURATED). */
gw_err gw_provider_call_start(gw_providers *ps, const gw_deployment *d, const gw_request *req,
                              const gw_provider_cbs *cbs, void *ud, gw_provider_call **out);
void gw_provider_call_cancel(gw_provider_call *c);

/* Number of calls in flight on deployment d (for the concurrency cap and load balancing). */
int gw_providers_inflight(const gw_providers *ps, const gw_deployment *d);
/* Lower d's concurrency cap to limit (1 .. d->max_concurrency; 0 or more
 * restores d->max_concurrency): the adaptive cap of src/route/aimd.h. Calls
 * already running are not stopped; queued ones start as running calls end
 * (a raised cap drains the queue when the next call of d ends).
 * GW_E_LIMIT when no slot is left for d. */
gw_err gw_providers_set_limit(gw_providers *ps, const gw_deployment *d, int limit);
/* The cap in force for d (d->max_concurrency unless lowered). */
int gw_providers_limit(const gw_providers *ps, const gw_deployment *d);

/* Deterministic token estimate used for limits and context checks (~4 bytes/token). */
int32_t gw_estimate_tokens(const char *text);
int32_t gw_estimate_prompt_tokens(const gw_request *req);

#endif
