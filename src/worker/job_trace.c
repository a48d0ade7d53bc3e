/*
 * job_trace: a request's trace context and spans; see job_trace.h and
 * docs/observability.md ("Traces"). Attribute names follow the OpenTelemetry
 * semantic conventions (gen_ai.*, messaging.*, http.*, error.type); what
 * they do not name is under modelgw.*.
 */
#include "worker/job_trace.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "provider/provider_table.h"
#include "worker/job.h"
#include "worker/worker_private.h"

static gw_tracer *tracer_of(gw_job *job)
{
    return gw_observe_tracer(job->w->obs);
}

/* The span ends in the queue only when exported and sampled. */
static bool recording(gw_job *job)
{
    return job->trace.started && (job->trace.ctx.flags & 1) && gw_tracer_enabled(tracer_of(job));
}

/* The value of the request's header name (the last one), or NULL. */
static const char *pass_header(gw_job *job, const char *name, size_t *len)
{
    const char *n, *found = NULL;
    const void *v;
    size_t l;
    for (size_t i = 0; job->in.pass_headers != NULL &&
                       rd_kafka_header_get_all(job->in.pass_headers, i, &n, &v, &l) == 0;
         i++)
        if (strcasecmp(n, name) == 0 && v != NULL) {
            found = v;
            *len = l;
        }
    return found;
}

/* The outputs name our request span as their parent. */
static void set_output_traceparent(gw_job *job)
{
    char tp[GW_TRACEPARENT_LEN + 1];
    gw_traceparent_format(&job->trace.ctx, tp);
    if (job->in.pass_headers == NULL)
        job->in.pass_headers = rd_kafka_headers_new(2);
    if (job->in.pass_headers == NULL)
        return;
    rd_kafka_header_remove(job->in.pass_headers, "traceparent");
    rd_kafka_header_add(job->in.pass_headers, "traceparent", -1, tp, GW_TRACEPARENT_LEN);
}

static void start(gw_job *job)
{
    gw_job_trace *t = &job->trace;
    gw_tracer *tr = tracer_of(job);
    size_t len = 0;
    const char *tp = pass_header(job, "traceparent", &len);
    gw_trace_ctx in;
    t->has_parent = tp != NULL && gw_traceparent_parse(tp, len, &in);
    if (t->has_parent) {
        memcpy(t->ctx.trace_id, in.trace_id, 16);
        memcpy(t->parent_id, in.span_id, 8);
        t->ctx.flags = in.flags;
    } else {
        gw_tracer_new_trace_id(tr, t->ctx.trace_id);
        t->ctx.flags = gw_tracer_sample(tr) ? 1 : 0;
    }
    gw_tracer_new_span_id(tr, t->ctx.span_id);
    gw_trace_hex(t->ctx.trace_id, 16, t->trace_hex);
    gw_trace_hex(t->ctx.span_id, 8, t->span_hex);
    const char *ts = pass_header(job, "tracestate", &len);
    if (ts != NULL && gw_tracestate_ok(ts, len))
        t->tracestate = gw_arena_strndup(&job->arena, ts, len);
    uint64_t age_ns = uv_hrtime() - (uint64_t)job->t_start_ns;
    t->start_unix_ns = gw_trace_now_unix_ns() - age_ns;
    t->started = true;
    if (tp == NULL || t->has_parent)
        set_output_traceparent(job);
}

static void span_init(gw_job *job, gw_span *s, const char *name, gw_span_kind kind,
                      const uint8_t *id, const uint8_t *parent, uint64_t start_ns)
{
    memset(s, 0, sizeof *s);
    s->name = name;
    s->kind = kind;
    s->trace_id = job->trace.ctx.trace_id;
    s->span_id = id;
    s->parent_id = parent;
    s->start_unix_ns = start_ns;
    s->end_unix_ns = gw_trace_now_unix_ns();
}

static void request_attrs(gw_job *job, gw_span *s)
{
    const gw_request *r = &job->req;
    gw_span_str(s, "gen_ai.operation.name", "chat");
    gw_span_str(s, "gen_ai.request.model", r->model);
    if (r->max_tokens > 0)
        gw_span_int(s, "gen_ai.request.max_tokens", r->max_tokens);
    gw_span_dbl(s, "gen_ai.request.temperature", r->temperature);
}

/* The request span: intake to the broker's acknowledgements. */
static void end_request(gw_job *job)
{
    const gw_job_answer *a = &job->ans;
    gw_span s;
    span_init(job, &s, "modelgw.request", GW_SPAN_CONSUMER, job->trace.ctx.span_id,
              job->trace.has_parent ? job->trace.parent_id : NULL, job->trace.start_unix_ns);
    gw_span_str(&s, "messaging.system", "kafka");
    gw_span_str(&s, "messaging.operation.type", "process");
    gw_span_str(&s, "messaging.destination.name", job->w->tier_topics[job->in.tier]);
    if (job->in.part != NULL)
        gw_span_int(&s, "messaging.destination.partition.id", job->in.part->partition);
    gw_span_int(&s, "messaging.kafka.offset", job->in.offset);
    request_attrs(job, &s);
    if (a->dep != NULL && a->err == GW_OK) {
        gw_span_str(&s, "gen_ai.provider.name", gw_provider_kind_name(a->dep->provider));
        gw_span_str(&s, "gen_ai.response.model", a->dep->model);
        if (!a->cached) {
            gw_span_int(&s, "gen_ai.usage.input_tokens", a->usage.prompt_tokens);
            gw_span_int(&s, "gen_ai.usage.output_tokens", a->usage.completion_tokens);
        }
    }
    gw_span_str(&s, "modelgw.request_id", job->req.request_id);
    gw_span_str(&s, "modelgw.agent", job->req.agent_did);
    gw_span_str(&s, "modelgw.tier", gw_tier_name(job->in.tier));
    gw_span_str(&s, "modelgw.outcome", a->outcome ? a->outcome : "error");
    gw_span_str(&s, "modelgw.deployment", a->dep ? a->dep->id : NULL);
    gw_span_bool(&s, "modelgw.cached", a->cached);
    gw_span_int(&s, "modelgw.attempts",
                job->route.fo_ready ? gw_failover_attempts(&job->route.fo) : 0);
    if (a->err != GW_OK) {
        s.error = true;
        s.status_text = gw_err_name(a->err);
        gw_span_str(&s, "error.type", gw_err_code(a->err));
    }
    gw_tracer_end(tracer_of(job), &s);
}

/* CACHE's decision: hit (by tier), miss, or not looked up. */
static void end_cache(gw_job *job)
{
    gw_span s;
    uint8_t id[8];
    gw_tracer_new_span_id(tracer_of(job), id);
    span_init(job, &s, "modelgw.cache", GW_SPAN_INTERNAL, id, job->trace.ctx.span_id,
              job->trace.stage_start_ns);
    const char *result = job->ans.cached && job->ans.cache_tier != NULL ? "hit"
                         : job->cache.dec.lookup                        ? "miss"
                                                                        : "bypass";
    gw_span_str(&s, "modelgw.cache.result", result);
    gw_span_str(&s, "modelgw.cache.tier", job->ans.cached ? job->ans.cache_tier : NULL);
    if (job->cache.has_similarity)
        gw_span_dbl(&s, "modelgw.cache.similarity", job->cache.similarity);
    gw_span_bool(&s, "modelgw.cache.waited", job->cache.waited);
    gw_tracer_end(tracer_of(job), &s);
}

/* ADMIT's decision: the agent's rate limits and budget. */
static void end_admission(gw_job *job)
{
    gw_span s;
    uint8_t id[8];
    gw_tracer_new_span_id(tracer_of(job), id);
    span_init(job, &s, "modelgw.limits", GW_SPAN_INTERNAL, id, job->trace.ctx.span_id,
              job->trace.stage_start_ns);
    const char *o = job->ans.outcome;
    bool rate = o != NULL && strcmp(o, "rate_limited") == 0;
    bool budget = o != NULL && strcmp(o, "budget_exceeded") == 0;
    gw_span_str(&s, "modelgw.limit.result",
                rate                    ? "rate_limited"
                : budget                ? "budget_exceeded"
                : job->ans.err != GW_OK ? "error"
                                        : "allowed");
    if (rate || budget) {
        const char *limit = gw_map_get(&job->ans.err_details, "limit");
        const char *period = gw_map_get(&job->ans.err_details, "period");
        gw_span_str(&s, "modelgw.limit.name", budget ? (period ? period : "day") : limit);
    }
    if (job->adm.delayed_ms > 0)
        gw_span_int(&s, "modelgw.limit.delayed_ms", job->adm.delayed_ms);
    gw_span_int(&s, "modelgw.limit.reserved_tokens", job->adm.reserved_tokens);
    gw_tracer_end(tracer_of(job), &s);
}

void gw_job_trace_stage(gw_job *job, int from, int to)
{
    if (from == GW_STAGE_DECODE && !job->trace.started)
        start(job);
    if (!recording(job))
        return;
    if (from != to && (to == GW_STAGE_ADMIT || to == GW_STAGE_SEMANTIC))
        job->trace.stage_start_ns = gw_trace_now_unix_ns();
    if (from == GW_STAGE_ADMIT && to != GW_STAGE_ADMIT) {
        end_admission(job);
        if (job->ans.cached) /* the exact tier answered in the admission */
            end_cache(job);
    } else if (from == GW_STAGE_SEMANTIC) {
        end_cache(job);
    }
    if (to == GW_STAGE_DONE && !job->ans.dlq)
        end_request(job);
}

void gw_job_trace_attempt_begin(gw_job *job)
{
    gw_job_trace *t = &job->trace;
    if (!t->started)
        return;
    gw_tracer_new_span_id(tracer_of(job), t->attempt_id);
    gw_trace_ctx c = t->ctx;
    memcpy(c.span_id, t->attempt_id, 8);
    gw_traceparent_format(&c, t->attempt_tp);
    job->req.traceparent = t->attempt_tp;
    job->req.tracestate = t->tracestate;
    t->attempt_start_ns = gw_trace_now_unix_ns();
    t->attempt_open = true;
    t->attempt_no++;
}

/* One provider call: "chat <model>", a client span under the request's. */
void gw_job_trace_attempt_end(gw_job *job, const gw_provider_result *res)
{
    gw_job_trace *t = &job->trace;
    if (!t->attempt_open)
        return;
    t->attempt_open = false;
    if (!recording(job))
        return;
    const gw_deployment *d = job->ans.dep;
    char name[GW_TRACE_MAX_VALUE];
    snprintf(name, sizeof name, "chat %s", d && d->model ? d->model : "unknown");
    gw_span s;
    span_init(job, &s, name, GW_SPAN_CLIENT, t->attempt_id, t->ctx.span_id, t->attempt_start_ns);
    gw_span_str(&s, "gen_ai.operation.name", "chat");
    gw_span_str(&s, "gen_ai.provider.name", d ? gw_provider_kind_name(d->provider) : NULL);
    gw_span_str(&s, "gen_ai.request.model", d ? d->model : NULL);
    if (job->req.max_tokens > 0)
        gw_span_int(&s, "gen_ai.request.max_tokens", job->req.max_tokens);
    gw_span_dbl(&s, "gen_ai.request.temperature", job->req.temperature);
    if (res->err == GW_OK) {
        gw_span_str(&s, "gen_ai.response.model", d ? d->model : NULL);
        gw_span_int(&s, "gen_ai.usage.input_tokens", res->usage.prompt_tokens);
        gw_span_int(&s, "gen_ai.usage.output_tokens", res->usage.completion_tokens);
        gw_span_str(&s, "modelgw.finish_reason", res->finish_reason);
        gw_span_dbl(&s, "modelgw.ttft_ms", res->ttft_ms);
    } else {
        s.error = true;
        s.status_text = gw_err_name(res->err);
        gw_span_str(&s, "error.type", gw_err_code(res->err));
    }
    if (res->http_status > 0)
        gw_span_int(&s, "http.response.status_code", res->http_status);
    gw_span_str(&s, "modelgw.deployment", d ? d->id : NULL);
    gw_span_int(&s, "modelgw.attempt", t->attempt_no);
    gw_span_bool(&s, "modelgw.stream", job->req.stream);
    gw_tracer_end(tracer_of(job), &s);
}
