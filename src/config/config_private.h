/*
 * config_private: the row tables that drive the config loader.
 *
 * A table describes one struct (gw_config, or one list element such as
 * gw_deployment). A row names a setting by its path relative to that struct
 * ("kafka.topics.high", "timeouts.connect_ms"), its type, the offset of its
 * field, bounds, a default in the text form accepted by --set, and one line
 * of doc. The engine (config.c) never knows a setting by name; only the
 * validators in config_rows.c do, for rules that span several settings.
 *
 * Invariants of a table: paths are unique; a path is never a prefix group of
 * another row's path and a leaf at once; element tables have at most 64 rows
 * and their first row is the string key that names an element (deployment
 * id, agent); a top-level row that elements inherit ("@path") comes before
 * the list row (values are resolved in row order).
 *
 * Every value is resolved once, in row order, from the first of the layers
 * that has it: a --set override, the file, the element's default (a
 * table's elem_default: a deployment's preset), the row's default.
 */
#ifndef GW_CONFIG_PRIVATE_H
#define GW_CONFIG_PRIVATE_H

#include <libconfig.h>

#include "config/config.h"

typedef enum {
    GW_CT_BOOL,    /* bool */
    GW_CT_INT,     /* int32_t */
    GW_CT_INT64,   /* int64_t */
    GW_CT_DOUBLE,  /* double */
    GW_CT_STRING,  /* const char *; "" becomes NULL when min is 0 */
    GW_CT_ENUM,    /* an int-sized enum; names[] index = value */
    GW_CT_ENV,     /* const char * env var name; off2: resolved secret (const char *) */
    GW_CT_STRLIST, /* const char *[max]; off2: size_t count */
    GW_CT_LIST,    /* list of groups: off: T * array; off2: size_t count; sub: element table */
} gw_cfg_type;

typedef struct gw_cfg_table gw_cfg_table;
typedef struct gw_cfg_ctx gw_cfg_ctx;

typedef struct {
    const char *path;
    gw_cfg_type type;
    size_t off;
    size_t off2;
    double min, max;          /* numbers: value bounds; strings: length; lists: item count */
    const char *const *names; /* ENUM: NULL-terminated */
    const gw_cfg_table *sub;  /* LIST */
    /* Text form as for --set; lists comma-separated. NULL: required in the
     * file. "@path": copy the current value of that top-level setting. */
    const char *def;
    const char *doc;
} gw_cfg_row;

struct gw_cfg_table {
    const char *what; /* "deployment", "agent": used in messages */
    const gw_cfg_row *rows;
    size_t row_count;
    size_t elem_size;
    /* Rules across one element's fields; elem_path like "deployments[2]". */
    gw_err (*validate_elem)(gw_cfg_ctx *ctx, void *elem, const char *elem_path);
    /* Optional: a default that depends on the element's earlier rows (a
     * deployment's preset), in the text form of row defaults, written into
     * buf (len bytes); NULL: the row's own default. It stands between the
     * file and the row's default, and satisfies a required row. */
    const char *(*elem_default)(const void *elem, const gw_cfg_row *row, char *buf, size_t len);
};

enum { GW_CFG_PATH_MAX = 256 };

/* One --set override, "path=value" as given on the command line. */
typedef struct {
    char *path;                 /* trimmed, as written: "deployments[gpt-4o].weight" */
    char *value;                /* trimmed text value */
    char norm[GW_CFG_PATH_MAX]; /* the setting it set, by index ("deployments[2].weight") */
    const gw_cfg_row *row;      /* the row it sets */
    bool used;                  /* matched a setting */
} gw_cfg_override;

/* Load state shared by the engine and the validators. */
struct gw_cfg_ctx {
    gw_config *cfg;
    const char *origin; /* the file path, or "(defaults)" */
    const config_t *cf; /* the parsed file; NULL without a file */
    gw_cfg_override *sets;
    size_t set_count;
    const gw_cfg_override *cur; /* the override being applied (messages name it) */
    size_t top_row;             /* index of the top-level row being resolved */
    char *errbuf;
    size_t errlen;
};

extern const gw_cfg_table gw_cfg_top;

/* Cross-section rules, run once every value is resolved. */
gw_err gw_cfg_validate_top(gw_cfg_ctx *ctx);

/*
 * Report an error at path, prefixed by where the value came from:
 * "--set path=value: path: message" or "file:line: path: message". s may be
 * NULL: the source is then the --set that gave path, else path in the file,
 * else a --set of the same list element, else the nearest existing parent in
 * the file. Always returns GW_E_CONFIG.
 */
gw_err gw_cfg_fail(gw_cfg_ctx *ctx, const config_setting_t *s, const char *path, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));

/* A rule between path and other failed: the source is whichever of the two
 * a --set gave (path first), else the file's. The message names path. */
gw_err gw_cfg_fail_rule(gw_cfg_ctx *ctx, const char *path, const char *other, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Copy s into the config's string pool; NULL when out of memory. */
const char *gw_cfg_strdup(gw_config *cfg, const char *s);

#define GW_CFG_FIELD_CHECK(T, f, type) (0 * sizeof(&((T *)0)->f == (type *)0))
#define GW_CFG_OFF(T, f, type)         (offsetof(T, f) + GW_CFG_FIELD_CHECK(T, f, type))

#endif
