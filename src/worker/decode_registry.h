/*
 * decode_registry: DECODE's path for a Confluent-framed request whose schema
 * id the codec does not know (docs/schemas.md, "Schema registry").
 *
 * With schema_registry.url set, such a message is not dead-lettered at once:
 * the job keeps a copy of it (payload, key, headers, where it came from),
 * asks the registry client (schemareg/) for the writer schema, transcodes the
 * datum into the current InferenceRequest with its resolver (codec/resolve)
 * and decodes that. A cached id answers within DECODE; otherwise the job
 * suspends in DECODE (other jobs of the partition go on) and resumes with
 * NEXT, or dead-letters the copy with CODEC_INCOMPATIBLE, CODEC_UNKNOWN_SCHEMA
 * or CODEC_REGISTRY (after schema_registry.max_wait_ms) and FAILS.
 *
 * Owns job->reg (in the job's arena, the copied headers excepted) and
 * w->regpath (the client, a codec that decodes bare datums, a buffer).
 */
#ifndef GW_WORKER_DECODE_REGISTRY_H
#define GW_WORKER_DECODE_REGISTRY_H

#include <stdbool.h>

#include "common/err.h"
#include "schemareg/schemareg.h"
#include "worker/job.h"
#include "worker/pipeline.h"

/* Builds w->regpath when schema_registry.url is set (else leaves it NULL). */
gw_err gw_regpath_open(gw_worker *w);
void gw_regpath_close(gw_worker *w);
/* The registry client of w->regpath, or NULL when the registry is off. */
gw_schemareg *gw_regpath_client(gw_worker *w);

/* DECODE got err for message m: true when this path takes the message over
 * (DECODE then returns *step: NEXT, FAILED after the DLQ, or SUSPEND). */
bool gw_job_decode_registry(gw_job *job, const gw_job_msg *m, gw_err err, gw_step *step);
/* Shutdown: stop waiting for the registry (no callback after this). */
void gw_job_registry_abort(gw_job *job);

#endif
