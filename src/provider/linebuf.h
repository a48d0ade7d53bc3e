/*
 * linebuf: the one bounded line splitter the stream parsers share (SSE in
 * sse.c, NDJSON in ndjson.c).
 *
 * Feed bytes as they arrive (any split, down to one byte at a time), then take
 * complete lines until none is left. No I/O, no callbacks. A line is handed
 * out without its end of line, NUL-terminated in place, valid until the next
 * feed.
 *
 * Ends of line: LF always. With cr_ends_line (SSE) a lone CR also ends a
 * line and CRLF counts once, even when the LF comes in a later feed. Without
 * it (NDJSON) a CR right before the LF is dropped and any other CR is part of
 * the line. With skip_bom a UTF-8 BOM at the very start of the input is
 * skipped (the splitter waits while the first bytes could still be one).
 * Empty lines are returned like any other (the caller decides what they
 * mean).
 *
 * Limits: a line longer than max_line bytes (without its end of line) is
 * GW_E_LIMIT, whether it is complete or still pending. Unparsed input is
 * bounded by max_line + GW_LINEBUF_FEED_MAX_BYTES (GW_E_LIMIT from the feed):
 * take lines between feeds. Errors are sticky.
 *
 * Invariant: pos <= len <= cap; the input is compacted on each feed, so
 * memory stays proportional to what is pending, never to the stream.
 */
#ifndef GW_PROVIDER_LINEBUF_H
#define GW_PROVIDER_LINEBUF_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

enum { GW_LINEBUF_FEED_MAX_BYTES = 1 << 20 };

typedef struct {
    char *in;
    size_t len, pos, cap;
    size_t max_line;
    bool cr_ends_line; /* a lone CR ends a line (SSE) */
    bool skip_lf;      /* the last line ended with CR at the end of a feed */
    bool bom_done;     /* the first bytes were checked for a BOM (or no check) */
    gw_err err;        /* sticky */
} gw_linebuf;

void gw_linebuf_init(gw_linebuf *b, size_t max_line_bytes, bool cr_ends_line, bool skip_bom);
void gw_linebuf_cleanup(gw_linebuf *b);

/* Append bytes. GW_E_LIMIT when too much input is pending, GW_E_NOMEM. */
gw_err gw_linebuf_feed(gw_linebuf *b, const char *buf, size_t len);

/*
 * Take the next complete line: *got true with *line (NUL-terminated, without
 * its end of line) and *len, or *got false when more input is needed.
 * GW_E_LIMIT when a line is over the limit.
 */
gw_err gw_linebuf_next(gw_linebuf *b, char **line, size_t *len, bool *got);

/* The bytes of the unfinished line (for truncation checks at EOF). */
const char *gw_linebuf_rest(const gw_linebuf *b, size_t *len);

#endif
