/*
 * eventstream: the AWS event stream parser and frame writer; see
 * eventstream.h. Input is kept in one buffer that grows up to the bound;
 * taken messages are dropped from its front on the next feed.
 */
#include "provider/eventstream.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- CRC32 (reflected, polynomial 0xEDB88320), one table built once ---- */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t gw_es_crc32(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&crc_once, crc_init);
    const unsigned char *b = p;
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = crc_table[(crc ^ b[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

static uint32_t be32(const char *p)
{
    const unsigned char *b = (const unsigned char *)p;
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static void put_be32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
}

/* ---- parser ---- */

void gw_es_init(gw_es *p, size_t max_message_bytes)
{
    memset(p, 0, sizeof *p);
    p->max_message =
        max_message_bytes >= GW_ES_MIN_MESSAGE_BYTES ? max_message_bytes : GW_ES_MIN_MESSAGE_BYTES;
}

void gw_es_cleanup(gw_es *p)
{
    free(p->buf);
    memset(p, 0, sizeof *p);
}

static gw_err fail(gw_es *p, gw_es_why why)
{
    p->why = why;
    return why == GW_ES_TOO_LONG || why == GW_ES_FEED_TOO_LARGE ? GW_E_LIMIT
           : why == GW_ES_NOMEM                                 ? GW_E_NOMEM
                                                                : GW_E_STREAM_ERROR;
}

static gw_err sticky(const gw_es *p)
{
    gw_es q = {.why = p->why};
    return fail(&q, p->why);
}

gw_err gw_es_feed(gw_es *p, const char *buf, size_t len)
{
    if (p->why != GW_ES_OK)
        return sticky(p);
    if (p->off > 0) { /* drop what was taken */
        memmove(p->buf, p->buf + p->off, p->len - p->off);
        p->len -= p->off;
        p->off = 0;
    }
    if (len > p->max_message + GW_ES_FEED_MAX_BYTES - p->len)
        return fail(p, GW_ES_FEED_TOO_LARGE);
    if (p->len + len + 1 > p->cap) {
        size_t n = p->cap ? p->cap : 4096;
        while (n < p->len + len + 1)
            n *= 2;
        char *b = realloc(p->buf, n);
        if (b == NULL)
            return fail(p, GW_ES_NOMEM);
        p->buf = b;
        p->cap = n;
    }
    if (len > 0)
        memcpy(p->buf + p->len, buf, len);
    p->len += len;
    return GW_OK;
}

/* Bytes of a header value of type t at v (avail bytes there); -1 when it
 * does not fit or the type is unknown. *skip: bytes before the value. */
static long value_size(unsigned t, const char *v, size_t avail, size_t *skip)
{
    static const signed char fixed[10] = {0, 0, 1, 2, 4, 8, -1, -1, 8, 16};
    *skip = 0;
    if (t > GW_ES_UUID)
        return -1;
    long n = fixed[t];
    if (n < 0) { /* bytes, string: u16 length first */
        if (avail < 2)
            return -1;
        *skip = 2;
        n = (long)((unsigned char)v[0] << 8 | (unsigned char)v[1]);
    }
    return (size_t)n + *skip <= avail ? n : -1;
}

static gw_err parse_headers(gw_es *p, const char *h, size_t hl, gw_es_message *m)
{
    size_t at = 0;
    m->header_count = 0;
    while (at < hl) {
        size_t nl = (unsigned char)h[at];
        if (nl == 0 || at + 1 + nl + 1 > hl)
            return fail(p, GW_ES_BAD_HEADER);
        if (m->header_count == GW_ES_MAX_HEADERS)
            return fail(p, GW_ES_TOO_MANY);
        gw_es_header *x = &m->headers[m->header_count++];
        x->name = h + at + 1;
        x->name_len = nl;
        at += 1 + nl;
        unsigned t = (unsigned char)h[at++];
        size_t skip;
        long n = value_size(t, h + at, hl - at, &skip);
        if (n < 0)
            return fail(p, GW_ES_BAD_HEADER);
        x->type = (gw_es_type)t;
        x->value = h + at + skip;
        x->value_len = (size_t)n;
        at += skip + (size_t)n;
    }
    return GW_OK;
}

gw_err gw_es_next(gw_es *p, gw_es_message *m, bool *got)
{
    *got = false;
    if (p->why != GW_ES_OK)
        return sticky(p);
    size_t avail = p->len - p->off;
    if (avail < GW_ES_PRELUDE_BYTES)
        return GW_OK;
    char *msg = p->buf + p->off;
    uint32_t total = be32(msg), hl = be32(msg + 4);
    if (gw_es_crc32(0, msg, 8) != be32(msg + 8))
        return fail(p, GW_ES_PRELUDE_CRC);
    if (total < GW_ES_MIN_MESSAGE_BYTES || hl > total - GW_ES_MIN_MESSAGE_BYTES)
        return fail(p, GW_ES_BAD_LENGTH);
    if (total > p->max_message)
        return fail(p, GW_ES_TOO_LONG);
    if (avail < total)
        return GW_OK;
    if (gw_es_crc32(0, msg, total - 4) != be32(msg + total - 4))
        return fail(p, GW_ES_MESSAGE_CRC);
    gw_err err = parse_headers(p, msg + GW_ES_PRELUDE_BYTES, hl, m);
    if (err != GW_OK)
        return err;
    m->payload = msg + GW_ES_PRELUDE_BYTES + hl;
    m->payload_len = total - GW_ES_MIN_MESSAGE_BYTES - hl;
    msg[total - 4] = '\0'; /* the CRC was checked: its first byte ends the payload */
    p->off += total;
    *got = true;
    return GW_OK;
}

bool gw_es_pending(const gw_es *p)
{
    return p->len > p->off;
}

gw_es_why gw_es_error(const gw_es *p)
{
    return p->why;
}

const char *gw_es_why_str(gw_es_why why)
{
    switch (why) {
    case GW_ES_OK:
        return "ok";
    case GW_ES_PRELUDE_CRC:
        return "event stream prelude CRC mismatch";
    case GW_ES_MESSAGE_CRC:
        return "event stream message CRC mismatch";
    case GW_ES_BAD_LENGTH:
        return "event stream message length invalid";
    case GW_ES_BAD_HEADER:
        return "event stream header malformed";
    case GW_ES_TOO_MANY:
        return "event stream message has too many headers";
    case GW_ES_TOO_LONG:
        return "event stream message over the size limit";
    case GW_ES_FEED_TOO_LARGE:
        return "event stream input over the buffer limit";
    case GW_ES_NOMEM:
        return "out of memory";
    }
    return "unknown";
}

const char *gw_es_header_str(const gw_es_message *m, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < m->header_count; i++) {
        const gw_es_header *h = &m->headers[i];
        if (h->type == GW_ES_STRING && h->name_len == nl && memcmp(h->name, name, nl) == 0) {
            *len = h->value_len;
            return h->value;
        }
    }
    return NULL;
}

/* ---- writer ---- */

size_t gw_es_write(char *out, size_t cap, const char *const *names, const char *const *values,
                   size_t header_count, const char *payload, size_t payload_len)
{
    size_t hl = 0;
    for (size_t i = 0; i < header_count; i++) {
        size_t nl = strlen(names[i]), vl = strlen(values[i]);
        if (nl == 0 || nl > 255 || vl > 65535)
            return 0;
        hl += 1 + nl + 1 + 2 + vl;
    }
    size_t total = GW_ES_MIN_MESSAGE_BYTES + hl + payload_len;
    if (total > cap || total > UINT32_MAX)
        return 0;
    put_be32(out, (uint32_t)total);
    put_be32(out + 4, (uint32_t)hl);
    put_be32(out + 8, gw_es_crc32(0, out, 8));
    char *w = out + GW_ES_PRELUDE_BYTES;
    for (size_t i = 0; i < header_count; i++) {
        size_t nl = strlen(names[i]), vl = strlen(values[i]);
        *w++ = (char)nl;
        memcpy(w, names[i], nl);
        w += nl;
        *w++ = (char)GW_ES_STRING;
        *w++ = (char)(vl >> 8);
        *w++ = (char)vl;
        memcpy(w, values[i], vl);
        w += vl;
    }
    if (payload_len > 0)
        memcpy(w, payload, payload_len);
    w += payload_len;
    put_be32(w, gw_es_crc32(0, out, total - 4));
    return total;
}
