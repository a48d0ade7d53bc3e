/*
 * cli_json: the `produce` line of modelgw-cli: one InferenceRequest in the
 * codec's JSON form (codec/json.h, docs/schemas.md) plus two CLI-only keys.
 *
 * `"prompt": "..."` is a shorthand for one user message (not together with
 * `messages`); `"priority"` (high, normal or low) picks the tier topic and is
 * not part of the request. Everything else is the codec's: schema field names,
 * defaults for absent fields, unknown keys and wrong types rejected. A request
 * must carry `messages` or `prompt`, and every message a `content`. Records
 * printed by the CLI (`tail`, `ask --json`) use the codec's to-JSON functions
 * directly. Pure: no I/O.
 */
#ifndef GW_CLI_JSON_H
#define GW_CLI_JSON_H

#include <stddef.h>

#include "common/arena.h"
#include "common/err.h"
#include "model/model.h"

/* Parse one produce line (len bytes) into *req (its previous contents are
 * replaced by the schema defaults first). Errors: GW_E_INVALID_REQUEST with a
 * reason naming the field in err, GW_E_NOMEM. `priority` (if present) is
 * copied into priority_out (may be NULL). */
gw_err gw_cli_json_request(const char *text, size_t len, gw_arena *a, gw_request *req,
                           char *priority_out, size_t priority_len, char *err, size_t errlen);

#endif
