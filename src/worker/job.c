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
#include "worker/worker_private.h"

static const char *const stage_names[GW_STAGE__COUNT] = {
#define GW_STAGE_NAME(name, doc) #name,
    GW_STAGE_MAP(GW_STAGE_NAME)
#undef GW_STAGE_NAME
};

enum { GW_JOB_MAX_REPUBLISH = 5, GW_STREAM_PENDING_CAP = 4 << 20 };

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
    return produce(job, topic, key, strlen(key), w->scratch.data, w->scratch.len,
                   out_headers(job, kind, chunk_seq));
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
    GW_WARN("dlq", "error", gw_err_name(err), "topic", rd_kafka_topic_name(m->rkt), "partition",
            part, "offset", off);
    produce(job, topic_of(job->w, GW_OUT_DLQ), m->key, m->key_len, m->payload, m->len, h);
}

/* ---- stages ------------------------------------------------------------------- */

typedef enum { STEP_NEXT, STEP_SUSPEND } step;

static void fail(gw_job *job, gw_err err, const char *outcome)
{
    job->err = err;
    job->outcome = outcome;
    job->stage = GW_STAGE_PUBLISHING;
}

static step stage_decoded(gw_job *job)
{
    gw_worker *w = job->w;
    const char *field = NULL;
    gw_err err = gw_validate_request(&job->req, &w->vlimits, gw_worker_now_ms(), &field);
    job->streaming = job->req.stream;
    if (err == GW_E_DEADLINE_EXCEEDED) {
        w->n.expired++;
        job->err_field = field;
        fail(job, err, "expired");
        return STEP_NEXT;
    }
    if (err != GW_OK) {
        w->n.invalid++;
        job->err_field = field;
        fail(job, err, "invalid");
        return STEP_NEXT;
    }
    job->stage = GW_STAGE_VALIDATED;
    return STEP_NEXT;
}

/* Idempotency claim in Redis: issue 6 (a duplicate republishes the kept response). */
static step stage_validated(gw_job *job)
{
    job->stage = GW_STAGE_DEDUPED;
    return STEP_NEXT;
}

/* Rate limits (RPM/TPM) and budgets: issue 6. */
static step stage_deduped(gw_job *job)
{
    job->stage = GW_STAGE_ADMITTED;
    return STEP_NEXT;
}

/* Response cache lookup (exact: issue 6, semantic: issue 8). */
static step stage_admitted(gw_job *job)
{
    job->stage = GW_STAGE_CACHE_CHECKED;
    return STEP_NEXT;
}

/* Routing for now: the preferred model by deployment id or model name, else
 * the first deployment. The registry-wide ranking with failover is issue 5. */
static step stage_cache_checked(gw_job *job)
{
    const gw_config *cfg = job->w->cfg;
    const char *want = job->req.model;
    job->dep = NULL;
    for (size_t i = 0; want != NULL && i < cfg->deployment_count; i++) {
        const gw_deployment *d = &cfg->deployments[i];
        if (strcmp(d->id, want) == 0 || (d->model != NULL && strcmp(d->model, want) == 0)) {
            job->dep = d;
            break;
        }
    }
    if (want == NULL && cfg->deployment_count > 0)
        job->dep = &cfg->deployments[0];
    if (job->dep == NULL) {
        job->err_field = "model";
        job->w->n.errors++;
        fail(job, want ? GW_E_UNKNOWN_MODEL : GW_E_PROVIDER_NOT_CONFIGURED, "error");
        return STEP_NEXT;
    }
    job->stage = GW_STAGE_ROUTED;
    return STEP_NEXT;
}

static void flush_chunk(gw_job *job);

static void on_coalesce_timer(uv_timer_t *t)
{
    gw_job *job = t->data;
    job->timer_armed = false;
    flush_chunk(job);
}

static void on_delta(void *ud, const char *text, size_t len)
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

static void copy_result(gw_job *job, const gw_provider_result *res)
{
    job->content = gw_arena_strndup(&job->arena, res->content ? res->content : "",
                                    res->content ? res->content_len : 0);
    job->finish_reason = gw_arena_strdup(&job->arena, res->finish_reason);
    job->usage = res->usage;
    job->ttft_ms = res->ttft_ms;
    job->has_ttft = true;
    if (res->error_detail != NULL)
        job->err_detail = gw_arena_strdup(&job->arena, res->error_detail);
}

static void on_done(void *ud, const gw_provider_result *res)
{
    gw_job *job = ud;
    job->call = NULL;
    copy_result(job, res);
    if (res->err != GW_OK) {
        job->w->n.errors++;
        fail(job, res->err, "error");
    } else {
        /* Cache store (issue 6) and limit reconcile (issue 6) plug in here. */
        job->err = GW_OK;
        job->outcome = "success";
        job->w->n.succeeded++;
        job->stage = GW_STAGE_PUBLISHING;
    }
    gw_job_drive(job);
}

static step stage_routed(gw_job *job)
{
    gw_provider_cbs cbs = {.on_delta = on_delta, .on_done = on_done};
    job->stage = GW_STAGE_CALLING;
    gw_err err =
        gw_provider_call_start(job->w->providers, job->dep, &job->req, &cbs, job, &job->call);
    if (err != GW_OK) {
        job->w->n.errors++;
        fail(job, err, "error");
        return STEP_NEXT;
    }
    return STEP_SUSPEND;
}

/* ---- outputs ------------------------------------------------------------------ */

static gw_error_rec *error_rec(gw_job *job)
{
    if (job->err == GW_OK)
        return NULL;
    gw_error_rec *e = gw_arena_calloc(&job->arena, 1, sizeof *e);
    gw_kv *kv = gw_arena_calloc(&job->arena, 2, sizeof *kv);
    if (e == NULL || kv == NULL)
        return NULL;
    e->code = gw_err_code(job->err);
    e->message = job->err_detail ? job->err_detail : gw_strerror(job->err);
    e->retryable = gw_err_retryable(job->err);
    size_t n = 0;
    kv[n++] = (gw_kv){"error_name", gw_err_name(job->err)};
    if (job->err_field != NULL)
        kv[n++] = (gw_kv){"field", job->err_field};
    e->details = (gw_map){kv, n};
    return e;
}

/* Publish the pending stream text as one chunk (not final). */
static void flush_chunk(gw_job *job)
{
    if (job->pending.len == 0 || job->stage != GW_STAGE_CALLING)
        return;
    char *text = gw_arena_strndup(&job->arena, (const char *)job->pending.data, job->pending.len);
    if (text == NULL)
        return; /* stays pending; the final chunk carries it */
    gw_chunk ch = {.request_id = job->req.request_id, .seq = job->chunk_seq, .content = text};
    if (publish_record(job, GW_REC_CHUNK, &ch, topic_of(job->w, GW_OUT_CHUNKS), ch.seq) == GW_OK) {
        job->chunk_seq++;
        gw_buf_reset(&job->pending);
    }
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
                   .has_usage = job->err == GW_OK,
                   .token_usage = job->usage,
                   .finish_reason = job->finish_reason,
                   .error = e};
    if (publish_record(job, GW_REC_CHUNK, &ch, topic_of(job->w, GW_OUT_CHUNKS), ch.seq) == GW_OK) {
        job->chunk_seq++;
        gw_buf_reset(&job->pending);
    }
}

static void publish_response(gw_job *job, gw_error_rec *e)
{
    gw_response r = {.request_id = job->req.request_id,
                     .content = job->err == GW_OK && job->content ? job->content : "",
                     .model_id = job->dep ? job->dep->id : "",
                     .provider = job->dep ? gw_provider_kind_name(job->dep->provider) : "",
                     .token_usage = job->usage,
                     .latency_ms = elapsed_ms(job),
                     .finish_reason = job->finish_reason,
                     .error = e,
                     .custom_id = job->req.custom_id,
                     .batch_id = job->req.batch_id};
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
    }
}

static void publish_usage(gw_job *job)
{
    gw_worker *w = job->w;
    char *event_id = gw_arena_alloc(&job->arena, 37);
    if (event_id == NULL)
        return;
    gw_uuid4(event_id);
    const gw_deployment *d = job->dep;
    double cost = 0;
    if (d != NULL && job->err == GW_OK)
        cost = job->usage.prompt_tokens * d->price_in_usd_per_mtok / 1e6 +
               job->usage.completion_tokens * d->price_out_usd_per_mtok / 1e6;
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
        .prompt_tokens = job->usage.prompt_tokens,
        .completion_tokens = job->usage.completion_tokens,
        .total_tokens = job->usage.total_tokens,
        .cost_usd = cost,
        .latency_ms = elapsed_ms(job),
        .has_ttft = job->has_ttft,
        .ttft_ms = job->ttft_ms,
        .attempts = job->dep != NULL && job->has_ttft ? 1 : 0,
        .outcome = job->outcome ? job->outcome : "error",
        .error_code = job->err == GW_OK ? NULL : gw_err_code(job->err),
        .timestamp_ms = gw_worker_now_ms(),
    };
    if (u.tenant_id == NULL)
        u.tenant_id = "";
    gw_err err = publish_record(job, GW_REC_USAGE, &u, topic_of(w, GW_OUT_USAGE), -1);
    if (err != GW_OK) {
        GW_ERROR("usage_unpublishable", "request_id", job->req.request_id, "error",
                 gw_err_name(err));
        job->publish_failed = true;
    }
}

static step stage_publishing(gw_job *job)
{
    if (job->timer_armed) {
        uv_timer_stop(&job->coalesce_timer);
        job->timer_armed = false;
    }
    gw_error_rec *e = error_rec(job);
    if (job->streaming)
        publish_final_chunk(job, e);
    publish_response(job, e);
    publish_usage(job);
    if (job->err == GW_OK) {
        GW_DEBUG("request_done", "request_id", job->req.request_id, "model",
                 job->dep ? job->dep->id : "", "outcome", job->outcome);
    } else {
        GW_INFO("request_failed", "request_id", job->req.request_id, "outcome", job->outcome,
                "error", gw_err_name(job->err), "field", job->err_field);
    }
    job->stage = GW_STAGE_AWAITING_ACKS;
    return STEP_NEXT;
}

/* ---- driving ------------------------------------------------------------------ */

void gw_job_drive(gw_job *job)
{
    for (;;) {
        step s;
        switch (job->stage) {
        case GW_STAGE_DECODED:
            s = stage_decoded(job);
            break;
        case GW_STAGE_VALIDATED:
            s = stage_validated(job);
            break;
        case GW_STAGE_DEDUPED:
            s = stage_deduped(job);
            break;
        case GW_STAGE_ADMITTED:
            s = stage_admitted(job);
            break;
        case GW_STAGE_CACHE_CHECKED:
            s = stage_cache_checked(job);
            break;
        case GW_STAGE_ROUTED:
            s = stage_routed(job);
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
        default: /* RECEIVED, CALLING, DONE: a callback moves these on */
            return;
        }
        if (s == STEP_SUSPEND)
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
    gw_arena_init(&job->arena, gw_codec_get_limits(w->codec)->max_alloc_bytes * 2);
    gw_buf_init(&job->pending, GW_STREAM_PENDING_CAP);
    job->stage = GW_STAGE_RECEIVED;
    copy_pass_headers(job, m);
    gw_err err = gw_codec_decode_request(w->codec, m->payload, m->len, &job->arena, &job->req);
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
    job->publish_failed = true;
}

static void on_timer_closed(uv_handle_t *h)
{
    gw_job *job = h->data;
    gw_arena_cleanup(&job->arena);
    free(job);
}

void gw_job_free(gw_job *job)
{
    if (job->pass_headers != NULL)
        rd_kafka_headers_destroy(job->pass_headers);
    gw_buf_cleanup(&job->pending);
    if (job->timer_init) {
        uv_timer_stop(&job->coalesce_timer);
        uv_close((uv_handle_t *)&job->coalesce_timer, on_timer_closed);
        return;
    }
    gw_arena_cleanup(&job->arena);
    free(job);
}
