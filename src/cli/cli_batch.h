/*
 * cli_batch: the OpenAI Batch-API file format, for `modelgw-cli batch`.
 *
 * Input lines look like
 *   {"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions",
 *    "body": {"model": "m", "messages": [...], "max_tokens": 100, "temperature": 0.2}}
 * and become gw_requests; responses become output lines
 *   {"id": "batch_req_<request_id>", "custom_id": "r1",
 *    "response": {"status_code": 200, "request_id": "...", "body": {chat.completion}},
 *    "error": null}
 * Gateway errors are answered like the OpenAI API answers an HTTP error:
 * status_code 400 (caller), 429 (policy), 502 (provider) or 500 (gateway),
 * body {"error": {"message", "type", "code"}}; the top-level "error" stays
 * null (it is meant for lines that were never processed).
 *
 * Request ids are derived from batch_id + custom_id (a UUID-shaped 128-bit
 * hash), so a resumed batch republishes the same ids and the worker's
 * de-duplication can recognise them.
 *
 * Pure: no I/O. Parsed strings live in the caller's arena.
 */
#ifndef GW_CLI_BATCH_H
#define GW_CLI_BATCH_H

#include <stddef.h>

#include "common/arena.h"
#include "common/err.h"
#include "model/model.h"

/* OpenAI's own limits for one batch file. */
#define GW_CLI_BATCH_MAX_LINE_BYTES (1024 * 1024)
#define GW_CLI_BATCH_MAX_FILE_BYTES (200ull * 1024 * 1024)
#define GW_CLI_BATCH_MAX_LINES      50000
#define GW_CLI_BATCH_MAX_CUSTOM_ID  512
#define GW_CLI_BATCH_MAX_MESSAGES   1024
#define GW_CLI_BATCH_DEFAULT_TOKENS 1024

typedef struct {
    const char *agent_did; /* required */
    const char *batch_id;  /* required */
    const char *priority;  /* unused here; the caller picks the topic */
    int ignore_model;      /* drop body.model and let the router choose */
} gw_cli_batch_opts;

/* Parse one input line (len bytes, no NUL needed) into req. req->request_id,
 * batch_id and custom_id are set. On failure returns GW_E_INVALID_REQUEST (or
 * GW_E_LIMIT / GW_E_NOMEM) and writes a reason into err. */
gw_err gw_cli_batch_parse_line(const char *line, size_t len, const gw_cli_batch_opts *o,
                               gw_arena *a, gw_request *req, char *err, size_t errlen);

/* Deterministic UUID-shaped id of (batch_id, custom_id). */
void gw_cli_batch_request_id(const char *batch_id, const char *custom_id, char out[37]);

/* HTTP-like status for a response: 200 when no error. */
int gw_cli_batch_status_code(const gw_response *r);

/* One output line (no newline), malloc'd; NULL on allocation failure.
 * created_s is the unix time written into the chat.completion. */
char *gw_cli_batch_output_line(const gw_response *r, const char *custom_id, long long created_s);

/* custom_id of an output line written by gw_cli_batch_output_line, copied
 * into out (NUL-terminated). GW_E_INVALID_REQUEST when the line is not one. */
gw_err gw_cli_batch_output_custom_id(const char *line, size_t len, char *out, size_t outlen);

#endif
