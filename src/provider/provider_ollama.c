/*
 * provider_ollama: the Ollama chat dialect (POST /api/chat). Streams are
 * NDJSON, one object per line; the last has "done": true with done_reason,
 * prompt_eval_count and eval_count (the token counts). Ollama streams by
 * default, so "stream" is always sent explicitly. Optional Bearer auth for
 * Ollama behind a proxy.
 */
#include "provider/provider_ollama.h"

#include <string.h>

static void write_body(gw_jbuf *j, const gw_deployment *d, const gw_request *req)
{
    gw_jbuf_lit(j, "{\"model\":");
    gw_jbuf_str(j, d->model);
    gw_jbuf_lit(j, ",\"messages\":");
    gw_phttp_write_messages(j, req, true, false);
    gw_jbuf_lit(j, req->stream ? ",\"stream\":true" : ",\"stream\":false");
    gw_jbuf_lit(j, ",\"options\":{\"temperature\":");
    gw_jbuf_real(j, req->temperature);
    if (req->max_tokens > 0) {
        gw_jbuf_lit(j, ",\"num_predict\":");
        gw_jbuf_int(j, req->max_tokens);
    }
    gw_jbuf_lit(j, "}}");
}

static gw_err read_object(gw_phttp_call *c, json_t *o)
{
    json_t *err = json_object_get(o, "error");
    if (err != NULL && !json_is_null(err))
        return gw_phttp_inband_error(c, err);
    json_t *content = json_object_get(json_object_get(o, "message"), "content");
    if (json_is_string(content)) {
        gw_err e = gw_phttp_text(c, json_string_value(content), json_string_length(content));
        if (e != GW_OK)
            return e;
    }
    if (json_is_true(json_object_get(o, "done"))) {
        gw_phttp_finish(c, json_string_value(json_object_get(o, "done_reason")));
        gw_phttp_usage(c, json_object_get(o, "prompt_eval_count"),
                       json_object_get(o, "eval_count"));
        gw_phttp_terminated(c);
    }
    return GW_OK;
}

static gw_err parse_full(gw_phttp_call *c, json_t *root)
{
    if (!json_is_object(json_object_get(root, "message")))
        return json_object_get(root, "error") ? GW_E_PROVIDER_ERROR : GW_E_PROVIDER_BAD_RESPONSE;
    gw_err err = read_object(c, root);
    return err == GW_E_STREAM_ERROR ? GW_E_PROVIDER_ERROR : err;
}

static gw_err on_event(gw_phttp_call *c, const char *event, json_t *data)
{
    return read_object(c, data);
}

const gw_phttp_dialect gw_ollama_dialect = {
    .name = "ollama",
    .write_body = write_body,
    .parse_full = parse_full,
    .on_event = on_event,
};
