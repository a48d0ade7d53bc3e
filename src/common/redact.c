/*
 * redact: credential scrubbing; see redact.h. A single left-to-right scan:
 * at each position try the patterns in order, emit GW_REDACTED for a match
 * and skip it, else copy one byte. Output stops growing at cap - 1.
 */
#include "common/redact.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

typedef struct {
    char *out;
    size_t cap, len;
} sink;

static void put(sink *s, const char *p, size_t n)
{
    size_t room = s->cap - 1 - s->len;
    if (n > room)
        n = room;
    memcpy(s->out + s->len, p, n);
    s->len += n;
}

static bool token_char(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '+' || c == '/' ||
           c == '=';
}

static size_t token_len(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && token_char((unsigned char)p[i]))
        i++;
    return i;
}

/* "Bearer <token>": length of the whole match, 0 if none. */
static size_t match_bearer(const char *p, size_t n)
{
    if (n < 8 || strncasecmp(p, "bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\t'))
        return 0;
    size_t i = 7;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    size_t t = token_len(p + i, n - i);
    return t > 0 ? i + t : 0;
}

static size_t match_sk(const char *src, size_t pos, size_t n)
{
    const char *p = src + pos;
    if (n < 9 || p[0] != 's' || p[1] != 'k' || p[2] != '-')
        return 0;
    if (pos > 0 && (isalnum((unsigned char)src[pos - 1]) || src[pos - 1] == '-'))
        return 0;
    size_t t = token_len(p + 3, n - 3);
    return t >= 6 ? 3 + t : 0;
}

/* key name, optional quote, separators (: or =), optional quote, value. */
static size_t match_keyed(const char *p, size_t n)
{
    static const char *const keys[] = {"x-api-key", "api_key", "api-key", "authorization"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        size_t kl = strlen(keys[k]);
        if (n <= kl || strncasecmp(p, keys[k], kl) != 0)
            continue;
        size_t i = kl;
        if (i < n && p[i] == '"')
            i++;
        size_t sep = i;
        while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == ':' || p[i] == '='))
            i++;
        if (i == sep)
            continue;
        if (i < n && p[i] == '"')
            i++;
        size_t b = match_bearer(p + i, n - i);
        if (b > 0)
            return i + b;
        size_t t = token_len(p + i, n - i);
        if (t > 0)
            return i + t;
    }
    return 0;
}

static void cut_utf8(sink *s)
{
    /* Drop a trailing partial UTF-8 sequence. */
    size_t i = s->len;
    size_t back = 0;
    while (i > 0 && back < 4 && ((unsigned char)s->out[i - 1] & 0xC0) == 0x80) {
        i--;
        back++;
    }
    if (i > 0 && ((unsigned char)s->out[i - 1] & 0x80)) {
        unsigned char lead = (unsigned char)s->out[i - 1];
        size_t need = lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC0 ? 1 : 0;
        if (need != back)
            s->len = i - 1;
    }
}

size_t gw_redact(const char *src, size_t len, const char *secret, char *out, size_t cap)
{
    sink s = {out, cap, 0};
    size_t slen = secret ? strlen(secret) : 0;
    bool use_secret = slen >= 4;
    size_t pos = 0;
    while (pos < len && s.len < cap - 1) {
        const char *p = src + pos;
        size_t n = len - pos;
        size_t m = 0;
        if (use_secret && n >= slen && memcmp(p, secret, slen) == 0)
            m = slen;
        if (m == 0)
            m = match_keyed(p, n);
        if (m == 0)
            m = match_bearer(p, n);
        if (m == 0)
            m = match_sk(src, pos, n);
        if (m > 0) {
            put(&s, GW_REDACTED, strlen(GW_REDACTED));
            pos += m;
            continue;
        }
        put(&s, p, 1);
        pos++;
    }
    if (pos < len)
        cut_utf8(&s);
    out[s.len] = '\0';
    return s.len;
}
