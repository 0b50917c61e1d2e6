/* Augmentation pipelines: a decoded u8 image in, a normalised f32 HWC image
 * of size x size x c out. Every random choice is drawn from the rng the
 * caller passes (seeded per sample by the loader).
 *
 * Pipelines (cfg->augment):
 *   auto      small when the images are <= 64 px (the dataset's native size,
 *             or image_size for imagefolder), imagenet otherwise
 *   none      resize to size x size (if needed), normalise
 *   small     train: resize to size x size (if needed), pad 4 with zero
 *             pixels, random size x size crop, horizontal flip p = 0.5
 *             (no colour ops, whatever the channel count); eval: as none
 *   imagenet  train, the paper's recipe (GluonCV's ImageNet training):
 *             random resized crop (area 8%-100%, aspect 3/4-4/3 log-uniform,
 *             10 attempts then the center-crop fallback, as torchvision),
 *             resized (antialiased bilinear) to size x size, flip p = 0.5,
 *             brightness/contrast/saturation jitter 0.4 in a random order
 *             per image (GluonCV's RandomColorJitter; factors U(0.6, 1.4),
 *             each result clamped to 0..255 as torchvision does), PCA
 *             lighting noise 0.1 with the ImageNet eigenvalues/vectors,
 *             normalisation. Gray images skip saturation and lighting.
 *             eval: resize the shorter side to round(size / 0.875), center
 *             crop size x size (computed as one resampling of the
 *             corresponding box of the original)
 * Beyond the paper, random erasing (timm's RandomErasing, mode "pixel"): in
 * training, with probability p, one rectangle of 2%-33% of the area and
 * aspect 0.3-3.3 (log-uniform, 10 attempts) is filled with per-pixel N(0, 1)
 * noise in the normalised space, after normalisation.
 */
#ifndef TB_AUGMENT_H
#define TB_AUGMENT_H

#include <stdbool.h>
#include <stdint.h>

#include "harness/data/dataset.h"
#include "harness/data/resample.h"
#include "kernels/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tb_augment_kind { TB_AUGMENT_NONE = 0, TB_AUGMENT_SMALL, TB_AUGMENT_IMAGENET } tb_augment_kind;

typedef struct tb_augment {
    tb_augment_kind kind;
    bool train;
    int size;              /* output height = width */
    int c;                 /* channels, input = output */
    float mean[3], std[3]; /* 0..255 scale */
    float random_erasing;  /* probability, train only */
} tb_augment;

/* Resolves an augment name ("auto", "none", "small", "imagenet"; NULL or ""
 * = auto) and the output size for a dataset of native size native (0 when
 * images vary). image_size 0 = native (none/small) or 224 (imagenet). */
int tb_augment_resolve(const char *name, int native, int image_size, tb_augment_kind *kind, int *size);
const char *tb_augment_kind_name(tb_augment_kind kind);
/* The shorter side a decoder must keep for this pipeline (JPEG DCT scaling). */
int tb_augment_min_side(const tb_augment *a);

typedef struct tb_augment_scratch {
    tb_resample_scratch rs;
    float *tmp;
    size_t tmp_cap;
} tb_augment_scratch;

void tb_augment_scratch_free(tb_augment_scratch *s);

/* img (u8 HWC, img->c == a->c) -> out (size * size * c floats, normalised). */
int tb_augment_apply(const tb_augment *a, const tb_image *img, tb_rng *rng, float *out, tb_augment_scratch *s);

/* ---- building blocks, exposed for tests ---------------------------------- */

/* torchvision RandomResizedCrop.get_params: box = {y0, x0, height, width}. */
void tb_random_resized_crop_box(tb_rng *r, int h, int w, double scale_lo, double scale_hi, double ratio_lo,
                                double ratio_hi, int box[4]);
/* The eval box: shorter side resized to round(size / 0.875), center size x size. */
void tb_center_crop_box(int h, int w, int size, double box[4]);
void tb_hflip(float *img, int h, int w, int c);
/* Jitter draws: order[i] in {0 brightness, 1 contrast, 2 saturation} (a
 * permutation), factors[k] for op k in [1 - strength, 1 + strength]. */
void tb_color_jitter_params(tb_rng *r, float strength, int order[3], float factors[3]);
void tb_adjust_brightness(float *img, int64_t npix, int c, float factor);
void tb_adjust_contrast(float *img, int64_t npix, int c, float factor);
void tb_adjust_saturation(float *img, int64_t npix, int c, float factor);
/* PCA lighting (AlexNet; GluonCV's RandomLighting), RGB only: adds
 * eigvec * (alpha .* eigval) with alpha ~ N(0, alphastd^2) per channel;
 * rgb_shift (may be NULL) receives the added vector. */
void tb_lighting(tb_rng *r, float *img, int64_t npix, float alphastd, float rgb_shift[3]);
/* timm RandomErasing (see above); box (may be NULL) receives {y0, x0, h, w},
 * all 0 when nothing was erased. */
void tb_random_erasing(tb_rng *r, float *img, int h, int w, int c, float p, int box[4]);

#ifdef __cplusplus
}
#endif
#endif
