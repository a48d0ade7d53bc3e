/*
 * test_redis_cluster: the Redis Cluster client of src/loop (redis.h "Cluster
 * mode") against a PRIVATE cluster that this test starts with
 * tools/redis-cluster (three masters with a replica each, cluster-node-timeout
 * 1000 ms) on its own ports and in its own run folder, and stops at the end;
 * the shared services are never touched.
 *
 * Covers: hash slots (CRC16 and hash tags) against Redis's own CLUSTER
 * KEYSLOT; bad seed lists refused; commands issued before the slot map is
 * read follow MOVED; ASK during a slot migration (ASKING + re-send to the
 * importing node); and a master killed under a steady load of state
 * operations through the failure policy (limits open, cache open,
 * idempotency closed) until its replica has taken over: every operation is
 * answered exactly once and never inside the call, the open features fall
 * back and the closed one reports GW_E_STATE_UNAVAILABLE while the slot has
 * no master, and everything succeeds again without fallback afterwards.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loop/redis.h"
#include "state/state.h"
#include "test_support.h"

static uv_loop_t loop;
static char run_dir[128];
static char nodes[256];
static int base_port;
static bool started; /* the private cluster runs */

static const char *src_dir(void)
{
    const char *s = getenv("MODELGW_SOURCE_DIR");
    return s != NULL && s[0] ? s : ".";
}

static int cluster_cmd(const char *what)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "MODELGW_RUN_DIR='%s' MODELGW_REDIS_CLUSTER_PORT=%d "
             "MODELGW_REDIS_CLUSTER_NODE_TIMEOUT_MS=1000 '%s/tools/redis-cluster' %s "
             ">/dev/null 2>'%s/cluster.err'",
             run_dir, base_port, src_dir(), what, run_dir);
    return system(cmd);
}

/* True when nothing listens on 127.0.0.1:port. */
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

static int group_setup(void **s)
{
    uv_loop_init(&loop);
    snprintf(run_dir, sizeof run_dir, "/tmp/modelgw-test-cluster-%d", (int)getpid());
    mkdir(run_dir, 0700);
    /* six ports and their cluster bus (+10000), below the ephemeral port
     * range (32768..) and away from the shared services (16379, 16400..16405,
     * 18081, 19092..19093): a base in 21000..23990, another when taken */
    for (int attempt = 0; attempt < 5 && !started; attempt++) {
        base_port = 21000 + (int)((getpid() + attempt * 37) % 300) * 10;
        bool free_ports = true;
        for (int i = 0; i < 6; i++)
            free_ports = free_ports && port_free(base_port + i) && port_free(base_port + i + 10000);
        if (free_ports && cluster_cmd("start") == 0)
            started = true;
    }
    if (!started) {
        fprintf(stderr,
                "test_redis_cluster: tools/redis-cluster could not start a private "
                "cluster (see %s/cluster.err)\n",
                run_dir);
        return -1;
    }
    size_t at = 0;
    for (int i = 0; i < 6; i++)
        at += (size_t)snprintf(nodes + at, sizeof nodes - at, "%s127.0.0.1:%d", i ? "," : "",
                               base_port + i);
    return 0;
}

static void close_any(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static int group_teardown(void **s)
{
    cluster_cmd("stop"); /* only what runs from run_dir */
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", run_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", run_dir);
    /* whatever a failed test left open must not hang the run */
    gw_test_run_for(&loop, 50);
    uv_walk(&loop, close_any, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop) == 0 ? 0 : -1;
}

static gw_redis *connect_cluster(uint32_t command_timeout_ms, bool wait)
{
    gw_redis_opts o = {.cluster_nodes = nodes,
                       .command_timeout_ms = command_timeout_ms,
                       .reconnect_min_ms = 20,
                       .reconnect_max_ms = 200,
                       .connect_timeout_ms = 500};
    gw_redis *r = NULL;
    assert_int_equal(gw_redis_new(&loop, &o, &r), GW_OK);
    assert_true(gw_redis_is_cluster(r));
    if (wait)
        assert_true(gw_test_wait_redis(&loop, r, true, 10000));
    return r;
}

static void close_redis(gw_redis *r)
{
    gw_redis_free(r);
    gw_test_run_for(&loop, 20);
}

/* ---- replies ----------------------------------------------------------------------- */

typedef struct {
    int done;
    gw_err err;
    long long integer;
    char str[256];
} reply;

static bool in_call;
static int inside_call_answers;

static void on_reply(void *arg, gw_err err, const redisReply *rep)
{
    reply *x = arg;
    if (in_call)
        inside_call_answers++;
    x->done++;
    x->err = err;
    x->integer = rep != NULL ? gw_redis_reply_int(rep, -1) : -1;
    x->str[0] = '\0';
    if (rep != NULL && (rep->type == REDIS_REPLY_STRING || rep->type == REDIS_REPLY_ERROR ||
                        rep->type == REDIS_REPLY_STATUS))
        snprintf(x->str, sizeof x->str, "%s", rep->str);
}

static reply command(gw_redis *r, int argc, const char *const *argv)
{
    reply x = {0};
    in_call = true;
    gw_redis_command(r, argc, argv, NULL, on_reply, &x);
    in_call = false;
    assert_int_equal(x.done, 0);
    assert_true(gw_test_wait_count(&loop, &x.done, 1, 10000));
    return x;
}

/* A standalone connection to one node of the cluster. */
static gw_redis *connect_node(int port)
{
    gw_redis_opts o = {.host = "127.0.0.1", .port = port, .command_timeout_ms = 2000};
    gw_redis *r = NULL;
    assert_int_equal(gw_redis_new(&loop, &o, &r), GW_OK);
    assert_true(gw_test_wait_redis(&loop, r, true, 5000));
    return r;
}

/* ---- slots ------------------------------------------------------------------------- */

static void test_key_slots(void **s)
{
    /* CRC16/XMODEM check value: "123456789" -> 0x31C3 */
    assert_int_equal(gw_redis_key_slot("123456789", 9), 0x31C3 & 16383);
    assert_int_equal(gw_redis_key_slot("{user1000}.following", 20),
                     gw_redis_key_slot("{user1000}.followers", 20));
    assert_int_equal(gw_redis_key_slot("x{user1000}y", 12), gw_redis_key_slot("user1000", 8));
    /* an empty tag hashes the whole key; only the first {...} counts */
    assert_int_equal(gw_redis_key_slot("foo{}{bar}", 10), gw_redis_key_slot("foo{}{bar}", 10));
    assert_int_not_equal(gw_redis_key_slot("foo{}{bar}", 10), gw_redis_key_slot("bar", 3));
    assert_int_equal(gw_redis_key_slot("foo{{bar}}zap", 13), gw_redis_key_slot("{bar", 4));
    assert_int_equal(gw_redis_key_slot("foo{bar}{zap}", 13), gw_redis_key_slot("bar", 3));
    /* and Redis agrees, for keys of every shape the state module writes */
    gw_redis *r = connect_node(base_port);
    static const char *const keys[] = {
        "modelgw:id:{req-1}",
        "modelgw:rl:agent_rpm:{did:web:a}",
        "modelgw:b:{~}:d:20261204",
        "modelgw:c:{abc}",
        "foo{}{bar}",
        "foo{{bar}}zap",
        "no tag at all",
        "{}",
        "}{",
        "modelgw:sv:{ns}:0000000a",
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *argv[3] = {"CLUSTER", "KEYSLOT", keys[i]};
        reply x = command(r, 3, argv);
        assert_int_equal(x.err, GW_OK);
        assert_int_equal(x.integer, (long long)gw_redis_key_slot(keys[i], strlen(keys[i])));
    }
    close_redis(r);
}

static void test_bad_seeds(void **s)
{
    static const char *const bad[] = {"127.0.0.1", "127.0.0.1:0",     "127.0.0.1:70000",
                                      ":7000",     "127.0.0.1:7000x", " , "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gw_redis_opts o = {.cluster_nodes = bad[i]};
        gw_redis *r = NULL;
        assert_int_equal(gw_redis_new(&loop, &o, &r), GW_E_CONFIG);
        assert_null(r);
    }
    gw_redis_opts o = {.cluster_nodes = nodes, .db = 1};
    gw_redis *r = NULL;
    assert_int_equal(gw_redis_new(&loop, &o, &r), GW_E_CONFIG);
}

/* Commands issued at once, before the slot map is read, go to any node and
 * follow MOVED; all land, and reads through the map agree. */
static void test_moved_before_map(void **s)
{
    gw_redis *r = connect_cluster(3000, false);
    enum { N = 40 };
    static reply x[N];
    static char keyv[N][48];
    memset(x, 0, sizeof x);
    int done = 0;
    in_call = true;
    for (int i = 0; i < N; i++) {
        snprintf(keyv[i], sizeof keyv[i], "test:moved:%d:%d", (int)getpid(), i);
        const char *argv[5] = {"SET", keyv[i], keyv[i], "EX", "60"};
        gw_redis_command(r, 5, argv, NULL, on_reply, &x[i]);
    }
    in_call = false;
    for (int i = 0; i < N; i++) {
        assert_true(gw_test_wait_count(&loop, &x[i].done, 1, 10000));
        assert_int_equal(x[i].err, GW_OK);
        done++;
    }
    assert_int_equal(done, N);
    assert_int_equal(inside_call_answers, 0);
    gw_redis_stats st;
    gw_redis_get_stats(r, &st);
    assert_true(st.moved > 0); /* 40 keys over three masters: most were MOVED */
    assert_true(st.map_refreshes >= 1);
    assert_true(gw_test_wait_redis(&loop, r, true, 5000));
    gw_redis_get_stats(r, &st);
    assert_int_equal(st.nodes, 3);
    for (int i = 0; i < N; i++) {
        const char *argv[2] = {"GET", keyv[i]};
        reply g = command(r, 2, argv);
        assert_int_equal(g.err, GW_OK);
        assert_string_equal(g.str, keyv[i]);
    }
    close_redis(r);
}

/* The port of the master of key's slot: the one node that answers a GET of
 * it (replicas and the other masters answer MOVED). */
static int master_of(const char *key)
{
    int found = -1;
    for (int i = 0; i < 6; i++) {
        gw_redis *n = connect_node(base_port + i);
        const char *get[2] = {"GET", key};
        reply x = command(n, 2, get);
        close_redis(n);
        if (x.err == GW_OK) {
            assert_int_equal(found, -1);
            found = base_port + i;
        }
    }
    return found;
}

static char node_id[64];

static void on_id(void *arg, gw_err err, const redisReply *rep)
{
    int *done = arg;
    if (err == GW_OK && rep->type == REDIS_REPLY_STRING)
        snprintf(node_id, sizeof node_id, "%s", rep->str);
    (*done)++;
}

static void id_of(int port, char *out, size_t n)
{
    gw_redis *r = connect_node(port);
    int done = 0;
    const char *argv[2] = {"CLUSTER", "MYID"};
    gw_redis_command(r, 2, argv, NULL, on_id, &done);
    assert_true(gw_test_wait_count(&loop, &done, 1, 5000));
    snprintf(out, n, "%s", node_id);
    close_redis(r);
}

/* A slot migrating from one master to another: a key that is not (yet) on
 * the source is answered ASK, and the client sends ASKING + the command to
 * the importing node. */
static void test_ask_during_migration(void **s)
{
    gw_redis *r = connect_cluster(3000, true);
    char key[64];
    snprintf(key, sizeof key, "test:ask:%d", (int)getpid());
    int src = master_of(key), dst = -1;
    assert_true(src > 0);
    /* another master: the master of a key in a different node's range */
    for (int i = 0; i < 100 && dst < 0; i++) {
        char k[32];
        snprintf(k, sizeof k, "other-%d", i);
        int m = master_of(k);
        if (m > 0 && m != src)
            dst = m;
    }
    assert_true(dst > 0);
    char src_id[64], dst_id[64], slot[16];
    id_of(src, src_id, sizeof src_id);
    id_of(dst, dst_id, sizeof dst_id);
    snprintf(slot, sizeof slot, "%u", gw_redis_key_slot(key, strlen(key)));
    gw_redis *nd = connect_node(dst), *ns = connect_node(src);
    const char *imp[5] = {"CLUSTER", "SETSLOT", slot, "IMPORTING", src_id};
    assert_int_equal(command(nd, 5, imp).err, GW_OK);
    const char *mig[5] = {"CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id};
    assert_int_equal(command(ns, 5, mig).err, GW_OK);

    gw_redis_stats before, after;
    gw_redis_get_stats(r, &before);
    const char *set[5] = {"SET", key, "asked", "EX", "60"};
    reply x = command(r, 5, set);
    assert_int_equal(x.err, GW_OK);
    gw_redis_get_stats(r, &after);
    assert_true(after.asked > before.asked);
    /* the key went to the importing node */
    const char *asking[1] = {"ASKING"};
    assert_int_equal(command(nd, 1, asking).err, GW_OK);
    const char *get[2] = {"GET", key};
    reply g = command(nd, 2, get);
    assert_int_equal(g.err, GW_OK);
    assert_string_equal(g.str, "asked");
    /* back to a stable slot owned by the source (the key is dropped with it) */
    const char *del[2] = {"DEL", key};
    command(nd, 1, asking);
    assert_int_equal(command(nd, 2, del).err, GW_OK);
    const char *stable[4] = {"CLUSTER", "SETSLOT", slot, "STABLE"};
    assert_int_equal(command(nd, 4, stable).err, GW_OK);
    assert_int_equal(command(ns, 4, stable).err, GW_OK);
    close_redis(nd);
    close_redis(ns);
    close_redis(r);
}

/* ---- a master killed under load ------------------------------------------------------------- */

enum { MAX_OPS = 60000, BATCH = 12 };
typedef enum { K_LIMIT, K_CACHE, K_IDEM } kind;
typedef enum { P_BEFORE, P_OUTAGE, P_AFTER } phase;

typedef struct {
    gw_state *st;
    gw_redis *r;
    uint8_t answered[MAX_OPS];
    uint8_t op_kind[MAX_OPS];
    uint8_t op_phase[MAX_OPS];
    int issued, answers, dups;
    phase ph;
    bool load;
    /* [phase][kind] */
    int ok[3][3], fallback[3][3], unavailable[3][3], other[3][3];
    uv_timer_t tick;
} load_state;

static load_state L;

static void tally(int idx, gw_err err, bool fallback)
{
    if (in_call)
        inside_call_answers++;
    if (idx < 0 || idx >= MAX_OPS)
        return;
    if (L.answered[idx]++ != 0) {
        L.dups++;
        return;
    }
    L.answers++;
    /* before: answered before the kill; after: issued once the map was whole
     * again; outage: the rest (including what was in flight at the kill) */
    int p = L.ph == P_BEFORE ? P_BEFORE : L.op_phase[idx] == P_AFTER ? P_AFTER : P_OUTAGE;
    int k = L.op_kind[idx];
    if (err == GW_OK && !fallback)
        L.ok[p][k]++;
    else if (err == GW_OK && fallback)
        L.fallback[p][k]++;
    else if (err == GW_E_STATE_UNAVAILABLE)
        L.unavailable[p][k]++;
    else
        L.other[p][k]++;
}

static void on_limit(void *ud, const gw_limit_result *r)
{
    tally((int)(intptr_t)ud, r->err, r->fallback);
}

static void on_cache(void *ud, const gw_cache_result *r)
{
    tally((int)(intptr_t)ud, r->err, r->fallback || r->kind == GW_CACHE_BYPASS);
}

static void issue_batch(void)
{
    char name[64], owner[32];
    snprintf(owner, sizeof owner, "w%d", (int)getpid());
    in_call = true;
    for (int b = 0; b < BATCH && L.issued < MAX_OPS; b++) {
        int idx = L.issued++;
        kind k = (kind)(idx % 3);
        L.op_kind[idx] = (uint8_t)k;
        L.op_phase[idx] = (uint8_t)L.ph;
        void *ud = (void *)(intptr_t)idx;
        if (k == K_LIMIT) {
            snprintf(name, sizeof name, "agent_rpm:fo-%d-%d", (int)getpid(), idx % 64);
            gw_limit_key key = {.scope = name, .rate_per_min = 1e9, .burst = 1e9, .cost = 1};
            gw_state_limit_check(L.st, &key, 1, on_limit, ud);
        } else if (k == K_CACHE) {
            snprintf(name, sizeof name, "fo-ck-%d-%d", (int)getpid(), idx);
            gw_state_cache_get_or_lock(L.st, name, owner, 5000, false, on_cache, ud);
        } else {
            snprintf(name, sizeof name, "fo-rid-%d-%d", (int)getpid(), idx);
            gw_state_idem_claim(L.st, name, owner, 5000, on_cache, ud);
        }
    }
    in_call = false;
}

static void tick_cb(uv_timer_t *t)
{
    if (L.load)
        issue_batch();
}

static bool all_answered(const void *arg)
{
    return L.answers + L.dups >= L.issued;
}

static void test_master_killed_under_load(void **s)
{
    memset(&L, 0, sizeof L);
    uv_timer_init(&loop, &L.tick);
    L.r = connect_cluster(1000, true);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "test:failover:%d:", (int)getpid());
    gw_state_opts so = {.key_prefix = prefix};
    gw_state *inner = NULL;
    assert_int_equal(gw_state_redis_new(&loop, L.r, &so, &inner), GW_OK);
    gw_state_policy_opts po = {.limits = GW_STATE_FAIL_OPEN,
                               .cache = GW_STATE_FAIL_OPEN,
                               .idempotency = GW_STATE_FAIL_CLOSED,
                               .expected_workers = 1};
    assert_int_equal(gw_state_policy_new(&loop, inner, &po, &L.st), GW_OK);
    uv_timer_start(&L.tick, tick_cb, 5, 5);
    L.load = true;
    gw_test_run_for(&loop, 700);

    /* kill the master of one third of the slots */
    int victim = master_of("fo-any-key");
    assert_true(victim > 0);
    char pidfile[256];
    snprintf(pidfile, sizeof pidfile, "%s/services/redis-cluster/%d/redis.pid", run_dir, victim);
    FILE *f = fopen(pidfile, "r");
    assert_non_null(f);
    int pid = 0;
    assert_int_equal(fscanf(f, "%d", &pid), 1);
    fclose(f);
    L.ph = P_OUTAGE;
    assert_int_equal(kill(pid, SIGKILL), 0);

    /* under load until the client sees the map whole again (a replica
     * promoted), then a second more of load */
    assert_true(gw_test_wait_redis(&loop, L.r, false, 5000));
    assert_true(gw_test_wait_redis(&loop, L.r, true, 30000));
    L.ph = P_AFTER;
    gw_test_run_for(&loop, 1000);
    L.load = false;
    assert_true(gw_test_run_until(&loop, all_answered, NULL, 10000));

    printf("failover: %d operations; before ok %d/%d/%d; outage ok %d/%d/%d fallback %d/%d/%d "
           "unavailable %d/%d/%d other %d/%d/%d; after ok %d/%d/%d fallback %d/%d/%d "
           "unavailable %d/%d/%d (limit/cache/idempotency)\n",
           L.issued, L.ok[0][0], L.ok[0][1], L.ok[0][2], L.ok[1][0], L.ok[1][1], L.ok[1][2],
           L.fallback[1][0], L.fallback[1][1], L.fallback[1][2], L.unavailable[1][0],
           L.unavailable[1][1], L.unavailable[1][2], L.other[1][0], L.other[1][1], L.other[1][2],
           L.ok[2][0], L.ok[2][1], L.ok[2][2], L.fallback[2][0], L.fallback[2][1], L.fallback[2][2],
           L.unavailable[2][0], L.unavailable[2][1], L.unavailable[2][2]);
    /* exactly once, never inside the call, nothing lost */
    assert_int_equal(L.dups, 0);
    assert_int_equal(inside_call_answers, 0);
    assert_int_equal(L.answers, L.issued);
    /* before: all good */
    for (int k = 0; k < 3; k++) {
        assert_true(L.ok[P_BEFORE][k] > 0);
        assert_int_equal(
            L.fallback[P_BEFORE][k] + L.unavailable[P_BEFORE][k] + L.other[P_BEFORE][k], 0);
    }
    /* outage: the open features fell back, the closed one said so; never
     * the other way round, never another error */
    assert_true(L.fallback[P_OUTAGE][K_LIMIT] > 0);
    assert_true(L.fallback[P_OUTAGE][K_CACHE] > 0);
    assert_true(L.unavailable[P_OUTAGE][K_IDEM] > 0);
    assert_int_equal(L.unavailable[P_OUTAGE][K_LIMIT] + L.unavailable[P_OUTAGE][K_CACHE], 0);
    assert_int_equal(L.fallback[P_OUTAGE][K_IDEM], 0);
    for (int k = 0; k < 3; k++)
        assert_int_equal(L.other[P_OUTAGE][k] + L.other[P_AFTER][k], 0);
    /* after the failover: every operation through Redis again */
    for (int k = 0; k < 3; k++) {
        assert_true(L.ok[P_AFTER][k] > 0);
        assert_int_equal(L.fallback[P_AFTER][k] + L.unavailable[P_AFTER][k], 0);
    }
    gw_redis_stats st;
    gw_redis_get_stats(L.r, &st);
    assert_true(st.map_refreshes >= 2);
    assert_int_equal(st.nodes, 3);
}

/* Runs after the failover test, passed or failed. */
static int failover_teardown(void **s)
{
    L.load = false;
    if (uv_is_active((uv_handle_t *)&L.tick) || !uv_is_closing((uv_handle_t *)&L.tick))
        uv_close((uv_handle_t *)&L.tick, NULL);
    gw_state_free(L.st);
    L.st = NULL;
    if (L.r != NULL)
        close_redis(L.r);
    L.r = NULL;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_slots),
        cmocka_unit_test(test_bad_seeds),
        cmocka_unit_test(test_moved_before_map),
        cmocka_unit_test(test_ask_during_migration),
        cmocka_unit_test_teardown(test_master_killed_under_load, failover_teardown),
    };
    return cmocka_run_group_tests_name("redis_cluster", tests, group_setup, group_teardown);
}
