/*
 * cli_kafka: the Kafka side shared by modelgw-cli and modelgw-bench.
 *
 * These tools are short-lived command-line programs, not loop-driven workers:
 * they use librdkafka's blocking calls (metadata, watermarks, consumer poll)
 * on their one thread, which is fine outside the worker's event loop.
 *
 * - Bootstrap discovery: --bootstrap, else $MODELGW_KAFKA, else the file the
 *   dev-mode worker writes (${MODELGW_RUN_DIR:-./run}/dev.bootstrap), else
 *   127.0.0.1:19092.
 * - Topic names: every topic from one prefix ("llm" gives llm.requests.high,
 *   llm.responses, ...), each overridable.
 * - "From now" consumption without a consumer group race: the output topics'
 *   high watermarks are read and assigned explicitly BEFORE anything is
 *   produced, so no answer can slip past (OFFSET_END would be resolved only
 *   when fetching starts, possibly after the answer landed).
 */
#ifndef GW_CLI_KAFKA_H
#define GW_CLI_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define GW_CLI_DEFAULT_BOOTSTRAP "127.0.0.1:19092"
#define GW_CLI_TOPIC_MAX         200

typedef struct {
    char high[GW_CLI_TOPIC_MAX], normal[GW_CLI_TOPIC_MAX], low[GW_CLI_TOPIC_MAX];
    char responses[GW_CLI_TOPIC_MAX], chunks[GW_CLI_TOPIC_MAX], usage[GW_CLI_TOPIC_MAX];
    char dlq[GW_CLI_TOPIC_MAX];
} gw_cli_topics;

/* Fills every name from prefix ("llm" when NULL). GW_E_LIMIT when too long. */
gw_err gw_cli_topics_from_prefix(gw_cli_topics *t, const char *prefix);
/* Topic of a tier name ("high" | "normal" | "low"); NULL when unknown. */
const char *gw_cli_topics_tier(const gw_cli_topics *t, const char *tier);

/* Resolves the bootstrap address as described above; *source names where it
 * came from ("flag", "env", the file path, "default"). */
void gw_cli_bootstrap(const char *flag, char *out, size_t n, const char **source);

typedef enum {
    GW_CLI_PRODUCER_INTERACTIVE, /* small linger: one request, answer fast */
    GW_CLI_PRODUCER_BULK,        /* large batches, linger 20 ms */
} gw_cli_producer_kind;

/* Delivery report: err is RD_KAFKA_RESP_ERR_NO_ERROR once the broker has it;
 * msg_opaque is what gw_cli_produce was given. */
typedef void (*gw_cli_delivery_fn)(void *opaque, void *msg_opaque, rd_kafka_resp_err_t err);

/* Extra librdkafka properties ("key=value", not copied: they must outlive
 * every client) applied last to every producer and consumer made after this
 * call; modelgw-bench --kafka-property. */
void gw_cli_kafka_properties(const char *const *kv, size_t n);

/* New producer (idempotent, acks=all). dr may be NULL. NULL with a message in err. */
rd_kafka_t *gw_cli_producer_new(const char *bootstrap, gw_cli_producer_kind kind,
                                gw_cli_delivery_fn dr, void *opaque, char *err, size_t errlen);
/* Flushes (up to flush_timeout_ms), destroys, frees; returns how many
 * messages were still undelivered. */
int gw_cli_producer_free(rd_kafka_t *rk, int flush_timeout_ms);
/* New consumer for explicit assignment (unique group id, no commits). */
rd_kafka_t *gw_cli_consumer_new(const char *bootstrap, char *err, size_t errlen);

/* Creates the topics that do not exist yet (partitions each, broker default
 * replication). Existing topics are left alone. */
gw_err gw_cli_ensure_topics(rd_kafka_t *rk, const char *const *topics, size_t n, int partitions,
                            int timeout_ms, char *err, size_t errlen);

/* Assigns every partition of the topics, at their current end (high
 * watermark) or at the beginning. Blocks up to timeout_ms per call. */
gw_err gw_cli_assign(rd_kafka_t *consumer, const char *const *topics, size_t n, bool from_beginning,
                     int timeout_ms, char *err, size_t errlen);

/* Copies header `name` of msg into out (NUL-terminated); false when absent
 * or too long. */
bool gw_cli_header(const rd_kafka_message_t *msg, const char *name, char *out, size_t n);

/* Produce with key and a request_id header; RD_KAFKA_RESP_ERR_NO_ERROR or the
 * error (queue full is retried after polling, up to timeout_ms). */
rd_kafka_resp_err_t gw_cli_produce(rd_kafka_t *rk, const char *topic, const char *key,
                                   const void *value, size_t len, const char *content_type,
                                   void *msg_opaque, int timeout_ms);

int64_t gw_cli_now_ms(void);
int64_t gw_cli_mono_us(void);

#endif
