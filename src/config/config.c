/*
 * config: the table-driven engine behind config.h.
 *
 * The engine walks the libconfig tree of the file and the row tables of
 * config_rows.c side by side: every leaf of the file must match a row
 * (else "unknown setting"), every value is checked against the row's type
 * and bounds, every row not in the file gets its default, and every row
 * whose default is NULL must be present. The --set override parses text
 * with the same code that parses defaults. Validation across settings runs
 * after loading and again after every override.
 *
 * Memory: all strings and element arrays are allocated from the config's
 * pool (gw_cfg_priv) and freed at once by gw_config_free(). Values that are
 * replaced by --set stay in the pool until then; that is bounded by the
 * number of overrides.
 *
 * Secrets: a GW_CT_ENV row stores the variable name in its field and the
 * value from getenv() in off2. Nothing here formats the off2 field, so no
 * message, dump or reference can contain a secret.
 */
#include "config/config_private.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum {
    GW_CFG_LIST_ITEMS_MAX = 64,
    GW_CFG_STRING_MAX_DEFAULT = 4096,
    GW_CFG_FILE_MAX_BYTES = 4 << 20,
    GW_CFG_MAX_SETS = 4096,
};

_Static_assert(sizeof(gw_cfg_framing) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(gw_log_level) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(gw_provider_kind) == sizeof(int), "enums are stored as int");

struct gw_cfg_priv {
    void **ptrs; /* every allocation owned by the config */
    size_t n, cap;
};

/* A value before it is checked and stored. */
typedef struct {
    bool b;
    int64_t i;
    double d;
    const char *s;
    const char *items[GW_CFG_LIST_ITEMS_MAX + 1];
    size_t n;
} gw_cfg_val;

/* ---- pool ------------------------------------------------------------- */

static void *pool_alloc(gw_config *cfg, size_t size)
{
    gw_cfg_priv *p = cfg->priv;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        void **np = realloc(p->ptrs, cap * sizeof(*np));
        if (np == NULL)
            return NULL;
        p->ptrs = np;
        p->cap = cap;
    }
    void *mem = calloc(1, size ? size : 1);
    if (mem != NULL)
        p->ptrs[p->n++] = mem;
    return mem;
}

const char *gw_cfg_strdup(gw_config *cfg, const char *s)
{
    size_t len = strlen(s);
    char *d = pool_alloc(cfg, len + 1);
    if (d != NULL)
        memcpy(d, s, len + 1);
    return d;
}

static gw_config *config_new(void)
{
    gw_config *cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL)
        return NULL;
    cfg->priv = calloc(1, sizeof(*cfg->priv));
    if (cfg->priv == NULL) {
        free(cfg);
        return NULL;
    }
    cfg->source = "(defaults)";
    return cfg;
}

void gw_config_free(gw_config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->priv->n; i++)
        free(cfg->priv->ptrs[i]);
    free(cfg->priv->ptrs);
    free(cfg->priv);
    free(cfg);
}

/* ---- errors ----------------------------------------------------------- */

static const char *type_name(gw_cfg_type t)
{
    switch (t) {
    case GW_CT_BOOL:
        return "a boolean";
    case GW_CT_INT:
    case GW_CT_INT64:
        return "an integer";
    case GW_CT_DOUBLE:
        return "a number";
    case GW_CT_STRING:
    case GW_CT_ENUM:
    case GW_CT_ENV:
        return "a string";
    case GW_CT_STRLIST:
        return "a list of strings";
    case GW_CT_LIST:
        return "a list of groups";
    }
    return "?";
}

static const char *setting_type_name(const config_setting_t *s)
{
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_GROUP:
        return "a group";
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
        return "an integer";
    case CONFIG_TYPE_FLOAT:
        return "a float";
    case CONFIG_TYPE_STRING:
        return "a string";
    case CONFIG_TYPE_BOOL:
        return "a boolean";
    case CONFIG_TYPE_ARRAY:
        return "an array";
    case CONFIG_TYPE_LIST:
        return "a list";
    default:
        return "nothing";
    }
}

/* The setting at path ("a.b[2].c") in the parsed file, or its nearest
 * existing parent (*exact false); NULL when not even the first component
 * exists. */
static const config_setting_t *find_setting(const config_t *cf, const char *path, bool *exact)
{
    const config_setting_t *cur = config_root_setting(cf), *found = NULL;
    const char *p = path;
    while (*p != '\0' && cur != NULL) {
        char name[GW_CFG_PATH_MAX];
        size_t len = strcspn(p, ".[");
        const config_setting_t *next;
        const char *rest;
        if (*p == '[') {
            next = config_setting_get_elem(cur, (unsigned)strtoul(p + 1, NULL, 10));
            rest = strchr(p, ']') ? strchr(p, ']') + 1 : p + strlen(p);
        } else {
            if (len == 0 || len >= sizeof(name))
                break;
            memcpy(name, p, len);
            name[len] = '\0';
            next = config_setting_type(cur) == CONFIG_TYPE_GROUP
                       ? config_setting_get_member(cur, name)
                       : NULL;
            rest = p + len;
        }
        if (next == NULL)
            break;
        p = rest;
        found = cur = next;
        if (*p == '.')
            p++;
    }
    *exact = *p == '\0';
    return found;
}

/* The last override that set path (by index), or NULL. */
static const gw_cfg_override *override_of(const gw_cfg_ctx *ctx, const char *path)
{
    for (size_t i = ctx->set_count; path != NULL && i-- > 0;)
        if (ctx->sets[i].used && strcmp(ctx->sets[i].norm, path) == 0)
            return &ctx->sets[i];
    return NULL;
}

/* The last override of another setting of the list element path is in. */
static const gw_cfg_override *element_override_of(const gw_cfg_ctx *ctx, const char *path)
{
    const char *close = strstr(path, "].");
    if (close == NULL)
        return NULL;
    size_t len = (size_t)(close - path) + 2;
    for (size_t i = ctx->set_count; i-- > 0;)
        if (ctx->sets[i].used && strncmp(ctx->sets[i].norm, path, len) == 0)
            return &ctx->sets[i];
    return NULL;
}

/* The exact setting at path in the file, or NULL. */
static const config_setting_t *file_setting(const gw_cfg_ctx *ctx, const char *path)
{
    bool exact = false;
    const config_setting_t *s =
        ctx->cf != NULL && path != NULL ? find_setting(ctx->cf, path, &exact) : NULL;
    return exact ? s : NULL;
}

static gw_err failv(gw_cfg_ctx *ctx, const config_setting_t *s, const char *path, const char *other,
                    const char *fmt, va_list ap)
{
    if (ctx->errbuf == NULL || ctx->errlen == 0)
        return GW_E_CONFIG;
    const gw_cfg_override *ov = ctx->cur;
    if (s == NULL && ov == NULL && (ov = override_of(ctx, path)) == NULL &&
        (ov = override_of(ctx, other)) == NULL && (s = file_setting(ctx, path)) == NULL &&
        (s = file_setting(ctx, other)) == NULL && (ov = element_override_of(ctx, path)) == NULL &&
        ctx->cf != NULL) {
        bool exact;
        s = find_setting(ctx->cf, path, &exact);
    }
    int n;
    if (ov != NULL && ov->row != NULL && ov->row->type == GW_CT_ENV)
        n = snprintf(ctx->errbuf, ctx->errlen, "--set %.200s=(not shown): %s: ", ov->path, path);
    else if (ov != NULL)
        n = snprintf(ctx->errbuf, ctx->errlen, "--set %.200s=%.64s: %s: ", ov->path, ov->value,
                     path);
    else {
        const char *file = ctx->origin;
        unsigned line = 0;
        if (s != NULL) {
            line = config_setting_source_line(s);
            if (config_setting_source_file(s) != NULL)
                file = config_setting_source_file(s);
        }
        if (line > 0)
            n = snprintf(ctx->errbuf, ctx->errlen, "%s:%u: %s: ", file, line, path);
        else
            n = snprintf(ctx->errbuf, ctx->errlen, "%s: %s: ", file, path);
    }
    if (n >= 0 && (size_t)n < ctx->errlen)
        vsnprintf(ctx->errbuf + n, ctx->errlen - (size_t)n, fmt, ap);
    return GW_E_CONFIG;
}

gw_err gw_cfg_fail(gw_cfg_ctx *ctx, const config_setting_t *s, const char *path, const char *fmt,
                   ...)
{
    va_list ap;
    va_start(ap, fmt);
    gw_err e = failv(ctx, s, path, NULL, fmt, ap);
    va_end(ap);
    return e;
}

gw_err gw_cfg_fail_rule(gw_cfg_ctx *ctx, const char *path, const char *other, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gw_err e = failv(ctx, NULL, path, other, fmt, ap);
    va_end(ap);
    return e;
}

/* ---- tables ----------------------------------------------------------- */

static const gw_cfg_row *find_row(const gw_cfg_table *t, const char *rel)
{
    for (size_t i = 0; i < t->row_count; i++)
        if (strcmp(t->rows[i].path, rel) == 0)
            return &t->rows[i];
    return NULL;
}

static bool has_group_prefix(const gw_cfg_table *t, const char *rel)
{
    size_t len = strlen(rel);
    for (size_t i = 0; i < t->row_count; i++)
        if (strncmp(t->rows[i].path, rel, len) == 0 && t->rows[i].path[len] == '.')
            return true;
    return false;
}

/* Format a setting path into buf (GW_CFG_PATH_MAX); false when it does not fit. */
static bool path_printf(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool path_printf(char *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, GW_CFG_PATH_MAX, fmt, ap);
    va_end(ap);
    return n >= 0 && n < GW_CFG_PATH_MAX;
}

static bool join_path(char *buf, const char *a, const char *b)
{
    int n = a[0] ? snprintf(buf, GW_CFG_PATH_MAX, "%s.%s", a, b)
                 : snprintf(buf, GW_CFG_PATH_MAX, "%s", b);
    return n >= 0 && n < GW_CFG_PATH_MAX;
}

static size_t field_size(gw_cfg_type t)
{
    switch (t) {
    case GW_CT_BOOL:
        return sizeof(bool);
    case GW_CT_INT:
        return sizeof(int32_t);
    case GW_CT_INT64:
        return sizeof(int64_t);
    case GW_CT_DOUBLE:
        return sizeof(double);
    case GW_CT_ENUM:
        return sizeof(int);
    default:
        return sizeof(const char *);
    }
}

/* ---- values ----------------------------------------------------------- */

static gw_err check_string(gw_cfg_ctx *ctx, const gw_cfg_row *row, const char *s,
                           const config_setting_t *at, const char *path)
{
    size_t max = row->max > 0 ? (size_t)row->max : GW_CFG_STRING_MAX_DEFAULT;
    size_t len = strlen(s);
    if (len > max)
        return gw_cfg_fail(ctx, at, path, "value is longer than %zu bytes", max);
    if (len < (size_t)row->min)
        return gw_cfg_fail(ctx, at, path, "must not be empty");
    return GW_OK;
}

static gw_err enum_value(gw_cfg_ctx *ctx, const gw_cfg_row *row, const char *s,
                         const config_setting_t *at, const char *path, int *out)
{
    char names[512] = "";
    size_t used = 0;
    for (int i = 0; row->names[i] != NULL; i++) {
        if (strcmp(row->names[i], s) == 0) {
            *out = i;
            return GW_OK;
        }
        int n = snprintf(names + used, sizeof(names) - used, "%s%s", i ? ", " : "", row->names[i]);
        if (n > 0 && used + (size_t)n < sizeof(names))
            used += (size_t)n;
    }
    return gw_cfg_fail(ctx, at, path, "\"%.64s\" is not one of: %s", s, names);
}

static bool valid_env_name(const char *s)
{
    if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_'))
            return false;
    return true;
}

static gw_err store_string_row(gw_cfg_ctx *ctx, const gw_cfg_row *row, char *field, const char *s,
                               const config_setting_t *at, const char *path)
{
    gw_err e = check_string(ctx, row, s, at, path);
    if (e != GW_OK)
        return e;
    if (row->type == GW_CT_ENUM)
        return enum_value(ctx, row, s, at, path, (int *)(void *)field);
    const char *copy = NULL;
    if (s[0] != '\0' && (copy = gw_cfg_strdup(ctx->cfg, s)) == NULL)
        return GW_E_NOMEM;
    if (row->type == GW_CT_ENV) {
        char *secret_field = field - row->off + row->off2;
        const char *secret = NULL, *value = NULL;
        if (copy != NULL && !valid_env_name(copy))
            return gw_cfg_fail(ctx, at, path,
                               "must name an environment variable (letters, digits, _); the secret "
                               "itself never goes in the file");
        if (copy != NULL && (value = getenv(copy)) != NULL &&
            (secret = gw_cfg_strdup(ctx->cfg, value)) == NULL)
            return GW_E_NOMEM;
        memcpy(secret_field, &secret, sizeof(secret));
    }
    memcpy(field, &copy, sizeof(copy));
    return GW_OK;
}

static gw_err store_list(gw_cfg_ctx *ctx, const gw_cfg_row *row, char *base, const gw_cfg_val *v,
                         const config_setting_t *at, const char *path)
{
    if (v->n > (size_t)row->max)
        return gw_cfg_fail(ctx, at, path, "has %zu items, the maximum is %.0f", v->n, row->max);
    const char **items = (const char **)(void *)(base + row->off);
    for (size_t i = 0; i < v->n; i++) {
        if (v->items[i][0] == '\0' || strlen(v->items[i]) > GW_CFG_STRING_MAX_DEFAULT)
            return gw_cfg_fail(ctx, at, path, "item %zu is empty or too long", i);
        if ((items[i] = gw_cfg_strdup(ctx->cfg, v->items[i])) == NULL)
            return GW_E_NOMEM;
    }
    memcpy(base + row->off2, &v->n, sizeof(size_t));
    return GW_OK;
}

/* Check v against the row's bounds and write it into base. */
static gw_err store(gw_cfg_ctx *ctx, const gw_cfg_row *row, char *base, const gw_cfg_val *v,
                    const config_setting_t *at, const char *path)
{
    char *field = base + row->off;
    switch (row->type) {
    case GW_CT_BOOL:
        memcpy(field, &v->b, sizeof(bool));
        return GW_OK;
    case GW_CT_INT:
    case GW_CT_INT64:
        if ((double)v->i < row->min)
            return gw_cfg_fail(ctx, at, path, "%" PRId64 " is below the minimum %.0f", v->i,
                               row->min);
        if ((double)v->i > row->max)
            return gw_cfg_fail(ctx, at, path, "%" PRId64 " is above the maximum %.0f", v->i,
                               row->max);
        if (row->type == GW_CT_INT) {
            int32_t i32 = (int32_t)v->i;
            memcpy(field, &i32, sizeof(i32));
        } else {
            memcpy(field, &v->i, sizeof(int64_t));
        }
        return GW_OK;
    case GW_CT_DOUBLE:
        if (!isfinite(v->d))
            return gw_cfg_fail(ctx, at, path, "must be a finite number");
        if (v->d < row->min)
            return gw_cfg_fail(ctx, at, path, "%g is below the minimum %g", v->d, row->min);
        if (v->d > row->max)
            return gw_cfg_fail(ctx, at, path, "%g is above the maximum %g", v->d, row->max);
        memcpy(field, &v->d, sizeof(double));
        return GW_OK;
    case GW_CT_STRING:
    case GW_CT_ENUM:
    case GW_CT_ENV:
        return store_string_row(ctx, row, field, v->s, at, path);
    case GW_CT_STRLIST:
        return store_list(ctx, row, base, v, at, path);
    case GW_CT_LIST:
        break;
    }
    return gw_cfg_fail(ctx, at, path, "cannot be set this way");
}

static gw_err val_from_setting(gw_cfg_ctx *ctx, const gw_cfg_row *row, const config_setting_t *s,
                               const char *path, gw_cfg_val *v)
{
    int st = config_setting_type(s);
    bool is_int = st == CONFIG_TYPE_INT || st == CONFIG_TYPE_INT64;
    switch (row->type) {
    case GW_CT_BOOL:
        if (st != CONFIG_TYPE_BOOL)
            break;
        v->b = config_setting_get_bool(s) != 0;
        return GW_OK;
    case GW_CT_INT:
    case GW_CT_INT64:
        if (!is_int)
            break;
        v->i = config_setting_get_int64(s);
        return GW_OK;
    case GW_CT_DOUBLE:
        if (!is_int && st != CONFIG_TYPE_FLOAT)
            break;
        v->d = is_int ? (double)config_setting_get_int64(s) : config_setting_get_float(s);
        return GW_OK;
    case GW_CT_STRING:
    case GW_CT_ENUM:
    case GW_CT_ENV:
        if (st != CONFIG_TYPE_STRING)
            break;
        v->s = config_setting_get_string(s);
        return GW_OK;
    case GW_CT_STRLIST:
        if (st != CONFIG_TYPE_ARRAY && st != CONFIG_TYPE_LIST)
            break;
        v->n = (size_t)config_setting_length(s);
        if (v->n > GW_CFG_LIST_ITEMS_MAX)
            return gw_cfg_fail(ctx, s, path, "has %zu items, the maximum is %.0f", v->n, row->max);
        for (size_t i = 0; i < v->n; i++) {
            const config_setting_t *it = config_setting_get_elem(s, (unsigned)i);
            if (config_setting_type(it) != CONFIG_TYPE_STRING)
                return gw_cfg_fail(ctx, it, path, "item %zu: expected a string, got %s", i,
                                   setting_type_name(it));
            v->items[i] = config_setting_get_string(it);
        }
        return GW_OK;
    case GW_CT_LIST:
        break;
    }
    return gw_cfg_fail(ctx, s, path, "expected %s, got %s", type_name(row->type),
                       setting_type_name(s));
}

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no",
                                                                                "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcmp(s, yes[i]) == 0)
            return (*out = true), true;
        if (strcmp(s, no[i]) == 0)
            return (*out = false), true;
    }
    return false;
}

/* Split a comma-separated list in scratch (modified) into v->items. */
static gw_err split_list(gw_cfg_ctx *ctx, const gw_cfg_row *row, char *scratch, const char *path,
                         gw_cfg_val *v)
{
    v->n = 0;
    if (scratch[0] == '\0')
        return GW_OK;
    for (char *p = scratch;;) {
        char *comma = strchr(p, ',');
        if (comma != NULL)
            *comma = '\0';
        if (v->n >= GW_CFG_LIST_ITEMS_MAX)
            return gw_cfg_fail(ctx, NULL, path, "too many items, the maximum is %.0f", row->max);
        v->items[v->n++] = p;
        if (comma == NULL)
            return GW_OK;
        p = comma + 1;
    }
}

/* Text form (defaults and --set). scratch holds list items; >= strlen(text)+1. */
static gw_err val_from_text(gw_cfg_ctx *ctx, const gw_cfg_row *row, const char *text, char *scratch,
                            const char *path, gw_cfg_val *v)
{
    char *end = NULL;
    errno = 0;
    switch (row->type) {
    case GW_CT_BOOL:
        if (!parse_bool(text, &v->b))
            return gw_cfg_fail(ctx, NULL, path, "\"%.64s\" is not a boolean (true or false)", text);
        return GW_OK;
    case GW_CT_INT:
    case GW_CT_INT64:
        v->i = strtoll(text, &end, 10);
        if (text[0] == '\0' || *end != '\0' || errno == ERANGE)
            return gw_cfg_fail(ctx, NULL, path, "\"%.64s\" is not an integer", text);
        return GW_OK;
    case GW_CT_DOUBLE:
        v->d = strtod(text, &end);
        if (text[0] == '\0' || *end != '\0' || errno == ERANGE)
            return gw_cfg_fail(ctx, NULL, path, "\"%.64s\" is not a number", text);
        return GW_OK;
    case GW_CT_STRING:
    case GW_CT_ENUM:
    case GW_CT_ENV:
        v->s = text;
        return GW_OK;
    case GW_CT_STRLIST:
        strcpy(scratch, text);
        return split_list(ctx, row, scratch, path, v);
    case GW_CT_LIST:
        break;
    }
    return gw_cfg_fail(ctx, NULL, path,
                       "is a list of groups; set one element's setting, as %s[<index or "
                       "key>].<setting>",
                       path);
}

static gw_err set_from_text(gw_cfg_ctx *ctx, const gw_cfg_row *row, char *base, const char *text,
                            const char *path)
{
    size_t len = strlen(text);
    if (len > GW_CFG_STRING_MAX_DEFAULT)
        return gw_cfg_fail(ctx, NULL, path, "value is longer than %d bytes",
                           GW_CFG_STRING_MAX_DEFAULT);
    char scratch[GW_CFG_STRING_MAX_DEFAULT + 1];
    gw_cfg_val v;
    memset(&v, 0, sizeof(v));
    gw_err e = val_from_text(ctx, row, text, scratch, path, &v);
    return e != GW_OK ? e : store(ctx, row, base, &v, NULL, path);
}

/* ---- the file's names ------------------------------------------------- */

/* Every setting in the file must match a row; values are checked later. */
static gw_err check_names(gw_cfg_ctx *ctx, const gw_cfg_table *t, const config_setting_t *grp,
                          const char *prefix, const char *rel)
{
    int n = config_setting_length(grp);
    for (int i = 0; i < n; i++) {
        const config_setting_t *child = config_setting_get_elem(grp, (unsigned)i);
        char relpath[GW_CFG_PATH_MAX], path[GW_CFG_PATH_MAX];
        const char *name = config_setting_name(child);
        if (name == NULL || !join_path(relpath, rel, name) || !join_path(path, prefix, relpath))
            return gw_cfg_fail(ctx, child, prefix[0] ? prefix : rel, "setting path too long");
        const gw_cfg_row *row = find_row(t, relpath);
        gw_err e = GW_OK;
        if (row != NULL && row->type == GW_CT_LIST &&
            config_setting_type(child) == CONFIG_TYPE_LIST) {
            for (int j = 0; e == GW_OK && j < config_setting_length(child); j++) {
                const config_setting_t *es = config_setting_get_elem(child, (unsigned)j);
                char epath[GW_CFG_PATH_MAX];
                if (config_setting_type(es) == CONFIG_TYPE_GROUP &&
                    path_printf(epath, "%s[%d]", path, j))
                    e = check_names(ctx, row->sub, es, epath, "");
            }
        } else if (row == NULL && config_setting_type(child) == CONFIG_TYPE_GROUP &&
                   has_group_prefix(t, relpath)) {
            e = check_names(ctx, t, child, prefix, relpath);
        } else if (row == NULL) {
            e = gw_cfg_fail(ctx, child, path, "unknown setting");
        }
        if (e != GW_OK)
            return e;
    }
    return GW_OK;
}

/* ---- resolving values: --set, then the file, then the default --------- */

static void list_of(const gw_config *cfg, const gw_cfg_row *row, char **arr, size_t *n)
{
    memcpy(arr, (const char *)cfg + row->off, sizeof(*arr));
    memcpy(n, (const char *)cfg + row->off2, sizeof(*n));
}

static const char *elem_key(const gw_cfg_table *sub, const char *elem)
{
    const char *key;
    memcpy(&key, elem + sub->rows[0].off, sizeof(key));
    return key;
}

/* The override of path (or of alt, the same setting with the element named
 * by its key). Every match is used; the last one wins. */
static gw_cfg_override *find_override(gw_cfg_ctx *ctx, const char *path, const char *alt)
{
    gw_cfg_override *last = NULL;
    for (size_t i = 0; i < ctx->set_count; i++) {
        gw_cfg_override *o = &ctx->sets[i];
        if (strcmp(o->path, path) == 0 || (alt != NULL && strcmp(o->path, alt) == 0)) {
            o->used = true;
            snprintf(o->norm, sizeof(o->norm), "%s", path);
            last = o;
        }
    }
    return last;
}

static gw_err inherit(gw_cfg_ctx *ctx, const gw_cfg_row *row, char *base, const char *path)
{
    const gw_cfg_row *src = find_row(&gw_cfg_top, row->def + 1);
    if (src == NULL || src->type != row->type || (size_t)(src - gw_cfg_top.rows) >= ctx->top_row)
        return gw_cfg_fail(ctx, NULL, path, "bad inherited default %s", row->def);
    memcpy(base + row->off, (char *)ctx->cfg + src->off, field_size(row->type));
    return GW_OK;
}

/* One scalar or string-list setting; *given: an override or the file had it. */
static gw_err resolve_value(gw_cfg_ctx *ctx, const gw_cfg_row *row, char *base,
                            const config_setting_t *grp, const char *path, const char *alt,
                            const char *elem_def, bool *given)
{
    const gw_cfg_override *ov = find_override(ctx, path, alt);
    *given = true;
    if (ov != NULL) {
        ctx->cur = ov;
        gw_err e = set_from_text(ctx, row, base, ov->value, path);
        ctx->cur = NULL;
        return e;
    }
    const config_setting_t *s =
        grp != NULL ? config_setting_lookup((config_setting_t *)grp, row->path) : NULL;
    if (s != NULL) {
        gw_cfg_val v;
        memset(&v, 0, sizeof(v));
        gw_err e = val_from_setting(ctx, row, s, path, &v);
        return e != GW_OK ? e : store(ctx, row, base, &v, s, path);
    }
    *given = false;
    if (elem_def != NULL) {
        *given = true;
        return set_from_text(ctx, row, base, elem_def, path);
    }
    if (row->def == NULL)
        return GW_OK;
    if (row->def[0] == '@')
        return inherit(ctx, row, base, path);
    return set_from_text(ctx, row, base, row->def, path);
}

static gw_err resolve_list(gw_cfg_ctx *ctx, const gw_cfg_row *row, const config_setting_t *grp,
                           const char *path);

/* Every row of t into base, in row order. grp: the file's group for base
 * (NULL when none); prefix: the path of base ("" or "deployments[2]"). */
static gw_err resolve_table(gw_cfg_ctx *ctx, const gw_cfg_table *t, char *base,
                            const config_setting_t *grp, const char *prefix)
{
    char alt_prefix[GW_CFG_PATH_MAX] = "";
    for (size_t i = 0; i < t->row_count; i++) {
        const gw_cfg_row *row = &t->rows[i];
        char path[GW_CFG_PATH_MAX], alt[GW_CFG_PATH_MAX];
        bool given = false;
        if (!join_path(path, prefix, row->path) ||
            (alt_prefix[0] && !join_path(alt, alt_prefix, row->path)))
            return gw_cfg_fail(ctx, grp, path, "setting path too long");
        if (t == &gw_cfg_top)
            ctx->top_row = i;
        gw_err e;
        if (row->type == GW_CT_LIST) {
            e = resolve_list(ctx, row, grp, path);
        } else {
            char buf[GW_CFG_PATH_MAX];
            const char *elem_def =
                t->elem_default != NULL ? t->elem_default(base, row, buf, sizeof buf) : NULL;
            e = resolve_value(ctx, row, base, grp, path, alt_prefix[0] ? alt : NULL, elem_def,
                              &given);
            if (e == GW_OK && !given && row->def == NULL)
                e = gw_cfg_fail(ctx, grp, path, "required setting is missing");
        }
        if (e != GW_OK)
            return e;
        /* An element is also addressed by its key: deployments[gpt-4o].weight. */
        const char *key = i == 0 && t != &gw_cfg_top ? elem_key(t, base) : NULL;
        if (key != NULL && key[strspn(key, "0123456789")] != '\0') {
            const char *open = strrchr(prefix, '[');
            if (open != NULL &&
                !path_printf(alt_prefix, "%.*s[%s]", (int)(open - prefix), prefix, key))
                alt_prefix[0] = '\0';
        }
    }
    return GW_OK;
}

static gw_err resolve_list(gw_cfg_ctx *ctx, const gw_cfg_row *row, const config_setting_t *grp,
                           const char *path)
{
    const gw_cfg_table *sub = row->sub;
    const config_setting_t *s =
        grp != NULL ? config_setting_lookup((config_setting_t *)grp, row->path) : NULL;
    if (s == NULL) {
        if (row->min >= 1 && ctx->cf != NULL)
            return gw_cfg_fail(ctx, grp, path, "required setting is missing");
        return GW_OK;
    }
    int st = config_setting_type(s);
    if (st != CONFIG_TYPE_LIST && !(st == CONFIG_TYPE_ARRAY && config_setting_length(s) == 0))
        return gw_cfg_fail(ctx, s, path, "expected a list of groups ( { ... }, ... ), got %s",
                           setting_type_name(s));
    size_t n = (size_t)config_setting_length(s);
    if (n < (size_t)row->min)
        return gw_cfg_fail(ctx, s, path, "needs at least %.0f %s", row->min, sub->what);
    if (n > (size_t)row->max)
        return gw_cfg_fail(ctx, s, path, "has %zu items, the maximum is %.0f", n, row->max);
    char *arr = pool_alloc(ctx->cfg, n * sub->elem_size);
    if (arr == NULL)
        return GW_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        char epath[GW_CFG_PATH_MAX];
        const config_setting_t *es = config_setting_get_elem(s, (unsigned)i);
        path_printf(epath, "%s[%zu]", path, i);
        if (config_setting_type(es) != CONFIG_TYPE_GROUP)
            return gw_cfg_fail(ctx, es, epath, "expected a group, got %s", setting_type_name(es));
        gw_err e = resolve_table(ctx, sub, arr + i * sub->elem_size, es, epath);
        if (e != GW_OK)
            return e;
    }
    memcpy((char *)ctx->cfg + row->off, &arr, sizeof(arr));
    memcpy((char *)ctx->cfg + row->off2, &n, sizeof(n));
    return GW_OK;
}

/* ---- --set overrides -------------------------------------------------- */

static char *trim_dup(const char *s, size_t len)
{
    while (len > 0 && isspace((unsigned char)*s))
        s++, len--;
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    if (len >= 2 && s[0] == '"' && s[len - 1] == '"')
        s++, len -= 2;
    char *d = malloc(len + 1);
    if (d != NULL) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

/* The row an override names ("a.b" or "list[index or key].rest"), checked
 * before any value is resolved. */
static gw_err override_row(gw_cfg_ctx *ctx, gw_cfg_override *o)
{
    const char *path = o->path, *open = strchr(path, '['), *close = open ? strchr(open, ']') : NULL;
    if (open == NULL) {
        o->row = find_row(&gw_cfg_top, path);
        if (o->row == NULL)
            return gw_cfg_fail(ctx, NULL, path, "unknown setting");
        if (o->row->type == GW_CT_LIST)
            return gw_cfg_fail(ctx, NULL, path,
                               "is a list of groups; set one element's setting, as %s[<index or "
                               "key>].<setting>",
                               path);
        return GW_OK;
    }
    char name[GW_CFG_PATH_MAX];
    if (close == NULL || close == open + 1 || close[1] != '.')
        return gw_cfg_fail(ctx, NULL, path, "expected list[index or key].setting");
    snprintf(name, sizeof(name), "%.*s", (int)(open - path), path);
    const gw_cfg_row *list = find_row(&gw_cfg_top, name);
    if (list == NULL || list->type != GW_CT_LIST ||
        (o->row = find_row(list->sub, close + 2)) == NULL)
        return gw_cfg_fail(ctx, NULL, path, "unknown setting");
    return GW_OK;
}

static void overrides_free(gw_cfg_override *sets, size_t n)
{
    for (size_t i = 0; sets != NULL && i < n; i++) {
        free(sets[i].path);
        free(sets[i].value);
    }
    free(sets);
}

static gw_err overrides_parse(gw_cfg_ctx *ctx, const char *const *sets, size_t n)
{
    if (n == 0)
        return GW_OK;
    if (n > GW_CFG_MAX_SETS) {
        snprintf(ctx->errbuf, ctx->errlen, "--set: more than %d overrides", GW_CFG_MAX_SETS);
        return GW_E_CONFIG;
    }
    if ((ctx->sets = calloc(n, sizeof(*ctx->sets))) == NULL)
        return GW_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        gw_cfg_override *o = &ctx->sets[i];
        const char *eq = strchr(sets[i], '=');
        if (eq == NULL || (size_t)(eq - sets[i]) >= GW_CFG_PATH_MAX ||
            strlen(eq + 1) > GW_CFG_STRING_MAX_DEFAULT) {
            snprintf(ctx->errbuf, ctx->errlen, "--set %.64s: expected setting=value", sets[i]);
            return GW_E_CONFIG;
        }
        ctx->set_count = i + 1;
        o->path = trim_dup(sets[i], (size_t)(eq - sets[i]));
        o->value = trim_dup(eq + 1, strlen(eq + 1));
        if (o->path == NULL || o->value == NULL)
            return GW_E_NOMEM;
        ctx->cur = o;
        gw_err e = override_row(ctx, o);
        ctx->cur = NULL;
        if (e != GW_OK)
            return e;
    }
    return GW_OK;
}

/* An override that matched no setting names a list element that is not there. */
static gw_err overrides_unused(gw_cfg_ctx *ctx)
{
    for (size_t i = 0; i < ctx->set_count; i++) {
        gw_cfg_override *o = &ctx->sets[i];
        if (o->used)
            continue;
        const char *open = strchr(o->path, '['), *close = strchr(o->path, ']');
        char name[GW_CFG_PATH_MAX], key[GW_CFG_PATH_MAX], *end = NULL;
        snprintf(name, sizeof(name), "%.*s", (int)(open - o->path), o->path);
        snprintf(key, sizeof(key), "%.*s", (int)(close - open - 1), open + 1);
        const gw_cfg_row *list = find_row(&gw_cfg_top, name);
        char *arr;
        size_t n;
        list_of(ctx->cfg, list, &arr, &n);
        unsigned long idx = strtoul(key, &end, 10);
        ctx->cur = o;
        if (key[0] >= '0' && key[0] <= '9' && *end == '\0')
            return gw_cfg_fail(ctx, NULL, o->path, "no element %lu (the list has %zu)", idx, n);
        return gw_cfg_fail(ctx, NULL, o->path, "no %s \"%.64s\"", list->sub->what, key);
    }
    return GW_OK;
}

/* ---- validation ------------------------------------------------------- */

static gw_err validate_list(gw_cfg_ctx *ctx, const gw_cfg_row *row)
{
    char *arr;
    size_t n;
    list_of(ctx->cfg, row, &arr, &n);
    for (size_t i = 0; i < n; i++) {
        char epath[GW_CFG_PATH_MAX], kpath[GW_CFG_PATH_MAX];
        char *elem = arr + i * row->sub->elem_size;
        path_printf(epath, "%s[%zu]", row->path, i);
        if (row->sub->validate_elem != NULL) {
            gw_err e = row->sub->validate_elem(ctx, elem, epath);
            if (e != GW_OK)
                return e;
        }
        for (size_t j = 0; j < i; j++) {
            const char *a = elem_key(row->sub, elem);
            const char *b = elem_key(row->sub, arr + j * row->sub->elem_size);
            if (a == NULL || b == NULL || strcmp(a, b) != 0)
                continue;
            path_printf(kpath, "%s.%s", epath, row->sub->rows[0].path);
            return gw_cfg_fail(ctx, NULL, kpath, "duplicate %s \"%.64s\" (also %s[%zu])",
                               row->sub->what, a, row->path, j);
        }
    }
    return GW_OK;
}

static gw_err validate_all(gw_cfg_ctx *ctx)
{
    for (size_t i = 0; i < gw_cfg_top.row_count; i++) {
        if (gw_cfg_top.rows[i].type != GW_CT_LIST)
            continue;
        gw_err e = validate_list(ctx, &gw_cfg_top.rows[i]);
        if (e != GW_OK)
            return e;
    }
    return gw_cfg_validate_top(ctx);
}

/* ---- load ------------------------------------------------------------- */

static gw_err read_file(const char *path, config_t *cf, char *errbuf, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(errbuf, errlen, "%s: cannot read: %s", path, strerror(errno));
        return GW_E_IO;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > GW_CFG_FILE_MAX_BYTES) {
        snprintf(errbuf, errlen, "%s: not a regular file of at most %d bytes", path,
                 GW_CFG_FILE_MAX_BYTES);
        return GW_E_IO;
    }
    if (config_read_file(cf, path) == CONFIG_TRUE)
        return GW_OK;
    if (config_error_type(cf) == CONFIG_ERR_FILE_IO) {
        snprintf(errbuf, errlen, "%s: cannot read: %s", path, config_error_text(cf));
        return GW_E_IO;
    }
    snprintf(errbuf, errlen, "%s:%d: %s", config_error_file(cf) ? config_error_file(cf) : path,
             config_error_line(cf), config_error_text(cf));
    return GW_E_CONFIG;
}

gw_err gw_config_load_with(const char *path, const char *const *sets, size_t set_count,
                           gw_config **out, char *errbuf, size_t errlen)
{
    config_t cf;
    char dummy[1];
    if (errbuf == NULL || errlen == 0)
        errbuf = dummy, errlen = sizeof(dummy);
    errbuf[0] = '\0';
    *out = NULL;
    config_init(&cf);
    gw_config *cfg = config_new();
    gw_cfg_ctx ctx = {
        cfg, path ? path : "(defaults)", path ? &cf : NULL, NULL, 0, NULL, 0, errbuf, errlen};
    gw_err e = cfg == NULL ? GW_E_NOMEM : GW_OK;
    if (e == GW_OK && path != NULL) {
        e = read_file(path, &cf, errbuf, errlen);
        if (e == GW_OK && (cfg->source = gw_cfg_strdup(cfg, path)) == NULL)
            e = GW_E_NOMEM;
    }
    if (e == GW_OK)
        e = overrides_parse(&ctx, sets, set_count);
    if (e == GW_OK && path != NULL)
        e = check_names(&ctx, &gw_cfg_top, config_root_setting(&cf), "", "");
    if (e == GW_OK)
        e = resolve_table(&ctx, &gw_cfg_top, (char *)cfg,
                          path != NULL ? config_root_setting(&cf) : NULL, "");
    if (e == GW_OK)
        e = overrides_unused(&ctx);
    if (e == GW_OK)
        e = validate_all(&ctx);
    overrides_free(ctx.sets, ctx.set_count);
    config_destroy(&cf);
    if (e != GW_OK) {
        gw_config_free(cfg);
        return e;
    }
    *out = cfg;
    return GW_OK;
}

gw_err gw_config_load(const char *path, gw_config **out, char *errbuf, size_t errlen)
{
    return gw_config_load_with(path, NULL, 0, out, errbuf, errlen);
}

gw_err gw_config_default(gw_config **out)
{
    return gw_config_load_with(NULL, NULL, 0, out, NULL, 0);
}

static gw_config *defaults_cfg;

static void defaults_init(void)
{
    if (gw_config_default(&defaults_cfg) != GW_OK)
        defaults_cfg = NULL;
}

const gw_config *gw_config_defaults(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, defaults_init);
    if (defaults_cfg == NULL) {
        fputs("modelgw: out of memory building the default configuration\n", stderr);
        abort();
    }
    return defaults_cfg;
}

/* ---- lookups ---------------------------------------------------------- */

const gw_deployment *gw_config_deployment(const gw_config *cfg, const char *id)
{
    for (size_t i = 0; id != NULL && i < cfg->deployment_count; i++)
        if (strcmp(cfg->deployments[i].id, id) == 0)
            return &cfg->deployments[i];
    return NULL;
}

void gw_config_agent_limits(const gw_config *cfg, const char *agent, int64_t *rpm, int64_t *tpm)
{
    *rpm = cfg->limits.default_rpm;
    *tpm = cfg->limits.default_tpm;
    for (size_t i = 0; agent != NULL && i < cfg->limits.agent_count; i++) {
        if (strcmp(cfg->limits.agents[i].agent, agent) == 0) {
            *rpm = cfg->limits.agents[i].rpm;
            *tpm = cfg->limits.agents[i].tpm;
            return;
        }
    }
}

void gw_config_agent_budget(const gw_config *cfg, const char *agent, double *daily_usd,
                            double *monthly_usd)
{
    *daily_usd = cfg->budgets.default_daily_usd;
    *monthly_usd = cfg->budgets.default_monthly_usd;
    for (size_t i = 0; agent != NULL && i < cfg->budgets.agent_count; i++) {
        if (strcmp(cfg->budgets.agents[i].agent, agent) == 0) {
            *daily_usd = cfg->budgets.agents[i].daily_usd;
            *monthly_usd = cfg->budgets.agents[i].monthly_usd;
            return;
        }
    }
}

/* ---- reference and dump ----------------------------------------------- */

static const char *ref_type(const gw_cfg_row *row)
{
    static const char *const names[] = {"bool",
                                        "integer",
                                        "integer",
                                        "number",
                                        "string",
                                        "enum",
                                        "env var name (secret)",
                                        "list of strings",
                                        "list of groups"};
    return names[row->type];
}

static void ref_range(FILE *out, const gw_cfg_row *row)
{
    switch (row->type) {
    case GW_CT_INT:
    case GW_CT_INT64:
        fprintf(out, "%.0f .. %.0f", row->min, row->max);
        break;
    case GW_CT_DOUBLE:
        fprintf(out, "%g .. %g", row->min, row->max);
        break;
    case GW_CT_STRING:
        fputs(row->min >= 1 ? "non-empty" : "", out);
        break;
    case GW_CT_ENUM:
        for (int i = 0; row->names[i] != NULL; i++)
            fprintf(out, "%s`%s`", i ? ", " : "", row->names[i]);
        break;
    case GW_CT_STRLIST:
        fprintf(out, "at most %.0f", row->max);
        break;
    case GW_CT_LIST:
        fprintf(out, "%.0f .. %.0f %ss", row->min, row->max, row->sub->what);
        break;
    default:
        break;
    }
}

static void ref_default(FILE *out, const gw_cfg_row *row)
{
    if (row->def == NULL)
        fputs(row->type == GW_CT_LIST && row->min < 1 ? "none" : "**required**", out);
    else if (row->def[0] == '@')
        fprintf(out, "from `%s`", row->def + 1);
    else if (row->def[0] == '\0')
        fputs("none", out);
    else if (row->type == GW_CT_STRING || row->type == GW_CT_ENUM || row->type == GW_CT_ENV)
        fprintf(out, "`\"%s\"`", row->def);
    else
        fprintf(out, "`%s`", row->def);
}

static void ref_rows(FILE *out, const gw_cfg_table *t, const char *prefix)
{
    for (size_t i = 0; i < t->row_count; i++) {
        const gw_cfg_row *row = &t->rows[i];
        char path[GW_CFG_PATH_MAX];
        if (!join_path(path, prefix, row->path))
            continue;
        fprintf(out, "| `%s` | %s | ", path, ref_type(row));
        ref_range(out, row);
        fputs(" | ", out);
        ref_default(out, row);
        fprintf(out, " | %s |\n", row->doc);
        if (row->type == GW_CT_LIST) {
            char sub[GW_CFG_PATH_MAX];
            path_printf(sub, "%s[]", path);
            ref_rows(out, row->sub, sub);
        }
    }
}

void gw_config_write_reference(FILE *out)
{
    fputs("| Setting | Type | Range | Default | Description |\n"
          "|---|---|---|---|---|\n",
          out);
    ref_rows(out, &gw_cfg_top, "");
}

static void dump_string(FILE *out, const char *s)
{
    if (s == NULL) {
        fputs("\"\"", out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(out, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(out, "\\x%02x", (unsigned char)*s);
        else
            fputc(*s, out);
    }
    fputc('"', out);
}

static void dump_rows(FILE *out, const gw_cfg_table *t, const char *base, const char *prefix);

/* Shortest text that reads back as d; always with a '.' or exponent (a float to libconfig). */
static void dump_double(FILE *out, double d)
{
    char buf[64];
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    fputs(buf, out);
    if (strpbrk(buf, ".eEn") == NULL)
        fputs(".0", out);
}

static void dump_value(FILE *out, const gw_cfg_row *row, const char *base)
{
    const char *field = base + row->off, *s;
    bool b;
    int32_t i32;
    int64_t i64;
    double d;
    int en;
    size_t n;
    switch (row->type) {
    case GW_CT_BOOL:
        memcpy(&b, field, sizeof(b));
        fputs(b ? "true" : "false", out);
        break;
    case GW_CT_INT:
        memcpy(&i32, field, sizeof(i32));
        fprintf(out, "%" PRId32, i32);
        break;
    case GW_CT_INT64:
        memcpy(&i64, field, sizeof(i64));
        fprintf(out, "%" PRId64, i64);
        break;
    case GW_CT_DOUBLE:
        memcpy(&d, field, sizeof(d));
        dump_double(out, d);
        break;
    case GW_CT_ENUM:
        memcpy(&en, field, sizeof(en));
        dump_string(out, en >= 0 ? row->names[en] : "?");
        break;
    case GW_CT_STRING:
    case GW_CT_ENV:
        memcpy(&s, field, sizeof(s));
        dump_string(out, s);
        break;
    case GW_CT_STRLIST:
        memcpy(&n, base + row->off2, sizeof(n));
        fputc('[', out);
        for (size_t i = 0; i < n; i++) {
            memcpy(&s, field + i * sizeof(s), sizeof(s));
            fputs(i ? ", " : "", out);
            dump_string(out, s);
        }
        fputc(']', out);
        break;
    case GW_CT_LIST:
        break;
    }
}

static void dump_list(FILE *out, const gw_cfg_row *row, const char *base, const char *path)
{
    char *arr;
    size_t n;
    memcpy(&arr, base + row->off, sizeof(arr));
    memcpy(&n, base + row->off2, sizeof(n));
    for (size_t i = 0; i < n; i++) {
        char epath[GW_CFG_PATH_MAX];
        path_printf(epath, "%s[%zu]", path, i);
        dump_rows(out, row->sub, arr + i * row->sub->elem_size, epath);
    }
}

static void dump_rows(FILE *out, const gw_cfg_table *t, const char *base, const char *prefix)
{
    for (size_t i = 0; i < t->row_count; i++) {
        const gw_cfg_row *row = &t->rows[i];
        char path[GW_CFG_PATH_MAX];
        if (!join_path(path, prefix, row->path))
            continue;
        if (row->type == GW_CT_LIST) {
            dump_list(out, row, base, path);
            continue;
        }
        fprintf(out, "%s = ", path);
        dump_value(out, row, base);
        fputc(';', out);
        if (row->type == GW_CT_ENV) {
            const char *name, *secret;
            memcpy(&name, base + row->off, sizeof(name));
            memcpy(&secret, base + row->off2, sizeof(secret));
            if (name != NULL)
                fputs(secret != NULL ? " # the variable is set" : " # the variable is not set",
                      out);
        }
        fputc('\n', out);
    }
}

void gw_config_dump(const gw_config *cfg, FILE *out)
{
    fprintf(out, "# effective configuration from %s\n", cfg->source);
    dump_rows(out, &gw_cfg_top, (const char *)cfg, "");
}
