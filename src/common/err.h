/*
 * err: the one error taxonomy of modelgw.
 *
 * Every failure a function can report, and every error code a client can see
 * in an InferenceResponse, is one row of GW_ERR_MAP. A row gives the enum
 * name, the wire code (the seed's E4xxx codes are kept), the fault domain,
 * whether a client or the failover loop may retry, and a short message.
 * Functions return gw_err; errno is never the API. GW_OK is zero.
 *
 * Domains: CALLER (the request is wrong: retrying the same bytes will not
 * help), POLICY (limits, budgets: retry later or never), PROVIDER (the model
 * server failed), GATEWAY (modelgw itself or its dependencies), CODEC (bytes
 * that could not be decoded; these go to the DLQ, not to a response).
 */
#ifndef GW_COMMON_ERR_H
#define GW_COMMON_ERR_H

#include <stdbool.h>

typedef enum {
    GW_DOMAIN_NONE,
    GW_DOMAIN_CALLER,
    GW_DOMAIN_POLICY,
    GW_DOMAIN_PROVIDER,
    GW_DOMAIN_GATEWAY,
    GW_DOMAIN_CODEC,
} gw_domain;

/* X(name, wire code, domain, retryable, message) */
#define GW_ERR_MAP(X)                                                                              \
    X(OK, "OK", NONE, false, "success")                                                            \
    /* caller: the request itself is wrong */                                                      \
    X(INVALID_REQUEST, "E4001", CALLER, false, "invalid request")                                  \
    X(PROVIDER_NOT_CONFIGURED, "E4002", CALLER, false, "provider not configured")                  \
    X(NO_MESSAGES, "E4003", CALLER, false, "request has no messages")                              \
    X(BAD_TEMPERATURE, "E4004", CALLER, false, "temperature outside 0..2")                         \
    X(BAD_MAX_TOKENS, "E4005", CALLER, false, "max_tokens outside the allowed range")              \
    X(CONTENT_TOO_LARGE, "E4006", CALLER, false, "request content exceeds the size limit")         \
    X(DEADLINE_EXCEEDED, "E4007", CALLER, false, "request deadline passed before it was served")   \
    X(UNKNOWN_MODEL, "E4008", CALLER, false, "requested model is not in the registry")             \
    X(CONTEXT_TOO_LONG, "E4009", CALLER, false,                                                    \
      "prompt and max_tokens exceed every context window")                                         \
    X(NO_CAPABLE_MODEL, "E4010", CALLER, false, "no model has the required capabilities")          \
    X(BAD_METADATA, "E4011", CALLER, false, "invalid metadata value")                              \
    X(REQUEST_ID_REUSED, "E4012", CALLER, false,                                                   \
      "request id already answered for a request with other content")                              \
    /* availability of models */                                                                   \
    X(NO_MODEL_AVAILABLE, "E4101", PROVIDER, true, "no model is available for this request")       \
    X(ALL_MODELS_UNAVAILABLE, "E4102", PROVIDER, true, "all models unavailable")                   \
    X(CIRCUIT_OPEN, "E4103", PROVIDER, true, "circuit breaker open for this deployment")           \
    /* provider: the model server failed */                                                        \
    X(PROVIDER_ERROR, "E4200", PROVIDER, true, "provider error")                                   \
    X(PROVIDER_CONNECT_TIMEOUT, "E4201", PROVIDER, true, "provider connect timeout")               \
    X(PROVIDER_FIRST_TOKEN_TIMEOUT, "E4202", PROVIDER, true,                                       \
      "provider time to first token exceeded")                                                     \
    X(PROVIDER_IDLE_TIMEOUT, "E4203", PROVIDER, true, "provider idle between chunks too long")     \
    X(PROVIDER_TOTAL_TIMEOUT, "E4204", PROVIDER, true, "provider total time exceeded")             \
    X(PROVIDER_RATE_LIMITED, "E4205", PROVIDER, true, "provider rate limited the request (429)")   \
    X(PROVIDER_UNAVAILABLE, "E4206", PROVIDER, true, "provider returned a server error (5xx)")     \
    X(PROVIDER_AUTH, "E4207", PROVIDER, false, "provider rejected the credentials")                \
    X(PROVIDER_BAD_REQUEST, "E4208", CALLER, false, "provider rejected the request")               \
    X(PROVIDER_TRANSPORT, "E4209", PROVIDER, true, "provider connection failed")                   \
    X(PROVIDER_BAD_RESPONSE, "E4210", PROVIDER, true, "provider response could not be parsed")     \
    X(PROVIDER_CONTEXT_LENGTH, "E4211", CALLER, false, "provider says the context is too long")    \
    X(PROVIDER_SATURATED, "E4212", PROVIDER, true,                                                 \
      "deployment concurrency cap reached and its wait queue is full")                             \
    X(PROVIDER_UNSUPPORTED, "E4213", PROVIDER, false,                                              \
      "the provider cannot honour a feature of the request (tool_choice, response_format)")        \
    X(PROVIDER_CONTENT_BLOCKED, "E4214", CALLER, false,                                            \
      "the provider's safety filter blocked the prompt or the answer")                             \
    /* policy: limits and budgets */                                                               \
    X(RATE_LIMITED, "E4300", POLICY, true, "rate limit exceeded")                                  \
    X(RATE_LIMIT_NEVER_FITS, "E4301", POLICY, false, "request cost exceeds a rate limit capacity") \
    X(BUDGET_EXCEEDED, "E4302", POLICY, false, "spend budget exceeded")                            \
    /* gateway */                                                                                  \
    X(INTERNAL, "E4500", GATEWAY, true, "internal gateway error")                                  \
    X(STATE_UNAVAILABLE, "E4501", GATEWAY, true, "state backend unavailable")                      \
    X(SHUTTING_DOWN, "E4502", GATEWAY, true, "worker is shutting down")                            \
    X(NOMEM, "E4503", GATEWAY, true, "out of memory or over an allocation limit")                  \
    X(IO, "E4504", GATEWAY, true, "i/o error")                                                     \
    X(CONFIG, "E4505", GATEWAY, false, "invalid configuration")                                    \
    X(LIMIT, "E4506", GATEWAY, false, "a size limit was exceeded")                                 \
    X(STREAM_ERROR, "E4604", PROVIDER, true, "streaming error")                                    \
    /* codec: undecodable input, routed to the DLQ */                                              \
    X(CODEC_TRUNCATED, "E4801", CODEC, false, "message truncated")                                 \
    X(CODEC_TOO_LARGE, "E4802", CODEC, false, "message larger than the size limit")                \
    X(CODEC_BAD_MAGIC, "E4803", CODEC, false, "unknown framing magic bytes")                       \
    X(CODEC_UNKNOWN_SCHEMA, "E4804", CODEC, false, "unknown schema fingerprint or id")             \
    X(CODEC_BAD_DATA, "E4805", CODEC, false, "malformed Avro data")                                \
    X(CODEC_LIMIT, "E4806", CODEC, false, "a field exceeds a decoder limit")                       \
    X(CODEC_TRAILING, "E4807", CODEC, false, "trailing bytes after the datum")                     \
    X(CODEC_BAD_UTF8, "E4808", CODEC, false, "string is not valid UTF-8")                          \
    X(CODEC_INCOMPATIBLE, "E4809", CODEC, false,                                                   \
      "the writer schema cannot be resolved against the reader schema")                            \
    X(CODEC_REGISTRY, "E4810", CODEC, false,                                                       \
      "the schema registry did not give a schema or schema id in time, or refused")

typedef enum {
#define GW_ERR_ENUM(name, code, domain, retry, msg) GW_E_##name,
    GW_ERR_MAP(GW_ERR_ENUM)
#undef GW_ERR_ENUM
        GW_E__COUNT
} gw_err;

#define GW_OK GW_E_OK

/* Wire code ("E4102"). Never NULL. */
const char *gw_err_code(gw_err e);
/* Symbolic name ("ALL_MODELS_UNAVAILABLE"). Never NULL. */
const char *gw_err_name(gw_err e);
/* Human message. Never NULL. */
const char *gw_strerror(gw_err e);
bool gw_err_retryable(gw_err e);
gw_domain gw_err_domain(gw_err e);
const char *gw_domain_name(gw_domain d);
/* Reverse lookup of a wire code; GW_E_INTERNAL when unknown. */
gw_err gw_err_from_code(const char *code);

#endif
