/* Tests for provider/provider_mock on a real libuv loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <string.h>

#include "provider/provider.h"

typedef struct {
    char streamed[4096];
    size_t streamed_len;
    int deltas;
    int done;
    gw_err err;
    char content[4096];
    char finish[32];
    gw_token_usage usage;
    bool in_start;
    /* tool calls: the streamed pieces assembled, and the result's call */
    int tool_deltas;
    char tool_id[64], tool_name[64], tool_args[4096];
    size_t tool_calls;
    char call_id[64], call_name[64], call_args[4096];
} sink;

static void on_tool_delta(void *ud, const gw_tool_call_delta *d)
{
    sink *s = ud;
    assert_false(s->in_start);
    assert_int_equal(d->index, 0);
    assert_true((d->name != NULL) == (s->tool_deltas == 0)); /* the head once, first */
    if (d->name != NULL) {
        snprintf(s->tool_id, sizeof s->tool_id, "%s", d->id);
        snprintf(s->tool_name, sizeof s->tool_name, "%s", d->name);
    }
    assert_true(strlen(d->arguments) <= 8);
    strncat(s->tool_args, d->arguments, sizeof s->tool_args - strlen(s->tool_args) - 1);
    s->tool_deltas++;
}

static void on_delta(void *ud, const char *t, size_t n)
{
    sink *s = ud;
    assert_false(s->in_start);
    memcpy(s->streamed + s->streamed_len, t, n);
    s->streamed_len += n;
    s->deltas++;
}

static void on_done(void *ud, const gw_provider_result *r)
{
    sink *s = ud;
    assert_false(s->in_start);
    s->done++;
    s->err = r->err;
    snprintf(s->content, sizeof s->content, "%s", r->content);
    snprintf(s->finish, sizeof s->finish, "%s", r->finish_reason ? r->finish_reason : "");
    s->usage = r->usage;
    s->tool_calls = r->tool_call_count;
    if (r->tool_call_count > 0) {
        snprintf(s->call_id, sizeof s->call_id, "%s", r->tool_calls[0].id);
        snprintf(s->call_name, sizeof s->call_name, "%s", r->tool_calls[0].name);
        snprintf(s->call_args, sizeof s->call_args, "%s", r->tool_calls[0].arguments);
    }
}

static gw_message msg = {.role = GW_ROLE_USER, .content = "tell me about kafka", .name = NULL};

static void run_call(const gw_deployment *d, gw_request *req, sink *s)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    gw_providers *ps;
    assert_int_equal(gw_providers_new(&loop, &ps), GW_OK);
    gw_provider_cbs cbs = {
        .on_delta = on_delta, .on_done = on_done, .on_tool_delta = on_tool_delta};
    gw_provider_call *c;
    memset(s, 0, sizeof *s);
    s->in_start = true;
    assert_int_equal(gw_provider_call_start(ps, d, req, &cbs, s, &c), GW_OK);
    s->in_start = false;
    assert_int_equal(s->done, 0); /* never inside start */
    uv_run(&loop, UV_RUN_DEFAULT);
    gw_providers_free(ps);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static gw_request request(bool stream, int32_t max_tokens, const char *id)
{
    gw_request r;
    memset(&r, 0, sizeof r);
    r.request_id = id;
    r.messages = &msg;
    r.message_count = 1;
    r.max_tokens = max_tokens;
    r.stream = stream;
    return r;
}

static void test_deterministic_and_streams_equal_content(void **state)
{
    gw_deployment d = {.id = "m", .provider = GW_PROVIDER_MOCK, .mock_chunk_delay_ms = 1};
    gw_request r = request(false, 1000, "a");
    sink s1, s2;
    run_call(&d, &r, &s1);
    assert_int_equal(s1.done, 1);
    assert_int_equal(s1.err, GW_OK);
    assert_string_equal(s1.finish, "stop");
    assert_int_equal(s1.deltas, 0);
    r = request(true, 1000, "b");
    run_call(&d, &r, &s2);
    assert_string_equal(s1.content, s2.content); /* same prompt, same answer */
    assert_true(s2.deltas > 1);
    s2.streamed[s2.streamed_len] = '\0';
    assert_string_equal(s2.streamed, s2.content);
    assert_int_equal(s2.usage.completion_tokens, s2.deltas);
    assert_int_equal(s2.usage.total_tokens, s2.usage.prompt_tokens + s2.usage.completion_tokens);
}

static void test_clipped_by_max_tokens(void **state)
{
    gw_deployment d = {.id = "m", .provider = GW_PROVIDER_MOCK};
    gw_request r = request(true, 2, "c");
    sink s;
    run_call(&d, &r, &s);
    assert_string_equal(s.finish, "length");
    assert_int_equal(s.usage.completion_tokens, 2);
    assert_int_equal(s.deltas, 2);
}

static void test_failure_rate_is_per_request_id(void **state)
{
    gw_deployment d = {.id = "m", .provider = GW_PROVIDER_MOCK, .mock_failure_rate = 1.0};
    gw_request r = request(true, 10, "d");
    sink s;
    run_call(&d, &r, &s);
    assert_int_equal(s.err, GW_E_PROVIDER_UNAVAILABLE);
    assert_int_equal(s.deltas, 0);
    d.mock_failure_rate = 0.5;
    int failed = 0;
    char id[16];
    for (int i = 0; i < 200; i++) {
        snprintf(id, sizeof id, "id-%d", i);
        r = request(false, 10, id);
        run_call(&d, &r, &s);
        gw_err first = s.err;
        run_call(&d, &r, &s);
        assert_int_equal(s.err, first); /* deterministic */
        failed += first != GW_OK;
    }
    assert_in_range(failed, 60, 140);
}

/* With tools the mock answers one call (named by tool_choice, else the
 * first); streamed, its pieces assemble to the result's call; none after
 * the tool's result or with tool_choice none. */
static void test_tool_calls(void **state)
{
    gw_deployment d = {.id = "m", .provider = GW_PROVIDER_MOCK};
    static gw_tool tools[2] = {{.name = "first", .parameters = "{}"},
                               {.name = "second", .parameters = "{}"}};
    gw_request r = request(false, 1000, "t");
    r.tools = tools;
    r.tool_count = 2;
    sink whole, streamed;
    run_call(&d, &r, &whole);
    assert_int_equal(whole.err, GW_OK);
    assert_string_equal(whole.finish, "tool_calls");
    assert_string_equal(whole.content, "");
    assert_int_equal(whole.tool_calls, 1);
    assert_string_equal(whole.call_name, "first");
    assert_true(strncmp(whole.call_args, "{\"text\":\"", 9) == 0);
    assert_int_equal(whole.tool_deltas, 0);
    r.stream = true;
    run_call(&d, &r, &streamed);
    assert_true(streamed.tool_deltas >= 3);
    assert_int_equal(streamed.deltas, 0);
    assert_string_equal(streamed.tool_id, whole.call_id);
    assert_string_equal(streamed.tool_name, "first");
    assert_string_equal(streamed.tool_args, whole.call_args);
    assert_string_equal(streamed.call_args, whole.call_args);
    r.stream = false;
    r.tool_choice = "second";
    run_call(&d, &r, &whole);
    assert_string_equal(whole.call_name, "second");
    r.tool_choice = "none";
    run_call(&d, &r, &whole);
    assert_int_equal(whole.tool_calls, 0);
    assert_string_equal(whole.finish, "stop");
    r.tool_choice = NULL;
    gw_message conv[2] = {msg, {.role = GW_ROLE_TOOL, .content = "42", .tool_call_id = "c"}};
    r.messages = conv;
    r.message_count = 2;
    run_call(&d, &r, &whole);
    assert_int_equal(whole.tool_calls, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic_and_streams_equal_content),
        cmocka_unit_test(test_clipped_by_max_tokens),
        cmocka_unit_test(test_failure_rate_is_per_request_id),
        cmocka_unit_test(test_tool_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
