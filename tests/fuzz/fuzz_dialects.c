/*
 * libFuzzer target for the response readers of the HTTP dialects (OpenAI,
 * Anthropic, Ollama, Gemini, Bedrock; Azure is the OpenAI dialect on its own
 * row), through gw_phttp_replay: the whole-body parsers (parse_full_raw /
 * parse_full, and map_status on an error body) and the per-event stream
 * parsers (on_event_raw / on_event), with the call's assembly of text, tool
 * calls, usage and the final result. The framings themselves have their own
 * targets (fuzz_sse, fuzz_ndjson, fuzz_eventstream).
 *
 * Input: byte 0 picks the row (bits 0-2, mod 6), the mode (bits 3-4: 0 a 200
 * body, 1 and 3 stream events, 2 an error body whose status byte 1 picks),
 * a json_schema response_format (bit 5: the structured-output tool of
 * Anthropic and Bedrock) and a tool in the request (bit 6). The rest is the
 * body, or the stream events one a line: "name<TAB>json" or "json" alone
 * (SSE's default event "message"; NDJSON lines have no name). Each piece is
 * NUL-terminated as the framings and http_client hand it over.
 *
 * Checks: the result holds together (content NUL-terminated at content_len
 * and bounded, a finish reason, tool calls with names and arguments, no
 * content on an error); ASan and UBSan do the rest.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "provider/provider_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* assert() is compiled out in the RelWithDebInfo build the fuzz stage uses. */
#define CHECK(cond) ((cond) ? (void)0 : abort())

enum { MAX_EVENTS = 256 };

static const char *const ROWS[] = {"openai", "anthropic", "ollama", "gemini", "bedrock", "azure"};
static const int STATUSES[] = {400, 401, 403, 404, 408, 413, 429, 500, 502, 503, 529};

typedef struct {
    bool done;
    size_t delta_bytes;
} outcome;

static void on_delta(void *ud, const char *text, size_t len)
{
    outcome *o = ud;
    CHECK(len > 0 && text[len] == '\0');
    o->delta_bytes += len;
}

static void on_tool_delta(void *ud, const gw_tool_call_delta *d)
{
    (void)ud;
    CHECK(d->index >= 0 && d->index < GW_PHTTP_MAX_TOOL_CALLS);
    CHECK(d->arguments != NULL);
}

static void on_done(void *ud, const gw_provider_result *r)
{
    outcome *o = ud;
    CHECK(!o->done);
    o->done = true;
    CHECK(r->content != NULL && r->finish_reason != NULL);
    CHECK(r->content_len <= GW_PHTTP_MAX_CONTENT && r->content[r->content_len] == '\0');
    CHECK(o->delta_bytes <= GW_PHTTP_MAX_CONTENT);
    CHECK(r->tool_call_count <= GW_PHTTP_MAX_TOOL_CALLS);
    for (size_t i = 0; i < r->tool_call_count; i++) {
        const gw_tool_call *t = &r->tool_calls[i];
        CHECK(t->id != NULL && t->name != NULL && t->name[0] != '\0' && t->arguments != NULL);
    }
    if (r->err != GW_OK)
        CHECK(r->content_len == 0 && r->tool_call_count == 0);
    else
        CHECK(strcmp(r->finish_reason, "error") != 0);
}

/* A NUL-terminated copy of p[0..n) (the readers may rely on the NUL). */
static char *copy(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s != NULL) {
        if (n > 0)
            memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

/* Splits p into events, one a line, "name\tjson" or "json"; *count of them. */
static size_t split_events(char *buf, size_t n, gw_phttp_event *ev, bool named)
{
    size_t count = 0, off = 0;
    while (off < n && count < MAX_EVENTS) {
        char *line = buf + off;
        char *nl = memchr(line, '\n', n - off);
        size_t len = nl != NULL ? (size_t)(nl - line) : n - off;
        line[len] = '\0';
        off += len + 1;
        char *tab = memchr(line, '\t', len);
        gw_phttp_event *e = &ev[count++];
        e->event = named ? "message" : NULL;
        e->data = line;
        e->len = len;
        if (tab != NULL) {
            *tab = '\0';
            if (named)
                e->event = line;
            e->data = tab + 1;
            e->len = len - (size_t)(tab + 1 - line);
        }
    }
    return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t sel = data[0];
    const gw_provider_kind_info *k = gw_provider_info_find(ROWS[(sel & 7) % 6]);
    CHECK(k != NULL && k->dialect != NULL);
    int mode = (sel >> 3) & 3;
    int status = 200;
    data++, size--;
    if (mode == 2) {
        status = STATUSES[data[0] % (sizeof STATUSES / sizeof STATUSES[0])];
        data++, size--;
    }
    gw_message msg = {.role = GW_ROLE_USER, .content = "What is the weather in Paris?"};
    gw_tool tool = {.name = "get_weather", .parameters = "{\"type\":\"object\"}"};
    gw_response_format fmt = {.type = "json_schema", .name = "answer", .schema = "{}"};
    gw_request req = {.request_id = "fuzz",
                      .messages = &msg,
                      .message_count = 1,
                      .max_tokens = 64,
                      .stream = mode == 1 || mode == 3,
                      .response_format = (sel & 0x20) ? &fmt : NULL,
                      .tools = (sel & 0x40) ? &tool : NULL,
                      .tool_count = (sel & 0x40) ? 1 : 0};
    gw_deployment d = {.id = "fuzz", .provider = k->kind, .model = "m", .api_key = "sk-fuzz"};
    gw_provider_cbs cbs = {
        .on_delta = on_delta, .on_done = on_done, .on_tool_delta = on_tool_delta};
    outcome o = {0};
    char *buf = copy(data, size);
    if (buf == NULL)
        return 0;
    gw_err err;
    if (req.stream) {
        static gw_phttp_event ev[MAX_EVENTS];
        size_t n = split_events(buf, size, ev, k->stream_framing != GW_RESP_NDJSON);
        err = gw_phttp_replay(k, &d, &req, status, NULL, 0, ev, n, &cbs, &o);
    } else {
        err = gw_phttp_replay(k, &d, &req, status, buf, size, NULL, 0, &cbs, &o);
    }
    CHECK(err == GW_OK && o.done);
    free(buf);
    return 0;
}
