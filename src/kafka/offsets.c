/* offsets: ring-bitmap tracker of pending offsets; see offsets.h. */
#include "kafka/offsets.h"

#include <assert.h>
#include <stdlib.h>

static uint32_t round_pow2(uint32_t n)
{
    uint32_t w = 64;
    while (w < n && w < (1u << 30))
        w <<= 1;
    return w;
}

gw_err gw_offsets_init(gw_offsets *o, uint32_t window_min)
{
    o->window = round_pow2(window_min);
    o->bits = calloc(o->window / 64, sizeof *o->bits);
    if (o->bits == NULL)
        return GW_E_NOMEM;
    o->base = -1;
    o->next = -1;
    o->pending = 0;
    return GW_OK;
}

void gw_offsets_cleanup(gw_offsets *o)
{
    free(o->bits);
    o->bits = NULL;
}

static bool bit_get(const gw_offsets *o, int64_t off)
{
    uint64_t i = (uint64_t)off & (o->window - 1);
    return (o->bits[i / 64] >> (i % 64)) & 1u;
}

static void bit_set(gw_offsets *o, int64_t off, bool on)
{
    uint64_t i = (uint64_t)off & (o->window - 1);
    uint64_t m = (uint64_t)1 << (i % 64);
    if (on)
        o->bits[i / 64] |= m;
    else
        o->bits[i / 64] &= ~m;
}

/* The invariants of offsets.h that are cheap to check (debug builds). */
static void check(const gw_offsets *o)
{
    assert(o->base <= o->next);
    assert(o->next - o->base <= (int64_t)o->window);
    assert(o->pending <= o->window);
    assert(o->pending == 0 ? o->base == o->next : bit_get(o, o->base));
    (void)o;
}

gw_offsets_track_result gw_offsets_track(gw_offsets *o, int64_t offset)
{
    if (o->next >= 0 && offset < o->next)
        return GW_OFFSETS_DUPLICATE;
    if (o->pending == 0) {
        /* Nothing pending: a gap before offset holds nothing to wait for. */
        o->base = offset;
    } else if (offset - o->base >= (int64_t)o->window) {
        return GW_OFFSETS_FULL;
    }
    bit_set(o, offset, true);
    o->next = offset + 1;
    o->pending++;
    check(o);
    return GW_OFFSETS_TRACKED;
}

/* Move base to the lowest set bit in [base, next), or to next. Word-wise. */
static void advance_base(gw_offsets *o)
{
    if (o->pending == 0) {
        o->base = o->next;
        return;
    }
    while (o->base < o->next) {
        uint64_t i = (uint64_t)o->base & (o->window - 1);
        uint64_t word = o->bits[i / 64] >> (i % 64);
        if (word != 0) {
            o->base += __builtin_ctzll(word);
            return;
        }
        o->base += 64 - (int64_t)(i % 64);
    }
    o->base = o->next; /* unreachable while pending > 0 */
}

bool gw_offsets_done(gw_offsets *o, int64_t offset)
{
    if (o->pending == 0 || offset < o->base || offset >= o->next)
        return false;
    if (!bit_get(o, offset))
        return false;
    bit_set(o, offset, false);
    o->pending--;
    if (offset == o->base)
        advance_base(o);
    check(o);
    return true;
}

int64_t gw_offsets_committable(const gw_offsets *o)
{
    return o->base;
}

int64_t gw_offsets_runahead(const gw_offsets *o)
{
    if (o->next < 0)
        return 0;
    return o->next - o->base;
}

uint32_t gw_offsets_pending(const gw_offsets *o)
{
    return o->pending;
}

uint32_t gw_offsets_capacity(const gw_offsets *o)
{
    return o->window;
}
