/* provider_azure: Azure OpenAI's deployment URLs; see provider_azure.c. */
#ifndef GW_PROVIDER_AZURE_H
#define GW_PROVIDER_AZURE_H

#include "provider/provider_table.h"

/* The api-version when the deployment sets none. */
#define GW_AZURE_DEFAULT_API_VERSION "2024-10-21"

/* {base_url}/openai/deployments/{model}/chat/completions?api-version={v}:
 * the deployment's `model` is the Azure deployment name. */
gw_err gw_azure_url(const gw_provider_kind_info *k, const gw_deployment *d, bool stream, char *out,
                    size_t len);

#endif
