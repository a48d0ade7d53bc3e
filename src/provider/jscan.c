/*
 * jscan: allocation-free JSON scanner for a few paths; see jscan.h.
 *
 * Invariants: s->c.p never passes s->c.end; recursion depth <= GW_JSCAN_MAX_DEPTH;
 * match[d] is the set (bit i = field i) of fields whose path starts with the
 * d segments leading to the value being scanned at depth d.
 */
#include "provider/jscan_private.h"

#include <string.h>

typedef struct {
    gw_jcur c;
    gw_jscan_field *f;
    size_t nf;
    size_t plen[GW_JSCAN_MAX_FIELDS]; /* path lengths, counted once per scan */
    unsigned match[GW_JSCAN_MAX_DEPTH + 1];
} scan;

/* false: fall back to jansson */
static bool value(scan *s, int depth);

static int hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    return v;
}

/* One \u escape at p (after the backslash and 'u'); advances past it (and a
 * low surrogate). false for what jansson rejects: \u0000, lone surrogates. */
static bool check_u(gw_jcur *c)
{
    if (c->end - c->p < 4)
        return false;
    int cp = hex4(c->p);
    c->p += 4;
    if (cp <= 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
        return false;
    if (cp < 0xD800 || cp > 0xDBFF)
        return true;
    if (c->end - c->p < 6 || c->p[0] != '\\' || c->p[1] != 'u')
        return false;
    int lo = hex4(c->p + 2);
    c->p += 6;
    return lo >= 0xDC00 && lo <= 0xDFFF;
}

/* Length of the strict UTF-8 sequence at p (as jansson accepts it), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (avail < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return n;
}

/* 1 for the bytes a string body holds as they are: printable ASCII other
 * than the quote and the backslash. */
/* clang-format off */
const unsigned char gw_jscan_plain[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};
/* clang-format on */

/* From the first byte that is not plain (c->p) to the end of the string
 * that opened at start. */
bool gw_jcur_string_rest(gw_jcur *c, const char *start, const char **raw, size_t *len,
                         bool *escaped)
{
    *escaped = false;
    for (;;) {
        if (c->p == c->end)
            return false;
        unsigned char b = (unsigned char)*c->p;
        if (b == '"') {
            *raw = start;
            *len = (size_t)(c->p - start);
            c->p++;
            return true;
        }
        if (b < 0x20)
            return false;
        if (b == '\\') {
            *escaped = true;
            if (++c->p == c->end)
                return false;
            char e = *c->p++;
            if (e == 'u') {
                if (!check_u(c))
                    return false;
            } else if (strchr("\"\\/bfnrt", e) == NULL || e == '\0') {
                return false;
            }
        } else {
            size_t n = utf8_len((const unsigned char *)c->p, (size_t)(c->end - c->p));
            if (n == 0)
                return false;
            c->p += n;
        }
        gw_jcur_plain(c);
    }
}

static bool is_digit(const gw_jcur *c)
{
    return c->p < c->end && *c->p >= '0' && *c->p <= '9';
}

/* Digits from c->p on: their count, and the value of the first 19. */
static size_t digits_at(gw_jcur *c, uint64_t *v)
{
    const char *p = c->p, *e = c->end;
    uint64_t acc = 0;
    size_t n = 0;
    while (p < e && (unsigned)(*p - '0') <= 9) {
        if (++n <= 19)
            acc = acc * 10 + (uint64_t)(*p - '0');
        p++;
    }
    c->p = p;
    *v = acc;
    return n;
}

bool gw_jcur_number(gw_jcur *c, gw_json_kind *kind, int64_t *iv)
{
    const char *start = c->p;
    bool neg = c->p < c->end && *c->p == '-';
    if (neg)
        c->p++;
    if (!is_digit(c))
        return false;
    uint64_t v = 0; /* 19 digits fit; no leading zeros, so digits say the size */
    size_t digits = 1;
    if (*c->p == '0')
        c->p++;
    else
        digits = digits_at(c, &v);
    *kind = GW_JSON_INTEGER;
    *iv = 0;
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        if (!is_digit(c))
            return false;
        uint64_t frac;
        digits_at(c, &frac);
        *kind = GW_JSON_REAL;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E'))
        return false;
    if (c->p - start > 300)
        return false;
    if (*kind == GW_JSON_REAL)
        return true;
    /* jansson's range: strtoll without ERANGE */
    if (digits > 19 || v > (uint64_t)INT64_MAX + (neg ? 1u : 0u))
        return false;
    if (neg)
        *iv = v == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)v;
    else
        *iv = (int64_t)v;
    return true;
}

static bool literal(gw_jcur *c, const char *word, size_t n)
{
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
        return false;
    c->p += n;
    return true;
}

/* ---- validating a value nobody wants ---- */

/* One key and its colon (c->p at the quote). */
static bool key_colon(gw_jcur *c)
{
    const char *k;
    size_t kl;
    bool esc;
    if (c->p == c->end || *c->p != '"' || !gw_jcur_string(c, &k, &kl, &esc) || esc)
        return false;
    gw_jcur_ws(c);
    return c->p < c->end && *c->p++ == ':';
}

/* At '{' or '['; the members' values at depth + 1. */
static bool skip_container(gw_jcur *c, int depth)
{
    char close = *c->p == '{' ? '}' : ']';
    c->p++;
    gw_jcur_ws(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        return true;
    }
    for (;;) {
        if (close == '}' && !key_colon(c))
            return false;
        if (!gw_jcur_skip(c, depth + 1))
            return false;
        gw_jcur_ws(c);
        if (c->p == c->end)
            return false;
        char b = *c->p++;
        if (b == close)
            return true;
        if (b != ',')
            return false;
        gw_jcur_ws(c);
    }
}

bool gw_jcur_skip(gw_jcur *c, int depth)
{
    if (depth > GW_JSCAN_MAX_DEPTH)
        return false;
    gw_jcur_ws(c);
    if (c->p == c->end)
        return false;
    const char *raw;
    size_t len;
    bool esc;
    gw_json_kind kind;
    int64_t iv;
    switch (*c->p) {
    case '{':
    case '[':
        return depth < GW_JSCAN_MAX_DEPTH && skip_container(c, depth);
    case '"':
        return gw_jcur_string(c, &raw, &len, &esc);
    case 't':
        return literal(c, "true", 4);
    case 'f':
        return literal(c, "false", 5);
    case 'n':
        return literal(c, "null", 4);
    default:
        return gw_jcur_number(c, &kind, &iv);
    }
}

bool gw_jcur_take(gw_jcur *c, int depth, gw_jscan_field *f)
{
    if (depth > GW_JSCAN_MAX_DEPTH)
        return false;
    gw_jcur_ws(c);
    if (c->p == c->end)
        return false;
    f->raw = c->p;
    f->raw_len = 0;
    f->escaped = false;
    f->integer = 0;
    switch (*c->p) {
    case '{':
        f->kind = GW_JSON_OBJECT;
        return gw_jcur_skip(c, depth);
    case '[':
        f->kind = GW_JSON_ARRAY;
        return gw_jcur_skip(c, depth);
    case '"':
        f->kind = GW_JSON_STRING;
        return gw_jcur_string(c, &f->raw, &f->raw_len, &f->escaped);
    case 't':
        f->kind = GW_JSON_TRUE;
        f->raw_len = 4;
        return literal(c, "true", 4);
    case 'f':
        f->kind = GW_JSON_FALSE;
        f->raw_len = 5;
        return literal(c, "false", 5);
    case 'n':
        f->kind = GW_JSON_NULL;
        f->raw_len = 4;
        return literal(c, "null", 4);
    default:
        if (!gw_jcur_number(c, &f->kind, &f->integer))
            return false;
        f->raw_len = (size_t)(c->p - f->raw);
        return true;
    }
}

/* ---- the path scanner ---- */

static bool seg_is_index(const char *seg, size_t idx)
{
    if (seg[0] != '#')
        return false;
    size_t v = 0;
    for (const char *q = seg + 1; *q; q++)
        v = v * 10 + (size_t)(*q - '0');
    return v == idx;
}

/* k holds no NUL (string() rejects control characters, escaped keys fall
 * back), so strncmp stops inside seg or after n bytes of both. The first
 * byte is compared inline: most keys differ there. */
static bool seg_is_key(const char *seg, const char *k, size_t n)
{
    if (seg[0] == '#')
        return false;
    if (n == 0)
        return seg[0] == '\0';
    return seg[0] == k[0] && strncmp(seg + 1, k + 1, n - 1) == 0 && seg[n] == '\0';
}

static size_t path_len(const gw_jscan_field *f)
{
    size_t n = 0;
    while (n < GW_JSCAN_MAX_PATH && f->path[n] != NULL)
        n++;
    return n;
}

/* Fields matching the path down to depth+1 through an index or key segment.
 * A key seen twice on a wanted path is a fallback (jansson keeps the last). */
static bool descend(scan *s, int depth, const char *key, size_t klen, size_t idx)
{
    unsigned m = 0;
    if (s->match[depth] == 0) { /* no wanted path runs through here */
        s->match[depth + 1] = 0;
        return true;
    }
    for (size_t i = 0; i < s->nf; i++) {
        if (!(s->match[depth] & (1u << i)) || s->plen[i] <= (size_t)depth)
            continue;
        const char *seg = s->f[i].path[depth];
        if (key ? seg_is_key(seg, key, klen) : seg_is_index(seg, idx)) {
            if (key && (s->f[i].seen_mask & (1u << depth)))
                return false;
            s->f[i].seen_mask |= 1u << depth;
            m |= 1u << i;
        }
    }
    s->match[depth + 1] = m;
    return true;
}

static bool object(scan *s, int depth)
{
    s->c.p++;
    gw_jcur_ws(&s->c);
    if (s->c.p < s->c.end && *s->c.p == '}') {
        s->c.p++;
        return true;
    }
    for (;;) {
        if (s->c.p == s->c.end || *s->c.p != '"')
            return false;
        const char *k;
        size_t kl;
        bool esc;
        if (!gw_jcur_string(&s->c, &k, &kl, &esc) || esc)
            return false;
        gw_jcur_ws(&s->c);
        if (s->c.p == s->c.end || *s->c.p++ != ':')
            return false;
        if (!descend(s, depth, k, kl, 0) || !value(s, depth + 1))
            return false;
        gw_jcur_ws(&s->c);
        if (s->c.p == s->c.end)
            return false;
        char c = *s->c.p++;
        if (c == '}')
            return true;
        if (c != ',')
            return false;
        gw_jcur_ws(&s->c);
    }
}

static bool array(scan *s, int depth)
{
    s->c.p++;
    gw_jcur_ws(&s->c);
    if (s->c.p < s->c.end && *s->c.p == ']') {
        s->c.p++;
        return true;
    }
    for (size_t idx = 0;; idx++) {
        if (!descend(s, depth, NULL, 0, idx) || !value(s, depth + 1))
            return false;
        gw_jcur_ws(&s->c);
        if (s->c.p == s->c.end)
            return false;
        char c = *s->c.p++;
        if (c == ']')
            return true;
        if (c != ',')
            return false;
    }
}

static void record(scan *s, int depth, gw_json_kind kind, const char *raw, size_t len, bool esc,
                   int64_t iv)
{
    if (s->match[depth] == 0)
        return;
    for (size_t i = 0; i < s->nf; i++) {
        if (!(s->match[depth] & (1u << i)) || s->plen[i] != (size_t)depth)
            continue;
        gw_jscan_field *f = &s->f[i];
        f->kind = kind;
        f->raw = raw;
        f->raw_len = len;
        f->escaped = esc;
        f->integer = iv;
    }
}

static bool value(scan *s, int depth)
{
    if (depth > GW_JSCAN_MAX_DEPTH)
        return false;
    if (s->match[depth] == 0) /* no wanted path runs through here: only validate */
        return gw_jcur_skip(&s->c, depth);
    gw_jcur_ws(&s->c);
    if (s->c.p == s->c.end)
        return false;
    const char *start = s->c.p;
    if (*start == '{' || *start == '[') {
        bool obj = *start == '{';
        record(s, depth, obj ? GW_JSON_OBJECT : GW_JSON_ARRAY, start, 0, false, 0);
        return depth < GW_JSCAN_MAX_DEPTH && (obj ? object(s, depth) : array(s, depth));
    }
    gw_jscan_field v;
    if (!gw_jcur_take(&s->c, depth, &v))
        return false;
    record(s, depth, v.kind, v.raw, v.raw_len, v.escaped, v.integer);
    return true;
}

gw_jscan_result gw_jscan(const char *doc, size_t len, gw_jscan_field *fields, size_t n)
{
    if (n > GW_JSCAN_MAX_FIELDS)
        return GW_JSCAN_FALLBACK;
    scan s = {.c = {.p = doc, .end = doc + len}, .f = fields, .nf = n};
    for (size_t i = 0; i < n; i++) {
        gw_jfield_clear(&fields[i]);
        s.plen[i] = path_len(&fields[i]);
        if (s.plen[i] == 0)
            return GW_JSCAN_FALLBACK; /* the root itself is not a value to pull */
    }
    s.match[0] = n == 0 ? 0 : (1u << n) - 1;
    gw_jcur_ws(&s.c);
    if (s.c.p == s.c.end || (*s.c.p != '{' && *s.c.p != '['))
        return GW_JSCAN_FALLBACK;
    if (!value(&s, 0))
        return GW_JSCAN_FALLBACK;
    gw_jcur_ws(&s.c);
    return s.c.p == s.c.end ? GW_JSCAN_OK : GW_JSCAN_FALLBACK;
}

static size_t put_utf8(char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t gw_jscan_unescape(const char *raw, size_t raw_len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < raw_len;) {
        const char *bs = memchr(raw + i, '\\', raw_len - i);
        size_t run = bs ? (size_t)(bs - (raw + i)) : raw_len - i;
        memcpy(out + o, raw + i, run);
        o += run;
        i += run;
        if (i >= raw_len)
            break;
        char e = raw[i + 1];
        i += 2;
        switch (e) {
        case 'b':
            out[o++] = '\b';
            break;
        case 'f':
            out[o++] = '\f';
            break;
        case 'n':
            out[o++] = '\n';
            break;
        case 'r':
            out[o++] = '\r';
            break;
        case 't':
            out[o++] = '\t';
            break;
        case 'u': {
            unsigned cp = (unsigned)hex4(raw + i);
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) { /* validated: a low surrogate follows */
                unsigned lo = (unsigned)hex4(raw + i + 2);
                i += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            o += put_utf8(out + o, cp);
            break;
        }
        default: /* " \ / */
            out[o++] = e;
            break;
        }
    }
    out[o] = '\0';
    return o;
}
