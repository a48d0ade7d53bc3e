/*
 * state_mem: the in-memory state backend (dev mode, unit tests).
 *
 * The same semantics as the Redis scripts in state_redis.c, written once more
 * in C over a small hash table of expiring entries, for one process. Time
 * comes from an injectable clock (Unix ms) so tests can step it. Answers are
 * computed at once and delivered on the next loop turn (state.c), never
 * inside the call.
 *
 * Invariants: every entry has an expiry (expire_ms > 0), like every Redis key
 * of the Redis backend; an entry whose expiry has passed is invisible and is
 * removed when met (lookup, or the sweep that runs when the table grows);
 * count <= max_keys (a write beyond it fails with GW_E_NOMEM after a sweep).
 */
#include "state/state_private.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"

typedef struct entry entry;
struct entry {
    entry *next;
    uint64_t hash;
    int64_t expire_ms; /* absolute, clock ms; > 0 */
    double num;        /* limiter TAT, budget micro-USD */
    uint8_t *val;      /* cache/idempotency bytes, lock owner (NUL-terminated) */
    size_t len;
    char key[];
};

typedef struct {
    gw_state base;
    gw_state_clock_fn clock;
    void *clock_ud;
    entry **buckets;
    size_t nbuckets; /* power of two */
    size_t count;
    size_t max_keys;
} mem_state;

enum { KEY_MAX = GW_STATE_MAX_PREFIX_BYTES + GW_STATE_MAX_NAME_BYTES * 2 + 32 };

static int64_t now_ms(mem_state *m)
{
    return m->clock(m->clock_ud);
}

static uint64_t fnv1a(const char *s)
{
    return gw_fnv1a64_str(1469598103934665603ULL, s);
}

static void entry_free(entry *e)
{
    free(e->val);
    free(e);
}

static void sweep(mem_state *m, int64_t now)
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        entry **pp = &m->buckets[i];
        while (*pp) {
            entry *e = *pp;
            if (e->expire_ms <= now) {
                *pp = e->next;
                entry_free(e);
                m->count--;
            } else {
                pp = &e->next;
            }
        }
    }
}

static void grow(mem_state *m)
{
    size_t n = m->nbuckets * 2;
    entry **nb = calloc(n, sizeof(*nb));
    if (!nb)
        return; /* keep the longer chains */
    for (size_t i = 0; i < m->nbuckets; i++) {
        entry *e = m->buckets[i];
        while (e) {
            entry *next = e->next;
            e->next = nb[e->hash & (n - 1)];
            nb[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = nb;
    m->nbuckets = n;
}

/* The live entry for key, or NULL; drops it when expired. */
static entry *lookup(mem_state *m, const char *key, int64_t now)
{
    uint64_t h = fnv1a(key);
    entry **pp = &m->buckets[h & (m->nbuckets - 1)];
    for (; *pp; pp = &(*pp)->next) {
        entry *e = *pp;
        if (e->hash != h || strcmp(e->key, key) != 0)
            continue;
        if (e->expire_ms > now)
            return e;
        *pp = e->next;
        entry_free(e);
        m->count--;
        return NULL;
    }
    return NULL;
}

static void del(mem_state *m, const char *key, int64_t now)
{
    entry *e = lookup(m, key, now);
    if (e)
        e->expire_ms = now; /* invisible from now; freed when met */
}

/* Create or update key, expiring ttl_ms from now. NULL when full. */
static entry *upsert(mem_state *m, const char *key, int64_t now, int64_t ttl_ms)
{
    entry *e = lookup(m, key, now);
    if (!e) {
        if (m->count >= m->max_keys)
            sweep(m, now);
        if (m->count >= m->max_keys)
            return NULL;
        if (m->count > m->nbuckets * 2) {
            sweep(m, now);
            grow(m);
        }
        size_t klen = strlen(key);
        e = calloc(1, sizeof(*e) + klen + 1);
        if (!e)
            return NULL;
        memcpy(e->key, key, klen + 1);
        e->hash = fnv1a(key);
        e->next = m->buckets[e->hash & (m->nbuckets - 1)];
        m->buckets[e->hash & (m->nbuckets - 1)] = e;
        m->count++;
    }
    e->expire_ms = now + (ttl_ms > 0 ? ttl_ms : 1);
    return e;
}

static bool set_bytes(entry *e, const void *data, size_t len)
{
    uint8_t *v = malloc(len + 1);
    if (!v)
        return false;
    if (len)
        memcpy(v, data, len);
    v[len] = '\0';
    free(e->val);
    e->val = v;
    e->len = len;
    return true;
}

static void mkkey(char *out, const gw_state *st, const char *tag, const char *name)
{
    snprintf(out, KEY_MAX, "%s%s:%s", st->prefix, tag, name);
}

static bool owner_is(entry *e, const char *owner)
{
    return e && e->val && strcmp((const char *)e->val, owner) == 0;
}

/* ---- limits ------------------------------------------------------------------ */

static void mem_limit_check(gw_state *st, const gw_limit_key *keys, size_t n, gw_limit_cb cb,
                            void *ud)
{
    mem_state *m = (mem_state *)st;
    int64_t now = now_ms(m);
    double tat_new[GW_STATE_MAX_LIMIT_KEYS];
    gw_limit_result r = {.err = GW_OK, .verdict = GW_LIMIT_ALLOWED};
    double worst = -1;
    char key[KEY_MAX];
    for (size_t i = 0; i < n; i++) {
        double t = 60000.0 / keys[i].rate_per_min;
        double tau = keys[i].burst * t;
        if (keys[i].cost > keys[i].burst) {
            r.verdict = GW_LIMIT_NEVER_FITS;
            r.limit_index = (int)i;
            gw_state_later_limit(st, &r, cb, ud);
            return;
        }
        mkkey(key, st, "rl", keys[i].scope);
        entry *e = lookup(m, key, now);
        double tat = (e && e->num > (double)now) ? e->num : (double)now;
        tat_new[i] = tat + keys[i].cost * t;
        double over = tat_new[i] - (double)now - tau;
        if (over > 0 && over > worst) {
            worst = over;
            r.verdict = GW_LIMIT_DENIED;
            r.limit_index = (int)i;
            r.retry_after_ms = (int64_t)ceil(over);
        }
    }
    for (size_t i = 0; r.verdict == GW_LIMIT_ALLOWED && i < n; i++) {
        if (keys[i].cost <= 0)
            continue;
        mkkey(key, st, "rl", keys[i].scope);
        entry *e = upsert(m, key, now, (int64_t)ceil(tat_new[i] - (double)now));
        if (!e) {
            r.err = GW_E_NOMEM;
            break;
        }
        e->num = tat_new[i];
    }
    gw_state_later_limit(st, &r, cb, ud);
}

/* SET marker NX: true when this call set it (first time for this id). */
static bool claim_marker(mem_state *m, const char *tag, const char *request_id, int64_t now)
{
    char key[KEY_MAX];
    mkkey(key, &m->base, tag, request_id);
    if (lookup(m, key, now))
        return false;
    return upsert(m, key, now, m->base.marker_ttl_ms) != NULL;
}

static void mem_limit_reconcile(gw_state *st, const char *request_id, const gw_limit_key *keys,
                                size_t n, gw_ack_cb cb, void *ud)
{
    mem_state *m = (mem_state *)st;
    int64_t now = now_ms(m);
    gw_state_ack r = {.err = GW_OK};
    char key[KEY_MAX];
    if (claim_marker(m, "rr", request_id, now)) {
        r.applied = true;
        for (size_t i = 0; i < n; i++) {
            double t = 60000.0 / keys[i].rate_per_min;
            mkkey(key, st, "rl", keys[i].scope);
            entry *e = lookup(m, key, now);
            double tat = (e && e->num > (double)now) ? e->num : (double)now;
            double nt = tat + keys[i].cost * t;
            if (nt <= (double)now) {
                del(m, key, now);
                continue;
            }
            e = upsert(m, key, now, (int64_t)ceil(nt - (double)now));
            if (e)
                e->num = nt;
        }
    }
    gw_state_later_ack(st, &r, cb, ud);
}

/* ---- budgets --------------------------------------------------------------------- */

static void budget_keys(const gw_state *st, const char *agent, int64_t now, char *dkey, char *mkey)
{
    char day[9], month[7];
    gw_state_periods(now, day, month);
    snprintf(dkey, KEY_MAX, "%sb:%s:d:%s", st->prefix, agent, day);
    snprintf(mkey, KEY_MAX, "%sb:%s:m:%s", st->prefix, agent, month);
}

static void mem_budget_check(gw_state *st, const char *agent, double estimate_usd,
                             const gw_budget_limits *lim, gw_budget_cb cb, void *ud)
{
    mem_state *m = (mem_state *)st;
    int64_t now = now_ms(m);
    char dkey[KEY_MAX], mkey[KEY_MAX];
    budget_keys(st, agent, now, dkey, mkey);
    entry *d = lookup(m, dkey, now), *mo = lookup(m, mkey, now);
    int64_t spent_d = d ? (int64_t)d->num : 0, spent_m = mo ? (int64_t)mo->num : 0;
    int64_t est = gw_state_usd_to_micro(estimate_usd);
    gw_budget_result r = {.err = GW_OK,
                          .spent_day_usd = (double)spent_d / 1e6,
                          .spent_month_usd = (double)spent_m / 1e6};
    if (lim->daily_usd > 0 && spent_d + est > gw_state_usd_to_micro(lim->daily_usd)) {
        r.err = GW_E_BUDGET_EXCEEDED;
        r.period = "day";
    } else if (lim->monthly_usd > 0 && spent_m + est > gw_state_usd_to_micro(lim->monthly_usd)) {
        r.err = GW_E_BUDGET_EXCEEDED;
        r.period = "month";
    }
    gw_state_later_budget(st, &r, cb, ud);
}

static void mem_budget_charge(gw_state *st, const char *request_id, const char *agent,
                              double actual_usd, gw_ack_cb cb, void *ud)
{
    mem_state *m = (mem_state *)st;
    int64_t now = now_ms(m);
    gw_state_ack r = {.err = GW_OK};
    if (claim_marker(m, "bc", request_id, now)) {
        char dkey[KEY_MAX], mkey[KEY_MAX];
        budget_keys(st, agent, now, dkey, mkey);
        int64_t amount = gw_state_usd_to_micro(actual_usd);
        entry *d = upsert(m, dkey, now, (int64_t)GW_STATE_BUDGET_DAY_TTL_S * 1000);
        if (d)
            d->num += (double)amount;
        entry *mo = upsert(m, mkey, now, (int64_t)GW_STATE_BUDGET_MONTH_TTL_S * 1000);
        if (mo)
            mo->num += (double)amount;
        r.applied = true;
        if (!d || !mo)
            r.err = GW_E_NOMEM;
    }
    gw_state_later_ack(st, &r, cb, ud);
}

/* ---- cache and idempotency (one shape: value key + lock key) -------------------- */

static void value_or_lock(mem_state *m, const char *vtag, const char *ltag, const char *name,
                          const char *owner, int32_t lock_ms, bool refresh, gw_cache_cb cb,
                          void *ud)
{
    int64_t now = now_ms(m);
    char vkey[KEY_MAX], lkey[KEY_MAX];
    mkkey(vkey, &m->base, vtag, name);
    mkkey(lkey, &m->base, ltag, name);
    gw_cache_result r = {.err = GW_OK};
    entry *v = refresh ? NULL : lookup(m, vkey, now);
    entry *l = lookup(m, lkey, now);
    if (v) {
        r.kind = GW_CACHE_HIT;
        r.data = v->val;
        r.len = v->len;
    } else if (!l || owner_is(l, owner)) {
        l = upsert(m, lkey, now, lock_ms);
        if (!l || !set_bytes(l, owner, strlen(owner)))
            r.err = GW_E_NOMEM;
        r.kind = GW_CACHE_LOCKED_BY_ME;
    } else {
        r.kind = GW_CACHE_LOCKED_BY_OTHER;
        r.lock_ttl_ms = l->expire_ms - now;
    }
    gw_state_later_cache(&m->base, &r, cb, ud);
}

static void store_and_unlock(mem_state *m, const char *vtag, const char *ltag, const char *name,
                             const uint8_t *data, size_t len, int32_t ttl_s, const char *owner,
                             bool only_if_absent, gw_ack_cb cb, void *ud)
{
    int64_t now = now_ms(m);
    char vkey[KEY_MAX], lkey[KEY_MAX];
    mkkey(vkey, &m->base, vtag, name);
    mkkey(lkey, &m->base, ltag, name);
    gw_state_ack r = {.err = GW_OK, .applied = true};
    if (only_if_absent && lookup(m, vkey, now)) {
        r.applied = false;
    } else {
        entry *v = upsert(m, vkey, now, (int64_t)ttl_s * 1000);
        if (!v || !set_bytes(v, data, len))
            r.err = GW_E_NOMEM;
    }
    if (owner && owner_is(lookup(m, lkey, now), owner))
        del(m, lkey, now);
    gw_state_later_ack(&m->base, &r, cb, ud);
}

static void unlock_if_owner(mem_state *m, const char *ltag, const char *name, const char *owner,
                            gw_ack_cb cb, void *ud)
{
    int64_t now = now_ms(m);
    char lkey[KEY_MAX];
    mkkey(lkey, &m->base, ltag, name);
    gw_state_ack r = {.err = GW_OK};
    if (owner_is(lookup(m, lkey, now), owner)) {
        del(m, lkey, now);
        r.applied = true;
    }
    gw_state_later_ack(&m->base, &r, cb, ud);
}

static void mem_cache_get(gw_state *st, const char *key, gw_cache_cb cb, void *ud)
{
    mem_state *m = (mem_state *)st;
    char vkey[KEY_MAX];
    mkkey(vkey, st, "c", key);
    entry *v = lookup(m, vkey, now_ms(m));
    gw_cache_result r = {.err = GW_OK, .kind = v ? GW_CACHE_HIT : GW_CACHE_MISS};
    if (v) {
        r.data = v->val;
        r.len = v->len;
    }
    gw_state_later_cache(st, &r, cb, ud);
}

static void mem_cache_put(gw_state *st, const char *key, const uint8_t *data, size_t len,
                          int32_t ttl_s, const char *owner, gw_ack_cb cb, void *ud)
{
    store_and_unlock((mem_state *)st, "c", "cl", key, data, len, ttl_s, owner, false, cb, ud);
}

static void mem_cache_get_or_lock(gw_state *st, const char *key, const char *owner, int32_t lock_ms,
                                  bool refresh, gw_cache_cb cb, void *ud)
{
    value_or_lock((mem_state *)st, "c", "cl", key, owner, lock_ms, refresh, cb, ud);
}

static void mem_cache_unlock(gw_state *st, const char *key, const char *owner, gw_ack_cb cb,
                             void *ud)
{
    unlock_if_owner((mem_state *)st, "cl", key, owner, cb, ud);
}

static void mem_idem_claim(gw_state *st, const char *request_id, const char *owner,
                           int32_t lease_ms, gw_cache_cb cb, void *ud)
{
    value_or_lock((mem_state *)st, "id", "il", request_id, owner, lease_ms, false, cb, ud);
}

static void mem_idem_complete(gw_state *st, const char *request_id, const char *owner,
                              const uint8_t *data, size_t len, int32_t ttl_s, gw_ack_cb cb,
                              void *ud)
{
    store_and_unlock((mem_state *)st, "id", "il", request_id, data, len, ttl_s, owner, true, cb,
                     ud);
}

static void mem_idem_release(gw_state *st, const char *request_id, const char *owner, gw_ack_cb cb,
                             void *ud)
{
    unlock_if_owner((mem_state *)st, "il", request_id, owner, cb, ud);
}

/* ---- lifecycle ----------------------------------------------------------------------- */

static long mem_key_count(const gw_state *st, long *without_ttl)
{
    mem_state *m = (mem_state *)st;
    int64_t now = m->clock(m->clock_ud);
    long live = 0, no_ttl = 0;
    for (size_t i = 0; i < m->nbuckets; i++)
        for (entry *e = m->buckets[i]; e; e = e->next) {
            if (e->expire_ms <= 0)
                no_ttl++;
            if (e->expire_ms <= 0 || e->expire_ms > now)
                live++;
        }
    if (without_ttl)
        *without_ttl = no_ttl;
    return live;
}

static void mem_release(gw_state *st)
{
    mem_state *m = (mem_state *)st;
    sweep(m, INT64_MAX);
    free(m->buckets);
    free(m);
}

static void mem_destroy(gw_state *st)
{
    gw_state_base_close(st, mem_release);
}

static const gw_state_ops mem_ops = {
    .limit_check = mem_limit_check,
    .limit_reconcile = mem_limit_reconcile,
    .budget_check = mem_budget_check,
    .budget_charge = mem_budget_charge,
    .cache_get = mem_cache_get,
    .cache_put = mem_cache_put,
    .cache_get_or_lock = mem_cache_get_or_lock,
    .cache_unlock = mem_cache_unlock,
    .idem_claim = mem_idem_claim,
    .idem_complete = mem_idem_complete,
    .idem_release = mem_idem_release,
    .key_count = mem_key_count,
    .destroy = mem_destroy,
};

gw_err gw_state_mem_new(uv_loop_t *loop, const gw_state_opts *o, gw_state **out)
{
    gw_err err = GW_E_NOMEM;
    *out = NULL;
    mem_state *m = calloc(1, sizeof(*m));
    if (!m)
        goto fail;
    m->nbuckets = 1024;
    m->buckets = calloc(m->nbuckets, sizeof(*m->buckets));
    if (!m->buckets)
        goto fail_m;
    m->clock = (o && o->clock) ? o->clock : gw_state_clock_realtime_ms;
    m->clock_ud = o ? o->clock_ud : NULL;
    m->max_keys = (o && o->max_keys) ? o->max_keys : 1000000;
    err = gw_state_base_init(&m->base, &mem_ops, loop, o);
    if (err != GW_OK)
        goto fail_buckets;
    *out = &m->base;
    return GW_OK;
fail_buckets:
    free(m->buckets);
fail_m:
    free(m);
fail:
    return err;
}
