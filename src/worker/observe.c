/*
 * observe: usage accounting, metrics, /health, /ready, consumer lag and the
 * per-request log line; see observe.h and docs/observability.md.
 *
 * Gauges (in-flight, paused partitions, breaker states, Redis fallbacks) are
 * collected from their owners at scrape time, so nothing on the request path
 * keeps them up to date. Consumer lag comes from librdkafka's statistics
 * JSON: never from rd_kafka_query_watermark_offsets(), which blocks.
 */
#include "worker/observe.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/admin.h"
#include "common/log.h"
#include "common/redact.h"
#include "route/health.h"
#include "trace/trace.h"
#include "worker/worker_private.h"

enum {
    OBS_MAX_SERIES = 4096,
    OBS_STATS_MAX_BYTES = 4 << 20, /* ignore absurdly large statistics */
    OBS_DETAIL_LOG_BYTES = 512,
    OBS_KERR_MESSAGE_BYTES = 256,
};

struct gw_observe {
    gw_worker *w;
    gw_metrics *m;
    gw_admin *admin;
    gw_tracer *tracer; /* ids always; span export when trace.endpoint is set */
    int brokers_up;    /* brokers the consumer is connected to (last statistics); -1 unknown */
    /* The last consumer error of each tier topic and of the group (0: none). */
    struct obs_kerr {
        rd_kafka_resp_err_t err;
        char message[OBS_KERR_MESSAGE_BYTES];
        char at[32];
    } topic_err[GW_TIER__COUNT], group_err;
};

/* ---- gauges collected at scrape -------------------------------------------- */

static void collect_partitions(gw_observe *o)
{
    gw_worker *w = o->w;
    for (int t = 0; t < GW_TIER__COUNT; t++) {
        int paused = 0;
        const gw_part_table *tb = gw_consumer_parts(w->consumer, (gw_tier)t);
        for (int32_t i = 0; i < tb->count; i++) {
            const gw_part *p = tb->items[i];
            paused += p != NULL && p->assigned && p->paused;
        }
        gw_metric_set(o->m, GW_M_PAUSED_PARTITIONS, paused, gw_tier_name((gw_tier)t));
    }
}

static void collect_breakers(gw_observe *o)
{
    gw_routing *rt = o->w->routing;
    if (rt == NULL)
        return;
    gw_route_health hs[GW_REGISTRY_MAX];
    size_t n = gw_route_health_read(gw_routing_registry(rt), gw_routing_breaker(rt), NULL, NULL,
                                    NULL, hs, GW_REGISTRY_MAX);
    for (size_t i = 0; i < n && i < GW_REGISTRY_MAX; i++) {
        double v = hs[i].breaker.state == GW_BREAKER_OPEN        ? 2
                   : hs[i].breaker.state == GW_BREAKER_HALF_OPEN ? 1
                                                                 : 0;
        gw_metric_set(o->m, GW_M_BREAKER_STATE, v, hs[i].id);
        gw_metric_set(o->m, GW_M_CONCURRENCY_LIMIT, gw_routing_concurrency_limit(rt, i), hs[i].id);
    }
}

/* The failure policy's counters are cumulative: exported as counters. */
static void collect_fallbacks(gw_observe *o)
{
    if (o->w->state == NULL)
        return;
    gw_state_stats st;
    gw_state_get_stats(o->w->state, &st);
    gw_metric_set(o->m, GW_M_REDIS_FALLBACKS, (double)st.fallback_limits, "limits");
    gw_metric_set(o->m, GW_M_REDIS_FALLBACKS, (double)st.fallback_cache, "cache");
    gw_metric_set(o->m, GW_M_REDIS_FALLBACKS, (double)st.fallback_idem, "idempotency");
    gw_metric_set(o->m, GW_M_REDIS_FALLBACKS, (double)st.failed_closed, "failed_closed");
}

static void collect(gw_metrics *m, void *ud)
{
    gw_observe *o = ud;
    gw_metric_set(m, GW_M_IN_FLIGHT, o->w->job_count);
    if (gw_producer_transactional(o->w->prod)) {
        gw_metric_set(m, GW_M_TXN_ENDING, (double)gw_worker_txn_ending_ms(o->w) / 1000.0);
        gw_metric_set(m, GW_M_TXN_HELD, (double)gw_producer_held(o->w->prod, NULL));
    }
    collect_partitions(o);
    collect_breakers(o);
    collect_fallbacks(o);
}

/* ---- lifecycle -------------------------------------------------------------- */

gw_err gw_observe_new(gw_worker *w, gw_observe **out)
{
    gw_observe *o = calloc(1, sizeof *o);
    if (o == NULL)
        return GW_E_NOMEM;
    o->w = w;
    o->m = gw_metrics_new(OBS_MAX_SERIES);
    if (o->m == NULL) {
        free(o);
        return GW_E_NOMEM;
    }
    gw_metrics_set_collector(o->m, collect, o);
    const gw_trace_config *tc = &w->cfg->trace;
    gw_tracer_opts to = {.endpoint = tc->endpoint,
                         .service_name = tc->service_name,
                         .sample_ratio = tc->sample_ratio,
                         .batch_spans = tc->batch_spans,
                         .queue_spans = tc->queue_spans,
                         .flush_interval_ms = tc->flush_interval_ms,
                         .timeout_ms = tc->timeout_ms};
    if (gw_tracer_new(w->loop, &to, &o->tracer) != GW_OK) {
        gw_metrics_free(o->m);
        free(o);
        return GW_E_NOMEM;
    }
    *out = o;
    return GW_OK;
}

static bool health_cb(void *ud, char **json);
static bool ready_cb(void *ud, char **json);

gw_err gw_observe_start(gw_observe *o)
{
    gw_tracer_set_instance(o->tracer, o->w->worker_id);
    if (gw_tracer_start(o->tracer) != GW_OK)
        GW_ERROR("trace_export_start_failed", "endpoint", o->w->cfg->trace.endpoint);
    const gw_admin_config *a = &o->w->cfg->admin;
    gw_admin_handlers h = {.health = health_cb, .ready = ready_cb, .ud = o};
    gw_admin_opts opts = {.listen = a->listen,
                          .port = (uint16_t)a->port,
                          .token = a->token,
                          .max_connections = (unsigned)a->max_connections,
                          .connection_timeout_s = (unsigned)a->connection_timeout_s};
    o->brokers_up = -1;
    gw_err err = gw_admin_start(o->w->loop, &opts, o->m, &h, &o->admin);
    if (err != GW_OK) {
        char port[16];
        snprintf(port, sizeof port, "%d", (int)a->port);
        GW_ERROR("admin_start_failed", "listen", a->listen, "port", port, "error",
                 gw_err_name(err));
        return err;
    }
    if (o->admin != NULL) {
        char port[16];
        snprintf(port, sizeof port, "%u", (unsigned)gw_admin_port(o->admin));
        GW_INFO("admin_listening", "listen", a->listen, "port", port, "metrics_token",
                a->token != NULL && a->token[0] != '\0' ? "required" : "none");
    }
    return GW_OK;
}

void gw_observe_stop(gw_observe *o)
{
    if (o != NULL)
        gw_tracer_shutdown(o->tracer); /* sends what is queued */
    if (o == NULL || o->admin == NULL)
        return;
    gw_admin_stop(o->admin);
    o->admin = NULL;
}

void gw_observe_free(gw_observe *o)
{
    if (o == NULL)
        return;
    gw_observe_stop(o);
    gw_tracer_free(o->tracer);
    gw_metrics_free(o->m);
    free(o);
}

gw_metrics *gw_observe_metrics(gw_observe *o)
{
    return o->m;
}

gw_tracer *gw_observe_tracer(gw_observe *o)
{
    return o->tracer;
}

uint16_t gw_observe_admin_port(const gw_observe *o)
{
    return o != NULL ? gw_admin_port(o->admin) : 0;
}

/* ---- consumer lag from librdkafka statistics ---------------------------------- */

static void lag_of_topic(gw_observe *o, gw_tier t, json_t *parts)
{
    const char *key;
    json_t *pj;
    json_object_foreach(parts, key, pj)
    {
        char *end = NULL;
        long id = strtol(key, &end, 10);
        json_t *lag = json_object_get(pj, "consumer_lag");
        const gw_part_table *tb = gw_consumer_parts(o->w->consumer, t);
        if (end == key || *end != '\0' || id < 0 || id >= tb->count || !json_is_integer(lag) ||
            json_integer_value(lag) < 0)
            continue;
        const gw_part *p = tb->items[id];
        if (p == NULL || !p->assigned)
            continue;
        gw_metric_set(o->m, GW_M_CONSUMER_LAG, (double)json_integer_value(lag),
                      o->w->tier_topics[t], key);
    }
}

void gw_observe_kafka_stats(gw_observe *o, const char *json, size_t len)
{
    if (o == NULL || len > OBS_STATS_MAX_BYTES)
        return;
    gw_worker *w = o->w;
    json_t *root = json_loadb(json, len, 0, NULL);
    json_t *brokers = json_object_get(root, "brokers");
    if (json_is_object(brokers)) {
        /* Real brokers only (nodeid >= 0; the bootstrap and coordinator
         * entries are logical ones). */
        int up = 0;
        const char *name;
        json_t *b;
        json_object_foreach(brokers, name, b)
        {
            json_t *st = json_object_get(b, "state"), *id = json_object_get(b, "nodeid");
            up += json_is_string(st) && strcmp(json_string_value(st), "UP") == 0 &&
                  json_is_integer(id) && json_integer_value(id) >= 0;
        }
        o->brokers_up = up;
    }
    json_t *topics = json_object_get(root, "topics");
    if (json_is_object(topics)) {
        gw_metric_clear(o->m, GW_M_CONSUMER_LAG);
        for (int t = 0; t < GW_TIER__COUNT; t++) {
            json_t *parts =
                json_object_get(json_object_get(topics, w->tier_topics[t]), "partitions");
            if (json_is_object(parts))
                lag_of_topic(o, (gw_tier)t, parts);
        }
    }
    json_decref(root);
}

/* ---- reports outside the outcome ------------------------------------------------ */

void gw_observe_dlq(gw_observe *o, gw_err err)
{
    gw_metric_add(o->m, GW_M_DLQ, 1, gw_err_name(err));
}

void gw_observe_output_failure(gw_observe *o, const char *output, const char *error,
                               const char *action)
{
    if (o != NULL)
        gw_metric_add(o->m, GW_M_OUTPUT_FAILURES, 1, output, error, action);
}

static void iso8601_now(char *buf, size_t size);

static void kerr_set(struct obs_kerr *k, const rd_kafka_message_t *m)
{
    k->err = m->err;
    snprintf(k->message, sizeof k->message, "%s", rd_kafka_message_errstr(m));
    iso8601_now(k->at, sizeof k->at);
}

void gw_observe_consumer_ok(gw_observe *o, int tier)
{
    if (o == NULL || tier < 0 || tier >= GW_TIER__COUNT)
        return;
    o->topic_err[tier].err = RD_KAFKA_RESP_ERR_NO_ERROR;
    o->group_err.err = RD_KAFKA_RESP_ERR_NO_ERROR;
}

void gw_observe_consumer_error(gw_observe *o, const rd_kafka_message_t *m)
{
    if (o == NULL || m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    gw_metric_add(o->m, GW_M_CONSUMER_ERRORS, 1, rd_kafka_err2name(m->err));
    if (m->err == RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED) {
        kerr_set(&o->group_err, m);
        return;
    }
    const char *topic = m->rkt != NULL ? rd_kafka_topic_name(m->rkt) : NULL;
    for (int t = 0; topic != NULL && t < GW_TIER__COUNT; t++)
        if (strcmp(topic, o->w->tier_topics[t]) == 0)
            kerr_set(&o->topic_err[t], m);
}

void gw_observe_chunk(gw_observe *o)
{
    gw_metric_add(o->m, GW_M_CHUNKS, 1);
}

void gw_observe_cache_store(gw_observe *o, const char *tier)
{
    gw_metric_add(o->m, GW_M_CACHE, 1, tier, "store");
}

void gw_observe_kept_usage_corrupt(gw_observe *o, const char *reason)
{
    gw_metric_add(o->m, GW_M_KEPT_USAGE_CORRUPT, 1, reason);
}

/* ---- usage events ------------------------------------------------------------- */

double gw_observe_cost_usd(const gw_deployment *d, const gw_token_usage *usage)
{
    if (d == NULL || usage == NULL)
        return 0;
    double in = usage->prompt_tokens > 0 ? usage->prompt_tokens : 0;
    double out = usage->completion_tokens > 0 ? usage->completion_tokens : 0;
    return in * d->price_in_usd_per_mtok / 1e6 + out * d->price_out_usd_per_mtok / 1e6;
}

static const char *registry_id(gw_worker *w, size_t idx)
{
    const gw_deployment *d =
        w->routing ? gw_registry_get(gw_routing_registry(w->routing), idx) : NULL;
    return d != NULL ? d->id : "unknown";
}

/* Provider calls, retries and failovers from the failover log of the job. */
static void attempt_metrics(gw_observe *o, const gw_job *job)
{
    if (!job->route.fo_ready)
        return;
    const gw_failover *fo = &job->route.fo;
    for (size_t i = 0; i < fo->log_count && i < GW_FAILOVER_MAX_ATTEMPTS; i++) {
        const char *id = registry_id(o->w, fo->log[i].idx);
        gw_metric_add(o->m, GW_M_PROVIDER_CALLS, 1, id, gw_err_code(fo->log[i].err));
        if (i == 0)
            continue;
        if (fo->log[i].idx == fo->log[i - 1].idx)
            gw_metric_add(o->m, GW_M_RETRIES, 1, id);
        else
            gw_metric_add(o->m, GW_M_FAILOVERS, 1, registry_id(o->w, fo->log[i - 1].idx));
    }
}

/* Hits by the answering tier; a miss for each tier a cacheable request went
 * through without an answer. */
static void cache_metrics(gw_observe *o, const gw_job *job, const gw_usage_event *u)
{
    if (job->ans.duplicate)
        return;
    if (u->cached && u->cache_tier != NULL) {
        gw_metric_add(o->m, GW_M_CACHE, 1, u->cache_tier, "hit");
        if (strcmp(u->cache_tier, "semantic") == 0)
            gw_metric_add(o->m, GW_M_CACHE, 1, "exact", "miss");
        return;
    }
    if (!job->cache.dec.lookup || job->cache.dec.refresh)
        return;
    gw_metric_add(o->m, GW_M_CACHE, 1, "exact", "miss");
    if (job->cache.semq != NULL)
        gw_metric_add(o->m, GW_M_CACHE, 1, "semantic", "miss");
}

/* The limit that denied a rate_limited or budget_exceeded request: agent_rpm,
 * agent_tpm, deploy_rpm, deploy_tpm, budget_day, budget_month; NULL otherwise. */
static const char *denied_by(const gw_job *job, const gw_usage_event *u)
{
    bool budget = strcmp(u->outcome, "budget_exceeded") == 0;
    if (!budget && strcmp(u->outcome, "rate_limited") != 0)
        return NULL;
    if (job->route.limit_name != NULL)
        return job->route.limit_name;
    const char *limit = gw_map_get(&job->ans.err_details, "limit");
    const char *period = gw_map_get(&job->ans.err_details, "period");
    if (budget)
        return period && strcmp(period, "month") == 0 ? "budget_month" : "budget_day";
    return limit ? limit : "unknown";
}

static void outcome_metrics(gw_observe *o, const gw_job *job, const gw_usage_event *u)
{
    const char *model = u->model_id ? u->model_id : "none";
    gw_metric_add(o->m, GW_M_REQUESTS, 1, u->outcome, gw_tier_name(job->in.tier));
    attempt_metrics(o, job);
    cache_metrics(o, job, u);
    const char *limit = denied_by(job, u);
    if (limit != NULL)
        gw_metric_add(o->m, GW_M_RATE_LIMITED, 1, limit);
    gw_metric_observe(o->m, GW_M_REQUEST_DURATION, u->latency_ms / 1e3, model);
    if (u->has_ttft)
        gw_metric_observe(o->m, GW_M_TTFT, u->ttft_ms / 1e3, model);
    if (u->cached || u->model_id == NULL)
        return; /* no provider tokens were spent */
    if (u->prompt_tokens > 0)
        gw_metric_add(o->m, GW_M_TOKENS, u->prompt_tokens, model, "prompt");
    if (u->completion_tokens > 0)
        gw_metric_add(o->m, GW_M_TOKENS, u->completion_tokens, model, "completion");
    if (u->cost_usd > 0)
        gw_metric_add(o->m, GW_M_COST, u->cost_usd, model);
}

/* "obs-a:E4207:401,obs-b:OK:200": the attempts of the failover log. */
static void attempts_text(gw_worker *w, const gw_job *job, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0;
         job->route.fo_ready && i < job->route.fo.log_count && i < GW_FAILOVER_MAX_ATTEMPTS; i++) {
        const gw_attempt *a = &job->route.fo.log[i];
        int n = snprintf(buf + len, cap - len, "%s%s:%s:%d", i ? "," : "", registry_id(w, a->idx),
                         gw_err_code(a->err), a->http_status);
        if (n < 0 || (size_t)n >= cap - len) {
            buf[len] = '\0';
            return;
        }
        len += (size_t)n;
    }
}

/* The per-request line: debug for answers, info for caller and policy
 * outcomes, warn for failures. Content only with log.debug_content. */
static void outcome_log(gw_job *job, const gw_usage_event *u)
{
    gw_log_level level = GW_LOG_DEBUG;
    if (strcmp(u->outcome, "error") == 0)
        level = GW_LOG_WARN;
    else if (strcmp(u->outcome, "invalid") == 0 || strcmp(u->outcome, "expired") == 0 ||
             strcmp(u->outcome, "rate_limited") == 0 || strcmp(u->outcome, "budget_exceeded") == 0)
        level = GW_LOG_INFO;
    if (level < gw_log_get_level())
        return;
    char lat[32], tok[64], cost[32], att[16];
    snprintf(lat, sizeof lat, "%.3f", u->latency_ms);
    snprintf(tok, sizeof tok, "%" PRId32 "/%" PRId32, u->prompt_tokens, u->completion_tokens);
    snprintf(cost, sizeof cost, "%.9f", u->cost_usd);
    snprintf(att, sizeof att, "%" PRId32, u->attempts);
    char detail[OBS_DETAIL_LOG_BYTES] = "", tries[256];
    attempts_text(job->w, job, tries, sizeof tries);
    if (job->ans.err_detail != NULL)
        gw_redact(job->ans.err_detail, strlen(job->ans.err_detail),
                  job->ans.dep ? job->ans.dep->api_key : NULL, detail, sizeof detail);
    const char *prompt = NULL;
    if (gw_log_debug_content() && job->req.message_count > 0)
        prompt = job->req.messages[job->req.message_count - 1].content;
    gw_log(level, "request_done", "request_id", u->request_id, "trace_id",
           job->trace.started ? job->trace.trace_hex : NULL, "span_id",
           job->trace.started ? job->trace.span_hex : NULL, "agent", u->agent_did, "tenant",
           u->tenant_id, "model", u->model_id, "outcome", u->outcome, "tier", u->priority,
           "error_code", u->error_code, "error",
           job->ans.err == GW_OK ? NULL : gw_err_name(job->ans.err), "field", job->ans.err_field,
           "detail", detail[0] ? detail : NULL, "latency_ms", lat, "tokens", tok, "cost_usd", cost,
           "attempts", att, "attempt_log", tries[0] ? tries : NULL, "prompt", prompt, "completion",
           gw_log_debug_content() ? job->ans.content : NULL, (const char *)0);
}

void gw_observe_outcome(gw_job *job, const gw_usage_event *u)
{
    outcome_metrics(job->w->obs, job, u);
    outcome_log(job, u);
}

/* ---- /health and /ready -------------------------------------------------------- */

static void iso8601_now(char *buf, size_t cap)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static uint32_t assigned_count(const gw_worker *w, gw_tier t)
{
    uint32_t n = 0;
    const gw_part_table *tb = gw_consumer_parts(w->consumer, t);
    for (int32_t i = 0; i < tb->count; i++)
        n += tb->items[i] != NULL && tb->items[i]->assigned;
    return n;
}

static json_t *kafka_json(gw_worker *w)
{
    json_t *k = json_object();
    json_t *assigned = json_object();
    uint32_t total = 0;
    for (int t = 0; t < GW_TIER__COUNT; t++) {
        uint32_t n = assigned_count(w, (gw_tier)t);
        total += n;
        json_object_set_new(assigned, gw_tier_name((gw_tier)t), json_integer(n));
    }
    static const char *const run_names[] = {"starting", "running", "draining", "stopped"};
    json_object_set_new(k, "assigned_partitions", assigned);
    json_object_set_new(k, "assigned_total", json_integer(total));
    json_object_set_new(k, "run_state", json_string(run_names[w->run]));
    return k;
}

static uint64_t locally_queued(gw_worker *w)
{
    uint64_t n = 0;
    for (int t = 0; t < GW_TIER__COUNT; t++) {
        rd_kafka_queue_t *q = gw_consumer_tier_queue(w->consumer, (gw_tier)t);
        if (q != NULL)
            n += rd_kafka_queue_length(q);
    }
    return n;
}

/* Per deployment: routing's view (breaker, error rate, latency, in-flight);
 * *unavailable counts deployments that cannot take a call now. */
static json_t *providers_json(gw_observe *o, int *unavailable, int *count)
{
    gw_routing *rt = o->w->routing;
    json_t *p = json_object();
    *unavailable = 0;
    *count = 0;
    if (rt == NULL || p == NULL)
        return p;
    gw_route_health hs[GW_REGISTRY_MAX];
    size_t n = gw_route_health_read(gw_routing_registry(rt), gw_routing_breaker(rt),
                                    gw_routing_latency(rt), NULL, NULL, hs, GW_REGISTRY_MAX);
    for (size_t i = 0; i < n && i < GW_REGISTRY_MAX; i++) {
        const gw_route_health *h = &hs[i];
        bool up = strcmp(h->status, "up") == 0 || strcmp(h->status, "degraded") == 0;
        *unavailable += !up;
        json_object_set_new(
            p, h->id,
            json_pack("{s:s, s:s, s:s, s:s, s:f, s:i, s:i, s:f, s:f, s:I, s:i}", "status",
                      h->status, "provider", h->provider, "model", h->model ? h->model : "",
                      "breaker_state", gw_breaker_state_name(h->breaker.state), "error_rate",
                      h->breaker.error_rate, "window_calls", h->breaker.window_calls, "open_count",
                      h->breaker.open_count, "latency_ms", h->latency.total_ms, "ttft_ms",
                      h->latency.ttft_ms, "open_remaining_ms",
                      (json_int_t)h->breaker.open_remaining_ms, "concurrency_limit",
                      gw_routing_concurrency_limit(rt, i)));
    }
    *count = (int)n;
    return p;
}

static bool redis_connected(const gw_worker *w)
{
    return w->redis == NULL || gw_redis_is_connected(w->redis);
}

static uint32_t assigned_total(const gw_worker *w)
{
    uint32_t n = 0;
    for (int t = 0; t < GW_TIER__COUNT; t++)
        n += assigned_count(w, (gw_tier)t);
    return n;
}

static json_t *kerr_json(const struct obs_kerr *k)
{
    return json_pack("{s:s, s:s, s:s}", "error", rd_kafka_err2name(k->err), "message", k->message,
                     "at", k->at);
}

/* Consumer errors still in force: a request topic's last error until a
 * message is taken from it or its partitions are assigned anew (a topic
 * that could not be described is not assigned; one that could but cannot be
 * fetched is assigned and yields nothing), the group's refusal until an
 * assignment. Both are also in the log (consumer_error) and in
 * modelgw_consumer_errors_total. */
static void kafka_errors_json(gw_observe *o, json_t *k)
{
    gw_worker *w = o->w;
    json_t *topics = json_object();
    for (int t = 0; t < GW_TIER__COUNT; t++)
        if (o->topic_err[t].err != RD_KAFKA_RESP_ERR_NO_ERROR)
            json_object_set_new(topics, w->tier_topics[t], kerr_json(&o->topic_err[t]));
    json_object_set_new(k, "topic_errors", topics);
    if (o->group_err.err != RD_KAFKA_RESP_ERR_NO_ERROR)
        json_object_set_new(k, "group_error", kerr_json(&o->group_err));
}

/*
 * Readiness: can this worker take work from Kafka now? Each reason it cannot
 * is named (not running, consumer being replaced, no broker connected,
 * Redis required and down, no partitions). Providers are not part of it:
 * a worker whose deployments are all down still answers every request (with
 * an error) and moves its offsets on.
 */
static json_t *not_ready_reasons(gw_observe *o)
{
    gw_worker *w = o->w;
    json_t *r = json_array();
    if (w->run != GW_RUN_RUNNING)
        json_array_append_new(r, json_string("not running"));
    if (w->consumer_reset != 0)
        json_array_append_new(r, json_string("consumer being replaced"));
    if (o->brokers_up == 0)
        json_array_append_new(r, json_string("no Kafka broker connected"));
    if (gw_consumer_auth_failed(w->consumer))
        json_array_append_new(r, json_string("Kafka authentication failed"));
    if (!redis_connected(w))
        json_array_append_new(r, json_string("Redis unreachable"));
    if (assigned_total(w) == 0)
        json_array_append_new(r, json_string("no partitions assigned"));
    if (o->group_err.err != RD_KAFKA_RESP_ERR_NO_ERROR)
        json_array_append_new(r, json_string("not authorised to join the consumer group"));
    if (gw_worker_txn_ending_ms(w) >= GW_OBSERVE_TXN_STUCK_MS)
        json_array_append_new(r, json_string("transaction commit waiting for Kafka"));
    return r;
}

/* kafka.transactional in /health: the counters, and the end under way
 * (commit_in_progress, commit_phase flush or commit, commit_ms so far,
 * held_outputs waiting for it). */
static json_t *txn_json(gw_worker *w)
{
    static const char *const phases[] = {
        [GW_TXN_IDLE] = "none", [GW_TXN_FLUSHING] = "flush", [GW_TXN_COMMITTING] = "commit"};
    return json_pack("{s:I, s:I, s:I, s:i, s:b, s:s, s:I, s:I}", "commits",
                     (json_int_t)w->n.txn_commits, "aborts", (json_int_t)w->n.txn_aborts,
                     "muted_outputs", (json_int_t)w->n.txn_muted, "held", (int)w->held_count,
                     "commit_in_progress", w->txn_phase != GW_TXN_IDLE, "commit_phase",
                     phases[w->txn_phase], "commit_ms", (json_int_t)gw_worker_txn_ending_ms(w),
                     "held_outputs", (json_int_t)gw_producer_held(w->prod, NULL));
}

/*
 * /health is liveness: 200 while the process can work (its loop answers
 * this, it is starting, running or draining), 503 only once it stopped.
 * Dependencies (Redis, Kafka, the providers) show in the body and in /ready,
 * never here: a liveness probe must not restart a worker that only waits for
 * Redis or a broker to come back. The body's gateway word is the seed's
 * health_check(): unhealthy when Redis (required) is down or no deployment
 * can take a call, degraded when some cannot, else healthy.
 */
static bool health_cb(void *ud, char **out)
{
    gw_observe *o = ud;
    gw_worker *w = o->w;
    int unavailable = 0, count = 0;
    json_t *providers = providers_json(o, &unavailable, &count);
    bool redis_ok = redis_connected(w);
    bool all_down = count > 0 && unavailable == count;
    bool live = w->run != GW_RUN_DONE && !w->fatal;
    const char *status = !live || !redis_ok || all_down ? "unhealthy"
                         : unavailable > 0              ? "degraded"
                                                        : "healthy";
    json_t *reasons = not_ready_reasons(o);
    bool ready = json_array_size(reasons) == 0;
    char ts[32];
    iso8601_now(ts, sizeof ts);
    uint64_t queued = locally_queued(w);
    json_t *k = kafka_json(w);
    json_object_set_new(k, "brokers_up", json_integer(o->brokers_up));
    json_object_set_new(k, "consumer_resets", json_integer((json_int_t)w->n.consumer_resets));
    kafka_errors_json(o, k);
    if (gw_producer_transactional(w->prod))
        json_object_set_new(k, "transactions", txn_json(w));
    json_t *root = json_pack(
        "{s:s, s:s, s:b, s:b, s:o, s:s, s:{s:i}, s:{s:I, s:s}, s:{s:I, s:I, s:I}, s:o, s:o, "
        "s:{s:s, s:b}}",
        "gateway", status, "status", status, "live", live, "ready", ready, "not_ready", reasons,
        "timestamp", ts, "registry", "total_models", (int)w->cfg->deployment_count, "cache",
        "entries", (json_int_t)gw_metric_get(o->m, GW_M_CACHE, "exact", "store"), "entries_source",
        "exact-tier answers stored by this worker since it started", "queue", "pending_requests",
        (json_int_t)(w->job_count + queued), "in_flight", (json_int_t)w->job_count,
        "locally_queued", (json_int_t)queued, "providers", providers ? providers : json_object(),
        "kafka", k, "redis", "backend", w->redis != NULL ? "redis" : "memory", "connected",
        redis_ok);
    *out = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return live;
}

static bool ready_cb(void *ud, char **out)
{
    gw_observe *o = ud;
    json_t *reasons = not_ready_reasons(o);
    bool ready = json_array_size(reasons) == 0;
    json_t *root = json_pack("{s:b, s:o, s:I}", "ready", ready, "not_ready", reasons,
                             "assigned_partitions", (json_int_t)assigned_total(o->w));
    *out = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return ready;
}
