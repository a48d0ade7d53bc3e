/*
 * guard: rules a semantic hit must pass on top of the similarity threshold;
 * see gw_semantic_guards_agree() in embed.h.
 *
 * Similarity of bag-of-features vectors is blind to exactly the small edits
 * that change an answer: a number, a "not", a quoted literal, the direction
 * of "from A to B". Each rule extracts those from both texts and requires
 * them to agree. Rules err on the side of a miss: a miss costs one provider
 * call, a false hit answers a different question.
 */
#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#include "semantic/embed.h"

enum { MAX_TOKENS = 512, MAX_TOKEN = 48, MAX_ITEMS = 64 };

typedef struct {
    char text[MAX_TOKEN]; /* lower-cased */
    bool entity; /* looks like a name: inner or all capitals, or capitalised mid-sentence */
    bool number;
} token;

typedef struct {
    token t[MAX_TOKENS];
    int n;
    char quoted[MAX_ITEMS][MAX_TOKEN];
    int nquoted;
} parsed;

static bool word_char(unsigned char c)
{
    return isalnum(c) || c >= 0x80 || c == '.' || c == ',';
}

static bool has_digit(const char *s)
{
    for (; *s; s++)
        if (isdigit((unsigned char)*s))
            return true;
    return false;
}

/* Normalises "1,000" -> "1000" and strips trailing separators ("10." -> "10"). */
static void clean_token(char *s)
{
    size_t len = strlen(s);
    while (len > 0 && (s[len - 1] == '.' || s[len - 1] == ','))
        s[--len] = '\0';
    if (!has_digit(s))
        return;
    size_t j = 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] != ',')
            s[j++] = s[i];
    s[j] = '\0';
}

static void add_token(parsed *p, const char *start, size_t n, bool sentence_start)
{
    if (p->n >= MAX_TOKENS || n == 0)
        return;
    token *t = &p->t[p->n];
    if (n >= MAX_TOKEN)
        n = MAX_TOKEN - 1;
    int upper = 0, alpha = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)start[i];
        upper += isupper(c) != 0;
        alpha += isalpha(c) != 0;
        t->text[i] = (char)tolower(c);
    }
    t->text[n] = '\0';
    clean_token(t->text);
    if (t->text[0] == '\0')
        return;
    bool inner_upper = upper > (isupper((unsigned char)start[0]) ? 1 : 0);
    bool all_caps = alpha >= 2 && upper == alpha;
    bool short_word = n < 2;
    t->number = has_digit(t->text);
    t->entity = !t->number && !short_word &&
                (inner_upper || all_caps || (isupper((unsigned char)start[0]) && !sentence_start));
    p->n++;
}

static int quote_close(unsigned char c)
{
    return c == '"' ? '"' : c == '`' ? '`' : c == '\'' ? '\'' : 0;
}

static void parse(const char *s, parsed *p)
{
    memset(p, 0, sizeof *p);
    bool sentence_start = true;
    size_t i = 0, len = strlen(s);
    if (len > GW_EMBED_MAX_TEXT)
        len = GW_EMBED_MAX_TEXT;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        int close = quote_close(c);
        /* A quote opens a literal when not inside a word (so "don't" is no quote). */
        if (close && (i == 0 || !isalnum((unsigned char)s[i - 1]))) {
            const char *end = memchr(s + i + 1, close, len - i - 1);
            if (end != NULL && p->nquoted < MAX_ITEMS) {
                size_t n = (size_t)(end - (s + i + 1));
                if (n >= MAX_TOKEN)
                    n = MAX_TOKEN - 1;
                memcpy(p->quoted[p->nquoted], s + i + 1, n);
                p->quoted[p->nquoted][n] = '\0';
                p->nquoted++;
            }
        }
        if (word_char(c) && c != '.' && c != ',') {
            size_t start = i;
            while (i < len && (word_char((unsigned char)s[i]) || s[i] == '\'') &&
                   !(s[i] == '.' && (i + 1 >= len || !isdigit((unsigned char)s[i + 1]))))
                i++;
            add_token(p, s + start, i - start, sentence_start);
            sentence_start = false;
            continue;
        }
        if (c == '.' || c == '?' || c == '!' || c == ':' || c == '\n')
            sentence_start = true;
        i++;
    }
}

static bool is_negation(const char *w)
{
    static const char *const neg[] = {"not",     "no",      "never", "none",    "nobody",
                                      "nothing", "neither", "nor",   "without", "cannot",
                                      "cant",    "nowhere", "noone", "non"};
    for (size_t i = 0; i < sizeof neg / sizeof neg[0]; i++)
        if (strcmp(w, neg[i]) == 0)
            return true;
    size_t n = strlen(w);
    /* don't, isn't, won't, ... (the apostrophe is kept inside the token) */
    return (n > 3 && strcmp(w + n - 3, "n't") == 0) ||
           (n > 3 && strcmp(w + n - 2, "nt") == 0 &&
            (strcmp(w, "dont") == 0 || strcmp(w, "doesnt") == 0 || strcmp(w, "didnt") == 0 ||
             strcmp(w, "isnt") == 0 || strcmp(w, "arent") == 0 || strcmp(w, "wasnt") == 0 ||
             strcmp(w, "werent") == 0 || strcmp(w, "wont") == 0 || strcmp(w, "shouldnt") == 0 ||
             strcmp(w, "wouldnt") == 0 || strcmp(w, "couldnt") == 0 || strcmp(w, "havent") == 0 ||
             strcmp(w, "hasnt") == 0));
}

static int count_negations(const parsed *p)
{
    int n = 0;
    for (int i = 0; i < p->n; i++)
        n += is_negation(p->t[i].text);
    return n;
}

/* Numbers in order, each with the word after it (its unit) when that is a word. */
static bool numbers_agree(const parsed *a, const parsed *b)
{
    int i = 0, j = 0;
    for (;;) {
        while (i < a->n && !a->t[i].number)
            i++;
        while (j < b->n && !b->t[j].number)
            j++;
        if (i >= a->n || j >= b->n)
            return i >= a->n && j >= b->n;
        if (strcmp(a->t[i].text, b->t[j].text) != 0)
            return false;
        const char *ua = i + 1 < a->n && !a->t[i + 1].number ? a->t[i + 1].text : "";
        const char *ub = j + 1 < b->n && !b->t[j + 1].number ? b->t[j + 1].text : "";
        if (strcmp(ua, ub) != 0)
            return false;
        i++;
        j++;
    }
}

static bool quotes_agree(const parsed *a, const parsed *b)
{
    if (a->nquoted != b->nquoted)
        return false;
    for (int i = 0; i < a->nquoted; i++)
        if (strcmp(a->quoted[i], b->quoted[i]) != 0)
            return false;
    return true;
}

static int find_token(const parsed *p, const char *w)
{
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->t[i].text, w) == 0)
            return i;
    return -1;
}

/* Every entity-like token of one text must occur in the other, and those
 * shared tokens must occur in the same order in both. */
static bool entities_agree_one_way(const parsed *a, const parsed *b)
{
    int last_b = -1;
    for (int i = 0; i < a->n; i++) {
        const token *t = &a->t[i];
        int j = find_token(b, t->text);
        if (j < 0) {
            if (t->entity)
                return false;
            continue;
        }
        if (!(t->entity || b->t[j].entity) || find_token(a, t->text) != i)
            continue; /* not a name, or a repeated word: first occurrence only */
        if (j < last_b)
            return false;
        last_b = j;
    }
    return true;
}

static bool entities_agree(const parsed *a, const parsed *b)
{
    return entities_agree_one_way(a, b) && entities_agree_one_way(b, a);
}

bool gw_semantic_guards_agree(const char *a, const char *b)
{
    static _Thread_local parsed pa, pb;
    parse(a, &pa);
    parse(b, &pb);
    return count_negations(&pa) == count_negations(&pb) && numbers_agree(&pa, &pb) &&
           quotes_agree(&pa, &pb) && entities_agree(&pa, &pb);
}
