/* provider_anthropic: the Anthropic Messages dialect table; see provider_anthropic.c. */
#ifndef GW_PROVIDER_ANTHROPIC_H
#define GW_PROVIDER_ANTHROPIC_H

#include "provider/provider_http.h"

extern const gw_phttp_dialect gw_anthropic_dialect;

#endif
