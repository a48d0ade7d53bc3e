/*
 * modelgw-route-fleet: one member of a simulated fleet, for the fleet-wide
 * breaker tests (tests/integration/test_breaker_fleet.py).
 *
 *   modelgw-route-fleet --redis HOST:PORT --prefix P --worker N
 *                       --epoch-ms T0 --duration-ms D [--fail-until-ms F]
 *                       [--emit-429-at-ms A] [--retry-after-ms R]
 *                       [--interval-ms I] [--call-ms C] [--local-cache-ms L]
 *                       [--flush-ms M]
 *
 * Drives one deployment through the real Redis breaker exactly as a worker
 * would (allow -> call -> record), one call at a time, every I ms from the
 * shared epoch T0 (Unix ms) until T0 + D. The "provider" is scripted: a call
 * that starts before T0 + F fails (like a 5xx), later calls succeed; with
 * --emit-429-at-ms, this process's first call after T0 + A is answered 429
 * with Retry-After R. Calls take C ms (a uv timer). Ordinary outcomes are
 * sent to Redis in batches every M ms (default 100), as the worker's tick does.
 *
 * Output, one JSON object per line on stdout:
 *   {"w":N,"start":ms,"end":ms,"probe":true|false,"result":"fail"|"ok"|"429"}
 *   {"w":N,"summary":true,"calls":n,"denied":n,"state_errors":n}
 * Times are Unix ms relative to T0. Exit 0, or 2 when Redis is unreachable.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "route/breaker.h"
#include "route/registry.h"
#include "loop/redis.h"

typedef struct {
    uv_loop_t *loop;
    gw_redis *r;
    gw_breaker *b;
    uv_timer_t tick, call, flush;
    int worker;
    int64_t epoch, duration, fail_until, emit429_at, retry_after;
    int64_t interval, call_ms;
    bool busy, probe, sent429, stopping;
    int64_t call_start;
    long calls, denied, state_errors, seq;
    char token[64];
} fleet;

static int64_t rel_now(const fleet *f)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - f->epoch;
}

static void call_done(uv_timer_t *t)
{
    fleet *f = t->data;
    int64_t end = rel_now(f);
    gw_breaker_outcome o = {.probe = f->probe, .retry_after_ms = -1};
    const char *res;
    if (f->emit429_at >= 0 && !f->sent429 && f->call_start >= f->emit429_at) {
        f->sent429 = true;
        o.kind = GW_OUTCOME_RATE_LIMITED;
        o.retry_after_ms = f->retry_after;
        res = "429";
    } else if (f->call_start < f->fail_until) {
        o.kind = GW_OUTCOME_FAILURE;
        res = "fail";
    } else {
        o.kind = GW_OUTCOME_SUCCESS;
        res = "ok";
    }
    printf("{\"w\":%d,\"start\":%lld,\"end\":%lld,\"probe\":%s,\"result\":\"%s\"}\n", f->worker,
           (long long)f->call_start, (long long)end, f->probe ? "true" : "false", res);
    gw_breaker_record(f->b, 0, f->token, &o);
    f->busy = false;
}

static void on_decision(fleet *f, const gw_breaker_decision *d)
{
    if (d->err != GW_OK)
        f->state_errors++;
    if (d->verdict == GW_VERDICT_DENIED || d->err != GW_OK || f->stopping) {
        f->denied++;
        f->busy = false;
        return;
    }
    f->calls++;
    f->probe = d->verdict == GW_VERDICT_PROBE;
    f->call_start = rel_now(f);
    uv_timer_start(&f->call, call_done, (uint64_t)f->call_ms, 0);
}

static void on_allow(void *ud, const gw_breaker_decision *d)
{
    on_decision(ud, d);
}

static void tick_cb(uv_timer_t *t)
{
    fleet *f = t->data;
    if (rel_now(f) >= f->duration) {
        f->stopping = true;
        if (!f->busy)
            uv_timer_stop(t);
        return;
    }
    if (f->busy || rel_now(f) < 0)
        return;
    f->busy = true;
    snprintf(f->token, sizeof f->token, "w%d-%ld", f->worker, f->seq++);
    gw_breaker_decision d;
    if (gw_breaker_allow(f->b, 0, f->token, &d, on_allow, f))
        on_decision(f, &d);
}

/* The worker's 100 ms tick: batched outcomes go to Redis. */
static void flush_cb(uv_timer_t *t)
{
    fleet *f = t->data;
    gw_breaker_flush(f->b);
    if (!uv_is_active((uv_handle_t *)&f->tick) && !f->busy)
        uv_timer_stop(t);
}

static int64_t arg_i64(int argc, char **argv, const char *name, int64_t dflt)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return atoll(argv[i + 1]);
    return dflt;
}

static const char *arg_str(int argc, char **argv, const char *name, const char *dflt)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return dflt;
}

static gw_err connect_redis(uv_loop_t *loop, const char *addr, gw_redis **out)
{
    char host[128];
    snprintf(host, sizeof host, "%s", addr);
    char *colon = strrchr(host, ':');
    int port = colon != NULL ? atoi(colon + 1) : 6379;
    if (colon != NULL)
        *colon = '\0';
    gw_redis_opts ro = {.host = host, .port = port, .command_timeout_ms = 2000};
    gw_redis_opts_defaults(&ro);
    gw_err e = gw_redis_new(loop, &ro, out);
    for (int i = 0; e == GW_OK && i < 300 && !gw_redis_is_connected(*out); i++)
        uv_run(loop, UV_RUN_ONCE);
    return e == GW_OK && gw_redis_is_connected(*out) ? GW_OK : GW_E_STATE_UNAVAILABLE;
}

static gw_breaker_opts fleet_opts(int argc, char **argv)
{
    gw_breaker_opts o;
    gw_breaker_opts_from_config(gw_config_defaults(), &o);
    o.bucket_ms = 100;
    o.window_ms = 2000;
    o.min_calls = 1000; /* these tests trip on consecutive failures */
    o.consecutive_failures = 3;
    o.open_base_ms = (int32_t)arg_i64(argc, argv, "--open-base-ms", 300);
    o.open_max_ms = (int32_t)arg_i64(argc, argv, "--open-max-ms", 1200);
    o.jitter = 0.2;
    o.half_open_successes = 2;
    o.probe_lease_ms = 5000;
    o.local_cache_ms = (int32_t)arg_i64(argc, argv, "--local-cache-ms", 0);
    o.state_ttl_ms = 60000;
    return o;
}

int main(int argc, char **argv)
{
    static gw_deployment dep = {.id = "fleet-dep",
                                .model = "m",
                                .latency_prior_ms = 1,
                                .ttft_prior_ms = 1,
                                .quality = 0.5,
                                .context_window_tokens = 1000,
                                .weight = 1};
    fleet f = {0};
    f.worker = (int)arg_i64(argc, argv, "--worker", 0);
    f.epoch = arg_i64(argc, argv, "--epoch-ms", 0);
    f.duration = arg_i64(argc, argv, "--duration-ms", 3000);
    f.fail_until = arg_i64(argc, argv, "--fail-until-ms", 0);
    f.emit429_at = arg_i64(argc, argv, "--emit-429-at-ms", -1);
    f.retry_after = arg_i64(argc, argv, "--retry-after-ms", 3000);
    f.interval = arg_i64(argc, argv, "--interval-ms", 5);
    f.call_ms = arg_i64(argc, argv, "--call-ms", 20);
    if (f.epoch <= 0 || f.interval < 1 || f.call_ms < 0) {
        fprintf(stderr, "modelgw-route-fleet: --epoch-ms and positive intervals are required\n");
        return 64;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    f.loop = &loop;
    gw_registry *reg = NULL;
    gw_breaker_opts o = fleet_opts(argc, argv);
    const char *addr = arg_str(argc, argv, "--redis", "127.0.0.1:16379");
    if (connect_redis(&loop, addr, &f.r) != GW_OK) {
        fprintf(stderr, "modelgw-route-fleet: Redis %s unreachable\n", addr);
        return 2;
    }
    if (gw_registry_new(&dep, 1, GW_PROVIDER_MASK_ALL, NULL, 0, &reg) != GW_OK ||
        gw_breaker_redis_new(&o, reg, f.r, arg_str(argc, argv, "--prefix", "fleet:"),
                             (uint64_t)f.worker + 1, &f.b) != GW_OK)
        return 1;
    uv_timer_init(&loop, &f.tick);
    uv_timer_init(&loop, &f.call);
    uv_timer_init(&loop, &f.flush);
    f.tick.data = f.call.data = f.flush.data = &f;
    uv_timer_start(&f.tick, tick_cb, 1, (uint64_t)f.interval);
    int64_t flush_ms = arg_i64(argc, argv, "--flush-ms", 100);
    uv_timer_start(&f.flush, flush_cb, (uint64_t)flush_ms, (uint64_t)flush_ms);
    while (uv_is_active((uv_handle_t *)&f.tick) || f.busy || gw_breaker_pending(f.b) > 0 ||
           uv_is_active((uv_handle_t *)&f.flush))
        uv_run(&loop, UV_RUN_ONCE);
    gw_breaker_flush(f.b);
    while (gw_breaker_pending(f.b) > 0)
        uv_run(&loop, UV_RUN_ONCE);
    printf("{\"w\":%d,\"summary\":true,\"calls\":%ld,\"denied\":%ld,\"state_errors\":%ld}\n",
           f.worker, f.calls, f.denied, f.state_errors);
    fflush(stdout);
    gw_breaker_free(f.b);
    gw_redis_free(f.r);
    uv_close((uv_handle_t *)&f.tick, NULL);
    uv_close((uv_handle_t *)&f.call, NULL);
    uv_close((uv_handle_t *)&f.flush, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    gw_registry_free(reg);
    return 0;
}
