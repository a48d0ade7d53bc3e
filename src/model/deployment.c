/* deployment: small helpers; see deployment.h. */
#include "model/deployment.h"

#include <string.h>
#include <strings.h>

const char *const gw_provider_kind_names[GW_PROVIDER__COUNT + 1] = {
#define GW_PROVIDER_ROW(id, name, ...) [GW_PROVIDER_##id] = name,
#include "provider/provider_table.def"
#undef GW_PROVIDER_ROW
    NULL};

const char *gw_provider_kind_name(gw_provider_kind k)
{
    return (unsigned)k < GW_PROVIDER__COUNT ? gw_provider_kind_names[k] : "unknown";
}

int gw_provider_kind_parse(const char *s)
{
    for (int i = 0; s != NULL && i < GW_PROVIDER__COUNT; i++)
        if (strcasecmp(gw_provider_kind_names[i], s) == 0)
            return i;
    return -1;
}

bool gw_deployment_has_capability(const gw_deployment *d, const char *cap)
{
    for (size_t i = 0; i < d->capability_count; i++)
        if (strcmp(d->capabilities[i], cap) == 0)
            return true;
    return false;
}
