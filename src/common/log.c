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

enum { LOG_LINE_MAX = 8192 };

typedef struct {
    char buf[LOG_LINE_MAX];
    size_t len;
} line_buf;

static void put_raw(line_buf *b, const char *s, size_t n)
{
    /* Keep room for the closing "}\n". */
    size_t room = LOG_LINE_MAX - 3 - b->len;
    if (n > room)
        n = room;
    memcpy(b->buf + b->len, s, n);
    b->len += n;
}

static void put_str(line_buf *b, const char *s)
{
    put_raw(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            put_raw(b, esc, 2);
        } else if (*p == '\n') {
            put_raw(b, "\\n", 2);
        } else if (*p < 0x20 || *p == 0x7f) {
            int n = snprintf(esc, sizeof esc, "\\u%04x", *p);
            put_raw(b, esc, (size_t)n);
        } else {
            put_raw(b, (const char *)p, 1);
        }
    }
    put_raw(b, "\"", 1);
}

void gw_log(gw_log_level level, const char *event, ...)
{
    if (level < g_level || level >= GW_LOG_OFF)
        return;
    line_buf b = {.len = 0};
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
    put_str(&b, event);
    va_list ap;
    va_start(ap, event);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (k == NULL)
            break;
        const char *v = va_arg(ap, const char *);
        put_raw(&b, ",", 1);
        put_str(&b, k);
        put_raw(&b, ":", 1);
        if (v == NULL)
            put_raw(&b, "null", 4);
        else
            put_str(&b, v);
    }
    va_end(ap);
    b.buf[b.len++] = '}';
    b.buf[b.len++] = '\n';
    ssize_t w = write(STDERR_FILENO, b.buf, b.len);
    (void)w;
}
