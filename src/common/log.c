/* log: JSON lines on stderr; see log.h. One write(2) per line so lines from
 * several processes sharing a terminal or pipe never interleave mid-line. */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static gw_log_level g_level = GW_LOG_INFO;
static bool g_debug_content = false;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void gw_log_set_level(gw_log_level level)
{
    g_level = level;
}

gw_log_level gw_log_get_level(void)
{
    return g_level;
}

void gw_log_set_debug_content(bool on)
{
    g_debug_content = on;
}

bool gw_log_debug_content(void)
{
    return g_debug_content;
}

int gw_log_level_parse(const char *s)
{
    for (int i = 0; i <= GW_LOG_OFF; i++)
        if (s != NULL && strcasecmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

/*
 * A line is at most LOG_LINE_MAX bytes and always valid JSON: a value is cut
 * at LOG_VALUE_MAX bytes (or at what the line has left) only between whole
 * escape sequences and whole UTF-8 characters, its string is always closed,
 * and LOG_TAIL_RESERVE bytes stay free for `,"truncated":true}\n`. Invalid
 * UTF-8 bytes are written as \ufffd. A field that does not fit at all is
 * left out and the line says "truncated":true.
 */
enum { LOG_LINE_MAX = 8192, LOG_VALUE_MAX = 2048, LOG_TAIL_RESERVE = 24 };

typedef struct {
    char buf[LOG_LINE_MAX];
    size_t len;
    bool truncated;
} line_buf;

static size_t room(const line_buf *b)
{
    return LOG_LINE_MAX - LOG_TAIL_RESERVE - b->len;
}

/* Appends s[0..n) only if it fits whole; false when it does not. */
static bool put_raw(line_buf *b, const char *s, size_t n)
{
    if (n > room(b))
        return false;
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    return true;
}

/* Length of the valid UTF-8 sequence at p (1..4), 0 when invalid. */
static size_t utf8_len(const unsigned char *p)
{
    if (p[0] < 0x80)
        return 1;
    size_t n = (p[0] & 0xE0) == 0xC0   ? 2
               : (p[0] & 0xF0) == 0xE0 ? 3
               : (p[0] & 0xF8) == 0xF0 ? 4
                                       : 0;
    if (n == 0 || (n == 2 && p[0] < 0xC2) || (n == 4 && p[0] > 0xF4))
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    if ((n == 3 && p[0] == 0xE0 && p[1] < 0xA0) || (n == 3 && p[0] == 0xED && p[1] >= 0xA0) ||
        (n == 4 && p[0] == 0xF0 && p[1] < 0x90) || (n == 4 && p[0] == 0xF4 && p[1] >= 0x90))
        return 0; /* overlong, surrogate, above U+10FFFF */
    return n;
}

/* One source character as JSON text into esc; returns its length and sets *adv. */
static size_t escape_one(const unsigned char *p, char esc[8], size_t *adv)
{
    *adv = 1;
    if (*p == '"' || *p == '\\') {
        esc[0] = '\\';
        esc[1] = (char)*p;
        return 2;
    }
    if (*p == '\n') {
        memcpy(esc, "\\n", 2);
        return 2;
    }
    if (*p < 0x20 || *p == 0x7f)
        return (size_t)snprintf(esc, 8, "\\u%04x", *p);
    size_t n = utf8_len(p);
    if (n == 0) {
        memcpy(esc, "\\ufffd", 6);
        return 6;
    }
    memcpy(esc, p, n);
    *adv = n;
    return n;
}

/* Writes "s" (quoted, escaped, cut to cap bytes of JSON text); false when not even
 * the quotes fit. */
static bool put_str(line_buf *b, const char *s, size_t cap)
{
    if (room(b) < 2)
        return false;
    size_t limit = room(b) - 2 < cap ? room(b) - 2 : cap;
    size_t used = 0;
    b->buf[b->len++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        char esc[8];
        size_t adv;
        size_t n = escape_one(p, esc, &adv);
        if (used + n > limit) {
            b->truncated = true;
            break;
        }
        memcpy(b->buf + b->len, esc, n);
        b->len += n;
        used += n;
        p += adv;
    }
    b->buf[b->len++] = '"';
    return true;
}

/* ,"key":"value" or ,"key":null; all or nothing. */
static void put_field(line_buf *b, const char *k, const char *v)
{
    size_t mark = b->len;
    bool ok = put_raw(b, ",", 1) && put_str(b, k, 128) && put_raw(b, ":", 1) &&
              (v == NULL ? put_raw(b, "null", 4) : put_str(b, v, LOG_VALUE_MAX));
    if (!ok) {
        b->len = mark;
        b->truncated = true;
    }
}

void gw_log(gw_log_level level, const char *event, ...)
{
    if (level < g_level || level >= GW_LOG_OFF)
        return;
    line_buf b = {.len = 0, .truncated = false};
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[40];
    int n = snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (long)(tv.tv_usec / 1000));
    put_raw(&b, "{\"time\":\"", 9);
    put_raw(&b, ts, (size_t)n);
    put_raw(&b, "\",\"level\":\"", 11);
    put_raw(&b, level_names[level], strlen(level_names[level]));
    put_raw(&b, "\",\"event\":", 10);
    put_str(&b, event ? event : "", 128);
    va_list ap;
    va_start(ap, event);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (k == NULL)
            break;
        const char *v = va_arg(ap, const char *);
        put_field(&b, k, v);
    }
    va_end(ap);
    if (b.truncated) {
        memcpy(b.buf + b.len, ",\"truncated\":true", 17);
        b.len += 17;
    }
    b.buf[b.len++] = '}';
    b.buf[b.len++] = '\n';
    ssize_t w = write(STDERR_FILENO, b.buf, b.len);
    (void)w;
}
