/* mllm_fault: fault specs, rules, config file and counters; see mllm_fault.h. */
#include "mockllm/mllm_fault.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"

void gw_mllm_fault_init(gw_mllm_fault *f)
{
    memset(f, 0, sizeof *f);
    f->retry_after_s = f->retry_after_ms = f->retry_after_date_s = -1;
    f->drip_ms = f->ttft_ms = f->latency_ms = -1;
    f->tokens = -1;
    f->fail_status = 503;
    f->rl_remaining = f->rl_limit = -1;
}

static bool num(const char *s, size_t n, int64_t *out)
{
    if (n == 0 || n > 12)
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

typedef struct {
    const char *name;
    size_t nlen;
    const char *a1, *a2;
    size_t l1, l2;
} item;

static bool is(const item *it, const char *name)
{
    return it->nlen == strlen(name) && memcmp(it->name, name, it->nlen) == 0;
}

static gw_err apply_flag(gw_mllm_fault *f, const item *it)
{
    struct {
        const char *name;
        bool *flag;
    } flags[] = {{"reset", &f->reset},
                 {"hang", &f->hang},
                 {"cut", &f->cut},
                 {"noterm", &f->noterm},
                 {"malformed", &f->malformed},
                 {"sse-error", &f->sse_error},
                 {"echo-auth", &f->echo_auth},
                 {"context", &f->context},
                 {"throttle-event", &f->throttle_event},
                 {"safety", &f->safety}};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        if (is(it, flags[i].name)) {
            *flags[i].flag = true;
            return GW_OK;
        }
    }
    return GW_E_INVALID_REQUEST;
}

static gw_err apply_item(gw_mllm_fault *f, const item *it)
{
    int64_t v = 0, v2 = 0;
    bool has1 = num(it->a1, it->l1, &v);
    if (it->l1 == 0)
        return apply_flag(f, it);
    if (!has1 || v > 100000000)
        return GW_E_INVALID_REQUEST;
    if (is(it, "status") && v >= 100 && v <= 599)
        f->status = (int)v;
    else if (is(it, "429")) {
        f->status = 429;
        f->retry_after_s = v;
    } else if (is(it, "429ms")) {
        f->status = 429;
        f->retry_after_ms = v;
    } else if (is(it, "429date")) {
        f->status = 429;
        f->retry_after_date_s = v;
    } else if (is(it, "fail")) {
        f->fail_times = (int)v;
        if (it->l2 > 0 && (!num(it->a2, it->l2, &v2) || v2 < 100 || v2 > 599))
            return GW_E_INVALID_REQUEST;
        if (it->l2 > 0)
            f->fail_status = (int)v2;
    } else if (is(it, "drip"))
        f->drip_ms = v;
    else if (is(it, "ttft"))
        f->ttft_ms = v;
    else if (is(it, "latency"))
        f->latency_ms = v;
    else if (is(it, "tokens") && v >= 1 && v <= 100000)
        f->tokens = (int)v;
    else if (is(it, "ratelimit")) {
        if (it->l2 > 0 && (!num(it->a2, it->l2, &v2) || v2 < 1))
            return GW_E_INVALID_REQUEST;
        f->rl_remaining = v;
        f->rl_limit = it->l2 > 0 ? v2 : 100;
    } else
        return GW_E_INVALID_REQUEST;
    return GW_OK;
}

gw_err gw_mllm_fault_parse(gw_mllm_fault *f, const char *spec, size_t n)
{
    size_t pos = 0;
    while (pos < n) {
        const char *s = spec + pos;
        const char *comma = memchr(s, ',', n - pos);
        size_t len = comma ? (size_t)(comma - s) : n - pos;
        pos += len + (comma ? 1 : 0);
        while (len > 0 && *s == ' ') {
            s++;
            len--;
        }
        while (len > 0 && s[len - 1] == ' ')
            len--;
        if (len == 0)
            continue;
        item it = {s, len, "", "", 0, 0};
        const char *c1 = memchr(s, ':', len);
        if (c1 != NULL) {
            it.nlen = (size_t)(c1 - s);
            it.a1 = c1 + 1;
            it.l1 = len - it.nlen - 1;
            const char *c2 = memchr(it.a1, ':', it.l1);
            if (c2 != NULL) {
                it.a2 = c2 + 1;
                it.l2 = (size_t)(s + len - it.a2);
                it.l1 = (size_t)(c2 - it.a1);
            }
        }
        gw_err err = apply_item(f, &it);
        if (err != GW_OK)
            return err;
    }
    return GW_OK;
}

void gw_mllm_config_init(gw_mllm_config *c)
{
    memset(c, 0, sizeof *c);
    c->port = 18080;
    c->tokens = 16;
    c->embed_dims = 64;
}

void gw_mllm_config_cleanup(gw_mllm_config *c)
{
    for (size_t i = 0; i < c->rule_count; i++) {
        free(c->rules[i].model);
        free(c->rules[i].prompt_contains);
        free(c->rules[i].path);
        free(c->rules[i].fault);
    }
    c->rule_count = 0;
}

static char *opt_str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? strdup(s) : NULL;
}

static gw_err load_rules(gw_mllm_config *c, json_t *rules, char *errmsg, size_t errlen)
{
    size_t i;
    json_t *r;
    json_array_foreach(rules, i, r)
    {
        if (c->rule_count == GW_MLLM_MAX_RULES) {
            snprintf(errmsg, errlen, "more than %d rules", GW_MLLM_MAX_RULES);
            return GW_E_LIMIT;
        }
        const char *fault = json_string_value(json_object_get(r, "fault"));
        gw_mllm_fault probe;
        gw_mllm_fault_init(&probe);
        if (fault == NULL || gw_mllm_fault_parse(&probe, fault, strlen(fault)) != GW_OK) {
            snprintf(errmsg, errlen, "rule %zu: missing or invalid \"fault\"", i);
            return GW_E_CONFIG;
        }
        gw_mllm_rule *rule = &c->rules[c->rule_count++];
        rule->model = opt_str(r, "model");
        rule->prompt_contains = opt_str(r, "prompt_contains");
        rule->path = opt_str(r, "path");
        rule->fault = strdup(fault);
    }
    return GW_OK;
}

gw_err gw_mllm_config_load(gw_mllm_config *c, const char *path, char *errmsg, size_t errlen)
{
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (root == NULL) {
        snprintf(errmsg, errlen, "%s:%d: %s", path, je.line, je.text);
        return GW_E_CONFIG;
    }
    json_t *v;
    if ((v = json_object_get(root, "latency_ms")) != NULL)
        c->latency_ms = json_integer_value(v);
    if ((v = json_object_get(root, "ttft_ms")) != NULL)
        c->ttft_ms = json_integer_value(v);
    if ((v = json_object_get(root, "token_delay_ms")) != NULL)
        c->token_delay_ms = json_integer_value(v);
    if ((v = json_object_get(root, "tokens")) != NULL)
        c->tokens = (int)json_integer_value(v);
    if ((v = json_object_get(root, "embed_dims")) != NULL)
        c->embed_dims = (int)json_integer_value(v);
    gw_err err = GW_OK;
    json_t *rules = json_object_get(root, "rules");
    if (rules != NULL)
        err = load_rules(c, rules, errmsg, errlen);
    json_decref(root);
    return err;
}

gw_err gw_mllm_rules_apply(const gw_mllm_config *c, const char *model, const char *prompt,
                           const char *path, gw_mllm_fault *f)
{
    for (size_t i = 0; i < c->rule_count; i++) {
        const gw_mllm_rule *r = &c->rules[i];
        if (r->model && (model == NULL || strcmp(r->model, model) != 0))
            continue;
        if (r->path && (path == NULL || strcmp(r->path, path) != 0))
            continue;
        if (r->prompt_contains && (prompt == NULL || strstr(prompt, r->prompt_contains) == NULL))
            continue;
        gw_err err = gw_mllm_fault_parse(f, r->fault, strlen(r->fault));
        if (err != GW_OK)
            return err;
    }
    return GW_OK;
}

void gw_mllm_counts_init(gw_mllm_counts *t)
{
    memset(t, 0, sizeof *t);
}

void gw_mllm_counts_cleanup(gw_mllm_counts *t)
{
    for (size_t i = 0; i < t->cap; i++)
        free(t->keys[i]);
    free(t->keys);
    free(t->vals);
    memset(t, 0, sizeof *t);
}

static uint64_t hash(const char *s, size_t n)
{
    return gw_fnv1a64(1469598103934665603ULL, s, n);
}

static bool rehash(gw_mllm_counts *t)
{
    size_t ncap = t->cap ? t->cap * 2 : 64;
    char **keys = calloc(ncap, sizeof *keys);
    int64_t *vals = calloc(ncap, sizeof *vals);
    if (keys == NULL || vals == NULL) {
        free(keys);
        free(vals);
        return false;
    }
    for (size_t i = 0; i < t->cap; i++) {
        if (t->keys[i] == NULL)
            continue;
        size_t j = hash(t->keys[i], strlen(t->keys[i])) & (ncap - 1);
        while (keys[j] != NULL)
            j = (j + 1) & (ncap - 1);
        keys[j] = t->keys[i];
        vals[j] = t->vals[i];
    }
    free(t->keys);
    free(t->vals);
    t->keys = keys;
    t->vals = vals;
    t->cap = ncap;
    return true;
}

int64_t gw_mllm_counts_incr(gw_mllm_counts *t, const char *key, size_t n)
{
    if (n > GW_MLLM_KEY_MAX)
        n = GW_MLLM_KEY_MAX;
    if (t->cap > 0) {
        size_t j = hash(key, n) & (t->cap - 1);
        while (t->keys[j] != NULL) {
            if (strlen(t->keys[j]) == n && memcmp(t->keys[j], key, n) == 0)
                return ++t->vals[j];
            j = (j + 1) & (t->cap - 1);
        }
    }
    if (t->count >= GW_MLLM_MAX_KEYS || ((t->count + 1) * 2 > t->cap && !rehash(t))) {
        t->overflow++;
        return 0;
    }
    size_t j = hash(key, n) & (t->cap - 1);
    while (t->keys[j] != NULL)
        j = (j + 1) & (t->cap - 1);
    t->keys[j] = strndup(key, n);
    if (t->keys[j] == NULL) {
        t->overflow++;
        return 0;
    }
    t->vals[j] = 1;
    t->count++;
    return 1;
}

bool gw_mllm_counts_json(const gw_mllm_counts *t, gw_mllm_buf *b)
{
    gw_mllm_buf_puts(b, "{");
    bool first = true;
    for (size_t i = 0; i < t->cap; i++) {
        if (t->keys[i] == NULL)
            continue;
        gw_mllm_buf_puts(b, first ? "\"" : ",\"");
        gw_mllm_buf_json_str(b, t->keys[i], strlen(t->keys[i]));
        gw_mllm_buf_printf(b, "\":%lld", (long long)t->vals[i]);
        first = false;
    }
    return gw_mllm_buf_puts(b, "}");
}
