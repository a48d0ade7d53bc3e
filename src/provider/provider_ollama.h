/* provider_ollama: the Ollama /api/chat dialect table; see provider_ollama.c. */
#ifndef GW_PROVIDER_OLLAMA_H
#define GW_PROVIDER_OLLAMA_H

#include "provider/provider_http.h"

extern const gw_phttp_dialect gw_ollama_dialect;

#endif
