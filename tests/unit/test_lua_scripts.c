/*
 * test_lua_scripts: every embedded Redis Lua script (src/<module>/lua/NAME.lua,
 * common/lua_scripts.h) on its own, against the real redis-server at
 * MODELGW_REDIS, with a plain synchronous hiredis connection: no gw_redis, no
 * backend, so a failure here points at the script itself.
 *
 * Every script must SCRIPT LOAD (a syntax check) under the SHA-1 that the
 * connection's registry computes locally; then each one is run with EVALSHA
 * on representative KEYS/ARGV under a key prefix unique to this run, and the
 * replies and the keys it left are checked (values, TTLs, what a denial must
 * not write). Each test deletes its keys afterwards, after checking that every
 * key a script wrote has a TTL.
 *
 * Skipped, with the reason printed, when MODELGW_REDIS is unset or the Redis
 * there does not answer. A script added without a test here fails
 * test_every_script_is_known.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "common/lua_scripts.h"
#include "common/sha.h"
#include "test_support.h"

/* Every embedded script; each one has a test below. */
static const char *const known[] = {
    "route/breaker_allow",   "route/breaker_record",  "route/latency_read",
    "route/latency_record",  "semantic/semstore_put", "semantic/semstore_search",
    "state/admit",           "state/budget_charge",   "state/complete",
    "state/limit_check",     "state/limit_reconcile", "state/store_and_unlock",
    "state/unlock_if_owner", "state/value_or_lock",
};
enum { KNOWN = sizeof known / sizeof known[0] };

static redisContext *rc;    /* NULL: Redis unavailable, every test skips */
static char why_skip[512];  /* the reason, printed once */
static char run_prefix[96]; /* "gwtest:lua:<pid>:<usec>:" */
static char prefix[160];    /* run_prefix + "t<n>:", one per test */

/* ---- helpers ----------------------------------------------------------------------- */

#define NEED_REDIS()                                                                               \
    do {                                                                                           \
        if (rc == NULL) {                                                                          \
            print_message("skipped: %s\n", why_skip);                                              \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

static void local_sha1(const char *text, char out[41])
{
    gw_sha1 c;
    uint8_t d[20];
    gw_sha1_init(&c);
    gw_sha1_update(&c, text, strlen(text));
    gw_sha1_final(&c, d);
    gw_hex(d, sizeof d, out);
}

static const char *key(const char *name)
{
    static char k[16][256];
    static int next;
    char *out = k[next++ % 16];
    snprintf(out, sizeof k[0], "%s%s", prefix, name);
    return out;
}

/* A command in argv form; the caller frees the reply. Never NULL. */
static redisReply *cmdv(int argc, const char **argv, const size_t *lens)
{
    redisReply *r = redisCommandArgv(rc, argc, argv, lens);
    if (r == NULL)
        fail_msg("redis: %s", rc->errstr);
    return r;
}

static redisReply *cmd(const char *c0, const char *c1, const char *c2, const char *c3)
{
    const char *argv[4] = {c0, c1, c2, c3};
    int argc = c1 == NULL ? 1 : c2 == NULL ? 2 : c3 == NULL ? 3 : 4;
    return cmdv(argc, argv, NULL);
}

static long long cmd_int(const char *c0, const char *c1, const char *c2, const char *c3)
{
    redisReply *r = cmd(c0, c1, c2, c3);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* GET as a string (the caller frees it), NULL for a missing key. */
static char *get(const char *k)
{
    redisReply *r = cmd("GET", k, NULL, NULL);
    char *v = r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    assert_true(r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_NIL);
    freeReplyObject(r);
    return v;
}

static double get_num(const char *k)
{
    char *v = get(k);
    assert_non_null(v);
    double d = strtod(v, NULL);
    free(v);
    return d;
}

static char *hget(const char *k, const char *field)
{
    redisReply *r = cmd("HGET", k, field, NULL);
    char *v = r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    freeReplyObject(r);
    return v;
}

static long long hget_int(const char *k, const char *field)
{
    char *v = hget(k, field);
    long long n = v != NULL ? strtoll(v, NULL, 10) : -1;
    free(v);
    return n;
}

static long long pttl(const char *k)
{
    return cmd_int("PTTL", k, NULL, NULL);
}

static long long exists(const char *k)
{
    return cmd_int("EXISTS", k, NULL, NULL);
}

/* Redis TIME in ms (the clock the scripts read). */
static double redis_now_ms(void)
{
    redisReply *r = cmd("TIME", NULL, NULL, NULL);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    double now = strtod(r->element[0]->str, NULL) * 1000 + strtod(r->element[1]->str, NULL) / 1000;
    freeReplyObject(r);
    return now;
}

/* EVALSHA of the embedded script called name: argv[0..nkeys) are KEYS, the
 * rest ARGV; lens NULL means strlen. The caller frees the reply. */
static redisReply *eval(const char *name, int nkeys, int argc, const char *const *argv,
                        const size_t *lens)
{
    const char *text = gw_lua_script(name);
    assert_non_null(text);
    char sha[41], nk[16];
    local_sha1(text, sha);
    snprintf(nk, sizeof nk, "%d", nkeys);
    const char *av[64];
    size_t al[64];
    assert_true(argc + 3 <= 64);
    av[0] = "EVALSHA";
    av[1] = sha;
    av[2] = nk;
    for (int i = 0; i < 3; i++)
        al[i] = strlen(av[i]);
    for (int i = 0; i < argc; i++) {
        av[3 + i] = argv[i];
        al[3 + i] = lens != NULL ? lens[i] : strlen(argv[i]);
    }
    redisReply *r = cmdv(argc + 3, av, al);
    if (r->type == REDIS_REPLY_ERROR)
        fail_msg("%s: %s", name, r->str);
    return r;
}

static long long elem_int(const redisReply *r, size_t i)
{
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_true(i < r->elements);
    const redisReply *e = r->element[i];
    if (e->type == REDIS_REPLY_INTEGER)
        return e->integer;
    assert_int_equal(e->type, REDIS_REPLY_STRING);
    return strtoll(e->str, NULL, 10);
}

static const char *elem_str(const redisReply *r, size_t i)
{
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_true(i < r->elements);
    assert_int_equal(r->element[i]->type, REDIS_REPLY_STRING);
    return r->element[i]->str;
}

/* An integer reply of the script. */
static long long eval_int(const char *name, int nkeys, int argc, const char *const *argv)
{
    redisReply *r = eval(name, nkeys, argc, argv, NULL);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* Every key under the test's prefix, checked for a TTL, then deleted. */
static void sweep(bool require_ttl)
{
    char match[200];
    snprintf(match, sizeof match, "%s*", prefix);
    char cursor[32] = "0";
    do {
        const char *argv[6] = {"SCAN", cursor, "MATCH", match, "COUNT", "1000"};
        redisReply *r = cmdv(6, argv, NULL);
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        const redisReply *keys = r->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            const char *k = keys->element[i]->str;
            long long t = pttl(k);
            if (require_ttl && t < 0)
                fail_msg("key without a TTL: %s", k);
            cmd_int("DEL", k, NULL, NULL);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
}

static int setup(void **state)
{
    (void)state;
    /* The test's own prefix: the cmocka test name is not available here, so
     * a counter keeps the tests apart. */
    static int n;
    snprintf(prefix, sizeof prefix, "%st%d:", run_prefix, ++n);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (rc != NULL)
        sweep(true);
    return 0;
}

/* ---- all scripts ----------------------------------------------------------------------- */

static void test_every_script_is_known(void **state)
{
    (void)state;
    assert_int_equal(gw_lua_source_count, KNOWN);
    for (size_t i = 0; i < KNOWN; i++) {
        const char *text = gw_lua_script(known[i]);
        if (text == NULL)
            fail_msg("no embedded script %s", known[i]);
        assert_true(strlen(text) > 0);
        assert_int_equal(text[strlen(text) - 1], '\n');
    }
    for (size_t i = 0; i < gw_lua_source_count; i++)
        assert_ptr_equal(gw_lua_script(gw_lua_sources[i].name), gw_lua_sources[i].text);
    assert_null(gw_lua_script("state/no_such_script"));
    assert_null(gw_lua_script(NULL));
}

static void test_every_script_loads(void **state)
{
    (void)state;
    NEED_REDIS();
    for (size_t i = 0; i < gw_lua_source_count; i++) {
        const char *argv[3] = {"SCRIPT", "LOAD", gw_lua_sources[i].text};
        redisReply *r = cmdv(3, argv, NULL);
        if (r->type == REDIS_REPLY_ERROR)
            fail_msg("SCRIPT LOAD %s: %s", gw_lua_sources[i].name, r->str);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        char sha[41];
        local_sha1(gw_lua_sources[i].text, sha);
        /* The registry in loop/redis.c computes the same SHA-1 locally. */
        assert_string_equal(r->str, sha);
        freeReplyObject(r);
    }
}

/* ---- state: limits -------------------------------------------------------------------- */

static redisReply *limit_check(int n, const char *const *keys, const char *const *args)
{
    const char *argv[16];
    for (int i = 0; i < n; i++)
        argv[i] = keys[i];
    for (int i = 0; i < 3 * n; i++)
        argv[n + i] = args[i];
    return eval("state/limit_check", n, 4 * n, argv, NULL);
}

static void expect_triple(redisReply *r, long long a, long long b, long long c)
{
    assert_int_equal(r->elements, 3);
    assert_int_equal(elem_int(r, 0), a);
    assert_int_equal(elem_int(r, 1), b);
    assert_int_equal(elem_int(r, 2), c);
}

static void test_limit_check(void **state)
{
    (void)state;
    NEED_REDIS();
    const char *a = key("rl:a");
    /* 60/min = one unit per 1000 ms, burst 2, cost 1: two pass, the third
     * waits for one unit (at most 1000 ms). */
    const char *args[3] = {"60", "2", "1"};
    redisReply *r = limit_check(1, &a, args);
    expect_triple(r, 0, 0, 0);
    freeReplyObject(r);
    double now = redis_now_ms();
    double tat = get_num(a);
    assert_true(tat > now && tat <= now + 1000 + 5);
    long long t = pttl(a);
    assert_true(t > 0 && t <= 1000);

    r = limit_check(1, &a, args);
    expect_triple(r, 0, 0, 0);
    freeReplyObject(r);
    double tat2 = get_num(a);
    assert_true(tat2 >= tat + 1000 - 0.001);
    assert_true(pttl(a) > 1000 && pttl(a) <= 2000);

    /* The bucket is empty: denied by key 1, retry within one unit's time,
     * and a denial writes nothing. */
    char *before = get(a);
    r = limit_check(1, &a, args);
    assert_int_equal(elem_int(r, 0), 1);
    long long retry = elem_int(r, 1);
    assert_true(retry >= 1 && retry <= 1000);
    assert_int_equal(elem_int(r, 2), 1);
    freeReplyObject(r);
    char *after = get(a);
    assert_string_equal(before, after);
    free(before);
    free(after);

    /* Two keys, the second one empty: denied by key 2 and the first key
     * stays untouched (all or nothing). */
    const char *two[2] = {key("rl:b"), a};
    const char *args2[6] = {"600", "10", "1", "60", "2", "1"};
    r = limit_check(2, two, args2);
    assert_int_equal(elem_int(r, 0), 1);
    assert_int_equal(elem_int(r, 2), 2);
    freeReplyObject(r);
    assert_int_equal(exists(two[0]), 0);

    /* A cost above the burst can never fit, whatever the bucket holds. */
    const char *c = key("rl:c");
    const char *args3[3] = {"60", "2", "3"};
    r = limit_check(1, &c, args3);
    expect_triple(r, 2, 0, 1);
    freeReplyObject(r);
    assert_int_equal(exists(c), 0);

    /* Cost 0 is always allowed and writes nothing. */
    const char *args4[3] = {"60", "2", "0"};
    r = limit_check(1, &c, args4);
    expect_triple(r, 0, 0, 0);
    freeReplyObject(r);
    assert_int_equal(exists(c), 0);
}

static void test_limit_reconcile(void **state)
{
    (void)state;
    NEED_REDIS();
    const char *rl = key("rl:tpm");
    const char *marker = key("rr:req1");
    /* Reserve 2 units at 60/min first: the TAT is 2000 ms ahead. */
    const char *args[3] = {"60", "10", "2"};
    redisReply *r = limit_check(1, &rl, args);
    expect_triple(r, 0, 0, 0);
    freeReplyObject(r);
    double tat0 = get_num(rl);

    /* Charge 3 more units once: +3000 ms. */
    const char *argv[5] = {marker, rl, "60000", "60", "3"};
    assert_int_equal(eval_int("state/limit_reconcile", 2, 5, argv), 1);
    double tat1 = get_num(rl);
    assert_true(tat1 >= tat0 + 3000 - 0.001 && tat1 <= tat0 + 3000 + 0.001);
    long long t = pttl(marker);
    assert_true(t > 0 && t <= 60000);
    assert_true(pttl(rl) > 4000 && pttl(rl) <= 5000);

    /* The same request again: nothing applied. */
    assert_int_equal(eval_int("state/limit_reconcile", 2, 5, argv), 0);
    assert_true(get_num(rl) == tat1);

    /* A refund larger than what is reserved deletes the key (never below
     * now); it is never denied. */
    const char *argv2[5] = {key("rr:req2"), rl, "60000", "60", "-100"};
    assert_int_equal(eval_int("state/limit_reconcile", 2, 5, argv2), 1);
    assert_int_equal(exists(rl), 0);
}

/* ---- state: budgets --------------------------------------------------------------------- */

static void test_budget_charge(void **state)
{
    (void)state;
    NEED_REDIS();
    const char *day = key("b:agent:d:20240101");
    const char *month = key("b:agent:m:202401");
    const char *argv[7] = {key("bc:req1"), day, month, "1500", "60000", "172800", "2851200"};
    assert_int_equal(eval_int("state/budget_charge", 3, 7, argv), 1);
    assert_true(get_num(day) == 1500);
    assert_true(get_num(month) == 1500);
    long long td = cmd_int("TTL", day, NULL, NULL), tm = cmd_int("TTL", month, NULL, NULL);
    assert_true(td > 172700 && td <= 172800);
    assert_true(tm > 2851100 && tm <= 2851200);
    assert_true(pttl(argv[0]) > 0 && pttl(argv[0]) <= 60000);

    /* A redelivered completion never charges twice. */
    assert_int_equal(eval_int("state/budget_charge", 3, 7, argv), 0);
    assert_true(get_num(day) == 1500);

    const char *argv2[7] = {key("bc:req2"), day, month, "250", "60000", "172800", "2851200"};
    assert_int_equal(eval_int("state/budget_charge", 3, 7, argv2), 1);
    assert_true(get_num(day) == 1750);
    assert_true(get_num(month) == 1750);
}

/* ---- state: cache and idempotency -------------------------------------------------------- */

/* value_or_lock: returns the status (1 hit, 2 mine, 3 other's) and the
 * second element (the bytes of a hit, as a string, or the lock's PTTL). */
static long long value_or_lock(const char *vkey, const char *lkey, const char *owner,
                               const char *lock_ms, const char *refresh, char *bytes, size_t cap,
                               long long *ttl)
{
    const char *argv[5] = {vkey, lkey, owner, lock_ms, refresh};
    redisReply *r = eval("state/value_or_lock", 2, 5, argv, NULL);
    long long status = elem_int(r, 0);
    if (status == 1) {
        assert_int_equal(r->elements, 2);
        assert_true(r->element[1]->len < cap);
        memcpy(bytes, r->element[1]->str, r->element[1]->len);
        bytes[r->element[1]->len] = '\0';
    } else if (status == 2) {
        assert_int_equal(r->elements, 1);
    } else {
        assert_int_equal(status, 3);
        assert_int_equal(r->elements, 2);
        *ttl = elem_int(r, 1);
    }
    freeReplyObject(r);
    return status;
}

static long long store_and_unlock(const char *vkey, const char *lkey, const char *bytes, size_t len,
                                  const char *ttl_s, const char *owner, const char *nx)
{
    const char *argv[6] = {vkey, lkey, bytes, ttl_s, owner, nx};
    size_t lens[6] = {strlen(vkey), strlen(lkey), len, strlen(ttl_s), strlen(owner), strlen(nx)};
    redisReply *r = eval("state/store_and_unlock", 2, 6, argv, lens);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

static void test_cache_get_or_lock_put(void **state)
{
    (void)state;
    NEED_REDIS();
    const char *v = key("c:h1"), *l = key("cl:h1");
    char bytes[64];
    long long ttl = -1;
    /* Miss: the first caller takes the lock. */
    assert_int_equal(value_or_lock(v, l, "w1/1", "5000", "0", bytes, sizeof bytes, &ttl), 2);
    char *owner = get(l);
    assert_string_equal(owner, "w1/1");
    free(owner);
    assert_true(pttl(l) > 0 && pttl(l) <= 5000);
    /* Another caller sees the lock and its remaining time. */
    assert_int_equal(value_or_lock(v, l, "w2/1", "5000", "0", bytes, sizeof bytes, &ttl), 3);
    assert_true(ttl > 0 && ttl <= 5000);
    /* The owner asking again keeps it, lease renewed. */
    assert_int_equal(value_or_lock(v, l, "w1/1", "9000", "0", bytes, sizeof bytes, &ttl), 2);
    assert_true(pttl(l) > 5000 && pttl(l) <= 9000);
    /* Another owner's put stores the value but leaves w1's lock alone. */
    assert_int_equal(store_and_unlock(v, l, "other", 5, "60", "w2/1", "0"), 1);
    assert_int_equal(exists(l), 1);
    /* The owner's put stores (binary safe, overwriting) and releases. */
    static const char bin[] = {'a', '\0', 'b'};
    assert_int_equal(store_and_unlock(v, l, bin, sizeof bin, "60", "w1/1", "0"), 1);
    assert_int_equal(exists(l), 0);
    redisReply *r = cmd("GET", v, NULL, NULL);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_int_equal(r->len, 3);
    assert_memory_equal(r->str, bin, 3);
    freeReplyObject(r);
    long long t = cmd_int("TTL", v, NULL, NULL);
    assert_true(t > 0 && t <= 60);
    /* Hit for anyone, no lock taken. */
    assert_int_equal(value_or_lock(v, l, "w3/1", "5000", "0", bytes, sizeof bytes, &ttl), 1);
    assert_memory_equal(bytes, bin, 3);
    assert_int_equal(exists(l), 0);
    /* refresh skips the value and takes the lock. */
    assert_int_equal(value_or_lock(v, l, "w3/1", "5000", "1", bytes, sizeof bytes, &ttl), 2);
    /* A put without an owner ("") never touches a lock. */
    assert_int_equal(store_and_unlock(v, l, "new", 3, "60", "", "0"), 1);
    assert_int_equal(exists(l), 1);
    char *now = get(v);
    assert_string_equal(now, "new");
    free(now);
}

static void test_unlock_if_owner(void **state)
{
    (void)state;
    NEED_REDIS();
    const char *l = key("cl:h2");
    char bytes[8];
    long long ttl;
    assert_int_equal(value_or_lock(key("c:h2"), l, "w1/1", "5000", "0", bytes, sizeof bytes, &ttl),
                     2);
    const char *other[3] = {l, "w2/1", "30000"};
    assert_int_equal(eval_int("state/unlock_if_owner", 1, 3, other), 0);
    char *v = get(l);
    assert_string_equal(v, "w1/1"); /* another's lock stays */
    free(v);
    const char *mine[3] = {l, "w1/1", "30000"};
    assert_int_equal(eval_int("state/unlock_if_owner", 1, 3, mine), 1);
    v = get(l);
    assert_string_equal(v, "~w1/1"); /* released, fenced against w1/1 */
    free(v);
    assert_true(pttl(l) > 0 && pttl(l) <= 30000);
    /* A late copy of w1/1's own claim takes nothing... */
    assert_int_equal(value_or_lock(key("c:h2"), l, "w1/1", "5000", "0", bytes, sizeof bytes, &ttl),
                     3);
    /* ...while the next claim by anyone else takes over at once. */
    assert_int_equal(value_or_lock(key("c:h2"), l, "w2/1", "5000", "0", bytes, sizeof bytes, &ttl),
                     2);
    /* Nothing held: the release still fences a claim on its way. */
    const char *l3 = key("cl:h3");
    const char *late[3] = {l3, "w3/1", "30000"};
    assert_int_equal(eval_int("state/unlock_if_owner", 1, 3, late), 0);
    assert_int_equal(value_or_lock(key("c:h3"), l3, "w3/1", "5000", "0", bytes, sizeof bytes, &ttl),
                     3);
}

static void test_idempotency_claim_complete_hit(void **state)
{
    (void)state;
    NEED_REDIS();
    const char *id = key("id:req1"), *il = key("il:req1");
    char bytes[64];
    long long ttl = -1;
    /* Claim: the lease is ours; a second worker waits. */
    assert_int_equal(value_or_lock(id, il, "w1/7", "3000", "0", bytes, sizeof bytes, &ttl), 2);
    assert_int_equal(value_or_lock(id, il, "w2/9", "3000", "0", bytes, sizeof bytes, &ttl), 3);
    assert_true(ttl > 0 && ttl <= 3000);
    /* Complete: the response is kept (first completion wins), lease dropped. */
    assert_int_equal(store_and_unlock(id, il, "resp-1", 6, "600", "w1/7", "1"), 1);
    assert_int_equal(exists(il), 0);
    long long t = cmd_int("TTL", id, NULL, NULL);
    assert_true(t > 0 && t <= 600);
    /* A second completion keeps the first response. */
    assert_int_equal(store_and_unlock(id, il, "resp-2", 6, "600", "w2/9", "1"), 0);
    /* A redelivered request hits the kept response. */
    assert_int_equal(value_or_lock(id, il, "w2/9", "3000", "0", bytes, sizeof bytes, &ttl), 1);
    assert_string_equal(bytes, "resp-1");
    assert_int_equal(exists(il), 0);

    /* Lease takeover: an expired lease (a crashed worker) is taken over. */
    const char *id2 = key("id:req2"), *il2 = key("il:req2");
    assert_int_equal(value_or_lock(id2, il2, "w1/8", "20", "0", bytes, sizeof bytes, &ttl), 2);
    usleep(60 * 1000);
    assert_int_equal(value_or_lock(id2, il2, "w2/1", "3000", "0", bytes, sizeof bytes, &ttl), 2);
    char *owner = get(il2);
    assert_string_equal(owner, "w2/1");
    free(owner);
}

/* ---- route: breakers ----------------------------------------------------------------------- */

/* breaker_record with fixed options: bucket 1 s, window 10 s, min_calls,
 * failure_rate, consecutive as given; open 5 s doubling to 60 s, no jitter,
 * one half-open success closes; TTL 60 s; 429 default 1 s, max 10 s. */
static redisReply *brk_record(const char *h, const char *probe, int kind, bool is_probe,
                              const char *token, const char *retry_ms, const char *min_calls,
                              const char *rate, const char *consecutive)
{
    char k[8];
    snprintf(k, sizeof k, "%d", kind);
    const char *argv[19] = {
        h,       probe,     k,      is_probe ? "1" : "0", token,  retry_ms, "0", "1000",
        "10000", min_calls, rate,   consecutive,          "5000", "60000",  "0", "1",
        "60000", "1000",    "10000"};
    redisReply *r = eval("route/breaker_record", 2, 19, argv, NULL);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 7);
    return r;
}

static redisReply *brk_allow(const char *h, const char *probe, const char *token)
{
    const char *argv[5] = {h, probe, token, "2000", "60000"};
    redisReply *r = eval("route/breaker_allow", 2, 5, argv, NULL);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 4);
    return r;
}

enum { OUT_SUCCESS = 0, OUT_FAILURE = 1, OUT_RATE_LIMITED = 3 };

static void test_breaker_opens_after_failures(void **state)
{
    (void)state;
    NEED_REDIS();
    const char *h = key("brk:{d1}"), *p = key("brk:{d1}:probe");
    /* A breaker nobody has written is closed. */
    redisReply *r = brk_allow(h, p, "t1");
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(elem_int(r, i), 0);
    freeReplyObject(r);
    assert_int_equal(exists(h), 0);

    /* Two failures, a success (resets the consecutive count), then three
     * failures in a row with consecutive_failures = 3: open. */
    r = brk_record(h, p, OUT_FAILURE, false, "", "0", "100", "0.5", "3");
    assert_int_equal(elem_int(r, 0), 0);
    assert_int_equal(elem_int(r, 6), 1);
    freeReplyObject(r);
    r = brk_record(h, p, OUT_FAILURE, false, "", "0", "100", "0.5", "3");
    assert_int_equal(elem_int(r, 6), 2);
    freeReplyObject(r);
    r = brk_record(h, p, OUT_SUCCESS, false, "", "0", "100", "0.5", "3");
    assert_int_equal(elem_int(r, 0), 0);
    assert_int_equal(elem_int(r, 4), 3); /* window calls */
    assert_int_equal(elem_int(r, 5), 2); /* window failures */
    assert_int_equal(elem_int(r, 6), 0);
    freeReplyObject(r);
    for (int i = 1; i <= 2; i++) {
        r = brk_record(h, p, OUT_FAILURE, false, "", "0", "100", "0.5", "3");
        assert_int_equal(elem_int(r, 0), 0);
        assert_int_equal(elem_int(r, 6), i);
        freeReplyObject(r);
    }
    r = brk_record(h, p, OUT_FAILURE, false, "", "0", "100", "0.5", "3");
    assert_int_equal(elem_int(r, 0), 1);    /* OPEN */
    assert_int_equal(elem_int(r, 1), 5000); /* open_base_ms, no jitter */
    assert_int_equal(elem_int(r, 2), 0);    /* no 429 cool-down */
    assert_int_equal(elem_int(r, 3), 1);    /* open count */
    assert_int_equal(elem_int(r, 4), 0);    /* the window restarts */
    assert_int_equal(elem_int(r, 6), 0);
    freeReplyObject(r);
    assert_int_equal(hget_int(h, "st"), 1);
    assert_true(pttl(h) > 0 && pttl(h) <= 60000);

    /* Open: denied with the remaining time, not rate limited. */
    r = brk_allow(h, p, "t1");
    assert_int_equal(elem_int(r, 0), 1);
    assert_true(elem_int(r, 1) > 4000 && elem_int(r, 1) <= 5000);
    assert_int_equal(elem_int(r, 2), 1);
    assert_int_equal(elem_int(r, 3), 0);
    freeReplyObject(r);
    assert_int_equal(exists(p), 0);
}

static void test_breaker_failure_rate(void **state)
{
    (void)state;
    NEED_REDIS();
    const char *h = key("brk:{d2}"), *p = key("brk:{d2}:probe");
    /* min_calls 4, failure_rate 0.5, no consecutive limit: S S F stays
     * closed (3 calls < 4), the fourth call, a failure, makes 2/4: open. */
    int seq[4] = {OUT_SUCCESS, OUT_SUCCESS, OUT_FAILURE, OUT_FAILURE};
    for (int i = 0; i < 4; i++) {
        redisReply *r = brk_record(h, p, seq[i], false, "", "0", "4", "0.5", "0");
        assert_int_equal(elem_int(r, 0), i < 3 ? 0 : 1);
        if (i == 2) {
            assert_int_equal(elem_int(r, 4), 3);
            assert_int_equal(elem_int(r, 5), 1);
        }
        freeReplyObject(r);
    }
}

static void test_breaker_half_open_probe(void **state)
{
    (void)state;
    NEED_REDIS();
    const char *h = key("brk:{d3}"), *p = key("brk:{d3}:probe");
    /* Open with its time already up (as left by breaker_record). */
    char ou[32];
    snprintf(ou, sizeof ou, "%.0f", redis_now_ms() - 1);
    const char *hset[6] = {"HSET", h, "st", "1", "ou", ou};
    freeReplyObject(cmdv(6, hset, NULL));
    cmd_int("PEXPIRE", h, "60000", NULL);

    /* The first caller moves it to HALF_OPEN and gets the probe lease. */
    redisReply *r = brk_allow(h, p, "probe-1");
    assert_int_equal(elem_int(r, 0), 2); /* PROBE */
    assert_int_equal(elem_int(r, 2), 2); /* HALF_OPEN */
    freeReplyObject(r);
    assert_int_equal(hget_int(h, "st"), 2);
    char *holder = get(p);
    assert_string_equal(holder, "probe-1");
    free(holder);
    assert_true(pttl(p) > 0 && pttl(p) <= 2000);
    /* Everyone else is denied while the probe runs. */
    r = brk_allow(h, p, "probe-2");
    assert_int_equal(elem_int(r, 0), 1);
    assert_true(elem_int(r, 1) >= 1 && elem_int(r, 1) <= 2000);
    assert_int_equal(elem_int(r, 2), 2);
    freeReplyObject(r);

    /* The probe succeeds (half_open_successes = 1): closed, lease gone. */
    r = brk_record(h, p, OUT_SUCCESS, true, "probe-1", "0", "100", "0.5", "3");
    assert_int_equal(elem_int(r, 0), 0);
    assert_int_equal(elem_int(r, 3), 0); /* open count reset */
    freeReplyObject(r);
    assert_int_equal(exists(p), 0);
    r = brk_allow(h, p, "x");
    assert_int_equal(elem_int(r, 0), 0);
    freeReplyObject(r);

    /* Half-open again and the probe fails: open again, for open_base_ms
     * (the close reset the open count, so no doubling). */
    snprintf(ou, sizeof ou, "%.0f", redis_now_ms() - 1);
    const char *hset2[6] = {"HSET", h, "st", "1", "ou", ou};
    freeReplyObject(cmdv(6, hset2, NULL));
    r = brk_allow(h, p, "probe-3");
    assert_int_equal(elem_int(r, 0), 2);
    freeReplyObject(r);
    r = brk_record(h, p, OUT_FAILURE, true, "probe-3", "0", "100", "0.5", "3");
    assert_int_equal(elem_int(r, 0), 1);
    assert_int_equal(elem_int(r, 1), 5000);
    assert_int_equal(elem_int(r, 3), 1);
    freeReplyObject(r);
    assert_int_equal(exists(p), 0);
}

static void test_breaker_rate_limited(void **state)
{
    (void)state;
    NEED_REDIS();
    const char *h = key("brk:{d4}"), *p = key("brk:{d4}:probe");
    /* A 429 with retry-after 2 s: a shared cool-down, no trip. */
    redisReply *r = brk_record(h, p, OUT_RATE_LIMITED, false, "", "2000", "100", "0.5", "3");
    assert_int_equal(elem_int(r, 0), 0);
    assert_int_equal(elem_int(r, 2), 2000);
    assert_int_equal(elem_int(r, 3), 0);
    freeReplyObject(r);
    r = brk_allow(h, p, "t");
    assert_int_equal(elem_int(r, 0), 1);
    assert_true(elem_int(r, 1) > 1000 && elem_int(r, 1) <= 2000);
    assert_int_equal(elem_int(r, 2), 0);
    assert_int_equal(elem_int(r, 3), 1); /* rate limited */
    freeReplyObject(r);
    /* retry-after above the maximum is capped (10 s); none uses the default. */
    r = brk_record(h, p, OUT_RATE_LIMITED, false, "", "999999", "100", "0.5", "3");
    assert_int_equal(elem_int(r, 2), 10000);
    freeReplyObject(r);
    const char *h2 = key("brk:{d5}"), *p2 = key("brk:{d5}:probe");
    r = brk_record(h2, p2, OUT_RATE_LIMITED, false, "", "0", "100", "0.5", "3");
    assert_int_equal(elem_int(r, 2), 1000);
    freeReplyObject(r);
}

/* ---- route: latency ------------------------------------------------------------------------ */

/* One sample as a batch of one (the worker's folding, alpha 0.5). */
static void latency_record(const char *k, const char *ttft, const char *total, const char *want_t,
                           const char *want_T, long long want_n)
{
    double a = 0.5, x = strtod(ttft, NULL), y = strtod(total, NULL);
    double v[10] = {y, 1 - a, a * y, 1, 0, x >= 0 ? x : y, x >= 0 ? 1 - a : 1, x >= 0 ? a * x : 0,
                    1, 0};
    char num[10][40];
    const char *argv[13] = {k, "1", "60000"};
    for (int i = 0; i < 10; i++) {
        snprintf(num[i], sizeof num[i], "%.17g", v[i]);
        argv[3 + i] = num[i];
    }
    redisReply *r = eval("route/latency_record", 1, 13, argv, NULL);
    assert_int_equal(r->elements, 4);
    assert_string_equal(elem_str(r, 3), "0"); /* no cap change sent: none kept */
    assert_string_equal(elem_str(r, 0), want_t);
    assert_string_equal(elem_str(r, 1), want_T);
    assert_int_equal(elem_int(r, 2), want_n);
    freeReplyObject(r);
}

static void test_latency_record_read(void **state)
{
    (void)state;
    NEED_REDIS();
    const char *a = key("lat:{a}"), *b = key("lat:{b}"), *c = key("lat:{c}");
    /* First sample: taken as is. EWMA with alpha 0.5 after that; a sample
     * without a TTFT (< 0) leaves the TTFT alone. */
    latency_record(a, "100.000", "200.000", "100.000", "200.000", 1);
    latency_record(a, "-1.000", "400.000", "100.000", "300.000", 2);
    latency_record(a, "300.000", "300.000", "200.000", "300.000", 3);
    assert_true(pttl(a) > 0 && pttl(a) <= 60000);
    /* A first sample without a TTFT uses the total. */
    latency_record(b, "-1.000", "50.500", "50.500", "50.500", 1);

    const char *keys[3] = {a, b, c};
    redisReply *r = eval("route/latency_read", 3, 3, keys, NULL);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 3);
    const char *want[3][4] = {
        {"200.000", "300.000", "3", "0"}, {"50.500", "50.500", "1", "0"}, {"0", "0", "0", "0"}};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(r->element[i]->elements, 4);
        for (size_t j = 0; j < 4; j++)
            assert_string_equal(elem_str(r->element[i], j), want[i][j]);
    }
    freeReplyObject(r);
    assert_int_equal(exists(c), 0);
}

/* A batch of cap changes only (k = 0): inc, dec, min, max, factor, hold_ms. */
static void cap_batch(const char *k, const char *inc, const char *dec, const char *want_cap)
{
    const char *argv[19] = {k,   "0", "60000", "0", "0", "0", "0", "0",   "0",    "0",
                            "0", "0", "0",     inc, dec, "1", "8", "0.5", "60000"};
    redisReply *r = eval("route/latency_record", 1, 19, argv, NULL);
    assert_int_equal(r->elements, 4);
    assert_int_equal(elem_int(r, 2), 0); /* no samples invented */
    assert_string_equal(elem_str(r, 3), want_cap);
    freeReplyObject(r);
}

/* The adaptive cap kept beside the latency: starts at max, one decrease per
 * hold whatever the number of workers reporting one, increases add up,
 * clamped to min..max, read back by latency_read. */
static void test_latency_cap(void **state)
{
    (void)state;
    NEED_REDIS();
    const char *a = key("lat:{cap}");
    cap_batch(a, "0", "1", "4.000");   /* 8 * 0.5 */
    cap_batch(a, "0", "3", "4.000");   /* within the 60 s hold: ignored */
    cap_batch(a, "1.5", "0", "5.500"); /* increases add */
    cap_batch(a, "10", "0", "8.000");  /* at most max */
    assert_true(pttl(a) > 0 && pttl(a) <= 60000);
    const char *keys[1] = {a};
    redisReply *r = eval("route/latency_read", 1, 1, keys, NULL);
    assert_string_equal(elem_str(r->element[0], 3), "8.000");
    assert_string_equal(elem_str(r->element[0], 2), "0");
    freeReplyObject(r);
    /* a hold of 0: every batch with a decrease halves, down to min 1 */
    const char *b = key("lat:{cap2}");
    keys[0] = b;
    const char *argv[19] = {b,   "0", "60000", "0", "0", "0", "0", "0",   "0", "0",
                            "0", "0", "0",     "0", "1", "1", "8", "0.5", "0"};
    for (int i = 0; i < 5; i++)
        freeReplyObject(eval("route/latency_record", 1, 19, argv, NULL));
    r = eval("route/latency_read", 1, 1, keys, NULL);
    assert_string_equal(elem_str(r->element[0], 3), "1.000");
    freeReplyObject(r);
}

/* ---- semantic: the LSH store ------------------------------------------------------------- */

static void sem_put(const char *id, const char *blob, const char *ttl, const char *cap,
                    const char *const *bands, int n)
{
    const char *argv[16] = {prefix, "ns1", id, ttl, blob, cap};
    for (int i = 0; i < n; i++)
        argv[6 + i] = bands[i];
    assert_int_equal(eval_int("semantic/semstore_put", 0, 6 + n, argv), 1);
}

static redisReply *sem_search(const char *maxc, const char *const *bands, int n)
{
    const char *argv[16] = {prefix, "ns1", maxc};
    for (int i = 0; i < n; i++)
        argv[3 + i] = bands[i];
    redisReply *r = eval("semantic/semstore_search", 0, 3 + n, argv, NULL);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    return r;
}

static void test_semstore_put_search(void **state)
{
    (void)state;
    NEED_REDIS();
    const char *b1 = "0000000000000001", *b2 = "0000000000000002", *b3 = "0000000000000003";
    const char *e1_bands[2] = {b1, b2}, *e2_bands[2] = {b2, b3};
    sem_put("e1", "blob-1", "60", "8", e1_bands, 2);
    sem_put("e2", "blob-2", "120", "8", e2_bands, 2);
    long long t = cmd_int("TTL", key("sv:ns1:e1"), NULL, NULL);
    assert_true(t > 0 && t <= 60);
    char *blob = get(key("sv:ns1:e2"));
    assert_string_equal(blob, "blob-2");
    free(blob);
    /* A bucket lives at least as long as its newest entry. */
    t = cmd_int("TTL", key("sb:ns1:0000000000000002"), NULL, NULL);
    assert_true(t > 60 && t <= 120);
    assert_int_equal(cmd_int("SCARD", key("sb:ns1:0000000000000002"), NULL, NULL), 2);

    /* e1 shares two bands with the query, e2 one: e1 first. */
    const char *q[2] = {b1, b2};
    redisReply *r = sem_search("8", q, 2);
    assert_int_equal(r->elements, 4);
    assert_string_equal(elem_str(r, 0), "e1");
    assert_string_equal(elem_str(r, 1), "blob-1");
    assert_string_equal(elem_str(r, 2), "e2");
    assert_string_equal(elem_str(r, 3), "blob-2");
    freeReplyObject(r);
    /* maxc bounds the answer. */
    r = sem_search("1", q, 2);
    assert_int_equal(r->elements, 2);
    freeReplyObject(r);
    /* Another namespace sees nothing. */
    const char *other[4] = {prefix, "ns2", "8", b1};
    r = eval("semantic/semstore_search", 0, 4, other, NULL);
    assert_int_equal(r->elements, 0);
    freeReplyObject(r);

    /* An expired entry is not returned and leaves its bucket. */
    cmd_int("DEL", key("sv:ns1:e1"), NULL, NULL);
    const char *only1[1] = {b1};
    r = sem_search("8", only1, 1);
    assert_int_equal(r->elements, 0);
    freeReplyObject(r);
    assert_int_equal(cmd_int("SISMEMBER", key("sb:ns1:0000000000000001"), "e1", NULL), 0);

    /* A bucket is trimmed to the cap. */
    const char *b9[1] = {"0000000000000009"};
    sem_put("f1", "x", "60", "2", b9, 1);
    sem_put("f2", "x", "60", "2", b9, 1);
    sem_put("f3", "x", "60", "2", b9, 1);
    assert_int_equal(cmd_int("SCARD", key("sb:ns1:0000000000000009"), NULL, NULL), 2);
}

/* ---- main ---------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    snprintf(run_prefix, sizeof run_prefix, "gwtest:lua:%d:%lld:", (int)getpid(),
             (long long)tv.tv_sec * 1000000 + tv.tv_usec);
    const char *env = getenv("MODELGW_REDIS");
    if (env == NULL || env[0] == '\0') {
        snprintf(why_skip, sizeof why_skip,
                 "MODELGW_REDIS is not set (host:port of a redis-server, e.g. from "
                 "`tools/services start`)");
        fprintf(stderr, "test_lua_scripts: Redis tests skipped: %s\n", why_skip);
        return 0;
    }
    char host[256];
    int port;
    gw_test_redis_addr(host, sizeof host, &port);
    struct timeval to = {.tv_sec = 2};
    rc = redisConnectWithTimeout(host, port, to);
    if (rc != NULL && rc->err == 0) {
        struct timeval cto = {.tv_sec = 10};
        redisSetTimeout(rc, cto);
        redisReply *r = redisCommand(rc, "PING");
        bool ok = r != NULL && r->type != REDIS_REPLY_ERROR;
        if (r != NULL)
            freeReplyObject(r);
        if (ok)
            return 0;
    }
    snprintf(why_skip, sizeof why_skip, "Redis at %s:%d does not answer (%s)", host, port,
             rc != NULL && rc->errstr[0] ? rc->errstr : "no PING reply");
    gw_test_redis_unreachable("test_lua_scripts", host, port);
    if (rc != NULL)
        redisFree(rc);
    rc = NULL;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (rc != NULL)
        redisFree(rc);
    rc = NULL;
    return 0;
}

/* admit: claim, cache read, limiter at the hit or miss cost, budget, lock. */
static void test_admit(void **state)
{
    NEED_REDIS();
    const char *k[7] = {key("id:r1"), key("il:r1"), key("c:k"), key("cl:k"),
                        key("b:d"),   key("b:m"),   key("rl:a")};
    /* claim, read-and-lock, 1 key: 60/min burst 60, miss cost 30, hit cost 1 */
    const char *a1[] = {k[0],   k[1], k[2], k[3], k[4], k[5], k[6], "1",  "w1", "5000", "2",
                        "5000", "60", "0",  "0",  "0",  "0",  "1",  "60", "60", "30",   "1"};
    redisReply *r = eval("state/admit", 7, 22, a1, NULL);
    assert_int_equal(elem_int(r, 0), 7); /* miss, lock taken */
    freeReplyObject(r);
    char *v = get(k[1]);
    assert_string_equal(v, "w1");
    free(v);
    v = get(k[3]);
    assert_string_equal(v, "w1");
    free(v);
    assert_true(pttl(k[6]) > 0);
    /* the same request from another owner: leased by another, nothing taken */
    const char *a2[] = {k[0],   k[1], k[2], k[3], k[4], k[5], k[6], "1",  "w2", "5000", "2",
                        "5000", "60", "0",  "0",  "0",  "0",  "1",  "60", "60", "30",   "1"};
    r = eval("state/admit", 7, 22, a2, NULL);
    assert_int_equal(elem_int(r, 0), 2);
    assert_true(elem_int(r, 1) > 0);
    freeReplyObject(r);
    /* another request, same prompt: 30 left of 60, a miss needs 30 more:
     * allowed, and the lock is another's */
    const char *k2[7] = {key("id:r2"), key("il:r2"), k[2], k[3], k[4], k[5], k[6]};
    const char *a3[] = {k2[0],  k2[1], k2[2], k2[3], k2[4], k2[5], k2[6], "1",  "w2", "5000", "2",
                        "5000", "60",  "0",   "0",   "0",   "0",   "1",   "60", "60", "30",   "1"};
    r = eval("state/admit", 7, 22, a3, NULL);
    assert_int_equal(elem_int(r, 0), 8);
    freeReplyObject(r);
    /* a third: the bucket is empty: denied by key 1 with a retry time */
    const char *k3[7] = {key("id:r3"), key("il:r3"), key("c:k3"), key("cl:k3"), k[4], k[5], k[6]};
    const char *a4[] = {k3[0],  k3[1], k3[2], k3[3], k3[4], k3[5], k3[6], "1",  "w3", "5000", "2",
                        "5000", "60",  "0",   "0",   "0",   "0",   "1",   "60", "60", "30",   "1"};
    r = eval("state/admit", 7, 22, a4, NULL);
    assert_int_equal(elem_int(r, 0), 3);
    assert_true(elem_int(r, 1) > 0);
    assert_int_equal(elem_int(r, 2), 1);
    freeReplyObject(r);
    assert_int_equal(exists(k3[3]), 0); /* denied before the lock */
    /* a stored answer, with room in the bucket again: a hit takes only the
     * hit cost and is kept as the request's answer, its lease dropped */
    freeReplyObject(cmd("DEL", k[6], NULL, NULL));
    freeReplyObject(cmd("SET", k[2], "cached!", NULL));
    freeReplyObject(cmd("EXPIRE", k[2], "60", NULL));
    const char *a5[] = {k3[0],  k3[1], k[2], k[3], k3[4], k3[5], k3[6], "1",  "w3", "5000", "2",
                        "5000", "60",  "0",  "0",  "0",   "0",   "1",   "60", "60", "30",   "1"};
    freeReplyObject(cmd("DEL", k3[0], NULL, NULL));
    r = eval("state/admit", 7, 22, a5, NULL);
    assert_int_equal(elem_int(r, 0), 6);
    assert_int_equal(elem_int(r, 2), 1); /* kept */
    freeReplyObject(r);
    v = get(k3[0]);
    assert_string_equal(v, "cached!");
    free(v);
    assert_int_equal(exists(k3[1]), 0);
    assert_true(get_num(k[6]) > 0); /* the hit cost (1) was taken */
    /* the kept answer is what a redelivery gets */
    r = eval("state/admit", 7, 22, a5, NULL);
    assert_int_equal(elem_int(r, 0), 1);
    assert_string_equal(elem_str(r, 1), "cached!");
    freeReplyObject(r);
    /* budget: 1.5 spent today of 2.0, an estimate of 1.0 does not fit */
    freeReplyObject(cmd("SET", k[4], "1500000", NULL));
    freeReplyObject(cmd("EXPIRE", k[4], "60", NULL));
    const char *k4[7] = {key("id:r4"), key("il:r4"), key("c:k4"), key("cl:k4"), k[4], k[5], k[6]};
    const char *a6[] = {k4[0],  k4[1], k4[2],  k4[3], k4[4], k4[5],     k4[6],     "0", "w4",
                        "5000", "0",   "5000", "60",  "1",   "1000000", "2000000", "0", "0"};
    r = eval("state/admit", 7, 18, a6, NULL);
    assert_int_equal(elem_int(r, 0), 5);
    assert_string_equal(elem_str(r, 1), "day");
    freeReplyObject(r);
}

/* complete: keep (first wins), store, release, reconcile and charge once. */
static void test_complete(void **state)
{
    NEED_REDIS();
    const char *k[9] = {key("id:r"), key("il:r"), key("c:k"), key("cl:k"), key("rr:r"),
                        key("bc:r"), key("b:d"),  key("b:m"), key("rl:a")};
    freeReplyObject(cmd("SET", k[1], "w1", NULL));
    freeReplyObject(cmd("EXPIRE", k[1], "60", NULL));
    freeReplyObject(cmd("SET", k[3], "w1", NULL));
    freeReplyObject(cmd("EXPIRE", k[3], "60", NULL));
    double now = redis_now_ms();
    char tat[32];
    snprintf(tat, sizeof tat, "%.3f", now + 30000); /* 30 units at 60/min */
    freeReplyObject(cmd("SET", k[8], tat, NULL));
    freeReplyObject(cmd("EXPIRE", k[8], "60", NULL));
    const char *a[] = {k[0],     k[1],     k[2],  k[3], k[4],    k[5], k[6], k[7],
                       k[8],     "answer", "w1",  "1",  "60",    "1",  "60", "600000",
                       "250000", "100",    "200", "1",  "30000", "60", "-20"};
    assert_int_equal(eval_int("state/complete", 9, 23, a), 1);
    char *v = get(k[0]);
    assert_string_equal(v, "answer");
    free(v);
    v = get(k[2]);
    assert_string_equal(v, "answer");
    free(v);
    assert_int_equal(exists(k[1]), 0);
    assert_int_equal(exists(k[3]), 0);
    assert_true(get_num(k[8]) < now + 15000); /* 20 of 30 refunded */
    assert_int_equal((long long)get_num(k[6]), 250000);
    assert_int_equal((long long)get_num(k[7]), 250000);
    /* again: the first answer stays, reconcile and charge are not repeated */
    double after = get_num(k[8]);
    const char *b[] = {k[0],     k[1],    k[2],  k[3], k[4],    k[5], k[6], k[7],
                       k[8],     "other", "w1",  "1",  "60",    "0",  "60", "600000",
                       "250000", "100",   "200", "1",  "30000", "60", "-20"};
    assert_int_equal(eval_int("state/complete", 9, 23, b), 0);
    v = get(k[0]);
    assert_string_equal(v, "answer");
    free(v);
    assert_true(get_num(k[8]) == after);
    assert_int_equal((long long)get_num(k[6]), 250000);
    /* a release (a retryable error) fences the lease and the lock against a
     * late copy of the same owner's admission */
    const char *k2[9] = {key("id:q"), key("il:q"), key("c:q"), key("cl:q"), key("rr:q"),
                         key("bc:q"), k[6],        k[7],       k[8]};
    const char *c[] = {k2[0], k2[1], k2[2], k2[3], k2[4],    k2[5], k2[6], k2[7], "",  "w7",
                       "2",   "60",  "2",   "60",  "600000", "0",   "100", "200", "0", "30000"};
    assert_int_equal(eval_int("state/complete", 8, 20, c), 0);
    v = get(k2[1]);
    assert_string_equal(v, "~w7");
    free(v);
    v = get(k2[3]);
    assert_string_equal(v, "~w7");
    free(v);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_every_script_is_known),
        T(test_every_script_loads),
        T(test_limit_check),
        T(test_limit_reconcile),
        T(test_budget_charge),
        T(test_admit),
        T(test_complete),
        T(test_cache_get_or_lock_put),
        T(test_unlock_if_owner),
        T(test_idempotency_claim_complete_hit),
        T(test_breaker_opens_after_failures),
        T(test_breaker_failure_rate),
        T(test_breaker_half_open_probe),
        T(test_breaker_rate_limited),
        T(test_latency_record_read),
        T(test_latency_cap),
        T(test_semstore_put_search),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
