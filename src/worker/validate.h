/*
 * validate: checks a decoded request against the worker's limits before any
 * work is done for it. Pure (the clock is a parameter). The first failing
 * rule wins and names the field, so the error response can say what to fix.
 *
 * Rules, in order: reply_topic first (when set), so that no error of a
 * request is ever sent to a topic it may not name (an error of this rule is
 * answered on the default responses topic): a legal Kafka topic name
 * (1..249 of [a-zA-Z0-9._-]), not forbidden (internal topics "__*" and
 * every topic in lim->forbidden: the request, chunk, usage and DLQ topics),
 * and either the default responses topic or one the allow-list names
 * (exactly or as an fnmatch(3) pattern; an empty list allows only the
 * default). Then: non-empty request_id; at least one message; every role a
 * known symbol; temperature a number in 0..2; 1 <= max_tokens <= limit;
 * identifiers (agent_did, tenant_id, custom_id, batch_id, model) at most
 * GW_MAX_ID_BYTES; total content bytes (messages + system prompt) <= limit;
 * then the deadline (DEADLINE_EXCEEDED when passed). A request_id longer than GW_MAX_ID_BYTES
 * never gets here: outputs are keyed by it, so the worker sends it to the DLQ.
 */
#ifndef GW_WORKER_VALIDATE_H
#define GW_WORKER_VALIDATE_H

#include <stdint.h>

#include "common/err.h"
#include "model/model.h"

/* Identifiers are keys (Kafka, Redis) and are echoed in every output. */
enum { GW_MAX_ID_BYTES = 256 };

enum { GW_VALIDATE_MAX_FORBIDDEN = 8 };

typedef struct {
    int32_t max_tokens_limit;
    uint64_t max_content_bytes;
    const char *default_reply_topic; /* always allowed (kafka.topics.responses) */
    const char *const *reply_topics; /* allow-list: names or fnmatch patterns; may be NULL */
    size_t reply_topic_count;
    const char *forbidden[GW_VALIDATE_MAX_FORBIDDEN]; /* never a reply_topic */
    size_t forbidden_count;
} gw_validate_limits;

/* GW_OK or the named error; *field names the offending field (static). */
gw_err gw_validate_request(const gw_request *req, const gw_validate_limits *lim, int64_t now_ms,
                           const char **field);

/* Drops identifiers longer than GW_MAX_ID_BYTES (agent_did becomes ""), so
 * the error answer to such a request stays small enough to publish. */
void gw_validate_drop_oversized_ids(gw_request *req);

/* True for a legal Kafka topic name. */
bool gw_validate_topic_name(const char *s);

/* The reply_topic rule alone: GW_OK or GW_E_INVALID_REQUEST, *why says
 * which part failed ("illegal topic name", "internal topic", "forbidden
 * topic", "not in kafka.reply_topics"; static). */
gw_err gw_validate_reply_topic(const char *topic, const gw_validate_limits *lim, const char **why);

#endif
