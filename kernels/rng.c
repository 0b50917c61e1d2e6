#include "kernels/rng.h"

#include <math.h>

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void tb_rng_seed(tb_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ tb_splitmix64(stream + 0x632be59bd9b4e019ull);
    for (int i = 0; i < 4; i++) {
        x += 0x9e3779b97f4a7c15ull;
        r->s[i] = tb_splitmix64(x);
    }
}

uint64_t tb_rng_next(tb_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double tb_rng_uniform(tb_rng *r) { return (double)(tb_rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }

float tb_rng_uniform_f(tb_rng *r, float lo, float hi) { return lo + (hi - lo) * (float)tb_rng_uniform(r); }

uint64_t tb_rng_below(tb_rng *r, uint64_t n)
{
    if (n <= 1)
        return 0;
    /* rejection sampling: drop the biased tail of the 64-bit range */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
        x = tb_rng_next(r);
    } while (x >= limit);
    return x % n;
}

double tb_rng_normal(tb_rng *r)
{
    /* Box-Muller; one value per call keeps the stream position simple */
    double u1 = tb_rng_uniform(r), u2 = tb_rng_uniform(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

double tb_rng_gamma(tb_rng *r, double shape)
{
    /* Marsaglia & Tsang (2000); shape < 1 through the boost U^(1/shape) */
    if (shape < 1.0) {
        double u = tb_rng_uniform(r);
        if (u < 1e-300)
            u = 1e-300;
        return tb_rng_gamma(r, shape + 1.0) * pow(u, 1.0 / shape);
    }
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x, v;
        do {
            x = tb_rng_normal(r);
            v = 1.0 + c * x;
        } while (v <= 0.0);
        v = v * v * v;
        double u = tb_rng_uniform(r);
        if (u < 1.0 - 0.0331 * x * x * x * x)
            return d * v;
        if (u > 0.0 && log(u) < 0.5 * x * x + d * (1.0 - v + log(v)))
            return d * v;
    }
}

double tb_rng_beta(tb_rng *r, double a, double b)
{
    double x = tb_rng_gamma(r, a), y = tb_rng_gamma(r, b);
    double s = x + y;
    return s > 0.0 ? x / s : 0.5;
}

void tb_rng_shuffle_i32(tb_rng *r, int32_t *v, int64_t n)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)tb_rng_below(r, (uint64_t)i + 1);
        int32_t t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}
