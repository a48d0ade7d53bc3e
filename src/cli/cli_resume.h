/*
 * cli_resume: what a resumed `modelgw-cli batch` knows from its files.
 *
 * OUTPUT.jsonl holds one result per line; a line cut short by a kill has no
 * trailing newline and is dropped (the file is truncated to valid_len), so
 * its custom_id is asked again. OUTPUT.jsonl.state holds the batch_id on its
 * first line ({"batch_id": "...", "version": 1}) and then one JSON string per
 * line, each a custom_id that was handed to the producer (for the summary; a
 * custom_id missing from OUTPUT is published again under the same
 * deterministic request id whether or not it was published before).
 *
 * Pure: parses buffers the caller read; no I/O.
 */
#ifndef GW_CLI_RESUME_H
#define GW_CLI_RESUME_H

#include <stddef.h>

#include "cli/cli_strset.h"
#include "common/err.h"

#define GW_CLI_BATCH_ID_MAX 128

/* Adds the custom_id of every complete line of an output file to done.
 * *valid_len: bytes up to the end of the last complete, parseable line.
 * *bad_lines: complete lines that are not result lines (they stop the scan:
 * valid_len ends before the first of them, so a corrupt file is truncated
 * there rather than silently trusted). Duplicated custom_ids are counted in
 * *dup_lines and kept once. */
gw_err gw_cli_resume_scan_output(const char *data, size_t len, gw_cli_strset *done,
                                 size_t *valid_len, size_t *bad_lines, size_t *dup_lines);

/* Parses a state file: batch_id (NUL-terminated into batch_id[GW_CLI_BATCH_ID_MAX])
 * and the published custom_ids (may be NULL to skip). A partial last line is
 * ignored. GW_E_INVALID_REQUEST when the first line is not a state header. */
gw_err gw_cli_resume_parse_state(const char *data, size_t len, char *batch_id,
                                 gw_cli_strset *published);

/* The header line (with newline), malloc'd. */
char *gw_cli_resume_state_header(const char *batch_id);
/* A published-id line (with newline), malloc'd. */
char *gw_cli_resume_state_line(const char *custom_id);

/* A batch id is 1..GW_CLI_BATCH_ID_MAX-1 bytes of [A-Za-z0-9._:-]. */
int gw_cli_resume_batch_id_ok(const char *batch_id);

#endif
