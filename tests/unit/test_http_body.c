/* Unit tests for the request bodies the HTTP dialects write without a JSON
 * tree (gw_jbuf in provider_http.c): each body must be valid JSON equal to
 * the tree the dialect used to build with jansson (kept here as the
 * reference), on requests with escapes, control characters, UTF-8, names,
 * tool and system messages; invalid UTF-8 is GW_E_INVALID_REQUEST. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "provider/provider_anthropic.h"
#include "provider/provider_ollama.h"
#include "provider/provider_openai.h"

static const char *const ROLES[] = {"system", "user", "assistant", "tool"};

/* ---- the jansson reference ---- */

static json_t *ref_messages(const gw_request *req, bool include_system, bool anthropic)
{
    json_t *arr = json_array();
    if (include_system && req->system_prompt != NULL)
        json_array_append_new(
            arr, json_pack("{s:s,s:s}", "role", "system", "content", req->system_prompt));
    for (size_t i = 0; i < req->message_count; i++) {
        const gw_message *m = &req->messages[i];
        if (!include_system && m->role == GW_ROLE_SYSTEM)
            continue;
        const char *role = ROLES[m->role];
        if (anthropic && m->role == GW_ROLE_TOOL)
            role = "user";
        json_t *o = json_pack("{s:s,s:s}", "role", role, "content", m->content ? m->content : "");
        if (!anthropic && m->name != NULL)
            json_object_set_new(o, "name", json_string(m->name));
        json_array_append_new(arr, o);
    }
    return arr;
}

static json_t *ref_openai(const gw_deployment *d, const gw_request *req)
{
    json_t *root = json_pack("{s:s,s:o,s:f}", "model", d->model ? d->model : "", "messages",
                             ref_messages(req, true, false), "temperature", req->temperature);
    if (req->max_tokens > 0)
        json_object_set_new(root, "max_tokens", json_integer(req->max_tokens));
    if (req->stream) {
        json_object_set_new(root, "stream", json_true());
        json_object_set_new(root, "stream_options", json_pack("{s:b}", "include_usage", 1));
    }
    return root;
}

static json_t *ref_ollama(const gw_deployment *d, const gw_request *req)
{
    json_t *opts = json_pack("{s:f}", "temperature", req->temperature);
    if (req->max_tokens > 0)
        json_object_set_new(opts, "num_predict", json_integer(req->max_tokens));
    return json_pack("{s:s,s:o,s:b,s:o}", "model", d->model ? d->model : "", "messages",
                     ref_messages(req, true, false), "stream", req->stream, "options", opts);
}

static json_t *ref_anthropic(const gw_deployment *d, const gw_request *req)
{
    json_t *root = json_pack("{s:s,s:i,s:o,s:f}", "model", d->model ? d->model : "", "max_tokens",
                             req->max_tokens > 0 ? req->max_tokens : 1024, "messages",
                             ref_messages(req, false, true), "temperature",
                             req->temperature > 1 ? 1 : req->temperature);
    char sys[1024] = "";
    bool any = req->system_prompt != NULL && req->system_prompt[0] != '\0';
    if (req->system_prompt)
        strcat(sys, req->system_prompt);
    for (size_t i = 0; i < req->message_count; i++) {
        if (req->messages[i].role != GW_ROLE_SYSTEM || !req->messages[i].content)
            continue;
        any = true;
        if (sys[0])
            strcat(sys, "\n\n");
        strcat(sys, req->messages[i].content);
    }
    if (any)
        json_object_set_new(root, "system", json_string(sys));
    if (req->stream)
        json_object_set_new(root, "stream", json_true());
    return root;
}

/* ---- the check ---- */

static void check(const gw_phttp_dialect *dia,
                  json_t *(*ref)(const gw_deployment *, const gw_request *), const gw_deployment *d,
                  const gw_request *req)
{
    gw_jbuf j = {0};
    dia->write_body(&j, d, req);
    assert_int_equal(j.err, GW_OK);
    assert_int_equal(strlen(j.b), j.len);
    json_error_t je;
    json_t *got = json_loadb(j.b, j.len, 0, &je);
    if (got == NULL)
        fail_msg("%s body is not JSON (%s): %s", dia->name, je.text, j.b);
    json_t *want = ref(d, req);
    assert_non_null(want);
    if (!json_equal(got, want)) {
        char *w = json_dumps(want, JSON_COMPACT);
        fail_msg("%s body differs:\n got %s\nwant %s", dia->name, j.b, w);
    }
    json_decref(got);
    json_decref(want);
    free(j.b);
}

static void check_all(const gw_deployment *d, const gw_request *req)
{
    check(&gw_openai_dialect, ref_openai, d, req);
    check(&gw_ollama_dialect, ref_ollama, d, req);
    check(&gw_anthropic_dialect, ref_anthropic, d, req);
}

static const char *const TEXTS[] = {
    "",
    "plain",
    "quote \" backslash \\ slash / done",
    "ctl \b\f\n\r\t \x01\x1f\x7f end",
    "caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80 \xef\xbf\xbf \xf4\x8f\xbf\xbf",
    "\\u0000 is text here",
};

static void test_bodies_match_jansson(void **state)
{
    (void)state;
    static const double temps[] = {0, 0.7, 1, 1.5, 2, 1e-7, 0.1};
    gw_message msgs[5];
    for (size_t t = 0; t < sizeof TEXTS / sizeof TEXTS[0]; t++) {
        for (size_t k = 0; k < 4; k++) {
            gw_deployment d = {0};
            d.model = k == 3 ? NULL : TEXTS[(t + k) % 6];
            msgs[0] =
                (gw_message){.role = GW_ROLE_SYSTEM, .content = TEXTS[(t + 1) % 6], .name = NULL};
            msgs[1] = (gw_message){
                .role = GW_ROLE_USER, .content = TEXTS[t], .name = k == 1 ? "alice \"a\"" : NULL};
            msgs[2] = (gw_message){.role = GW_ROLE_ASSISTANT,
                                   .content = k == 2 ? NULL : TEXTS[(t + 2) % 6],
                                   .name = NULL};
            msgs[3] =
                (gw_message){.role = GW_ROLE_TOOL, .content = TEXTS[(t + 3) % 6], .name = "tool1"};
            msgs[4] =
                (gw_message){.role = GW_ROLE_SYSTEM, .content = TEXTS[(t + 4) % 6], .name = NULL};
            gw_request req = {0};
            req.messages = msgs;
            req.message_count = k == 0 ? 2 : 5;
            req.system_prompt = k == 2 ? NULL : TEXTS[(t + 5) % 6];
            req.temperature = temps[(t + k) % 7];
            req.max_tokens = k == 1 ? 0 : (int32_t)(t * 100 + k);
            req.stream = k % 2 == 1;
            check_all(&d, &req);
        }
    }
}

static void test_real_format(void **state)
{
    (void)state;
    static const double vals[] = {0, 0.5, 0.7, 1, 2, 1e-7, 123456789.0, 1e300, -2.5e-20};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        gw_jbuf j = {0};
        gw_jbuf_real(&j, vals[i]);
        json_t *r = json_real(vals[i]);
        char *want = json_dumps(r, JSON_ENCODE_ANY);
        assert_string_equal(j.b, want);
        free(want);
        json_decref(r);
        free(j.b);
    }
}

static void test_invalid_utf8_is_named_error(void **state)
{
    (void)state;
    static const char *const bad[] = {"\xc0\xaf", "a\xed\xa0\x80", "\xf5\x80\x80\x80", "\xe4\xb8",
                                      "\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gw_message m = {.role = GW_ROLE_USER, .content = bad[i], .name = NULL};
        gw_request req = {.messages = &m, .message_count = 1, .temperature = 0.5};
        gw_deployment d = {.model = "m"};
        gw_jbuf j = {0};
        gw_openai_dialect.write_body(&j, &d, &req);
        assert_int_equal(j.err, GW_E_INVALID_REQUEST);
        free(j.b);
    }
}

/* The OpenAI body for d, parsed; NULL (and *err set) when not written. */
static json_t *openai_body(const gw_deployment *d, const gw_request *req, gw_err *err)
{
    gw_jbuf j = {0};
    gw_openai_dialect.write_body(&j, d, req);
    *err = j.err;
    json_t *root = j.err == GW_OK ? json_loadb(j.b, j.len, 0, NULL) : NULL;
    free(j.b);
    return root;
}

/* Each quirk bit changes the body the OpenAI dialect writes, and only that. */
static void test_openai_quirks(void **state)
{
    (void)state;
    static gw_tool tool = {.name = "get_weather", .parameters = "{\"type\":\"object\"}"};
    gw_message m = {.role = GW_ROLE_USER, .content = "hi"};
    gw_request req = {.messages = &m,
                      .message_count = 1,
                      .temperature = 0.5,
                      .max_tokens = 64,
                      .stream = true,
                      .tools = &tool,
                      .tool_count = 1,
                      .tool_choice = "required",
                      .has_seed = true,
                      .seed = 42};
    gw_deployment d = {.model = "m"};
    gw_err err;
    json_t *plain = openai_body(&d, &req, &err);
    assert_non_null(plain);
    assert_non_null(json_object_get(plain, "stream_options"));
    assert_int_equal(json_integer_value(json_object_get(plain, "seed")), 42);
    assert_int_equal(json_integer_value(json_object_get(plain, "max_tokens")), 64);
    assert_string_equal(json_string_value(json_object_get(plain, "tool_choice")), "required");

    d.openai_quirks = GW_QUIRK_NO_STREAM_OPTIONS | GW_QUIRK_RANDOM_SEED | GW_QUIRK_REQUIRED_AS_ANY;
    json_t *mistral = openai_body(&d, &req, &err);
    assert_non_null(mistral);
    assert_null(json_object_get(mistral, "stream_options"));
    assert_true(json_is_true(json_object_get(mistral, "stream")));
    assert_null(json_object_get(mistral, "seed"));
    assert_int_equal(json_integer_value(json_object_get(mistral, "random_seed")), 42);
    assert_string_equal(json_string_value(json_object_get(mistral, "tool_choice")), "any");
    /* Everything else is as without quirks. */
    json_object_del(mistral, "random_seed");
    json_object_set_new(mistral, "seed", json_integer(42));
    json_object_set_new(mistral, "tool_choice", json_string("required"));
    json_object_set_new(mistral, "stream_options", json_object_get(plain, "stream_options"));
    json_incref(json_object_get(plain, "stream_options"));
    assert_true(json_equal(mistral, plain));
    json_decref(mistral);

    d.openai_quirks = GW_QUIRK_MAX_COMPLETION_TOKENS;
    json_t *o = openai_body(&d, &req, &err);
    assert_null(json_object_get(o, "max_tokens"));
    assert_int_equal(json_integer_value(json_object_get(o, "max_completion_tokens")), 64);
    json_decref(o);

    /* Formats a server does not take: PROVIDER_UNSUPPORTED (fail over). */
    gw_response_format object = {.type = "json_object"};
    gw_response_format schema = {.type = "json_schema", .schema = "{\"type\":\"object\"}"};
    req.response_format = &schema;
    d.openai_quirks = GW_QUIRK_NO_JSON_SCHEMA;
    assert_null(openai_body(&d, &req, &err));
    assert_int_equal(err, GW_E_PROVIDER_UNSUPPORTED);
    req.response_format = &object; /* json_object is still fine there */
    o = openai_body(&d, &req, &err);
    assert_int_equal(err, GW_OK);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(o, "response_format"), "type")),
        "json_object");
    json_decref(o);
    d.openai_quirks = GW_QUIRK_NO_JSON_OBJECT;
    assert_null(openai_body(&d, &req, &err));
    assert_int_equal(err, GW_E_PROVIDER_UNSUPPORTED);
    json_decref(plain);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai_quirks),
        cmocka_unit_test(test_bodies_match_jansson),
        cmocka_unit_test(test_real_format),
        cmocka_unit_test(test_invalid_utf8_is_named_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
