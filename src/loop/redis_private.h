/*
 * redis_private: what redis.c and redis_cluster.c share (not for callers).
 */
#ifndef GW_LOOP_REDIS_PRIVATE_H
#define GW_LOOP_REDIS_PRIVATE_H

#include "loop/redis.h"

struct gw_redis_script {
    gw_redis_script *next;
    char *lua;
    char sha[41];
    size_t index; /* registration order: the cluster's per-node script table */
};

typedef struct gw_rcluster gw_rcluster;

/* redis_cluster.c: the cluster behind a gw_redis in cluster mode (shell). o
 * holds the resolved password and user name in o->password and o->username
 * (copied by each node). */
gw_err gw_rcluster_new(uv_loop_t *loop, const gw_redis_opts *o, gw_redis *shell, gw_rcluster **out);
/* Answers what is outstanding with GW_E_SHUTTING_DOWN (inside this call),
 * closes every node; gw_redis_shell_release(shell) runs once all is closed. */
void gw_rcluster_free(gw_rcluster *c);
void gw_rcluster_script_added(gw_rcluster *c, gw_redis_script *s);
void gw_rcluster_eval(gw_rcluster *c, gw_redis_script *s, int nkeys, int argc,
                      const char *const *argv, const size_t *argvlen, gw_redis_cb cb, void *arg);
void gw_rcluster_command(gw_rcluster *c, int argc, const char *const *argv, const size_t *argvlen,
                         gw_redis_cb cb, void *arg);
bool gw_rcluster_is_connected(const gw_rcluster *c);
void gw_rcluster_get_stats(const gw_rcluster *c, gw_redis_stats *out);

/* redis.c: frees the shell (scripts, password) after its cluster closed. */
void gw_redis_shell_release(gw_redis *shell);

#endif
