/* model: enum names and small helpers over the wire structs; see model.h. */
#include "model/model.h"

#include <strings.h>
#include <string.h>

static const char *const role_names[GW_ROLE__COUNT] = {"SYSTEM", "USER", "ASSISTANT", "TOOL"};
static const char *const strategy_names[GW_ROUTE__COUNT] = {"FASTEST", "CHEAPEST", "BEST_QUALITY",
                                                            "BALANCED", "CAPABILITY_MATCH"};

const char *gw_role_name(gw_role r)
{
    return (unsigned)r < GW_ROLE__COUNT ? role_names[r] : NULL;
}

const char *gw_strategy_name(gw_strategy s)
{
    return (unsigned)s < GW_ROUTE__COUNT ? strategy_names[s] : NULL;
}

static int parse(const char *const *names, int n, const char *s)
{
    if (s == NULL)
        return -1;
    for (int i = 0; i < n; i++)
        if (strcasecmp(names[i], s) == 0)
            return i;
    return -1;
}

int gw_role_parse(const char *s)
{
    return parse(role_names, GW_ROLE__COUNT, s);
}

int gw_strategy_parse(const char *s)
{
    return parse(strategy_names, GW_ROUTE__COUNT, s);
}

const char *gw_map_get(const gw_map *m, const char *key)
{
    for (size_t i = 0; i < m->count; i++)
        if (strcmp(m->items[i].key, key) == 0)
            return m->items[i].value;
    return NULL;
}
