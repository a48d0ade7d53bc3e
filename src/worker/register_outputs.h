/*
 * register_outputs: at start, the output schemas under their subjects in the
 * schema registry, and the ids the registry gives them into the worker's
 * codec (docs/schemas.md, "Output schemas").
 *
 * With schema_registry.register_outputs = true the worker registers, by
 * TopicNameStrategy (subject "<topic>-value"), the current InferenceResponse
 * under kafka.topics.responses and under every literal kafka.reply_topics
 * entry (patterns name no subject), the current StreamChunk under
 * kafka.topics.chunks and the current UsageEvent under kafka.topics.usage.
 * The ids of the three configured topics are mapped in the worker's codec,
 * so kafka.output_framing = confluent writes 00 + that id + the datum on
 * every topic of the kind (a reply topic whose subject got another id for
 * the same schema is logged; both ids name the same schema). DLQ records
 * are the original or the output bytes as they were, not a schema of their
 * own: nothing is registered for kafka.topics.dlq.
 *
 * Runs before the consumer subscribes: nothing is consumed until every
 * subject has its id. An unreachable registry is retried with backoff for
 * schema_registry.register_timeout_ms; then, or at once on a refusal (an
 * incompatible schema: 409), the start fails and the worker exits.
 */
#ifndef GW_WORKER_REGISTER_OUTPUTS_H
#define GW_WORKER_REGISTER_OUTPUTS_H

#include "common/err.h"
#include "worker/pipeline.h"

/* GW_OK at once when schema_registry.register_outputs is off. Runs the
 * loop: call before it runs (gw_worker_start does). */
gw_err gw_register_outputs(gw_worker *w);

#endif
