/* fuzz_ratelimit: libFuzzer target for the provider rate-limit header parser
 * (src/provider/ratelimit.c). The input is split into header lines; each is
 * fed as is, and its value part as a duration. Whatever is accepted must stay
 * in range: counts and resets non-negative, resets under a day, the
 * remaining share in [0, 1] or -1.
 * Seed corpus: tests/fuzz/corpus/ratelimit. Run:
 *   CC=clang cmake -S . -B build-fuzz -DMODELGW_FUZZ=ON && ninja -C build-fuzz fuzz_ratelimit
 *   build-fuzz/fuzz_ratelimit -max_total_time=60 tests/fuzz/corpus/ratelimit */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "provider/ratelimit.h"

enum { DAY_MS = 86400000 };

static void check(const gw_ratelimit *rl)
{
    const int64_t v[] = {rl->limit_requests, rl->remaining_requests, rl->limit_tokens,
                         rl->remaining_tokens};
    for (size_t i = 0; i < 4; i++)
        if (v[i] < 0)
            abort();
    if (rl->reset_requests_ms < 0 || rl->reset_requests_ms > DAY_MS)
        abort();
    if (rl->reset_tokens_ms < 0 || rl->reset_tokens_ms > DAY_MS)
        abort();
    double s = gw_ratelimit_remaining_share(rl);
    if (!(s == -1 || (s >= 0 && s <= 1)))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_ratelimit rl = {0};
    const char *p = (const char *)data;
    while (size > 0) {
        const char *nl = memchr(p, '\n', size);
        size_t n = nl != NULL ? (size_t)(nl - p) + 1 : size;
        gw_ratelimit_header(&rl, p, n, 1796403600000LL);
        const char *colon = memchr(p, ':', n);
        if (colon != NULL) {
            int64_t d = gw_ratelimit_parse_duration_ms(colon + 1, n - (size_t)(colon + 1 - p));
            if (d < -1 || d >= DAY_MS)
                abort();
        }
        p += n;
        size -= n;
    }
    check(&rl);
    return 0;
}
