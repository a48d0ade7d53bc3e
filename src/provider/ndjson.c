/* ndjson: newline-delimited JSON splitter; see ndjson.h. */
#include "provider/ndjson.h"

#include <stdlib.h>
#include <string.h>

void gw_ndjson_init(gw_ndjson *p, size_t max_line_bytes)
{
    memset(p, 0, sizeof *p);
    p->max_line = max_line_bytes;
}

void gw_ndjson_cleanup(gw_ndjson *p)
{
    free(p->in);
    p->in = NULL;
}

gw_err gw_ndjson_feed(gw_ndjson *p, const char *buf, size_t len)
{
    if (p->err != GW_OK)
        return p->err;
    if (p->in_pos > 0) {
        memmove(p->in, p->in + p->in_pos, p->in_len - p->in_pos);
        p->in_len -= p->in_pos;
        p->in_pos = 0;
    }
    if (p->in_len + len > p->max_line + GW_NDJSON_FEED_MAX_BYTES)
        return p->err = GW_E_LIMIT;
    size_t need = p->in_len + len + 1; /* room for a NUL */
    if (need > p->in_cap) {
        size_t n = p->in_cap ? p->in_cap : 256;
        while (n < need)
            n *= 2;
        char *b = realloc(p->in, n);
        if (b == NULL)
            return p->err = GW_E_NOMEM;
        p->in = b;
        p->in_cap = n;
    }
    if (len > 0)
        memcpy(p->in + p->in_len, buf, len);
    p->in_len += len;
    return GW_OK;
}

gw_err gw_ndjson_next(gw_ndjson *p, const char **line, size_t *len, bool *got)
{
    *got = false;
    if (p->err != GW_OK)
        return p->err;
    while (p->in_pos < p->in_len) {
        char *s = p->in + p->in_pos;
        size_t avail = p->in_len - p->in_pos;
        char *nl = memchr(s, '\n', avail);
        if (nl == NULL) {
            if (avail > p->max_line)
                return p->err = GW_E_LIMIT;
            return GW_OK;
        }
        size_t n = (size_t)(nl - s);
        p->in_pos += n + 1;
        if (n > 0 && s[n - 1] == '\r')
            n--;
        if (n > p->max_line)
            return p->err = GW_E_LIMIT;
        size_t k = 0;
        while (k < n && (s[k] == ' ' || s[k] == '\t'))
            k++;
        if (k == n)
            continue;
        s[n] = '\0';
        *line = s;
        *len = n;
        *got = true;
        return GW_OK;
    }
    return GW_OK;
}

bool gw_ndjson_pending(const gw_ndjson *p)
{
    for (size_t i = p->in_pos; i < p->in_len; i++)
        if (p->in[i] != ' ' && p->in[i] != '\t' && p->in[i] != '\r')
            return true;
    return false;
}
