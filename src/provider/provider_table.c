/* provider_table: the rows of provider_table.def; see provider_table.h. */
#include "provider/provider_table.h"

#include <stdio.h>
#include <string.h>

#include "provider/provider_anthropic.h"
#include "provider/provider_azure.h"
#include "provider/provider_bedrock.h"
#include "provider/provider_gemini.h"
#include "provider/provider_ollama.h"
#include "provider/provider_openai.h"

static const gw_provider_kind_info rows[GW_PROVIDER__COUNT] = {
#define GW_PROVIDER_ROW(id, nm, ...)                                                               \
    [GW_PROVIDER_##id] = {.kind = GW_PROVIDER_##id, .name = nm, __VA_ARGS__},
#include "provider/provider_table.def"
#undef GW_PROVIDER_ROW
};

const gw_provider_kind_info *gw_provider_info(gw_provider_kind k)
{
    return (unsigned)k < GW_PROVIDER__COUNT ? &rows[k] : NULL;
}

const gw_provider_kind_info *gw_provider_info_find(const char *name)
{
    int k = gw_provider_kind_parse(name);
    return k < 0 ? NULL : &rows[k];
}

bool gw_provider_url_escape(char *out, size_t len, size_t *at, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' || ch == '~';
        size_t need = plain ? 1 : 3;
        if (*at + need >= len)
            return false;
        if (plain) {
            out[(*at)++] = (char)ch;
        } else {
            out[(*at)++] = '%';
            out[(*at)++] = hex[ch >> 4];
            out[(*at)++] = hex[ch & 15];
        }
    }
    out[*at] = '\0';
    return true;
}

gw_err gw_provider_url_base_path(const gw_provider_kind_info *k, const gw_deployment *d,
                                 bool stream, char *out, size_t len)
{
    (void)stream;
    if (d->base_url == NULL || d->base_url[0] == '\0')
        return GW_E_PROVIDER_NOT_CONFIGURED;
    const char *path = k->path != NULL ? k->path : "";
    size_t bl = strlen(d->base_url);
    while (bl > 0 && d->base_url[bl - 1] == '/')
        bl--;
    if (bl >= 3 && memcmp(d->base_url + bl - 3, "/v1", 3) == 0 && strncmp(path, "/v1/", 4) == 0)
        path += 3;
    size_t pl = strlen(path); /* memcpy, not snprintf: this runs for every call */
    if (bl + pl >= len)
        return GW_E_CONFIG;
    memcpy(out, d->base_url, bl);
    memcpy(out + bl, path, pl + 1);
    return GW_OK;
}
