/*
 * kconf: librdkafka configuration helpers shared by the worker's consumer
 * (kafka/consumer.h) and producer (kafka/producer.h): property setters that
 * log what librdkafka rejects, the properties both clients get (bootstrap,
 * client.id, kafka.properties), the log callback that turns librdkafka's
 * lines into modelgw log lines, and the error callback's common part.
 */
#ifndef GW_KAFKA_KCONF_H
#define GW_KAFKA_KCONF_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"

/* Set one property; v == NULL leaves it unset. Logs kafka_config on failure. */
bool gw_kconf_set(rd_kafka_conf_t *c, const char *k, const char *v);
bool gw_kconf_int(rd_kafka_conf_t *c, const char *k, int64_t v);

/*
 * What both clients get, after their own properties: bootstrap.servers,
 * client.id, then every kafka.properties entry ("key=value", values of any
 * length; a property the client type does not know is only warned about by
 * librdkafka), then the secrets from the environment (k->sasl_password as
 * sasl.password, k->ssl_key_password as ssl.key.password: they win over
 * kafka.properties), and the log callback. A rejected secret (any property
 * whose name holds "password" or "secret") is logged without librdkafka's
 * message, which may quote the value. False (logged) when one is rejected or
 * has no '='. The caller then sets its error callback (calling
 * gw_kconf_error) and its opaque.
 */
bool gw_kconf_common(rd_kafka_conf_t *c, const gw_kafka_config *k, const char *bootstrap);

/* The common part of an error callback: logs kafka_error; true when the
 * error is fatal (RD_KAFKA_RESP_ERR__FATAL) and the client is unusable. */
bool gw_kconf_error(rd_kafka_t *rk, int err, const char *reason);

#endif
