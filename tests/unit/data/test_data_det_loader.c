/* The detection loader on a small VOC folder written by the test: resize
 * rule, scale, canvas and padding, normalisation, flips with their boxes,
 * determinism per (seed, epoch) whatever the worker count, errors; and a
 * fashion-scenes dataset end to end. */
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
#include "det_test_util.h"
#include "harness/data/det_dataset.h"
#include "harness/data/det_loader.h"
#include "harness/data/det_transform.h"
#include "harness/data/fashion_scenes.h"
#include "kernels/error.h"

#define N_IMAGES 7
static const int sizes[N_IMAGES][2] = {{40, 60}, {20, 80}, {50, 30}, {32, 32}, {60, 40}, {24, 48}, {32, 48}};
static const uint8_t flat_rgb[3] = {90, 150, 210}; /* image 6 is flat */

typedef struct fixture {
    char *root;
    tb_det_dataset *ds;
} fixture;

static void image_id(char *buf, size_t cap, int i) { snprintf(buf, cap, "img%02d", i); }

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->root = tdu_tempdir();
    dtu_make_voc_dirs(f->root, "VOC2007");
    char ids[N_IMAGES][16];
    const char *idp[N_IMAGES];
    for (int i = 0; i < N_IMAGES; i++) {
        int h = sizes[i][0], w = sizes[i][1];
        image_id(ids[i], sizeof ids[i], i);
        idp[i] = ids[i];
        /* 1..3 objects spread over the image, one difficult */
        dtu_obj objs[3] = {{"dog", 1, 1, w / 2, h / 2, 0},
                           {"person", w / 3, h / 4, w, h, 1},
                           {"car", 2 + i, 3, 5 + i, h - 2, -1}};
        dtu_write_voc_xml(f->root, "VOC2007", ids[i], w, h, objs, 1 + i % 3);
        if (i == 6) {
            uint8_t *px = malloc((size_t)h * w * 3);
            for (int p = 0; p < h * w; p++)
                memcpy(px + 3 * p, flat_rgb, 3);
            char path[4096];
            tdu_write_jpeg(tdu_pathf(path, sizeof path, "%s/VOC2007/JPEGImages/%s.jpg", f->root, ids[i]), w, h, 3, px,
                           100);
            free(px);
        } else {
            dtu_write_voc_jpeg(f->root, "VOC2007", ids[i], w, h, 3, i);
        }
    }
    dtu_write_image_set(f->root, "VOC2007", "trainval", idp, N_IMAGES);
    if (tb_det_dataset_open(&f->ds, f->root, "VOC2007:trainval", &tb_det_format_voc) != TB_OK)
        fail_msg("%s", tb_errmsg());
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    tb_det_dataset_close(f->ds);
    tdu_rmtree(f->root);
    free(f->root);
    free(f);
    return 0;
}

static tb_det_loader *make(tb_det_dataset *ds, const tb_det_loader_options *o)
{
    tb_det_loader *ld;
    if (tb_det_loader_create(&ld, ds, o) != TB_OK)
        fail_msg("%s", tb_errmsg());
    return ld;
}

/* One epoch copied out, every array of every batch. */
typedef struct dump {
    int steps, n, h, w, c, m;
    float *images, *boxes, *im_size, *scale;
    int32_t *labels, *count;
    uint8_t *difficult, *flipped;
    int64_t *indices;
    int *valid;
} dump;

static void dump_free(dump *d)
{
    free(d->images);
    free(d->boxes);
    free(d->im_size);
    free(d->scale);
    free(d->labels);
    free(d->count);
    free(d->difficult);
    free(d->flipped);
    free(d->indices);
    free(d->valid);
}

#define COPY(field, per) memcpy(d->field + (size_t)s * (per), b->field, (per) * sizeof *d->field)

static void run_epoch(tb_det_loader *ld, int epoch, dump *d)
{
    tb_det_loader_shape(ld, &d->n, &d->h, &d->w, &d->c, &d->m);
    d->steps = (int)tb_det_loader_steps_per_epoch(ld);
    size_t S = (size_t)d->steps, n = (size_t)d->n, img = n * d->h * d->w * d->c, m = n * d->m;
    d->images = malloc(S * img * sizeof(float));
    d->boxes = malloc(S * m * 4 * sizeof(float));
    d->im_size = malloc(S * n * 2 * sizeof(float));
    d->scale = malloc(S * n * sizeof(float));
    d->labels = malloc(S * m * sizeof(int32_t));
    d->count = malloc(S * n * sizeof(int32_t));
    d->difficult = malloc(S * m);
    d->flipped = malloc(S * n);
    d->indices = malloc(S * n * sizeof(int64_t));
    d->valid = malloc(S * sizeof(int));
    if (tb_det_loader_start_epoch(ld, epoch) != TB_OK)
        fail_msg("%s", tb_errmsg());
    for (int s = 0; s < d->steps; s++) {
        tb_det_batch *b;
        if (tb_det_loader_next(ld, &b) != TB_OK)
            fail_msg("%s", tb_errmsg());
        assert_non_null(b);
        assert_int_equal(b->step, s);
        COPY(images, img);
        COPY(boxes, m * 4);
        COPY(im_size, n * 2);
        COPY(scale, n);
        COPY(labels, m);
        COPY(count, n);
        COPY(difficult, m);
        COPY(flipped, n);
        COPY(indices, n);
        d->valid[s] = b->valid;
        tb_det_loader_release(ld, b);
    }
    tb_det_batch *end = (tb_det_batch *)1;
    assert_int_equal(tb_det_loader_next(ld, &end), TB_OK);
    assert_null(end);
}

static void assert_same(const dump *a, const dump *b)
{
    assert_int_equal(a->steps, b->steps);
    size_t S = (size_t)a->steps, n = (size_t)a->n, img = n * a->h * a->w * a->c, m = n * a->m;
    assert_memory_equal(a->images, b->images, S * img * sizeof(float));
    assert_memory_equal(a->boxes, b->boxes, S * m * 4 * sizeof(float));
    assert_memory_equal(a->im_size, b->im_size, S * n * 2 * sizeof(float));
    assert_memory_equal(a->scale, b->scale, S * n * sizeof(float));
    assert_memory_equal(a->labels, b->labels, S * m * sizeof(int32_t));
    assert_memory_equal(a->count, b->count, S * n * sizeof(int32_t));
    assert_memory_equal(a->difficult, b->difficult, S * m);
    assert_memory_equal(a->flipped, b->flipped, S * n);
    assert_memory_equal(a->indices, b->indices, S * n * sizeof(int64_t));
    assert_memory_equal(a->valid, b->valid, S * sizeof(int));
}

static void test_resize_rule(void **state)
{
    (void)state;
    int nh, nw;
    float s;
    tb_det_resize_size(375, 500, 600, 1000, &nh, &nw, &s); /* a VOC image: shorter side 600 */
    assert_int_equal(nh, 600);
    assert_int_equal(nw, 800);
    assert_true(fabsf(s - 1.6f) < 1e-6f);
    tb_det_resize_size(200, 1000, 600, 1000, &nh, &nw, &s); /* capped by the longer side */
    assert_int_equal(nh, 200);
    assert_int_equal(nw, 1000);
    assert_true(s == 1.0f);
    tb_det_resize_size(20, 80, 30, 50, &nh, &nw, &s); /* 12.5 rounds up */
    assert_int_equal(nh, 13);
    assert_int_equal(nw, 50);
    tb_det_resize_size(128, 128, 0, 0, &nh, &nw, &s); /* native */
    assert_true(nh == 128 && nw == 128 && s == 1.0f);
    tb_det_resize_size(100, 300, 0, 150, &nh, &nw, &s); /* native, capped */
    assert_true(nh == 50 && nw == 150 && s == 0.5f);
}

/* Resize, scale, boxes, canvas padding and the padded last batch, in order. */
static void test_resize_pad(void **state)
{
    fixture *f = *state;
    tb_det_loader_options o = {.batch = 3, .min_side = 30, .max_side = 50, .workers = 2, .max_objects = 4};
    tb_det_loader *ld = make(f->ds, &o);
    dump d;
    run_epoch(ld, 0, &d);
    /* the largest resized sides: 50 tall (50x30 stays), 50 wide (20x80 -> 13x50) */
    assert_int_equal(d.h, 64); /* 50 rounded up to 32 */
    assert_int_equal(d.w, 64);
    assert_int_equal(d.c, 3);
    assert_int_equal(d.m, 4);
    assert_int_equal(d.steps, 3);
    assert_int_equal(d.valid[0], 3);
    assert_int_equal(d.valid[2], 1);
    float mean[3], std[3];
    tb_det_dataset_normalization(f->ds, mean, std);
    for (int r = 0; r < 9; r++) {
        const float *img = d.images + (size_t)r * d.h * d.w * 3;
        if (r >= N_IMAGES) { /* padding rows */
            assert_int_equal(d.indices[r], -1);
            assert_int_equal(d.count[r], 0);
            assert_true(d.im_size[2 * r] == 64 && d.im_size[2 * r + 1] == 64);
            for (int k = 0; k < d.m; k++)
                assert_int_equal(d.labels[r * d.m + k], -1);
            for (int p = 0; p < d.h * d.w * 3; p++)
                assert_true(img[p] == 0.0f);
            continue;
        }
        assert_int_equal(d.indices[r], r);
        int h = sizes[r][0], w = sizes[r][1], nh, nw;
        float s;
        tb_det_resize_size(h, w, 30, 50, &nh, &nw, &s);
        assert_true(d.im_size[2 * r] == nh && d.im_size[2 * r + 1] == nw);
        assert_true(d.scale[r] == s);
        assert_true(fabsf(fminf(nh, nw) - 30) <= 0.5f || fabsf(fmaxf(nh, nw) - 50) <= 0.5f);
        const tb_det_object *objs;
        int count;
        tb_det_dataset_objects(f->ds, r, &objs, &count);
        assert_int_equal(d.count[r], count);
        for (int k = 0; k < d.m; k++) {
            const float *b = d.boxes + ((size_t)r * d.m + k) * 4;
            if (k >= count) {
                assert_true(b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] == 0);
                assert_int_equal(d.labels[r * d.m + k], -1);
                continue;
            }
            assert_true(fabsf(b[0] - objs[k].box[0] * nw / w) < 1e-4f);
            assert_true(fabsf(b[2] - objs[k].box[2] * nw / w) < 1e-4f);
            assert_true(fabsf(b[1] - objs[k].box[1] * nh / h) < 1e-4f);
            assert_true(fabsf(b[3] - objs[k].box[3] * nh / h) < 1e-4f);
            assert_true(b[2] <= nw + 1e-4f && b[3] <= nh + 1e-4f);
            assert_int_equal(d.labels[r * d.m + k], objs[k].label);
            assert_int_equal(d.difficult[r * d.m + k], objs[k].difficult);
        }
        /* outside the valid region the canvas is exactly zero */
        for (int y = 0; y < d.h; y++)
            for (int x = 0; x < d.w; x++)
                if (y >= nh || x >= nw)
                    for (int k = 0; k < 3; k++)
                        assert_true(img[(y * d.w + x) * 3 + k] == 0.0f);
        if (r == 6) /* the flat image: (v - mean) / std everywhere inside */
            for (int y = 0; y < nh; y++)
                for (int x = 0; x < nw; x++)
                    for (int k = 0; k < 3; k++)
                        assert_true(fabsf(img[(y * d.w + x) * 3 + k] - (flat_rgb[k] - mean[k]) / std[k]) < 0.04f);
    }
    assert_int_equal(d.difficult[0 * d.m + 1], 0); /* image 0 has one object */
    assert_int_equal(d.difficult[1 * d.m + 1], 1); /* image 1: the person is difficult */
    dump_free(&d);
    tb_det_loader_destroy(ld);
}

static void test_native_size(void **state)
{
    fixture *f = *state;
    tb_det_loader_options o = {.batch = 4, .workers = 1, .canvas_h = 64, .canvas_w = 96, .drop_last = true};
    tb_det_loader *ld = make(f->ds, &o);
    dump d;
    run_epoch(ld, 0, &d);
    assert_int_equal(d.steps, 1); /* drop_last: 7 / 4 */
    assert_int_equal(d.m, 3);     /* the dataset's largest count */
    for (int r = 0; r < 4; r++) {
        assert_true(d.im_size[2 * r] == sizes[r][0] && d.im_size[2 * r + 1] == sizes[r][1] && d.scale[r] == 1.0f);
        const tb_det_object *objs;
        int count;
        tb_det_dataset_objects(f->ds, r, &objs, &count);
        assert_memory_equal(d.boxes + (size_t)r * d.m * 4, objs[0].box, 4 * sizeof(float));
    }
    dump_free(&d);
    tb_det_loader_destroy(ld);
}

/* Flipped rows are mirrors of the unflipped ones, boxes mapped x -> W - x. */
static void test_flip(void **state)
{
    fixture *f = *state;
    tb_det_loader_options o = {.batch = 7, .min_side = 30, .max_side = 50, .workers = 2, .seed = 5};
    tb_det_loader *plain = make(f->ds, &o);
    o.flip = true;
    tb_det_loader *flip = make(f->ds, &o);
    dump a, b;
    run_epoch(plain, 0, &a);
    run_epoch(flip, 0, &b);
    int flipped = 0;
    for (int r = 0; r < N_IMAGES; r++) {
        assert_int_equal(a.flipped[r], 0);
        int W = (int)a.im_size[2 * r + 1], H = (int)a.im_size[2 * r];
        const float *ia = a.images + (size_t)r * a.h * a.w * 3, *ib = b.images + (size_t)r * b.h * b.w * 3;
        const float *ba = a.boxes + (size_t)r * a.m * 4, *bb = b.boxes + (size_t)r * b.m * 4;
        if (!b.flipped[r]) {
            assert_memory_equal(ia, ib, (size_t)a.h * a.w * 3 * sizeof(float));
            assert_memory_equal(ba, bb, (size_t)a.m * 4 * sizeof(float));
            continue;
        }
        flipped++;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int k = 0; k < 3; k++)
                    assert_true(fabsf(ib[(y * b.w + x) * 3 + k] - ia[(y * a.w + W - 1 - x) * 3 + k]) < 1e-4f);
        for (int k = 0; k < a.count[r]; k++) {
            const float *p = ba + 4 * k, *q = bb + 4 * k;
            assert_true(fabsf(q[0] - (W - p[2])) < 1e-4f && fabsf(q[2] - (W - p[0])) < 1e-4f);
            assert_true(q[1] == p[1] && q[3] == p[3]);
            assert_true(q[0] >= 0 && q[0] < q[2]);
        }
    }
    assert_true(flipped > 0 && flipped < N_IMAGES); /* this seed flips some, not all */
    dump_free(&a);
    dump_free(&b);
    tb_det_loader_destroy(plain);
    tb_det_loader_destroy(flip);
}

static void test_determinism(void **state)
{
    fixture *f = *state;
    tb_det_loader_options o = {.batch = 2, .min_side = 30, .max_side = 50, .shuffle = true, .flip = true, .seed = 11,
                               .workers = 1, .prefetch = 2};
    tb_det_loader *one = make(f->ds, &o);
    o.workers = 2;
    o.prefetch = 0;
    tb_det_loader *two = make(f->ds, &o);
    dump a0, b0, a1, b1, a0again;
    run_epoch(one, 0, &a0);
    run_epoch(two, 0, &b0);
    run_epoch(one, 1, &a1);
    run_epoch(two, 1, &b1);
    run_epoch(one, 0, &a0again);
    assert_same(&a0, &b0);
    assert_same(&a1, &b1);
    assert_same(&a0, &a0again);
    assert_memory_not_equal(a0.indices, a1.indices, 8 * sizeof(int64_t)); /* another order per epoch */
    assert_int_equal(a0.valid[3], 1);
    /* every image once per epoch */
    int seen[N_IMAGES] = {0};
    for (int r = 0; r < 8; r++)
        if (a0.indices[r] >= 0)
            seen[a0.indices[r]]++;
    for (int i = 0; i < N_IMAGES; i++)
        assert_int_equal(seen[i], 1);
    dump_free(&a0);
    dump_free(&b0);
    dump_free(&a1);
    dump_free(&b1);
    dump_free(&a0again);
    tb_det_loader_destroy(one);
    tb_det_loader_destroy(two);
}

static void test_errors(void **state)
{
    fixture *f = *state;
    tb_det_loader *ld = (tb_det_loader *)1;
    tb_det_loader_options o = {.batch = 2, .max_objects = 2, .workers = 1};
    assert_int_equal(tb_det_loader_create(&ld, f->ds, &o), TB_ERR_DATA);
    assert_null(ld);
    assert_non_null(strstr(tb_errmsg(), "VOC2007/img02")); /* the first image with 3 objects */
    o = (tb_det_loader_options){.batch = 2, .min_side = 30, .max_side = 50, .canvas_h = 64, .canvas_w = 40};
    assert_int_equal(tb_det_loader_create(&ld, f->ds, &o), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "VOC2007/img00")); /* 40x60 -> 30x45 */
    o = (tb_det_loader_options){.batch = 8, .drop_last = true};
    assert_int_equal(tb_det_loader_create(&ld, f->ds, &o), TB_ERR_INVALID);
    o = (tb_det_loader_options){.batch = 2, .canvas_h = 64};
    assert_int_equal(tb_det_loader_create(&ld, f->ds, &o), TB_ERR_INVALID);
    /* a worker's decoding error comes out of next, naming the file */
    char p[4096];
    tdu_write_file(tdu_pathf(p, sizeof p, "%s/VOC2007/JPEGImages/img03.jpg", f->root), "not a jpeg", 10);
    o = (tb_det_loader_options){.batch = 2, .workers = 2};
    ld = make(f->ds, &o);
    assert_int_equal(tb_det_loader_start_epoch(ld, 0), TB_OK);
    int rc = TB_OK;
    for (int s = 0; s < 4 && rc == TB_OK; s++) {
        tb_det_batch *b;
        rc = tb_det_loader_next(ld, &b);
        tb_det_loader_release(ld, b);
    }
    assert_int_equal(rc, TB_ERR_DATA);
    assert_non_null(strstr(tb_errmsg(), "img03.jpg"));
    tb_det_loader_destroy(ld);
}

/* fashion-scenes through the reader and the loader: gray, native 96 px canvas. */
static void test_fashion_scenes(void **state)
{
    (void)state;
    char *src = tdu_tempdir(), *root = tdu_tempdir();
    dtu_write_fashion_source(src, 50, 20);
    tb_fashion_scenes_options fo;
    tb_fashion_scenes_defaults(&fo);
    fo.train_count = 6;
    fo.test_count = 2;
    fo.size = 96;
    snprintf(fo.source, sizeof fo.source, "%s", src);
    if (tb_fashion_scenes_ensure(&fo, root) != TB_OK)
        fail_msg("%s", tb_errmsg());
    tb_det_dataset *ds;
    if (tb_det_dataset_open(&ds, root, "FashionScenes:train", tb_det_format_find("fashion-scenes")) != TB_OK)
        fail_msg("%s", tb_errmsg());
    tb_det_loader_options o = {.batch = 4, .max_objects = TB_FASHION_SCENES_MAX_ITEMS, .workers = 2};
    tb_det_loader *ld = make(ds, &o);
    dump d;
    run_epoch(ld, 0, &d);
    assert_true(d.h == 96 && d.w == 96 && d.c == 1 && d.steps == 2 && d.valid[1] == 2);
    for (int r = 0; r < 6; r++) {
        const tb_det_object *objs;
        int count;
        tb_det_dataset_objects(ds, r, &objs, &count);
        assert_int_equal(d.count[r], count);
        for (int k = 0; k < count; k++)
            assert_memory_equal(d.boxes + ((size_t)r * d.m + k) * 4, objs[k].box, 4 * sizeof(float));
    }
    dump_free(&d);
    tb_det_loader_destroy(ld);
    tb_det_dataset_close(ds);
    tdu_rmtree(src);
    tdu_rmtree(root);
    free(src);
    free(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resize_rule),
        cmocka_unit_test_setup_teardown(test_resize_pad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_native_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_determinism, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test(test_fashion_scenes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
