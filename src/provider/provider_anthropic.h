/* provider_anthropic: the Anthropic Messages dialect table; see provider_anthropic.c. */
#ifndef GW_PROVIDER_ANTHROPIC_H
#define GW_PROVIDER_ANTHROPIC_H

#include "provider/provider_http.h"

extern const gw_phttp_dialect gw_anthropic_dialect;

/* Options of a provider table row with this dialect. */
typedef struct {
    const char *version; /* anthropic-version when the deployment sets none */
} gw_anthropic_options;

extern const gw_anthropic_options gw_anthropic_default_options; /* version 2023-06-01 */

#endif
