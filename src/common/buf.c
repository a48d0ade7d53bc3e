/* buf: see buf.h. Storage grows by doubling from 256 bytes, never past the cap. */
#include "common/buf.h"

#include <stdlib.h>
#include <string.h>

void gw_buf_init(gw_buf *b, size_t cap_bytes)
{
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    b->cap_bytes = cap_bytes;
}

void gw_buf_cleanup(gw_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
}

void gw_buf_reset(gw_buf *b)
{
    b->len = 0;
}

gw_err gw_buf_reserve(gw_buf *b, size_t n)
{
    if (n <= b->alloc - b->len)
        return GW_OK;
    if (n > SIZE_MAX / 2 - b->len)
        return GW_E_LIMIT;
    size_t need = b->len + n;
    if (b->cap_bytes != 0 && need > b->cap_bytes)
        return GW_E_LIMIT;
    size_t size = b->alloc ? b->alloc : 256;
    while (size < need)
        size *= 2;
    if (b->cap_bytes != 0 && size > b->cap_bytes)
        size = b->cap_bytes;
    uint8_t *p = realloc(b->data, size);
    if (p == NULL)
        return GW_E_NOMEM;
    b->data = p;
    b->alloc = size;
    return GW_OK;
}

gw_err gw_buf_append(gw_buf *b, const void *p, size_t n)
{
    gw_err e = gw_buf_reserve(b, n);
    if (e != GW_OK)
        return e;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return GW_OK;
}

gw_err gw_buf_append_byte(gw_buf *b, uint8_t c)
{
    if (b->len == b->alloc) {
        gw_err e = gw_buf_reserve(b, 1);
        if (e != GW_OK)
            return e;
    }
    b->data[b->len++] = c;
    return GW_OK;
}
