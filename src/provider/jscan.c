/*
 * jscan: allocation-free JSON scanner for a few paths; see jscan.h.
 *
 * Invariants: s->p never passes s->end; recursion depth <= GW_JSCAN_MAX_DEPTH;
 * match[d] is the set (bit i = field i) of fields whose path starts with the
 * d segments leading to the value being scanned at depth d.
 */
#include "provider/jscan.h"

#include <string.h>

typedef struct {
    const char *p, *end;
    gw_jscan_field *f;
    size_t nf;
    size_t plen[GW_JSCAN_MAX_FIELDS]; /* path lengths, counted once per scan */
    unsigned match[GW_JSCAN_MAX_DEPTH + 1];
} scan;

/* false: fall back to jansson */
static bool value(scan *s, int depth);

static void ws(scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

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
static bool check_u(scan *s)
{
    if (s->end - s->p < 4)
        return false;
    int cp = hex4(s->p);
    s->p += 4;
    if (cp <= 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
        return false;
    if (cp < 0xD800 || cp > 0xDBFF)
        return true;
    if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u')
        return false;
    int lo = hex4(s->p + 2);
    s->p += 6;
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

/* At the opening quote. Sets the body span; false on anything jansson rejects. */
static bool string(scan *s, const char **raw, size_t *len, bool *escaped)
{
    s->p++;
    const char *start = s->p;
    *escaped = false;
    while (s->p < s->end) {
        unsigned char c = (unsigned char)*s->p;
        if (c == '"') {
            *raw = start;
            *len = (size_t)(s->p - start);
            s->p++;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c == '\\') {
            *escaped = true;
            if (++s->p == s->end)
                return false;
            char e = *s->p++;
            if (e == 'u') {
                if (!check_u(s))
                    return false;
            } else if (strchr("\"\\/bfnrt", e) == NULL || e == '\0') {
                return false;
            }
            continue;
        }
        if (c < 0x80) {
            s->p++;
            continue;
        }
        size_t n = utf8_len((const unsigned char *)s->p, (size_t)(s->end - s->p));
        if (n == 0)
            return false;
        s->p += n;
    }
    return false;
}

static bool is_digit(const scan *s)
{
    return s->p < s->end && *s->p >= '0' && *s->p <= '9';
}

/* A number without exponent; integers up to 18 digits, reals up to 300 chars. */
static bool number(scan *s, gw_json_kind *kind, int64_t *iv)
{
    const char *start = s->p;
    bool neg = s->p < s->end && *s->p == '-';
    if (neg)
        s->p++;
    if (!is_digit(s))
        return false;
    int64_t v = 0;
    size_t digits = 0;
    if (*s->p == '0') {
        s->p++;
        digits = 1;
    } else {
        while (is_digit(s)) {
            if (++digits <= 18)
                v = v * 10 + (*s->p - '0');
            s->p++;
        }
    }
    *kind = GW_JSON_INTEGER;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (!is_digit(s))
            return false;
        while (is_digit(s))
            s->p++;
        *kind = GW_JSON_REAL;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E'))
        return false;
    if (*kind == GW_JSON_INTEGER && digits > 18)
        return false;
    if (s->p - start > 300)
        return false;
    *iv = neg ? -v : v;
    return true;
}

static bool literal(scan *s, const char *word, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return false;
    s->p += n;
    return true;
}

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
    s->p++;
    ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return true;
    }
    for (;;) {
        if (s->p == s->end || *s->p != '"')
            return false;
        const char *k;
        size_t kl;
        bool esc;
        if (!string(s, &k, &kl, &esc) || esc)
            return false;
        ws(s);
        if (s->p == s->end || *s->p++ != ':')
            return false;
        if (!descend(s, depth, k, kl, 0) || !value(s, depth + 1))
            return false;
        ws(s);
        if (s->p == s->end)
            return false;
        char c = *s->p++;
        if (c == '}')
            return true;
        if (c != ',')
            return false;
        ws(s);
    }
}

static bool array(scan *s, int depth)
{
    s->p++;
    ws(s);
    if (s->p < s->end && *s->p == ']') {
        s->p++;
        return true;
    }
    for (size_t idx = 0;; idx++) {
        if (!descend(s, depth, NULL, 0, idx) || !value(s, depth + 1))
            return false;
        ws(s);
        if (s->p == s->end)
            return false;
        char c = *s->p++;
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
    ws(s);
    if (s->p == s->end)
        return false;
    const char *start = s->p;
    switch (*s->p) {
    case '{':
        record(s, depth, GW_JSON_OBJECT, start, 0, false, 0);
        return depth < GW_JSCAN_MAX_DEPTH && object(s, depth);
    case '[':
        record(s, depth, GW_JSON_ARRAY, start, 0, false, 0);
        return depth < GW_JSCAN_MAX_DEPTH && array(s, depth);
    case '"': {
        const char *raw;
        size_t len;
        bool esc;
        if (!string(s, &raw, &len, &esc))
            return false;
        record(s, depth, GW_JSON_STRING, raw, len, esc, 0);
        return true;
    }
    case 't':
        record(s, depth, GW_JSON_TRUE, start, 4, false, 0);
        return literal(s, "true", 4);
    case 'f':
        record(s, depth, GW_JSON_FALSE, start, 5, false, 0);
        return literal(s, "false", 5);
    case 'n':
        record(s, depth, GW_JSON_NULL, start, 4, false, 0);
        return literal(s, "null", 4);
    default: {
        gw_json_kind kind;
        int64_t iv;
        if (!number(s, &kind, &iv))
            return false;
        record(s, depth, kind, start, (size_t)(s->p - start), false, iv);
        return true;
    }
    }
}

gw_jscan_result gw_jscan(const char *doc, size_t len, gw_jscan_field *fields, size_t n)
{
    if (n > GW_JSCAN_MAX_FIELDS)
        return GW_JSCAN_FALLBACK;
    scan s = {.p = doc, .end = doc + len, .f = fields, .nf = n};
    for (size_t i = 0; i < n; i++) {
        fields[i].kind = GW_JSON_ABSENT;
        fields[i].raw = NULL;
        fields[i].raw_len = 0;
        fields[i].escaped = false;
        fields[i].integer = 0;
        fields[i].seen_mask = 0;
        s.plen[i] = path_len(&fields[i]);
        if (s.plen[i] == 0)
            return GW_JSCAN_FALLBACK; /* the root itself is not a value to pull */
    }
    s.match[0] = n == 0 ? 0 : (1u << n) - 1;
    ws(&s);
    if (s.p == s.end || (*s.p != '{' && *s.p != '['))
        return GW_JSCAN_FALLBACK;
    if (!value(&s, 0))
        return GW_JSCAN_FALLBACK;
    ws(&s);
    return s.p == s.end ? GW_JSCAN_OK : GW_JSCAN_FALLBACK;
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
