/* linebuf: the bounded line splitter of the stream parsers; see linebuf.h. */
#include "provider/linebuf.h"

#include <stdlib.h>
#include <string.h>

static const char bom[3] = {'\xEF', '\xBB', '\xBF'};

void gw_linebuf_init(gw_linebuf *b, size_t max_line_bytes, bool cr_ends_line, bool skip_bom)
{
    memset(b, 0, sizeof *b);
    b->max_line = max_line_bytes;
    b->cr_ends_line = cr_ends_line;
    b->bom_done = !skip_bom;
}

void gw_linebuf_cleanup(gw_linebuf *b)
{
    free(b->in);
    b->in = NULL;
}

gw_err gw_linebuf_feed(gw_linebuf *b, const char *buf, size_t len)
{
    if (b->err != GW_OK)
        return b->err;
    if (b->pos > 0) {
        memmove(b->in, b->in + b->pos, b->len - b->pos);
        b->len -= b->pos;
        b->pos = 0;
    }
    if (b->len + len > b->max_line + GW_LINEBUF_FEED_MAX_BYTES)
        return b->err = GW_E_LIMIT;
    size_t need = b->len + len + 1; /* room for a NUL */
    if (need > b->cap) {
        size_t n = b->cap ? b->cap : 256;
        while (n < need)
            n *= 2;
        char *p = realloc(b->in, n);
        if (p == NULL)
            return b->err = GW_E_NOMEM;
        b->in = p;
        b->cap = n;
    }
    if (len > 0)
        memcpy(b->in + b->len, buf, len);
    b->len += len;
    return GW_OK;
}

/* Drop the LF of a CRLF split across feeds, then a BOM at the start. False
 * while the first bytes could still be a BOM. */
static bool skip_prefix(gw_linebuf *b)
{
    if (b->skip_lf && b->pos < b->len) {
        if (b->in[b->pos] == '\n')
            b->pos++;
        b->skip_lf = false;
    }
    if (b->bom_done)
        return true;
    size_t avail = b->len - b->pos;
    if (avail < 3 && memcmp(b->in + b->pos, bom, avail) == 0)
        return false;
    if (avail >= 3 && memcmp(b->in + b->pos, bom, 3) == 0)
        b->pos += 3;
    b->bom_done = true;
    return true;
}

/* The end of the line at pos: its length and that of its end of line. */
static bool find_eol(gw_linebuf *b, size_t *line_len, size_t *eol_len)
{
    const char *s = b->in + b->pos;
    size_t avail = b->len - b->pos;
    if (!b->cr_ends_line) {
        const char *nl = memchr(s, '\n', avail);
        if (nl == NULL)
            return false;
        size_t n = (size_t)(nl - s);
        *line_len = n > 0 && s[n - 1] == '\r' ? n - 1 : n;
        *eol_len = n + 1 - *line_len;
        return true;
    }
    /* the first CR or LF, by memchr (a byte loop here was ~7% of a streamed
     * call's instructions): a CR can only end the line before the first LF */
    const char *nl = memchr(s, '\n', avail);
    size_t lf_at = nl != NULL ? (size_t)(nl - s) : avail;
    const char *cr = memchr(s, '\r', lf_at);
    if (cr != NULL) {
        size_t i = (size_t)(cr - s);
        *line_len = i;
        *eol_len = (i + 1 < avail && s[i + 1] == '\n') ? 2 : 1;
        b->skip_lf = (i + 1 == avail); /* a LF may follow in the next feed */
        return true;
    }
    if (nl == NULL)
        return false;
    *line_len = lf_at;
    *eol_len = 1;
    return true;
}

gw_err gw_linebuf_next(gw_linebuf *b, char **line, size_t *len, bool *got)
{
    *got = false;
    if (b->err != GW_OK)
        return b->err;
    if (b->in == NULL || !skip_prefix(b))
        return GW_OK;
    size_t n, eol;
    if (!find_eol(b, &n, &eol)) {
        if (b->len - b->pos > b->max_line)
            return b->err = GW_E_LIMIT;
        return GW_OK;
    }
    char *s = b->in + b->pos;
    b->pos += n + eol;
    if (n > b->max_line)
        return b->err = GW_E_LIMIT;
    s[n] = '\0'; /* over the end of line */
    *line = s;
    *len = n;
    *got = true;
    return GW_OK;
}

const char *gw_linebuf_rest(const gw_linebuf *b, size_t *len)
{
    *len = b->len - b->pos;
    return b->in != NULL ? b->in + b->pos : "";
}
