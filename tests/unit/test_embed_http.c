/*
 * Embedders: the hashing one through the asynchronous interface, and the
 * HTTP ones (OpenAI /v1/embeddings, Ollama /api/embed) against a real
 * modelgw-mockllm spawned on a free port: batching within the window,
 * coalescing of identical texts, the per-text cache, dimension checks,
 * provider errors, limits, shutdown, and the semantic tier on top of an
 * HTTP embedder (asynchronous embedding before the search, one embedding for
 * a lookup followed by a store).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loop/http_client.h"
#include "semantic/embed_http.h"
#include "semantic/embedder.h"
#include "semantic/semcache.h"
#include "test_support.h"

static gw_test_mock mock;

static int start_mock(void **state)
{
    (void)state;
    return gw_test_mock_start(&mock, NULL);
}

static int stop_mock(void **state)
{
    (void)state;
    gw_test_mock_stop(&mock);
    return 0;
}

enum { MOCK_DIM = 64 }; /* modelgw-mockllm's default embedding size */

typedef struct {
    int done;
    gw_err err;
    size_t dim;
    float vec[GW_EMBED_MAX_DIM];
} answer;

static int in_call; /* set while gw_embedder_embed runs */

static void on_vec(void *ud, gw_err err, const float *vec, size_t dim)
{
    answer *a = ud;
    assert_int_equal(in_call, 0);
    a->done++;
    a->err = err;
    a->dim = dim;
    if (vec != NULL)
        memcpy(a->vec, vec, dim * sizeof(float));
}

static void embed(gw_embedder *e, const char *text, answer *a)
{
    in_call = 1;
    gw_embedder_embed(e, text, strlen(text), on_vec, a);
    in_call = 0;
}

typedef struct {
    uv_loop_t loop;
    gw_http *http;
    gw_deployment dep;
    gw_embedder *e;
} fixture;

static void fixture_init(fixture *f, gw_provider_kind kind, const char *model,
                         const gw_embed_http_opts *o)
{
    uv_loop_init(&f->loop);
    assert_int_equal(gw_http_new(&f->loop, NULL, &f->http), GW_OK);
    f->dep = (gw_deployment){.id = "emb",
                             .provider = kind,
                             .model = model,
                             .base_url = mock.base_url,
                             .api_key = "sk-embed-secret-123",
                             .total_timeout_ms = 5000};
    assert_int_equal(gw_embedder_http_new(f->http, &f->dep, o, &f->e), GW_OK);
}

static void fixture_cleanup(fixture *f)
{
    gw_embedder_free(f->e);
    gw_http_free(f->http);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static void run_until(fixture *f, answer *a, size_t n)
{
    for (int i = 0; i < 200000; i++) {
        size_t done = 0;
        for (size_t k = 0; k < n; k++)
            done += a[k].done > 0;
        if (done == n)
            return;
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    fail_msg("embeddings did not complete");
}

static double norm(const float *v, size_t dim)
{
    double n = 0;
    for (size_t i = 0; i < dim; i++)
        n += (double)v[i] * v[i];
    return sqrt(n);
}

static void batching_case(gw_provider_kind kind)
{
    fixture f;
    gw_embed_http_opts o = {.dim = MOCK_DIM};
    fixture_init(&f, kind, "embed-model", &o);
    static answer a[10];
    memset(a, 0, sizeof a);
    char texts[10][32];
    for (int i = 0; i < 10; i++) {
        snprintf(texts[i], sizeof texts[i], "text number %d", i);
        embed(f.e, texts[i], &a[i]);
    }
    run_until(&f, a, 10);
    gw_embedder_stats s;
    gw_embedder_stats_get(f.e, &s);
    assert_int_equal(s.http_calls, 1); /* ten texts within the window: one call */
    assert_int_equal(s.http_texts, 10);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(a[i].done, 1);
        assert_int_equal(a[i].err, GW_OK);
        assert_int_equal(a[i].dim, MOCK_DIM);
        assert_true(fabs(norm(a[i].vec, MOCK_DIM) - 1.0) < 1e-4);
    }
    assert_true(gw_cosine(a[0].vec, a[1].vec, MOCK_DIM) < 0.9);

    /* The same texts again: from the per-text cache, no HTTP. */
    static answer b[10];
    memset(b, 0, sizeof b);
    for (int i = 0; i < 10; i++)
        embed(f.e, texts[i], &b[i]);
    run_until(&f, b, 10);
    gw_embedder_stats_get(f.e, &s);
    assert_int_equal(s.http_calls, 1);
    assert_int_equal(s.cache_hits, 10);
    for (int i = 0; i < 10; i++)
        assert_memory_equal(a[i].vec, b[i].vec, MOCK_DIM * sizeof(float));
    assert_string_not_equal(gw_embedder_name(f.e), "");
    assert_non_null(strstr(gw_embedder_name(f.e), "-d64"));
    fixture_cleanup(&f);
}

static void test_openai_batching(void **state)
{
    (void)state;
    batching_case(GW_PROVIDER_OPENAI);
}

static void test_ollama_batching(void **state)
{
    (void)state;
    batching_case(GW_PROVIDER_OLLAMA);
}

static void test_coalesce_and_batch_size(void **state)
{
    (void)state;
    fixture f;
    gw_embed_http_opts o = {.dim = MOCK_DIM, .max_batch = 4};
    fixture_init(&f, GW_PROVIDER_OPENAI, "embed-model", &o);
    answer a[13];
    memset(a, 0, sizeof a);
    char texts[10][32];
    for (int i = 0; i < 10; i++) {
        snprintf(texts[i], sizeof texts[i], "batch text %d", i);
        embed(f.e, texts[i], &a[i]);
    }
    for (int i = 10; i < 13; i++)
        embed(f.e, texts[0], &a[i]); /* identical to one already waiting */
    run_until(&f, a, 13);
    gw_embedder_stats s;
    gw_embedder_stats_get(f.e, &s);
    assert_int_equal(s.http_calls, 3); /* 4 + 4 + 2 */
    assert_int_equal(s.http_texts, 10);
    assert_int_equal(s.coalesced, 3);
    for (int i = 10; i < 13; i++) {
        assert_int_equal(a[i].err, GW_OK);
        assert_memory_equal(a[i].vec, a[0].vec, MOCK_DIM * sizeof(float));
    }
    fixture_cleanup(&f);
}

static void expect_error(const char *model, size_t dim, gw_err want)
{
    fixture f;
    gw_embed_http_opts o = {.dim = dim};
    fixture_init(&f, GW_PROVIDER_OPENAI, model, &o);
    answer a[2];
    memset(a, 0, sizeof a);
    embed(f.e, "first", &a[0]);
    embed(f.e, "second", &a[1]);
    run_until(&f, a, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(a[i].done, 1);
        assert_int_equal(a[i].err, want);
        assert_int_equal(a[i].dim, 0);
    }
    gw_embedder_stats s;
    gw_embedder_stats_get(f.e, &s);
    assert_int_equal(s.errors, 2);
    fixture_cleanup(&f);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("embed-model", 32, GW_E_CONFIG); /* the server answers 64 dimensions */
    expect_error("fault-status:500", MOCK_DIM, GW_E_PROVIDER_UNAVAILABLE);
    expect_error("fault-status:401", MOCK_DIM, GW_E_PROVIDER_AUTH);
    expect_error("fault-echo-auth", MOCK_DIM, GW_E_PROVIDER_AUTH);
    expect_error("fault-malformed", MOCK_DIM, GW_E_PROVIDER_BAD_RESPONSE);
    expect_error("fault-429:1", MOCK_DIM, GW_E_PROVIDER_RATE_LIMITED);
}

static void test_limits_and_shutdown(void **state)
{
    (void)state;
    fixture f;
    gw_embed_http_opts o = {.dim = MOCK_DIM, .max_queued = 2, .max_text_bytes = 16};
    fixture_init(&f, GW_PROVIDER_OPENAI, "embed-model", &o);
    answer a[5];
    memset(a, 0, sizeof a);
    embed(f.e, "", &a[0]);
    embed(f.e, "this text is longer than sixteen bytes", &a[1]);
    embed(f.e, "one", &a[2]);
    embed(f.e, "two", &a[3]);
    embed(f.e, "three", &a[4]); /* a third text waiting: over max_queued */
    run_until(&f, a, 5);
    assert_int_equal(a[0].err, GW_E_INVALID_REQUEST);
    assert_int_equal(a[1].err, GW_E_LIMIT);
    assert_int_equal(a[2].err, GW_OK);
    assert_int_equal(a[3].err, GW_OK);
    assert_int_equal(a[4].err, GW_E_PROVIDER_SATURATED);

    /* Freed with texts waiting: each is answered once, SHUTTING_DOWN. */
    answer b[2];
    memset(b, 0, sizeof b);
    embed(f.e, "four", &b[0]);
    embed(f.e, "five", &b[1]);
    gw_embedder_free(f.e);
    f.e = NULL;
    assert_int_equal(b[0].done, 1);
    assert_int_equal(b[0].err, GW_E_SHUTTING_DOWN);
    assert_int_equal(b[1].err, GW_E_SHUTTING_DOWN);
    fixture_cleanup(&f);
}

static void test_hash_embedder_async(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    gw_embedder *e;
    assert_int_equal(gw_embedder_hash_new(&loop, &e), GW_OK);
    assert_string_equal(gw_embedder_name(e), "hash-v1-d512");
    assert_int_equal(gw_embedder_dim(e), GW_EMBED_HASH_DIM);
    answer a = {0};
    embed(e, "What is the capital of Australia?", &a);
    assert_int_equal(a.done, 0); /* never inside the call */
    uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(a.done, 1);
    assert_int_equal(a.err, GW_OK);
    float v[GW_EMBED_HASH_DIM];
    assert_true(gw_embedder_embed_now(e, "What is the capital of Australia?", 33, v));
    assert_memory_equal(v, a.vec, sizeof v);
    answer b = {0};
    embed(e, "pending at free", &b);
    gw_embedder_free(e);
    assert_int_equal(b.err, GW_E_SHUTTING_DOWN);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

typedef struct {
    int done;
    gw_err err;
    char key[GW_SEM_MAX_KEY];
    double sim;
} sem_result;

static void on_lookup(void *ud, gw_err err, const char *key, double sim)
{
    sem_result *r = ud;
    r->done = 1;
    r->err = err;
    snprintf(r->key, sizeof r->key, "%s", key ? key : "");
    r->sim = sim;
}

static void on_put(void *ud, gw_err err)
{
    sem_result *r = ud;
    r->done = 1;
    r->err = err;
}

static void run_sem(fixture *f, sem_result *r)
{
    for (int i = 0; i < 200000 && !r->done; i++)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_true(r->done);
}

static sem_result sem_lookup(fixture *f, gw_semcache *c, const char *text, gw_sem_query *q)
{
    gw_message m = {.role = GW_ROLE_USER, .content = text};
    gw_request req = {.request_id = "r", .messages = &m, .message_count = 1, .max_tokens = 10};
    sem_result r = {0};
    assert_true(gw_semcache_prepare(c, &req, "tenant", q));
    assert_false(q->embedded); /* HTTP: embedded during the lookup */
    gw_semcache_lookup(c, q, on_lookup, &r);
    run_sem(f, &r);
    return r;
}

static void test_semcache_over_http(void **state)
{
    (void)state;
    fixture f;
    gw_embed_http_opts o = {.dim = MOCK_DIM};
    fixture_init(&f, GW_PROVIDER_OPENAI, "embed-model", &o);
    gw_semstore *store;
    gw_semstore_opts so = {.prefix = "t:"};
    assert_int_equal(gw_semstore_mem_new(&f.loop, &so, &store), GW_OK);
    gw_semcache_opts co = {.enabled = true,
                           .threshold = 0.9,
                           .threshold_floor = 0.8,
                           .max_messages = 4,
                           .max_prompt_bytes = 4096,
                           .bands = 20,
                           .rows = 10,
                           .seed = 7};
    gw_semcache *c;
    assert_int_equal(gw_semcache_new_with(store, f.e, &co, &c), GW_OK);
    assert_string_equal(gw_semcache_embedder_tag(c), gw_embedder_name(f.e));

    gw_sem_query q;
    sem_result r = sem_lookup(&f, c, "How tall is the Eiffel tower?", &q);
    assert_int_equal(r.err, GW_OK);
    assert_string_equal(r.key, "");
    assert_true(q.embedded);
    sem_result p = {0};
    gw_semcache_store(c, &q, "exact-key-eiffel", 60, on_put, &p);
    run_sem(&f, &p);
    assert_int_equal(p.err, GW_OK);
    gw_semcache_query_cleanup(&q);
    gw_embedder_stats s;
    gw_embedder_stats_get(f.e, &s);
    assert_int_equal(s.texts, 1); /* the store reused the lookup's vector */

    gw_sem_query q2;
    r = sem_lookup(&f, c, "How tall is the Eiffel tower?", &q2);
    assert_string_equal(r.key, "exact-key-eiffel");
    assert_true(r.sim > 0.99);
    gw_semcache_query_cleanup(&q2);
    r = sem_lookup(&f, c, "How old is the Eiffel tower?", &q2);
    assert_string_equal(r.key, "");
    gw_semcache_query_cleanup(&q2);

    gw_semcache_free(c);
    gw_semstore_free(store);
    fixture_cleanup(&f);
}

static void test_tag(void **state)
{
    (void)state;
    gw_deployment a = {.provider = GW_PROVIDER_OLLAMA, .model = "nomic-embed-text:latest"};
    gw_deployment b = {.provider = GW_PROVIDER_OLLAMA, .model = "nomic-embed-text:v1.5"};
    char ta[128], tb[128];
    gw_embed_http_tag(&a, 768, ta, sizeof ta);
    gw_embed_http_tag(&b, 768, tb, sizeof tb);
    assert_string_not_equal(ta, tb);
    assert_null(strchr(ta, ':')); /* tags end up in Redis key names */
    assert_non_null(strstr(ta, "ollama-nomic-embed-text_latest-"));
    assert_non_null(strstr(ta, "-v1-d768"));
    /* A dimension is required; a chat-only provider is refused. */
    gw_embedder *e;
    gw_embed_http_opts o = {0};
    assert_int_equal(gw_embedder_http_new(NULL, &a, &o, &e), GW_E_CONFIG);
    gw_deployment m = {.provider = GW_PROVIDER_ANTHROPIC, .model = "x", .base_url = "http://x"};
    o.dim = 8;
    assert_int_equal(gw_embedder_http_new(NULL, &m, &o, &e), GW_E_CONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tag),
        cmocka_unit_test(test_hash_embedder_async),
        cmocka_unit_test(test_openai_batching),
        cmocka_unit_test(test_ollama_batching),
        cmocka_unit_test(test_coalesce_and_batch_size),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_limits_and_shutdown),
        cmocka_unit_test(test_semcache_over_http),
    };
    return cmocka_run_group_tests(tests, start_mock, stop_mock);
}
