/*
 * json: the wire records as JSON objects (jansson), with the Avro field names
 * of schemas/NAME.avsc. Used by the CLI (produce reads JSON lines into
 * requests; tail prints records) and by modelgw-avro.
 *
 * The JSON form is the plain one a person writes, not Avro's JSON encoding:
 * optional fields are the value or null (or absent), enums are their symbol
 * names (case-insensitive on input), maps are objects, deadline_ms and
 * timestamp_ms are integers, and a NaN or infinite double prints as null. On input, absent fields
 * take the schema defaults (gw_codec_init_defaults); an absent required string stays NULL (so a
 * caller can tell a missing request_id and generate one with gw_uuid4); an absent Message role
 * (an enum with no default), an unknown key or a value of the wrong type is GW_E_INVALID_REQUEST,
 * naming the field. Strings are copied into the arena;
 * the json_t may be freed afterwards.
 */
#ifndef GW_CODEC_JSON_H
#define GW_CODEC_JSON_H

#include <jansson.h>

#include "codec/codec.h"

/* bad_field (may be NULL) receives the offending key on GW_E_INVALID_REQUEST;
 * it points into obj or a static string, valid while obj lives. */
gw_err gw_record_from_json(gw_record_kind kind, const json_t *obj, gw_arena *arena, void *out,
                           const char **bad_field);
/* New reference, or NULL on OOM. */
json_t *gw_record_to_json(gw_record_kind kind, const void *rec);

gw_err gw_request_from_json(const json_t *obj, gw_arena *arena, gw_request *out);
json_t *gw_request_to_json(const gw_request *r);
json_t *gw_response_to_json(const gw_response *r);
json_t *gw_chunk_to_json(const gw_chunk *c);
json_t *gw_usage_to_json(const gw_usage_event *u);

#endif
