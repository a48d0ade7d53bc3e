/* libFuzzer target for the SSE parser: the first byte picks the feed size,
 * the rest is the stream. Checks that every event's data_len matches its
 * NUL-terminated length and never exceeds the limit. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "provider/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)(data[0] % 16) + 1;
    data++;
    size--;
    gw_sse p;
    gw_sse_init(&p, 512);
    gw_err err = GW_OK;
    for (size_t off = 0; off < size && err == GW_OK; off += step) {
        size_t n = size - off < step ? size - off : step;
        err = gw_sse_feed(&p, (const char *)data + off, n);
        bool got = true;
        while (err == GW_OK && got) {
            gw_sse_event ev;
            err = gw_sse_next(&p, &ev, &got);
            if (got) {
                assert(ev.data_len <= 512);
                assert(ev.data[ev.data_len] == '\0');
                assert(strlen(ev.event) < GW_SSE_NAME_MAX);
            }
        }
    }
    (void)gw_sse_pending(&p);
    gw_sse_cleanup(&p);
    return 0;
}
