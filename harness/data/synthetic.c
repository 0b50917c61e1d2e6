/* A synthetic classification dataset, generated on demand as a pure function
 * of (split, index), for tests and throughput benchmarks.
 *
 * Class k has a smooth prototype: a 4x4 grid of values in [-1, 1] per
 * channel (hash of k), upsampled bilinearly to the image size. Sample i has
 * label i % classes and pixels
 *     128 + 64 * prototype + brightness offset U(-16, 16) + 32 * noise,
 * noise approximately N(0, 1) per pixel, clamped to 0..255. Prototypes are
 * far apart relative to the noise, so small networks learn it in a few
 * hundred steps, yet no single pixel gives the class away. The data does
 * not depend on the run seed (the dataset is fixed; runs vary).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness/data/dataset_impl.h"
#include "kernels/error.h"
#include "kernels/rng.h"

#define SYN_SEED 0x73796e7468657469ull
#define SYN_GRID 4
#define SYN_STATS_IMAGES 256

typedef struct syn_impl {
    float *grid; /* classes * c * SYN_GRID * SYN_GRID */
    uint64_t split_seed;
} syn_impl;

/* Bilinear interpolation of the class grid at pixel (y, x) of an h x w image. */
static float prototype(const float *g, int y, int x, int h, int w)
{
    float gy = h > 1 ? (float)y * (SYN_GRID - 1) / (float)(h - 1) : 0.0f;
    float gx = w > 1 ? (float)x * (SYN_GRID - 1) / (float)(w - 1) : 0.0f;
    int y0 = (int)gy, x0 = (int)gx;
    int y1 = y0 + 1 < SYN_GRID ? y0 + 1 : y0, x1 = x0 + 1 < SYN_GRID ? x0 + 1 : x0;
    float fy = gy - (float)y0, fx = gx - (float)x0;
    float top = g[y0 * SYN_GRID + x0] * (1 - fx) + g[y0 * SYN_GRID + x1] * fx;
    float bot = g[y1 * SYN_GRID + x0] * (1 - fx) + g[y1 * SYN_GRID + x1] * fx;
    return top * (1 - fy) + bot * fy;
}

/* Approximately N(0, 1) from one 64-bit draw: four 16-bit uniforms summed. */
static float cheap_normal(tb_rng *r)
{
    uint64_t x = tb_rng_next(r);
    float s = 0;
    for (int k = 0; k < 4; k++)
        s += (float)((x >> (16 * k)) & 0xffff) * (1.0f / 65536.0f);
    return (s - 2.0f) * 1.7320508f; /* variance of the sum is 4/12 */
}

static int syn_read(tb_dataset *ds, int64_t src, int min_side, tb_image *img)
{
    (void)min_side;
    const syn_impl *s = ds->impl;
    int h = ds->h, w = ds->w, c = ds->c;
    TB_TRY(tb_image_reserve(img, h, w, c));
    tb_rng r;
    tb_rng_seed(&r, s->split_seed, (uint64_t)src);
    float offset = tb_rng_uniform_f(&r, -16.0f, 16.0f);
    int k = ds->labels[src];
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int ch = 0; ch < c; ch++) {
                const float *g = s->grid + ((size_t)k * c + ch) * SYN_GRID * SYN_GRID;
                float v = 128.0f + 64.0f * prototype(g, y, x, h, w) + offset + 32.0f * cheap_normal(&r);
                v = v < 0 ? 0 : v > 255 ? 255 : v;
                img->data[((size_t)y * w + x) * c + ch] = (uint8_t)lrintf(v);
            }
    return TB_OK;
}

static void syn_close(tb_dataset *ds)
{
    syn_impl *s = ds->impl;
    if (s)
        free(s->grid);
    free(s);
    ds->impl = NULL;
}

static const tb_dataset_ops syn_ops = {syn_read, syn_close};

/* Statistics from a sample of the training split (the same for both splits). */
static int syn_stats(tb_dataset *ds)
{
    syn_impl *s = ds->impl;
    uint64_t saved = s->split_seed;
    int32_t *saved_labels = ds->labels;
    int64_t k = SYN_STATS_IMAGES;
    int32_t *labels = malloc((size_t)k * sizeof *labels);
    TB_CHECK(labels, TB_ERR_NOMEM, "synthetic dataset: out of memory");
    for (int64_t i = 0; i < k; i++)
        labels[i] = (int32_t)(i % ds->classes);
    s->split_seed = SYN_SEED;
    ds->labels = labels;
    tb_pixel_stats st = {0};
    tb_image img = {0};
    int rc = TB_OK;
    for (int64_t i = 0; i < k && rc == TB_OK; i++) {
        rc = syn_read(ds, i, 0, &img);
        if (rc == TB_OK)
            tb_pixel_stats_add(&st, img.data, (int64_t)ds->h * ds->w, ds->c);
    }
    tb_image_free(&img);
    free(labels);
    ds->labels = saved_labels;
    s->split_seed = saved;
    TB_TRY(rc);
    return tb_pixel_stats_finish(&st, ds->c, ds->mean, ds->std, "synthetic dataset");
}

int tb_synthetic_open(tb_dataset *ds, const tb_data_config *cfg, bool train_files)
{
    int64_t n = train_files ? cfg->synthetic_train : cfg->synthetic_val;
    TB_CHECK(n > 0 && n <= INT32_MAX, TB_ERR_INVALID, "data.synthetic_%s must be in 1..2^31-1, got %lld",
             train_files ? "train" : "val", (long long)n);
    TB_CHECK(cfg->synthetic_classes >= 2 && cfg->synthetic_classes <= 100000, TB_ERR_INVALID,
             "data.synthetic_classes must be in 2..100000, got %d", cfg->synthetic_classes);
    TB_CHECK(cfg->synthetic_size >= 1 && cfg->synthetic_size <= 4096, TB_ERR_INVALID,
             "data.synthetic_size must be in 1..4096, got %d", cfg->synthetic_size);
    TB_CHECK(cfg->synthetic_channels == 1 || cfg->synthetic_channels == 3, TB_ERR_INVALID,
             "data.synthetic_channels must be 1 or 3, got %d", cfg->synthetic_channels);
    ds->h = ds->w = cfg->synthetic_size;
    ds->c = cfg->synthetic_channels;
    ds->classes = cfg->synthetic_classes;
    ds->n_src = n;
    ds->labels = malloc((size_t)n * sizeof *ds->labels);
    syn_impl *s = calloc(1, sizeof *s);
    size_t cells = (size_t)ds->classes * (size_t)ds->c * SYN_GRID * SYN_GRID;
    if (s)
        s->grid = malloc(cells * sizeof *s->grid);
    ds->impl = s;
    ds->ops = &syn_ops;
    TB_CHECK(ds->labels && s && s->grid, TB_ERR_NOMEM, "synthetic dataset: cannot allocate %lld labels", (long long)n);
    for (int64_t i = 0; i < n; i++)
        ds->labels[i] = (int32_t)(i % ds->classes);
    for (size_t i = 0; i < cells; i++)
        s->grid[i] = 2.0f * tb_hash_uniform(SYN_SEED, i) - 1.0f;
    s->split_seed = train_files ? SYN_SEED : tb_splitmix64(SYN_SEED);
    return syn_stats(ds);
}
