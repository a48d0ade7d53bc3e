/*
 * test_pipeline: whole jobs through the request pipeline, without Kafka or
 * Redis: the worker built offline (gw_worker_new_offline) with the in-memory
 * state, the in-process mock provider, a recording sink instead of the
 * producer and a stepped clock. Each case asserts the sequence of stages a
 * job went through and the records it published.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "admin/metrics.h"
#include "codec/codec.h"
#include "config/config.h"
#include "kafka/producer.h"
#include "worker/pipeline.h"
#include "worker/worker.h"
#include "worker/worker_private.h"

enum { MAX_RECS = 256, MAX_MOVES = 64, SEQ_LEN = 256 };

typedef struct {
    char topic[64];
    char key[64];
    size_t key_len;
    gw_job *job;
    uint8_t *val;
    size_t len;
    bool acked;
    char output_topic[64];   /* DLQ records: their output_topic header */
    char delivery_error[96]; /* and delivery_error */
} rec;

typedef struct {
    char request_id[64];
    char seq[SEQ_LEN]; /* "DECODE>VALIDATE>..." */
    bool done;
} trace;

static struct {
    int64_t now_ms;
    rec recs[MAX_RECS];
    size_t nrecs;
    trace traces[MAX_MOVES];
    size_t ntraces;
    bool fail_sends;
    const char *refuse_topic;    /* the sink refuses sends to this topic at once */
    const char *refuse_topic2;   /* and to this one */
    rd_kafka_resp_err_t refusal; /* with this reason (0: __UNKNOWN_TOPIC) */
} h;

static int64_t stepped_clock(void *ud)
{
    (void)ud;
    return h.now_ms;
}

static void header_of(rd_kafka_headers_t *hdrs, const char *name, char *out, size_t cap)
{
    const void *v = NULL;
    size_t n = 0;
    out[0] = '\0';
    if (hdrs != NULL && rd_kafka_header_get_last(hdrs, name, &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR)
        snprintf(out, cap, "%.*s", (int)n, (const char *)v);
}

static gw_err sink_send(void *ud, const char *topic, const void *key, size_t key_len,
                        const void *val, size_t len, rd_kafka_headers_t *hdrs, gw_job *job,
                        rd_kafka_resp_err_t *refusal)
{
    (void)ud;
    rec *r = &h.recs[h.nrecs < MAX_RECS ? h.nrecs : 0];
    header_of(hdrs, "output_topic", r->output_topic, sizeof r->output_topic);
    header_of(hdrs, "delivery_error", r->delivery_error, sizeof r->delivery_error);
    rd_kafka_headers_destroy(hdrs);
    if (h.fail_sends || h.nrecs == MAX_RECS ||
        (h.refuse_topic != NULL && strcmp(topic, h.refuse_topic) == 0) ||
        (h.refuse_topic2 != NULL && strcmp(topic, h.refuse_topic2) == 0)) {
        *refusal =
            h.refusal != RD_KAFKA_RESP_ERR_NO_ERROR ? h.refusal : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
        return GW_E_IO;
    }
    h.nrecs++;
    snprintf(r->topic, sizeof r->topic, "%s", topic);
    r->key_len = key_len < sizeof r->key ? key_len : sizeof r->key;
    memcpy(r->key, key, r->key_len);
    r->job = job;
    r->val = malloc(len);
    memcpy(r->val, val, len);
    r->len = len;
    r->acked = false;
    return GW_OK;
}

static trace *trace_of(const gw_job *job)
{
    const char *id = job->req.request_id ? job->req.request_id : "?";
    for (size_t i = 0; i < h.ntraces; i++)
        if (strcmp(h.traces[i].request_id, id) == 0 && !h.traces[i].done)
            return &h.traces[i];
    if (h.ntraces == MAX_MOVES)
        return NULL;
    trace *t = &h.traces[h.ntraces++];
    snprintf(t->request_id, sizeof t->request_id, "%s", id);
    snprintf(t->seq, sizeof t->seq, "DECODE");
    t->done = false;
    return t;
}

static void stage_hook(void *ud, const gw_job *job, gw_stage from, gw_stage to)
{
    (void)ud;
    (void)from;
    /* DECODE writes the request id; before that the trace is keyed "?" */
    trace *t = trace_of(job);
    if (t == NULL)
        return;
    assert_true(gw_stage_move_legal(from, to));
    size_t n = strlen(t->seq);
    snprintf(t->seq + n, sizeof t->seq - n, ">%s", gw_stage_name(to));
    if (to == GW_STAGE_DONE)
        t->done = true;
}

static const char *seq_of(const char *request_id)
{
    for (size_t i = 0; i < h.ntraces; i++)
        if (strcmp(h.traces[i].request_id, request_id) == 0)
            return h.traces[i].seq;
    return "";
}

/* ---- fixture ---------------------------------------------------------------------- */

typedef struct {
    uv_loop_t loop;
    gw_config *cfg;
    gw_worker *w;
    gw_codec *codec;
    gw_arena arena;
    char path[64];
} fx;

static const char *BASE_CONF =
    "worker: { max_in_flight = 64; chunk_coalesce_ms = 0; chunk_coalesce_bytes = 8;\n"
    "  max_tokens_limit = 100000; };\n"
    "state: { backend = \"memory\"; };\n"
    "kafka: { reply_topics = [\"replies.*\"]; };\n"
    "idempotency: { enabled = true; lease_ms = 5000; };\n"
    "retry: { max_attempts_per_deployment = 2; base_backoff_ms = 1; max_backoff_ms = 2; };\n"
    "breaker: { consecutive_failures = 100; min_calls = 100; };\n"
    "limits: { on_limit = \"%s\"; max_delay_ms = 2000; agents = (\n"
    "  { agent = \"did:limited\"; rpm = 1; tpm = 0; },\n"
    "  { agent = \"did:tpm\"; rpm = 0; tpm = 60000; } ); };\n"
    "cache: { enabled = true; max_entry_bytes = %d; semantic: { enabled = false; }; };\n"
    "log: { level = \"error\"; };\n"
    "deployments = (\n"
    "  { id = \"bad\"; provider = \"mock\"; model = \"bad-1\"; capabilities = [\"text\"];\n"
    "    context_window = 100000; price_in_usd_per_mtok = 0.01; price_out_usd_per_mtok = 0.01;\n"
    "    quality = 0.9; mock: { latency_ms = 0; ttft_ms = 0; chunk_delay_ms = 0; failure_rate = "
    "1.0; }; },\n"
    "  { id = \"good\"; provider = \"mock\"; model = \"good-1\";\n"
    "    capabilities = [\"text\", \"tools\"];\n"
    "    context_window = 100000; price_in_usd_per_mtok = 1.0; price_out_usd_per_mtok = 2.0;\n"
    "    quality = 0.5; mock: { latency_ms = %d; ttft_ms = 0; chunk_delay_ms = 0; failure_rate = "
    "0.0; }; }\n"
    ");\n";

static void fx_open(fx *f, const char *on_limit, int max_entry_bytes, int good_latency_ms)
{
    memset(&h, 0, sizeof h);
    h.now_ms = 1700000000000;
    snprintf(f->path, sizeof f->path, "/tmp/test_pipeline_%d.conf", (int)getpid());
    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    fprintf(fp, BASE_CONF, on_limit, max_entry_bytes, good_latency_ms);
    fclose(fp);
    char err[512] = "";
    gw_err e = gw_config_load(f->path, &f->cfg, err, sizeof err);
    if (e != GW_OK)
        fail_msg("config: %s", err);
    unlink(f->path);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(gw_worker_new_offline(&f->loop, f->cfg, stepped_clock, NULL, &f->w), GW_OK);
    f->w->sink = (gw_sink){sink_send, NULL};
    f->w->stage_hook = stage_hook;
    f->w->run = GW_RUN_STARTING; /* no intake to kick, no drain */
    gw_codec_limits lim;
    gw_codec_limits_default(&lim);
    f->codec = gw_codec_new(&lim);
    assert_non_null(f->codec);
    gw_arena_init(&f->arena, 16 << 20);
}

static void fx_close(fx *f)
{
    f->w->run = GW_RUN_DONE;
    gw_worker_free(f->w);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    gw_config_free(f->cfg);
    gw_codec_free(f->codec);
    gw_arena_cleanup(&f->arena);
    for (size_t i = 0; i < h.nrecs; i++)
        free(h.recs[i].val);
}

typedef struct {
    const char *id;
    const char *agent;
    const char *text;
    bool stream;
    int32_t max_tokens;
    gw_strategy strategy;
    int64_t deadline_in_ms; /* 0: none */
    bool tools;             /* offer one tool: the mock answers with a call of it */
    const char *reply_topic;
} req_spec;

/* Publish one request into the worker as the intake would. */
static void submit(fx *f, const req_spec *s)
{
    gw_message m = {.role = GW_ROLE_USER, .content = s->text};
    gw_request r = {.request_id = s->id,
                    .agent_did = s->agent ? s->agent : "did:test",
                    .messages = &m,
                    .message_count = 1,
                    .temperature = 0,
                    .max_tokens = s->max_tokens > 0 ? s->max_tokens : 16,
                    .enable_cache = true,
                    .routing_strategy = s->strategy,
                    .stream = s->stream,
                    .reply_topic = s->reply_topic};
    static gw_tool tool = {.name = "lookup", .parameters = "{\"type\":\"object\"}"};
    if (s->tools) {
        r.tools = &tool;
        r.tool_count = 1;
    }
    if (s->deadline_in_ms != 0) {
        r.has_deadline = true;
        r.deadline_ms = h.now_ms + s->deadline_in_ms;
    }
    gw_buf b;
    gw_buf_init(&b, 1 << 20);
    assert_int_equal(gw_codec_encode_request(f->codec, &r, GW_FRAMING_SINGLE_OBJECT, &b), GW_OK);
    gw_job *job = gw_job_new(f->w, NULL, 0, GW_TIER_NORMAL);
    assert_non_null(job);
    job->next = f->w->jobs;
    if (f->w->jobs)
        f->w->jobs->prev = job;
    f->w->jobs = job;
    f->w->job_count++;
    f->w->in_flight[GW_TIER_NORMAL]++;
    gw_job_msg msg = {.payload = b.data, .len = b.len, .topic = "in", .offset = 0};
    gw_job_run(job, &msg);
    gw_buf_cleanup(&b);
}

/* Acknowledge every record not yet acknowledged, as the broker would. */
static size_t ack_all(void)
{
    size_t n = 0;
    for (size_t i = 0; i < h.nrecs; i++)
        if (!h.recs[i].acked) {
            h.recs[i].acked = true;
            n++;
            gw_job_delivered(h.recs[i].job, true);
        }
    return n;
}

/* Run the loop and acknowledge outputs until no job is left (or ~3 s). */
static void settle(fx *f)
{
    for (int i = 0; i < 3000 && (f->w->job_count > 0 || f->w->bg_pending > 0); i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        if (ack_all() == 0)
            usleep(1000);
    }
    assert_int_equal(f->w->job_count, 0);
}

static const rec *find(const fx *f, const char *topic, size_t nth)
{
    for (size_t i = 0; i < h.nrecs; i++)
        if (strcmp(h.recs[i].topic, topic) == 0 && nth-- == 0)
            return &h.recs[i];
    return NULL;
}

static bool same_bytes(const rec *a, const rec *b)
{
    return a != NULL && b != NULL && a->len == b->len && memcmp(a->val, b->val, a->len) == 0;
}

static size_t count(const fx *f, const char *topic)
{
    size_t n = 0;
    for (size_t i = 0; i < h.nrecs; i++)
        n += strcmp(h.recs[i].topic, topic) == 0;
    return n;
}

static gw_response response(fx *f, size_t nth)
{
    const rec *r = find(f, f->cfg->kafka.topics.responses, nth);
    assert_non_null(r);
    gw_response out;
    assert_int_equal(gw_codec_decode_response(f->codec, r->val, r->len, &f->arena, &out), GW_OK);
    return out;
}

static gw_usage_event usage(fx *f, size_t nth)
{
    const rec *r = find(f, f->cfg->kafka.topics.usage, nth);
    assert_non_null(r);
    gw_usage_event out;
    assert_int_equal(gw_codec_decode_usage(f->codec, r->val, r->len, &f->arena, &out), GW_OK);
    return out;
}

/* ---- cases ------------------------------------------------------------------------- */

static void test_fresh_request(void **state)
{
    fx f;
    fx_open(&f, "reject", 1 << 20, 0);
    submit(&f, &(req_spec){.id = "r1", .text = "hello there", .strategy = GW_ROUTE_BEST_QUALITY});
    settle(&f);
    /* BEST_QUALITY ranks "bad" first: two attempts there, then failover */
    assert_string_equal(seq_of("r1"), "DECODE>VALIDATE>ADMIT>SEMANTIC>ROUTE>ATTEMPT>"
                                      "ATTEMPT>ATTEMPT>KEEP>PUBLISH>ACKS>DONE");
    assert_int_equal(count(&f, f.cfg->kafka.topics.responses), 1);
    assert_int_equal(count(&f, f.cfg->kafka.topics.usage), 1);
    gw_response r = response(&f, 0);
    assert_string_equal(r.request_id, "r1");
    assert_null(r.error);
    assert_string_equal(r.model_id, "good");
    assert_true(strlen(r.content) > 0);
    assert_false(r.cached);
    gw_usage_event u = usage(&f, 0);
    assert_string_equal(u.outcome, "success");
    assert_int_equal(u.attempts, 3);
    assert_int_equal(u.failovers, 1);
    assert_true(u.cost_usd > 0);
    assert_int_equal(f.w->n.retries, 1);
    assert_int_equal(f.w->n.failovers, 1);
    fx_close(&f);
}

static void test_cheapest_straight_through(void **state)
{
    fx f;
    fx_open(&f, "reject", 1 << 20, 0);
    /* the "good" deployment only: asked by model name */
    submit(&f, &(req_spec){.id = "c1", .text = "one path", .strategy = GW_ROUTE_FASTEST});
    settle(&f);
    const char *s = seq_of("c1");
    assert_true(strncmp(s, "DECODE>VALIDATE>ADMIT>SEMANTIC>ROUTE>ATTEMPT>", 45) == 0);
    assert_true(strstr(s, ">KEEP>PUBLISH>ACKS>DONE") != NULL);
    gw_usage_event u = usage(&f, 0);
    assert_string_equal(u.outcome, "success");
    fx_close(&f);
}

static void test_duplicate_replays_kept_answer(void **state)
{
    fx f;
    fx_open(&f, "reject", 1 << 20, 0);
    submit(&f, &(req_spec){.id = "d1", .text = "say it once", .strategy = GW_ROUTE_CHEAPEST});
    settle(&f);
    h.ntraces = 0; /* the redelivery's own trace */
    submit(&f, &(req_spec){.id = "d1", .text = "say it once", .strategy = GW_ROUTE_CHEAPEST});
    settle(&f);
    assert_string_equal(seq_of("d1"), "DECODE>VALIDATE>ADMIT>KEEP>PUBLISH>ACKS>DONE");
    assert_int_equal(count(&f, f.cfg->kafka.topics.responses), 2);
    gw_response a = response(&f, 0), b = response(&f, 1);
    assert_string_equal(a.content, b.content);
    assert_string_equal(a.model_id, b.model_id);
    /* the replay sends the kept success event again, byte for byte (same
     * event_id: counted once), then the redelivery's own event at no cost */
    assert_int_equal(count(&f, f.cfg->kafka.topics.usage), 3);
    assert_true(
        same_bytes(find(&f, f.cfg->kafka.topics.usage, 0), find(&f, f.cfg->kafka.topics.usage, 1)));
    assert_true(same_bytes(find(&f, f.cfg->kafka.topics.responses, 0),
                           find(&f, f.cfg->kafka.topics.responses, 1)));
    gw_usage_event first = usage(&f, 0);
    assert_string_equal(first.outcome, "success");
    assert_true(first.cost_usd > 0);
    gw_usage_event u = usage(&f, 2);
    assert_string_equal(u.outcome, "duplicate");
    assert_int_equal(u.prompt_tokens, 0);
    assert_true(u.cost_usd == 0);
    assert_string_not_equal(u.event_id, first.event_id);
    assert_int_equal(f.w->n.duplicates, 1);
    fx_close(&f);
}

/* Records on topic of request id, in order. */
static size_t records_of(const fx *f, const char *topic, const char *id, const rec **out,
                         size_t cap, size_t from)
{
    size_t n = 0;
    for (size_t i = from; i < h.nrecs && n < cap; i++)
        if (strcmp(h.recs[i].topic, topic) == 0 && h.recs[i].key_len == strlen(id) &&
            memcmp(h.recs[i].key, id, h.recs[i].key_len) == 0)
            out[n++] = &h.recs[i];
    return n;
}

/* A streamed answer served again (a redelivery) publishes the same chunk
 * series byte for byte: the live cuts (by the provider's deltas) are kept
 * with the answer, not re-cut by size. */
static void test_streamed_duplicate_same_chunks(void **state)
{
    fx f;
    fx_open(&f, "reject", 1 << 20, 0);
    const char *text = "stream this answer twice, the same way both times";
    submit(&f, &(req_spec){.id = "sd1", .text = text, .stream = true});
    settle(&f);
    size_t first_end = h.nrecs;
    const rec *a[64], *b[64];
    size_t na = records_of(&f, f.cfg->kafka.topics.chunks, "sd1", a, 64, 0);
    assert_true(na >= 3);
    /* the live cuts are not all the replay's size cuts (chunk_coalesce_bytes
     * = 8), so the check below could fail if the cuts were not kept */
    bool uneven = false;
    for (size_t i = 0; i + 1 < na; i++) {
        gw_chunk c;
        assert_int_equal(gw_codec_decode_chunk(f.codec, a[i]->val, a[i]->len, &f.arena, &c), GW_OK);
        uneven |= strlen(c.content) != 8;
    }
    assert_true(uneven);
    submit(&f, &(req_spec){.id = "sd1", .text = text, .stream = true});
    settle(&f);
    size_t nb = records_of(&f, f.cfg->kafka.topics.chunks, "sd1", b, 64, first_end);
    assert_int_equal(nb, na);
    for (size_t i = 0; i < na; i++)
        assert_true(same_bytes(a[i], b[i]));
    const rec *ua[4], *ub[4];
    assert_int_equal(records_of(&f, f.cfg->kafka.topics.usage, "sd1", ua, 4, 0), 3);
    assert_int_equal(records_of(&f, f.cfg->kafka.topics.usage, "sd1", ub, 4, first_end), 2);
    assert_true(same_bytes(ua[0], ub[0])); /* the success event, again */
    fx_close(&f);
}

static void test_reused_request_id_other_content(void **state)
{
    fx f;
    fx_open(&f, "reject", 1 << 20, 0);
    submit(&f, &(req_spec){.id = "u1", .text = "what is the capital of France"});
    settle(&f);
    h.ntraces = 0;
    /* the same id, other content: never the first request's answer */
    submit(&f, &(req_spec){.id = "u1", .text = "what is the capital of Spain"});
    settle(&f);
    assert_string_equal(seq_of("u1"), "DECODE>VALIDATE>ADMIT>KEEP>PUBLISH>ACKS>DONE");
    gw_response r = response(&f, 1);
    assert_non_null(r.error);
    assert_string_equal(r.error->code, gw_err_code(GW_E_REQUEST_ID_REUSED));
    assert_false(r.error->retryable);
    gw_usage_event u = usage(&f, 1);
    assert_string_equal(u.outcome, "invalid");
    /* the same content again is a true duplicate of the first */
    h.ntraces = 0;
    submit(&f, &(req_spec){.id = "u1", .text = "what is the capital of France"});
    settle(&f);
    gw_usage_event k = usage(&f, 2), d = usage(&f, 3);
    assert_string_equal(k.outcome, "success"); /* the kept event, again */
    assert_string_equal(d.outcome, "duplicate");
    gw_response a = response(&f, 0), c = response(&f, 2);
    assert_string_equal(a.content, c.content);
    fx_close(&f);
}

static void test_cache_hit(void **state)
{
    fx f;
    fx_open(&f, "reject", 1 << 20, 0);
    submit(&f, &(req_spec){.id = "k1", .text = "what is two plus two"});
    settle(&f);
    submit(&f, &(req_spec){.id = "k2", .text = "what is two plus two"});
    settle(&f);
    assert_string_equal(seq_of("k2"), "DECODE>VALIDATE>ADMIT>KEEP>PUBLISH>ACKS>DONE");
    gw_response a = response(&f, 0), b = response(&f, 1);
    assert_false(a.cached);
    assert_true(b.cached);
    assert_string_equal(a.content, b.content);
    gw_usage_event u = usage(&f, 1);
    assert_string_equal(u.outcome, "cached");
    assert_string_equal(u.cache_tier, "exact");
    assert_true(u.saved_cost_usd > 0);
    assert_int_equal(u.prompt_tokens, 0);
    fx_close(&f);
}

static void test_streamed_cache_hit_replays_chunks(void **state)
{
    fx f;
    fx_open(&f, "reject", 1 << 20, 0);
    submit(&f, &(req_spec){.id = "s1", .text = "stream me a long enough answer please"});
    settle(&f);
    submit(&f, &(req_spec){
                   .id = "s2", .text = "stream me a long enough answer please", .stream = true});
    settle(&f);
    gw_usage_event u = usage(&f, 1);
    assert_string_equal(u.request_id, "s2");
    assert_string_equal(u.outcome, "cached");
    size_t chunks = count(&f, f.cfg->kafka.topics.chunks);
    assert_true(chunks >= 2); /* coalesce_bytes = 8: the replay is cut into pieces */
    gw_chunk last;
    const rec *r = find(&f, f.cfg->kafka.topics.chunks, chunks - 1);
    assert_int_equal(gw_codec_decode_chunk(f.codec, r->val, r->len, &f.arena, &last), GW_OK);
    assert_true(last.is_final);
    assert_int_equal(last.seq, (int32_t)chunks - 1);
    fx_close(&f);
}

/* The chunks of a streamed tool call: how many carry tool pieces, the
 * longest piece of arguments, and the call they assemble to (by index). */
typedef struct {
    size_t tool_chunks, longest_piece;
    char id[64], name[64], args[4096];
} tool_stream;

static tool_stream assemble_tool_chunks_from(fx *f, const char *id, size_t from)
{
    tool_stream ts = {0};
    const rec *recs[256];
    size_t n = records_of(f, f->cfg->kafka.topics.chunks, id, recs, 256, from);
    for (size_t i = 0; i < n; i++) {
        const rec *r = recs[i];
        gw_chunk ch;
        assert_int_equal(gw_codec_decode_chunk(f->codec, r->val, r->len, &f->arena, &ch), GW_OK);
        assert_int_equal(ch.seq, (int32_t)i);
        assert_true(ch.is_final == (i == n - 1));
        ts.tool_chunks += ch.tool_call_count > 0;
        for (size_t k = 0; k < ch.tool_call_count; k++) {
            const gw_tool_call_delta *d = &ch.tool_calls[k];
            assert_int_equal(d->index, 0);
            if (d->name != NULL) { /* the head comes once, on the call's first piece */
                assert_string_equal(ts.name, "");
                assert_string_equal(ts.args, "");
                snprintf(ts.id, sizeof ts.id, "%s", d->id);
                snprintf(ts.name, sizeof ts.name, "%s", d->name);
            }
            assert_string_not_equal(ts.name, "");
            size_t len = strlen(d->arguments), have = strlen(ts.args);
            assert_true(have + len < sizeof ts.args);
            memcpy(ts.args + have, d->arguments, len + 1);
            ts.longest_piece = len > ts.longest_piece ? len : ts.longest_piece;
        }
    }
    return ts;
}

static tool_stream assemble_tool_chunks(fx *f, const char *id)
{
    return assemble_tool_chunks_from(f, id, 0);
}

static void check_tool_response(fx *f, const tool_stream *ts)
{
    gw_response r = response(f, 0);
    assert_null(r.error);
    assert_string_equal(r.finish_reason, "tool_calls");
    assert_int_equal(r.tool_call_count, 1);
    assert_string_equal(ts->id, r.tool_calls[0].id);
    assert_string_equal(ts->name, "lookup");
    assert_string_equal(ts->args, r.tool_calls[0].arguments);
    assert_true(strncmp(ts->args, "{\"text\":\"", 9) == 0);
}

/* A streamed tool call goes out piece by piece as the provider sends it
 * (every piece its own chunk with chunk_coalesce_ms = 0), not as one whole
 * delta on the final chunk, and the pieces assemble to the response's call. */
static void test_streamed_tool_call_pieces(void **state)
{
    fx f;
    fx_open(&f, "reject", 1 << 20, 0);
    submit(&f, &(req_spec){.id = "t1",
                           .text = "call the tool",
                           .stream = true,
                           .tools = true,
                           .strategy = GW_ROUTE_CHEAPEST});
    settle(&f);
    tool_stream ts = assemble_tool_chunks(&f, "t1");
    check_tool_response(&f, &ts);
    assert_true(ts.tool_chunks >= 3);
    assert_true(ts.longest_piece <= 8); /* the mock's pieces, as they came */
    fx_close(&f);
}

/* Pieces are coalesced as text is: with a coalescing window, the pieces that
 * arrive within it share one chunk (one delta per call), cut at
 * chunk_coalesce_bytes. */
static void test_streamed_tool_call_coalesced(void **state)
{
    fx f;
    fx_open(&f, "reject", 1 << 20, 0);
    f.w->coalesce = (gw_coalesce_cfg){.coalesce_ms = 60000, .coalesce_bytes = 20};
    submit(&f, &(req_spec){.id = "t2",
                           .text = "call the tool",
                           .stream = true,
                           .tools = true,
                           .strategy = GW_ROUTE_CHEAPEST});
    settle(&f);
    tool_stream ts = assemble_tool_chunks(&f, "t2");
    check_tool_response(&f, &ts);
    assert_true(ts.tool_chunks >= 2);
    assert_true(ts.longest_piece > 8); /* several pieces of 8 bytes in one delta */
    assert_true(ts.tool_chunks < (strlen(ts.args) + 7) / 8);
    fx_close(&f);
}

/* A redelivered streamed tool call replays the kept answer with the first
 * owner's cuts: the same chunks, tool pieces included, byte for byte. */
static void test_streamed_tool_call_duplicate(void **state)
{
    fx f;
    fx_open(&f, "reject", 1 << 20, 0);
    req_spec spec = {.id = "t3",
                     .text = "call the tool",
                     .stream = true,
                     .tools = true,
                     .strategy = GW_ROUTE_CHEAPEST};
    submit(&f, &spec);
    settle(&f);
    size_t first_end = h.nrecs;
    tool_stream a = assemble_tool_chunks(&f, "t3");
    check_tool_response(&f, &a);
    submit(&f, &spec);
    settle(&f);
    tool_stream b = assemble_tool_chunks_from(&f, "t3", first_end);
    assert_string_equal(b.id, a.id);
    assert_string_equal(b.name, a.name);
    assert_string_equal(b.args, a.args);
    assert_true(a.tool_chunks >= 2);
    assert_int_equal(b.tool_chunks, a.tool_chunks);
    const rec *ca[64], *cb[64];
    size_t na = records_of(&f, f.cfg->kafka.topics.chunks, "t3", ca, 64, 0);
    size_t nb = records_of(&f, f.cfg->kafka.topics.chunks, "t3", cb, 64, first_end);
    assert_int_equal(na, 2 * nb); /* both runs' chunks, the first run's first */
    for (size_t i = 0; i < nb; i++)
        assert_true(same_bytes(ca[i], cb[i]));
    assert_string_equal(usage(&f, 2).outcome, "duplicate"); /* after the kept success event */
    fx_close(&f);
}

static void test_rate_limited_reject(void **state)
{
    fx f;
    fx_open(&f, "reject", 1 << 20, 0);
    submit(&f, &(req_spec){.id = "l1", .agent = "did:limited", .text = "first"});
    submit(&f, &(req_spec){.id = "l2", .agent = "did:limited", .text = "second"});
    settle(&f);
    assert_string_equal(seq_of("l2"), "DECODE>VALIDATE>ADMIT>KEEP>PUBLISH>ACKS>DONE");
    gw_usage_event a = usage(&f, 0), b = usage(&f, 1);
    const gw_usage_event *denied = strcmp(a.request_id, "l2") == 0 ? &a : &b;
    assert_string_equal(denied->outcome, "rate_limited");
    assert_string_equal(denied->error_code, gw_err_code(GW_E_RATE_LIMITED));
    gw_response r0 = response(&f, 0), r1 = response(&f, 1);
    const gw_response *rr = strcmp(r0.request_id, "l2") == 0 ? &r0 : &r1;
    assert_non_null(rr->error);
    assert_non_null(gw_map_get(&rr->error->details, "retry_after_ms"));
    assert_string_equal(gw_map_get(&rr->error->details, "limit"), "agent_rpm");
    fx_close(&f);
}

static void test_rate_limited_delay(void **state)
{
    fx f;
    fx_open(&f, "delay", 1 << 20, 0);
    /* did:tpm has 60000 tokens a minute (1000/s): the first takes almost all */
    submit(&f, &(req_spec){.id = "t1", .agent = "did:tpm", .text = "big", .max_tokens = 59500});
    submit(&f, &(req_spec){.id = "t2", .agent = "did:tpm", .text = "small", .max_tokens = 600});
    /* denied now; held on the timer; the stepped clock moves a minute on */
    for (int i = 0; i < 50 && strstr(seq_of("t2"), "ADMIT>ADMIT") == NULL; i++) {
        uv_run(&f.loop, UV_RUN_NOWAIT);
        if (i == 0)
            h.now_ms += 60000;
        usleep(2000);
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    settle(&f);
    const char *s = seq_of("t2");
    if (strstr(s, "ADMIT>ADMIT>SEMANTIC") == NULL)
        fail_msg("t2 went %s (t1 %s)", s, seq_of("t1"));
    gw_usage_event u = usage(&f, 1);
    assert_string_equal(u.request_id, "t2");
    assert_string_equal(u.outcome, "success");
    fx_close(&f);
}

static void test_deadline_expired(void **state)
{
    fx f;
    fx_open(&f, "reject", 1 << 20, 0);
    submit(&f, &(req_spec){.id = "e1", .text = "too late", .deadline_in_ms = -1});
    settle(&f);
    assert_string_equal(seq_of("e1"), "DECODE>VALIDATE>KEEP>PUBLISH>ACKS>DONE");
    gw_usage_event u = usage(&f, 0);
    assert_string_equal(u.outcome, "expired");
    assert_string_equal(u.error_code, gw_err_code(GW_E_DEADLINE_EXCEEDED));
    fx_close(&f);
}

static void test_undecodable_goes_to_dlq(void **state)
{
    fx f;
    fx_open(&f, "reject", 1 << 20, 0);
    gw_job *job = gw_job_new(f.w, NULL, 7, GW_TIER_HIGH);
    job->next = f.w->jobs;
    f.w->jobs = job;
    f.w->job_count++;
    f.w->in_flight[GW_TIER_HIGH]++;
    static const uint8_t junk[] = {0xC3, 0x01, 0xff, 0xff, 0xff};
    gw_job_msg m = {.payload = junk, .len = sizeof junk, .key = "k", .key_len = 1, .topic = "in"};
    gw_job_run(job, &m);
    settle(&f);
    assert_string_equal(seq_of("?"), "DECODE>KEEP>PUBLISH>ACKS>DONE");
    assert_int_equal(h.nrecs, 1);
    assert_string_equal(h.recs[0].topic, f.cfg->kafka.topics.dlq);
    assert_int_equal(h.recs[0].len, sizeof junk);
    assert_memory_equal(h.recs[0].val, junk, sizeof junk);
    assert_int_equal(f.w->n.dlq, 1);
    fx_close(&f);
}

static void test_keep_failure_still_answers(void **state)
{
    fx f;
    /* a kept response larger than the state's entry limit cannot be kept */
    fx_open(&f, "reject", 64, 0);
    submit(&f, &(req_spec){.id = "f1", .text = "keep me", .strategy = GW_ROUTE_CHEAPEST});
    settle(&f);
    assert_true(strstr(seq_of("f1"), ">KEEP>PUBLISH>ACKS>DONE") != NULL);
    assert_int_equal(f.w->n.idem_keep_failed, 1);
    gw_usage_event u = usage(&f, 0);
    assert_string_equal(u.outcome, "success");
    gw_response r = response(&f, 0);
    assert_null(r.error);
    fx_close(&f);
}

static void test_abort_mid_call(void **state)
{
    fx f;
    fx_open(&f, "reject", 1 << 20, 5000); /* "good" answers after 5 s */
    submit(&f, &(req_spec){.id = "a1", .text = "slow", .strategy = GW_ROUTE_CHEAPEST});
    for (int i = 0; i < 20; i++)
        uv_run(&f.loop, UV_RUN_NOWAIT);
    assert_int_equal(f.w->job_count, 1);
    assert_int_equal(f.w->jobs->stage, GW_STAGE_ATTEMPT);
    gw_job_abort(f.w->jobs);
    for (int i = 0; i < 20; i++)
        uv_run(&f.loop, UV_RUN_NOWAIT);
    assert_int_equal(count(&f, f.cfg->kafka.topics.responses), 0);
    assert_int_equal(f.w->job_count, 1); /* never finished: its offset is never committed */
    assert_true(f.w->jobs->out.publish_failed);
    fx_close(&f); /* gw_worker_free frees the aborted job */
}

static void test_failed_produce_is_not_committed(void **state)
{
    fx f;
    fx_open(&f, "reject", 1 << 20, 0);
    h.fail_sends = true;
    submit(&f, &(req_spec){.id = "p1", .text = "nowhere to go"});
    settle(&f);
    assert_true(strstr(seq_of("p1"), ">PUBLISH>ACKS>DONE") != NULL);
    assert_int_equal(f.w->n.publish_failed, 1);
    fx_close(&f);
}

/* An output the producer refuses at once (librdkafka holds its topic as
 * missing) is replaced at once: the usage event by a DLQ record holding it,
 * and the job ends acknowledged (its offset moves on). */
static void test_refused_output_goes_to_dlq(void **state)
{
    fx f;
    fx_open(&f, "reject", 1 << 20, 0);
    h.refuse_topic = f.cfg->kafka.topics.usage;
    submit(&f, &(req_spec){.id = "refused-usage-1", .text = "usage topic missing"});
    settle(&f);
    assert_int_equal(count(&f, f.cfg->kafka.topics.responses), 1);
    assert_int_equal(count(&f, f.cfg->kafka.topics.usage), 0);
    assert_int_equal(count(&f, f.cfg->kafka.topics.dlq), 1);
    assert_int_equal(f.w->n.dlq, 1);
    assert_int_equal(f.w->n.publish_failed, 0);
    fx_close(&f);
}

/* A refused reply_topic response is replaced by the E4001 error response on
 * the default responses topic (after the answer was kept). */
static void test_refused_reply_topic_gets_an_error_response(void **state)
{
    fx f;
    fx_open(&f, "reject", 1 << 20, 0);
    h.refuse_topic = "replies.missing";
    submit(&f,
           &(req_spec){.id = "refused-reply-1", .text = "reply", .reply_topic = "replies.missing"});
    settle(&f);
    assert_int_equal(count(&f, f.cfg->kafka.topics.responses), 1);
    assert_int_equal(count(&f, f.cfg->kafka.topics.dlq), 0);
    gw_response r = response(&f, 0);
    assert_non_null(r.error);
    assert_string_equal(r.error->code, "E4001");
    assert_non_null(strstr(r.error->message, "reply_topic undeliverable"));
    assert_int_equal(f.w->n.publish_failed, 0);
    fx_close(&f);
}

/* The producer refuses an output because the worker may not write its
 * topic (librdkafka holds it as TOPIC_AUTHORIZATION_FAILED): replaced at
 * once like a missing topic, the reason named in the error response and in
 * modelgw_output_failures_total. */
static void test_unauthorised_outputs_are_replaced_and_named(void **state)
{
    fx f;
    fx_open(&f, "reject", 1 << 20, 0);
    gw_metrics *m = gw_observe_metrics(f.w->obs);
    h.refusal = RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED;
    h.refuse_topic = f.cfg->kafka.topics.usage;
    submit(&f, &(req_spec){.id = "denied-usage-1", .text = "usage topic not writable"});
    settle(&f);
    assert_int_equal(count(&f, f.cfg->kafka.topics.usage), 0);
    assert_int_equal(count(&f, f.cfg->kafka.topics.dlq), 1);
    const rec *d = find(&f, f.cfg->kafka.topics.dlq, 0);
    assert_string_equal(d->output_topic, f.cfg->kafka.topics.usage);
    assert_string_equal(d->delivery_error,
                        "refused by the producer at once: Broker: Topic authorization failed");
    assert_int_equal(f.w->n.publish_failed, 0);
    assert_int_equal(
        gw_metric_get(m, GW_M_OUTPUT_FAILURES, "usage", "TOPIC_AUTHORIZATION_FAILED", "replaced"),
        1);
    h.refuse_topic = "replies.denied";
    submit(&f,
           &(req_spec){.id = "denied-reply-1", .text = "reply", .reply_topic = "replies.denied"});
    settle(&f);
    gw_response r = response(&f, 1);
    assert_non_null(r.error);
    assert_string_equal(r.error->code, "E4001");
    assert_non_null(strstr(r.error->message, "reply_topic undeliverable"));
    assert_non_null(strstr(r.error->message, "Topic authorization failed"));
    assert_int_equal(
        gw_metric_get(m, GW_M_OUTPUT_FAILURES, "reply", "TOPIC_AUTHORIZATION_FAILED", "replaced"),
        1);
    /* The DLQ refused too: nothing replaces the usage event, the job ends
     * unacknowledged (its offset is never committed) and both failures are
     * counted as undeliverable. */
    h.refuse_topic = f.cfg->kafka.topics.usage;
    h.refuse_topic2 = f.cfg->kafka.topics.dlq;
    submit(&f, &(req_spec){.id = "denied-both-1", .text = "usage and dlq denied"});
    settle(&f);
    assert_int_equal(f.w->n.publish_failed, 1);
    assert_int_equal(gw_metric_get(m, GW_M_OUTPUT_FAILURES, "dlq", "TOPIC_AUTHORIZATION_FAILED",
                                   "undeliverable"),
                     1);
    assert_int_equal(gw_metric_get(m, GW_M_OUTPUT_FAILURES, "usage", "TOPIC_AUTHORIZATION_FAILED",
                                   "undeliverable"),
                     1);
    fx_close(&f);
}

/* The answer was kept but nothing reached Kafka (the worker died, or the
 * broker refused, between KEEP and PUBLISH): the redelivery publishes the
 * success usage event the first owner would have, so the provider call is
 * billed once, not lost behind a "duplicate" at cost 0. */
static void test_kept_but_unpublished_bills_once(void **state)
{
    fx f;
    fx_open(&f, "reject", 1 << 20, 0);
    h.fail_sends = true;
    submit(&f, &(req_spec){.id = "b1", .text = "bill me exactly once"});
    settle(&f);
    assert_int_equal(h.nrecs, 0);
    h.fail_sends = false;
    submit(&f, &(req_spec){.id = "b1", .text = "bill me exactly once"});
    settle(&f);
    assert_int_equal(count(&f, f.cfg->kafka.topics.usage), 2);
    gw_usage_event kept = usage(&f, 0), dup = usage(&f, 1);
    assert_string_equal(kept.outcome, "success");
    assert_true(kept.cost_usd > 0);
    assert_true(kept.prompt_tokens > 0);
    assert_string_equal(dup.outcome, "duplicate");
    assert_true(dup.cost_usd == 0);
    fx_close(&f);
}

/* ---- a resend the producer refuses ---------------------------------------------- */

/* The worker's producer hooks (worker.c wires the same two calls). */
static void on_prod_delivery(void *ud, const rd_kafka_message_t *m, void *opaque)
{
    (void)ud;
    if (opaque != NULL)
        gw_job_on_delivery(opaque, m);
}

static void on_prod_refused(void *ud, void *opaque, rd_kafka_resp_err_t err, const char *topic,
                            const void *key, size_t key_len, const void *val, size_t len)
{
    (void)ud;
    if (opaque != NULL)
        gw_job_resend_refused(opaque, err, topic, key, key_len, val, len);
}

/*
 * One output of a job fails at the broker and its resend is refused by the
 * producer when its backoff ends (its queue is full; librdkafka holding the
 * topic as missing takes the same path): the worker replaces the output as
 * docs/worker.md says (a usage event or chunk by a DLQ record holding it, a
 * reply_topic response by an E4001 error response on the responses topic),
 * settles the slot the failed delivery held, and the job ends without
 * publish_failed, so its offset completes and the partition moves on.
 *
 * The offline worker gets a real producer with no broker behind it and the
 * worker's two hooks: the output's copy is produced and purged (a genuine
 * failed delivery report, deferred by gw_job_on_delivery), another message
 * fills the producer's queue of one, and gw_producer_tick hands the refused
 * resend to gw_job_resend_refused.
 */
static void resend_refused_case(const char *id, const char *reply_topic, const char *fail_topic)
{
    fx f;
    fx_open(&f, "reject", 1 << 20, 0);
    static gw_kafka_config k = {.client_id = "test-resend",
                                .linger_ms = 0,
                                .properties = {"queue.buffering.max.messages=1"},
                                .property_count = 1};
    gw_producer_hooks hooks = {.delivered = on_prod_delivery, .refused = on_prod_refused};
    gw_producer *prod = NULL;
    assert_int_equal(gw_producer_new(&k, "127.0.0.1:1", NULL, &hooks, &prod), GW_OK);
    f.w->prod = prod;
    submit(&f, &(req_spec){.id = id, .text = "refuse my resend", .reply_topic = reply_topic});
    for (int i = 0; i < 1000 && (h.nrecs == 0 ||
                                 strcmp(h.recs[h.nrecs - 1].topic, f.cfg->kafka.topics.usage) != 0);
         i++)
        uv_run(&f.loop, UV_RUN_NOWAIT);
    /* every output handed over, the job waiting for its acknowledgements */
    rec *failing = NULL;
    for (size_t i = 0; i < h.nrecs; i++)
        if (strcmp(h.recs[i].topic, fail_topic) == 0)
            failing = &h.recs[i];
    assert_non_null(failing);
    uint8_t *failed_val = malloc(failing->len);
    memcpy(failed_val, failing->val, failing->len);
    size_t failed_len = failing->len;
    /* its delivery fails: the copy through the producer, purged unsent */
    failing->acked = true;
    assert_int_equal(gw_producer_send(prod, fail_topic, failing->key, failing->key_len,
                                      failing->val, failing->len, NULL, failing->job),
                     GW_OK);
    rd_kafka_purge(gw_producer_handle(prod), RD_KAFKA_PURGE_F_QUEUE);
    for (int i = 0; i < 500 && gw_producer_deferred(prod) == 0; i++)
        rd_kafka_poll(gw_producer_handle(prod), 10), gw_producer_poll(prod);
    assert_int_equal(gw_producer_deferred(prod), 1); /* to be produced again after its backoff */
    ack_all();
    uv_run(&f.loop, UV_RUN_NOWAIT);
    assert_int_equal(f.w->job_count, 1); /* held by the failed output alone */
    /* the queue of one is full when the backoff ends: the resend is refused */
    assert_int_equal(gw_producer_send(prod, "elsewhere", "k", 1, "v", 1, NULL, NULL), GW_OK);
    size_t before = h.nrecs;
    gw_producer_tick(prod, h.now_ms + 60000);
    assert_int_equal(gw_producer_deferred(prod), 0); /* not retried again */
    assert_int_equal(h.nrecs, before + 1);           /* the replacement */
    const rec *r = &h.recs[before];
    if (reply_topic == NULL) {
        assert_string_equal(r->topic, f.cfg->kafka.topics.dlq);
        assert_string_equal(r->output_topic, fail_topic);
        assert_non_null(strstr(r->delivery_error, "refused by the producer at once"));
        assert_non_null(strstr(r->delivery_error, "Queue full")); /* librdkafka's reason */
        assert_int_equal(r->len, failed_len);
        assert_memory_equal(r->val, failed_val, failed_len);
        assert_int_equal(f.w->n.dlq, 1);
    } else {
        assert_string_equal(r->topic, f.cfg->kafka.topics.responses);
        gw_response resp;
        assert_int_equal(gw_codec_decode_response(f.codec, r->val, r->len, &f.arena, &resp), GW_OK);
        assert_string_equal(resp.request_id, id);
        assert_non_null(resp.error);
        assert_string_equal(resp.error->code, "E4001");
        assert_non_null(strstr(resp.error->message, "reply_topic undeliverable"));
        assert_non_null(strstr(resp.error->message, "Queue full"));
        assert_int_equal(f.w->n.dlq, 0);
    }
    settle(&f); /* the replacement acknowledged: the job ends */
    assert_true(strstr(seq_of(id), ">PUBLISH>ACKS>DONE") != NULL);
    assert_int_equal(f.w->n.publish_failed, 0); /* its offset completes */
    free(failed_val);
    f.w->prod = NULL;
    gw_producer_free(prod);
    fx_close(&f);
}

static void test_refused_resend_of_usage_goes_to_dlq(void **state)
{
    resend_refused_case("rs-usage-1", NULL, "llm.usage");
}

static void test_refused_resend_of_reply_gets_an_error_response(void **state)
{
    resend_refused_case("rs-reply-1", "replies.a", "replies.a");
}

/* ---- a kept answer's usage event, stored corrupt ---------------------------------- */

typedef struct {
    bool done;
    gw_cache_kind kind;
    uint8_t *data;
    size_t len;
} claimed;

static void on_claim(void *ud, const gw_cache_result *r)
{
    claimed *c = ud;
    c->done = true;
    c->kind = r->kind;
    if (r->kind == GW_CACHE_HIT) {
        c->data = malloc(r->len);
        memcpy(c->data, r->data, r->len);
        c->len = r->len;
    }
}

static void on_ack(void *ud, const gw_state_ack *a)
{
    *(bool *)ud = a->err == GW_OK;
}

static claimed claim(fx *f, const char *request_id)
{
    claimed c = {0};
    gw_state_idem_claim(f->w->state, request_id, "test-owner", 5000, on_claim, &c);
    for (int i = 0; i < 1000 && !c.done; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_true(c.done);
    return c;
}

/* Keeps value as request_id's answer, as a worker that claimed it would. */
static void keep(fx *f, const char *request_id, const char *value, size_t len)
{
    assert_int_equal(claim(f, request_id).kind, GW_CACHE_LOCKED_BY_ME);
    bool ok = false;
    gw_state_idem_complete(f->w->state, request_id, "test-owner", (const uint8_t *)value, len, 60,
                           on_ack, &ok);
    for (int i = 0; i < 1000 && !ok; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_true(ok);
}

/* The kept answer of request_id with its "#u<hex>" replaced by usage_hex. */
static char *with_usage(const claimed *kept, const char *usage_hex, size_t *len)
{
    const char *v = (const char *)kept->data;
    const char *bar = memchr(v, '|', kept->len);
    const char *u = memchr(v, '#', (size_t)(bar - v));
    assert_non_null(bar);
    assert_non_null(u);
    assert_int_equal(u[1], 'u'); /* not streamed: no plan, the usage is the only extra */
    size_t head = (size_t)(u - v) + 2, tail = kept->len - (size_t)(bar - v);
    *len = head + strlen(usage_hex) + tail;
    char *out = malloc(*len);
    memcpy(out, v, head);
    memcpy(out + head, usage_hex, strlen(usage_hex));
    memcpy(out + head + strlen(usage_hex), bar, tail);
    return out;
}

static char *hex_of(const uint8_t *b, size_t n)
{
    char *s = malloc(2 * n + 1);
    for (size_t i = 0; i < n; i++)
        snprintf(s + 2 * i, 3, "%02x", b[i]);
    return s;
}

/* A kept answer whose usage hex is corrupt (bad hex, odd length, over the
 * bound, undecodable Avro, another request's event) is answered as a
 * duplicate with only its own, unbilled, usage event; each corruption is
 * logged and counted by reason in modelgw_kept_usage_corrupt_total. */
static void test_kept_usage_corrupt_is_counted(void **state)
{
    fx f;
    fx_open(&f, "reject", 1 << 20, 0);
    const char *text = "keep my usage safe";
    submit(&f, &(req_spec){.id = "ku-0", .text = text});
    settle(&f);
    claimed kept = claim(&f, "ku-0");
    assert_int_equal(kept.kind, GW_CACHE_HIT);
    const rec *first_usage = find(&f, f.cfg->kafka.topics.usage, 0);
    assert_non_null(first_usage);
    /* a sound event of another request (ku-0's own, kept under ku-6) */
    char *other = hex_of(first_usage->val, first_usage->len);
    /* sound Avro framing with one byte flipped inside the datum's strings */
    uint8_t bent[4096];
    assert_true(first_usage->len > 10 && first_usage->len <= sizeof bent);
    memcpy(bent, first_usage->val, first_usage->len);
    bent[10] = 0x7f; /* the first string's length: 0x7f zigzags to -64 */
    char *undecodable = hex_of(bent, first_usage->len);
    char *huge = malloc(2 * (8 << 10) + 3);
    memset(huge, 'a', 2 * (8 << 10) + 2);
    huge[2 * (8 << 10) + 2] = '\0';
    struct {
        const char *id, *hex, *reason;
    } cases[] = {
        {"ku-1", "c3zz", "bad_hex"},     {"ku-2", "c30", "odd_length"},
        {"ku-3", huge, "too_large"},     {"ku-4", undecodable, "undecodable"},
        {"ku-5", "c301", "undecodable"}, {"ku-6", other, "other_request"},
    };
    gw_metrics *m = gw_observe_metrics(f.w->obs);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = 0;
        char *v = with_usage(&kept, cases[i].hex, &len);
        keep(&f, cases[i].id, v, len);
        free(v);
        double before = gw_metric_get(m, GW_M_KEPT_USAGE_CORRUPT, cases[i].reason);
        size_t from = h.nrecs;
        h.ntraces = 0;
        submit(&f, &(req_spec){.id = cases[i].id, .text = text});
        settle(&f);
        assert_string_equal(seq_of(cases[i].id), "DECODE>VALIDATE>ADMIT>KEEP>PUBLISH>ACKS>DONE");
        const rec *out[4];
        assert_int_equal(records_of(&f, f.cfg->kafka.topics.responses, cases[i].id, out, 4, from),
                         1);
        /* one usage event only: the duplicate's own, nothing billed */
        assert_int_equal(records_of(&f, f.cfg->kafka.topics.usage, cases[i].id, out, 4, from), 1);
        gw_usage_event u;
        assert_int_equal(gw_codec_decode_usage(f.codec, out[0]->val, out[0]->len, &f.arena, &u),
                         GW_OK);
        assert_string_equal(u.outcome, "duplicate");
        assert_true(u.cost_usd == 0);
        assert_true(gw_metric_get(m, GW_M_KEPT_USAGE_CORRUPT, cases[i].reason) == before + 1);
    }
    /* the sound kept event is replayed, and counted as nothing */
    size_t from = h.nrecs;
    h.ntraces = 0;
    submit(&f, &(req_spec){.id = "ku-0", .text = text});
    settle(&f);
    const rec *out[4];
    assert_int_equal(records_of(&f, f.cfg->kafka.topics.usage, "ku-0", out, 4, from), 2);
    assert_true(same_bytes(out[0], first_usage));
    free(kept.data);
    free(other);
    free(undecodable);
    free(huge);
    fx_close(&f);
}

static void test_table_moves(void **state)
{
    assert_true(gw_stage_move_legal(GW_STAGE_DECODE, GW_STAGE_VALIDATE));
    assert_true(gw_stage_move_legal(GW_STAGE_ATTEMPT, GW_STAGE_ATTEMPT));
    assert_true(gw_stage_move_legal(GW_STAGE_SEMANTIC, GW_STAGE_KEEP));
    assert_false(gw_stage_move_legal(GW_STAGE_SEMANTIC, GW_STAGE_SEMANTIC));
    assert_false(gw_stage_move_legal(GW_STAGE_PUBLISH, GW_STAGE_KEEP));
    assert_false(gw_stage_move_legal(GW_STAGE_VALIDATE, GW_STAGE_ATTEMPT));
    assert_false(gw_stage_move_legal(GW_STAGE_DONE, GW_STAGE_DECODE));
    for (int s = 0; s < GW_STAGE__COUNT; s++)
        assert_string_not_equal(gw_stage_name((gw_stage)s), "UNKNOWN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_moves),
        cmocka_unit_test(test_fresh_request),
        cmocka_unit_test(test_cheapest_straight_through),
        cmocka_unit_test(test_duplicate_replays_kept_answer),
        cmocka_unit_test(test_streamed_duplicate_same_chunks),
        cmocka_unit_test(test_kept_but_unpublished_bills_once),
        cmocka_unit_test(test_kept_usage_corrupt_is_counted),
        cmocka_unit_test(test_refused_resend_of_usage_goes_to_dlq),
        cmocka_unit_test(test_refused_resend_of_reply_gets_an_error_response),
        cmocka_unit_test(test_reused_request_id_other_content),
        cmocka_unit_test(test_cache_hit),
        cmocka_unit_test(test_streamed_cache_hit_replays_chunks),
        cmocka_unit_test(test_streamed_tool_call_pieces),
        cmocka_unit_test(test_streamed_tool_call_coalesced),
        cmocka_unit_test(test_streamed_tool_call_duplicate),
        cmocka_unit_test(test_rate_limited_reject),
        cmocka_unit_test(test_rate_limited_delay),
        cmocka_unit_test(test_deadline_expired),
        cmocka_unit_test(test_undecodable_goes_to_dlq),
        cmocka_unit_test(test_keep_failure_still_answers),
        cmocka_unit_test(test_abort_mid_call),
        cmocka_unit_test(test_failed_produce_is_not_committed),
        cmocka_unit_test(test_refused_output_goes_to_dlq),
        cmocka_unit_test(test_refused_reply_topic_gets_an_error_response),
        cmocka_unit_test(test_unauthorised_outputs_are_replaced_and_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
