/* libFuzzer target for the OpenAI fast path (provider/openai_scan.c): on
 * every input it must answer exactly as gw_jscan does with the same paths,
 * or fall back; it may fall back alone only on a top level that is not an
 * object. And whatever it accepts, jansson (json_loadb, flags 0) accepts.
 * An input "A\xffB" also checks that B read after A (resuming after the
 * opening A taught) reads as B alone. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "provider/openai_scan.h"

/* CHECK() is compiled out in release builds: this check always runs */
#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_key(const char *doc, size_t size, const char *msg_key)
{
    gw_jscan_field fast[GW_OAI__COUNT],
        ref[GW_OAI__COUNT] = {
            [GW_OAI_ERROR] = {.path = {"error"}},
            [GW_OAI_CHOICE] = {.path = {"choices", "#0"}},
            [GW_OAI_MSG] = {.path = {"choices", "#0", msg_key}},
            [GW_OAI_TEXT] = {.path = {"choices", "#0", msg_key, "content"}},
            [GW_OAI_FINISH] = {.path = {"choices", "#0", "finish_reason"}},
            [GW_OAI_PROMPT] = {.path = {"usage", "prompt_tokens"}},
            [GW_OAI_COMPLETION] = {.path = {"usage", "completion_tokens"}},
            [GW_OAI_TOOLS] = {.path = {"choices", "#0", msg_key, "tool_calls"}},
        };
    gw_jscan_result rf = gw_openai_scan(doc, size, msg_key, fast, NULL);
    gw_jscan_result rr = gw_jscan(doc, size, ref, GW_OAI__COUNT);
    if (rf != GW_JSCAN_OK) {
        size_t i = 0;
        while (i < size && (doc[i] == ' ' || doc[i] == '\t' || doc[i] == '\n' || doc[i] == '\r'))
            i++;
        CHECK(rr != GW_JSCAN_OK || i == size || doc[i] != '{');
        return;
    }
    CHECK(rr == GW_JSCAN_OK);
    for (size_t i = 0; i < GW_OAI__COUNT; i++) {
        CHECK(fast[i].kind == ref[i].kind);
        CHECK(fast[i].raw == ref[i].raw);
        CHECK(fast[i].raw_len == ref[i].raw_len);
        CHECK(fast[i].escaped == ref[i].escaped);
        CHECK(fast[i].integer == ref[i].integer);
    }
    json_error_t je;
    json_t *root = json_loadb(doc, size, 0, &je);
    CHECK(root != NULL);
    json_decref(root);
}

static bool same(const gw_jscan_field *a, const gw_jscan_field *b)
{
    for (size_t i = 0; i < GW_OAI__COUNT; i++)
        if (a[i].kind != b[i].kind || a[i].raw != b[i].raw || a[i].raw_len != b[i].raw_len ||
            a[i].escaped != b[i].escaped || a[i].integer != b[i].integer)
            return false;
    return true;
}

/* Input "A\xffB": B read resuming after the opening A taught must read as B
 * alone. */
static void check_resume(const char *data, size_t size)
{
    const char *cut = memchr(data, '\xff', size);
    if (cut == NULL)
        return;
    const char *b = cut + 1;
    size_t an = (size_t)(cut - data), bn = size - an - 1;
    gw_openai_prefix p = {0};
    gw_jscan_field f[GW_OAI__COUNT], g[GW_OAI__COUNT];
    (void)gw_openai_scan(data, an, "delta", f, &p);
    CHECK(p.len <= GW_OAI_PREFIX_MAX);
    gw_jscan_result want = gw_openai_scan(b, bn, "delta", g, NULL);
    CHECK(gw_openai_scan(b, bn, "delta", f, &p) == want);
    CHECK(want != GW_JSCAN_OK || same(f, g));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_key((const char *)data, size, "delta");
    check_key((const char *)data, size, "message");
    check_resume((const char *)data, size);
    return 0;
}
