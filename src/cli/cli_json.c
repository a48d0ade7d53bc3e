/*
 * cli_json: the produce line (see the header). The CLI-only keys `prompt` and
 * `priority` are taken out of the parsed object; the rest goes through the
 * codec's gw_record_from_json.
 */
#include "cli/cli_json.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "codec/json.h"

#define FAIL(code, ...)                                                                            \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        rc = (code);                                                                               \
        goto cleanup;                                                                              \
    } while (0)

/* Removes `priority` from root after checking it. */
static gw_err take_priority(json_t *root, char *out, size_t outlen, char *err, size_t errlen)
{
    gw_err rc = GW_OK;
    json_t *p = json_object_get(root, "priority");
    if (!p || json_is_null(p))
        goto cleanup;
    const char *ps = json_string_value(p);
    if (!ps || (strcmp(ps, "high") && strcmp(ps, "normal") && strcmp(ps, "low")))
        FAIL(GW_E_INVALID_REQUEST, "priority must be high, normal or low");
    if (out)
        snprintf(out, outlen, "%s", ps);
cleanup:
    json_object_del(root, "priority");
    return rc;
}

/* Turns `prompt` into `messages: [{role: USER, content: prompt}]` in root. */
static gw_err expand_prompt(json_t *root, char *err, size_t errlen)
{
    gw_err rc = GW_OK;
    json_t *prompt = json_object_get(root, "prompt");
    if (!prompt) {
        if (!json_object_get(root, "messages"))
            FAIL(GW_E_INVALID_REQUEST, "messages is missing (or give a prompt string)");
        goto cleanup;
    }
    if (!json_is_string(prompt))
        FAIL(GW_E_INVALID_REQUEST, "prompt must be a string");
    if (json_object_get(root, "messages"))
        FAIL(GW_E_INVALID_REQUEST, "give messages or prompt, not both");
    json_t *msgs = json_pack("[{s:s, s:O}]", "role", "USER", "content", prompt);
    if (!msgs || json_object_set_new(root, "messages", msgs) != 0)
        FAIL(GW_E_NOMEM, "out of memory");
    json_object_del(root, "prompt");
cleanup:
    return rc;
}

gw_err gw_cli_json_request(const char *text, size_t len, gw_arena *a, gw_request *req,
                           char *priority_out, size_t priority_len, char *err, size_t errlen)
{
    gw_err rc = GW_OK;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    err[0] = '\0';
    if (!json_is_object(root))
        FAIL(GW_E_INVALID_REQUEST, "not a JSON object: %s", root ? "wrong type" : jerr.text);
    if ((rc = take_priority(root, priority_out, priority_len, err, errlen)) != GW_OK ||
        (rc = expand_prompt(root, err, errlen)) != GW_OK)
        goto cleanup;
    const char *bad = NULL;
    rc = gw_record_from_json(GW_REC_REQUEST, root, a, req, &bad);
    if (rc == GW_E_INVALID_REQUEST)
        FAIL(rc, "%s: unknown field, missing or of the wrong type", bad ? bad : "request");
    if (rc != GW_OK)
        goto cleanup;
    for (size_t i = 0; i < req->message_count; i++) {
        if (!req->messages[i].content)
            FAIL(GW_E_INVALID_REQUEST, "messages[%zu].content is missing", i);
    }
cleanup:
    json_decref(root);
    if (rc == GW_E_NOMEM && !err[0])
        snprintf(err, errlen, "out of memory");
    return rc;
}
