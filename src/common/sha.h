/*
 * sha: SHA-1 (Redis script ids) and SHA-256 (response cache keys), plain C.
 *
 * Incremental: init, update any number of times, final. No allocation, no
 * I/O. Implemented here so the core library does not need libcrypto.
 */
#ifndef GW_COMMON_SHA_H
#define GW_COMMON_SHA_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[5];
    uint64_t len_bytes;
    uint8_t buf[64];
    size_t buf_len;
} gw_sha1;

typedef struct {
    uint32_t h[8];
    uint64_t len_bytes;
    uint8_t buf[64];
    size_t buf_len;
} gw_sha256;

void gw_sha1_init(gw_sha1 *c);
void gw_sha1_update(gw_sha1 *c, const void *data, size_t len);
void gw_sha1_final(gw_sha1 *c, uint8_t out[20]);

void gw_sha256_init(gw_sha256 *c);
void gw_sha256_update(gw_sha256 *c, const void *data, size_t len);
void gw_sha256_final(gw_sha256 *c, uint8_t out[32]);

/* Lower-case hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void gw_hex(const uint8_t *in, size_t n, char *out);

#endif
