/*
 * cli_outputs: how modelgw-cli reads the worker's outputs (InferenceResponse,
 * StreamChunk, UsageEvent) in whichever framing the worker wrote them
 * (docs/schemas.md, "Framings"; docs/cli.md, "Reading Confluent outputs").
 *
 * Single-object and bare records go to the codec as before. A record in the
 * Confluent wire format (00, a 4-byte big-endian schema id, the Avro datum)
 * names its writer schema by a registry id, which the codec alone cannot
 * know: with a registry URL (--schema-registry) the id is looked up once
 * (GET {url}/schemas/ids/{id}, schemareg's client on a private loop: its
 * cache, retries and bounds), the writer schema is resolved against the
 * record kind's current schema of this build (the schemas a worker with
 * schema_registry.register_outputs registers, so those resolve field for
 * field; a compatible other version resolves too), and the datum is
 * transcoded and decoded. Without a registry, or for an id the registry
 * does not know or a schema that does not resolve, the record gets a named
 * error (GW_E_CODEC_UNKNOWN_SCHEMA, GW_E_CODEC_INCOMPATIBLE,
 * GW_E_CODEC_REGISTRY) and a one-line reason naming the id; the caller
 * reports it and goes on with the next record.
 *
 * Bounds: the codec's limits; the registry client's (ids cached, schema
 * size); a lookup waits at most max_wait_ms (retries included). The CLI has
 * one thread: a lookup blocks it, which is fine outside a worker's loop.
 * The password is sent as given and never printed.
 */
#ifndef GW_CLI_OUTPUTS_H
#define GW_CLI_OUTPUTS_H

#include <stddef.h>
#include <stdint.h>

#include "codec/codec.h"
#include "common/arena.h"
#include "common/err.h"

typedef struct gw_cli_outputs gw_cli_outputs;

typedef struct {
    const char *url;      /* registry API base (no trailing /); NULL or "": none */
    const char *username; /* basic auth, or NULL */
    const char *password; /* basic auth, or NULL (from the environment) */
    int32_t timeout_ms;   /* one request; default 5000 */
    int32_t max_wait_ms;  /* one lookup, retries included; default 10000 */
} gw_cli_registry_opts;

/* codec: decodes the other framings; it must outlive the reader. reg NULL:
 * no registry. Strings are copied. */
gw_err gw_cli_outputs_new(const gw_codec *codec, const gw_cli_registry_opts *reg,
                          gw_cli_outputs **out);
void gw_cli_outputs_free(gw_cli_outputs *o);

/*
 * One output record of kind into *out (strings in arena). On error why
 * (why_len > 0) holds a one-line reason; for a Confluent record it names the
 * schema id, which *schema_id (may be NULL) also gets (0 otherwise).
 */
gw_err gw_cli_outputs_decode(gw_cli_outputs *o, gw_record_kind kind, const void *buf, size_t len,
                             gw_arena *arena, void *out, uint32_t *schema_id, char *why,
                             size_t why_len);

#endif
