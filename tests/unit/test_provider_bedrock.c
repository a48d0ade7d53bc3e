/*
 * AWS Bedrock Converse: the URL (base_url or region, escaping, the stream
 * path), the request body (system blocks, merged turns, toolUse / toolResult
 * blocks, inferenceConfig, toolConfig and toolChoice, the forced format
 * tool), the exception map, and calls against modelgw-mockllm (which
 * verifies the SigV4 signature with the secret it was started with): text
 * and tool calls, whole and over the event stream, the follow-up with the
 * result, length, faults, missing credentials, a wrong secret, a bearer API
 * key, a session token.
 */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "provider/provider.h"
#include "provider/provider_bedrock.h"
#include "test_support.h"

static gw_test_mock mock;

static int start_mock(void **state)
{
    (void)state;
    static const char *const args[] = {"--tokens", "6", "--aws-secret-env", "AWS_SECRET_ACCESS_KEY",
                                       NULL};
    setenv("AWS_ACCESS_KEY_ID", "AKIDTESTBEDROCK", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "bedrock-test-secret", 1); /* the mock verifies with it */
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");
    return gw_test_mock_start(&mock, args);
}

static int stop_mock(void **state)
{
    (void)state;
    gw_test_mock_stop(&mock);
    return 0;
}

static void test_url(void **state)
{
    (void)state;
    const gw_provider_kind_info *k = gw_provider_info(GW_PROVIDER_BEDROCK);
    assert_non_null(k);
    assert_string_equal(k->name, "bedrock");
    assert_int_equal(k->stream_framing, GW_RESP_EVENTSTREAM);
    char url[256];
    gw_deployment d = {.base_url = "http://127.0.0.1:9/", .model = "anthropic.claude-v2:1"};
    assert_int_equal(gw_bedrock_url(k, &d, false, url, sizeof url), GW_OK);
    assert_string_equal(url, "http://127.0.0.1:9/model/anthropic.claude-v2%3A1/converse");
    assert_int_equal(gw_bedrock_url(k, &d, true, url, sizeof url), GW_OK);
    assert_string_equal(url, "http://127.0.0.1:9/model/anthropic.claude-v2%3A1/converse-stream");
    /* no base_url: the regional endpoint; an ARN's '/' stays in one segment */
    d.base_url = NULL;
    d.model = "arn:aws:bedrock:us-west-2:1:inference-profile/x";
    assert_int_equal(gw_bedrock_url(k, &d, false, url, sizeof url), GW_E_PROVIDER_NOT_CONFIGURED);
    setenv("AWS_DEFAULT_REGION", "eu-west-1", 1);
    assert_int_equal(gw_bedrock_url(k, &d, false, url, sizeof url), GW_OK);
    assert_string_equal(url,
                        "https://bedrock-runtime.eu-west-1.amazonaws.com/model/"
                        "arn%3Aaws%3Abedrock%3Aus-west-2%3A1%3Ainference-profile%2Fx/converse");
    setenv("AWS_REGION", "us-west-2", 1); /* AWS_REGION first */
    assert_int_equal(gw_bedrock_url(k, &d, false, url, sizeof url), GW_OK);
    assert_non_null(strstr(url, "bedrock-runtime.us-west-2."));
    d.region = "ap-south-1"; /* the deployment's own first */
    assert_int_equal(gw_bedrock_url(k, &d, false, url, sizeof url), GW_OK);
    assert_non_null(strstr(url, "bedrock-runtime.ap-south-1."));
    d.region = "evil.example/x"; /* never a host name of another shape */
    assert_int_equal(gw_bedrock_url(k, &d, false, url, sizeof url), GW_E_PROVIDER_NOT_CONFIGURED);
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");
    d.region = "us-east-1";
    assert_int_equal(gw_bedrock_url(k, &d, false, url, 50), GW_E_CONFIG);
    d.model = NULL;
    assert_int_equal(gw_bedrock_url(k, &d, false, url, sizeof url), GW_E_PROVIDER_NOT_CONFIGURED);
}

static json_t *body_of(const gw_request *req, gw_err *err)
{
    gw_jbuf j = {0};
    gw_deployment d = {.model = "m"};
    gw_bedrock_dialect.write_body(&j, &d, req);
    *err = j.err;
    json_t *root = j.err == GW_OK ? json_loads(j.b, 0, NULL) : NULL;
    free(j.b);
    return root;
}

/* The value at a dotted path of objects ("a.b.c"), or NULL. */
static json_t *json_path_get(json_t *root, const char *path)
{
    char key[64];
    while (root != NULL && *path) {
        size_t n = strcspn(path, ".");
        snprintf(key, sizeof key, "%.*s", (int)n, path);
        root = json_object_get(root, key);
        path += n + (path[n] == '.');
    }
    return root;
}

static const char *jpath_str(json_t *root, const char *path)
{
    return json_string_value(json_path_get(root, path));
}

static void test_body(void **state)
{
    (void)state;
    static gw_tool_call calls[] = {{.id = "tu_1", .name = "lookup", .arguments = "{\"q\":\"x\"}"}};
    static gw_tool tools[] = {{.name = "lookup", .description = "find", .parameters = "{}"},
                              {.name = "other"}};
    static const char *stops[] = {"END"};
    gw_message msgs[] = {
        {.role = GW_ROLE_SYSTEM, .content = "be brief"},
        {.role = GW_ROLE_USER, .content = "first"},
        {.role = GW_ROLE_USER, .content = "second"},
        {.role = GW_ROLE_ASSISTANT, .content = "", .tool_calls = calls, .tool_call_count = 1},
        {.role = GW_ROLE_TOOL, .content = "result text", .tool_call_id = "tu_1"},
    };
    gw_request req = {.system_prompt = "sys",
                      .messages = msgs,
                      .message_count = 5,
                      .temperature = 1.5,
                      .max_tokens = 77,
                      .has_top_p = true,
                      .top_p = 0.5,
                      .stop = stops,
                      .stop_count = 1,
                      .tools = tools,
                      .tool_count = 2,
                      .tool_choice = "required"};
    gw_err err;
    json_t *b = body_of(&req, &err);
    assert_int_equal(err, GW_OK);
    assert_non_null(b);
    char *text = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS);
    /* system: the prompt and the system message as text blocks */
    assert_non_null(strstr(text, "\"system\":[{\"text\":\"sys\"},{\"text\":\"be brief\"}]"));
    /* the two user messages merged into one turn; then assistant; then user */
    json_t *m = json_object_get(b, "messages");
    assert_int_equal(json_array_size(m), 3);
    assert_non_null(strstr(text, "{\"content\":[{\"text\":\"first\"},{\"text\":\"second\"}],"
                                 "\"role\":\"user\"}"));
    assert_non_null(strstr(text, "{\"content\":[{\"toolUse\":{\"input\":{\"q\":\"x\"},\"name\":"
                                 "\"lookup\",\"toolUseId\":\"tu_1\"}}],\"role\":\"assistant\"}"));
    assert_non_null(strstr(text, "{\"content\":[{\"toolResult\":{\"content\":[{\"text\":\"result "
                                 "text\"}],\"toolUseId\":\"tu_1\"}}],\"role\":\"user\"}"));
    assert_non_null(strstr(text, "\"inferenceConfig\":{\"maxTokens\":77,\"stopSequences\":"
                                 "[\"END\"],\"temperature\":1.0,\"topP\":0.5}"));
    assert_non_null(strstr(text, "\"toolChoice\":{\"any\":{}}"));
    assert_non_null(strstr(text, "{\"toolSpec\":{\"description\":\"find\",\"inputSchema\":"
                                 "{\"json\":{}},\"name\":\"lookup\"}}"));
    assert_null(json_object_get(b, "modelId")); /* in the URL only */
    free(text);
    json_decref(b);
    /* a named choice; none keeps the tools (the history holds tool blocks) without a choice */
    req.tool_choice = "other";
    b = body_of(&req, &err);
    assert_string_equal(jpath_str(b, "toolConfig.toolChoice.tool.name"), "other");
    json_decref(b);
    req.tool_choice = "none";
    b = body_of(&req, &err);
    assert_non_null(json_path_get(b, "toolConfig.tools"));
    assert_null(json_path_get(b, "toolConfig.toolChoice"));
    json_decref(b);
    req.message_count = 3; /* no tool blocks: none sends no toolConfig */
    b = body_of(&req, &err);
    assert_null(json_object_get(b, "toolConfig"));
    json_decref(b);
    /* structured output: a forced json_response tool; with tools unsupported */
    gw_response_format rf = {.type = "json_schema", .schema = "{\"type\":\"object\"}"};
    req.response_format = &rf;
    b = body_of(&req, &err);
    assert_null(b);
    assert_int_equal(err, GW_E_PROVIDER_UNSUPPORTED);
    req.tool_count = 0;
    b = body_of(&req, &err);
    assert_string_equal(jpath_str(b, "toolConfig.toolChoice.tool.name"), "json_response");
    json_decref(b);
}

static void test_exception_map(void **state)
{
    (void)state;
    assert_int_equal(gw_bedrock_exception_err("throttlingException"), GW_E_PROVIDER_RATE_LIMITED);
    assert_int_equal(gw_bedrock_exception_err("serviceUnavailableException"),
                     GW_E_PROVIDER_UNAVAILABLE);
    assert_int_equal(gw_bedrock_exception_err("internalServerException"),
                     GW_E_PROVIDER_UNAVAILABLE);
    assert_int_equal(gw_bedrock_exception_err("validationException"), GW_E_PROVIDER_BAD_REQUEST);
    assert_int_equal(gw_bedrock_exception_err("modelStreamErrorException"), GW_E_STREAM_ERROR);
    assert_int_equal(gw_bedrock_exception_err("somethingNew"), GW_E_STREAM_ERROR);
}

typedef struct {
    bool done;
    gw_err err;
    char content[1024], deltas[1024], finish[32], detail[600];
    char tool_id[64], tool_name[64], tool_args[512], delta_args[512], delta_id[64];
    size_t calls;
    int32_t prompt_tokens, completion_tokens;
    int64_t retry_after_ms;
} outcome;

static void on_delta(void *ud, const char *text, size_t len)
{
    outcome *o = ud;
    strncat(o->deltas, text, len < sizeof o->deltas - strlen(o->deltas) - 1 ? len : 0);
}

static void on_tool_delta(void *ud, const gw_tool_call_delta *d)
{
    outcome *o = ud;
    if (d->id != NULL)
        snprintf(o->delta_id, sizeof o->delta_id, "%s", d->id);
    strncat(o->delta_args, d->arguments, sizeof o->delta_args - strlen(o->delta_args) - 1);
}

static void on_done(void *ud, const gw_provider_result *r)
{
    outcome *o = ud;
    o->done = true;
    o->err = r->err;
    snprintf(o->content, sizeof o->content, "%.*s", (int)r->content_len, r->content);
    snprintf(o->finish, sizeof o->finish, "%s", r->finish_reason ? r->finish_reason : "");
    snprintf(o->detail, sizeof o->detail, "%s", r->error_detail ? r->error_detail : "");
    o->calls = r->tool_call_count;
    if (r->tool_call_count > 0) {
        snprintf(o->tool_id, sizeof o->tool_id, "%s", r->tool_calls[0].id);
        snprintf(o->tool_name, sizeof o->tool_name, "%s", r->tool_calls[0].name);
        snprintf(o->tool_args, sizeof o->tool_args, "%s", r->tool_calls[0].arguments);
    }
    o->prompt_tokens = r->usage.prompt_tokens;
    o->completion_tokens = r->usage.completion_tokens;
    o->retry_after_ms = r->retry_after_ms;
}

/* Runs the calls of reqs (n of them, one after the other) on one providers
 * set, so later calls reuse the easy handle of earlier ones. */
static void run_seq(const gw_deployment *const *ds, const gw_request *const *reqs, size_t n,
                    outcome *os)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    gw_providers *ps;
    assert_int_equal(gw_providers_new(&loop, &ps), GW_OK);
    for (size_t i = 0; i < n; i++) {
        outcome *o = &os[i];
        memset(o, 0, sizeof *o);
        gw_provider_cbs cbs = {
            .on_delta = on_delta, .on_done = on_done, .on_tool_delta = on_tool_delta};
        gw_provider_call *call;
        assert_int_equal(gw_provider_call_start(ps, ds[i], reqs[i], &cbs, o, &call), GW_OK);
        while (!o->done)
            uv_run(&loop, UV_RUN_ONCE);
    }
    gw_providers_free(ps);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void run(const gw_deployment *d, const gw_request *req, outcome *o)
{
    run_seq(&d, &req, 1, o);
}

static gw_deployment bedrock_dep(void)
{
    return (gw_deployment){.id = "br",
                           .provider = GW_PROVIDER_BEDROCK,
                           .model = "anthropic.claude-3-haiku-20240307-v1:0",
                           .base_url = mock.base_url,
                           .region = "us-east-1",
                           .total_timeout_ms = 10000};
}

static void test_text(void **state)
{
    (void)state;
    static gw_message msgs[] = {{.role = GW_ROLE_USER, .content = "hello bedrock"}};
    gw_deployment d = bedrock_dep();
    outcome whole, streamed;
    gw_request req = {.request_id = "br-1",
                      .messages = msgs,
                      .message_count = 1,
                      .temperature = 0.2,
                      .max_tokens = 50};
    run(&d, &req, &whole);
    assert_int_equal(whole.err, GW_OK);
    assert_string_equal(whole.finish, "stop");
    assert_int_equal(whole.completion_tokens, 6); /* the mock's usage, not an estimate */
    assert_true(whole.prompt_tokens > 0);
    req.stream = true;
    run(&d, &req, &streamed);
    assert_int_equal(streamed.err, GW_OK);
    assert_string_equal(streamed.content, whole.content); /* same answer either way */
    assert_string_equal(streamed.deltas, streamed.content);
    assert_string_equal(streamed.finish, "stop");
    assert_int_equal(streamed.completion_tokens, 6); /* metadata after messageStop */
    assert_int_equal(streamed.prompt_tokens, whole.prompt_tokens);
    req.max_tokens = 2;
    for (int s = 0; s < 2; s++) {
        req.stream = s;
        run(&d, &req, &whole);
        assert_int_equal(whole.err, GW_OK);
        assert_string_equal(whole.finish, "length");
    }
}

static void test_tools(void **state)
{
    (void)state;
    static gw_tool tool = {.name = "get_weather",
                           .parameters = "{\"type\":\"object\",\"properties\":{\"city\":"
                                         "{\"type\":\"string\"}},\"required\":[\"city\"]}"};
    gw_message msgs[3] = {{.role = GW_ROLE_USER, .content = "weather in Paris?"}};
    gw_deployment d = bedrock_dep();
    gw_request req = {.request_id = "br-t",
                      .messages = msgs,
                      .message_count = 1,
                      .max_tokens = 50,
                      .tools = &tool,
                      .tool_count = 1};
    outcome whole, streamed, follow;
    run(&d, &req, &whole);
    assert_int_equal(whole.err, GW_OK);
    assert_string_equal(whole.finish, "tool_calls");
    assert_int_equal(whole.calls, 1);
    assert_string_equal(whole.tool_name, "get_weather");
    assert_non_null(strstr(whole.tool_args, "\"city\""));
    assert_true(strncmp(whole.tool_id, "tooluse_", 8) == 0);
    req.stream = true;
    run(&d, &req, &streamed);
    assert_int_equal(streamed.err, GW_OK);
    assert_string_equal(streamed.finish, "tool_calls");
    assert_string_equal(streamed.tool_id, whole.tool_id);
    assert_string_equal(streamed.delta_id, whole.tool_id);
    assert_string_equal(streamed.tool_args, whole.tool_args);
    assert_string_equal(streamed.delta_args, whole.tool_args); /* the pieces assemble */
    /* the follow-up with the result is answered in text */
    gw_tool_call call = {.id = whole.tool_id, .name = "get_weather", .arguments = whole.tool_args};
    msgs[1] = (gw_message){.role = GW_ROLE_ASSISTANT, .tool_calls = &call, .tool_call_count = 1};
    msgs[2] = (gw_message){.role = GW_ROLE_TOOL, .content = "18 C", .tool_call_id = whole.tool_id};
    req.message_count = 3;
    for (int s = 0; s < 2; s++) {
        req.stream = s;
        run(&d, &req, &follow);
        assert_int_equal(follow.err, GW_OK);
        assert_string_equal(follow.finish, "stop");
        assert_int_equal(follow.calls, 0);
        assert_true(strlen(follow.content) > 0);
    }
}

static void test_faults(void **state)
{
    (void)state;
    static gw_message msgs[] = {{.role = GW_ROLE_USER, .content = "hi"}};
    gw_deployment d = bedrock_dep();
    gw_request req = {.request_id = "br-f", .messages = msgs, .message_count = 1, .stream = true};
    outcome o;
    d.model = "fault-sse-error"; /* an exception message in the 200 stream */
    run(&d, &req, &o);
    assert_int_equal(o.err, GW_E_STREAM_ERROR);
    assert_non_null(strstr(o.detail, "model stream had an error"));
    assert_string_equal(o.content, "");
    d.model = "fault-throttle-event"; /* a throttlingException message mid-stream */
    run(&d, &req, &o);
    assert_int_equal(o.err, GW_E_PROVIDER_RATE_LIMITED);
    assert_non_null(strstr(o.detail, "Too many tokens"));
    assert_string_equal(o.content, "");
    d.model = "fault-noterm"; /* no messageStop */
    run(&d, &req, &o);
    assert_int_equal(o.err, GW_E_STREAM_ERROR);
    d.model = "fault-malformed"; /* garbage bytes: the prelude CRC fails */
    run(&d, &req, &o);
    assert_int_equal(o.err, GW_E_STREAM_ERROR);
    assert_non_null(strstr(o.detail, "CRC"));
    d.model = "fault-429ms:1500";
    for (int s = 0; s < 2; s++) {
        req.stream = s;
        run(&d, &req, &o);
        assert_int_equal(o.err, GW_E_PROVIDER_RATE_LIMITED);
        assert_int_equal(o.retry_after_ms, 1500);
    }
    d.model = "fault-status:503";
    run(&d, &req, &o);
    assert_int_equal(o.err, GW_E_PROVIDER_UNAVAILABLE);
    d.model = "fault-safety"; /* stopReason guardrail_intervened: a blocked answer */
    for (int s = 0; s < 2; s++) {
        req.stream = s;
        run(&d, &req, &o);
        assert_int_equal(o.err, GW_E_PROVIDER_CONTENT_BLOCKED);
        assert_string_equal(o.finish, "content_filter");
        assert_non_null(strstr(o.detail, "guardrail_intervened"));
    }
}

static void test_credentials(void **state)
{
    (void)state;
    static gw_message msgs[] = {{.role = GW_ROLE_USER, .content = "hi"}};
    gw_deployment d = bedrock_dep();
    gw_request req = {.request_id = "br-c", .messages = msgs, .message_count = 1};
    /* no credentials: nothing starts */
    unsetenv("AWS_SECRET_ACCESS_KEY");
    uv_loop_t loop;
    uv_loop_init(&loop);
    gw_providers *ps;
    assert_int_equal(gw_providers_new(&loop, &ps), GW_OK);
    gw_provider_cbs cbs = {.on_done = on_done};
    gw_provider_call *call;
    outcome o = {0};
    assert_int_equal(gw_provider_call_start(ps, &d, &req, &cbs, &o, &call),
                     GW_E_PROVIDER_NOT_CONFIGURED);
    gw_providers_free(ps);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    /* a Bedrock API key goes as a bearer token instead of a signature */
    d.api_key = "bedrock-api-key-123";
    run(&d, &req, &o);
    assert_int_equal(o.err, GW_OK);
    /* a secret other than the mock's: the signature does not match */
    setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret", 1);
    d.api_key = NULL;
    run(&d, &req, &o);
    assert_int_equal(o.err, GW_E_PROVIDER_AUTH);
    assert_non_null(strstr(o.detail, "signature we calculated does not match"));
    assert_null(strstr(o.detail, "not-the-secret"));
    setenv("AWS_SECRET_ACCESS_KEY", "bedrock-test-secret", 1);
    /* the session token is sent and signed */
    setenv("AWS_SESSION_TOKEN", "session-token-xyz", 1);
    d.api_key = NULL;
    run(&d, &req, &o);
    assert_int_equal(o.err, GW_OK);
    unsetenv("AWS_SESSION_TOKEN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url),           cmocka_unit_test(test_body),
        cmocka_unit_test(test_exception_map), cmocka_unit_test(test_text),
        cmocka_unit_test(test_tools),         cmocka_unit_test(test_faults),
        cmocka_unit_test(test_credentials),
    };
    return cmocka_run_group_tests(tests, start_mock, stop_mock);
}
