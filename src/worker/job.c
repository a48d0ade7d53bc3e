/*
 * job: the request state machine; see job.h. Outputs are produced here with
 * the job as the delivery-report opaque; worker.c routes reports back to
 * gw_job_on_delivery(), and the job reaches DONE when none is outstanding.
 */
#include "worker/job.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/uuid.h"
#include "worker/stage.h"
#include "worker/worker_private.h"

static const char *const stage_names[GW_STAGE__COUNT] = {
#define GW_STAGE_NAME(name, doc) #name,
    GW_STAGE_MAP(GW_STAGE_NAME)
#undef GW_STAGE_NAME
};

enum {
    GW_JOB_MAX_REPUBLISH = 5,
    GW_STREAM_PENDING_CAP = 4 << 20,
    GW_DLQ_MAX_PAYLOAD = 512 << 10, /* well under the producer's message.max.bytes */
    GW_DLQ_MAX_KEY = 4096,
};

const char *gw_stage_name(gw_stage s)
{
    return (unsigned)s < GW_STAGE__COUNT ? stage_names[s] : "UNKNOWN";
}

/* ---- headers ---------------------------------------------------------------- */

static bool is_pass_header(const char *name)
{
    return strcasecmp(name, "traceparent") == 0 || strcasecmp(name, "tracestate") == 0 ||
           strcasecmp(name, "baggage") == 0 || strncasecmp(name, "x-correlation", 13) == 0;
}

static void copy_pass_headers(gw_job *job, const rd_kafka_message_t *m)
{
    rd_kafka_headers_t *in = NULL;
    if (rd_kafka_message_headers(m, &in) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    const char *name;
    const void *val;
    size_t len;
    for (size_t i = 0; rd_kafka_header_get_all(in, i, &name, &val, &len) == 0 && i < 32; i++) {
        if (!is_pass_header(name) || len > 1024)
            continue;
        if (job->pass_headers == NULL)
            job->pass_headers = rd_kafka_headers_new(4);
        rd_kafka_header_add(job->pass_headers, name, -1, val, (ssize_t)len);
    }
}

static const char *content_type(gw_worker *w, gw_record_kind kind)
{
    static const char *const types[][3] = {
        [GW_REC_RESPONSE] =
            {"application/vnd.modelgw.inferenceresponse+avro;v=%d;framing=bare",
             "application/vnd.modelgw.inferenceresponse+avro;v=%d;framing=single-object",
             "application/vnd.modelgw.inferenceresponse+avro;v=%d;framing=confluent"},
        [GW_REC_CHUNK] = {"application/vnd.modelgw.streamchunk+avro;v=%d;framing=bare",
                          "application/vnd.modelgw.streamchunk+avro;v=%d;framing=single-object",
                          "application/vnd.modelgw.streamchunk+avro;v=%d;framing=confluent"},
        [GW_REC_USAGE] = {"application/vnd.modelgw.usageevent+avro;v=%d;framing=bare",
                          "application/vnd.modelgw.usageevent+avro;v=%d;framing=single-object",
                          "application/vnd.modelgw.usageevent+avro;v=%d;framing=confluent"},
    };
    int f = w->out_framing == GW_FRAMING_BARE ? 0 : w->out_framing == GW_FRAMING_CONFLUENT ? 2 : 1;
    static char buf[GW_REC__COUNT][3][96];
    if (buf[kind][f][0] == '\0')
        snprintf(buf[kind][f], sizeof buf[kind][f], types[kind][f], gw_codec_current_version(kind));
    return buf[kind][f];
}

/* ---- producing ---------------------------------------------------------------- */

static rd_kafka_headers_t *out_headers(gw_job *job, gw_record_kind kind, int32_t chunk_seq)
{
    rd_kafka_headers_t *h =
        job->pass_headers ? rd_kafka_headers_copy(job->pass_headers) : rd_kafka_headers_new(4);
    if (job->req.request_id != NULL)
        rd_kafka_header_add(h, "request_id", -1, job->req.request_id, -1);
    rd_kafka_header_add(h, "content-type", -1, content_type(job->w, kind), -1);
    if (chunk_seq >= 0) {
        char seq[16];
        snprintf(seq, sizeof seq, "%" PRId32, chunk_seq);
        rd_kafka_header_add(h, "chunk_seq", -1, seq, -1);
    }
    return h;
}

/* Produce one message; the job then waits for its delivery report. */
static gw_err produce(gw_job *job, const char *topic, const void *key, size_t key_len,
                      const void *val, size_t len, rd_kafka_headers_t *hdrs)
{
    rd_kafka_resp_err_t err = rd_kafka_producev(
        job->w->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key_len),
        RD_KAFKA_V_VALUE((void *)val, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(job), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_headers_destroy(hdrs);
        GW_ERROR("produce_failed", "topic", topic, "error", rd_kafka_err2str(err));
        job->publish_failed = true;
        return GW_E_IO;
    }
    job->acks_pending++;
    return GW_OK;
}

static const char *topic_of(gw_worker *w, int out)
{
    const gw_kafka_config *k = &w->cfg->kafka;
    switch (out) {
    case GW_OUT_RESPONSES:
        return k->topics.responses;
    case GW_OUT_CHUNKS:
        return k->topics.chunks;
    case GW_OUT_USAGE:
        return k->topics.usage;
    default:
        return k->topics.dlq;
    }
}

static gw_err publish_record(gw_job *job, gw_record_kind kind, const void *rec, const char *topic,
                             int32_t chunk_seq)
{
    gw_worker *w = job->w;
    gw_buf_reset(&w->scratch);
    gw_err err = gw_codec_encode(w->codec, kind, rec, 0, w->out_framing, &w->scratch);
    if (err != GW_OK)
        return err;
    const char *key = job->req.request_id;
    err = produce(job, topic, key, strlen(key), w->scratch.data, w->scratch.len,
                  out_headers(job, kind, chunk_seq));
    if (err == GW_OK && kind == GW_REC_CHUNK)
        gw_observe_chunk(w->obs);
    return err;
}

static void publish_dlq(gw_job *job, const rd_kafka_message_t *m, gw_err err)
{
    rd_kafka_headers_t *orig = NULL, *h;
    if (rd_kafka_message_headers(m, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR)
        h = rd_kafka_headers_copy(orig);
    else
        h = rd_kafka_headers_new(8);
    char part[16], off[24];
    snprintf(part, sizeof part, "%" PRId32, m->partition);
    snprintf(off, sizeof off, "%" PRId64, m->offset);
    rd_kafka_header_add(h, "error_code", -1, gw_err_code(err), -1);
    rd_kafka_header_add(h, "error_name", -1, gw_err_name(err), -1);
    rd_kafka_header_add(h, "error_message", -1, gw_strerror(err), -1);
    rd_kafka_header_add(h, "source_topic", -1, rd_kafka_topic_name(m->rkt), -1);
    rd_kafka_header_add(h, "source_partition", -1, part, -1);
    rd_kafka_header_add(h, "source_offset", -1, off, -1);
    job->w->n.dlq++;
    gw_observe_dlq(job->w->obs, err);
    GW_WARN("dlq", "error", gw_err_name(err), "topic", rd_kafka_topic_name(m->rkt), "partition",
            part, "offset", off);
    /* The DLQ record must fit the producer's message limit whatever came in
     * (a message near the source topic's limit plus our headers would not):
     * past GW_DLQ_MAX_PAYLOAD the payload is cut and the headers say so. */
    size_t len = m->len, key_len = m->key_len;
    if (len > GW_DLQ_MAX_PAYLOAD || key_len > GW_DLQ_MAX_KEY) {
        char size[24];
        snprintf(size, sizeof size, "%zu", m->len);
        rd_kafka_header_add(h, "payload_truncated", -1, "true", -1);
        rd_kafka_header_add(h, "payload_size", -1, size, -1);
        len = len > GW_DLQ_MAX_PAYLOAD ? GW_DLQ_MAX_PAYLOAD : len;
        key_len = key_len > GW_DLQ_MAX_KEY ? GW_DLQ_MAX_KEY : key_len;
    }
    produce(job, topic_of(job->w, GW_OUT_DLQ), m->key, key_len, m->payload, len, h);
}

/* ---- stages ------------------------------------------------------------------- */

void gw_job_fail(gw_job *job, gw_err err, const char *outcome)
{
    job->err = err;
    job->outcome = outcome;
    job->stage = GW_STAGE_PUBLISHING;
}

void gw_job_add_detail(gw_job *job, const char *key, const char *value)
{
    gw_kv *kv = gw_arena_alloc(&job->arena, (job->err_details.count + 1) * sizeof *kv);
    if (kv == NULL || key == NULL || value == NULL)
        return;
    if (job->err_details.count > 0)
        memcpy(kv, job->err_details.items, job->err_details.count * sizeof *kv);
    kv[job->err_details.count] = (gw_kv){key, value};
    job->err_details = (gw_map){kv, job->err_details.count + 1};
}

static void on_wait_timer(uv_timer_t *t)
{
    gw_job *job = t->data;
    void (*fn)(gw_job *) = job->on_wait;
    job->on_wait = NULL;
    if (fn != NULL && !job->aborted)
        fn(job);
}

void gw_job_wait(gw_job *job, int64_t delay_ms, void (*fn)(gw_job *job))
{
    if (!job->wait_init) {
        uv_timer_init(job->w->loop, &job->wait_timer);
        job->wait_timer.data = job;
        job->wait_init = true;
    }
    job->on_wait = fn;
    uv_timer_start(&job->wait_timer, on_wait_timer, delay_ms < 0 ? 0 : (uint64_t)delay_ms, 0);
}

static gw_step stage_decoded(gw_job *job)
{
    gw_worker *w = job->w;
    const char *field = NULL;
    gw_err err = gw_validate_request(&job->req, &w->vlimits, gw_worker_now_ms(), &field);
    job->streaming = job->req.stream;
    if (err == GW_E_DEADLINE_EXCEEDED) {
        w->n.expired++;
        job->err_field = field;
        gw_job_fail(job, err, "expired");
        return GW_STEP_NEXT;
    }
    if (err != GW_OK) {
        w->n.invalid++;
        gw_validate_drop_oversized_ids(&job->req);
        job->err_field = field;
        gw_job_fail(job, err, "invalid");
        return GW_STEP_NEXT;
    }
    job->stage = GW_STAGE_VALIDATED;
    return GW_STEP_NEXT;
}

static void flush_chunk(gw_job *job);

static void on_coalesce_timer(uv_timer_t *t)
{
    gw_job *job = t->data;
    job->timer_armed = false;
    flush_chunk(job);
}

void gw_job_drop_pending(gw_job *job)
{
    if (job->timer_armed) {
        uv_timer_stop(&job->coalesce_timer);
        job->timer_armed = false;
    }
    gw_buf_reset(&job->pending);
}

void gw_job_on_delta(void *ud, const char *text, size_t len)
{
    gw_job *job = ud;
    if (!job->streaming)
        return;
    if (gw_buf_append(&job->pending, text, len) != GW_OK) {
        flush_chunk(job); /* over the cap: publish what we have, then retry once */
        if (gw_buf_append(&job->pending, text, len) != GW_OK)
            return;
    }
    uint32_t delay = 0;
    switch (gw_coalesce_on_delta(&job->w->coalesce, (uint32_t)job->chunk_seq, job->pending.len,
                                 job->timer_armed, &delay)) {
    case GW_COALESCE_FLUSH:
        flush_chunk(job);
        break;
    case GW_COALESCE_ARM_TIMER:
        if (!job->timer_init) {
            uv_timer_init(job->w->loop, &job->coalesce_timer);
            job->coalesce_timer.data = job;
            job->timer_init = true;
        }
        uv_timer_start(&job->coalesce_timer, on_coalesce_timer, delay, 0);
        job->timer_armed = true;
        break;
    case GW_COALESCE_WAIT:
        break;
    }
}

/* ---- outputs ------------------------------------------------------------------ */

static gw_error_rec *error_rec(gw_job *job)
{
    if (job->err == GW_OK)
        return NULL;
    gw_error_rec *e = gw_arena_calloc(&job->arena, 1, sizeof *e);
    size_t cap = 2 + job->err_details.count;
    gw_kv *kv = gw_arena_calloc(&job->arena, cap, sizeof *kv);
    if (e == NULL || kv == NULL)
        return NULL;
    e->code = gw_err_code(job->err);
    e->message = job->err_detail ? job->err_detail : gw_strerror(job->err);
    e->retryable = gw_err_retryable(job->err);
    size_t n = 0;
    kv[n++] = (gw_kv){"error_name", gw_err_name(job->err)};
    if (job->err_field != NULL)
        kv[n++] = (gw_kv){"field", job->err_field};
    for (size_t i = 0; i < job->err_details.count; i++)
        kv[n++] = job->err_details.items[i];
    e->details = (gw_map){kv, n};
    return e;
}

static void publish_chunk_text(gw_job *job, const char *text)
{
    gw_chunk ch = {.request_id = job->req.request_id, .seq = job->chunk_seq, .content = text};
    if (publish_record(job, GW_REC_CHUNK, &ch, topic_of(job->w, GW_OUT_CHUNKS), ch.seq) == GW_OK)
        job->chunk_seq++;
}

/* Publish the pending stream text as one chunk (not final). */
static void flush_chunk(gw_job *job)
{
    if (job->pending.len == 0 || job->stage != GW_STAGE_CALLING)
        return;
    char *text = gw_arena_strndup(&job->arena, (const char *)job->pending.data, job->pending.len);
    if (text == NULL)
        return; /* stays pending; the final chunk carries it */
    int32_t seq = job->chunk_seq;
    publish_chunk_text(job, text);
    if (job->chunk_seq != seq)
        gw_buf_reset(&job->pending);
}

static double elapsed_ms(const gw_job *job)
{
    return (double)(uv_hrtime() - (uint64_t)job->t_start_ns) / 1e6;
}

static void publish_final_chunk(gw_job *job, gw_error_rec *e)
{
    char *text = gw_arena_strndup(
        &job->arena, job->pending.data ? (const char *)job->pending.data : "", job->pending.len);
    gw_chunk ch = {.request_id = job->req.request_id,
                   .seq = job->chunk_seq,
                   .content = text ? text : "",
                   .is_final = true,
                   .has_usage = e == NULL,
                   .token_usage = job->usage,
                   .finish_reason = job->finish_reason,
                   .error = e};
    if (publish_record(job, GW_REC_CHUNK, &ch, topic_of(job->w, GW_OUT_CHUNKS), ch.seq) == GW_OK) {
        job->chunk_seq++;
        gw_buf_reset(&job->pending);
    }
}

/*
 * Replay a stored answer as a stream: chunks of at most
 * worker.chunk_coalesce_bytes (cut on UTF-8 boundaries), the rest left
 * pending for the final chunk, as a live stream would be coalesced.
 */
static void replay_chunks(gw_job *job, const char *text)
{
    size_t step = job->w->coalesce.coalesce_bytes > 0 ? job->w->coalesce.coalesce_bytes : 64;
    size_t len = strlen(text), off = 0;
    while (len - off > step) {
        size_t cut = off + step;
        while (cut > off + 1 && ((unsigned char)text[cut] & 0xC0) == 0x80)
            cut--;
        char *piece = gw_arena_strndup(&job->arena, text + off, cut - off);
        if (piece == NULL)
            break;
        publish_chunk_text(job, piece);
        off = cut;
    }
    gw_buf_reset(&job->pending);
    gw_buf_append(&job->pending, text + off, len - off);
}

bool gw_job_answer_stored(gw_job *job, const uint8_t *data, size_t len)
{
    gw_response *r = gw_arena_calloc(&job->arena, 1, sizeof *r);
    if (r == NULL ||
        gw_codec_decode_response(job->w->store_codec, data, len, &job->arena, r) != GW_OK)
        return false;
    job->stored = r;
    job->content = r->content;
    job->finish_reason = r->finish_reason;
    job->err = r->error != NULL ? gw_err_from_code(r->error->code) : GW_OK;
    if (r->error != NULL && job->err == GW_OK)
        job->err = GW_E_INTERNAL;
    job->dep = gw_config_deployment(job->w->cfg, r->model_id);
    if (job->dep != NULL)
        job->saved_cost_usd =
            r->token_usage.prompt_tokens * job->dep->price_in_usd_per_mtok / 1e6 +
            r->token_usage.completion_tokens * job->dep->price_out_usd_per_mtok / 1e6;
    memset(&job->usage, 0, sizeof job->usage); /* nothing billed */
    if (job->streaming && job->chunk_seq == 0)
        replay_chunks(job, r->content ? r->content : "");
    return true;
}

/* The response record; *stored_out (may be NULL) gets the version to keep
 * (cache and idempotency): not marked cached, request-specific fields kept. */
static void make_response(gw_job *job, gw_error_rec *e, gw_response *r)
{
    if (job->duplicate && job->stored != NULL) {
        *r = *job->stored;
        r->request_id = job->req.request_id;
        return;
    }
    *r = (gw_response){.request_id = job->req.request_id,
                       .content = job->err == GW_OK && job->content ? job->content : "",
                       .model_id = job->stored ? job->stored->model_id
                                   : job->dep  ? job->dep->id
                                               : "",
                       .provider = job->stored ? job->stored->provider
                                   : job->dep  ? gw_provider_kind_name(job->dep->provider)
                                               : "",
                       .token_usage = job->usage,
                       .latency_ms = job->answer_fixed ? job->answer_ms : elapsed_ms(job),
                       .cached = job->cached,
                       .finish_reason = job->finish_reason,
                       .error = e,
                       .metadata = job->resp_metadata,
                       .custom_id = job->req.custom_id,
                       .batch_id = job->req.batch_id};
}

static void publish_response(gw_job *job, gw_error_rec *e)
{
    gw_response r;
    make_response(job, e, &r);
    const char *topic = job->req.reply_topic && job->err != GW_E_INVALID_REQUEST
                            ? job->req.reply_topic
                            : topic_of(job->w, GW_OUT_RESPONSES);
    gw_err err = publish_record(job, GW_REC_RESPONSE, &r, topic, -1);
    if (err != GW_OK && job->err == GW_OK) {
        /* The answer itself could not be encoded (a limit, bad UTF-8 from the
         * provider): answer with the encoder's error instead. */
        job->err = err;
        job->outcome = "error";
        r.content = "";
        r.error = error_rec(job);
        err = publish_record(job, GW_REC_RESPONSE, &r, topic, -1);
    }
    if (err != GW_OK) {
        GW_ERROR("response_unpublishable", "request_id", job->req.request_id, "error",
                 gw_err_name(err));
        job->publish_failed = true;
        return;
    }
    /* The version kept for redeliveries and the cache: single-object
     * framing. With that output framing (the default) it is the bytes just
     * published, so they are copied rather than encoded a second time. */
    gw_worker *w = job->w;
    gw_buf_reset(&w->store_buf);
    gw_err kept = w->out_framing == GW_FRAMING_SINGLE_OBJECT
                      ? gw_buf_append(&w->store_buf, w->scratch.data, w->scratch.len)
                      : gw_codec_encode(w->store_codec, GW_REC_RESPONSE, &r, 0,
                                        GW_FRAMING_SINGLE_OBJECT, &w->store_buf);
    if (kept != GW_OK)
        gw_buf_reset(&w->store_buf);
}

static void publish_usage(gw_job *job)
{
    gw_worker *w = job->w;
    char event_id[37]; /* encoded before this returns: no arena copy needed */
    gw_uuid4(event_id);
    const gw_deployment *d = job->dep;
    double cost = 0;
    if (d != NULL && job->err == GW_OK && !job->cached && !job->duplicate)
        cost = job->usage.prompt_tokens * d->price_in_usd_per_mtok / 1e6 +
               job->usage.completion_tokens * d->price_out_usd_per_mtok / 1e6;
    bool billed = !job->cached && !job->duplicate;
    gw_usage_event u = {
        .event_id = event_id,
        .request_id = job->req.request_id,
        .agent_did = job->req.agent_did ? job->req.agent_did : "",
        .tenant_id = job->req.tenant_id ? job->req.tenant_id : job->req.agent_did,
        .batch_id = job->req.batch_id,
        .custom_id = job->req.custom_id,
        .model_id = d ? d->id : NULL,
        .provider = d ? gw_provider_kind_name(d->provider) : NULL,
        .priority = gw_tier_name(job->tier),
        .prompt_tokens = billed ? job->usage.prompt_tokens : 0,
        .completion_tokens = billed ? job->usage.completion_tokens : 0,
        .total_tokens = billed ? job->usage.total_tokens : 0,
        .cost_usd = cost,
        .saved_cost_usd = job->cached ? job->saved_cost_usd : 0,
        .latency_ms = elapsed_ms(job),
        .has_ttft = job->has_ttft && billed,
        .ttft_ms = job->ttft_ms,
        .cached = job->cached,
        .cache_tier = job->cache_tier,
        .has_similarity = job->has_similarity,
        .cache_similarity = job->similarity,
        .attempts = job->fo_ready ? gw_failover_attempts(&job->fo) : 0,
        .failovers = job->fo_ready ? gw_failover_failovers(&job->fo) : 0,
        .outcome = job->outcome ? job->outcome : "error",
        .error_code = job->err == GW_OK ? NULL : gw_err_code(job->err),
        .timestamp_ms = gw_worker_now_ms(),
    };
    if (job->fo_ready && job->fo.calls == 0)
        u.attempts = 0;
    if (u.tenant_id == NULL)
        u.tenant_id = "";
    gw_err err = publish_record(job, GW_REC_USAGE, &u, topic_of(w, GW_OUT_USAGE), -1);
    gw_observe_outcome(job, &u);
    if (err != GW_OK) {
        GW_ERROR("usage_unpublishable", "request_id", job->req.request_id, "error",
                 gw_err_name(err));
        job->publish_failed = true;
    }
}

/* Fix the answer once, so the kept record and the published one are equal. */
static void fix_answer(gw_job *job)
{
    if (job->answer_fixed)
        return;
    job->answer_err = job->duplicate && job->stored ? job->stored->error : error_rec(job);
    job->answer_ms = elapsed_ms(job);
    job->answer_fixed = true;
}

/*
 * Before publishing an answer to keep under an idempotency claim: store the
 * kept response (copied into the arena: store_buf is the worker's) and wait
 * for Redis. NEXT when it cannot be encoded or copied; the claim is then
 * settled after publishing, as before.
 */
static gw_step keep_answer(gw_job *job)
{
    gw_worker *w = job->w;
    gw_response r;
    make_response(job, job->answer_err, &r);
    gw_buf_reset(&w->store_buf);
    if (gw_codec_encode(w->store_codec, GW_REC_RESPONSE, &r, 0, GW_FRAMING_SINGLE_OBJECT,
                        &w->store_buf) != GW_OK ||
        w->store_buf.len == 0)
        return GW_STEP_NEXT;
    uint8_t *kept = gw_arena_alloc(&job->arena, w->store_buf.len);
    if (kept == NULL)
        return GW_STEP_NEXT;
    memcpy(kept, w->store_buf.data, w->store_buf.len);
    return gw_stage_state_keep(job, kept, w->store_buf.len);
}

static gw_step stage_publishing(gw_job *job)
{
    if (job->timer_armed) {
        uv_timer_stop(&job->coalesce_timer);
        job->timer_armed = false;
    }
    fix_answer(job);
    if (gw_stage_state_keeps(job) && keep_answer(job) == GW_STEP_SUSPEND)
        return GW_STEP_SUSPEND; /* KEEPING; back here once Redis answered */
    gw_error_rec *e = job->answer_err;
    if (job->streaming)
        publish_final_chunk(job, e);
    publish_response(job, e);
    publish_usage(job);
    /* Shared-state writes that follow an answer: the cache tiers, token
     * reconcile, budget charge, and the claim's release after a retryable
     * error. */
    const gw_buf *b = &job->w->store_buf;
    if (!job->duplicate)
        gw_stage_cache_finish(job, b->data, b->len);
    gw_stage_state_finish(job, b->data, b->len);
    job->stage = GW_STAGE_AWAITING_ACKS;
    return GW_STEP_NEXT;
}

/* ---- driving ------------------------------------------------------------------ */

void gw_job_drive(gw_job *job)
{
    for (;;) {
        gw_step s;
        switch (job->stage) {
        case GW_STAGE_DECODED:
            s = stage_decoded(job);
            break;
        case GW_STAGE_VALIDATED:
            s = gw_stage_idempotency(job);
            break;
        case GW_STAGE_DEDUPED:
            s = gw_stage_limits(job);
            break;
        case GW_STAGE_ADMITTED:
            s = gw_stage_cache(job);
            break;
        case GW_STAGE_CACHE_CHECKED:
            s = gw_stage_route(job);
            break;
        case GW_STAGE_ROUTED:
            s = gw_stage_attempt(job);
            break;
        case GW_STAGE_PUBLISHING:
            s = stage_publishing(job);
            break;
        case GW_STAGE_AWAITING_ACKS:
            if (job->acks_pending > 0)
                return;
            job->stage = GW_STAGE_DONE;
            gw_worker_job_finished(job->w, job); /* frees the job */
            return;
        default: /* RECEIVED, CALLING, KEEPING, DONE: a callback moves these on */
            return;
        }
        if (s == GW_STEP_SUSPEND)
            return;
    }
}

gw_job *gw_job_start(gw_worker *w, const rd_kafka_message_t *m, struct gw_part *p, gw_tier tier)
{
    gw_job *job = calloc(1, sizeof *job);
    if (job == NULL)
        return NULL;
    job->w = w;
    job->part = p;
    job->part_gen = p->generation;
    job->offset = m->offset;
    job->tier = tier;
    job->t_start_ns = (int64_t)uv_hrtime();
    job->chunk_seq = 0;
    snprintf(job->owner, sizeof job->owner, "%s/%" PRIu64, w->worker_id, ++w->job_seq);
    gw_arena_init(&job->arena, gw_codec_get_limits(w->codec)->max_alloc_bytes * 2);
    gw_buf_init(&job->pending, GW_STREAM_PENDING_CAP);
    job->stage = GW_STAGE_RECEIVED;
    copy_pass_headers(job, m);
    gw_err err = gw_codec_decode_request(w->codec, m->payload, m->len, &job->arena, &job->req);
    /* Every output is keyed by the request id (and carries it in a header and
     * in its value): one too long to key outputs with cannot be answered, so
     * the message goes to the DLQ like undecodable bytes. */
    if (err == GW_OK && job->req.request_id != NULL &&
        strlen(job->req.request_id) > GW_MAX_ID_BYTES)
        err = GW_E_CODEC_LIMIT;
    if (err != GW_OK) {
        memset(&job->req, 0, sizeof job->req);
        job->err = err;
        job->outcome = "dlq";
        publish_dlq(job, m, err);
        job->stage = GW_STAGE_AWAITING_ACKS;
    } else {
        job->stage = GW_STAGE_DECODED;
    }
    return job;
}

void gw_job_on_delivery(gw_job *job, const rd_kafka_message_t *m)
{
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *topic = rd_kafka_topic_name(m->rkt);
        GW_WARN("delivery_failed", "request_id", job->req.request_id, "topic", topic, "error",
                rd_kafka_err2str(m->err));
        rd_kafka_headers_t *h = NULL;
        if (job->republishes < GW_JOB_MAX_REPUBLISH && job->w->run != GW_RUN_DONE) {
            job->republishes++;
            rd_kafka_headers_t *copy = NULL;
            if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR)
                copy = rd_kafka_headers_copy(h);
            job->acks_pending--;
            produce(job, topic, m->key, m->key_len, m->payload, m->len,
                    copy ? copy : rd_kafka_headers_new(1));
        } else {
            /* Never marked done: the offset stays uncommitted, the next owner
             * of the partition serves the request again. */
            job->publish_failed = true;
            job->acks_pending--;
        }
    } else {
        job->acks_pending--;
    }
    if (job->stage == GW_STAGE_AWAITING_ACKS && job->acks_pending == 0)
        gw_job_drive(job);
}

void gw_job_abort(gw_job *job)
{
    if (job->call != NULL) {
        gw_provider_call_cancel(job->call);
        job->call = NULL;
    }
    if (job->wait_init)
        uv_timer_stop(&job->wait_timer);
    if (job->timer_armed) {
        uv_timer_stop(&job->coalesce_timer);
        job->timer_armed = false;
    }
    job->aborted = true;
    job->publish_failed = true;
}

static void release_memory(gw_job *job)
{
    gw_arena_cleanup(&job->arena);
    free(job);
}

static void on_timer_closed(uv_handle_t *h)
{
    gw_job *job = h->data;
    if (--job->handles_open == 0)
        release_memory(job);
}

void gw_job_free(gw_job *job)
{
    if (job->pass_headers != NULL)
        rd_kafka_headers_destroy(job->pass_headers);
    gw_buf_cleanup(&job->pending);
    if (job->semq != NULL)
        gw_semcache_query_cleanup(job->semq);
    job->handles_open = (job->timer_init ? 1 : 0) + (job->wait_init ? 1 : 0);
    if (job->timer_init) {
        uv_timer_stop(&job->coalesce_timer);
        uv_close((uv_handle_t *)&job->coalesce_timer, on_timer_closed);
    }
    if (job->wait_init) {
        uv_timer_stop(&job->wait_timer);
        uv_close((uv_handle_t *)&job->wait_timer, on_timer_closed);
    }
    if (job->handles_open == 0)
        release_memory(job);
}
