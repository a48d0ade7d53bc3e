/* mllm_http: HTTP/1.1 request parsing and response buffers; see mllm_http.h. */
#include "mockllm/mllm_http.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *find_head_end(const char *buf, size_t len)
{
    if (len < 4)
        return NULL;
    const char *p = buf;
    const char *end = buf + len;
    while ((p = memchr(p, '\r', (size_t)(end - p))) != NULL) {
        if (end - p >= 4 && p[1] == '\n' && p[2] == '\r' && p[3] == '\n')
            return p;
        if (end - p < 4)
            return NULL;
        p++;
    }
    return NULL;
}

static gw_err parse_request_line(const char *s, size_t n, gw_mllm_req *r)
{
    const char *sp1 = memchr(s, ' ', n);
    if (sp1 == NULL || sp1 == s)
        return GW_E_INVALID_REQUEST;
    const char *rest = sp1 + 1;
    const char *sp2 = memchr(rest, ' ', (size_t)(s + n - rest));
    if (sp2 == NULL || sp2 == rest)
        return GW_E_INVALID_REQUEST;
    size_t vlen = (size_t)(s + n - sp2 - 1);
    if (vlen != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0)
        return GW_E_INVALID_REQUEST;
    char minor = sp2[8];
    if (minor != '0' && minor != '1')
        return GW_E_INVALID_REQUEST;
    r->minor_version = minor - '0';
    r->method = s;
    r->method_len = (size_t)(sp1 - s);
    r->path = rest;
    const char *q = memchr(rest, '?', (size_t)(sp2 - rest));
    r->path_len = (size_t)((q ? q : sp2) - rest);
    r->query = q ? q + 1 : "";
    r->query_len = q ? (size_t)(sp2 - q - 1) : 0;
    return GW_OK;
}

static gw_err parse_header(const char *s, size_t n, gw_mllm_req *r)
{
    if (r->header_count == GW_MLLM_MAX_HEADERS)
        return GW_E_LIMIT;
    const char *colon = memchr(s, ':', n);
    if (colon == NULL || colon == s)
        return GW_E_INVALID_REQUEST;
    for (const char *c = s; c < colon; c++)
        if (*c == ' ' || *c == '\t')
            return GW_E_INVALID_REQUEST;
    const char *v = colon + 1;
    const char *e = s + n;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    gw_mllm_header *h = &r->headers[r->header_count++];
    h->name = s;
    h->name_len = (size_t)(colon - s);
    h->value = v;
    h->value_len = (size_t)(e - v);
    return GW_OK;
}

const char *gw_mllm_header_get(const gw_mllm_req *r, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    *len = 0;
    for (size_t i = 0; i < r->header_count; i++) {
        const gw_mllm_header *h = &r->headers[i];
        if (h->name_len == nl && strncasecmp(h->name, name, nl) == 0) {
            *len = h->value_len;
            return h->value;
        }
    }
    return NULL;
}

static bool value_is(const char *v, size_t n, const char *want)
{
    return v != NULL && n == strlen(want) && strncasecmp(v, want, n) == 0;
}

static gw_err body_length(const gw_mllm_req *r, size_t *out)
{
    size_t n;
    const char *te = gw_mllm_header_get(r, "transfer-encoding", &n);
    if (te != NULL && !value_is(te, n, "identity"))
        return GW_E_INVALID_REQUEST;
    const char *cl = gw_mllm_header_get(r, "content-length", &n);
    *out = 0;
    if (cl == NULL)
        return GW_OK;
    if (n == 0 || n > 10)
        return n > 10 ? GW_E_LIMIT : GW_E_INVALID_REQUEST;
    size_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (cl[i] < '0' || cl[i] > '9')
            return GW_E_INVALID_REQUEST;
        v = v * 10 + (size_t)(cl[i] - '0');
    }
    if (v > GW_MLLM_MAX_BODY_BYTES)
        return GW_E_LIMIT;
    *out = v;
    return GW_OK;
}

gw_err gw_mllm_parse(const char *buf, size_t len, gw_mllm_req *r, bool *complete)
{
    *complete = false;
    const char *he = find_head_end(buf, len);
    if (he == NULL)
        return len > GW_MLLM_MAX_HEAD_BYTES ? GW_E_LIMIT : GW_OK;
    size_t head_len = (size_t)(he - buf) + 4;
    if (head_len > GW_MLLM_MAX_HEAD_BYTES)
        return GW_E_LIMIT;
    memset(r, 0, offsetof(gw_mllm_req, headers));
    r->header_count = 0;
    const char *p = buf;
    const char *eol = memchr(p, '\r', (size_t)(he + 2 - p));
    gw_err err = parse_request_line(p, (size_t)(eol - p), r);
    if (err != GW_OK)
        return err;
    p = eol + 2;
    while (p < he + 2) {
        eol = memchr(p, '\r', (size_t)(he + 2 - p));
        if (eol == NULL || eol[1] != '\n')
            return GW_E_INVALID_REQUEST;
        err = parse_header(p, (size_t)(eol - p), r);
        if (err != GW_OK)
            return err;
        p = eol + 2;
    }
    size_t body_len;
    err = body_length(r, &body_len);
    if (err != GW_OK)
        return err;
    if (len - head_len < body_len)
        return GW_OK;
    size_t n;
    const char *conn = gw_mllm_header_get(r, "connection", &n);
    r->keep_alive =
        r->minor_version == 1 ? !value_is(conn, n, "close") : value_is(conn, n, "keep-alive");
    r->body = buf + head_len;
    r->body_len = body_len;
    r->total_len = head_len + body_len;
    *complete = true;
    return GW_OK;
}

void gw_mllm_buf_init(gw_mllm_buf *b, size_t max_bytes)
{
    memset(b, 0, sizeof *b);
    b->max = max_bytes;
}

void gw_mllm_buf_cleanup(gw_mllm_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

static bool reserve(gw_mllm_buf *b, size_t extra)
{
    if (b->overflow || b->len + extra + 1 > b->max) {
        b->overflow = true;
        return false;
    }
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t n = b->cap ? b->cap * 2 : 1024;
    while (n < b->len + extra + 1)
        n *= 2;
    char *p = realloc(b->p, n);
    if (p == NULL) {
        b->overflow = true;
        return false;
    }
    b->p = p;
    b->cap = n;
    return true;
}

bool gw_mllm_buf_put(gw_mllm_buf *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return false;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return true;
}

bool gw_mllm_buf_puts(gw_mllm_buf *b, const char *s)
{
    return gw_mllm_buf_put(b, s, strlen(s));
}

bool gw_mllm_buf_printf(gw_mllm_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[512];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return false;
    if ((size_t)n < sizeof tmp)
        return gw_mllm_buf_put(b, tmp, (size_t)n);
    if (!reserve(b, (size_t)n))
        return false;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return true;
}

bool gw_mllm_buf_json_str(gw_mllm_buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ok;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            ok = gw_mllm_buf_put(b, e, 2);
        } else if (c == '\n') {
            ok = gw_mllm_buf_put(b, "\\n", 2);
        } else if (c < 0x20) {
            ok = gw_mllm_buf_printf(b, "\\u%04x", c);
        } else {
            ok = gw_mllm_buf_put(b, (const char *)&s[i], 1);
        }
        if (!ok)
            return false;
    }
    return true;
}
