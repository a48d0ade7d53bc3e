/*
 * sse: Server-Sent Events parser; see sse.h for the rules and limits.
 * Lines come from gw_linebuf (CR, LF or CRLF; BOM skipped), which bounds
 * the pending input.
 */
#include "provider/sse.h"

#include <stdlib.h>
#include <string.h>

void gw_sse_init(gw_sse *p, size_t max_event_bytes)
{
    memset(p, 0, sizeof *p);
    p->max_event = max_event_bytes;
    p->retry_ms = -1;
    gw_linebuf_init(&p->lines, max_event_bytes, true, true);
}

void gw_sse_cleanup(gw_sse *p)
{
    gw_linebuf_cleanup(&p->lines);
    free(p->data);
    p->data = NULL;
}

static gw_err grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return GW_OK;
    size_t n = *cap ? *cap : 256;
    while (n < need)
        n *= 2;
    char *b = realloc(*buf, n);
    if (b == NULL)
        return GW_E_NOMEM;
    *buf = b;
    *cap = n;
    return GW_OK;
}

gw_err gw_sse_feed(gw_sse *p, const char *buf, size_t len)
{
    if (p->err != GW_OK)
        return p->err;
    return p->err = gw_linebuf_feed(&p->lines, buf, len);
}

static gw_err append_data(gw_sse *p, const char *v, size_t vlen)
{
    size_t sep = p->has_data ? 1 : 0;
    if (p->data_len + sep + vlen > p->max_event)
        return GW_E_LIMIT;
    gw_err err = grow(&p->data, &p->data_cap, p->data_len + sep + vlen + 1);
    if (err != GW_OK)
        return err;
    if (sep)
        p->data[p->data_len++] = '\n';
    memcpy(p->data + p->data_len, v, vlen);
    p->data_len += vlen;
    p->data[p->data_len] = '\0';
    p->has_data = true;
    return GW_OK;
}

static gw_err set_name(char *dst, const char *v, size_t vlen)
{
    if (vlen >= GW_SSE_NAME_MAX)
        return GW_E_LIMIT;
    memcpy(dst, v, vlen);
    dst[vlen] = '\0';
    return GW_OK;
}

static void set_retry(gw_sse *p, const char *v, size_t vlen)
{
    if (vlen == 0 || vlen > 12)
        return;
    int64_t n = 0;
    for (size_t i = 0; i < vlen; i++) {
        if (v[i] < '0' || v[i] > '9')
            return;
        n = n * 10 + (v[i] - '0');
    }
    p->retry_ms = n;
}

/* One non-empty line that is not a comment. */
static gw_err field_line(gw_sse *p, const char *line, size_t n)
{
    const char *colon = memchr(line, ':', n);
    size_t flen = colon ? (size_t)(colon - line) : n;
    const char *v = colon ? colon + 1 : line + n;
    size_t vlen = colon ? n - flen - 1 : 0;
    if (vlen > 0 && v[0] == ' ') {
        v++;
        vlen--;
    }
    if (flen == 4 && memcmp(line, "data", 4) == 0)
        return append_data(p, v, vlen);
    if (flen == 5 && memcmp(line, "event", 5) == 0)
        return set_name(p->event, v, vlen);
    if (flen == 2 && memcmp(line, "id", 2) == 0) {
        if (memchr(v, '\0', vlen) != NULL)
            return GW_OK;
        return set_name(p->id, v, vlen);
    }
    if (flen == 5 && memcmp(line, "retry", 5) == 0)
        set_retry(p, v, vlen);
    return GW_OK;
}

static void dispatch(gw_sse *p, gw_sse_event *ev)
{
    strcpy(p->out_event, p->event[0] ? p->event : "message");
    ev->event = p->out_event;
    ev->data = p->data;
    ev->data_len = p->data_len;
    ev->id = p->id;
    p->event[0] = '\0';
    p->has_data = false;
    p->data_len = 0; /* the bytes stay valid until the next append */
}

gw_err gw_sse_next(gw_sse *p, gw_sse_event *ev, bool *got)
{
    *got = false;
    if (p->err != GW_OK)
        return p->err;
    for (;;) {
        char *line;
        size_t n;
        bool have;
        gw_err err = gw_linebuf_next(&p->lines, &line, &n, &have);
        if (err != GW_OK)
            return p->err = err;
        if (!have)
            return GW_OK;
        if (n == 0) {
            if (p->has_data) {
                dispatch(p, ev);
                *got = true;
                return GW_OK;
            }
            p->event[0] = '\0';
            continue;
        }
        if (line[0] == ':')
            continue;
        err = field_line(p, line, n);
        if (err != GW_OK)
            return p->err = err;
    }
}

bool gw_sse_pending(const gw_sse *p)
{
    size_t rest;
    (void)gw_linebuf_rest(&p->lines, &rest);
    return rest > 0 || p->has_data || p->event[0] != '\0';
}

int64_t gw_sse_retry_ms(const gw_sse *p)
{
    return p->retry_ms;
}
