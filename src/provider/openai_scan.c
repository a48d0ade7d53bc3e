/*
 * openai_scan: one forward pass over an OpenAI chat completion or chunk;
 * see openai_scan.h. Each object on a wanted path is read by members() with
 * a function for its keys; everything else goes to gw_jcur_skip, which
 * validates it as gw_jscan does. Depths are counted as in gw_jscan (the top
 * object at 0), so the nesting limit falls where it falls there.
 */
#include "provider/openai_scan.h"

#include <string.h>

#include "provider/jscan_private.h"

/* The keys on wanted paths, one bit each: gw_jscan falls back when one of
 * them comes twice in its object (jansson keeps the last). */
enum {
    SEEN_ERROR = 1u << 0,
    SEEN_CHOICES = 1u << 1,
    SEEN_USAGE = 1u << 2,
    SEEN_MSG = 1u << 3,
    SEEN_FINISH = 1u << 4,
    SEEN_CONTENT = 1u << 5,
    SEEN_TOOLS = 1u << 6,
    SEEN_PROMPT = 1u << 7,
    SEEN_COMPLETION = 1u << 8,
};

typedef struct oscan {
    gw_jcur c;
    gw_jscan_field *f;
    const char *msg_key;
    size_t msg_len;
    unsigned seen;
    unsigned top_members;  /* members of the top object met so far */
    const char *resume_at; /* the quote of the first wanted key, when not the first member */
} oscan;

/* Consumes the value of key k (c.p just past its colon) at depth. */
typedef bool (*member_fn)(oscan *s, const char *k, size_t kl, int depth);

#define IS_KEY(k, kl, lit) ((kl) == sizeof(lit) - 1 && memcmp((k), (lit), sizeof(lit) - 1) == 0)

static bool first(oscan *s, unsigned bit)
{
    if (s->seen & bit)
        return false;
    s->seen |= bit;
    return true;
}

/* From a member's key (c->p after the '{' or ',' and whitespace) to the end
 * of an object at depth: each member's value, at depth + 1, to fn. */
static bool members_from(oscan *s, int depth, member_fn fn)
{
    gw_jcur *c = &s->c;
    for (;;) {
        const char *k;
        size_t kl;
        bool esc;
        if (c->p == c->end || *c->p != '"' || !gw_jcur_string(c, &k, &kl, &esc) || esc)
            return false;
        gw_jcur_ws(c);
        if (c->p == c->end || *c->p++ != ':' || !fn(s, k, kl, depth + 1))
            return false;
        gw_jcur_ws(c);
        if (c->p == c->end)
            return false;
        char b = *c->p++;
        if (b == '}')
            return true;
        if (b != ',')
            return false;
        gw_jcur_ws(c);
    }
}

/* At '{' of an object at depth: its members. */
static bool members(oscan *s, int depth, member_fn fn)
{
    gw_jcur *c = &s->c;
    c->p++;
    gw_jcur_ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        return true;
    }
    return members_from(s, depth, fn);
}

/* A value at depth: an object's members go to fn (and f, when given, records
 * the object); anything else is read into f, or only validated. */
static bool object_or(oscan *s, int depth, member_fn fn, gw_jscan_field *f)
{
    gw_jcur_ws(&s->c);
    if (s->c.p == s->c.end || *s->c.p != '{' || depth >= GW_JSCAN_MAX_DEPTH)
        return f != NULL ? gw_jcur_take(&s->c, depth, f) : gw_jcur_skip(&s->c, depth);
    if (f != NULL) {
        f->kind = GW_JSON_OBJECT;
        f->raw = s->c.p;
    }
    return members(s, depth, fn);
}

static bool msg_member(oscan *s, const char *k, size_t kl, int depth)
{
    if (IS_KEY(k, kl, "content"))
        return first(s, SEEN_CONTENT) && gw_jcur_take(&s->c, depth, &s->f[GW_OAI_TEXT]);
    if (IS_KEY(k, kl, "tool_calls"))
        return first(s, SEEN_TOOLS) && gw_jcur_take(&s->c, depth, &s->f[GW_OAI_TOOLS]);
    return gw_jcur_skip(&s->c, depth);
}

static bool choice_member(oscan *s, const char *k, size_t kl, int depth)
{
    if (kl == s->msg_len && memcmp(k, s->msg_key, kl) == 0)
        return first(s, SEEN_MSG) && object_or(s, depth, msg_member, &s->f[GW_OAI_MSG]);
    if (IS_KEY(k, kl, "finish_reason"))
        return first(s, SEEN_FINISH) && gw_jcur_take(&s->c, depth, &s->f[GW_OAI_FINISH]);
    return gw_jcur_skip(&s->c, depth);
}

static bool usage_member(oscan *s, const char *k, size_t kl, int depth)
{
    if (IS_KEY(k, kl, "prompt_tokens"))
        return first(s, SEEN_PROMPT) && gw_jcur_take(&s->c, depth, &s->f[GW_OAI_PROMPT]);
    if (IS_KEY(k, kl, "completion_tokens"))
        return first(s, SEEN_COMPLETION) && gw_jcur_take(&s->c, depth, &s->f[GW_OAI_COMPLETION]);
    return gw_jcur_skip(&s->c, depth);
}

/* The value of "choices" at depth: of an array, element 0 is the choice. */
static bool choices(oscan *s, int depth)
{
    gw_jcur *c = &s->c;
    gw_jcur_ws(c);
    if (c->p == c->end || *c->p != '[')
        return gw_jcur_skip(c, depth);
    c->p++;
    gw_jcur_ws(c);
    if (c->p < c->end && *c->p == ']') {
        c->p++;
        return true;
    }
    if (!object_or(s, depth + 1, choice_member, &s->f[GW_OAI_CHOICE]))
        return false;
    for (;;) {
        gw_jcur_ws(c);
        if (c->p == c->end)
            return false;
        char b = *c->p++;
        if (b == ']')
            return true;
        if (b != ',' || !gw_jcur_skip(c, depth + 1))
            return false;
    }
}

/* The first wanted key, when other members came before it: where the next
 * event of the stream may resume (k is the key's body, after its quote). */
static void mark_resume(oscan *s, const char *k)
{
    if (s->seen == 0 && s->top_members > 1)
        s->resume_at = k - 1;
}

static bool top_member(oscan *s, const char *k, size_t kl, int depth)
{
    s->top_members++;
    if ((IS_KEY(k, kl, "choices") || IS_KEY(k, kl, "usage") || IS_KEY(k, kl, "error")))
        mark_resume(s, k);
    if (IS_KEY(k, kl, "choices"))
        return first(s, SEEN_CHOICES) && choices(s, depth);
    if (IS_KEY(k, kl, "usage"))
        return first(s, SEEN_USAGE) && object_or(s, depth, usage_member, NULL);
    if (IS_KEY(k, kl, "error"))
        return first(s, SEEN_ERROR) && gw_jcur_take(&s->c, depth, &s->f[GW_OAI_ERROR]);
    return gw_jcur_skip(&s->c, depth);
}

/* Resumes after the bytes prefix holds when doc opens with them. */
static bool scan_top(oscan *s, const gw_openai_prefix *prefix)
{
    size_t len = (size_t)(s->c.end - s->c.p);
    if (prefix != NULL && prefix->len > 0 && prefix->len < len &&
        memcmp(s->c.p, prefix->bytes, prefix->len) == 0) {
        s->c.p += prefix->len;
        s->top_members = 2; /* past at least one member; nothing wanted seen */
        return members_from(s, 0, top_member);
    }
    gw_jcur_ws(&s->c);
    return s->c.p < s->c.end && *s->c.p == '{' && members(s, 0, top_member);
}

gw_jscan_result gw_openai_scan(const char *doc, size_t len, const char *msg_key,
                               gw_jscan_field f[GW_OAI__COUNT], gw_openai_prefix *prefix)
{
    for (size_t i = 0; i < GW_OAI__COUNT; i++)
        gw_jfield_clear(&f[i]);
    oscan s = {
        .c = {.p = doc, .end = doc + len}, .f = f, .msg_key = msg_key, .msg_len = strlen(msg_key)};
    if (!scan_top(&s, prefix))
        return GW_JSCAN_FALLBACK;
    gw_jcur_ws(&s.c);
    if (s.c.p != s.c.end)
        return GW_JSCAN_FALLBACK;
    if (prefix != NULL && s.resume_at != NULL) {
        size_t n = (size_t)(s.resume_at - doc);
        if (n <= GW_OAI_PREFIX_MAX && (n != prefix->len || memcmp(prefix->bytes, doc, n) != 0)) {
            memcpy(prefix->bytes, doc, n);
            prefix->len = n;
        }
    }
    return GW_JSCAN_OK;
}
