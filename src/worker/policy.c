/* policy: capacity/pause and stream-coalescing decisions; see policy.h. */
#include <stddef.h>

#include "worker/policy.h"

#include <math.h>

static const char *const tier_names[GW_TIER__COUNT] = {"high", "normal", "low"};

const char *gw_tier_name(gw_tier t)
{
    return (unsigned)t < GW_TIER__COUNT ? tier_names[t] : "unknown";
}

static uint32_t share_slots(uint32_t c, double share)
{
    if (!(share > 0))
        return 0;
    double v = ceil((double)c * share);
    return v >= (double)c ? c : (uint32_t)v;
}

/* Open when value < limit; once closed, reopen only below limit - hyst. */
static bool below(uint64_t value, int64_t limit, bool was_open, uint32_t hyst)
{
    int64_t eff = was_open ? limit : limit - (int64_t)hyst;
    if (eff < 1 && limit >= 1)
        eff = 1; /* hysteresis never keeps a tier closed at zero load */
    return (int64_t)value < eff;
}

void gw_capacity_decide(const gw_capacity_cfg *cfg, const gw_capacity_state *st,
                        bool open[GW_TIER__COUNT])
{
    uint32_t c = cfg->max_in_flight ? cfg->max_in_flight : 1;
    uint32_t r = share_slots(c, cfg->low_share);
    uint32_t hn = share_slots(c, cfg->normal_headroom);
    uint32_t hl = share_slots(c, cfg->low_headroom);
    const uint32_t *f = st->in_flight;
    uint64_t total = (uint64_t)f[GW_TIER_HIGH] + f[GW_TIER_NORMAL] + f[GW_TIER_LOW];
    uint64_t upper = (uint64_t)f[GW_TIER_HIGH] + f[GW_TIER_NORMAL];
    int64_t upper_cap = st->low_competing ? (int64_t)c - r : (int64_t)c;

    open[GW_TIER_HIGH] = below(total, c, st->was_open[GW_TIER_HIGH], cfg->hysteresis) &&
                         below(upper, upper_cap, st->was_open[GW_TIER_HIGH], cfg->hysteresis);
    open[GW_TIER_NORMAL] =
        below(total, (int64_t)c - hn, st->was_open[GW_TIER_NORMAL], cfg->hysteresis) &&
        below(upper, upper_cap, st->was_open[GW_TIER_NORMAL], cfg->hysteresis);
    open[GW_TIER_LOW] = below(f[GW_TIER_LOW], r, st->was_open[GW_TIER_LOW], 0) ||
                        below(total, (int64_t)c - hl, st->was_open[GW_TIER_LOW], cfg->hysteresis);
}

gw_coalesce_action gw_coalesce_on_delta(const gw_coalesce_cfg *cfg, uint32_t chunks_published,
                                        size_t pending_bytes, bool timer_armed, uint32_t *delay_ms)
{
    *delay_ms = 0;
    if (chunks_published == 0 || cfg->coalesce_ms == 0)
        return GW_COALESCE_FLUSH;
    if (cfg->coalesce_bytes > 0 && pending_bytes >= cfg->coalesce_bytes)
        return GW_COALESCE_FLUSH;
    if (timer_armed)
        return GW_COALESCE_WAIT;
    *delay_ms = cfg->coalesce_ms;
    return GW_COALESCE_ARM_TIMER;
}
