/*
 * modelgw-semantic-bench: cost of a semantic-cache lookup as the index grows.
 *
 *   modelgw-semantic-bench [--redis HOST:PORT | --memory] [--entries N]
 *                          [--lookups M] [--bands B] [--rows R]
 *
 *   modelgw-semantic-bench --verify [--rounds N]
 *
 * Fills one namespace with N distinct prompts (pipelined stores), then runs M
 * lookups one at a time (half near-duplicates of stored prompts, half
 * unrelated) and reports, per lookup: wall time, worker CPU time (getrusage),
 * Redis round trips (commands issued), LSH candidates examined, and the hit
 * rate of each half. Keys use a fresh prefix with a short TTL.
 *
 * --verify measures the verifier alone (src/semantic/verify.h), the check a
 * lookup runs on each candidate above the threshold: every pair of
 * tests/data/semantic_eval.jsonl and semantic_handmade.jsonl, N rounds
 * (default 200), then a pair of the longest prompts the tier accepts (4096
 * bytes); CPU time per check.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "semantic/semcache.h"
#include "semantic/verify.h"
#include "loop/redis.h"

/* A vocabulary of 4096 pronounceable pseudo-words: prompts as diverse as
 * real ones, so unrelated prompts collide in LSH buckets only by chance. */
static void word(unsigned id, char *out)
{
    static const char *const on[] = {"b", "d", "f", "g", "k", "l", "m",  "n",
                                     "p", "r", "s", "t", "v", "z", "ch", "st"};
    static const char *const nu[] = {"a", "e", "i", "o", "u", "ai", "ou", "ea"};
    sprintf(out, "%s%s%s%s", on[id & 15], nu[(id >> 4) & 7], on[(id >> 7) & 15],
            nu[(id >> 11) & 7]);
}

static void prompt(unsigned long long seed, char *out, size_t cap)
{
    size_t len = (size_t)snprintf(out, cap, "How do I");
    for (int i = 0; i < 9; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        char w[16];
        word((unsigned)(seed >> 33) & 16383, w);
        len += (size_t)snprintf(out + len, cap - len, " %s", w);
    }
    snprintf(out + len, cap - len, "?");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

typedef struct {
    int pending;
    int hits;
    gw_err err;
} counter;

static void on_put(void *ud, gw_err err)
{
    counter *c = ud;
    c->pending--;
    if (err != GW_OK)
        c->err = err;
}

static void on_lookup(void *ud, gw_err err, const char *key, double sim)
{
    counter *c = ud;
    c->pending--;
    c->hits += key != NULL;
    if (err != GW_OK)
        c->err = err;
}

/* ---- --verify: the verifier's cost per check ---- */

enum { MAX_VPAIRS = 4096 };

static int load_texts(const char *file, char **texts, int n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/%s", MODELGW_SOURCE_DIR, file);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        return -1;
    }
    char line[8192];
    while (n + 2 <= MAX_VPAIRS && fgets(line, sizeof line, f)) {
        json_t *o = json_loads(line, 0, NULL);
        const char *a = json_string_value(json_object_get(o, "a"));
        const char *b = json_string_value(json_object_get(o, "b"));
        if (a != NULL && b != NULL) {
            texts[n++] = strdup(a);
            texts[n++] = strdup(b);
        }
        json_decref(o);
    }
    fclose(f);
    return n;
}

static int bench_verify(int rounds)
{
    static char *texts[MAX_VPAIRS];
    int n = load_texts("semantic_eval.jsonl", texts, 0);
    if (n >= 0)
        n = load_texts("semantic_handmade.jsonl", texts, n);
    if (n <= 0)
        return 1;
    int pairs = n / 2, ok = 0;
    double c0 = cpu_s();
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < n; i += 2)
            ok += gw_sem_verify(texts[i], strlen(texts[i]), texts[i + 1], strlen(texts[i + 1])) ==
                  GW_SEMV_OK;
    double per = (cpu_s() - c0) / ((double)rounds * pairs);
    printf("verify pairs=%d rounds=%d checks=%d accepted_per_round=%d cpu_per_check_us=%.2f\n",
           pairs, rounds, rounds * pairs, ok / rounds, per * 1e6);
    /* The longest prompts the tier accepts: 4096 bytes of varied words. */
    static char a[4097], b[4097];
    size_t len = 0;
    for (unsigned k = 0; len + 16 < 4096; k++) {
        char w[16];
        word(k * 2654435761u >> 18, w);
        len += (size_t)snprintf(a + len, sizeof a - len, "%s ", w);
    }
    memcpy(b, a, len + 1);
    b[len / 2] = 'x'; /* differ in the middle: full work on both sides */
    int long_rounds = rounds > 20 ? rounds / 20 : 1;
    c0 = cpu_s();
    for (int r = 0; r < long_rounds; r++)
        ok += gw_sem_verify(a, len, b, len) == GW_SEMV_OK;
    per = (cpu_s() - c0) / long_rounds;
    printf("verify longest_prompt_bytes=%zu checks=%d cpu_per_check_us=%.1f\n", len, long_rounds,
           per * 1e6);
    for (int i = 0; i < n; i++)
        free(texts[i]);
    return 0;
}

static size_t g_candidates;
static gw_sem_search_cb g_inner;

int main(int argc, char **argv)
{
    const char *redis_addr = "127.0.0.1:16379";
    int memory = 0, entries = 10000, lookups = 2000, bands = 20, rows = 10, verify = 0,
        rounds = 200;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--redis") && i + 1 < argc)
            redis_addr = argv[++i];
        else if (!strcmp(argv[i], "--memory"))
            memory = 1;
        else if (!strcmp(argv[i], "--entries") && i + 1 < argc)
            entries = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--lookups") && i + 1 < argc)
            lookups = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--bands") && i + 1 < argc)
            bands = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rows") && i + 1 < argc)
            rows = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--verify"))
            verify = 1;
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc && atoi(argv[i + 1]) > 0)
            rounds = atoi(argv[++i]);
        else {
            fprintf(stderr,
                    "usage: %s [--redis HOST:PORT | --memory] [--entries N] "
                    "[--lookups M] [--bands B] [--rows R] | --verify [--rounds N]\n",
                    argv[0]);
            return 2;
        }
    }
    if (verify)
        return bench_verify(rounds);
    (void)g_inner;
    uv_loop_t *loop = uv_default_loop();
    char prefix[64], host[128];
    snprintf(prefix, sizeof prefix, "bench:%d:", (int)getpid());
    gw_semstore_opts so = {.prefix = prefix};
    gw_redis *r = NULL;
    gw_semstore *store = NULL;
    if (memory) {
        so.max_entries = (size_t)entries + 1;
        gw_semstore_mem_new(loop, &so, &store);
    } else {
        gw_redis_opts ro = {0};
        snprintf(host, sizeof host, "%s", redis_addr);
        char *colon = strrchr(host, ':');
        ro.port = colon ? atoi(colon + 1) : 6379;
        if (colon)
            *colon = '\0';
        ro.host = host;
        ro.max_pending = 100000;
        ro.command_timeout_ms = 5000;
        gw_redis_opts_defaults(&ro);
        if (gw_redis_new(loop, &ro, &r) != GW_OK)
            return 1;
        gw_semstore_redis_new(loop, r, &so, &store);
    }
    gw_semcache_opts co = {.enabled = true,
                           .threshold = 0.85,
                           .threshold_floor = 0.75,
                           .max_messages = 4,
                           .max_prompt_bytes = 4096,
                           .bands = bands,
                           .rows = rows,
                           .seed = 7};
    gw_semcache *sc;
    if (gw_semcache_new(store, &co, &sc) != GW_OK)
        return 1;

    static gw_sem_query q[512];
    static char text[512][256];
    counter c = {0};
    double t0 = now_s();
    for (int i = 0; i < entries; i += 512) {
        int n = entries - i < 512 ? entries - i : 512;
        for (int j = 0; j < n; j++) {
            prompt((unsigned long long)(i + j), text[j], sizeof text[j]);
            gw_message m = {.role = GW_ROLE_USER, .content = text[j]};
            gw_request req = {.messages = &m, .message_count = 1, .max_tokens = 100};
            gw_semcache_prepare(sc, &req, "bench", &q[j]);
            char key[32];
            snprintf(key, sizeof key, "k%d", i + j);
            c.pending++;
            gw_semcache_store(sc, &q[j], key, 600, on_put, &c);
        }
        while (c.pending > 0)
            uv_run(loop, UV_RUN_ONCE);
    }
    double fill_s = now_s() - t0;
    if (c.err != GW_OK) {
        fprintf(stderr, "store failed: %s\n", gw_strerror(c.err));
        return 1;
    }

    gw_redis_stats s0 = {0}, s1 = {0};
    if (r)
        gw_redis_get_stats(r, &s0);
    counter dup = {0}, other = {0};
    double w0 = now_s(), c0 = cpu_s();
    for (int i = 0; i < lookups; i++) {
        char t[256];
        counter *which = (i % 2 == 0) ? &dup : &other;
        if (which == &dup) {
            prompt((unsigned long long)((i * 7919) % entries), t, sizeof t);
            for (char *p = t + 9; *p && *p != ' '; p++)
                if (*p >= 'a' && *p <= 'z')
                    *p = (char)(*p - 32); /* a near-duplicate: one word upper-cased */
            size_t tl = strlen(t);
            if (tl > 1)
                t[tl - 1] = '.'; /* and other punctuation */
        } else {
            prompt((unsigned long long)(entries + 1000000 + i), t, sizeof t);
        }
        gw_message m = {.role = GW_ROLE_USER, .content = t};
        gw_request req = {.messages = &m, .message_count = 1, .max_tokens = 100};
        gw_semcache_prepare(sc, &req, "bench", &q[0]);
        which->pending++;
        gw_semcache_lookup(sc, &q[0], on_lookup, which);
        while (which->pending > 0)
            uv_run(loop, UV_RUN_ONCE);
    }
    double wall = now_s() - w0, cpu = cpu_s() - c0;
    if (r)
        gw_redis_get_stats(r, &s1);
    (void)g_candidates;
    printf("backend=%s entries=%d lookups=%d bands=%d rows=%d\n", memory ? "memory" : "redis",
           entries, lookups, bands, rows);
    printf("fill: %.2f s (%.0f stores/s)\n", fill_s, entries / fill_s);
    printf("lookup: wall %.1f us, worker cpu %.1f us, redis round trips %.2f per lookup\n",
           wall / lookups * 1e6, cpu / lookups * 1e6,
           r ? (double)(s1.commands - s0.commands) / lookups : 0.0);
    printf("hit rate: near-duplicates %.1f%%, unrelated %.1f%%\n",
           100.0 * dup.hits / (lookups / 2 ? lookups / 2 : 1),
           100.0 * other.hits / (lookups / 2 ? lookups / 2 : 1));
    gw_semcache_free(sc);
    gw_semstore_free(store);
    if (r)
        gw_redis_free(r);
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}
