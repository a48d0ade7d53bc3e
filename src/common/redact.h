/*
 * redact: scrub credentials out of text that came from outside (provider
 * error bodies, echoed headers) before it reaches a log line, an error
 * message or Kafka.
 *
 * Scrubbed: the exact configured secret (when given, at least 4 bytes),
 * "Bearer <token>" (any case), "sk-..." style keys, and the values of
 * x-api-key / api_key / api-key / authorization fields written as a header
 * ("x-api-key: v"), JSON ("\"x-api-key\": \"v\"") or a query ("api_key=v").
 * Each is replaced by GW_REDACTED. The whole input is scrubbed first, then the
 * output is cut to fit, never inside a UTF-8 sequence, so a cut can never
 * expose the tail of a secret.
 */
#ifndef GW_COMMON_REDACT_H
#define GW_COMMON_REDACT_H

#include <stddef.h>

#define GW_REDACTED "[REDACTED]"

/*
 * Write the scrubbed form of src[0..len) into out (cap bytes including the
 * terminating NUL; cap >= 1). secret may be NULL. Returns the length written.
 */
size_t gw_redact(const char *src, size_t len, const char *secret, char *out, size_t cap);

#endif
