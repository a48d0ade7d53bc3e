/*
 * latency_redis: the Redis backend of the latency statistics; see latency.h.
 *
 * Samples are folded in the worker per deployment (the EWMA terms of
 * latency_record.lua) and flushed in one script call per deployment when
 * gw_latstats_flush runs (the worker's 100 ms tick) or a batch reaches
 * BATCH_MAX samples: the statistics need no per-request atomicity, and one
 * call per batch instead of per request is most of Redis's CPU saved.
 * src/route/lua/latency_record.lua applies a batch with lat_ewma_apply's
 * formula atomically to one deployment's hash and returns the new values;
 * src/route/lua/latency_read.lua returns every deployment's values in one
 * reply. Values are kept as decimal strings with 3 decimals.
 *
 * The same call carries the changes of the adaptive concurrency cap since
 * the last flush (gw_latstats_concurrency), so sharing the cap costs no
 * Redis call of its own; its replies and the reads bring the fleet's cap
 * back in gw_latency.fleet_cap.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route/latency_private.h"
#include "route/registry.h"
#include "common/lua_scripts.h"
#include "loop/redis.h"

enum { KEY_MAX = 64 + GW_DEPLOYMENT_ID_MAX + 16, BATCH_MAX = 64 };

/* EWMA terms of the samples not yet flushed (see latency_record.lua). */
typedef struct {
    int32_t k;
    double first, d, sum, d2, sum2;      /* total */
    double tfirst, td, tsum, td2, tsum2; /* ttft */
    bool has_cap;                        /* cap changes to send (see latency_record.lua) */
    double cap_inc;
    int32_t cap_dec;
    gw_latstats_cap cap;
} lat_batch;

typedef struct {
    gw_latstats base;
    gw_redis *r;
    gw_redis_script *record_s, *read_s;
    int32_t refresh_ms;
    int64_t ttl_ms;
    int64_t refreshed_at; /* local ms; -1 never */
    bool refreshing;
    size_t reads_left; /* cluster: per-deployment reads of one refresh */
    bool closing;
    char (*keys)[KEY_MAX];
    gw_latency *l;
    lat_batch *batch;
    /* Record replies per deployment, and their count when the running read
     * was issued: a read older than a record reply would take the copy back
     * (the fleet cap too, which would then be adopted). */
    uint32_t *rec_seq, *read_seq;
} redis_stats;

typedef struct {
    redis_stats *rs;
    size_t idx;
} rec_req;

static void stats_free(redis_stats *rs)
{
    free(rs->keys);
    free(rs->l);
    free(rs->batch);
    free(rs->rec_seq);
    free(rs->read_seq);
    free(rs);
}

static void release(redis_stats *rs)
{
    rs->base.pending--;
    if (rs->closing && rs->base.pending == 0)
        stats_free(rs);
}

static double num(const redisReply *r)
{
    if (r == NULL)
        return 0;
    if (r->type == REDIS_REPLY_INTEGER)
        return (double)r->integer;
    if (r->type == REDIS_REPLY_STRING)
        return strtod(r->str, NULL);
    return 0;
}

static void fill(gw_latency *l, const redisReply *triple)
{
    l->ttft_ms = num(gw_redis_reply_elem(triple, 0));
    l->total_ms = num(gw_redis_reply_elem(triple, 1));
    l->samples = (int64_t)num(gw_redis_reply_elem(triple, 2));
    l->fleet_cap = num(gw_redis_reply_elem(triple, 3));
}

/* A read's values for idx, unless a record reply came after the read was issued. */
static void fill_read(redis_stats *rs, size_t idx, const redisReply *vals)
{
    if (rs->rec_seq[idx] == rs->read_seq[idx])
        fill(&rs->l[idx], vals);
}

static void on_record(void *arg, gw_err err, const redisReply *rep)
{
    rec_req *q = arg;
    redis_stats *rs = q->rs;
    if (err == GW_OK && rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements >= 3 &&
        !rs->closing) {
        fill(&rs->l[q->idx], rep);
        rs->rec_seq[q->idx]++;
    }
    free(q);
    release(rs);
}

static void flush_one(redis_stats *rs, size_t idx)
{
    lat_batch *b = &rs->batch[idx];
    if (b->k == 0 && !b->has_cap)
        return;
    rec_req *q = malloc(sizeof *q);
    if (q == NULL)
        return; /* kept for the next flush */
    *q = (rec_req){.rs = rs, .idx = idx};
    char a[18][40];
    snprintf(a[0], 40, "%d", b->k);
    snprintf(a[1], 40, "%lld", (long long)rs->ttl_ms);
    const double v[10] = {b->first,  b->d,  b->sum,  b->d2,  b->sum2,
                          b->tfirst, b->td, b->tsum, b->td2, b->tsum2};
    for (int i = 0; i < 10; i++)
        snprintf(a[2 + i], 40, "%.17g", v[i]);
    int argc = 13;
    if (b->has_cap) {
        snprintf(a[12], 40, "%.17g", b->cap_inc);
        snprintf(a[13], 40, "%d", (int)b->cap_dec);
        snprintf(a[14], 40, "%d", (int)b->cap.min);
        snprintf(a[15], 40, "%d", (int)b->cap.max);
        snprintf(a[16], 40, "%.17g", b->cap.decrease);
        snprintf(a[17], 40, "%lld", (long long)b->cap.hold_ms);
        argc = 19;
    }
    const char *argv[19] = {rs->keys[idx]};
    for (int i = 0; i < argc - 1; i++)
        argv[1 + i] = a[i];
    memset(b, 0, sizeof *b);
    rs->base.pending++;
    gw_redis_eval(rs->r, rs->record_s, 1, argc, argv, NULL, on_record, q);
}

static void r_record(gw_latstats *s, size_t idx, double ttft_ms, double total_ms)
{
    redis_stats *rs = (redis_stats *)s;
    lat_batch *b = &rs->batch[idx];
    double a = s->alpha, m = 1 - a;
    if (b->k == 0) {
        b->first = total_ms;
        b->d = m;
        b->sum = a * total_ms;
        b->d2 = 1;
        b->sum2 = 0;
        b->tfirst = ttft_ms >= 0 ? ttft_ms : total_ms;
        b->td = ttft_ms >= 0 ? m : 1;
        b->tsum = ttft_ms >= 0 ? a * ttft_ms : 0;
        b->td2 = 1;
        b->tsum2 = 0;
    } else {
        b->d *= m;
        b->sum = m * b->sum + a * total_ms;
        b->d2 *= m;
        b->sum2 = m * b->sum2 + a * total_ms;
        if (ttft_ms >= 0) {
            b->td *= m;
            b->tsum = m * b->tsum + a * ttft_ms;
            b->td2 *= m;
            b->tsum2 = m * b->tsum2 + a * ttft_ms;
        }
    }
    if (++b->k >= BATCH_MAX)
        flush_one(rs, idx);
}

static void r_concurrency(gw_latstats *s, size_t idx, double inc, int32_t dec,
                          const gw_latstats_cap *p)
{
    lat_batch *b = &((redis_stats *)s)->batch[idx];
    b->has_cap = true;
    b->cap_inc += inc;
    b->cap_dec += dec;
    b->cap = *p;
}

static void r_flush(gw_latstats *s)
{
    redis_stats *rs = (redis_stats *)s;
    if (rs->closing)
        return;
    for (size_t i = 0; i < s->count; i++)
        flush_one(rs, i);
}

static void on_read(void *arg, gw_err err, const redisReply *rep)
{
    redis_stats *rs = arg;
    rs->refreshing = false;
    if (err == GW_OK && rep != NULL && rep->type == REDIS_REPLY_ARRAY &&
        rep->elements == rs->base.count && !rs->closing) {
        for (size_t i = 0; i < rep->elements; i++)
            fill_read(rs, i, rep->element[i]);
    }
    release(rs);
}

/* A Redis Cluster: one read per deployment (each key has its own slot). */
typedef struct {
    redis_stats *rs;
    size_t idx;
} read_one;

static void on_read_one(void *arg, gw_err err, const redisReply *rep)
{
    read_one *q = arg;
    redis_stats *rs = q->rs;
    if (err == GW_OK && rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 &&
        !rs->closing)
        fill_read(rs, q->idx, rep->element[0]);
    if (--rs->reads_left == 0)
        rs->refreshing = false;
    free(q);
    release(rs);
}

static void refresh_per_key(redis_stats *rs)
{
    rs->reads_left = 1; /* held while the reads are issued */
    for (size_t i = 0; i < rs->base.count; i++) {
        read_one *q = malloc(sizeof *q);
        if (q == NULL)
            continue;
        *q = (read_one){.rs = rs, .idx = i};
        rs->reads_left++;
        rs->base.pending++;
        const char *argv[1] = {rs->keys[i]};
        gw_redis_eval(rs->r, rs->read_s, 1, 1, argv, NULL, on_read_one, q);
    }
    if (--rs->reads_left == 0)
        rs->refreshing = false;
}

static void refresh(redis_stats *rs, int64_t now)
{
    const char *argv[GW_REGISTRY_MAX];
    memcpy(rs->read_seq, rs->rec_seq, rs->base.count * sizeof *rs->rec_seq);
    if (gw_redis_is_cluster(rs->r)) {
        rs->refreshing = true;
        rs->refreshed_at = now;
        refresh_per_key(rs);
        return;
    }
    for (size_t i = 0; i < rs->base.count; i++)
        argv[i] = rs->keys[i];
    rs->refreshing = true;
    rs->refreshed_at = now;
    rs->base.pending++;
    gw_redis_eval(rs->r, rs->read_s, (int)rs->base.count, (int)rs->base.count, argv, NULL, on_read,
                  rs);
}

static void r_get(gw_latstats *s, size_t idx, gw_latency *out)
{
    redis_stats *rs = (redis_stats *)s;
    int64_t now = gw_clock_monotonic_ms(NULL);
    if (!rs->refreshing && (rs->refreshed_at < 0 || now - rs->refreshed_at >= rs->refresh_ms))
        refresh(rs, now);
    *out = rs->l[idx];
}

static void r_free(gw_latstats *s)
{
    redis_stats *rs = (redis_stats *)s;
    rs->closing = true;
    if (s->pending == 0)
        stats_free(rs);
}

static const gw_latstats_ops redis_ops = {r_record, r_get, r_free, r_flush, r_concurrency};

gw_err gw_latstats_redis_new(const gw_registry *reg, gw_redis *r, const char *key_prefix,
                             double alpha, int32_t refresh_ms, int32_t ttl_s, gw_latstats **out)
{
    size_t n = gw_registry_count(reg);
    const char *pfx = key_prefix != NULL ? key_prefix : "";
    if (n == 0 || !(alpha > 0 && alpha <= 1) || refresh_ms < 0 || ttl_s < 1 || strlen(pfx) > 64)
        return GW_E_CONFIG;
    redis_stats *rs = calloc(1, sizeof *rs);
    char(*keys)[KEY_MAX] = calloc(n, KEY_MAX);
    gw_latency *l = calloc(n, sizeof *l);
    lat_batch *batch = calloc(n, sizeof *batch);
    if (rs == NULL || keys == NULL || l == NULL || batch == NULL)
        goto nomem;
    rs->rec_seq = calloc(n, sizeof *rs->rec_seq);
    rs->read_seq = calloc(n, sizeof *rs->read_seq);
    if (rs->rec_seq == NULL || rs->read_seq == NULL)
        goto nomem;
    rs->record_s = gw_redis_script_add(r, gw_lua_script("route/latency_record"));
    rs->read_s = gw_redis_script_add(r, gw_lua_script("route/latency_read"));
    if (rs->record_s == NULL || rs->read_s == NULL)
        goto nomem;
    for (size_t i = 0; i < n; i++)
        snprintf(keys[i], KEY_MAX, "%slat:{%s}", pfx, gw_registry_get(reg, i)->id);
    rs->base = (gw_latstats){.ops = &redis_ops, .count = n, .alpha = alpha};
    rs->r = r;
    rs->refresh_ms = refresh_ms;
    rs->ttl_ms = (int64_t)ttl_s * 1000;
    rs->refreshed_at = -1;
    rs->keys = keys;
    rs->l = l;
    rs->batch = batch;
    *out = &rs->base;
    return GW_OK;
nomem:
    if (rs != NULL) {
        free(rs->rec_seq);
        free(rs->read_seq);
    }
    free(batch);
    free(l);
    free(keys);
    free(rs);
    return GW_E_NOMEM;
}
