/*
 * modelgw-semantic-eval: a labelled set of prompt pairs run through one
 * embedder and the verifier (src/semantic/verify.h), as the worker does.
 * Sets are JSON lines {"a","b","label":"dup"|"neg","kind","split"}:
 * tests/data/semantic_eval.jsonl (default; split "dev" and "heldout") and
 * tests/data/semantic_handmade.jsonl (no split field: all held out).
 *
 *   modelgw-semantic-eval [--embedder hash|openai:URL:MODEL|ollama:URL:MODEL]
 *                         [--dim N] [--threshold T] [--sweep] [--file F]
 *                         [--split dev|heldout|all] [--kinds]
 *                         [--lsh BANDSxROWS]... [--seed S] [--verbose]
 *
 * Prints the hit rate on true duplicates and the false-hit rate on hard
 * negatives at the threshold (a "RESULT" line that tests parse), the same
 * for cosine alone and for the verifier alone, with --kinds one "KIND" line
 * per category, with --sweep the same from 0.50 to 0.97, with --verbose
 * every miss and false hit with the verifier's reason, and with --lsh the
 * measured LSH recall
 * (pairs sharing at least one bucket) next to the theory, for the set's
 * positives at or above the threshold and for synthetic pairs at cosine
 * 0.85, 0.90, 0.95. The HTTP embedder is the worker's own (batched, cached).
 * The API key, if any, comes from the environment variable MODELGW_EMBED_KEY.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop/http_client.h"
#include "semantic/embedder.h"
#include "semantic/verify.h"

enum { MAX_PAIRS = 20000, MAX_LSH = 8, WAVE = 256 };

typedef struct {
    char *a, *b;
    char kind[48];
    int dup;
    gw_semv_result verdict; /* the verifier's, computed once */
} pair;

typedef struct {
    const char *embedder, *file, *split;
    size_t dim;
    double threshold;
    int sweep, verbose, kinds, nlsh;
    int lsh_bands[MAX_LSH], lsh_rows[MAX_LSH];
    uint64_t seed;
} options;

typedef struct {
    pair *pairs;
    size_t n;
    float *vecs; /* 2n x dim: a then b of each pair */
    double *cos;
    size_t dim;
} eval;

static int usage(void)
{
    fprintf(stderr, "usage: modelgw-semantic-eval [--embedder hash|openai:URL:MODEL|"
                    "ollama:URL:MODEL] [--dim N] [--threshold T] [--sweep] [--file F] "
                    "[--split dev|heldout|all] [--kinds] [--lsh BxR]... [--seed S] [--verbose]\n");
    return 2;
}

static int parse_args(int argc, char **argv, options *o)
{
    *o = (options){.embedder = "hash", .split = "all", .dim = 384, .threshold = -1, .seed = 7};
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--sweep"))
            o->sweep = 1;
        else if (!strcmp(argv[i], "--verbose"))
            o->verbose = 1;
        else if (!strcmp(argv[i], "--kinds"))
            o->kinds = 1;
        else if (v == NULL)
            return -1;
        else if (!strcmp(argv[i], "--embedder"))
            o->embedder = argv[++i];
        else if (!strcmp(argv[i], "--file"))
            o->file = argv[++i];
        else if (!strcmp(argv[i], "--split") &&
                 (!strcmp(v, "dev") || !strcmp(v, "heldout") || !strcmp(v, "all")))
            o->split = argv[++i];
        else if (!strcmp(argv[i], "--dim"))
            o->dim = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--threshold"))
            o->threshold = atof(argv[++i]);
        else if (!strcmp(argv[i], "--seed"))
            o->seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--lsh") && o->nlsh < MAX_LSH &&
                 sscanf(argv[++i], "%dx%d", &o->lsh_bands[o->nlsh], &o->lsh_rows[o->nlsh]) == 2)
            o->nlsh++;
        else
            return -1;
    }
    return o->dim > 0 && o->dim <= GW_EMBED_MAX_DIM ? 0 : -1;
}

static int load_pairs(const char *path, const char *split, eval *ev)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        return -1;
    }
    ev->pairs = calloc(MAX_PAIRS, sizeof *ev->pairs);
    char line[8192];
    int rc = 0;
    while (ev->pairs != NULL && fgets(line, sizeof line, f) && ev->n < MAX_PAIRS) {
        json_t *o = json_loads(line, 0, NULL);
        const char *a = json_string_value(json_object_get(o, "a"));
        const char *b = json_string_value(json_object_get(o, "b"));
        const char *label = json_string_value(json_object_get(o, "label"));
        const char *kind = json_string_value(json_object_get(o, "kind"));
        const char *sp = json_string_value(json_object_get(o, "split"));
        if (a == NULL || b == NULL || label == NULL ||
            (strcmp(label, "dup") != 0 && strcmp(label, "neg") != 0)) {
            fprintf(stderr, "bad line %zu of %s\n", ev->n + 1, path);
            json_decref(o);
            rc = -1;
            break;
        }
        /* Rows without a split (the hand-written set) are held out. */
        if (strcmp(split, "all") != 0 && strcmp(split, sp ? sp : "heldout") != 0) {
            json_decref(o);
            continue;
        }
        pair *p = &ev->pairs[ev->n++];
        *p = (pair){.a = strdup(a), .b = strdup(b), .dup = strcmp(label, "dup") == 0};
        snprintf(p->kind, sizeof p->kind, "%s", kind ? kind : label);
        p->verdict = gw_sem_verify(a, strlen(a), b, strlen(b));
        json_decref(o);
    }
    fclose(f);
    return ev->pairs == NULL ? -1 : rc;
}

/* ---- embedding every text ---- */

typedef struct {
    eval *ev;
    size_t outstanding, failed;
    gw_err first_err;
} embed_run;

typedef struct {
    embed_run *run;
    float *dst;
} slot;

static void on_vec(void *ud, gw_err err, const float *vec, size_t dim)
{
    slot *s = ud;
    s->run->outstanding--;
    if (err != GW_OK || dim != s->run->ev->dim) {
        if (s->run->failed++ == 0)
            s->run->first_err = err != GW_OK ? err : GW_E_CONFIG;
        return;
    }
    memcpy(s->dst, vec, dim * sizeof(float));
}

static int embed_all(uv_loop_t *loop, gw_embedder *e, eval *ev)
{
    size_t total = 2 * ev->n;
    slot *slots = calloc(total, sizeof *slots);
    embed_run run = {.ev = ev};
    for (size_t i = 0; slots != NULL && i < total && run.failed == 0; i++) {
        const pair *p = &ev->pairs[i / 2];
        const char *t = i % 2 ? p->b : p->a;
        slots[i] = (slot){&run, ev->vecs + i * ev->dim};
        if (gw_embedder_embed_now(e, t, strlen(t), slots[i].dst))
            continue;
        run.outstanding++;
        gw_embedder_embed(e, t, strlen(t), on_vec, &slots[i]);
        while (run.outstanding >= WAVE || (i + 1 == total && run.outstanding > 0))
            uv_run(loop, UV_RUN_ONCE);
    }
    while (run.outstanding > 0)
        uv_run(loop, UV_RUN_ONCE);
    free(slots);
    if (run.failed)
        fprintf(stderr, "embedding failed (%zu texts): %s\n", run.failed,
                gw_strerror(run.first_err));
    return slots == NULL || run.failed ? -1 : 0;
}

/* ---- scoring ---- */

typedef struct {
    int dup, dup_hit, neg, neg_hit, neg_cos_hit, dup_cos_hit, dup_ver, neg_ver;
} counts;

/* kind NULL: every pair. */
static counts score(const eval *ev, double t, const char *kind, int verbose)
{
    counts c = {0};
    for (size_t i = 0; i < ev->n; i++) {
        const pair *p = &ev->pairs[i];
        if (kind != NULL && strcmp(kind, p->kind) != 0)
            continue;
        int cos_hit = ev->cos[i] >= t;
        int ver = p->verdict == GW_SEMV_OK;
        int hit = cos_hit && ver;
        if (p->dup) {
            c.dup++;
            c.dup_hit += hit;
            c.dup_cos_hit += cos_hit;
            c.dup_ver += ver;
            if (verbose && !hit)
                printf("  miss %s %.3f %s | %s | %s\n", p->kind, ev->cos[i],
                       gw_semv_name(p->verdict), p->a, p->b);
        } else {
            c.neg++;
            c.neg_hit += hit;
            c.neg_cos_hit += cos_hit;
            c.neg_ver += ver;
            if (verbose && hit)
                printf("  FALSE HIT %s %.3f %s | %s\n", p->kind, ev->cos[i], p->a, p->b);
        }
    }
    return c;
}

static double ratio(int a, int b)
{
    return b ? (double)a / b : 0;
}

static void report(const eval *ev, const options *o, const char *tag)
{
    counts c = score(ev, o->threshold, NULL, o->verbose);
    printf("embedder=%s split=%s pairs=%zu positives=%d negatives=%d\n", tag, o->split, ev->n,
           c.dup, c.neg);
    printf("RESULT threshold=%.3f hit_rate=%.4f hits=%d/%d false_hit_rate=%.4f "
           "false_hits=%d/%d cosine_only_false_hit_rate=%.4f\n",
           o->threshold, ratio(c.dup_hit, c.dup), c.dup_hit, c.dup, ratio(c.neg_hit, c.neg),
           c.neg_hit, c.neg, ratio(c.neg_cos_hit, c.neg));
    printf("cosine_only hit_rate=%.4f false_hit_rate=%.4f; verifier_only hit_rate=%.4f "
           "false_hit_rate=%.4f\n",
           ratio(c.dup_cos_hit, c.dup), ratio(c.neg_cos_hit, c.neg), ratio(c.dup_ver, c.dup),
           ratio(c.neg_ver, c.neg));
    if (o->kinds) {
        for (size_t i = 0; i < ev->n; i++) {
            int first = 1;
            for (size_t j = 0; j < i && first; j++)
                first = strcmp(ev->pairs[j].kind, ev->pairs[i].kind) != 0;
            if (!first)
                continue;
            const pair *p = &ev->pairs[i];
            counts k = score(ev, o->threshold, p->kind, 0);
            printf("KIND %s label=%s pairs=%d hits=%d rate=%.4f cosine_only=%d verifier_only=%d\n",
                   p->kind, p->dup ? "dup" : "neg", p->dup ? k.dup : k.neg,
                   p->dup ? k.dup_hit : k.neg_hit,
                   ratio(p->dup ? k.dup_hit : k.neg_hit, p->dup ? k.dup : k.neg),
                   p->dup ? k.dup_cos_hit : k.neg_cos_hit, p->dup ? k.dup_ver : k.neg_ver);
        }
    }
    if (!o->sweep)
        return;
    for (int k = 0; k <= 47; k++) {
        double t = 0.50 + 0.01 * k;
        if (k % 5 != 0 && t < 0.80)
            continue;
        counts s = score(ev, t, NULL, 0);
        printf("sweep threshold=%.2f hit_rate=%.4f false_hit_rate=%.4f "
               "cosine_only_false_hit_rate=%.4f\n",
               t, ratio(s.dup_hit, s.dup), ratio(s.neg_hit, s.neg), ratio(s.neg_cos_hit, s.neg));
    }
}

/* ---- LSH recall: measured against 1 - (1 - p^rows)^bands ---- */

static int share_bucket(const gw_lsh *l, const float *a, const float *b)
{
    uint64_t ka[GW_LSH_MAX_BANDS], kb[GW_LSH_MAX_BANDS];
    gw_lsh_keys(l, a, ka);
    gw_lsh_keys(l, b, kb);
    for (int i = 0; i < l->bands; i++)
        if (ka[i] == kb[i])
            return 1;
    return 0;
}

static double gauss(uint64_t *s)
{
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    double u1 = ((double)(*s >> 11) + 1) / 9007199254740993.0;
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    double u2 = (double)(*s >> 11) / 9007199254740992.0;
    return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

/* b = c*a + sqrt(1-c^2)*w with w a random unit vector orthogonal to a. */
static void synthetic_pair(size_t dim, double c, uint64_t *s, float *a, float *b)
{
    double dot = 0;
    for (size_t i = 0; i < dim; i++)
        a[i] = (float)gauss(s);
    gw_l2_normalise(a, dim);
    for (size_t i = 0; i < dim; i++)
        b[i] = (float)gauss(s);
    for (size_t i = 0; i < dim; i++)
        dot += (double)a[i] * b[i];
    for (size_t i = 0; i < dim; i++)
        b[i] -= (float)(dot * a[i]);
    gw_l2_normalise(b, dim);
    for (size_t i = 0; i < dim; i++)
        b[i] = (float)(c * a[i] + sqrt(1 - c * c) * b[i]);
}

static void lsh_report(const eval *ev, const options *o, int bands, int rows)
{
    gw_lsh l;
    if (gw_lsh_init(&l, ev->dim, bands, rows, o->seed) != 0) {
        fprintf(stderr, "bad LSH shape %dx%d\n", bands, rows);
        return;
    }
    int n = 0, shared = 0;
    double theory = 0;
    for (size_t i = 0; i < ev->n; i++) {
        if (!ev->pairs[i].dup || ev->cos[i] < o->threshold)
            continue;
        n++;
        shared += share_bucket(&l, ev->vecs + 2 * i * ev->dim, ev->vecs + (2 * i + 1) * ev->dim);
        theory += gw_lsh_collision_probability(bands, rows, ev->cos[i]);
    }
    printf("lsh bands=%d rows=%d eval_positives_at_threshold=%d measured=%.4f theory=%.4f\n", bands,
           rows, n, ratio(shared, n), n ? theory / n : 0);
    float *a = malloc(ev->dim * sizeof(float)), *b = malloc(ev->dim * sizeof(float));
    uint64_t s = o->seed * 2654435761u + 1;
    for (int k = 0; a != NULL && b != NULL && k < 3; k++) {
        double c = 0.85 + 0.05 * k;
        int hits = 0, trials = 2000;
        for (int t = 0; t < trials; t++) {
            synthetic_pair(ev->dim, c, &s, a, b);
            hits += share_bucket(&l, a, b);
        }
        printf("lsh bands=%d rows=%d synthetic_cos=%.2f pairs=%d measured=%.4f theory=%.4f\n",
               bands, rows, c, trials, ratio(hits, trials),
               gw_lsh_collision_probability(bands, rows, c));
    }
    free(a);
    free(b);
    gw_lsh_cleanup(&l);
}

/* ---- embedder from the command line ---- */

static int make_embedder(uv_loop_t *loop, const options *o, gw_http **http, gw_deployment *d,
                         char *spec, gw_embedder **e)
{
    if (strcmp(spec, "hash") == 0)
        return gw_embedder_hash_new(loop, e) == GW_OK ? 0 : -1;
    char *colon = strchr(spec, ':');
    char *last = strrchr(spec, ':');
    if (colon == NULL || last == colon) {
        fprintf(stderr, "--embedder: want hash, openai:URL:MODEL or ollama:URL:MODEL\n");
        return -1;
    }
    *colon = *last = '\0';
    int kind = gw_provider_kind_parse(spec);
    *d = (gw_deployment){.id = "eval-embedder",
                         .provider = kind < 0 ? GW_PROVIDER_MOCK : (gw_provider_kind)kind,
                         .model = last + 1,
                         .base_url = colon + 1,
                         .api_key = getenv("MODELGW_EMBED_KEY"),
                         .total_timeout_ms = 120000};
    gw_embed_http_opts eo = {.dim = o->dim, .max_queued = 2 * WAVE};
    if (gw_http_new(loop, NULL, http) != GW_OK)
        return -1;
    gw_err err = gw_embedder_http_new(*http, d, &eo, e);
    if (err != GW_OK)
        fprintf(stderr, "embedder: %s\n", gw_strerror(err));
    return err == GW_OK ? 0 : -1;
}

static int run(uv_loop_t *loop, options *o, eval *ev)
{
    char spec[1024];
    snprintf(spec, sizeof spec, "%s", o->embedder);
    gw_http *http = NULL;
    gw_deployment dep;
    gw_embedder *e = NULL;
    int rc = make_embedder(loop, o, &http, &dep, spec, &e);
    if (rc == 0) {
        ev->dim = gw_embedder_dim(e);
        ev->vecs = calloc(2 * ev->n * ev->dim, sizeof(float));
        ev->cos = calloc(ev->n, sizeof(double));
        rc = ev->vecs && ev->cos ? embed_all(loop, e, ev) : -1;
    }
    if (rc == 0) {
        for (size_t i = 0; i < ev->n; i++)
            ev->cos[i] =
                gw_cosine(ev->vecs + 2 * i * ev->dim, ev->vecs + (2 * i + 1) * ev->dim, ev->dim);
        if (o->threshold < 0)
            o->threshold = 0.85;
        report(ev, o, gw_embedder_name(e));
        for (int k = 0; k < o->nlsh; k++)
            lsh_report(ev, o, o->lsh_bands[k], o->lsh_rows[k]);
    }
    gw_embedder_free(e);
    if (http != NULL)
        gw_http_free(http);
    uv_run(loop, UV_RUN_DEFAULT);
    return rc;
}

int main(int argc, char **argv)
{
    options o;
    if (parse_args(argc, argv, &o) != 0)
        return usage();
    char path[1024];
    snprintf(path, sizeof path, "%s",
             o.file ? o.file : MODELGW_SOURCE_DIR "/tests/data/semantic_eval.jsonl");
    eval ev = {0};
    int rc = load_pairs(path, o.split, &ev);
    uv_loop_t loop;
    uv_loop_init(&loop);
    if (rc == 0)
        rc = run(&loop, &o, &ev);
    uv_loop_close(&loop);
    for (size_t i = 0; i < ev.n; i++) {
        free(ev.pairs[i].a);
        free(ev.pairs[i].b);
    }
    free(ev.pairs);
    free(ev.vecs);
    free(ev.cos);
    return rc == 0 ? 0 : 1;
}
