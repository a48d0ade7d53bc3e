/* Unit tests for modelgw-mockllm's pure parts: the HTTP/1.1 request parser,
 * fault specs, counters and the deterministic answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mockllm/mllm_dialect.h"
#include "mockllm/mllm_fault.h"
#include "mockllm/mllm_http.h"

static void test_parse_pipelined(void **state)
{
    const char *in = "POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n"
                     "X-Mock-Fault:  hang \r\n\r\n{}GET /health HTTP/1.0\r\n\r\n";
    gw_mllm_req r;
    bool complete;
    /* every prefix is incomplete, never an error */
    size_t first = strlen(in) - strlen("GET /health HTTP/1.0\r\n\r\n");
    for (size_t n = 0; n < first; n++) {
        assert_int_equal(gw_mllm_parse(in, n, &r, &complete), GW_OK);
        assert_false(complete);
    }
    assert_int_equal(gw_mllm_parse(in, strlen(in), &r, &complete), GW_OK);
    assert_true(complete);
    assert_int_equal(r.total_len, first);
    assert_int_equal(r.path_len, strlen("/v1/chat/completions"));
    assert_int_equal(r.body_len, 2);
    assert_true(r.keep_alive);
    size_t n;
    const char *v = gw_mllm_header_get(&r, "x-mock-fault", &n);
    assert_non_null(v);
    assert_int_equal(n, 4);
    assert_memory_equal(v, "hang", 4);
    assert_int_equal(gw_mllm_parse(in + first, strlen(in) - first, &r, &complete), GW_OK);
    assert_true(complete);
    assert_false(r.keep_alive); /* HTTP/1.0 without keep-alive */
}

static void test_parse_errors(void **state)
{
    gw_mllm_req r;
    bool complete;
    const char *bad[] = {
        "GARBAGE\r\n\r\n",
        "GET / HTTP/2.0\r\n\r\n",
        "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: x1\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(gw_mllm_parse(bad[i], strlen(bad[i]), &r, &complete),
                         GW_E_INVALID_REQUEST);
    const char *big = "POST / HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n";
    assert_int_equal(gw_mllm_parse(big, strlen(big), &r, &complete), GW_E_LIMIT);
    static char head[GW_MLLM_MAX_HEAD_BYTES + 10];
    memset(head, 'a', sizeof head);
    assert_int_equal(gw_mllm_parse(head, sizeof head, &r, &complete), GW_E_LIMIT);
}

static void test_fault_specs(void **state)
{
    gw_mllm_fault f;
    gw_mllm_fault_init(&f);
    const char *s = "429ms:1500, drip:20,fail:2:502,cut";
    assert_int_equal(gw_mllm_fault_parse(&f, s, strlen(s)), GW_OK);
    assert_int_equal(f.status, 429);
    assert_int_equal(f.retry_after_ms, 1500);
    assert_int_equal(f.drip_ms, 20);
    assert_int_equal(f.fail_times, 2);
    assert_int_equal(f.fail_status, 502);
    assert_true(f.cut);
    assert_int_equal(f.rl_remaining, -1);
    const char *rl = "ratelimit:3:50";
    assert_int_equal(gw_mllm_fault_parse(&f, rl, strlen(rl)), GW_OK);
    assert_int_equal(f.rl_remaining, 3);
    assert_int_equal(f.rl_limit, 50);
    rl = "ratelimit:0";
    assert_int_equal(gw_mllm_fault_parse(&f, rl, strlen(rl)), GW_OK);
    assert_int_equal(f.rl_remaining, 0);
    assert_int_equal(f.rl_limit, 100);
    const char *bad[] = {"nope", "status:99", "fail:x", "drip", "tokens:0", "ratelimit:1:0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gw_mllm_fault_init(&f);
        assert_int_equal(gw_mllm_fault_parse(&f, bad[i], strlen(bad[i])), GW_E_INVALID_REQUEST);
    }
}

static void test_rules(void **state)
{
    gw_mllm_config c;
    gw_mllm_config_init(&c);
    char path[64];
    snprintf(path, sizeof path, "/tmp/test_mockllm_rules_%d.json", (int)getpid());
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("{\"tokens\":5,\"rules\":[{\"model\":\"m1\",\"fault\":\"status:500\"},"
          "{\"prompt_contains\":\"slow\",\"path\":\"/api/chat\",\"fault\":\"ttft:10\"}]}",
          fp);
    fclose(fp);
    char err[256];
    assert_int_equal(gw_mllm_config_load(&c, path, err, sizeof err), GW_OK);
    assert_int_equal(c.tokens, 5);
    gw_mllm_fault f;
    gw_mllm_fault_init(&f);
    assert_int_equal(gw_mllm_rules_apply(&c, "m1", "be slow", "/v1/messages", &f), GW_OK);
    assert_int_equal(f.status, 500);
    assert_int_equal(f.ttft_ms, -1);
    gw_mllm_fault_init(&f);
    assert_int_equal(gw_mllm_rules_apply(&c, "m2", "be slow", "/api/chat", &f), GW_OK);
    assert_int_equal(f.status, 0);
    assert_int_equal(f.ttft_ms, 10);
    gw_mllm_config_cleanup(&c);
    fp = fopen(path, "w");
    fputs("{\"rules\":[{\"fault\":\"bogus\"}]}", fp);
    fclose(fp);
    gw_mllm_config_init(&c);
    assert_int_equal(gw_mllm_config_load(&c, path, err, sizeof err), GW_E_CONFIG);
    gw_mllm_config_cleanup(&c);
    remove(path);
}

static void test_counts(void **state)
{
    gw_mllm_counts t;
    gw_mllm_counts_init(&t);
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "id-%d", i % 100);
        gw_mllm_counts_incr(&t, key, strlen(key));
    }
    assert_int_equal(t.count, 100);
    assert_int_equal(gw_mllm_counts_incr(&t, "id-7", 4), 11);
    gw_mllm_buf b;
    gw_mllm_buf_init(&b, 1 << 20);
    assert_true(gw_mllm_counts_json(&t, &b));
    assert_non_null(strstr(b.p, "\"id-7\":11"));
    gw_mllm_buf_cleanup(&b);
    gw_mllm_counts_cleanup(&t);
}

static void test_deterministic_answer(void **state)
{
    const char *body = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                       "\"max_tokens\":3,\"stream\":true}";
    gw_mllm_call a, b;
    char err[128];
    assert_int_equal(gw_mllm_call_parse(GW_MLLM_OPENAI, body, strlen(body), &a, err, sizeof err),
                     GW_OK);
    assert_int_equal(gw_mllm_call_parse(GW_MLLM_ANTHROPIC, body, strlen(body), &b, err, sizeof err),
                     GW_OK);
    gw_mllm_call_plan(&a, 16, 64);
    gw_mllm_call_plan(&b, 16, 64);
    assert_int_equal(a.ntok, 3);
    assert_true(a.length_cut);
    assert_true(a.stream);
    for (int i = 0; i < 3; i++) {
        bool sp1, sp2;
        assert_string_equal(gw_mllm_token(&a, i, &sp1), gw_mllm_token(&b, i, &sp2));
    }
    const char *anth = "{\"model\":\"m\",\"messages\":[]}";
    assert_int_equal(gw_mllm_call_parse(GW_MLLM_ANTHROPIC, anth, strlen(anth), &b, err, sizeof err),
                     GW_E_INVALID_REQUEST); /* max_tokens is required */
    assert_int_equal(gw_mllm_call_parse(GW_MLLM_OPENAI, "[1]", 3, &b, err, sizeof err),
                     GW_E_INVALID_REQUEST);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_pipelined), cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_fault_specs),     cmocka_unit_test(test_rules),
        cmocka_unit_test(test_counts),          cmocka_unit_test(test_deterministic_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
