/*
 * Tool calling and structured output through the provider adapters (OpenAI,
 * Anthropic, Ollama) over http_client against a real modelgw-mockllm: a
 * request with tools gets a tool call back, whole and streamed (the streamed
 * pieces assemble to the same call), the follow-up with the tool's result
 * gets text; response_format gives a JSON answer in every dialect (Anthropic
 * by the forced tool); what a dialect cannot honour is a named error before
 * anything is sent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "provider/provider.h"
#include "test_support.h"

static gw_test_mock mock;

static int start_mock(void **state)
{
    (void)state;
    static const char *const args[] = {"--tokens", "8", NULL};
    return gw_test_mock_start(&mock, args);
}

static int stop_mock(void **state)
{
    (void)state;
    gw_test_mock_stop(&mock);
    return 0;
}

enum { MAX_CALLS = 4 };

typedef struct {
    bool done;
    gw_err err;
    char content[4096];
    char deltas[4096];
    char finish[32];
    size_t call_count;
    gw_tool_call calls[MAX_CALLS]; /* strings strdup'ed */
    /* the streamed pieces, assembled by index */
    int piece_count;
    char piece_id[MAX_CALLS][64], piece_name[MAX_CALLS][64], piece_args[MAX_CALLS][1024];
    int piece_max_index;
    int first_piece_with_id[MAX_CALLS];
} outcome;

static void on_delta(void *ud, const char *text, size_t len)
{
    outcome *o = ud;
    size_t room = sizeof o->deltas - strlen(o->deltas) - 1;
    strncat(o->deltas, text, len < room ? len : room);
}

static void on_tool_delta(void *ud, const gw_tool_call_delta *d)
{
    outcome *o = ud;
    assert_true(d->index >= 0 && d->index < MAX_CALLS);
    if (d->id != NULL) {
        snprintf(o->piece_id[d->index], sizeof o->piece_id[0], "%s", d->id);
        o->first_piece_with_id[d->index] = o->piece_count;
    }
    if (d->name != NULL)
        snprintf(o->piece_name[d->index], sizeof o->piece_name[0], "%s", d->name);
    strncat(o->piece_args[d->index], d->arguments,
            sizeof o->piece_args[0] - strlen(o->piece_args[d->index]) - 1);
    if (d->index > o->piece_max_index)
        o->piece_max_index = d->index;
    o->piece_count++;
}

static void on_done(void *ud, const gw_provider_result *r)
{
    outcome *o = ud;
    o->done = true;
    o->err = r->err;
    snprintf(o->content, sizeof o->content, "%.*s", (int)r->content_len, r->content);
    snprintf(o->finish, sizeof o->finish, "%s", r->finish_reason ? r->finish_reason : "");
    o->call_count = r->tool_call_count;
    for (size_t i = 0; i < r->tool_call_count && i < MAX_CALLS; i++) {
        o->calls[i].id = strdup(r->tool_calls[i].id);
        o->calls[i].name = strdup(r->tool_calls[i].name);
        o->calls[i].arguments = strdup(r->tool_calls[i].arguments);
    }
}

static void outcome_free(outcome *o)
{
    for (size_t i = 0; i < o->call_count && i < MAX_CALLS; i++) {
        free((char *)o->calls[i].id);
        free((char *)o->calls[i].name);
        free((char *)o->calls[i].arguments);
    }
}

static gw_err run(const gw_deployment *d, const gw_request *req, outcome *o)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    gw_providers *ps;
    assert_int_equal(gw_providers_new(&loop, &ps), GW_OK);
    memset(o, 0, sizeof *o);
    o->piece_max_index = -1;
    gw_provider_cbs cbs = {
        .on_delta = on_delta, .on_done = on_done, .on_tool_delta = on_tool_delta};
    gw_provider_call *call;
    gw_err err = gw_provider_call_start(ps, d, req, &cbs, o, &call);
    while (err == GW_OK && !o->done)
        uv_run(&loop, UV_RUN_ONCE);
    gw_providers_free(ps);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    return err;
}

static gw_deployment make_dep(gw_provider_kind k)
{
    gw_deployment d = {0};
    d.id = "dep";
    d.provider = k;
    d.model = "test-model";
    d.base_url = mock.base_url;
    d.api_key = "sk-test";
    d.total_timeout_ms = 10000;
    return d;
}

static const gw_provider_kind kinds[] = {GW_PROVIDER_OPENAI, GW_PROVIDER_ANTHROPIC,
                                         GW_PROVIDER_OLLAMA};

#define WEATHER_SCHEMA                                                                             \
    "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"},"                         \
    "\"days\":{\"type\":\"integer\"}},\"required\":[\"city\"]}"

static gw_tool tools[2] = {
    {.name = "get_weather", .description = "Weather for a city", .parameters = WEATHER_SCHEMA},
    {.name = "get_time", .parameters = NULL},
};

static gw_message ask[] = {{.role = GW_ROLE_USER, .content = "Weather in Paris?"}};

static gw_request tool_req(bool stream)
{
    gw_request r = {0};
    r.request_id = "req-tools";
    r.messages = ask;
    r.message_count = 1;
    r.temperature = 0.5;
    r.max_tokens = 100;
    r.stream = stream;
    r.tools = tools;
    r.tool_count = 2;
    return r;
}

/* The arguments are a JSON object with the schema's properties. */
static void assert_weather_args(const char *args)
{
    json_error_t je;
    json_t *a = json_loads(args, 0, &je);
    assert_non_null(a);
    assert_true(json_is_object(a));
    assert_true(json_is_string(json_object_get(a, "city")));
    assert_true(json_is_integer(json_object_get(a, "days")));
    json_decref(a);
}

static void test_tool_call_whole_and_streamed(void **state)
{
    for (size_t k = 0; k < 3; k++) {
        gw_deployment d = make_dep(kinds[k]);
        outcome whole, streamed;
        gw_request req = tool_req(false);
        assert_int_equal(run(&d, &req, &whole), GW_OK);
        assert_int_equal(whole.err, GW_OK);
        assert_string_equal(whole.finish, "tool_calls");
        assert_int_equal(whole.call_count, 1);
        assert_string_equal(whole.calls[0].name, "get_weather");
        assert_true(strlen(whole.calls[0].id) > 0);
        assert_weather_args(whole.calls[0].arguments);
        assert_string_equal(whole.content, "");

        req = tool_req(true);
        assert_int_equal(run(&d, &req, &streamed), GW_OK);
        assert_int_equal(streamed.err, GW_OK);
        assert_string_equal(streamed.finish, "tool_calls");
        assert_int_equal(streamed.call_count, 1);
        /* the same call, and the pieces assemble to it */
        assert_string_equal(streamed.calls[0].name, whole.calls[0].name);
        assert_string_equal(streamed.calls[0].arguments, whole.calls[0].arguments);
        assert_string_equal(streamed.calls[0].id, whole.calls[0].id);
        assert_int_equal(streamed.piece_max_index, 0);
        assert_string_equal(streamed.piece_name[0], "get_weather");
        assert_string_equal(streamed.piece_id[0], streamed.calls[0].id);
        assert_int_equal(streamed.first_piece_with_id[0], 0);
        assert_string_equal(streamed.piece_args[0], streamed.calls[0].arguments);
        /* Ollama sends a call whole; the SSE dialects in several pieces */
        if (kinds[k] != GW_PROVIDER_OLLAMA)
            assert_true(streamed.piece_count > 1);
        assert_string_equal(streamed.deltas, "");
        outcome_free(&whole);
        outcome_free(&streamed);
    }
}

static void test_forced_tool_and_none(void **state)
{
    for (size_t k = 0; k < 2; k++) { /* Ollama has no tool_choice: see test_unsupported */
        gw_deployment d = make_dep(kinds[k]);
        outcome o;
        gw_request req = tool_req(false);
        req.tool_choice = "get_time";
        assert_int_equal(run(&d, &req, &o), GW_OK);
        assert_int_equal(o.err, GW_OK);
        assert_int_equal(o.call_count, 1);
        assert_string_equal(o.calls[0].name, "get_time");
        assert_string_equal(o.calls[0].arguments, "{}");
        outcome_free(&o);
        req.tool_choice = "none";
        assert_int_equal(run(&d, &req, &o), GW_OK);
        assert_int_equal(o.err, GW_OK);
        assert_int_equal(o.call_count, 0);
        assert_string_equal(o.finish, "stop");
        assert_true(strlen(o.content) > 0);
    }
}

/* The conversation continues with the call and its result: a text answer. */
static void test_follow_up_with_result(void **state)
{
    static gw_tool_call call = {
        .id = "call_abc", .name = "get_weather", .arguments = "{\"city\":\"Paris\",\"days\":1}"};
    static gw_message conv[] = {
        {.role = GW_ROLE_USER, .content = "Weather in Paris?"},
        {.role = GW_ROLE_ASSISTANT, .content = "", .tool_calls = &call, .tool_call_count = 1},
        {.role = GW_ROLE_TOOL,
         .content = "{\"temp_c\":21}",
         .name = "get_weather",
         .tool_call_id = "call_abc"},
    };
    for (size_t k = 0; k < 3; k++) {
        for (int stream = 0; stream < 2; stream++) {
            gw_deployment d = make_dep(kinds[k]);
            outcome o;
            gw_request req = tool_req(stream);
            req.messages = conv;
            req.message_count = 3;
            assert_int_equal(run(&d, &req, &o), GW_OK);
            assert_int_equal(o.err, GW_OK);
            assert_int_equal(o.call_count, 0);
            assert_string_equal(o.finish, "stop");
            assert_int_equal(strlen(o.content) > 0, true);
            if (stream)
                assert_string_equal(o.deltas, o.content);
        }
    }
}

static void test_structured_output(void **state)
{
    static gw_response_format fmt = {
        .type = "json_schema", .name = "weather", .schema = WEATHER_SCHEMA, .strict = true};
    for (size_t k = 0; k < 3; k++) {
        for (int stream = 0; stream < 2; stream++) {
            gw_deployment d = make_dep(kinds[k]);
            outcome o;
            gw_request req = tool_req(stream);
            req.tools = NULL;
            req.tool_count = 0;
            req.response_format = &fmt;
            assert_int_equal(run(&d, &req, &o), GW_OK);
            assert_int_equal(o.err, GW_OK);
            assert_int_equal(o.call_count, 0); /* Anthropic's forced tool is the answer */
            assert_string_equal(o.finish, "stop");
            assert_weather_args(o.content);
            if (stream)
                assert_string_equal(o.deltas, o.content);
        }
    }
}

/* A deployment with every body quirk (as the mistral and openai presets set
 * them) still gets its answers from an OpenAI-compatible server: a streamed
 * forced tool call, a clipped text answer (max_completion_tokens read), and
 * a format the quirks refuse is PROVIDER_UNSUPPORTED before anything is sent. */
static void test_quirks_against_mock(void **state)
{
    gw_deployment d = make_dep(GW_PROVIDER_OPENAI);
    d.openai_quirks = GW_QUIRK_NO_STREAM_OPTIONS | GW_QUIRK_RANDOM_SEED | GW_QUIRK_REQUIRED_AS_ANY |
                      GW_QUIRK_MAX_COMPLETION_TOKENS | GW_QUIRK_NO_JSON_SCHEMA;
    outcome o;
    gw_request req = tool_req(true);
    req.tool_choice = "required";
    req.has_seed = true;
    req.seed = 7;
    assert_int_equal(run(&d, &req, &o), GW_OK);
    assert_int_equal(o.err, GW_OK);
    assert_int_equal(o.call_count, 1);
    assert_string_equal(o.finish, "tool_calls");
    assert_string_equal(o.piece_args[0], o.calls[0].arguments);
    outcome_free(&o);
    req = tool_req(false);
    req.tools = NULL;
    req.tool_count = 0;
    req.max_tokens = 2;
    assert_int_equal(run(&d, &req, &o), GW_OK);
    assert_int_equal(o.err, GW_OK);
    assert_string_equal(o.finish, "length");
    static gw_response_format schema = {.type = "json_schema", .schema = WEATHER_SCHEMA};
    req.response_format = &schema;
    assert_int_equal(run(&d, &req, &o), GW_E_PROVIDER_UNSUPPORTED);
}

static void test_unsupported_and_invalid(void **state)
{
    outcome o;
    /* Ollama cannot force a tool */
    gw_deployment d = make_dep(GW_PROVIDER_OLLAMA);
    gw_request req = tool_req(false);
    req.tool_choice = "required";
    assert_int_equal(run(&d, &req, &o), GW_E_PROVIDER_UNSUPPORTED);
    /* Anthropic cannot combine the forced format tool with the caller's tools */
    static gw_response_format fmt = {.type = "json_object"};
    d = make_dep(GW_PROVIDER_ANTHROPIC);
    req = tool_req(false);
    req.response_format = &fmt;
    assert_int_equal(run(&d, &req, &o), GW_E_PROVIDER_UNSUPPORTED);
    /* parameters and arguments that are not JSON objects are the caller's error */
    static gw_tool bad_tool = {.name = "t", .parameters = "{not json"};
    static gw_tool_call bad_call = {.id = "c", .name = "t", .arguments = "[1,2]"};
    static gw_message bad_conv[] = {
        {.role = GW_ROLE_USER, .content = "x"},
        {.role = GW_ROLE_ASSISTANT, .content = "", .tool_calls = &bad_call, .tool_call_count = 1},
    };
    for (size_t k = 0; k < 3; k++) {
        d = make_dep(kinds[k]);
        req = tool_req(false);
        req.tools = &bad_tool;
        req.tool_count = 1;
        assert_int_equal(run(&d, &req, &o), GW_E_INVALID_REQUEST);
    }
    /* a named tool_choice must name a tool; response_format types are known */
    static gw_response_format odd = {.type = "yaml"};
    for (size_t k = 0; k < 3; k++) {
        d = make_dep(kinds[k]);
        req = tool_req(false);
        req.tool_choice = "no_such_tool";
        assert_int_equal(run(&d, &req, &o), GW_E_INVALID_REQUEST);
        req = tool_req(false);
        req.tools = NULL;
        req.tool_count = 0;
        req.response_format = &odd;
        assert_int_equal(run(&d, &req, &o), GW_E_INVALID_REQUEST);
    }
    /* OpenAI passes arguments as a string; the object-shaped dialects check them */
    for (size_t k = 1; k < 3; k++) {
        d = make_dep(kinds[k]);
        req = tool_req(false);
        req.messages = bad_conv;
        req.message_count = 2;
        assert_int_equal(run(&d, &req, &o), GW_E_INVALID_REQUEST);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tool_call_whole_and_streamed),
        cmocka_unit_test(test_forced_tool_and_none),
        cmocka_unit_test(test_follow_up_with_result),
        cmocka_unit_test(test_structured_output),
        cmocka_unit_test(test_unsupported_and_invalid),
        cmocka_unit_test(test_quirks_against_mock),
    };
    return cmocka_run_group_tests(tests, start_mock, stop_mock);
}
