/*
 * buf: a growable byte buffer with a hard cap.
 *
 * Encoders write into a gw_buf; the cap bounds what one message may grow to,
 * so a runaway encoder or a hostile producer of data cannot make it grow
 * without limit. The buffer owns its storage; reset keeps the storage for
 * reuse (the hot path allocates once), cleanup frees it.
 *
 * Invariant: len <= alloc; len <= cap_bytes when cap_bytes != 0;
 * data == NULL exactly when alloc == 0.
 */
#ifndef GW_COMMON_BUF_H
#define GW_COMMON_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct {
    uint8_t *data;
    size_t len;
    size_t alloc;
    size_t cap_bytes; /* 0 means unlimited */
} gw_buf;

void gw_buf_init(gw_buf *b, size_t cap_bytes);
void gw_buf_cleanup(gw_buf *b);
/* len = 0; keeps the storage. */
void gw_buf_reset(gw_buf *b);
/* Make room for n more bytes. GW_E_LIMIT past the cap, GW_E_NOMEM if malloc fails. */
gw_err gw_buf_reserve(gw_buf *b, size_t n);
gw_err gw_buf_append(gw_buf *b, const void *p, size_t n);
gw_err gw_buf_append_byte(gw_buf *b, uint8_t c);

#endif
