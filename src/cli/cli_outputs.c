/*
 * cli_outputs: the worker's outputs in any framing, Confluent ones through
 * the schema registry; see cli_outputs.h and docs/cli.md.
 */
#include "cli/cli_outputs.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "codec/resolve.h"
#include "schemareg/schemareg.h"

enum { CONFLUENT_HEADER = 5, REGISTRY_MAX_ENTRIES = 64, REGISTRY_NEGATIVE_TTL_MS = 60000 };

struct gw_cli_outputs {
    const gw_codec *codec;
    gw_codec *bare; /* decodes a transcoded datum as the current version */
    gw_buf buf;
    bool has_registry;
    gw_cli_registry_opts reg_opts; /* strings owned below */
    char *url, *username, *password;
    uv_loop_t loop;
    bool loop_open;
    gw_schemareg *reg[GW_REC__COUNT]; /* one per reader schema, opened at first use */
};

static char *dup_or_null(const char *s)
{
    return s != NULL && s[0] != '\0' ? strdup(s) : NULL;
}

gw_err gw_cli_outputs_new(const gw_codec *codec, const gw_cli_registry_opts *reg,
                          gw_cli_outputs **out)
{
    *out = NULL;
    gw_cli_outputs *o = calloc(1, sizeof *o);
    if (o == NULL)
        return GW_E_NOMEM;
    o->codec = codec;
    gw_codec_limits lim = *gw_codec_get_limits(codec);
    o->bare = gw_codec_new(&lim);
    gw_err err = o->bare != NULL ? GW_OK : GW_E_NOMEM;
    if (err != GW_OK)
        goto fail;
    gw_codec_set_decode_framing(o->bare, GW_FRAMING_BARE);
    gw_buf_init(&o->buf, lim.max_message_bytes * 2);
    if (reg != NULL && reg->url != NULL && reg->url[0] != '\0') {
        o->has_registry = true;
        o->url = strdup(reg->url);
        o->username = dup_or_null(reg->username);
        o->password = dup_or_null(reg->password);
        o->reg_opts = *reg;
        if (o->url == NULL || (reg->username && reg->username[0] && !o->username) ||
            (reg->password && reg->password[0] && !o->password)) {
            err = GW_E_NOMEM;
            goto fail;
        }
        if (uv_loop_init(&o->loop) != 0) {
            err = GW_E_NOMEM;
            goto fail;
        }
        o->loop_open = true;
    }
    *out = o;
    return GW_OK;
fail:
    gw_cli_outputs_free(o);
    return err;
}

void gw_cli_outputs_free(gw_cli_outputs *o)
{
    if (o == NULL)
        return;
    for (int k = 0; k < GW_REC__COUNT; k++)
        gw_schemareg_free(o->reg[k]);
    if (o->loop_open) {
        uv_run(&o->loop, UV_RUN_DEFAULT); /* the clients' handles close */
        uv_loop_close(&o->loop);
    }
    if (o->password != NULL)
        memset(o->password, 0, strlen(o->password));
    free(o->password);
    free(o->username);
    free(o->url);
    gw_buf_cleanup(&o->buf);
    gw_codec_free(o->bare);
    free(o);
}

static gw_schemareg *registry_for(gw_cli_outputs *o, gw_record_kind kind)
{
    if (o->reg[kind] != NULL)
        return o->reg[kind];
    gw_schemareg_opts so = {.url = o->url,
                            .username = o->username,
                            .password = o->password,
                            .reader_json = gw_codec_current_schema_json(kind),
                            .timeout_ms = o->reg_opts.timeout_ms,
                            .max_wait_ms = o->reg_opts.max_wait_ms,
                            .max_entries = REGISTRY_MAX_ENTRIES,
                            .negative_ttl_ms = REGISTRY_NEGATIVE_TTL_MS};
    if (so.reader_json == NULL || gw_schemareg_new(&o->loop, &so, &o->reg[kind]) != GW_OK)
        o->reg[kind] = NULL;
    return o->reg[kind];
}

/* One lookup: the datum transcoded into o->buf while its resolver is valid. */
typedef struct {
    bool done;
    gw_err err;
    const uint8_t *datum;
    size_t len;
    gw_buf *out;
    char *why;
    size_t why_len;
} lookup;

static void resolved(lookup *l, gw_err err, const gw_resolver *res, const char *why)
{
    l->done = true;
    l->err = err;
    if (err == GW_OK) {
        gw_buf_reset(l->out);
        l->err = gw_resolver_transcode(res, l->datum, l->len, l->out);
        if (l->err != GW_OK && l->why_len > 0)
            snprintf(l->why, l->why_len, "the datum does not match its writer schema");
    } else if (l->why_len > 0) {
        snprintf(l->why, l->why_len, "%s", why != NULL ? why : gw_strerror(err));
    }
}

static void on_lookup(void *ud, gw_err err, const gw_resolver *res, const char *why)
{
    resolved(ud, err, res, why);
}

static gw_err decode_confluent(gw_cli_outputs *o, gw_record_kind kind, const uint8_t *b, size_t len,
                               gw_arena *arena, void *out, uint32_t id, char *why, size_t why_len)
{
    if (!o->has_registry) {
        if (why_len > 0)
            snprintf(why, why_len,
                     "Confluent schema id %" PRIu32 ": reading it needs the schema registry "
                     "(--schema-registry URL)",
                     id);
        return GW_E_CODEC_UNKNOWN_SCHEMA;
    }
    gw_schemareg *r = registry_for(o, kind);
    if (r == NULL) {
        if (why_len > 0)
            snprintf(why, why_len, "schema registry client not available");
        return GW_E_CODEC_REGISTRY;
    }
    char reason[256] = "";
    lookup l = {.datum = b + CONFLUENT_HEADER,
                .len = len - CONFLUENT_HEADER,
                .out = &o->buf,
                .why = reason,
                .why_len = sizeof reason};
    gw_err err = GW_OK;
    const gw_resolver *res = NULL;
    const char *now_why = NULL;
    gw_schemareg_wait *wait = NULL;
    if (gw_schemareg_lookup(r, id, 0, on_lookup, &l, &err, &res, &now_why, &wait))
        resolved(&l, err, res, now_why);
    while (!l.done) /* the client gives up by itself after max_wait_ms */
        uv_run(&o->loop, UV_RUN_ONCE);
    if (l.err == GW_OK)
        l.err = gw_codec_decode(o->bare, kind, o->buf.data, o->buf.len, arena, out);
    else if (why_len > 0)
        snprintf(why, why_len, "Confluent schema id %" PRIu32 ": %s", id, reason);
    return l.err;
}

gw_err gw_cli_outputs_decode(gw_cli_outputs *o, gw_record_kind kind, const void *buf, size_t len,
                             gw_arena *arena, void *out, uint32_t *schema_id, char *why,
                             size_t why_len)
{
    const uint8_t *b = buf;
    if (schema_id != NULL)
        *schema_id = 0;
    if (why_len > 0)
        why[0] = '\0';
    if ((unsigned)kind >= GW_REC__COUNT)
        return GW_E_INTERNAL;
    gw_err err;
    if (len >= CONFLUENT_HEADER && b[0] == 0x00) {
        uint32_t id = (uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 | b[4];
        if (schema_id != NULL)
            *schema_id = id;
        if (len > gw_codec_get_limits(o->codec)->max_message_bytes)
            err = GW_E_CODEC_TOO_LARGE;
        else
            err = decode_confluent(o, kind, b, len, arena, out, id, why, why_len);
    } else {
        err = gw_codec_decode(o->codec, kind, buf, len, arena, out);
    }
    if (err != GW_OK && why_len > 0 && why[0] == '\0')
        snprintf(why, why_len, "%s", gw_strerror(err));
    return err;
}
