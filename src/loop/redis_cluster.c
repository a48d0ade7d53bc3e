/*
 * redis_cluster: Redis Cluster behind the gw_redis API (redis.h, "Cluster
 * mode"). hiredis 0.14 has no cluster support; this is the routing layer.
 *
 * Parts:
 *   - nodes (cnode): one standalone gw_redis per master (with its handshake,
 *     timeouts, bounded queue and script registry), created on demand from
 *     the seeds, CLUSTER SLOTS and redirects; a node that leaves the map is
 *     retired (closed on the next loop turn; what it still had in flight is
 *     re-routed through the new map);
 *   - the slot map: slots[16384] -> node, replaced whole by each CLUSTER SLOTS
 *     reply; MOVED patches one slot at once and asks for a full refresh;
 *   - operations (cop): a copy of the caller's command (needed to re-send it),
 *     its callback and its deadline (command_timeout_ms from issue); sent to
 *     the node of the slot of its first key; MOVED and ASK re-send up to
 *     MAX_REDIRECTS times while the deadline has not passed.
 * Callback contract as in redis.h: every operation is answered exactly once,
 * from a loop callback (a node's reply, or the defer timer for fail-fast
 * answers), except GW_E_SHUTTING_DOWN inside gw_redis_free.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "loop/redis_private.h"

enum {
    SLOTS = 16384,
    MAX_REDIRECTS = 5,
    MAX_SEEDS = 64,
    REFRESH_MIN_MS = 100,   /* at most one CLUSTER SLOTS per this interval */
    REFRESH_RETRY_MS = 250, /* map incomplete or unreadable: read again */
    NOMEM_SLOTS = 64,
};

typedef struct cnode cnode;
struct cnode {
    cnode *next;
    char *host;
    int port;
    gw_redis *r;
    gw_redis_script **scripts; /* by gw_redis_script.index of the shell's scripts */
    size_t nscripts;
    bool in_map;
};

typedef struct cop cop;
struct cop {
    cop *next; /* on the deferred list */
    gw_rcluster *c;
    gw_redis_cb cb;
    void *arg;
    gw_redis_script *script; /* the shell's script (EVALSHA), else NULL */
    int nkeys;
    int argc;
    char **argv; /* one block: pointers, lengths, bytes */
    size_t *argvlen;
    uint64_t deadline_ms;
    int redirects;
    gw_err deferred_err;
};

typedef struct {
    gw_redis_cb cb;
    void *arg;
} nomem_answer;

struct gw_rcluster {
    uv_loop_t *loop;
    gw_redis *shell;
    gw_redis_opts o; /* per-node template: host and port replaced */
    char *password;  /* never logged */
    char *username;  /* ACL user, with the password */
    char *seed_host[MAX_SEEDS];
    int seed_port[MAX_SEEDS];
    int nseeds;
    cnode *nodes;
    cnode *retired;
    cnode *slots[SLOTS];
    cnode *next_slots[SLOTS];
    bool map_ok; /* every slot has a master */
    gw_redis_script **scripts;
    size_t nscripts, cap_scripts;
    uv_timer_t refresh_timer, defer_timer, gc_timer;
    int handles_open;
    bool refresh_inflight, refresh_again;
    char *refresh_host; /* the node asked: stands for an empty address in its reply */
    uint64_t last_refresh_ms;
    unsigned rr;
    cop *deferred_head, *deferred_tail;
    nomem_answer nomem[NOMEM_SLOTS];
    size_t nomem_count;
    uint32_t outstanding;
    bool closing;
    gw_redis_stats st; /* cluster-level counters */
};

/* ---- hash slots ------------------------------------------------------------------ */

static uint16_t crc16(const char *buf, size_t len)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((uint8_t)buf[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

unsigned gw_redis_key_slot(const char *key, size_t len)
{
    size_t s = 0;
    while (s < len && key[s] != '{')
        s++;
    if (s < len) {
        size_t e = s + 1;
        while (e < len && key[e] != '}')
            e++;
        if (e < len && e > s + 1) {
            key += s + 1;
            len = e - s - 1;
        }
    }
    return crc16(key, len) & (SLOTS - 1);
}

/* ---- nodes -------------------------------------------------------------------------- */

static void on_noop(void *arg, gw_err err, const redisReply *rep)
{
    (void)arg;
    (void)err;
    (void)rep;
}

static bool node_add_script(cnode *n, gw_redis_script *s)
{
    if (s->index >= n->nscripts) {
        size_t cap = s->index + 8;
        gw_redis_script **p = realloc(n->scripts, cap * sizeof *p);
        if (p == NULL)
            return false;
        memset(p + n->nscripts, 0, (cap - n->nscripts) * sizeof *p);
        n->scripts = p;
        n->nscripts = cap;
    }
    n->scripts[s->index] = gw_redis_script_add(n->r, s->lua);
    return n->scripts[s->index] != NULL;
}

static cnode *node_find(gw_rcluster *c, const char *host, int port)
{
    for (cnode *n = c->nodes; n; n = n->next)
        if (n->port == port && strcmp(n->host, host) == 0)
            return n;
    return NULL;
}

static cnode *node_get(gw_rcluster *c, const char *host, int port)
{
    cnode *n = node_find(c, host, port);
    if (n != NULL || c->closing || port <= 0 || port > 65535 || !*host)
        return n;
    n = calloc(1, sizeof *n);
    if (n == NULL || (n->host = strdup(host)) == NULL) {
        free(n);
        return NULL;
    }
    n->port = port;
    gw_redis_opts o = c->o;
    o.host = host;
    o.port = port;
    o.password = c->password;
    o.password_env = NULL;
    o.username = c->username;
    o.username_env = NULL;
    o.cluster_nodes = NULL;
    o.db = 0;
    if (gw_redis_new(c->loop, &o, &n->r) != GW_OK) {
        free(n->host);
        free(n);
        return NULL;
    }
    for (size_t i = 0; i < c->nscripts; i++)
        if (!node_add_script(n, c->scripts[i]))
            GW_WARN("redis_cluster_script_add_failed", "host", host);
    n->next = c->nodes;
    c->nodes = n;
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", port);
    GW_INFO("redis_cluster_node_added", "host", host, "port", port_s);
    return n;
}

static void node_close(cnode *n)
{
    gw_redis_free(n->r); /* in-flight commands are answered now (re-routed) */
    free(n->scripts);
    free(n->host);
    free(n);
}

static void gc_cb(uv_timer_t *t)
{
    gw_rcluster *c = t->data;
    while (c->retired) {
        cnode *n = c->retired;
        c->retired = n->next;
        node_close(n);
    }
}

static void ensure_seeds(gw_rcluster *c)
{
    for (int i = 0; i < c->nseeds; i++)
        node_get(c, c->seed_host[i], c->seed_port[i]);
}

/* A connected node, round robin; else any node (connecting); NULL if none. */
static cnode *any_node(gw_rcluster *c)
{
    size_t count = 0;
    for (cnode *n = c->nodes; n; n = n->next)
        count++;
    if (count == 0) {
        ensure_seeds(c);
        return c->nodes;
    }
    size_t start = c->rr++ % count, i = 0;
    cnode *first = NULL;
    for (size_t pass = 0; pass < 2; pass++)
        for (cnode *n = c->nodes; n; n = n->next, i++) {
            if (pass == 0 && i < start)
                continue;
            if (gw_redis_is_connected(n->r))
                return n;
            if (first == NULL)
                first = n;
        }
    return first;
}

/* ---- answering ------------------------------------------------------------------------ */

static void deliver(cop *q, gw_err err, const redisReply *rep)
{
    gw_rcluster *c = q->c;
    c->outstanding--;
    if (err == GW_OK)
        c->st.replies_ok++;
    else if (err == GW_E_INTERNAL)
        c->st.reply_errors++;
    else if (err == GW_E_STATE_UNAVAILABLE)
        c->st.unavailable++;
    gw_redis_cb cb = q->cb;
    void *arg = q->arg;
    free(q->argv);
    free(q);
    cb(arg, err, rep);
}

static void defer_cb(uv_timer_t *t)
{
    gw_rcluster *c = t->data;
    cop *q = c->deferred_head;
    c->deferred_head = c->deferred_tail = NULL;
    nomem_answer nomem[NOMEM_SLOTS];
    size_t nn = c->nomem_count;
    memcpy(nomem, c->nomem, nn * sizeof nomem[0]);
    c->nomem_count = 0;
    for (size_t i = 0; i < nn; i++)
        nomem[i].cb(nomem[i].arg, GW_E_NOMEM, NULL);
    while (q) {
        cop *next = q->next;
        deliver(q, c->closing ? GW_E_SHUTTING_DOWN : q->deferred_err, NULL);
        q = next;
    }
}

static void fail_later(gw_rcluster *c, cop *q, gw_err err)
{
    q->deferred_err = err;
    q->next = NULL;
    if (c->deferred_tail)
        c->deferred_tail->next = q;
    else
        c->deferred_head = q;
    c->deferred_tail = q;
    if (!c->closing)
        uv_timer_start(&c->defer_timer, defer_cb, 0, 0);
}

static void nomem_later(gw_rcluster *c, gw_redis_cb cb, void *arg)
{
    c->st.commands++;
    if (c->nomem_count == NOMEM_SLOTS || c->closing) {
        cb(arg, GW_E_NOMEM, NULL); /* last resort: answer now */
        return;
    }
    c->nomem[c->nomem_count++] = (nomem_answer){.cb = cb, .arg = arg};
    uv_timer_start(&c->defer_timer, defer_cb, 0, 0);
}

/* ---- the slot map ------------------------------------------------------------------------ */

static void refresh_cb(uv_timer_t *t);

static void want_refresh(gw_rcluster *c)
{
    if (c->closing)
        return;
    if (c->refresh_inflight) {
        c->refresh_again = true;
        return;
    }
    if (uv_is_active((uv_handle_t *)&c->refresh_timer))
        return;
    uint64_t now = uv_now(c->loop), due = c->last_refresh_ms + REFRESH_MIN_MS;
    uv_timer_start(&c->refresh_timer, refresh_cb, due > now ? due - now : 0, 0);
}

static void refresh_later(gw_rcluster *c)
{
    if (!c->closing && !c->refresh_inflight)
        uv_timer_start(&c->refresh_timer, refresh_cb, REFRESH_RETRY_MS, 0);
}

static const char *str_of(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_STRING ? r->str : NULL;
}

static void retire_unmapped(gw_rcluster *c)
{
    cnode **pp = &c->nodes;
    bool any = false;
    while (*pp) {
        cnode *n = *pp;
        if (n->in_map) {
            pp = &n->next;
            continue;
        }
        *pp = n->next;
        n->next = c->retired;
        c->retired = n;
        any = true;
        char port_s[16];
        snprintf(port_s, sizeof port_s, "%d", n->port);
        GW_INFO("redis_cluster_node_retired", "host", n->host, "port", port_s);
    }
    if (any)
        uv_timer_start(&c->gc_timer, gc_cb, 0, 0);
}

static void on_slots(void *arg, gw_err err, const redisReply *rep)
{
    gw_rcluster *c = arg;
    c->refresh_inflight = false;
    if (c->closing)
        return;
    if (err != GW_OK || rep->type != REDIS_REPLY_ARRAY) {
        GW_WARN("redis_cluster_slots_failed", "error",
                err == GW_OK ? "not an array" : gw_err_name(err));
        refresh_later(c);
        return;
    }
    memset(c->next_slots, 0, sizeof c->next_slots);
    for (cnode *n = c->nodes; n; n = n->next)
        n->in_map = false;
    for (size_t i = 0; i < rep->elements; i++) {
        const redisReply *e = rep->element[i];
        const redisReply *m = gw_redis_reply_elem(e, 2);
        long long lo = gw_redis_reply_int(gw_redis_reply_elem(e, 0), -1);
        long long hi = gw_redis_reply_int(gw_redis_reply_elem(e, 1), -1);
        const char *ip = str_of(gw_redis_reply_elem(m, 0));
        long long port = gw_redis_reply_int(gw_redis_reply_elem(m, 1), -1);
        if (lo < 0 || hi < lo || hi >= SLOTS || ip == NULL || port <= 0 || port > 65535)
            continue;
        if (!*ip || strcmp(ip, "?") == 0)
            ip = c->refresh_host ? c->refresh_host : "";
        cnode *n = node_get(c, ip, (int)port);
        if (n == NULL)
            continue;
        n->in_map = true;
        for (long long s = lo; s <= hi; s++)
            c->next_slots[s] = n;
    }
    bool complete = true;
    for (int s = 0; s < SLOTS && complete; s++)
        complete = c->next_slots[s] != NULL;
    memcpy(c->slots, c->next_slots, sizeof c->slots);
    c->map_ok = complete;
    c->st.map_refreshes++;
    retire_unmapped(c);
    if (!complete) {
        GW_WARN("redis_cluster_slots_incomplete", "error", "some slots have no master");
        refresh_later(c);
    } else if (c->refresh_again) {
        c->refresh_again = false;
        want_refresh(c);
    }
}

static void refresh_cb(uv_timer_t *t)
{
    gw_rcluster *c = t->data;
    if (c->closing || c->refresh_inflight)
        return;
    cnode *n = any_node(c);
    if (n == NULL || !gw_redis_is_connected(n->r)) {
        /* nothing connected: the seeds as well, in case the map went stale */
        ensure_seeds(c);
        if (n == NULL)
            n = any_node(c);
    }
    if (n == NULL) {
        refresh_later(c);
        return;
    }
    free(c->refresh_host);
    c->refresh_host = strdup(n->host);
    c->refresh_inflight = true;
    c->refresh_again = false;
    c->last_refresh_ms = uv_now(c->loop);
    const char *argv[2] = {"CLUSTER", "SLOTS"};
    gw_redis_command(n->r, 2, argv, NULL, on_slots, c);
}

/* ---- routing -------------------------------------------------------------------------------- */

static void on_node_reply(void *arg, gw_err err, const redisReply *rep);

static cnode *node_for(gw_rcluster *c, const cop *q)
{
    const char *key = NULL;
    size_t len = 0;
    if (q->script != NULL && q->nkeys > 0) {
        key = q->argv[0];
        len = q->argvlen[0];
    } else if (q->script == NULL && q->argc > 1) {
        key = q->argv[1];
        len = q->argvlen[1];
    }
    cnode *n = key != NULL ? c->slots[gw_redis_key_slot(key, len)] : NULL;
    return n != NULL ? n : any_node(c);
}

static void send_to(gw_rcluster *c, cop *q, cnode *n, bool asking)
{
    if (asking) {
        const char *argv[1] = {"ASKING"};
        gw_redis_command(n->r, 1, argv, NULL, on_noop, NULL);
    }
    if (q->script != NULL) {
        gw_redis_script *s = q->script->index < n->nscripts ? n->scripts[q->script->index] : NULL;
        gw_redis_eval(n->r, s, q->nkeys, q->argc, (const char *const *)q->argv, q->argvlen,
                      on_node_reply, q);
    } else {
        gw_redis_command(n->r, q->argc, (const char *const *)q->argv, q->argvlen, on_node_reply, q);
    }
}

/* "MOVED 3999 127.0.0.1:6381" / "ASK 3999 127.0.0.1:6381" */
static bool parse_redirect(const char *s, unsigned *slot, char *host, size_t hostlen, int *port)
{
    const char *sp = strchr(s, ' ');
    if (sp == NULL)
        return false;
    char *end;
    unsigned long v = strtoul(sp + 1, &end, 10);
    if (end == sp + 1 || *end != ' ' || v >= SLOTS)
        return false;
    const char *addr = end + 1;
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || (size_t)(colon - addr) >= hostlen)
        return false;
    long p = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || p <= 0 || p > 65535)
        return false;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    if (host[0] == '\0')
        return false;
    *slot = (unsigned)v;
    *port = (int)p;
    return true;
}

static void on_node_reply(void *arg, gw_err err, const redisReply *rep)
{
    cop *q = arg;
    gw_rcluster *c = q->c;
    if (c->closing) {
        deliver(q, GW_E_SHUTTING_DOWN, NULL);
        return;
    }
    bool in_time = uv_now(c->loop) < q->deadline_ms && q->redirects < MAX_REDIRECTS;
    if (err == GW_E_SHUTTING_DOWN) {
        /* its node was retired: the slot has a new master */
        cnode *n = in_time ? node_for(c, q) : NULL;
        if (n != NULL) {
            q->redirects++;
            send_to(c, q, n, false);
            return;
        }
        deliver(q, GW_E_STATE_UNAVAILABLE, NULL);
        return;
    }
    if (err == GW_E_INTERNAL && rep != NULL && rep->type == REDIS_REPLY_ERROR) {
        bool moved = strncmp(rep->str, "MOVED ", 6) == 0;
        bool ask = strncmp(rep->str, "ASK ", 4) == 0;
        if (moved || ask) {
            char host[256];
            unsigned slot;
            int port;
            cnode *n = NULL;
            if (in_time && parse_redirect(rep->str, &slot, host, sizeof host, &port))
                n = node_get(c, host, port);
            if (moved)
                want_refresh(c);
            if (n == NULL) {
                deliver(q, GW_E_STATE_UNAVAILABLE, NULL);
                return;
            }
            q->redirects++;
            if (moved) {
                c->slots[slot] = n;
                n->in_map = true;
                c->st.moved++;
            } else {
                c->st.asked++;
            }
            send_to(c, q, n, ask);
            return;
        }
    }
    if (err == GW_E_STATE_UNAVAILABLE)
        want_refresh(c); /* node lost, timed out, CLUSTERDOWN, TRYAGAIN... */
    deliver(q, err, rep);
}

static cop *cop_new(gw_rcluster *c, int argc, const char *const *argv, const size_t *argvlen)
{
    size_t bytes = (size_t)argc * (sizeof(char *) + sizeof(size_t));
    for (int i = 0; i < argc; i++)
        bytes += (argvlen ? argvlen[i] : strlen(argv[i])) + 1;
    cop *q = calloc(1, sizeof *q);
    char *block = q != NULL ? malloc(bytes ? bytes : 1) : NULL;
    if (block == NULL) {
        free(q);
        return NULL;
    }
    q->argv = (char **)block;
    q->argvlen = (size_t *)(block + (size_t)argc * sizeof(char *));
    char *p = block + (size_t)argc * (sizeof(char *) + sizeof(size_t));
    for (int i = 0; i < argc; i++) {
        size_t len = argvlen ? argvlen[i] : strlen(argv[i]);
        memcpy(p, argv[i], len);
        p[len] = '\0';
        q->argv[i] = p;
        q->argvlen[i] = len;
        p += len + 1;
    }
    q->argc = argc;
    q->c = c;
    return q;
}

static void issue(gw_rcluster *c, gw_redis_script *s, int nkeys, int argc, const char *const *argv,
                  const size_t *argvlen, gw_redis_cb cb, void *arg, bool valid)
{
    cop *q = cop_new(c, valid ? argc : 0, argv, argvlen);
    if (q == NULL) {
        nomem_later(c, cb, arg);
        return;
    }
    q->cb = cb;
    q->arg = arg;
    q->script = s;
    q->nkeys = nkeys;
    q->deadline_ms = uv_now(c->loop) + c->o.command_timeout_ms;
    c->outstanding++;
    c->st.commands++;
    if (c->closing) {
        fail_later(c, q, GW_E_SHUTTING_DOWN);
        return;
    }
    if (!valid) {
        fail_later(c, q, GW_E_INTERNAL);
        return;
    }
    if (c->outstanding > c->o.max_pending) {
        c->st.rejected_full++;
        fail_later(c, q, GW_E_STATE_UNAVAILABLE);
        return;
    }
    cnode *n = node_for(c, q);
    if (n == NULL) {
        c->st.rejected_offline++;
        want_refresh(c);
        fail_later(c, q, GW_E_STATE_UNAVAILABLE);
        return;
    }
    send_to(c, q, n, false);
}

void gw_rcluster_eval(gw_rcluster *c, gw_redis_script *s, int nkeys, int argc,
                      const char *const *argv, const size_t *argvlen, gw_redis_cb cb, void *arg)
{
    bool valid = s != NULL && nkeys >= 0 && argc >= 0 && nkeys <= argc;
    issue(c, s, nkeys, argc, argv, argvlen, cb, arg, valid);
}

void gw_rcluster_command(gw_rcluster *c, int argc, const char *const *argv, const size_t *argvlen,
                         gw_redis_cb cb, void *arg)
{
    issue(c, NULL, 0, argc, argv, argvlen, cb, arg, argc > 0);
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

static bool parse_seeds(gw_rcluster *c, const char *list)
{
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ')
            e++;
        const char *colon = NULL;
        for (const char *x = p; x < e; x++)
            if (*x == ':')
                colon = x;
        if (colon == NULL || colon == p || c->nseeds == MAX_SEEDS)
            return false;
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (end != e || port <= 0 || port > 65535)
            return false;
        char *host = strndup(p, (size_t)(colon - p));
        if (host == NULL)
            return false;
        /* "[::1]:7000" */
        if (host[0] == '[' && host[strlen(host) - 1] == ']') {
            memmove(host, host + 1, strlen(host));
            host[strlen(host) - 1] = '\0';
        }
        c->seed_host[c->nseeds] = host;
        c->seed_port[c->nseeds++] = (int)port;
        p = e;
    }
    return c->nseeds > 0;
}

static void release(gw_rcluster *c)
{
    gw_redis *shell = c->shell;
    for (int i = 0; i < c->nseeds; i++)
        free(c->seed_host[i]);
    if (c->password) {
        memset(c->password, 0, strlen(c->password));
        free(c->password);
    }
    free(c->refresh_host);
    free(c->username);
    free(c->scripts);
    free(c);
    gw_redis_shell_release(shell);
}

static void on_closed(uv_handle_t *h)
{
    gw_rcluster *c = h->data;
    if (--c->handles_open == 0)
        release(c);
}

gw_err gw_rcluster_new(uv_loop_t *loop, const gw_redis_opts *o, gw_redis *shell, gw_rcluster **out)
{
    *out = NULL;
    gw_rcluster *c = calloc(1, sizeof *c);
    if (c == NULL)
        return GW_E_NOMEM;
    c->loop = loop;
    c->shell = shell;
    c->o = *o;
    gw_redis_opts_defaults(&c->o);
    c->o.cluster_nodes = NULL;
    c->o.password = NULL;
    c->o.password_env = NULL;
    c->o.username = NULL;
    c->o.username_env = NULL;
    if (!parse_seeds(c, o->cluster_nodes)) {
        GW_ERROR("redis_cluster_bad_nodes", "error", "expected host:port[,host:port...]");
        for (int i = 0; i < c->nseeds; i++)
            free(c->seed_host[i]);
        free(c);
        return GW_E_CONFIG;
    }
    if ((o->password && *o->password && (c->password = strdup(o->password)) == NULL) ||
        (o->username && *o->username && (c->username = strdup(o->username)) == NULL)) {
        for (int i = 0; i < c->nseeds; i++)
            free(c->seed_host[i]);
        free(c->password);
        free(c);
        return GW_E_NOMEM;
    }
    uv_timer_init(loop, &c->refresh_timer);
    uv_timer_init(loop, &c->defer_timer);
    uv_timer_init(loop, &c->gc_timer);
    c->refresh_timer.data = c->defer_timer.data = c->gc_timer.data = c;
    c->handles_open = 3;
    ensure_seeds(c);
    want_refresh(c);
    *out = c;
    return GW_OK;
}

void gw_rcluster_free(gw_rcluster *c)
{
    c->closing = true;
    uv_timer_stop(&c->refresh_timer);
    uv_timer_stop(&c->defer_timer);
    uv_timer_stop(&c->gc_timer);
    defer_cb(&c->defer_timer);
    memset(c->slots, 0, sizeof c->slots);
    while (c->nodes) {
        cnode *n = c->nodes;
        c->nodes = n->next;
        node_close(n);
    }
    gc_cb(&c->gc_timer);
    defer_cb(&c->defer_timer); /* anything a callback issued meanwhile */
    uv_close((uv_handle_t *)&c->refresh_timer, on_closed);
    uv_close((uv_handle_t *)&c->defer_timer, on_closed);
    uv_close((uv_handle_t *)&c->gc_timer, on_closed);
}

void gw_rcluster_script_added(gw_rcluster *c, gw_redis_script *s)
{
    if (c->nscripts == c->cap_scripts) {
        size_t cap = c->cap_scripts ? 2 * c->cap_scripts : 16;
        gw_redis_script **p = realloc(c->scripts, cap * sizeof *p);
        if (p == NULL) {
            GW_ERROR("redis_cluster_script_add_failed", "error", "out of memory");
            return;
        }
        c->scripts = p;
        c->cap_scripts = cap;
    }
    c->scripts[c->nscripts++] = s;
    for (cnode *n = c->nodes; n; n = n->next)
        if (!node_add_script(n, s))
            GW_WARN("redis_cluster_script_add_failed", "host", n->host);
}

bool gw_rcluster_is_connected(const gw_rcluster *c)
{
    if (!c->map_ok || c->closing)
        return false;
    for (const cnode *n = c->nodes; n; n = n->next)
        if (n->in_map && !gw_redis_is_connected(n->r))
            return false;
    return true;
}

void gw_rcluster_get_stats(const gw_rcluster *c, gw_redis_stats *out)
{
    *out = c->st;
    for (const cnode *n = c->nodes; n; n = n->next) {
        gw_redis_stats s;
        gw_redis_get_stats(n->r, &s);
        out->timeouts += s.timeouts;
        out->rejected_offline += s.rejected_offline;
        out->rejected_full += s.rejected_full;
        out->late_replies += s.late_replies;
        out->noscript_reloads += s.noscript_reloads;
        out->connects += s.connects;
        out->connect_failures += s.connect_failures;
        out->disconnects += s.disconnects;
        if (n->in_map)
            out->nodes++;
    }
    out->pending = c->outstanding;
}
