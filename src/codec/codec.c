/* codec: lifecycle, framing and the typed entry points; see codec.h.
 * The reader and writer are in avro_read.c / avro_write.c, the tables in
 * fields.c, the start-up schema check in schema_check.c. */
#include "codec/codec.h"

#include <avro.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "codec/canon.h"
#include "codec/codec_private.h"
#include "codec/schema_check.h"
#include "codec/schemas.h"
#include "common/log.h"

enum { MAX_VERSIONS = 16, MAX_CONFLUENT_IDS = 32, SINGLE_OBJECT_HEADER = 10, CONFLUENT_HEADER = 5 };

typedef struct {
    uint64_t fingerprint;
    char *canonical; /* owned */
} version_info;

struct gw_codec {
    gw_codec_limits lim;
    gw_framing decode_framing;
    version_info versions[MAX_VERSIONS]; /* parallel to gw_schema_versions */
    struct {
        uint32_t id;
        int version_index;
    } confluent[MAX_CONFLUENT_IDS];
    size_t confluent_count;
};

void gw_codec_limits_default(gw_codec_limits *lim)
{
    lim->max_message_bytes = 1u << 20;
    lim->max_messages = 256;
    lim->max_string_bytes = 256u << 10;
    lim->max_map_entries = 64;
    lim->max_capabilities = 32;
    lim->max_tools = 128;
    lim->max_tool_calls = 64;
    lim->max_alloc_bytes = 4u << 20;
}

static void apply_limits(gw_codec_limits *dst, const gw_codec_limits *src)
{
    gw_codec_limits_default(dst);
    if (src == NULL)
        return;
#define TAKE(f)                                                                                    \
    if (src->f != 0)                                                                               \
    dst->f = src->f
    TAKE(max_message_bytes);
    TAKE(max_messages);
    TAKE(max_string_bytes);
    TAKE(max_map_entries);
    TAKE(max_capabilities);
    TAKE(max_tools);
    TAKE(max_tool_calls);
    TAKE(max_alloc_bytes);
#undef TAKE
}

/* ---- avro-c allocator cap (process-wide, because avro-c's allocator is) ---- */

static size_t avro_cap_bytes;

static void *capped_avro_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    if (nsize > __atomic_load_n(&avro_cap_bytes, __ATOMIC_RELAXED))
        return NULL;
    return realloc(ptr, nsize);
}

void gw_codec_cap_avro_allocator(size_t max_bytes)
{
    __atomic_store_n(&avro_cap_bytes, max_bytes, __ATOMIC_RELAXED);
    avro_set_allocator(capped_avro_alloc, NULL);
}

/* ---- start-up: parse, check and fingerprint every embedded schema ---- */

static const char *find_source(const char *name)
{
    for (size_t i = 0; i < gw_schema_source_count; i++) {
        if (strcmp(gw_schema_sources[i].name, name) == 0)
            return gw_schema_sources[i].json;
    }
    return NULL;
}

static gw_err load_version(version_info *vi, const gw_schema_version *v)
{
    const char *text = find_source(v->source);
    if (text == NULL) {
        GW_ERROR("schema_missing", "schema", v->source);
        return GW_E_CONFIG;
    }
    avro_schema_t as = NULL;
    if (avro_schema_from_json_length(text, strlen(text), &as) != 0) {
        GW_ERROR("schema_invalid", "schema", v->source, "reason", avro_strerror());
        return GW_E_CONFIG;
    }
    avro_schema_decref(as);
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    gw_err e = root ? gw_schema_check_record(root, v->desc, 0) : GW_E_CONFIG;
    json_decref(root);
    if (e != GW_OK)
        return e;
    gw_buf canon;
    gw_buf_init(&canon, 1u << 20);
    e = gw_avro_canonical_form(text, &canon);
    if (e == GW_OK) {
        vi->fingerprint = gw_avro_fingerprint64(canon.data, canon.len);
        vi->canonical = (char *)canon.data; /* NUL-terminated by canonical_form */
    } else {
        gw_buf_cleanup(&canon);
    }
    return e;
}

gw_codec *gw_codec_new(const gw_codec_limits *lim)
{
    if (gw_schema_version_count > MAX_VERSIONS)
        return NULL;
    if (__atomic_load_n(&avro_cap_bytes, __ATOMIC_RELAXED) == 0)
        gw_codec_cap_avro_allocator(64u << 20);
    gw_codec *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    apply_limits(&c->lim, lim);
    c->decode_framing = GW_FRAMING_AUTO;
    for (size_t i = 0; i < gw_schema_version_count; i++) {
        if (load_version(&c->versions[i], &gw_schema_versions[i]) != GW_OK) {
            gw_codec_free(c);
            return NULL;
        }
    }
    return c;
}

void gw_codec_free(gw_codec *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < MAX_VERSIONS; i++)
        free(c->versions[i].canonical);
    free(c);
}

const gw_codec_limits *gw_codec_get_limits(const gw_codec *c)
{
    return &c->lim;
}

void gw_codec_set_decode_framing(gw_codec *c, gw_framing f)
{
    c->decode_framing = f;
}

gw_err gw_codec_set_confluent_id(gw_codec *c, uint32_t schema_id, gw_record_kind kind, int version)
{
    int vi = gw_schema_version_index(kind, version);
    if (vi < 0)
        return GW_E_CONFIG;
    for (size_t i = 0; i < c->confluent_count; i++) {
        if (c->confluent[i].id == schema_id) {
            c->confluent[i].version_index = vi;
            return GW_OK;
        }
    }
    if (c->confluent_count == MAX_CONFLUENT_IDS)
        return GW_E_CONFIG;
    c->confluent[c->confluent_count].id = schema_id;
    c->confluent[c->confluent_count].version_index = vi;
    c->confluent_count++;
    return GW_OK;
}

uint64_t gw_codec_fingerprint(const gw_codec *c, gw_record_kind kind, int version)
{
    int i = gw_schema_version_index(kind, version);
    return i < 0 ? 0 : c->versions[i].fingerprint;
}

const char *gw_codec_canonical_form(const gw_codec *c, gw_record_kind kind, int version)
{
    int i = gw_schema_version_index(kind, version);
    return i < 0 ? NULL : c->versions[i].canonical;
}

/* ---- framing ---- */

static gw_err detect_single_object(const gw_codec *c, gw_record_kind kind, const uint8_t *b,
                                   size_t len, gw_codec_frame *f)
{
    if (b[0] != 0xC3 || (len >= 2 && b[1] != 0x01))
        return GW_E_CODEC_BAD_MAGIC;
    if (len < SINGLE_OBJECT_HEADER)
        return GW_E_CODEC_TRUNCATED;
    uint64_t fp = 0;
    for (int i = 9; i >= 2; i--)
        fp = (fp << 8) | b[i];
    f->framing = GW_FRAMING_SINGLE_OBJECT;
    f->fingerprint = fp;
    f->header_bytes = SINGLE_OBJECT_HEADER;
    for (size_t i = 0; i < gw_schema_version_count; i++) {
        if (gw_schema_versions[i].kind == kind && c->versions[i].fingerprint == fp) {
            f->writer_version = gw_schema_versions[i].version;
            return GW_OK;
        }
    }
    return GW_E_CODEC_UNKNOWN_SCHEMA;
}

static gw_err detect_confluent(const gw_codec *c, gw_record_kind kind, const uint8_t *b, size_t len,
                               gw_codec_frame *f)
{
    if (b[0] != 0x00)
        return GW_E_CODEC_BAD_MAGIC;
    if (len < CONFLUENT_HEADER)
        return GW_E_CODEC_TRUNCATED;
    uint32_t id = (uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 | b[4];
    f->framing = GW_FRAMING_CONFLUENT;
    f->schema_id = id;
    f->header_bytes = CONFLUENT_HEADER;
    for (size_t i = 0; i < c->confluent_count; i++) {
        int vi = c->confluent[i].version_index;
        if (c->confluent[i].id == id && gw_schema_versions[vi].kind == kind) {
            f->writer_version = gw_schema_versions[vi].version;
            f->fingerprint = c->versions[vi].fingerprint;
            return GW_OK;
        }
    }
    return GW_E_CODEC_UNKNOWN_SCHEMA;
}

static gw_err detect_as(const gw_codec *c, gw_framing mode, gw_record_kind kind, const void *buf,
                        size_t len, gw_codec_frame *f)
{
    const uint8_t *b = buf;
    memset(f, 0, sizeof *f);
    if ((unsigned)kind >= GW_REC__COUNT)
        return GW_E_INTERNAL;
    if (len == 0)
        return GW_E_CODEC_TRUNCATED;
    if (len > c->lim.max_message_bytes)
        return GW_E_CODEC_TOO_LARGE;
    if (mode == GW_FRAMING_AUTO)
        mode = b[0] == 0xC3   ? GW_FRAMING_SINGLE_OBJECT
               : b[0] == 0x00 ? GW_FRAMING_CONFLUENT
                              : GW_FRAMING_BARE;
    if (mode == GW_FRAMING_SINGLE_OBJECT)
        return detect_single_object(c, kind, b, len, f);
    if (mode == GW_FRAMING_CONFLUENT)
        return detect_confluent(c, kind, b, len, f);
    int v = gw_codec_current_version(kind);
    f->framing = GW_FRAMING_BARE;
    f->writer_version = v;
    f->fingerprint = gw_codec_fingerprint(c, kind, v);
    return GW_OK;
}

gw_err gw_codec_detect(const gw_codec *c, gw_record_kind kind, const void *buf, size_t len,
                       gw_codec_frame *f)
{
    return detect_as(c, c->decode_framing, kind, buf, len, f);
}

/* ---- decode / encode ---- */

gw_err gw_codec_decode(const gw_codec *c, gw_record_kind kind, const void *buf, size_t len,
                       gw_arena *arena, void *out)
{
    return gw_codec_decode_as(c, c->decode_framing, kind, buf, len, arena, out);
}

gw_err gw_codec_decode_as(const gw_codec *c, gw_framing framing, gw_record_kind kind,
                          const void *buf, size_t len, gw_arena *arena, void *out)
{
    gw_codec_frame f;
    gw_err e = detect_as(c, framing, kind, buf, len, &f);
    if (e != GW_OK)
        return e;
    gw_codec_init_defaults(kind, out);
    const gw_record_desc *writer =
        gw_schema_versions[gw_schema_version_index(kind, f.writer_version)].desc;
    gw_avro_reader r = {
        .p = (const uint8_t *)buf + f.header_bytes,
        .end = (const uint8_t *)buf + len,
        .arena = arena,
        .lim = &c->lim,
    };
    e = gw_avro_read_record(&r, writer, out);
    if (e == GW_OK && r.p != r.end)
        return GW_E_CODEC_TRAILING;
    return e;
}

static gw_err write_header(const gw_codec *c, int vi, gw_framing framing, gw_buf *out)
{
    uint8_t h[SINGLE_OBJECT_HEADER];
    if (framing == GW_FRAMING_BARE)
        return GW_OK;
    if (framing == GW_FRAMING_CONFLUENT) {
        for (size_t i = 0; i < c->confluent_count; i++) {
            if (c->confluent[i].version_index != vi)
                continue;
            uint32_t id = c->confluent[i].id;
            h[0] = 0;
            h[1] = (uint8_t)(id >> 24), h[2] = (uint8_t)(id >> 16);
            h[3] = (uint8_t)(id >> 8), h[4] = (uint8_t)id;
            return gw_buf_append(out, h, CONFLUENT_HEADER);
        }
        return GW_E_CODEC_UNKNOWN_SCHEMA;
    }
    uint64_t fp = c->versions[vi].fingerprint;
    h[0] = 0xC3;
    h[1] = 0x01;
    for (int i = 0; i < 8; i++)
        h[2 + i] = (uint8_t)(fp >> (8 * i));
    return gw_buf_append(out, h, SINGLE_OBJECT_HEADER);
}

gw_err gw_codec_encode(const gw_codec *c, gw_record_kind kind, const void *rec, int version,
                       gw_framing framing, gw_buf *out)
{
    int vi = gw_schema_version_index(kind, version ? version : gw_codec_current_version(kind));
    if (vi < 0)
        return GW_E_CODEC_UNKNOWN_SCHEMA;
    size_t start = out->len;
    gw_err e = write_header(c, vi, framing, out);
    if (e == GW_OK) {
        gw_avro_writer w = {.out = out, .lim = &c->lim};
        e = gw_avro_write_record(&w, gw_schema_versions[vi].desc, rec);
    }
    if (e == GW_E_LIMIT || (e == GW_OK && out->len - start > c->lim.max_message_bytes))
        e = GW_E_CODEC_TOO_LARGE;
    if (e != GW_OK)
        out->len = start;
    return e;
}

#define TYPED(name, kind, type)                                                                    \
    gw_err gw_codec_decode_##name(const gw_codec *c, const void *buf, size_t len, gw_arena *arena, \
                                  type *out)                                                       \
    {                                                                                              \
        return gw_codec_decode(c, kind, buf, len, arena, out);                                     \
    }                                                                                              \
    gw_err gw_codec_encode_##name(const gw_codec *c, const type *r, gw_framing framing,            \
                                  gw_buf *out)                                                     \
    {                                                                                              \
        return gw_codec_encode(c, kind, r, 0, framing, out);                                       \
    }
TYPED(request, GW_REC_REQUEST, gw_request)
TYPED(response, GW_REC_RESPONSE, gw_response)
TYPED(chunk, GW_REC_CHUNK, gw_chunk)
TYPED(usage, GW_REC_USAGE, gw_usage_event)
