/*
 * cli_json: JSON forms of the wire records for the command-line tools
 * (`tail` prints records as JSON lines, `ask --json` prints a response,
 * `produce` reads requests as JSON lines).
 *
 * The JSON form uses the schema's field names (docs/schemas.md); enums are
 * their Avro symbol names, absent optional fields are omitted on output and
 * may be omitted or null on input. Pure: no I/O.
 */
#ifndef GW_CLI_JSON_H
#define GW_CLI_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "common/arena.h"
#include "common/err.h"
#include "model/model.h"

json_t *gw_cli_json_response(const gw_response *r);
json_t *gw_cli_json_chunk(const gw_chunk *c);
json_t *gw_cli_json_usage(const gw_usage_event *u);

/* Parse one InferenceRequest in JSON form. Fields left out keep what *req
 * held (the caller fills defaults first). messages may also be given as a
 * plain "prompt" string. Errors: GW_E_INVALID_REQUEST with a reason in err,
 * GW_E_NOMEM. `priority` (if present) is copied into priority_out
 * (may be NULL) and is not part of the request. */
gw_err gw_cli_json_request(const char *text, size_t len, gw_arena *a, gw_request *req,
                           char *priority_out, size_t priority_len, char *err, size_t errlen);

#endif
