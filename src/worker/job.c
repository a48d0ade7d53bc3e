/*
 * job: a job's life (new, abort, free), the DECODE and VALIDATE stages, the
 * helpers every stage answers through, and the live stream (deltas coalesced
 * into chunks). See job.h and pipeline.h.
 */
#include "worker/job.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/hash.h"
#include "common/log.h"
#include "kafka/producer.h"
#include "worker/decode_registry.h"
#include "worker/pipeline.h"
#include "worker/worker_private.h"

enum {
    GW_STREAM_PENDING_CAP = 4 << 20,
    GW_DLQ_MAX_PAYLOAD = 512 << 10, /* well under the producer's message.max.bytes */
    GW_DLQ_MAX_KEY = 4096,
};

/* ---- DECODE --------------------------------------------------------------------- */

static bool is_pass_header(const char *name)
{
    return strcasecmp(name, "traceparent") == 0 || strcasecmp(name, "tracestate") == 0 ||
           strcasecmp(name, "baggage") == 0 || strncasecmp(name, "x-correlation", 13) == 0;
}

static void copy_pass_headers(gw_job *job, rd_kafka_headers_t *in)
{
    if (in == NULL)
        return;
    const char *name;
    const void *val;
    size_t len;
    for (size_t i = 0; rd_kafka_header_get_all(in, i, &name, &val, &len) == 0 && i < 32; i++) {
        if (!is_pass_header(name) || len > 1024)
            continue;
        if (job->in.pass_headers == NULL)
            job->in.pass_headers = rd_kafka_headers_new(4);
        rd_kafka_header_add(job->in.pass_headers, name, -1, val, (ssize_t)len);
    }
}

static void publish_dlq(gw_job *job, const gw_job_msg *m, gw_err err)
{
    gw_dlq_source src = {.headers = m->headers,
                         .topic = m->topic,
                         .partition = m->partition,
                         .offset = m->offset,
                         .len = m->len,
                         .key_len = m->key_len};
    size_t len, key_len;
    rd_kafka_headers_t *h =
        gw_producer_dlq_headers(&src, err, GW_DLQ_MAX_PAYLOAD, GW_DLQ_MAX_KEY, &len, &key_len);
    char part[16], off[24];
    snprintf(part, sizeof part, "%" PRId32, m->partition);
    snprintf(off, sizeof off, "%" PRId64, m->offset);
    job->w->n.dlq++;
    gw_observe_dlq(job->w->obs, err);
    GW_WARN("dlq", "error", gw_err_name(err), "topic", m->topic, "partition", part, "offset", off);
    gw_job_produce(job, gw_job_topic(job->w, GW_OUT_DLQ), m->key, key_len, m->payload, len, h);
}

gw_step gw_stage_decode(gw_job *job)
{
    gw_worker *w = job->w;
    const gw_job_msg *m = job->in.msg;
    job->in.msg = NULL; /* the caller's: read during this stage only */
    copy_pass_headers(job, m->headers);
    gw_err err = gw_codec_decode_request(w->codec, m->payload, m->len, &job->arena, &job->req);
    /* Every output is keyed by the request id (and carries it in a header and
     * in its value): one too long to key outputs with cannot be answered, so
     * the message goes to the DLQ like undecodable bytes. */
    if (err == GW_OK && job->req.request_id != NULL &&
        strlen(job->req.request_id) > GW_MAX_ID_BYTES)
        err = GW_E_CODEC_LIMIT;
    if (err == GW_OK)
        return GW_STEP_NEXT;
    gw_step reg_step; /* an unknown Confluent id: the schema registry may know it */
    if (gw_job_decode_registry(job, m, err, &reg_step))
        return reg_step;
    memset(&job->req, 0, sizeof job->req);
    job->ans.dlq = true;
    publish_dlq(job, m, err);
    return gw_job_fail(job, err, "dlq");
}

/* ---- VALIDATE ------------------------------------------------------------------- */

gw_step gw_stage_validate(gw_job *job)
{
    gw_worker *w = job->w;
    const char *field = NULL;
    gw_err err = gw_validate_request(&job->req, &w->vlimits, gw_worker_now_ms(w), &field);
    job->out.streaming = job->req.stream;
    if (err == GW_OK)
        return GW_STEP_NEXT;
    job->ans.err_field = field;
    if (err == GW_E_DEADLINE_EXCEEDED) {
        w->n.expired++;
        return gw_job_fail(job, err, "expired");
    }
    w->n.invalid++;
    gw_validate_drop_oversized_ids(&job->req);
    return gw_job_fail(job, err, "invalid");
}

/* ---- the answer ----------------------------------------------------------------- */

gw_step gw_job_fail(gw_job *job, gw_err err, const char *outcome)
{
    job->ans.err = err;
    job->ans.outcome = outcome;
    return GW_STEP_FAILED;
}

void gw_job_add_detail(gw_job *job, const char *key, const char *value)
{
    gw_map *d = &job->ans.err_details;
    gw_kv *kv = gw_arena_alloc(&job->arena, (d->count + 1) * sizeof *kv);
    if (kv == NULL || key == NULL || value == NULL)
        return;
    if (d->count > 0)
        memcpy(kv, d->items, d->count * sizeof *kv);
    kv[d->count] = (gw_kv){key, value};
    *d = (gw_map){kv, d->count + 1};
}

/* ---- the stream ----------------------------------------------------------------- */

/*
 * Every non-final chunk goes out here, live or replayed, and is noted in the
 * job's ledger: the content bytes and each tool call's argument bytes sent
 * so far (with their hashes), and where the chunk ended (the plan). The plan
 * is kept with the answer (stage_state.c), so that a redelivery replays the
 * same cuts: the same (request_id, seq) always carries the same bytes.
 */
static void publish_chunk(gw_job *job, const char *text, gw_tool_call_delta *tools, size_t ntools)
{
    gw_job_out *o = &job->out;
    gw_chunk ch = {.request_id = job->req.request_id,
                   .seq = o->chunk_seq,
                   .content = text,
                   .tool_calls = tools,
                   .tool_call_count = ntools};
    if (gw_job_publish_record(job, GW_REC_CHUNK, &ch, gw_job_topic(job->w, GW_OUT_CHUNKS),
                              ch.seq) != GW_OK)
        return;
    o->chunk_seq++;
    size_t n = strlen(text);
    o->text_sent += n;
    o->text_hash = gw_fnv1a64(o->text_hash, text, n);
    char end[48];
    int k = snprintf(end, sizeof end, "%s%zu", o->plan.len > 0 ? "," : "", o->text_sent);
    bool ok = gw_buf_append(&o->plan, end, (size_t)k) == GW_OK;
    for (size_t i = 0; i < ntools; i++) {
        gw_job_tool_piece *t = &o->tools[tools[i].index]; /* publishers index o->tools */
        size_t len = strlen(tools[i].arguments);
        t->head_sent = true;
        t->args_sent += len;
        t->args_hash = gw_fnv1a64(t->args_hash, tools[i].arguments, len);
        k = snprintf(end, sizeof end, ".%d:%zu", (int)tools[i].index, t->args_sent);
        ok = ok && gw_buf_append(&o->plan, end, (size_t)k) == GW_OK;
    }
    if (!ok)
        o->plan_lost = true;
}

static void publish_chunk_text(gw_job *job, const char *text)
{
    publish_chunk(job, text, NULL, 0);
}

static gw_tool_call_delta *take_tool_deltas(gw_job *job, size_t *n);
static void tool_deltas_sent(gw_job *job);
static gw_job_tool_piece *tools_table(gw_job *job);

void gw_job_flush_chunk(gw_job *job)
{
    gw_job_out *o = &job->out;
    if ((o->pending.len == 0 && o->tools_pending == 0) || job->stage != GW_STAGE_ATTEMPT)
        return;
    char *text = gw_arena_strndup(&job->arena, o->pending.data ? (const char *)o->pending.data : "",
                                  o->pending.len);
    if (text == NULL)
        return; /* stays pending; the final chunk carries it */
    int32_t seq = o->chunk_seq;
    if (o->tools_pending > 0) {
        size_t n = 0;
        gw_tool_call_delta *tools = take_tool_deltas(job, &n);
        if (tools == NULL)
            return; /* out of the job's memory: stays pending */
        publish_chunk(job, text, tools, n);
        if (o->chunk_seq != seq)
            tool_deltas_sent(job);
    } else {
        publish_chunk_text(job, text);
    }
    if (o->chunk_seq != seq)
        gw_buf_reset(&o->pending);
}

static void on_coalesce_timer(uv_timer_t *t)
{
    gw_job *job = t->data;
    job->out.timer_armed = false;
    gw_job_flush_chunk(job);
}

void gw_job_stop_coalescing(gw_job *job)
{
    if (job->out.timer_armed) {
        uv_timer_stop(&job->out.coalesce_timer);
        job->out.timer_armed = false;
    }
}

static void tools_cleanup(gw_job_out *o)
{
    for (size_t i = 0; i < o->tool_count; i++)
        gw_buf_cleanup(&o->tools[i].args);
    o->tool_count = 0;
    o->tools_pending = 0;
}

void gw_job_drop_pending(gw_job *job)
{
    gw_job_stop_coalescing(job);
    gw_buf_reset(&job->out.pending);
    tools_cleanup(&job->out); /* nothing was published (else no retry): start over */
}

/* Publish now, arm the coalescing timer or wait, as worker.chunk_coalesce_* say. */
static void coalesce(gw_job *job)
{
    gw_job_out *o = &job->out;
    uint32_t delay = 0;
    switch (gw_coalesce_on_delta(&job->w->coalesce, (uint32_t)o->chunk_seq,
                                 o->pending.len + o->tools_pending, o->timer_armed, &delay)) {
    case GW_COALESCE_FLUSH:
        gw_job_flush_chunk(job);
        break;
    case GW_COALESCE_ARM_TIMER:
        if (!o->timer_init) {
            uv_timer_init(job->w->loop, &o->coalesce_timer);
            o->coalesce_timer.data = job;
            o->timer_init = true;
        }
        uv_timer_start(&o->coalesce_timer, on_coalesce_timer, delay, 0);
        o->timer_armed = true;
        break;
    case GW_COALESCE_WAIT:
        break;
    }
}

void gw_job_on_delta(void *ud, const char *text, size_t len)
{
    gw_job *job = ud;
    gw_job_out *o = &job->out;
    if (!o->streaming)
        return;
    if (gw_buf_append(&o->pending, text, len) != GW_OK) {
        gw_job_flush_chunk(job); /* over the cap: publish what we have, then retry once */
        if (gw_buf_append(&o->pending, text, len) != GW_OK)
            return;
    }
    coalesce(job);
}

/* ---- the stream: tool-call pieces ------------------------------------------------ */

void gw_job_on_tool_delta(void *ud, const gw_tool_call_delta *d)
{
    gw_job *job = ud;
    gw_job_out *o = &job->out;
    if (!o->streaming || d->index < 0 || d->index >= GW_JOB_MAX_TOOL_PIECES ||
        (size_t)d->index > o->tool_count)
        return; /* not streamed live: the final chunk carries what no chunk did */
    if (tools_table(job) == NULL)
        return;
    gw_job_tool_piece *t = &o->tools[d->index];
    if ((size_t)d->index == o->tool_count) {
        *t = (gw_job_tool_piece){.args_hash = GW_FNV64_BASIS};
        gw_buf_init(&t->args, GW_STREAM_PENDING_CAP);
        o->tool_count++;
        t->id = d->id != NULL ? gw_arena_strdup(&job->arena, d->id) : NULL;
        t->name = d->name != NULL ? gw_arena_strdup(&job->arena, d->name) : NULL;
        t->whole = t->name == NULL || (d->id != NULL && t->id == NULL);
        o->tools_pending += t->whole ? 0 : 1;
    }
    if (t->whole)
        return;
    size_t len = d->arguments != NULL ? strlen(d->arguments) : 0;
    if (len > 0 && gw_buf_append(&t->args, d->arguments, len) != GW_OK) {
        gw_job_flush_chunk(job); /* over the cap: publish what we have, then retry once */
        if (gw_buf_append(&t->args, d->arguments, len) != GW_OK)
            return; /* never published live: the final chunk carries the rest */
    }
    o->tools_pending += len;
    coalesce(job);
}

/* The pending pieces, one delta per call (id and name on its first); in the
 * arena. NULL when out of the job's memory. A call is published only after
 * its head, so a consumer always sees id and name first. */
static gw_tool_call_delta *take_tool_deltas(gw_job *job, size_t *n)
{
    gw_job_out *o = &job->out;
    gw_tool_call_delta *d = gw_arena_calloc(&job->arena, o->tool_count, sizeof *d);
    *n = 0;
    for (size_t i = 0; d != NULL && i < o->tool_count; i++) {
        gw_job_tool_piece *t = &o->tools[i];
        if (t->whole || (t->head_sent && t->args.len == 0))
            continue;
        char *args = gw_arena_strndup(&job->arena, t->args.data ? (const char *)t->args.data : "",
                                      t->args.len);
        if (args == NULL)
            return NULL;
        d[(*n)++] = (gw_tool_call_delta){.index = (int32_t)i,
                                         .id = t->head_sent ? NULL : t->id,
                                         .name = t->head_sent ? NULL : t->name,
                                         .arguments = args};
    }
    return d;
}

/* After a chunk took every pending piece (publish_chunk noted them sent). */
static void tool_deltas_sent(gw_job *job)
{
    gw_job_out *o = &job->out;
    for (size_t i = 0; i < o->tool_count; i++)
        if (!o->tools[i].whole)
            gw_buf_reset(&o->tools[i].args);
    o->tools_pending = 0;
}

/* The job's table of streamed calls (live or replayed); NULL without memory. */
static gw_job_tool_piece *tools_table(gw_job *job)
{
    gw_job_out *o = &job->out;
    if (o->tools == NULL)
        o->tools = gw_arena_calloc(&job->arena, GW_JOB_MAX_TOOL_PIECES, sizeof *o->tools);
    return o->tools;
}

gw_tool_call_delta *gw_job_tool_rest(gw_job *job, size_t *n)
{
    const gw_job_answer *a = &job->ans;
    const gw_job_out *o = &job->out;
    gw_tool_call_delta *d =
        a->tool_call_count > 0 ? gw_arena_calloc(&job->arena, a->tool_call_count, sizeof *d) : NULL;
    *n = 0;
    for (size_t i = 0; d != NULL && i < a->tool_call_count; i++) {
        const gw_tool_call *c = &a->tool_calls[i];
        const gw_job_tool_piece *t = i < o->tool_count ? &o->tools[i] : NULL;
        bool head = t == NULL || !t->head_sent;
        size_t len = strlen(c->arguments), sent = t != NULL ? t->args_sent : 0;
        sent = sent < len ? sent : len;
        if (!head && sent == len)
            continue; /* all of it went out live */
        d[(*n)++] = (gw_tool_call_delta){.index = (int32_t)i,
                                         .id = head ? c->id : NULL,
                                         .name = head ? c->name : NULL,
                                         .arguments = c->arguments + sent};
    }
    return *n > 0 ? d : NULL;
}

/*
 * One chunk of a kept plan, "<end>[.<i>:<end>]...": where its text ends and
 * where each tool call it carries a piece of ends. Advances *p past it (and
 * its comma); false at the end or on anything malformed.
 */
typedef struct {
    size_t text_end;
    size_t n;
    int32_t idx[GW_JOB_MAX_TOOL_PIECES];
    size_t end[GW_JOB_MAX_TOOL_PIECES];
} plan_chunk;

static bool plan_next(const char **p, plan_chunk *pc)
{
    char *e;
    if (**p < '0' || **p > '9')
        return false;
    pc->text_end = (size_t)strtoull(*p, &e, 10);
    pc->n = 0;
    while (*e == '.' && pc->n < GW_JOB_MAX_TOOL_PIECES) {
        const char *q = e + 1;
        long i = strtol(q, &e, 10);
        if (e == q || *e != ':' || i < 0 || i >= GW_JOB_MAX_TOOL_PIECES)
            return false;
        q = e + 1;
        pc->idx[pc->n] = (int32_t)i;
        pc->end[pc->n++] = (size_t)strtoull(q, &e, 10);
        if (e == q)
            return false;
    }
    if (*e != ',' && *e != '\0')
        return false;
    *p = *e == ',' ? e + 1 : e;
    return true;
}

/* The tool pieces of a replayed chunk, cut from the answer's calls where the
 * plan says; NULL (n = 0) when it has none; false when the plan does not fit
 * the answer. */
static bool replay_tools(gw_job *job, const plan_chunk *pc, gw_tool_call_delta **out, size_t *n)
{
    const gw_job_answer *a = &job->ans;
    *out = NULL;
    *n = 0;
    if (pc->n == 0)
        return true;
    gw_job_tool_piece *tt = tools_table(job);
    gw_tool_call_delta *d = gw_arena_calloc(&job->arena, pc->n, sizeof *d);
    if (tt == NULL || d == NULL)
        return false;
    for (size_t k = 0; k < pc->n; k++) {
        int32_t i = pc->idx[k];
        if ((size_t)i >= a->tool_call_count)
            return false;
        const gw_tool_call *c = &a->tool_calls[i];
        size_t from = tt[i].args_sent;
        if (pc->end[k] < from || pc->end[k] > strlen(c->arguments))
            return false;
        char *args = gw_arena_strndup(&job->arena, c->arguments + from, pc->end[k] - from);
        if (args == NULL)
            return false;
        d[k] = (gw_tool_call_delta){.index = i,
                                    .id = tt[i].head_sent ? NULL : c->id,
                                    .name = tt[i].head_sent ? NULL : c->name,
                                    .arguments = args};
    }
    size_t calls =
        a->tool_call_count < GW_JOB_MAX_TOOL_PIECES ? a->tool_call_count : GW_JOB_MAX_TOOL_PIECES;
    if (job->out.tool_count < calls)
        job->out.tool_count = calls; /* gw_job_tool_rest reads what was replayed */
    *out = d;
    *n = pc->n;
    return true;
}

/*
 * Replay a stored answer as a stream: with the first owner's cuts (text and
 * tool pieces) when they were kept (a duplicate), else in pieces of at most
 * worker.chunk_coalesce_bytes cut on UTF-8 boundaries with the tool calls
 * whole in the final chunk; the rest is left pending for the final chunk, as
 * a live stream would be coalesced. A plan that does not fit the answer
 * stops where it stops fitting.
 */
static void replay_chunks(gw_job *job, const char *text, const char *plan)
{
    size_t len = strlen(text), off = 0;
    size_t step = job->w->coalesce.coalesce_bytes > 0 ? job->w->coalesce.coalesce_bytes : 64;
    plan_chunk pc;
    for (;;) {
        size_t cut;
        gw_tool_call_delta *tools = NULL;
        size_t ntools = 0;
        if (plan != NULL && *plan != '\0') {
            if (!plan_next(&plan, &pc) || pc.text_end < off || pc.text_end > len ||
                !replay_tools(job, &pc, &tools, &ntools))
                break;
            cut = pc.text_end;
        } else if (plan == NULL && len - off > step) {
            cut = off + step;
            while (cut > off + 1 && ((unsigned char)text[cut] & 0xC0) == 0x80)
                cut--;
        } else {
            break;
        }
        char *piece = gw_arena_strndup(&job->arena, text + off, cut - off);
        if (piece == NULL)
            break;
        int32_t seq = job->out.chunk_seq;
        publish_chunk(job, piece, tools, ntools);
        if (job->out.chunk_seq == seq)
            break;
        off = cut;
    }
    gw_buf_reset(&job->out.pending);
    gw_buf_append(&job->out.pending, text + off, len - off);
}

bool gw_job_answer_stored(gw_job *job, const uint8_t *data, size_t len)
{
    gw_job_answer *a = &job->ans;
    gw_response *r = gw_arena_calloc(&job->arena, 1, sizeof *r);
    if (r == NULL ||
        gw_codec_decode_response(job->w->store_codec, data, len, &job->arena, r) != GW_OK)
        return false;
    a->stored = r;
    a->content = r->content;
    a->finish_reason = r->finish_reason;
    a->tool_calls = r->tool_calls;
    a->tool_call_count = r->tool_call_count;
    a->err = r->error != NULL ? gw_err_from_code(r->error->code) : GW_OK;
    if (r->error != NULL && a->err == GW_OK)
        a->err = GW_E_INTERNAL;
    a->dep = gw_config_deployment(job->w->cfg, r->model_id);
    if (a->dep != NULL)
        a->saved_cost_usd = r->token_usage.prompt_tokens * a->dep->price_in_usd_per_mtok / 1e6 +
                            r->token_usage.completion_tokens * a->dep->price_out_usd_per_mtok / 1e6;
    memset(&a->usage, 0, sizeof a->usage); /* nothing billed */
    if (job->out.streaming && job->out.chunk_seq == 0)
        replay_chunks(job, r->content ? r->content : "",
                      a->replay_plan && *a->replay_plan ? a->replay_plan : NULL);
    return true;
}

/* ---- life ----------------------------------------------------------------------- */

gw_job *gw_job_new(gw_worker *w, struct gw_part *p, int64_t offset, gw_tier tier)
{
    gw_job *job = calloc(1, sizeof *job);
    if (job == NULL)
        return NULL;
    job->w = w;
    job->in.part = p;
    job->in.part_gen = p != NULL ? p->generation : 0;
    job->in.offset = offset;
    job->in.tier = tier;
    job->t_start_ns = (int64_t)uv_hrtime();
    snprintf(job->owner, sizeof job->owner, "%s/%" PRIu64, w->worker_id, ++w->job_seq);
    gw_arena_init(&job->arena, gw_codec_get_limits(w->codec)->max_alloc_bytes * 2);
    gw_buf_init(&job->out.pending, GW_STREAM_PENDING_CAP);
    gw_buf_init(&job->out.plan, GW_STREAM_PLAN_CAP);
    job->out.text_hash = GW_FNV64_BASIS;
    job->stage = GW_STAGE_DECODE;
    return job;
}

void gw_job_abort(gw_job *job)
{
    if (job->route.call != NULL) {
        gw_provider_call_cancel(job->route.call);
        job->route.call = NULL;
    }
    if (job->wait_init)
        uv_timer_stop(&job->wait_timer);
    gw_job_stop_coalescing(job);
    gw_job_registry_abort(job);
    job->aborted = true;
    job->out.publish_failed = true;
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
    if (job->in.pass_headers != NULL)
        rd_kafka_headers_destroy(job->in.pass_headers);
    gw_buf_cleanup(&job->out.pending);
    gw_buf_cleanup(&job->out.plan);
    tools_cleanup(&job->out);
    if (job->cache.semq != NULL)
        gw_semcache_query_cleanup(job->cache.semq);
    job->handles_open = (job->out.timer_init ? 1 : 0) + (job->wait_init ? 1 : 0);
    if (job->out.timer_init) {
        uv_timer_stop(&job->out.coalesce_timer);
        uv_close((uv_handle_t *)&job->out.coalesce_timer, on_timer_closed);
    }
    if (job->wait_init) {
        uv_timer_stop(&job->wait_timer);
        uv_close((uv_handle_t *)&job->wait_timer, on_timer_closed);
    }
    if (job->handles_open == 0)
        release_memory(job);
}
