/* Random numbers that are a pure function of a seed.
 *
 * tb_rng is xoshiro256** seeded through splitmix64: a host-side stream for
 * shuffling, augmentation and initialisation. tb_hash_uniform() is counter
 * based (a hash of seed and index) so that a kernel on any backend, with any
 * number of threads, draws the same value for element i (dropout masks).
 */
#ifndef TB_RNG_H
#define TB_RNG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tb_rng {
    uint64_t s[4];
} tb_rng;

/* Seeds from any 64-bit value; `stream` separates independent streams derived
 * from one seed (e.g. per epoch, per worker item). */
void tb_rng_seed(tb_rng *r, uint64_t seed, uint64_t stream);
uint64_t tb_rng_next(tb_rng *r);
double tb_rng_uniform(tb_rng *r);                  /* [0, 1) */
float tb_rng_uniform_f(tb_rng *r, float lo, float hi);
uint64_t tb_rng_below(tb_rng *r, uint64_t n);      /* [0, n), unbiased */
double tb_rng_normal(tb_rng *r);                   /* N(0, 1) */
double tb_rng_gamma(tb_rng *r, double shape);      /* Gamma(shape, 1) */
double tb_rng_beta(tb_rng *r, double a, double b); /* Beta(a, b) */
void tb_rng_shuffle_i32(tb_rng *r, int32_t *v, int64_t n);

static inline uint64_t tb_splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* The seed of a training graph's dropout draw: graph seed `seed`, training
 * step `step`, node `salt` (every node and step draws its own mask). */
static inline uint64_t tb_dropout_step_seed(uint64_t seed, uint64_t step, uint64_t salt)
{
    return tb_splitmix64(seed ^ tb_splitmix64(step * 4099u + salt));
}

/* Uniform [0, 1) for element `i` of draw `seed` (24 bits, exact in f32). */
static inline float tb_hash_uniform(uint64_t seed, uint64_t i)
{
    uint64_t h = tb_splitmix64(seed ^ tb_splitmix64(i));
    return (float)(h >> 40) * (1.0f / 16777216.0f);
}

#ifdef __cplusplus
}
#endif
#endif
