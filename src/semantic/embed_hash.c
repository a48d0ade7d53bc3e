/*
 * embed_hash: the built-in hashing embedder and vector helpers; see embed.h.
 *
 * Features of a text, after lower-casing and splitting on anything that is
 * not a letter, digit or non-ASCII byte:
 *   - word unigrams (weight 1; filler and stop words 0.2, so "please, can you
 *     tell me what X is" stays close to "what is X");
 *   - bigrams of consecutive content words (weight 1): they carry word order,
 *     which separates "from NY to FL" from "from FL to NY";
 *   - character trigrams of each content word with boundary marks (weight
 *     0.9 each), so a typo changes a few trigrams instead of a whole word.
 * Term frequencies are counted per feature and weighted 1 + ln(tf).
 */
#include "semantic/embed.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/hash.h"

enum { MAX_FEATURES = 8192, MAX_WORDS = 4096, MAX_WORD = 48 };

typedef struct {
    uint64_t h;
    float w; /* weight of one occurrence */
    int tf;
} feature;

typedef struct {
    feature slot[MAX_FEATURES * 2];
    int used;
    uint32_t idx[MAX_FEATURES]; /* occupied slots, so clearing costs O(used) */
} feature_table;

static void add_feature(feature_table *t, uint64_t h, float w)
{
    if (t->used >= MAX_FEATURES)
        return;
    size_t mask = MAX_FEATURES * 2 - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        if (t->slot[i].tf == 0) {
            t->slot[i] = (feature){.h = h, .w = w, .tf = 1};
            t->idx[t->used++] = (uint32_t)i;
            return;
        }
        if (t->slot[i].h == h) {
            t->slot[i].tf++;
            return;
        }
    }
}

static const char *const filler_words[] = {
    "a",    "an",    "the",    "please",   "pls",       "plz",      "kindly", "hey",     "hi",
    "can",  "could", "would",  "you",      "u",         "me",       "tell",   "i",       "im",
    "want", "to",    "know",   "just",     "quick",     "question", "help",   "of",      "is",
    "are",  "be",    "do",     "does",     "some",      "thanks",   "thank",  "so",      "um",
    "uh",   "like",  "really", "actually", "basically", "in",       "on",     "for",     "and",
    "what", "whats", "my",     "we",       "us",        "give",     "show",   "explain", "briefly",
};

static bool is_filler(const char *w, size_t n)
{
    for (size_t i = 0; i < sizeof filler_words / sizeof filler_words[0]; i++)
        if (strlen(filler_words[i]) == n && memcmp(filler_words[i], w, n) == 0)
            return true;
    return false;
}

static bool is_word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

typedef struct {
    char text[MAX_WORD];
    size_t len;
    bool filler;
} word;

/* Splits and lower-cases; apostrophes inside words are dropped ("don't" -> "dont"). */
static int split_words(const char *s, size_t len, word *words)
{
    int n = 0;
    size_t i = 0;
    while (i < len && n < MAX_WORDS) {
        while (i < len && !is_word_byte((unsigned char)s[i]))
            i++;
        if (i >= len)
            break;
        word *w = &words[n];
        w->len = 0;
        while (i < len &&
               (is_word_byte((unsigned char)s[i]) ||
                (s[i] == '\'' && i + 1 < len && is_word_byte((unsigned char)s[i + 1])))) {
            unsigned char c = (unsigned char)s[i++];
            if (c == '\'')
                continue;
            if (c >= 'A' && c <= 'Z')
                c = (unsigned char)(c - 'A' + 'a');
            if (w->len < MAX_WORD - 1)
                w->text[w->len++] = (char)c;
        }
        w->text[w->len] = '\0';
        w->filler = is_filler(w->text, w->len);
        n++;
    }
    return n;
}

static void add_trigrams(feature_table *t, const word *w)
{
    char buf[MAX_WORD + 2];
    buf[0] = '#';
    memcpy(buf + 1, w->text, w->len);
    buf[w->len + 1] = '#';
    size_t n = w->len + 2;
    for (size_t i = 0; i + 3 <= n; i++)
        add_feature(t, gw_fnv1a64(0x3c3c3c3cULL ^ GW_FNV64_BASIS, buf + i, 3), 0.9f);
}

void gw_embed_hash(const char *text, size_t len, float *out)
{
    static _Thread_local feature_table table;
    static _Thread_local word words[MAX_WORDS];
    memset(out, 0, sizeof(float) * GW_EMBED_HASH_DIM);
    if (len > GW_EMBED_MAX_TEXT)
        len = GW_EMBED_MAX_TEXT;
    int n = split_words(text, len, words);
    const word *prev = NULL;
    for (int i = 0; i < n; i++) {
        const word *w = &words[i];
        add_feature(&table, gw_fnv1a64(GW_FNV64_BASIS, w->text, w->len), w->filler ? 0.2f : 1.0f);
        if (w->filler)
            continue;
        add_trigrams(&table, w);
        if (prev != NULL) {
            uint64_t h = gw_fnv1a64(0x5151515151ULL ^ GW_FNV64_BASIS, prev->text, prev->len);
            h = gw_fnv1a64(h ^ 0x20, w->text, w->len);
            add_feature(&table, h, 1.0f);
        }
        prev = w;
    }
    for (int i = 0; i < table.used; i++) {
        feature *f = &table.slot[table.idx[i]];
        uint64_t h = gw_fmix64(f->h);
        float sign = (h >> 63) ? -1.0f : 1.0f;
        out[h % GW_EMBED_HASH_DIM] += sign * f->w * (1.0f + logf((float)f->tf));
        f->tf = 0; /* leave the table empty for the next call */
    }
    table.used = 0;
    gw_l2_normalise(out, GW_EMBED_HASH_DIM);
}

void gw_embedder_tag(const char *id, int version, int dim, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s-v%d-d%d", id, version, dim);
}

double gw_cosine(const float *a, const float *b, size_t dim)
{
    double dot = 0, na = 0, nb = 0;
    for (size_t i = 0; i < dim; i++) {
        dot += (double)a[i] * b[i];
        na += (double)a[i] * a[i];
        nb += (double)b[i] * b[i];
    }
    if (na == 0 || nb == 0)
        return 0;
    return dot / (sqrt(na) * sqrt(nb));
}

void gw_l2_normalise(float *v, size_t dim)
{
    double n = 0;
    for (size_t i = 0; i < dim; i++)
        n += (double)v[i] * v[i];
    if (n == 0)
        return;
    float inv = (float)(1.0 / sqrt(n));
    for (size_t i = 0; i < dim; i++)
        v[i] *= inv;
}
