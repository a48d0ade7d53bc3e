/*
 * canon: Avro Parsing Canonical Form and the CRC-64-AVRO (Rabin) fingerprint,
 * as the Avro specification defines them ("Schema Resolution" / "Parsing
 * Canonical Form for Schemas" / "Schema Fingerprints").
 *
 * The canonical form keeps only name, type, fields, symbols, items, values and
 * size, in that order, with full names, primitives as bare strings and no
 * whitespace. Input is trusted (the embedded schemas) but still bounded: depth
 * at most 32, and a malformed schema is an error, not a crash.
 */
#ifndef GW_CODEC_CANON_H
#define GW_CODEC_CANON_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

/* Appends the canonical form of the schema text (JSON) to out, NUL-terminated
 * (the NUL is not counted in out->len). GW_E_CONFIG for an invalid schema. */
gw_err gw_avro_canonical_form(const char *schema_json, gw_buf *out);

/* CRC-64-AVRO of n bytes. */
uint64_t gw_avro_fingerprint64(const void *p, size_t n);

#endif
