/* Augmentation properties over many draws, resampling, and normalisation. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "data_test_util.h"
#include "harness/data/augment.h"
#include "harness/data/loader.h"
#include "harness/data/resample.h"
#include "kernels/error.h"
#include "kernels/rng.h"

static void test_random_resized_crop(void **state)
{
    (void)state;
    /* {h, w, ordinary}: ordinary images reach both ends of both ranges */
    const int sizes[][3] = {{375, 500, 1}, {224, 224, 1}, {32, 32, 0}, {100, 1000, 0}, {1000, 90, 0}};
    tb_rng r;
    tb_rng_seed(&r, 1, 0);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int h = sizes[s][0], w = sizes[s][1];
        double area = (double)h * w, min_frac = 1, max_frac = 0, min_ar = 10, max_ar = 0;
        for (int i = 0; i < 20000; i++) {
            int b[4];
            tb_random_resized_crop_box(&r, h, w, 0.08, 1.0, 3.0 / 4, 4.0 / 3, b);
            assert_true(b[0] >= 0 && b[1] >= 0 && b[2] >= 1 && b[3] >= 1);
            assert_true(b[0] + b[2] <= h && b[1] + b[3] <= w);
            double frac = (double)b[2] * b[3] / area, ar = (double)b[3] / b[2];
            /* rounding each side to whole pixels moves area and aspect by at most half a pixel per side */
            double tol = 1.0 / (b[2] < b[3] ? b[2] : b[3]);
            bool whole = b[2] == h && b[3] == w; /* the fallback for an in-range aspect */
            if (!whole) {
                assert_true(ar >= 0.75 * (1 - tol) - 1e-9 && ar <= 4.0 / 3 * (1 + tol) + 1e-9);
                assert_true(frac >= 0.08 * (1 - 2 * tol) - 1e-9);
            }
            assert_true(frac <= 1.0);
            min_frac = frac < min_frac ? frac : min_frac;
            max_frac = frac > max_frac ? frac : max_frac;
            min_ar = ar < min_ar ? ar : min_ar;
            max_ar = ar > max_ar ? ar : max_ar;
        }
        if (sizes[s][2]) {
            assert_true(min_frac < 0.09 && max_frac > 0.9);
            assert_true(min_ar < 0.77 && max_ar > 1.3);
        }
    }
}

static void test_rrc_fallback(void **state)
{
    (void)state;
    /* a 10:1 strip: rare successes, and the fallback is the centered 4:3 crop */
    tb_rng r;
    tb_rng_seed(&r, 5, 0);
    int fallback = 0;
    for (int i = 0; i < 2000; i++) {
        int b[4];
        tb_random_resized_crop_box(&r, 10, 1000, 0.08, 1.0, 3.0 / 4, 4.0 / 3, b);
        if (b[2] == 10 && b[3] == 13 && b[1] == (1000 - 13) / 2)
            fallback++;
    }
    assert_true(fallback > 1500);
}

static void test_center_crop_box(void **state)
{
    (void)state;
    double b[4];
    tb_center_crop_box(375, 500, 224, b);
    assert_float_equal(b[2], 224.0 * 375 / 256, 1e-9);
    assert_float_equal(b[3], b[2], 0);
    assert_float_equal(b[0], (375 - b[2]) / 2, 1e-9);
    assert_float_equal(b[1], (500 - b[3]) / 2, 1e-9);
    tb_center_crop_box(32, 32, 32, b); /* 32 / 0.875 = 36.57 -> 37 */
    assert_float_equal(b[2], 32.0 * 32 / 37, 1e-9);
}

static void test_hflip(void **state)
{
    (void)state;
    float img[3 * 5 * 2], orig[3 * 5 * 2];
    for (int i = 0; i < 30; i++)
        img[i] = orig[i] = (float)i;
    tb_hflip(img, 3, 5, 2);
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 5; x++)
            for (int c = 0; c < 2; c++)
                assert_float_equal(img[(y * 5 + x) * 2 + c], orig[(y * 5 + (4 - x)) * 2 + c], 0);
    tb_hflip(img, 3, 5, 2);
    assert_memory_equal(img, orig, sizeof img);
}

static tb_augment make_aug(tb_augment_kind kind, bool train, int size, int c)
{
    tb_augment a = {.kind = kind, .train = train, .size = size, .c = c};
    for (int k = 0; k < 3; k++) {
        a.mean[k] = 0;
        a.std[k] = 1;
    }
    return a;
}

/* small: pad 4 + crop shifts by -4..4 uniformly, flips half the time, pads with 0. */
static void test_small_crop_and_flip(void **state)
{
    (void)state;
    enum { N = 32 };
    tb_image img = {0};
    assert_int_equal(tb_image_reserve(&img, N, N, 1), TB_OK);
    for (int y = 0; y < N; y++)
        for (int x = 0; x < N; x++)
            img.data[y * N + x] = (uint8_t)(100 + x); /* a ramp along x, no zero */
    tb_augment a = make_aug(TB_AUGMENT_SMALL, true, N, 1);
    tb_augment_scratch s = {0};
    float out[N * N];
    int flips = 0, shifts[9] = {0};
    const int draws = 4000;
    for (int i = 0; i < draws; i++) {
        tb_rng r;
        tb_rng_seed(&r, 99, (uint64_t)i);
        assert_int_equal(tb_augment_apply(&a, &img, &r, out, &s), TB_OK);
        float row[N];
        bool flipped = out[16 * N + 15] > out[16 * N + 16];
        flips += flipped;
        for (int x = 0; x < N; x++)
            row[x] = out[16 * N + (flipped ? N - 1 - x : x)];
        /* unflipped: row(x) = in(x + dx) = 100 + x + dx */
        int dx = (int)lrintf(row[16] - 100) - 16;
        assert_true(dx >= -4 && dx <= 4);
        for (int x = 0; x < N; x++)
            assert_float_equal(row[x], x + dx >= 0 && x + dx < N ? 100 + x + dx : 0, 0);
        shifts[dx + 4]++;
        /* a shift leaves |dx| zero columns on one side */
        for (int y = 0; y < N; y++)
            for (int xx = 0; xx < N; xx++) {
                float v = out[y * N + xx];
                assert_true(v == 0.0f || (v >= 100 && v <= 100 + N - 1));
            }
    }
    assert_true(flips > 0.45 * draws && flips < 0.55 * draws);
    for (int k = 0; k < 9; k++)
        assert_true(shifts[k] > 0.7 * draws / 9 && shifts[k] < 1.3 * draws / 9);
    tb_augment_scratch_free(&s);
    tb_image_free(&img);
}

/* imagenet (train): a symmetric image gives flip-symmetric statistics:
 * the mean of the output over many draws is left-right symmetric. */
static void test_imagenet_flip_symmetry(void **state)
{
    (void)state;
    enum { S = 16 };
    tb_image img = {0};
    assert_int_equal(tb_image_reserve(&img, 40, 50, 3), TB_OK);
    for (int y = 0; y < 40; y++)
        for (int x = 0; x < 50; x++)
            for (int c = 0; c < 3; c++)
                img.data[(y * 50 + x) * 3 + c] = (uint8_t)(x < 25 ? 60 + c * 40 : 200 - c * 40);
    tb_augment a = make_aug(TB_AUGMENT_IMAGENET, true, S, 3);
    tb_augment_scratch s = {0};
    float out[S * S * 3];
    double left = 0, right = 0;
    for (int i = 0; i < 3000; i++) {
        tb_rng r;
        tb_rng_seed(&r, 3, (uint64_t)i);
        assert_int_equal(tb_augment_apply(&a, &img, &r, out, &s), TB_OK);
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S / 2; x++) {
                left += out[(y * S + x) * 3];
                right += out[(y * S + S - 1 - x) * 3];
            }
    }
    /* without flips the left half would be much darker in red than the right */
    assert_true(fabs(left - right) / (left + right) < 0.02);
    tb_augment_scratch_free(&s);
    tb_image_free(&img);
}

static void test_jitter_params(void **state)
{
    (void)state;
    tb_rng r;
    tb_rng_seed(&r, 11, 0);
    int orders[3][3][3] = {{{0}}};
    double sum[3] = {0}, lo[3] = {9, 9, 9}, hi[3] = {0};
    const int draws = 12000;
    for (int i = 0; i < draws; i++) {
        int order[3];
        float f[3];
        tb_color_jitter_params(&r, 0.4f, order, f);
        assert_true(order[0] != order[1] && order[1] != order[2] && order[0] != order[2]);
        orders[order[0]][order[1]][order[2]]++;
        for (int k = 0; k < 3; k++) {
            assert_true(f[k] >= 0.6f && f[k] <= 1.4f);
            sum[k] += f[k];
            lo[k] = f[k] < lo[k] ? f[k] : lo[k];
            hi[k] = f[k] > hi[k] ? f[k] : hi[k];
        }
    }
    for (int k = 0; k < 3; k++) {
        assert_true(fabs(sum[k] / draws - 1.0) < 0.01);
        assert_true(lo[k] < 0.61 && hi[k] > 1.39);
    }
    /* all 6 orders, about equally often */
    int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    for (int p = 0; p < 6; p++) {
        int n = orders[perms[p][0]][perms[p][1]][perms[p][2]];
        assert_true(n > 0.8 * draws / 6 && n < 1.2 * draws / 6);
    }
}

static void test_color_ops(void **state)
{
    (void)state;
    float px[4 * 3] = {10, 20, 30, 200, 100, 50, 250, 250, 250, 0, 128, 255};
    float v[12];
    memcpy(v, px, sizeof v);
    tb_adjust_brightness(v, 4, 3, 1.2f);
    for (int i = 0; i < 12; i++)
        assert_float_equal(v[i], fminf(px[i] * 1.2f, 255.0f), 1e-4);
    /* contrast keeps the mean gray level (no clamping here) and 0 makes the image flat */
    float g[4 * 3] = {10, 20, 30, 200, 100, 50, 150, 120, 90, 60, 128, 200};
    double luma_before = 0, luma_after = 0;
    memcpy(v, g, sizeof v);
    tb_adjust_contrast(v, 4, 3, 0.7f);
    for (int i = 0; i < 4; i++) {
        luma_before += 0.299 * g[3 * i] + 0.587 * g[3 * i + 1] + 0.114 * g[3 * i + 2];
        luma_after += 0.299 * v[3 * i] + 0.587 * v[3 * i + 1] + 0.114 * v[3 * i + 2];
    }
    assert_float_equal(luma_after, luma_before, 1e-2);
    memcpy(v, g, sizeof v);
    tb_adjust_contrast(v, 4, 3, 0.0f);
    for (int i = 0; i < 12; i++)
        assert_float_equal(v[i], luma_before / 4, 1e-3);
    /* saturation 0: every pixel becomes its own gray; gray pixels never change */
    memcpy(v, g, sizeof v);
    tb_adjust_saturation(v, 4, 3, 0.0f);
    for (int i = 0; i < 4; i++) {
        float l = 0.299f * g[3 * i] + 0.587f * g[3 * i + 1] + 0.114f * g[3 * i + 2];
        for (int c = 0; c < 3; c++)
            assert_float_equal(v[3 * i + c], l, 1e-3);
    }
    float gray[3] = {77, 77, 77};
    tb_adjust_saturation(gray, 1, 3, 1.4f);
    assert_float_equal(gray[0], 77, 1e-3);
    assert_float_equal(gray[2], 77, 1e-3);
}

static void test_lighting(void **state)
{
    (void)state;
    /* the shift's std per channel is 0.1 * |eigvec row * eigval| */
    const double expected[3] = {
        0.1 * sqrt(pow(0.5675 * 55.46, 2) + pow(0.7192 * 4.794, 2) + pow(0.4009 * 1.148, 2)),
        0.1 * sqrt(pow(0.5808 * 55.46, 2) + pow(0.0045 * 4.794, 2) + pow(0.8140 * 1.148, 2)),
        0.1 * sqrt(pow(0.5836 * 55.46, 2) + pow(0.6948 * 4.794, 2) + pow(0.4203 * 1.148, 2))};
    tb_rng r;
    tb_rng_seed(&r, 17, 0);
    double sum[3] = {0}, sumsq[3] = {0};
    const int draws = 20000;
    for (int i = 0; i < draws; i++) {
        float px[3] = {100, 100, 100}, shift[3];
        tb_lighting(&r, px, 1, 0.1f, shift);
        for (int c = 0; c < 3; c++) {
            assert_float_equal(px[c], 100 + shift[c], 1e-4);
            sum[c] += shift[c];
            sumsq[c] += (double)shift[c] * shift[c];
        }
    }
    for (int c = 0; c < 3; c++) {
        double m = sum[c] / draws, sd = sqrt(sumsq[c] / draws - m * m);
        assert_true(fabs(m) < 0.1);
        assert_true(fabs(sd / expected[c] - 1) < 0.05);
    }
}

static void test_random_erasing(void **state)
{
    (void)state;
    enum { H = 32, W = 40, C = 3 };
    static float img[H * W * C];
    tb_rng r;
    tb_rng_seed(&r, 23, 0);
    int erased = 0;
    double sum = 0, sumsq = 0;
    int64_t n = 0;
    const int draws = 4000;
    for (int i = 0; i < draws; i++) {
        memset(img, 0, sizeof img);
        int b[4];
        tb_random_erasing(&r, img, H, W, C, 0.5f, b);
        if (b[2] == 0) {
            for (int k = 0; k < H * W * C; k++)
                assert_true(img[k] == 0.0f);
            continue;
        }
        erased++;
        double frac = (double)b[2] * b[3] / (H * W), ar = (double)b[2] / b[3];
        double tol = 1.0 / (b[2] < b[3] ? b[2] : b[3]);
        assert_true(frac >= 0.02 * (1 - 2 * tol) && frac <= (1.0 / 3) * (1 + 2 * tol));
        assert_true(ar >= 0.3 * (1 - tol) && ar <= (1 / 0.3) * (1 + tol));
        assert_true(b[0] + b[2] <= H && b[1] + b[3] <= W);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                bool in = y >= b[0] && y < b[0] + b[2] && x >= b[1] && x < b[1] + b[3];
                for (int c = 0; c < C; c++) {
                    float v = img[(y * W + x) * C + c];
                    if (!in)
                        assert_true(v == 0.0f);
                    else {
                        sum += v;
                        sumsq += (double)v * v;
                        n++;
                    }
                }
            }
    }
    assert_true(erased > 0.45 * draws && erased < 0.55 * draws);
    double m = sum / n, sd = sqrt(sumsq / n - m * m);
    assert_true(fabs(m) < 0.01 && fabs(sd - 1) < 0.01); /* per-pixel N(0, 1) */
}

static void test_resample(void **state)
{
    (void)state;
    tb_resample_scratch s = {0};
    /* a constant image stays constant for any box and size */
    uint8_t flat[20 * 30 * 3];
    memset(flat, 77, sizeof flat);
    float out[64 * 64 * 3];
    double box[4] = {2.5, 3.25, 11.0, 17.5};
    assert_int_equal(tb_resample_box(flat, 20, 30, 3, box, out, 13, 9, false, &s), TB_OK);
    for (int i = 0; i < 13 * 9 * 3; i++)
        assert_float_equal(out[i], 77, 1e-3);
    assert_int_equal(tb_resample_box(flat, 20, 30, 3, box, out, 64, 64, false, &s), TB_OK);
    for (int i = 0; i < 64 * 64 * 3; i++)
        assert_float_equal(out[i], 77, 1e-3);
    /* antialiasing: a 1-pixel checkerboard reduced 3x averages out (plain
     * bilinear sampling would hit pixel centres and return 0 or 255) */
    static uint8_t checker[60 * 60];
    for (int y = 0; y < 60; y++)
        for (int x = 0; x < 60; x++)
            checker[y * 60 + x] = (uint8_t)((x + y) % 2 ? 255 : 0);
    double whole[4] = {0, 0, 60, 60};
    assert_int_equal(tb_resample_box(checker, 60, 60, 1, whole, out, 20, 20, false, &s), TB_OK);
    for (int i = 0; i < 400; i++)
        assert_true(out[i] > 90 && out[i] < 165);
    /* upscaling a ramp is linear interpolation with half-pixel centres */
    uint8_t ramp[8];
    for (int x = 0; x < 8; x++)
        ramp[x] = (uint8_t)(32 * x);
    double rbox[4] = {0, 0, 1, 8};
    assert_int_equal(tb_resample_box(ramp, 1, 8, 1, rbox, out, 1, 16, false, &s), TB_OK);
    for (int o = 1; o < 15; o++)
        assert_float_equal(out[o], 32 * ((o + 0.5) / 2 - 0.5), 1e-3);
    /* flip = mirrored output, for a crop box and for the whole image */
    static uint8_t rgb[21 * 17 * 3];
    for (int i = 0; i < 21 * 17 * 3; i++)
        rgb[i] = (uint8_t)(i * 37 + i / 7);
    static float plain[11 * 13 * 3], mirrored[11 * 13 * 3];
    double cbox[4] = {1.5, 2.0, 15.0, 12.5};
    assert_int_equal(tb_resample_box(rgb, 21, 17, 3, cbox, plain, 11, 13, false, &s), TB_OK);
    assert_int_equal(tb_resample_box(rgb, 21, 17, 3, cbox, mirrored, 11, 13, true, &s), TB_OK);
    tb_hflip(plain, 11, 13, 3);
    assert_memory_equal(plain, mirrored, sizeof plain);
    double all[4] = {0, 0, 21, 17};
    static float p2[21 * 17 * 3], m2[21 * 17 * 3];
    assert_int_equal(tb_resample_box(rgb, 21, 17, 3, all, p2, 21, 17, false, &s), TB_OK);
    assert_int_equal(tb_resample_box(rgb, 21, 17, 3, all, m2, 21, 17, true, &s), TB_OK);
    tb_hflip(p2, 21, 17, 3);
    assert_memory_equal(p2, m2, sizeof p2);
    /* same size, whole image: an exact copy */
    uint8_t small[5 * 4];
    for (int i = 0; i < 20; i++)
        small[i] = (uint8_t)(i * 12);
    double sbox[4] = {0, 0, 5, 4};
    assert_int_equal(tb_resample_box(small, 5, 4, 1, sbox, out, 5, 4, false, &s), TB_OK);
    for (int i = 0; i < 20; i++)
        assert_float_equal(out[i], small[i], 0);
    tb_resample_scratch_free(&s);
}

static void test_resolve(void **state)
{
    (void)state;
    tb_augment_kind k;
    int size;
    assert_int_equal(tb_augment_resolve("auto", 28, 0, &k, &size), TB_OK);
    assert_int_equal(k, TB_AUGMENT_SMALL);
    assert_int_equal(size, 28);
    assert_int_equal(tb_augment_resolve(NULL, 32, 40, &k, &size), TB_OK);
    assert_int_equal(k, TB_AUGMENT_SMALL);
    assert_int_equal(size, 40);
    assert_int_equal(tb_augment_resolve("auto", 0, 0, &k, &size), TB_OK);
    assert_int_equal(k, TB_AUGMENT_IMAGENET);
    assert_int_equal(size, 224);
    assert_int_equal(tb_augment_resolve("auto", 0, 64, &k, &size), TB_OK);
    assert_int_equal(k, TB_AUGMENT_SMALL);
    assert_int_equal(tb_augment_resolve("auto", 96, 0, &k, &size), TB_OK);
    assert_int_equal(k, TB_AUGMENT_IMAGENET);
    assert_int_equal(size, 224);
    assert_int_equal(tb_augment_resolve("imagenet", 28, 0, &k, &size), TB_OK);
    assert_int_equal(size, 224);
    assert_int_equal(tb_augment_resolve("none", 0, 0, &k, &size), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "data.image_size must be set"));
    assert_int_equal(tb_augment_resolve("fancy", 28, 0, &k, &size), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "unknown augmentation 'fancy'"));
}

/* imagenet eval: no randomness, gray images work, values are finite. */
static void test_imagenet_eval_and_gray(void **state)
{
    (void)state;
    tb_image img = {0};
    assert_int_equal(tb_image_reserve(&img, 37, 53, 1), TB_OK);
    for (int i = 0; i < 37 * 53; i++)
        img.data[i] = (uint8_t)(i * 7);
    tb_augment_scratch s = {0};
    float a1[24 * 24], a2[24 * 24];
    tb_augment ev = make_aug(TB_AUGMENT_IMAGENET, false, 24, 1);
    tb_rng r1, r2;
    tb_rng_seed(&r1, 1, 0);
    tb_rng_seed(&r2, 2, 0);
    assert_int_equal(tb_augment_apply(&ev, &img, &r1, a1, &s), TB_OK);
    assert_int_equal(tb_augment_apply(&ev, &img, &r2, a2, &s), TB_OK);
    assert_memory_equal(a1, a2, sizeof a1);
    assert_int_equal(tb_augment_min_side(&ev), 27); /* round(24 / 0.875) */
    tb_augment tr = make_aug(TB_AUGMENT_IMAGENET, true, 24, 1);
    tr.random_erasing = 1.0f;
    assert_int_equal(tb_augment_apply(&tr, &img, &r1, a1, &s), TB_OK);
    for (int i = 0; i < 24 * 24; i++)
        assert_true(isfinite(a1[i]));
    assert_int_equal(tb_augment_min_side(&tr), 24);
    /* a channel mismatch is an error, not a crash */
    tb_augment rgb = make_aug(TB_AUGMENT_NONE, false, 24, 3);
    assert_int_equal(tb_augment_apply(&rgb, &img, &r1, a1, &s), TB_ERR_INVALID);
    tb_augment_scratch_free(&s);
    tb_image_free(&img);
}

/* The dataset's statistics normalise it to mean ~0 and std ~1. */
static void test_normalisation_on_dataset(void **state)
{
    (void)state;
    tb_data_config cfg = tdu_config("synthetic", NULL);
    cfg.synthetic_channels = 3;
    cfg.synthetic_size = 16;
    tb_dataset *ds;
    assert_int_equal(tb_dataset_open(&ds, &cfg, true), TB_OK);
    tb_loader_options opt = {.batch = 64, .train = false, .workers = 2, .augment = "none"};
    tb_loader *ld;
    assert_int_equal(tb_loader_create(&ld, ds, &opt), TB_OK);
    assert_int_equal(tb_loader_start_epoch(ld, 0), TB_OK);
    double sum[3] = {0}, sumsq[3] = {0};
    int64_t n = 0;
    tb_batch *b;
    while (tb_loader_next(ld, &b) == TB_OK && b) {
        for (int64_t i = 0; i < (int64_t)b->count * 16 * 16; i++)
            for (int c = 0; c < 3; c++) {
                double v = b->images[i * 3 + c];
                sum[c] += v;
                sumsq[c] += v * v;
            }
        n += (int64_t)b->count * 16 * 16;
        tb_loader_release(ld, b);
    }
    for (int c = 0; c < 3; c++) {
        double m = sum[c] / n, sd = sqrt(sumsq[c] / n - m * m);
        assert_true(fabs(m) < 0.02);
        assert_true(fabs(sd - 1) < 0.02);
    }
    tb_loader_destroy(ld);
    tb_dataset_close(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_resized_crop),
        cmocka_unit_test(test_rrc_fallback),
        cmocka_unit_test(test_center_crop_box),
        cmocka_unit_test(test_hflip),
        cmocka_unit_test(test_small_crop_and_flip),
        cmocka_unit_test(test_imagenet_flip_symmetry),
        cmocka_unit_test(test_jitter_params),
        cmocka_unit_test(test_color_ops),
        cmocka_unit_test(test_lighting),
        cmocka_unit_test(test_random_erasing),
        cmocka_unit_test(test_resample),
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_imagenet_eval_and_gray),
        cmocka_unit_test(test_normalisation_on_dataset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
