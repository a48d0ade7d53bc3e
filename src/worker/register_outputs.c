/*
 * register_outputs: the output schemas into the schema registry at start;
 * see register_outputs.h and docs/schemas.md ("Output schemas").
 */
#include "worker/register_outputs.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "schemareg/schemareg.h"
#include "worker/decode_registry.h"
#include "worker/worker_private.h"

enum { PRIMARY = 3, MAX_SUBJECTS = PRIMARY + GW_CFG_MAX_REPLY_TOPICS };

typedef struct {
    gw_schemareg_subject s[MAX_SUBJECTS];
    gw_record_kind kind[MAX_SUBJECTS];
    char name[MAX_SUBJECTS][GW_SCHEMAREG_MAX_SUBJECT + 1];
    size_t n;
} subjects;

static gw_err add(subjects *s, const char *topic, gw_record_kind kind)
{
    if (s->n == MAX_SUBJECTS)
        return GW_E_CONFIG;
    char *name = s->name[s->n];
    int len = snprintf(name, sizeof s->name[0], "%s-value", topic);
    if (len < 0 || (size_t)len >= sizeof s->name[0]) {
        GW_ERROR("schema_subject_too_long", "topic", topic);
        return GW_E_CONFIG;
    }
    s->s[s->n] =
        (gw_schemareg_subject){.subject = name, .schema = gw_codec_current_schema_json(kind)};
    s->kind[s->n++] = kind;
    return GW_OK;
}

static gw_err collect(const gw_kafka_config *k, subjects *s)
{
    gw_err err = add(s, k->topics.responses, GW_REC_RESPONSE);
    if (err == GW_OK)
        err = add(s, k->topics.chunks, GW_REC_CHUNK);
    if (err == GW_OK)
        err = add(s, k->topics.usage, GW_REC_USAGE);
    for (size_t i = 0; err == GW_OK && i < k->reply_topic_count; i++) {
        const char *t = k->reply_topics[i];
        if (strpbrk(t, "*?[") == NULL && strcmp(t, k->topics.responses) != 0)
            err = add(s, t, GW_REC_RESPONSE);
    }
    return err;
}

/* The three configured topics' ids into the codec; the others checked. */
static gw_err map_ids(gw_worker *w, const subjects *s)
{
    for (size_t i = 0; i < s->n; i++) {
        char id[16];
        snprintf(id, sizeof id, "%" PRIu32, s->s[i].id);
        GW_INFO("schema_registered", "subject", s->s[i].subject, "schema_id", id);
        if (i < PRIMARY) {
            gw_record_kind kind = s->kind[i];
            gw_err err = gw_codec_set_confluent_id(w->codec, s->s[i].id, kind,
                                                   gw_codec_current_version(kind));
            if (err != GW_OK)
                return err;
        } else if (s->s[i].id != s->s[0].id) {
            char written[16];
            snprintf(written, sizeof written, "%" PRIu32, s->s[0].id);
            GW_WARN("schema_id_differs", "subject", s->s[i].subject, "schema_id", id, "written_id",
                    written);
        }
    }
    return GW_OK;
}

gw_err gw_register_outputs(gw_worker *w)
{
    const gw_schema_registry_config *c = &w->cfg->schema_registry;
    gw_schemareg *client = gw_regpath_client(w);
    if (!c->register_outputs)
        return GW_OK;
    if (client == NULL)
        return GW_E_CONFIG; /* the config check requires schema_registry.url */
    subjects *s = calloc(1, sizeof *s);
    if (s == NULL)
        return GW_E_NOMEM;
    char why[512] = "";
    gw_err err = collect(&w->cfg->kafka, s);
    if (err == GW_OK)
        err =
            gw_schemareg_register_all(client, s->s, s->n, c->register_timeout_ms, why, sizeof why);
    if (err == GW_OK)
        err = map_ids(w, s);
    if (err != GW_OK)
        GW_ERROR("schema_register_failed", "error", gw_err_name(err), "why", why);
    free(s);
    return err;
}
