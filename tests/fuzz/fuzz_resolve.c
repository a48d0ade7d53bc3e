/* libFuzzer target for codec/resolve. First byte even: the rest is a datum
 * for a fixed writer schema (unions, arrays, maps, enums, nested and
 * reordered records, promotions, defaults); whatever transcodes must
 * transcode again unchanged with the reader as its own writer. First byte
 * odd: the rest is a writer schema (JSON) checked against InferenceRequest,
 * and when it resolves, a few bytes are transcoded with it. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "codec/resolve.h"
#include "codec/schemas.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Not assert(): the fuzz build defines NDEBUG. */
#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

static const char writer[] =
    "{\"type\":\"record\",\"name\":\"R\",\"fields\":["
    "{\"name\":\"gone\",\"type\":{\"type\":\"map\",\"values\":[\"null\",\"bytes\"]}},"
    "{\"name\":\"n\",\"type\":\"int\"},"
    "{\"name\":\"f\",\"type\":\"float\"},"
    "{\"name\":\"u\",\"type\":[\"null\",\"string\",\"long\"]},"
    "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\",\"C\"]}},"
    "{\"name\":\"xs\",\"type\":{\"type\":\"array\",\"items\":{\"type\":\"record\",\"name\":\"S\","
    "\"fields\":[{\"name\":\"s\",\"type\":\"string\"},{\"name\":\"next\",\"type\":[\"null\","
    "\"S\"]}]}}}]}";

static const char reader[] =
    "{\"type\":\"record\",\"name\":\"R\",\"fields\":["
    "{\"name\":\"xs\",\"type\":{\"type\":\"array\",\"items\":{\"type\":\"record\",\"name\":\"S\","
    "\"fields\":[{\"name\":\"next\",\"type\":[\"null\",\"S\"]},{\"name\":\"s\",\"type\":\"bytes\"},"
    "{\"name\":\"added\",\"type\":\"long\",\"default\":7}]}}},"
    "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"C\",\"A\",\"Z\"],"
    "\"default\":\"Z\"}},"
    "{\"name\":\"u\",\"type\":[\"null\",\"double\",\"string\"]},"
    "{\"name\":\"f\",\"type\":\"double\"},"
    "{\"name\":\"n\",\"type\":\"long\"},"
    "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":\"int\"},\"default\":{\"a\":1}}]}";

static gw_resolver *fixed, *same;

static void init(void)
{
    if (fixed != NULL)
        return;
    char why[256];
    gw_err e1 =
        gw_resolver_new(writer, strlen(writer), reader, strlen(reader), why, sizeof why, &fixed);
    gw_err e2 =
        gw_resolver_new(reader, strlen(reader), reader, strlen(reader), why, sizeof why, &same);
    CHECK(e1 == GW_OK);
    CHECK(e2 == GW_OK);
}

static const char *request_schema(void)
{
    const char *name =
        gw_codec_schema_name(GW_REC_REQUEST, gw_codec_current_version(GW_REC_REQUEST));
    for (size_t i = 0; i < gw_schema_source_count; i++)
        if (strcmp(gw_schema_sources[i].name, name) == 0)
            return gw_schema_sources[i].json;
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    init();
    uint8_t mode = data[0];
    data++;
    size--;
    gw_buf a, b;
    gw_buf_init(&a, 1 << 20);
    gw_buf_init(&b, 1 << 20);
    if ((mode & 1) == 0) {
        if (gw_resolver_transcode(fixed, data, size, &a) == GW_OK) {
            gw_err err = gw_resolver_transcode(same, a.data, a.len, &b);
            CHECK(err == GW_OK || err == GW_E_CODEC_TOO_LARGE || err == GW_E_CODEC_LIMIT);
            if (err == GW_OK) {
                CHECK(b.len == a.len);
                CHECK(memcmp(a.data, b.data, a.len) == 0);
            }
        }
    } else {
        const char *rd = request_schema();
        gw_resolver *r = NULL;
        char why[128];
        if (rd != NULL && gw_resolver_new((const char *)data, size, rd, strlen(rd), why, sizeof why,
                                          &r) == GW_OK) {
            (void)gw_resolver_transcode(r, data, size < 64 ? size : 64, &a);
            gw_resolver_free(r);
        }
    }
    gw_buf_cleanup(&a);
    gw_buf_cleanup(&b);
    return 0;
}
