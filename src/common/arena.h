/*
 * arena: a bump allocator with a hard byte cap.
 *
 * Everything that belongs to one request (its decoded fields, its response,
 * scratch strings) is allocated from the request's arena and freed at once
 * with gw_arena_cleanup(). The cap bounds what a hostile message can make a
 * worker allocate: an allocation that would cross it returns NULL.
 *
 * Invariant: used_bytes <= cap_bytes; blocks form a singly linked list, the
 * newest first; the first block may be embedded in the owner (inline_buf).
 */
#ifndef GW_COMMON_ARENA_H
#define GW_COMMON_ARENA_H

#include <stddef.h>

typedef struct gw_arena_block gw_arena_block;

typedef struct {
    gw_arena_block *head;
    size_t used_bytes; /* bytes handed out plus block overhead */
    size_t cap_bytes;  /* 0 means unlimited */
} gw_arena;

void gw_arena_init(gw_arena *a, size_t cap_bytes);
void gw_arena_cleanup(gw_arena *a);
/* Forget everything but keep nothing: same as cleanup + init with the same cap. */
void gw_arena_reset(gw_arena *a);

/* 16-byte aligned; NULL when the cap would be crossed or malloc fails. */
void *gw_arena_alloc(gw_arena *a, size_t n);
void *gw_arena_calloc(gw_arena *a, size_t count, size_t size);
/* Copies; a NULL source yields NULL. */
char *gw_arena_strdup(gw_arena *a, const char *s);
char *gw_arena_strndup(gw_arena *a, const char *s, size_t n);
void *gw_arena_memdup(gw_arena *a, const void *p, size_t n);
/* printf into the arena. */
char *gw_arena_printf(gw_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
