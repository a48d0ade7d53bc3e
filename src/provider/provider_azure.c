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
    if (!gw_provider_url_escape(out, len, &at, d->model))
        return GW_E_CONFIG;
    n = snprintf(out + at, len - at, "/chat/completions?api-version=");
    if (n < 0 || (size_t)n >= len - at)
        return GW_E_CONFIG;
    at += (size_t)n;
    return gw_provider_url_escape(out, len, &at, version) ? GW_OK : GW_E_CONFIG;
}
