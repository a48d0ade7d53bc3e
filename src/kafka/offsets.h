/*
 * offsets: per-partition tracker of in-flight and completed offsets, for
 * at-least-once delivery with out-of-order completion.
 *
 * Messages of one partition arrive in increasing offset order (gaps are
 * normal: transaction markers, compaction). Each is "tracked" when it is
 * taken from the consumer and "done" when every output it produced has been
 * acknowledged by the broker. The committable offset is the lowest offset
 * still pending, or one past the highest tracked offset when nothing is
 * pending: committing it never skips unfinished work.
 *
 * Storage is a ring bitmap of `window` bits over [base, base + window): bit
 * set = tracked and not yet done. The window is the run-ahead cap: a message
 * more than window-1 offsets past the lowest pending one cannot be tracked
 * (GW_OFFSETS_FULL) and the caller must pause the partition before that
 * happens (gw_offsets_runahead()).
 *
 * Invariants: base <= next; every set bit lies in [base, next); when pending
 * is 0, base == next; bit(base) is set whenever pending > 0.
 * Pure: no I/O, no clock, no librdkafka.
 */
#ifndef GW_KAFKA_OFFSETS_H
#define GW_KAFKA_OFFSETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct {
    uint64_t *bits;   /* window bits, ring-indexed by offset & (window - 1) */
    uint32_t window;  /* power of two, >= 64 */
    int64_t base;     /* committable: lowest pending offset, or next */
    int64_t next;     /* one past the highest tracked offset; -1 before the first */
    uint32_t pending; /* tracked and not yet done */
} gw_offsets;

typedef enum {
    GW_OFFSETS_TRACKED,   /* new offset, now pending */
    GW_OFFSETS_DUPLICATE, /* below next: a redelivery; ignore the message */
    GW_OFFSETS_FULL,      /* past the window: pause the partition, seek back */
} gw_offsets_track_result;

/* window_min is rounded up to a power of two (at least 64). */
gw_err gw_offsets_init(gw_offsets *o, uint32_t window_min);
void gw_offsets_cleanup(gw_offsets *o);

gw_offsets_track_result gw_offsets_track(gw_offsets *o, int64_t offset);
/* Mark a tracked offset done. Returns false (and changes nothing) when the
 * offset is not pending: done twice, never tracked. */
bool gw_offsets_done(gw_offsets *o, int64_t offset);

/* Offset to commit (the next one the group should read); -1 before any track. */
int64_t gw_offsets_committable(const gw_offsets *o);
/* How far the highest tracked offset runs ahead of the committable one. */
int64_t gw_offsets_runahead(const gw_offsets *o);
uint32_t gw_offsets_pending(const gw_offsets *o);
/* The largest run-ahead the window can hold: gw_offsets_track of offset
 * committable + capacity would be FULL. */
uint32_t gw_offsets_capacity(const gw_offsets *o);

#endif
