/* fuzz_decode: libFuzzer target for the Avro decoder. Every input is decoded
 * as each of the four records with AUTO framing and small limits; whatever
 * decodes must encode again and decode to the same record (JSON-compared).
 * Seed corpus: tests/fuzz/corpus/decode (tools/gen-codec-corpus.py). Run:
 *   CC=clang cmake -S . -B build-fuzz -DMODELGW_FUZZ=ON && ninja -C build-fuzz fuzz_decode
 *   build-fuzz/fuzz_decode -max_total_time=60 tests/fuzz/corpus/decode */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "codec/json.h"

static gw_codec *codec; /* the harness's one codec: libFuzzer gives no context */

static gw_codec *get_codec(void)
{
    if (codec == NULL) {
        gw_codec_limits lim = {
            .max_message_bytes = 64 << 10,
            .max_messages = 16,
            .max_string_bytes = 4096,
            .max_map_entries = 8,
            .max_capabilities = 8,
            .max_tools = 8,
            .max_tool_calls = 8,
            .max_alloc_bytes = 256 << 10,
        };
        codec = gw_codec_new(&lim);
        if (codec == NULL)
            abort();
        gw_codec_set_confluent_id(codec, 7, GW_REC_REQUEST, 2);
        gw_codec_set_confluent_id(codec, 8, GW_REC_REQUEST, 1);
        gw_codec_set_confluent_id(codec, 9, GW_REC_RESPONSE, 1);
        gw_codec_set_confluent_id(codec, 12, GW_REC_REQUEST, 3);
        gw_codec_set_confluent_id(codec, 13, GW_REC_RESPONSE, 2);
    }
    return codec;
}

static void check_roundtrip(gw_codec *c, gw_record_kind kind, const gw_any_record *rec)
{
    gw_buf buf;
    gw_arena arena;
    gw_any_record again;
    gw_buf_init(&buf, 0);
    gw_arena_init(&arena, 1 << 20);
    if (gw_codec_encode(c, kind, rec, 0, GW_FRAMING_SINGLE_OBJECT, &buf) != GW_OK)
        abort(); /* what we decoded within the limits we must be able to write */
    if (gw_codec_decode(c, kind, buf.data, buf.len, &arena, &again) != GW_OK)
        abort();
    json_t *a = gw_record_to_json(kind, rec);
    json_t *b = gw_record_to_json(kind, &again);
    if (!json_equal(a, b))
        abort();
    json_decref(a);
    json_decref(b);
    gw_arena_cleanup(&arena);
    gw_buf_cleanup(&buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_codec *c = get_codec();
    for (int k = 0; k < GW_REC__COUNT; k++) {
        gw_arena arena;
        gw_any_record out;
        gw_arena_init(&arena, 512 << 10);
        gw_err e = gw_codec_decode(c, (gw_record_kind)k, data, size, &arena, &out);
        if (e == GW_OK)
            check_roundtrip(c, (gw_record_kind)k, &out);
        else if (gw_err_domain(e) != GW_DOMAIN_CODEC && e != GW_E_NOMEM)
            abort();
        gw_arena_cleanup(&arena);
    }
    return 0;
}
