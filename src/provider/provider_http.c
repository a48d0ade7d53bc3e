/*
 * provider_http: one HTTP provider call; see provider_http.h.
 *
 * Invariants: exactly one of (on_done called, cancelled) ends a call; the
 * call is freed only after http_client let go of it (its on_done ran or it was
 * cancelled outside a curl callback). A cancel during our own on_data (the
 * user cancelling from on_delta) only marks the call; the next byte aborts
 * the transfer and the completion frees the call silently.
 */
#include "provider/provider_http.h"

#include <ctype.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/redact.h"

/* One tool call being assembled from the provider's pieces. */
typedef struct {
    int key; /* the provider's index (OpenAI) or content block (Anthropic); -1: none */
    char *id, *name;
    char *args;
    size_t args_len, args_cap;
    bool is_format; /* the structured-output tool: its arguments are the answer text */
} tool_slot;

struct gw_phttp_call {
    const gw_provider_kind_info *kind;
    const gw_phttp_dialect *dia;
    const gw_deployment *d;
    const gw_request *req;
    gw_provider_cbs cbs;
    void *ud;
    gw_http_req *http;
    gw_http_transport transport; /* the deployment's TLS files and HTTP version */
    char *hdrs[GW_HTTP_MAX_HEADERS];
    bool hdr_heap[GW_HTTP_MAX_HEADERS]; /* hdrs[i] was allocated (did not fit hstore) */
    size_t hdr_count;
    char hstore[1024]; /* header lines, back to back; wiped when the call ends */
    size_t hstore_len;
    gw_sse sse;
    gw_ndjson nd;
    gw_es es;
    gw_err stream_err; /* an exception message in the stream: the call's outcome */
    char *content;
    size_t content_len, content_cap;
    gw_token_usage usage;
    bool has_prompt_usage, has_completion_usage;
    char finish[32];
    bool terminated, streamed_any, in_data, cancelled;
    double ttft_ms;
    uint64_t start_ms;
    uv_loop_t *loop;
    char detail[GW_PHTTP_DETAIL_MAX + 1];
    bool has_detail;
    gw_jbuf body;  /* the request body, lent to http_client until it lets go */
    char *scratch; /* decoded jscan strings; bounded by the event size */
    size_t scratch_cap;
    tool_slot *tools; /* tool calls in order of first appearance */
    size_t tool_count, tool_cap, tool_bytes;
    gw_tool_call *tool_out;      /* the assembled calls handed to on_done */
    const char *format_tool;     /* the dialect's structured-output tool name, or NULL */
    gw_ratelimit rl;             /* rate-limit headers of the (last) response */
    bool blocked;                /* the provider's safety filter stopped the answer */
    int64_t body_retry_after_ms; /* from the error body (gw_phttp_retry_after); -1: none */
    _Alignas(max_align_t) unsigned char memo[GW_PHTTP_MEMO_BYTES]; /* gw_phttp_memo */
};

static void set_detail(gw_phttp_call *c, const char *text, size_t len);

/* ---- helpers for dialects ---- */

/* Room for one header line of n bytes (with its NUL), in hstore when it fits. */
static char *header_slot(gw_phttp_call *c, size_t n)
{
    if (c->hdr_count == GW_HTTP_MAX_HEADERS - 1)
        return NULL;
    char *h;
    bool heap = c->hstore_len + n > sizeof c->hstore;
    if (heap) {
        h = malloc(n);
        if (h == NULL)
            return NULL;
    } else {
        h = c->hstore + c->hstore_len;
        c->hstore_len += n;
    }
    c->hdr_heap[c->hdr_count] = heap;
    c->hdrs[c->hdr_count++] = h;
    return h;
}

gw_err gw_phttp_header(gw_phttp_call *c, const char *name, const char *value)
{
    if (c->hdr_count == GW_HTTP_MAX_HEADERS - 1)
        return GW_E_LIMIT;
    size_t nl = strlen(name), vl = strlen(value), n = nl + vl + 3;
    char *h = header_slot(c, n);
    if (h == NULL)
        return GW_E_NOMEM;
    memcpy(h, name, nl); /* "name: value": memcpy, not snprintf (every call, ~900 instructions) */
    memcpy(h + nl, ": ", 2);
    memcpy(h + nl + 2, value, vl + 1);
    return GW_OK;
}

const gw_provider_kind_info *gw_phttp_kind(const gw_phttp_call *c)
{
    return c->kind;
}

gw_err gw_phttp_auth(gw_phttp_call *c, const gw_deployment *d)
{
    if (d->api_key == NULL || d->api_key[0] == '\0')
        return GW_OK;
    const char *name = d->auth_header ? d->auth_header : c->kind->auth.header;
    if (name == NULL)
        name = "Authorization";
    const char *scheme = c->kind->auth.scheme ? c->kind->auth.scheme : "Bearer";
    if (strcasecmp(name, "Authorization") != 0)
        return gw_phttp_header(c, name, d->api_key);
    size_t sl = strlen(scheme), kl = strlen(d->api_key), n = sl + kl + 2;
    char tmp[512];
    char *v = n <= sizeof tmp ? tmp : malloc(n);
    if (v == NULL)
        return GW_E_NOMEM;
    memcpy(v, scheme, sl); /* "<scheme> <key>" */
    v[sl] = ' ';
    memcpy(v + sl + 1, d->api_key, kl + 1);
    gw_err err = gw_phttp_header(c, "Authorization", v);
    memset(v, 0, n); /* do not leave the key in freed memory */
    if (v != tmp)
        free(v);
    return err;
}

/* The first streamed piece of the answer: time to first token (a replayed
 * call, gw_phttp_replay, has no transfer to time). */
static void token_seen(gw_phttp_call *c)
{
    if (!c->streamed_any && c->http != NULL) {
        c->ttft_ms = (double)(uv_now(c->loop) - c->start_ms);
        gw_http_req_token_seen(c->http);
    }
    c->streamed_any = true;
}

gw_err gw_phttp_text(gw_phttp_call *c, const char *text, size_t len)
{
    if (len == 0)
        return GW_OK;
    if (c->content_len + len > GW_PHTTP_MAX_CONTENT)
        return GW_E_LIMIT;
    if (c->content_len + len + 1 > c->content_cap) {
        size_t n = c->content_cap ? c->content_cap : 1024;
        while (n < c->content_len + len + 1)
            n *= 2;
        char *b = realloc(c->content, n);
        if (b == NULL)
            return GW_E_NOMEM;
        c->content = b;
        c->content_cap = n;
    }
    memcpy(c->content + c->content_len, text, len);
    text = c->content + c->content_len; /* NUL-terminated for on_delta */
    c->content_len += len;
    c->content[c->content_len] = '\0';
    if (c->in_data) { /* a streamed delta */
        token_seen(c);
        if (c->cbs.on_delta != NULL && !c->cancelled)
            c->cbs.on_delta(c->ud, text, len);
    }
    return GW_OK;
}

void gw_phttp_finish(gw_phttp_call *c, const char *reason)
{
    if (reason != NULL)
        snprintf(c->finish, sizeof c->finish, "%s", gw_phttp_normalise_finish(reason));
}

void gw_phttp_usage(gw_phttp_call *c, json_t *prompt, json_t *completion)
{
    if (json_is_integer(prompt)) {
        c->usage.prompt_tokens = (int32_t)json_integer_value(prompt);
        c->has_prompt_usage = true;
    }
    if (json_is_integer(completion)) {
        c->usage.completion_tokens = (int32_t)json_integer_value(completion);
        c->has_completion_usage = true;
    }
}

void gw_phttp_usage_counts(gw_phttp_call *c, int64_t prompt, int64_t completion)
{
    enum { MAX_COUNT = (1 << 30) - 1 }; /* two of them add up within an int32 total */
    if (prompt >= 0) {
        c->usage.prompt_tokens = prompt > MAX_COUNT ? MAX_COUNT : (int32_t)prompt;
        c->has_prompt_usage = true;
    }
    if (completion >= 0) {
        c->usage.completion_tokens = completion > MAX_COUNT ? MAX_COUNT : (int32_t)completion;
        c->has_completion_usage = true;
    }
}

void *gw_phttp_memo(gw_phttp_call *c)
{
    return c->memo;
}

const char *gw_phttp_jstr(gw_phttp_call *c, const gw_jscan_field *f, size_t *len)
{
    if (f->kind != GW_JSON_STRING)
        return NULL;
    if (f->raw_len + 1 > c->scratch_cap) {
        size_t n = c->scratch_cap ? c->scratch_cap : 256;
        while (n < f->raw_len + 1)
            n *= 2;
        char *b = realloc(c->scratch, n);
        if (b == NULL)
            return NULL;
        c->scratch = b;
        c->scratch_cap = n;
    }
    if (f->escaped) {
        *len = gw_jscan_unescape(f->raw, f->raw_len, c->scratch);
    } else {
        memcpy(c->scratch, f->raw, f->raw_len);
        c->scratch[f->raw_len] = '\0';
        *len = f->raw_len;
    }
    return c->scratch;
}

gw_err gw_phttp_text_field(gw_phttp_call *c, const gw_jscan_field *f)
{
    if (f->kind != GW_JSON_STRING)
        return GW_OK;
    if (!f->escaped) /* gw_phttp_text copies; no need to decode */
        return gw_phttp_text(c, f->raw, f->raw_len);
    size_t n;
    const char *s = gw_phttp_jstr(c, f, &n);
    return s == NULL ? GW_E_NOMEM : gw_phttp_text(c, s, n);
}

void gw_phttp_finish_field(gw_phttp_call *c, const gw_jscan_field *f)
{
    size_t n;
    const char *s = gw_phttp_jstr(c, f, &n);
    if (s != NULL && strlen(s) == n) /* jansson's string value stops at a NUL too */
        gw_phttp_finish(c, s);
}

void gw_phttp_usage_fields(gw_phttp_call *c, const gw_jscan_field *prompt,
                           const gw_jscan_field *completion)
{
    if (prompt != NULL && prompt->kind == GW_JSON_INTEGER) {
        c->usage.prompt_tokens = (int32_t)prompt->integer;
        c->has_prompt_usage = true;
    }
    if (completion != NULL && completion->kind == GW_JSON_INTEGER) {
        c->usage.completion_tokens = (int32_t)completion->integer;
        c->has_completion_usage = true;
    }
}

const gw_request *gw_phttp_req(const gw_phttp_call *c)
{
    return c->req;
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* The slot of key (a new one when key < 0 or unseen); NULL with *err set. */
static tool_slot *tool_slot_for(gw_phttp_call *c, int key, gw_err *err)
{
    for (size_t i = 0; key >= 0 && i < c->tool_count; i++)
        if (c->tools[i].key == key)
            return &c->tools[i];
    if (c->tool_count == GW_PHTTP_MAX_TOOL_CALLS) {
        *err = GW_E_LIMIT;
        return NULL;
    }
    if (c->tool_count == c->tool_cap) {
        size_t n = c->tool_cap ? c->tool_cap * 2 : 4;
        tool_slot *t = realloc(c->tools, n * sizeof *t);
        if (t == NULL) {
            *err = GW_E_NOMEM;
            return NULL;
        }
        c->tools = t;
        c->tool_cap = n;
    }
    tool_slot *t = &c->tools[c->tool_count++];
    memset(t, 0, sizeof *t);
    t->key = key;
    return t;
}

gw_err gw_phttp_tool(gw_phttp_call *c, int key, const char *id, const char *name, const char *args,
                     size_t args_len)
{
    gw_err err = GW_OK;
    tool_slot *t = tool_slot_for(c, key, &err);
    if (t == NULL)
        return err;
    bool first = t->id == NULL && t->name == NULL;
    if (id != NULL && t->id == NULL && (t->id = dup_n(id, strlen(id))) == NULL)
        return GW_E_NOMEM;
    if (name != NULL && t->name == NULL) {
        if ((t->name = dup_n(name, strlen(name))) == NULL)
            return GW_E_NOMEM;
        t->is_format = c->format_tool != NULL && strcmp(name, c->format_tool) == 0;
    }
    if (t->is_format) /* the structured answer: text, streamed as text */
        return args_len > 0 ? gw_phttp_text(c, args, args_len) : GW_OK;
    if (args_len > GW_PHTTP_MAX_CONTENT - c->tool_bytes)
        return GW_E_LIMIT;
    if (t->args_len + args_len + 1 > t->args_cap) {
        size_t n = t->args_cap ? t->args_cap : 64;
        while (n < t->args_len + args_len + 1)
            n *= 2;
        char *b = realloc(t->args, n);
        if (b == NULL)
            return GW_E_NOMEM;
        t->args = b;
        t->args_cap = n;
    }
    if (args_len > 0)
        memcpy(t->args + t->args_len, args, args_len);
    t->args_len += args_len;
    t->args[t->args_len] = '\0';
    c->tool_bytes += args_len;
    int index = 0; /* among the real tool calls */
    for (tool_slot *p = c->tools; p != t; p++)
        index += p->is_format ? 0 : 1;
    if (first && t->id == NULL) { /* Ollama gives none: the first piece names it */
        char gen[32];
        snprintf(gen, sizeof gen, "call_%d", index);
        if ((t->id = dup_n(gen, strlen(gen))) == NULL)
            return GW_E_NOMEM;
    }
    if (c->in_data && c->req->stream) {
        token_seen(c);
        if (c->cbs.on_tool_delta != NULL && !c->cancelled) {
            gw_tool_call_delta d = {.index = index,
                                    .id = first ? t->id : NULL,
                                    .name = first ? t->name : NULL,
                                    .arguments = t->args + t->args_len - args_len};
            c->cbs.on_tool_delta(c->ud, &d);
        }
    }
    return GW_OK;
}

/* The assembled calls for on_done (ids made up where the provider gave none). */
static gw_err tools_result(gw_phttp_call *c, gw_provider_result *res)
{
    size_t n = 0;
    for (size_t i = 0; i < c->tool_count; i++)
        n += c->tools[i].is_format ? 0 : 1;
    if (n == 0)
        return GW_OK;
    c->tool_out = calloc(n, sizeof *c->tool_out);
    if (c->tool_out == NULL)
        return GW_E_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < c->tool_count; i++) {
        tool_slot *t = &c->tools[i];
        if (t->is_format)
            continue;
        if (t->name == NULL || t->name[0] == '\0')
            return GW_E_PROVIDER_BAD_RESPONSE; /* a call of no tool */
        c->tool_out[k++] =
            (gw_tool_call){.id = t->id, .name = t->name, .arguments = t->args ? t->args : "{}"};
        if (t->args_len == 0)
            c->tool_out[k - 1].arguments = "{}";
    }
    res->tool_calls = c->tool_out;
    res->tool_call_count = k;
    return GW_OK;
}

void gw_phttp_blocked(gw_phttp_call *c, const char *reason)
{
    char msg[160];
    int n = snprintf(msg, sizeof msg, "content blocked by the provider: %.100s",
                     reason != NULL ? reason : "unknown reason");
    c->blocked = true;
    snprintf(c->finish, sizeof c->finish, "content_filter");
    set_detail(c, msg, n > 0 ? (size_t)n : 0);
}

void gw_phttp_retry_after(gw_phttp_call *c, int64_t ms)
{
    if (ms >= 0)
        c->body_retry_after_ms = ms;
}

void gw_phttp_terminated(gw_phttp_call *c)
{
    c->terminated = true;
}

static void set_detail(gw_phttp_call *c, const char *text, size_t len)
{
    gw_redact(text, len, c->d->api_key, c->detail, sizeof c->detail);
    c->has_detail = true;
}

void gw_phttp_detail(gw_phttp_call *c, const char *text, size_t len)
{
    set_detail(c, text, len);
}

gw_err gw_phttp_inband_error(gw_phttp_call *c, json_t *err)
{
    char *s = json_dumps(err, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s != NULL) {
        set_detail(c, s, strlen(s));
        free(s);
    }
    return GW_E_STREAM_ERROR;
}

const char *gw_phttp_normalise_finish(const char *raw)
{
    static const struct {
        const char *raw, *norm;
    } map[] = {
        {"stop", "stop"},
        {"end_turn", "stop"},
        {"stop_sequence", "stop"},
        {"length", "length"},
        {"max_tokens", "length"},
        {"model_length", "length"},
        {"content_filter", "content_filter"},
        {"refusal", "content_filter"},
        {"safety", "content_filter"},
        {"tool_calls", "tool_calls"},
        {"function_call", "tool_calls"},
        {"tool_use", "tool_calls"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(raw, map[i].raw) == 0)
            return map[i].norm;
    return "stop";
}

static bool contains_ci(const char *s, size_t n, const char *needle)
{
    size_t l = strlen(needle);
    for (size_t i = 0; i + l <= n; i++)
        if (strncasecmp(s + i, needle, l) == 0)
            return true;
    return false;
}

gw_err gw_phttp_map_status(int status, const char *body, size_t len)
{
    if (status >= 200 && status < 300)
        return GW_OK;
    switch (status) {
    case 400:
    case 413:
    case 422:
        if (contains_ci(body, len, "context_length") || contains_ci(body, len, "context length") ||
            contains_ci(body, len, "context window") || contains_ci(body, len, "too long"))
            return GW_E_PROVIDER_CONTEXT_LENGTH;
        return GW_E_PROVIDER_BAD_REQUEST;
    case 401:
    case 403:
        return GW_E_PROVIDER_AUTH;
    case 408:
        return GW_E_PROVIDER_TOTAL_TIMEOUT;
    case 429:
        return GW_E_PROVIDER_RATE_LIMITED;
    default:
        return status >= 500 ? GW_E_PROVIDER_UNAVAILABLE : GW_E_PROVIDER_ERROR;
    }
}

/* ---- request bodies ---- */

static bool jbuf_room(gw_jbuf *j, size_t n)
{
    if (j->err != GW_OK)
        return false;
    if (j->len + n + 1 <= j->cap)
        return true;
    size_t c = j->cap ? j->cap : 1024;
    while (c < j->len + n + 1)
        c *= 2;
    char *b = realloc(j->b, c);
    if (b == NULL) {
        j->err = GW_E_NOMEM;
        return false;
    }
    j->b = b;
    j->cap = c;
    return true;
}

static void jbuf_put(gw_jbuf *j, const char *p, size_t n)
{
    if (!jbuf_room(j, n))
        return;
    memcpy(j->b + j->len, p, n);
    j->len += n;
    j->b[j->len] = '\0';
}

void gw_jbuf_lit(gw_jbuf *j, const char *text)
{
    jbuf_put(j, text, strlen(text));
}

/* Length of a valid UTF-8 sequence at p (the rules jansson checks), else 0. */
static size_t utf8_seq(const unsigned char *p)
{
    unsigned char c = p[0], lo = 0x80, hi = 0xBF;
    size_t n;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else
        return 0;
    if (p[1] < lo || p[1] > hi) /* a NUL terminator fails here too */
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return n;
}

void gw_jbuf_str_part(gw_jbuf *j, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p && j->err == GW_OK) {
        const unsigned char *run = p;
        while (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            p++;
        jbuf_put(j, (const char *)run, (size_t)(p - run));
        if (*p == '\0')
            break;
        if (*p >= 0x80) {
            size_t n = utf8_seq(p);
            if (n == 0) {
                if (j->err == GW_OK)
                    j->err = GW_E_INVALID_REQUEST;
                return;
            }
            jbuf_put(j, (const char *)p, n);
            p += n;
            continue;
        }
        char esc[8];
        switch (*p) {
        case '"':
            memcpy(esc, "\\\"", 3);
            break;
        case '\\':
            memcpy(esc, "\\\\", 3);
            break;
        case '\b':
            memcpy(esc, "\\b", 3);
            break;
        case '\f':
            memcpy(esc, "\\f", 3);
            break;
        case '\n':
            memcpy(esc, "\\n", 3);
            break;
        case '\r':
            memcpy(esc, "\\r", 3);
            break;
        case '\t':
            memcpy(esc, "\\t", 3);
            break;
        default:
            snprintf(esc, sizeof esc, "\\u%04X", *p);
        }
        gw_jbuf_lit(j, esc);
        p++;
    }
}

void gw_jbuf_str(gw_jbuf *j, const char *s)
{
    jbuf_put(j, "\"", 1);
    gw_jbuf_str_part(j, s);
    jbuf_put(j, "\"", 1);
}

void gw_jbuf_real(gw_jbuf *j, double v)
{
    char t[40];
    if (!isfinite(v)) { /* json_real refuses these */
        gw_jbuf_lit(j, "null");
        return;
    }
    snprintf(t, sizeof t - 2, "%.17g", v);
    if (strchr(t, '.') == NULL && strchr(t, 'e') == NULL)
        strcat(t, ".0");
    char *e = strchr(t, 'e');
    if (e != NULL) { /* jansson drops '+' and leading zeros of the exponent */
        char *d = e + 1, *q = e + 1;
        if (*q == '+')
            q++;
        else if (*q == '-')
            *d++ = *q++;
        while (*q == '0' && q[1] != '\0')
            q++;
        memmove(d, q, strlen(q) + 1);
    }
    gw_jbuf_lit(j, t);
}

void gw_jbuf_int(gw_jbuf *j, long long v)
{
    char t[24];
    snprintf(t, sizeof t, "%lld", v);
    gw_jbuf_lit(j, t);
}

void gw_jbuf_json(gw_jbuf *j, const char *text, bool object_only)
{
    if (j->err != GW_OK)
        return;
    json_error_t je;
    json_t *v = text != NULL ? json_loads(text, JSON_DECODE_ANY, &je) : NULL;
    char *out = NULL;
    if (v != NULL && (!object_only || json_is_object(v)))
        out = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(v);
    if (out == NULL) {
        j->err = GW_E_INVALID_REQUEST; /* not JSON (or not an object): a caller's error */
        return;
    }
    gw_jbuf_lit(j, out);
    free(out);
}

static void write_message(gw_jbuf *j, const char *role, const char *content, const char *name)
{
    gw_jbuf_lit(j, "{\"role\":");
    gw_jbuf_str(j, role);
    gw_jbuf_lit(j, ",\"content\":");
    gw_jbuf_str(j, content);
    if (name != NULL) {
        gw_jbuf_lit(j, ",\"name\":");
        gw_jbuf_str(j, name);
    }
    gw_jbuf_lit(j, "}");
}

/* An ASSISTANT message with tool calls, OpenAI or Ollama shape. */
static void write_assistant_calls(gw_jbuf *j, const gw_message *m, gw_msg_style style)
{
    gw_jbuf_lit(j, "{\"role\":\"assistant\",\"content\":");
    if (style == GW_MSGS_OPENAI && (m->content == NULL || m->content[0] == '\0'))
        gw_jbuf_lit(j, "null");
    else
        gw_jbuf_str(j, m->content ? m->content : "");
    gw_jbuf_lit(j, ",\"tool_calls\":[");
    for (size_t i = 0; i < m->tool_call_count; i++) {
        const gw_tool_call *t = &m->tool_calls[i];
        gw_jbuf_lit(j, i ? "," : "");
        if (style == GW_MSGS_OPENAI) {
            gw_jbuf_lit(j, "{\"id\":");
            gw_jbuf_str(j, t->id);
            gw_jbuf_lit(j, ",\"type\":\"function\",\"function\":{\"name\":");
            gw_jbuf_str(j, t->name);
            gw_jbuf_lit(j, ",\"arguments\":");
            gw_jbuf_str(j, t->arguments && t->arguments[0] ? t->arguments : "{}");
            gw_jbuf_lit(j, "}}");
        } else { /* Ollama: arguments as an object, no ids */
            gw_jbuf_lit(j, "{\"function\":{\"name\":");
            gw_jbuf_str(j, t->name);
            gw_jbuf_lit(j, ",\"arguments\":");
            gw_jbuf_json(j, t->arguments && t->arguments[0] ? t->arguments : "{}", true);
            gw_jbuf_lit(j, "}}");
        }
    }
    gw_jbuf_lit(j, "]}");
}

/* A TOOL message answering a call, OpenAI or Ollama shape. */
static void write_tool_result(gw_jbuf *j, const gw_message *m, gw_msg_style style)
{
    gw_jbuf_lit(j, "{\"role\":\"tool\",\"content\":");
    gw_jbuf_str(j, m->content ? m->content : "");
    if (style == GW_MSGS_OPENAI) {
        gw_jbuf_lit(j, ",\"tool_call_id\":");
        gw_jbuf_str(j, m->tool_call_id);
    } else if (m->name != NULL) {
        gw_jbuf_lit(j, ",\"tool_name\":");
        gw_jbuf_str(j, m->name);
    }
    gw_jbuf_lit(j, "}");
}

/* Anthropic: text and tool_use blocks of an ASSISTANT message with calls. */
static void write_anthropic_calls(gw_jbuf *j, const gw_message *m)
{
    gw_jbuf_lit(j, "{\"role\":\"assistant\",\"content\":[");
    bool text = m->content != NULL && m->content[0] != '\0';
    if (text) {
        gw_jbuf_lit(j, "{\"type\":\"text\",\"text\":");
        gw_jbuf_str(j, m->content);
        gw_jbuf_lit(j, "}");
    }
    for (size_t i = 0; i < m->tool_call_count; i++) {
        const gw_tool_call *t = &m->tool_calls[i];
        gw_jbuf_lit(j, text || i ? ",{\"type\":\"tool_use\",\"id\":"
                                 : "{\"type\":\"tool_use\",\"id\":");
        gw_jbuf_str(j, t->id);
        gw_jbuf_lit(j, ",\"name\":");
        gw_jbuf_str(j, t->name);
        gw_jbuf_lit(j, ",\"input\":");
        gw_jbuf_json(j, t->arguments && t->arguments[0] ? t->arguments : "{}", true);
        gw_jbuf_lit(j, "}");
    }
    gw_jbuf_lit(j, "]}");
}

static bool is_tool_result(const gw_message *m)
{
    return m->role == GW_ROLE_TOOL && m->tool_call_id != NULL;
}

/* Anthropic: consecutive TOOL results as one user turn of tool_result blocks;
 * returns how many messages it wrote. */
static size_t write_anthropic_results(gw_jbuf *j, const gw_message *m, size_t left)
{
    size_t n = 0;
    gw_jbuf_lit(j, "{\"role\":\"user\",\"content\":[");
    for (; n < left && is_tool_result(&m[n]); n++) {
        gw_jbuf_lit(j, n ? ",{\"type\":\"tool_result\",\"tool_use_id\":"
                         : "{\"type\":\"tool_result\",\"tool_use_id\":");
        gw_jbuf_str(j, m[n].tool_call_id);
        gw_jbuf_lit(j, ",\"content\":");
        gw_jbuf_str(j, m[n].content ? m[n].content : "");
        gw_jbuf_lit(j, "}");
    }
    gw_jbuf_lit(j, "]}");
    return n;
}

void gw_phttp_write_messages(gw_jbuf *j, const gw_request *req, bool include_system,
                             gw_msg_style style)
{
    static const char *const roles[] = {"system", "user", "assistant", "tool"};
    bool anthropic = style == GW_MSGS_ANTHROPIC;
    bool first = true;
    gw_jbuf_lit(j, "[");
    if (include_system && req->system_prompt != NULL) {
        write_message(j, "system", req->system_prompt, NULL);
        first = false;
    }
    for (size_t i = 0; i < req->message_count; i++) {
        const gw_message *m = &req->messages[i];
        if (!include_system && m->role == GW_ROLE_SYSTEM)
            continue;
        if (!first)
            gw_jbuf_lit(j, ",");
        first = false;
        if (m->role == GW_ROLE_ASSISTANT && m->tool_call_count > 0) {
            if (anthropic)
                write_anthropic_calls(j, m);
            else
                write_assistant_calls(j, m, style);
            continue;
        }
        if (is_tool_result(m)) {
            if (anthropic)
                i += write_anthropic_results(j, m, req->message_count - i) - 1;
            else
                write_tool_result(j, m, style);
            continue;
        }
        const char *role = (unsigned)m->role < GW_ROLE__COUNT ? roles[m->role] : "user";
        if (anthropic && strcmp(role, "tool") == 0)
            role = "user";
        write_message(j, role, m->content ? m->content : "", anthropic ? NULL : m->name);
    }
    gw_jbuf_lit(j, "]");
}

void gw_phttp_write_function_tools(gw_jbuf *j, const gw_request *req)
{
    if (req->tool_count == 0)
        return;
    gw_jbuf_lit(j, ",\"tools\":[");
    for (size_t i = 0; i < req->tool_count; i++) {
        const gw_tool *t = &req->tools[i];
        gw_jbuf_lit(j, i ? ",{\"type\":\"function\",\"function\":{\"name\":"
                         : "{\"type\":\"function\",\"function\":{\"name\":");
        gw_jbuf_str(j, t->name);
        if (t->description != NULL) {
            gw_jbuf_lit(j, ",\"description\":");
            gw_jbuf_str(j, t->description);
        }
        gw_jbuf_lit(j, ",\"parameters\":");
        gw_jbuf_json(j, t->parameters ? t->parameters : GW_PHTTP_EMPTY_SCHEMA, true);
        gw_jbuf_lit(j, "}}");
    }
    gw_jbuf_lit(j, "]");
}

gw_tool_mode gw_phttp_tool_mode(const gw_request *req)
{
    const char *tc = req->tool_choice;
    if (req->tool_count == 0 || (tc != NULL && strcmp(tc, "none") == 0))
        return GW_TOOLS_NONE;
    if (tc == NULL || strcmp(tc, "auto") == 0)
        return GW_TOOLS_AUTO;
    if (strcmp(tc, "required") == 0)
        return GW_TOOLS_REQUIRED;
    return GW_TOOLS_NAMED;
}

/* ---- stream input ---- */

static gw_err handle_json(gw_phttp_call *c, const char *event, const char *text, size_t len)
{
    if (c->dia->on_event_raw != NULL) {
        bool handled = false;
        gw_err err = c->dia->on_event_raw(c, event, text, len, &handled);
        if (handled)
            return err;
    }
    json_error_t je;
    json_t *root = json_loadb(text, len, 0, &je);
    if (root == NULL) {
        set_detail(c, text, len);
        return GW_E_STREAM_ERROR;
    }
    gw_err err = c->dia->on_event(c, event, root);
    json_decref(root);
    return err;
}

/* One SSE event or NDJSON line: after the terminator ([DONE] or the
 * dialect's own) whatever follows is ignored. */
static gw_err text_event(gw_phttp_call *c, const char *event, const char *data, size_t len)
{
    if (c->terminated)
        return GW_OK;
    if (c->kind->stream_framing == GW_RESP_SSE && strcmp(data, "[DONE]") == 0) {
        c->terminated = true;
        return GW_OK;
    }
    return handle_json(c, event, data, len);
}

static gw_err drain_sse(gw_phttp_call *c)
{
    for (;;) {
        gw_sse_event ev;
        bool got;
        gw_err err = gw_sse_next(&c->sse, &ev, &got);
        if (err != GW_OK || !got)
            return err;
        if ((err = text_event(c, ev.event, ev.data, ev.data_len)) != GW_OK)
            return err;
    }
}

static gw_err drain_ndjson(gw_phttp_call *c)
{
    for (;;) {
        const char *line;
        size_t len;
        bool got;
        gw_err err = gw_ndjson_next(&c->nd, &line, &len, &got);
        if (err != GW_OK || !got)
            return err;
        if ((err = text_event(c, NULL, line, len)) != GW_OK)
            return err;
    }
}

/* One event stream message: an event goes to the dialect's on_event with its
 * :event-type; an exception (or error) message ends the call with the error
 * the dialect's on_exception names. Unlike SSE, messages after the
 * terminator are still read (Bedrock's usage follows messageStop). */
static gw_err es_message(gw_phttp_call *c, const gw_es_message *m)
{
    size_t tl = 0, kl = 0;
    const char *mt = gw_es_header_str(m, ":message-type", &tl);
    if (mt != NULL && !(tl == 5 && memcmp(mt, "event", 5) == 0)) {
        const char *kind = gw_es_header_str(m, ":exception-type", &kl);
        if (kind == NULL)
            kind = gw_es_header_str(m, ":error-code", &kl);
        char type[64];
        snprintf(type, sizeof type, "%.*s", (int)(kl < 63 ? kl : 63), kind ? kind : "");
        set_detail(c, m->payload, m->payload_len);
        gw_err err = c->dia->on_exception != NULL
                         ? c->dia->on_exception(c, type, m->payload, m->payload_len)
                         : GW_E_STREAM_ERROR;
        c->stream_err = err != GW_OK ? err : GW_E_STREAM_ERROR;
        return c->stream_err;
    }
    const char *et = gw_es_header_str(m, ":event-type", &tl);
    char event[64];
    if (et == NULL || tl >= sizeof event) {
        static const char msg[] = "event stream message without a usable :event-type";
        set_detail(c, msg, sizeof msg - 1);
        return GW_E_STREAM_ERROR;
    }
    memcpy(event, et, tl);
    event[tl] = '\0';
    return handle_json(c, event, m->payload, m->payload_len);
}

static gw_err drain_es(gw_phttp_call *c)
{
    for (;;) {
        gw_es_message m;
        bool got;
        gw_err err = gw_es_next(&c->es, &m, &got);
        if (err != GW_OK) {
            const char *why = gw_es_why_str(gw_es_error(&c->es));
            set_detail(c, why, strlen(why));
            return err;
        }
        if (!got)
            return GW_OK;
        if ((err = es_message(c, &m)) != GW_OK)
            return err;
    }
}

/* What a stream input error ends the call with. */
static gw_err stream_outcome(gw_phttp_call *c, gw_err err)
{
    if (err == GW_E_LIMIT && !c->has_detail) {
        static const char msg[] = "stream event or answer over the size limit";
        set_detail(c, msg, sizeof msg - 1);
    }
    if (err != GW_OK && c->stream_err != GW_OK)
        return c->stream_err; /* an exception message: its own error (a 429 class...) */
    return err == GW_OK ? GW_OK : GW_E_STREAM_ERROR;
}

static gw_err on_data(void *ud, const char *p, size_t n)
{
    gw_phttp_call *c = ud;
    if (c->cancelled)
        return GW_E_SHUTTING_DOWN;
    c->in_data = true;
    gw_err err;
    if (c->kind->stream_framing == GW_RESP_EVENTSTREAM) {
        err = gw_es_feed(&c->es, p, n);
        if (err == GW_OK)
            err = drain_es(c);
        else
            set_detail(c, gw_es_why_str(gw_es_error(&c->es)),
                       strlen(gw_es_why_str(gw_es_error(&c->es))));
    } else if (c->kind->stream_framing == GW_RESP_NDJSON) {
        err = gw_ndjson_feed(&c->nd, p, n);
        if (err == GW_OK)
            err = drain_ndjson(c);
    } else {
        err = gw_sse_feed(&c->sse, p, n);
        if (err == GW_OK)
            err = drain_sse(c);
    }
    c->in_data = false;
    if (c->cancelled)
        return GW_E_SHUTTING_DOWN;
    return stream_outcome(c, err);
}

/* ---- completion ---- */

static void call_free(gw_phttp_call *c)
{
    for (size_t i = 0; i < c->hdr_count; i++) {
        if (!c->hdr_heap[i])
            continue;
        memset(c->hdrs[i], 0, strlen(c->hdrs[i])); /* headers may hold the key */
        free(c->hdrs[i]);
    }
    memset(c->hstore, 0, c->hstore_len);
    gw_es_cleanup(&c->es);
    gw_sse_cleanup(&c->sse);
    gw_ndjson_cleanup(&c->nd);
    free(c->content);
    free(c->scratch);
    free(c->body.b);
    for (size_t i = 0; i < c->tool_count; i++) {
        free(c->tools[i].id);
        free(c->tools[i].name);
        free(c->tools[i].args);
    }
    free(c->tools);
    free(c->tool_out);
    free(c);
}

static gw_err parse_full_body(gw_phttp_call *c, const gw_http_result *hr)
{
    bool handled = false;
    gw_err err = GW_OK;
    if (c->dia->parse_full_raw != NULL)
        err = c->dia->parse_full_raw(c, hr->body, hr->body_len, &handled);
    if (!handled) {
        json_error_t je;
        json_t *root = json_loadb(hr->body, hr->body_len, 0, &je);
        if (root == NULL) {
            set_detail(c, hr->body, hr->body_len);
            return GW_E_PROVIDER_BAD_RESPONSE;
        }
        err = c->dia->parse_full(c, root);
        json_decref(root);
    }
    if (err == GW_E_LIMIT)
        err = GW_E_PROVIDER_BAD_RESPONSE;
    return err;
}

/* The outcome of a transfer that delivered a whole response. */
static gw_err judge_response(gw_phttp_call *c, const gw_http_result *hr)
{
    gw_err err = c->dia->map_status != NULL && (hr->status < 200 || hr->status >= 300)
                     ? c->dia->map_status(c, hr->status, hr->body, hr->body_len)
                     : gw_phttp_map_status(hr->status, hr->body, hr->body_len);
    if (err != GW_OK) {
        set_detail(c, hr->body, hr->body_len);
        return err;
    }
    if (!c->req->stream) {
        err = parse_full_body(c, hr);
        return err == GW_OK && c->blocked ? GW_E_PROVIDER_CONTENT_BLOCKED : err;
    }
    gw_resp_framing f = c->kind->stream_framing;
    bool pending = f == GW_RESP_NDJSON        ? gw_ndjson_pending(&c->nd)
                   : f == GW_RESP_EVENTSTREAM ? gw_es_pending(&c->es)
                                              : gw_sse_pending(&c->sse);
    if (!c->terminated || pending) {
        if (!c->has_detail) {
            static const char msg[] = "stream ended without its terminator";
            set_detail(c, msg, sizeof msg - 1);
        }
        return GW_E_STREAM_ERROR;
    }
    return c->blocked ? GW_E_PROVIDER_CONTENT_BLOCKED : GW_OK;
}

static gw_err judge(gw_phttp_call *c, const gw_http_result *hr)
{
    if (hr->err == GW_OK)
        return judge_response(c, hr);
    if (hr->transport_detail != NULL)
        set_detail(c, hr->transport_detail, strlen(hr->transport_detail));
    bool ok_status = hr->status >= 200 && hr->status < 300;
    switch (hr->err) {
    case GW_E_PROVIDER_TRANSPORT:
        /* a 2xx that broke mid-way: a truncated stream or body */
        if (ok_status)
            return c->req->stream ? GW_E_STREAM_ERROR : GW_E_PROVIDER_TRANSPORT;
        return GW_E_PROVIDER_TRANSPORT;
    case GW_E_LIMIT:
        return c->req->stream ? GW_E_STREAM_ERROR : GW_E_PROVIDER_BAD_RESPONSE;
    default:
        return hr->err;
    }
}

static void on_http_header(void *ud, const char *line, size_t n)
{
    gw_phttp_call *c = ud;
    if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        memset(&c->rl, 0, sizeof c->rl); /* a new response (after 1xx) */
        return;
    }
    /* Only Anthropic's resets are times: the wall clock is read for them alone. */
    int64_t now_ms = 0;
    if (n > 20 && strncasecmp(line, "anthropic-ratelimit-", 20) == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
    gw_ratelimit_header(&c->rl, line, n, now_ms);
}

static void on_http_done(void *ud, const gw_http_result *hr)
{
    gw_phttp_call *c = ud;
    if (c->cancelled) {
        call_free(c);
        return;
    }
    gw_provider_result res = {0};
    res.err = judge(c, hr);
    res.http_status = hr->status;
    res.retry_after_ms = hr->retry_after_ms >= 0 ? hr->retry_after_ms : c->body_retry_after_ms;
    res.ratelimit = c->rl;
    res.error_detail = c->has_detail ? c->detail : NULL;
    res.streamed_any = c->streamed_any;
    res.latency_ms = hr->total_ms;
    res.ttft_ms = c->req->stream && c->streamed_any ? c->ttft_ms : hr->first_byte_ms;
    if (res.err == GW_OK)
        res.err = tools_result(c, &res);
    if (res.err == GW_OK) {
        res.content = c->content ? c->content : "";
        res.content_len = c->content_len;
        res.finish_reason = c->finish[0] ? c->finish : "stop";
        /* Ollama says "stop" after tool calls; a structured answer given
         * through a forced tool (Anthropic) is a plain stop */
        bool format_used = false;
        for (size_t i = 0; i < c->tool_count; i++)
            format_used = format_used || c->tools[i].is_format;
        if (res.tool_call_count > 0)
            res.finish_reason = "tool_calls";
        else if (format_used && strcmp(res.finish_reason, "tool_calls") == 0)
            res.finish_reason = "stop";
        res.usage = c->usage;
        if (!c->has_prompt_usage)
            res.usage.prompt_tokens = gw_estimate_prompt_tokens(c->req);
        if (!c->has_completion_usage)
            res.usage.completion_tokens =
                gw_estimate_tokens(res.content) + (int32_t)(c->tool_bytes / 4);
        res.usage.total_tokens = res.usage.prompt_tokens + res.usage.completion_tokens;
    } else {
        res.tool_calls = NULL;
        res.tool_call_count = 0;
        res.content = "";
        res.finish_reason = res.err == GW_E_PROVIDER_CONTENT_BLOCKED ? "content_filter" : "error";
    }
    gw_provider_cbs cbs = c->cbs;
    void *cud = c->ud;
    cbs.on_done(cud, &res);
    call_free(c);
}

/* ---- start / cancel ---- */

static gw_err add_common_headers(gw_phttp_call *c, const gw_deployment *d, const gw_request *req)
{
    gw_err err = gw_phttp_header(c, "Content-Type", "application/json");
    gw_resp_framing f = c->kind->stream_framing;
    if (err == GW_OK && req->stream)
        err = gw_phttp_header(c, "Accept",
                              f == GW_RESP_NDJSON        ? "application/x-ndjson"
                              : f == GW_RESP_EVENTSTREAM ? "application/vnd.amazon.eventstream"
                                                         : "text/event-stream");
    if (err == GW_OK && req->request_id != NULL && req->request_id[0] != '\0')
        err = gw_phttp_header(c, "x-request-id", req->request_id);
    if (err == GW_OK && req->traceparent != NULL)
        err = gw_phttp_header(c, "traceparent", req->traceparent);
    if (err == GW_OK && req->tracestate != NULL)
        err = gw_phttp_header(c, "tracestate", req->tracestate);
    if (err == GW_OK && c->dia->add_headers != NULL)
        err = c->dia->add_headers(c, d);
    if (err == GW_OK)
        err = gw_phttp_auth(c, d);
    for (size_t i = 0; err == GW_OK && i < d->extra_header_count; i++) {
        if (c->hdr_count == GW_HTTP_MAX_HEADERS - 1)
            return GW_E_LIMIT;
        size_t n = strlen(d->extra_headers[i]) + 1;
        char *h = header_slot(c, n);
        if (h == NULL)
            return GW_E_NOMEM;
        memcpy(h, d->extra_headers[i], n);
    }
    return err;
}

gw_err gw_phttp_check_request(const gw_request *req)
{
    for (size_t i = 0; i < req->tool_count; i++) {
        const char *n = req->tools[i].name;
        if (n == NULL || n[0] == '\0')
            return GW_E_INVALID_REQUEST;
        for (size_t k = 0; k < i; k++)
            if (strcmp(req->tools[k].name, n) == 0)
                return GW_E_INVALID_REQUEST; /* two tools of one name */
    }
    if (gw_phttp_tool_mode(req) == GW_TOOLS_NAMED) {
        bool known = false;
        for (size_t i = 0; i < req->tool_count && !known; i++)
            known = strcmp(req->tools[i].name, req->tool_choice) == 0;
        if (!known)
            return GW_E_INVALID_REQUEST; /* tool_choice names no tool of the request */
    }
    const gw_response_format *f = req->response_format;
    if (f != NULL) {
        bool schema = f->type != NULL && strcmp(f->type, "json_schema") == 0;
        if (f->type == NULL ||
            (!schema && strcmp(f->type, "json_object") != 0 && strcmp(f->type, "text") != 0))
            return GW_E_INVALID_REQUEST;
        if (schema && f->schema == NULL)
            return GW_E_INVALID_REQUEST;
    }
    return GW_OK;
}

static gw_err build_opts(gw_phttp_call *c, gw_http_opts *o, char *url, size_t url_len,
                         gw_jbuf *body)
{
    gw_err err0 = gw_phttp_check_request(c->req);
    if (err0 != GW_OK)
        return err0;
    const gw_deployment *d = c->d;
    const gw_provider_kind_info *k = c->kind;
    gw_provider_url_fn make_url = k->url != NULL ? k->url : gw_provider_url_base_path;
    gw_err err = make_url(k, d, c->req->stream, url, url_len);
    if (err != GW_OK)
        return err;
    err = add_common_headers(c, d, c->req);
    if (err != GW_OK)
        return err;
    c->dia->write_body(body, d, c->req);
    if (body->err != GW_OK)
        return body->err;
    if (k->sign != NULL && (err = k->sign(k, c, d, "POST", url, body->b, body->len)) != GW_OK)
        return err;
    memset(o, 0, sizeof *o);
    o->url = url;
    for (size_t i = 0; i < c->hdr_count; i++)
        o->headers[i] = c->hdrs[i];
    o->header_count = c->hdr_count;
    o->body = body->b;
    o->body_len = body->len;
    o->body_borrowed = true; /* freed with the call, after http_client let go */
    o->stream = c->req->stream;
    o->connect_timeout_ms = d->connect_timeout_ms;
    o->first_token_timeout_ms = d->first_token_timeout_ms;
    o->idle_timeout_ms = d->idle_timeout_ms;
    o->total_timeout_ms = d->total_timeout_ms;
    o->max_body_bytes = GW_PHTTP_MAX_CONTENT + 64 * 1024;
    c->transport = (gw_http_transport){.ca_file = d->tls_ca_file,
                                       .cert_file = d->tls_cert_file,
                                       .key_file = d->tls_key_file,
                                       .http1_only = d->http_version == GW_HTTP_VERSION_1_1};
    o->transport = &c->transport;
    return GW_OK;
}

/* The row's framing of the answer req asks for is one this file parses. */
static bool framing_ok(const gw_provider_kind_info *k, const gw_request *req)
{
    if (req->stream)
        return k->stream_framing == GW_RESP_SSE || k->stream_framing == GW_RESP_NDJSON ||
               k->stream_framing == GW_RESP_EVENTSTREAM;
    return k->full_framing == GW_RESP_JSON;
}

static gw_phttp_call *call_new(const gw_provider_kind_info *k, const gw_deployment *d,
                               const gw_request *req, const gw_provider_cbs *cbs, void *ud)
{
    gw_phttp_call *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->kind = k;
    c->dia = k->dialect;
    c->d = d;
    c->req = req;
    c->cbs = *cbs;
    c->ud = ud;
    c->format_tool = c->dia->format_tool != NULL ? c->dia->format_tool(req) : NULL;
    c->body_retry_after_ms = -1;
    gw_sse_init(&c->sse, GW_PHTTP_MAX_EVENT);
    gw_ndjson_init(&c->nd, GW_PHTTP_MAX_EVENT);
    gw_es_init(&c->es, GW_PHTTP_MAX_EVENT);
    return c;
}

gw_err gw_phttp_start(gw_http *h, const gw_provider_kind_info *k, const gw_deployment *d,
                      const gw_request *req, const gw_provider_cbs *cbs, void *ud,
                      gw_phttp_call **out)
{
    if (h == NULL || k == NULL || k->dialect == NULL || !framing_ok(k, req))
        return GW_E_PROVIDER_NOT_CONFIGURED;
    gw_phttp_call *c = call_new(k, d, req, cbs, ud);
    if (c == NULL)
        return GW_E_NOMEM;
    char url[2048];
    gw_http_opts o;
    gw_err err = build_opts(c, &o, url, sizeof url, &c->body);
    if (err == GW_OK) {
        gw_http_cbs hcbs = {
            .on_data = on_data, .on_done = on_http_done, .on_header = on_http_header};
        err = gw_http_start(h, &o, &hcbs, c, &c->http);
    }
    if (err != GW_OK) {
        call_free(c);
        return err;
    }
    c->loop = gw_http_loop(h);
    c->start_ms = uv_now(c->loop);
    *out = c;
    return GW_OK;
}

void gw_phttp_cancel(gw_phttp_call *c)
{
    if (c->in_data) {
        c->cancelled = true; /* inside a curl callback: abort on return */
        return;
    }
    gw_http_cancel(c->http);
    call_free(c);
}

/* ---- replay (tests) ---- */

gw_err gw_phttp_replay(const gw_provider_kind_info *k, const gw_deployment *d,
                       const gw_request *req, int status, const char *body, size_t len,
                       const gw_phttp_event *events, size_t n, const gw_provider_cbs *cbs, void *ud)
{
    if (k == NULL || k->dialect == NULL || !framing_ok(k, req))
        return GW_E_PROVIDER_NOT_CONFIGURED;
    gw_phttp_call *c = call_new(k, d, req, cbs, ud);
    if (c == NULL)
        return GW_E_NOMEM;
    gw_http_result hr = {.status = status, .retry_after_ms = -1, .body = body, .body_len = len};
    if (req->stream && status >= 200 && status < 300) {
        gw_err err = GW_OK;
        c->in_data = true;
        for (size_t i = 0; i < n && err == GW_OK; i++) {
            const gw_phttp_event *e = &events[i];
            err = k->stream_framing == GW_RESP_EVENTSTREAM
                      ? handle_json(c, e->event, e->data, e->len)
                      : text_event(c, e->event, e->data, e->len);
        }
        c->in_data = false;
        hr.err = stream_outcome(c, err);
        hr.body = NULL;
        hr.body_len = 0;
    }
    on_http_done(c, &hr);
    return GW_OK;
}
