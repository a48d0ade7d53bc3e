/* canon: see canon.h. A recursive walk over the jansson tree that writes the
 * canonical form; named types already written appear again as their full name. */
#include "codec/canon.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { CANON_MAX_DEPTH = 32, CANON_MAX_NAMES = 64, CANON_MAX_NAME = 256 };

typedef struct {
    gw_buf *out;
    char names[CANON_MAX_NAMES][CANON_MAX_NAME]; /* full names defined so far */
    size_t name_count;
    gw_err err;
} canon_ctx;

static const char *const primitives[] = {"null",  "boolean", "int",   "long",
                                         "float", "double",  "bytes", "string"};

static bool is_primitive(const char *s)
{
    for (size_t i = 0; i < sizeof(primitives) / sizeof(primitives[0]); i++) {
        if (strcmp(s, primitives[i]) == 0)
            return true;
    }
    return false;
}

static void emit(canon_ctx *c, const char *s)
{
    if (c->err == GW_OK && gw_buf_append(c->out, s, strlen(s)) != GW_OK)
        c->err = GW_E_NOMEM;
}

static void emit_str(canon_ctx *c, const char *s)
{
    emit(c, "\"");
    for (const char *p = s; *p && c->err == GW_OK; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            snprintf(esc, sizeof esc, "\\%c", *p);
            emit(c, esc);
        } else if ((unsigned char)*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", (unsigned)*p);
            emit(c, esc);
        } else {
            char one[2] = {*p, 0};
            emit(c, one);
        }
    }
    emit(c, "\"");
}

/* Full name of a named type: a dotted name is already full; else the
 * namespace attribute, else the enclosing namespace. */
static bool full_name(const json_t *s, const char *ns, char out[CANON_MAX_NAME])
{
    const char *name = json_string_value(json_object_get(s, "name"));
    if (name == NULL || *name == '\0')
        return false;
    const char *own = json_string_value(json_object_get(s, "namespace"));
    if (strchr(name, '.') != NULL || ((own == NULL || *own == '\0') && (ns == NULL || !*ns)))
        return (size_t)snprintf(out, CANON_MAX_NAME, "%s", name) < CANON_MAX_NAME;
    const char *space = (own != NULL && *own) ? own : ns;
    return (size_t)snprintf(out, CANON_MAX_NAME, "%s.%s", space, name) < CANON_MAX_NAME;
}

static bool seen(canon_ctx *c, const char *full)
{
    for (size_t i = 0; i < c->name_count; i++) {
        if (strcmp(c->names[i], full) == 0)
            return true;
    }
    return false;
}

static void walk(canon_ctx *c, const json_t *s, const char *ns, int depth);

static void walk_reference(canon_ctx *c, const char *name, const char *ns)
{
    char full[CANON_MAX_NAME];
    if (is_primitive(name)) {
        emit_str(c, name);
        return;
    }
    if (strchr(name, '.') == NULL && ns != NULL && *ns)
        snprintf(full, sizeof full, "%s.%s", ns, name);
    else
        snprintf(full, sizeof full, "%s", name);
    if (!seen(c, full))
        c->err = GW_E_CONFIG; /* reference to an undefined name */
    emit_str(c, full);
}

static void walk_fields(canon_ctx *c, const json_t *fields, const char *ns, int depth)
{
    size_t i;
    json_t *f;
    emit(c, ",\"fields\":[");
    json_array_foreach(fields, i, f)
    {
        const char *fname = json_string_value(json_object_get(f, "name"));
        json_t *ftype = json_object_get(f, "type");
        if (fname == NULL || ftype == NULL) {
            c->err = GW_E_CONFIG;
            return;
        }
        emit(c, i ? ",{\"name\":" : "{\"name\":");
        emit_str(c, fname);
        emit(c, ",\"type\":");
        walk(c, ftype, ns, depth + 1);
        emit(c, "}");
    }
    emit(c, "]");
}

static void walk_named(canon_ctx *c, const json_t *s, const char *type, const char *ns, int depth)
{
    char full[CANON_MAX_NAME];
    if (!full_name(s, ns, full) || c->name_count == CANON_MAX_NAMES || seen(c, full)) {
        c->err = GW_E_CONFIG;
        return;
    }
    snprintf(c->names[c->name_count++], CANON_MAX_NAME, "%s", full);
    char inner_ns[CANON_MAX_NAME];
    const char *dot = strrchr(full, '.');
    snprintf(inner_ns, sizeof inner_ns, "%.*s", dot ? (int)(dot - full) : 0, full);
    emit(c, "{\"name\":");
    emit_str(c, full);
    emit(c, ",\"type\":");
    emit_str(c, type);
    if (strcmp(type, "enum") == 0) {
        json_t *syms = json_object_get(s, "symbols");
        size_t i;
        json_t *v;
        if (!json_is_array(syms)) {
            c->err = GW_E_CONFIG;
            return;
        }
        emit(c, ",\"symbols\":[");
        json_array_foreach(syms, i, v)
        {
            if (i)
                emit(c, ",");
            emit_str(c, json_string_value(v) ? json_string_value(v) : "");
        }
        emit(c, "]");
    } else if (strcmp(type, "fixed") == 0) {
        char num[32];
        json_t *size = json_object_get(s, "size");
        if (!json_is_integer(size)) {
            c->err = GW_E_CONFIG;
            return;
        }
        snprintf(num, sizeof num, ",\"size\":%lld", (long long)json_integer_value(size));
        emit(c, num);
    } else {
        json_t *fields = json_object_get(s, "fields");
        if (!json_is_array(fields)) {
            c->err = GW_E_CONFIG;
            return;
        }
        walk_fields(c, fields, inner_ns, depth);
    }
    emit(c, "}");
}

static void walk_object(canon_ctx *c, const json_t *s, const char *ns, int depth)
{
    json_t *t = json_object_get(s, "type");
    const char *type = json_string_value(t);
    if (type == NULL) {
        if (t != NULL)
            walk(c, t, ns, depth + 1); /* {"type": {...}} wraps a schema */
        else
            c->err = GW_E_CONFIG;
        return;
    }
    if (is_primitive(type)) {
        emit_str(c, type);
    } else if (!strcmp(type, "record") || !strcmp(type, "error") || !strcmp(type, "enum") ||
               !strcmp(type, "fixed")) {
        walk_named(c, s, type, ns, depth);
    } else if (!strcmp(type, "array") || !strcmp(type, "map")) {
        bool arr = type[0] == 'a';
        json_t *inner = json_object_get(s, arr ? "items" : "values");
        if (inner == NULL) {
            c->err = GW_E_CONFIG;
            return;
        }
        emit(c, arr ? "{\"type\":\"array\",\"items\":" : "{\"type\":\"map\",\"values\":");
        walk(c, inner, ns, depth + 1);
        emit(c, "}");
    } else {
        walk_reference(c, type, ns);
    }
}

static void walk(canon_ctx *c, const json_t *s, const char *ns, int depth)
{
    if (c->err != GW_OK)
        return;
    if (depth > CANON_MAX_DEPTH) {
        c->err = GW_E_CONFIG;
        return;
    }
    if (json_is_string(s)) {
        walk_reference(c, json_string_value(s), ns);
    } else if (json_is_array(s)) {
        size_t i;
        json_t *v;
        emit(c, "[");
        json_array_foreach(s, i, v)
        {
            if (i)
                emit(c, ",");
            walk(c, v, ns, depth + 1);
        }
        emit(c, "]");
    } else if (json_is_object(s)) {
        walk_object(c, s, ns, depth);
    } else {
        c->err = GW_E_CONFIG;
    }
}

gw_err gw_avro_canonical_form(const char *schema_json, gw_buf *out)
{
    json_error_t jerr;
    json_t *root = json_loads(schema_json, JSON_DECODE_ANY, &jerr);
    if (root == NULL)
        return GW_E_CONFIG;
    canon_ctx *c = calloc(1, sizeof *c);
    if (c == NULL) {
        json_decref(root);
        return GW_E_NOMEM;
    }
    c->out = out;
    c->err = GW_OK;
    size_t start = out->len;
    walk(c, root, "", 0);
    if (c->err == GW_OK && gw_buf_append_byte(out, 0) != GW_OK)
        c->err = GW_E_NOMEM;
    gw_err e = c->err;
    if (e == GW_OK)
        out->len--;
    else
        out->len = start;
    free(c);
    json_decref(root);
    return e;
}

#define CRC64_AVRO_EMPTY 0xc15d213aa4d7a795ULL

/* The table is rebuilt per call: fingerprints are taken at start-up only, and
 * this keeps the module free of shared state. */
uint64_t gw_avro_fingerprint64(const void *p, size_t n)
{
    uint64_t table[256];
    for (int i = 0; i < 256; i++) {
        uint64_t fp = (uint64_t)i;
        for (int j = 0; j < 8; j++)
            fp = (fp >> 1) ^ (CRC64_AVRO_EMPTY & (0 - (fp & 1)));
        table[i] = fp;
    }
    uint64_t fp = CRC64_AVRO_EMPTY;
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        fp = (fp >> 8) ^ table[(fp ^ b[i]) & 0xff];
    return fp;
}
