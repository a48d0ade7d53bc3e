/*
 * mllm_fault: what modelgw-mockllm does wrong on purpose, and what it counts.
 *
 * A fault spec is a comma-separated list of items, name[:arg[:arg2]]:
 *   status:CODE        answer CODE with an error body in the request's dialect
 *   429:S              429 with Retry-After: S (seconds)
 *   429ms:MS           429 with retry-after-ms: MS (and Retry-After rounded up)
 *   429date:S          429 with Retry-After as an HTTP date S seconds ahead
 *   reset              close the connection with a TCP reset, no answer
 *   hang               never answer (the connection stays open)
 *   drip:MS            MS between tokens (streaming) or 16-byte body pieces
 *   cut                close the connection half-way through the body
 *   noterm             finish the HTTP body cleanly but without the dialect's
 *                      terminator ([DONE], message_stop, done:true)
 *   malformed          invalid JSON (whole body, or one stream event)
 *   sse-error          an error event in the middle of the stream
 *   throttle-event     Bedrock: a throttlingException message in the middle of
 *                      the event stream (other dialects: as sse-error)
 *   fail:N[:CODE]      fail the first N calls of a request id (header
 *                      x-request-id) with CODE (default 503), then succeed
 *   echo-auth          401 whose body echoes the Authorization / x-api-key
 *   context            400 "context_length_exceeded"
 *   safety             Gemini: the answer blocked by the safety filter
 *                      (finishReason SAFETY; half-way through a stream);
 *                      Bedrock: the answer ends with stopReason
 *                      guardrail_intervened (a guardrail stepped in)
 *   ttft:MS, latency:MS, tokens:N   per-request timing and length overrides
 *   ratelimit:R[:L]    every answer carries rate-limit headers: R requests
 *                      remaining of L (default 100), reset in 1 s (OpenAI
 *                      x-ratelimit-*; Anthropic anthropic-ratelimit-* with
 *                      an RFC 3339 reset, for Anthropic requests)
 * Faults come from the x-mock-fault header, from a model named
 * "fault-<spec>", from "[mock-fault:<spec>]" in the prompt, and from rules in
 * the config file (match on model, prompt substring, path). All that apply
 * are merged. Unknown items are GW_E_INVALID_REQUEST (answered with 400).
 *
 * gw_mllm_counts is a bounded string -> count table for GET /stats: at most
 * GW_MLLM_MAX_KEYS distinct keys, the rest add to an overflow count.
 */
#ifndef GW_MOCKLLM_FAULT_H
#define GW_MOCKLLM_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "mockllm/mllm_http.h"

typedef struct {
    int status;
    int64_t retry_after_s, retry_after_ms, retry_after_date_s; /* -1: unset */
    bool reset, hang, cut, noterm, malformed, sse_error, echo_auth, context;
    bool throttle_event; /* Bedrock: a throttlingException message mid-stream */
    bool safety;         /* Gemini: the answer blocked by the safety filter */
    int fail_times, fail_status;
    int64_t drip_ms, ttft_ms, latency_ms; /* -1: unset */
    int tokens;                           /* -1: unset */
    int64_t rl_remaining, rl_limit;       /* ratelimit:R[:L]; -1: unset */
} gw_mllm_fault;

void gw_mllm_fault_init(gw_mllm_fault *f);
/* Merge the items of spec[0..n) into f. */
gw_err gw_mllm_fault_parse(gw_mllm_fault *f, const char *spec, size_t n);

enum { GW_MLLM_MAX_RULES = 256, GW_MLLM_MAX_KEYS = 1 << 16, GW_MLLM_KEY_MAX = 256 };

typedef struct {
    char *model;           /* exact model name, or NULL */
    char *prompt_contains; /* substring of the prompt, or NULL */
    char *path;            /* exact path, or NULL */
    char *fault;           /* spec */
} gw_mllm_rule;

typedef struct {
    int port;
    int64_t latency_ms, ttft_ms, token_delay_ms;
    int tokens;
    int embed_dims;
    gw_mllm_rule rules[GW_MLLM_MAX_RULES];
    size_t rule_count;
    const char *aws_secret; /* verify Bedrock SigV4 signatures with it; NULL: their form only */
} gw_mllm_config;

void gw_mllm_config_init(gw_mllm_config *c);
void gw_mllm_config_cleanup(gw_mllm_config *c);
/* Read a JSON config file; errmsg gets a reason on failure. */
gw_err gw_mllm_config_load(gw_mllm_config *c, const char *path, char *errmsg, size_t errlen);

/* Merge every rule matching (model, prompt, path) into f. */
gw_err gw_mllm_rules_apply(const gw_mllm_config *c, const char *model, const char *prompt,
                           const char *path, gw_mllm_fault *f);

typedef struct {
    char **keys;
    int64_t *vals;
    size_t cap, count;
    int64_t overflow;
} gw_mllm_counts;

void gw_mllm_counts_init(gw_mllm_counts *t);
void gw_mllm_counts_cleanup(gw_mllm_counts *t);
/* Add one to key; returns the new count (0 when the table is full). */
int64_t gw_mllm_counts_incr(gw_mllm_counts *t, const char *key, size_t n);
/* Append {"key":count,...} as JSON. */
bool gw_mllm_counts_json(const gw_mllm_counts *t, gw_mllm_buf *b);

#endif
