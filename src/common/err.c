/* err: lookups over GW_ERR_MAP; see err.h. */
#include "common/err.h"

#include <string.h>

typedef struct {
    const char *name;
    const char *code;
    gw_domain domain;
    bool retryable;
    const char *msg;
} gw_err_row;

static const gw_err_row rows[GW_E__COUNT] = {
#define GW_ERR_ROW(name, code, domain, retry, msg) {#name, code, GW_DOMAIN_##domain, retry, msg},
    GW_ERR_MAP(GW_ERR_ROW)
#undef GW_ERR_ROW
};

static const gw_err_row *row(gw_err e)
{
    if ((unsigned)e >= GW_E__COUNT)
        return &rows[GW_E_INTERNAL];
    return &rows[e];
}

const char *gw_err_code(gw_err e)
{
    return row(e)->code;
}

const char *gw_err_name(gw_err e)
{
    return row(e)->name;
}

const char *gw_strerror(gw_err e)
{
    return row(e)->msg;
}

bool gw_err_retryable(gw_err e)
{
    return row(e)->retryable;
}

gw_domain gw_err_domain(gw_err e)
{
    return row(e)->domain;
}

const char *gw_domain_name(gw_domain d)
{
    static const char *names[] = {"none", "caller", "policy", "provider", "gateway", "codec"};
    if ((unsigned)d >= sizeof(names) / sizeof(names[0]))
        return "unknown";
    return names[d];
}

gw_err gw_err_from_code(const char *code)
{
    if (code == NULL)
        return GW_E_INTERNAL;
    for (int i = 0; i < GW_E__COUNT; i++)
        if (strcmp(rows[i].code, code) == 0)
            return (gw_err)i;
    return GW_E_INTERNAL;
}
