/*
 * latency_redis: the Redis backend of the latency statistics; see latency.h.
 *
 * src/route/lua/latency_record.lua applies lat_ewma_apply's formula
 * atomically to one deployment's hash and returns the new values;
 * src/route/lua/latency_read.lua returns every deployment's values in one
 * reply. Values are kept as decimal strings with 3 decimals.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route/latency_private.h"
#include "route/registry.h"
#include "common/lua_scripts.h"
#include "loop/redis.h"

enum { KEY_MAX = 64 + GW_DEPLOYMENT_ID_MAX + 16 };

typedef struct {
    gw_latstats base;
    gw_redis *r;
    gw_redis_script *record_s, *read_s;
    int32_t refresh_ms;
    int64_t ttl_ms;
    int64_t refreshed_at; /* local ms; -1 never */
    bool refreshing;
    bool closing;
    char (*keys)[KEY_MAX];
    gw_latency *l;
} redis_stats;

typedef struct {
    redis_stats *rs;
    size_t idx;
} rec_req;

static void release(redis_stats *rs)
{
    rs->base.pending--;
    if (rs->closing && rs->base.pending == 0) {
        free(rs->keys);
        free(rs->l);
        free(rs);
    }
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
}

static void on_record(void *arg, gw_err err, const redisReply *rep)
{
    rec_req *q = arg;
    redis_stats *rs = q->rs;
    if (err == GW_OK && rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 &&
        !rs->closing)
        fill(&rs->l[q->idx], rep);
    free(q);
    release(rs);
}

static void r_record(gw_latstats *s, size_t idx, double ttft_ms, double total_ms)
{
    redis_stats *rs = (redis_stats *)s;
    rec_req *q = malloc(sizeof *q);
    if (q == NULL)
        return;
    *q = (rec_req){.rs = rs, .idx = idx};
    char a[4][32];
    snprintf(a[0], 32, "%.6f", s->alpha);
    snprintf(a[1], 32, "%.3f", ttft_ms);
    snprintf(a[2], 32, "%.3f", total_ms);
    snprintf(a[3], 32, "%lld", (long long)rs->ttl_ms);
    const char *argv[] = {rs->keys[idx], a[0], a[1], a[2], a[3]};
    s->pending++;
    gw_redis_eval(rs->r, rs->record_s, 1, 5, argv, NULL, on_record, q);
}

static void on_read(void *arg, gw_err err, const redisReply *rep)
{
    redis_stats *rs = arg;
    rs->refreshing = false;
    if (err == GW_OK && rep != NULL && rep->type == REDIS_REPLY_ARRAY &&
        rep->elements == rs->base.count && !rs->closing) {
        for (size_t i = 0; i < rep->elements; i++)
            fill(&rs->l[i], rep->element[i]);
    }
    release(rs);
}

static void refresh(redis_stats *rs, int64_t now)
{
    const char *argv[GW_REGISTRY_MAX];
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
    if (s->pending == 0) {
        free(rs->keys);
        free(rs->l);
        free(rs);
    }
}

static const gw_latstats_ops redis_ops = {r_record, r_get, r_free};

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
    if (rs == NULL || keys == NULL || l == NULL)
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
    *out = &rs->base;
    return GW_OK;
nomem:
    free(l);
    free(keys);
    free(rs);
    return GW_E_NOMEM;
}
