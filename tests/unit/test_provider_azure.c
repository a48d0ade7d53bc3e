/*
 * Azure OpenAI: the deployment URL (escaping, api-version default and
 * override, trailing slashes, what is not configured), and calls through the
 * OpenAI dialect at that URL against modelgw-mockllm (which serves
 * /openai/deployments/{model}/chat/completions only with an api-version),
 * streamed and not, tool calls included.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "provider/provider.h"
#include "provider/provider_azure.h"
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

static void test_url(void **state)
{
    const gw_provider_kind_info *k = gw_provider_info(GW_PROVIDER_AZURE);
    assert_non_null(k);
    assert_string_equal(k->auth.header, "api-key");
    char url[256];
    gw_deployment d = {.base_url = "https://res.openai.azure.com/", .model = "gpt4o-prod"};
    assert_int_equal(gw_azure_url(k, &d, false, url, sizeof url), GW_OK);
    assert_string_equal(url, "https://res.openai.azure.com/openai/deployments/gpt4o-prod/chat/"
                             "completions?api-version=" GW_AZURE_DEFAULT_API_VERSION);
    d.api_version = "2025-01-01-preview";
    d.model = "a b/c?d";
    assert_int_equal(gw_azure_url(k, &d, true, url, sizeof url), GW_OK);
    assert_string_equal(url, "https://res.openai.azure.com/openai/deployments/a%20b%2Fc%3Fd/chat/"
                             "completions?api-version=2025-01-01-preview");
    assert_int_equal(gw_azure_url(k, &d, false, url, 40), GW_E_CONFIG);
    d.base_url = NULL;
    assert_int_equal(gw_azure_url(k, &d, false, url, sizeof url), GW_E_PROVIDER_NOT_CONFIGURED);
}

typedef struct {
    bool done;
    gw_err err;
    char content[1024], deltas[1024], finish[32];
    size_t calls;
} outcome;

static void on_delta(void *ud, const char *text, size_t len)
{
    outcome *o = ud;
    strncat(o->deltas, text, len < sizeof o->deltas - strlen(o->deltas) - 1 ? len : 0);
}

static void on_done(void *ud, const gw_provider_result *r)
{
    outcome *o = ud;
    o->done = true;
    o->err = r->err;
    snprintf(o->content, sizeof o->content, "%.*s", (int)r->content_len, r->content);
    snprintf(o->finish, sizeof o->finish, "%s", r->finish_reason ? r->finish_reason : "");
    o->calls = r->tool_call_count;
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
    while (!o->done)
        uv_run(&loop, UV_RUN_ONCE);
    gw_providers_free(ps);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_calls(void **state)
{
    static gw_message msgs[] = {{.role = GW_ROLE_USER, .content = "hello azure"}};
    static gw_tool tool = {.name = "lookup", .parameters = "{\"type\":\"object\"}"};
    gw_deployment d = {.id = "az",
                       .provider = GW_PROVIDER_AZURE,
                       .model = "my-deployment",
                       .base_url = mock.base_url,
                       .api_key = "azure-key",
                       .total_timeout_ms = 10000};
    for (int stream = 0; stream < 2; stream++) {
        gw_request req = {.request_id = "az-1",
                          .messages = msgs,
                          .message_count = 1,
                          .temperature = 0.2,
                          .max_tokens = 50,
                          .stream = stream};
        outcome o;
        run(&d, &req, &o);
        assert_int_equal(o.err, GW_OK);
        assert_string_equal(o.finish, "stop");
        assert_int_equal(strlen(o.content) > 0, true);
        if (stream)
            assert_string_equal(o.deltas, o.content);
        req.tools = &tool;
        req.tool_count = 1;
        run(&d, &req, &o);
        assert_int_equal(o.err, GW_OK);
        assert_string_equal(o.finish, "tool_calls");
        assert_int_equal(o.calls, 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url),
        cmocka_unit_test(test_calls),
    };
    return cmocka_run_group_tests(tests, start_mock, stop_mock);
}
