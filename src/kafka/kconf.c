/* kconf: librdkafka configuration helpers; see kconf.h. */
#include "kafka/kconf.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

bool gw_kconf_set(rd_kafka_conf_t *c, const char *k, const char *v)
{
    char err[256];
    if (v == NULL)
        return true;
    if (rd_kafka_conf_set(c, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) {
        GW_ERROR("kafka_config", "property", k, "error", err);
        return false;
    }
    return true;
}

bool gw_kconf_int(rd_kafka_conf_t *c, const char *k, int64_t v)
{
    char s[32];
    snprintf(s, sizeof s, "%" PRId64, v);
    return gw_kconf_set(c, k, s);
}

static void on_rdkafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    gw_log_level l = level <= 3   ? GW_LOG_ERROR
                     : level <= 4 ? GW_LOG_WARN
                     : level <= 6 ? GW_LOG_INFO
                                  : GW_LOG_DEBUG;
    gw_log(l, "rdkafka", "client", rd_kafka_name(rk), "facility", fac, "message", buf,
           (const char *)0);
}

/* A secret: librdkafka's message is not logged (it may quote the value). */
static bool set_secret(rd_kafka_conf_t *c, const char *k, const char *v)
{
    char err[256];
    if (v == NULL || v[0] == '\0')
        return true;
    if (rd_kafka_conf_set(c, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) {
        GW_ERROR("kafka_config", "property", k, "error", "value rejected (not shown)");
        return false;
    }
    return true;
}

bool gw_kconf_common(rd_kafka_conf_t *c, const gw_kafka_config *k, const char *bootstrap)
{
    bool ok = gw_kconf_set(c, "bootstrap.servers", bootstrap) &&
              gw_kconf_set(c, "client.id", k->client_id);
    for (size_t i = 0; ok && i < k->property_count; i++) {
        const char *kv = k->properties[i];
        const char *eq = strchr(kv, '=');
        if (eq == NULL)
            return false;
        /* The key is copied; the value (any length) is used in place. */
        char *key = strndup(kv, (size_t)(eq - kv));
        if (key == NULL)
            return false;
        bool secret = strstr(key, "password") != NULL || strstr(key, "secret") != NULL;
        ok = secret ? set_secret(c, key, eq + 1) : gw_kconf_set(c, key, eq + 1);
        free(key);
    }
    /* Secrets from the environment win over kafka.properties. */
    ok = ok && set_secret(c, "sasl.password", k->sasl_password) &&
         set_secret(c, "ssl.key.password", k->ssl_key_password);
    rd_kafka_conf_set_log_cb(c, on_rdkafka_log);
    return ok;
}

bool gw_kconf_error(rd_kafka_t *rk, int err, const char *reason)
{
    GW_WARN("kafka_error", "client", rd_kafka_name(rk), "error", reason);
    return err == RD_KAFKA_RESP_ERR__FATAL;
}
