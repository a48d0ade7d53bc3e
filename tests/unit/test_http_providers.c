/*
 * Provider adapters (OpenAI, Anthropic, Ollama, Gemini) over http_client against a
 * real modelgw-mockllm spawned on a free port: success streamed and not,
 * the fault matrix, timeouts, redaction, Retry-After, rate-limit headers,
 * concurrency cap (fixed and lowered by gw_providers_set_limit) and 2,000
 * concurrent streams. Also the pure helpers (status mapping, finish
 * reasons, Retry-After parsing).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "loop/http_client.h"
#include "provider/provider.h"
#include "provider/provider_http.h"
#include "test_support.h"

static gw_test_mock mock;

static int start_mock(void **state)
{
    (void)state;
    static const char *const args[] = {"--tokens", "16", NULL};
    return gw_test_mock_start(&mock, args);
}

static int stop_mock(void **state)
{
    (void)state;
    gw_test_mock_stop(&mock);
    return 0;
}

/* ---- one call, run to completion ---- */

typedef struct {
    bool done;
    gw_err err;
    int status;
    int64_t retry_after_ms;
    char content[4096];
    char deltas[4096];
    int delta_count;
    char finish[32];
    char detail[1024];
    bool has_detail;
    gw_token_usage usage;
    bool streamed_any;
    gw_ratelimit rl;
} outcome;

static void on_delta(void *ud, const char *text, size_t len)
{
    outcome *o = ud;
    strncat(o->deltas, text, len < sizeof o->deltas - strlen(o->deltas) - 1 ? len : 0);
    o->delta_count++;
}

static void on_done(void *ud, const gw_provider_result *r)
{
    outcome *o = ud;
    o->done = true;
    o->err = r->err;
    o->status = r->http_status;
    o->retry_after_ms = r->retry_after_ms;
    snprintf(o->content, sizeof o->content, "%.*s", (int)r->content_len, r->content);
    snprintf(o->finish, sizeof o->finish, "%s", r->finish_reason ? r->finish_reason : "");
    o->has_detail = r->error_detail != NULL;
    snprintf(o->detail, sizeof o->detail, "%s", r->error_detail ? r->error_detail : "");
    o->usage = r->usage;
    o->streamed_any = r->streamed_any;
    o->rl = r->ratelimit;
}

static gw_message msgs[] = {
    {.role = GW_ROLE_USER, .content = "Tell me about the weather", .name = NULL}};

static gw_request make_req(bool stream)
{
    gw_request r = {0};
    r.request_id = "req-1";
    r.messages = msgs;
    r.message_count = 1;
    r.system_prompt = "Be brief";
    r.temperature = 0.5;
    r.max_tokens = 100;
    r.stream = stream;
    return r;
}

static gw_deployment make_dep(gw_provider_kind k, const char *fault)
{
    gw_deployment d = {0};
    d.id = "dep";
    d.provider = k;
    d.model = "test-model";
    d.base_url = mock.base_url;
    d.api_key = "sk-test-secret-key-123456";
    d.total_timeout_ms = 10000;
    if (fault != NULL) {
        static char hdr[256];
        snprintf(hdr, sizeof hdr, "x-mock-fault: %s", fault);
        d.extra_headers[0] = hdr;
        d.extra_header_count = 1;
    }
    return d;
}

static void run(const gw_deployment *d, const gw_request *req, outcome *o)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    gw_providers *ps;
    assert_int_equal(gw_providers_new(&loop, &ps), GW_OK);
    memset(o, 0, sizeof *o);
    gw_provider_cbs cbs = {.on_delta = on_delta, .on_done = on_done};
    gw_provider_call *call;
    assert_int_equal(gw_provider_call_start(ps, d, req, &cbs, o, &call), GW_OK);
    assert_false(o->done); /* never inside start */
    while (!o->done)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(gw_providers_inflight(ps, d), 0);
    gw_providers_free(ps);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static const gw_provider_kind kinds[] = {GW_PROVIDER_OPENAI, GW_PROVIDER_ANTHROPIC,
                                         GW_PROVIDER_OLLAMA, GW_PROVIDER_GEMINI};
enum { NKINDS = sizeof kinds / sizeof kinds[0] };

static void test_success_all_dialects(void **state)
{
    for (size_t k = 0; k < NKINDS; k++) {
        gw_deployment d = make_dep(kinds[k], NULL);
        gw_request req = make_req(false);
        outcome full, streamed;
        run(&d, &req, &full);
        assert_int_equal(full.err, GW_OK);
        assert_int_equal(full.status, 200);
        assert_true(strlen(full.content) > 0);
        assert_string_equal(full.finish, "stop");
        assert_int_equal(full.usage.completion_tokens, 16);
        assert_true(full.usage.prompt_tokens > 0);
        assert_int_equal(full.usage.total_tokens,
                         full.usage.prompt_tokens + full.usage.completion_tokens);
        assert_false(full.streamed_any);
        req.stream = true;
        run(&d, &req, &streamed);
        assert_int_equal(streamed.err, GW_OK);
        assert_string_equal(streamed.content, full.content);
        assert_string_equal(streamed.deltas, full.content);
        assert_int_equal(streamed.delta_count, 16);
        assert_true(streamed.streamed_any);
        assert_string_equal(streamed.finish, "stop");
        assert_int_equal(streamed.usage.completion_tokens, 16);
        assert_int_equal(streamed.usage.prompt_tokens, full.usage.prompt_tokens);
    }
}

static void test_length_finish(void **state)
{
    for (size_t k = 0; k < NKINDS; k++) {
        for (int s = 0; s < 2; s++) {
            gw_deployment d = make_dep(kinds[k], NULL);
            gw_request req = make_req(s == 1);
            req.max_tokens = 5;
            outcome o;
            run(&d, &req, &o);
            assert_int_equal(o.err, GW_OK);
            assert_string_equal(o.finish, "length");
            assert_int_equal(o.usage.completion_tokens, 5);
        }
    }
}

typedef struct {
    const char *fault;
    gw_err nonstream, stream;
} fault_case;

static void test_fault_matrix(void **state)
{
    const fault_case cases[] = {
        {"status:503", GW_E_PROVIDER_UNAVAILABLE, GW_E_PROVIDER_UNAVAILABLE},
        {"status:500", GW_E_PROVIDER_UNAVAILABLE, GW_E_PROVIDER_UNAVAILABLE},
        {"status:400", GW_E_PROVIDER_BAD_REQUEST, GW_E_PROVIDER_BAD_REQUEST},
        {"context", GW_E_PROVIDER_CONTEXT_LENGTH, GW_E_PROVIDER_CONTEXT_LENGTH},
        {"status:401", GW_E_PROVIDER_AUTH, GW_E_PROVIDER_AUTH},
        {"status:403", GW_E_PROVIDER_AUTH, GW_E_PROVIDER_AUTH},
        {"status:404", GW_E_PROVIDER_ERROR, GW_E_PROVIDER_ERROR},
        {"status:408", GW_E_PROVIDER_TOTAL_TIMEOUT, GW_E_PROVIDER_TOTAL_TIMEOUT},
        {"429:3", GW_E_PROVIDER_RATE_LIMITED, GW_E_PROVIDER_RATE_LIMITED},
        {"reset", GW_E_PROVIDER_TRANSPORT, GW_E_PROVIDER_TRANSPORT},
        {"cut", GW_E_PROVIDER_TRANSPORT, GW_E_STREAM_ERROR},
        {"noterm", GW_OK, GW_E_STREAM_ERROR},
        {"malformed", GW_E_PROVIDER_BAD_RESPONSE, GW_E_STREAM_ERROR},
        {"sse-error", GW_OK, GW_E_STREAM_ERROR},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (size_t k = 0; k < NKINDS; k++) {
            for (int s = 0; s < 2; s++) {
                gw_deployment d = make_dep(kinds[k], cases[i].fault);
                gw_request req = make_req(s == 1);
                outcome o;
                run(&d, &req, &o);
                gw_err want = s ? cases[i].stream : cases[i].nonstream;
                if (o.err != want)
                    fail_msg("fault %s provider %d stream %d: got %s want %s", cases[i].fault,
                             (int)kinds[k], s, gw_err_name(o.err), gw_err_name(want));
                if (want != GW_OK) {
                    assert_string_equal(o.content, "");
                    assert_string_equal(o.finish, "error");
                }
                assert_null(strstr(o.detail, "sk-test-secret"));
            }
        }
    }
    assert_true(gw_err_retryable(GW_E_PROVIDER_UNAVAILABLE));
    assert_true(gw_err_retryable(GW_E_STREAM_ERROR));
    assert_true(gw_err_retryable(GW_E_PROVIDER_RATE_LIMITED));
    assert_false(gw_err_retryable(GW_E_PROVIDER_BAD_REQUEST));
    assert_false(gw_err_retryable(GW_E_PROVIDER_AUTH));
    assert_false(gw_err_retryable(GW_E_PROVIDER_CONTEXT_LENGTH));
}

static void test_retry_after(void **state)
{
    outcome o;
    gw_request req = make_req(false);
    gw_deployment d = make_dep(GW_PROVIDER_OPENAI, "429:3");
    run(&d, &req, &o);
    assert_int_equal(o.status, 429);
    assert_int_equal(o.retry_after_ms, 3000);
    d = make_dep(GW_PROVIDER_ANTHROPIC, "429ms:1500");
    run(&d, &req, &o);
    assert_int_equal(o.retry_after_ms, 1500);
    d = make_dep(GW_PROVIDER_OLLAMA, "429date:30");
    run(&d, &req, &o);
    assert_int_equal(o.err, GW_E_PROVIDER_RATE_LIMITED);
    assert_true(o.retry_after_ms >= 28000 && o.retry_after_ms <= 31000);
    d = make_dep(GW_PROVIDER_OPENAI, "status:503");
    run(&d, &req, &o);
    assert_int_equal(o.retry_after_ms, -1);
}

/* The mock's rate-limit headers reach gw_provider_result.ratelimit, on
 * successes (streamed or not) and on a 429, in each dialect's shape. */
static void test_ratelimit_headers(void **state)
{
    outcome o;
    gw_request req = make_req(false);
    gw_deployment d = make_dep(GW_PROVIDER_OPENAI, "ratelimit:3:50");
    run(&d, &req, &o);
    assert_int_equal(o.err, GW_OK);
    assert_int_equal(o.rl.have, GW_RL_LIMIT_REQ | GW_RL_REMAIN_REQ | GW_RL_RESET_REQ);
    assert_int_equal(o.rl.remaining_requests, 3);
    assert_int_equal(o.rl.limit_requests, 50);
    assert_int_equal(o.rl.reset_requests_ms, 1000);
    req = make_req(true);
    d = make_dep(GW_PROVIDER_ANTHROPIC, "ratelimit:7");
    run(&d, &req, &o);
    assert_int_equal(o.err, GW_OK);
    assert_int_equal(o.rl.remaining_requests, 7);
    assert_int_equal(o.rl.limit_requests, 100);
    /* an RFC 3339 time 1 s ahead, whole seconds: 0 .. 2 s from now */
    assert_true(o.rl.reset_requests_ms >= 0 && o.rl.reset_requests_ms <= 2000);
    d = make_dep(GW_PROVIDER_OPENAI, "429:1,ratelimit:0");
    run(&d, &req, &o);
    assert_int_equal(o.err, GW_E_PROVIDER_RATE_LIMITED);
    assert_int_equal(o.rl.remaining_requests, 0);
    assert_true(gw_ratelimit_remaining_share(&o.rl) == 0);
    d = make_dep(GW_PROVIDER_OPENAI, NULL);
    run(&d, &req, &o);
    assert_int_equal(o.rl.have, 0);
}

static void test_redaction_of_echoed_key(void **state)
{
    for (size_t k = 0; k < NKINDS; k++) {
        gw_deployment d = make_dep(kinds[k], "echo-auth");
        d.api_key = "my-very-secret-value-42";
        gw_request req = make_req(false);
        outcome o;
        run(&d, &req, &o);
        assert_int_equal(o.err, GW_E_PROVIDER_AUTH);
        assert_true(o.has_detail);
        assert_null(strstr(o.detail, "my-very-secret"));
        assert_non_null(strstr(o.detail, "[REDACTED]"));
        assert_true(strlen(o.detail) <= GW_PHTTP_DETAIL_MAX);
    }
}

static void test_timeouts(void **state)
{
    gw_request req = make_req(true);
    outcome o;
    /* hang: nothing ever arrives */
    gw_deployment d = make_dep(GW_PROVIDER_OPENAI, "hang");
    d.first_token_timeout_ms = 300;
    run(&d, &req, &o);
    assert_int_equal(o.err, GW_E_PROVIDER_FIRST_TOKEN_TIMEOUT);
    /* slow drip: the first token comes, then the idle timeout fires */
    d = make_dep(GW_PROVIDER_ANTHROPIC, "drip:5000");
    d.idle_timeout_ms = 300;
    run(&d, &req, &o);
    assert_int_equal(o.err, GW_E_PROVIDER_IDLE_TIMEOUT);
    assert_true(o.streamed_any);
    /* non-streamed drip of body pieces */
    gw_request plain = make_req(false);
    d = make_dep(GW_PROVIDER_OLLAMA, "drip:5000");
    d.idle_timeout_ms = 300;
    run(&d, &plain, &o);
    assert_int_equal(o.err, GW_E_PROVIDER_IDLE_TIMEOUT);
    /* total: a slow but steady stream */
    d = make_dep(GW_PROVIDER_OLLAMA, "drip:100");
    d.total_timeout_ms = 400;
    d.idle_timeout_ms = 2000;
    run(&d, &req, &o);
    assert_int_equal(o.err, GW_E_PROVIDER_TOTAL_TIMEOUT);
    /* time to first token on a non-streamed slow answer */
    d = make_dep(GW_PROVIDER_OPENAI, "latency:5000");
    d.first_token_timeout_ms = 300;
    run(&d, &plain, &o);
    assert_int_equal(o.err, GW_E_PROVIDER_FIRST_TOKEN_TIMEOUT);
}

static void test_connect_refused(void **state)
{
    gw_deployment d = make_dep(GW_PROVIDER_OPENAI, NULL);
    d.base_url = "http://127.0.0.1:1"; /* nothing listens on port 1 */
    d.connect_timeout_ms = 1000;
    gw_request req = make_req(false);
    outcome o;
    run(&d, &req, &o);
    assert_int_equal(o.err, GW_E_PROVIDER_TRANSPORT);
    assert_int_equal(o.status, 0);
    assert_true(o.has_detail);
}

static void test_fail_then_succeed(void **state)
{
    gw_deployment d = make_dep(GW_PROVIDER_OPENAI, "fail:2");
    gw_request req = make_req(false);
    char rid[64];
    snprintf(rid, sizeof rid, "fail-%ld-%d", (long)time(NULL), (int)getpid());
    req.request_id = rid;
    outcome o;
    run(&d, &req, &o);
    assert_int_equal(o.err, GW_E_PROVIDER_UNAVAILABLE);
    run(&d, &req, &o);
    assert_int_equal(o.err, GW_E_PROVIDER_UNAVAILABLE);
    run(&d, &req, &o);
    assert_int_equal(o.err, GW_OK);
}

static void test_not_configured(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    gw_providers *ps;
    gw_providers_new(&loop, &ps);
    gw_deployment d = make_dep(GW_PROVIDER_OPENAI, NULL);
    d.base_url = NULL;
    gw_request req = make_req(false);
    outcome o;
    gw_provider_cbs cbs = {.on_delta = NULL, .on_done = on_done};
    gw_provider_call *call;
    assert_int_equal(gw_provider_call_start(ps, &d, &req, &cbs, &o, &call),
                     GW_E_PROVIDER_NOT_CONFIGURED);
    gw_providers_free(ps);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- many at once ---- */

enum { MANY = 2000 };

typedef struct {
    int done, ok, max_inflight;
    int limit;                    /* > 0: gw_providers_set_limit before the calls */
    int streaming, streaming_max; /* calls between their first delta and on_done */
    gw_providers *ps;
    const gw_deployment *d;
    char expect[4096];
    bool mismatch;
} many_state;

typedef struct {
    many_state *m;
    char deltas[512];
    bool streaming;
} many_call;

static void many_delta(void *ud, const char *text, size_t len)
{
    many_call *c = ud;
    strncat(c->deltas, text, len);
    if (!c->streaming) {
        c->streaming = true;
        if (++c->m->streaming > c->m->streaming_max)
            c->m->streaming_max = c->m->streaming;
    }
}

static void many_done(void *ud, const gw_provider_result *r)
{
    many_call *c = ud;
    c->m->streaming -= c->streaming;
    c->m->done++;
    if (r->err == GW_OK)
        c->m->ok++;
    if (r->err == GW_OK && strcmp(c->deltas, c->m->expect) != 0)
        c->m->mismatch = true;
}

static void run_many(const gw_deployment *d, int n, many_state *m)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    gw_providers_new(&loop, &m->ps);
    if (m->limit > 0) {
        assert_int_equal(gw_providers_set_limit(m->ps, d, m->limit), GW_OK);
        assert_int_equal(gw_providers_limit(m->ps, d), m->limit);
    }
    many_call *calls = calloc((size_t)n, sizeof *calls);
    gw_request req = make_req(true);
    gw_provider_cbs cbs = {.on_delta = many_delta, .on_done = many_done};
    for (int i = 0; i < n; i++) {
        calls[i].m = m;
        gw_provider_call *call;
        assert_int_equal(gw_provider_call_start(m->ps, d, &req, &cbs, &calls[i], &call), GW_OK);
    }
    assert_int_equal(gw_providers_inflight(m->ps, d), n);
    while (m->done < n) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    gw_providers_free(m->ps);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(calls);
}

static void test_many_concurrent_streams(void **state)
{
    gw_deployment d = make_dep(GW_PROVIDER_OPENAI, NULL);
    gw_request req = make_req(true);
    outcome one;
    run(&d, &req, &one);
    assert_int_equal(one.err, GW_OK);
    many_state m = {0};
    snprintf(m.expect, sizeof m.expect, "%s", one.content);
    run_many(&d, MANY, &m);
    assert_int_equal(m.done, MANY);
    assert_int_equal(m.ok, MANY);
    assert_false(m.mismatch);
}

static void test_concurrency_cap_queue(void **state)
{
    gw_deployment d = make_dep(GW_PROVIDER_ANTHROPIC, "ttft:50");
    d.max_concurrency = 4;
    gw_request req = make_req(true);
    outcome one;
    run(&d, &req, &one);
    many_state m = {0};
    snprintf(m.expect, sizeof m.expect, "%s", one.content);
    run_many(&d, 40, &m);
    assert_int_equal(m.ok, 40);
    assert_false(m.mismatch);
    assert_true(m.streaming_max <= 4);
    /* the adaptive cap lowers it: never more than 2 streaming at once */
    many_state low = {.limit = 2};
    snprintf(low.expect, sizeof low.expect, "%s", one.content);
    run_many(&d, 12, &low);
    assert_int_equal(low.ok, 12);
    assert_true(low.streaming_max >= 1 && low.streaming_max <= 2);
}

/* The cap stays within 1 .. max_concurrency; 0 restores the configured one. */
static void test_set_limit_bounds(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    gw_providers *ps;
    assert_int_equal(gw_providers_new(&loop, &ps), GW_OK);
    gw_deployment d = make_dep(GW_PROVIDER_OPENAI, NULL);
    d.max_concurrency = 8;
    assert_int_equal(gw_providers_limit(ps, &d), 8);
    assert_int_equal(gw_providers_set_limit(ps, &d, 3), GW_OK);
    assert_int_equal(gw_providers_limit(ps, &d), 3);
    assert_int_equal(gw_providers_set_limit(ps, &d, 100), GW_OK);
    assert_int_equal(gw_providers_limit(ps, &d), 8);
    assert_int_equal(gw_providers_set_limit(ps, &d, 3), GW_OK);
    assert_int_equal(gw_providers_set_limit(ps, &d, 0), GW_OK);
    assert_int_equal(gw_providers_limit(ps, &d), 8);
    gw_providers_free(ps);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- cancellation ---- */

typedef struct {
    gw_provider_call *call;
    int deltas, dones;
} cancel_state;

static void cancel_on_delta(void *ud, const char *text, size_t len)
{
    cancel_state *cs = ud;
    if (cs->deltas++ == 0)
        gw_provider_call_cancel(cs->call);
}

static void cancel_done(void *ud, const gw_provider_result *r)
{
    ((cancel_state *)ud)->dones++;
}

static void stop_loop(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void test_cancel(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    gw_providers *ps;
    gw_providers_new(&loop, &ps);
    gw_deployment d = make_dep(GW_PROVIDER_OPENAI, "drip:20");
    d.max_concurrency = 2;
    gw_request req = make_req(true);
    gw_provider_cbs cbs = {.on_delta = cancel_on_delta, .on_done = cancel_done};
    cancel_state in_delta = {0}, at_once = {0}, queued = {0}, left = {0};
    /* cancelled from inside its own on_delta */
    assert_int_equal(gw_provider_call_start(ps, &d, &req, &cbs, &in_delta, &in_delta.call), GW_OK);
    /* cancelled before the loop ever ran */
    assert_int_equal(gw_provider_call_start(ps, &d, &req, &cbs, &at_once, &at_once.call), GW_OK);
    /* waits for the cap, cancelled while queued */
    assert_int_equal(gw_provider_call_start(ps, &d, &req, &cbs, &queued, &queued.call), GW_OK);
    assert_int_equal(gw_providers_inflight(ps, &d), 3);
    gw_provider_call_cancel(at_once.call);
    gw_provider_call_cancel(queued.call);
    /* left running when the providers are freed */
    gw_provider_cbs plain = {.on_delta = NULL, .on_done = cancel_done};
    assert_int_equal(gw_provider_call_start(ps, &d, &req, &plain, &left, &left.call), GW_OK);
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, stop_loop, 150, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(in_delta.deltas, 1);
    assert_int_equal(in_delta.dones + at_once.dones + queued.dones, 0);
    assert_int_equal(at_once.deltas + queued.deltas, 0);
    assert_int_equal(gw_providers_inflight(ps, &d), 1);
    gw_provider_call_cancel(left.call);
    gw_providers_free(ps);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- pure helpers ---- */

static void test_status_mapping(void **state)
{
    assert_int_equal(gw_phttp_map_status(200, "", 0), GW_OK);
    assert_int_equal(gw_phttp_map_status(400, "bad", 3), GW_E_PROVIDER_BAD_REQUEST);
    const char *ctx = "{\"error\":{\"code\":\"context_length_exceeded\"}}";
    assert_int_equal(gw_phttp_map_status(400, ctx, strlen(ctx)), GW_E_PROVIDER_CONTEXT_LENGTH);
    const char *anth = "prompt is too long: 250000 tokens > 200000 maximum";
    assert_int_equal(gw_phttp_map_status(400, anth, strlen(anth)), GW_E_PROVIDER_CONTEXT_LENGTH);
    assert_int_equal(gw_phttp_map_status(401, "", 0), GW_E_PROVIDER_AUTH);
    assert_int_equal(gw_phttp_map_status(403, "", 0), GW_E_PROVIDER_AUTH);
    assert_int_equal(gw_phttp_map_status(408, "", 0), GW_E_PROVIDER_TOTAL_TIMEOUT);
    assert_int_equal(gw_phttp_map_status(429, "", 0), GW_E_PROVIDER_RATE_LIMITED);
    assert_int_equal(gw_phttp_map_status(500, "", 0), GW_E_PROVIDER_UNAVAILABLE);
    assert_int_equal(gw_phttp_map_status(529, "", 0), GW_E_PROVIDER_UNAVAILABLE);
    assert_int_equal(gw_phttp_map_status(404, "", 0), GW_E_PROVIDER_ERROR);
}

static void test_finish_reasons(void **state)
{
    assert_string_equal(gw_phttp_normalise_finish("end_turn"), "stop");
    assert_string_equal(gw_phttp_normalise_finish("max_tokens"), "length");
    assert_string_equal(gw_phttp_normalise_finish("length"), "length");
    assert_string_equal(gw_phttp_normalise_finish("tool_use"), "tool_calls");
    assert_string_equal(gw_phttp_normalise_finish("function_call"), "tool_calls");
    assert_string_equal(gw_phttp_normalise_finish("content_filter"), "content_filter");
    assert_string_equal(gw_phttp_normalise_finish("refusal"), "content_filter");
}

static void test_retry_after_parsing(void **state)
{
    assert_int_equal(gw_http_parse_retry_after(" 3\r\n", 4, 0), 3000);
    assert_int_equal(gw_http_parse_retry_after("0", 1, 0), 0);
    assert_int_equal(gw_http_parse_retry_after("abc", 3, 0), -1);
    const char *date = "Sun, 06 Nov 1994 08:49:37 GMT";
    assert_int_equal(gw_http_parse_retry_after(date, strlen(date), 784111777 - 10), 10000);
    assert_int_equal(gw_http_parse_retry_after(date, strlen(date), 784111777 + 10), 0);
    assert_int_equal(gw_http_parse_retry_after_ms(" 1500\r\n", 7), 1500);
    assert_int_equal(gw_http_parse_retry_after_ms("20.7", 4), 20);
    assert_int_equal(gw_http_parse_retry_after_ms("x1", 2), -1);
    assert_int_equal(gw_http_parse_retry_after_ms("-5", 2), -1);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_status_mapping),
        cmocka_unit_test(test_finish_reasons),
        cmocka_unit_test(test_retry_after_parsing),
    };
    const struct CMUnitTest live[] = {
        cmocka_unit_test(test_success_all_dialects),
        cmocka_unit_test(test_length_finish),
        cmocka_unit_test(test_fault_matrix),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_ratelimit_headers),
        cmocka_unit_test(test_set_limit_bounds),
        cmocka_unit_test(test_redaction_of_echoed_key),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_fail_then_succeed),
        cmocka_unit_test(test_not_configured),
        cmocka_unit_test(test_many_concurrent_streams),
        cmocka_unit_test(test_concurrency_cap_queue),
        cmocka_unit_test(test_cancel),
    };
    int rc = cmocka_run_group_tests_name("pure", pure, NULL, NULL);
    return rc + cmocka_run_group_tests_name("against modelgw-mockllm", live, start_mock, stop_mock);
}
