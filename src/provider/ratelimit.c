/*
 * ratelimit: parsing of provider rate-limit headers; see ratelimit.h.
 */
#include "provider/ratelimit.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum { DIGITS_MAX = 15, DAY_MS = 86400000 };

static void trim(const char **v, size_t *n)
{
    while (*n > 0 && ((*v)[*n - 1] == ' ' || (*v)[*n - 1] == '\r' || (*v)[*n - 1] == '\n' ||
                      (*v)[*n - 1] == '\t'))
        (*n)--;
    while (*n > 0 && (**v == ' ' || **v == '\t')) {
        (*v)++;
        (*n)--;
    }
}

/* A non-negative integer, the whole of v; -1 otherwise. */
static int64_t parse_count(const char *v, size_t n)
{
    trim(&v, &n);
    if (n == 0 || n > DIGITS_MAX)
        return -1;
    int64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        x = x * 10 + (v[i] - '0');
    }
    return x;
}

/* Unit of a duration part at v[i..): ms per unit and its length; 0 if none. */
static double unit_ms(const char *v, size_t n, size_t i, size_t *len)
{
    if (i + 1 < n && v[i] == 'm' && v[i + 1] == 's') {
        *len = 2;
        return 1;
    }
    *len = 1;
    switch (i < n ? v[i] : '\0') {
    case 'h':
        return 3600000;
    case 'm':
        return 60000;
    case 's':
        return 1000;
    default:
        return 0;
    }
}

int64_t gw_ratelimit_parse_duration_ms(const char *v, size_t n)
{
    trim(&v, &n);
    if (n == 0 || n > 32)
        return -1;
    double total = 0;
    size_t i = 0;
    while (i < n) {
        double x = 0, scale = 0;
        size_t start = i;
        for (; i < n && ((v[i] >= '0' && v[i] <= '9') || v[i] == '.'); i++) {
            if (v[i] == '.') {
                if (scale > 0)
                    return -1;
                scale = 1;
            } else if (scale > 0) {
                scale /= 10;
                x += (v[i] - '0') * scale;
            } else {
                x = x * 10 + (v[i] - '0');
            }
        }
        if (i == start)
            return -1;
        size_t ulen = 0;
        double u = i < n ? unit_ms(v, n, i, &ulen) : 1000; /* a bare number: seconds */
        if (u == 0)
            return -1;
        total += x * u;
        i += i < n ? ulen : 0;
        if (total >= DAY_MS)
            return -1;
    }
    return (int64_t)(total + 0.5);
}

/* "2026-12-04T17:12:13Z" (fractions and offsets allowed) -> ms from now, >= 0. */
static int64_t parse_rfc3339_from_now(const char *v, size_t n, int64_t now_unix_ms)
{
    char tmp[64];
    trim(&v, &n);
    if (n < 20 || n >= sizeof tmp)
        return -1;
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    struct tm tm = {0};
    int used = 0;
    if (sscanf(tmp, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &used) != 6 ||
        used != 19)
        return -1;
    const char *p = tmp + 19;
    double frac = 0, scale = 1;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            frac += (*p - '0') * (scale /= 10);
    int off_min = 0;
    if (*p == '+' || *p == '-') {
        int hh = 0, mm = 0;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2 || strlen(p) != 6)
            return -1;
        off_min = (*p == '-' ? -1 : 1) * (hh * 60 + mm);
    } else if (strcmp(p, "Z") != 0 && strcmp(p, "z") != 0) {
        return -1;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    int64_t at_ms = ((int64_t)t - (int64_t)off_min * 60) * 1000 + (int64_t)(frac * 1000);
    int64_t d = at_ms - now_unix_ms;
    if (d > DAY_MS)
        return -1;
    return d < 0 ? 0 : d;
}

/* Prefix match, case-insensitive; the rest of the name in *rest. */
static bool starts(const char *name, size_t nlen, const char *pfx, const char **rest, size_t *rlen)
{
    size_t l = strlen(pfx);
    if (nlen < l || strncasecmp(name, pfx, l) != 0)
        return false;
    *rest = name + l;
    *rlen = nlen - l;
    return true;
}

static bool is(const char *s, size_t n, const char *word)
{
    return n == strlen(word) && strncasecmp(s, word, n) == 0;
}

/* Keep the scarcer of two token headers (Anthropic's input/output tokens). */
static void set_field(gw_ratelimit *rl, uint32_t bit, int64_t *field, int64_t v, bool keep_min)
{
    if (keep_min && (rl->have & bit) && *field <= v)
        return;
    *field = v;
    rl->have |= bit;
}

typedef enum { K_LIMIT, K_REMAIN, K_RESET, K_NONE } kind;

static kind kind_of(const char *s, size_t n)
{
    return is(s, n, "limit")       ? K_LIMIT
           : is(s, n, "remaining") ? K_REMAIN
           : is(s, n, "reset")     ? K_RESET
                                   : K_NONE;
}

static bool store(gw_ratelimit *rl, bool tokens, kind k, bool keep_min, int64_t v)
{
    if (v < 0 || k == K_NONE)
        return false;
    static const uint32_t bits[2][3] = {{GW_RL_LIMIT_REQ, GW_RL_REMAIN_REQ, GW_RL_RESET_REQ},
                                        {GW_RL_LIMIT_TOK, GW_RL_REMAIN_TOK, GW_RL_RESET_TOK}};
    int64_t *f[2][3] = {{&rl->limit_requests, &rl->remaining_requests, &rl->reset_requests_ms},
                        {&rl->limit_tokens, &rl->remaining_tokens, &rl->reset_tokens_ms}};
    set_field(rl, bits[tokens][k], f[tokens][k], v, keep_min && k != K_LIMIT);
    return true;
}

/* x-ratelimit-<kind>-<resource> */
static bool openai_header(gw_ratelimit *rl, const char *rest, size_t rlen, const char *v, size_t vn)
{
    const char *dash = memchr(rest, '-', rlen);
    if (dash == NULL)
        return false;
    kind k = kind_of(rest, (size_t)(dash - rest));
    const char *res = dash + 1;
    size_t resn = rlen - (size_t)(res - rest);
    bool tokens = is(res, resn, "tokens");
    if (!tokens && !is(res, resn, "requests"))
        return false;
    int64_t x = k == K_RESET ? gw_ratelimit_parse_duration_ms(v, vn) : parse_count(v, vn);
    return store(rl, tokens, k, false, x);
}

/* anthropic-ratelimit-<resource>-<kind>, resource requests | tokens |
 * input-tokens | output-tokens */
static bool anthropic_header(gw_ratelimit *rl, const char *rest, size_t rlen, const char *v,
                             size_t vn, int64_t now_unix_ms)
{
    const char *dash = NULL;
    for (size_t i = rlen; i > 0 && dash == NULL; i--)
        if (rest[i - 1] == '-')
            dash = rest + i - 1;
    if (dash == NULL)
        return false;
    size_t resn = (size_t)(dash - rest);
    kind k = kind_of(dash + 1, rlen - resn - 1);
    bool tokens = is(rest, resn, "tokens") || is(rest, resn, "input-tokens") ||
                  is(rest, resn, "output-tokens");
    if (!tokens && !is(rest, resn, "requests"))
        return false;
    bool sub = tokens && !is(rest, resn, "tokens");
    int64_t x = k == K_RESET ? parse_rfc3339_from_now(v, vn, now_unix_ms) : parse_count(v, vn);
    return store(rl, tokens, k, sub, x);
}

bool gw_ratelimit_header(gw_ratelimit *rl, const char *line, size_t n, int64_t now_unix_ms)
{
    const char *colon = memchr(line, ':', n);
    if (colon == NULL)
        return false;
    size_t nlen = (size_t)(colon - line);
    const char *v = colon + 1;
    size_t vn = n - nlen - 1;
    const char *rest;
    size_t rlen;
    if (starts(line, nlen, "x-ratelimit-", &rest, &rlen))
        return openai_header(rl, rest, rlen, v, vn);
    if (starts(line, nlen, "anthropic-ratelimit-", &rest, &rlen))
        return anthropic_header(rl, rest, rlen, v, vn, now_unix_ms);
    return false;
}

static double share(bool have_r, bool have_l, int64_t remaining, int64_t limit)
{
    if (!have_r)
        return -1;
    if (have_l && limit > 0)
        return remaining >= limit ? 1.0 : (double)remaining / (double)limit;
    return remaining == 0 ? 0.0 : -1;
}

double gw_ratelimit_remaining_share(const gw_ratelimit *rl)
{
    double r = share(rl->have & GW_RL_REMAIN_REQ, rl->have & GW_RL_LIMIT_REQ,
                     rl->remaining_requests, rl->limit_requests);
    double t = share(rl->have & GW_RL_REMAIN_TOK, rl->have & GW_RL_LIMIT_TOK, rl->remaining_tokens,
                     rl->limit_tokens);
    if (r < 0)
        return t;
    if (t < 0)
        return r;
    return r < t ? r : t;
}

int64_t gw_ratelimit_reset_ms(const gw_ratelimit *rl)
{
    double r = share(rl->have & GW_RL_REMAIN_REQ, rl->have & GW_RL_LIMIT_REQ,
                     rl->remaining_requests, rl->limit_requests);
    double t = share(rl->have & GW_RL_REMAIN_TOK, rl->have & GW_RL_LIMIT_TOK, rl->remaining_tokens,
                     rl->limit_tokens);
    bool req_scarcer = t < 0 || (r >= 0 && r <= t);
    if (req_scarcer && (rl->have & GW_RL_RESET_REQ))
        return rl->reset_requests_ms;
    if (rl->have & GW_RL_RESET_TOK)
        return rl->reset_tokens_ms;
    return rl->have & GW_RL_RESET_REQ ? rl->reset_requests_ms : -1;
}
