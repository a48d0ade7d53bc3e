/*
 * codec_private: the field tables that drive the Avro reader, the writer, the
 * JSON conversion and the start-up check against schemas/NAME.avsc.
 *
 * One gw_record_desc per Avro record (and per version of a top-level record)
 * lists its fields in schema order; each field says its Avro shape (kind) and
 * where it lives in the C struct. Invariant, checked by gw_codec_new(): the
 * embedded schema of every version has exactly these fields, names, order and
 * types. Adding a field means adding a row here and to the .avsc.
 */
#ifndef GW_CODEC_CODEC_PRIVATE_H
#define GW_CODEC_CODEC_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/codec.h"

typedef enum {
    GW_F_STR,        /* "string" -> const char* (never NULL after decode) */
    GW_F_OPT_STR,    /* ["null","string"] -> const char*, NULL = null */
    GW_F_INT,        /* "int" -> int32_t */
    GW_F_LONG,       /* "long" -> int64_t */
    GW_F_OPT_LONG,   /* ["null","long"] -> int64_t + bool at aux */
    GW_F_DOUBLE,     /* "double" -> double */
    GW_F_OPT_DOUBLE, /* ["null","double"] -> double + bool at aux */
    GW_F_BOOL,       /* "boolean" -> bool */
    GW_F_ROLE,       /* enum MessageRole -> gw_role */
    GW_F_STRATEGY,   /* enum RoutingStrategy -> gw_strategy */
    GW_F_STR_MAP,    /* map<string> -> gw_map (max_map_entries) */
    GW_F_STR_ARRAY,  /* array<string> -> const char** + size_t at aux (max_capabilities) */
    GW_F_REC_ARRAY,  /* array<record sub> -> sub struct* + size_t at aux (limit: lim) */
    GW_F_USAGE,      /* TokenUsage -> gw_token_usage */
    GW_F_OPT_USAGE,  /* ["null",TokenUsage] -> gw_token_usage + bool at aux */
    GW_F_OPT_ERROR,  /* ["null",GatewayError] -> gw_error_rec* */
    GW_F_OPT_REC,    /* ["null",record sub] -> sub struct* (arena), NULL = null */
} gw_field_kind;

/* Which gw_codec_limits entry bounds a GW_F_REC_ARRAY. */
typedef enum {
    GW_LIM_MESSAGES,   /* max_messages */
    GW_LIM_TOOLS,      /* max_tools */
    GW_LIM_TOOL_CALLS, /* max_tool_calls */
} gw_limit_sel;

typedef struct gw_record_desc gw_record_desc;

typedef struct {
    const char *name;
    gw_field_kind kind;
    uint16_t off;              /* offset of the value in the struct */
    uint16_t aux_off;          /* count or presence flag, see kind */
    double dflt;               /* default for INT, DOUBLE, BOOL, STRATEGY fields */
    const gw_record_desc *sub; /* REC_ARRAY, OPT_REC: the record */
    gw_limit_sel lim;          /* REC_ARRAY: its count limit */
} gw_field;

struct gw_record_desc {
    const char *name; /* Avro record name without namespace */
    const gw_field *fields;
    size_t field_count;
    size_t struct_size;
};

/* The smallest Avro encoding of any record a REC_ARRAY holds (three fields of
 * at least one byte each), so a count can be checked against the bytes left. */
enum { GW_MIN_RECORD_BYTES = 3 };

/* The limit sel picks from lim. */
size_t gw_limit_of(const gw_codec_limits *lim, gw_limit_sel sel);

/* One compiled-in schema version of a top-level record. */
typedef struct {
    gw_record_kind kind;
    int version;
    const char *source; /* gw_schema_sources[].name */
    const gw_record_desc *desc;
} gw_schema_version;

extern const gw_record_desc gw_desc_token_usage;
extern const gw_record_desc gw_desc_gateway_error;
extern const gw_schema_version gw_schema_versions[];
extern const size_t gw_schema_version_count;

#define GW_AVRO_NAMESPACE "io.modelgw"

/* Index into gw_schema_versions, or -1. */
int gw_schema_version_index(gw_record_kind kind, int version);
/* The current (highest) version's descriptor of kind. */
const gw_record_desc *gw_current_desc(gw_record_kind kind);
/* Zero the struct and apply the descriptor's defaults. */
void gw_desc_init_defaults(const gw_record_desc *d, void *rec);

/* The reader's cursor over one datum; see avro_read.c. */
typedef struct {
    const uint8_t *p;
    const uint8_t *end;
    gw_arena *arena;
    const gw_codec_limits *lim;
    size_t alloc_bytes; /* taken from the arena by this decode */
    int depth;
} gw_avro_reader;

typedef struct {
    gw_buf *out;
    const gw_codec_limits *lim;
} gw_avro_writer;

/* Reads the fields of d, in d's order, into rec (which holds defaults already). */
gw_err gw_avro_read_record(gw_avro_reader *r, const gw_record_desc *d, void *rec);
gw_err gw_avro_write_record(gw_avro_writer *w, const gw_record_desc *d, const void *rec);

/* UTF-8 check over n bytes; false for invalid sequences and for NUL bytes. */
bool gw_utf8_valid(const uint8_t *s, size_t n);

#endif
