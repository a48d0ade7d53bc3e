/* avro_write: the Avro binary writer over the field tables. It enforces the
 * same string, array and map limits as the reader, so whatever modelgw writes
 * it can read back. A full gw_buf (its cap) is reported as CODEC_TOO_LARGE. */
#include "codec/codec_private.h"

#include <string.h>

static gw_err wr_map_err(gw_err e)
{
    return e == GW_E_LIMIT ? GW_E_CODEC_TOO_LARGE : e;
}

static gw_err wr_long(gw_avro_writer *w, int64_t v)
{
    gw_err e = gw_buf_reserve(w->out, 10);
    if (e != GW_OK)
        return wr_map_err(e);
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    uint8_t *p = w->out->data + w->out->len;
    size_t n = 0;
    while (z >= 0x80) {
        p[n++] = (uint8_t)(z | 0x80);
        z >>= 7;
    }
    p[n++] = (uint8_t)z;
    w->out->len += n;
    return GW_OK;
}

static gw_err wr_bytes(gw_avro_writer *w, const void *p, size_t n)
{
    return wr_map_err(gw_buf_append(w->out, p, n));
}

static gw_err wr_bool(gw_avro_writer *w, bool b)
{
    return wr_map_err(gw_buf_append_byte(w->out, b ? 1 : 0));
}

static gw_err wr_double(gw_avro_writer *w, double d)
{
    uint64_t v;
    uint8_t b[8];
    memcpy(&v, &d, sizeof v);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    return wr_bytes(w, b, 8);
}

static gw_err wr_string(gw_avro_writer *w, const char *s)
{
    if (s == NULL)
        s = "";
    size_t n = strlen(s);
    if (n > w->lim->max_string_bytes)
        return GW_E_CODEC_LIMIT;
    if (!gw_utf8_valid((const uint8_t *)s, n))
        return GW_E_CODEC_BAD_UTF8;
    gw_err e = wr_long(w, (int64_t)n);
    return e != GW_OK ? e : wr_bytes(w, s, n);
}

static gw_err wr_map(gw_avro_writer *w, const gw_map *m)
{
    if (m->count > w->lim->max_map_entries)
        return GW_E_CODEC_LIMIT;
    gw_err e = GW_OK;
    if (m->count > 0)
        e = wr_long(w, (int64_t)m->count);
    for (size_t i = 0; e == GW_OK && i < m->count; i++) {
        e = wr_string(w, m->items[i].key);
        if (e == GW_OK)
            e = wr_string(w, m->items[i].value);
    }
    return e != GW_OK ? e : wr_long(w, 0);
}

static gw_err wr_strings(gw_avro_writer *w, const char *const *v, size_t n)
{
    if (n > w->lim->max_capabilities)
        return GW_E_CODEC_LIMIT;
    gw_err e = GW_OK;
    if (n > 0)
        e = wr_long(w, (int64_t)n);
    for (size_t i = 0; e == GW_OK && i < n; i++)
        e = wr_string(w, v[i]);
    return e != GW_OK ? e : wr_long(w, 0);
}

static gw_err wr_records(gw_avro_writer *w, const gw_field *f, const unsigned char *v, size_t n)
{
    if (n > gw_limit_of(w->lim, f->lim))
        return GW_E_CODEC_LIMIT;
    if (n > 0 && v == NULL)
        return GW_E_INTERNAL;
    gw_err e = GW_OK;
    if (n > 0)
        e = wr_long(w, (int64_t)n);
    for (size_t i = 0; e == GW_OK && i < n; i++)
        e = gw_avro_write_record(w, f->sub, v + i * f->sub->struct_size);
    return e != GW_OK ? e : wr_long(w, 0);
}

static gw_err wr_enum(gw_avro_writer *w, int v, int n)
{
    if (v < 0 || v >= n)
        return GW_E_CODEC_BAD_DATA;
    return wr_long(w, v);
}

/* ["null", T]: writes the branch index; true when T follows. */
static gw_err wr_optional(gw_avro_writer *w, const gw_field *f, const unsigned char *base)
{
    const void *v = base + f->off;
    bool present;
    if (f->kind == GW_F_OPT_STR || f->kind == GW_F_OPT_ERROR || f->kind == GW_F_OPT_REC)
        present = *(const void *const *)v != NULL;
    else
        present = *(const bool *)(base + f->aux_off);
    gw_err e = wr_long(w, present ? 1 : 0);
    if (e != GW_OK || !present)
        return e;
    switch (f->kind) {
    case GW_F_OPT_STR:
        return wr_string(w, *(const char *const *)v);
    case GW_F_OPT_LONG:
        return wr_long(w, *(const int64_t *)v);
    case GW_F_OPT_DOUBLE:
        return wr_double(w, *(const double *)v);
    case GW_F_OPT_USAGE:
        return gw_avro_write_record(w, &gw_desc_token_usage, v);
    case GW_F_OPT_ERROR:
        return gw_avro_write_record(w, &gw_desc_gateway_error, *(const gw_error_rec *const *)v);
    case GW_F_OPT_REC:
        return gw_avro_write_record(w, f->sub, *(const void *const *)v);
    default:
        return GW_E_INTERNAL;
    }
}

static gw_err wr_field(gw_avro_writer *w, const gw_field *f, const unsigned char *base)
{
    const void *v = base + f->off;
    switch (f->kind) {
    case GW_F_STR:
        return wr_string(w, *(const char *const *)v);
    case GW_F_INT:
        return wr_long(w, *(const int32_t *)v);
    case GW_F_LONG:
        return wr_long(w, *(const int64_t *)v);
    case GW_F_DOUBLE:
        return wr_double(w, *(const double *)v);
    case GW_F_BOOL:
        return wr_bool(w, *(const bool *)v);
    case GW_F_ROLE:
        return wr_enum(w, (int)*(const gw_role *)v, GW_ROLE__COUNT);
    case GW_F_STRATEGY:
        return wr_enum(w, (int)*(const gw_strategy *)v, GW_ROUTE__COUNT);
    case GW_F_STR_MAP:
        return wr_map(w, (const gw_map *)v);
    case GW_F_STR_ARRAY:
        return wr_strings(w, *(const char *const *const *)v, *(const size_t *)(base + f->aux_off));
    case GW_F_REC_ARRAY:
        return wr_records(w, f, *(const unsigned char *const *)v,
                          *(const size_t *)(base + f->aux_off));
    case GW_F_USAGE:
        return gw_avro_write_record(w, &gw_desc_token_usage, v);
    default:
        return wr_optional(w, f, base);
    }
}

gw_err gw_avro_write_record(gw_avro_writer *w, const gw_record_desc *d, const void *rec)
{
    for (size_t i = 0; i < d->field_count; i++) {
        gw_err e = wr_field(w, &d->fields[i], rec);
        if (e != GW_OK)
            return e;
    }
    return GW_OK;
}
