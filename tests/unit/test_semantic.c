/* Tests for the semantic pieces: hashing embedder, LSH, the verifier's
 * boolean form, and the labelled sets in tests/data (hit rate on true
 * duplicates, false-hit rate on hard negatives at the default threshold,
 * per part: development, held out, hand-written). The verifier's rules are
 * tested one by one in test_semantic_verify.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "semantic/embed.h"

/* Must match the default of cache.semantic.threshold in config. */
#define DEFAULT_THRESHOLD 0.80

static double sim(const char *a, const char *b)
{
    float va[GW_EMBED_HASH_DIM], vb[GW_EMBED_HASH_DIM];
    gw_embed_hash(a, strlen(a), va);
    gw_embed_hash(b, strlen(b), vb);
    return gw_cosine(va, vb, GW_EMBED_HASH_DIM);
}

static void test_embedder_basics(void **state)
{
    (void)state;
    float v[GW_EMBED_HASH_DIM];
    gw_embed_hash("Hello world", 11, v);
    double n = 0;
    for (int i = 0; i < GW_EMBED_HASH_DIM; i++)
        n += (double)v[i] * v[i];
    assert_true(fabs(n - 1.0) < 1e-5);
    gw_embed_hash("?!", 2, v);
    for (int i = 0; i < GW_EMBED_HASH_DIM; i++)
        assert_true(v[i] == 0.0f);
    assert_true(sim("What is 2+2?", "what is 2+2") > 0.99);
    assert_true(sim("How do I sort a list in Python?", "Best pizza in Naples") < 0.2);
    char tag[64];
    gw_embedder_tag(GW_EMBED_HASH_ID, GW_EMBED_HASH_VERSION, GW_EMBED_HASH_DIM, tag, sizeof tag);
    assert_string_equal(tag, "hash-v1-d512");
}

static void test_guards(void **state)
{
    (void)state;
    assert_true(gw_semantic_guards_agree("What is 2+2?", "what's 2 + 2"));
    assert_false(gw_semantic_guards_agree("flights from NY to FL", "flights from FL to NY"));
    assert_true(gw_semantic_guards_agree("flights from NY to FL", "Flights from ny to fl please"));
    assert_false(gw_semantic_guards_agree("is X safe", "is X not safe"));
    assert_false(gw_semantic_guards_agree("is it safe", "isn't it safe"));
    assert_false(gw_semantic_guards_agree("sort 10 items", "sort 100 items"));
    assert_false(gw_semantic_guards_agree("convert 10 km", "convert 10 miles"));
    assert_true(gw_semantic_guards_agree("sort 1,000 items", "sort 1000 items."));
    assert_false(gw_semantic_guards_agree("say \"yes\"", "say \"no\""));
    assert_true(gw_semantic_guards_agree("don't stop", "Don't stop!"));
    assert_false(gw_semantic_guards_agree("capital of France", "capital of Spain"));
}

static void test_lsh(void **state)
{
    (void)state;
    gw_lsh l;
    assert_int_equal(gw_lsh_init(&l, GW_EMBED_HASH_DIM, 20, 10, 42), 0);
    float a[GW_EMBED_HASH_DIM], b[GW_EMBED_HASH_DIM];
    uint64_t ka[20], kb[20];
    gw_embed_hash("How do I sort a list in Python?", 31, a);
    gw_lsh_keys(&l, a, ka);
    gw_lsh_keys(&l, a, kb);
    assert_memory_equal(ka, kb, sizeof ka);
    gw_embed_hash("how do i sort a list in python", 30, b);
    gw_lsh_keys(&l, b, kb);
    int shared = 0;
    for (int i = 0; i < 20; i++)
        shared += ka[i] == kb[i];
    assert_true(shared > 0);
    /* Analysis helper: monotone in cos, within [0, 1]. */
    assert_true(gw_lsh_collision_probability(20, 10, 0.95) >
                gw_lsh_collision_probability(20, 10, 0.5));
    assert_true(gw_lsh_collision_probability(20, 10, 1.0) > 0.999);
    gw_lsh_cleanup(&l);
    assert_int_equal(gw_lsh_init(&l, 0, 20, 10, 1), -1);
    assert_int_equal(gw_lsh_init(&l, 8, 65, 10, 1), -1);
}

typedef struct {
    int dup, dup_hit, neg, neg_hit;
} eval_counts;

/* split NULL: every row; rows without a split field are held out. */
static void eval_file(const char *file, const char *split, double threshold, eval_counts *c,
                      int verbose)
{
    const char *dir = getenv("MODELGW_SOURCE_DIR");
    char path[512];
    snprintf(path, sizeof path, "%s/tests/data/%s", dir ? dir : ".", file);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    memset(c, 0, sizeof *c);
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        json_error_t err;
        json_t *o = json_loads(line, 0, &err);
        assert_non_null(o);
        const char *a = json_string_value(json_object_get(o, "a"));
        const char *b = json_string_value(json_object_get(o, "b"));
        const char *label = json_string_value(json_object_get(o, "label"));
        const char *sp = json_string_value(json_object_get(o, "split"));
        assert_non_null(a);
        assert_non_null(b);
        assert_non_null(label);
        if (split != NULL && strcmp(split, sp ? sp : "heldout") != 0) {
            json_decref(o);
            continue;
        }
        double s = sim(a, b);
        int hit = s >= threshold && gw_semantic_guards_agree(a, b);
        /* The verdict must not depend on which prompt was cached first. */
        if (gw_semantic_guards_agree(a, b) != gw_semantic_guards_agree(b, a))
            fail_msg("asymmetric verdict: %s | %s", a, b);
        if (strcmp(label, "dup") == 0) {
            c->dup++;
            c->dup_hit += hit;
            if (verbose && !hit)
                fprintf(stderr, "  miss %.3f %s | %s\n", s, a, b);
        } else {
            c->neg++;
            c->neg_hit += hit;
            if (verbose && hit)
                fprintf(stderr, "  FALSE HIT %.3f %s | %s\n", s, a, b);
        }
        json_decref(o);
    }
    fclose(f);
}

/* Runs one part through the hash embedder and the verifier at the default
 * threshold; returns the hit rate and asserts the false-hit aim (<= 1%). */
static double eval_part(const char *file, const char *split, int min_pairs)
{
    eval_counts c;
    eval_file(file, split, DEFAULT_THRESHOLD, &c, getenv("MODELGW_EVAL_VERBOSE") != NULL);
    assert_true(c.dup + c.neg >= min_pairs);
    assert_true(c.dup > 0 && c.neg > 0);
    double hit_rate = (double)c.dup_hit / c.dup;
    double false_rate = (double)c.neg_hit / c.neg;
    fprintf(stderr,
            "semantic eval %s%s%s (hash embedder, threshold %.2f): hit rate %.1f%% (%d/%d), "
            "false-hit rate %.2f%% (%d/%d)\n",
            file, split ? " " : "", split ? split : "", DEFAULT_THRESHOLD, 100 * hit_rate,
            c.dup_hit, c.dup, 100 * false_rate, c.neg_hit, c.neg);
    assert_true(false_rate <= 0.01);
    return hit_rate;
}

/* The numbers docs/semantic-cache.md reports for the hash embedder. The
 * development part is what the verifier was tuned on; the held-out part and
 * the hand-written set were not. */
static void test_eval_sets(void **state)
{
    (void)state;
    assert_true(eval_part("semantic_eval.jsonl", "dev", 150) >= 0.80);
    assert_true(eval_part("semantic_eval.jsonl", "heldout", 150) >= 0.80);
    /* Hand-written pairs: below the 60% aim (paraphrases never pass the
     * verifier, typos lower the hash cosine); this floor guards the 49.2%
     * measured, it is not the aim. */
    assert_true(eval_part("semantic_handmade.jsonl", NULL, 200) >= 0.45);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embedder_basics),
        cmocka_unit_test(test_guards),
        cmocka_unit_test(test_lsh),
        cmocka_unit_test(test_eval_sets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
