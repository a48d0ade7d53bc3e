/*
 * provider: dispatch of gw_provider_call_* to the adapter of a deployment's
 * provider kind (its provider table row: builtin → provider_mock.c, else
 * provider_http.c with the row's dialect), the shared HTTP client, and the per-deployment
 * concurrency cap with its bounded wait queue. See provider.h.
 *
 * Concurrency cap: when d->max_concurrency > 0 (or the lower adaptive
 * limit set by gw_providers_set_limit) and that many calls of d are
 * running, a new call waits in d's FIFO queue (at most GW_PROVIDER_QUEUE_MAX
 * waiting; beyond that the start fails with GW_E_PROVIDER_SATURATED, which is
 * retryable so failover can try another deployment). A queued call starts when
 * a running call of d ends; its timeouts start then. If the deferred start
 * fails, its on_done reports the error (never from inside the caller's start).
 *
 * Invariants: a gw_provider_call exists from a successful start until its
 * on_done has returned or it was cancelled; slot->n counts exactly those
 * (running + queued), slot->running the running ones.
 */
#include "provider/provider.h"

#include <stdlib.h>
#include <string.h>

#include "loop/http_client.h"
#include "provider/provider_http.h"
#include "provider/provider_mock.h"
#include "provider/provider_table.h"

enum { INFLIGHT_SLOTS = 256 };

typedef struct inflight_slot inflight_slot;

struct gw_provider_call {
    gw_providers *ps;
    inflight_slot *slot;
    gw_provider_cbs user;
    void *user_ud;
    const gw_deployment *d;
    const gw_request *req;
    const gw_provider_kind_info *kind; /* the deployment's provider table row */
    bool queued;
    gw_provider_call *qnext;
    union {
        gw_mock_call *mock;
        gw_phttp_call *http;
    } impl;
};

struct inflight_slot {
    const gw_deployment *d;
    int limit;   /* the adaptive cap below d->max_concurrency; 0: none */
    int n;       /* running + queued */
    int running; /* started on the adapter */
    int queued;
    gw_provider_call *qhead, *qtail;
};

struct gw_providers {
    uv_loop_t *loop;
    gw_http *http; /* created on the first HTTP call */
    inflight_slot inflight[INFLIGHT_SLOTS];
    size_t slot_count;
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
    if (ps->http != NULL)
        gw_http_free(ps->http);
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
    memset(s, 0, sizeof *s);
    s->d = d;
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
    if (c->user.on_delta != NULL)
        c->user.on_delta(c->user_ud, text, len);
}

static void call_tool_delta(void *ud, const gw_tool_call_delta *d)
{
    gw_provider_call *c = ud;
    if (c->user.on_tool_delta != NULL)
        c->user.on_tool_delta(c->user_ud, d);
}

static void start_queued(inflight_slot *slot);

static void call_done(void *ud, const gw_provider_result *res)
{
    gw_provider_call *c = ud;
    inflight_slot *slot = c->slot;
    slot->n--;
    slot->running--;
    gw_provider_cbs user = c->user;
    void *user_ud = c->user_ud;
    free(c);
    user.on_done(user_ud, res);
    start_queued(slot);
}

/* Start c on its adapter. */
static gw_err launch(gw_provider_call *c)
{
    gw_providers *ps = c->ps;
    gw_provider_cbs mine = {
        .on_delta = call_delta, .on_tool_delta = call_tool_delta, .on_done = call_done};
    if (c->kind == NULL)
        return GW_E_PROVIDER_NOT_CONFIGURED;
    if (c->kind->builtin)
        return gw_mock_call_start(ps->loop, c->d, c->req, &mine, c, &c->impl.mock);
    if (c->kind->dialect == NULL)
        return GW_E_PROVIDER_NOT_CONFIGURED;
    gw_err err;
    if (ps->http == NULL && (err = gw_http_new(ps->loop, NULL, &ps->http)) != GW_OK)
        return err;
    return gw_phttp_start(ps->http, c->kind, c->d, c->req, &mine, c, &c->impl.http);
}

static void fail_queued(gw_provider_call *c, gw_err err)
{
    gw_provider_result res = {0};
    res.err = err;
    res.retry_after_ms = -1;
    res.content = "";
    res.finish_reason = "error";
    gw_provider_cbs user = c->user;
    void *user_ud = c->user_ud;
    free(c);
    user.on_done(user_ud, &res);
}

static int slot_cap(const inflight_slot *slot)
{
    int max = slot->d->max_concurrency;
    return slot->limit > 0 && (max <= 0 || slot->limit < max) ? slot->limit : max;
}

gw_err gw_providers_set_limit(gw_providers *ps, const gw_deployment *d, int limit)
{
    inflight_slot *slot = slot_for(ps, d);
    if (slot == NULL)
        return GW_E_LIMIT;
    slot->limit = limit > 0 && (d->max_concurrency <= 0 || limit < d->max_concurrency) ? limit : 0;
    return GW_OK;
}

int gw_providers_limit(const gw_providers *ps, const gw_deployment *d)
{
    for (size_t i = 0; i < ps->slot_count; i++)
        if (ps->inflight[i].d == d)
            return slot_cap(&ps->inflight[i]);
    return d->max_concurrency;
}

static void start_queued(inflight_slot *slot)
{
    int cap = slot_cap(slot);
    while (slot->qhead != NULL && (cap <= 0 || slot->running < cap)) {
        gw_provider_call *c = slot->qhead;
        slot->qhead = c->qnext;
        if (slot->qhead == NULL)
            slot->qtail = NULL;
        slot->queued--;
        c->queued = false;
        gw_err err = launch(c);
        if (err == GW_OK) {
            slot->running++;
            continue;
        }
        slot->n--;
        fail_queued(c, err);
    }
}

gw_err gw_provider_call_start(gw_providers *ps, const gw_deployment *d, const gw_request *req,
                              const gw_provider_cbs *cbs, void *ud, gw_provider_call **out)
{
    inflight_slot *slot = slot_for(ps, d);
    if (slot == NULL)
        return GW_E_LIMIT;
    int cap = slot_cap(slot);
    bool must_wait = cap > 0 && slot->running >= cap;
    if (must_wait && slot->queued >= GW_PROVIDER_QUEUE_MAX)
        return GW_E_PROVIDER_SATURATED;
    gw_provider_call *c = calloc(1, sizeof *c);
    if (c == NULL)
        return GW_E_NOMEM;
    c->ps = ps;
    c->slot = slot;
    c->user = *cbs;
    c->user_ud = ud;
    c->d = d;
    c->req = req;
    c->kind = gw_provider_info(d->provider);
    if (must_wait) {
        c->queued = true;
        if (slot->qtail)
            slot->qtail->qnext = c;
        else
            slot->qhead = c;
        slot->qtail = c;
        slot->queued++;
    } else {
        gw_err err = launch(c);
        if (err != GW_OK) {
            free(c);
            return err;
        }
        slot->running++;
    }
    slot->n++;
    *out = c;
    return GW_OK;
}

static void unqueue(inflight_slot *slot, gw_provider_call *c)
{
    gw_provider_call **pp = &slot->qhead;
    gw_provider_call *prev = NULL;
    while (*pp != NULL && *pp != c) {
        prev = *pp;
        pp = &(*pp)->qnext;
    }
    if (*pp == NULL)
        return;
    *pp = c->qnext;
    if (slot->qtail == c)
        slot->qtail = prev;
    slot->queued--;
}

void gw_provider_call_cancel(gw_provider_call *c)
{
    inflight_slot *slot = c->slot;
    if (c->queued) {
        unqueue(slot, c);
    } else {
        if (c->kind->builtin)
            gw_mock_call_cancel(c->impl.mock);
        else
            gw_phttp_cancel(c->impl.http);
        slot->running--;
    }
    slot->n--;
    free(c);
    start_queued(slot);
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
