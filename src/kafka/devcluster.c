/* devcluster: librdkafka mock cluster for dev mode; see devcluster.h. */
#include "kafka/devcluster.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"

struct gw_devcluster {
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mc;
    char *bootstrap;
};

static gw_err write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        GW_WARN("dev_bootstrap_file", "path", path, "error", strerror(errno));
        return GW_E_IO;
    }
    fprintf(f, "%s\n", text);
    fclose(f);
    return GW_OK;
}

static void publish_address(const gw_config *cfg, const char *bootstrap)
{
    const char *run = getenv("MODELGW_RUN_DIR");
    if (run == NULL || *run == '\0')
        run = "./run";
    mkdir(run, 0755);
    char path[4096];
    snprintf(path, sizeof path, "%s/dev.bootstrap", run);
    write_file(path, bootstrap);
    if (cfg->worker.dev_bootstrap_file != NULL && strcmp(cfg->worker.dev_bootstrap_file, path) != 0)
        write_file(cfg->worker.dev_bootstrap_file, bootstrap);
}

gw_err gw_devcluster_new(const gw_config *cfg, gw_devcluster **out)
{
    gw_devcluster *d = calloc(1, sizeof *d);
    if (d == NULL)
        return GW_E_NOMEM;
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "client.id", "modelgw-dev-cluster", err, sizeof err);
    /* This handle only owns the mock cluster; it never connects anywhere. */
    rd_kafka_conf_set(c, "log_level", "3", err, sizeof err);
    d->rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    if (d->rk == NULL) {
        rd_kafka_conf_destroy(c);
        free(d);
        return GW_E_IO;
    }
    d->mc = rd_kafka_mock_cluster_new(d->rk, 1);
    if (d->mc == NULL)
        goto fail;
    const gw_kafka_config *k = &cfg->kafka;
    const char *tiers[] = {k->topics.high, k->topics.normal, k->topics.low};
    const char *outs[] = {k->topics.responses, k->topics.chunks, k->topics.usage, k->topics.dlq};
    for (int i = 0; i < 3; i++)
        if (rd_kafka_mock_topic_create(d->mc, tiers[i], GW_DEV_TIER_PARTITIONS, 1) != 0)
            goto fail;
    for (int i = 0; i < 4; i++)
        if (rd_kafka_mock_topic_create(d->mc, outs[i], GW_DEV_TIER_PARTITIONS, 1) != 0)
            goto fail;
    d->bootstrap = strdup(rd_kafka_mock_cluster_bootstraps(d->mc));
    if (d->bootstrap == NULL)
        goto fail;
    publish_address(cfg, d->bootstrap);
    GW_INFO("dev_cluster_started", "bootstrap", d->bootstrap);
    *out = d;
    return GW_OK;
fail:
    gw_devcluster_free(d);
    return GW_E_IO;
}

const char *gw_devcluster_bootstrap(const gw_devcluster *d)
{
    return d->bootstrap;
}

void gw_devcluster_free(gw_devcluster *d)
{
    if (d == NULL)
        return;
    if (d->mc != NULL)
        rd_kafka_mock_cluster_destroy(d->mc);
    if (d->rk != NULL)
        rd_kafka_destroy(d->rk);
    free(d->bootstrap);
    free(d);
}
