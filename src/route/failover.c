/*
 * failover: the per-request retry/failover decision machine; see failover.h.
 *
 * Invariants: cur < plan->count while not finished; calls counts provider
 * calls actually made (denials are logged but are not calls); the log keeps
 * the first GW_FAILOVER_MAX_ATTEMPTS entries.
 */
#include "route/failover.h"

#include <stdio.h>
#include <string.h>

void gw_failover_opts_from_config(const gw_config *cfg, gw_failover_opts *o)
{
    const gw_retry_config *r = &cfg->retry;
    *o = (gw_failover_opts){.max_attempts_per_deployment = r->max_attempts_per_deployment,
                            .base_backoff_ms = r->base_backoff_ms,
                            .max_backoff_ms = r->max_backoff_ms,
                            .max_retry_after_ms = r->max_retry_after_ms,
                            .max_total_attempts = r->max_total_attempts};
}

void gw_failover_init(gw_failover *fo, const gw_failover_opts *o, const gw_registry *reg,
                      const gw_route_plan *plan, gw_rng *rng)
{
    memset(fo, 0, sizeof *fo);
    fo->o = *o;
    if (fo->o.max_attempts_per_deployment < 1)
        fo->o.max_attempts_per_deployment = 1;
    if (fo->o.max_total_attempts < 1 || fo->o.max_total_attempts > GW_FAILOVER_MAX_ATTEMPTS)
        fo->o.max_total_attempts = GW_FAILOVER_MAX_ATTEMPTS;
    fo->reg = reg;
    fo->plan = plan;
    fo->rng = rng;
    fo->finished = plan->count == 0;
}

size_t gw_failover_current(const gw_failover *fo)
{
    return fo->plan->count > 0 ? fo->plan->idx[fo->cur] : 0;
}

int32_t gw_failover_attempts(const gw_failover *fo)
{
    return fo->calls;
}

int32_t gw_failover_failovers(const gw_failover *fo)
{
    return (int32_t)fo->cur;
}

static void log_attempt(gw_failover *fo, gw_err err, int http_status, int64_t duration_ms)
{
    if (fo->log_count == GW_FAILOVER_MAX_ATTEMPTS)
        return;
    fo->log[fo->log_count++] = (gw_attempt){.idx = (uint16_t)gw_failover_current(fo),
                                            .err = err,
                                            .http_status = http_status,
                                            .duration_ms = duration_ms};
}

static gw_fo_decision stop(gw_failover *fo, gw_err err)
{
    fo->finished = true;
    return (gw_fo_decision){.action = GW_FO_STOP, .err = err};
}

static gw_fo_decision next(gw_failover *fo)
{
    if (fo->calls >= fo->o.max_total_attempts || fo->cur + 1 >= fo->plan->count)
        return stop(fo, GW_E_ALL_MODELS_UNAVAILABLE);
    fo->cur++;
    fo->on_cur = 0;
    return (gw_fo_decision){.action = GW_FO_NEXT};
}

static int64_t backoff_ms(const gw_failover *fo, int32_t attempt)
{
    double d = fo->o.base_backoff_ms;
    for (int32_t i = 1; i < attempt && d < fo->o.max_backoff_ms; i++)
        d *= 2;
    if (d > fo->o.max_backoff_ms)
        d = fo->o.max_backoff_ms;
    double u = fo->rng != NULL ? gw_rng_unit(fo->rng) : 1.0;
    return (int64_t)(d / 2 + u * d / 2);
}

static gw_fo_decision retry_or_next(gw_failover *fo, const gw_attempt_outcome *o)
{
    if (fo->on_cur >= fo->o.max_attempts_per_deployment || fo->calls >= fo->o.max_total_attempts)
        return next(fo);
    int64_t delay = backoff_ms(fo, fo->on_cur);
    if (o->retry_after_ms >= 0) {
        if (o->retry_after_ms > fo->o.max_retry_after_ms)
            return next(fo);
        delay = o->retry_after_ms;
    }
    if (o->deadline_left_ms >= 0 && delay >= o->deadline_left_ms)
        return next(fo);
    return (gw_fo_decision){.action = GW_FO_RETRY_SAME, .delay_ms = delay};
}

static gw_fo_decision context_too_long(gw_failover *fo)
{
    const gw_deployment *d = gw_registry_get(fo->reg, gw_failover_current(fo));
    for (size_t i = fo->cur + 1; i < fo->plan->count; i++) {
        const gw_deployment *e = gw_registry_get(fo->reg, fo->plan->idx[i]);
        if (e->context_window_tokens > d->context_window_tokens &&
            fo->calls < fo->o.max_total_attempts) {
            fo->cur = i;
            fo->on_cur = 0;
            return (gw_fo_decision){.action = GW_FO_NEXT};
        }
    }
    return stop(fo, GW_E_CONTEXT_TOO_LONG);
}

gw_fo_decision gw_failover_on_outcome(gw_failover *fo, const gw_attempt_outcome *o)
{
    if (fo->finished)
        return (gw_fo_decision){.action = GW_FO_STOP, .err = GW_E_INTERNAL};
    log_attempt(fo, o->err, o->http_status, o->duration_ms);
    fo->calls++;
    fo->on_cur++;
    if (o->err == GW_OK) {
        fo->finished = true;
        return (gw_fo_decision){.action = GW_FO_DONE};
    }
    if (o->chunk_published) /* a safety block keeps its name: the text so far was filtered */
        return stop(fo, o->err == GW_E_PROVIDER_CONTENT_BLOCKED ? o->err : GW_E_STREAM_ERROR);
    switch (o->err) {
    case GW_E_PROVIDER_CONTEXT_LENGTH:
    case GW_E_CONTEXT_TOO_LONG:
        return context_too_long(fo);
    case GW_E_PROVIDER_AUTH:
    case GW_E_PROVIDER_NOT_CONFIGURED:
    case GW_E_CIRCUIT_OPEN:
        return next(fo);
    case GW_E_PROVIDER_RATE_LIMITED:
        if (fo->cur + 1 < fo->plan->count && fo->calls < fo->o.max_total_attempts)
            return next(fo);
        return retry_or_next(fo, o);
    default:
        break;
    }
    gw_domain dom = gw_err_domain(o->err);
    if (dom != GW_DOMAIN_PROVIDER)
        return stop(fo, o->err);
    return gw_err_retryable(o->err) ? retry_or_next(fo, o) : next(fo);
}

gw_fo_decision gw_failover_on_denied(gw_failover *fo, int64_t retry_in_ms)
{
    if (fo->finished)
        return (gw_fo_decision){.action = GW_FO_STOP, .err = GW_E_INTERNAL};
    log_attempt(fo, GW_E_CIRCUIT_OPEN, 0, 0);
    (void)retry_in_ms;
    return next(fo);
}

gw_err gw_failover_details(const gw_failover *fo, gw_arena *a, gw_map *out)
{
    enum { ENTRY_MAX = GW_DEPLOYMENT_ID_MAX + 96 };
    char *json = gw_arena_alloc(a, GW_FAILOVER_MAX_ATTEMPTS * ENTRY_MAX + 4);
    gw_kv *kv = gw_arena_calloc(a, 2, sizeof *kv);
    if (json == NULL || kv == NULL)
        return GW_E_NOMEM;
    size_t len = 0;
    json[len++] = '[';
    for (size_t i = 0; i < fo->log_count; i++) {
        const gw_attempt *at = &fo->log[i];
        const gw_deployment *d = gw_registry_get(fo->reg, at->idx);
        len += (size_t)snprintf(json + len, ENTRY_MAX,
                                "%s{\"deployment\":\"%s\",\"code\":\"%s\",\"http_status\":%d,"
                                "\"duration_ms\":%lld}",
                                i > 0 ? "," : "", d->id, gw_err_code(at->err), at->http_status,
                                (long long)at->duration_ms);
    }
    json[len++] = ']';
    json[len] = '\0';
    kv[0] = (gw_kv){.key = "attempts", .value = json};
    kv[1] = (gw_kv){.key = "attempt_count", .value = gw_arena_printf(a, "%zu", fo->log_count)};
    if (kv[1].value == NULL)
        return GW_E_NOMEM;
    out->items = kv;
    out->count = 2;
    return GW_OK;
}
