/*
 * modelgw-route-bench: what routing and the breaker add to one request.
 *
 *   modelgw-route-bench [--redis HOST:PORT] [--requests N] [--deployments D]
 *                       [--concurrency C] [--cache-ms MS]
 *
 * 1. Router: N gw_route calls per strategy over D deployments (CPU µs/call).
 * 2. Per-request decision path in memory: route + failover init + breaker
 *    allow + outcome record + latency record (CPU µs/request).
 * 3. The same path on Redis (unless --redis is "none"): C requests in flight,
 *    each doing allow (awaited), then record + latency record issued together
 *    (pipelined on the connection). Reports Redis commands per request,
 *    awaited round trips per request, CPU µs per request (this process) and
 *    wall time, with the breaker's local cache at --cache-ms (default 0 and
 *    200 are both run when not given). Keys use a fresh prefix with TTLs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "route/failover.h"
#include "route/router.h"
#include "loop/redis.h"

enum { MAX_DEPS = 32, MAX_CONC = 1024 };

static gw_deployment deps[MAX_DEPS];
static char ids[MAX_DEPS][16];

static double cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static double wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void make_deps(int n)
{
    static const char *caps[] = {"chat", "code", "vision", "json"};
    for (int i = 0; i < n; i++) {
        snprintf(ids[i], sizeof ids[i], "dep-%d", i);
        gw_deployment *d = &deps[i];
        *d = (gw_deployment){.id = ids[i],
                             .model = ids[i],
                             .provider = GW_PROVIDER_MOCK,
                             .latency_prior_ms = 100 + 37 * i,
                             .ttft_prior_ms = 30 + 11 * i,
                             .price_in_usd_per_mtok = 0.5 + (i % 5),
                             .price_out_usd_per_mtok = 1.5 + (i % 7),
                             .quality = 0.5 + 0.05 * (i % 9),
                             .context_window_tokens = 8000 << (i % 4),
                             .weight = 1 + i % 3};
        for (int k = 0; k <= i % 4; k++)
            d->capabilities[d->capability_count++] = caps[k];
    }
}

static gw_message msg = {.role = GW_ROLE_USER,
                         .content = "Explain the difference between a mutex and a semaphore "
                                    "with a short example in C."};

static void bench_router(const gw_registry *reg, long n)
{
    gw_router_opts o;
    gw_router_opts_from_config(gw_config_defaults(), &o);
    gw_rng rng;
    gw_rng_seed(&rng, 1);
    const char *cap[] = {"chat"};
    gw_request q = {.messages = &msg, .message_count = 1, .max_tokens = 256};
    q.capabilities = cap;
    q.capability_count = 1;
    for (int s = 0; s < GW_ROUTE__COUNT; s++) {
        q.routing_strategy = (gw_strategy)s;
        gw_route_plan p;
        long ok = 0;
        double c0 = cpu_us();
        for (long i = 0; i < n; i++)
            ok += gw_route(reg, &o, &q, NULL, &rng, &p) == GW_OK;
        double c1 = cpu_us();
        printf("router %-16s %8.3f us/call  (%ld calls, %zu deployments)\n",
               gw_strategy_name((gw_strategy)s), (c1 - c0) / n, ok, gw_registry_count(reg));
    }
}

static gw_breaker_state view_state(void *ud, size_t i)
{
    return gw_breaker_peek(ud, i);
}

static void bench_mem_path(const gw_registry *reg, long n)
{
    const gw_config *def = gw_config_defaults();
    gw_breaker_opts bo;
    gw_breaker_opts_from_config(def, &bo);
    gw_breaker *b = NULL;
    gw_latstats *ls = NULL;
    if (gw_breaker_mem_new(&bo, gw_registry_count(reg), NULL, NULL, 1, &b) != GW_OK ||
        gw_latstats_mem_new(gw_registry_count(reg), def->routing.ewma_alpha, &ls) != GW_OK)
        exit(1);
    gw_router_opts o;
    gw_router_opts_from_config(def, &o);
    gw_failover_opts fo_o;
    gw_failover_opts_from_config(def, &fo_o);
    gw_rng rng;
    gw_rng_seed(&rng, 2);
    gw_request q = {.messages = &msg,
                    .message_count = 1,
                    .max_tokens = 256,
                    .routing_strategy = GW_ROUTE_BALANCED};
    gw_route_view v = {.breaker_state = view_state, .ud = b};
    double c0 = cpu_us();
    for (long i = 0; i < n; i++) {
        gw_route_plan p;
        gw_failover fo;
        if (gw_route(reg, &o, &q, &v, &rng, &p) != GW_OK)
            exit(1);
        gw_failover_init(&fo, &fo_o, reg, &p, &rng);
        size_t idx = gw_failover_current(&fo);
        gw_breaker_decision d;
        gw_breaker_allow(b, idx, "req", &d, NULL, NULL);
        gw_breaker_outcome oc = {.kind = GW_OUTCOME_SUCCESS, .retry_after_ms = -1};
        gw_breaker_record(b, idx, "req", &oc);
        gw_latstats_record(ls, idx, 20, 100);
        gw_attempt_outcome ao = {.err = GW_OK, .retry_after_ms = -1, .deadline_left_ms = -1};
        gw_failover_on_outcome(&fo, &ao);
    }
    double c1 = cpu_us();
    printf("memory path (route+failover+allow+record+latency) %8.3f us/request\n", (c1 - c0) / n);
    gw_breaker_free(b);
    gw_latstats_free(ls);
}

typedef struct bench_ctx bench_ctx;

typedef struct {
    bench_ctx *bc;
    long id;
} slot;

struct bench_ctx {
    uv_loop_t *loop;
    gw_redis *r;
    gw_breaker *b;
    gw_latstats *ls;
    const gw_registry *reg;
    long started, finished, target, awaited;
    int conc;
    uv_check_t idle;
    slot slots[MAX_CONC];
};

static void start_one(bench_ctx *bc, slot *s);

static void finish_one(bench_ctx *bc, slot *s, const gw_breaker_decision *d)
{
    size_t idx = (size_t)(s->id % (long)gw_registry_count(bc->reg));
    gw_breaker_outcome oc = {
        .kind = GW_OUTCOME_SUCCESS, .probe = d->verdict == GW_VERDICT_PROBE, .retry_after_ms = -1};
    gw_breaker_record(bc->b, idx, "bench", &oc); /* both issued now: pipelined */
    gw_latstats_record(bc->ls, idx, 20, 100);
    bc->finished++;
}

static void on_allow(void *ud, const gw_breaker_decision *d)
{
    slot *s = ud;
    finish_one(s->bc, s, d);
}

static void start_one(bench_ctx *bc, slot *s)
{
    s->id = bc->started++;
    s->bc = bc;
    size_t idx = (size_t)(s->id % (long)gw_registry_count(bc->reg));
    gw_breaker_decision d;
    if (gw_breaker_allow(bc->b, idx, "bench", &d, on_allow, s))
        finish_one(bc, s, &d);
    else
        bc->awaited++;
}

/* Keep about conc requests' commands outstanding: a request counts until its
 * record and latency replies are back (pending replies are the proxy). */
static void idle_cb(uv_check_t *h)
{
    bench_ctx *bc = h->data;
    while (bc->started < bc->target &&
           gw_breaker_pending(bc->b) + gw_latstats_pending(bc->ls) < (size_t)bc->conc * 2)
        start_one(bc, &bc->slots[bc->started % bc->conc]);
    if (bc->started >= bc->target)
        uv_check_stop(h);
}

static void bench_redis(const gw_registry *reg, const char *addr, long n, int conc, int cache_ms)
{
    char host[128];
    snprintf(host, sizeof host, "%s", addr);
    char *colon = strrchr(host, ':');
    int port = colon != NULL ? atoi(colon + 1) : 6379;
    if (colon != NULL)
        *colon = '\0';
    uv_loop_t loop;
    uv_loop_init(&loop);
    gw_redis_opts ro = {.host = host, .port = port, .command_timeout_ms = 5000};
    gw_redis_opts_defaults(&ro);
    bench_ctx *bc = calloc(1, sizeof *bc);
    if (bc == NULL || gw_redis_new(&loop, &ro, &bc->r) != GW_OK)
        exit(1);
    for (int i = 0; i < 200 && !gw_redis_is_connected(bc->r); i++)
        uv_run(&loop, UV_RUN_ONCE);
    if (!gw_redis_is_connected(bc->r)) {
        fprintf(stderr, "modelgw-route-bench: Redis %s unreachable\n", addr);
        exit(2);
    }
    const gw_config *def = gw_config_defaults();
    gw_breaker_opts bo;
    gw_breaker_opts_from_config(def, &bo);
    bo.local_cache_ms = cache_ms;
    bo.state_ttl_ms = 60000;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "bench:route:%d:", (int)getpid());
    if (gw_breaker_redis_new(&bo, reg, bc->r, prefix, 1, &bc->b) != GW_OK ||
        gw_latstats_redis_new(reg, bc->r, prefix, def->routing.ewma_alpha,
                              def->routing.stats_refresh_ms, 60, &bc->ls) != GW_OK)
        exit(1);
    bc->loop = &loop;
    bc->reg = reg;
    bc->target = n;
    gw_redis_stats s0, s1;
    gw_redis_get_stats(bc->r, &s0);
    double c0 = cpu_us(), w0 = wall_us();
    bc->conc = conc;
    uv_check_init(&loop, &bc->idle);
    bc->idle.data = bc;
    uv_check_start(&bc->idle, idle_cb);
    idle_cb(&bc->idle);
    while (bc->finished < n || gw_breaker_pending(bc->b) > 0 || gw_latstats_pending(bc->ls) > 0)
        uv_run(&loop, UV_RUN_ONCE);
    double c1 = cpu_us(), w1 = wall_us();
    gw_redis_get_stats(bc->r, &s1);
    printf(
        "redis path cache_ms=%-4d conc=%-4d %8.2f us CPU/request  %6.2f commands/request  "
        "%5.2f awaited round trips/request  %8.0f requests/s wall  (errors %llu)\n",
        cache_ms, conc, (c1 - c0) / n, (double)(s1.commands - s0.commands) / n,
        (double)bc->awaited / n, n / ((w1 - w0) / 1e6),
        (unsigned long long)(s1.unavailable - s0.unavailable + s1.reply_errors - s0.reply_errors));
    gw_breaker_free(bc->b);
    gw_latstats_free(bc->ls);
    gw_redis_free(bc->r);
    uv_close((uv_handle_t *)&bc->idle, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    free(bc);
}

int main(int argc, char **argv)
{
    const char *redis = getenv("MODELGW_REDIS") ? getenv("MODELGW_REDIS") : "127.0.0.1:16379";
    long n = 200000;
    int ndeps = 8, conc = 64, cache_ms = -1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--redis") == 0)
            redis = argv[i + 1];
        else if (strcmp(argv[i], "--requests") == 0)
            n = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--deployments") == 0)
            ndeps = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--concurrency") == 0)
            conc = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--cache-ms") == 0)
            cache_ms = atoi(argv[i + 1]);
        else {
            fprintf(stderr,
                    "usage: %s [--redis HOST:PORT|none] [--requests N] "
                    "[--deployments D] [--concurrency C] [--cache-ms MS]\n",
                    argv[0]);
            return 64;
        }
    }
    if (n < 1 || ndeps < 1 || ndeps > MAX_DEPS || conc < 1 || conc > MAX_CONC) {
        fprintf(stderr, "modelgw-route-bench: bad arguments\n");
        return 64;
    }
    make_deps(ndeps);
    gw_registry *reg = NULL;
    char err[256];
    if (gw_registry_new(deps, (size_t)ndeps, GW_PROVIDER_MASK_ALL, err, sizeof err, &reg) !=
        GW_OK) {
        fprintf(stderr, "registry: %s\n", err);
        return 1;
    }
    bench_router(reg, n);
    bench_mem_path(reg, n);
    if (strcmp(redis, "none") != 0) {
        long rn = n < 20000 ? n : 20000;
        if (cache_ms >= 0) {
            bench_redis(reg, redis, rn, conc, cache_ms);
        } else {
            bench_redis(reg, redis, rn, 1, 0);
            bench_redis(reg, redis, rn, conc, 0);
            bench_redis(reg, redis, rn, conc, 200);
        }
    }
    gw_registry_free(reg);
    return 0;
}
