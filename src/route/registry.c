/*
 * registry: validation and lookups over the configured deployments; see
 * registry.h. Lookups are linear scans: GW_REGISTRY_MAX is small and the
 * arrays are hot in cache, which beats hashing at this size.
 */
#include "route/registry.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provider/provider_table.h"

struct gw_registry {
    const gw_deployment *deps;
    size_t count;
    gw_provider_mask providers;
    int32_t max_context;
};

static gw_err fail(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static gw_err fail(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (errbuf != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return GW_E_CONFIG;
}

static bool id_ok(const char *id)
{
    size_t n = id != NULL ? strlen(id) : 0;
    if (n == 0 || n > GW_DEPLOYMENT_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == ':' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

static gw_err check_one(const gw_deployment *d, char *errbuf, size_t errlen)
{
    const char *id = d->id != NULL ? d->id : "(null)";
    if (!id_ok(d->id))
        return fail(errbuf, errlen, "deployment id '%.64s': 1..64 of [A-Za-z0-9._:-]", id);
    if (gw_provider_info(d->provider) == NULL)
        return fail(errbuf, errlen, "deployment %s: unknown provider kind", id);
    if (d->model == NULL || d->model[0] == '\0')
        return fail(errbuf, errlen, "deployment %s: model must be set", id);
    if (d->weight < 1)
        return fail(errbuf, errlen, "deployment %s: weight must be >= 1", id);
    if (d->context_window_tokens <= 0)
        return fail(errbuf, errlen, "deployment %s: context_window_tokens must be > 0", id);
    if (!(d->price_in_usd_per_mtok >= 0) || !(d->price_out_usd_per_mtok >= 0))
        return fail(errbuf, errlen, "deployment %s: prices must be >= 0", id);
    if (!(d->quality >= 0 && d->quality <= 1))
        return fail(errbuf, errlen, "deployment %s: quality must be within 0..1", id);
    if (!(d->latency_prior_ms > 0) || !(d->ttft_prior_ms > 0))
        return fail(errbuf, errlen, "deployment %s: latency priors must be > 0", id);
    if (d->capability_count > GW_MAX_CAPABILITIES)
        return fail(errbuf, errlen, "deployment %s: too many capabilities", id);
    return GW_OK;
}

gw_err gw_registry_new(const gw_deployment *deps, size_t n, gw_provider_mask providers,
                       char *errbuf, size_t errlen, gw_registry **out)
{
    if (n == 0)
        return fail(errbuf, errlen, "deployments: at least one deployment is required");
    if (n > GW_REGISTRY_MAX)
        return fail(errbuf, errlen, "deployments: at most %d deployments", GW_REGISTRY_MAX);
    int32_t max_ctx = 0;
    for (size_t i = 0; i < n; i++) {
        gw_err e = check_one(&deps[i], errbuf, errlen);
        if (e != GW_OK)
            return e;
        for (size_t j = 0; j < i; j++)
            if (strcmp(deps[j].id, deps[i].id) == 0)
                return fail(errbuf, errlen, "deployment %s: duplicate id", deps[i].id);
        if (deps[i].context_window_tokens > max_ctx)
            max_ctx = deps[i].context_window_tokens;
    }
    gw_registry *r = calloc(1, sizeof *r);
    if (r == NULL)
        return GW_E_NOMEM;
    r->deps = deps;
    r->count = n;
    r->providers = providers;
    r->max_context = max_ctx;
    *out = r;
    return GW_OK;
}

void gw_registry_free(gw_registry *r)
{
    free(r);
}

size_t gw_registry_count(const gw_registry *r)
{
    return r->count;
}

const gw_deployment *gw_registry_get(const gw_registry *r, size_t idx)
{
    return idx < r->count ? &r->deps[idx] : NULL;
}

bool gw_registry_provider_ready(const gw_registry *r, size_t idx)
{
    return idx < r->count && (r->providers & (1u << r->deps[idx].provider)) != 0;
}

int gw_registry_find_id(const gw_registry *r, const char *id)
{
    for (size_t i = 0; id != NULL && i < r->count; i++)
        if (strcmp(r->deps[i].id, id) == 0)
            return (int)i;
    return -1;
}

size_t gw_registry_match(const gw_registry *r, const char *name, uint16_t *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; name != NULL && i < r->count; i++) {
        if (strcmp(r->deps[i].id, name) != 0 && strcmp(r->deps[i].model, name) != 0)
            continue;
        if (n < cap)
            out[n] = (uint16_t)i;
        n++;
    }
    return n;
}

int32_t gw_registry_max_context(const gw_registry *r)
{
    return r->max_context;
}
