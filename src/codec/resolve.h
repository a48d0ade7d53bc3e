/*
 * resolve: Avro schema resolution (the specification's "Schema Resolution")
 * between any writer schema, given as JSON (from a schema registry), and a
 * reader schema of ours, as a transcoder: a datum written with the writer
 * schema becomes the same datum in the reader schema's binary encoding, which
 * the codec then decodes as a bare datum of its current version.
 *
 * What it resolves: fields matched by name (or a reader field's alias), in
 * any order; reader fields the writer lacks take their default (a missing
 * default makes the pair incompatible); writer fields the reader lacks are
 * skipped; promotions int -> long, float, double; long -> float, double;
 * float -> double; string <-> bytes; unions on either side (the first
 * matching reader branch); enums by symbol (an unknown symbol takes the
 * reader's enum default, else it is bad data); records, enums and fixed
 * matched by unqualified name or a reader alias.
 *
 * gw_resolver_new() checks the pair once and says why it is incompatible
 * (GW_E_CODEC_INCOMPATIBLE and a one-line reason). Transcoding is bounded:
 * input bytes are read with bounds checks, the output is capped by its
 * gw_buf, nesting by GW_RESOLVE_MAX_DEPTH and array and map items by
 * GW_RESOLVE_MAX_ITEMS per datum; bad input is GW_E_CODEC_TRUNCATED,
 * GW_E_CODEC_BAD_DATA, GW_E_CODEC_LIMIT or GW_E_CODEC_TRAILING. Schemas are
 * bounded too (GW_RESOLVE_MAX_SCHEMA_BYTES, GW_RESOLVE_MAX_NODES).
 *
 * A resolver is immutable after gw_resolver_new and may be shared by threads.
 */
#ifndef GW_CODEC_RESOLVE_H
#define GW_CODEC_RESOLVE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

enum {
    GW_RESOLVE_MAX_SCHEMA_BYTES = 256 * 1024,
    GW_RESOLVE_MAX_NODES = 4096,
    GW_RESOLVE_MAX_FIELDS = 256, /* per record */
    GW_RESOLVE_MAX_DEPTH = 64,
    GW_RESOLVE_MAX_ITEMS = 1 << 20,
};

typedef struct gw_resolver gw_resolver;

/*
 * Parses both schemas and checks that data of the writer's can be read as the
 * reader's. GW_E_CODEC_INCOMPATIBLE (why holds the reason, e.g. "field
 * InferenceRequest.agent_did: the writer lacks it and it has no default"),
 * GW_E_CODEC_BAD_DATA for a schema that does not parse, GW_E_CODEC_LIMIT past
 * the schema bounds, GW_E_NOMEM. why may be NULL.
 */
gw_err gw_resolver_new(const char *writer_json, size_t writer_len, const char *reader_json,
                       size_t reader_len, char *why, size_t why_len, gw_resolver **out);
void gw_resolver_free(gw_resolver *r);

/* Appends the reader-schema encoding of the datum in[0..len) to out (on error
 * out->len is restored). */
gw_err gw_resolver_transcode(const gw_resolver *r, const uint8_t *in, size_t len, gw_buf *out);

#endif
