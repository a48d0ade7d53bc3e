/*
 * gw_phttp_replay (provider_http.c), the reading half of a call without HTTP
 * that tests/fuzz/fuzz_dialects.c drives: a whole body reaches the dialect's
 * body reader and the same result as a real call; stream events go through
 * the framing's rules ([DONE] and what follows it, a missing terminator, an
 * event stream read past messageStop); deltas are reported; a row without a
 * dialect is refused. Regressions found by the fuzz target go here too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "provider/provider_http.h"

typedef struct {
    int done;
    gw_err err;
    char content[256];
    char deltas[256];
    char finish[32];
    size_t tools;
    gw_token_usage usage;
} outcome;

static void on_delta(void *ud, const char *text, size_t len)
{
    outcome *o = ud;
    strncat(o->deltas, text, len < sizeof o->deltas - strlen(o->deltas) - 1 ? len : 0);
}

static void on_done(void *ud, const gw_provider_result *r)
{
    outcome *o = ud;
    o->done++;
    o->err = r->err;
    snprintf(o->content, sizeof o->content, "%.*s", (int)r->content_len, r->content);
    snprintf(o->finish, sizeof o->finish, "%s", r->finish_reason);
    o->tools = r->tool_call_count;
    o->usage = r->usage;
}

static gw_message msg = {.role = GW_ROLE_USER, .content = "hi"};
static const gw_deployment dep = {.id = "d", .model = "m", .api_key = "sk-test"};
static const gw_provider_cbs cbs = {.on_delta = on_delta, .on_done = on_done};

static outcome replay(const char *row, bool stream, int status, const char *body,
                      const gw_phttp_event *ev, size_t n)
{
    gw_request req = {.messages = &msg, .message_count = 1, .stream = stream};
    outcome o = {0};
    gw_err err = gw_phttp_replay(gw_provider_info_find(row), &dep, &req, status, body,
                                 body ? strlen(body) : 0, ev, n, &cbs, &o);
    assert_int_equal(err, GW_OK);
    assert_int_equal(o.done, 1);
    return o;
}

#define EV(name, json)                                                                             \
    {                                                                                              \
        name, json, sizeof json - 1                                                                \
    }

static void test_body(void **state)
{
    (void)state;
    outcome o = replay("openai", false, 200,
                       "{\"choices\":[{\"message\":{\"content\":\"hello\"},\"finish_reason\":"
                       "\"length\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}",
                       NULL, 0);
    assert_int_equal(o.err, GW_OK);
    assert_string_equal(o.content, "hello");
    assert_string_equal(o.finish, "length");
    assert_int_equal(o.usage.total_tokens, 4);
    assert_string_equal(o.deltas, ""); /* not streamed */

    o = replay("anthropic", false, 200, "{not json", NULL, 0);
    assert_int_equal(o.err, GW_E_PROVIDER_BAD_RESPONSE);
    assert_string_equal(o.finish, "error");

    o = replay("ollama", false, 429, "{\"error\":\"busy\"}", NULL, 0);
    assert_int_equal(o.err, GW_E_PROVIDER_RATE_LIMITED);
}

static void test_sse_events(void **state)
{
    (void)state;
    const gw_phttp_event ev[] = {
        EV("message", "{\"choices\":[{\"delta\":{\"content\":\"a\"}}]}"),
        EV("message", "{\"choices\":[{\"delta\":{\"content\":\"b\"},\"finish_reason\":\"stop\"}]}"),
        EV("message", "[DONE]"),
        EV("message", "not json: after the terminator, ignored"),
    };
    outcome o = replay("azure", true, 200, NULL, ev, 4);
    assert_int_equal(o.err, GW_OK);
    assert_string_equal(o.content, "ab");
    assert_string_equal(o.deltas, "ab");

    o = replay("openai", true, 200, NULL, ev, 2); /* no [DONE] */
    assert_int_equal(o.err, GW_E_STREAM_ERROR);
    assert_string_equal(o.content, "");

    const gw_phttp_event bad[] = {EV("message", "{\"choices\":[")};
    o = replay("openai", true, 200, NULL, bad, 1);
    assert_int_equal(o.err, GW_E_STREAM_ERROR);
}

static void test_ndjson_and_eventstream(void **state)
{
    (void)state;
    const gw_phttp_event nd[] = {
        EV(NULL, "{\"message\":{\"content\":\"x\"},\"done\":false}"),
        EV(NULL, "{\"message\":{\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\"}"),
    };
    outcome o = replay("ollama", true, 200, NULL, nd, 2);
    assert_int_equal(o.err, GW_OK);
    assert_string_equal(o.content, "x");

    /* Bedrock's usage follows messageStop: still read */
    const gw_phttp_event es[] = {
        EV("contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"y\"}}"),
        EV("messageStop", "{\"stopReason\":\"end_turn\"}"),
        EV("metadata", "{\"usage\":{\"inputTokens\":7,\"outputTokens\":2}}"),
    };
    o = replay("bedrock", true, 200, NULL, es, 3);
    assert_int_equal(o.err, GW_OK);
    assert_string_equal(o.content, "y");
    assert_int_equal(o.usage.prompt_tokens, 7);
}

static void test_refused(void **state)
{
    (void)state;
    gw_request req = {.messages = &msg, .message_count = 1};
    outcome o = {0};
    assert_int_equal(
        gw_phttp_replay(gw_provider_info_find("mock"), &dep, &req, 200, "{}", 2, NULL, 0, &cbs, &o),
        GW_E_PROVIDER_NOT_CONFIGURED);
    assert_int_equal(o.done, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body),
        cmocka_unit_test(test_sse_events),
        cmocka_unit_test(test_ndjson_and_eventstream),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
