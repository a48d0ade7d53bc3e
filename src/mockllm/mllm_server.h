/*
 * mllm_server: the modelgw-mockllm HTTP/1.1 server on a libuv loop.
 *
 * Owns the listening socket and every connection. A connection serves one
 * request at a time (keep-alive; pipelined requests wait in its read buffer,
 * which is bounded by the parser's limits). Each request is answered
 * immediately or by the connection's one timer (latency, time to first token,
 * inter-token delay, slow drip), so thousands of slow streams cost no
 * threads. Streams use chunked transfer encoding.
 *
 * Routes: POST /v1/chat/completions (OpenAI), POST /v1/messages (Anthropic),
 * POST /api/chat (Ollama), POST /model/{id}/converse and /converse-stream
 * (Bedrock; mllm_aws.h), POST /v1/embeddings, POST /api/embed,
 * GET /health, GET /stats, POST /stats/reset. Faults: see mllm_fault.h.
 *
 * Lifecycle: gw_mllm_server_new binds and listens; gw_mllm_server_close
 * closes everything; the server is freed once the loop has run the close
 * callbacks (the caller runs the loop to completion).
 */
#ifndef GW_MOCKLLM_SERVER_H
#define GW_MOCKLLM_SERVER_H

#include <uv.h>

#include "common/err.h"
#include "mockllm/mllm_fault.h"

typedef struct gw_mllm_server gw_mllm_server;

/* cfg must outlive the server. host is an IPv4 address; port 0 picks a free port. */
gw_err gw_mllm_server_new(uv_loop_t *loop, const gw_mllm_config *cfg, const char *host,
                          gw_mllm_server **out);
int gw_mllm_server_port(const gw_mllm_server *s);
void gw_mllm_server_close(gw_mllm_server *s);

#endif
