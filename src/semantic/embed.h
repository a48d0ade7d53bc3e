/*
 * embed: text embedders for the semantic cache, and the pure pieces the
 * semantic tier is built from (vector math, LSH signatures); the check after
 * the search is verify.h.
 *
 * The built-in hashing embedder needs nothing: word unigrams and bigrams plus
 * character trigrams of each word, each hashed to a signed bucket
 * (feature hashing), weighted sublinearly (1 + ln tf), L2-normalised. It is
 * deterministic across processes and builds, which the fleet relies on: a
 * vector stored by one worker is compared by another. Its id and version are
 * part of the cache namespace (gw_embedder_tag), so a change to the features
 * never mixes vectors.
 *
 * HTTP embedders (OpenAI-compatible /v1/embeddings, Ollama /api/embed) go
 * through the providers layer; they produce vectors of their own dimension
 * and the same LSH applies.
 */
#ifndef GW_SEMANTIC_EMBED_H
#define GW_SEMANTIC_EMBED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    GW_EMBED_HASH_DIM = 512,
    GW_EMBED_MAX_DIM = 4096,
    GW_EMBED_MAX_TEXT = 64 * 1024, /* bytes considered; the rest is ignored */
};

#define GW_EMBED_HASH_ID      "hash"
#define GW_EMBED_HASH_VERSION 1

/* Normalises and embeds text into out[GW_EMBED_HASH_DIM] (unit length, or all
 * zeros for text without features). */
void gw_embed_hash(const char *text, size_t len, float *out);

/* "hash-v1-d512": id, version and dimension, for namespacing. */
void gw_embedder_tag(const char *id, int version, int dim, char *out, size_t outlen);

/* Cosine of two vectors of length dim (0 when either is zero). */
double gw_cosine(const float *a, const float *b, size_t dim);
/* Scales v to unit length in place; leaves a zero vector alone. */
void gw_l2_normalise(float *v, size_t dim);

/*
 * Locality-sensitive hashing with random hyperplanes: signature bit i is the
 * sign of <v, h_i>; bits are grouped into bands of `rows` bits, and each band
 * becomes one 64-bit bucket key. Two vectors with angle theta agree on a bit
 * with probability 1 - theta/pi, so they share at least one bucket with
 * probability 1 - (1 - p^rows)^bands. Hyperplanes come from a seeded PRNG so
 * every worker derives the same ones.
 */
enum { GW_LSH_MAX_BANDS = 64, GW_LSH_MAX_ROWS = 32 };

typedef struct {
    size_t dim;
    int bands;
    int rows;
    float *planes; /* bands*rows*dim, row-major */
} gw_lsh;

int gw_lsh_init(gw_lsh *l, size_t dim, int bands, int rows, uint64_t seed);
void gw_lsh_cleanup(gw_lsh *l);
/* Fills keys[bands]: one bucket key per band. */
void gw_lsh_keys(const gw_lsh *l, const float *v, uint64_t *keys);
/* Probability that two vectors with cosine `cos` share a bucket (analysis). */
double gw_lsh_collision_probability(int bands, int rows, double cos);

/* The verifier's verdict as a boolean (gw_sem_verify() in verify.h, which
 * says why a pair was refused): true when a and b ask the same thing. */
bool gw_semantic_guards_agree(const char *a, const char *b);

#endif
