/*
 * mllm_http: the HTTP/1.1 request parser and output buffer of modelgw-mockllm.
 *
 * The parser is pure (no I/O): given the bytes received so far on a
 * connection, it reports whether one complete request is there and, if so,
 * its method, path, headers and body as pointers into those bytes, plus how
 * many bytes it used (pipelined requests follow). Only Content-Length bodies
 * are accepted (a chunked request body is refused: no client of the mock needs
 * it). Limits: GW_MLLM_MAX_HEAD_BYTES of request line + headers,
 * GW_MLLM_MAX_HEADERS headers, GW_MLLM_MAX_BODY_BYTES of body; crossing one is
 * GW_E_LIMIT, malformed syntax is GW_E_INVALID_REQUEST.
 *
 * gw_mllm_buf is a growable byte buffer with a hard cap used to build
 * responses; appends past the cap fail and set a sticky overflow flag.
 */
#ifndef GW_MOCKLLM_HTTP_H
#define GW_MOCKLLM_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

enum {
    GW_MLLM_MAX_HEAD_BYTES = 16 * 1024,
    GW_MLLM_MAX_HEADERS = 64,
    GW_MLLM_MAX_BODY_BYTES = 8 * 1024 * 1024,
};

typedef struct {
    const char *name, *value;
    size_t name_len, value_len;
} gw_mllm_header;

typedef struct {
    const char *method, *path, *query;
    size_t method_len, path_len, query_len;
    int minor_version;
    gw_mllm_header headers[GW_MLLM_MAX_HEADERS];
    size_t header_count;
    const char *body;
    size_t body_len;
    bool keep_alive;
    size_t total_len; /* bytes of this request in the input */
} gw_mllm_req;

/* *complete false: need more bytes. On GW_OK with *complete, *r is filled. */
gw_err gw_mllm_parse(const char *buf, size_t len, gw_mllm_req *r, bool *complete);

/* Value of header name (case-insensitive), NUL-free pointer + length; NULL if absent. */
const char *gw_mllm_header_get(const gw_mllm_req *r, const char *name, size_t *len);

typedef struct {
    char *p;
    size_t len, cap, max;
    bool overflow;
} gw_mllm_buf;

void gw_mllm_buf_init(gw_mllm_buf *b, size_t max_bytes);
void gw_mllm_buf_cleanup(gw_mllm_buf *b);
bool gw_mllm_buf_put(gw_mllm_buf *b, const char *s, size_t n);
bool gw_mllm_buf_puts(gw_mllm_buf *b, const char *s);
bool gw_mllm_buf_printf(gw_mllm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s[0..n) as the inside of a JSON string (no quotes). */
bool gw_mllm_buf_json_str(gw_mllm_buf *b, const char *s, size_t n);

#endif
