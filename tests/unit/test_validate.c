/* Tests for worker/validate: the request validation table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "worker/validate.h"

static gw_message msgs[2] = {{.role = GW_ROLE_SYSTEM, .content = "be brief", .name = NULL},
                             {.role = GW_ROLE_USER, .content = "hello", .name = NULL}};

static gw_request base(void)
{
    gw_request r;
    memset(&r, 0, sizeof r);
    r.request_id = "req-1";
    r.agent_did = "did:example:a";
    r.messages = msgs;
    r.message_count = 2;
    r.temperature = 0.7;
    r.max_tokens = 100;
    r.routing_strategy = GW_ROUTE_BALANCED;
    return r;
}

static const char *const ALLOW[] = {"replies.*", "team-b.answers"};
static const gw_validate_limits LIM = {.max_tokens_limit = 4096,
                                       .max_content_bytes = 20,
                                       .default_reply_topic = "llm.responses",
                                       .reply_topics = ALLOW,
                                       .reply_topic_count = 2,
                                       .forbidden = {"llm.requests.high", "llm.requests.normal",
                                                     "llm.requests.low", "llm.chunks", "llm.usage",
                                                     "llm.dlq"},
                                       .forbidden_count = 6};

typedef struct {
    const char *name;
    void (*mutate)(gw_request *r);
    gw_err want;
    const char *field;
} vcase;

static void m_none(gw_request *r)
{
}
static void m_no_id(gw_request *r)
{
    r->request_id = "";
}
static void m_no_msgs(gw_request *r)
{
    r->message_count = 0;
}
static void m_temp_hi(gw_request *r)
{
    r->temperature = 2.01;
}
static void m_temp_lo(gw_request *r)
{
    r->temperature = -0.1;
}
static void m_temp_nan(gw_request *r)
{
    r->temperature = NAN;
}
static void m_temp_edge(gw_request *r)
{
    r->temperature = 2.0;
}
static void m_tok0(gw_request *r)
{
    r->max_tokens = 0;
}
static void m_tok_big(gw_request *r)
{
    r->max_tokens = 4097;
}
static void m_tok_edge(gw_request *r)
{
    r->max_tokens = 4096;
}
static void m_sys_big(gw_request *r)
{
    r->system_prompt = "0123456789abcdef01234";
}
static void m_msg_big(gw_request *r)
{
    r->system_prompt = "0123456789ab"; /* 12 + 8 + 5 > 20 */
}
static char long_id[GW_MAX_ID_BYTES + 2];
static char max_id[GW_MAX_ID_BYTES + 1];
static void m_long_agent(gw_request *r)
{
    r->agent_did = long_id;
}
static void m_long_custom(gw_request *r)
{
    r->custom_id = long_id;
}
static void m_long_model(gw_request *r)
{
    r->model = long_id;
}
static void m_max_ids(gw_request *r)
{
    r->agent_did = r->tenant_id = r->custom_id = r->batch_id = max_id;
}
static void m_bad_role(gw_request *r)
{
    msgs[1].role = (gw_role)9;
}
static void m_bad_strategy(gw_request *r)
{
    r->routing_strategy = (gw_strategy)77;
}
static void m_reply_ok(gw_request *r)
{
    r->reply_topic = "replies.agent-7";
}
static void m_reply_prefix(gw_request *r)
{
    r->reply_topic = "other.replies";
}
static void m_reply_bad(gw_request *r)
{
    r->reply_topic = "replies.a b";
}
static void m_reply_exact(gw_request *r)
{
    r->reply_topic = "team-b.answers";
}
static void m_reply_default(gw_request *r)
{
    r->reply_topic = "llm.responses";
}
static void m_reply_request_topic(gw_request *r)
{
    r->reply_topic = "llm.requests.high";
}
static void m_reply_usage(gw_request *r)
{
    r->reply_topic = "llm.usage";
}
static void m_reply_internal(gw_request *r)
{
    r->reply_topic = "__consumer_offsets";
}
/* A bad reply_topic is the error even when other fields are bad too: the
 * answer goes to the default topic, never to the named one. */
static void m_reply_bad_and_no_msgs(gw_request *r)
{
    r->reply_topic = "__transaction_state";
    r->message_count = 0;
}
static void m_reply_bad_and_nan(gw_request *r)
{
    r->reply_topic = "llm.dlq";
    r->temperature = NAN;
    r->request_id = "";
}
static void m_expired(gw_request *r)
{
    r->has_deadline = true;
    r->deadline_ms = 999;
}
static void m_deadline_ok(gw_request *r)
{
    r->has_deadline = true;
    r->deadline_ms = 1000;
}

static const vcase cases[] = {
    {"valid", m_none, GW_OK, NULL},
    {"empty id", m_no_id, GW_E_INVALID_REQUEST, "request_id"},
    {"no messages", m_no_msgs, GW_E_NO_MESSAGES, "messages"},
    {"temperature > 2", m_temp_hi, GW_E_BAD_TEMPERATURE, "temperature"},
    {"temperature < 0", m_temp_lo, GW_E_BAD_TEMPERATURE, "temperature"},
    {"temperature NaN", m_temp_nan, GW_E_BAD_TEMPERATURE, "temperature"},
    {"temperature 2", m_temp_edge, GW_OK, NULL},
    {"max_tokens 0", m_tok0, GW_E_BAD_MAX_TOKENS, "max_tokens"},
    {"max_tokens above limit", m_tok_big, GW_E_BAD_MAX_TOKENS, "max_tokens"},
    {"max_tokens at limit", m_tok_edge, GW_OK, NULL},
    {"content too large", m_sys_big, GW_E_CONTENT_TOO_LARGE, "system_prompt"},
    {"messages too large", m_msg_big, GW_E_CONTENT_TOO_LARGE, "messages.content"},
    {"bad strategy", m_bad_strategy, GW_E_INVALID_REQUEST, "routing_strategy"},
    {"reply topic ok", m_reply_ok, GW_OK, NULL},
    {"reply topic not allowed", m_reply_prefix, GW_E_INVALID_REQUEST, "reply_topic"},
    {"reply topic illegal", m_reply_bad, GW_E_INVALID_REQUEST, "reply_topic"},
    {"reply topic exact name", m_reply_exact, GW_OK, NULL},
    {"reply topic default", m_reply_default, GW_OK, NULL},
    {"reply topic a request topic", m_reply_request_topic, GW_E_INVALID_REQUEST, "reply_topic"},
    {"reply topic the usage topic", m_reply_usage, GW_E_INVALID_REQUEST, "reply_topic"},
    {"reply topic internal", m_reply_internal, GW_E_INVALID_REQUEST, "reply_topic"},
    {"bad reply topic before no messages", m_reply_bad_and_no_msgs, GW_E_INVALID_REQUEST,
     "reply_topic"},
    {"bad reply topic before everything", m_reply_bad_and_nan, GW_E_INVALID_REQUEST, "reply_topic"},
    {"expired", m_expired, GW_E_DEADLINE_EXCEEDED, "deadline_ms"},
    {"deadline now", m_deadline_ok, GW_OK, NULL},
    {"bad role", m_bad_role, GW_E_INVALID_REQUEST, "messages.role"},
    {"agent_did too long", m_long_agent, GW_E_INVALID_REQUEST, "agent_did"},
    {"custom_id too long", m_long_custom, GW_E_INVALID_REQUEST, "custom_id"},
    {"model too long", m_long_model, GW_E_INVALID_REQUEST, "model"},
    {"identifiers at the limit", m_max_ids, GW_OK, NULL},
};

static void test_table(void **state)
{
    memset(long_id, 'a', sizeof long_id - 1);
    memset(max_id, 'b', sizeof max_id - 1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        msgs[1].role = GW_ROLE_USER;
        gw_request r = base();
        cases[i].mutate(&r);
        const char *field = "unset";
        gw_err err = gw_validate_request(&r, &LIM, 1000, &field);
        if (err != cases[i].want)
            fail_msg("%s: got %s, want %s", cases[i].name, gw_err_name(err),
                     gw_err_name(cases[i].want));
        if (cases[i].field == NULL)
            assert_null(field);
        else
            assert_string_equal(field, cases[i].field);
    }
    msgs[1].role = GW_ROLE_USER;
}

static void test_drop_oversized_ids(void **state)
{
    memset(long_id, 'a', sizeof long_id - 1);
    gw_request r = base();
    r.agent_did = long_id;
    r.custom_id = long_id;
    r.batch_id = "ok";
    gw_validate_drop_oversized_ids(&r);
    assert_string_equal(r.agent_did, "");
    assert_null(r.custom_id);
    assert_string_equal(r.batch_id, "ok");
}

/* Pattern matching and the reasons; the empty allow-list allows only the default. */
static void test_reply_topic_rules(void **state)
{
    const char *why = NULL;
    assert_int_equal(gw_validate_reply_topic("replies.x", &LIM, &why), GW_OK);
    assert_null(why);
    assert_int_equal(gw_validate_reply_topic("__consumer_offsets", &LIM, &why),
                     GW_E_INVALID_REQUEST);
    assert_string_equal(why, "internal topic");
    assert_int_equal(gw_validate_reply_topic("llm.chunks", &LIM, &why), GW_E_INVALID_REQUEST);
    assert_string_equal(why, "forbidden topic");
    assert_int_equal(gw_validate_reply_topic("team-b.answers2", &LIM, &why), GW_E_INVALID_REQUEST);
    assert_string_equal(why, "not in kafka.reply_topics");
    assert_int_equal(gw_validate_reply_topic("a/b", &LIM, &why), GW_E_INVALID_REQUEST);
    assert_string_equal(why, "illegal topic name");
    /* A pattern that would match a forbidden topic does not open it. */
    static const char *const all[] = {"*"};
    gw_validate_limits open = LIM;
    open.reply_topics = all;
    open.reply_topic_count = 1;
    assert_int_equal(gw_validate_reply_topic("anything", &open, &why), GW_OK);
    assert_int_equal(gw_validate_reply_topic("llm.dlq", &open, &why), GW_E_INVALID_REQUEST);
    assert_int_equal(gw_validate_reply_topic("__x", &open, &why), GW_E_INVALID_REQUEST);
    gw_validate_limits none = LIM;
    none.reply_topics = NULL;
    none.reply_topic_count = 0;
    assert_int_equal(gw_validate_reply_topic("llm.responses", &none, &why), GW_OK);
    assert_int_equal(gw_validate_reply_topic("replies.x", &none, &why), GW_E_INVALID_REQUEST);
}

static void test_topic_names(void **state)
{
    assert_true(gw_validate_topic_name("llm.responses"));
    assert_true(gw_validate_topic_name("a_b-C.9"));
    assert_false(gw_validate_topic_name(""));
    assert_false(gw_validate_topic_name("."));
    assert_false(gw_validate_topic_name(".."));
    assert_false(gw_validate_topic_name("a/b"));
    char long_name[300];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    assert_false(gw_validate_topic_name(long_name));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_topic_names),
        cmocka_unit_test(test_reply_topic_rules),
        cmocka_unit_test(test_drop_oversized_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
