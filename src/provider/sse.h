/*
 * sse: a pure parser for Server-Sent Events (text/event-stream).
 *
 * Feed bytes as they arrive (any split, down to one byte at a time), then take
 * events until none is left, in the style of hiredis' redisReaderFeed /
 * redisReaderGetReply. No I/O, no callbacks.
 *
 * Follows the WHATWG event-stream rules: lines end with CRLF, LF or CR; a line
 * starting with ':' is a comment; "field: value" drops one leading space of
 * the value; "data" lines of one event are joined with '\n'; "event" names
 * the event type; "id" sets the last event id (ignored when it holds NUL);
 * "retry" sets the reconnection time when it is all digits; unknown fields
 * are ignored; a blank line dispatches the event, unless no data line was
 * seen. A UTF-8 BOM at the start of the stream is skipped.
 *
 * Lines are split by linebuf.c (shared with the NDJSON splitter).
 *
 * Limits: the data of one event, one line, the event name and the id are
 * bounded by the caller's max_event_bytes (GW_E_LIMIT when crossed; the
 * parser is then in an error state and stays there). Unparsed input is bounded
 * by max_event_bytes + GW_SSE_FEED_MAX_BYTES: take events between feeds.
 *
 * Invariant: data_len <= max_event.
 */
#ifndef GW_PROVIDER_SSE_H
#define GW_PROVIDER_SSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "provider/linebuf.h"

enum { GW_SSE_FEED_MAX_BYTES = GW_LINEBUF_FEED_MAX_BYTES, GW_SSE_NAME_MAX = 256 };

typedef struct {
    const char *event; /* "message" when the stream named none */
    const char *data;  /* NUL-terminated; data_len excludes the NUL */
    size_t data_len;
    const char *id; /* last event id so far ("" if none) */
} gw_sse_event;

typedef struct {
    gw_linebuf lines; /* unparsed input */
    char *data;       /* data lines of the event being built */
    size_t data_len, data_cap;
    bool has_data;
    char event[GW_SSE_NAME_MAX];
    char id[GW_SSE_NAME_MAX];
    char out_event[GW_SSE_NAME_MAX];
    int64_t retry_ms; /* -1 until a valid retry field */
    size_t max_event;
    gw_err err; /* sticky */
} gw_sse;

void gw_sse_init(gw_sse *p, size_t max_event_bytes);
void gw_sse_cleanup(gw_sse *p);

/* Append bytes. GW_E_LIMIT when too much input is pending, GW_E_NOMEM. */
gw_err gw_sse_feed(gw_sse *p, const char *buf, size_t len);

/*
 * Take the next complete event. Sets *got to true and fills *ev (pointers
 * valid until the next call on p), or sets *got to false when more input is
 * needed. Returns GW_E_LIMIT when an event or line is over the limit.
 */
gw_err gw_sse_next(gw_sse *p, gw_sse_event *ev, bool *got);

/* True when bytes of an unfinished line or event are pending (truncation at EOF). */
bool gw_sse_pending(const gw_sse *p);

/* Reconnection time from the stream's retry field, -1 when none. */
int64_t gw_sse_retry_ms(const gw_sse *p);

#endif
