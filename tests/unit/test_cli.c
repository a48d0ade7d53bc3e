/*
 * Unit tests of the pure parts of modelgw-cli and modelgw-bench:
 * percentiles, the string set, OpenAI batch lines in and out, deterministic
 * request ids, the resume scan of output and state files, progress lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "cli/cli_batch.h"
#include "cli/cli_json.h"
#include "cli/cli_latency.h"
#include "cli/cli_procstat.h"
#include "cli/cli_progress.h"
#include "cli/cli_resume.h"
#include "cli/cli_strset.h"

static void test_percentiles_nearest_rank(void **state)
{
    gw_cli_lat l;
    gw_cli_lat_init(&l, 1000);
    assert_int_equal(gw_cli_lat_percentile(&l, 50), 0);
    for (uint64_t v = 100; v >= 1; v--)
        assert_int_equal(gw_cli_lat_add(&l, v), GW_OK);
    assert_int_equal(gw_cli_lat_percentile(&l, 50), 50);
    assert_int_equal(gw_cli_lat_percentile(&l, 90), 90);
    assert_int_equal(gw_cli_lat_percentile(&l, 99), 99);
    assert_int_equal(gw_cli_lat_percentile(&l, 99.9), 100);
    assert_int_equal(gw_cli_lat_percentile(&l, 100), 100);
    assert_int_equal(gw_cli_lat_percentile(&l, 0), 1);
    assert_true(gw_cli_lat_mean(&l) > 50.49 && gw_cli_lat_mean(&l) < 50.51);
    gw_cli_lat_cleanup(&l);
}

static void test_percentiles_single_and_cap(void **state)
{
    gw_cli_lat l;
    gw_cli_lat_init(&l, 3);
    assert_int_equal(gw_cli_lat_add(&l, 7), GW_OK);
    assert_int_equal(gw_cli_lat_percentile(&l, 1), 7);
    assert_int_equal(gw_cli_lat_percentile(&l, 99), 7);
    assert_int_equal(gw_cli_lat_add(&l, 1), GW_OK);
    assert_int_equal(gw_cli_lat_add(&l, UINT64_MAX), GW_OK); /* clamped */
    assert_int_equal(gw_cli_lat_add(&l, 5), GW_E_LIMIT);
    assert_int_equal(l.dropped, 1);
    assert_int_equal(gw_cli_lat_percentile(&l, 100), UINT32_MAX);
    assert_int_equal(gw_cli_lat_percentile(&l, 50), 7);
    gw_cli_lat_cleanup(&l);
    uint32_t v[] = {5, 1, 4, 2, 3};
    assert_int_equal(gw_cli_percentile_u32(v, 5, 40), 2);
    assert_int_equal(gw_cli_percentile_u32(v, 0, 40), 0);
}

static void test_strset(void **state)
{
    gw_cli_strset s;
    gw_cli_strset_init(&s, 5000);
    char k[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof k, "id-%d", i);
        assert_int_equal(gw_cli_strset_add(&s, k, (void *)(intptr_t)(i + 1)), GW_OK);
    }
    assert_int_equal(gw_cli_strset_add(&s, "id-1", NULL), GW_E_INVALID_REQUEST);
    assert_int_equal(gw_cli_strset_add(&s, "one-more", NULL), GW_E_LIMIT);
    assert_true(gw_cli_strset_has(&s, "id-4999"));
    assert_false(gw_cli_strset_has(&s, "id-5000"));
    assert_int_equal((intptr_t)gw_cli_strset_get(&s, "id-42"), 43);
    void *v = NULL;
    assert_true(gw_cli_strset_remove(&s, "id-42", &v));
    assert_int_equal((intptr_t)v, 43);
    assert_false(gw_cli_strset_has(&s, "id-42"));
    assert_false(gw_cli_strset_remove(&s, "id-42", NULL));
    assert_int_equal(gw_cli_strset_add(&s, "id-42", NULL), GW_OK); /* reuses the tombstone */
    assert_int_equal(s.count, 5000);
    gw_cli_strset_cleanup(&s);
}

static const gw_cli_batch_opts OPTS = {.agent_did = "did:agent:batch", .batch_id = "b1"};

static gw_err parse(const char *line, gw_arena *a, gw_request *r, char *err)
{
    return gw_cli_batch_parse_line(line, strlen(line), &OPTS, a, r, err, 256);
}

static void test_batch_parse_ok(void **state)
{
    gw_arena a;
    gw_arena_init(&a, 1 << 20);
    gw_request r;
    char err[256];
    const char *line =
        "{\"custom_id\":\"req-1\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\","
        "\"body\":{\"model\":\"gpt-x\",\"messages\":[{\"role\":\"system\",\"content\":\"Be "
        "brief.\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hi \"},"
        "{\"type\":\"text\",\"text\":\"there\"}]}],\"max_tokens\":50,\"temperature\":0.2,"
        "\"metadata\":{\"k\":\"v\"}}}";
    assert_int_equal(parse(line, &a, &r, err), GW_OK);
    assert_string_equal(r.custom_id, "req-1");
    assert_string_equal(r.batch_id, "b1");
    assert_string_equal(r.agent_did, "did:agent:batch");
    assert_string_equal(r.system_prompt, "Be brief.");
    assert_int_equal(r.message_count, 1);
    assert_int_equal(r.messages[0].role, GW_ROLE_USER);
    assert_string_equal(r.messages[0].content, "Hi there");
    assert_int_equal(r.max_tokens, 50);
    assert_true(r.temperature > 0.19 && r.temperature < 0.21);
    assert_string_equal(r.model, "gpt-x");
    assert_string_equal(gw_map_get(&r.metadata, "k"), "v");
    char id[37];
    gw_cli_batch_request_id("b1", "req-1", id);
    assert_string_equal(r.request_id, id);
    gw_arena_cleanup(&a);
}

static void test_batch_parse_errors(void **state)
{
    gw_arena a;
    gw_arena_init(&a, 1 << 20);
    gw_request r;
    char err[256];
    const char *bad[] = {
        "not json",
        "[1,2]",
        "{\"body\":{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}}",
        "{\"custom_id\":\"\",\"body\":{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}}",
        "{\"custom_id\":\"a\",\"url\":\"/v1/embeddings\",\"body\":{}}",
        "{\"custom_id\":\"a\",\"body\":{\"messages\":[]}}",
        "{\"custom_id\":\"a\",\"body\":{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}}",
        "{\"custom_id\":\"a\",\"body\":{\"messages\":[{\"role\":\"user\",\"content\":5}]}}",
        "{\"custom_id\":\"a\",\"body\":{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
        "\"max_tokens\":0}}",
        "{\"custom_id\":\"a\",\"body\":{\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]}}",
        "{\"custom_id\":\"a\",\"custom_id\":\"b\",\"body\":{}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        gw_arena_reset(&a);
        assert_int_equal(parse(bad[i], &a, &r, err), GW_E_INVALID_REQUEST);
        assert_true(strlen(err) > 0);
    }
    char *huge = malloc(GW_CLI_BATCH_MAX_LINE_BYTES + 2);
    memset(huge, ' ', GW_CLI_BATCH_MAX_LINE_BYTES + 1);
    huge[GW_CLI_BATCH_MAX_LINE_BYTES + 1] = '\0';
    assert_int_equal(parse(huge, &a, &r, err), GW_E_LIMIT);
    free(huge);
    gw_arena_cleanup(&a);
}

static gw_err produce_parse(const char *line, gw_arena *a, gw_request *r, char *prio, char *err)
{
    return gw_cli_json_request(line, strlen(line), a, r, prio, 16, err, 256);
}

static void test_produce_line(void **state)
{
    gw_arena a;
    gw_arena_init(&a, 1 << 20);
    gw_request r;
    char err[256], prio[16] = "";
    assert_int_equal(
        produce_parse("{\"request_id\":\"p-1\",\"prompt\":\"one\",\"priority\":\"low\","
                      "\"max_tokens\":7}",
                      &a, &r, prio, err),
        GW_OK);
    assert_string_equal(r.request_id, "p-1");
    assert_int_equal(r.message_count, 1);
    assert_int_equal(r.messages[0].role, GW_ROLE_USER);
    assert_string_equal(r.messages[0].content, "one");
    assert_int_equal(r.max_tokens, 7);
    assert_true(r.enable_cache); /* schema default */
    assert_string_equal(prio, "low");
    prio[0] = '\0';
    assert_int_equal(produce_parse("{\"messages\":[{\"role\":\"system\",\"content\":\"s\"},"
                                   "{\"role\":\"USER\",\"content\":\"two\"}],"
                                   "\"routing_strategy\":\"cheapest\",\"metadata\":{\"k\":\"v\"}}",
                                   &a, &r, prio, err),
                     GW_OK);
    assert_null(r.request_id); /* the caller generates one */
    assert_int_equal(r.message_count, 2);
    assert_int_equal(r.messages[0].role, GW_ROLE_SYSTEM);
    assert_int_equal(r.routing_strategy, GW_ROUTE_CHEAPEST);
    assert_string_equal(gw_map_get(&r.metadata, "k"), "v");
    assert_string_equal(prio, "");
    struct {
        const char *line, *reason;
    } bad[] = {
        {"not json", "not a JSON object"},
        {"{\"request_id\":\"x\"}", "messages is missing"},
        {"{\"prompt\":5}", "prompt must be a string"},
        {"{\"prompt\":\"a\",\"messages\":[]}", "not both"},
        {"{\"prompt\":\"a\",\"priority\":\"urgent\"}", "priority must be"},
        {"{\"prompt\":\"a\",\"max_token\":5}", "max_token:"},
        {"{\"prompt\":\"a\",\"temperature\":\"hot\"}", "temperature:"},
        {"{\"messages\":[{\"content\":\"x\"}]}", "role:"},
        {"{\"messages\":[{\"role\":\"user\"}]}", "messages[0].content is missing"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        gw_arena_reset(&a);
        assert_int_equal(produce_parse(bad[i].line, &a, &r, prio, err), GW_E_INVALID_REQUEST);
        if (!strstr(err, bad[i].reason))
            fail_msg("%s: got \"%s\", want \"%s\"", bad[i].line, err, bad[i].reason);
    }
    gw_arena_cleanup(&a);
}

static void test_request_ids_deterministic(void **state)
{
    char a[37], b[37], c[37], d[37];
    gw_cli_batch_request_id("batch-1", "x", a);
    gw_cli_batch_request_id("batch-1", "x", b);
    gw_cli_batch_request_id("batch-2", "x", c);
    gw_cli_batch_request_id("batch-1x", "", d); /* separator keeps pairs apart */
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_string_not_equal(a, d);
    assert_int_equal(strlen(a), 36);
    assert_int_equal(a[14], '8');
    assert_int_equal(a[8], '-');
}

static void test_batch_output_line(void **state)
{
    gw_response r = {.request_id = "rid",
                     .content = "Hello",
                     .model_id = "mock-1",
                     .provider = "mock",
                     .finish_reason = "stop",
                     .token_usage = {3, 4, 7}};
    char *line = gw_cli_batch_output_line(&r, "c-1", 1700000000);
    assert_non_null(line);
    json_t *j = json_loads(line, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "custom_id")), "c-1");
    assert_true(json_is_null(json_object_get(j, "error")));
    json_t *resp = json_object_get(j, "response");
    assert_int_equal(json_integer_value(json_object_get(resp, "status_code")), 200);
    json_t *body = json_object_get(resp, "body");
    assert_string_equal(json_string_value(json_object_get(body, "object")), "chat.completion");
    json_t *msg = json_object_get(json_array_get(json_object_get(body, "choices"), 0), "message");
    assert_string_equal(json_string_value(json_object_get(msg, "content")), "Hello");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(body, "usage"), "total_tokens")), 7);
    char cid[64];
    assert_int_equal(gw_cli_batch_output_custom_id(line, strlen(line), cid, sizeof cid), GW_OK);
    assert_string_equal(cid, "c-1");
    json_decref(j);
    free(line);

    gw_error_rec er = {.code = "E4003", .message = "request has no messages"};
    gw_response e = {.request_id = "rid2", .error = &er};
    assert_int_equal(gw_cli_batch_status_code(&e), 400);
    line = gw_cli_batch_output_line(&e, "c-2", 0);
    j = json_loads(line, 0, NULL);
    body = json_object_get(json_object_get(j, "response"), "body");
    assert_string_equal(json_string_value(json_object_get(json_object_get(body, "error"), "code")),
                        "E4003");
    json_decref(j);
    free(line);
    er.code = "E4300";
    assert_int_equal(gw_cli_batch_status_code(&e), 429);
    er.code = "E4200";
    assert_int_equal(gw_cli_batch_status_code(&e), 502);
}

static void test_resume_scan_output(void **state)
{
    gw_response r = {.request_id = "x", .content = "y"};
    char *l1 = gw_cli_batch_output_line(&r, "a", 0);
    char *l2 = gw_cli_batch_output_line(&r, "b", 0);
    char buf[4096];
    int n = snprintf(buf, sizeof buf, "%s\n%s\n%s\n{\"custom_id\":\"partial", l1, l2, l1);
    gw_cli_strset done;
    gw_cli_strset_init(&done, 100);
    size_t valid, bad, dup;
    assert_int_equal(gw_cli_resume_scan_output(buf, (size_t)n, &done, &valid, &bad, &dup), GW_OK);
    assert_int_equal(done.count, 2);
    assert_int_equal(dup, 1);
    assert_int_equal(bad, 0);
    assert_int_equal(valid, strlen(l1) * 2 + strlen(l2) + 3);
    gw_cli_strset_cleanup(&done);

    /* a corrupt line stops the scan there */
    n = snprintf(buf, sizeof buf, "%s\ngarbage\n%s\n", l1, l2);
    gw_cli_strset_init(&done, 100);
    assert_int_equal(gw_cli_resume_scan_output(buf, (size_t)n, &done, &valid, &bad, &dup), GW_OK);
    assert_int_equal(done.count, 1);
    assert_int_equal(bad, 1);
    assert_int_equal(valid, strlen(l1) + 1);
    gw_cli_strset_cleanup(&done);
    free(l1);
    free(l2);
}

static void test_resume_state(void **state)
{
    char *h = gw_cli_resume_state_header("batch_abc-1");
    char *p1 = gw_cli_resume_state_line("c\"1");
    char *p2 = gw_cli_resume_state_line("c2");
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "%s%s%s\"c3", h, p1, p2);
    char bid[GW_CLI_BATCH_ID_MAX];
    gw_cli_strset pub;
    gw_cli_strset_init(&pub, 10);
    assert_int_equal(gw_cli_resume_parse_state(buf, (size_t)n, bid, &pub), GW_OK);
    assert_string_equal(bid, "batch_abc-1");
    assert_int_equal(pub.count, 2);
    assert_true(gw_cli_strset_has(&pub, "c\"1"));
    assert_false(gw_cli_strset_has(&pub, "c3"));
    gw_cli_strset_cleanup(&pub);
    assert_int_equal(gw_cli_resume_parse_state("{\"x\":1}\n", 8, bid, NULL), GW_E_INVALID_REQUEST);
    assert_int_equal(gw_cli_resume_parse_state("", 0, bid, NULL), GW_E_INVALID_REQUEST);
    assert_false(gw_cli_resume_batch_id_ok("has space"));
    assert_false(gw_cli_resume_batch_id_ok(""));
    assert_true(gw_cli_resume_batch_id_ok("batch_2024-01:x.y"));
    free(h);
    free(p1);
    free(p2);
}

static void test_progress_format(void **state)
{
    char buf[256];
    gw_cli_progress_format(buf, sizeof buf, 50, 100, 2, 10.0, 10);
    assert_string_equal(buf, "[#####.....] 50/100   50.0%  5/s  eta 10s  errors 2");
    gw_cli_progress_format(buf, sizeof buf, 100, 100, 0, 0.0, 0);
    assert_string_equal(buf, "100/100  100.0%  0/s  done  errors 0");
    gw_cli_progress_format(buf, sizeof buf, 0, 0, 0, 1.0, 4);
    assert_string_equal(buf, "[####] 0/0  100.0%  0/s  done  errors 0");
}

static void test_procstat(void **state)
{
    uint64_t t = 0, k = 0;
    const char *stat = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 500 0 0 0 "
                       "1234 567 0 0 20 0 3 0 100 1000000 200";
    assert_int_equal(gw_cli_proc_parse_stat(stat, &t), GW_OK);
    assert_int_equal(t, 1234 + 567);
    assert_int_equal(gw_cli_proc_parse_stat("12 (x) S 1 2", &t), GW_E_INVALID_REQUEST);
    assert_int_equal(gw_cli_proc_parse_stat("no paren", &t), GW_E_INVALID_REQUEST);
    const char *status =
        "Name:\tmodelgw\nVmPeak:\t  300 kB\nVmHWM:\t   20480 kB\nVmRSS:\t 1024 kB\n";
    assert_int_equal(gw_cli_proc_parse_status(status, "VmHWM", &k), GW_OK);
    assert_int_equal(k, 20480);
    assert_int_equal(gw_cli_proc_parse_status(status, "VmRSS", &k), GW_OK);
    assert_int_equal(k, 1024);
    assert_int_equal(gw_cli_proc_parse_status(status, "VmSwap", &k), GW_E_INVALID_REQUEST);
    gw_cli_proc self;
    assert_int_equal(gw_cli_proc_sample(getpid(), &self), GW_OK);
    assert_true(self.hwm_kib > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percentiles_nearest_rank),
        cmocka_unit_test(test_percentiles_single_and_cap),
        cmocka_unit_test(test_strset),
        cmocka_unit_test(test_batch_parse_ok),
        cmocka_unit_test(test_batch_parse_errors),
        cmocka_unit_test(test_produce_line),
        cmocka_unit_test(test_request_ids_deterministic),
        cmocka_unit_test(test_batch_output_line),
        cmocka_unit_test(test_resume_scan_output),
        cmocka_unit_test(test_resume_state),
        cmocka_unit_test(test_progress_format),
        cmocka_unit_test(test_procstat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
