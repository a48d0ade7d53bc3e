/*
 * state_redis: the Redis state backend, shared by the whole fleet.
 *
 * One decision = one round trip: each operation is one EVALSHA of a script
 * (atomic in Redis) or one plain command (GET, MGET). The scripts are in
 * src/state/lua/NAME.lua (embedded at build time, see common/lua_scripts.h):
 * limit_check, limit_reconcile, budget_charge, value_or_lock (cache
 * get_or_lock, idempotency claim), store_and_unlock (cache put, idempotency
 * complete) and unlock_if_owner (cache unlock, idempotency release); each
 * file documents its KEYS, ARGV and reply. Scripts read
 * Redis TIME, never the worker's clock, for the limiter; budget periods are
 * named from the worker's clock (a few ms of skew at midnight UTC only moves
 * a charge to the neighbouring day). Every key a script writes gets a TTL in
 * the same script. Keys are passed in KEYS.
 *
 * Hash tags (docs/state.md "Keys and slots"): every key carries one, so that
 * each script touches one Redis Cluster slot: {<request id>} for id:/il:
 * (and rr:/bc: in standalone mode), {<cache key>} for c:/cl:, {<name>} for
 * a limiter scope "<kind>:<name>" (rl:<kind>:{<name>}: an agent's RPM and TPM
 * share a slot, as do a deployment's) and {<agent>} for budget keys. A name
 * that is empty or starts with '}' (which would make an empty tag, hashing
 * the whole key) is written after the tag "{~}".
 *
 * Cluster mode (gw_redis_is_cluster): admission and completion touch several
 * slots, so there is no native admit/complete (state_admit.c composes them
 * from the single operations); the once-per-request markers go to the slot of
 * the keys they guard: bc:{<agent>}:<request id>, and one reconcile script
 * per tag among the limiter keys, each with its own rr:{<name>}:<request id>.
 *
 * Operation records (rop) carry only the caller's callback and what is
 * needed to read the reply, never a pointer to the backend, so a reply that
 * arrives after gw_state_free() is still safe.
 */
#include "state/state_private.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lua_scripts.h"
#include "common/log.h"
#include "loop/redis.h"

enum { KEY_MAX = GW_STATE_MAX_PREFIX_BYTES + 2 * GW_STATE_MAX_NAME_BYTES + 48, NUM_MAX = 32 };

typedef struct {
    gw_state base;
    gw_redis *r;
    gw_redis_script *s_limit, *s_reconcile, *s_charge, *s_value_or_lock, *s_store, *s_unlock;
    gw_redis_script *s_admit, *s_complete;
    bool cluster;
} redis_state;

typedef struct {
    void *cb;
    void *ud;
    int64_t estimate_micro; /* budget check */
    gw_budget_limits lim;
    bool claim; /* admit: a claim was asked for */
} rop;

/* NULL when out of memory: the caller then answers with gw_state_nomem_*
 * (GW_E_NOMEM on the next turn, exactly once, without allocating). */
static rop *rop_new(void *cb, void *ud)
{
    rop *o = calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->cb = cb;
    o->ud = ud;
    return o;
}

/* "{name}", or "{~}name" when name would make an empty hash tag. */
static const char *tag_fmt(const char *name)
{
    return name[0] != '\0' && name[0] != '}' ? "{%s}" : "{~}%s";
}

/* <prefix><kind>:{<name>} */
static void mkkey(char *out, const gw_state *st, const char *kind, const char *name)
{
    char tagged[GW_STATE_MAX_NAME_BYTES + 8];
    snprintf(tagged, sizeof tagged, tag_fmt(name), name);
    snprintf(out, KEY_MAX, "%s%s:%s", st->prefix, kind, tagged);
}

/* The limiter scope "<kind>:<name>" split at its first ':'; a scope without
 * one is all name. */
static void split_scope(const char *scope, const char **kind, size_t *kind_len, const char **name)
{
    const char *colon = strchr(scope, ':');
    *kind = scope;
    *kind_len = colon != NULL ? (size_t)(colon - scope) : 0;
    *name = colon != NULL ? colon + 1 : scope;
}

/* <prefix>rl:<kind>:{<name>} (rl:{<scope>} without a kind) */
static void rl_key(char *out, const gw_state *st, const char *scope)
{
    const char *kind, *name;
    size_t kl;
    split_scope(scope, &kind, &kl, &name);
    char tagged[GW_STATE_MAX_NAME_BYTES + 8];
    snprintf(tagged, sizeof tagged, tag_fmt(name), name);
    if (kl > 0)
        snprintf(out, KEY_MAX, "%srl:%.*s:%s", st->prefix, (int)kl, kind, tagged);
    else
        snprintf(out, KEY_MAX, "%srl:%s", st->prefix, tagged);
}

/* A once-per-request marker in the slot of the keys it guards (cluster):
 * <prefix><kind>:{<name>}:<request id>. */
static void marker_key(char *out, const gw_state *st, const char *kind, const char *name,
                       const char *request_id)
{
    char tagged[GW_STATE_MAX_NAME_BYTES + 8];
    snprintf(tagged, sizeof tagged, tag_fmt(name), name);
    snprintf(out, KEY_MAX, "%s%s:%s:%s", st->prefix, kind, tagged, request_id);
}

static void fmt_num(char *out, double v)
{
    snprintf(out, NUM_MAX, "%.17g", v);
}

/* ---- limits ------------------------------------------------------------------ */

static void on_limit(void *arg, gw_err err, const redisReply *rep)
{
    rop *o = arg;
    gw_limit_result r = {.err = err};
    if (err == GW_OK) {
        long long status = gw_redis_reply_int(gw_redis_reply_elem(rep, 0), -1);
        r.retry_after_ms = gw_redis_reply_int(gw_redis_reply_elem(rep, 1), 0);
        r.limit_index = (int)gw_redis_reply_int(gw_redis_reply_elem(rep, 2), 1) - 1;
        if (status == 0)
            r.verdict = GW_LIMIT_ALLOWED;
        else if (status == 1)
            r.verdict = GW_LIMIT_DENIED;
        else if (status == 2)
            r.verdict = GW_LIMIT_NEVER_FITS;
        else
            r.err = GW_E_INTERNAL;
    }
    ((gw_limit_cb)o->cb)(o->ud, &r);
    free(o);
}

/* Cluster: one script touches one slot, so the keys of one all-or-nothing
 * check must share the name in their tag (an agent's RPM and TPM do, as do a
 * deployment's). */
static bool one_tag(const gw_limit_key *keys, size_t n)
{
    const char *kind, *first, *name;
    size_t kl;
    if (n == 0)
        return true;
    split_scope(keys[0].scope, &kind, &kl, &first);
    for (size_t i = 1; i < n; i++) {
        split_scope(keys[i].scope, &kind, &kl, &name);
        if (strcmp(name, first) != 0)
            return false;
    }
    return true;
}

static void rs_limit_check(gw_state *st, const gw_limit_key *keys, size_t n, gw_limit_cb cb,
                           void *ud)
{
    redis_state *rs = (redis_state *)st;
    if (rs->cluster && !one_tag(keys, n)) {
        GW_ERROR("state_limit_keys_span_slots", "scope", keys[0].scope, "error",
                 "a limit check with a cluster needs keys of one name");
        gw_state_later_limit(st, &(gw_limit_result){.err = GW_E_INTERNAL, .limit_index = -1}, cb,
                             ud);
        return;
    }
    char kbuf[GW_STATE_MAX_LIMIT_KEYS][KEY_MAX];
    char nbuf[GW_STATE_MAX_LIMIT_KEYS * 3][NUM_MAX];
    const char *argv[GW_STATE_MAX_LIMIT_KEYS * 4];
    for (size_t i = 0; i < n; i++) {
        rl_key(kbuf[i], st, keys[i].scope);
        argv[i] = kbuf[i];
        fmt_num(nbuf[3 * i], keys[i].rate_per_min);
        fmt_num(nbuf[3 * i + 1], keys[i].burst);
        fmt_num(nbuf[3 * i + 2], keys[i].cost);
        for (int j = 0; j < 3; j++)
            argv[n + 3 * i + j] = nbuf[3 * i + j];
    }
    rop *o = rop_new((void *)cb, ud);
    if (!o) {
        gw_state_nomem_limit(st, cb, ud);
        return;
    }
    gw_redis_eval(rs->r, rs->s_limit, (int)n, (int)(4 * n), argv, NULL, on_limit, o);
}

static void on_ack_int(void *arg, gw_err err, const redisReply *rep)
{
    rop *o = arg;
    gw_state_ack r = {.err = err};
    if (err == GW_OK)
        r.applied = gw_redis_reply_int(rep, 0) == 1;
    ((gw_ack_cb)o->cb)(o->ud, &r);
    free(o);
}

/* Cluster: one reconcile script per tag; the answers are folded into one. */
typedef struct {
    int pending;
    gw_state_ack ack;
    gw_ack_cb cb;
    void *ud;
} fold_op;

static void on_fold_part(void *arg, const gw_state_ack *a)
{
    fold_op *f = arg;
    if (a->err != GW_OK && f->ack.err == GW_OK)
        f->ack.err = a->err;
    if (a->err != GW_OK || !a->applied)
        f->ack.applied = false;
    if (--f->pending == 0) {
        f->cb(f->ud, &f->ack);
        free(f);
    }
}

static void reconcile_one(redis_state *rs, const char *marker, const gw_limit_key *keys, size_t n,
                          gw_ack_cb cb, void *ud);

static void rs_limit_reconcile(gw_state *st, const char *request_id, const gw_limit_key *keys,
                               size_t n, gw_ack_cb cb, void *ud)
{
    redis_state *rs = (redis_state *)st;
    char marker[KEY_MAX];
    if (!rs->cluster) {
        mkkey(marker, st, "rr", request_id);
        reconcile_one(rs, marker, keys, n, cb, ud);
        return;
    }
    /* the keys grouped by the name in their tag, in order of first use */
    size_t group[GW_STATE_MAX_LIMIT_KEYS], ng = 0;
    const char *gname[GW_STATE_MAX_LIMIT_KEYS];
    for (size_t i = 0; i < n; i++) {
        const char *kind, *name;
        size_t kl, g;
        split_scope(keys[i].scope, &kind, &kl, &name);
        for (g = 0; g < ng; g++)
            if (strcmp(gname[g], name) == 0)
                break;
        if (g == ng)
            gname[ng++] = name;
        group[i] = g;
    }
    fold_op *f = ng > 1 ? calloc(1, sizeof *f) : NULL;
    if (ng > 1 && f == NULL) {
        gw_state_nomem_ack(st, cb, ud);
        return;
    }
    if (f != NULL)
        *f = (fold_op){
            .pending = (int)ng, .ack = {.err = GW_OK, .applied = true}, .cb = cb, .ud = ud};
    for (size_t g = 0; g < ng || (ng == 0 && g == 0); g++) {
        gw_limit_key part[GW_STATE_MAX_LIMIT_KEYS];
        size_t np = 0;
        for (size_t i = 0; i < n; i++)
            if (group[i] == g)
                part[np++] = keys[i];
        marker_key(marker, st, "rr", ng > 0 ? gname[g] : "", request_id);
        if (f != NULL)
            reconcile_one(rs, marker, part, np, on_fold_part, f);
        else
            reconcile_one(rs, marker, part, np, cb, ud);
    }
}

static void reconcile_one(redis_state *rs, const char *marker, const gw_limit_key *keys, size_t n,
                          gw_ack_cb cb, void *ud)
{
    gw_state *st = &rs->base;
    char kbuf[GW_STATE_MAX_LIMIT_KEYS + 1][KEY_MAX];
    char nbuf[GW_STATE_MAX_LIMIT_KEYS * 2 + 1][NUM_MAX];
    const char *argv[GW_STATE_MAX_LIMIT_KEYS * 3 + 2];
    argv[0] = marker;
    for (size_t i = 0; i < n; i++) {
        rl_key(kbuf[i + 1], st, keys[i].scope);
        argv[i + 1] = kbuf[i + 1];
    }
    snprintf(nbuf[0], NUM_MAX, "%u", st->marker_ttl_ms);
    argv[n + 1] = nbuf[0];
    for (size_t i = 0; i < n; i++) {
        fmt_num(nbuf[1 + 2 * i], keys[i].rate_per_min);
        fmt_num(nbuf[2 + 2 * i], keys[i].cost);
        argv[n + 2 + 2 * i] = nbuf[1 + 2 * i];
        argv[n + 3 + 2 * i] = nbuf[2 + 2 * i];
    }
    rop *o = rop_new((void *)cb, ud);
    if (!o) {
        gw_state_nomem_ack(st, cb, ud);
        return;
    }
    gw_redis_eval(rs->r, rs->s_reconcile, (int)n + 1, (int)(3 * n + 2), argv, NULL, on_ack_int, o);
}

/* ---- budgets ----------------------------------------------------------------------- */

/* <prefix>b:{<agent>}:d:<yyyymmdd> and :m:<yyyymm> */
static void budget_keys(const gw_state *st, const char *agent, char *dkey, char *mkey)
{
    char day[9], month[7], tagged[GW_STATE_MAX_NAME_BYTES + 8];
    gw_state_periods(gw_state_clock_realtime_ms(NULL), day, month);
    snprintf(tagged, sizeof tagged, tag_fmt(agent), agent);
    snprintf(dkey, KEY_MAX, "%sb:%s:d:%s", st->prefix, tagged, day);
    snprintf(mkey, KEY_MAX, "%sb:%s:m:%s", st->prefix, tagged, month);
}

static void on_budget(void *arg, gw_err err, const redisReply *rep)
{
    rop *o = arg;
    gw_budget_result r = {.err = err};
    if (err == GW_OK) {
        int64_t d = gw_redis_reply_int(gw_redis_reply_elem(rep, 0), 0);
        int64_t m = gw_redis_reply_int(gw_redis_reply_elem(rep, 1), 0);
        r.spent_day_usd = (double)d / 1e6;
        r.spent_month_usd = (double)m / 1e6;
        if (o->lim.daily_usd > 0 &&
            d + o->estimate_micro > gw_state_usd_to_micro(o->lim.daily_usd)) {
            r.err = GW_E_BUDGET_EXCEEDED;
            r.period = "day";
        } else if (o->lim.monthly_usd > 0 &&
                   m + o->estimate_micro > gw_state_usd_to_micro(o->lim.monthly_usd)) {
            r.err = GW_E_BUDGET_EXCEEDED;
            r.period = "month";
        }
    }
    ((gw_budget_cb)o->cb)(o->ud, &r);
    free(o);
}

static void rs_budget_check(gw_state *st, const char *agent, double estimate_usd,
                            const gw_budget_limits *lim, gw_budget_cb cb, void *ud)
{
    redis_state *rs = (redis_state *)st;
    char dkey[KEY_MAX], mkey[KEY_MAX];
    budget_keys(st, agent, dkey, mkey);
    const char *argv[3] = {"MGET", dkey, mkey};
    rop *o = rop_new((void *)cb, ud);
    if (!o) {
        gw_state_nomem_budget(st, cb, ud);
        return;
    }
    o->estimate_micro = gw_state_usd_to_micro(estimate_usd);
    o->lim = *lim;
    gw_redis_command(rs->r, 3, argv, NULL, on_budget, o);
}

static void rs_budget_charge(gw_state *st, const char *request_id, const char *agent,
                             double actual_usd, gw_ack_cb cb, void *ud)
{
    redis_state *rs = (redis_state *)st;
    char marker[KEY_MAX], dkey[KEY_MAX], mkey[KEY_MAX];
    char amount[NUM_MAX], mttl[NUM_MAX], dttl_s[NUM_MAX], mttl_s[NUM_MAX];
    if (rs->cluster)
        marker_key(marker, st, "bc", agent, request_id);
    else
        mkkey(marker, st, "bc", request_id);
    budget_keys(st, agent, dkey, mkey);
    snprintf(amount, NUM_MAX, "%lld", (long long)gw_state_usd_to_micro(actual_usd));
    snprintf(mttl, NUM_MAX, "%u", st->marker_ttl_ms);
    snprintf(dttl_s, NUM_MAX, "%d", GW_STATE_BUDGET_DAY_TTL_S);
    snprintf(mttl_s, NUM_MAX, "%d", GW_STATE_BUDGET_MONTH_TTL_S);
    const char *argv[7] = {marker, dkey, mkey, amount, mttl, dttl_s, mttl_s};
    rop *o = rop_new((void *)cb, ud);
    if (!o) {
        gw_state_nomem_ack(st, cb, ud);
        return;
    }
    gw_redis_eval(rs->r, rs->s_charge, 3, 7, argv, NULL, on_ack_int, o);
}

/* ---- cache and idempotency ----------------------------------------------------------- */

static void on_get(void *arg, gw_err err, const redisReply *rep)
{
    rop *o = arg;
    gw_cache_result r = {.err = err, .kind = GW_CACHE_MISS};
    if (err == GW_OK && rep->type == REDIS_REPLY_STRING) {
        r.kind = GW_CACHE_HIT;
        r.data = (const uint8_t *)rep->str;
        r.len = rep->len;
    }
    ((gw_cache_cb)o->cb)(o->ud, &r);
    free(o);
}

static void on_value_or_lock(void *arg, gw_err err, const redisReply *rep)
{
    rop *o = arg;
    gw_cache_result r = {.err = err, .kind = GW_CACHE_MISS};
    if (err == GW_OK) {
        long long status = gw_redis_reply_int(gw_redis_reply_elem(rep, 0), -1);
        const redisReply *v = gw_redis_reply_elem(rep, 1);
        if (status == 1 && v && v->type == REDIS_REPLY_STRING) {
            r.kind = GW_CACHE_HIT;
            r.data = (const uint8_t *)v->str;
            r.len = v->len;
        } else if (status == 2) {
            r.kind = GW_CACHE_LOCKED_BY_ME;
        } else if (status == 3) {
            r.kind = GW_CACHE_LOCKED_BY_OTHER;
            r.lock_ttl_ms = gw_redis_reply_int(v, 0);
        } else {
            r.err = GW_E_INTERNAL;
        }
    }
    ((gw_cache_cb)o->cb)(o->ud, &r);
    free(o);
}

static void value_or_lock(redis_state *rs, const char *vtag, const char *ltag, const char *name,
                          const char *owner, int32_t lock_ms, bool refresh, gw_cache_cb cb,
                          void *ud)
{
    char vkey[KEY_MAX], lkey[KEY_MAX], ms[NUM_MAX];
    mkkey(vkey, &rs->base, vtag, name);
    mkkey(lkey, &rs->base, ltag, name);
    snprintf(ms, NUM_MAX, "%d", lock_ms);
    const char *argv[5] = {vkey, lkey, owner, ms, refresh ? "1" : "0"};
    rop *o = rop_new((void *)cb, ud);
    if (!o) {
        gw_state_nomem_cache(&rs->base, cb, ud);
        return;
    }
    gw_redis_eval(rs->r, rs->s_value_or_lock, 2, 5, argv, NULL, on_value_or_lock, o);
}

static void store_and_unlock(redis_state *rs, const char *vtag, const char *ltag, const char *name,
                             const uint8_t *data, size_t len, int32_t ttl_s, const char *owner,
                             bool nx, gw_ack_cb cb, void *ud)
{
    char vkey[KEY_MAX], lkey[KEY_MAX], ttl[NUM_MAX];
    mkkey(vkey, &rs->base, vtag, name);
    mkkey(lkey, &rs->base, ltag, name);
    snprintf(ttl, NUM_MAX, "%d", ttl_s);
    const char *argv[6] = {vkey, lkey, (const char *)data, ttl, owner ? owner : "", nx ? "1" : "0"};
    size_t lens[6] = {strlen(vkey), strlen(lkey), len, strlen(ttl), strlen(argv[4]), 1};
    rop *o = rop_new((void *)cb, ud);
    if (!o) {
        gw_state_nomem_ack(&rs->base, cb, ud);
        return;
    }
    gw_redis_eval(rs->r, rs->s_store, 2, 6, argv, lens, on_ack_int, o);
}

static void unlock_if_owner(redis_state *rs, const char *ltag, const char *name, const char *owner,
                            gw_ack_cb cb, void *ud)
{
    char lkey[KEY_MAX], tomb[NUM_MAX];
    mkkey(lkey, &rs->base, ltag, name);
    snprintf(tomb, NUM_MAX, "%d", GW_STATE_TOMBSTONE_MS);
    const char *argv[3] = {lkey, owner, tomb};
    rop *o = rop_new((void *)cb, ud);
    if (!o) {
        gw_state_nomem_ack(&rs->base, cb, ud);
        return;
    }
    gw_redis_eval(rs->r, rs->s_unlock, 1, 3, argv, NULL, on_ack_int, o);
}

static void rs_cache_get(gw_state *st, const char *key, gw_cache_cb cb, void *ud)
{
    char vkey[KEY_MAX];
    mkkey(vkey, st, "c", key);
    const char *argv[2] = {"GET", vkey};
    rop *o = rop_new((void *)cb, ud);
    if (!o) {
        gw_state_nomem_cache(st, cb, ud);
        return;
    }
    gw_redis_command(((redis_state *)st)->r, 2, argv, NULL, on_get, o);
}

static void rs_cache_put(gw_state *st, const char *key, const uint8_t *data, size_t len,
                         int32_t ttl_s, const char *owner, gw_ack_cb cb, void *ud)
{
    static const uint8_t empty[1] = {0};
    store_and_unlock((redis_state *)st, "c", "cl", key, data ? data : empty, len, ttl_s, owner,
                     false, cb, ud);
}

static void rs_cache_get_or_lock(gw_state *st, const char *key, const char *owner, int32_t lock_ms,
                                 bool refresh, gw_cache_cb cb, void *ud)
{
    value_or_lock((redis_state *)st, "c", "cl", key, owner, lock_ms, refresh, cb, ud);
}

static void rs_cache_unlock(gw_state *st, const char *key, const char *owner, gw_ack_cb cb,
                            void *ud)
{
    unlock_if_owner((redis_state *)st, "cl", key, owner, cb, ud);
}

static void rs_idem_claim(gw_state *st, const char *request_id, const char *owner, int32_t lease_ms,
                          gw_cache_cb cb, void *ud)
{
    value_or_lock((redis_state *)st, "id", "il", request_id, owner, lease_ms, false, cb, ud);
}

static void rs_idem_complete(gw_state *st, const char *request_id, const char *owner,
                             const uint8_t *data, size_t len, int32_t ttl_s, gw_ack_cb cb, void *ud)
{
    static const uint8_t empty[1] = {0};
    store_and_unlock((redis_state *)st, "id", "il", request_id, data ? data : empty, len, ttl_s,
                     owner, true, cb, ud);
}

static void rs_idem_release(gw_state *st, const char *request_id, const char *owner, gw_ack_cb cb,
                            void *ud)
{
    unlock_if_owner((redis_state *)st, "il", request_id, owner, cb, ud);
}

/* ---- admission and completion (one script each) ---------------------------------- */

static void on_admit(void *arg, gw_err err, const redisReply *rep)
{
    rop *o = arg;
    gw_admit_result r = {.err = err};
    r.limit = (gw_limit_result){.verdict = GW_LIMIT_ALLOWED, .limit_index = -1};
    r.idem.kind = o->claim ? GW_CACHE_LOCKED_BY_ME : GW_CACHE_MISS;
    r.cache.kind = GW_CACHE_MISS;
    if (err == GW_OK) {
        long long status = gw_redis_reply_int(gw_redis_reply_elem(rep, 0), -1);
        const redisReply *a = gw_redis_reply_elem(rep, 1);
        const redisReply *b = gw_redis_reply_elem(rep, 2);
        switch (status) {
        case 1:
            r.idem.kind = GW_CACHE_HIT;
            r.idem.data = a && a->type == REDIS_REPLY_STRING ? (const uint8_t *)a->str : NULL;
            r.idem.len = a && a->type == REDIS_REPLY_STRING ? a->len : 0;
            if (r.idem.data == NULL)
                r.err = GW_E_INTERNAL;
            break;
        case 2:
            r.idem.kind = GW_CACHE_LOCKED_BY_OTHER;
            r.idem.lock_ttl_ms = gw_redis_reply_int(a, 0);
            break;
        case 3:
        case 4:
            r.limit.verdict = status == 3 ? GW_LIMIT_DENIED : GW_LIMIT_NEVER_FITS;
            r.limit.retry_after_ms = gw_redis_reply_int(a, 0);
            r.limit.limit_index = (int)gw_redis_reply_int(b, 1) - 1;
            break;
        case 5:
            r.budget.err = GW_E_BUDGET_EXCEEDED;
            r.budget.period = a && a->type == REDIS_REPLY_STRING && strcmp(a->str, "month") == 0
                                  ? "month"
                                  : "day";
            break;
        case 6:
            r.cache.kind = GW_CACHE_HIT;
            r.cache.data = a && a->type == REDIS_REPLY_STRING ? (const uint8_t *)a->str : NULL;
            r.cache.len = a && a->type == REDIS_REPLY_STRING ? a->len : 0;
            r.hit_kept = gw_redis_reply_int(b, 0) == 1;
            if (r.cache.data == NULL)
                r.err = GW_E_INTERNAL;
            break;
        case 7:
            r.cache.kind = GW_CACHE_LOCKED_BY_ME;
            break;
        case 8:
            r.cache.kind = GW_CACHE_LOCKED_BY_OTHER;
            r.cache.lock_ttl_ms = gw_redis_reply_int(a, 0);
            break;
        case 9:
            break;
        default:
            r.err = GW_E_INTERNAL;
        }
    }
    if (r.err != GW_OK)
        r.idem.kind = r.cache.kind = GW_CACHE_MISS;
    ((gw_admit_cb)o->cb)(o->ud, &r);
    free(o);
}

static void rs_admit(gw_state *st, const gw_admit_req *rq, gw_admit_cb cb, void *ud)
{
    redis_state *rs = (redis_state *)st;
    enum { FIXED_KEYS = 6, FIXED_ARGS = 11 };
    char kbuf[FIXED_KEYS + GW_STATE_MAX_LIMIT_KEYS][KEY_MAX];
    char nbuf[9 + 4 * GW_STATE_MAX_LIMIT_KEYS][NUM_MAX];
    const char *argv[FIXED_KEYS + FIXED_ARGS + 1 + 5 * GW_STATE_MAX_LIMIT_KEYS];
    size_t n = rq->nkeys, k = 0, a = 0;
    const char *rid = rq->request_id ? rq->request_id : "-";
    const char *ck = rq->cache_key ? rq->cache_key : "-";
    mkkey(kbuf[0], st, "id", rid);
    mkkey(kbuf[1], st, "il", rid);
    mkkey(kbuf[2], st, "c", ck);
    mkkey(kbuf[3], st, "cl", ck);
    bool budget = rq->agent != NULL && (rq->budget.daily_usd > 0 || rq->budget.monthly_usd > 0);
    budget_keys(st, rq->agent ? rq->agent : "-", kbuf[4], kbuf[5]);
    for (size_t i = 0; i < n; i++)
        rl_key(kbuf[FIXED_KEYS + i], st, rq->keys[i].scope);
    for (size_t i = 0; i < FIXED_KEYS + n; i++)
        argv[k++] = kbuf[i];
    int mode = rq->cache_key == NULL ? 0 : rq->cache_refresh ? 3 : rq->cache_lock ? 2 : 1;
    argv[k++] = rq->request_id ? "1" : "0";
    argv[k++] = rq->owner ? rq->owner : "";
    snprintf(nbuf[a], NUM_MAX, "%d", rq->lease_ms);
    argv[k++] = nbuf[a++];
    snprintf(nbuf[a], NUM_MAX, "%d", mode);
    argv[k++] = nbuf[a++];
    snprintf(nbuf[a], NUM_MAX, "%d", rq->lock_ms);
    argv[k++] = nbuf[a++];
    snprintf(nbuf[a], NUM_MAX, "%d", rq->result_ttl_s > 0 ? rq->result_ttl_s : 1);
    argv[k++] = nbuf[a++];
    argv[k++] = budget ? "1" : "0";
    snprintf(nbuf[a], NUM_MAX, "%lld", (long long)gw_state_usd_to_micro(rq->estimate_usd));
    argv[k++] = nbuf[a++];
    snprintf(nbuf[a], NUM_MAX, "%lld", (long long)gw_state_usd_to_micro(rq->budget.daily_usd));
    argv[k++] = nbuf[a++];
    snprintf(nbuf[a], NUM_MAX, "%lld", (long long)gw_state_usd_to_micro(rq->budget.monthly_usd));
    argv[k++] = nbuf[a++];
    snprintf(nbuf[a], NUM_MAX, "%zu", n);
    argv[k++] = nbuf[a++];
    for (size_t i = 0; i < n; i++) {
        double hit = rq->hit_cost ? rq->hit_cost[i] : rq->keys[i].cost;
        fmt_num(nbuf[a], rq->keys[i].rate_per_min);
        argv[k++] = nbuf[a++];
        fmt_num(nbuf[a], rq->keys[i].burst);
        argv[k++] = nbuf[a++];
        fmt_num(nbuf[a], rq->keys[i].cost);
        argv[k++] = nbuf[a++];
        fmt_num(nbuf[a], hit);
        argv[k++] = nbuf[a++];
    }
    argv[k++] = rq->fingerprint ? rq->fingerprint : "";
    rop *o = rop_new((void *)cb, ud);
    if (!o) {
        gw_state_nomem_admit(st, cb, ud);
        return;
    }
    o->claim = rq->request_id != NULL;
    gw_redis_eval(rs->r, rs->s_admit, (int)(FIXED_KEYS + n), (int)k, argv, NULL, on_admit, o);
}

static void rs_complete(gw_state *st, const gw_complete_req *rq, gw_ack_cb cb, void *ud)
{
    redis_state *rs = (redis_state *)st;
    enum { FIXED_KEYS = 8, FIXED_ARGS = 11 };
    static const uint8_t empty[1] = {0};
    char kbuf[FIXED_KEYS + GW_STATE_MAX_LIMIT_KEYS][KEY_MAX];
    char nbuf[9 + 2 * GW_STATE_MAX_LIMIT_KEYS][NUM_MAX];
    const char *argv[FIXED_KEYS + FIXED_ARGS + 2 + 3 * GW_STATE_MAX_LIMIT_KEYS];
    size_t lens[FIXED_KEYS + FIXED_ARGS + 2 + 3 * GW_STATE_MAX_LIMIT_KEYS];
    size_t n = rq->request_id ? rq->nreconcile : 0, k = 0, a = 0;
    const char *rid = rq->request_id ? rq->request_id : "-";
    const char *ck = rq->cache_key ? rq->cache_key : "-";
    mkkey(kbuf[0], st, "id", rid);
    mkkey(kbuf[1], st, "il", rid);
    mkkey(kbuf[2], st, "c", ck);
    mkkey(kbuf[3], st, "cl", ck);
    mkkey(kbuf[4], st, "rr", rid);
    mkkey(kbuf[5], st, "bc", rid);
    bool charge = rq->agent != NULL && rq->charge_usd > 0 && rq->request_id != NULL;
    budget_keys(st, rq->agent ? rq->agent : "-", kbuf[6], kbuf[7]);
    for (size_t i = 0; i < n; i++)
        rl_key(kbuf[FIXED_KEYS + i], st, rq->reconcile[i].scope);
    for (size_t i = 0; i < FIXED_KEYS + n; i++)
        argv[k++] = kbuf[i];
    size_t data_at = k;
    argv[k++] = rq->data ? (const char *)rq->data : (const char *)empty;
    argv[k++] = rq->owner;
    argv[k++] = rq->request_id == NULL        ? "0"
                : rq->idem == GW_DONE_STORE   ? "1"
                : rq->idem == GW_DONE_RELEASE ? "2"
                                              : "0";
    snprintf(nbuf[a], NUM_MAX, "%d", rq->idem_ttl_s > 0 ? rq->idem_ttl_s : 1);
    argv[k++] = nbuf[a++];
    argv[k++] = rq->cache_key == NULL          ? "0"
                : rq->cache == GW_DONE_STORE   ? "1"
                : rq->cache == GW_DONE_RELEASE ? "2"
                                               : "0";
    snprintf(nbuf[a], NUM_MAX, "%d", rq->cache_ttl_s > 0 ? rq->cache_ttl_s : 1);
    argv[k++] = nbuf[a++];
    snprintf(nbuf[a], NUM_MAX, "%u", st->marker_ttl_ms);
    argv[k++] = nbuf[a++];
    snprintf(nbuf[a], NUM_MAX, "%lld",
             charge ? (long long)gw_state_usd_to_micro(rq->charge_usd) : 0LL);
    argv[k++] = nbuf[a++];
    snprintf(nbuf[a], NUM_MAX, "%d", GW_STATE_BUDGET_DAY_TTL_S);
    argv[k++] = nbuf[a++];
    snprintf(nbuf[a], NUM_MAX, "%d", GW_STATE_BUDGET_MONTH_TTL_S);
    argv[k++] = nbuf[a++];
    snprintf(nbuf[a], NUM_MAX, "%zu", n);
    argv[k++] = nbuf[a++];
    snprintf(nbuf[a], NUM_MAX, "%d", GW_STATE_TOMBSTONE_MS);
    argv[k++] = nbuf[a++];
    for (size_t i = 0; i < n; i++) {
        fmt_num(nbuf[a], rq->reconcile[i].rate_per_min);
        argv[k++] = nbuf[a++];
        fmt_num(nbuf[a], rq->reconcile[i].cost);
        argv[k++] = nbuf[a++];
    }
    argv[k++] = rq->fingerprint ? rq->fingerprint : "";
    for (size_t i = 0; i < k; i++)
        lens[i] = strlen(argv[i]);
    lens[data_at] = rq->data ? rq->len : 0;
    rop *o = rop_new((void *)cb, ud);
    if (!o) {
        gw_state_nomem_ack(st, cb, ud);
        return;
    }
    gw_redis_eval(rs->r, rs->s_complete, (int)(FIXED_KEYS + n), (int)k, argv, lens, on_ack_int, o);
}

/* ---- lifecycle ----------------------------------------------------------------------- */

static void rs_release(gw_state *st)
{
    free(st);
}

static void rs_destroy(gw_state *st)
{
    gw_state_base_close(st, rs_release);
}

/* The single operations, each one script or command touching one slot. */
#define RS_SINGLE_OPS                                                                              \
    .limit_check = rs_limit_check, .limit_reconcile = rs_limit_reconcile,                          \
    .budget_check = rs_budget_check, .budget_charge = rs_budget_charge, .cache_get = rs_cache_get, \
    .cache_put = rs_cache_put, .cache_get_or_lock = rs_cache_get_or_lock,                          \
    .cache_unlock = rs_cache_unlock, .idem_claim = rs_idem_claim,                                  \
    .idem_complete = rs_idem_complete, .idem_release = rs_idem_release, .destroy = rs_destroy

static const gw_state_ops redis_ops = {RS_SINGLE_OPS, .admit = rs_admit, .complete = rs_complete};

/* A cluster: admission and completion span slots, so they are composed from
 * the single operations (each of which touches one slot). */
static const gw_state_ops cluster_ops = {RS_SINGLE_OPS};

gw_err gw_state_redis_new(uv_loop_t *loop, gw_redis *r, const gw_state_opts *o, gw_state **out)
{
    *out = NULL;
    redis_state *rs = calloc(1, sizeof(*rs));
    if (!rs)
        return GW_E_NOMEM;
    rs->r = r;
    rs->s_limit = gw_redis_script_add(r, gw_lua_script("state/limit_check"));
    rs->s_reconcile = gw_redis_script_add(r, gw_lua_script("state/limit_reconcile"));
    rs->s_charge = gw_redis_script_add(r, gw_lua_script("state/budget_charge"));
    rs->s_value_or_lock = gw_redis_script_add(r, gw_lua_script("state/value_or_lock"));
    rs->s_store = gw_redis_script_add(r, gw_lua_script("state/store_and_unlock"));
    rs->s_unlock = gw_redis_script_add(r, gw_lua_script("state/unlock_if_owner"));
    rs->s_admit = gw_redis_script_add(r, gw_lua_script("state/admit"));
    rs->s_complete = gw_redis_script_add(r, gw_lua_script("state/complete"));
    if (!rs->s_limit || !rs->s_reconcile || !rs->s_charge || !rs->s_value_or_lock || !rs->s_store ||
        !rs->s_unlock || !rs->s_admit || !rs->s_complete) {
        free(rs); /* added scripts stay with r and are freed with it */
        return GW_E_NOMEM;
    }
    rs->cluster = gw_redis_is_cluster(r);
    gw_err err = gw_state_base_init(&rs->base, rs->cluster ? &cluster_ops : &redis_ops, loop, o);
    if (err != GW_OK) {
        free(rs);
        return err;
    }
    *out = &rs->base;
    return GW_OK;
}
