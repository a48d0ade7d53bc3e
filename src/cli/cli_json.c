/*
 * cli_json: the produce line (see the header). The CLI-only keys `prompt` and
 * `priority` are taken out of the parsed object; the rest goes through the
 * codec's gw_record_from_json.
 */
#include "cli/cli_json.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "codec/json.h"

__attribute__((format(printf, 3, 4))) static gw_err reject(char *err, size_t errlen,
                                                           const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return GW_E_INVALID_REQUEST;
}

/* Checks `priority` and removes it from root. */
static gw_err take_priority(json_t *root, char *out, size_t outlen, char *err, size_t errlen)
{
    json_t *p = json_object_get(root, "priority");
    const char *ps = json_string_value(p);
    gw_err rc = GW_OK;
    if (p && !json_is_null(p) &&
        (!ps || (strcmp(ps, "high") && strcmp(ps, "normal") && strcmp(ps, "low"))))
        rc = reject(err, errlen, "priority must be high, normal or low");
    else if (ps && out)
        snprintf(out, outlen, "%s", ps);
    json_object_del(root, "priority");
    return rc;
}

/* Turns `prompt` into `messages: [{role: USER, content: prompt}]` in root. */
static gw_err expand_prompt(json_t *root, char *err, size_t errlen)
{
    json_t *prompt = json_object_get(root, "prompt");
    bool has_msgs = json_object_get(root, "messages") != NULL;
    if (!prompt)
        return has_msgs ? GW_OK : reject(err, errlen, "messages is missing (or give a prompt)");
    if (!json_is_string(prompt))
        return reject(err, errlen, "prompt must be a string");
    if (has_msgs)
        return reject(err, errlen, "give messages or prompt, not both");
    json_t *msgs = json_pack("[{s:s, s:O}]", "role", "USER", "content", prompt);
    if (!msgs || json_object_set_new(root, "messages", msgs) != 0)
        return GW_E_NOMEM;
    json_object_del(root, "prompt");
    return GW_OK;
}

static gw_err request_from(json_t *root, gw_arena *a, gw_request *req, char *priority_out,
                           size_t priority_len, char *err, size_t errlen)
{
    if (!json_is_object(root))
        return reject(err, errlen, "not a JSON object");
    gw_err rc = take_priority(root, priority_out, priority_len, err, errlen);
    if (rc == GW_OK)
        rc = expand_prompt(root, err, errlen);
    if (rc != GW_OK)
        return rc;
    const char *bad = NULL;
    rc = gw_record_from_json(GW_REC_REQUEST, root, a, req, &bad);
    if (rc == GW_E_INVALID_REQUEST)
        return reject(err, errlen, "%s: unknown field, missing or of the wrong type",
                      bad ? bad : "request");
    for (size_t i = 0; rc == GW_OK && i < req->message_count; i++) {
        if (!req->messages[i].content)
            return reject(err, errlen, "messages[%zu].content is missing", i);
    }
    return rc;
}

gw_err gw_cli_json_request(const char *text, size_t len, gw_arena *a, gw_request *req,
                           char *priority_out, size_t priority_len, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    err[0] = '\0';
    gw_err rc = root ? request_from(root, a, req, priority_out, priority_len, err, errlen)
                     : reject(err, errlen, "not a JSON object: %s", jerr.text);
    json_decref(root);
    if (rc == GW_E_NOMEM && !err[0])
        snprintf(err, errlen, "out of memory");
    return rc;
}
