/*
 * provider: dispatch of gw_provider_call_* to the adapter of a deployment's
 * provider kind, and the per-deployment in-flight accounting used for the
 * concurrency cap and load balancing. See provider.h.
 *
 * Invariant: a gw_provider_call exists from a successful start until its
 * on_done has returned or it was cancelled; inflight counts exactly those.
 */
#include "provider/provider.h"

#include <stdlib.h>
#include <string.h>

#include "provider/provider_mock.h"

enum { INFLIGHT_SLOTS = 256 };

typedef struct {
    const gw_deployment *d;
    int n;
} inflight_slot;

struct gw_providers {
    uv_loop_t *loop;
    inflight_slot inflight[INFLIGHT_SLOTS];
    size_t slot_count;
};

struct gw_provider_call {
    gw_providers *ps;
    inflight_slot *slot;
    gw_provider_cbs user;
    void *user_ud;
    gw_provider_kind kind;
    union {
        gw_mock_call *mock;
    } impl;
};

gw_err gw_providers_new(uv_loop_t *loop, gw_providers **out)
{
    gw_providers *ps = calloc(1, sizeof *ps);
    if (ps == NULL)
        return GW_E_NOMEM;
    ps->loop = loop;
    *out = ps;
    return GW_OK;
}

void gw_providers_free(gw_providers *ps)
{
    free(ps);
}

static inflight_slot *slot_for(gw_providers *ps, const gw_deployment *d)
{
    for (size_t i = 0; i < ps->slot_count; i++)
        if (ps->inflight[i].d == d)
            return &ps->inflight[i];
    if (ps->slot_count == INFLIGHT_SLOTS)
        return NULL;
    inflight_slot *s = &ps->inflight[ps->slot_count++];
    s->d = d;
    s->n = 0;
    return s;
}

int gw_providers_inflight(const gw_providers *ps, const gw_deployment *d)
{
    for (size_t i = 0; i < ps->slot_count; i++)
        if (ps->inflight[i].d == d)
            return ps->inflight[i].n;
    return 0;
}

static void call_delta(void *ud, const char *text, size_t len)
{
    gw_provider_call *c = ud;
    c->user.on_delta(c->user_ud, text, len);
}

static void call_done(void *ud, const gw_provider_result *res)
{
    gw_provider_call *c = ud;
    c->slot->n--;
    gw_provider_cbs user = c->user;
    void *user_ud = c->user_ud;
    free(c);
    user.on_done(user_ud, res);
}

gw_err gw_provider_call_start(gw_providers *ps, const gw_deployment *d, const gw_request *req,
                              const gw_provider_cbs *cbs, void *ud, gw_provider_call **out)
{
    inflight_slot *slot = slot_for(ps, d);
    if (slot == NULL)
        return GW_E_LIMIT;
    gw_provider_call *c = calloc(1, sizeof *c);
    if (c == NULL)
        return GW_E_NOMEM;
    c->ps = ps;
    c->slot = slot;
    c->user = *cbs;
    c->user_ud = ud;
    c->kind = d->provider;
    gw_provider_cbs mine = {.on_delta = call_delta, .on_done = call_done};
    gw_err err;
    switch (d->provider) {
    case GW_PROVIDER_MOCK:
        err = gw_mock_call_start(ps->loop, d, req, &mine, c, &c->impl.mock);
        break;
    default:
        err = GW_E_PROVIDER_NOT_CONFIGURED;
        break;
    }
    if (err != GW_OK) {
        free(c);
        return err;
    }
    slot->n++;
    *out = c;
    return GW_OK;
}

void gw_provider_call_cancel(gw_provider_call *c)
{
    switch (c->kind) {
    case GW_PROVIDER_MOCK:
        gw_mock_call_cancel(c->impl.mock);
        break;
    default:
        break;
    }
    c->slot->n--;
    free(c);
}

int32_t gw_estimate_tokens(const char *text)
{
    if (text == NULL)
        return 0;
    size_t n = strlen(text);
    return (int32_t)((n + 3) / 4);
}

int32_t gw_estimate_prompt_tokens(const gw_request *req)
{
    /* ~4 bytes per token plus a few tokens of framing per message. */
    int64_t t = gw_estimate_tokens(req->system_prompt);
    for (size_t i = 0; i < req->message_count; i++)
        t += gw_estimate_tokens(req->messages[i].content) + 4;
    return t > INT32_MAX ? INT32_MAX : (int32_t)t;
}
