/*
 * ndjson: a pure splitter for newline-delimited JSON streams (Ollama).
 *
 * Feed bytes as they arrive, then take complete lines until none is left.
 * Lines end with LF; a CR before the LF is dropped; blank lines are skipped.
 * The parser does not parse JSON: each line is handed to the caller as is.
 *
 * Lines are split by linebuf.c (shared with the SSE parser).
 *
 * Limits: a line longer than max_line_bytes is GW_E_LIMIT (sticky). Unparsed
 * input is bounded by max_line_bytes + GW_NDJSON_FEED_MAX_BYTES: take lines
 * between feeds.
 */
#ifndef GW_PROVIDER_NDJSON_H
#define GW_PROVIDER_NDJSON_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "provider/linebuf.h"

enum { GW_NDJSON_FEED_MAX_BYTES = GW_LINEBUF_FEED_MAX_BYTES };

typedef struct {
    gw_linebuf lines;
} gw_ndjson;

void gw_ndjson_init(gw_ndjson *p, size_t max_line_bytes);
void gw_ndjson_cleanup(gw_ndjson *p);

gw_err gw_ndjson_feed(gw_ndjson *p, const char *buf, size_t len);

/*
 * Take the next line: *got true with *line (NUL-terminated, valid until the
 * next call on p) and *len, or *got false when more input is needed.
 */
gw_err gw_ndjson_next(gw_ndjson *p, const char **line, size_t *len, bool *got);

/* True when bytes of an unfinished line are pending (truncation at EOF). */
bool gw_ndjson_pending(const gw_ndjson *p);

#endif
