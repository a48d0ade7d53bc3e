/* schema_check: proves that an embedded schema (parsed JSON) has exactly the
 * fields of a gw_record_desc, in order, with matching Avro types. This is what
 * keeps the hand-written codec and schemas/NAME.avsc from drifting apart: a change
 * to one without the other makes gw_codec_new() fail with the field named. */
#include "codec/schema_check.h"

#include <string.h>

#include "common/log.h"
#include "model/model.h"

static bool is_type(const json_t *t, const char *name)
{
    if (json_is_string(t))
        return strcmp(json_string_value(t), name) == 0;
    /* {"type": "string", ...} is the same primitive */
    return json_is_object(t) && json_is_string(json_object_get(t, "type")) &&
           json_object_get(t, "logicalType") == NULL &&
           strcmp(json_string_value(json_object_get(t, "type")), name) == 0;
}

/* ["null", X]: returns X or NULL. */
static const json_t *optional_of(const json_t *t)
{
    if (!json_is_array(t) || json_array_size(t) != 2 || !is_type(json_array_get(t, 0), "null"))
        return NULL;
    return json_array_get(t, 1);
}

static bool is_container(const json_t *t, const char *type, const char *key, const char *inner)
{
    return json_is_object(t) && is_type(json_object_get(t, "type"), type) &&
           is_type(json_object_get(t, key), inner);
}

static bool is_enum(const json_t *t, const char *name, const char *(*sym)(int), int n)
{
    const json_t *syms = json_object_get(t, "symbols");
    if (!json_is_object(t) || !is_type(json_object_get(t, "type"), "enum") ||
        !json_is_string(json_object_get(t, "name")) ||
        strcmp(json_string_value(json_object_get(t, "name")), name) != 0 ||
        json_array_size(syms) != (size_t)n)
        return false;
    for (int i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(syms, (size_t)i));
        if (s == NULL || strcmp(s, sym(i)) != 0)
            return false;
    }
    return true;
}

static const char *role_sym(int i)
{
    return gw_role_name((gw_role)i);
}

static const char *strategy_sym(int i)
{
    return gw_strategy_name((gw_strategy)i);
}

static bool check_type(const json_t *t, gw_field_kind kind, const gw_record_desc *sub, int depth)
{
    const json_t *items = json_object_get(t, "items");
    switch (kind) {
    case GW_F_STR:
        return is_type(t, "string");
    case GW_F_OPT_STR:
        return optional_of(t) && is_type(optional_of(t), "string");
    case GW_F_INT:
        return is_type(t, "int");
    case GW_F_LONG:
        return is_type(t, "long");
    case GW_F_OPT_LONG:
        return optional_of(t) && is_type(optional_of(t), "long");
    case GW_F_DOUBLE:
        return is_type(t, "double");
    case GW_F_OPT_DOUBLE:
        return optional_of(t) && is_type(optional_of(t), "double");
    case GW_F_BOOL:
        return is_type(t, "boolean");
    case GW_F_ROLE:
        return is_enum(t, "MessageRole", role_sym, GW_ROLE__COUNT);
    case GW_F_STRATEGY:
        return is_enum(t, "RoutingStrategy", strategy_sym, GW_ROUTE__COUNT);
    case GW_F_STR_MAP:
        return is_container(t, "map", "values", "string");
    case GW_F_STR_ARRAY:
        return is_container(t, "array", "items", "string");
    case GW_F_REC_ARRAY:
        return json_is_object(t) && is_type(json_object_get(t, "type"), "array") &&
               gw_schema_check_record(items, sub, depth + 1) == GW_OK;
    case GW_F_OPT_REC:
        return optional_of(t) && gw_schema_check_record(optional_of(t), sub, depth + 1) == GW_OK;
    case GW_F_USAGE:
        return gw_schema_check_record(t, &gw_desc_token_usage, depth + 1) == GW_OK;
    case GW_F_OPT_USAGE:
        return optional_of(t) &&
               gw_schema_check_record(optional_of(t), &gw_desc_token_usage, depth + 1) == GW_OK;
    case GW_F_OPT_ERROR:
        return optional_of(t) &&
               gw_schema_check_record(optional_of(t), &gw_desc_gateway_error, depth + 1) == GW_OK;
    }
    return false;
}

gw_err gw_schema_check_record(const json_t *s, const gw_record_desc *d, int depth)
{
    const json_t *fields = json_object_get(s, "fields");
    const char *name = json_string_value(json_object_get(s, "name"));
    if (depth > 5 || !json_is_object(s) || !is_type(json_object_get(s, "type"), "record") ||
        name == NULL || strcmp(name, d->name) != 0 || !json_is_array(fields)) {
        GW_ERROR("schema_mismatch", "record", d->name, "problem", "not the expected record");
        return GW_E_CONFIG;
    }
    if (json_array_size(fields) != d->field_count) {
        GW_ERROR("schema_mismatch", "record", d->name, "problem", "field count differs");
        return GW_E_CONFIG;
    }
    for (size_t i = 0; i < d->field_count; i++) {
        const json_t *f = json_array_get(fields, i);
        const char *fname = json_string_value(json_object_get(f, "name"));
        if (fname == NULL || strcmp(fname, d->fields[i].name) != 0 ||
            !check_type(json_object_get(f, "type"), d->fields[i].kind, d->fields[i].sub, depth)) {
            GW_ERROR("schema_mismatch", "record", d->name, "field", d->fields[i].name);
            return GW_E_CONFIG;
        }
    }
    return GW_OK;
}
