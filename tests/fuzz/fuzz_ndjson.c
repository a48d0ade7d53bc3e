/* libFuzzer target for the NDJSON splitter: the first byte picks the feed
 * size. Every line returned must be NUL-terminated, within the limit and
 * free of LF. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "provider/ndjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)(data[0] % 16) + 1;
    data++;
    size--;
    gw_ndjson p;
    gw_ndjson_init(&p, 256);
    gw_err err = GW_OK;
    for (size_t off = 0; off < size && err == GW_OK; off += step) {
        size_t n = size - off < step ? size - off : step;
        err = gw_ndjson_feed(&p, (const char *)data + off, n);
        bool got = true;
        while (err == GW_OK && got) {
            const char *line;
            size_t len;
            err = gw_ndjson_next(&p, &line, &len, &got);
            if (got) {
                assert(len <= 256);
                assert(line[len] == '\0');
                assert(memchr(line, '\n', len) == NULL);
            }
        }
    }
    (void)gw_ndjson_pending(&p);
    gw_ndjson_cleanup(&p);
    return 0;
}
