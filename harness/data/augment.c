/* Augmentation pipelines (see augment.h for the recipes and decisions). */
#include "harness/data/augment.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/error.h"

#define SMALL_PAD 4
#define SMALL_MAX_SIDE 64
#define IMAGENET_DEFAULT_SIZE 224
#define EVAL_CROP_FRACTION 0.875
#define JITTER_STRENGTH 0.4f
#define LIGHTING_STD 0.1f

int tb_augment_resolve(const char *name, int native, int image_size, tb_augment_kind *kind, int *size)
{
    TB_CHECK(image_size >= 0 && image_size <= 4096, TB_ERR_INVALID, "data.image_size must be in 0..4096, got %d",
             image_size);
    if (!name || !name[0] || strcmp(name, "auto") == 0) {
        int side = native > 0 ? native : image_size;
        *kind = side > 0 && side <= SMALL_MAX_SIDE ? TB_AUGMENT_SMALL : TB_AUGMENT_IMAGENET;
    } else if (strcmp(name, "none") == 0) {
        *kind = TB_AUGMENT_NONE;
    } else if (strcmp(name, "small") == 0) {
        *kind = TB_AUGMENT_SMALL;
    } else if (strcmp(name, "imagenet") == 0) {
        *kind = TB_AUGMENT_IMAGENET;
    } else {
        return tb_fail(TB_ERR_INVALID, "data.augment: unknown augmentation '%s' (expected auto, none, small or imagenet)",
                       name);
    }
    if (image_size > 0)
        *size = image_size;
    else if (*kind == TB_AUGMENT_IMAGENET)
        *size = IMAGENET_DEFAULT_SIZE;
    else if (native > 0)
        *size = native;
    else
        return tb_fail(TB_ERR_INVALID, "data.image_size must be set for augment '%s' on a dataset whose images vary in "
                       "size (imagefolder)", tb_augment_kind_name(*kind));
    return TB_OK;
}

const char *tb_augment_kind_name(tb_augment_kind kind)
{
    switch (kind) {
    case TB_AUGMENT_NONE: return "none";
    case TB_AUGMENT_SMALL: return "small";
    case TB_AUGMENT_IMAGENET: return "imagenet";
    }
    return "unknown";
}

static int eval_resize_side(int size) { return (int)lround(size / EVAL_CROP_FRACTION); }

int tb_augment_min_side(const tb_augment *a)
{
    return a->kind == TB_AUGMENT_IMAGENET && !a->train ? eval_resize_side(a->size) : a->size;
}

void tb_augment_scratch_free(tb_augment_scratch *s)
{
    tb_resample_scratch_free(&s->rs);
    free(s->tmp);
    memset(s, 0, sizeof *s);
}

/* ---- geometry -------------------------------------------------------------- */

void tb_random_resized_crop_box(tb_rng *r, int h, int w, double scale_lo, double scale_hi, double ratio_lo,
                                double ratio_hi, int box[4])
{
    double area = (double)h * w;
    double log_lo = log(ratio_lo), log_hi = log(ratio_hi);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * (scale_lo + (scale_hi - scale_lo) * tb_rng_uniform(r));
        double aspect = exp(log_lo + (log_hi - log_lo) * tb_rng_uniform(r));
        int cw = (int)lround(sqrt(target * aspect));
        int ch = (int)lround(sqrt(target / aspect));
        if (cw > 0 && cw <= w && ch > 0 && ch <= h) {
            box[0] = (int)tb_rng_below(r, (uint64_t)(h - ch + 1));
            box[1] = (int)tb_rng_below(r, (uint64_t)(w - cw + 1));
            box[2] = ch;
            box[3] = cw;
            return;
        }
    }
    /* fallback: the largest centered crop whose aspect is within the range */
    double in_ratio = (double)w / h;
    int cw = w, ch = h;
    if (in_ratio < ratio_lo) {
        ch = (int)lround(w / ratio_lo);
    } else if (in_ratio > ratio_hi) {
        cw = (int)lround(h * ratio_hi);
    }
    ch = ch < 1 ? 1 : ch > h ? h : ch;
    cw = cw < 1 ? 1 : cw > w ? w : cw;
    box[0] = (h - ch) / 2;
    box[1] = (w - cw) / 2;
    box[2] = ch;
    box[3] = cw;
}

void tb_center_crop_box(int h, int w, int size, double box[4])
{
    int shorter = h < w ? h : w;
    double side = (double)size * shorter / eval_resize_side(size); /* the crop, in source pixels */
    if (side > shorter)
        side = shorter;
    box[0] = (h - side) / 2.0;
    box[1] = (w - side) / 2.0;
    box[2] = side;
    box[3] = side;
}

void tb_hflip(float *img, int h, int w, int c)
{
    for (int y = 0; y < h; y++) {
        float *row = img + (size_t)y * w * c;
        for (int a = 0, b = w - 1; a < b; a++, b--)
            for (int ch = 0; ch < c; ch++) {
                float t = row[a * c + ch];
                row[a * c + ch] = row[b * c + ch];
                row[b * c + ch] = t;
            }
    }
}

/* ---- colour ---------------------------------------------------------------- */

static inline float clamp255(float v) { return v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v; }

/* ITU-R 601 luma, as GluonCV and torchvision's rgb_to_grayscale */
static inline float luma(const float *p) { return 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2]; }

void tb_color_jitter_params(tb_rng *r, float strength, int order[3], float factors[3])
{
    order[0] = 0;
    order[1] = 1;
    order[2] = 2;
    for (int i = 2; i > 0; i--) {
        int j = (int)tb_rng_below(r, (uint64_t)i + 1);
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int k = 0; k < 3; k++)
        factors[order[k]] = tb_rng_uniform_f(r, 1.0f - strength, 1.0f + strength);
}

void tb_adjust_brightness(float *img, int64_t npix, int c, float factor)
{
    int64_t n = npix * c;
    for (int64_t i = 0; i < n; i++)
        img[i] = clamp255(img[i] * factor);
}

void tb_adjust_contrast(float *img, int64_t npix, int c, float factor)
{
    /* blend with the mean gray level of the whole image */
    double sum = 0.0;
    for (int64_t i = 0; i < npix; i++)
        sum += c == 3 ? luma(img + i * 3) : img[i * c];
    float mean = (float)(sum / (double)npix);
    float add = (1.0f - factor) * mean;
    int64_t n = npix * c;
    for (int64_t i = 0; i < n; i++)
        img[i] = clamp255(img[i] * factor + add);
}

void tb_adjust_saturation(float *img, int64_t npix, int c, float factor)
{
    if (c != 3)
        return; /* a gray image has no saturation */
    for (int64_t i = 0; i < npix; i++) {
        float *p = img + i * 3;
        float add = (1.0f - factor) * luma(p);
        for (int ch = 0; ch < 3; ch++)
            p[ch] = clamp255(p[ch] * factor + add);
    }
}

/* The PCA lighting shift: eigvec * (alpha .* eigval), alpha ~ N(0, alphastd^2). */
static void lighting_shift(tb_rng *r, float alphastd, float rgb[3])
{
    /* ImageNet's RGB eigenvalues and eigenvectors (AlexNet; GluonCV, 0..255 scale) */
    static const float eigval[3] = {55.46f, 4.794f, 1.148f};
    static const float eigvec[3][3] = {{-0.5675f, 0.7192f, 0.4009f},
                                       {-0.5808f, -0.0045f, -0.8140f},
                                       {-0.5836f, -0.6948f, 0.4203f}};
    float alpha[3];
    for (int k = 0; k < 3; k++)
        alpha[k] = (float)tb_rng_normal(r) * alphastd;
    for (int i = 0; i < 3; i++)
        rgb[i] = eigvec[i][0] * alpha[0] * eigval[0] + eigvec[i][1] * alpha[1] * eigval[1] +
                 eigvec[i][2] * alpha[2] * eigval[2];
}

void tb_lighting(tb_rng *r, float *img, int64_t npix, float alphastd, float rgb_shift[3])
{
    float rgb[3];
    lighting_shift(r, alphastd, rgb);
    for (int64_t i = 0; i < npix; i++)
        for (int ch = 0; ch < 3; ch++)
            img[i * 3 + ch] += rgb[ch];
    if (rgb_shift)
        memcpy(rgb_shift, rgb, sizeof rgb);
}

static void color_jitter(tb_rng *r, float *img, int64_t npix, int c)
{
    int order[3];
    float factors[3];
    tb_color_jitter_params(r, JITTER_STRENGTH, order, factors);
    for (int k = 0; k < 3; k++) {
        int op = order[k];
        if (op == 0)
            tb_adjust_brightness(img, npix, c, factors[0]);
        else if (op == 1)
            tb_adjust_contrast(img, npix, c, factors[1]);
        else
            tb_adjust_saturation(img, npix, c, factors[2]);
    }
}

/* ---- normalisation and erasing -------------------------------------------- */

/* (v + shift - mean) / std per channel; shift carries the lighting noise,
 * so both take one pass. */
static void normalize(const tb_augment *a, float *img, int64_t npix, const float shift[3])
{
    float scale[3], bias[3];
    for (int k = 0; k < 3; k++) {
        scale[k] = 1.0f / a->std[k];
        bias[k] = (shift[k] - a->mean[k]) * scale[k];
    }
    if (a->c == 3) {
        for (int64_t i = 0; i < npix; i++)
            for (int ch = 0; ch < 3; ch++)
                img[i * 3 + ch] = img[i * 3 + ch] * scale[ch] + bias[ch];
    } else {
        for (int64_t i = 0; i < npix * a->c; i++)
            img[i] = img[i] * scale[i % a->c] + bias[i % a->c];
    }
}

void tb_random_erasing(tb_rng *r, float *img, int h, int w, int c, float p, int box[4])
{
    if (box)
        box[0] = box[1] = box[2] = box[3] = 0;
    if (p <= 0.0f || tb_rng_uniform(r) >= p)
        return;
    double area = (double)h * w;
    double log_lo = log(0.3), log_hi = log(1.0 / 0.3);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * (0.02 + (1.0 / 3.0 - 0.02) * tb_rng_uniform(r));
        double aspect = exp(log_lo + (log_hi - log_lo) * tb_rng_uniform(r));
        int eh = (int)lround(sqrt(target * aspect));
        int ew = (int)lround(sqrt(target / aspect));
        if (eh < 1 || ew < 1 || eh >= h || ew >= w)
            continue;
        int y0 = (int)tb_rng_below(r, (uint64_t)(h - eh + 1));
        int x0 = (int)tb_rng_below(r, (uint64_t)(w - ew + 1));
        for (int y = y0; y < y0 + eh; y++)
            for (int x = x0; x < x0 + ew; x++)
                for (int ch = 0; ch < c; ch++)
                    img[((size_t)y * w + x) * c + ch] = (float)tb_rng_normal(r);
        if (box) {
            box[0] = y0;
            box[1] = x0;
            box[2] = eh;
            box[3] = ew;
        }
        return;
    }
}

/* ---- pipelines ------------------------------------------------------------- */

static void whole_image_box(const tb_image *img, double box[4])
{
    box[0] = 0;
    box[1] = 0;
    box[2] = img->h;
    box[3] = img->w;
}

static int small_train(const tb_augment *a, const tb_image *img, tb_rng *rng, float *out, tb_augment_scratch *s)
{
    int n = a->size, c = a->c;
    size_t need = (size_t)n * n * c;
    if (need > s->tmp_cap) {
        float *p = realloc(s->tmp, need * sizeof *p);
        TB_CHECK(p, TB_ERR_NOMEM, "augment: cannot allocate %zu floats", need);
        s->tmp = p;
        s->tmp_cap = need;
    }
    /* pad SMALL_PAD zero pixels on every side, a random n x n crop, a flip */
    int dy = (int)tb_rng_below(rng, 2 * SMALL_PAD + 1) - SMALL_PAD;
    int dx = (int)tb_rng_below(rng, 2 * SMALL_PAD + 1) - SMALL_PAD;
    bool flip = tb_rng_uniform(rng) < 0.5;
    double box[4];
    whole_image_box(img, box);
    TB_TRY(tb_resample_box(img->data, img->h, img->w, c, box, s->tmp, n, n, flip, &s->rs));
    /* flipping first and then shifting by -dx equals shifting by dx and then flipping */
    dx = flip ? -dx : dx;
    for (int y = 0; y < n; y++) {
        int sy = y + dy;
        float *dst = out + (size_t)y * n * c;
        if (sy < 0 || sy >= n) {
            memset(dst, 0, (size_t)n * c * sizeof *dst);
            continue;
        }
        const float *src = s->tmp + (size_t)sy * n * c;
        for (int x = 0; x < n; x++) {
            int sx = x + dx;
            bool inside = sx >= 0 && sx < n;
            for (int ch = 0; ch < c; ch++)
                dst[x * c + ch] = inside ? src[sx * c + ch] : 0.0f;
        }
    }
    return TB_OK;
}

/* Everything but normalisation; `shift` receives the lighting noise,
 * which normalize() adds. */
static int imagenet_train(const tb_augment *a, const tb_image *img, tb_rng *rng, float *out, tb_augment_scratch *s,
                          float shift[3])
{
    int n = a->size, c = a->c;
    int ibox[4];
    tb_random_resized_crop_box(rng, img->h, img->w, 0.08, 1.0, 3.0 / 4.0, 4.0 / 3.0, ibox);
    double box[4] = {ibox[0], ibox[1], ibox[2], ibox[3]};
    bool flip = tb_rng_uniform(rng) < 0.5;
    TB_TRY(tb_resample_box(img->data, img->h, img->w, c, box, out, n, n, flip, &s->rs));
    int64_t npix = (int64_t)n * n;
    color_jitter(rng, out, npix, c);
    if (c == 3)
        lighting_shift(rng, LIGHTING_STD, shift);
    return TB_OK;
}

int tb_augment_apply(const tb_augment *a, const tb_image *img, tb_rng *rng, float *out, tb_augment_scratch *s)
{
    TB_CHECK(img->c == a->c, TB_ERR_INVALID, "augment: image has %d channels, the pipeline expects %d", img->c, a->c);
    int n = a->size;
    float shift[3] = {0, 0, 0};
    if (a->train && a->kind == TB_AUGMENT_SMALL) {
        TB_TRY(small_train(a, img, rng, out, s));
    } else if (a->train && a->kind == TB_AUGMENT_IMAGENET) {
        TB_TRY(imagenet_train(a, img, rng, out, s, shift));
    } else {
        double box[4];
        if (a->kind == TB_AUGMENT_IMAGENET)
            tb_center_crop_box(img->h, img->w, n, box);
        else
            whole_image_box(img, box);
        TB_TRY(tb_resample_box(img->data, img->h, img->w, a->c, box, out, n, n, false, &s->rs));
    }
    normalize(a, out, (int64_t)n * n, shift);
    if (a->train && a->random_erasing > 0.0f)
        tb_random_erasing(rng, out, n, n, a->c, a->random_erasing, NULL);
    return TB_OK;
}
