/*
 * verify: the check a semantic-cache candidate must pass after the
 * nearest-neighbour search, whatever embedder found it. Cosine similarity
 * says two prompts are about the same thing; the verifier decides whether
 * they ask the same thing. It is a rule-based reading of both prompts, not
 * a word list fitted to one data set:
 *
 *  1. Content words are aligned one to one. Stop words, politeness and
 *     request framing ("could you please", "I was wondering", "thanks") are
 *     ignored; inflection is folded (plural, -ing, -ed); a word may be
 *     matched by a general synonym table or by one typing error (adjacent
 *     keys, swapped neighbours, a doubled or dropped letter, a confused vowel
 *     in a long word), at most GW_SEMV_MAX_TYPOS per pair. A content word
 *     without a partner rejects the pair.
 *  2. Protected words align only exactly (after case folding and
 *     inflection): numbers, units, quoted strings, code identifiers,
 *     capitalised names, symbols (+ - = ^ % ...), negation, quantifiers and
 *     scope words (not, never, only, all, except, least, most, more, less,
 *     ...), output formats and counts (JSON, YAML, table, list, words,
 *     lines, ...), question words, modal verbs and tense.
 *  3. Order-sensitive relations are kept: a preposition or relation word
 *     (from, to, into, than, vs, before, after, of, in, by, ...) is bound to
 *     the words that follow it up to the next boundary; these phrases must be
 *     equal as sets (so a phrase may move: "In Python, sort a list" = "Sort a
 *     list in Python"), and the remaining words must appear in the same
 *     order ("Brazil beat Germany" != "Germany beat Brazil").
 *
 * Errs towards a miss: a miss costs one provider call, a false hit serves
 * one user's answer to another question. Texts longer than
 * GW_SEMV_MAX_TEXT bytes (the text the semantic store keeps per entry) or
 * GW_SEMV_MAX_TOKENS tokens are never verified (GW_SEMV_TOO_LONG). Pure function of its two inputs,
 * no allocation (thread-local scratch), microseconds per check (modelgw-semantic-bench
 * --verify).
 */
#ifndef GW_SEMANTIC_VERIFY_H
#define GW_SEMANTIC_VERIFY_H

#include <stdbool.h>
#include <stddef.h>

enum { GW_SEMV_MAX_TEXT = 4096, GW_SEMV_MAX_TOKENS = 1024, GW_SEMV_MAX_TYPOS = 2 };

typedef enum {
    GW_SEMV_OK = 0,
    GW_SEMV_TOO_LONG, /* beyond the verifier's bounds: never a hit */
    GW_SEMV_LITERAL,  /* a number, unit, quoted string, identifier, name or symbol differs */
    GW_SEMV_SCOPE,    /* negation, quantifier or scope word differs */
    GW_SEMV_FORMAT,   /* output format or count differs */
    GW_SEMV_CONTENT,  /* a content word has no partner */
    GW_SEMV_ROLES,    /* relation roles or word order differ */
} gw_semv_result;

/* Verifies that a and b (not necessarily NUL-terminated) ask the same thing. */
gw_semv_result gw_sem_verify(const char *a, size_t alen, const char *b, size_t blen);

/* "ok", "too_long", "literal", "scope", "format", "content", "roles". */
const char *gw_semv_name(gw_semv_result r);

#endif
