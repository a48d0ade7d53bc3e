/*
 * mllm_dialect: what modelgw-mockllm answers, in each provider's dialect.
 *
 * A request body is parsed once into a gw_mllm_call (model, stream flags,
 * token budget, a seed hashed from every message). The answer is a sequence
 * of words picked from a fixed vocabulary by that seed, so the same prompt
 * always gets the same text, streamed or not. Writers append one complete
 * body, or one stream event (SSE "data: ...\n\n", one NDJSON line or, for
 * Bedrock, AWS event stream messages) to a
 * gw_mllm_buf; the server adds the HTTP framing.
 */
#ifndef GW_MOCKLLM_DIALECT_H
#define GW_MOCKLLM_DIALECT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "mockllm/mllm_http.h"

typedef enum {
    GW_MLLM_OPENAI,
    GW_MLLM_ANTHROPIC,
    GW_MLLM_OLLAMA,
    GW_MLLM_BEDROCK, /* Converse; streamed answers in AWS event stream frames */
    GW_MLLM_GEMINI,  /* the last chat API: the server tests api <= GW_MLLM_GEMINI */
    GW_MLLM_OPENAI_EMBED,
    GW_MLLM_OLLAMA_EMBED,
} gw_mllm_api;

/* The chat API that answers in the shape of a provider dialect family (the
 * gw_phttp_dialect name of a provider table row: "openai", "anthropic",
 * "ollama", "gemini"); false when the mock does not speak it. The server serves every
 * row's path with it. */
bool gw_mllm_chat_api(const char *dialect, gw_mllm_api *out);

enum {
    GW_MLLM_PROMPT_KEEP = 4096,
    GW_MLLM_MAX_INPUTS = 256,
    GW_MLLM_TOOL_ARGS = 2048, /* the generated arguments (or structured answer) */
    GW_MLLM_ARG_PIECE = 8,    /* bytes of arguments per streamed piece */
};

typedef struct {
    gw_mllm_api api;
    bool stream, include_usage, embed_base64;
    char model[256];
    char prompt[GW_MLLM_PROMPT_KEEP]; /* last user text, cut, for rules */
    uint64_t seed;
    int prompt_tokens;
    int max_tokens; /* -1: none given */
    int ntok;       /* words in the answer */
    bool length_cut;
    bool guardrail; /* Bedrock: the answer ends with stopReason guardrail_intervened */
    int dims;
    size_t input_count;
    uint64_t input_seeds[GW_MLLM_MAX_INPUTS];
    char id[40];
    /* A tool call answer (tools given, tool_choice not none, and the last
     * message is not a tool result): one call of the forced tool or the
     * first one, its arguments generated from its JSON Schema. */
    bool tool_call;
    char tool_name[128];
    /* Structured output (OpenAI response_format, Ollama format): the answer
     * text is a JSON document generated from the schema. */
    bool structured;
    char tool_args[GW_MLLM_TOOL_ARGS]; /* the call's arguments or the structured answer */
    size_t tool_args_len;
} gw_mllm_call;

/* Parse a request body. errmsg gets a client-facing reason on GW_E_INVALID_REQUEST.
 * Gemini bodies name no model and no stream flag (both are in the URL): the
 * caller sets c->model and c->stream after parsing. */
gw_err gw_mllm_call_parse(gw_mllm_api api, const char *body, size_t len, gw_mllm_call *c,
                          char *errmsg, size_t errlen);
/* Fix the answer length from the configured token count and the request's limit. */
void gw_mllm_call_plan(gw_mllm_call *c, int tokens, int embed_dims);

/* Piece i of the tool arguments / structured answer (never splits a UTF-8
 * sequence); false when there is none. */
bool gw_mllm_arg_piece(const gw_mllm_call *c, int i, const char **p, size_t *n);

/* Token i of the answer ("word" or " word"). */
const char *gw_mllm_token(const gw_mllm_call *c, int i, bool *leading_space);

const char *gw_mllm_content_type(const gw_mllm_call *c);
bool gw_mllm_full_body(const gw_mllm_call *c, gw_mllm_buf *b);
bool gw_mllm_stream_head(const gw_mllm_call *c, gw_mllm_buf *b);
bool gw_mllm_stream_token(const gw_mllm_call *c, int i, gw_mllm_buf *b);
bool gw_mllm_stream_tail(const gw_mllm_call *c, bool terminator, gw_mllm_buf *b);
/* Gemini's answer blocked by its safety filter: a whole body (finishReason
 * SAFETY, no content), or the stream event that ends a stream so. */
bool gw_mllm_safety_body(const gw_mllm_call *c, gw_mllm_buf *b);
bool gw_mllm_stream_safety(const gw_mllm_call *c, gw_mllm_buf *b);
/* A mid-stream error event (Anthropic "error", OpenAI/Ollama an error object). */
bool gw_mllm_stream_error(const gw_mllm_call *c, gw_mllm_buf *b);

/* Bedrock: an exception message of type (throttlingException, ...) with
 * {"message": msg} in the event stream. */
bool gw_mllm_bedrock_exception(const gw_mllm_call *c, const char *type, const char *msg,
                               gw_mllm_buf *b);

/* Error body for status in the dialect of api. */
bool gw_mllm_error_body(gw_mllm_api api, int status, const char *msg, gw_mllm_buf *b);

#endif
