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

#include "provider/jscan.h"

typedef struct {
    const char *p, *end;
} gw_jcur;

static inline void gw_jcur_ws(gw_jcur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

/* At the opening quote: sets the body span (escapes left in) and whether it
 * holds a backslash; false on anything jansson rejects. */
bool gw_jcur_string(gw_jcur *c, const char **raw, size_t *len, bool *escaped);

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
