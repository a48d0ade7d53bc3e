/* libFuzzer target for the AWS event stream parser: the first byte picks the
 * feed size (low 5 bits) and whether the CRCs of the input's messages are
 * made right first (bit 7), so mutations reach the header and payload
 * parsing behind the CRC checks. Every message returned must lie within the
 * limit, have a NUL-terminated payload and headers inside the message. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "provider/eventstream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
    p[3] = (uint8_t)v;
}

/* Rewrites the prelude and message CRCs of each message that fits. */
static void fix_crcs(uint8_t *d, size_t n)
{
    size_t at = 0;
    while (n - at >= GW_ES_MIN_MESSAGE_BYTES) {
        uint32_t total = be32(d + at);
        put32(d + at + 8, gw_es_crc32(0, d + at, 8));
        if (total < GW_ES_MIN_MESSAGE_BYTES || total > n - at)
            return;
        put32(d + at + total - 4, gw_es_crc32(0, d + at, total - 4));
        at += total;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)(data[0] % 32) + 1;
    uint8_t *copy = malloc(size);
    if (copy == NULL)
        return 0;
    memcpy(copy, data + 1, size - 1);
    if (data[0] & 0x80)
        fix_crcs(copy, size - 1);
    data = copy;
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
    free(copy);
    return 0;
}
