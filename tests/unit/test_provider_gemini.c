/*
 * The Gemini adapter (provider_gemini.c): the URL, the request body it
 * writes (read back with jansson), and answers, streamed and not: against
 * modelgw-mockllm (text, length, tool calls and their follow-up, structured
 * output, the key header) and against canned responses served by a small
 * in-test HTTP server (safety blocks of the answer and of the prompt, thought
 * parts, several function calls without ids, a malformed call, a stream
 * without its finish reason, RetryInfo delays, Gemini's 400s for a bad key
 * and too many tokens, an in-band error).
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
#include "provider/provider_gemini.h"
#include "test_support.h"

static gw_test_mock mock;

static int start_mock(void **state)
{
    (void)state;
    static const char *const args[] = {"--tokens", "6", NULL};
    return gw_test_mock_start(&mock, args);
}

static int stop_mock(void **state)
{
    (void)state;
    gw_test_mock_stop(&mock);
    return 0;
}

/* ---- URL ---- */

static void test_url(void **state)
{
    (void)state;
    const gw_provider_kind_info *k = gw_provider_info(GW_PROVIDER_GEMINI);
    assert_non_null(k);
    assert_ptr_equal(gw_provider_info_find("gemini"), k);
    assert_string_equal(k->auth.header, "x-goog-api-key");
    char url[256];
    gw_deployment d = {.base_url = "https://generativelanguage.example/",
                       .model = "gemini-2.0-flash"};
    assert_int_equal(gw_gemini_url(k, &d, false, url, sizeof url), GW_OK);
    assert_string_equal(
        url, "https://generativelanguage.example/v1beta/models/gemini-2.0-flash:generateContent");
    d.base_url = "https://generativelanguage.example/v1beta";
    d.model = "models/gemini-2.5-pro";
    assert_int_equal(gw_gemini_url(k, &d, true, url, sizeof url), GW_OK);
    assert_string_equal(url, "https://generativelanguage.example/v1beta/models/"
                             "gemini-2.5-pro:streamGenerateContent?alt=sse");
    d.model = "a b/c:d";
    assert_int_equal(gw_gemini_url(k, &d, false, url, sizeof url), GW_OK);
    assert_non_null(strstr(url, "/models/a%20b%2Fc%3Ad:generateContent"));
    assert_null(strstr(url, "key="));
    assert_int_equal(gw_gemini_url(k, &d, false, url, 40), GW_E_CONFIG);
    d.model = "models/";
    assert_int_equal(gw_gemini_url(k, &d, false, url, sizeof url), GW_E_PROVIDER_NOT_CONFIGURED);
    d.model = "m";
    d.base_url = NULL;
    assert_int_equal(gw_gemini_url(k, &d, false, url, sizeof url), GW_E_PROVIDER_NOT_CONFIGURED);
}

static void test_finish_and_retry_delay(void **state)
{
    (void)state;
    bool blocked;
    assert_string_equal(gw_gemini_finish("STOP", 4, &blocked), "stop");
    assert_false(blocked);
    assert_string_equal(gw_gemini_finish("MAX_TOKENS", 10, &blocked), "length");
    const char *const safety[] = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT",
                                  "SPII"};
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(gw_gemini_finish(safety[i], strlen(safety[i]), &blocked),
                            "content_filter");
        assert_true(blocked);
    }
    assert_string_equal(gw_gemini_finish("OTHER", 5, &blocked), "stop");
    assert_false(blocked);
    const char *b = "{\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\","
                    "\"retryDelay\": \"41s\"}]}";
    assert_int_equal(gw_gemini_retry_delay_ms(b, strlen(b)), 41000);
    b = "{\"retryDelay\":\"0.25s\"}";
    assert_int_equal(gw_gemini_retry_delay_ms(b, strlen(b)), 250);
    b = "{\"retryDelay\":\"12\"}"; /* no unit */
    assert_int_equal(gw_gemini_retry_delay_ms(b, strlen(b)), -1);
    b = "{\"retryDelay\":\"999999s\"}"; /* over a day */
    assert_int_equal(gw_gemini_retry_delay_ms(b, strlen(b)), -1);
    assert_int_equal(gw_gemini_retry_delay_ms("{}", 2), -1);
    b = "{\"retryDelay\":\"4"; /* cut */
    assert_int_equal(gw_gemini_retry_delay_ms(b, strlen(b)), -1);
}

/* ---- request body ---- */

static const char *body_model = "gemini-2.0-flash";

static json_t *body_of(const gw_request *req, gw_err *err)
{
    gw_jbuf j = {0};
    gw_deployment d = {.model = body_model};
    gw_gemini_dialect.write_body(&j, &d, req);
    *err = j.err;
    json_error_t je;
    json_t *root = j.err == GW_OK ? json_loadb(j.b, j.len, 0, &je) : NULL;
    if (j.err == GW_OK && root == NULL)
        fail_msg("not JSON: %s (%s)", je.text, j.b);
    free(j.b);
    return root;
}

/* A tiny "a.0.b" walker over objects and arrays. */
static json_t *jpath(json_t *root, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *v = root;
    for (char *save, *seg = strtok_r(buf, ".", &save); seg && v; seg = strtok_r(NULL, ".", &save))
        v = json_is_array(v) ? json_array_get(v, (size_t)atoi(seg)) : json_object_get(v, seg);
    return v;
}

/* The string at path; "<absent>" when there is none (a clean failure). */
static const char *jpath_str(json_t *root, const char *path)
{
    const char *v = json_string_value(jpath(root, path));
    return v != NULL ? v : "<absent>";
}

static gw_tool_call prior_calls[] = {
    {.id = "toolu_1", .name = "get_weather", .arguments = "{\"city\":\"Paris\"}"},
    {.id = "call_9", .name = "get_time", .arguments = ""},
};

static gw_message convo[] = {
    {.role = GW_ROLE_SYSTEM, .content = "Use metric units."},
    {.role = GW_ROLE_USER, .content = "Weather and time in \"Paris\"?\n"},
    {.role = GW_ROLE_ASSISTANT,
     .content = "Let me look.",
     .tool_calls = prior_calls,
     .tool_call_count = 2},
    {.role = GW_ROLE_TOOL, .content = "{\"temp_c\":21}", .tool_call_id = "toolu_1"},
    {.role = GW_ROLE_TOOL, .content = "14:05", .tool_call_id = "call_9"},
    {.role = GW_ROLE_ASSISTANT, .content = ""},
    {.role = GW_ROLE_USER, .content = "Thanks"},
};

static gw_tool tools[] = {
    {.name = "get_weather",
     .description = "Weather now",
     .parameters = "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}"},
    {.name = "get_time"},
};

static gw_request convo_req(void)
{
    static const char *stop[] = {"END", "STOP"};
    return (gw_request){.messages = convo,
                        .message_count = sizeof convo / sizeof convo[0],
                        .system_prompt = "Be brief.",
                        .temperature = 0.7,
                        .max_tokens = 256,
                        .tools = tools,
                        .tool_count = 2,
                        .stop = stop,
                        .stop_count = 2,
                        .has_top_p = true,
                        .top_p = 0.9,
                        .has_seed = true,
                        .seed = 42};
}

static void test_body_conversation(void **state)
{
    (void)state;
    gw_request req = convo_req();
    gw_err err;
    json_t *b = body_of(&req, &err);
    assert_int_equal(err, GW_OK);
    assert_null(json_object_get(b, "model")); /* the model is in the URL */
    assert_string_equal(jpath_str(b, "systemInstruction.parts.0.text"),
                        "Be brief.\n\nUse metric units.");
    json_t *c = json_object_get(b, "contents");
    /* the empty assistant message is left out; results and "Thanks" share a turn */
    assert_int_equal(json_array_size(c), 3);
    assert_string_equal(jpath_str(b, "contents.0.role"), "user");
    assert_string_equal(jpath_str(b, "contents.0.parts.0.text"),
                        "Weather and time in \"Paris\"?\n");
    assert_string_equal(jpath_str(b, "contents.1.role"), "model");
    assert_string_equal(jpath_str(b, "contents.1.parts.0.text"), "Let me look.");
    assert_string_equal(jpath_str(b, "contents.1.parts.1.functionCall.name"), "get_weather");
    assert_string_equal(jpath_str(b, "contents.1.parts.1.functionCall.args.city"), "Paris");
    assert_true(json_is_object(jpath(b, "contents.1.parts.2.functionCall.args")));
    /* both results in one user turn, named after their calls */
    assert_string_equal(jpath_str(b, "contents.2.role"), "user");
    assert_string_equal(jpath_str(b, "contents.2.parts.0.functionResponse.name"), "get_weather");
    assert_int_equal(
        json_integer_value(jpath(b, "contents.2.parts.0.functionResponse.response.temp_c")), 21);
    assert_string_equal(jpath_str(b, "contents.2.parts.1.functionResponse.name"), "get_time");
    assert_string_equal(jpath_str(b, "contents.2.parts.1.functionResponse.response.output"),
                        "14:05");
    assert_string_equal(jpath_str(b, "contents.2.parts.2.text"), "Thanks");
    assert_null(jpath(b, "contents.1.parts.1.thoughtSignature")); /* not a Gemini 3 model */
    assert_string_equal(jpath_str(b, "tools.0.functionDeclarations.0.name"), "get_weather");
    assert_string_equal(jpath_str(b, "tools.0.functionDeclarations.0.description"), "Weather now");
    assert_string_equal(
        jpath_str(b, "tools.0.functionDeclarations.0.parameters.properties.city.type"), "string");
    assert_null(jpath(b, "tools.0.functionDeclarations.1.parameters"));
    assert_null(json_object_get(b, "toolConfig")); /* tool_choice not given: Gemini's default */
    json_t *g = json_object_get(b, "generationConfig");
    assert_true(json_real_value(json_object_get(g, "temperature")) == 0.7);
    assert_int_equal(json_integer_value(json_object_get(g, "maxOutputTokens")), 256);
    assert_true(json_real_value(json_object_get(g, "topP")) == 0.9);
    assert_int_equal(json_integer_value(json_object_get(g, "seed")), 42);
    assert_string_equal(jpath_str(g, "stopSequences.1"), "STOP");
    assert_null(json_object_get(g, "responseMimeType"));
    json_decref(b);
}

/* Gemini 3 refuses replayed calls without a thought signature: the first
 * call of each model turn gets Google's placeholder. */
static void test_body_signature(void **state)
{
    (void)state;
    const char *const models[] = {"gemini-3-pro-preview", "models/gemini-3.1-flash", "gemini-3"};
    gw_request req = convo_req();
    gw_err err;
    for (size_t i = 0; i < 3; i++) {
        body_model = models[i];
        json_t *b = body_of(&req, &err);
        assert_int_equal(err, GW_OK);
        assert_string_equal(jpath_str(b, "contents.1.parts.1.thoughtSignature"),
                            GW_GEMINI_SKIP_SIGNATURE);
        assert_string_equal(jpath_str(b, "contents.1.parts.1.functionCall.name"), "get_weather");
        assert_null(jpath(b, "contents.1.parts.2.thoughtSignature")); /* only the first */
        assert_null(jpath(b, "contents.1.parts.0.thoughtSignature")); /* not on text */
        json_decref(b);
    }
    body_model = "gemini-30x"; /* not the family */
    json_t *b = body_of(&req, &err);
    assert_null(jpath(b, "contents.1.parts.1.thoughtSignature"));
    json_decref(b);
    body_model = "gemini-2.0-flash";
}

static void test_body_tool_choice_and_format(void **state)
{
    (void)state;
    gw_request req = convo_req();
    gw_err err;
    const char *modes[][2] = {
        {"auto", "AUTO"}, {"none", "NONE"}, {"required", "ANY"}, {"get_time", "ANY"}};
    for (size_t i = 0; i < 4; i++) {
        req.tool_choice = modes[i][0];
        json_t *b = body_of(&req, &err);
        assert_int_equal(err, GW_OK);
        assert_string_equal(jpath_str(b, "toolConfig.functionCallingConfig.mode"), modes[i][1]);
        json_t *names = jpath(b, "toolConfig.functionCallingConfig.allowedFunctionNames");
        if (i == 3)
            assert_string_equal(json_string_value(json_array_get(names, 0)), "get_time");
        else
            assert_null(names);
        json_decref(b);
    }
    gw_response_format schema = {.type = "json_schema",
                                 .name = "r",
                                 .schema = "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":"
                                           "\"integer\"}}}"};
    req.response_format = &schema;
    body_of(&req, &err);
    assert_int_equal(err, GW_E_PROVIDER_UNSUPPORTED); /* with tools */
    req.tools = NULL;
    req.tool_count = 0;
    req.tool_choice = NULL;
    json_t *b = body_of(&req, &err);
    assert_int_equal(err, GW_OK);
    assert_string_equal(jpath_str(b, "generationConfig.responseMimeType"), "application/json");
    assert_string_equal(jpath_str(b, "generationConfig.responseSchema.properties.a.type"),
                        "integer");
    json_decref(b);
    gw_response_format obj = {.type = "json_object"};
    req.response_format = &obj;
    b = body_of(&req, &err);
    assert_string_equal(jpath_str(b, "generationConfig.responseMimeType"), "application/json");
    assert_null(jpath(b, "generationConfig.responseSchema"));
    json_decref(b);
}

static void test_body_errors(void **state)
{
    (void)state;
    /* a result answering no known call and naming no function */
    gw_message m[] = {{.role = GW_ROLE_USER, .content = "x"},
                      {.role = GW_ROLE_TOOL, .content = "r", .tool_call_id = "nope"}};
    gw_request req = {.messages = m, .message_count = 2, .temperature = 1};
    gw_err err;
    body_of(&req, &err);
    assert_int_equal(err, GW_E_INVALID_REQUEST);
    m[1].name = "named_fn"; /* its own name is used then */
    json_t *b = body_of(&req, &err);
    assert_int_equal(err, GW_OK);
    /* the result shares the user turn of "x" */
    assert_string_equal(jpath_str(b, "contents.0.parts.1.functionResponse.name"), "named_fn");
    json_decref(b);
    gw_tool bad = {.name = "t", .parameters = "[1,2]"};
    req.tools = &bad;
    req.tool_count = 1;
    body_of(&req, &err);
    assert_int_equal(err, GW_E_INVALID_REQUEST);
    gw_message inv[] = {{.role = GW_ROLE_USER, .content = "bad \xC3\x28 utf8"}};
    gw_request r2 = {.messages = inv, .message_count = 1};
    body_of(&r2, &err);
    assert_int_equal(err, GW_E_INVALID_REQUEST);
}

/* ---- calls ---- */

typedef struct {
    bool done;
    gw_err err;
    int status;
    int64_t retry_after_ms;
    char content[2048], deltas[2048], finish[32], detail[600];
    gw_token_usage usage;
    size_t calls, tool_deltas;
    char call_id[4][32], call_name[4][32], call_args[4][256];
    char delta_args[256];
} outcome;

static void on_delta(void *ud, const char *text, size_t len)
{
    outcome *o = ud;
    strncat(o->deltas, text, len < sizeof o->deltas - strlen(o->deltas) - 1 ? len : 0);
}

static void on_tool_delta(void *ud, const gw_tool_call_delta *d)
{
    outcome *o = ud;
    o->tool_deltas++;
    if (d->index == 0)
        strncat(o->delta_args, d->arguments, sizeof o->delta_args - strlen(o->delta_args) - 1);
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
    snprintf(o->detail, sizeof o->detail, "%s", r->error_detail ? r->error_detail : "");
    o->usage = r->usage;
    o->calls = r->tool_call_count;
    for (size_t i = 0; i < r->tool_call_count && i < 4; i++) {
        snprintf(o->call_id[i], sizeof o->call_id[i], "%s", r->tool_calls[i].id);
        snprintf(o->call_name[i], sizeof o->call_name[i], "%s", r->tool_calls[i].name);
        snprintf(o->call_args[i], sizeof o->call_args[i], "%s", r->tool_calls[i].arguments);
    }
}

/* A canned HTTP server on the test's loop: every connection gets `reply`
 * (a whole HTTP response) once its request has arrived, then is closed. */
typedef struct {
    uv_tcp_t listener;
    int port;
    const char *reply;
    char seen[8192]; /* the last request, head and body */
    size_t seen_len;
} canned;

typedef struct {
    uv_tcp_t tcp;
    canned *srv;
    char buf[8192];
    size_t len;
    bool answered;
} canned_conn;

static void canned_closed(uv_handle_t *h)
{
    free(h->data);
}

static void canned_written(uv_write_t *w, int status)
{
    (void)status;
    canned_conn *cc = w->data;
    free(w);
    uv_close((uv_handle_t *)&cc->tcp, canned_closed);
}

static void canned_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    canned_conn *cc = h->data;
    *b = uv_buf_init(cc->buf + cc->len, (unsigned)(sizeof cc->buf - cc->len - 1));
}

/* The request is complete once its head and Content-Length bytes are in. */
static bool canned_complete(const canned_conn *cc)
{
    const char *end = strstr(cc->buf, "\r\n\r\n");
    const char *cl = strstr(cc->buf, "Content-Length: ");
    if (end == NULL)
        return false;
    size_t body = cl != NULL ? (size_t)atol(cl + 16) : 0;
    return cc->len >= (size_t)(end + 4 - cc->buf) + body;
}

static void canned_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    canned_conn *cc = s->data;
    if (n < 0) {
        if (!uv_is_closing((uv_handle_t *)s))
            uv_close((uv_handle_t *)s, canned_closed);
        return;
    }
    cc->len += (size_t)n;
    cc->buf[cc->len] = '\0';
    if (cc->answered || !canned_complete(cc))
        return;
    cc->answered = true;
    memcpy(cc->srv->seen, cc->buf, cc->len + 1);
    cc->srv->seen_len = cc->len;
    uv_write_t *w = malloc(sizeof *w);
    w->data = cc;
    uv_buf_t out = uv_buf_init((char *)cc->srv->reply, (unsigned)strlen(cc->srv->reply));
    uv_read_stop(s);
    uv_write(w, s, &out, 1, canned_written);
}

static void canned_accept(uv_stream_t *l, int status)
{
    assert_int_equal(status, 0);
    canned_conn *cc = calloc(1, sizeof *cc);
    cc->srv = l->data;
    uv_tcp_init(l->loop, &cc->tcp);
    cc->tcp.data = cc;
    assert_int_equal(uv_accept(l, (uv_stream_t *)&cc->tcp), 0);
    uv_read_start((uv_stream_t *)&cc->tcp, canned_alloc, canned_read);
}

static void canned_start(uv_loop_t *loop, canned *s)
{
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    assert_int_equal(uv_tcp_bind(&s->listener, (const struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&s->listener, 16, canned_accept), 0);
    struct sockaddr_storage got;
    int len = sizeof got;
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&got, &len);
    s->port = ntohs(((struct sockaddr_in *)&got)->sin_port);
}

static char reply_buf[16384];

/* A whole HTTP response with body (SSE when stream). */
static const char *http_reply(int status, bool stream, const char *extra, const char *body)
{
    snprintf(reply_buf, sizeof reply_buf,
             "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n%s"
             "\r\n%s",
             status, stream ? "text/event-stream" : "application/json", strlen(body),
             extra ? extra : "", body);
    return reply_buf;
}

/* Runs one call of req against base_url (the mock, or the canned server
 * answering reply when reply is given). */
static void run_at(const char *base_url, const char *reply, const gw_request *req, outcome *o,
                   canned *seen)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    canned srv = {0};
    char url[64];
    if (reply != NULL) {
        srv.reply = reply;
        canned_start(&loop, &srv);
        snprintf(url, sizeof url, "http://127.0.0.1:%d", srv.port);
        base_url = url;
    }
    gw_deployment d = {.id = "gem",
                       .provider = GW_PROVIDER_GEMINI,
                       .model = "gemini-test",
                       .base_url = base_url,
                       .api_key = "AIza-test-secret-key-0123",
                       .total_timeout_ms = 10000};
    gw_providers *ps;
    assert_int_equal(gw_providers_new(&loop, &ps), GW_OK);
    memset(o, 0, sizeof *o);
    gw_provider_cbs cbs = {
        .on_delta = on_delta, .on_done = on_done, .on_tool_delta = on_tool_delta};
    gw_provider_call *call;
    assert_int_equal(gw_provider_call_start(ps, &d, req, &cbs, o, &call), GW_OK);
    while (!o->done)
        uv_run(&loop, UV_RUN_ONCE);
    gw_providers_free(ps);
    if (reply != NULL) {
        if (seen != NULL)
            *seen = srv;
        uv_close((uv_handle_t *)&srv.listener, NULL);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_null(strstr(o->detail, "AIza-test-secret"));
}

static gw_message hello[] = {{.role = GW_ROLE_USER, .content = "hello gemini"}};

static gw_request simple_req(bool stream)
{
    return (gw_request){.request_id = "gem-1",
                        .messages = hello,
                        .message_count = 1,
                        .temperature = 0.2,
                        .max_tokens = 50,
                        .stream = stream};
}

static void test_mock_text_and_tools(void **state)
{
    (void)state;
    static gw_tool tool = {.name = "lookup",
                           .parameters = "{\"type\":\"object\",\"properties\":{\"q\":{\"type\":"
                                         "\"string\"}}}"};
    outcome full, o;
    gw_request req = simple_req(false);
    run_at(mock.base_url, NULL, &req, &full, NULL);
    assert_int_equal(full.err, GW_OK);
    assert_string_equal(full.finish, "stop");
    assert_int_equal(full.usage.completion_tokens, 6);
    assert_true(full.usage.prompt_tokens > 0);
    req.stream = true;
    run_at(mock.base_url, NULL, &req, &o, NULL);
    assert_int_equal(o.err, GW_OK);
    assert_string_equal(o.content, full.content);
    assert_string_equal(o.deltas, full.content);
    assert_int_equal(o.usage.prompt_tokens, full.usage.prompt_tokens);
    req.max_tokens = 2;
    run_at(mock.base_url, NULL, &req, &o, NULL);
    assert_string_equal(o.finish, "length");
    req.max_tokens = 50;
    req.tools = &tool;
    req.tool_count = 1;
    for (int stream = 0; stream < 2; stream++) {
        req.stream = stream;
        run_at(mock.base_url, NULL, &req, &o, NULL);
        assert_int_equal(o.err, GW_OK);
        assert_string_equal(o.finish, "tool_calls");
        assert_int_equal(o.calls, 1);
        assert_string_equal(o.call_id[0], "call_0"); /* Gemini gives no id */
        assert_string_equal(o.call_name[0], "lookup");
        assert_non_null(strstr(o.call_args[0], "\"q\":"));
        if (stream) {
            assert_int_equal(o.tool_deltas, 1); /* a Gemini call comes whole */
            assert_string_equal(o.delta_args, o.call_args[0]);
        }
    }
}

static void test_mock_follow_up_and_format(void **state)
{
    (void)state;
    static gw_tool tool = {.name = "lookup", .parameters = "{\"type\":\"object\"}"};
    static gw_tool_call call = {.id = "call_0", .name = "lookup", .arguments = "{\"q\":\"x\"}"};
    static gw_message m[] = {
        {.role = GW_ROLE_USER, .content = "hello gemini"},
        {.role = GW_ROLE_ASSISTANT, .tool_calls = &call, .tool_call_count = 1},
        {.role = GW_ROLE_TOOL, .content = "42", .tool_call_id = "call_0"},
    };
    gw_request req = simple_req(true);
    req.messages = m;
    req.message_count = 3;
    req.tools = &tool;
    req.tool_count = 1;
    outcome o;
    run_at(mock.base_url, NULL, &req, &o, NULL);
    assert_int_equal(o.err, GW_OK);
    assert_string_equal(o.finish, "stop");
    assert_int_equal(o.calls, 0);
    assert_true(strlen(o.content) > 0);
    gw_response_format f = {.type = "json_schema",
                            .schema = "{\"type\":\"object\",\"properties\":{\"n\":{\"type\":"
                                      "\"integer\"}},\"required\":[\"n\"]}"};
    req = simple_req(false);
    req.response_format = &f;
    run_at(mock.base_url, NULL, &req, &o, NULL);
    assert_int_equal(o.err, GW_OK);
    json_error_t je;
    json_t *v = json_loads(o.content, 0, &je);
    assert_true(json_is_integer(json_object_get(v, "n")));
    json_decref(v);
}

/* The mock's safety fault: blocked whole, and half-way through a stream. */
static void test_mock_safety(void **state)
{
    (void)state;
    static gw_message m[] = {{.role = GW_ROLE_USER, .content = "[mock-fault:safety] tell me"}};
    for (int stream = 0; stream < 2; stream++) {
        gw_request req = simple_req(stream);
        req.messages = m;
        outcome o;
        run_at(mock.base_url, NULL, &req, &o, NULL);
        assert_int_equal(o.err, GW_E_PROVIDER_CONTENT_BLOCKED);
        assert_int_equal(o.status, 200);
        assert_string_equal(o.finish, "content_filter");
        assert_string_equal(o.content, "");
        assert_non_null(strstr(o.detail, "SAFETY"));
        assert_int_equal(strlen(o.deltas) > 0, stream); /* 3 of 6 words came first */
    }
}

static void test_mock_key_required(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    gw_deployment d = {.id = "gem",
                       .provider = GW_PROVIDER_GEMINI,
                       .model = "gemini-test",
                       .base_url = mock.base_url,
                       .total_timeout_ms = 10000}; /* no key */
    gw_providers *ps;
    assert_int_equal(gw_providers_new(&loop, &ps), GW_OK);
    outcome o = {0};
    gw_request req = simple_req(false);
    gw_provider_cbs cbs = {.on_done = on_done};
    gw_provider_call *call;
    assert_int_equal(gw_provider_call_start(ps, &d, &req, &cbs, &o, &call), GW_OK);
    while (!o.done)
        uv_run(&loop, UV_RUN_ONCE);
    gw_providers_free(ps);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(o.status, 403);
    assert_int_equal(o.err, GW_E_PROVIDER_AUTH);
}

/* ---- canned answers ---- */

static void test_canned_request_on_the_wire(void **state)
{
    (void)state;
    outcome o;
    canned seen;
    gw_request req = simple_req(true);
    const char *body = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}],"
                       "\"role\":\"model\"},\"finishReason\":\"STOP\"}]}\r\n\r\n";
    run_at(NULL, http_reply(200, true, NULL, body), &req, &o, &seen);
    assert_int_equal(o.err, GW_OK);
    assert_string_equal(o.content, "Hi");
    assert_non_null(
        strstr(seen.seen, "POST /v1beta/models/gemini-test:streamGenerateContent?alt=sse "));
    assert_non_null(strstr(seen.seen, "x-goog-api-key: AIza-test-secret-key-0123\r\n"));
    assert_null(strstr(seen.seen, "key=")); /* never in the URL */
    assert_null(strstr(seen.seen, "Authorization"));
}

static void test_canned_safety(void **state)
{
    (void)state;
    outcome o;
    for (int stream = 0; stream < 2; stream++) {
        gw_request req = simple_req(stream);
        const char *candidate = "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"partial "
                                "\"}],\"role\":\"model\"},\"finishReason\":\"SAFETY\","
                                "\"safetyRatings\":[{\"category\":\"HARM_CATEGORY_HARASSMENT\","
                                "\"probability\":\"HIGH\",\"blocked\":true}]}]}";
        char body[1024];
        snprintf(body, sizeof body, stream ? "data: %s\n\n" : "%s", candidate);
        run_at(NULL, http_reply(200, stream, NULL, body), &req, &o, NULL);
        assert_int_equal(o.err, GW_E_PROVIDER_CONTENT_BLOCKED);
        assert_string_equal(o.finish, "content_filter");
        assert_string_equal(o.content, "");
        assert_non_null(strstr(o.detail, "SAFETY"));
        if (stream)
            assert_string_equal(o.deltas, "partial "); /* what came before the block */
        /* the prompt itself blocked: no candidates at all */
        const char *prompt = "{\"promptFeedback\":{\"blockReason\":\"PROHIBITED_CONTENT\"},"
                             "\"usageMetadata\":{\"promptTokenCount\":7,\"totalTokenCount\":7}}";
        snprintf(body, sizeof body, stream ? "data: %s\n\n" : "%s", prompt);
        run_at(NULL, http_reply(200, stream, NULL, body), &req, &o, NULL);
        assert_int_equal(o.err, GW_E_PROVIDER_CONTENT_BLOCKED);
        assert_string_equal(o.finish, "content_filter");
        assert_non_null(strstr(o.detail, "PROHIBITED_CONTENT"));
    }
    assert_string_equal(gw_err_code(GW_E_PROVIDER_CONTENT_BLOCKED), "E4214");
    assert_false(gw_err_retryable(GW_E_PROVIDER_CONTENT_BLOCKED));
    assert_int_equal(gw_err_domain(GW_E_PROVIDER_CONTENT_BLOCKED), GW_DOMAIN_CALLER);
}

static void test_canned_parts(void **state)
{
    (void)state;
    outcome o;
    /* a thought part (skipped), text, two calls without ids; thoughts billed as output */
    const char *full =
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"thinking...\",\"thought\":true},"
        "{\"text\":\"Checking.\"},{\"functionCall\":{\"name\":\"get_weather\",\"args\":{\"city\":"
        "\"Paris\"}}},{\"functionCall\":{\"name\":\"get_time\"}}],\"role\":\"model\"},"
        "\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":12,"
        "\"candidatesTokenCount\":9,\"thoughtsTokenCount\":30,\"totalTokenCount\":51}}";
    gw_request req = simple_req(false);
    run_at(NULL, http_reply(200, false, NULL, full), &req, &o, NULL);
    assert_int_equal(o.err, GW_OK);
    assert_string_equal(o.content, "Checking.");
    assert_string_equal(o.finish, "tool_calls");
    assert_int_equal(o.calls, 2);
    assert_string_equal(o.call_id[0], "call_0");
    assert_string_equal(o.call_id[1], "call_1");
    assert_string_equal(o.call_args[0], "{\"city\":\"Paris\"}");
    assert_string_equal(o.call_args[1], "{}");
    assert_int_equal(o.usage.prompt_tokens, 12);
    assert_int_equal(o.usage.completion_tokens, 39);
    /* streamed: text chunks (escapes, the fast path), a chunk of two calls, one with an id */
    const char *sse =
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Line\\n\\\"q\\\"\"}],"
        "\"role\":\"model\"},\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":5}}\r\n\r\n"
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"id\":\"fc-1\","
        "\"name\":\"a\",\"args\":{\"x\":1}}},{\"functionCall\":{\"name\":\"b\",\"args\":{}}}],"
        "\"role\":\"model\"},\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":5,"
        "\"candidatesTokenCount\":8}}\r\n\r\n";
    req.stream = true;
    run_at(NULL, http_reply(200, true, NULL, sse), &req, &o, NULL);
    assert_int_equal(o.err, GW_OK);
    assert_string_equal(o.deltas, "Line\n\"q\"");
    assert_int_equal(o.calls, 2);
    assert_string_equal(o.call_id[0], "fc-1");
    assert_string_equal(o.call_id[1], "call_1");
    assert_int_equal(o.tool_deltas, 2);
    assert_string_equal(o.delta_args, "{\"x\":1}");
    assert_int_equal(o.usage.completion_tokens, 8);
    assert_string_equal(o.finish, "tool_calls");
    /* absurd counts are bounded, on the fast path and the tree path alike */
    const char *huge[] = {
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]},\"finishReason\":"
        "\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":999999999999,"
        "\"candidatesTokenCount\":9000000000000000,\"thoughtsTokenCount\":9000000000000000}}",
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"},{\"text\":\"y\"}]},"
        "\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":999999999999,"
        "\"candidatesTokenCount\":9000000000000000,\"thoughtsTokenCount\":-4}}",
    };
    req.stream = false;
    for (size_t i = 0; i < 2; i++) {
        run_at(NULL, http_reply(200, false, NULL, huge[i]), &req, &o, NULL);
        assert_int_equal(o.err, GW_OK);
        assert_int_equal(o.usage.prompt_tokens, (1 << 30) - 1);
        assert_int_equal(o.usage.completion_tokens, (1 << 30) - 1);
        assert_int_equal(o.usage.total_tokens, INT32_MAX - 1);
    }
}

static void test_canned_broken(void **state)
{
    (void)state;
    outcome o;
    gw_request req = simple_req(true);
    /* no finishReason before the end: a truncated stream */
    const char *sse = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}]}}]}\n\n";
    run_at(NULL, http_reply(200, true, NULL, sse), &req, &o, NULL);
    assert_int_equal(o.err, GW_E_STREAM_ERROR);
    /* an error event mid-stream */
    sse = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}]}}]}\n\n"
          "data: {\"error\":{\"code\":500,\"message\":\"internal\",\"status\":\"INTERNAL\"}}\n\n";
    run_at(NULL, http_reply(200, true, NULL, sse), &req, &o, NULL);
    assert_int_equal(o.err, GW_E_STREAM_ERROR);
    assert_non_null(strstr(o.detail, "INTERNAL"));
    /* a malformed function call */
    const char *full = "{\"candidates\":[{\"finishReason\":\"MALFORMED_FUNCTION_CALL\"}]}";
    req.stream = false;
    run_at(NULL, http_reply(200, false, NULL, full), &req, &o, NULL);
    assert_int_equal(o.err, GW_E_PROVIDER_BAD_RESPONSE);
    /* no candidates and no block */
    run_at(NULL, http_reply(200, false, NULL, "{\"usageMetadata\":{}}"), &req, &o, NULL);
    assert_int_equal(o.err, GW_E_PROVIDER_BAD_RESPONSE);
}

static void test_canned_http_errors(void **state)
{
    (void)state;
    outcome o;
    gw_request req = simple_req(false);
    const char *quota = "{\"error\":{\"code\":429,\"message\":\"Resource has been exhausted\","
                        "\"status\":\"RESOURCE_EXHAUSTED\",\"details\":[{\"@type\":"
                        "\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":\"7s\"}]}}";
    run_at(NULL, http_reply(429, false, NULL, quota), &req, &o, NULL);
    assert_int_equal(o.err, GW_E_PROVIDER_RATE_LIMITED);
    assert_int_equal(o.retry_after_ms, 7000);
    run_at(NULL, http_reply(429, false, "Retry-After: 2\r\n", quota), &req, &o, NULL);
    assert_int_equal(o.retry_after_ms, 2000); /* the header wins */
    const char *key = "{\"error\":{\"code\":400,\"message\":\"API key not valid. Please pass a "
                      "valid API key.\",\"status\":\"INVALID_ARGUMENT\",\"details\":[{\"reason\":"
                      "\"API_KEY_INVALID\"}]}}";
    run_at(NULL, http_reply(400, false, NULL, key), &req, &o, NULL);
    assert_int_equal(o.err, GW_E_PROVIDER_AUTH);
    const char *big = "{\"error\":{\"code\":400,\"message\":\"The input token count (2000000) "
                      "exceeds the maximum number of tokens allowed (1048576).\",\"status\":"
                      "\"INVALID_ARGUMENT\"}}";
    run_at(NULL, http_reply(400, false, NULL, big), &req, &o, NULL);
    assert_int_equal(o.err, GW_E_PROVIDER_CONTEXT_LENGTH);
    const char *bad = "{\"error\":{\"code\":400,\"message\":\"Invalid JSON payload\","
                      "\"status\":\"INVALID_ARGUMENT\"}}";
    run_at(NULL, http_reply(400, false, NULL, bad), &req, &o, NULL);
    assert_int_equal(o.err, GW_E_PROVIDER_BAD_REQUEST);
    run_at(NULL, http_reply(404, false, NULL, "{\"error\":{\"code\":404}}"), &req, &o, NULL);
    assert_int_equal(o.err, GW_E_PROVIDER_ERROR);
    run_at(NULL, http_reply(503, false, NULL, "{\"error\":{\"code\":503}}"), &req, &o, NULL);
    assert_int_equal(o.err, GW_E_PROVIDER_UNAVAILABLE);
    assert_int_equal(o.retry_after_ms, -1);
    run_at(NULL, http_reply(200, false, NULL, "{\"error\":{\"code\":500,\"message\":\"x\"}}"), &req,
           &o, NULL);
    assert_int_equal(o.err, GW_E_PROVIDER_ERROR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url),
        cmocka_unit_test(test_finish_and_retry_delay),
        cmocka_unit_test(test_body_conversation),
        cmocka_unit_test(test_body_signature),
        cmocka_unit_test(test_body_tool_choice_and_format),
        cmocka_unit_test(test_body_errors),
        cmocka_unit_test(test_mock_text_and_tools),
        cmocka_unit_test(test_mock_follow_up_and_format),
        cmocka_unit_test(test_mock_safety),
        cmocka_unit_test(test_mock_key_required),
        cmocka_unit_test(test_canned_request_on_the_wire),
        cmocka_unit_test(test_canned_safety),
        cmocka_unit_test(test_canned_parts),
        cmocka_unit_test(test_canned_broken),
        cmocka_unit_test(test_canned_http_errors),
    };
    return cmocka_run_group_tests(tests, start_mock, stop_mock);
}
