/*
 * health: builds the routing part of /health from local views; see health.h.
 */
#include "route/health.h"

#include <string.h>

static const char *status_of(const gw_route_health *h)
{
    if (!h->provider_ready)
        return "not_configured";
    const gw_breaker_stat *b = &h->breaker;
    if (b->cooldown_remaining_ms > 0 || (b->state == GW_BREAKER_OPEN && b->open_remaining_ms > 0))
        return "down";
    if (b->state != GW_BREAKER_CLOSED || b->error_rate >= 0.2)
        return "degraded";
    return "up";
}

size_t gw_route_health_read(const gw_registry *reg, gw_breaker *b, gw_latstats *s,
                            gw_inflight_fn inflight, void *ud, gw_route_health *out, size_t cap)
{
    size_t n = gw_registry_count(reg);
    for (size_t i = 0; i < n && i < cap; i++) {
        const gw_deployment *d = gw_registry_get(reg, i);
        gw_route_health *h = &out[i];
        memset(h, 0, sizeof *h);
        h->id = d->id;
        h->provider = gw_provider_kind_name(d->provider);
        h->model = d->model;
        h->provider_ready = gw_registry_provider_ready(reg, i);
        if (b != NULL)
            gw_breaker_snapshot(b, i, &h->breaker);
        /* An elapsed cool-down turns HALF_OPEN on the next allow: show that. */
        if (h->breaker.state == GW_BREAKER_OPEN && h->breaker.open_remaining_ms == 0)
            h->breaker.state = GW_BREAKER_HALF_OPEN;
        if (s != NULL)
            gw_latstats_get(s, i, &h->latency);
        h->inflight = inflight != NULL ? inflight(ud, i) : 0;
        h->status = status_of(h);
    }
    return n;
}

static json_t *one(const gw_route_health *h)
{
    const gw_breaker_stat *b = &h->breaker;
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:b, s:{s:s, s:I, s:I, s:i, s:i, s:i, s:f}, "
        "s:{s:f, s:f, s:I}, s:i}",
        "id", h->id, "provider", h->provider, "model", h->model, "status", h->status,
        "provider_configured", h->provider_ready, "breaker", "state",
        gw_breaker_state_name(b->state), "open_remaining_ms", (json_int_t)b->open_remaining_ms,
        "cooldown_remaining_ms", (json_int_t)b->cooldown_remaining_ms, "open_count", b->open_count,
        "window_calls", b->window_calls, "window_failures", b->window_failures, "error_rate",
        b->error_rate, "latency", "ttft_ms", h->latency.ttft_ms, "total_ms", h->latency.total_ms,
        "samples", (json_int_t)h->latency.samples, "in_flight", h->inflight);
}

json_t *gw_route_health_json(const gw_registry *reg, gw_breaker *b, gw_latstats *s,
                             gw_inflight_fn inflight, void *ud)
{
    gw_route_health hs[GW_REGISTRY_MAX];
    size_t n = gw_route_health_read(reg, b, s, inflight, ud, hs, GW_REGISTRY_MAX);
    json_t *arr = json_array();
    json_t *root = json_object();
    int available = 0;
    if (arr == NULL || root == NULL)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        json_t *o = one(&hs[i]);
        if (o == NULL || json_array_append_new(arr, o) != 0)
            goto fail;
        available += strcmp(hs[i].status, "up") == 0 || strcmp(hs[i].status, "degraded") == 0;
    }
    if (json_object_set_new(root, "deployments", arr) != 0) {
        arr = NULL;
        goto fail;
    }
    if (json_object_set_new(root, "available", json_integer(available)) != 0)
        goto fail_root;
    return root;
fail:
    json_decref(arr);
fail_root:
    json_decref(root);
    return NULL;
}
