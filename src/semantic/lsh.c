/*
 * lsh: random-hyperplane signatures in bands; see embed.h.
 *
 * Hyperplane components are drawn from a splitmix64 stream (uniform in
 * [-1, 1): for sign tests only the direction distribution matters much, and a
 * fixed, portable generator keeps every worker on the same planes).
 */
#include <math.h>
#include <stdlib.h>

#include "semantic/embed.h"

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Approximately normal: the sum of four uniforms, centred. */
static float gaussianish(uint64_t *s)
{
    double sum = 0;
    for (int i = 0; i < 4; i++)
        sum += (double)(splitmix(s) >> 11) / (double)(1ULL << 53);
    return (float)(sum - 2.0);
}

int gw_lsh_init(gw_lsh *l, size_t dim, int bands, int rows, uint64_t seed)
{
    if (dim == 0 || dim > GW_EMBED_MAX_DIM || bands < 1 || bands > GW_LSH_MAX_BANDS || rows < 1 ||
        rows > GW_LSH_MAX_ROWS)
        return -1;
    size_t n = (size_t)bands * (size_t)rows * dim;
    l->planes = malloc(n * sizeof(float));
    if (l->planes == NULL)
        return -1;
    l->dim = dim;
    l->bands = bands;
    l->rows = rows;
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++)
        l->planes[i] = gaussianish(&s);
    return 0;
}

void gw_lsh_cleanup(gw_lsh *l)
{
    free(l->planes);
    l->planes = NULL;
}

/* Hashing-embedder vectors are sparse (a prompt touches tens of the 512
 * dimensions), so the dot products run over the non-zero components only. */
void gw_lsh_keys(const gw_lsh *l, const float *v, uint64_t *keys)
{
    uint32_t nz[GW_EMBED_MAX_DIM];
    size_t nnz = 0;
    for (size_t i = 0; i < l->dim; i++)
        if (v[i] != 0)
            nz[nnz++] = (uint32_t)i;
    const float *p = l->planes;
    for (int b = 0; b < l->bands; b++) {
        uint64_t bits = 0;
        for (int r = 0; r < l->rows; r++) {
            float dot = 0;
            for (size_t k = 0; k < nnz; k++)
                dot += p[nz[k]] * v[nz[k]];
            p += l->dim;
            bits = (bits << 1) | (dot >= 0 ? 1u : 0u);
        }
        /* Band index in the key so equal bit patterns of different bands differ. */
        keys[b] = bits | ((uint64_t)b << 40);
    }
}

double gw_lsh_collision_probability(int bands, int rows, double cos)
{
    if (cos > 1)
        cos = 1;
    if (cos < -1)
        cos = -1;
    double p = 1.0 - acos(cos) / M_PI;
    return 1.0 - pow(1.0 - pow(p, rows), bands);
}
