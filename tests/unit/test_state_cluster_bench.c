/*
 * test_state_cluster_bench: what one request's admission and completion cost
 * Redis, standalone against a Redis Cluster, on PRIVATE servers this test
 * starts (a redis-server, and three masters with a replica each from
 * tools/redis-cluster) and stops.
 *
 * Each request (the worker's miss path): admission with an idempotency
 * claim, the exact cache read and single-flight lock, an agent's RPM and TPM
 * and a daily budget; completion with the answer kept, the cache entry stored,
 * a reconcile of the agent's TPM and of a deployment's TPM, and a budget
 * charge. Checked exactly: the calls sent per request (the client's
 * counter), standalone 2 (admit.lua, complete.lua) and cluster 10
 * (admission composed: claim, cache GET, limits, budget MGET, lock;
 * completion: answer, cache, one reconcile per name, charge). Printed: the
 * commands Redis executed (scripts' inner commands included), their
 * commandstats time and the redis-server CPU (/proc, all masters) per
 * request. N requests per mode, 64 in flight: MODELGW_STATE_CLUSTER_BENCH_N
 * (default 500).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loop/redis.h"
#include "state/state.h"
#include "test_support.h"

static uv_loop_t loop;
static char run_dir[128];
static int base_port, solo_port;
static pid_t solo_pid;
static bool cluster_up;

static bool port_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool in_use = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return !in_use;
}

static int cluster_cmd(const char *what)
{
    const char *src = getenv("MODELGW_SOURCE_DIR");
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "MODELGW_RUN_DIR='%s' MODELGW_REDIS_CLUSTER_PORT=%d '%s/tools/redis-cluster' %s "
             ">/dev/null 2>'%s/cluster.err'",
             run_dir, base_port, src && src[0] ? src : ".", what, run_dir);
    return system(cmd);
}

static int group_setup(void **s)
{
    uv_loop_init(&loop);
    snprintf(run_dir, sizeof run_dir, "/tmp/modelgw-test-bench-%d", (int)getpid());
    mkdir(run_dir, 0700);
    /* ports below the ephemeral range, apart from the other tests' */
    for (int attempt = 0; attempt < 5 && !cluster_up; attempt++) {
        base_port = 25000 + (int)((getpid() + attempt * 41) % 200) * 10;
        bool ok = true;
        for (int i = 0; i < 7; i++)
            ok = ok && port_free(base_port + i) && port_free(base_port + i + 10000);
        if (ok && cluster_cmd("start") == 0)
            cluster_up = true;
    }
    if (!cluster_up) {
        fprintf(stderr, "could not start a private cluster (see %s/cluster.err)\n", run_dir);
        return -1;
    }
    solo_port = base_port + 6;
    solo_pid = fork();
    if (solo_pid == 0) {
        char port[16];
        snprintf(port, sizeof port, "%d", solo_port);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", (char *)NULL);
        _exit(127);
    }
    return solo_pid > 0 ? 0 : -1;
}

static void close_any(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static int group_teardown(void **s)
{
    if (solo_pid > 0) {
        kill(solo_pid, SIGKILL);
        waitpid(solo_pid, NULL, 0);
    }
    cluster_cmd("stop");
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", run_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", run_dir);
    gw_test_run_for(&loop, 50);
    uv_walk(&loop, close_any, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop) == 0 ? 0 : -1;
}

/* ---- server counters -------------------------------------------------------------- */

typedef struct {
    int done;
    char text[8192];
} info_reply;

static void on_info(void *arg, gw_err err, const redisReply *rep)
{
    info_reply *x = arg;
    x->text[0] = '\0';
    if (err == GW_OK && rep->type == REDIS_REPLY_STRING)
        snprintf(x->text, sizeof x->text, "%s", rep->str);
    x->done++;
}

static void node_command(int port, int argc, const char *const *argv, info_reply *x)
{
    gw_redis_opts o = {.host = "127.0.0.1", .port = port, .command_timeout_ms = 3000};
    gw_redis *r = NULL;
    assert_int_equal(gw_redis_new(&loop, &o, &r), GW_OK);
    assert_true(gw_test_wait_redis(&loop, r, true, 5000));
    x->done = 0;
    gw_redis_command(r, argc, argv, NULL, on_info, x);
    assert_true(gw_test_wait_count(&loop, &x->done, 1, 5000));
    gw_redis_free(r);
    gw_test_run_for(&loop, 5);
}

/* "cmdstat_<name>:calls=N,usec=U,..." summed over names (prefix match). */
static void sum_stats(const char *text, const char *name, long long *calls, long long *usec)
{
    const char *p = text;
    *calls = *usec = 0;
    while ((p = strstr(p, "cmdstat_")) != NULL) {
        p += 8;
        long long c = 0, u = 0;
        const char *colon = strchr(p, ':');
        if (colon == NULL)
            break;
        bool match = name == NULL ||
                     ((size_t)(colon - p) == strlen(name) && strncmp(p, name, strlen(name)) == 0);
        if (match && sscanf(colon, ":calls=%lld,usec=%lld", &c, &u) == 2) {
            *calls += c;
            *usec += u;
        }
    }
}

typedef struct {
    long long calls, usec, cpu_ticks; /* executed by the servers */
} counters;

static bool is_master(int port)
{
    info_reply x;
    const char *argv[2] = {"INFO", "replication"};
    node_command(port, 2, argv, &x);
    return strstr(x.text, "role:master") != NULL;
}

static void read_counters(const int *ports, int n, counters *c)
{
    memset(c, 0, sizeof *c);
    for (int i = 0; i < n; i++) {
        info_reply x;
        const char *cs[2] = {"INFO", "commandstats"};
        node_command(ports[i], 2, cs, &x);
        long long calls, usec, info_calls, u;
        sum_stats(x.text, NULL, &calls, &usec);
        sum_stats(x.text, "info", &info_calls, &u);
        c->calls += calls - info_calls;
        c->usec += usec - u;
        const char *sv[2] = {"INFO", "server"};
        node_command(ports[i], 2, sv, &x);
        const char *pid_at = strstr(x.text, "process_id:");
        if (pid_at != NULL) {
            char path[64], stat[1024];
            snprintf(path, sizeof path, "/proc/%d/stat", atoi(pid_at + 11));
            FILE *f = fopen(path, "r");
            if (f != NULL) {
                size_t n_read = fread(stat, 1, sizeof stat - 1, f);
                stat[n_read] = '\0';
                fclose(f);
                const char *after = strrchr(stat, ')');
                unsigned long ut = 0, stt = 0;
                if (after != NULL &&
                    sscanf(after + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
                           &stt) == 2)
                    c->cpu_ticks += (long long)(ut + stt);
            }
        }
    }
}

/* ---- the load ----------------------------------------------------------------------- */

enum { INFLIGHT = 64 };

typedef struct {
    char rid[64], ck[64], a1[80], a2[80], d1[64], agent[48];
    gw_limit_key k[2], rk[2];
} job;

static gw_state *st;
static int n_total, issued, completed, bad;
static char run_tag[32];

static void start_more(void);

static void on_complete(void *ud, const gw_state_ack *a)
{
    if (a->err != GW_OK || !a->applied)
        bad++;
    free(ud);
    completed++;
    start_more();
}

static void on_admit(void *ud, const gw_admit_result *r)
{
    job *j = ud;
    if (r->err != GW_OK || r->limit.verdict != GW_LIMIT_ALLOWED ||
        r->idem.kind != GW_CACHE_LOCKED_BY_ME || r->cache.kind != GW_CACHE_LOCKED_BY_ME ||
        r->budget.err != GW_OK)
        bad++;
    j->rk[0] = (gw_limit_key){j->a2, 1e9, 1e9, -50};
    j->rk[1] = (gw_limit_key){j->d1, 1e9, 1e9, -50};
    gw_complete_req c = {.request_id = j->rid,
                         .owner = "w1",
                         .data = (const uint8_t *)"an answer of some bytes",
                         .len = 23,
                         .idem = GW_DONE_STORE,
                         .idem_ttl_s = 60,
                         .cache_key = j->ck,
                         .cache = GW_DONE_STORE,
                         .cache_ttl_s = 60,
                         .reconcile = j->rk,
                         .nreconcile = 2,
                         .agent = j->agent,
                         .charge_usd = 0.001};
    gw_state_complete(st, &c, on_complete, j);
}

static void start_more(void)
{
    while (issued - completed < INFLIGHT && issued < n_total) {
        job *j = calloc(1, sizeof *j);
        assert_non_null(j);
        int i = issued++;
        snprintf(j->rid, sizeof j->rid, "rid-%s-%d", run_tag, i);
        snprintf(j->ck, sizeof j->ck, "ck-%s-%d", run_tag, i);
        snprintf(j->agent, sizeof j->agent, "did:bench:%s:%d", run_tag, i % 100);
        snprintf(j->a1, sizeof j->a1, "agent_rpm:%s", j->agent);
        snprintf(j->a2, sizeof j->a2, "agent_tpm:%s", j->agent);
        snprintf(j->d1, sizeof j->d1, "deploy_tpm:dep-%s-%d", run_tag, i % 4);
        j->k[0] = (gw_limit_key){j->a1, 1e9, 1e9, 1};
        j->k[1] = (gw_limit_key){j->a2, 1e9, 1e9, 100};
        gw_admit_req rq = {.request_id = j->rid,
                           .owner = "w1",
                           .lease_ms = 10000,
                           .result_ttl_s = 60,
                           .keys = j->k,
                           .nkeys = 2,
                           .agent = j->agent,
                           .budget = {.daily_usd = 1e6},
                           .estimate_usd = 0.001,
                           .cache_key = j->ck,
                           .cache_lock = true,
                           .lock_ms = 5000};
        gw_state_admit(st, &rq, on_admit, j);
    }
}

static void run_mode(const char *name, const gw_redis_opts *ro, const int *ports, int nports,
                     double want_calls)
{
    const char *env = getenv("MODELGW_STATE_CLUSTER_BENCH_N");
    n_total = env != NULL && atoi(env) > 0 ? atoi(env) : 500;
    issued = completed = bad = 0;
    snprintf(run_tag, sizeof run_tag, "%s%d", name, (int)getpid());
    gw_redis *r = NULL;
    assert_int_equal(gw_redis_new(&loop, ro, &r), GW_OK);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "bench:%s:", run_tag);
    gw_state_opts so = {.key_prefix = prefix};
    assert_int_equal(gw_state_redis_new(&loop, r, &so, &st), GW_OK);
    assert_true(gw_test_wait_redis(&loop, r, true, 10000));
    for (int i = 0; i < nports; i++) {
        info_reply x;
        const char *reset[2] = {"CONFIG", "RESETSTAT"};
        node_command(ports[i], 2, reset, &x);
    }
    counters c0, c1;
    read_counters(ports, nports, &c0);
    gw_redis_stats s0, s1;
    gw_redis_get_stats(r, &s0);
    uint64_t t0 = uv_hrtime();
    start_more();
    assert_true(gw_test_wait_count(&loop, &completed, n_total, 60000));
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    gw_redis_get_stats(r, &s1);
    read_counters(ports, nports, &c1);
    /* calls the state module sent (EVALSHA, GET, MGET), counted by the client */
    double sent = (double)(s1.commands - s0.commands) / n_total;
    double ticks_per_s = (double)sysconf(_SC_CLK_TCK);
    printf("%s: %d requests, %.0f req/s (one client, 64 in flight); calls sent %.2f/request; "
           "commands executed %.2f/request (inner ones included), commandstats %.1f us/request, "
           "redis-server CPU %.1f us/request (over %d master%s)\n",
           name, n_total, n_total / secs, sent, (double)(c1.calls - c0.calls) / n_total,
           (double)(c1.usec - c0.usec) / n_total,
           (double)(c1.cpu_ticks - c0.cpu_ticks) / ticks_per_s * 1e6 / n_total, nports,
           nports > 1 ? "s" : "");
    assert_int_equal(bad, 0);
    assert_true(sent > want_calls - 0.01 && sent < want_calls + 0.01);
    gw_state_free(st);
    st = NULL;
    gw_redis_free(r);
    gw_test_run_for(&loop, 20);
}

static void test_standalone_cost(void **s)
{
    gw_redis_opts ro = {.host = "127.0.0.1", .port = solo_port, .command_timeout_ms = 5000};
    int ports[1] = {solo_port};
    run_mode("standalone", &ro, ports, 1, 2.0);
}

static void test_cluster_cost(void **s)
{
    char nodes[256];
    size_t at = 0;
    int masters[6], nm = 0;
    for (int i = 0; i < 6; i++) {
        at += (size_t)snprintf(nodes + at, sizeof nodes - at, "%s127.0.0.1:%d", i ? "," : "",
                               base_port + i);
        if (is_master(base_port + i))
            masters[nm++] = base_port + i;
    }
    assert_int_equal(nm, 3);
    gw_redis_opts ro = {.cluster_nodes = nodes, .command_timeout_ms = 5000};
    run_mode("cluster", &ro, masters, nm, 10.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_standalone_cost),
        cmocka_unit_test(test_cluster_cost),
    };
    return cmocka_run_group_tests_name("state_cluster_bench", tests, group_setup, group_teardown);
}
