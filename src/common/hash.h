/*
 * hash: the small non-cryptographic 64-bit hashes the modules use for hash
 * tables, deterministic choices and feature hashing: FNV-1a over bytes or a C
 * string, and the MurmurHash3 finalizer to spread FNV's weak low bits.
 *
 * Not for anything an attacker chooses to collide with where that matters
 * (hash tables fed from outside cap their chains or their size). The values
 * are stable across builds and machines: tests and mock answers rely on it.
 */
#ifndef GW_COMMON_HASH_H
#define GW_COMMON_HASH_H

#include <stddef.h>
#include <stdint.h>

#define GW_FNV64_BASIS 14695981039346656037ULL /* 0xcbf29ce484222325 */
#define GW_FNV64_PRIME 1099511628211ULL

/* FNV-1a of n bytes, continuing from h (GW_FNV64_BASIS to start). */
static inline uint64_t gw_fnv1a64(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * GW_FNV64_PRIME;
    return h;
}

/* FNV-1a of a NUL-terminated string (NULL hashes like ""), continuing from h. */
static inline uint64_t gw_fnv1a64_str(uint64_t h, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; p != NULL && *p; p++)
        h = (h ^ *p) * GW_FNV64_PRIME;
    return h;
}

/* MurmurHash3's fmix64: every input bit affects every output bit. */
static inline uint64_t gw_fmix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

#endif
