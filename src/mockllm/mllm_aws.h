/*
 * mllm_aws: what modelgw-mockllm checks of a Bedrock Converse request beyond
 * its body: the model id and the stream flag from the path
 * (/model/{id}/converse or /converse-stream, the id percent-decoded), and
 * its credentials: a bearer token (a Bedrock API key, accepted as is), or a
 * SigV4 Authorization header with an x-amz-date. With a secret (the
 * --aws-secret-env option) the signature itself is verified (provider/
 * sigv4.c, the signer modelgw uses; boto3's signatures pass it too, see
 * tests/integration/test_mockllm_sdks.py); without one only its form is.
 * Also the x-amzn-ErrorType the SDKs read an error's code from.
 */
#ifndef GW_MOCKLLM_AWS_H
#define GW_MOCKLLM_AWS_H

#include <stdbool.h>
#include <stddef.h>

#include "mockllm/mllm_dialect.h"
#include "mockllm/mllm_http.h"

/* The x-amzn-ErrorType of status (ThrottlingException, ...). */
const char *gw_mllm_aws_error_type(int status);

/* The model id of a Converse path into c->model and c->stream from the path;
 * false when the path is not one (or the id is empty or too long). */
bool gw_mllm_aws_path(const char *path, size_t len, gw_mllm_call *c);

/* 0 when r's credentials pass; else the HTTP status to answer (401 missing
 * or malformed, 403 a signature that does not match secret) with *type the
 * error code and why a message (len bytes). secret NULL: the form only. */
int gw_mllm_aws_check(const gw_mllm_req *r, const char *secret, const char **type, char *why,
                      size_t len);

#endif
