/*
 * resolve: Avro schema resolution as a transcoder; see resolve.h.
 *
 * Both schemas are parsed (jansson) into a small graph of nodes; named types
 * may refer to themselves (recursive records), so the compatibility check
 * remembers the record pairs it has seen. Transcoding walks the writer's
 * datum and the reader's schema together. A record is read twice: once to
 * find where each writer field starts (skipping values), then reader field
 * by reader field from those offsets, so fields may come in any order without
 * buffering.
 */
#include "codec/resolve.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    N_NULL,
    N_BOOL,
    N_INT,
    N_LONG,
    N_FLOAT,
    N_DOUBLE,
    N_BYTES,
    N_STRING,
    N_RECORD,
    N_ENUM,
    N_ARRAY,
    N_MAP,
    N_UNION,
    N_FIXED,
} nkind;

static const char *const kind_names[] = {"null",   "boolean", "int",    "long",   "float",
                                         "double", "bytes",   "string", "record", "enum",
                                         "array",  "map",     "union",  "fixed"};

typedef struct node node;

typedef struct {
    const char *name;
    const char **aliases;
    size_t nalias;
    node *type;
    json_t *def; /* borrowed from the schema's JSON; NULL when none */
} field;

struct node {
    nkind k;
    const char *name; /* unqualified; named types only */
    const char *fullname;
    const char **aliases; /* unqualified */
    size_t nalias;
    field *fields;
    size_t nfields;
    const char **symbols;
    size_t nsym;
    const char *enum_default;
    node *items; /* array items, map values */
    node **br;
    size_t nbr;
    size_t size; /* fixed */
    char *owned; /* fullname storage */
};

typedef struct {
    json_t *root;
    node **all;
    size_t n;
    node *named[GW_RESOLVE_MAX_NODES];
    size_t nnamed;
} schema;

typedef struct {
    const node *w, *r;
} pair;

struct gw_resolver {
    schema w, r;
    node *wt, *rt; /* the top types */
};

/* ---- errors --------------------------------------------------------------------- */

typedef struct {
    char *buf;
    size_t len;
} why_t;

static gw_err fail(why_t *why, gw_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static gw_err fail(why_t *why, gw_err err, const char *fmt, ...)
{
    if (why != NULL && why->buf != NULL && why->len > 0 && why->buf[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why->buf, why->len, fmt, ap);
        va_end(ap);
    }
    return err;
}

/* ---- parsing ---------------------------------------------------------------------- */

static node *new_node(schema *s, nkind k)
{
    if (s->n >= GW_RESOLVE_MAX_NODES)
        return NULL;
    node *n = calloc(1, sizeof *n);
    if (n == NULL)
        return NULL;
    node **all = realloc(s->all, (s->n + 1) * sizeof *all);
    if (all == NULL) {
        free(n);
        return NULL;
    }
    s->all = all;
    s->all[s->n++] = n;
    n->k = k;
    return n;
}

static int primitive(const char *t)
{
    for (int k = N_NULL; k <= N_STRING; k++)
        if (strcmp(t, kind_names[k]) == 0)
            return k;
    return -1;
}

static const char *unqualified(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot ? dot + 1 : name;
}

static node *lookup(schema *s, const char *name, const char *ns)
{
    char full[512];
    if (strchr(name, '.') == NULL && ns != NULL && ns[0] != '\0') {
        snprintf(full, sizeof full, "%s.%s", ns, name);
        for (size_t i = 0; i < s->nnamed; i++)
            if (strcmp(s->named[i]->fullname, full) == 0)
                return s->named[i];
    }
    for (size_t i = 0; i < s->nnamed; i++)
        if (strcmp(s->named[i]->fullname, name) == 0)
            return s->named[i];
    return NULL;
}

static gw_err parse(schema *s, json_t *j, const char *ns, int depth, node **out, why_t *why);

/* Aliases as unqualified names (the array of JSON strings a, or none). */
static gw_err parse_aliases(json_t *a, const char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!json_is_array(a) || json_array_size(a) == 0)
        return GW_OK;
    const char **v = calloc(json_array_size(a), sizeof *v);
    if (v == NULL)
        return GW_E_NOMEM;
    size_t i;
    json_t *x;
    json_array_foreach(a, i, x)
    {
        if (json_is_string(x))
            v[(*n)++] = unqualified(json_string_value(x));
    }
    *out = v;
    return GW_OK;
}

enum { NS_MAX = 512 };

/* A named type: its full name from name and namespace, registered before its
 * body is parsed so that the body may refer to it. inner_ns (NS_MAX bytes)
 * receives the namespace of the names inside it. */
static gw_err named(schema *s, json_t *j, nkind k, const char *ns, char *inner_ns, node **out,
                    why_t *why)
{
    const char *name = json_string_value(json_object_get(j, "name"));
    if (name == NULL || name[0] == '\0')
        return fail(why, GW_E_CODEC_BAD_DATA, "a %s without a name", kind_names[k]);
    const char *own_ns = json_string_value(json_object_get(j, "namespace"));
    const char *use_ns = own_ns != NULL ? own_ns : ns;
    node *n = new_node(s, k);
    if (n == NULL || s->nnamed >= GW_RESOLVE_MAX_NODES)
        return GW_E_NOMEM;
    size_t len = strlen(name) + (use_ns ? strlen(use_ns) : 0) + 2;
    n->owned = malloc(len);
    if (n->owned == NULL)
        return GW_E_NOMEM;
    if (strchr(name, '.') == NULL && use_ns != NULL && use_ns[0] != '\0')
        snprintf(n->owned, len, "%s.%s", use_ns, name);
    else
        snprintf(n->owned, len, "%s", name);
    n->fullname = n->owned;
    n->name = unqualified(name);
    gw_err err = parse_aliases(json_object_get(j, "aliases"), &n->aliases, &n->nalias);
    if (err != GW_OK)
        return err;
    s->named[s->nnamed++] = n;
    /* names inside take the namespace of this name */
    const char *dot = strrchr(n->fullname, '.');
    inner_ns[0] = '\0';
    if (dot != NULL)
        snprintf(inner_ns, NS_MAX, "%.*s", (int)(dot - n->fullname), n->fullname);
    *out = n;
    return GW_OK;
}

static gw_err parse_record(schema *s, json_t *j, const char *ns, int depth, node **out, why_t *why)
{
    node *n;
    char nscopy[NS_MAX];
    gw_err err = named(s, j, N_RECORD, ns, nscopy, &n, why);
    if (err != GW_OK)
        return err;
    json_t *fs = json_object_get(j, "fields");
    if (!json_is_array(fs))
        return fail(why, GW_E_CODEC_BAD_DATA, "record %s has no fields array", n->fullname);
    if (json_array_size(fs) > GW_RESOLVE_MAX_FIELDS)
        return fail(why, GW_E_CODEC_LIMIT, "record %s has more than %d fields", n->fullname,
                    GW_RESOLVE_MAX_FIELDS);
    n->fields = calloc(json_array_size(fs) + 1, sizeof *n->fields);
    if (n->fields == NULL)
        return GW_E_NOMEM;
    size_t i;
    json_t *f;
    json_array_foreach(fs, i, f)
    {
        field *fd = &n->fields[n->nfields];
        fd->name = json_string_value(json_object_get(f, "name"));
        if (fd->name == NULL)
            return fail(why, GW_E_CODEC_BAD_DATA, "a field of %s has no name", n->fullname);
        fd->def = json_object_get(f, "default");
        if ((err = parse_aliases(json_object_get(f, "aliases"), &fd->aliases, &fd->nalias)) !=
            GW_OK)
            return err;
        n->nfields++;
        err = parse(s, json_object_get(f, "type"), nscopy[0] ? nscopy : NULL, depth + 1, &fd->type,
                    why);
        if (err != GW_OK)
            return err;
    }
    *out = n;
    return GW_OK;
}

static gw_err parse_enum(schema *s, json_t *j, const char *ns, node **out, why_t *why)
{
    node *n;
    char inner[NS_MAX];
    gw_err err = named(s, j, N_ENUM, ns, inner, &n, why);
    if (err != GW_OK)
        return err;
    json_t *syms = json_object_get(j, "symbols");
    if (!json_is_array(syms) || json_array_size(syms) == 0)
        return fail(why, GW_E_CODEC_BAD_DATA, "enum %s has no symbols", n->fullname);
    n->symbols = calloc(json_array_size(syms), sizeof *n->symbols);
    if (n->symbols == NULL)
        return GW_E_NOMEM;
    size_t i;
    json_t *x;
    json_array_foreach(syms, i, x)
    {
        if (!json_is_string(x))
            return fail(why, GW_E_CODEC_BAD_DATA, "enum %s has a symbol that is no string",
                        n->fullname);
        n->symbols[n->nsym++] = json_string_value(x);
    }
    n->enum_default = json_string_value(json_object_get(j, "default"));
    *out = n;
    return GW_OK;
}

static gw_err parse_object(schema *s, json_t *j, const char *ns, int depth, node **out, why_t *why)
{
    json_t *t = json_object_get(j, "type");
    if (json_is_object(t) || json_is_array(t))
        return parse(s, t, ns, depth + 1, out, why);
    const char *ts = json_string_value(t);
    if (ts == NULL)
        return fail(why, GW_E_CODEC_BAD_DATA, "a schema object without a type");
    int p = primitive(ts);
    if (p >= 0) {
        *out = new_node(s, (nkind)p);
        return *out ? GW_OK : GW_E_NOMEM;
    }
    if (strcmp(ts, "record") == 0 || strcmp(ts, "error") == 0)
        return parse_record(s, j, ns, depth, out, why);
    if (strcmp(ts, "enum") == 0)
        return parse_enum(s, j, ns, out, why);
    if (strcmp(ts, "array") == 0 || strcmp(ts, "map") == 0) {
        node *n = new_node(s, ts[0] == 'a' ? N_ARRAY : N_MAP);
        if (n == NULL)
            return GW_E_NOMEM;
        *out = n;
        return parse(s, json_object_get(j, ts[0] == 'a' ? "items" : "values"), ns, depth + 1,
                     &n->items, why);
    }
    if (strcmp(ts, "fixed") == 0) {
        node *n;
        char inner[NS_MAX];
        gw_err err = named(s, j, N_FIXED, ns, inner, &n, why);
        if (err != GW_OK)
            return err;
        json_t *size = json_object_get(j, "size");
        if (!json_is_integer(size) || json_integer_value(size) < 0 ||
            json_integer_value(size) > (1 << 20))
            return fail(why, GW_E_CODEC_BAD_DATA, "fixed %s without a valid size", n->fullname);
        n->size = (size_t)json_integer_value(size);
        *out = n;
        return GW_OK;
    }
    node *ref = lookup(s, ts, ns);
    if (ref == NULL)
        return fail(why, GW_E_CODEC_BAD_DATA, "unknown type %s", ts);
    *out = ref;
    return GW_OK;
}

static gw_err parse(schema *s, json_t *j, const char *ns, int depth, node **out, why_t *why)
{
    if (depth > GW_RESOLVE_MAX_DEPTH)
        return fail(why, GW_E_CODEC_LIMIT, "schema nested deeper than %d", GW_RESOLVE_MAX_DEPTH);
    if (s->n >= GW_RESOLVE_MAX_NODES)
        return fail(why, GW_E_CODEC_LIMIT, "schema has more than %d types", GW_RESOLVE_MAX_NODES);
    if (json_is_string(j)) {
        const char *t = json_string_value(j);
        int p = primitive(t);
        if (p >= 0) {
            *out = new_node(s, (nkind)p);
            return *out ? GW_OK : GW_E_NOMEM;
        }
        *out = lookup(s, t, ns);
        return *out ? GW_OK : fail(why, GW_E_CODEC_BAD_DATA, "unknown type %s", t);
    }
    if (json_is_array(j)) {
        node *n = new_node(s, N_UNION);
        if (n == NULL)
            return GW_E_NOMEM;
        n->br = calloc(json_array_size(j) + 1, sizeof *n->br);
        if (n->br == NULL)
            return GW_E_NOMEM;
        size_t i;
        json_t *b;
        json_array_foreach(j, i, b)
        {
            gw_err err = parse(s, b, ns, depth + 1, &n->br[n->nbr], why);
            if (err != GW_OK)
                return err;
            if (n->br[n->nbr]->k == N_UNION)
                return fail(why, GW_E_CODEC_BAD_DATA, "a union inside a union");
            n->nbr++;
        }
        if (n->nbr == 0)
            return fail(why, GW_E_CODEC_BAD_DATA, "an empty union");
        *out = n;
        return GW_OK;
    }
    if (json_is_object(j))
        return parse_object(s, j, ns, depth, out, why);
    return fail(why, GW_E_CODEC_BAD_DATA, "a schema that is neither string, array nor object");
}

static void schema_cleanup(schema *s)
{
    for (size_t i = 0; i < s->n; i++) {
        node *n = s->all[i];
        for (size_t f = 0; f < n->nfields; f++)
            free(n->fields[f].aliases);
        free(n->fields);
        free(n->aliases);
        free(n->symbols);
        free(n->br);
        free(n->owned);
        free(n);
    }
    free(s->all);
    json_decref(s->root);
    memset(s, 0, sizeof *s);
}

static gw_err schema_load(schema *s, const char *text, size_t len, node **top, why_t *why,
                          const char *which)
{
    if (len > GW_RESOLVE_MAX_SCHEMA_BYTES)
        return fail(why, GW_E_CODEC_LIMIT, "%s schema larger than %d bytes", which,
                    GW_RESOLVE_MAX_SCHEMA_BYTES);
    json_error_t je;
    s->root = json_loadb(text, len, JSON_DECODE_ANY, &je);
    if (s->root == NULL)
        return fail(why, GW_E_CODEC_BAD_DATA, "%s schema is not JSON: %s", which, je.text);
    return parse(s, s->root, NULL, 0, top, why);
}

/* ---- matching and the compatibility check ---------------------------------------------- */

static bool same_name(const node *w, const node *r)
{
    if (strcmp(w->name, r->name) == 0)
        return true;
    for (size_t i = 0; i < r->nalias; i++)
        if (strcmp(r->aliases[i], w->name) == 0)
            return true;
    return false;
}

static bool promotes(nkind w, nkind r)
{
    switch (w) {
    case N_INT:
        return r == N_LONG || r == N_FLOAT || r == N_DOUBLE;
    case N_LONG:
        return r == N_FLOAT || r == N_DOUBLE;
    case N_FLOAT:
        return r == N_DOUBLE;
    case N_STRING:
        return r == N_BYTES;
    case N_BYTES:
        return r == N_STRING;
    default:
        return false;
    }
}

/* w (not a union) can be read as r (not a union), at this level. */
static bool matches(const node *w, const node *r)
{
    if (w->k != r->k)
        return promotes(w->k, r->k);
    if (w->k == N_RECORD || w->k == N_ENUM || w->k == N_FIXED)
        return same_name(w, r) && (w->k != N_FIXED || w->size == r->size);
    return true;
}

/* The reader union's branch for writer type w: the same kind first, then a
 * promotion; -1 when none. */
static int pick_branch(const node *w, const node *r)
{
    for (size_t i = 0; i < r->nbr; i++)
        if (r->br[i]->k == w->k && matches(w, r->br[i]))
            return (int)i;
    for (size_t i = 0; i < r->nbr; i++)
        if (matches(w, r->br[i]))
            return (int)i;
    return -1;
}

static const field *writer_field(const node *w, const field *rf)
{
    for (size_t i = 0; i < w->nfields; i++) {
        if (strcmp(w->fields[i].name, rf->name) == 0)
            return &w->fields[i];
        for (size_t a = 0; a < rf->nalias; a++)
            if (strcmp(w->fields[i].name, rf->aliases[a]) == 0)
                return &w->fields[i];
    }
    return NULL;
}

typedef struct {
    pair seen[GW_RESOLVE_MAX_NODES];
    size_t nseen;
    why_t *why;
    gw_buf scratch; /* defaults are encoded once to prove them */
} checker;

static gw_err encode_default(const node *r, json_t *d, gw_buf *out, int depth);
static gw_err check(checker *c, const node *w, const node *r, int depth);

static gw_err check_record(checker *c, const node *w, const node *r, int depth)
{
    for (size_t i = 0; i < c->nseen; i++)
        if (c->seen[i].w == w && c->seen[i].r == r)
            return GW_OK; /* a recursive record: already being checked */
    if (c->nseen < GW_RESOLVE_MAX_NODES)
        c->seen[c->nseen++] = (pair){w, r};
    for (size_t i = 0; i < r->nfields; i++) {
        const field *rf = &r->fields[i];
        const field *wf = writer_field(w, rf);
        if (wf != NULL) {
            gw_err err = check(c, wf->type, rf->type, depth + 1);
            if (err != GW_OK && c->why->buf != NULL && c->why->len > 0) {
                char inner[256]; /* the path to the field, outermost first */
                snprintf(inner, sizeof inner, "%s", c->why->buf);
                snprintf(c->why->buf, c->why->len, "field %s.%s: %s", r->fullname, rf->name, inner);
            }
            if (err != GW_OK)
                return err;
            continue;
        }
        if (rf->def == NULL)
            return fail(c->why, GW_E_CODEC_INCOMPATIBLE,
                        "field %s.%s: the writer lacks it and it has no default", r->fullname,
                        rf->name);
        gw_buf_reset(&c->scratch);
        if (encode_default(rf->type, rf->def, &c->scratch, 0) != GW_OK)
            return fail(c->why, GW_E_CODEC_INCOMPATIBLE,
                        "field %s.%s: its default does not fit its type", r->fullname, rf->name);
    }
    return GW_OK;
}

static gw_err check(checker *c, const node *w, const node *r, int depth)
{
    if (depth > GW_RESOLVE_MAX_DEPTH)
        return fail(c->why, GW_E_CODEC_LIMIT, "schemas nested deeper than %d",
                    GW_RESOLVE_MAX_DEPTH);
    if (w->k == N_UNION) {
        /* a branch that cannot be read fails only the data that uses it */
        for (size_t i = 0; i < w->nbr; i++) {
            char *saved = c->why->buf;
            c->why->buf = NULL; /* keep the first real reason */
            gw_err err = check(c, w->br[i], r, depth + 1);
            c->why->buf = saved;
            if (err == GW_OK)
                return GW_OK;
        }
        return fail(c->why, GW_E_CODEC_INCOMPATIBLE,
                    "no branch of the writer's union can be read as the reader's %s",
                    kind_names[r->k]);
    }
    if (r->k == N_UNION) {
        int b = pick_branch(w, r);
        if (b < 0)
            return fail(c->why, GW_E_CODEC_INCOMPATIBLE,
                        "the writer's %s%s%s matches no branch of the reader's union",
                        kind_names[w->k], w->name ? " " : "", w->name ? w->name : "");
        return check(c, w, r->br[b], depth + 1);
    }
    if (!matches(w, r))
        return fail(c->why, GW_E_CODEC_INCOMPATIBLE, "the writer's %s%s%s cannot be read as %s%s%s",
                    kind_names[w->k], w->name ? " " : "", w->name ? w->name : "", kind_names[r->k],
                    r->name ? " " : "", r->name ? r->name : "");
    switch (r->k) {
    case N_RECORD:
        return check_record(c, w, r, depth);
    case N_ARRAY:
    case N_MAP:
        return check(c, w->items, r->items, depth + 1);
    default:
        return GW_OK;
    }
}

/* ---- encoding --------------------------------------------------------------------------- */

static gw_err put_long(gw_buf *out, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    uint8_t b[10];
    size_t n = 0;
    while (z >= 0x80) {
        b[n++] = (uint8_t)(z | 0x80);
        z >>= 7;
    }
    b[n++] = (uint8_t)z;
    return gw_buf_append(out, b, n);
}

static gw_err put_float(gw_buf *out, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint8_t b[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
    return gw_buf_append(out, b, 4);
}

static gw_err put_double(gw_buf *out, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(u >> (8 * i));
    return gw_buf_append(out, b, 8);
}

/* Avro's JSON for bytes and fixed: each code point 0..255 is one byte. */
static gw_err put_latin1(gw_buf *out, const char *s, size_t n, bool with_len, size_t want)
{
    uint8_t *tmp = malloc(n + 1);
    if (tmp == NULL)
        return GW_E_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            tmp[k++] = c;
            i++;
        } else if ((c & 0xe0) == 0xc0 && i + 1 < n && c <= 0xc3) {
            tmp[k++] = (uint8_t)(((c & 0x1f) << 6) | ((unsigned char)s[i + 1] & 0x3f));
            i += 2;
        } else {
            free(tmp);
            return GW_E_CODEC_BAD_DATA;
        }
    }
    gw_err err = GW_OK;
    if (want != (size_t)-1 && k != want)
        err = GW_E_CODEC_BAD_DATA;
    if (err == GW_OK && with_len)
        err = put_long(out, (int64_t)k);
    if (err == GW_OK)
        err = gw_buf_append(out, tmp, k);
    free(tmp);
    return err;
}

static gw_err encode_default(const node *r, json_t *d, gw_buf *out, int depth)
{
    if (depth > GW_RESOLVE_MAX_DEPTH || d == NULL)
        return GW_E_CODEC_BAD_DATA;
    gw_err err = GW_OK;
    switch (r->k) {
    case N_UNION: /* the default is of the first branch */
        err = put_long(out, 0);
        return err ? err : encode_default(r->br[0], d, out, depth + 1);
    case N_NULL:
        return json_is_null(d) ? GW_OK : GW_E_CODEC_BAD_DATA;
    case N_BOOL:
        return json_is_boolean(d) ? gw_buf_append_byte(out, json_is_true(d)) : GW_E_CODEC_BAD_DATA;
    case N_INT:
    case N_LONG:
        if (!json_is_integer(d) || (r->k == N_INT && (json_integer_value(d) < INT32_MIN ||
                                                      json_integer_value(d) > INT32_MAX)))
            return GW_E_CODEC_BAD_DATA;
        return put_long(out, json_integer_value(d));
    case N_FLOAT:
        return json_is_number(d) ? put_float(out, (float)json_number_value(d))
                                 : GW_E_CODEC_BAD_DATA;
    case N_DOUBLE:
        return json_is_number(d) ? put_double(out, json_number_value(d)) : GW_E_CODEC_BAD_DATA;
    case N_STRING:
        if (!json_is_string(d))
            return GW_E_CODEC_BAD_DATA;
        err = put_long(out, (int64_t)json_string_length(d));
        return err ? err : gw_buf_append(out, json_string_value(d), json_string_length(d));
    case N_BYTES:
    case N_FIXED:
        if (!json_is_string(d))
            return GW_E_CODEC_BAD_DATA;
        return put_latin1(out, json_string_value(d), json_string_length(d), r->k == N_BYTES,
                          r->k == N_FIXED ? r->size : (size_t)-1);
    case N_ENUM:
        for (size_t i = 0; json_is_string(d) && i < r->nsym; i++)
            if (strcmp(r->symbols[i], json_string_value(d)) == 0)
                return put_long(out, (int64_t)i);
        return GW_E_CODEC_BAD_DATA;
    case N_ARRAY: {
        if (!json_is_array(d))
            return GW_E_CODEC_BAD_DATA;
        size_t i;
        json_t *x;
        if (json_array_size(d) > 0 && (err = put_long(out, (int64_t)json_array_size(d))) != GW_OK)
            return err;
        json_array_foreach(d, i, x)
        {
            if ((err = encode_default(r->items, x, out, depth + 1)) != GW_OK)
                return err;
        }
        return put_long(out, 0);
    }
    case N_MAP: {
        if (!json_is_object(d))
            return GW_E_CODEC_BAD_DATA;
        const char *k;
        json_t *x;
        if (json_object_size(d) > 0 && (err = put_long(out, (int64_t)json_object_size(d))) != GW_OK)
            return err;
        json_object_foreach(d, k, x)
        {
            if ((err = put_long(out, (int64_t)strlen(k))) != GW_OK ||
                (err = gw_buf_append(out, k, strlen(k))) != GW_OK ||
                (err = encode_default(r->items, x, out, depth + 1)) != GW_OK)
                return err;
        }
        return put_long(out, 0);
    }
    case N_RECORD:
        if (!json_is_object(d))
            return GW_E_CODEC_BAD_DATA;
        for (size_t i = 0; i < r->nfields; i++) {
            json_t *v = json_object_get(d, r->fields[i].name);
            if ((err = encode_default(r->fields[i].type, v ? v : r->fields[i].def, out,
                                      depth + 1)) != GW_OK)
                return err;
        }
        return GW_OK;
    }
    return GW_E_CODEC_BAD_DATA;
}

/* ---- reading ------------------------------------------------------------------------------ */

typedef struct {
    const uint8_t *p, *end;
    size_t items; /* array and map items so far */
} cur;

static gw_err get_long(cur *c, int64_t *v)
{
    uint64_t z = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (c->p >= c->end)
            return GW_E_CODEC_TRUNCATED;
        uint8_t b = *c->p++;
        z |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
            return GW_OK;
        }
    }
    return GW_E_CODEC_BAD_DATA;
}

static gw_err take(cur *c, size_t n, const uint8_t **p)
{
    if ((size_t)(c->end - c->p) < n)
        return GW_E_CODEC_TRUNCATED;
    *p = c->p;
    c->p += n;
    return GW_OK;
}

static gw_err get_len(cur *c, size_t *n)
{
    int64_t v;
    gw_err err = get_long(c, &v);
    if (err != GW_OK)
        return err;
    if (v < 0)
        return GW_E_CODEC_BAD_DATA;
    if ((uint64_t)v > (uint64_t)(c->end - c->p))
        return GW_E_CODEC_TRUNCATED;
    *n = (size_t)v;
    return GW_OK;
}

/* The next block's item count (0 ends), counted against the datum's limit. */
static gw_err block(cur *c, size_t *count)
{
    int64_t n;
    gw_err err = get_long(c, &n);
    if (err != GW_OK)
        return err;
    if (n < 0) {
        if (n == INT64_MIN)
            return GW_E_CODEC_BAD_DATA;
        n = -n;
        int64_t bytes;
        if ((err = get_long(c, &bytes)) != GW_OK)
            return err;
        if (bytes < 0)
            return GW_E_CODEC_BAD_DATA;
    }
    if ((uint64_t)n > GW_RESOLVE_MAX_ITEMS || c->items + (size_t)n > GW_RESOLVE_MAX_ITEMS)
        return GW_E_CODEC_LIMIT;
    c->items += (size_t)n;
    *count = (size_t)n;
    return GW_OK;
}

static gw_err skip(const node *w, cur *c, int depth)
{
    if (depth > GW_RESOLVE_MAX_DEPTH)
        return GW_E_CODEC_LIMIT;
    const uint8_t *p;
    size_t n;
    int64_t v;
    gw_err err;
    switch (w->k) {
    case N_NULL:
        return GW_OK;
    case N_BOOL:
        return take(c, 1, &p);
    case N_INT:
    case N_LONG:
    case N_ENUM:
        return get_long(c, &v);
    case N_FLOAT:
        return take(c, 4, &p);
    case N_DOUBLE:
        return take(c, 8, &p);
    case N_BYTES:
    case N_STRING:
        err = get_len(c, &n);
        return err ? err : take(c, n, &p);
    case N_FIXED:
        return take(c, w->size, &p);
    case N_UNION:
        if ((err = get_long(c, &v)) != GW_OK)
            return err;
        if (v < 0 || (uint64_t)v >= w->nbr)
            return GW_E_CODEC_BAD_DATA;
        return skip(w->br[v], c, depth + 1);
    case N_RECORD:
        for (size_t i = 0; i < w->nfields; i++)
            if ((err = skip(w->fields[i].type, c, depth + 1)) != GW_OK)
                return err;
        return GW_OK;
    case N_ARRAY:
    case N_MAP:
        for (;;) {
            size_t count;
            if ((err = block(c, &count)) != GW_OK)
                return err;
            if (count == 0)
                return GW_OK;
            for (size_t i = 0; i < count; i++) {
                if (w->k == N_MAP && ((err = get_len(c, &n)) != GW_OK || (err = take(c, n, &p))))
                    return err;
                if ((err = skip(w->items, c, depth + 1)) != GW_OK)
                    return err;
            }
        }
    }
    return GW_E_CODEC_BAD_DATA;
}

/* ---- transcoding -------------------------------------------------------------------------- */

static gw_err xcode(const node *w, const node *r, cur *c, gw_buf *out, int depth);

static gw_err xcode_record(const node *w, const node *r, cur *c, gw_buf *out, int depth)
{
    const uint8_t *at[GW_RESOLVE_MAX_FIELDS];
    gw_err err;
    for (size_t i = 0; i < w->nfields; i++) {
        at[i] = c->p;
        if ((err = skip(w->fields[i].type, c, depth + 1)) != GW_OK)
            return err;
    }
    const uint8_t *end = c->p;
    for (size_t j = 0; j < r->nfields; j++) {
        const field *rf = &r->fields[j];
        const field *wf = writer_field(w, rf);
        if (wf == NULL) {
            if ((err = encode_default(rf->type, rf->def, out, 0)) != GW_OK)
                return err == GW_E_CODEC_BAD_DATA ? GW_E_CODEC_INCOMPATIBLE : err;
            continue;
        }
        cur sub = {at[wf - w->fields], end, c->items};
        if ((err = xcode(wf->type, rf->type, &sub, out, depth + 1)) != GW_OK)
            return err;
        c->items = sub.items;
    }
    c->p = end;
    return GW_OK;
}

static gw_err xcode_enum(const node *w, const node *r, cur *c, gw_buf *out)
{
    int64_t v;
    gw_err err = get_long(c, &v);
    if (err != GW_OK)
        return err;
    if (v < 0 || (uint64_t)v >= w->nsym)
        return GW_E_CODEC_BAD_DATA;
    const char *sym = w->symbols[v];
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < r->nsym; i++)
            if (strcmp(r->symbols[i], sym) == 0)
                return put_long(out, (int64_t)i);
        if (r->enum_default == NULL)
            break;
        sym = r->enum_default;
    }
    return GW_E_CODEC_BAD_DATA; /* a symbol the reader does not know, and no default */
}

static gw_err xcode_blocks(const node *w, const node *r, cur *c, gw_buf *out, int depth)
{
    gw_err err;
    const uint8_t *p;
    size_t n;
    for (;;) {
        size_t count;
        if ((err = block(c, &count)) != GW_OK || (err = put_long(out, (int64_t)count)) != GW_OK)
            return err;
        if (count == 0)
            return GW_OK;
        for (size_t i = 0; i < count; i++) {
            if (r->k == N_MAP &&
                ((err = get_len(c, &n)) != GW_OK || (err = take(c, n, &p)) ||
                 (err = put_long(out, (int64_t)n)) || (err = gw_buf_append(out, p, n))))
                return err;
            if ((err = xcode(w->items, r->items, c, out, depth + 1)) != GW_OK)
                return err;
        }
    }
}

static gw_err xcode_number(const node *w, const node *r, cur *c, gw_buf *out)
{
    int64_t v;
    const uint8_t *p;
    gw_err err;
    if (w->k == N_INT || w->k == N_LONG) {
        if ((err = get_long(c, &v)) != GW_OK)
            return err;
        if (w->k == N_INT && (v < INT32_MIN || v > INT32_MAX))
            return GW_E_CODEC_BAD_DATA;
        if (r->k == N_INT || r->k == N_LONG)
            return put_long(out, v);
        return r->k == N_FLOAT ? put_float(out, (float)v) : put_double(out, (double)v);
    }
    if (w->k == N_FLOAT) {
        if ((err = take(c, 4, &p)) != GW_OK)
            return err;
        if (r->k == N_FLOAT)
            return gw_buf_append(out, p, 4);
        uint32_t u =
            (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        float f;
        memcpy(&f, &u, 4);
        return put_double(out, (double)f);
    }
    if ((err = take(c, 8, &p)) != GW_OK)
        return err;
    return gw_buf_append(out, p, 8);
}

static gw_err xcode(const node *w, const node *r, cur *c, gw_buf *out, int depth)
{
    if (depth > GW_RESOLVE_MAX_DEPTH)
        return GW_E_CODEC_LIMIT;
    int64_t v;
    const uint8_t *p;
    size_t n;
    gw_err err;
    if (w->k == N_UNION) {
        if ((err = get_long(c, &v)) != GW_OK)
            return err;
        if (v < 0 || (uint64_t)v >= w->nbr)
            return GW_E_CODEC_BAD_DATA;
        return xcode(w->br[v], r, c, out, depth + 1);
    }
    if (r->k == N_UNION) {
        int b = pick_branch(w, r);
        if (b < 0)
            return GW_E_CODEC_INCOMPATIBLE;
        if ((err = put_long(out, b)) != GW_OK)
            return err;
        return xcode(w, r->br[b], c, out, depth + 1);
    }
    if (!matches(w, r))
        return GW_E_CODEC_INCOMPATIBLE;
    switch (r->k) {
    case N_NULL:
        return GW_OK;
    case N_BOOL:
        if ((err = take(c, 1, &p)) != GW_OK)
            return err;
        return *p > 1 ? GW_E_CODEC_BAD_DATA : gw_buf_append(out, p, 1);
    case N_INT:
    case N_LONG:
    case N_FLOAT:
    case N_DOUBLE:
        return xcode_number(w, r, c, out);
    case N_BYTES:
    case N_STRING:
        if ((err = get_len(c, &n)) != GW_OK || (err = take(c, n, &p)) != GW_OK ||
            (err = put_long(out, (int64_t)n)) != GW_OK)
            return err;
        return gw_buf_append(out, p, n);
    case N_FIXED:
        err = take(c, r->size, &p);
        return err ? err : gw_buf_append(out, p, r->size);
    case N_ENUM:
        return xcode_enum(w, r, c, out);
    case N_ARRAY:
    case N_MAP:
        return xcode_blocks(w, r, c, out, depth);
    case N_RECORD:
        return xcode_record(w, r, c, out, depth);
    case N_UNION:
        break;
    }
    return GW_E_CODEC_BAD_DATA;
}

/* ---- the resolver ------------------------------------------------------------------------- */

gw_err gw_resolver_new(const char *writer_json, size_t writer_len, const char *reader_json,
                       size_t reader_len, char *why, size_t why_len, gw_resolver **out)
{
    why_t y = {why, why_len};
    if (why != NULL && why_len > 0)
        why[0] = '\0';
    gw_resolver *r = calloc(1, sizeof *r);
    checker *c = calloc(1, sizeof *c);
    if (r == NULL || c == NULL) {
        free(r);
        free(c);
        return GW_E_NOMEM;
    }
    gw_err err = schema_load(&r->w, writer_json, writer_len, &r->wt, &y, "the writer");
    if (err == GW_OK)
        err = schema_load(&r->r, reader_json, reader_len, &r->rt, &y, "the reader");
    if (err == GW_OK) {
        c->why = &y;
        gw_buf_init(&c->scratch, 1 << 20);
        err = check(c, r->wt, r->rt, 0);
        gw_buf_cleanup(&c->scratch);
    }
    free(c);
    if (err != GW_OK) {
        gw_resolver_free(r);
        return err;
    }
    *out = r;
    return GW_OK;
}

void gw_resolver_free(gw_resolver *r)
{
    if (r == NULL)
        return;
    schema_cleanup(&r->w);
    schema_cleanup(&r->r);
    free(r);
}

gw_err gw_resolver_transcode(const gw_resolver *r, const uint8_t *in, size_t len, gw_buf *out)
{
    size_t mark = out->len;
    cur c = {in, in + len, 0};
    gw_err err = xcode(r->wt, r->rt, &c, out, 0);
    if (err == GW_OK && c.p != c.end)
        err = GW_E_CODEC_TRAILING;
    if (err == GW_E_LIMIT)
        err = GW_E_CODEC_TOO_LARGE;
    if (err != GW_OK)
        out->len = mark;
    return err;
}
