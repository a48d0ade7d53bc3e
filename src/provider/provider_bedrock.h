/* provider_bedrock: the AWS Bedrock Converse dialect, its URL builder and its
 * SigV4 signer; see provider_bedrock.c. */
#ifndef GW_PROVIDER_BEDROCK_H
#define GW_PROVIDER_BEDROCK_H

#include "provider/provider_http.h"

extern const gw_phttp_dialect gw_bedrock_dialect;

/* {base}/model/{model}/converse, or /converse-stream when streaming; the
 * model id percent-encoded into one path segment. base is the deployment's
 * base_url, else https://bedrock-runtime.{region}.amazonaws.com with the
 * region of gw_bedrock_region. */
gw_err gw_bedrock_url(const gw_provider_kind_info *k, const gw_deployment *d, bool stream,
                      char *out, size_t len);

/* The deployment's region, else AWS_REGION, else AWS_DEFAULT_REGION; NULL
 * when none is set. */
const char *gw_bedrock_region(const gw_deployment *d);

/* Signs a call: with the deployment's api_key (a Bedrock API key) nothing to
 * do (it went as a bearer token); else SigV4 (sigv4.c, the current time)
 * with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, signing host, x-amz-date and
 * x-amz-security-token (from AWS_SESSION_TOKEN, when set). No credentials or
 * region, or a URL with a query: GW_E_PROVIDER_NOT_CONFIGURED. */
gw_err gw_bedrock_sign(const gw_provider_kind_info *k, gw_phttp_call *c, const gw_deployment *d,
                       const char *method, const char *url, const char *body, size_t body_len);

/* The gw_err an event stream exception type stands for (throttlingException:
 * PROVIDER_RATE_LIMITED, ...); STREAM_ERROR for unknown ones. */
gw_err gw_bedrock_exception_err(const char *type);

#endif
