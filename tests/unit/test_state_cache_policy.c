/*
 * test_state_cache_policy: the cache key's isolation, the cache decision
 * from config and metadata, and the hash functions' known answers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "state/cache_policy.h"
#include "common/sha.h"

static void test_hash_known_answers(void **s)
{
    char hex[65];
    uint8_t d[32];
    gw_sha256 c;
    gw_sha256_init(&c);
    gw_sha256_update(&c, "abc", 3);
    gw_sha256_final(&c, d);
    gw_hex(d, 32, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    static const char two[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    gw_sha256_init(&c);
    gw_sha256_update(&c, two, 10);
    gw_sha256_update(&c, two + 10, strlen(two) - 10);
    gw_sha256_final(&c, d);
    gw_hex(d, 32, hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    gw_sha1 c1;
    gw_sha1_init(&c1);
    gw_sha1_update(&c1, "abc", 3);
    gw_sha1_final(&c1, d);
    gw_hex(d, 20, hex);
    assert_string_equal(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
}

static gw_message msgs[2] = {{.role = GW_ROLE_USER, .content = "flights from NY to FL"},
                             {.role = GW_ROLE_ASSISTANT, .content = "Sure."}};
static const char *caps_ab[2] = {"chat", "json"};
static const char *caps_ba[2] = {"json", "chat"};

static gw_request base_request(void)
{
    gw_request r = {.request_id = "r1",
                    .agent_did = "did:example:a",
                    .messages = msgs,
                    .message_count = 2,
                    .system_prompt = "be brief",
                    .temperature = 0,
                    .max_tokens = 100,
                    .capabilities = caps_ab,
                    .capability_count = 2,
                    .enable_cache = true,
                    .routing_strategy = GW_ROUTE_BALANCED};
    return r;
}

static void key_of(const gw_request *r, bool shared, char *out)
{
    assert_int_equal(gw_cache_key_compute(r, shared, out), GW_OK);
}

static void test_key_isolation(void **s)
{
    char k0[GW_CACHE_KEY_HEX], k[GW_CACHE_KEY_HEX];
    gw_request r = base_request();
    key_of(&r, false, k0);
    assert_int_equal(strlen(k0), 64);

    gw_request v = base_request();
    v.stream = true; /* excluded */
    key_of(&v, false, k);
    assert_string_equal(k, k0);
    v = base_request();
    v.capabilities = caps_ba; /* order does not matter */
    key_of(&v, false, k);
    assert_string_equal(k, k0);
    v = base_request();
    v.request_id = "another";
    key_of(&v, false, k);
    assert_string_equal(k, k0);

    gw_request diffs[7];
    for (int i = 0; i < 7; i++)
        diffs[i] = base_request();
    diffs[0].agent_did = "did:example:b";
    diffs[1].tenant_id = "tenant-x";
    diffs[2].system_prompt = "be verbose";
    diffs[3].model = "gpt-4o";
    diffs[4].temperature = 0.7;
    diffs[5].max_tokens = 101;
    diffs[6].routing_strategy = GW_ROUTE_CHEAPEST;
    for (int i = 0; i < 7; i++) {
        key_of(&diffs[i], false, k);
        assert_string_not_equal(k, k0);
    }
    gw_message swapped[2] = {{.role = GW_ROLE_USER, .content = "flights from FL to NY"}, msgs[1]};
    v = base_request();
    v.messages = swapped;
    key_of(&v, false, k);
    assert_string_not_equal(k, k0);
    v = base_request();
    v.system_prompt = NULL; /* absent differs from any text, even "" */
    key_of(&v, false, k);
    char k2[GW_CACHE_KEY_HEX];
    v.system_prompt = "";
    key_of(&v, false, k2);
    assert_string_not_equal(k, k2);
    /* Shared: the tenant no longer matters. */
    key_of(&diffs[0], true, k);
    key_of(&r, true, k2);
    assert_string_equal(k, k2);
}

/* The v3 fields (tools, tool calls, structured output, sampling) are in the
 * key, each one separately. */
static void test_key_v3_fields(void **s)
{
    char k0[GW_CACHE_KEY_HEX], k[GW_CACHE_KEY_HEX], seen[18][GW_CACHE_KEY_HEX];
    gw_request r = base_request();
    key_of(&r, false, k0);
    static gw_tool tool_a = {.name = "get_weather", .parameters = "{\"type\":\"object\"}"};
    static gw_tool tool_b = {.name = "get_weather", .parameters = "{\"type\":\"string\"}"};
    static gw_tool tool_c = {
        .name = "get_weather", .description = "now", .parameters = "{\"type\":\"object\"}"};
    static gw_response_format fmt = {.type = "json_object"};
    static gw_response_format sch1 = {.type = "json_schema", .schema = "{\"type\":\"object\"}"};
    static gw_response_format sch2 = {.type = "json_schema", .schema = "{\"type\":\"array\"}"};
    static gw_response_format sch3 = {
        .type = "json_schema", .schema = "{\"type\":\"array\"}", .strict = true};
    static gw_tool_call call_b = {.id = "c1", .name = "get_weather", .arguments = "{\"a\":1}"};
    static const char *stop[] = {"END"};
    static gw_tool_call call = {.id = "c1", .name = "get_weather", .arguments = "{}"};
    gw_message with_call[2] = {msgs[0], msgs[1]};
    with_call[1].tool_calls = &call;
    with_call[1].tool_call_count = 1;
    gw_message with_result[2] = {msgs[0], msgs[1]};
    with_result[1].tool_call_id = "c1";
    gw_message with_call_b[2] = {msgs[0], msgs[1]};
    with_call_b[1].tool_calls = &call_b;
    with_call_b[1].tool_call_count = 1;
    gw_request v[16];
    for (int i = 0; i < 16; i++)
        v[i] = base_request();
    v[0].tools = &tool_a, v[0].tool_count = 1;
    v[1].tools = &tool_b, v[1].tool_count = 1;
    v[2].tools = &tool_a, v[2].tool_count = 1, v[2].tool_choice = "required";
    v[3].response_format = &fmt;
    v[4].stop = stop, v[4].stop_count = 1;
    v[5].has_top_p = true, v[5].top_p = 0.5;
    v[6].has_seed = true, v[6].seed = 7;
    v[7].has_seed = true, v[7].seed = 8;
    v[8].messages = with_call;
    v[9].messages = with_result;
    v[10].tools = &tool_c, v[10].tool_count = 1; /* only the description differs from v[0] */
    v[11].tools = &tool_a, v[11].tool_count = 1, v[11].tool_choice = "auto";
    v[12].response_format = &sch1;
    v[13].response_format = &sch2;
    v[14].response_format = &sch3;
    v[15].messages = with_call_b; /* only the call's arguments differ from v[8] */
    memcpy(seen[0], k0, sizeof k0);
    for (int i = 0; i < 16; i++) {
        key_of(&v[i], false, k);
        for (int j = 0; j <= i; j++)
            assert_string_not_equal(k, seen[j]);
        memcpy(seen[i + 1], k, sizeof k);
    }
    key_of(&v[0], false, k);
    assert_string_equal(k, seen[1]); /* and stable */
}

static gw_cache_config cache_cfg(void)
{
    gw_cache_config c = {
        .enabled = true, .ttl_s = 300, .max_ttl_s = 3600, .temperature_above_zero = true};
    return c;
}

static void test_decide(void **s)
{
    gw_cache_config c = cache_cfg();
    gw_request r = base_request();
    gw_cache_decision d;
    assert_int_equal(gw_cache_policy_decide(&c, &r, &d), GW_OK);
    assert_true(d.lookup && d.store && !d.refresh);
    assert_int_equal(d.ttl_s, 300);

    r.enable_cache = false;
    assert_int_equal(gw_cache_policy_decide(&c, &r, &d), GW_OK);
    assert_false(d.lookup || d.store);
    r = base_request();
    r.temperature = 0.5;
    c.temperature_above_zero = false;
    assert_int_equal(gw_cache_policy_decide(&c, &r, &d), GW_OK);
    assert_false(d.lookup || d.store);
    c = cache_cfg();
    c.enabled = false;
    r = base_request();
    assert_int_equal(gw_cache_policy_decide(&c, &r, &d), GW_OK);
    assert_false(d.lookup || d.store);

    c = cache_cfg();
    gw_kv kv[3] = {{"cache_no_store", "true"}, {"cache_ttl_s", "99999"}, {"x", "y"}};
    r.metadata = (gw_map){.items = kv, .count = 3};
    assert_int_equal(gw_cache_policy_decide(&c, &r, &d), GW_OK);
    assert_true(d.lookup);
    assert_false(d.store);
    assert_int_equal(d.ttl_s, 3600); /* capped */
    gw_kv refresh[1] = {{"cache_refresh", "1"}};
    r.metadata = (gw_map){.items = refresh, .count = 1};
    assert_int_equal(gw_cache_policy_decide(&c, &r, &d), GW_OK);
    assert_true(!d.lookup && d.store && d.refresh);
    gw_kv bad[1] = {{"cache_ttl_s", "ten"}};
    r.metadata = (gw_map){.items = bad, .count = 1};
    assert_int_equal(gw_cache_policy_decide(&c, &r, &d), GW_E_BAD_METADATA);
    gw_kv bad2[1] = {{"cache_no_store", "maybe"}};
    r.metadata = (gw_map){.items = bad2, .count = 1};
    assert_int_equal(gw_cache_policy_decide(&c, &r, &d), GW_E_BAD_METADATA);
}

static void test_storable(void **s)
{
    gw_cache_config c = cache_cfg();
    assert_true(gw_cache_policy_storable(&c, GW_OK, "stop", false));
    assert_false(gw_cache_policy_storable(&c, GW_OK, "length", false));
    assert_false(gw_cache_policy_storable(&c, GW_OK, "stop", true));
    assert_false(gw_cache_policy_storable(&c, GW_E_PROVIDER_ERROR, "stop", false));
    assert_false(gw_cache_policy_storable(&c, GW_OK, NULL, false));
    c.store_finish_reasons[0] = "stop";
    c.store_finish_reasons[1] = "length";
    c.store_finish_reason_count = 2;
    assert_true(gw_cache_policy_storable(&c, GW_OK, "length", false));
    assert_false(gw_cache_policy_storable(&c, GW_OK, "content_filter", false));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_known_answers), cmocka_unit_test(test_key_isolation),
        cmocka_unit_test(test_key_v3_fields),      cmocka_unit_test(test_decide),
        cmocka_unit_test(test_storable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
