/*
 * schemareg: the Confluent Schema Registry client; see schemareg.h.
 *
 * Entries live in one array of max_entries slots (never moved), each an id
 * in one of three states: FETCHING (waiters wait; a GET is in flight or a
 * retry is due), READY (a resolver) or FAILED (an error until until_ms).
 * One timer, running only while something waits, gives up on waiters past
 * their time and starts due retries.
 */
#include "schemareg/schemareg.h"

#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "loop/http_client.h"

enum {
    TICK_MS = 50,
    BACKOFF_FIRST_MS = 100,
    BACKOFF_MAX_MS = 2000,
    WHY_BYTES = 256,
};

typedef enum { E_FREE, E_FETCHING, E_READY, E_FAILED } estate;

typedef struct entry entry;

struct gw_schemareg_wait {
    gw_schemareg_wait *next, *prev;
    entry *e;
    int64_t give_up_ms;
    gw_schemareg_cb cb;
    void *ud;
};

struct entry {
    gw_schemareg *owner;
    uint32_t id;
    estate st;
    uint64_t used; /* LRU stamp */
    gw_resolver *res;
    gw_err err;
    char why[WHY_BYTES];
    int64_t until_ms; /* FAILED: forgotten after this */
    gw_schemareg_wait *waiters;
    gw_http_req *req;
    int attempt;
    int64_t retry_at_ms;
};

struct gw_schemareg {
    uv_loop_t *loop;
    char *url, *reader, *auth;
    int32_t timeout_ms, max_wait_ms, negative_ttl_ms;
    size_t max_entries;
    gw_http *http;
    gw_http_transport tls; /* owned copies of the strings; NULL where not set */
    entry *entries;
    uint64_t clock;
    size_t nwaiters;
    uv_timer_t *timer; /* heap: closed asynchronously */
    bool ticking;
    gw_schemareg_stats st;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void base64(const unsigned char *in, size_t n, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = t[(v >> 18) & 63];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? t[v & 63] : '=';
    }
    out[o] = '\0';
}

/* ---- waiters ------------------------------------------------------------------------ */

static void unlink_waiter(gw_schemareg_wait *w)
{
    entry *e = w->e;
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        e->waiters = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    e->owner->nwaiters--;
}

/* Calls back the first waiter, after taking it off the list. */
static void answer_first(entry *e, gw_err err, const gw_resolver *res, const char *why)
{
    gw_schemareg_wait *w = e->waiters;
    unlink_waiter(w);
    gw_schemareg_cb cb = w->cb;
    void *ud = w->ud;
    free(w);
    cb(ud, err, res, why);
}

static void answer_all(entry *e)
{
    while (e->waiters != NULL)
        answer_first(e, e->st == E_READY ? GW_OK : e->err, e->res,
                     e->st == E_READY ? NULL : e->why);
}

void gw_schemareg_cancel(gw_schemareg_wait *w)
{
    if (w == NULL)
        return;
    unlink_waiter(w);
    free(w);
}

/* ---- the fetch ---------------------------------------------------------------------- */

static void start_tick(gw_schemareg *r);
static void start_fetch(entry *e);

static void set_failed(entry *e, gw_err err, int64_t ttl_ms)
{
    e->st = E_FAILED;
    e->err = err;
    e->until_ms = now_ms() + ttl_ms;
    e->owner->st.fetch_failures++;
    char id[16];
    snprintf(id, sizeof id, "%" PRIu32, e->id);
    GW_WARN("schema_registry_failed", "schema_id", id, "error", gw_err_name(err), "why", e->why);
}

/* A 200 answer: {"schema": "...", "schemaType": "AVRO", "references": [...]}. */
static void take_schema(entry *e, const char *body, size_t len)
{
    gw_schemareg *r = e->owner;
    json_t *j = json_loadb(body, len, 0, NULL);
    const char *schema = json_string_value(json_object_get(j, "schema"));
    const char *type = json_string_value(json_object_get(j, "schemaType"));
    json_t *refs = json_object_get(j, "references");
    if (schema == NULL) {
        snprintf(e->why, sizeof e->why, "the registry's answer for id %" PRIu32 " has no schema",
                 e->id);
        set_failed(e, GW_E_CODEC_REGISTRY, r->negative_ttl_ms);
    } else if (type != NULL && strcmp(type, "AVRO") != 0) {
        snprintf(e->why, sizeof e->why, "schema id %" PRIu32 " is %.32s, not Avro", e->id, type);
        set_failed(e, GW_E_CODEC_INCOMPATIBLE, r->negative_ttl_ms);
    } else if (json_is_array(refs) && json_array_size(refs) > 0) {
        snprintf(e->why, sizeof e->why, "schema id %" PRIu32 " uses schema references", e->id);
        set_failed(e, GW_E_CODEC_INCOMPATIBLE, r->negative_ttl_ms);
    } else {
        gw_err err = gw_resolver_new(schema, strlen(schema), r->reader, strlen(r->reader), e->why,
                                     sizeof e->why, &e->res);
        if (err == GW_OK) {
            e->st = E_READY;
            char id[16];
            snprintf(id, sizeof id, "%" PRIu32, e->id);
            GW_INFO("schema_registry_resolved", "schema_id", id);
        } else {
            set_failed(e, err == GW_E_NOMEM ? GW_E_CODEC_REGISTRY : GW_E_CODEC_INCOMPATIBLE,
                       r->negative_ttl_ms);
        }
    }
    json_decref(j);
}

/* Not answered: try again later (the tick starts it) while anyone waits. */
static void retry_later(entry *e, const char *why)
{
    snprintf(e->why, sizeof e->why, "%s", why);
    int64_t backoff = BACKOFF_FIRST_MS;
    for (int i = 0; i < e->attempt && backoff < BACKOFF_MAX_MS; i++)
        backoff *= 2;
    e->attempt++;
    e->retry_at_ms = now_ms() + (backoff < BACKOFF_MAX_MS ? backoff : BACKOFF_MAX_MS);
    start_tick(e->owner);
}

static void on_fetch_done(void *ud, const gw_http_result *res)
{
    entry *e = ud;
    gw_schemareg *r = e->owner;
    e->req = NULL;
    char why[WHY_BYTES];
    if (res->err == GW_OK && res->status == 200) {
        take_schema(e, res->body, res->body_len);
    } else if (res->err == GW_OK && res->status == 404) {
        snprintf(e->why, sizeof e->why, "the registry does not know schema id %" PRIu32, e->id);
        set_failed(e, GW_E_CODEC_UNKNOWN_SCHEMA, r->negative_ttl_ms);
    } else if (res->err == GW_OK && (res->status == 401 || res->status == 403)) {
        snprintf(e->why, sizeof e->why, "the registry refused the credentials (HTTP %d)",
                 res->status);
        set_failed(e, GW_E_CODEC_REGISTRY, r->negative_ttl_ms);
    } else {
        if (res->err != GW_OK)
            snprintf(why, sizeof why, "registry unreachable: %s (%.160s)", gw_err_name(res->err),
                     res->transport_detail ? res->transport_detail : "no detail");
        else
            snprintf(why, sizeof why, "registry answered HTTP %d", res->status);
        retry_later(e, why);
        return;
    }
    answer_all(e);
}

/* The Authorization header into buf (bytes), added to o when credentials are set. */
static void add_auth(const gw_schemareg *r, gw_http_opts *o, char *buf, size_t bytes)
{
    if (r->auth == NULL)
        return;
    snprintf(buf, bytes, "Authorization: Basic %s", r->auth);
    o->headers[o->header_count++] = buf;
}

static void start_fetch(entry *e)
{
    gw_schemareg *r = e->owner;
    char url[1024], auth[600];
    snprintf(url, sizeof url, "%s/schemas/ids/%" PRIu32, r->url, e->id);
    gw_http_opts o = {.url = url,
                      .transport = &r->tls,
                      .headers = {"Accept: application/vnd.schemaregistry.v1+json, "
                                  "application/json"},
                      .header_count = 1,
                      .connect_timeout_ms = r->timeout_ms,
                      .total_timeout_ms = r->timeout_ms,
                      .max_body_bytes = GW_RESOLVE_MAX_SCHEMA_BYTES + 64 * 1024};
    add_auth(r, &o, auth, sizeof auth);
    gw_http_cbs cbs = {.on_done = on_fetch_done};
    r->st.fetches++;
    gw_err err = gw_http_start(r->http, &o, &cbs, e, &e->req);
    memset(auth, 0, sizeof auth); /* curl copied it */
    if (err != GW_OK) {
        e->req = NULL;
        retry_later(e, gw_err_name(err));
    }
}

/* ---- the tick ------------------------------------------------------------------------- */

static void give_up_late(entry *e, int64_t now)
{
    gw_schemareg_wait *w = e->waiters;
    while (w != NULL) {
        gw_schemareg_wait *next = w->next;
        if (w->give_up_ms <= now) {
            char why[WHY_BYTES + 64];
            snprintf(why, sizeof why, "no schema for id %" PRIu32 " in time (%s)", e->id,
                     e->why[0] ? e->why : "no answer yet");
            e->owner->st.waiters_timed_out++;
            unlink_waiter(w);
            gw_schemareg_cb cb = w->cb;
            void *ud = w->ud;
            free(w);
            cb(ud, GW_E_CODEC_REGISTRY, NULL, why);
            next = e->waiters; /* the callback may have changed the list */
        }
        w = next;
    }
}

static void on_tick(uv_timer_t *t)
{
    gw_schemareg *r = t->data;
    int64_t now = now_ms();
    bool busy = false;
    for (size_t i = 0; i < r->max_entries; i++) {
        entry *e = &r->entries[i];
        if (e->st != E_FETCHING)
            continue;
        give_up_late(e, now);
        if (e->st != E_FETCHING)
            continue;
        if (e->waiters == NULL && e->req == NULL) {
            e->st = E_FREE; /* nobody waits: ask again when someone does */
            continue;
        }
        if (e->req == NULL && now >= e->retry_at_ms)
            start_fetch(e);
        busy = busy || e->waiters != NULL || e->req == NULL;
    }
    if (!busy) {
        uv_timer_stop(t);
        r->ticking = false;
    }
}

static void start_tick(gw_schemareg *r)
{
    if (r->ticking)
        return;
    r->ticking = true;
    uv_timer_start(r->timer, on_tick, TICK_MS, TICK_MS);
}

/* ---- lookups --------------------------------------------------------------------------- */

static entry *find(gw_schemareg *r, uint32_t id)
{
    for (size_t i = 0; i < r->max_entries; i++)
        if (r->entries[i].st != E_FREE && r->entries[i].id == id)
            return &r->entries[i];
    return NULL;
}

/* A free slot, else the least recently used READY or FAILED one; NULL when
 * every slot is a fetch in progress. */
static entry *slot(gw_schemareg *r)
{
    entry *best = NULL;
    for (size_t i = 0; i < r->max_entries; i++) {
        entry *e = &r->entries[i];
        if (e->st == E_FREE)
            return e;
        if (e->st != E_FETCHING && (best == NULL || e->used < best->used))
            best = e;
    }
    if (best != NULL) {
        gw_resolver_free(best->res);
        best->res = NULL;
        best->st = E_FREE;
    }
    return best;
}

bool gw_schemareg_lookup(gw_schemareg *r, uint32_t id, int64_t give_up_ms, gw_schemareg_cb cb,
                         void *ud, gw_err *err, const gw_resolver **res, const char **why,
                         gw_schemareg_wait **wait)
{
    int64_t now = now_ms();
    entry *e = find(r, id);
    if (e != NULL && e->st == E_FAILED && now >= e->until_ms)
        e->st = E_FREE, e = NULL;
    *res = NULL;
    *why = NULL;
    *wait = NULL;
    if (e != NULL && e->st != E_FETCHING) {
        e->used = ++r->clock;
        r->st.hits++;
        *err = e->st == E_READY ? GW_OK : e->err;
        *res = e->res;
        *why = e->st == E_READY ? NULL : e->why;
        return true;
    }
    r->st.misses++;
    if (r->nwaiters >= GW_SCHEMAREG_MAX_WAITERS || (e == NULL && (e = slot(r)) == NULL)) {
        *err = GW_E_CODEC_REGISTRY;
        *why = "too many schema lookups waiting";
        return true;
    }
    gw_schemareg_wait *w = calloc(1, sizeof *w);
    if (w == NULL) {
        *err = GW_E_CODEC_REGISTRY;
        *why = "out of memory";
        return true;
    }
    if (e->st == E_FREE) {
        *e = (entry){.owner = r, .id = id, .st = E_FETCHING};
        start_fetch(e);
    }
    e->used = ++r->clock;
    int64_t cap = now + r->max_wait_ms;
    *w = (gw_schemareg_wait){.next = e->waiters,
                             .e = e,
                             .give_up_ms = give_up_ms > 0 && give_up_ms < cap ? give_up_ms : cap,
                             .cb = cb,
                             .ud = ud};
    if (e->waiters != NULL)
        e->waiters->prev = w;
    e->waiters = w;
    r->nwaiters++;
    start_tick(r);
    *wait = w;
    return false;
}

/* ---- life -------------------------------------------------------------------------------- */

/* A string option: a copy, or NULL when unset or empty. */
static gw_err copy_opt(const char **dst, const char *src)
{
    *dst = NULL;
    if (src == NULL || src[0] == '\0')
        return GW_OK;
    *dst = strdup(src);
    return *dst != NULL ? GW_OK : GW_E_NOMEM;
}

static gw_err copy_tls(gw_http_transport *dst, const gw_http_transport *src)
{
    *dst = (gw_http_transport){.http1_only = src->http1_only, .no_verify = src->no_verify};
    gw_err err = copy_opt(&dst->ca_file, src->ca_file);
    if (err == GW_OK)
        err = copy_opt(&dst->cert_file, src->cert_file);
    if (err == GW_OK)
        err = copy_opt(&dst->key_file, src->key_file);
    if (err == GW_OK)
        err = copy_opt(&dst->key_password, src->key_password);
    return err;
}

static void free_tls(gw_http_transport *t)
{
    if (t->key_password != NULL)
        memset((char *)t->key_password, 0, strlen(t->key_password));
    free((char *)t->ca_file);
    free((char *)t->cert_file);
    free((char *)t->key_file);
    free((char *)t->key_password);
    *t = (gw_http_transport){0};
}

gw_err gw_schemareg_new(uv_loop_t *loop, const gw_schemareg_opts *o, gw_schemareg **out)
{
    if (o->url == NULL || o->url[0] == '\0' || o->reader_json == NULL)
        return GW_E_CONFIG;
    gw_schemareg *r = calloc(1, sizeof *r);
    if (r == NULL)
        return GW_E_NOMEM;
    r->loop = loop;
    r->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 5000;
    r->max_wait_ms = o->max_wait_ms > 0 ? o->max_wait_ms : 10000;
    r->negative_ttl_ms = o->negative_ttl_ms > 0 ? o->negative_ttl_ms : 30000;
    r->max_entries = o->max_entries > 0 ? o->max_entries : 256;
    r->url = strdup(o->url);
    r->reader = strdup(o->reader_json);
    r->entries = calloc(r->max_entries, sizeof *r->entries);
    r->timer = malloc(sizeof *r->timer);
    gw_err err = r->url && r->reader && r->entries && r->timer ? GW_OK : GW_E_NOMEM;
    size_t n = strlen(r->url);
    while (err == GW_OK && n > 0 && r->url[n - 1] == '/')
        r->url[--n] = '\0';
    if (err == GW_OK && o->username != NULL && o->username[0] != '\0') {
        char plain[512];
        int len =
            snprintf(plain, sizeof plain, "%s:%s", o->username, o->password ? o->password : "");
        if (len < 0 || (size_t)len >= sizeof plain ||
            (r->auth = malloc(4 * (size_t)len / 3 + 8)) == NULL)
            err = len < 0 || (size_t)len >= sizeof plain ? GW_E_CONFIG : GW_E_NOMEM;
        else
            base64((const unsigned char *)plain, (size_t)len, r->auth);
        memset(plain, 0, sizeof plain);
    }
    if (err == GW_OK)
        err = copy_tls(&r->tls, &o->tls);
    if (err == GW_OK)
        err = gw_http_new(loop, NULL, &r->http);
    if (err != GW_OK) {
        free(r->timer);
        r->timer = NULL;
        gw_schemareg_free(r);
        return err;
    }
    uv_timer_init(loop, r->timer);
    r->timer->data = r;
    *out = r;
    return GW_OK;
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h);
}

void gw_schemareg_free(gw_schemareg *r)
{
    if (r == NULL)
        return;
    if (r->http != NULL)
        gw_http_free(r->http); /* in-flight fetches end without callbacks */
    for (size_t i = 0; r->entries != NULL && i < r->max_entries; i++) {
        entry *e = &r->entries[i];
        while (e->waiters != NULL)
            gw_schemareg_cancel(e->waiters);
        gw_resolver_free(e->res);
    }
    if (r->timer != NULL) {
        uv_timer_stop(r->timer);
        uv_close((uv_handle_t *)r->timer, on_timer_closed);
    }
    if (r->auth != NULL)
        memset(r->auth, 0, strlen(r->auth));
    free(r->auth);
    free_tls(&r->tls); /* after gw_http_free: curl copied the strings it used */
    free(r->entries);
    free(r->url);
    free(r->reader);
    free(r);
}

void gw_schemareg_get_stats(const gw_schemareg *r, gw_schemareg_stats *out)
{
    *out = r->st;
}

/* ---- registering schemas (at start) ------------------------------------------------------ */

/* Apicurio 2.x answers concurrent first registrations of one schema (by
 * other workers starting at the same time, under one subject or several) with
 * 409 "artifact already exists", and may have stored nothing for the loser:
 * a 409 is asked again up to REG_MAX_CONFLICTS times before it counts as an
 * incompatible schema. */
enum { REG_BACKOFF_MAX_MS = 5000, REG_MAX_ANSWER_BYTES = 64 * 1024, REG_MAX_CONFLICTS = 3 };

typedef struct {
    gw_schemareg *r;
    gw_schemareg_subject *s;
    gw_http_req *req;
    char *body;
    bool done, failed;
    int attempt, conflicts;
    int64_t retry_at_ms;
    char why[WHY_BYTES];
} reg_item;

static bool subject_ok(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n > GW_SCHEMAREG_MAX_SUBJECT)
        return false;
    for (; *s != '\0'; s++)
        if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' && *s != '-')
            return false;
    return true;
}

static void reg_retry_later(reg_item *it)
{
    int64_t backoff = BACKOFF_FIRST_MS;
    for (int i = 0; i < it->attempt && backoff < REG_BACKOFF_MAX_MS; i++)
        backoff *= 2;
    it->attempt++;
    it->retry_at_ms = now_ms() + (backoff < REG_BACKOFF_MAX_MS ? backoff : REG_BACKOFF_MAX_MS);
    GW_WARN("schema_register_retry", "subject", it->s->subject, "why", it->why);
}

/* {"id": N} from a 200; a refusal's {"message": "..."} into why. */
static void on_register_done(void *ud, const gw_http_result *res)
{
    reg_item *it = ud;
    it->req = NULL;
    json_t *j = res->err == GW_OK ? json_loadb(res->body, res->body_len, 0, NULL) : NULL;
    json_t *id = json_object_get(j, "id");
    const char *msg = json_string_value(json_object_get(j, "message"));
    if (res->err == GW_OK && res->status == 200) {
        json_int_t v = json_is_integer(id) ? json_integer_value(id) : -1;
        it->done = v >= 0 && v <= (json_int_t)UINT32_MAX;
        it->failed = !it->done;
        if (it->done)
            it->s->id = (uint32_t)v;
        else
            snprintf(it->why, sizeof it->why, "the registry's answer has no schema id");
    } else if (res->err == GW_OK && res->status == 409 && it->conflicts < REG_MAX_CONFLICTS) {
        it->conflicts++; /* maybe a race, not an incompatible schema: ask again */
        snprintf(it->why, sizeof it->why, "the registry answered HTTP 409%s%.160s", msg ? ": " : "",
                 msg ? msg : "");
        reg_retry_later(it);
    } else if (res->err == GW_OK && res->status >= 400 && res->status < 500 && res->status != 408 &&
               res->status != 429) {
        snprintf(it->why, sizeof it->why, "the registry refused the schema (HTTP %d%s%.160s)",
                 res->status, msg ? ": " : "", msg ? msg : "");
        it->failed = true;
    } else {
        if (res->err != GW_OK)
            snprintf(it->why, sizeof it->why, "registry unreachable: %s (%.160s)",
                     gw_err_name(res->err),
                     res->transport_detail ? res->transport_detail : "no detail");
        else
            snprintf(it->why, sizeof it->why, "registry answered HTTP %d", res->status);
        reg_retry_later(it);
    }
    json_decref(j);
}

static void reg_start(reg_item *it)
{
    gw_schemareg *r = it->r;
    char url[1024], auth[600];
    snprintf(url, sizeof url, "%s/subjects/%s/versions", r->url, it->s->subject);
    gw_http_opts o = {.url = url,
                      .transport = &r->tls,
                      .headers = {"Content-Type: application/vnd.schemaregistry.v1+json",
                                  "Accept: application/vnd.schemaregistry.v1+json, "
                                  "application/json"},
                      .header_count = 2,
                      .body = it->body,
                      .body_len = strlen(it->body),
                      .body_borrowed = true,
                      .connect_timeout_ms = r->timeout_ms,
                      .total_timeout_ms = r->timeout_ms,
                      .max_body_bytes = REG_MAX_ANSWER_BYTES};
    add_auth(r, &o, auth, sizeof auth);
    gw_http_cbs cbs = {.on_done = on_register_done};
    gw_err err = gw_http_start(r->http, &o, &cbs, it, &it->req);
    memset(auth, 0, sizeof auth);
    if (err != GW_OK) {
        it->req = NULL;
        snprintf(it->why, sizeof it->why, "%s", gw_err_name(err));
        reg_retry_later(it);
    }
}

static gw_err reg_prepare(reg_item *items, gw_schemareg *r, gw_schemareg_subject *s, size_t n,
                          char *why, size_t why_len)
{
    for (size_t i = 0; i < n; i++) {
        items[i] = (reg_item){.r = r, .s = &s[i]};
        if (!subject_ok(s[i].subject) || s[i].schema == NULL) {
            snprintf(why, why_len, "subject \"%.64s\" is not [A-Za-z0-9._-]{1,%d}",
                     s[i].subject ? s[i].subject : "", GW_SCHEMAREG_MAX_SUBJECT);
            return GW_E_CONFIG;
        }
        json_t *b = json_pack("{s:s}", "schema", s[i].schema);
        items[i].body = b != NULL ? json_dumps(b, JSON_COMPACT) : NULL;
        json_decref(b);
        if (items[i].body == NULL)
            return GW_E_NOMEM;
    }
    return GW_OK;
}

static void on_wake(uv_timer_t *t)
{
    (void)t; /* only ends uv_run's wait */
}

/* One pass over the subjects, one at a time in order (no 409 races among our
 * own registrations): starts the first unregistered one when due; GW_OK with
 * *all_done, or the failure. */
static gw_err reg_pass(reg_item *items, size_t n, int64_t now, int64_t *next_ms, bool *all_done,
                       char *why, size_t why_len)
{
    *all_done = true;
    for (size_t i = 0; i < n; i++) {
        reg_item *it = &items[i];
        if (it->failed) {
            snprintf(why, why_len, "subject %s: %s", it->s->subject, it->why);
            return GW_E_CODEC_REGISTRY;
        }
        if (it->done)
            continue;
        *all_done = false;
        if (it->req == NULL && now >= it->retry_at_ms)
            reg_start(it);
        if (it->req == NULL && it->retry_at_ms < *next_ms)
            *next_ms = it->retry_at_ms;
        break;
    }
    return GW_OK;
}

gw_err gw_schemareg_register_all(gw_schemareg *r, gw_schemareg_subject *subjects, size_t n,
                                 int32_t timeout_ms, char *why, size_t why_len)
{
    why[0] = '\0';
    reg_item *items = calloc(n ? n : 1, sizeof *items);
    uv_timer_t *wake = malloc(sizeof *wake);
    gw_err err = items != NULL && wake != NULL ? GW_OK : GW_E_NOMEM;
    if (err == GW_OK)
        err = reg_prepare(items, r, subjects, n, why, why_len);
    if (err != GW_OK)
        goto cleanup;
    uv_timer_init(r->loop, wake);
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        int64_t now = now_ms(), next = deadline;
        bool all_done;
        if ((err = reg_pass(items, n, now, &next, &all_done, why, why_len)) != GW_OK || all_done)
            break;
        if (now >= deadline) {
            size_t k = 0;
            while (k + 1 < n && items[k].done)
                k++;
            const reg_item *late = &items[k];
            snprintf(why, why_len, "subject %s: no schema id in time (%s)", late->s->subject,
                     late->why[0] ? late->why : "no answer yet");
            err = GW_E_CODEC_REGISTRY;
            break;
        }
        uv_timer_start(wake, on_wake, (uint64_t)(next > now ? next - now : 0), 0);
        uv_run(r->loop, UV_RUN_ONCE);
        uv_timer_stop(wake);
    }
    uv_close((uv_handle_t *)wake, on_timer_closed);
    wake = NULL;
cleanup:
    for (size_t i = 0; items != NULL && i < n; i++) {
        if (items[i].req != NULL)
            gw_http_cancel(items[i].req);
        free(items[i].body);
    }
    free(items);
    free(wake);
    return err;
}
