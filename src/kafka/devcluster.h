/*
 * devcluster: the embedded Kafka of `modelgw --dev`: librdkafka's mock
 * cluster, owned by a dedicated producer handle that lives as long as the
 * process. It creates the configured request tiers (3 partitions each) and
 * output topics, and publishes its bootstrap address in files the CLI reads.
 * The mock cluster runs on librdkafka's own threads; nothing here touches
 * the worker's loop.
 */
#ifndef GW_KAFKA_DEVCLUSTER_H
#define GW_KAFKA_DEVCLUSTER_H

#include "common/err.h"
#include "config/config.h"

typedef struct gw_devcluster gw_devcluster;

enum { GW_DEV_TIER_PARTITIONS = 3 };

/* Writes the bootstrap address to ${MODELGW_RUN_DIR:-./run}/dev.bootstrap and
 * to cfg->worker.dev_bootstrap_file. */
gw_err gw_devcluster_new(const gw_config *cfg, gw_devcluster **out);
const char *gw_devcluster_bootstrap(const gw_devcluster *d);
void gw_devcluster_free(gw_devcluster *d);

#endif
