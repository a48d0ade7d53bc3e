/*
 * jscan_private: the lexical layer of jscan, shared with the dialect fast
 * paths built on it (openai_scan). A cursor over one document and the
 * validating readers of a string, a number and a whole value; each accepts
 * exactly what jscan accepts (jscan.h: what jansson's json_loadb, flags 0,
 * would accept, minus the cases it leaves to jansson) and returns false for
 * everything else, so a fast path built from them falls back where jscan
 * would.
 *
 * Invariant: c->p never passes c->end.
 */
#ifndef GW_PROVIDER_JSCAN_PRIVATE_H
#define GW_PROVIDER_JSCAN_PRIVATE_H

#include <string.h>

#include "provider/jscan.h"

typedef struct {
    const char *p, *end;
} gw_jcur;

/* A field as nothing was found for it yet (its path is kept). */
static inline void gw_jfield_clear(gw_jscan_field *f)
{
    f->kind = GW_JSON_ABSENT;
    f->raw = NULL;
    f->raw_len = 0;
    f->escaped = false;
    f->integer = 0;
    f->seen_mask = 0;
}

static inline void gw_jcur_ws(gw_jcur *c)
{
    if (c->p < c->end && (unsigned char)*c->p > ' ') /* the usual case: none */
        return;
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

/* 1 for the bytes a string body holds as they are: printable ASCII other
 * than the quote and the backslash. */
extern const unsigned char gw_jscan_plain[256];

/* Skips the plain bytes at c->p: eight at a time (a word test for a byte
 * under 0x20, at or over 0x80, a quote or a backslash; the lowest flagged
 * byte is always a real one, borrows only flag bytes above it), the last
 * few byte by byte. */
static inline void gw_jcur_plain(gw_jcur *c)
{
    const unsigned char *p = (const unsigned char *)c->p, *e = (const unsigned char *)c->end;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    while (e - p >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
        uint64_t special =
            (((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((b - ones) & ~b) | x) & highs;
        if (special != 0) {
            c->p = (const char *)p + (__builtin_ctzll(special) >> 3);
            return;
        }
        p += 8;
    }
#endif
    while (p < e && gw_jscan_plain[*p])
        p++;
    c->p = (const char *)p;
}

bool gw_jcur_string_rest(gw_jcur *c, const char *start, const char **raw, size_t *len,
                         bool *escaped);

/* At the opening quote: sets the body span (escapes left in) and whether it
 * holds a backslash; false on anything jansson rejects. Inline for the
 * usual string of plain bytes; the rest out of line. */
static inline bool gw_jcur_string(gw_jcur *c, const char **raw, size_t *len, bool *escaped)
{
    const char *start = ++c->p;
    gw_jcur_plain(c);
    if (c->p < c->end && *c->p == '"') {
        *raw = start;
        *len = (size_t)(c->p - start);
        *escaped = false;
        c->p++;
        return true;
    }
    return gw_jcur_string_rest(c, start, raw, len, escaped);
}

/* A number without exponent: an integer within int64 (*iv its value), as
 * jansson reads it, or a real of up to 300 characters (*iv 0). */
bool gw_jcur_number(gw_jcur *c, gw_json_kind *kind, int64_t *iv);

/* Validates one value (leading whitespace skipped) at nesting depth (the
 * number of containers around it; containers at GW_JSCAN_MAX_DEPTH and any
 * value beyond it fail). Keys holding an escape fail, as in gw_jscan. */
bool gw_jcur_skip(gw_jcur *c, int depth);

/* Reads one value at depth into f (kind, raw, raw_len, escaped, integer as
 * gw_jscan records them; a container is validated whole, raw at its first
 * byte, raw_len 0). */
bool gw_jcur_take(gw_jcur *c, int depth, gw_jscan_field *f);

#endif
