/*
 * latency_private: the vtable behind gw_latstats and the EWMA update both
 * backends share (the Redis script computes the same formula).
 */
#ifndef GW_ROUTE_LATENCY_PRIVATE_H
#define GW_ROUTE_LATENCY_PRIVATE_H

#include "route/latency.h"

typedef struct {
    void (*record)(gw_latstats *s, size_t idx, double ttft_ms, double total_ms);
    void (*get)(gw_latstats *s, size_t idx, gw_latency *out);
    void (*free)(gw_latstats *s);
    void (*flush)(gw_latstats *s); /* NULL: nothing is batched */
    void (*concurrency)(gw_latstats *s, size_t idx, double inc, int32_t dec,
                        const gw_latstats_cap *p); /* NULL: nothing shared */
} gw_latstats_ops;

struct gw_latstats {
    const gw_latstats_ops *ops;
    size_t count;
    double alpha;
    size_t pending;
};

/* First sample sets the value; later ones move it by alpha. */
void lat_ewma_apply(gw_latency *l, double alpha, double ttft_ms, double total_ms);

#endif
