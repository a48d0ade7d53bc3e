/*
 * cli_strset: string set with optional values (see the header).
 */
#include "cli/cli_strset.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"

static char tombstone_mark;
#define TOMBSTONE (&tombstone_mark)

static uint64_t hash_str(const char *s)
{
    uint64_t h = gw_fnv1a64_str(1469598103934665603ULL, s);
    return h ^ (h >> 29);
}

void gw_cli_strset_init(gw_cli_strset *s, size_t cap_count)
{
    memset(s, 0, sizeof *s);
    s->cap_count = cap_count;
}

void gw_cli_strset_cleanup(gw_cli_strset *s)
{
    for (size_t i = 0; i < s->nslots; i++)
        if (s->slots[i] && s->slots[i] != TOMBSTONE)
            free(s->slots[i]);
    free(s->slots);
    free(s->values);
    gw_cli_strset_init(s, s->cap_count);
}

/* Index of key, or of the slot where it would go (first tombstone or free). */
static size_t find_slot(const gw_cli_strset *s, const char *key, bool *found)
{
    size_t mask = s->nslots - 1;
    size_t i = hash_str(key) & mask;
    size_t first_free = SIZE_MAX;
    *found = false;
    for (size_t n = 0; n < s->nslots; n++, i = (i + 1) & mask) {
        char *k = s->slots[i];
        if (k == NULL)
            return first_free != SIZE_MAX ? first_free : i;
        if (k == TOMBSTONE) {
            if (first_free == SIZE_MAX)
                first_free = i;
        } else if (strcmp(k, key) == 0) {
            *found = true;
            return i;
        }
    }
    return first_free;
}

static gw_err grow(gw_cli_strset *s)
{
    size_t n = s->nslots ? s->nslots * 2 : 64;
    char **slots = calloc(n, sizeof *slots);
    void **values = calloc(n, sizeof *values);
    if (!slots || !values) {
        free(slots);
        free(values);
        return GW_E_NOMEM;
    }
    for (size_t i = 0; i < s->nslots; i++) {
        char *k = s->slots[i];
        if (!k || k == TOMBSTONE)
            continue;
        size_t j = hash_str(k) & (n - 1);
        while (slots[j])
            j = (j + 1) & (n - 1);
        slots[j] = k;
        values[j] = s->values[i];
    }
    free(s->slots);
    free(s->values);
    s->slots = slots;
    s->values = values;
    s->nslots = n;
    s->used = s->count;
    return GW_OK;
}

gw_err gw_cli_strset_add(gw_cli_strset *s, const char *key, void *value)
{
    if (gw_cli_strset_has(s, key))
        return GW_E_INVALID_REQUEST;
    if (s->count >= s->cap_count)
        return GW_E_LIMIT;
    if ((s->used + 1) * 2 > s->nslots) {
        gw_err e = grow(s);
        if (e != GW_OK)
            return e;
    }
    char *copy = strdup(key);
    if (!copy)
        return GW_E_NOMEM;
    bool found;
    size_t i = find_slot(s, key, &found);
    if (s->slots[i] == NULL)
        s->used++;
    s->slots[i] = copy;
    s->values[i] = value;
    s->count++;
    return GW_OK;
}

bool gw_cli_strset_has(const gw_cli_strset *s, const char *key)
{
    if (s->nslots == 0)
        return false;
    bool found;
    find_slot(s, key, &found);
    return found;
}

void *gw_cli_strset_get(const gw_cli_strset *s, const char *key)
{
    if (s->nslots == 0)
        return NULL;
    bool found;
    size_t i = find_slot(s, key, &found);
    return found ? s->values[i] : NULL;
}

bool gw_cli_strset_remove(gw_cli_strset *s, const char *key, void **value_out)
{
    if (s->nslots == 0)
        return false;
    bool found;
    size_t i = find_slot(s, key, &found);
    if (!found)
        return false;
    if (value_out)
        *value_out = s->values[i];
    free(s->slots[i]);
    s->slots[i] = TOMBSTONE;
    s->values[i] = NULL;
    s->count--;
    return true;
}
