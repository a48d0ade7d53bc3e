/*
 * eventstream: a pure parser (and a frame writer) for the AWS event stream
 * framing, application/vnd.amazon.eventstream (Bedrock ConverseStream).
 *
 * Feed bytes as they arrive (any split, down to one byte at a time), then
 * take messages until none is left, as sse.c and ndjson.c do. No I/O.
 *
 * A message is: a 12-byte prelude (total length, headers length, both
 * big-endian u32, then the CRC32 of those 8 bytes), the headers, the payload,
 * and the CRC32 of everything before it. A header is a name (u8 length +
 * bytes), a type byte and a value whose size the type gives: 0/1 bool (no
 * bytes), 2 byte (1), 3 short (2), 4 int (4), 5 long (8), 6 bytes and
 * 7 string (u16 length + bytes), 8 timestamp (8), 9 uuid (16).
 *
 * Errors are sticky and named (gw_es_why): a prelude or message CRC that
 * does not match, a length under the 16-byte minimum or headers that do not
 * fit, a header that runs past its block or has an unknown type, more than
 * GW_ES_MAX_HEADERS headers (all GW_E_STREAM_ERROR), and a message longer
 * than max_message_bytes (GW_E_LIMIT, seen from the prelude alone, before
 * its bytes arrive). Unparsed input is bounded by max_message_bytes +
 * GW_ES_FEED_MAX_BYTES: take messages between feeds.
 */
#ifndef GW_PROVIDER_EVENTSTREAM_H
#define GW_PROVIDER_EVENTSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

enum {
    GW_ES_PRELUDE_BYTES = 12,
    GW_ES_MIN_MESSAGE_BYTES = 16,
    GW_ES_MAX_HEADERS = 16,
    GW_ES_FEED_MAX_BYTES = 64 * 1024,
    GW_ES_DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024,
};

/* Header value types. */
typedef enum {
    GW_ES_BOOL_TRUE = 0,
    GW_ES_BOOL_FALSE = 1,
    GW_ES_BYTE = 2,
    GW_ES_SHORT = 3,
    GW_ES_INT = 4,
    GW_ES_LONG = 5,
    GW_ES_BYTES = 6,
    GW_ES_STRING = 7,
    GW_ES_TIMESTAMP = 8,
    GW_ES_UUID = 9,
} gw_es_type;

/* Why the parser stopped (GW_ES_OK while it has not). */
typedef enum {
    GW_ES_OK,
    GW_ES_PRELUDE_CRC,    /* prelude CRC mismatch */
    GW_ES_MESSAGE_CRC,    /* message CRC mismatch */
    GW_ES_BAD_LENGTH,     /* total under 16 bytes, or headers longer than the room */
    GW_ES_BAD_HEADER,     /* a header runs past the block, unknown type, empty name */
    GW_ES_TOO_MANY,       /* more than GW_ES_MAX_HEADERS headers */
    GW_ES_TOO_LONG,       /* message over max_message_bytes */
    GW_ES_FEED_TOO_LARGE, /* fed past the input bound without taking messages */
    GW_ES_NOMEM,
} gw_es_why;

typedef struct {
    const char *name; /* not NUL-terminated */
    size_t name_len;
    gw_es_type type;
    const char *value; /* the value bytes (strings and bytes without their length) */
    size_t value_len;
} gw_es_header;

/* One message; its pointers are valid until the next feed or next call. */
typedef struct {
    gw_es_header headers[GW_ES_MAX_HEADERS];
    size_t header_count;
    const char *payload; /* NUL-terminated; payload_len excludes the NUL */
    size_t payload_len;
} gw_es_message;

typedef struct {
    char *buf;
    size_t len, cap, off; /* off: bytes of buf already taken */
    size_t max_message;
    gw_es_why why;
} gw_es;

void gw_es_init(gw_es *p, size_t max_message_bytes);
void gw_es_cleanup(gw_es *p);

gw_err gw_es_feed(gw_es *p, const char *buf, size_t len);
/* Take the next message: *got true with *m filled, or false when more input
 * is needed. */
gw_err gw_es_next(gw_es *p, gw_es_message *m, bool *got);
/* True when bytes of an unfinished message are pending (truncation at EOF). */
bool gw_es_pending(const gw_es *p);
/* Why the parser stopped; gw_es_why_str names it ("message CRC mismatch"). */
gw_es_why gw_es_error(const gw_es *p);
const char *gw_es_why_str(gw_es_why why);

/* The value of string header name (type 7) in m, NULL when absent. */
const char *gw_es_header_str(const gw_es_message *m, const char *name, size_t *len);

/* CRC32 (IEEE 802.3, as zlib's crc32) of n bytes continuing from crc (0 to start). */
uint32_t gw_es_crc32(uint32_t crc, const void *p, size_t n);

/* Writes one message with string headers (names[i] = values[i]) and payload
 * into out (cap bytes). Returns its length, 0 when it does not fit. For the
 * mock server and tests. */
size_t gw_es_write(char *out, size_t cap, const char *const *names, const char *const *values,
                   size_t header_count, const char *payload, size_t payload_len);

#endif
