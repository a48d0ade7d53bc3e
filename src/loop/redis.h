/*
 * redis: one asynchronous Redis connection on the worker's libuv loop.
 *
 * Built on hiredis 0.14 async + adapters/libuv.h. The module owns the
 * hiredis context and everything hiredis 0.14 lacks:
 *   - a connect timeout and a handshake (AUTH with a password read from an
 *     environment variable and never logged, "AUTH user password" when an ACL
 *     user name is given too, SELECT db, SCRIPT LOAD of every
 *     registered script) before any user command is sent;
 *   - reconnect after an error, a disconnect or a timed-out handshake, with
 *     capped exponential backoff and jitter, reset after a good handshake;
 *   - a per-command timeout: every command has a deadline; one uv timer
 *     watches the oldest. A command that times out is answered
 *     GW_E_STATE_UNAVAILABLE at once; its late reply is dropped safely (the
 *     request record lives until hiredis is done with it);
 *   - a bound on outstanding commands (queued + in flight): beyond
 *     max_pending a command fails fast with GW_E_STATE_UNAVAILABLE;
 *   - a script registry: gw_redis_script_add() registers Lua once; the SHA-1
 *     is computed locally, SCRIPT LOAD runs at each (re)connect, and EVALSHA
 *     that meets NOSCRIPT (SCRIPT FLUSH, failover to a fresh replica) is
 *     re-sent once as SCRIPT LOAD + EVALSHA, pipelined, without the caller
 *     noticing;
 *   - counters for metrics (gw_redis_stats).
 *
 * Callback contract (the invariant every user relies on):
 *   - every command's callback runs EXACTLY ONCE, and NEVER inside the call
 *     that issued it (fail-fast errors are deferred to the next loop turn);
 *   - err == GW_OK: reply is the Redis reply (any type but an error reply);
 *     err == GW_E_INTERNAL: Redis answered with an error reply (reply->type is
 *     REDIS_REPLY_ERROR, reply->str says why: a script error, wrong type...);
 *     err == GW_E_STATE_UNAVAILABLE: not connected, timed out, disconnected,
 *     queue full, or Redis busy/loading; reply is NULL;
 *     err == GW_E_SHUTTING_DOWN: gw_redis_free() ran; reply is NULL (these
 *     callbacks run inside gw_redis_free, the one exception to the rule).
 *   - the reply and everything it points to are owned by hiredis and valid
 *     only during the callback: copy what you keep.
 *
 * Cluster mode (opts.cluster_nodes set; src/loop/redis_cluster.c): the same
 * object and the same contract over one connection like the above per master
 * node. A slot map is read with CLUSTER SLOTS from any reachable node (seeds
 * first); each command goes to the master of the slot of its first key
 * (EVALSHA: KEYS[1]; a plain command: argv[1]; none: any node); MOVED updates
 * the slot and re-sends (and refreshes the map), ASK re-sends once to the named
 * node after ASKING; a connection error, a timeout or CLUSTERDOWN schedules a
 * map refresh (at most one per 100 ms) and the command fails with
 * GW_E_STATE_UNAVAILABLE, so the callers' failure policies apply until a
 * replica has taken over. Nodes that leave the map are closed. Scripts are
 * registered with every node. A command re-sent after a redirect keeps its
 * original deadline.
 *
 * States: DISCONNECTED (backoff wait: commands fail fast) -> CONNECTING
 * (TCP + handshake: commands queue, bounded, until ready or their deadline) ->
 * READY (commands go straight to the socket, pipelined) -> on any error back
 * to DISCONNECTED. Pass the context around; there is no global.
 */
#ifndef GW_LOOP_REDIS_H
#define GW_LOOP_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <uv.h>

#include "common/err.h"

typedef struct gw_redis gw_redis;
typedef struct gw_redis_script gw_redis_script;

typedef struct {
    const char *host;         /* copied; default "127.0.0.1" when NULL */
    int port;                 /* default 6379 when 0 */
    const char *password_env; /* name of the env var holding the password; NULL/"" = no AUTH */
    const char *password;     /* the secret itself (config resolves it); wins over password_env */
    const char
        *username_env;    /* env var with an ACL user name: AUTH user password; NULL/"" = none */
    const char *username; /* the name itself; wins over username_env (needs a password) */
    int db;               /* SELECT db when > 0 */
    uint32_t connect_timeout_ms; /* TCP connect + handshake; default 1000 */
    uint32_t command_timeout_ms; /* per command, from issue to reply; default 250 */
    uint32_t reconnect_min_ms;   /* first backoff; default 100 */
    uint32_t reconnect_max_ms;   /* backoff cap; default 5000 */
    uint32_t max_pending;        /* queued + in flight; default 10000 */
    /* Cluster mode: "host:port,host:port,..." seed nodes (copied); NULL or ""
     * = standalone on host:port. db must be 0 in cluster mode. */
    const char *cluster_nodes;
} gw_redis_opts;

typedef struct {
    uint64_t commands;         /* issued by callers */
    uint64_t replies_ok;       /* answered GW_OK */
    uint64_t reply_errors;     /* Redis error replies handed to callers */
    uint64_t unavailable;      /* answered STATE_UNAVAILABLE (all causes below included) */
    uint64_t timeouts;         /* of which: per-command timeout */
    uint64_t rejected_full;    /* of which: max_pending reached */
    uint64_t rejected_offline; /* of which: issued while disconnected */
    uint64_t late_replies;     /* replies that arrived after their timeout, dropped */
    uint64_t noscript_reloads; /* EVALSHA retried after NOSCRIPT */
    uint64_t connects;         /* successful handshakes */
    uint64_t connect_failures; /* failed connects / handshakes */
    uint64_t disconnects;      /* lost READY connections */
    uint64_t moved;            /* cluster: MOVED redirects followed */
    uint64_t asked;            /* cluster: ASK redirects followed */
    uint64_t map_refreshes;    /* cluster: slot maps read */
    uint32_t nodes;            /* cluster: master connections now */
    uint32_t pending;          /* outstanding now */
    bool connected;            /* READY now (cluster: every slot's master READY) */
} gw_redis_stats;

/* Exactly once per command; see the contract above. */
typedef void (*gw_redis_cb)(void *arg, gw_err err, const redisReply *reply);

/* Fill defaults for zero fields. */
void gw_redis_opts_defaults(gw_redis_opts *o);

/* Create and start connecting. opts is copied. The password is read from the
 * environment now and kept in memory only. GW_E_CONFIG on bad options. */
gw_err gw_redis_new(uv_loop_t *loop, const gw_redis_opts *opts, gw_redis **out);

/* Fail every outstanding command with GW_E_SHUTTING_DOWN (inside this call),
 * disconnect, and close the handles; memory is released once the loop has run
 * the close callbacks (run the loop until it has no more handles). */
void gw_redis_free(gw_redis *r);

/* True when the handshake is done and commands go to the socket. */
bool gw_redis_is_connected(const gw_redis *r);

/* Register a Lua script (the scripts themselves are src/<module>/lua/NAME.lua,
 * embedded at build time: common/lua_scripts.h). The registry owns a copy of
 * lua; the returned handle lives as long as r. Scripts may be added at any
 * time (connected or not); a connected client loads it at once, pipelined
 * before any EVALSHA. NULL when lua is NULL or memory ran out. */
gw_redis_script *gw_redis_script_add(gw_redis *r, const char *lua);
/* Hex SHA-1 of the script (40 chars + NUL). */
const char *gw_redis_script_sha(const gw_redis_script *s);

/* EVALSHA script with argv[0..nkeys) as KEYS and argv[nkeys..argc) as ARGV.
 * argv/argvlen are copied (binary safe); argvlen NULL means strlen. */
void gw_redis_eval(gw_redis *r, gw_redis_script *s, int nkeys, int argc, const char *const *argv,
                   const size_t *argvlen, gw_redis_cb cb, void *arg);

/* Any command, argv form (binary safe, copied by hiredis). */
void gw_redis_command(gw_redis *r, int argc, const char *const *argv, const size_t *argvlen,
                      gw_redis_cb cb, void *arg);

/* True for a cluster-mode client (opts.cluster_nodes). */
bool gw_redis_is_cluster(const gw_redis *r);

/* Redis Cluster hash slot (0..16383) of a key: CRC16 (XMODEM) of the key, or
 * of the text between the first '{' and the next '}' when that is non-empty. */
unsigned gw_redis_key_slot(const char *key, size_t len);

/* Snapshot of the counters. */
void gw_redis_get_stats(const gw_redis *r, gw_redis_stats *out);

/* Reply helpers: integer of an INTEGER reply (or of a decimal STRING), or dflt. */
long long gw_redis_reply_int(const redisReply *r, long long dflt);
/* Element i of an ARRAY reply, or NULL. */
const redisReply *gw_redis_reply_elem(const redisReply *r, size_t i);

#endif
