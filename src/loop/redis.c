/*
 * redis: see redis.h for the contract.
 *
 * Request records (struct req) carry one command from issue to answer.
 * Invariants:
 *   - a record is on r->live (deadline order = issue order, because every
 *     command has the same timeout) exactly while it is unanswered;
 *   - hiredis_refs counts the hiredis callbacks still due for it; hiredis
 *     always calls back (with a NULL reply on disconnect or free), so a
 *     record answered early (timeout) stays allocated until refs drop to 0,
 *     and a late reply finds cb == NULL and is dropped;
 *   - a record is freed when it is answered and refs == 0;
 *   - r->outstanding counts allocated records, bounded by max_pending.
 * A command whose record cannot be allocated is answered GW_E_NOMEM on the
 * next turn from a fixed ring (r->nomem, no allocation), like a deferred
 * record; only when NOMEM_SLOTS such answers already wait for that turn is it
 * answered inside the call (the last resort: still exactly once).
 * Handshake replies are recognised by their context: when a connection is
 * dropped, r->ac is cleared first, so callbacks of a dead context see
 * ac != r->ac and do nothing.
 */
#include "loop/redis.h"
#include "loop/redis_private.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/async.h>
#include <hiredis/adapters/libuv.h>

#include "common/log.h"
#include "common/sha.h"

typedef enum { RS_DISCONNECTED, RS_CONNECTING, RS_READY, RS_CLOSED } rstate;

enum { NOMEM_SLOTS = 64 };

/* A command answered on the next turn without a record (no memory for one). */
typedef struct {
    gw_redis_cb cb;
    void *arg;
    gw_err err;
} nomem_answer;

typedef struct req req;
struct req {
    req *prev, *next; /* on r->live while unanswered, or on r->deferred */
    gw_redis *r;
    gw_redis_cb cb; /* NULL once answered */
    void *arg;
    uint64_t deadline_ms;
    gw_redis_script *script; /* set for EVALSHA: NOSCRIPT retry */
    int argc;
    char **argv; /* owned copy, one block with argvlen and the bytes */
    size_t *argvlen;
    int hiredis_refs;
    bool sent;
    bool retried;
    gw_err deferred_err; /* when on r->deferred */
};

struct gw_redis {
    uv_loop_t *loop;
    gw_redis_opts o;
    char *host;
    char *password; /* never logged */
    char *username; /* ACL user for AUTH, with the password */
    rstate state;
    redisAsyncContext *ac;
    int handshake_pending;
    uint32_t attempt; /* failed connects since the last good handshake */
    uint64_t rng;
    req *live_head, *live_tail;
    req *deferred_head, *deferred_tail;
    nomem_answer nomem[NOMEM_SLOTS]; /* answered with the deferred records */
    size_t nomem_count;
    uint32_t outstanding;
    uint64_t last_reply_ms; /* loop time of the last reply on the READY connection */
    gw_redis_script *scripts;
    uv_timer_t deadline_timer; /* oldest live command */
    uv_timer_t conn_timer;     /* connect timeout, then reconnect backoff */
    uv_timer_t defer_timer;    /* next-turn delivery of fail-fast answers */
    uv_getaddrinfo_t gai;      /* resolving a host name, off the loop thread */
    bool resolving;
    int handles_open; /* handles to close + a resolution in progress */
    gw_redis_stats st;
    size_t nscripts;      /* registered so far (the next script's index) */
    gw_rcluster *cluster; /* cluster mode: this object is a shell over it */
};

static void start_connect(gw_redis *r);
static void drop_connection(gw_redis *r, const char *why);

void gw_redis_opts_defaults(gw_redis_opts *o)
{
    if (!o->host || !*o->host)
        o->host = "127.0.0.1";
    if (o->port == 0)
        o->port = 6379;
    if (o->connect_timeout_ms == 0)
        o->connect_timeout_ms = 1000;
    if (o->command_timeout_ms == 0)
        o->command_timeout_ms = 250;
    if (o->reconnect_min_ms == 0)
        o->reconnect_min_ms = 100;
    if (o->reconnect_max_ms == 0)
        o->reconnect_max_ms = 5000;
    if (o->max_pending == 0)
        o->max_pending = 10000;
}

/* ---- request list ------------------------------------------------------ */

static void list_push(req **head, req **tail, req *q)
{
    q->next = NULL;
    q->prev = *tail;
    if (*tail)
        (*tail)->next = q;
    else
        *head = q;
    *tail = q;
}

static void list_remove(req **head, req **tail, req *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        *head = q->next;
    if (q->next)
        q->next->prev = q->prev;
    else
        *tail = q->prev;
    q->prev = q->next = NULL;
}

static void deadline_cb(uv_timer_t *t);

static void arm_deadline(gw_redis *r)
{
    if (r->state == RS_CLOSED)
        return;
    if (!r->live_head) {
        uv_timer_stop(&r->deadline_timer);
        return;
    }
    uint64_t now = uv_now(r->loop);
    uint64_t d = r->live_head->deadline_ms;
    uv_timer_start(&r->deadline_timer, deadline_cb, d > now ? d - now : 0, 0);
}

static void maybe_free(req *q)
{
    if (q->cb || q->hiredis_refs > 0)
        return;
    q->r->outstanding--;
    free(q->argv);
    free(q);
}

/* Answer from a loop callback (never from inside a caller's call). */
static void answer(req *q, gw_err err, const redisReply *rep)
{
    gw_redis *r = q->r;
    gw_redis_cb cb = q->cb;
    void *arg = q->arg;
    bool was_head = (r->live_head == q);
    list_remove(&r->live_head, &r->live_tail, q);
    q->cb = NULL;
    if (err == GW_OK)
        r->st.replies_ok++;
    else if (err == GW_E_INTERNAL)
        r->st.reply_errors++;
    else if (err == GW_E_STATE_UNAVAILABLE)
        r->st.unavailable++;
    if (was_head)
        arm_deadline(r);
    cb(arg, err, rep);
    maybe_free(q);
}

static void defer_cb(uv_timer_t *t)
{
    gw_redis *r = t->data;
    /* Detach the list first: callbacks may issue commands that defer again. */
    req *q = r->deferred_head;
    r->deferred_head = r->deferred_tail = NULL;
    nomem_answer nomem[NOMEM_SLOTS];
    size_t nn = r->nomem_count;
    memcpy(nomem, r->nomem, nn * sizeof nomem[0]);
    r->nomem_count = 0;
    for (size_t i = 0; i < nn; i++)
        nomem[i].cb(nomem[i].arg, nomem[i].err, NULL);
    while (q) {
        req *next = q->next;
        gw_redis_cb cb = q->cb;
        q->cb = NULL;
        q->prev = q->next = NULL;
        if (q->deferred_err == GW_E_STATE_UNAVAILABLE)
            r->st.unavailable++;
        cb(q->arg, q->deferred_err, NULL);
        maybe_free(q);
        q = next;
    }
}

/* Answer on the next loop turn (used inside gw_redis_command/eval). */
static void fail_deferred(gw_redis *r, req *q, gw_err err)
{
    q->deferred_err = err;
    list_push(&r->deferred_head, &r->deferred_tail, q);
    if (r->state != RS_CLOSED)
        uv_timer_start(&r->defer_timer, defer_cb, 0, 0);
}

static void deadline_cb(uv_timer_t *t)
{
    gw_redis *r = t->data;
    uint64_t now = uv_now(r->loop);
    bool timed_out = false;
    while (r->live_head && r->live_head->deadline_ms <= now) {
        r->st.timeouts++;
        timed_out = true;
        answer(r->live_head, GW_E_STATE_UNAVAILABLE, NULL);
    }
    arm_deadline(r);
    /* A server that stopped answering (paused, partitioned) keeps the TCP
     * connection open: after two timeouts' worth of silence, reconnect. */
    if (timed_out && r->state == RS_READY &&
        now - r->last_reply_ms >= 2 * (uint64_t)r->o.command_timeout_ms)
        drop_connection(r, "no reply");
}

/* ---- reply handling ---------------------------------------------------- */

static bool is_unavailable_error(const redisReply *rep)
{
    static const char *const prefixes[] = {"LOADING",  "BUSY",        "MASTERDOWN",
                                           "TRYAGAIN", "CLUSTERDOWN", "READONLY"};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (strncmp(rep->str, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    return false;
}

static bool send_req(gw_redis *r, req *q);

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    req *q = priv;
    gw_redis *r = q->r;
    const redisReply *rep = reply;
    q->hiredis_refs--;
    if (rep && ac == r->ac)
        r->last_reply_ms = uv_now(r->loop);
    if (!q->cb) {
        if (rep)
            r->st.late_replies++;
        maybe_free(q);
        return;
    }
    if (!rep) {
        answer(q, r->state == RS_CLOSED ? GW_E_SHUTTING_DOWN : GW_E_STATE_UNAVAILABLE, NULL);
        return;
    }
    if (rep->type != REDIS_REPLY_ERROR) {
        answer(q, GW_OK, rep);
        return;
    }
    if (q->script && !q->retried && strncmp(rep->str, "NOSCRIPT", 8) == 0 && ac == r->ac &&
        r->state == RS_READY) {
        const char *load[3] = {"SCRIPT", "LOAD", q->script->lua};
        q->retried = true;
        r->st.noscript_reloads++;
        redisAsyncCommandArgv(ac, NULL, NULL, 3, load, NULL);
        if (send_req(r, q))
            return;
        answer(q, GW_E_STATE_UNAVAILABLE, NULL);
        return;
    }
    answer(q, is_unavailable_error(rep) ? GW_E_STATE_UNAVAILABLE : GW_E_INTERNAL, rep);
}

static bool send_req(gw_redis *r, req *q)
{
    if (!r->ac || r->state != RS_READY)
        return false;
    if (redisAsyncCommandArgv(r->ac, on_reply, q, q->argc, (const char **)q->argv, q->argvlen) !=
        REDIS_OK)
        return false;
    q->hiredis_refs++;
    q->sent = true;
    return true;
}

/* Fail every queued (unsent) command: the connection attempt is over. */
static void fail_unsent(gw_redis *r, gw_err err)
{
    req *q = r->live_head;
    while (q) {
        req *next = q->next;
        if (!q->sent) {
            r->st.rejected_offline++;
            answer(q, err, NULL);
        }
        q = next;
    }
}

static void flush_unsent(gw_redis *r)
{
    for (req *q = r->live_head; q; q = q->next)
        if (!q->sent && !send_req(r, q))
            break;
}

/* ---- connection lifecycle ---------------------------------------------- */

static uint64_t next_rand(gw_redis *r)
{
    r->rng ^= r->rng << 13;
    r->rng ^= r->rng >> 7;
    r->rng ^= r->rng << 17;
    return r->rng;
}

static void reconnect_cb(uv_timer_t *t)
{
    start_connect(t->data);
}

static void schedule_reconnect(gw_redis *r)
{
    if (r->state == RS_CLOSED)
        return;
    uint64_t backoff = r->o.reconnect_min_ms;
    for (uint32_t i = 0; i < r->attempt && backoff < r->o.reconnect_max_ms; i++)
        backoff *= 2;
    if (backoff > r->o.reconnect_max_ms)
        backoff = r->o.reconnect_max_ms;
    /* Jitter in [backoff/2, backoff] so a fleet does not reconnect in step. */
    backoff = backoff / 2 + next_rand(r) % (backoff / 2 + 1);
    r->attempt++;
    uv_timer_start(&r->conn_timer, reconnect_cb, backoff, 0);
}

static void drop_connection(gw_redis *r, const char *why)
{
    redisAsyncContext *ac = r->ac;
    bool was_ready = (r->state == RS_READY);
    r->ac = NULL;
    if (r->state != RS_CLOSED)
        r->state = RS_DISCONNECTED;
    uv_timer_stop(&r->conn_timer);
    if (was_ready)
        r->st.disconnects++;
    else
        r->st.connect_failures++;
    GW_WARN("redis_disconnected", "host", r->host, "reason", why);
    if (ac)
        redisAsyncFree(ac); /* sent commands are called back with NULL */
    fail_unsent(r, GW_E_STATE_UNAVAILABLE);
    schedule_reconnect(r);
}

static void handshake_done(gw_redis *r)
{
    r->state = RS_READY;
    r->last_reply_ms = uv_now(r->loop);
    r->attempt = 0;
    r->st.connects++;
    uv_timer_stop(&r->conn_timer);
    GW_INFO("redis_connected", "host", r->host);
    flush_unsent(r);
}

static void on_handshake_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    gw_redis *r = ac->data;
    const redisReply *rep = reply;
    const char *step = priv;
    if (ac != r->ac || r->state != RS_CONNECTING)
        return;
    if (!rep) {
        drop_connection(r, "connection lost during handshake");
        return;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        if (strcmp(step, "script") != 0) {
            /* AUTH / SELECT refused: the reply text never holds the password. */
            GW_ERROR("redis_handshake_failed", "step", step, "error", rep->str);
            drop_connection(r, "handshake refused");
            return;
        }
        GW_ERROR("redis_script_load_failed", "error", rep->str);
    }
    if (--r->handshake_pending == 0)
        handshake_done(r);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    gw_redis *r = ac->data;
    if (ac != r->ac)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees this context after we return. */
        r->ac = NULL;
        drop_connection(r, ac->errstr[0] ? ac->errstr : "connect failed");
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    gw_redis *r = ac->data;
    if (ac != r->ac)
        return;
    r->ac = NULL; /* hiredis frees it after we return */
    drop_connection(r, ac->errstr[0] ? ac->errstr : "disconnected");
}

static void conn_timeout_cb(uv_timer_t *t)
{
    gw_redis *r = t->data;
    if (r->state == RS_CONNECTING)
        drop_connection(r, "connect timeout");
}

static void send_handshake(gw_redis *r)
{
    redisAsyncContext *ac = r->ac;
    r->handshake_pending = 0;
    if (r->password && r->username) {
        const char *argv[3] = {"AUTH", r->username, r->password};
        redisAsyncCommandArgv(ac, on_handshake_reply, "auth", 3, argv, NULL);
        r->handshake_pending++;
    } else if (r->password) {
        const char *argv[2] = {"AUTH", r->password};
        redisAsyncCommandArgv(ac, on_handshake_reply, "auth", 2, argv, NULL);
        r->handshake_pending++;
    }
    if (r->o.db > 0) {
        char db[16];
        snprintf(db, sizeof(db), "%d", r->o.db);
        const char *argv[2] = {"SELECT", db};
        redisAsyncCommandArgv(ac, on_handshake_reply, "select", 2, argv, NULL);
        r->handshake_pending++;
    }
    for (gw_redis_script *s = r->scripts; s; s = s->next) {
        const char *argv[3] = {"SCRIPT", "LOAD", s->lua};
        redisAsyncCommandArgv(ac, on_handshake_reply, "script", 3, argv, NULL);
        r->handshake_pending++;
    }
    const char *ping[1] = {"PING"};
    redisAsyncCommandArgv(ac, on_handshake_reply, "ping", 1, ping, NULL);
    r->handshake_pending++;
}

static void connect_failed(gw_redis *r)
{
    r->state = RS_DISCONNECTED;
    r->st.connect_failures++;
    fail_unsent(r, GW_E_STATE_UNAVAILABLE);
    schedule_reconnect(r);
}

static void connect_to(gw_redis *r, const char *ip);
static void release(gw_redis *r);

/* hiredis 0.14 resolves names with a blocking getaddrinfo inside
 * redisAsyncConnect: a host name is resolved here on libuv's thread pool and
 * hiredis only ever sees a numeric address. */
static void on_resolved(uv_getaddrinfo_t *gai, int status, struct addrinfo *res)
{
    gw_redis *r = gai->data;
    r->resolving = false;
    char ip[INET6_ADDRSTRLEN] = "";
    if (status == 0 && res != NULL) {
        if (res->ai_family == AF_INET6)
            uv_ip6_name((const struct sockaddr_in6 *)res->ai_addr, ip, sizeof ip);
        else
            uv_ip4_name((const struct sockaddr_in *)res->ai_addr, ip, sizeof ip);
    }
    uv_freeaddrinfo(res);
    if (--r->handles_open == 0 && r->state == RS_CLOSED) {
        release(r);
        return;
    }
    if (r->state == RS_CLOSED)
        return;
    if (ip[0] == '\0') {
        GW_WARN("redis_resolve_failed", "host", r->host, "error",
                status ? uv_strerror(status) : "no address");
        connect_failed(r);
        return;
    }
    connect_to(r, ip);
}

static void start_connect(gw_redis *r)
{
    if (r->state == RS_CLOSED)
        return;
    r->state = RS_CONNECTING;
    unsigned char buf[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, r->host, buf) == 1 || inet_pton(AF_INET6, r->host, buf) == 1) {
        connect_to(r, r->host);
        return;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    r->gai.data = r;
    if (uv_getaddrinfo(r->loop, &r->gai, on_resolved, r->host, NULL, &hints) != 0) {
        GW_WARN("redis_resolve_failed", "host", r->host, "error", "cannot start");
        connect_failed(r);
        return;
    }
    r->resolving = true;
    r->handles_open++;
}

static void connect_to(gw_redis *r, const char *ip)
{
    redisAsyncContext *ac = redisAsyncConnect(ip, r->o.port);
    if (!ac || ac->err) {
        GW_WARN("redis_connect_failed", "host", r->host, "error",
                ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        r->state = RS_DISCONNECTED;
        r->st.connect_failures++;
        fail_unsent(r, GW_E_STATE_UNAVAILABLE);
        schedule_reconnect(r);
        return;
    }
    ac->data = r;
    if (redisLibuvAttach(ac, r->loop) != REDIS_OK) {
        redisAsyncFree(ac);
        r->state = RS_DISCONNECTED;
        r->st.connect_failures++;
        fail_unsent(r, GW_E_STATE_UNAVAILABLE);
        schedule_reconnect(r);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    r->ac = ac;
    uv_timer_start(&r->conn_timer, conn_timeout_cb, r->o.connect_timeout_ms, 0);
    send_handshake(r);
}

/* ---- public API ---------------------------------------------------------- */

gw_err gw_redis_new(uv_loop_t *loop, const gw_redis_opts *opts, gw_redis **out)
{
    gw_err err = GW_E_NOMEM;
    *out = NULL;
    if (opts->port < 0 || opts->port > 65535 || opts->db < 0)
        return GW_E_CONFIG;
    bool cluster = opts->cluster_nodes && *opts->cluster_nodes;
    if (cluster && opts->db > 0)
        return GW_E_CONFIG; /* a cluster has database 0 only */
    gw_redis *r = calloc(1, sizeof(*r));
    if (!r)
        goto fail;
    r->loop = loop;
    r->o = *opts;
    gw_redis_opts_defaults(&r->o);
    if (r->o.reconnect_max_ms < r->o.reconnect_min_ms)
        r->o.reconnect_max_ms = r->o.reconnect_min_ms;
    r->host = strdup(r->o.host);
    if (!r->host)
        goto fail_r;
    r->o.host = r->host;
    r->o.password_env = NULL; /* not kept: the caller's strings may go away */
    r->o.password = NULL;
    r->o.username_env = NULL;
    r->o.username = NULL;
    const char *pw = opts->password;
    if (!pw && opts->password_env && *opts->password_env)
        pw = getenv(opts->password_env);
    if (pw && *pw && !(r->password = strdup(pw)))
        goto fail_host;
    const char *user = opts->username;
    if (!user && opts->username_env && *opts->username_env)
        user = getenv(opts->username_env);
    if (user && *user && !(r->username = strdup(user)))
        goto fail_pw;
    if (cluster) {
        gw_redis_opts co = r->o;
        co.password = r->password;
        co.username = r->username;
        err = gw_rcluster_new(loop, &co, r, &r->cluster);
        if (err != GW_OK)
            goto fail_pw;
        r->o.cluster_nodes = NULL;
        r->state = RS_READY; /* the shell itself: only RS_CLOSED matters */
        *out = r;
        return GW_OK;
    }
    r->o.cluster_nodes = NULL;
    r->rng = ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)r;
    if (r->rng == 0)
        r->rng = 88172645463325252ull;
    uv_timer_init(loop, &r->deadline_timer);
    uv_timer_init(loop, &r->conn_timer);
    uv_timer_init(loop, &r->defer_timer);
    r->deadline_timer.data = r->conn_timer.data = r->defer_timer.data = r;
    r->handles_open = 3;
    start_connect(r);
    *out = r;
    return GW_OK;
fail_pw:
    free(r->username);
    if (r->password) {
        memset(r->password, 0, strlen(r->password));
        free(r->password);
    }
fail_host:
    free(r->host);
fail_r:
    free(r);
fail:
    return err;
}

static void on_handle_closed(uv_handle_t *h)
{
    gw_redis *r = h->data;
    if (--r->handles_open > 0)
        return;
    release(r);
}

static void release(gw_redis *r)
{
    while (r->scripts) {
        gw_redis_script *s = r->scripts;
        r->scripts = s->next;
        free(s->lua);
        free(s);
    }
    if (r->password) {
        memset(r->password, 0, strlen(r->password));
        free(r->password);
    }
    free(r->username);
    free(r->host);
    free(r);
}

void gw_redis_shell_release(gw_redis *shell)
{
    release(shell);
}

void gw_redis_free(gw_redis *r)
{
    if (!r)
        return;
    if (r->cluster) {
        if (r->state == RS_CLOSED)
            return;
        r->state = RS_CLOSED;
        gw_rcluster_free(r->cluster); /* releases r once everything is closed */
        return;
    }
    r->state = RS_CLOSED;
    uv_timer_stop(&r->deadline_timer);
    uv_timer_stop(&r->conn_timer);
    uv_timer_stop(&r->defer_timer);
    defer_cb(&r->defer_timer);
    redisAsyncContext *ac = r->ac;
    r->ac = NULL;
    if (ac)
        redisAsyncFree(ac); /* sent commands: on_reply(NULL) -> SHUTTING_DOWN */
    while (r->live_head)
        answer(r->live_head, GW_E_SHUTTING_DOWN, NULL);
    if (r->resolving)
        uv_cancel((uv_req_t *)&r->gai); /* its callback still runs, then releases */
    uv_close((uv_handle_t *)&r->deadline_timer, on_handle_closed);
    uv_close((uv_handle_t *)&r->conn_timer, on_handle_closed);
    uv_close((uv_handle_t *)&r->defer_timer, on_handle_closed);
}

bool gw_redis_is_connected(const gw_redis *r)
{
    if (r && r->cluster)
        return r->state != RS_CLOSED && gw_rcluster_is_connected(r->cluster);
    return r && r->state == RS_READY;
}

bool gw_redis_is_cluster(const gw_redis *r)
{
    return r != NULL && r->cluster != NULL;
}

gw_redis_script *gw_redis_script_add(gw_redis *r, const char *lua)
{
    if (!lua)
        return NULL; /* e.g. gw_lua_script() of a name that does not exist */
    gw_redis_script *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->lua = strdup(lua);
    if (!s->lua) {
        free(s);
        return NULL;
    }
    gw_sha1 c;
    uint8_t d[20];
    gw_sha1_init(&c);
    gw_sha1_update(&c, lua, strlen(lua));
    gw_sha1_final(&c, d);
    gw_hex(d, sizeof(d), s->sha);
    s->index = r->nscripts++;
    s->next = r->scripts;
    r->scripts = s;
    if (r->cluster) {
        if (r->state != RS_CLOSED)
            gw_rcluster_script_added(r->cluster, s);
        return s;
    }
    if (r->ac && (r->state == RS_READY || r->state == RS_CONNECTING)) {
        /* Ahead of any EVALSHA: user commands queue until the handshake ends. */
        const char *argv[3] = {"SCRIPT", "LOAD", s->lua};
        redisAsyncCommandArgv(r->ac, NULL, NULL, 3, argv, NULL);
    }
    return s;
}

const char *gw_redis_script_sha(const gw_redis_script *s)
{
    return s->sha;
}

/* One block: argv pointers, lengths, then the bytes (each NUL-terminated). */
static req *req_new(gw_redis *r, int argc, const char *const *argv, const size_t *argvlen,
                    const char *prefix0, const char *prefix1, const char *prefix2)
{
    int pre = prefix0 ? 3 : 0;
    int n = argc + pre;
    const char *pv[3] = {prefix0, prefix1, prefix2};
    size_t bytes = (size_t)n * (sizeof(char *) + sizeof(size_t));
    for (int i = 0; i < n; i++) {
        size_t len = i < pre ? strlen(pv[i]) : (argvlen ? argvlen[i - pre] : strlen(argv[i - pre]));
        bytes += len + 1;
    }
    req *q = calloc(1, sizeof(*q));
    char *block = q ? malloc(bytes) : NULL;
    if (!block) {
        free(q);
        return NULL;
    }
    q->argv = (char **)block;
    q->argvlen = (size_t *)(block + (size_t)n * sizeof(char *));
    char *p = block + (size_t)n * (sizeof(char *) + sizeof(size_t));
    for (int i = 0; i < n; i++) {
        const char *src = i < pre ? pv[i] : argv[i - pre];
        size_t len = i < pre ? strlen(pv[i]) : (argvlen ? argvlen[i - pre] : strlen(src));
        memcpy(p, src, len);
        p[len] = '\0';
        q->argv[i] = p;
        q->argvlen[i] = len;
        p += len + 1;
    }
    q->argc = n;
    q->r = r;
    r->outstanding++;
    return q;
}

static void issue(gw_redis *r, req *q, gw_redis_cb cb, void *arg)
{
    q->cb = cb;
    q->arg = arg;
    r->st.commands++;
    if (r->state == RS_CLOSED) {
        fail_deferred(r, q, GW_E_SHUTTING_DOWN);
        return;
    }
    if (r->outstanding > r->o.max_pending) {
        r->st.rejected_full++;
        fail_deferred(r, q, GW_E_STATE_UNAVAILABLE);
        return;
    }
    if (r->state == RS_DISCONNECTED) {
        r->st.rejected_offline++;
        fail_deferred(r, q, GW_E_STATE_UNAVAILABLE);
        return;
    }
    q->deadline_ms = uv_now(r->loop) + r->o.command_timeout_ms;
    bool was_empty = (r->live_head == NULL);
    list_push(&r->live_head, &r->live_tail, q);
    if (r->state == RS_READY && !send_req(r, q)) {
        list_remove(&r->live_head, &r->live_tail, q);
        fail_deferred(r, q, GW_E_STATE_UNAVAILABLE);
        return;
    }
    if (was_empty)
        arm_deadline(r);
}

/* Bad arguments or no memory for the copy: answer on the next turn. */
static void fail_early(gw_redis *r, gw_redis_cb cb, void *arg, gw_err err)
{
    req *q = calloc(1, sizeof(*q));
    if (!q) {
        r->st.commands++;
        if (r->nomem_count == NOMEM_SLOTS) {
            cb(arg, GW_E_NOMEM, NULL); /* last resort: answer now */
            return;
        }
        r->nomem[r->nomem_count++] = (nomem_answer){.cb = cb, .arg = arg, .err = GW_E_NOMEM};
        if (r->state != RS_CLOSED)
            uv_timer_start(&r->defer_timer, defer_cb, 0, 0);
        return;
    }
    q->r = r;
    q->cb = cb;
    q->arg = arg;
    r->outstanding++;
    r->st.commands++;
    fail_deferred(r, q, err);
}

void gw_redis_command(gw_redis *r, int argc, const char *const *argv, const size_t *argvlen,
                      gw_redis_cb cb, void *arg)
{
    if (r->cluster) {
        gw_rcluster_command(r->cluster, argc, argv, argvlen, cb, arg);
        return;
    }
    if (argc <= 0) {
        fail_early(r, cb, arg, GW_E_INTERNAL);
        return;
    }
    req *q = req_new(r, argc, argv, argvlen, NULL, NULL, NULL);
    if (!q) {
        fail_early(r, cb, arg, GW_E_NOMEM);
        return;
    }
    issue(r, q, cb, arg);
}

void gw_redis_eval(gw_redis *r, gw_redis_script *s, int nkeys, int argc, const char *const *argv,
                   const size_t *argvlen, gw_redis_cb cb, void *arg)
{
    char nk[16];
    if (r->cluster) {
        gw_rcluster_eval(r->cluster, s, nkeys, argc, argv, argvlen, cb, arg);
        return;
    }
    if (!s || nkeys < 0 || nkeys > argc || argc < 0) {
        fail_early(r, cb, arg, GW_E_INTERNAL);
        return;
    }
    snprintf(nk, sizeof(nk), "%d", nkeys);
    req *q = req_new(r, argc, argv, argvlen, "EVALSHA", s->sha, nk);
    if (!q) {
        fail_early(r, cb, arg, GW_E_NOMEM);
        return;
    }
    q->script = s;
    issue(r, q, cb, arg);
}

void gw_redis_get_stats(const gw_redis *r, gw_redis_stats *out)
{
    if (r->cluster) {
        gw_rcluster_get_stats(r->cluster, out);
        out->connected = gw_redis_is_connected(r);
        return;
    }
    *out = r->st;
    out->pending = r->outstanding;
    out->connected = (r->state == RS_READY);
}

long long gw_redis_reply_int(const redisReply *r, long long dflt)
{
    if (!r)
        return dflt;
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    if (r->type == REDIS_REPLY_STRING && r->len > 0) {
        char *end;
        long long v = strtoll(r->str, &end, 10);
        return *end == '\0' ? v : dflt;
    }
    return dflt;
}

const redisReply *gw_redis_reply_elem(const redisReply *r, size_t i)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || i >= r->elements)
        return NULL;
    return r->element[i];
}
