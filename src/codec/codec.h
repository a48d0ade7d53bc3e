/*
 * codec: Avro binary <-> the C structs of model/model.h, for the four wire
 * records (InferenceRequest, InferenceResponse, StreamChunk, UsageEvent).
 *
 * The hot path is a hand-written, bounded Avro reader and writer driven by
 * field tables (codec_private.h) that mirror schemas/NAME.avsc. gw_codec_new()
 * proves at start-up that the tables and the embedded schemas agree field by
 * field (and that avro-c accepts every schema), and computes each schema's
 * Parsing Canonical Form and CRC-64-AVRO fingerprint.
 *
 * Framings (docs/schemas.md has the byte-level rules):
 *   BARE           the datum alone, written with the current schema version.
 *   SINGLE_OBJECT  C3 01 + 8-byte little-endian fingerprint + datum; the
 *                  fingerprint picks the writer version among all the build knows.
 *   CONFLUENT      00 + 4-byte big-endian schema id + datum; ids map to
 *                  versions through a table set with gw_codec_set_confluent_id().
 *   AUTO           (decode only) C3 -> single-object, 00 -> Confluent, any
 *                  other first byte -> bare. No bare datum of ours starts with
 *                  C3 (it would open a negative string length); a bare datum
 *                  whose first string is empty starts with 00 and needs BARE.
 *
 * Decoding resolves an older writer against the current structs: fields the
 * writer lacks keep the current schema's defaults. Every allocation comes from
 * the caller's arena and is bounded by gw_codec_limits; every bad input gives
 * a GW_E_CODEC_* code (GW_E_NOMEM only when the arena itself refuses).
 * A codec is immutable after set-up and may be shared by threads for decoding
 * and encoding; set-up calls (set_*) are not thread-safe.
 */
#ifndef GW_CODEC_CODEC_H
#define GW_CODEC_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/err.h"
#include "model/model.h"

typedef struct gw_codec gw_codec;

typedef enum {
    GW_REC_REQUEST,  /* InferenceRequest, gw_request */
    GW_REC_RESPONSE, /* InferenceResponse, gw_response */
    GW_REC_CHUNK,    /* StreamChunk, gw_chunk */
    GW_REC_USAGE,    /* UsageEvent, gw_usage_event */
    GW_REC__COUNT
} gw_record_kind;

/* Room for one record of any kind, for callers that pick the kind at run time
 * (the void * of gw_codec_decode / gw_codec_encode / gw_record_to_json). */
typedef union {
    gw_request req;
    gw_response resp;
    gw_chunk chunk;
    gw_usage_event usage;
} gw_any_record;

typedef enum {
    GW_FRAMING_AUTO,
    GW_FRAMING_BARE,
    GW_FRAMING_SINGLE_OBJECT,
    GW_FRAMING_CONFLUENT,
} gw_framing;

typedef struct {
    size_t max_message_bytes; /* whole framed message; default 1 MiB */
    size_t max_messages;      /* InferenceRequest.messages; default 256 */
    size_t max_string_bytes;  /* any one string; default 256 KiB */
    size_t max_map_entries;   /* any one map; default 64 */
    size_t max_capabilities;  /* InferenceRequest.capabilities and stop; default 32 */
    size_t max_tools;         /* InferenceRequest.tools; default 128 */
    size_t max_tool_calls;    /* tool_calls of a message, response or chunk; default 64 */
    size_t max_alloc_bytes;   /* arena bytes one decode may take; default 4 MiB */
} gw_codec_limits;

/* What the framing of one message said. */
typedef struct {
    gw_framing framing;   /* BARE, SINGLE_OBJECT or CONFLUENT */
    int writer_version;   /* 1, 2, ... of the record kind */
    uint64_t fingerprint; /* writer schema's CRC-64-AVRO */
    uint32_t schema_id;   /* CONFLUENT only */
    size_t header_bytes;  /* 0, 10 or 5 */
} gw_codec_frame;

void gw_codec_limits_default(gw_codec_limits *lim);

/* lim NULL means defaults; zero fields take their default. NULL when the embedded
 * schemas are invalid or disagree with the codec's tables (logged), or on OOM. */
gw_codec *gw_codec_new(const gw_codec_limits *lim);
void gw_codec_free(gw_codec *c);
const gw_codec_limits *gw_codec_get_limits(const gw_codec *c);

/* Which framings decoding accepts: AUTO (default) or exactly one. */
void gw_codec_set_decode_framing(gw_codec *c, gw_framing f);
/* Map a Confluent schema id to a version of a record kind (at most 32 ids).
 * GW_E_CONFIG for an unknown version or a full table. Encoding with CONFLUENT
 * framing uses the first id mapped to the version being written. */
gw_err gw_codec_set_confluent_id(gw_codec *c, uint32_t schema_id, gw_record_kind kind, int version);

/* Versions compiled in: 1..gw_codec_current_version(kind). */
int gw_codec_current_version(gw_record_kind kind);
/* 0 / NULL when the version is unknown. */
uint64_t gw_codec_fingerprint(const gw_codec *c, gw_record_kind kind, int version);
const char *gw_codec_canonical_form(const gw_codec *c, gw_record_kind kind, int version);
/* Name of the embedded schema ("InferenceRequest.v1"); NULL when unknown. */
const char *gw_codec_schema_name(gw_record_kind kind, int version);
/* The JSON text of kind's current schema as embedded in the build
 * (schemas/); NULL when unknown. */
const char *gw_codec_current_schema_json(gw_record_kind kind);

/* Reads only the framing header (no datum). */
gw_err gw_codec_detect(const gw_codec *c, gw_record_kind kind, const void *buf, size_t len,
                       gw_codec_frame *out);

/* Decode one framed message into *out (zeroed first). Strings and arrays live in
 * arena. On error *out is unspecified and the arena may hold partial data. */
gw_err gw_codec_decode(const gw_codec *c, gw_record_kind kind, const void *buf, size_t len,
                       gw_arena *arena, void *out);
/* The same with the framing given here (AUTO or one) instead of the codec's
 * decode framing: for bytes this process wrote itself, whatever it reads. */
gw_err gw_codec_decode_as(const gw_codec *c, gw_framing framing, gw_record_kind kind,
                          const void *buf, size_t len, gw_arena *arena, void *out);
gw_err gw_codec_decode_request(const gw_codec *c, const void *buf, size_t len, gw_arena *arena,
                               gw_request *out);
gw_err gw_codec_decode_response(const gw_codec *c, const void *buf, size_t len, gw_arena *arena,
                                gw_response *out);
gw_err gw_codec_decode_chunk(const gw_codec *c, const void *buf, size_t len, gw_arena *arena,
                             gw_chunk *out);
gw_err gw_codec_decode_usage(const gw_codec *c, const void *buf, size_t len, gw_arena *arena,
                             gw_usage_event *out);

/* Append one framed message to out (its len grows; nothing else is touched, and
 * on error out->len is restored). version 0 means current. AUTO framing encodes
 * as SINGLE_OBJECT. NULL required strings encode as "". Strings must be valid
 * UTF-8 (GW_E_CODEC_BAD_UTF8) and within the limits (GW_E_CODEC_LIMIT); the
 * message within max_message_bytes and out's cap (GW_E_CODEC_TOO_LARGE). */
gw_err gw_codec_encode(const gw_codec *c, gw_record_kind kind, const void *rec, int version,
                       gw_framing framing, gw_buf *out);
gw_err gw_codec_encode_request(const gw_codec *c, const gw_request *r, gw_framing framing,
                               gw_buf *out);
gw_err gw_codec_encode_response(const gw_codec *c, const gw_response *r, gw_framing framing,
                                gw_buf *out);
gw_err gw_codec_encode_chunk(const gw_codec *c, const gw_chunk *r, gw_framing framing, gw_buf *out);
gw_err gw_codec_encode_usage(const gw_codec *c, const gw_usage_event *r, gw_framing framing,
                             gw_buf *out);

/* Fill *rec (of kind) with the current schema's defaults: zero / NULL / empty,
 * temperature 0.7, max_tokens 1024, enable_cache true, routing_strategy BALANCED. */
void gw_codec_init_defaults(gw_record_kind kind, void *rec);

/* avro-c's allocator is process-wide: this installs one that refuses any single
 * allocation above max_bytes (so a hostile length prefix cannot ask for 2^46
 * bytes). gw_codec_new() installs it with 64 MiB unless already installed. */
void gw_codec_cap_avro_allocator(size_t max_bytes);

#endif
