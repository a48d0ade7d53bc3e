/* Tests for the semantic-cache verifier (src/semantic/verify.c), rule by
 * rule, with cases of their own (none is taken from the evaluation sets in
 * tests/data). Every case is checked in both directions: the verdict must
 * not depend on which prompt was cached first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "semantic/embed.h"
#include "semantic/verify.h"

static gw_semv_result verdict(const char *a, const char *b)
{
    gw_semv_result r = gw_sem_verify(a, strlen(a), b, strlen(b));
    gw_semv_result back = gw_sem_verify(b, strlen(b), a, strlen(a));
    if ((r == GW_SEMV_OK) != (back == GW_SEMV_OK))
        fail_msg("asymmetric verdict: %s / %s for \"%s\" vs \"%s\"", gw_semv_name(r),
                 gw_semv_name(back), a, b);
    return r;
}

#define SAME(a, b)                                                                                 \
    do {                                                                                           \
        gw_semv_result r_ = verdict(a, b);                                                         \
        if (r_ != GW_SEMV_OK)                                                                      \
            fail_msg("expected same, got %s: \"%s\" vs \"%s\"", gw_semv_name(r_), a, b);           \
    } while (0)

#define DIFF(a, b, why)                                                                            \
    do {                                                                                           \
        gw_semv_result r_ = verdict(a, b);                                                         \
        if (r_ != (why))                                                                           \
            fail_msg("expected %s, got %s: \"%s\" vs \"%s\"", gw_semv_name(why), gw_semv_name(r_), \
                     a, b);                                                                        \
    } while (0)

static void test_identity_case_punctuation(void **state)
{
    (void)state;
    SAME("Which planet has the most moons?", "Which planet has the most moons?");
    SAME("Which planet has the most moons?", "which planet has the most moons");
    SAME("Which planet has the most moons?", "WHICH PLANET HAS THE MOST MOONS??");
    SAME("", "");
    SAME("?!", "...");
}

static void test_stop_words_and_politeness(void **state)
{
    (void)state;
    SAME("Could you please list the noble gases?", "List the noble gases");
    SAME("Hi there! Can you tell me how a bicycle gear works? Thanks!",
         "How does a bicycle gear work?");
    SAME("I was wondering what a sonnet's volta is", "what is a sonnet's volta");
    SAME("I'd like to know why leaves change colour", "Why do leaves change colour?");
    SAME("Would you mind drafting a memo for me?", "Draft a memo");
    SAME("Thanks in advance: what is a mortgage broker?", "What is a mortgage broker?");
    /* Framing is not content: "how can I" and "how do I" and "how to" open alike. */
    SAME("How can I tune a violin?", "How to tune a violin?");
    SAME("How should I tune a violin?", "how do i tune a violin");
}

static void test_inflection(void **state)
{
    (void)state;
    SAME("How do I sharpen chisels?", "How do I sharpen a chisel?");
    SAME("Tips for planting tulips", "Tip for planting a tulip");
    SAME("Why is my dough cracking?", "Why does my dough crack?");
    SAME("Which boxes fit in a car boot?", "Which box fits in a car boot?");
}

static void test_typos(void **state)
{
    (void)state;
    SAME("How do I calibrate a monitor?", "How do I calibarte a monitor?"); /* swapped pair */
    SAME("What is a good thermostat setting?", "What is a good thermostat settinf?"); /* key */
    SAME("How do I clean a kettle?", "How do I clean a kettlle?");                    /* doubled */
    SAME("Describe the vaccination schedule", "Describe the vacination schedule");    /* dropped */
    SAME("Why separate concerns in software?", "Why seperate concerns in software?"); /* vowel */
    /* Short words and real-word changes are not typos. */
    DIFF("What does a cat eat?", "What does a car eat?", GW_SEMV_CONTENT);
    DIFF("How do I insert a node?", "How do I invert a node?", GW_SEMV_CONTENT);
    DIFF("What is the largest planet?", "What is the largest plant?", GW_SEMV_CONTENT);
    DIFF("Describe the old house", "Describe the old horse", GW_SEMV_CONTENT);
    /* Names are never matched by a typo. */
    DIFF("Who founded Microsoft in 1975?", "Who founded Microsfot in 1975?", GW_SEMV_LITERAL);
    /* A typo of a word that also occurs spelled right: same verdict both ways. */
    SAME("Compare running shoes and running socks", "Compare runnign shoes and running socks");
    /* At most GW_SEMV_MAX_TYPOS per pair. */
    SAME("Compare electric bicycles and scooters", "Compare electirc bicylces and scooters");
    DIFF("Compare electric bicycles and motorcycles", "Compare electirc bicylces and motorcylces",
         GW_SEMV_CONTENT);
}

static void test_synonyms(void **state)
{
    (void)state;
    SAME("How do I delete a Docker volume?", "How do I remove a Docker volume?");
    SAME("Suggest a cheap hotel near the station",
         "Recommend an inexpensive hotel near the station");
    SAME("What is the quickest route to the coast?", "What is the fastest route to the coast?");
    DIFF("Suggest a cheap hotel near the station", "Suggest a luxury hotel near the station",
         GW_SEMV_CONTENT);
    /* Not transitive: show~display and show~prove, but display is not prove. */
    DIFF("Display that the series converges", "Prove that the series converges", GW_SEMV_CONTENT);
    /* Quantifiers never match by synonym, even close ones. */
    DIFF("Delete every log file", "Delete all log files", GW_SEMV_SCOPE);
}

static void test_roles(void **state)
{
    (void)state;
    DIFF("Train times from Leeds to York", "Train times from York to Leeds", GW_SEMV_ROLES);
    DIFF("Pour the milk into the flour", "Pour the flour into the milk", GW_SEMV_ROLES);
    DIFF("Is a cheetah faster than a lion?", "Is a lion faster than a cheetah?", GW_SEMV_ROLES);
    DIFF("Rust vs Go for web servers", "Go vs Rust for web servers", GW_SEMV_ROLES);
    SAME("Rust versus Go for web servers", "Rust vs Go for web servers");
    DIFF("Should I stretch before lifting?", "Should I lift before stretching?", GW_SEMV_ROLES);
    DIFF("Should I eat before swimming?", "Should I eat after swimming?", GW_SEMV_ROLES);
    DIFF("Did Athens defeat Sparta?", "Did Sparta defeat Athens?", GW_SEMV_ROLES);
    /* Relation words in a row head one phrase: "than" binds "to Lima". */
    DIFF("Is it safer to sail to Crete than to Rhodes?",
         "Is it safer to sail to Rhodes than to Crete?", GW_SEMV_ROLES);
    DIFF("Bake with butter instead of oil", "Bake with oil instead of butter", GW_SEMV_ROLES);
    DIFF("Send the file to Maria", "Send the file from Maria", GW_SEMV_ROLES);
    /* A phrase headed by a relation word may move; its binding stays. */
    SAME("From Leeds, how long is the train to York?", "How long is the train to York from Leeds?");
    SAME("In Kotlin, how do I declare a constant?", "How do I declare a constant in Kotlin?");
    SAME("For a beginner, which telescope is best?", "Which telescope is best for a beginner?");
    /* Conservative: a symmetric relation in the other order is a miss. */
    DIFF("Difference between a violin and a viola", "Difference between a viola and a violin",
         GW_SEMV_ROLES);
}

static void test_literals(void **state)
{
    (void)state;
    DIFF("Boil eggs for 7 minutes", "Boil eggs for 9 minutes", GW_SEMV_LITERAL);
    SAME("Is 10,000 steps a day enough?", "Is 10000 steps a day enough?");
    SAME("List three rivers in Peru", "List 3 rivers in Peru");
    DIFF("Python 3.10 release notes", "Python 3.1 release notes", GW_SEMV_LITERAL);
    DIFF("Run 5 km every morning", "Run 5 miles every morning", GW_SEMV_LITERAL);
    DIFF("Convert 3 cups to millilitres", "Convert 3 pints to millilitres", GW_SEMV_LITERAL);
    DIFF("Events on 12 March 2021", "Events on 12 March 2022", GW_SEMV_LITERAL);
    DIFF("What happened on 1989-11-09?", "What happened on 1989-11-10?", GW_SEMV_LITERAL);
    DIFF("Translate 'good night' into Welsh", "Translate 'good morning' into Welsh",
         GW_SEMV_LITERAL);
    DIFF("Print \"Hello\" in Ruby", "Print \"hello\" in Ruby", GW_SEMV_LITERAL);
    DIFF("What does os.path.join do?", "What does os.path.split do?", GW_SEMV_LITERAL);
    DIFF("Explain useEffect in React", "Explain useMemo in React", GW_SEMV_LITERAL);
    DIFF("Best hikes near Innsbruck", "Best hikes near Salzburg", GW_SEMV_LITERAL);
    DIFF("Solve 2x + 3 = 9", "Solve 2x - 3 = 9", GW_SEMV_LITERAL);
    DIFF("What is 40% of 90?", "What is 40 of 90?", GW_SEMV_LITERAL);
    SAME("what is 7 * 8", "What is 7*8?");
}

static void test_scope(void **state)
{
    (void)state;
    DIFF("Which metals rust?", "Which metals do not rust?", GW_SEMV_SCOPE);
    SAME("Which metals don't rust?", "Which metals do not rust?");
    SAME("Why can't I sleep?", "Why cannot I sleep?");
    DIFF("Why does the alarm ring?", "Why does the alarm never ring?", GW_SEMV_SCOPE);
    DIFF("Books with at least 300 pages", "Books with at most 300 pages", GW_SEMV_SCOPE);
    DIFF("Email all customers", "Email only new customers", GW_SEMV_SCOPE);
    DIFF("Countries in Europe except Italy", "Countries in Europe", GW_SEMV_SCOPE);
    DIFF("Foods with more sugar than honey", "Foods with less sugar than honey", GW_SEMV_SCOPE);
    DIFF("Pancakes without eggs", "Pancakes with eggs", GW_SEMV_SCOPE);
    SAME("Without a ladder, how can I reach the gutter?",
         "How can I reach the gutter without a ladder?");
}

static void test_format(void **state)
{
    (void)state;
    DIFF("Give the answer as JSON", "Give the answer as YAML", GW_SEMV_FORMAT);
    DIFF("Describe Rome in 3 sentences", "Describe Rome in 3 paragraphs", GW_SEMV_FORMAT);
    DIFF("Summarize the memo in 100 words", "Summarize the memo in 100 lines", GW_SEMV_FORMAT);
    DIFF("Compare the phones in a table", "Compare the phones in a list", GW_SEMV_FORMAT);
    DIFF("Compare the phones", "Compare the phones as bullet points", GW_SEMV_FORMAT);
    SAME("Compare the phones in a table", "compare the phones in tables");
}

static void test_question_words_modals_tense(void **state)
{
    (void)state;
    DIFF("When did the war end?", "Why did the war end?", GW_SEMV_CONTENT);
    DIFF("Can I park here on Sundays?", "Must I park here on Sundays?", GW_SEMV_CONTENT);
    DIFF("Who was the mayor of Oslo?", "Who is the mayor of Oslo?", GW_SEMV_CONTENT);
    SAME("Which bridge is longer?", "What bridge is longer?");
}

static void test_bounds(void **state)
{
    (void)state;
    size_t n = GW_SEMV_MAX_TEXT + 1;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'a', n);
    big[n] = '\0';
    assert_int_equal(gw_sem_verify(big, n, big, n), GW_SEMV_TOO_LONG);
    /* Within the byte bound but beyond the token bound. */
    size_t m = 0;
    while (m + 2 <= GW_SEMV_MAX_TEXT)
        big[m++] = 'x', big[m++] = ' ';
    assert_int_equal(gw_sem_verify(big, m, big, m), GW_SEMV_TOO_LONG);
    /* One long word, and a very long quoted literal, stay within bounds. */
    memset(big, 'q', 4000);
    assert_int_equal(gw_sem_verify(big, 4000, big, 4000), GW_SEMV_OK);
    free(big);
    /* Lengths are honoured: the texts need not be NUL-terminated. */
    const char *a = "List birds of Chile XXXX";
    const char *b = "list birds of chile";
    assert_int_equal(gw_sem_verify(a, 19, b, strlen(b)), GW_SEMV_OK);
    assert_int_equal(gw_sem_verify(a, strlen(a), b, strlen(b)), GW_SEMV_LITERAL);
    /* Unterminated quotes and odd bytes are only separators. */
    SAME("Say \"hello", "say hello");
    DIFF("Wie sortiere ich eine Liste?", "How do I sort a list?", GW_SEMV_CONTENT);
    assert_true(
        gw_semantic_guards_agree("Hello, list the moons of Mars", "list the moons of Mars"));
    assert_false(gw_semantic_guards_agree("list the moons of Mars", "list the moons of Jupiter"));
    assert_string_equal(gw_semv_name(GW_SEMV_ROLES), "roles");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity_case_punctuation),
        cmocka_unit_test(test_stop_words_and_politeness),
        cmocka_unit_test(test_inflection),
        cmocka_unit_test(test_typos),
        cmocka_unit_test(test_synonyms),
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_literals),
        cmocka_unit_test(test_scope),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_question_words_modals_tense),
        cmocka_unit_test(test_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
