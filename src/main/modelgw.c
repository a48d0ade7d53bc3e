/*
 * modelgw: the worker process.
 *
 *   modelgw [-c FILE] [--set key=value]... [--dev] [--version] [--help]
 *
 * Exit codes: 0 graceful shutdown with everything acknowledged committed;
 * 1 runtime failure (Kafka fatal error, drain timed out with work left);
 * 2 usage or configuration error; 130 a second SIGTERM/SIGINT during the
 * drain (immediate exit, unfinished work is redelivered to the group).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "common/log.h"
#include "config/config.h"
#include "kafka/devcluster.h"
#include "worker/worker.h"

enum { MAX_SETS = 256 };

typedef struct {
    const char *config_path;
    const char *sets[MAX_SETS];
    int set_count;
    bool dev;
} args;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: modelgw [-c FILE] [--set key=value]... [--dev] [--version] [--help]\n"
            "\n"
            "Consume InferenceRequests from Kafka, serve them, publish responses.\n"
            "  -c, --config FILE   libconfig file (default: built-in defaults;\n"
            "                      with --dev: config/dev.conf when present)\n"
            "  --set key=value     override one setting (repeatable), e.g.\n"
            "                      --set kafka.bootstrap=127.0.0.1:9092\n"
            "  --dev               embedded mode: in-process Kafka mock cluster, mock\n"
            "                      provider; bootstrap written to $MODELGW_RUN_DIR/dev.bootstrap\n"
            "  --version           print the version\n"
            "  --help              this text\n"
            "Exit codes: 0 ok, 1 runtime failure, 2 usage or config error,\n"
            "130 second signal during shutdown.\n");
}

static int parse_args(int argc, char **argv, args *a)
{
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if ((strcmp(s, "-c") == 0 || strcmp(s, "--config") == 0) && i + 1 < argc) {
            a->config_path = argv[++i];
        } else if (strcmp(s, "--set") == 0 && i + 1 < argc) {
            if (a->set_count == MAX_SETS)
                return 2;
            a->sets[a->set_count++] = argv[++i];
        } else if (strcmp(s, "--dev") == 0) {
            a->dev = true;
        } else if (strcmp(s, "--version") == 0) {
            printf("modelgw %s\n", MODELGW_VERSION);
            return 0;
        } else if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "modelgw: unknown or incomplete argument '%s'\n", s);
            usage(stderr);
            return 2;
        }
    }
    return -1;
}

static gw_err load_config(const args *a, gw_config **cfg, char *errbuf, size_t errlen)
{
    const char *path = a->config_path;
    char dev_path[4096];
    if (path == NULL && a->dev) {
        const char *src = getenv("MODELGW_SOURCE_DIR");
        snprintf(dev_path, sizeof dev_path, "%s/config/dev.conf", src ? src : MODELGW_SOURCE_DIR);
        if (access(dev_path, R_OK) == 0)
            path = dev_path;
        else if (access("config/dev.conf", R_OK) == 0)
            path = "config/dev.conf";
    }
    /* --dev is an override before the user's: a later --set worker.dev=false wins. */
    const char *sets[MAX_SETS + 1];
    size_t n = 0;
    if (a->dev)
        sets[n++] = "worker.dev=true";
    for (int i = 0; i < a->set_count; i++)
        sets[n++] = a->sets[i];
    return gw_config_load_with(path, sets, n, cfg, errbuf, errlen);
}

static int run(gw_config *cfg)
{
    gw_devcluster *dev = NULL;
    const char *bootstrap = NULL;
    if (cfg->worker.dev) {
        if (gw_devcluster_new(cfg, &dev) != GW_OK) {
            fprintf(stderr, "modelgw: cannot start the embedded Kafka cluster\n");
            return 1;
        }
        bootstrap = gw_devcluster_bootstrap(dev);
        printf("modelgw dev mode: Kafka bootstrap %s\n", bootstrap);
        fflush(stdout);
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    gw_worker *w = NULL;
    int code = 1;
    gw_err err = gw_worker_new(&loop, cfg, bootstrap, &w);
    if (err == GW_OK)
        err = gw_worker_start(w);
    if (err != GW_OK) {
        fprintf(stderr, "modelgw: cannot start the worker: %s\n", gw_strerror(err));
        code = err == GW_E_CONFIG ? 2 : 1;
    } else {
        uv_run(&loop, UV_RUN_DEFAULT);
        code = gw_worker_exit_code(w);
    }
    gw_worker_free(w);
    /* Close callbacks of what the worker freed (HTTP clients, Redis, state
     * timers) run on the loop; bounded, in case a handle stays active. */
    for (int i = 0; i < 1000 && uv_loop_alive(&loop); i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    if (uv_loop_close(&loop) != 0)
        fprintf(stderr, "modelgw: handles left open at exit\n");
    gw_devcluster_free(dev);
    return code;
}

int main(int argc, char **argv)
{
    args a = {0};
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    gw_config *cfg = NULL;
    char errbuf[512] = "";
    gw_err err = load_config(&a, &cfg, errbuf, sizeof errbuf);
    if (err != GW_OK) {
        fprintf(stderr, "modelgw: %s\n", errbuf[0] ? errbuf : gw_strerror(err));
        gw_config_free(cfg);
        return 2;
    }
    gw_log_set_level(cfg->log.level);
    gw_log_set_debug_content(cfg->log.debug_content);
    rc = run(cfg);
    gw_config_free(cfg);
    return rc;
}
