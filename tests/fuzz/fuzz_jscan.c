/* libFuzzer target for the allocation-free JSON scanner: whatever jscan
 * accepts, jansson (json_loadb, flags 0) must accept with the same values at
 * the OpenAI and Anthropic delta paths. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "provider/jscan.h"

/* CHECK() is compiled out in release builds: this check always runs */
#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *walk(json_t *v, const char *const *path)
{
    for (size_t i = 0; v != NULL && i < GW_JSCAN_MAX_PATH && path[i] != NULL; i++)
        v = path[i][0] == '#' ? json_array_get(v, (size_t)atoi(path[i] + 1))
                              : json_object_get(v, path[i]);
    return v;
}

static void check_field(json_t *root, const gw_jscan_field *f)
{
    json_t *v = walk(root, f->path);
    CHECK((v == NULL) == (f->kind == GW_JSON_ABSENT));
    if (f->kind == GW_JSON_STRING) {
        CHECK(json_is_string(v));
        char *out = malloc(f->raw_len + 1);
        CHECK(out != NULL);
        size_t n = gw_jscan_unescape(f->raw, f->raw_len, out);
        CHECK(n == json_string_length(v) && memcmp(out, json_string_value(v), n) == 0);
        free(out);
    } else if (f->kind == GW_JSON_INTEGER) {
        CHECK(json_is_integer(v) && json_integer_value(v) == f->integer);
    } else if (f->kind == GW_JSON_REAL) {
        CHECK(json_is_real(v));
    } else if (f->kind == GW_JSON_OBJECT) {
        CHECK(json_is_object(v));
    } else if (f->kind == GW_JSON_ARRAY) {
        CHECK(json_is_array(v));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_jscan_field f[] = {
        {.path = {"choices", "#0", "delta", "content"}},
        {.path = {"choices", "#0", "finish_reason"}},
        {.path = {"usage", "prompt_tokens"}},
        {.path = {"error"}},
        {.path = {"type"}},
        {.path = {"delta", "text"}},
        {.path = {"#1", "a"}},
        {.path = {"a"}},
    };
    const char *doc = (const char *)data;
    json_error_t je;
    json_t *root = json_loadb(doc, size, 0, &je);
    if (gw_jscan(doc, size, f, sizeof f / sizeof f[0]) == GW_JSCAN_OK) {
        CHECK(root != NULL);
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
            check_field(root, &f[i]);
    }
    json_decref(root);
    return 0;
}
