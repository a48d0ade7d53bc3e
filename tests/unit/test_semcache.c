/* Tests for the semantic tier: the same behaviour against the in-memory
 * store and the real Redis of tools/services (MODELGW_REDIS), including a
 * store by one client found by another (two workers) and TTLs on every key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "semantic/semcache.h"
#include "loop/redis.h"
#include "test_support.h"

typedef struct {
    uv_loop_t loop;
    gw_redis *redis[2];
    gw_semstore *store[2];
    gw_semcache *cache[2];
    char prefix[64];
    int use_redis;
} fixture;

static const gw_semcache_opts opts = {
    .enabled = true,
    .threshold = 0.85,
    .threshold_floor = 0.75,
    .max_messages = 4,
    .max_prompt_bytes = 4096,
    .bands = 20,
    .rows = 10,
    .seed = 7,
};

static int setup(void **state, int use_redis)
{
    fixture *f = calloc(1, sizeof *f);
    uv_loop_init(&f->loop);
    f->use_redis = use_redis;
    snprintf(f->prefix, sizeof f->prefix, "t%d:%ld:", (int)getpid(), (long)random());
    gw_semstore_opts so = {.prefix = f->prefix};
    for (int i = 0; i < 2; i++) {
        if (use_redis) {
            gw_redis_opts ro = {0};
            char host[128];
            gw_test_redis_addr(host, sizeof host, &ro.port);
            ro.host = host;
            gw_redis_opts_defaults(&ro);
            assert_int_equal(gw_redis_new(&f->loop, &ro, &f->redis[i]), GW_OK);
            assert_int_equal(gw_semstore_redis_new(&f->loop, f->redis[i], &so, &f->store[i]),
                             GW_OK);
        } else {
            assert_int_equal(gw_semstore_mem_new(&f->loop, &so, &f->store[i]), GW_OK);
            if (i == 1) { /* memory: one process, one store */
                gw_semstore_free(f->store[1]);
                f->store[1] = f->store[0];
            }
        }
        assert_int_equal(gw_semcache_new(f->store[i], &opts, &f->cache[i]), GW_OK);
    }
    *state = f;
    return 0;
}

static int setup_mem(void **state)
{
    return setup(state, 0);
}

static int setup_redis(void **state)
{
    return setup(state, 1);
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 2; i++)
        gw_semcache_free(f->cache[i]);
    gw_semstore_free(f->store[0]);
    if (f->use_redis) {
        gw_semstore_free(f->store[1]);
        for (int i = 0; i < 2; i++)
            gw_redis_free(f->redis[i]);
    }
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

typedef struct {
    int done;
    gw_err err;
    char key[GW_SEM_MAX_KEY];
    double sim;
} result;

static void on_lookup(void *ud, gw_err err, const char *key, double sim)
{
    result *r = ud;
    r->done = 1;
    r->err = err;
    snprintf(r->key, sizeof r->key, "%s", key ? key : "");
    r->sim = sim;
}

static void on_put(void *ud, gw_err err)
{
    result *r = ud;
    r->done = 1;
    r->err = err;
}

static void run_until(fixture *f, result *r)
{
    assert_true(gw_test_wait_count(&f->loop, &r->done, 1, 15000));
}

static gw_request make_req(gw_message *msgs, const char *text, const char *system)
{
    msgs[0] = (gw_message){.role = GW_ROLE_USER, .content = text};
    gw_request r = {.request_id = "r",
                    .agent_did = "did:agent:a",
                    .messages = msgs,
                    .message_count = 1,
                    .system_prompt = system,
                    .temperature = 0,
                    .max_tokens = 100,
                    .routing_strategy = GW_ROUTE_BALANCED};
    return r;
}

static void store(fixture *f, int who, const char *tenant, gw_request *req, const char *key)
{
    gw_sem_query q;
    assert_true(gw_semcache_prepare(f->cache[who], req, tenant, &q));
    result r = {0};
    gw_semcache_store(f->cache[who], &q, key, 60, on_put, &r);
    run_until(f, &r);
    assert_int_equal(r.err, GW_OK);
}

static result lookup(fixture *f, int who, const char *tenant, gw_request *req)
{
    gw_sem_query q;
    result r = {0};
    if (!gw_semcache_prepare(f->cache[who], req, tenant, &q)) {
        r.err = GW_E_INVALID_REQUEST;
        return r;
    }
    gw_semcache_lookup(f->cache[who], &q, on_lookup, &r);
    run_until(f, &r);
    return r;
}

static void test_hit_and_isolation(void **state)
{
    fixture *f = *state;
    gw_message m1[1], m2[1];
    gw_request a = make_req(m1, "What is the capital of Australia?", "be brief");
    store(f, 0, "tenant-a", &a, "exact-key-1");

    /* Another worker (client 1) finds the near-duplicate. */
    gw_request b = make_req(m2, "what is the capital of australia", "be brief");
    result r = lookup(f, 1, "tenant-a", &b);
    assert_int_equal(r.err, GW_OK);
    assert_string_equal(r.key, "exact-key-1");
    assert_true(r.sim >= 0.85);

    /* Never across tenants, system prompts, models, parameters. */
    r = lookup(f, 1, "tenant-b", &b);
    assert_string_equal(r.key, "");
    b.system_prompt = "be verbose";
    r = lookup(f, 1, "tenant-a", &b);
    assert_string_equal(r.key, "");
    b.system_prompt = "be brief";
    b.model = "other-model";
    r = lookup(f, 1, "tenant-a", &b);
    assert_string_equal(r.key, "");
    b.model = NULL;
    b.temperature = 0.5;
    r = lookup(f, 1, "tenant-a", &b);
    assert_string_equal(r.key, "");
    b.temperature = 0;

    /* Guard rails and a different question. */
    gw_message m3[1];
    gw_request c = make_req(m3, "What is the capital of Austria?", "be brief");
    r = lookup(f, 1, "tenant-a", &c);
    assert_string_equal(r.key, "");
}

static void test_guards_and_threshold(void **state)
{
    fixture *f = *state;
    gw_message m1[1], m2[1];
    gw_request a = make_req(m1, "Is chocolate safe for dogs to eat?", NULL);
    store(f, 0, "t", &a, "k-choc");
    gw_request b = make_req(m2, "Is chocolate not safe for dogs to eat?", NULL);
    result r = lookup(f, 1, "t", &b);
    assert_string_equal(r.key, "");
    /* A per-request threshold cannot go below the floor. */
    gw_kv kv = {"cache_similarity_threshold", "0.1"};
    gw_message m3[1];
    gw_request c = make_req(m3, "Is chocolate safe for cats to eat?", NULL);
    c.metadata = (gw_map){&kv, 1};
    r = lookup(f, 1, "t", &c);
    assert_string_equal(r.key, "");
    /* Ineligible: too many messages, or the last turn is not the user's. */
    gw_message many[5];
    for (int i = 0; i < 5; i++)
        many[i] = (gw_message){.role = GW_ROLE_USER, .content = "hi"};
    gw_request d = make_req(m3, "x", NULL);
    d.messages = many;
    d.message_count = 5;
    gw_sem_query q;
    assert_false(gw_semcache_prepare(f->cache[0], &d, "t", &q));
    many[1].role = GW_ROLE_ASSISTANT;
    d.message_count = 2;
    assert_false(gw_semcache_prepare(f->cache[0], &d, "t", &q));
}

/* Requests with tools, structured output or tool turns are neighbours only
 * of requests with the same ones (the v3 fields are in the namespace). */
static void test_v3_partition(void **state)
{
    fixture *f = *state;
    static gw_tool tool_a = {.name = "get_weather", .parameters = "{\"type\":\"object\"}"};
    static gw_tool tool_b = {.name = "get_time", .parameters = "{\"type\":\"object\"}"};
    static gw_response_format json = {.type = "json_object"};
    static gw_response_format schema = {.type = "json_schema", .schema = "{\"type\":\"object\"}"};
    gw_message m1[1], m2[1];
    gw_request a = make_req(m1, "What is the weather like in Paris today?", NULL);
    a.tools = &tool_a, a.tool_count = 1;
    store(f, 0, "t", &a, "k-tools");
    gw_request b = make_req(m2, "what is the weather like in paris today", NULL);
    result r = lookup(f, 1, "t", &b); /* no tools: not a neighbour */
    assert_string_equal(r.key, "");
    b.tools = &tool_a, b.tool_count = 1;
    r = lookup(f, 1, "t", &b); /* the same tools: a hit */
    assert_string_equal(r.key, "k-tools");
    b.tools = &tool_b;
    r = lookup(f, 1, "t", &b);
    assert_string_equal(r.key, "");
    b.tools = &tool_a, b.tool_choice = "required";
    r = lookup(f, 1, "t", &b);
    assert_string_equal(r.key, "");
    b.tool_choice = NULL, b.response_format = &json;
    r = lookup(f, 1, "t", &b);
    assert_string_equal(r.key, "");
    b.response_format = NULL, b.has_seed = true, b.seed = 3;
    r = lookup(f, 1, "t", &b);
    assert_string_equal(r.key, "");

    /* Structured output: the same format hits, another schema misses. */
    gw_message m3[1], m4[1];
    gw_request c = make_req(m3, "List three primary colours as JSON", NULL);
    c.response_format = &json;
    store(f, 0, "t", &c, "k-json");
    gw_request d = make_req(m4, "list three primary colours as json", NULL);
    d.response_format = &json;
    r = lookup(f, 1, "t", &d);
    assert_string_equal(r.key, "k-json");
    d.response_format = &schema;
    r = lookup(f, 1, "t", &d);
    assert_string_equal(r.key, "");

    /* A conversation with a tool call and its result before the last turn:
     * another call (other arguments) is another namespace. */
    static gw_tool_call call1 = {
        .id = "c1", .name = "get_weather", .arguments = "{\"city\":\"Paris\"}"};
    static gw_tool_call call2 = {
        .id = "c1", .name = "get_weather", .arguments = "{\"city\":\"Rome\"}"};
    gw_message conv[4] = {
        {.role = GW_ROLE_USER, .content = "Weather?"},
        {.role = GW_ROLE_ASSISTANT, .content = "", .tool_calls = &call1, .tool_call_count = 1},
        {.role = GW_ROLE_TOOL, .content = "sunny", .tool_call_id = "c1"},
        {.role = GW_ROLE_USER, .content = "Should I take an umbrella with me today?"},
    };
    gw_request e = make_req(m3, "x", NULL);
    e.messages = conv, e.message_count = 4, e.tools = &tool_a, e.tool_count = 1;
    store(f, 0, "t", &e, "k-conv");
    gw_message conv2[4] = {conv[0], conv[1], conv[2], conv[3]};
    conv2[3].content = "should i take an umbrella with me today";
    gw_request g = e;
    g.messages = conv2;
    r = lookup(f, 1, "t", &g);
    assert_string_equal(r.key, "k-conv");
    conv2[1].tool_calls = &call2;
    r = lookup(f, 1, "t", &g);
    assert_string_equal(r.key, "");
    conv2[1].tool_calls = &call1, conv2[2].tool_call_id = "c2";
    r = lookup(f, 1, "t", &g);
    assert_string_equal(r.key, "");
}

typedef struct {
    int done;
    long long n;
    int all_ttl;
} scan_state;

static void on_ttl(void *ud, gw_err err, const redisReply *reply)
{
    scan_state *s = ud;
    if (err != GW_OK || reply->integer < 0)
        s->all_ttl = 0;
    s->done--;
}

static void on_keys(void *ud, gw_err err, const redisReply *reply);

static void test_redis_ttls(void **state)
{
    fixture *f = *state;
    gw_message m1[1];
    gw_request a = make_req(m1, "How do I sort a list in Python?", NULL);
    store(f, 0, "t", &a, "k-sort");
    result r = {0};
    (void)r;
    char pattern[128];
    snprintf(pattern, sizeof pattern, "%s*", f->prefix);
    const char *argv[] = {"KEYS", pattern};
    scan_state s = {.done = 1, .all_ttl = 1};
    gw_redis_command(f->redis[0], 2, argv, NULL, on_keys, &s);
    for (int i = 0; i < 100000 && s.done > 0; i++)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(s.done, 0);
    assert_true(s.n >= 2); /* the entry and at least one bucket */
    assert_true(s.all_ttl);
}

static fixture *g_f;

static void on_keys(void *ud, gw_err err, const redisReply *reply)
{
    scan_state *s = ud;
    assert_int_equal(err, GW_OK);
    s->n = (long long)reply->elements;
    for (size_t i = 0; i < reply->elements; i++) {
        const char *argv[] = {"TTL", reply->element[i]->str};
        s->done++;
        gw_redis_command(g_f->redis[0], 2, argv, NULL, on_ttl, s);
    }
    s->done--;
}

static int setup_redis_ttl(void **state)
{
    setup_redis(state);
    g_f = *state;
    return 0;
}

int main(void)
{
    srandom((unsigned)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hit_and_isolation, setup_mem, teardown),
        cmocka_unit_test_setup_teardown(test_guards_and_threshold, setup_mem, teardown),
        cmocka_unit_test_setup_teardown(test_v3_partition, setup_mem, teardown),
        cmocka_unit_test_setup_teardown(test_hit_and_isolation, setup_redis, teardown),
        cmocka_unit_test_setup_teardown(test_v3_partition, setup_redis, teardown),
        cmocka_unit_test_setup_teardown(test_guards_and_threshold, setup_redis, teardown),
        cmocka_unit_test_setup_teardown(test_redis_ttls, setup_redis_ttl, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
