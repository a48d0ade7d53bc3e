/*
 * provider_mock: the built-in mock provider; see provider_mock.h.
 *
 * The answer is a sequence of words picked from a fixed list by an FNV-1a
 * hash of the prompt (system prompt + every message), so the same prompt
 * always gets the same answer on every worker. Its length is 8..39 words;
 * each word counts as one completion token; an answer longer than max_tokens
 * is clipped to max_tokens words with finish_reason "length". Failures are
 * chosen by a hash of the request id against mock_failure_rate, so a retried
 * request fails or succeeds the same way everywhere.
 *
 * One uv_timer drives a call: latency (non-streamed) or time to first token,
 * then one word per inter-chunk delay. A zero delay still goes through the
 * timer, so callbacks run on a later loop iteration, never inside start.
 * With a zero chunk delay every delta of a stream is reported in one timer
 * callback. The call frees itself through uv_close after on_done.
 *
 * Tool calls, by the rule modelgw-mockllm follows: when the request has
 * tools, tool_choice is not "none" and the last message is not a tool
 * result, the answer is one call of the named tool (else the first), id
 * "call_<12 hex>", arguments {"text":"<the answer's words>"}, no text,
 * finish "tool_calls". Streamed, the arguments go to on_tool_delta in pieces
 * of MOCK_TOOL_PIECE bytes (id and name on the first), one per chunk delay.
 */
#include "provider/provider_mock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"

static const char *const mock_words[] = {
    "the",      "model",      "gateway", "answers", "quickly", "with",   "tokens", "from",
    "kafka",    "stream",     "request", "reply",   "a",       "simple", "mock",   "text",
    "about",    "your",       "prompt",  "and",     "it",      "is",     "always", "the",
    "same",     "for",        "same",    "input",   "so",      "tests",  "can",    "rely",
    "on",       "every",      "word",    "here",    "being",   "stable", "across", "runs",
    "while",    "load",       "grows",   "fast",    "queues",  "stay",   "short",  "under",
    "pressure", "partitions", "commit",  "offsets", "after",   "acks",   "arrive", "in",
    "order",    "or",         "not",     "at",      "all",     "yet",    "done",   "ok",
};
enum {
    MOCK_WORD_COUNT = sizeof mock_words / sizeof mock_words[0],
    MOCK_MIN_WORDS = 8,
    MOCK_TOOL_PIECE = 8, /* bytes of arguments per streamed tool-call piece */
};

struct gw_mock_call {
    uv_timer_t timer;
    const gw_deployment *d;
    const gw_request *req;
    gw_provider_cbs cbs;
    void *ud;
    uint64_t seed;
    uint32_t words_total;
    uint32_t words_sent;
    bool clipped;
    bool fail;
    bool streamed_any;
    uint64_t t0_ms;
    double ttft_ms;
    char *content; /* whole answer, NUL-terminated */
    size_t content_len;
    size_t *word_end; /* end offset of each word in content */
    /* A tool-call answer (tool.name != NULL): arguments and the bytes streamed. */
    gw_tool_call tool;
    char tool_id[24];
    char *tool_args;
    size_t tool_args_len, tool_args_sent;
};

static uint64_t prompt_hash(const gw_request *req)
{
    uint64_t h = gw_fnv1a64_str(GW_FNV64_BASIS, req->system_prompt);
    for (size_t i = 0; i < req->message_count; i++)
        h = gw_fnv1a64_str(h ^ (uint64_t)req->messages[i].role, req->messages[i].content);
    return h;
}

static gw_err build_content(gw_mock_call *c)
{
    uint32_t n = MOCK_MIN_WORDS + (uint32_t)(c->seed % 32);
    if (c->req->max_tokens > 0 && n > (uint32_t)c->req->max_tokens) {
        n = (uint32_t)c->req->max_tokens;
        c->clipped = true;
    }
    c->words_total = n;
    c->word_end = malloc(n * sizeof *c->word_end);
    c->content = malloc((size_t)n * 12 + 1);
    if (c->word_end == NULL || c->content == NULL)
        return GW_E_NOMEM;
    size_t len = 0;
    uint64_t x = c->seed;
    for (uint32_t i = 0; i < n; i++) {
        x = gw_fmix64(x + i);
        const char *w = mock_words[x % MOCK_WORD_COUNT];
        size_t wl = strlen(w);
        if (i > 0)
            c->content[len++] = ' ';
        memcpy(c->content + len, w, wl);
        len += wl;
        c->word_end[i] = len;
    }
    c->content[len] = '\0';
    c->content_len = len;
    return GW_OK;
}

/* The tool the answer calls, or NULL for a text answer. */
static const char *tool_to_call(const gw_request *req)
{
    if (req->tool_count == 0 || (req->tool_choice && strcmp(req->tool_choice, "none") == 0))
        return NULL;
    if (req->message_count > 0 && req->messages[req->message_count - 1].role == GW_ROLE_TOOL)
        return NULL;
    for (size_t i = 0; req->tool_choice != NULL && i < req->tool_count; i++)
        if (strcmp(req->tools[i].name, req->tool_choice) == 0)
            return req->tools[i].name;
    return req->tools[0].name;
}

/* {"text":"<content>"}: the mock words need no JSON escaping. */
static gw_err build_tool_call(gw_mock_call *c, const char *name)
{
    static const char head[] = "{\"text\":\"", tail[] = "\"}";
    c->tool_args_len = sizeof head - 1 + c->content_len + sizeof tail - 1;
    c->tool_args = malloc(c->tool_args_len + 1);
    if (c->tool_args == NULL)
        return GW_E_NOMEM;
    memcpy(c->tool_args, head, sizeof head - 1);
    memcpy(c->tool_args + sizeof head - 1, c->content, c->content_len);
    memcpy(c->tool_args + sizeof head - 1 + c->content_len, tail, sizeof tail);
    snprintf(c->tool_id, sizeof c->tool_id, "call_%012llx",
             (unsigned long long)(gw_fmix64(c->seed) & 0xffffffffffffULL));
    c->tool = (gw_tool_call){.id = c->tool_id, .name = name, .arguments = c->tool_args};
    c->words_total = (uint32_t)((c->tool_args_len + MOCK_TOOL_PIECE - 1) / MOCK_TOOL_PIECE);
    return GW_OK;
}

static void on_closed(uv_handle_t *h)
{
    gw_mock_call *c = h->data;
    free(c->tool_args);
    free(c->content);
    free(c->word_end);
    free(c);
}

static void finish(gw_mock_call *c)
{
    uint64_t now = uv_now(c->timer.loop);
    gw_provider_result res = {.err = GW_OK, .http_status = 200, .retry_after_ms = -1};
    res.latency_ms = (double)(now - c->t0_ms);
    res.ttft_ms = c->streamed_any ? c->ttft_ms : res.latency_ms;
    res.streamed_any = c->streamed_any;
    if (c->fail) {
        res.err = GW_E_PROVIDER_UNAVAILABLE;
        res.http_status = 503;
        res.error_detail = "mock provider: injected failure";
        res.content = "";
        res.finish_reason = "error";
    } else {
        res.content = c->content;
        res.content_len = c->content_len;
        res.usage.prompt_tokens = gw_estimate_prompt_tokens(c->req);
        res.usage.completion_tokens = (int32_t)c->words_total;
        res.usage.total_tokens = res.usage.prompt_tokens + res.usage.completion_tokens;
        res.finish_reason = c->clipped ? "length" : "stop";
        if (c->tool.name != NULL) {
            res.content = "";
            res.content_len = 0;
            res.tool_calls = &c->tool;
            res.tool_call_count = 1;
            res.finish_reason = "tool_calls";
        }
    }
    uv_close((uv_handle_t *)&c->timer, on_closed);
    c->cbs.on_done(c->ud, &res);
}

/* Report the next word (with its leading space) as a delta. */
static void send_word(gw_mock_call *c)
{
    size_t start = c->words_sent == 0 ? 0 : c->word_end[c->words_sent - 1];
    size_t end = c->word_end[c->words_sent];
    if (c->words_sent == 0)
        c->ttft_ms = (double)(uv_now(c->timer.loop) - c->t0_ms);
    c->words_sent++;
    c->streamed_any = true;
    c->cbs.on_delta(c->ud, c->content + start, end - start);
}

/* Report the next piece of the tool call's arguments. */
static void send_tool_piece(gw_mock_call *c)
{
    size_t n = c->tool_args_len - c->tool_args_sent;
    n = n < MOCK_TOOL_PIECE ? n : MOCK_TOOL_PIECE;
    char piece[MOCK_TOOL_PIECE + 1];
    memcpy(piece, c->tool_args + c->tool_args_sent, n);
    piece[n] = '\0';
    bool first = c->tool_args_sent == 0;
    if (first)
        c->ttft_ms = (double)(uv_now(c->timer.loop) - c->t0_ms);
    gw_tool_call_delta d = {.index = 0,
                            .id = first ? c->tool.id : NULL,
                            .name = first ? c->tool.name : NULL,
                            .arguments = piece};
    c->tool_args_sent += n;
    c->words_sent++;
    c->streamed_any = true;
    c->cbs.on_tool_delta(c->ud, &d);
}

static void on_timer(uv_timer_t *t)
{
    gw_mock_call *c = t->data;
    bool tool = c->tool.name != NULL;
    bool streaming = c->req->stream && !c->fail &&
                     (tool ? c->cbs.on_tool_delta != NULL : c->cbs.on_delta != NULL);
    if (!streaming || c->words_sent == c->words_total) {
        finish(c);
        return;
    }
    uint64_t delay = (uint64_t)(c->d->mock_chunk_delay_ms > 0 ? c->d->mock_chunk_delay_ms : 0);
    do {
        if (tool)
            send_tool_piece(c);
        else
            send_word(c);
    } while (delay == 0 && c->words_sent < c->words_total);
    uv_timer_start(&c->timer, on_timer, c->words_sent < c->words_total ? delay : 0, 0);
}

gw_err gw_mock_call_start(uv_loop_t *loop, const gw_deployment *d, const gw_request *req,
                          const gw_provider_cbs *cbs, void *ud, gw_mock_call **out)
{
    gw_mock_call *c = calloc(1, sizeof *c);
    if (c == NULL)
        return GW_E_NOMEM;
    c->d = d;
    c->req = req;
    c->cbs = *cbs;
    c->ud = ud;
    c->seed = prompt_hash(req);
    uint64_t id_hash = gw_fmix64(gw_fnv1a64_str(GW_FNV64_BASIS, req->request_id));
    c->fail = d->mock_failure_rate > 0 && (double)(id_hash % 1000000) < d->mock_failure_rate * 1e6;
    gw_err err = build_content(c);
    const char *tool = err == GW_OK ? tool_to_call(req) : NULL;
    if (tool != NULL)
        err = build_tool_call(c, tool);
    if (err != GW_OK) {
        free(c->tool_args);
        free(c->content);
        free(c->word_end);
        free(c);
        return err;
    }
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->t0_ms = uv_now(loop);
    int32_t first = req->stream && !c->fail ? d->mock_ttft_ms : d->mock_latency_ms;
    uv_timer_start(&c->timer, on_timer, first > 0 ? (uint64_t)first : 0, 0);
    *out = c;
    return GW_OK;
}

void gw_mock_call_cancel(gw_mock_call *c)
{
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_closed);
}
