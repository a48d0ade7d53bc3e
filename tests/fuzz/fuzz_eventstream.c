/* libFuzzer target for the AWS event stream parser: the first byte picks the
 * feed size. Every message returned must lie within the limit, have a
 * NUL-terminated payload and headers inside the message. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "provider/eventstream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)(data[0] % 32) + 1;
    data++;
    size--;
    gw_es p;
    gw_es_init(&p, 4096);
    gw_err err = GW_OK;
    for (size_t off = 0; off < size && err == GW_OK; off += step) {
        size_t n = size - off < step ? size - off : step;
        err = gw_es_feed(&p, (const char *)data + off, n);
        bool got = true;
        while (err == GW_OK && got) {
            gw_es_message m;
            err = gw_es_next(&p, &m, &got);
            if (!got)
                continue;
            assert(m.payload_len + GW_ES_MIN_MESSAGE_BYTES <= 4096);
            assert(m.payload[m.payload_len] == '\0');
            assert(m.header_count <= GW_ES_MAX_HEADERS);
            for (size_t i = 0; i < m.header_count; i++) {
                assert(m.headers[i].name_len > 0);
                assert(m.headers[i].value + m.headers[i].value_len <= m.payload);
            }
            size_t l;
            (void)gw_es_header_str(&m, ":event-type", &l);
        }
    }
    if (err != GW_OK)
        assert(gw_es_error(&p) != GW_ES_OK);
    (void)gw_es_pending(&p);
    gw_es_cleanup(&p);
    return 0;
}
