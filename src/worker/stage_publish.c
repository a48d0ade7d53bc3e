/*
 * stage_publish: the outputs of a job (docs/worker.md, "Outputs").
 *
 *   PUBLISH  the final chunk (streams), the response (to reply_topic when
 *            the request named one), the usage event; then the shared-state
 *            writes that follow an answer (cache tiers, token reconcile,
 *            budget charge, claim release after a retryable error).
 *   ACKS     waits until the broker acknowledged every output. A failed
 *            delivery is produced again with backoff for kafka.output_retry_ms
 *            (at once given up when the error is permanent: too large, an
 *            invalid or missing topic, not authorised:
 *            gw_producer_err_permanent); then the output is replaced: a
 *            response to the request's reply_topic by an error response on
 *            the default responses topic, any other output by a DLQ record
 *            holding it (headers say why). A DLQ record is retried for as long as its
 *            errors are transient. An output the producer refuses at once
 *            (a topic librdkafka holds as missing or not authorised) is
 *            replaced at once, the same way. Every replacement and every
 *            output given up is logged and counted with librdkafka's error
 *            name (modelgw_output_failures_total). Only when the
 *            replacement cannot be produced at all, or the producer is
 *            fatally broken, does the job end unacknowledged (its offset
 *            never committed).
 *
 * Every record goes through the worker's sink (w->sink): librdkafka's
 * producer in the worker, a recording sink in the unit tests.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/hash.h"
#include "common/log.h"
#include "common/uuid.h"
#include "kafka/producer.h"
#include "worker/pipeline.h"
#include "worker/worker_private.h"

/* Why an output the producer refused at once was replaced: this, then
 * librdkafka's text for its code. */
#define REFUSED_PREFIX "refused by the producer at once: "

enum {
    GW_OUT_BACKOFF_MIN_MS = 100,
    GW_OUT_BACKOFF_MAX_MS = 5000,
    GW_OUT_DLQ_MAX_PAYLOAD = 512 << 10, /* well under the producer's message.max.bytes */
    GW_OUT_DLQ_MAX_KEY = 4096,
};

const char *gw_job_topic(gw_worker *w, int out)
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

rd_kafka_headers_t *gw_job_out_headers(gw_job *job, gw_record_kind kind, int32_t chunk_seq)
{
    rd_kafka_headers_t *h = job->in.pass_headers ? rd_kafka_headers_copy(job->in.pass_headers)
                                                 : rd_kafka_headers_new(4);
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

static gw_err replace_refused(gw_job *job, rd_kafka_resp_err_t why, const char *topic,
                              const void *key, size_t key_len, const void *val, size_t len);

gw_err gw_job_produce(gw_job *job, const char *topic, const void *key, size_t key_len,
                      const void *val, size_t len, rd_kafka_headers_t *hdrs)
{
    gw_worker *w = job->w;
    if (gw_worker_output_muted(w, job)) { /* exactly-once: the next owner answers */
        if (hdrs != NULL)
            rd_kafka_headers_destroy(hdrs);
        w->n.txn_muted++;
        return GW_OK;
    }
    rd_kafka_resp_err_t why = RD_KAFKA_RESP_ERR_NO_ERROR;
    gw_err err = w->sink.send(w->sink.ud, topic, key, key_len, val, len, hdrs, job, &why);
    if (err != GW_OK && replace_refused(job, why, topic, key, key_len, val, len) != GW_OK) {
        job->out.publish_failed = true;
        return err;
    }
    if (err == GW_OK)
        job->out.acks_pending++;
    return GW_OK;
}

gw_err gw_job_publish_record(gw_job *job, gw_record_kind kind, const void *rec, const char *topic,
                             int32_t chunk_seq)
{
    gw_worker *w = job->w;
    gw_buf_reset(&w->scratch);
    gw_err err = gw_codec_encode(w->codec, kind, rec, 0, w->out_framing, &w->scratch);
    if (err != GW_OK)
        return err;
    const char *key = job->req.request_id;
    err = gw_job_produce(job, topic, key, strlen(key), w->scratch.data, w->scratch.len,
                         gw_job_out_headers(job, kind, chunk_seq));
    if (err == GW_OK && kind == GW_REC_CHUNK)
        gw_observe_chunk(w->obs);
    return err;
}

/* ---- the records ---------------------------------------------------------------- */

static double elapsed_ms(const gw_job *job)
{
    return (double)(uv_hrtime() - (uint64_t)job->t_start_ns) / 1e6;
}

static gw_error_rec *error_rec(gw_job *job)
{
    const gw_job_answer *a = &job->ans;
    if (a->err == GW_OK)
        return NULL;
    gw_error_rec *e = gw_arena_calloc(&job->arena, 1, sizeof *e);
    size_t cap = 2 + a->err_details.count;
    gw_kv *kv = gw_arena_calloc(&job->arena, cap, sizeof *kv);
    if (e == NULL || kv == NULL)
        return NULL;
    e->code = gw_err_code(a->err);
    e->message = a->err_detail ? a->err_detail : gw_strerror(a->err);
    e->retryable = gw_err_retryable(a->err);
    size_t n = 0;
    kv[n++] = (gw_kv){"error_name", gw_err_name(a->err)};
    if (a->err_field != NULL)
        kv[n++] = (gw_kv){"field", a->err_field};
    for (size_t i = 0; i < a->err_details.count; i++)
        kv[n++] = a->err_details.items[i];
    e->details = (gw_map){kv, n};
    return e;
}

void gw_job_make_response(gw_job *job, gw_error_rec *e, gw_response *r)
{
    const gw_job_answer *a = &job->ans;
    if (a->duplicate && a->stored != NULL) {
        *r = *a->stored;
        r->request_id = job->req.request_id;
        return;
    }
    *r = (gw_response){.request_id = job->req.request_id,
                       .content = a->err == GW_OK && a->content ? a->content : "",
                       .model_id = a->stored ? a->stored->model_id
                                   : a->dep  ? a->dep->id
                                             : "",
                       .provider = a->stored ? a->stored->provider
                                   : a->dep  ? gw_provider_kind_name(a->dep->provider)
                                             : "",
                       .token_usage = a->usage,
                       .latency_ms = job->out.answer_fixed ? job->out.answer_ms : elapsed_ms(job),
                       .cached = a->cached,
                       .finish_reason = a->finish_reason,
                       .error = e,
                       .metadata = a->resp_metadata,
                       .custom_id = job->req.custom_id,
                       .batch_id = job->req.batch_id,
                       .tool_calls = a->err == GW_OK ? (gw_tool_call *)a->tool_calls : NULL,
                       .tool_call_count = a->err == GW_OK ? a->tool_call_count : 0};
}

/* The content the non-final chunks carried is the start of the answer's:
 * the final chunk can then be cut from the answer, and a replay can cut it
 * the same way (job.c, "replay"). */
static bool same_str(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool sent_is_prefix(const gw_job *job)
{
    const gw_job_out *o = &job->out;
    const gw_job_answer *a = &job->ans;
    const char *c = a->content ? a->content : "";
    if (o->plan_lost || a->err != GW_OK || a->duplicate || strlen(c) < o->text_sent ||
        gw_fnv1a64(GW_FNV64_BASIS, c, o->text_sent) != o->text_hash)
        return false;
    /* and every tool call's pieces are the start of the answer's call */
    for (size_t i = 0; i < o->tool_count; i++) {
        const gw_job_tool_piece *t = &o->tools[i];
        if (!t->head_sent)
            continue;
        if (i >= a->tool_call_count)
            return false;
        const gw_tool_call *tc = &a->tool_calls[i];
        if (!same_str(t->id, tc->id) || !same_str(t->name, tc->name) ||
            strlen(tc->arguments) < t->args_sent ||
            gw_fnv1a64(GW_FNV64_BASIS, tc->arguments, t->args_sent) != t->args_hash)
            return false;
    }
    return true;
}

/* The usage event, fixed with the answer (latency and time of the decision).
 * An answer that is kept holds its encoded bytes (gw_job_usage_bytes), and
 * every publication of this request's event, by this worker or by a later
 * owner replaying the kept answer, sends them unchanged (same event_id);
 * any other is encoded once, when published. */
static void fix_usage(gw_job *job)
{
    gw_worker *w = job->w;
    const gw_job_answer *a = &job->ans;
    const gw_job_route *rt = &job->route;
    char *event_id = gw_arena_alloc(&job->arena, 37);
    if (event_id == NULL)
        return;
    gw_uuid4(event_id);
    const gw_deployment *d = a->dep;
    bool billed = !a->cached && !a->duplicate;
    double cost = 0;
    if (d != NULL && a->err == GW_OK && billed)
        cost = a->usage.prompt_tokens * d->price_in_usd_per_mtok / 1e6 +
               a->usage.completion_tokens * d->price_out_usd_per_mtok / 1e6;
    gw_usage_event u = {
        .event_id = event_id,
        .request_id = job->req.request_id,
        .agent_did = job->req.agent_did ? job->req.agent_did : "",
        .tenant_id = job->req.tenant_id ? job->req.tenant_id : job->req.agent_did,
        .batch_id = job->req.batch_id,
        .custom_id = job->req.custom_id,
        .model_id = d ? d->id : NULL,
        .provider = d ? gw_provider_kind_name(d->provider) : NULL,
        .priority = gw_tier_name(job->in.tier),
        .prompt_tokens = billed ? a->usage.prompt_tokens : 0,
        .completion_tokens = billed ? a->usage.completion_tokens : 0,
        .total_tokens = billed ? a->usage.total_tokens : 0,
        .cost_usd = cost,
        .saved_cost_usd = a->cached ? a->saved_cost_usd : 0,
        .latency_ms = job->out.answer_ms,
        .has_ttft = a->has_ttft && billed,
        .ttft_ms = a->ttft_ms,
        .cached = a->cached,
        .cache_tier = a->cache_tier,
        .has_similarity = job->cache.has_similarity,
        .cache_similarity = job->cache.similarity,
        .attempts = rt->fo_ready ? gw_failover_attempts(&rt->fo) : 0,
        .failovers = rt->fo_ready ? gw_failover_failovers(&rt->fo) : 0,
        .outcome = a->outcome ? a->outcome : "error",
        .error_code = a->err == GW_OK ? NULL : gw_err_code(a->err),
        .timestamp_ms = gw_worker_now_ms(w),
        .trace_id = job->trace.started ? job->trace.trace_hex : NULL,
        .span_id = job->trace.started ? job->trace.span_hex : NULL,
    };
    if (rt->fo_ready && rt->fo.calls == 0)
        u.attempts = 0;
    if (u.tenant_id == NULL)
        u.tenant_id = "";
    job->out.usage = u;
}

const uint8_t *gw_job_usage_bytes(gw_job *job, size_t *len)
{
    gw_worker *w = job->w;
    gw_job_out *o = &job->out;
    if (o->usage_rec == NULL && o->answer_fixed) {
        gw_buf_reset(&w->scratch);
        if (gw_codec_encode(w->codec, GW_REC_USAGE, &o->usage, 0, w->out_framing, &w->scratch) !=
            GW_OK)
            return NULL; /* publish_usage encodes again and reports the error */
        uint8_t *rec = gw_arena_alloc(&job->arena, w->scratch.len);
        if (rec == NULL)
            return NULL;
        memcpy(rec, w->scratch.data, w->scratch.len);
        o->usage_rec = rec;
        o->usage_len = w->scratch.len;
    }
    *len = o->usage_len;
    return o->usage_rec;
}

/* Fix the answer once, so the kept record and the published one are equal. */
void gw_job_fix_answer(gw_job *job)
{
    gw_job_out *o = &job->out;
    if (o->answer_fixed)
        return;
    gw_job_stop_coalescing(job);
    o->answer_err = job->ans.duplicate && job->ans.stored ? job->ans.stored->error : error_rec(job);
    o->answer_ms = elapsed_ms(job);
    o->answer_fixed = true;
    o->plan_ok = o->streaming && sent_is_prefix(job);
    if (!job->ans.dlq)
        fix_usage(job);
}

static void publish_final_chunk(gw_job *job, gw_error_rec *e)
{
    gw_job_out *o = &job->out;
    const gw_job_answer *a = &job->ans;
    /* The rest of the answer after what the chunks carried (the same cut a
     * replay makes), or what is pending when the two differ. */
    char *text = o->plan_ok ? (char *)a->content + o->text_sent
                            : gw_arena_strndup(&job->arena,
                                               o->pending.data ? (const char *)o->pending.data : "",
                                               o->pending.len);
    /* A replay carries the usage the answer was given with, as the first did. */
    gw_token_usage usage = a->duplicate && a->stored ? a->stored->token_usage : a->usage;
    gw_chunk ch = {.request_id = job->req.request_id,
                   .seq = o->chunk_seq,
                   .content = text ? text : "",
                   .is_final = true,
                   .has_usage = e == NULL,
                   .token_usage = usage,
                   .finish_reason = a->finish_reason,
                   .error = e};
    /* The answer's tool calls, as far as no chunk carried them yet (whole
     * calls when none was streamed live): the pieces by index assemble to
     * the response's tool_calls. */
    if (e == NULL)
        ch.tool_calls = gw_job_tool_rest(job, &ch.tool_call_count);
    if (gw_job_publish_record(job, GW_REC_CHUNK, &ch, gw_job_topic(job->w, GW_OUT_CHUNKS),
                              ch.seq) == GW_OK) {
        o->chunk_seq++;
        gw_buf_reset(&o->pending);
    }
}

static void publish_response(gw_job *job, gw_error_rec *e)
{
    gw_worker *w = job->w;
    gw_response r;
    gw_job_make_response(job, e, &r);
    const char *topic = job->req.reply_topic && job->ans.err != GW_E_INVALID_REQUEST
                            ? job->req.reply_topic
                            : gw_job_topic(w, GW_OUT_RESPONSES);
    gw_err err = gw_job_publish_record(job, GW_REC_RESPONSE, &r, topic, -1);
    if (err != GW_OK && job->ans.err == GW_OK) {
        /* The answer itself could not be encoded (a limit, bad UTF-8 from the
         * provider): answer with the encoder's error instead. */
        job->ans.err = err;
        job->ans.outcome = "error";
        r.content = "";
        r.error = error_rec(job);
        err = gw_job_publish_record(job, GW_REC_RESPONSE, &r, topic, -1);
    }
    if (err != GW_OK) {
        GW_ERROR("response_unpublishable", "request_id", job->req.request_id, "error",
                 gw_err_name(err));
        job->out.publish_failed = true;
        return;
    }
    /* The version kept for redeliveries and the cache: single-object
     * framing. With that output framing (the default) it is the bytes just
     * published, so they are copied rather than encoded a second time. */
    gw_buf_reset(&w->store_buf);
    gw_err kept = w->out_framing == GW_FRAMING_SINGLE_OBJECT
                      ? gw_buf_append(&w->store_buf, w->scratch.data, w->scratch.len)
                      : gw_codec_encode(w->store_codec, GW_REC_RESPONSE, &r, 0,
                                        GW_FRAMING_SINGLE_OBJECT, &w->store_buf);
    if (kept != GW_OK)
        gw_buf_reset(&w->store_buf);
}

/* The usage event, as fixed with the answer; a duplicate first sends the
 * event the kept answer was first published with (byte for byte: a
 * consumer de-duplicating by event_id counts the provider call once, even
 * when its first owner died between keeping the answer and publishing). */
static void publish_usage(gw_job *job)
{
    gw_worker *w = job->w;
    const char *topic = gw_job_topic(w, GW_OUT_USAGE);
    const char *key = job->req.request_id;
    gw_err err = GW_OK;
    if (job->ans.duplicate && job->ans.kept_usage != NULL)
        err = gw_job_produce(job, topic, key, strlen(key), job->ans.kept_usage,
                             job->ans.kept_usage_len, gw_job_out_headers(job, GW_REC_USAGE, -1));
    if (err == GW_OK)
        err = job->out.usage_rec != NULL
                  ? gw_job_produce(job, topic, key, strlen(key), job->out.usage_rec,
                                   job->out.usage_len, gw_job_out_headers(job, GW_REC_USAGE, -1))
                  : gw_job_publish_record(job, GW_REC_USAGE, &job->out.usage, topic, -1);
    gw_observe_outcome(job, &job->out.usage);
    if (err != GW_OK) {
        GW_ERROR("usage_unpublishable", "request_id", job->req.request_id, "error",
                 gw_err_name(err));
        job->out.publish_failed = true;
    }
}

/* ---- PUBLISH and ACKS ----------------------------------------------------------- */

gw_step gw_stage_publish(gw_job *job)
{
    if (!gw_worker_publish_turn(job->w, job))
        return GW_STEP_SUSPEND; /* kafka.transactional: after its partition's earlier requests */
    if (job->ans.dlq)
        return GW_STEP_NEXT; /* the DLQ record is the only output */
    gw_job_fix_answer(job);
    gw_error_rec *e = job->out.answer_err;
    if (job->out.streaming)
        publish_final_chunk(job, e);
    publish_response(job, e);
    publish_usage(job);
    const gw_buf *b = &job->w->store_buf;
    gw_stage_state_finish(job, b->data, b->len);
    if (!job->ans.duplicate)
        gw_stage_cache_finish(job);
    return GW_STEP_NEXT;
}

static gw_err publish_reply_error(gw_job *job, const char *reason);

static const char *refused_reason(char *buf, size_t size, rd_kafka_resp_err_t why)
{
    snprintf(buf, size, "%s%s", REFUSED_PREFIX, rd_kafka_err2str(why));
    return buf;
}

gw_step gw_stage_acks(gw_job *job)
{
    if (job->out.reply_refused) {
        char reason[192];
        job->out.reply_refused = false;
        if (publish_reply_error(
                job, refused_reason(reason, sizeof reason, job->out.reply_refusal)) != GW_OK)
            job->out.publish_failed = true;
    }
    return job->out.acks_pending > 0 ? GW_STEP_SUSPEND : GW_STEP_NEXT;
}

void gw_job_delivered(gw_job *job, bool ok)
{
    if (!ok)
        job->out.publish_failed = true;
    job->out.acks_pending--;
    if (job->stage == GW_STAGE_ACKS && job->out.acks_pending == 0)
        gw_job_resume(job, GW_STEP_NEXT);
}

/* Which output a topic is, as modelgw_output_failures_total names it. */
static const char *output_kind(gw_worker *w, const char *topic)
{
    static const char *const names[] = {[GW_OUT_RESPONSES] = "response",
                                        [GW_OUT_CHUNKS] = "chunk",
                                        [GW_OUT_USAGE] = "usage",
                                        [GW_OUT_DLQ] = "dlq"};
    for (int out = GW_OUT_RESPONSES; out <= GW_OUT_DLQ; out++)
        if (strcmp(topic, gw_job_topic(w, out)) == 0)
            return names[out];
    return "reply";
}

/* An output replaced (err == GW_OK) or given up: logged and counted with
 * librdkafka's error name. */
static void output_failed(gw_job *job, const char *topic, rd_kafka_resp_err_t why,
                          const char *reason, const char *by, gw_err err)
{
    gw_worker *w = job->w;
    const char *name = rd_kafka_err2name(why);
    if (err == GW_OK) {
        GW_WARN("output_replaced", "request_id", job->req.request_id, "topic", topic, "error",
                reason, "error_name", name, "by", by);
    } else {
        GW_ERROR("output_undeliverable", "request_id", job->req.request_id, "topic", topic, "error",
                 reason, "error_name", name);
    }
    gw_observe_output_failure(w->obs, output_kind(w, topic), name,
                              err == GW_OK ? "replaced" : "undeliverable");
}

/* The failed response to reply_topic is replaced by an error response on the
 * default responses topic (E4001, field reply_topic, the broker's reason). */
static gw_err publish_reply_error(gw_job *job, const char *reason)
{
    gw_worker *w = job->w;
    gw_job_answer *a = &job->ans;
    char detail[256];
    snprintf(detail, sizeof detail, "reply_topic undeliverable: %s", reason);
    a->err = GW_E_INVALID_REQUEST;
    a->err_field = "reply_topic";
    a->err_detail = gw_arena_strndup(&job->arena, detail, strlen(detail));
    a->duplicate = false; /* the error, not the kept answer */
    a->content = NULL;
    gw_response r;
    gw_job_make_response(job, error_rec(job), &r);
    return gw_job_publish_record(job, GW_REC_RESPONSE, &r, gw_job_topic(w, GW_OUT_RESPONSES), -1);
}

/* Any other output that cannot be delivered goes to the DLQ as it is, with
 * the request it answers and the broker's reason in the headers. */
static gw_err publish_dead_output(gw_job *job, const rd_kafka_message_t *m)
{
    gw_worker *w = job->w;
    rd_kafka_headers_t *own = NULL;
    if (rd_kafka_message_headers(m, &own) != RD_KAFKA_RESP_ERR_NO_ERROR)
        own = NULL;
    const struct gw_part *p = job->in.part;
    gw_dlq_source src = {.headers = own,
                         .topic = w->tier_topics[job->in.tier],
                         .partition = p != NULL ? p->partition : -1,
                         .offset = job->in.offset,
                         .len = m->len,
                         .key_len = m->key_len};
    size_t len, key_len;
    rd_kafka_headers_t *h = gw_producer_dlq_headers(&src, GW_E_IO, GW_OUT_DLQ_MAX_PAYLOAD,
                                                    GW_OUT_DLQ_MAX_KEY, &len, &key_len);
    rd_kafka_header_add(h, "output_topic", -1, rd_kafka_topic_name(m->rkt), -1);
    rd_kafka_header_add(h, "delivery_error", -1, rd_kafka_err2str(m->err), -1);
    w->n.dlq++;
    gw_observe_dlq(w->obs, GW_E_IO);
    return gw_job_produce(job, gw_job_topic(w, GW_OUT_DLQ), m->key, key_len, m->payload, len, h);
}

void gw_job_on_delivery(gw_job *job, const rd_kafka_message_t *m)
{
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        gw_job_delivered(job, true);
        return;
    }
    gw_worker *w = job->w;
    const char *topic = rd_kafka_topic_name(m->rkt);
    const char *dlq = gw_job_topic(w, GW_OUT_DLQ);
    const char *responses = gw_job_topic(w, GW_OUT_RESPONSES);
    if (w->run == GW_RUN_DONE || gw_producer_fatal(w->prod) || gw_producer_transactional(w->prod)) {
        GW_WARN("delivery_failed", "request_id", job->req.request_id, "topic", topic, "error",
                rd_kafka_err2str(m->err), "error_name", rd_kafka_err2name(m->err));
        gw_job_delivered(job, false); /* redelivered to the partition's next owner */
        return;
    }
    int64_t now = gw_worker_now_ms(w);
    if (job->out.retry_since_ms == 0) {
        job->out.retry_since_ms = now;
        GW_WARN("delivery_failed", "request_id", job->req.request_id, "topic", topic, "error",
                rd_kafka_err2str(m->err), "error_name", rd_kafka_err2name(m->err));
    }
    bool is_dlq = strcmp(topic, dlq) == 0;
    bool within = now - job->out.retry_since_ms < w->cfg->kafka.output_retry_ms;
    if (!gw_producer_err_permanent(m->err) && (within || is_dlq)) {
        uint32_t n = job->out.republishes < 6 ? job->out.republishes : 6;
        int64_t delay = (int64_t)GW_OUT_BACKOFF_MIN_MS << n;
        if (delay > GW_OUT_BACKOFF_MAX_MS)
            delay = GW_OUT_BACKOFF_MAX_MS;
        job->out.republishes++;
        /* this output is replaced by its copy, whose report settles it */
        if (gw_producer_defer(w->prod, m, job, now + delay) == GW_OK)
            return;
    }
    gw_err err = GW_E_IO;
    /* Replace it (not a DLQ record); the replacement takes a slot of its own. */
    bool to_reply = !is_dlq && job->req.reply_topic != NULL &&
                    strcmp(topic, job->req.reply_topic) == 0 && strcmp(topic, responses) != 0;
    if (!is_dlq)
        err = to_reply ? publish_reply_error(job, rd_kafka_err2str(m->err))
                       : publish_dead_output(job, m);
    output_failed(job, topic, m->err, rd_kafka_err2str(m->err), to_reply ? responses : dlq, err);
    job->out.retry_since_ms = 0; /* the replacement gets a bound of its own */
    gw_job_delivered(job, err == GW_OK);
}

static gw_err refused_to_dlq(gw_job *job, const char *reason, const char *topic, const void *key,
                             size_t key_len, const void *val, size_t len);

/* The producer refused an output at once (librdkafka holds its topic as
 * missing or not authorised, or its queue is full; gw_producer_send logged
 * produce_failed): replaced now as a failed delivery would be after its
 * retries, so the partition moves on. A reply_topic response is replaced in
 * ACKS, after the answer was kept; any other output goes to the DLQ without
 * its own headers (the refused send consumed them). The DLQ itself, a broken
 * producer or a worker that is done are not replaced: the job ends
 * unacknowledged. */
static gw_err replace_refused(gw_job *job, rd_kafka_resp_err_t why, const char *topic,
                              const void *key, size_t key_len, const void *val, size_t len)
{
    gw_worker *w = job->w;
    const char *dlq = gw_job_topic(w, GW_OUT_DLQ);
    const char *responses = gw_job_topic(w, GW_OUT_RESPONSES);
    char reason[192];
    refused_reason(reason, sizeof reason, why);
    bool to_reply = job->req.reply_topic != NULL && strcmp(topic, job->req.reply_topic) == 0 &&
                    strcmp(topic, responses) != 0;
    gw_err err = GW_E_IO;
    if (strcmp(topic, dlq) == 0 || w->run == GW_RUN_DONE ||
        (w->prod != NULL && gw_producer_fatal(w->prod))) {
        /* not replaced: logged by the caller's publish_failed path */
    } else if (to_reply) {
        job->out.reply_refused = true; /* replaced in ACKS */
        job->out.reply_refusal = why;
        err = GW_OK;
    } else {
        err = refused_to_dlq(job, reason, topic, key, key_len, val, len);
    }
    output_failed(job, topic, why, reason, to_reply ? responses : dlq, err);
    return err;
}

/* A resend of this job's output that the producer refused when its backoff
 * ended (gw_producer_hooks.refused): replaced as a refused send is (a
 * reply_topic response at once, the job being in ACKS already), then the
 * slot the failed delivery held is settled. */
void gw_job_resend_refused(gw_job *job, rd_kafka_resp_err_t why, const char *topic, const void *key,
                           size_t key_len, const void *val, size_t len)
{
    gw_err err = replace_refused(job, why, topic, key, key_len, val, len);
    if (err == GW_OK && job->out.reply_refused) {
        char reason[192];
        job->out.reply_refused = false;
        err = publish_reply_error(job, refused_reason(reason, sizeof reason, why));
        if (err != GW_OK)
            output_failed(job, gw_job_topic(job->w, GW_OUT_RESPONSES), why, reason, NULL, err);
    }
    job->out.retry_since_ms = 0;
    gw_job_delivered(job, err == GW_OK);
}

/* A refused output into the DLQ as it is (payload cut at 512 KiB). */
static gw_err refused_to_dlq(gw_job *job, const char *reason, const char *topic, const void *key,
                             size_t key_len, const void *val, size_t len)
{
    gw_worker *w = job->w;
    const struct gw_part *p = job->in.part;
    gw_dlq_source src = {.topic = w->tier_topics[job->in.tier],
                         .partition = p != NULL ? p->partition : -1,
                         .offset = job->in.offset,
                         .len = len,
                         .key_len = key_len};
    size_t dlen, dkey_len;
    rd_kafka_headers_t *h = gw_producer_dlq_headers(&src, GW_E_IO, GW_OUT_DLQ_MAX_PAYLOAD,
                                                    GW_OUT_DLQ_MAX_KEY, &dlen, &dkey_len);
    rd_kafka_header_add(h, "output_topic", -1, topic, -1);
    rd_kafka_header_add(h, "delivery_error", -1, reason, -1);
    w->n.dlq++;
    gw_observe_dlq(w->obs, GW_E_IO);
    return gw_job_produce(job, gw_job_topic(w, GW_OUT_DLQ), key, dkey_len, val, dlen, h);
}
