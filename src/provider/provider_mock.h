/*
 * provider_mock: the built-in mock provider (the seed's "mock").
 *
 * Deterministic content derived from the prompt, token counts from the
 * shared estimator, configurable latency, time to first token, inter-chunk
 * delay and failure rate (from the deployment's mock_* settings). Streams
 * when the request asks to. Runs on uv timers; with zero latency it answers
 * on the next loop iteration, never inside gw_mock_call_start (callbacks are
 * never re-entrant with the caller).
 */
#ifndef GW_PROVIDER_MOCK_H
#define GW_PROVIDER_MOCK_H

#include "provider/provider.h"

typedef struct gw_mock_call gw_mock_call;

gw_err gw_mock_call_start(uv_loop_t *loop, const gw_deployment *d, const gw_request *req,
                          const gw_provider_cbs *cbs, void *ud, gw_mock_call **out);
void gw_mock_call_cancel(gw_mock_call *c);

#endif
