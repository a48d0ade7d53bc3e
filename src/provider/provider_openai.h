/* provider_openai: the OpenAI Chat Completions dialect table; see provider_openai.c. */
#ifndef GW_PROVIDER_OPENAI_H
#define GW_PROVIDER_OPENAI_H

#include "provider/provider_http.h"

extern const gw_phttp_dialect gw_openai_dialect;

#endif
