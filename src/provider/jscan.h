/*
 * jscan: a bounded, allocation-free JSON scanner that pulls a few values out
 * of one small document (a streamed delta event) without building a tree.
 *
 * The caller names the values it wants by path ("choices", "#0", "delta",
 * "content": object keys, or "#N" for array index N). gw_jscan validates the
 * whole document and reports, for each path, whether it was present, its
 * type and its raw text (string bodies still escaped, numbers as written).
 * gw_jscan_unescape then decodes a string body.
 *
 * The scanner is a fast path next to jansson, never a replacement: it
 * answers GW_JSCAN_FALLBACK for anything it does not decide exactly as
 * jansson's json_loadb(flags 0) would: any syntax error, a top level that is
 * not an object or array, nesting deeper than GW_JSCAN_MAX_DEPTH, a number
 * with an exponent, an integer beyond int64 or a real of more than 300
 * characters (jansson's overflow errors), a string jansson rejects (control
 * character, bad escape, \u0000, lone surrogate, invalid UTF-8), an escaped
 * key, or a key of a wanted path seen twice in one object (jansson keeps the
 * last). The caller then parses with jansson,
 * which gives the error or the answer. So on GW_JSCAN_OK the values are
 * exactly those jansson would give.
 *
 * No I/O, no allocation; input bounded by the caller (it is one event).
 */
#ifndef GW_PROVIDER_JSCAN_H
#define GW_PROVIDER_JSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { GW_JSCAN_MAX_DEPTH = 32, GW_JSCAN_MAX_PATH = 6, GW_JSCAN_MAX_FIELDS = 12 };

typedef enum { GW_JSCAN_OK, GW_JSCAN_FALLBACK } gw_jscan_result;

typedef enum {
    GW_JSON_ABSENT,
    GW_JSON_STRING,
    GW_JSON_INTEGER,
    GW_JSON_REAL,
    GW_JSON_TRUE,
    GW_JSON_FALSE,
    GW_JSON_NULL,
    GW_JSON_OBJECT,
    GW_JSON_ARRAY,
} gw_json_kind;

typedef struct {
    const char *path[GW_JSCAN_MAX_PATH]; /* in: segments, NULL-terminated */
    gw_json_kind kind;                   /* out */
    const char *raw;                     /* out: string body (between quotes) or number */
    size_t raw_len;
    bool escaped;       /* out: a string body holding backslashes */
    int64_t integer;    /* out: the value of a GW_JSON_INTEGER (0 otherwise) */
    unsigned seen_mask; /* internal: depths whose key was seen */
} gw_jscan_field;

/* Scan doc[0..len) and fill fields[0..n) (n <= GW_JSCAN_MAX_FIELDS). */
gw_jscan_result gw_jscan(const char *doc, size_t len, gw_jscan_field *fields, size_t n);

/*
 * Decode a string body that gw_jscan accepted into out (room for raw_len + 1
 * bytes; the decoded text is never longer). Returns the decoded length; out
 * is NUL-terminated.
 */
size_t gw_jscan_unescape(const char *raw, size_t raw_len, char *out);

#endif
