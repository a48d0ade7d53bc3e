/* provider_gemini: the Google Gemini API dialect table and URL; see provider_gemini.c. */
#ifndef GW_PROVIDER_GEMINI_H
#define GW_PROVIDER_GEMINI_H

#include "provider/provider_http.h"
#include "provider/provider_table.h"

extern const gw_phttp_dialect gw_gemini_dialect;

/* The thoughtSignature Google documents for replayed function calls whose
 * real signature was not kept: sent on the first call of a model turn when
 * the model is of the Gemini 3 family, which refuses such calls without one. */
#define GW_GEMINI_SKIP_SIGNATURE "skip_thought_signature_validator"

/* {base_url}/v1beta/models/{model}:generateContent, or
 * :streamGenerateContent?alt=sse when streaming. A base_url already ending in
 * /v1beta is not doubled; a model given as "models/NAME" loses the prefix;
 * the model is percent-encoded (it never changes the URL's structure). */
gw_err gw_gemini_url(const gw_provider_kind_info *k, const gw_deployment *d, bool stream, char *out,
                     size_t len);

/* The normalised finish reason of a Gemini finishReason ("STOP" -> "stop",
 * "MAX_TOKENS" -> "length", the safety reasons -> "content_filter", anything
 * else -> "stop"); *blocked tells a safety reason (SAFETY, RECITATION,
 * BLOCKLIST, PROHIBITED_CONTENT, SPII, IMAGE_SAFETY). */
const char *gw_gemini_finish(const char *raw, size_t len, bool *blocked);

/* A google.rpc.RetryInfo retryDelay ("41s", "0.5s") found in an error body,
 * in ms; -1 when there is none (or it is over a day). */
int64_t gw_gemini_retry_delay_ms(const char *body, size_t len);

#endif
