/* arena: see arena.h. Blocks grow geometrically from 4 KiB to 1 MiB; a larger
 * request gets a block of its own size. */
#include "common/arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gw_arena_block {
    gw_arena_block *next;
    size_t size; /* usable bytes in data[] */
    size_t off;  /* next free byte in data[] */
    _Alignas(16) unsigned char data[];
};

enum { ARENA_MIN_BLOCK = 4096, ARENA_MAX_BLOCK = 1 << 20, ARENA_ALIGN = 16 };

void gw_arena_init(gw_arena *a, size_t cap_bytes)
{
    a->head = NULL;
    a->used_bytes = 0;
    a->cap_bytes = cap_bytes;
}

void gw_arena_cleanup(gw_arena *a)
{
    gw_arena_block *b = a->head;
    while (b != NULL) {
        gw_arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
    a->used_bytes = 0;
}

void gw_arena_reset(gw_arena *a)
{
    gw_arena_cleanup(a);
}

static gw_arena_block *new_block(gw_arena *a, size_t need)
{
    size_t size = a->head ? a->head->size * 2 : ARENA_MIN_BLOCK;
    if (size > ARENA_MAX_BLOCK)
        size = ARENA_MAX_BLOCK;
    if (size < need)
        size = need;
    size_t total = sizeof(gw_arena_block) + size;
    if (a->cap_bytes && (total > a->cap_bytes || a->used_bytes > a->cap_bytes - total)) {
        /* Fall back to an exact-size block before giving up. */
        size = need;
        total = sizeof(gw_arena_block) + size;
        if (total > a->cap_bytes || a->used_bytes > a->cap_bytes - total)
            return NULL;
    }
    gw_arena_block *b = malloc(total);
    if (b == NULL)
        return NULL;
    b->size = size;
    b->off = 0;
    b->next = a->head;
    a->head = b;
    a->used_bytes += total;
    return b;
}

void *gw_arena_alloc(gw_arena *a, size_t n)
{
    if (n == 0)
        n = 1;
    if (n > SIZE_MAX - ARENA_ALIGN)
        return NULL;
    size_t rounded = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    gw_arena_block *b = a->head;
    if (b == NULL || b->size - b->off < rounded) {
        b = new_block(a, rounded);
        if (b == NULL)
            return NULL;
    }
    void *p = b->data + b->off;
    b->off += rounded;
    return p;
}

void *gw_arena_calloc(gw_arena *a, size_t count, size_t size)
{
    if (size != 0 && count > SIZE_MAX / size)
        return NULL;
    void *p = gw_arena_alloc(a, count * size);
    if (p != NULL)
        memset(p, 0, count * size);
    return p;
}

void *gw_arena_memdup(gw_arena *a, const void *src, size_t n)
{
    void *p = gw_arena_alloc(a, n);
    if (p != NULL && n > 0)
        memcpy(p, src, n);
    return p;
}

char *gw_arena_strndup(gw_arena *a, const char *s, size_t n)
{
    if (s == NULL)
        return NULL;
    char *p = gw_arena_alloc(a, n + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *gw_arena_strdup(gw_arena *a, const char *s)
{
    if (s == NULL)
        return NULL;
    return gw_arena_strndup(a, s, strlen(s));
}

char *gw_arena_printf(gw_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *p = gw_arena_alloc(a, (size_t)n + 1);
    if (p == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}
