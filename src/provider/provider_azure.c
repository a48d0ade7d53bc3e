/*
 * provider_azure: Azure OpenAI speaks the OpenAI Chat Completions dialect
 * (provider_openai.c) at a URL that names the Azure deployment and the API
 * version: {base_url}/openai/deployments/{deployment}/chat/completions
 * ?api-version={api_version}. The key goes in `api-key` (the row's auth);
 * with `auth_header = "Authorization"` it is sent as a bearer token instead
 * (an Entra ID token kept in the environment variable api_key_env names).
 */
#include "provider/provider_azure.h"

#include <stdio.h>
#include <string.h>

/* Unreserved characters pass; anything else is %XX (a deployment name or
 * version never changes the URL's structure). */
static bool put_escaped(char *out, size_t len, size_t *at, const char *s)
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

gw_err gw_azure_url(const gw_provider_kind_info *k, const gw_deployment *d, bool stream, char *out,
                    size_t len)
{
    (void)k;
    (void)stream;
    if (d->base_url == NULL || d->base_url[0] == '\0' || d->model == NULL || d->model[0] == '\0')
        return GW_E_PROVIDER_NOT_CONFIGURED;
    size_t bl = strlen(d->base_url);
    while (bl > 0 && d->base_url[bl - 1] == '/')
        bl--;
    int n = snprintf(out, len, "%.*s/openai/deployments/", (int)bl, d->base_url);
    if (n < 0 || (size_t)n >= len)
        return GW_E_CONFIG;
    size_t at = (size_t)n;
    const char *version = d->api_version ? d->api_version : GW_AZURE_DEFAULT_API_VERSION;
    if (!put_escaped(out, len, &at, d->model))
        return GW_E_CONFIG;
    n = snprintf(out + at, len - at, "/chat/completions?api-version=");
    if (n < 0 || (size_t)n >= len - at)
        return GW_E_CONFIG;
    at += (size_t)n;
    return put_escaped(out, len, &at, version) ? GW_OK : GW_E_CONFIG;
}
