/* The segmentation transform and loader: geometry of the training and
 * evaluation transforms, image/label alignment after scale, crop and flip
 * (ramp images whose values give their source position), nearest labels
 * (no invented values), padding with ignore; the loader on fashion-scenes
 * (determinism per (seed, epoch) with 1 and 2 workers, evaluation identity,
 * padded last batch) and on an ADE20K folder (exact labels, errors). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <math.h>

#include "data_test_util.h"
#include "seg_test_util.h"
#include "harness/data/seg_dataset.h"
#include "harness/data/seg_loader.h"
#include "harness/data/seg_transform.h"
#include "kernels/error.h"

/* ---- the transform ---------------------------------------------------------- */

#define RH 70
#define RW 90
#define CROP 32

static void geometry_of(uint64_t seed, int h, int w, int base, tb_seg_geometry *g)
{
    tb_rng rng;
    tb_rng_seed(&rng, seed, 7);
    tb_seg_train_geometry(h, w, base, CROP, &rng, g);
}

static void test_eval_geometry(void **state)
{
    (void)state;
    tb_seg_geometry g;
    tb_seg_eval_geometry(70, 90, 32, &g); /* 90 * 32 / 70 = 41.1; (41 - 32) / 2 = 4.5 -> 4 */
    assert_true(g.oh == 32 && g.ow == 41 && g.y0 == 0 && g.x0 == 4 && !g.flip);
    tb_seg_eval_geometry(32, 43, 32, &g); /* 5.5 -> 6 (half to even) */
    assert_true(g.oh == 32 && g.ow == 43 && g.y0 == 0 && g.x0 == 6);
    tb_seg_eval_geometry(100, 50, 20, &g);
    assert_true(g.oh == 40 && g.ow == 20 && g.y0 == 10 && g.x0 == 0);
    tb_seg_eval_geometry(33, 33, 32, &g);
    assert_true(g.oh == 32 && g.ow == 32 && g.y0 == 0 && g.x0 == 0);
}

/* Shorter side uniform over base/2 .. 2*base, aspect kept, offsets valid,
 * flips about half, the same draws for the same seed. */
static void test_train_geometry(void **state)
{
    (void)state;
    int hits[41] = {0}, flips = 0, n = 4000;
    for (int s = 0; s < n; s++) {
        tb_seg_geometry g, g2;
        geometry_of((uint64_t)s, RH, RW, 20, &g);
        geometry_of((uint64_t)s, RH, RW, 20, &g2);
        assert_true(g.oh == g2.oh && g.ow == g2.ow && g.y0 == g2.y0 && g.x0 == g2.x0 && g.flip == g2.flip);
        assert_true(g.oh >= 10 && g.oh <= 40);
        assert_int_equal(g.ow, RW * g.oh / RH);
        hits[g.oh]++;
        flips += g.flip;
        int ph = g.oh > CROP ? g.oh : CROP, pw = g.ow > CROP ? g.ow : CROP;
        assert_true(g.y0 >= 0 && g.y0 <= ph - CROP && g.x0 >= 0 && g.x0 <= pw - CROP);
        tb_seg_geometry t;
        geometry_of((uint64_t)s, 90, 70, 20, &t); /* portrait: the width is the shorter side */
        assert_true(t.ow >= 10 && t.ow <= 40 && t.oh == 90 * t.ow / 70);
    }
    for (int v = 10; v <= 40; v++)
        assert_true(hits[v] > n / 31 / 2);
    assert_true(flips > n * 45 / 100 && flips < n * 55 / 100);
}

/* A ramp image (channel 0 = 20 + 2x, channel 1 = 20 + 3y, channel 2 = 100)
 * and a label map holding the x (or y) index of each pixel. */
static void ramp(tb_image *img, tb_image *lab, bool label_x)
{
    assert_int_equal(tb_image_reserve(img, RH, RW, 3), TB_OK);
    assert_int_equal(tb_image_reserve(lab, RH, RW, 1), TB_OK);
    for (int y = 0; y < RH; y++)
        for (int x = 0; x < RW; x++) {
            uint8_t *p = img->data + ((size_t)y * RW + x) * 3;
            p[0] = (uint8_t)(20 + 2 * x);
            p[1] = (uint8_t)(20 + 3 * y);
            p[2] = 100;
            lab->data[(size_t)y * RW + x] = (uint8_t)(label_x ? x : y);
        }
}

static const tb_seg_transform raw_tf = {.crop = CROP, .c = 3, .mean = {0, 0, 0}, .std = {1, 1, 1}};

typedef struct align_stats {
    int checked, padded, flipped, upscaled, downscaled;
} align_stats;

/* One geometry: every output pixel is where the geometry says (the source
 * centre its image value encodes), its label is the source pixel under
 * that centre, and the padding is 0 / -1. */
static void check_alignment(const tb_seg_geometry *g, bool label_x, tb_seg_scratch *s, align_stats *st)
{
    tb_image img = {0}, lab = {0};
    ramp(&img, &lab, label_x);
    float out[CROP * CROP * 3];
    int32_t labels[CROP * CROP];
    if (tb_seg_transform_apply(&raw_tf, &img, &lab, g, "ramp", out, labels, s) != TB_OK)
        fail_msg("%s", tb_errmsg());
    double sx = (double)RW / g->ow, sy = (double)RH / g->oh;
    int vh = g->oh - g->y0 < CROP ? g->oh - g->y0 : CROP, vw = g->ow - g->x0 < CROP ? g->ow - g->x0 : CROP;
    double sup_x = sx > 1 ? sx : 1, sup_y = sy > 1 ? sy : 1;
    for (int r = 0; r < CROP; r++)
        for (int q = 0; q < CROP; q++) {
            const float *v = out + ((size_t)r * CROP + q) * 3;
            int32_t l = labels[r * CROP + q];
            if (r >= vh || q >= vw) {
                assert_true(v[0] == 0.0f && v[1] == 0.0f && v[2] == 0.0f && l == TB_SEG_IGNORE);
                st->padded++;
                continue;
            }
            int u = g->flip ? g->ow - 1 - (g->x0 + q) : g->x0 + q;
            /* multiplied before dividing: exact when the centre is a whole number */
            double cx = (u + 0.5) * RW / g->ow, cy = (g->y0 + r + 0.5) * RH / g->oh;
            /* nearest: the source pixel under the centre (PIL's NEAREST) */
            assert_int_equal(l, label_x ? (int)floor(cx) : (int)floor(cy));
            assert_float_equal(v[2], 100.0f, 1e-3);
            bool inside = cx - sup_x - 1 >= 0 && cx + sup_x + 1 <= RW && cy - sup_y - 1 >= 0 && cy + sup_y + 1 <= RH;
            if (!inside) /* the filter is cut at the image border: the ramp is not exact there */
                continue;
            /* the antialiasing triangle sampled at whole pixels has its centroid within 0.09 px of
             * the centre (PIL's filter too), so the ramp gives the centre to 0.1 source pixel; a
             * window off by one output pixel would be off by >= 0.5 */
            double cx_img = (v[0] - 20.0) / 2.0 + 0.5, cy_img = (v[1] - 20.0) / 3.0 + 0.5;
            assert_float_equal(cx_img, cx, 0.1);
            assert_float_equal(cy_img, cy, 0.1);
            /* alignment without the formula: the label's pixel holds the image's centre */
            double c_img = label_x ? cx_img : cy_img;
            assert_true(fabs(c_img - (l + 0.5)) <= 0.5 + 0.1);
            st->checked++;
        }
    st->flipped += g->flip;
    st->upscaled += sx < 1;
    st->downscaled += sx > 1.5;
    tb_image_free(&img);
    tb_image_free(&lab);
}

static void test_alignment(void **state)
{
    (void)state;
    static const int bases[3] = {20, 40, 70};
    tb_seg_scratch s = {0};
    align_stats st = {0};
    for (int k = 0; k < 240; k++) {
        tb_seg_geometry g;
        geometry_of((uint64_t)k, RH, RW, bases[k % 3], &g);
        check_alignment(&g, k % 2 == 0, &s, &st);
    }
    tb_seg_geometry e;
    tb_seg_eval_geometry(RH, RW, CROP, &e);
    check_alignment(&e, true, &s, &st);
    /* the checks ran on every kind of geometry */
    assert_true(st.checked > 20000);
    assert_true(st.padded > 1000 && st.flipped > 80 && st.upscaled > 20 && st.downscaled > 40);
    tb_seg_scratch_free(&s);
}

/* Blocks of 0, 3, 7 and ignored: the output holds only those values, each
 * pixel the nearest source pixel's, and padding when the image is small. */
static void test_nearest_and_padding(void **state)
{
    (void)state;
    static const uint8_t values[4] = {0, 3, 7, TB_SEG_IGNORE_U8};
    tb_image img = {0}, lab = {0};
    assert_int_equal(tb_image_reserve(&img, 40, 50, 1), TB_OK);
    assert_int_equal(tb_image_reserve(&lab, 40, 50, 1), TB_OK);
    for (int y = 0; y < 40; y++)
        for (int x = 0; x < 50; x++) {
            img.data[y * 50 + x] = (uint8_t)(y + x);
            lab.data[y * 50 + x] = values[(y / 5 + 3 * (x / 5)) % 4];
        }
    tb_seg_transform t = {.crop = CROP, .c = 1, .mean = {10, 10, 10}, .std = {2, 2, 2}};
    tb_seg_scratch s = {0};
    float out[CROP * CROP];
    int32_t labels[CROP * CROP];
    int seen[8] = {0}, ignored = 0, small = 0;
    for (int k = 0; k < 200; k++) {
        tb_seg_geometry g;
        geometry_of((uint64_t)k + 1000, 40, 50, k % 2 ? 8 : 30, &g); /* base 8: shorter side 4..16 < CROP */
        if (tb_seg_transform_apply(&t, &img, &lab, &g, "blocks", out, labels, &s) != TB_OK)
            fail_msg("%s", tb_errmsg());
        int vh = g.oh - g.y0 < CROP ? g.oh - g.y0 : CROP, vw = g.ow - g.x0 < CROP ? g.ow - g.x0 : CROP;
        assert_true(g.oh >= CROP || g.y0 == 0);
        assert_true(g.ow >= CROP || g.x0 == 0);
        small += g.oh < CROP && g.ow < CROP;
        for (int r = 0; r < CROP; r++)
            for (int q = 0; q < CROP; q++) {
                int32_t l = labels[r * CROP + q];
                float v = out[r * CROP + q];
                if (r >= vh || q >= vw) {
                    assert_true(l == TB_SEG_IGNORE && v == 0.0f);
                    continue;
                }
                assert_true(l == TB_SEG_IGNORE || l == 0 || l == 3 || l == 7);
                int u = g.flip ? g.ow - 1 - (g.x0 + q) : g.x0 + q;
                int sx = (int)floor((u + 0.5) * 50 / g.ow), sy = (int)floor((g.y0 + r + 0.5) * 40 / g.oh);
                uint8_t src = lab.data[sy * 50 + sx];
                assert_int_equal(l, src == TB_SEG_IGNORE_U8 ? TB_SEG_IGNORE : src);
                if (l >= 0)
                    seen[l]++;
                else
                    ignored++;
                /* normalised: (0..255 - 10) / 2 */
                assert_true(v >= -5.0f - 1e-3f && v <= 122.5f + 1e-3f);
            }
    }
    assert_true(seen[0] > 0 && seen[3] > 0 && seen[7] > 0 && ignored > 0 && small > 50);
    tb_seg_transform_pad(&t, out, labels);
    for (int p = 0; p < CROP * CROP; p++)
        assert_true(out[p] == 0.0f && labels[p] == TB_SEG_IGNORE);
    tb_seg_scratch_free(&s);
    tb_image_free(&img);
    tb_image_free(&lab);
}

/* ---- the loader --------------------------------------------------------------- */

typedef struct fixture {
    char *src, *root;
    tb_seg_dataset *train, *test;
} fixture;

#define N_TRAIN 10
#define N_TEST 5
#define SIZE 64

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->src = tdu_tempdir();
    f->root = tdu_tempdir();
    stu_make_fashion_scenes(f->root, f->src, N_TRAIN, N_TEST, SIZE);
    if (tb_seg_dataset_open(&f->train, "fashion-scenes", f->root, true) != TB_OK ||
        tb_seg_dataset_open(&f->test, "fashion-scenes", f->root, false) != TB_OK)
        fail_msg("%s", tb_errmsg());
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    tb_seg_dataset_close(f->train);
    tb_seg_dataset_close(f->test);
    tdu_rmtree(f->src);
    tdu_rmtree(f->root);
    free(f->src);
    free(f->root);
    free(f);
    return 0;
}

static tb_seg_loader *make(tb_seg_dataset *ds, const tb_seg_loader_options *o)
{
    tb_seg_loader *ld = NULL;
    if (tb_seg_loader_create(&ld, ds, o) != TB_OK)
        fail_msg("%s", tb_errmsg());
    return ld;
}

/* Every batch of one epoch, concatenated. */
typedef struct dump {
    float *images;
    int32_t *labels;
    int64_t *indices;
    uint8_t *flipped;
    int valid[16];
    int64_t steps;
    int n, h, w, c;
} dump;

static void run_epoch(tb_seg_loader *ld, int epoch, dump *d)
{
    memset(d, 0, sizeof *d);
    tb_seg_loader_shape(ld, &d->n, &d->h, &d->w, &d->c);
    d->steps = tb_seg_loader_steps_per_epoch(ld);
    assert_true(d->steps <= 16);
    size_t rows = (size_t)d->steps * d->n, npix = (size_t)d->h * d->w;
    d->images = calloc(rows * npix * d->c, sizeof *d->images);
    d->labels = calloc(rows * npix, sizeof *d->labels);
    d->indices = calloc(rows, sizeof *d->indices);
    d->flipped = calloc(rows, 1);
    assert_int_equal(tb_seg_loader_start_epoch(ld, epoch), TB_OK);
    for (int64_t k = 0;; k++) {
        tb_seg_batch *b;
        if (tb_seg_loader_next(ld, &b) != TB_OK)
            fail_msg("%s", tb_errmsg());
        if (!b) {
            assert_int_equal(k, d->steps);
            break;
        }
        assert_int_equal(b->step, k);
        assert_true(b->n == d->n && b->h == d->h && b->w == d->w && b->c == d->c);
        size_t r0 = (size_t)k * d->n;
        memcpy(d->images + r0 * npix * d->c, b->images, (size_t)d->n * npix * d->c * sizeof(float));
        memcpy(d->labels + r0 * npix, b->labels, (size_t)d->n * npix * sizeof(int32_t));
        memcpy(d->indices + r0, b->indices, (size_t)d->n * sizeof(int64_t));
        memcpy(d->flipped + r0, b->flipped, (size_t)d->n);
        d->valid[k] = b->valid;
        tb_seg_loader_release(ld, b);
    }
}

static bool dumps_equal(const dump *a, const dump *b)
{
    size_t rows = (size_t)a->steps * a->n, npix = (size_t)a->h * a->w;
    return a->steps == b->steps && memcmp(a->images, b->images, rows * npix * a->c * sizeof(float)) == 0 &&
           memcmp(a->labels, b->labels, rows * npix * sizeof(int32_t)) == 0 &&
           memcmp(a->indices, b->indices, rows * sizeof(int64_t)) == 0 && memcmp(a->flipped, b->flipped, rows) == 0;
}

static void dump_free(dump *d)
{
    free(d->images);
    free(d->labels);
    free(d->indices);
    free(d->flipped);
}

/* Training batches are a pure function of (seed, epoch): 1 and 2 workers
 * agree, another epoch differs, a rerun repeats; labels are classes or -1. */
static void test_train_determinism(void **state)
{
    fixture *f = *state;
    tb_seg_loader_options o = {.batch = 4, .train = true, .base_size = 32, .crop_size = 48, .seed = 5,
                               .workers = 1, .prefetch = 2};
    tb_seg_loader *one = make(f->train, &o);
    o.workers = 2;
    tb_seg_loader *two = make(f->train, &o);
    assert_int_equal(tb_seg_loader_workers(two), 2);
    dump a, b, c, a2;
    run_epoch(one, 0, &a);
    run_epoch(two, 0, &b);
    assert_true(a.n == 4 && a.h == 48 && a.w == 48 && a.c == 1 && a.steps == N_TRAIN / 4);
    assert_true(dumps_equal(&a, &b));
    run_epoch(two, 1, &c);
    assert_false(dumps_equal(&a, &c));
    run_epoch(two, 0, &a2);
    assert_true(dumps_equal(&a, &a2));
    size_t npix = 48 * 48;
    for (int r = 0; r < a.n * (int)a.steps; r++) {
        assert_int_equal(a.valid[r / a.n], 4);
        assert_true(a.indices[r] >= 0 && a.indices[r] < N_TRAIN);
        int labelled = 0;
        for (size_t p = 0; p < npix; p++) {
            int32_t l = a.labels[r * npix + p];
            assert_true(l >= TB_SEG_IGNORE && l <= 10);
            labelled += l >= 0;
        }
        assert_true(labelled > 0);
    }
    dump_free(&a);
    dump_free(&b);
    dump_free(&c);
    dump_free(&a2);
    tb_seg_loader_destroy(one);
    tb_seg_loader_destroy(two);
}

/* Evaluation at the native size is the identity: the masks as i32 labels,
 * the normalised pixels, in dataset order; the last batch is padded. */
static void test_eval_identity(void **state)
{
    fixture *f = *state;
    tb_seg_loader_options o = {.batch = 4, .crop_size = SIZE, .workers = 2};
    tb_seg_loader *ld = make(f->test, &o);
    dump d;
    run_epoch(ld, 0, &d);
    assert_true(d.steps == 2 && d.valid[0] == 4 && d.valid[1] == 1);
    float mean[3], std[3];
    tb_seg_dataset_normalization(f->test, mean, std);
    tb_image img = {0}, lab = {0};
    size_t npix = SIZE * SIZE;
    for (int r = 0; r < 8; r++) {
        const float *im = d.images + r * npix;
        const int32_t *l = d.labels + r * npix;
        if (r >= N_TEST) {
            assert_int_equal(d.indices[r], -1);
            for (size_t p = 0; p < npix; p++)
                assert_true(im[p] == 0.0f && l[p] == TB_SEG_IGNORE);
            continue;
        }
        assert_int_equal(d.indices[r], r);
        assert_int_equal(d.flipped[r], 0);
        if (tb_seg_dataset_read(f->test, r, &img, &lab) != TB_OK)
            fail_msg("%s", tb_errmsg());
        for (size_t p = 0; p < npix; p++) {
            assert_int_equal(l[p], lab.data[p]);
            assert_float_equal(im[p], (img.data[p] - mean[0]) / std[0], 1e-5);
        }
    }
    tb_image_free(&img);
    tb_image_free(&lab);
    dump_free(&d);
    tb_seg_loader_destroy(ld);
}

static int g_allocs, g_frees;

static int count_alloc(void *user, void **p, size_t bytes)
{
    (void)user;
    g_allocs++;
    *p = malloc(bytes);
    return *p ? TB_OK : TB_ERR_NOMEM;
}

static void count_free(void *user, void *p)
{
    (void)user;
    g_frees++;
    free(p);
}

static void test_options(void **state)
{
    fixture *f = *state;
    tb_seg_loader *ld = NULL;
    tb_seg_loader_options o = {.batch = 0};
    assert_int_equal(tb_seg_loader_create(&ld, f->train, &o), TB_ERR_INVALID);
    o = (tb_seg_loader_options){.batch = 2, .crop_size = -1};
    assert_int_equal(tb_seg_loader_create(&ld, f->train, &o), TB_ERR_INVALID);
    o = (tb_seg_loader_options){.batch = 2, .base_size = 9000};
    assert_int_equal(tb_seg_loader_create(&ld, f->train, &o), TB_ERR_INVALID);
    o = (tb_seg_loader_options){.batch = N_TRAIN + 1, .train = true};
    assert_int_equal(tb_seg_loader_create(&ld, f->train, &o), TB_ERR_INVALID);
    o = (tb_seg_loader_options){.batch = 2, .alloc = count_alloc};
    assert_int_equal(tb_seg_loader_create(&ld, f->train, &o), TB_ERR_INVALID);
    assert_null(ld);
    /* defaults: GluonCV's crop 480; the hooks allocate images and labels of each ring slot */
    o = (tb_seg_loader_options){.batch = 2, .workers = 1, .prefetch = 2, .alloc = count_alloc, .free = count_free};
    ld = make(f->train, &o);
    int n, h, w, c;
    tb_seg_loader_shape(ld, &n, &h, &w, &c);
    assert_true(n == 2 && h == TB_SEG_DEFAULT_CROP_SIZE && w == h && c == 1);
    assert_int_equal(tb_seg_loader_steps_per_epoch(ld), N_TRAIN / 2);
    tb_seg_batch *b;
    assert_int_equal(tb_seg_loader_next(ld, &b), TB_ERR_INVALID); /* before start_epoch */
    assert_int_equal(g_allocs, 4);
    tb_seg_loader_destroy(ld);
    assert_int_equal(g_frees, 4);
}

/* ADE20K through the evaluation transform: exact nearest labels after the
 * shift; a bad label map stops the epoch with its name. */
static void test_ade_loader(void **state)
{
    (void)state;
    char *root = tdu_tempdir(), base[4096], p[4096];
    tdu_pathf(base, sizeof base, "%s/%s", root, TB_ADE20K_FOLDER);
    stu_make_ade_dirs(base);
    uint8_t stored[24 * 36];
    for (int i = 0; i < 24 * 36; i++)
        stored[i] = (uint8_t)(i % 151);
    stu_write_ade_image(base, "validation", "v1", 24, 36, 1);
    stu_write_ade_labels(base, "validation", "v1", 24, 36, stored, false);
    stu_write_ade_image(base, "validation", "v2", 24, 36, 2);
    stored[5] = 200;
    stu_write_ade_labels(base, "validation", "v2", 24, 36, stored, false);
    stored[5] = 5;
    tb_seg_dataset *ds = NULL;
    if (tb_seg_dataset_open(&ds, "ade20k", root, false) != TB_OK)
        fail_msg("%s", tb_errmsg());
    tb_seg_loader_options o = {.batch = 1, .crop_size = 12, .workers = 1, .prefetch = 1};
    tb_seg_loader *ld = make(ds, &o);
    int n, h, w, c;
    tb_seg_loader_shape(ld, &n, &h, &w, &c);
    assert_true(n == 1 && h == 12 && w == 12 && c == 3);
    assert_int_equal(tb_seg_loader_start_epoch(ld, 0), TB_OK);
    tb_seg_batch *b;
    if (tb_seg_loader_next(ld, &b) != TB_OK)
        fail_msg("%s", tb_errmsg());
    /* 24 x 36 -> 12 x 18, centre x offset 3: output (r, q) <- stored (2r + 1, 2(q + 3) + 1) */
    for (int r = 0; r < 12; r++)
        for (int q = 0; q < 12; q++) {
            int v = stored[(2 * r + 1) * 36 + 2 * (q + 3) + 1];
            assert_int_equal(b->labels[r * 12 + q], v == 0 ? TB_SEG_IGNORE : v - 1);
        }
    /* the image with it: output (0, 0) is centred on source (y 1, x 7) of the ramp
     * stu_pixel(1, ...) = 15 + 2y + 3x + 30k (exact inside; the filter is cut at row 0) */
    float mean[3], std[3];
    tb_seg_dataset_normalization(ds, mean, std);
    for (int k = 0; k < 3; k++)
        assert_float_equal(b->images[k] * std[k] + mean[k], 15.0 + 2 * 0.5 + 3 * 6.5 + 30 * k, 2.0);
    tb_seg_loader_release(ld, b);
    assert_int_equal(tb_seg_loader_next(ld, &b), TB_ERR_DATA);
    if (!strstr(tb_errmsg(), tdu_pathf(p, sizeof p, "%s/annotations/validation/v2.png", base)))
        fail_msg("message '%s' does not name %s", tb_errmsg(), p);
    assert_int_equal(tb_seg_loader_start_epoch(ld, 1), TB_ERR_DATA); /* the loader stays failed */
    tb_seg_loader_destroy(ld);
    tb_seg_dataset_close(ds);
    tdu_rmtree(root);
    free(root);
}

int main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_eval_geometry),
        cmocka_unit_test(test_train_geometry),
        cmocka_unit_test(test_alignment),
        cmocka_unit_test(test_nearest_and_padding),
        cmocka_unit_test(test_ade_loader),
    };
    const struct CMUnitTest loader[] = {
        cmocka_unit_test(test_train_determinism),
        cmocka_unit_test(test_eval_identity),
        cmocka_unit_test(test_options),
    };
    int failed = cmocka_run_group_tests(pure, NULL, NULL);
    return failed + cmocka_run_group_tests(loader, setup, teardown);
}
