/* avro_read: the bounded Avro binary reader over the field tables.
 *
 * Invariants: r->p never passes r->end; every length is checked against the
 * bytes that remain and the limits before anything is allocated; every byte
 * of memory comes from the arena and counts against max_alloc_bytes. */
#include "codec/codec_private.h"

#include <string.h>

static gw_err rd_alloc(gw_avro_reader *r, size_t n, void **out)
{
    if (n > r->lim->max_alloc_bytes - r->alloc_bytes)
        return GW_E_CODEC_LIMIT;
    r->alloc_bytes += n;
    *out = gw_arena_alloc(r->arena, n);
    return *out == NULL ? GW_E_NOMEM : GW_OK;
}

static gw_err rd_long(gw_avro_reader *r, int64_t *out)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 10; i++) {
        if (r->p == r->end)
            return GW_E_CODEC_TRUNCATED;
        uint8_t b = *r->p++;
        if (i == 9 && b > 1)
            return GW_E_CODEC_BAD_DATA; /* more than 64 bits */
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if ((b & 0x80) == 0) {
            *out = (int64_t)((v >> 1) ^ (0 - (v & 1)));
            return GW_OK;
        }
    }
    return GW_E_CODEC_BAD_DATA;
}

static gw_err rd_int(gw_avro_reader *r, int32_t *out)
{
    int64_t v;
    gw_err e = rd_long(r, &v);
    if (e != GW_OK)
        return e;
    if (v < INT32_MIN || v > INT32_MAX)
        return GW_E_CODEC_BAD_DATA;
    *out = (int32_t)v;
    return GW_OK;
}

static gw_err rd_index(gw_avro_reader *r, int64_t n, int64_t *out)
{
    gw_err e = rd_long(r, out);
    if (e == GW_OK && (*out < 0 || *out >= n))
        return GW_E_CODEC_BAD_DATA; /* enum or union index out of range */
    return e;
}

static gw_err rd_bool(gw_avro_reader *r, bool *out)
{
    if (r->p == r->end)
        return GW_E_CODEC_TRUNCATED;
    uint8_t b = *r->p++;
    if (b > 1)
        return GW_E_CODEC_BAD_DATA;
    *out = b == 1;
    return GW_OK;
}

static gw_err rd_double(gw_avro_reader *r, double *out)
{
    if (r->end - r->p < 8)
        return GW_E_CODEC_TRUNCATED;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | r->p[i];
    memcpy(out, &v, sizeof v);
    r->p += 8;
    return GW_OK;
}

static gw_err rd_string(gw_avro_reader *r, const char **out)
{
    int64_t len;
    gw_err e = rd_long(r, &len);
    if (e != GW_OK)
        return e;
    if (len < 0)
        return GW_E_CODEC_BAD_DATA;
    if ((uint64_t)len > r->lim->max_string_bytes)
        return GW_E_CODEC_LIMIT;
    if ((uint64_t)len > (uint64_t)(r->end - r->p))
        return GW_E_CODEC_TRUNCATED;
    if (!gw_utf8_valid(r->p, (size_t)len))
        return GW_E_CODEC_BAD_UTF8;
    char *s;
    e = rd_alloc(r, (size_t)len + 1, (void **)&s);
    if (e != GW_OK)
        return e;
    memcpy(s, r->p, (size_t)len);
    s[len] = '\0';
    r->p += len;
    *out = s;
    return GW_OK;
}

/* One block header of an array or map: count, and for a negative count the
 * block's byte size (which we do not need but must be sane). */
static gw_err rd_block_count(gw_avro_reader *r, int64_t *count)
{
    gw_err e = rd_long(r, count);
    if (e != GW_OK || *count >= 0)
        return e;
    if (*count == INT64_MIN)
        return GW_E_CODEC_BAD_DATA;
    *count = -*count;
    int64_t size;
    e = rd_long(r, &size);
    if (e == GW_OK && size < 0)
        return GW_E_CODEC_BAD_DATA;
    return e;
}

typedef gw_err (*rd_item_fn)(gw_avro_reader *r, void *item, const void *ctx);

/* Reads the blocks of an array or map into one arena array. min_item_bytes lets
 * a count be rejected against the remaining bytes before anything is allocated. */
static gw_err rd_blocks(gw_avro_reader *r, size_t elem_size, size_t min_item_bytes,
                        size_t max_items, rd_item_fn fn, const void *ctx, void **items,
                        size_t *count)
{
    size_t total = 0, cap = 0;
    unsigned char *arr = NULL;
    for (;;) {
        int64_t n;
        gw_err e = rd_block_count(r, &n);
        if (e != GW_OK)
            return e;
        if (n == 0)
            break;
        if ((uint64_t)n > max_items - total)
            return GW_E_CODEC_LIMIT;
        if ((uint64_t)n > (uint64_t)(r->end - r->p) / min_item_bytes)
            return GW_E_CODEC_TRUNCATED;
        if (total + (size_t)n > cap) {
            size_t ncap = cap * 2 > total + (size_t)n ? cap * 2 : total + (size_t)n;
            if (ncap > max_items)
                ncap = max_items;
            unsigned char *narr;
            e = rd_alloc(r, ncap * elem_size, (void **)&narr);
            if (e != GW_OK)
                return e;
            if (total > 0)
                memcpy(narr, arr, total * elem_size);
            arr = narr;
            cap = ncap;
        }
        for (int64_t i = 0; i < n; i++, total++) {
            memset(arr + total * elem_size, 0, elem_size);
            e = fn(r, arr + total * elem_size, ctx);
            if (e != GW_OK)
                return e;
        }
    }
    *items = arr;
    *count = total;
    return GW_OK;
}

static gw_err rd_str_item(gw_avro_reader *r, void *item, const void *ctx)
{
    return rd_string(r, (const char **)item);
}

static gw_err rd_kv_item(gw_avro_reader *r, void *item, const void *ctx)
{
    gw_kv *kv = item;
    gw_err e = rd_string(r, &kv->key);
    return e != GW_OK ? e : rd_string(r, &kv->value);
}

static gw_err rd_record_item(gw_avro_reader *r, void *item, const void *ctx)
{
    return gw_avro_read_record(r, ctx, item);
}

static gw_err rd_map(gw_avro_reader *r, gw_map *m)
{
    void *items = NULL;
    gw_err e = rd_blocks(r, sizeof(gw_kv), 2, r->lim->max_map_entries, rd_kv_item, NULL, &items,
                         &m->count);
    m->items = items;
    return e;
}

/* ["null", T]: false for null. */
static gw_err rd_union_present(gw_avro_reader *r, bool *present)
{
    int64_t idx;
    gw_err e = rd_index(r, 2, &idx);
    *present = idx == 1;
    return e;
}

static gw_err rd_optional(gw_avro_reader *r, const gw_field *f, unsigned char *base)
{
    bool present = false;
    gw_err e = rd_union_present(r, &present);
    if (e != GW_OK || !present)
        return e;
    switch (f->kind) {
    case GW_F_OPT_STR:
        return rd_string(r, (const char **)(base + f->off));
    case GW_F_OPT_LONG:
        *(bool *)(base + f->aux_off) = true;
        return rd_long(r, (int64_t *)(base + f->off));
    case GW_F_OPT_DOUBLE:
        *(bool *)(base + f->aux_off) = true;
        return rd_double(r, (double *)(base + f->off));
    case GW_F_OPT_USAGE:
        *(bool *)(base + f->aux_off) = true;
        return gw_avro_read_record(r, &gw_desc_token_usage, base + f->off);
    case GW_F_OPT_ERROR: {
        gw_error_rec *er;
        e = rd_alloc(r, sizeof *er, (void **)&er);
        if (e != GW_OK)
            return e;
        memset(er, 0, sizeof *er);
        *(gw_error_rec **)(base + f->off) = er;
        return gw_avro_read_record(r, &gw_desc_gateway_error, er);
    }
    case GW_F_OPT_REC: {
        void *sub;
        e = rd_alloc(r, f->sub->struct_size, &sub);
        if (e != GW_OK)
            return e;
        gw_desc_init_defaults(f->sub, sub);
        *(void **)(base + f->off) = sub;
        return gw_avro_read_record(r, f->sub, sub);
    }
    default:
        return GW_E_INTERNAL;
    }
}

static gw_err rd_enum(gw_avro_reader *r, int64_t n, int *out)
{
    int64_t idx = 0;
    gw_err e = rd_index(r, n, &idx);
    if (e == GW_OK)
        *out = (int)idx;
    return e;
}

static gw_err rd_field(gw_avro_reader *r, const gw_field *f, unsigned char *base)
{
    void *v = base + f->off;
    int idx = 0;
    gw_err e;
    switch (f->kind) {
    case GW_F_STR:
        return rd_string(r, (const char **)v);
    case GW_F_INT:
        return rd_int(r, (int32_t *)v);
    case GW_F_LONG:
        return rd_long(r, (int64_t *)v);
    case GW_F_DOUBLE:
        return rd_double(r, (double *)v);
    case GW_F_BOOL:
        return rd_bool(r, (bool *)v);
    case GW_F_ROLE:
        e = rd_enum(r, GW_ROLE__COUNT, &idx);
        *(gw_role *)v = (gw_role)idx;
        return e;
    case GW_F_STRATEGY:
        e = rd_enum(r, GW_ROUTE__COUNT, &idx);
        *(gw_strategy *)v = (gw_strategy)idx;
        return e;
    case GW_F_STR_MAP:
        return rd_map(r, (gw_map *)v);
    case GW_F_STR_ARRAY:
        return rd_blocks(r, sizeof(char *), 1, r->lim->max_capabilities, rd_str_item, NULL,
                         (void **)v, (size_t *)(base + f->aux_off));
    case GW_F_REC_ARRAY:
        return rd_blocks(r, f->sub->struct_size, GW_MIN_RECORD_BYTES, gw_limit_of(r->lim, f->lim),
                         rd_record_item, f->sub, (void **)v, (size_t *)(base + f->aux_off));
    case GW_F_USAGE:
        return gw_avro_read_record(r, &gw_desc_token_usage, v);
    default:
        return rd_optional(r, f, base);
    }
}

gw_err gw_avro_read_record(gw_avro_reader *r, const gw_record_desc *d, void *rec)
{
    if (++r->depth > 5) /* our schemas nest at most 4 deep (request, message, tool call) */
        return GW_E_INTERNAL;
    for (size_t i = 0; i < d->field_count; i++) {
        gw_err e = rd_field(r, &d->fields[i], rec);
        if (e != GW_OK)
            return e;
    }
    r->depth--;
    return GW_OK;
}

/* Validates UTF-8 as RFC 3629 defines it (no overlongs, no surrogates, nothing
 * above U+10FFFF) and also refuses NUL, which C strings cannot carry. */
bool gw_utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            /* all ASCII and no zero byte */
            if ((w & 0x8080808080808080ULL) != 0 ||
                ((w - 0x0101010101010101ULL) & ~w & 0x8080808080808080ULL) != 0)
                break;
            i += 8;
        }
        if (i >= n)
            break;
        uint8_t c = s[i];
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2, cp = c & 0x1F, min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3, cp = c & 0x0F, min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}
