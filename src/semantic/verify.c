/* verify: see verify.h. */
#include "semantic/verify.h"

#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "semantic/embed.h"

enum {
    ARENA = 4 * GW_SEMV_MAX_TEXT + 8 * GW_SEMV_MAX_TOKENS,
    MAX_CHUNKS = 256,
    MAX_LEFTOVER = 16, /* words left for synonym and typo matching */
    INDEX_SLOTS = 4 * GW_SEMV_MAX_TOKENS,
};

/* Lexical kinds. */
enum { LX_WORD, LX_NUM, LX_LIT, LX_SYM, LX_PUNCT };

/* Roles after classification. */
enum {
    CL_NONE,  /* not classified yet */
    CL_GONE,  /* removed (filler phrase) */
    CL_STOP,  /* ignored, does not end a phrase */
    CL_TERM,  /* ignored, ends a phrase (auxiliary verbs) */
    CL_PUNCT, /* ends a phrase */
    CL_MARK,  /* relation word: starts a phrase */
    CL_WORD,  /* content word: synonyms and typos allowed */
    CL_PROT,  /* protected content word: exact (after folding) only */
};

/* Diagnostic kind of a protected word (gw_semv_result). */
typedef struct {
    const char *w;     /* lower-cased, expanded, in the arena */
    const char *stem;  /* inflection folded */
    const char *canon; /* what structure comparison uses (the partner's stem) */
    uint8_t lex, cls, why;
    bool ends; /* content word that also ends a phrase (question word, modal) */
    bool name; /* capitalised name, acronym or identifier */
    bool aligned;
    bool typo_ok; /* eligible for typo matching */
} vtok;

typedef struct {
    vtok t[GW_SEMV_MAX_TOKENS];
    int n;
    char arena[ARENA];
    size_t used;
    bool overflow;
    /* structure */
    char core[GW_SEMV_MAX_TEXT * 2];
    const char *chunks[MAX_CHUNKS];
    int nchunks;
    char chunkbuf[GW_SEMV_MAX_TEXT * 2];
    /* alignment index (index_tokens) */
    int16_t head[INDEX_SLOTS];
    int16_t next[GW_SEMV_MAX_TOKENS];
    size_t slots;
} vtext;

/* ---- word lists (general English; not fitted to any evaluation set) ---- */

static bool in_list(const char *w, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(w, *list) == 0)
            return true;
    return false;
}

static const char *const STOP[] = {
    "a",      "an",       "the",       "this",  "that",   "these",  "those",  "i",     "me",
    "my",     "mine",     "myself",    "we",    "us",     "our",    "ours",   "you",   "your",
    "yours",  "yourself", "he",        "him",   "his",    "she",    "her",    "hers",  "it",
    "its",    "they",     "them",      "their", "theirs", "there",  "here",   "so",    "just",
    "really", "actually", "basically", "very",  "please", "kindly", "thanks", "thank", "hi",
    "hello",  "hey",      "ok",        "okay",  "well",   "also",   "any",    "some",  NULL};
/* "any" and "some" are scope words too: listed in SCOPE, which wins. */

static const char *const AUX[] = {"do",   "does",  "is",   "are", "am", "be",
                                  "been", "being", "have", "has", NULL};

static const char *const MARK[] = {
    "about",  "above",   "across", "after",  "against", "along",   "among",   "around",  "as",
    "at",     "before",  "behind", "below",  "beneath", "beside",  "between", "beyond",  "by",
    "during", "except",  "for",    "from",   "in",      "inside",  "instead", "into",    "like",
    "near",   "of",      "off",    "on",     "onto",    "outside", "over",    "per",     "since",
    "than",   "through", "till",   "to",     "toward",  "towards", "under",   "unlike",  "until",
    "upon",   "using",   "via",    "versus", "vs",      "with",    "within",  "without", NULL};

static const char *const WH[] = {"what", "which", "who",     "whom",   "whose", "when",   "where",
                                 "why",  "how",   "whether", "can",    "could", "should", "would",
                                 "will", "shall", "may",     "might",  "must",  "<past>", "or",
                                 "but",  "if",    "because", "unless", "while", "and",    NULL};

static const char *const SCOPE[] = {
    "not",       "no",        "never",      "none",          "nothing", "nobody",
    "nowhere",   "neither",   "nor",        "without",       "except",  "only",
    "all",       "every",     "each",       "any",           "some",    "most",
    "more",      "less",      "fewer",      "least",         "few",     "many",
    "much",      "several",   "both",       "either",        "first",   "last",
    "top",       "bottom",    "exactly",    "approximately", "roughly", "always",
    "sometimes", "often",     "rarely",     "usually",       "maximum", "minimum",
    "max",       "min",       "entire",     "whole",         "part",    "half",
    "same",      "different", "other",      "another",       "else",    "again",
    "ever",      "extra",     "unless",     "partial",       "full",    "single",
    "multiple",  "everyone",  "everything", "everybody",     "anyone",  "anything",
    "someone",   "something", NULL};

static const char *const FORMAT[] = {
    "json",      "yaml",       "yml",       "xml",       "csv",         "tsv",   "toml",
    "html",      "markdown",   "latex",     "pdf",       "table",       "list",  "bullet",
    "bulleted",  "numbered",   "paragraph", "sentence",  "word",        "line",  "page",
    "character", "chart",      "graph",     "diagram",   "haiku",       "poem",  "limerick",
    "sonnet",    "essay",      "story",     "checklist", "spreadsheet", "tweet", "code",
    "fraction",  "percentage", "decimal",   "summary",   "outline",     "slide", "point",
    "step",      "example",    "sql",       "regex",     NULL};

static const char *const UNIT[] = {
    "second",    "minute",     "hour",       "day",         "week",        "month",
    "year",      "decade",     "century",    "meter",       "metre",       "kilometer",
    "kilometre", "centimeter", "centimetre", "millimeter",  "millimetre",  "mile",
    "foot",      "feet",       "inch",       "yard",        "gram",        "kilogram",
    "milligram", "microgram",  "pound",      "ounce",       "ton",         "tonne",
    "liter",     "litre",      "milliliter", "millilitre",  "gallon",      "pint",
    "quart",     "cup",        "tablespoon", "teaspoon",    "celsius",     "fahrenheit",
    "kelvin",    "degree",     "radian",     "gradian",     "percent",     "dollar",
    "euro",      "yen",        "cent",       "byte",        "kilobyte",    "megabyte",
    "gigabyte",  "terabyte",   "bit",        "millisecond", "microsecond", "nanosecond",
    "daily",     "hourly",     "weekly",     "monthly",     "yearly",      "annual",
    "annually",  "knot",       "calorie",    "watt",        "volt",        "amp",
    "pixel",     NULL};

/* Synonym groups: a word may sit in several; two words match when they
 * share a group (not transitively). Spelling variants are here too. */
static const char *const SYN[][6] = {
    {"create", "make", "build", NULL},
    {"delete", "remove", "erase", NULL},
    {"begin", "start", NULL},
    {"fast", "quick", "rapid", NULL},
    {"fastest", "quickest", NULL},
    {"faster", "quicker", NULL},
    {"big", "large", NULL},
    {"bigger", "larger", NULL},
    {"biggest", "largest", NULL},
    {"small", "little", "minor", NULL},
    {"cheap", "inexpensive", "affordable", NULL},
    {"easy", "simple", NULL},
    {"show", "display", NULL},
    {"fix", "repair", "correct", NULL},
    {"buy", "purchase", NULL},
    {"help", "assist", NULL},
    {"suggest", "recommend", NULL},
    {"explain", "describe", NULL},
    {"compute", "calculate", NULL},
    {"prove", "show", NULL},
    {"merge", "combine", NULL},
    {"risk", "danger", NULL},
    {"reduce", "lower", "decrease", NULL},
    {"increase", "raise", NULL},
    {"brief", "short", NULL},
    {"trip", "journey", NULL},
    {"ease", "relieve", NULL},
    {"write", "compose", NULL},
    {"method", "technique", "approach", NULL},
    {"error", "mistake", NULL},
    {"car", "automobile", NULL},
    {"doctor", "physician", NULL},
    {"kid", "child", NULL},
    {"photo", "picture", NULL},
    {"choose", "pick", "select", NULL},
    {"rephrase", "reword", "paraphrase", NULL},
    {"illness", "disease", "sickness", NULL},
    {"tired", "fatigued", NULL},
    {"movie", "film", NULL},
    {"keep", "store", NULL},
    {"answer", "reply", "respond", NULL},
    {"price", "cost", NULL},
    {"end", "finish", NULL},
    {"modify", "change", "alter", NULL},
    {"verify", "check", NULL},
    {"meter", "metre", NULL},
    {"liter", "litre", NULL},
    {"kilometer", "kilometre", NULL},
    {"centimeter", "centimetre", NULL},
    {"millimeter", "millimetre", NULL},
    {"color", "colour", NULL},
    {"vs", "versus", NULL},
    {"toward", "towards", NULL},
    {"what", "which", NULL},
    {"big", "huge", NULL},
    {"smart", "clever", "intelligent", NULL},
    {"happy", "glad", NULL},
    {"sad", "unhappy", NULL},
    {"shut", "close", NULL},
    {"speak", "talk", NULL},
    {"large", "huge", NULL},
    {"job", "occupation", NULL},
    {"use", "utilize", "utilise", NULL},
    {"need", "require", NULL},
    {"benefit", "advantage", NULL},
    {"drawback", "disadvantage", "downside", NULL},
};

/* Filler phrases (request framing, greetings, politeness), removed as a
 * whole; longest first where one is a prefix of another. Words are already
 * lower-cased and contractions expanded ("i'd" -> "i would"). */
static const char *const FILLER[][7] = {
    {"thank", "you", "in", "advance", NULL},
    {"thanks", "in", "advance", NULL},
    {"thank", "you", NULL},
    {"i", "would", "like", "to", "know", NULL},
    {"i", "want", "to", "know", NULL},
    {"i", "need", "to", "know", NULL},
    {"i", "would", "like", "to", NULL},
    {"i", "would", "like", NULL},
    {"i", "would", "love", "to", NULL},
    {"i", "would", "love", NULL},
    {"i", "<past>", "wondering", NULL},
    {"i", "am", "wondering", NULL},
    {"i", "wonder", NULL},
    {"do", "you", "know", NULL},
    {"can", "you", "tell", "me", NULL},
    {"could", "you", "tell", "me", NULL},
    {"would", "you", "mind", NULL},
    {"can", "you", NULL},
    {"could", "you", NULL},
    {"would", "you", NULL},
    {"will", "you", NULL},
    {"tell", "me", NULL},
    {"show", "me", NULL},
    {"give", "me", NULL},
    {"help", "me", NULL},
    {"quick", "question", NULL},
    {"hi", "there", NULL},
    {"hello", "there", NULL},
};

static const char *const NUMWORD[] = {
    "zero",    "one",       "two",      "three",    "four",   "five",     "six",      "seven",
    "eight",   "nine",      "ten",      "eleven",   "twelve", "thirteen", "fourteen", "fifteen",
    "sixteen", "seventeen", "eighteen", "nineteen", "twenty", NULL};

/* "dont": contractions typed without the apostrophe. */
static const char *const BARE_NOT[] = {"dont",    "doesnt", "didnt", "isnt",    "arent",
                                       "wasnt",   "werent", "cant",  "couldnt", "shouldnt",
                                       "wouldnt", "havent", "hasnt", "mustnt",  NULL};

/* ---- one hash table over the word lists, built once ---- */

enum {
    F_STOP = 1,
    F_AUX = 2,
    F_MARK = 4,
    F_WH = 8,
    F_SCOPE = 16,
    F_FORMAT = 32,
    F_UNIT = 64,
    F_FILLER = 128,       /* first word of a filler phrase */
    F_NUMWORD = 256,      /* "three" */
    F_BARENOT = 512,      /* "dont" */
    LEXICON_SLOTS = 2048, /* power of two, > 2x the words listed */
};

typedef struct {
    const char *w;
    unsigned flags;
} lex_slot;

static lex_slot lexicon[LEXICON_SLOTS];
static pthread_once_t lexicon_once = PTHREAD_ONCE_INIT;

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void lexicon_add(const char *const *list, unsigned flag)
{
    for (; *list; list++) {
        size_t i = fnv(*list) & (LEXICON_SLOTS - 1);
        while (lexicon[i].w != NULL && strcmp(lexicon[i].w, *list) != 0)
            i = (i + 1) & (LEXICON_SLOTS - 1);
        lexicon[i].w = *list;
        lexicon[i].flags |= flag;
    }
}

static void lexicon_build(void)
{
    lexicon_add(STOP, F_STOP);
    lexicon_add(AUX, F_AUX);
    lexicon_add(MARK, F_MARK);
    lexicon_add(WH, F_WH);
    lexicon_add(SCOPE, F_SCOPE);
    lexicon_add(FORMAT, F_FORMAT);
    lexicon_add(UNIT, F_UNIT);
    lexicon_add(NUMWORD, F_NUMWORD);
    lexicon_add(BARE_NOT, F_BARENOT);
    for (size_t f = 0; f < sizeof FILLER / sizeof FILLER[0]; f++) {
        const char *first[] = {FILLER[f][0], NULL};
        lexicon_add(first, F_FILLER);
    }
}

static unsigned flags_of(const char *w)
{
    size_t i = fnv(w) & (LEXICON_SLOTS - 1);
    for (; lexicon[i].w != NULL; i = (i + 1) & (LEXICON_SLOTS - 1))
        if (strcmp(lexicon[i].w, w) == 0)
            return lexicon[i].flags;
    return 0;
}

/* ---- arena ---- */

static char *arena_put(vtext *v, const char *s, size_t n)
{
    if (v->used + n + 1 > sizeof v->arena) {
        v->overflow = true;
        return NULL;
    }
    char *p = v->arena + v->used;
    memcpy(p, s, n);
    p[n] = '\0';
    v->used += n + 1;
    return p;
}

static vtok *push(vtext *v, const char *w, size_t n, int lex)
{
    if (v->n >= GW_SEMV_MAX_TOKENS) {
        v->overflow = true;
        return NULL;
    }
    char *p = arena_put(v, w, n);
    if (p == NULL)
        return NULL;
    vtok *t = &v->t[v->n++];
    memset(t, 0, sizeof *t);
    t->w = p;
    t->lex = (uint8_t)lex;
    return t;
}

/* ---- lexing ---- */

static bool alnum_byte(unsigned char c)
{
    return isalnum(c) || c == '_' || c >= 0x80;
}

static bool is_sym(unsigned char c)
{
    return strchr("+-*/^=<>%$#@&|~\\", c) != NULL && c != '\0';
}

static bool is_punct(unsigned char c)
{
    return strchr(",.?!;:()[]{}\n", c) != NULL && c != '\0';
}

/* Word characters continue through ' . - , when joining alphanumerics
 * ("don't", "3.11", "p-value", "1,000", "os.path"). */
static size_t word_end(const char *s, size_t i, size_t len)
{
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (alnum_byte(c)) {
            i++;
            continue;
        }
        bool next_alnum = i + 1 < len && alnum_byte((unsigned char)s[i + 1]);
        bool prev_digit = i > 0 && isdigit((unsigned char)s[i - 1]);
        bool next_digit = i + 1 < len && isdigit((unsigned char)s[i + 1]);
        if ((c == '\'' || c == '-') && next_alnum && !prev_digit)
            i++;
        else if (c == '.' && next_alnum && (prev_digit == next_digit))
            i++;
        else if (c == ',' && prev_digit && i + 3 < len && isdigit((unsigned char)s[i + 1]) &&
                 isdigit((unsigned char)s[i + 2]) && isdigit((unsigned char)s[i + 3]) &&
                 (i + 4 >= len || !isdigit((unsigned char)s[i + 4])))
            i++;
        else
            break;
    }
    return i;
}

static void lower_copy(char *dst, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (char)tolower((unsigned char)s[i]);
    dst[n] = '\0';
}

/* Expands contractions in a lower-cased word: emits the base and "not"/
 * "will"/"would" as needed. Returns false when the word was not one. */
static bool push_contraction(vtext *v, const char *w, size_t n, bool name)
{
    const char *base = NULL;
    size_t bn = 0;
    const char *extra = NULL;
    if (n > 3 && strcmp(w + n - 3, "n't") == 0) {
        bn = n - 3;
        base = w;
        extra = "not";
    } else if (flags_of(w) & F_BARENOT) {
        bn = n - 2;
        base = w;
        extra = "not";
    } else if (strcmp(w, "cannot") == 0) {
        base = "can";
        bn = 3;
        extra = "not";
    } else if (n > 2 && w[n - 2] == '\'' && strchr("smd", w[n - 1])) {
        base = w;
        bn = n - 2;
        extra = w[n - 1] == 'd' ? "would" : w[n - 1] == 'm' ? "am" : NULL;
    } else if (n > 3 && w[n - 3] == '\'' &&
               (strcmp(w + n - 2, "re") == 0 || strcmp(w + n - 2, "ve") == 0)) {
        base = w;
        bn = n - 3;
    } else if (n > 3 && strcmp(w + n - 3, "'ll") == 0) {
        base = w;
        bn = n - 3;
        extra = "will";
    } else if (n > 2 && strcmp(w + n - 2, "s'") == 0) {
        base = w;
        bn = n - 1;
    } else {
        return false;
    }
    if (bn == 2 && strncmp(base, "wo", 2) == 0 && extra && strcmp(extra, "not") == 0)
        base = "will", bn = 4;
    else if (bn == 2 && strncmp(base, "ca", 2) == 0 && extra && strcmp(extra, "not") == 0)
        base = "can", bn = 3;
    else if (bn == 3 && strncmp(base, "sha", 3) == 0 && extra && strcmp(extra, "not") == 0)
        base = "shall", bn = 5;
    vtok *t = bn ? push(v, base, bn, LX_WORD) : NULL;
    if (t)
        t->name = name;
    if (extra)
        push(v, extra, strlen(extra), LX_WORD);
    return true;
}

static void lex(vtext *v, const char *s, size_t len)
{
    size_t upper = 0, lower = 0;
    for (size_t i = 0; i < len; i++) {
        upper += isupper((unsigned char)s[i]) != 0;
        lower += islower((unsigned char)s[i]) != 0;
    }
    bool shouting = upper > lower;
    bool sentence_start = true;
    char buf[GW_SEMV_MAX_TEXT + 1];
    size_t i = 0;
    while (i < len && !v->overflow) {
        unsigned char c = (unsigned char)s[i];
        if (isspace(c) && c != '\n') {
            i++;
            continue;
        }
        /* Quoted literal: "...", `...`, or '...' opening outside a word. */
        if (c == '"' || c == '`' ||
            (c == '\'' && (i == 0 || !alnum_byte((unsigned char)s[i - 1])))) {
            const char *end = memchr(s + i + 1, c, len - i - 1);
            if (end != NULL &&
                (c != '\'' || (size_t)(end - s) + 1 >= len || !alnum_byte((unsigned char)end[1]))) {
                push(v, s + i + 1, (size_t)(end - (s + i + 1)), LX_LIT);
                i = (size_t)(end - s) + 1;
                sentence_start = false;
                continue;
            }
            i++;
            continue;
        }
        if (alnum_byte(c)) {
            size_t e = word_end(s, i, len);
            size_t n = e - i;
            bool digit = false, alpha = false, inner_upper = false, under = false;
            for (size_t k = i; k < e; k++) {
                unsigned char d = (unsigned char)s[k];
                digit |= isdigit(d) != 0;
                alpha |= isalpha(d) != 0 || d >= 0x80;
                inner_upper |= k > i && isupper(d) && islower((unsigned char)s[k - 1]);
                under |= d == '_' || (d == '.' && !isdigit((unsigned char)s[k + 1]));
            }
            bool caps = !shouting && n >= 2 && isupper(c) && isupper((unsigned char)s[i + 1]);
            bool name = !shouting && ((isupper(c) && !sentence_start) || inner_upper || caps ||
                                      under || (digit && alpha));
            lower_copy(buf, s + i, n);
            /* Ordinals ("1st", "2nd") and "10k"-like counts stay literals. */
            int lx = digit && !alpha ? LX_NUM : LX_WORD;
            if (lx == LX_NUM) {
                size_t k = 0; /* drop thousands separators */
                for (size_t m = 0; m < n; m++)
                    if (buf[m] != ',')
                        buf[k++] = buf[m];
                n = k;
                buf[n] = '\0';
            }
            if (lx == LX_NUM || !push_contraction(v, buf, n, name)) {
                vtok *t = push(v, buf, n, lx);
                if (t)
                    t->name = name;
            }
            i = e;
            sentence_start = false;
            continue;
        }
        if (is_punct(c)) {
            push(v, (const char *)&s[i], 1, LX_PUNCT);
            if (c != ',' && c != '(' && c != ')')
                sentence_start = true;
            i++;
            continue;
        }
        if (is_sym(c)) {
            push(v, (const char *)&s[i], 1, LX_SYM);
            i++;
            continue;
        }
        i++; /* other ASCII punctuation: a separator */
    }
}

/* ---- normalisation ---- */

static bool match_phrase(const vtext *v, int i, const char *const *ph, int *span)
{
    int k = 0;
    for (; ph[k]; k++) {
        if (i + k >= v->n || v->t[i + k].lex != LX_WORD || strcmp(v->t[i + k].w, ph[k]) != 0)
            return false;
    }
    *span = k;
    return true;
}

/* Inflection folding: plural, -ing, -ed, a final e. Stems are only compared
 * with each other. */
static bool stem_into(const char *w, char b[64])
{
    size_t n = strlen(w);
    if (n >= 64 || n < 4)
        return false;
    memcpy(b, w, n + 1);
    if (n > 4 && strcmp(b + n - 3, "ies") == 0) {
        strcpy(b + n - 3, "y");
    } else if (strcmp(b + n - 4, "sses") == 0) {
        b[n - 2] = '\0';
    } else if (n > 4 && strcmp(b + n - 2, "es") == 0 &&
               (strchr("sxz", b[n - 3]) || strcmp(b + n - 4, "ches") == 0 ||
                strcmp(b + n - 4, "shes") == 0)) {
        b[n - 2] = '\0';
    } else if (b[n - 1] == 's' && b[n - 2] != 's' && b[n - 2] != 'u' && b[n - 2] != 'i') {
        b[n - 1] = '\0';
    } else if (n > 5 && strcmp(b + n - 3, "ing") == 0) {
        b[n - 3] = '\0';
    } else if (n > 4 && strcmp(b + n - 2, "ed") == 0) {
        b[n - 2] = '\0';
    }
    n = strlen(b);
    /* running -> run, stopped -> stop (not "ll", "ss", "zz") */
    if (n >= 3 && b[n - 1] == b[n - 2] && !strchr("aeiouylsz", b[n - 1]))
        b[--n] = '\0';
    if (n >= 4 && b[n - 1] == 'e')
        b[--n] = '\0';
    return strcmp(b, w) != 0;
}

static const char *stem(vtext *v, const char *w)
{
    char b[64];
    if (!stem_into(w, b))
        return w;
    const char *p = arena_put(v, b, strlen(b));
    return p ? p : w;
}

/* Flags of the word as written or of the singular of a plural ("bullets"). */
static unsigned plural_flags(const char *w)
{
    unsigned f = flags_of(w);
    char b[64];
    size_t n = strlen(w);
    if (f != 0 || n < 3 || n >= sizeof b || w[n - 1] != 's')
        return f;
    memcpy(b, w, n + 1);
    b[n - 1] = '\0';
    if ((f = flags_of(b)) != 0)
        return f;
    if (n > 4 && strcmp(w + n - 3, "ies") == 0) {
        strcpy(b + n - 3, "y");
        return flags_of(b);
    }
    if (n > 3 && w[n - 2] == 'e') {
        b[n - 2] = '\0';
        return flags_of(b);
    }
    return 0;
}

static bool beneficiary(const char *w)
{
    return !strcmp(w, "me") || !strcmp(w, "us") || !strcmp(w, "myself");
}

/* "for me", "to us": a relation word whose phrase is only a beneficiary
 * pronoun is request framing, not a relation. */
static void drop_beneficiaries(vtext *v)
{
    for (int i = 0; i < v->n; i++) {
        if (v->t[i].cls != CL_MARK)
            continue;
        int j = i + 1, benef = 0;
        for (; j < v->n; j++) {
            const vtok *t = &v->t[j];
            if (t->cls == CL_GONE)
                continue;
            if (t->cls != CL_STOP)
                break;
            benef += beneficiary(t->w);
        }
        bool closed = j == v->n || v->t[j].cls == CL_PUNCT || v->t[j].cls == CL_TERM ||
                      v->t[j].cls == CL_MARK || v->t[j].ends;
        if (benef > 0 && closed)
            v->t[i].cls = CL_GONE;
    }
}

static void classify(vtext *v)
{
    /* Number words, tense. */
    for (int i = 0; i < v->n; i++) {
        vtok *t = &v->t[i];
        if (t->lex != LX_WORD)
            continue;
        for (int k = 0; (flags_of(t->w) & F_NUMWORD) && NUMWORD[k]; k++)
            if (strcmp(t->w, NUMWORD[k]) == 0) {
                char num[4];
                int m = k < 10 ? 1 : 2;
                num[0] = (char)('0' + (k < 10 ? k : k / 10));
                num[1] = (char)('0' + k % 10);
                num[m] = '\0';
                t->w = arena_put(v, num, (size_t)m);
                t->lex = LX_NUM;
                if (t->w == NULL)
                    return;
                break;
            }
        if (t->lex == LX_WORD && (!strcmp(t->w, "was") || !strcmp(t->w, "were") ||
                                  !strcmp(t->w, "did") || !strcmp(t->w, "had")))
            t->w = "<past>";
        if (t->lex == LX_WORD && !strcmp(t->w, "versus"))
            t->w = "vs";
        if (t->lex == LX_WORD && !strcmp(t->w, "towards"))
            t->w = "toward";
    }
    /* Filler phrases; "how do/can/should I ..." and "how to" open as "how". */
    for (int i = 0; i < v->n; i++) {
        int span = 0;
        bool filler = v->t[i].lex == LX_WORD && (flags_of(v->t[i].w) & F_FILLER);
        for (size_t f = 0; filler && f < sizeof FILLER / sizeof FILLER[0]; f++)
            if (match_phrase(v, i, FILLER[f], &span))
                break;
        if (span == 0 && v->t[i].lex == LX_WORD && !strcmp(v->t[i].w, "how") && i + 1 < v->n) {
            static const char *const modal[] = {"can",   "could", "do",  "does", "should",
                                                "would", "will",  "may", NULL};
            static const char *const who[] = {"i", "we", "you", "one", NULL};
            if (!strcmp(v->t[i + 1].w, "to"))
                v->t[i + 1].cls = CL_GONE, v->t[i + 1].lex = LX_WORD, i++;
            else if (i + 2 < v->n && in_list(v->t[i + 1].w, modal) && in_list(v->t[i + 2].w, who))
                v->t[i + 1].cls = v->t[i + 2].cls = CL_GONE, i += 2;
            continue;
        }
        for (int k = 0; k < span; k++)
            v->t[i + k].cls = CL_GONE;
        if (span)
            i += span - 1;
    }
    for (int i = 0; i < v->n; i++) {
        vtok *t = &v->t[i];
        if (t->cls == CL_GONE)
            continue;
        t->stem = t->w;
        t->why = GW_SEMV_CONTENT;
        t->canon = t->w;
        switch (t->lex) {
        case LX_PUNCT:
            t->cls = CL_PUNCT;
            continue;
        case LX_NUM:
        case LX_LIT:
        case LX_SYM:
            t->cls = CL_PROT;
            t->why = GW_SEMV_LITERAL;
            continue;
        default:
            break;
        }
        t->stem = stem(v, t->w);
        unsigned f = flags_of(t->w);
        unsigned pf = f ? f : plural_flags(t->w);
        if (!strcmp(t->w, "without") || !strcmp(t->w, "except")) {
            t->cls = CL_MARK; /* a movable phrase, aligned exactly */
            t->why = GW_SEMV_SCOPE;
        } else if (f & F_SCOPE) {
            t->cls = CL_PROT;
            t->why = GW_SEMV_SCOPE;
            t->ends = !strcmp(t->w, "not") || !strcmp(t->w, "never");
        } else if (f & F_MARK) {
            t->cls = CL_MARK;
        } else if (f & F_WH) {
            t->cls = CL_PROT;
            t->ends = true;
        } else if (f & F_AUX) {
            t->cls = CL_TERM;
        } else if (f & F_STOP) {
            t->cls = CL_STOP;
        } else if (pf & F_FORMAT) {
            t->cls = CL_PROT;
            t->why = GW_SEMV_FORMAT;
        } else if (pf & F_UNIT) {
            t->cls = CL_PROT;
            t->why = GW_SEMV_LITERAL;
        } else if (t->name) {
            t->cls = CL_PROT;
            t->why = GW_SEMV_LITERAL;
        } else {
            t->cls = CL_WORD;
            t->typo_ok = strlen(t->w) >= 5;
        }
    }
    drop_beneficiaries(v);
}

/* ---- alignment ---- */

static bool synonyms(const char *a, const char *b)
{
    for (size_t g = 0; g < sizeof SYN / sizeof SYN[0]; g++) {
        bool ha = false, hb = false;
        for (int k = 0; SYN[g][k]; k++) {
            ha |= strcmp(SYN[g][k], a) == 0;
            hb |= strcmp(SYN[g][k], b) == 0;
        }
        if (ha && hb)
            return true;
    }
    return false;
}

static bool keys_adjacent(char x, char y)
{
    static const char *const rows[] = {"qwertyuiop", "asdfghjkl", "zxcvbnm"};
    int rx = -1, cx = 0, ry = -1, cy = 0;
    for (int r = 0; r < 3; r++) {
        const char *p = strchr(rows[r], x), *q = strchr(rows[r], y);
        if (p)
            rx = r, cx = (int)(p - rows[r]);
        if (q)
            ry = r, cy = (int)(q - rows[r]);
    }
    if (rx < 0 || ry < 0 || (x == y))
        return false;
    /* rows are staggered: a key touches the same column and the one to its
     * left on the row below, the same and the one to its right above */
    if (rx == ry)
        return abs(cx - cy) == 1;
    if (ry == rx + 1)
        return cy == cx || cy == cx - 1;
    if (rx == ry + 1)
        return cx == cy || cx == cy - 1;
    return false;
}

static bool vowel(char c)
{
    return strchr("aeiouy", c) != NULL && c != '\0';
}

/* One typing error: a swapped neighbour pair, a substituted adjacent key (or
 * a confused vowel in a word of 8+ letters), a doubled letter added or
 * dropped, or (in words of 6+ letters) a letter added or dropped. Words of
 * fewer than 5 letters never match this way. */
static bool one_typo(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    if (na < nb) {
        const char *t = a;
        a = b, b = t;
        size_t tn = na;
        na = nb, nb = tn;
    }
    if (nb < 5 || na - nb > 1)
        return false;
    size_t i = 0;
    while (i < nb && a[i] == b[i])
        i++;
    if (na == nb) {
        if (i == na)
            return false;
        if (i + 1 < na && a[i] == b[i + 1] && a[i + 1] == b[i] && !strcmp(a + i + 2, b + i + 2))
            return true;
        if (strcmp(a + i + 1, b + i + 1) != 0)
            return false;
        return keys_adjacent(a[i], b[i]) || (na >= 8 && vowel(a[i]) && vowel(b[i]));
    }
    /* a is one letter longer: a[i] is the extra letter */
    if (strcmp(a + i + 1, b + i) != 0)
        return false;
    bool doubled = (i > 0 && a[i - 1] == a[i]) || (i + 1 < na && a[i + 1] == a[i]);
    return doubled || nb >= 6;
}

/* Synonyms apply to plain content words, and among protected words only to
 * units (spelling variants) and question words, never to names, numbers,
 * scope or format words. */
static bool synonym_ok(const vtok *t)
{
    if (t->lex != LX_WORD || t->name)
        return false;
    return t->cls == CL_WORD ||
           (t->cls == CL_PROT && (t->why == GW_SEMV_LITERAL || t->why == GW_SEMV_CONTENT));
}

/* Pass 0: exact, 1: inflection, 2: synonym, 3: typo. */
static bool pair_matches(const vtok *x, const vtok *y, int pass)
{
    if (x->lex != y->lex)
        return false;
    switch (pass) {
    case 0:
        return strcmp(x->w, y->w) == 0;
    case 1:
        return x->lex == LX_WORD && strcmp(x->stem, y->stem) == 0;
    case 2:
        return synonym_ok(x) && synonym_ok(y) && x->cls == y->cls &&
               (synonyms(x->w, y->w) || synonyms(x->stem, y->stem));
    default:
        return x->cls == CL_WORD && y->cls == CL_WORD && x->typo_ok && y->typo_ok && !x->name &&
               !y->name && (one_typo(x->w, y->w) || one_typo(x->stem, y->stem));
    }
}

static bool is_content(const vtok *t)
{
    return t->cls == CL_WORD || t->cls == CL_PROT || t->cls == CL_MARK;
}

/* Chains of b's content tokens by the hash of their word (by = 0) or stem
 * (by = 1), in token order. */
static void index_tokens(vtext *b, int by)
{
    size_t slots = 64;
    while (slots < 2 * (size_t)b->n)
        slots *= 2;
    b->slots = slots;
    for (size_t i = 0; i < slots; i++)
        b->head[i] = -1;
    for (int j = b->n - 1; j >= 0; j--) {
        const vtok *y = &b->t[j];
        if (!is_content(y))
            continue;
        size_t h = fnv(by ? y->stem : y->w) & (slots - 1);
        b->next[j] = b->head[h];
        b->head[h] = (int16_t)j;
    }
}

/* Both sides of a pair compare as the smaller of the two stems, so the
 * verdict does not depend on which prompt is the query. */
static void pair_up(vtok *x, vtok *y)
{
    x->aligned = y->aligned = true;
    x->canon = y->canon = strcmp(x->stem, y->stem) <= 0 ? x->stem : y->stem;
}

static bool may_pair(const vtok *x, const vtok *y)
{
    return is_content(y) && !y->aligned && (x->cls == CL_MARK) == (y->cls == CL_MARK);
}

static gw_semv_result align(vtext *a, vtext *b)
{
    /* Exact words, then inflection: hashed, linear in the text length. */
    for (int pass = 0; pass < 2; pass++) {
        index_tokens(b, pass);
        for (int i = 0; i < a->n; i++) {
            vtok *x = &a->t[i];
            if (!is_content(x) || x->aligned)
                continue;
            size_t h = fnv(pass ? x->stem : x->w) & (b->slots - 1);
            for (int j = b->head[h]; j >= 0; j = b->next[j]) {
                vtok *y = &b->t[j];
                if (may_pair(x, y) && pair_matches(x, y, pass)) {
                    pair_up(x, y);
                    break;
                }
            }
        }
    }
    /* Synonyms and typos for what is left: one to one needs equal counts,
     * and more than a few leftovers is a different prompt anyway. */
    int left_a = 0, left_b = 0;
    for (int i = 0; i < a->n; i++)
        left_a += is_content(&a->t[i]) && !a->t[i].aligned;
    for (int j = 0; j < b->n; j++)
        left_b += is_content(&b->t[j]) && !b->t[j].aligned;
    int typos = 0;
    for (int pass = 2; pass < 4 && left_a == left_b && left_a <= MAX_LEFTOVER; pass++) {
        for (int i = 0; i < a->n; i++) {
            vtok *x = &a->t[i];
            if (!is_content(x) || x->aligned)
                continue;
            for (int j = 0; j < b->n; j++) {
                vtok *y = &b->t[j];
                if (!may_pair(x, y) || !pair_matches(x, y, pass))
                    continue;
                if (pass == 3 && typos >= GW_SEMV_MAX_TYPOS)
                    break;
                typos += pass == 3;
                pair_up(x, y);
                break;
            }
        }
    }
    /* An unaligned word rejects; the reason is the most specific one:
     * scope, literal, format, relation word, content word. */
    static const int rank[] = {
        [GW_SEMV_OK] = 0,      [GW_SEMV_CONTENT] = 1, [GW_SEMV_ROLES] = 2,   [GW_SEMV_FORMAT] = 3,
        [GW_SEMV_LITERAL] = 4, [GW_SEMV_SCOPE] = 5,   [GW_SEMV_TOO_LONG] = 0};
    gw_semv_result worst = GW_SEMV_OK;
    for (int s = 0; s < 2; s++) {
        vtext *v = s ? b : a;
        for (int i = 0; i < v->n; i++) {
            const vtok *t = &v->t[i];
            if (!is_content(t) || t->aligned)
                continue;
            gw_semv_result r = t->cls == CL_MARK && t->why == GW_SEMV_CONTENT
                                   ? GW_SEMV_ROLES
                                   : (gw_semv_result)t->why;
            if (rank[r] > rank[worst])
                worst = r;
        }
    }
    return worst;
}

/* ---- structure: phrases headed by relation words, and the rest in order ---- */

static bool append(char *dst, size_t cap, size_t *len, const char *s, char sep)
{
    size_t n = strlen(s);
    if (*len + n + 2 > cap)
        return false;
    memcpy(dst + *len, s, n);
    *len += n;
    dst[(*len)++] = sep;
    dst[*len] = '\0';
    return true;
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static bool structure(vtext *v)
{
    size_t core_len = 0, chunk_len = 0;
    v->core[0] = '\0';
    v->nchunks = 0;
    bool open = false; /* a phrase is being collected */
    int words = 0;     /* content words in the open phrase */
    bool ok = true;
    for (int i = 0; i <= v->n && ok; i++) {
        const vtok *t = i < v->n ? &v->t[i] : NULL;
        if (t && (t->cls == CL_GONE || t->cls == CL_STOP))
            continue;
        /* Relation words in a row head one phrase ("than to Milan",
         * "instead of oil"): the first is not left empty. */
        if (t && t->cls == CL_MARK && open && words == 0) {
            ok = append(v->chunkbuf, sizeof v->chunkbuf, &chunk_len, t->canon, ':');
            continue;
        }
        bool ends =
            t == NULL || t->cls == CL_PUNCT || t->cls == CL_TERM || t->cls == CL_MARK || t->ends;
        if (ends && open) {
            chunk_len++; /* keep the terminating NUL */
            open = false;
        }
        if (t == NULL)
            break;
        if (t->cls == CL_MARK) {
            if (v->nchunks >= MAX_CHUNKS)
                return false;
            v->chunks[v->nchunks++] = v->chunkbuf + chunk_len;
            ok = append(v->chunkbuf, sizeof v->chunkbuf, &chunk_len, t->canon, ':');
            open = true;
            words = 0;
            continue;
        }
        if (t->cls != CL_WORD && t->cls != CL_PROT)
            continue;
        if (open && !t->ends) {
            ok = append(v->chunkbuf, sizeof v->chunkbuf, &chunk_len, t->canon, ' ');
            words++;
        } else {
            ok = append(v->core, sizeof v->core, &core_len, t->canon, ' ');
        }
    }
    if (ok)
        qsort(v->chunks, (size_t)v->nchunks, sizeof v->chunks[0], cmp_str);
    return ok;
}

static gw_semv_result compare(vtext *a, vtext *b)
{
    if (!structure(a) || !structure(b))
        return GW_SEMV_TOO_LONG;
    if (strcmp(a->core, b->core) != 0 || a->nchunks != b->nchunks)
        return GW_SEMV_ROLES;
    for (int i = 0; i < a->nchunks; i++)
        if (strcmp(a->chunks[i], b->chunks[i]) != 0)
            return GW_SEMV_ROLES;
    return GW_SEMV_OK;
}

static bool prepare(vtext *v, const char *s, size_t len)
{
    v->n = 0;
    v->used = 0;
    v->overflow = false;
    lex(v, s, len);
    if (!v->overflow)
        classify(v);
    return !v->overflow;
}

gw_semv_result gw_sem_verify(const char *a, size_t alen, const char *b, size_t blen)
{
    static _Thread_local vtext va, vb;
    pthread_once(&lexicon_once, lexicon_build);
    if (alen > GW_SEMV_MAX_TEXT || blen > GW_SEMV_MAX_TEXT)
        return GW_SEMV_TOO_LONG;
    if (!prepare(&va, a, alen) || !prepare(&vb, b, blen))
        return GW_SEMV_TOO_LONG;
    gw_semv_result r = align(&va, &vb);
    return r != GW_SEMV_OK ? r : compare(&va, &vb);
}

const char *gw_semv_name(gw_semv_result r)
{
    switch (r) {
    case GW_SEMV_OK:
        return "ok";
    case GW_SEMV_TOO_LONG:
        return "too_long";
    case GW_SEMV_LITERAL:
        return "literal";
    case GW_SEMV_SCOPE:
        return "scope";
    case GW_SEMV_FORMAT:
        return "format";
    case GW_SEMV_CONTENT:
        return "content";
    case GW_SEMV_ROLES:
        return "roles";
    }
    return "unknown";
}

bool gw_semantic_guards_agree(const char *a, const char *b)
{
    return gw_sem_verify(a, strlen(a), b, strlen(b)) == GW_SEMV_OK;
}
