/*
 * schemas: the Avro schema texts compiled into the binary from
 * schemas/NAME.avsc (see tools/cmake/embed_schemas.cmake).
 */
#ifndef GW_CODEC_SCHEMAS_H
#define GW_CODEC_SCHEMAS_H

#include <stddef.h>

typedef struct {
    const char *name; /* file name without .avsc */
    const char *json;
} gw_schema_source;

extern const gw_schema_source gw_schema_sources[];
extern const size_t gw_schema_source_count;

#endif
