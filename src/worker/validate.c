/* validate: request checks against worker limits; see validate.h. */
#include "worker/validate.h"

#include <fnmatch.h>
#include <math.h>
#include <string.h>

bool gw_validate_topic_name(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 249 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

static gw_err check_content(const gw_request *req, const gw_validate_limits *lim,
                            const char **field)
{
    uint64_t bytes = req->system_prompt ? strlen(req->system_prompt) : 0;
    if (bytes > lim->max_content_bytes) {
        *field = "system_prompt";
        return GW_E_CONTENT_TOO_LARGE;
    }
    for (size_t i = 0; i < req->message_count; i++) {
        if ((unsigned)req->messages[i].role >= GW_ROLE__COUNT) {
            *field = "messages.role";
            return GW_E_INVALID_REQUEST;
        }
        bytes += req->messages[i].content ? strlen(req->messages[i].content) : 0;
        if (bytes > lim->max_content_bytes) {
            *field = "messages.content";
            return GW_E_CONTENT_TOO_LARGE;
        }
    }
    return GW_OK;
}

static bool too_long(const char *s)
{
    return s != NULL && strnlen(s, GW_MAX_ID_BYTES + 1) > GW_MAX_ID_BYTES;
}

static gw_err check_ids(const gw_request *req, const char **field)
{
    const struct {
        const char *name, *value;
    } ids[] = {{"agent_did", req->agent_did},
               {"tenant_id", req->tenant_id},
               {"custom_id", req->custom_id},
               {"batch_id", req->batch_id},
               {"model", req->model}};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (too_long(ids[i].value)) {
            *field = ids[i].name;
            return GW_E_INVALID_REQUEST;
        }
    return GW_OK;
}

void gw_validate_drop_oversized_ids(gw_request *req)
{
    if (too_long(req->agent_did))
        req->agent_did = "";
    const char **optional[] = {&req->tenant_id, &req->custom_id, &req->batch_id, &req->model};
    for (size_t i = 0; i < sizeof optional / sizeof optional[0]; i++)
        if (too_long(*optional[i]))
            *optional[i] = NULL;
}

gw_err gw_validate_reply_topic(const char *t, const gw_validate_limits *lim, const char **why)
{
    *why = NULL;
    if (!gw_validate_topic_name(t)) {
        *why = "illegal topic name";
        return GW_E_INVALID_REQUEST;
    }
    if (strncmp(t, "__", 2) == 0) {
        *why = "internal topic";
        return GW_E_INVALID_REQUEST;
    }
    for (size_t i = 0; i < lim->forbidden_count && i < GW_VALIDATE_MAX_FORBIDDEN; i++)
        if (lim->forbidden[i] != NULL && strcmp(t, lim->forbidden[i]) == 0) {
            *why = "forbidden topic";
            return GW_E_INVALID_REQUEST;
        }
    if (lim->default_reply_topic != NULL && strcmp(t, lim->default_reply_topic) == 0)
        return GW_OK;
    for (size_t i = 0; lim->reply_topics != NULL && i < lim->reply_topic_count; i++) {
        const char *p = lim->reply_topics[i];
        if (p != NULL && (strcmp(p, t) == 0 || fnmatch(p, t, 0) == 0))
            return GW_OK;
    }
    *why = "not in kafka.reply_topics";
    return GW_E_INVALID_REQUEST;
}

gw_err gw_validate_request(const gw_request *req, const gw_validate_limits *lim, int64_t now_ms,
                           const char **field)
{
    *field = NULL;
    const char *why;
    if (req->reply_topic != NULL && gw_validate_reply_topic(req->reply_topic, lim, &why) != GW_OK) {
        *field = "reply_topic";
        return GW_E_INVALID_REQUEST;
    }
    if (req->request_id == NULL || req->request_id[0] == '\0') {
        *field = "request_id";
        return GW_E_INVALID_REQUEST;
    }
    if (req->message_count == 0) {
        *field = "messages";
        return GW_E_NO_MESSAGES;
    }
    if (isnan(req->temperature) || req->temperature < 0.0 || req->temperature > 2.0) {
        *field = "temperature";
        return GW_E_BAD_TEMPERATURE;
    }
    if (req->max_tokens < 1 || req->max_tokens > lim->max_tokens_limit) {
        *field = "max_tokens";
        return GW_E_BAD_MAX_TOKENS;
    }
    gw_err err = check_ids(req, field);
    if (err != GW_OK)
        return err;
    err = check_content(req, lim, field);
    if (err != GW_OK)
        return err;
    if ((unsigned)req->routing_strategy >= GW_ROUTE__COUNT) {
        *field = "routing_strategy";
        return GW_E_INVALID_REQUEST;
    }
    if (req->has_deadline && req->deadline_ms < now_ms) {
        *field = "deadline_ms";
        return GW_E_DEADLINE_EXCEEDED;
    }
    return GW_OK;
}
