/* ndjson: newline-delimited JSON splitter over gw_linebuf; see ndjson.h. */
#include "provider/ndjson.h"

void gw_ndjson_init(gw_ndjson *p, size_t max_line_bytes)
{
    gw_linebuf_init(&p->lines, max_line_bytes, false, false);
}

void gw_ndjson_cleanup(gw_ndjson *p)
{
    gw_linebuf_cleanup(&p->lines);
}

gw_err gw_ndjson_feed(gw_ndjson *p, const char *buf, size_t len)
{
    return gw_linebuf_feed(&p->lines, buf, len);
}

static bool blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t')
            return false;
    return true;
}

gw_err gw_ndjson_next(gw_ndjson *p, const char **line, size_t *len, bool *got)
{
    for (;;) {
        char *s;
        size_t n;
        gw_err err = gw_linebuf_next(&p->lines, &s, &n, got);
        if (err != GW_OK || !*got)
            return err;
        if (blank(s, n)) {
            *got = false;
            continue;
        }
        *line = s;
        *len = n;
        return GW_OK;
    }
}

bool gw_ndjson_pending(const gw_ndjson *p)
{
    size_t n;
    const char *s = gw_linebuf_rest(&p->lines, &n);
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return true;
    return false;
}
