/*
 * sse: Server-Sent Events parser; see sse.h for the rules and limits.
 * The input buffer is compacted on each feed, so memory stays proportional
 * to what is pending, never to the length of the stream.
 */
#include "provider/sse.h"

#include <stdlib.h>
#include <string.h>

void gw_sse_init(gw_sse *p, size_t max_event_bytes)
{
    memset(p, 0, sizeof *p);
    p->max_event = max_event_bytes;
    p->retry_ms = -1;
}

void gw_sse_cleanup(gw_sse *p)
{
    free(p->in);
    free(p->data);
    p->in = NULL;
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
    if (p->in_pos > 0) {
        memmove(p->in, p->in + p->in_pos, p->in_len - p->in_pos);
        p->in_len -= p->in_pos;
        p->in_pos = 0;
    }
    if (p->in_len + len > p->max_event + GW_SSE_FEED_MAX_BYTES)
        return p->err = GW_E_LIMIT;
    gw_err err = grow(&p->in, &p->in_cap, p->in_len + len);
    if (err != GW_OK)
        return p->err = err;
    if (len > 0)
        memcpy(p->in + p->in_len, buf, len);
    p->in_len += len;
    return GW_OK;
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

/* Find the end of the line at in_pos; false when it is not complete yet. */
static bool find_line(gw_sse *p, size_t *line_len, size_t *eol_len)
{
    const char *s = p->in + p->in_pos;
    size_t avail = p->in_len - p->in_pos;
    for (size_t i = 0; i < avail; i++) {
        if (s[i] == '\n') {
            *line_len = i;
            *eol_len = 1;
            return true;
        }
        if (s[i] == '\r') {
            *line_len = i;
            *eol_len = (i + 1 < avail && s[i + 1] == '\n') ? 2 : 1;
            p->skip_lf = (i + 1 == avail); /* a LF may follow in the next feed */
            return true;
        }
    }
    return false;
}

static void skip_prefix(gw_sse *p)
{
    if (p->skip_lf && p->in_pos < p->in_len) {
        if (p->in[p->in_pos] == '\n')
            p->in_pos++;
        p->skip_lf = false;
    }
    if (!p->bom_done && p->in_len - p->in_pos >= 3) {
        if (memcmp(p->in + p->in_pos, "\xEF\xBB\xBF", 3) == 0)
            p->in_pos += 3;
        p->bom_done = true;
    }
}

gw_err gw_sse_next(gw_sse *p, gw_sse_event *ev, bool *got)
{
    *got = false;
    if (p->err != GW_OK)
        return p->err;
    for (;;) {
        skip_prefix(p);
        if (!p->bom_done && p->in_len - p->in_pos < 3 &&
            memcmp(p->in + p->in_pos, "\xEF\xBB\xBF", p->in_len - p->in_pos) == 0)
            return GW_OK; /* could still be a BOM */
        p->bom_done = true;
        size_t n, eol;
        if (!find_line(p, &n, &eol)) {
            if (p->in_len - p->in_pos > p->max_event)
                return p->err = GW_E_LIMIT;
            return GW_OK;
        }
        const char *line = p->in + p->in_pos;
        p->in_pos += n + eol;
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
        gw_err err = field_line(p, line, n);
        if (err != GW_OK)
            return p->err = err;
    }
}

bool gw_sse_pending(const gw_sse *p)
{
    return p->in_len > p->in_pos || p->has_data || p->event[0] != '\0';
}

int64_t gw_sse_retry_ms(const gw_sse *p)
{
    return p->retry_ms;
}
