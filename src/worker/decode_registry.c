/*
 * decode_registry: unknown Confluent schema ids through the schema registry;
 * see decode_registry.h and docs/schemas.md ("Schema registry").
 */
#include "worker/decode_registry.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/schemas.h"
#include "common/log.h"
#include "kafka/producer.h"
#include "schemareg/schemareg.h"
#include "worker/worker_private.h"

enum { DLQ_MAX_PAYLOAD = 512 << 10, DLQ_MAX_KEY = 4096, CONFLUENT_HEADER = 5 };

typedef struct gw_regpath {
    gw_schemareg *client;
    gw_codec *bare; /* decodes the transcoded datum as the current version */
    gw_buf buf;
} gw_regpath;

/* The message, copied: the consumer's copy is gone once DECODE suspends. */
typedef struct gw_job_reg {
    gw_schemareg_wait *wait;
    uint32_t id;
    const uint8_t *payload;
    size_t len;
    const void *key;
    size_t key_len;
    rd_kafka_headers_t *headers; /* owned until the wait ends */
    const char *topic;
    int32_t partition;
    int64_t offset;
} gw_job_reg;

/* ---- the worker's part ------------------------------------------------------------ */

static const char *reader_schema(void)
{
    const char *name =
        gw_codec_schema_name(GW_REC_REQUEST, gw_codec_current_version(GW_REC_REQUEST));
    for (size_t i = 0; name != NULL && i < gw_schema_source_count; i++)
        if (strcmp(gw_schema_sources[i].name, name) == 0)
            return gw_schema_sources[i].json;
    return NULL;
}

gw_err gw_regpath_open(gw_worker *w)
{
    const gw_schema_registry_config *c = &w->cfg->schema_registry;
    if (c->url == NULL || c->url[0] == '\0')
        return GW_OK;
    gw_regpath *p = calloc(1, sizeof *p);
    if (p == NULL)
        return GW_E_NOMEM;
    w->regpath = p;
    gw_codec_limits lim = *gw_codec_get_limits(w->codec);
    p->bare = gw_codec_new(&lim);
    if (p->bare == NULL)
        return GW_E_NOMEM;
    gw_codec_set_decode_framing(p->bare, GW_FRAMING_BARE);
    gw_buf_init(&p->buf, lim.max_message_bytes * 2);
    gw_schemareg_opts o = {.url = c->url,
                           .username = c->username,
                           .password = c->password,
                           .tls = {.ca_file = c->tls_ca_file,
                                   .cert_file = c->tls_cert_file,
                                   .key_file = c->tls_key_file,
                                   .key_password = c->tls_key_password,
                                   .no_verify = !c->tls_verify},
                           .reader_json = reader_schema(),
                           .timeout_ms = c->timeout_ms,
                           .max_wait_ms = c->max_wait_ms,
                           .max_entries = (size_t)c->cache_entries,
                           .negative_ttl_ms = c->negative_ttl_ms};
    gw_err err = gw_schemareg_new(w->loop, &o, &p->client);
    if (err == GW_OK)
        GW_INFO("schema_registry", "url", c->url, "auth",
                c->username != NULL && c->username[0] ? "basic" : "none", "tls_client_cert",
                c->tls_cert_file != NULL && c->tls_cert_file[0] ? "yes" : "no", "tls_verify",
                c->tls_verify ? "on" : "off");
    return err;
}

gw_schemareg *gw_regpath_client(gw_worker *w)
{
    return w->regpath != NULL ? w->regpath->client : NULL;
}

void gw_regpath_close(gw_worker *w)
{
    gw_regpath *p = w->regpath;
    if (p == NULL)
        return;
    gw_schemareg_free(p->client);
    gw_codec_free(p->bare);
    gw_buf_cleanup(&p->buf);
    free(p);
    w->regpath = NULL;
}

/* ---- one job ------------------------------------------------------------------------ */

static void dead_letter(gw_job *job, gw_err err, const char *why)
{
    gw_job_reg *r = job->reg;
    gw_dlq_source src = {.headers = r->headers,
                         .topic = r->topic,
                         .partition = r->partition,
                         .offset = r->offset,
                         .len = r->len,
                         .key_len = r->key_len};
    size_t len, key_len;
    rd_kafka_headers_t *h =
        gw_producer_dlq_headers(&src, err, DLQ_MAX_PAYLOAD, DLQ_MAX_KEY, &len, &key_len);
    char part[16], off[24], id[16];
    snprintf(part, sizeof part, "%" PRId32, r->partition);
    snprintf(off, sizeof off, "%" PRId64, r->offset);
    snprintf(id, sizeof id, "%" PRIu32, r->id);
    job->w->n.dlq++;
    gw_observe_dlq(job->w->obs, err);
    GW_WARN("dlq", "error", gw_err_name(err), "schema_id", id, "why", why, "topic", r->topic,
            "partition", part, "offset", off);
    memset(&job->req, 0, sizeof job->req);
    job->ans.dlq = true;
    gw_job_produce(job, gw_job_topic(job->w, GW_OUT_DLQ), r->key, key_len, r->payload, len, h);
}

static void release(gw_job_reg *r)
{
    if (r->headers != NULL)
        rd_kafka_headers_destroy(r->headers);
    r->headers = NULL;
    r->wait = NULL;
}

/* The writer's datum into the current InferenceRequest; NEXT, or FAILED
 * after the DLQ. */
static gw_step finish(gw_job *job, gw_err err, const gw_resolver *res, const char *why)
{
    gw_job_reg *r = job->reg;
    gw_regpath *p = job->w->regpath;
    if (err == GW_OK) {
        gw_buf_reset(&p->buf);
        err = gw_resolver_transcode(res, r->payload + CONFLUENT_HEADER, r->len - CONFLUENT_HEADER,
                                    &p->buf);
        why = err == GW_OK ? NULL : "the datum does not fit its writer schema";
    }
    if (err == GW_OK) {
        err = gw_codec_decode_request(p->bare, p->buf.data, p->buf.len, &job->arena, &job->req);
        if (err == GW_OK && job->req.request_id != NULL &&
            strlen(job->req.request_id) > GW_MAX_ID_BYTES)
            err = GW_E_CODEC_LIMIT;
        why = err == GW_OK ? NULL : "the resolved request does not decode";
    }
    if (err != GW_OK)
        dead_letter(job, err, why);
    release(r);
    return err == GW_OK ? GW_STEP_NEXT : gw_job_fail(job, err, "dlq");
}

static void on_schema(void *ud, gw_err err, const gw_resolver *res, const char *why)
{
    gw_job *job = ud;
    job->reg->wait = NULL;
    gw_job_resume(job, finish(job, err, res, why));
}

static bool copy_message(gw_job *job, const gw_job_msg *m, uint32_t id)
{
    gw_job_reg *r = gw_arena_alloc(&job->arena, sizeof *r);
    uint8_t *payload = gw_arena_alloc(&job->arena, m->len);
    void *key = m->key_len ? gw_arena_alloc(&job->arena, m->key_len) : NULL;
    char *topic = gw_arena_strdup(&job->arena, m->topic ? m->topic : "");
    if (r == NULL || payload == NULL || (m->key_len && key == NULL) || topic == NULL)
        return false;
    memcpy(payload, m->payload, m->len);
    if (key != NULL)
        memcpy(key, m->key, m->key_len);
    *r = (gw_job_reg){.id = id,
                      .payload = payload,
                      .len = m->len,
                      .key = key,
                      .key_len = m->key_len,
                      .headers = m->headers ? rd_kafka_headers_copy(m->headers) : NULL,
                      .topic = topic,
                      .partition = m->partition,
                      .offset = m->offset};
    job->reg = r;
    return true;
}

bool gw_job_decode_registry(gw_job *job, const gw_job_msg *m, gw_err err, gw_step *step)
{
    gw_regpath *p = job->w->regpath;
    /* UNKNOWN_SCHEMA with a Confluent header: 00 + the 4-byte big-endian id
     * (gw_codec_detect refuses an id it does not know, so it is read here) */
    const uint8_t *b = m->payload;
    if (p == NULL || err != GW_E_CODEC_UNKNOWN_SCHEMA || m->len < CONFLUENT_HEADER || b[0] != 0)
        return false;
    uint32_t id = (uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 | b[4];
    if (!copy_message(job, m, id))
        return false; /* out of memory: the ordinary DLQ path */
    gw_err lerr;
    const gw_resolver *res;
    const char *why;
    gw_schemareg_wait *wait;
    if (gw_schemareg_lookup(p->client, id, 0, on_schema, job, &lerr, &res, &why, &wait)) {
        *step = finish(job, lerr, res, why);
        return true;
    }
    job->reg->wait = wait;
    *step = GW_STEP_SUSPEND;
    return true;
}

void gw_job_registry_abort(gw_job *job)
{
    if (job->reg == NULL)
        return;
    gw_schemareg_cancel(job->reg->wait);
    release(job->reg);
}
