/*
 * schemareg: a Confluent Schema Registry client on the worker's loop, for
 * decoding requests whose Confluent schema id the codec does not know, and
 * for registering the output schemas at start (gw_schemareg_register_all).
 *
 * gw_schemareg_lookup(id) answers from a bounded cache, or fetches the writer
 * schema (GET {url}/schemas/ids/{id}, through libcurl on the loop with
 * loop/http_client) and builds a codec/resolve resolver from it to the
 * reader schema. Concurrent lookups of one id share one fetch. A registry
 * that does not answer, or answers 5xx/429, is asked again with backoff
 * (100 ms doubling to 2 s) while any lookup still waits; each lookup waits at
 * most until its own give-up time (the request's deadline, capped by
 * max_wait_ms) and then gets GW_E_CODEC_REGISTRY. Answers that will not
 * change are cached as failures for negative_ttl_ms: an id the registry does
 * not know (404: GW_E_CODEC_UNKNOWN_SCHEMA), a schema that is not Avro or
 * cannot be resolved against the reader (GW_E_CODEC_INCOMPATIBLE, with the
 * reason).
 *
 * Bounds: at most max_entries ids cached or being fetched (least recently
 * used resolved or failed entries are evicted; when every entry is a fetch in
 * progress a new id fails at once with GW_E_CODEC_REGISTRY); a response body
 * of at most GW_RESOLVE_MAX_SCHEMA_BYTES plus 64 KiB; at most
 * GW_SCHEMAREG_MAX_WAITERS lookups waiting at once.
 *
 * Callbacks never run inside gw_schemareg_lookup; each waiting lookup gets
 * exactly one callback unless cancelled. A resolver handed out stays valid
 * until control returns to the loop (use it inside the callback, or right
 * after a synchronous answer). Basic auth credentials are sent as given and
 * never logged; the TLS options (CA file, client certificate and key, key
 * password, verification off) apply to this client's own HTTP handles only.
 *
 * At start the worker may also register its output schemas through
 * gw_schemareg_register_all (docs/schemas.md, "Output schemas").
 * One client per loop; not thread-safe.
 */
#ifndef GW_SCHEMAREG_SCHEMAREG_H
#define GW_SCHEMAREG_SCHEMAREG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "codec/resolve.h"
#include "common/err.h"
#include "loop/http_client.h"

enum { GW_SCHEMAREG_MAX_WAITERS = 65536 };

typedef struct {
    const char *url;         /* the API base, e.g. http://registry:8081 (no trailing /) */
    const char *username;    /* basic auth, or NULL */
    const char *password;    /* basic auth, or NULL */
    gw_http_transport tls;   /* https: CA file, client certificate, verification (copied) */
    const char *reader_json; /* the reader schema the resolvers target (copied) */
    int32_t timeout_ms;      /* one request; default 5000 */
    int32_t max_wait_ms;     /* longest a lookup waits, retries included; default 10000 */
    size_t max_entries;      /* ids cached or being fetched; default 256 */
    int32_t negative_ttl_ms; /* unknown or incompatible ids are not asked again; default 30000 */
} gw_schemareg_opts;

typedef struct gw_schemareg gw_schemareg;
typedef struct gw_schemareg_wait gw_schemareg_wait;

/* err GW_OK: res resolves the id's writer schema. Otherwise res is NULL and
 * why (may be NULL) says why in one line. */
typedef void (*gw_schemareg_cb)(void *ud, gw_err err, const gw_resolver *res, const char *why);

typedef struct {
    uint64_t hits, misses, fetches, fetch_failures, waiters_timed_out;
} gw_schemareg_stats;

gw_err gw_schemareg_new(uv_loop_t *loop, const gw_schemareg_opts *o, gw_schemareg **out);
/* Cancels fetches and waiters (no callback runs after this). */
void gw_schemareg_free(gw_schemareg *r);

/*
 * The resolver for id. Returns true when answered now (*err, *res and *why
 * set; cb never runs), false when cb will run later; *wait then names the
 * lookup for gw_schemareg_cancel. give_up_ms: Unix ms after which this lookup
 * stops waiting (0: now + max_wait_ms; later than that is capped).
 */
bool gw_schemareg_lookup(gw_schemareg *r, uint32_t id, int64_t give_up_ms, gw_schemareg_cb cb,
                         void *ud, gw_err *err, const gw_resolver **res, const char **why,
                         gw_schemareg_wait **wait);
/* Stops a waiting lookup; its callback never runs. Not from inside it. */
void gw_schemareg_cancel(gw_schemareg_wait *w);

void gw_schemareg_get_stats(const gw_schemareg *r, gw_schemareg_stats *out);

/* One subject to register a schema under (gw_schemareg_register_all). */
typedef struct {
    const char *subject; /* [A-Za-z0-9._-]+, e.g. "llm.responses-value" */
    const char *schema;  /* Avro schema JSON */
    uint32_t id;         /* out: the registry's id */
} gw_schemareg_subject;

enum { GW_SCHEMAREG_MAX_SUBJECT = 255 };

/*
 * Registers each schema under its subject (POST {url}/subjects/{subject}/
 * versions; a schema already there answers its existing id) and sets the
 * ids. Runs the loop itself (uv_run UV_RUN_ONCE) until every subject has its
 * id, so call it only before the loop runs, never from a loop callback; the
 * loop's other handles run meanwhile. Unreachable, 5xx and 429 answers are
 * retried with backoff (100 ms doubling to 5 s) until timeout_ms has passed:
 * then GW_E_CODEC_REGISTRY. A 409 (incompatible with the subject's versions,
 * or a registry's race between concurrent registrations) is asked again
 * three times, then is GW_E_CODEC_REGISTRY; other refusals (401/403, 422,
 * another 4xx) are GW_E_CODEC_REGISTRY at once. A bad subject name is
 * GW_E_CONFIG. Subjects are registered one after the other. why says which
 * subject and why in one line.
 */
gw_err gw_schemareg_register_all(gw_schemareg *r, gw_schemareg_subject *subjects, size_t n,
                                 int32_t timeout_ms, char *why, size_t why_len);

#endif
