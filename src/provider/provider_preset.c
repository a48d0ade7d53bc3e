/* provider_preset: the rows of provider_preset.def; see provider_preset.h. */
#include "provider/provider_preset.h"

#include <stdio.h>
#include <string.h>

const char *const gw_preset_names[GW_PRESET__COUNT + 1] = {
#define GW_QUIRK_ROW(id, ...)
#define GW_PRESET_ROW(id, nm, ...) [GW_PRESET_##id] = nm,
#include "provider/provider_preset.def"
#undef GW_QUIRK_ROW
#undef GW_PRESET_ROW
    NULL};

const char *const gw_quirk_names[GW_QUIRK__COUNT + 1] = {
#define GW_QUIRK_ROW(id, nm, doc) [GW_QUIRK_BIT_##id] = nm,
#define GW_PRESET_ROW(id, ...)
#include "provider/provider_preset.def"
#undef GW_QUIRK_ROW
#undef GW_PRESET_ROW
    NULL};

static const char *const quirk_docs[GW_QUIRK__COUNT] = {
#define GW_QUIRK_ROW(id, nm, doc) [GW_QUIRK_BIT_##id] = doc,
#define GW_PRESET_ROW(id, ...)
#include "provider/provider_preset.def"
#undef GW_QUIRK_ROW
#undef GW_PRESET_ROW
};

static const gw_preset_info rows[GW_PRESET__COUNT] = {
#define GW_QUIRK_ROW(id, ...)
#define GW_PRESET_ROW(pid, nm, k, url, env, q)                                                     \
    [GW_PRESET_##pid] = {.id = GW_PRESET_##pid,                                                    \
                         .name = nm,                                                               \
                         .kind = GW_PROVIDER_##k,                                                  \
                         .base_url = url,                                                          \
                         .api_key_env = env,                                                       \
                         .quirks = (q)},
#include "provider/provider_preset.def"
#undef GW_QUIRK_ROW
#undef GW_PRESET_ROW
};

_Static_assert(GW_QUIRK__COUNT <= 32, "quirks are bits of a uint32_t");

const gw_preset_info *gw_preset_get(gw_preset p)
{
    return (unsigned)p < GW_PRESET__COUNT ? &rows[p] : NULL;
}

const char *gw_quirk_doc(int bit)
{
    return bit >= 0 && bit < GW_QUIRK__COUNT ? quirk_docs[bit] : NULL;
}

uint32_t gw_quirk_parse(const char *name)
{
    for (int i = 0; name != NULL && i < GW_QUIRK__COUNT; i++)
        if (strcmp(gw_quirk_names[i], name) == 0)
            return 1u << i;
    return 0;
}

bool gw_quirks_format(uint32_t quirks, char *out, size_t len)
{
    size_t used = 0;
    if (len == 0)
        return false;
    out[0] = '\0';
    for (int i = 0; i < GW_QUIRK__COUNT; i++) {
        if (!(quirks & (1u << i)))
            continue;
        int n = snprintf(out + used, len - used, "%s%s", used ? "," : "", gw_quirk_names[i]);
        if (n < 0 || (size_t)n >= len - used)
            return false;
        used += (size_t)n;
    }
    return true;
}
