/*
 * cli_strset: a set of strings (open addressing, linear probing), used by the
 * batch command for custom_ids (seen in the input, already in the output,
 * published) and by the bench for outstanding request ids.
 *
 * The set owns copies of its strings. It grows by doubling and keeps the load
 * under 1/2; cap_count bounds how many strings it will ever hold.
 * Invariant: count <= cap_count; slots[i] is NULL (free), a tombstone, or an
 * owned string.
 */
#ifndef GW_CLI_STRSET_H
#define GW_CLI_STRSET_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

typedef struct {
    char **slots;
    void **values;
    size_t nslots; /* power of two */
    size_t count;
    size_t used; /* count + tombstones */
    size_t cap_count;
} gw_cli_strset;

void gw_cli_strset_init(gw_cli_strset *s, size_t cap_count);
/* Frees the strings; values are the caller's (freed first if needed). */
void gw_cli_strset_cleanup(gw_cli_strset *s);
/* GW_OK when added, GW_E_INVALID_REQUEST when already present (value kept),
 * GW_E_LIMIT at the cap, GW_E_NOMEM. */
gw_err gw_cli_strset_add(gw_cli_strset *s, const char *key, void *value);
bool gw_cli_strset_has(const gw_cli_strset *s, const char *key);
/* Value stored with key; NULL when absent (or stored as NULL). */
void *gw_cli_strset_get(const gw_cli_strset *s, const char *key);
/* True when it was present; *value_out (optional) receives its value. */
bool gw_cli_strset_remove(gw_cli_strset *s, const char *key, void **value_out);

#endif
