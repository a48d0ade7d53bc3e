/* json: see json.h. Walks the same field tables as the Avro reader and writer,
 * so a field added to a schema appears in JSON without further code. */
#include "codec/json.h"

#include <math.h>
#include <string.h>

#include "codec/codec_private.h"

typedef struct {
    gw_arena *arena;
    const char **bad_field;
} jctx;

static gw_err bad(jctx *c, const char *field)
{
    if (c->bad_field != NULL)
        *c->bad_field = field;
    return GW_E_INVALID_REQUEST;
}

static gw_err from_object(jctx *c, const gw_record_desc *d, const json_t *obj, void *rec);

static gw_err str_from(jctx *c, const json_t *v, const char *name, const char **out)
{
    if (!json_is_string(v))
        return bad(c, name);
    *out = gw_arena_strndup(c->arena, json_string_value(v), json_string_length(v));
    return *out == NULL ? GW_E_NOMEM : GW_OK;
}

static gw_err map_from(jctx *c, const json_t *v, const char *name, gw_map *m)
{
    if (!json_is_object(v))
        return bad(c, name);
    m->count = 0;
    m->items = gw_arena_calloc(c->arena, json_object_size(v) + 1, sizeof(gw_kv));
    if (m->items == NULL)
        return GW_E_NOMEM;
    const char *k;
    json_t *val;
    json_object_foreach((json_t *)v, k, val)
    {
        gw_kv *kv = &m->items[m->count];
        gw_err e = str_from(c, val, k, &kv->value);
        if (e != GW_OK)
            return e;
        kv->key = gw_arena_strdup(c->arena, k);
        if (kv->key == NULL)
            return GW_E_NOMEM;
        m->count++;
    }
    return GW_OK;
}

static gw_err array_from(jctx *c, const json_t *v, const gw_field *f, unsigned char *base)
{
    bool recs = f->kind == GW_F_REC_ARRAY;
    size_t elem = recs ? f->sub->struct_size : sizeof(char *);
    if (!json_is_array(v))
        return bad(c, f->name);
    size_t n = json_array_size(v);
    unsigned char *arr = gw_arena_calloc(c->arena, n + 1, elem);
    if (arr == NULL)
        return GW_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const json_t *item = json_array_get(v, i);
        gw_err e = recs ? from_object(c, f->sub, item, arr + i * elem)
                        : str_from(c, item, f->name, (const char **)(arr + i * elem));
        if (e != GW_OK)
            return e;
    }
    *(void **)(base + f->off) = arr;
    *(size_t *)(base + f->aux_off) = n;
    return GW_OK;
}

static gw_err enum_from(jctx *c, const json_t *v, const gw_field *f, int *out)
{
    int idx = -1;
    if (json_is_string(v))
        idx = f->kind == GW_F_ROLE ? gw_role_parse(json_string_value(v))
                                   : gw_strategy_parse(json_string_value(v));
    if (idx < 0)
        return bad(c, f->name);
    *out = idx;
    return GW_OK;
}

static gw_err optional_from(jctx *c, const json_t *v, const gw_field *f, unsigned char *base)
{
    void *p = base + f->off;
    if (json_is_null(v))
        return GW_OK;
    switch (f->kind) {
    case GW_F_OPT_STR:
        return str_from(c, v, f->name, (const char **)p);
    case GW_F_OPT_LONG:
        if (!json_is_integer(v))
            return bad(c, f->name);
        *(int64_t *)p = json_integer_value(v);
        break;
    case GW_F_OPT_DOUBLE:
        if (!json_is_number(v))
            return bad(c, f->name);
        *(double *)p = json_number_value(v);
        break;
    case GW_F_OPT_USAGE: {
        gw_err e = from_object(c, &gw_desc_token_usage, v, p);
        if (e != GW_OK)
            return e;
        break;
    }
    case GW_F_OPT_ERROR: {
        gw_error_rec *er = gw_arena_calloc(c->arena, 1, sizeof *er);
        if (er == NULL)
            return GW_E_NOMEM;
        *(gw_error_rec **)p = er;
        return from_object(c, &gw_desc_gateway_error, v, er);
    }
    case GW_F_OPT_REC: {
        void *sub = gw_arena_calloc(c->arena, 1, f->sub->struct_size);
        if (sub == NULL)
            return GW_E_NOMEM;
        *(void **)p = sub;
        return from_object(c, f->sub, v, sub);
    }
    default:
        return GW_E_INTERNAL;
    }
    *(bool *)(base + f->aux_off) = true;
    return GW_OK;
}

static gw_err field_from(jctx *c, const json_t *v, const gw_field *f, unsigned char *base)
{
    void *p = base + f->off;
    int idx;
    gw_err e;
    switch (f->kind) {
    case GW_F_STR:
        return str_from(c, v, f->name, (const char **)p);
    case GW_F_INT:
        if (!json_is_integer(v) || json_integer_value(v) < INT32_MIN ||
            json_integer_value(v) > INT32_MAX)
            return bad(c, f->name);
        *(int32_t *)p = (int32_t)json_integer_value(v);
        return GW_OK;
    case GW_F_LONG:
        if (!json_is_integer(v))
            return bad(c, f->name);
        *(int64_t *)p = json_integer_value(v);
        return GW_OK;
    case GW_F_DOUBLE:
        if (!json_is_number(v))
            return bad(c, f->name);
        *(double *)p = json_number_value(v);
        return GW_OK;
    case GW_F_BOOL:
        if (!json_is_boolean(v))
            return bad(c, f->name);
        *(bool *)p = json_is_true(v);
        return GW_OK;
    case GW_F_ROLE:
    case GW_F_STRATEGY:
        e = enum_from(c, v, f, &idx);
        if (e == GW_OK && f->kind == GW_F_ROLE)
            *(gw_role *)p = (gw_role)idx;
        else if (e == GW_OK)
            *(gw_strategy *)p = (gw_strategy)idx;
        return e;
    case GW_F_STR_MAP:
        return map_from(c, v, f->name, (gw_map *)p);
    case GW_F_STR_ARRAY:
    case GW_F_REC_ARRAY:
        return array_from(c, v, f, base);
    case GW_F_USAGE:
        return from_object(c, &gw_desc_token_usage, v, p);
    default:
        return optional_from(c, v, f, base);
    }
}

/* An enum without a schema default (MessageRole) has no value to assume: zero
 * would silently turn a message without a role into a SYSTEM message. */
static gw_err required_enums(jctx *c, const gw_record_desc *d, const json_t *obj)
{
    for (size_t i = 0; i < d->field_count; i++) {
        if (d->fields[i].kind == GW_F_ROLE && json_object_get(obj, d->fields[i].name) == NULL)
            return bad(c, d->fields[i].name);
    }
    return GW_OK;
}

static gw_err from_object(jctx *c, const gw_record_desc *d, const json_t *obj, void *rec)
{
    if (!json_is_object(obj))
        return bad(c, d->name);
    gw_desc_init_defaults(d, rec);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        const gw_field *f = NULL;
        for (size_t i = 0; i < d->field_count && f == NULL; i++) {
            if (strcmp(d->fields[i].name, key) == 0)
                f = &d->fields[i];
        }
        if (f == NULL)
            return bad(c, key);
        gw_err e = field_from(c, v, f, rec);
        if (e != GW_OK)
            return e;
    }
    return required_enums(c, d, obj);
}

gw_err gw_record_from_json(gw_record_kind kind, const json_t *obj, gw_arena *arena, void *out,
                           const char **bad_field)
{
    const gw_record_desc *d = gw_current_desc(kind);
    if (d == NULL)
        return GW_E_INTERNAL;
    jctx c = {.arena = arena, .bad_field = bad_field};
    return from_object(&c, d, obj, out);
}

gw_err gw_request_from_json(const json_t *obj, gw_arena *arena, gw_request *out)
{
    return gw_record_from_json(GW_REC_REQUEST, obj, arena, out, NULL);
}

/* ---- to JSON ---- */

static json_t *to_object(const gw_record_desc *d, const void *rec);

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* JSON has no NaN or infinity: they print as null. */
static json_t *real_or_null(double d)
{
    return isfinite(d) ? json_real(d) : json_null();
}

static json_t *map_to(const gw_map *m)
{
    json_t *o = json_object();
    for (size_t i = 0; o != NULL && i < m->count; i++)
        json_object_set_new(o, m->items[i].key ? m->items[i].key : "",
                            str_or_null(m->items[i].value));
    return o;
}

static json_t *array_to(const gw_field *f, const unsigned char *base)
{
    json_t *a = json_array();
    size_t n = *(const size_t *)(base + f->aux_off);
    const void *items = *(const void *const *)(base + f->off);
    for (size_t i = 0; a != NULL && i < n; i++) {
        if (f->kind == GW_F_REC_ARRAY)
            json_array_append_new(
                a, to_object(f->sub, (const unsigned char *)items + i * f->sub->struct_size));
        else
            json_array_append_new(a, str_or_null(((const char *const *)items)[i]));
    }
    return a;
}

static json_t *field_to(const gw_field *f, const unsigned char *base)
{
    const void *p = base + f->off;
    bool has =
        (f->kind == GW_F_OPT_LONG || f->kind == GW_F_OPT_DOUBLE || f->kind == GW_F_OPT_USAGE) &&
        *(const bool *)(base + f->aux_off);
    switch (f->kind) {
    case GW_F_STR:
        return json_string(*(const char *const *)p ? *(const char *const *)p : "");
    case GW_F_OPT_STR:
        return str_or_null(*(const char *const *)p);
    case GW_F_INT:
        return json_integer(*(const int32_t *)p);
    case GW_F_LONG:
        return json_integer(*(const int64_t *)p);
    case GW_F_OPT_LONG:
        return has ? json_integer(*(const int64_t *)p) : json_null();
    case GW_F_DOUBLE:
        return real_or_null(*(const double *)p);
    case GW_F_OPT_DOUBLE:
        return has ? real_or_null(*(const double *)p) : json_null();
    case GW_F_BOOL:
        return json_boolean(*(const bool *)p);
    case GW_F_ROLE:
        return str_or_null(gw_role_name(*(const gw_role *)p));
    case GW_F_STRATEGY:
        return str_or_null(gw_strategy_name(*(const gw_strategy *)p));
    case GW_F_STR_MAP:
        return map_to((const gw_map *)p);
    case GW_F_STR_ARRAY:
    case GW_F_REC_ARRAY:
        return array_to(f, base);
    case GW_F_USAGE:
        return to_object(&gw_desc_token_usage, p);
    case GW_F_OPT_USAGE:
        return has ? to_object(&gw_desc_token_usage, p) : json_null();
    case GW_F_OPT_ERROR: {
        const gw_error_rec *er = *(const gw_error_rec *const *)p;
        return er ? to_object(&gw_desc_gateway_error, er) : json_null();
    }
    case GW_F_OPT_REC: {
        const void *sub = *(const void *const *)p;
        return sub ? to_object(f->sub, sub) : json_null();
    }
    }
    return json_null();
}

static json_t *to_object(const gw_record_desc *d, const void *rec)
{
    json_t *o = json_object();
    for (size_t i = 0; o != NULL && i < d->field_count; i++) {
        json_t *v = field_to(&d->fields[i], rec);
        if (v == NULL || json_object_set_new(o, d->fields[i].name, v) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

json_t *gw_record_to_json(gw_record_kind kind, const void *rec)
{
    const gw_record_desc *d = gw_current_desc(kind);
    return d ? to_object(d, rec) : NULL;
}

json_t *gw_request_to_json(const gw_request *r)
{
    return gw_record_to_json(GW_REC_REQUEST, r);
}

json_t *gw_response_to_json(const gw_response *r)
{
    return gw_record_to_json(GW_REC_RESPONSE, r);
}

json_t *gw_chunk_to_json(const gw_chunk *c)
{
    return gw_record_to_json(GW_REC_CHUNK, c);
}

json_t *gw_usage_to_json(const gw_usage_event *u)
{
    return gw_record_to_json(GW_REC_USAGE, u);
}
