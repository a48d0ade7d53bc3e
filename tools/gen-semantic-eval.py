#!/usr/bin/env python3
"""Generates tests/data/semantic_eval.jsonl: labelled prompt pairs for the
semantic cache.

label "dup": the same question (case, punctuation, typos, filler words,
reordered clauses) -> a semantic hit is wanted.
label "neg": a hard negative (swapped entities, changed numbers, added
negation, different units, different language, a different entity) -> a hit
would answer a different question.

Every row has an "id" (<kind>-<n>), a "group" (the base question or the
template it came from) and a "split": "dev" or "heldout", fixed by the first
byte of sha256(group) (odd: heldout). Splitting by group keeps every variant
of one base question or template on one side, so the held-out part asks
questions the development part never saw. Tune the semantic verifier on
"dev" only; report on "heldout" (and on tests/data/semantic_handmade.jsonl,
which is all held out).

Deterministic (fixed seed); the output is committed, rerun only to extend it.
"""
import hashlib
import json
import random
import sys

rnd = random.Random(20261128)

BASE = [
    "How do I sort a list in Python?",
    "What is the difference between a process and a thread?",
    "Explain how TCP congestion control works.",
    "What are the health benefits of green tea?",
    "How do I reverse a string in JavaScript?",
    "What causes the seasons on Earth?",
    "Write a haiku about autumn leaves.",
    "How does a hash table handle collisions?",
    "What is the capital of Australia?",
    "Summarize the plot of Hamlet.",
    "How do vaccines train the immune system?",
    "What is the time complexity of binary search?",
    "Explain the CAP theorem in distributed systems.",
    "How can I improve my sleep quality?",
    "What is the difference between TCP and UDP?",
    "How do I create a virtual environment in Python?",
    "Why is the sky blue during the day?",
    "What is a closure in programming?",
    "How do I center a div with CSS?",
    "What does the mitochondria do in a cell?",
    "Explain recursion with a simple example.",
    "How do I make sourdough bread at home?",
    "What is the meaning of the word serendipity?",
    "How does public key cryptography work?",
    "What are good stretches for lower back pain?",
    "How do I undo the last commit in git?",
    "What is the boiling point of water at sea level?",
    "Explain what a Kafka consumer group is.",
    "How do noise cancelling headphones work?",
    "What is the difference between weather and climate?",
    "How do I read a CSV file with pandas?",
    "Explain the rules of chess castling.",
    "What is photosynthesis?",
    "How do I write a unit test in Go?",
    "What are the main causes of inflation?",
    "How does a refrigerator keep food cold?",
    "What is the difference between RAM and storage?",
    "How do I handle errors in Rust?",
    "What is machine learning?",
    "Explain how a bill becomes a law.",
]

CLAUSE_PAIRS = [
    ("In Python, how do I sort a list?", "How do I sort a list in Python?"),
    ("Using git, how do I undo the last commit?", "How do I undo the last commit using git?"),
    ("For a beginner, what is a closure?", "What is a closure for a beginner?"),
    ("In JavaScript, how do I reverse a string?", "How do I reverse a string in JavaScript?"),
    ("With pandas, how do I read a CSV file?", "How do I read a CSV file with pandas?"),
    ("In simple terms, what is machine learning?", "What is machine learning in simple terms?"),
    ("At sea level, what is the boiling point of water?", "What is the boiling point of water at sea level?"),
    ("In CSS, how do I center a div?", "How do I center a div in CSS?"),
    ("In Go, how do I write a unit test?", "How do I write a unit test in Go?"),
    ("In Rust, how do I handle errors?", "How do I handle errors in Rust?"),
    ("For distributed systems, explain the CAP theorem.", "Explain the CAP theorem for distributed systems."),
    ("At home, how do I make sourdough bread?", "How do I make sourdough bread at home?"),
]

FILLERS = [
    ("please ", ""), ("hey, ", ""), ("can you tell me ", ""), ("quick question: ", ""),
    ("", " please"), ("", " thanks"), ("could you ", ""), ("i want to know ", ""),
]


def lower_first(s):
    return s[0].lower() + s[1:]


def typo(s):
    words = s.split()
    cands = [i for i, w in enumerate(words) if len(w) > 5 and w.isalpha() and w.islower()]
    if not cands:
        return None
    i = rnd.choice(cands)
    w = words[i]
    j = rnd.randrange(1, len(w) - 2)
    kind = rnd.choice(["swap", "drop", "double"])
    if kind == "swap":
        w = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    elif kind == "drop":
        w = w[:j] + w[j + 1:]
    else:
        w = w[:j] + w[j] + w[j:]
    words[i] = w
    return " ".join(words)


def positives():
    out = []
    for q in BASE:
        out.append((q, q.lower(), "case", q))
        out.append((q, q.upper() if len(q) < 40 else q.rstrip("?.!").lower(), "case_punct", q))
        out.append((q, q.rstrip("?.!") + "??", "punctuation", q))
        t = typo(q)
        if t:
            out.append((q, t, "typo", q))
        pre, post = rnd.choice(FILLERS)
        body = lower_first(q) if pre else q
        out.append((q, (pre + body).rstrip("?.!") + post + "?", "filler", q))
    for a, b in CLAUSE_PAIRS:
        out.append((a, b, "reordered_clause", b))
    return out


CITIES = ["NY", "FL", "Boston", "Chicago", "Denver", "Seattle", "Austin", "Miami", "Paris", "Berlin",
          "Madrid", "Rome", "Tokyo", "Lisbon"]
SWAP_TEMPLATES = [
    "flights from {a} to {b} next week",
    "What is the cheapest way to travel from {a} to {b}?",
    "How long is the drive from {a} to {b}?",
    "Convert 100 {a} to {b}",
    "Is {a} larger than {b}?",
    "Translate this sentence from {a} to {b}: good morning",
    "Did {a} defeat {b} in the final?",
]
CURRENCIES = ["USD", "EUR", "GBP", "JPY", "CHF"]
LANGS = ["English", "French", "German", "Spanish", "Italian"]
TEAMS = ["Brazil", "Germany", "Argentina", "France", "Spain", "Italy"]
COUNTRIES = ["Canada", "Mexico", "Brazil", "India", "Japan", "Norway", "Egypt"]

NUMBER_TEMPLATES = [
    "Write a function to sort {n} items",
    "Give me {n} ideas for a birthday party",
    "What is {n} times 7?",
    "Summarize the article in {n} words",
    "What was the population of Paris in {n}?",
    "List {n} prime numbers",
    "Is {n} a prime number?",
    "Write a {n} line poem about the sea",
    "What is the square root of {n}?",
    "Plan a {n} day trip to Japan",
]

NEGATION_PAIRS = [
    ("Is chocolate safe for dogs?", "Is chocolate not safe for dogs?"),
    ("Which foods should I eat before running?", "Which foods should I not eat before running?"),
    ("List countries that use the euro", "List countries that do not use the euro"),
    ("Is it safe to drink tap water in Lisbon?", "Is it not safe to drink tap water in Lisbon?"),
    ("Should I use a mutex here?", "Should I never use a mutex here?"),
    ("Why does my code compile?", "Why doesn't my code compile?"),
    ("Which animals can swim?", "Which animals cannot swim?"),
    ("Write a sentence with the word apple", "Write a sentence without the word apple"),
    ("Is the function thread safe?", "Is the function not thread safe?"),
    ("Explain why the test passes", "Explain why the test never passes"),
    ("What plants need direct sunlight?", "What plants do not need direct sunlight?"),
    ("Is this mushroom edible?", "Is this mushroom not edible?"),
    ("Do cats like water?", "Do cats not like water?"),
    ("Why is my query using the index?", "Why is my query not using the index?"),
    ("Which vitamins are water soluble?", "Which vitamins are not water soluble?"),
    ("Can I freeze cooked rice?", "Can I not freeze cooked rice?"),
    ("Is the server reachable from the internet?", "Is the server unreachable and not reachable from the internet?"),
    ("Tell me which stocks are a good buy", "Tell me which stocks are not a good buy"),
    ("Is it legal to park here on Sundays?", "Is it not legal to park here on Sundays?"),
    ("Should I add salt to the pasta water?", "Should I not add salt to the pasta water?"),
]

UNIT_PAIRS = [
    ("How many meters are in 10 km?", "How many meters are in 10 miles?"),
    ("Convert 5 kg to pounds", "Convert 5 grams to pounds"),
    ("What is 30 Celsius in Fahrenheit?", "What is 30 Kelvin in Fahrenheit?"),
    ("How long does it take to walk 3 miles?", "How long does it take to walk 3 km?"),
    ("Convert 2 liters to cups", "Convert 2 gallons to cups"),
    ("How many calories are in 100 grams of rice?", "How many calories are in 100 ounces of rice?"),
    ("What is 60 mph in km per hour?", "What is 60 knots in km per hour?"),
    ("How many bytes are in 4 GB?", "How many bytes are in 4 GiB?"),
    ("Is 2 hours enough to visit the museum?", "Is 2 days enough to visit the museum?"),
    ("Convert 12 inches to centimeters", "Convert 12 feet to centimeters"),
    ("How much is 50 dollars in euros?", "How much is 50 pounds in euros?"),
    ("Bake the cake at 180 degrees for 30 minutes?", "Bake the cake at 180 degrees for 30 hours?"),
]

LANGUAGE_PAIRS = [
    ("What is the capital of France?", "Quelle est la capitale de la France ?"),
    ("How do I sort a list in Python?", "Wie sortiere ich eine Liste in Python?"),
    ("What time is it in Tokyo?", "Que hora es en Tokio?"),
    ("Explain machine learning", "Explique el aprendizaje automatico"),
    ("Where is the nearest train station?", "Ou est la gare la plus proche ?"),
    ("How do I make bread at home?", "Come faccio il pane in casa?"),
    ("What is the weather like today?", "Wie ist das Wetter heute?"),
    ("Write a poem about the sea", "Escribe un poema sobre el mar"),
    ("How old is the universe?", "Quel est l'age de l'univers ?"),
    ("What is a closure in programming?", "Was ist eine Closure in der Programmierung?"),
    ("Recommend a good book about history", "Recomiendame un buen libro de historia"),
    ("How do vaccines work?", "Come funzionano i vaccini?"),
    ("Translate good morning", "Traduire bonjour"),
    ("What is the speed of light?", "Qual e a velocidade da luz?"),
    ("How many people live in Berlin?", "Wie viele Menschen leben in Berlin?"),
]

KEYWORD_CHANGE = [
    ("How do I sort a list in Python?", "How do I sort a dictionary in Python?"),
    ("Explain how TCP congestion control works.", "Explain how TCP flow control works."),
    ("What are the health benefits of green tea?", "What are the health risks of green tea?"),
    ("How do I reverse a string in JavaScript?", "How do I reverse an array in JavaScript?"),
    ("What causes the seasons on Earth?", "What causes the tides on Earth?"),
    ("Write a haiku about autumn leaves.", "Write a limerick about autumn leaves."),
    ("How does a hash table handle collisions?", "How does a hash table handle resizing?"),
    ("What is the time complexity of binary search?", "What is the space complexity of binary search?"),
    ("How can I improve my sleep quality?", "How can I improve my posture quality?"),
    ("How do I create a virtual environment in Python?", "How do I delete a virtual environment in Python?"),
    ("Why is the sky blue during the day?", "Why is the sky red during the sunset?"),
    ("How do I center a div with CSS?", "How do I hide a div with CSS?"),
    ("What does the mitochondria do in a cell?", "What does the ribosome do in a cell?"),
    ("How do I make sourdough bread at home?", "How do I make sourdough pizza at home?"),
    ("What is the meaning of the word serendipity?", "What is the origin of the word serendipity?"),
    ("What are good stretches for lower back pain?", "What are good stretches for neck pain?"),
    ("How do I undo the last commit in git?", "How do I amend the last commit in git?"),
    ("What is the boiling point of water at sea level?", "What is the freezing point of water at sea level?"),
    ("Explain what a Kafka consumer group is.", "Explain what a Kafka partition leader is."),
    ("How do noise cancelling headphones work?", "How do bone conduction headphones work?"),
    ("How do I read a CSV file with pandas?", "How do I write a CSV file with pandas?"),
    ("What are the main causes of inflation?", "What are the main effects of inflation?"),
    ("How does a refrigerator keep food cold?", "How does an oven keep food warm?"),
    ("How do I handle errors in Rust?", "How do I handle lifetimes in Rust?"),
    ("Explain how a bill becomes a law.", "Explain how a judge is appointed."),
    ("what is the capital of france", "what is the capital of spain"),
    ("how do i install docker on ubuntu", "how do i uninstall docker on ubuntu"),
    ("best way to learn guitar as an adult", "best way to learn piano as an adult"),
    ("write a cover letter for a nursing job", "write a resignation letter for a nursing job"),
    ("what is the difference between a list and a tuple", "what is the difference between a list and a set"),
    ("summarize the plot of hamlet", "summarize the plot of macbeth"),
    ("how to cook rice in a pressure cooker", "how to cook beans in a pressure cooker"),
    ("what are the symptoms of the flu", "what are the symptoms of a cold"),
    ("explain the rules of chess castling", "explain the rules of chess en passant"),
    ("how do i merge two branches in git", "how do i delete two branches in git"),
]

ENTITY_CHANGE = [
    "What is the capital of {a}?",
    "Write a detailed summary of the economic history of {a} in the 19th century",
    "What is the population of {a} according to the latest census?",
    "Recommend the best places to visit in {a} during the summer holidays",
    "What languages are spoken in {a} and how many speakers does each have?",
]


def negatives():
    out = []
    for t in SWAP_TEMPLATES:
        pool = CITIES if "{a} to {b}" in t and "Convert" not in t and "Translate" not in t else None
        if "Convert" in t:
            pool = CURRENCIES
        elif "Translate" in t:
            pool = LANGS
        elif "defeat" in t:
            pool = TEAMS
        elif "larger" in t:
            pool = COUNTRIES
        for _ in range(4):
            a, b = rnd.sample(pool, 2)
            out.append((t.format(a=a, b=b), t.format(a=b, b=a), "swapped_entities", t))
    for t in NUMBER_TEMPLATES:
        for _ in range(4):
            n = rnd.choice([3, 5, 7, 10, 12, 20, 50, 100, 1990, 2010])
            m = rnd.choice([x for x in [4, 6, 8, 11, 15, 25, 60, 1000, 1995, 2020] if x != n])
            out.append((t.format(n=n), t.format(n=m), "changed_number", t))
    for a, b in NEGATION_PAIRS:
        out.append((a, b, "negation", a))
    for a, b in UNIT_PAIRS:
        out.append((a, b, "different_unit", a))
    for a, b in LANGUAGE_PAIRS:
        out.append((a, b, "different_language", a))
    for a, b in KEYWORD_CHANGE:
        out.append((a, b, "changed_keyword", a))
    for t in ENTITY_CHANGE:
        for _ in range(4):
            a, b = rnd.sample(COUNTRIES, 2)
            out.append((t.format(a=a), t.format(a=b), "different_entity", t))
    return out


def split_of(group):
    return "heldout" if hashlib.sha256(group.encode()).digest()[0] & 1 else "dev"


def row(a, b, label, kind, group):
    return {"a": a, "b": b, "label": label, "kind": kind, "group": group,
            "split": split_of(group)}


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "tests/data/semantic_eval.jsonl"
    rows = [row(a, b, "dup", k, g) for a, b, k, g in positives()]
    rows += [row(a, b, "neg", k, g) for a, b, k, g in negatives()]
    seen = {}
    for r in rows:
        seen[r["kind"]] = seen.get(r["kind"], 0) + 1
        r["id"] = "%s-%d" % (r["kind"], seen[r["kind"]])
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    dups = sum(r["label"] == "dup" for r in rows)
    held = sum(r["split"] == "heldout" for r in rows)
    print(f"{len(rows)} pairs: {dups} dup, {len(rows) - dups} neg, {held} held out -> {path}")


if __name__ == "__main__":
    main()
