/*
 * schema_check: compares a parsed Avro record schema with the codec's field
 * table for it (codec_private.h). Used by gw_codec_new() at start-up.
 * Named types must be defined inline where they are used (as every schema in
 * schemas/ does); a reference by name is reported as a mismatch.
 */
#ifndef GW_CODEC_SCHEMA_CHECK_H
#define GW_CODEC_SCHEMA_CHECK_H

#include <jansson.h>

#include "codec/codec_private.h"

/* GW_OK when schema s is record d; GW_E_CONFIG (logged, naming the field) if not. */
gw_err gw_schema_check_record(const json_t *s, const gw_record_desc *d, int depth);

#endif
