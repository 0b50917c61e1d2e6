/* Image folders: JPEG (RGB, gray, CMYK) and PNG (RGB, gray, palette, RGBA,
 * 16-bit) files of several sizes written by the test, and the bad cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <png.h>

#include "data_test_util.h"
#include "harness/data/dataset.h"
#include "harness/data/loader.h"
#include "kernels/error.h"

typedef struct fixture {
    char *root;
} fixture;

static void path_of(char *buf, size_t cap, const char *root, const char *rel)
{
    int n = snprintf(buf, cap, "%s/%s", root, rel);
    assert_true(n > 0 && (size_t)n < cap);
}

static uint8_t *solid(int w, int h, int c, const uint8_t *value)
{
    uint8_t *p = malloc((size_t)w * h * c);
    for (int i = 0; i < w * h; i++)
        memcpy(p + (size_t)i * c, value, (size_t)c);
    return p;
}

/* RGB pattern that PNG must reproduce exactly. */
static uint8_t pat(int x, int y, int ch) { return (uint8_t)(x * 13 + y * 29 + ch * 71); }

static void jpeg_solid(const char *root, const char *rel, int w, int h, int c, const uint8_t *value)
{
    char path[4096];
    path_of(path, sizeof path, root, rel);
    uint8_t *px = solid(w, h, c, value);
    tdu_write_jpeg(path, w, h, c, px, 95);
    free(px);
}

static void png_rgb(const char *root, const char *rel, int w, int h)
{
    char path[4096];
    path_of(path, sizeof path, root, rel);
    uint8_t *px = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int ch = 0; ch < 3; ch++)
                px[(y * w + x) * 3 + ch] = pat(x, y, ch);
    tdu_write_png(path, w, h, PNG_COLOR_TYPE_RGB, 8, px, NULL, 0);
    free(px);
}

/* The standard tree: classes written out of order; see the expected table below. */
static void write_tree(const char *root)
{
    char p[4096];
    const char *dirs[] = {"train/zebra", "train/cat", "train/dog", "val/cat", "val/dog"};
    for (int i = 0; i < 5; i++) {
        path_of(p, sizeof p, root, dirs[i]);
        tdu_mkdirs(p);
    }
    const uint8_t red[3] = {200, 40, 60}, gray[1] = {90}, mid[3] = {120, 130, 140};
    jpeg_solid(root, "train/cat/a.jpg", 40, 30, 3, red);
    jpeg_solid(root, "train/cat/b.JPEG", 33, 21, 1, gray);
    png_rgb(root, "train/cat/c.png", 17, 23);
    path_of(p, sizeof p, root, "train/cat/notes.txt");
    tdu_write_file(p, "not an image", 12);
    /* CMYK, inverted as libjpeg's writer marks it (Adobe): stored c = 255*R/max, k = max */
    const uint8_t cmyk[4] = {(uint8_t)(255 * 30 / 220), (uint8_t)(255 * 160 / 220), 255, 220};
    jpeg_solid(root, "train/dog/d.jpg", 24, 16, 4, cmyk);
    {
        uint8_t g[12 * 10];
        for (int i = 0; i < 120; i++)
            g[i] = (uint8_t)(i * 2);
        path_of(p, sizeof p, root, "train/dog/e.png");
        tdu_write_png(p, 10, 12, PNG_COLOR_TYPE_GRAY, 8, g, NULL, 0);
    }
    {
        uint8_t idx[9 * 9], pal[3 * 3] = {255, 0, 0, 0, 255, 0, 0, 0, 255};
        for (int i = 0; i < 81; i++)
            idx[i] = (uint8_t)(i % 3);
        path_of(p, sizeof p, root, "train/dog/f.png");
        tdu_write_png(p, 9, 9, PNG_COLOR_TYPE_PALETTE, 8, idx, pal, 3);
    }
    {
        uint8_t rgba[7 * 5 * 4];
        for (int i = 0; i < 35; i++) {
            rgba[4 * i] = (uint8_t)i;
            rgba[4 * i + 1] = (uint8_t)(2 * i);
            rgba[4 * i + 2] = (uint8_t)(3 * i);
            rgba[4 * i + 3] = (uint8_t)(i * 7); /* alpha is dropped, not composited */
        }
        path_of(p, sizeof p, root, "train/dog/g.png");
        tdu_write_png(p, 7, 5, PNG_COLOR_TYPE_RGBA, 8, rgba, NULL, 0);
    }
    jpeg_solid(root, "train/zebra/h.jpg", 400, 300, 3, mid);
    {
        uint8_t px16[6 * 4 * 3 * 2]; /* big-endian 16-bit samples v * 257 */
        for (int i = 0; i < 6 * 4 * 3; i++) {
            int v = (i * 9) & 255;
            px16[2 * i] = (uint8_t)v;
            px16[2 * i + 1] = (uint8_t)v;
        }
        path_of(p, sizeof p, root, "train/zebra/i.png");
        tdu_write_png(p, 6, 4, PNG_COLOR_TYPE_RGB, 16, px16, NULL, 0);
    }
    jpeg_solid(root, "val/cat/v1.jpg", 50, 60, 3, red);
    png_rgb(root, "val/dog/v2.png", 31, 8);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->root = tdu_tempdir();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    tdu_rmtree(f->root);
    free(f->root);
    free(f);
    return 0;
}

static void assert_msg(const char *a, const char *b)
{
    if (!strstr(tb_errmsg(), a) || (b && !strstr(tb_errmsg(), b)))
        fail_msg("message '%s' lacks '%s' / '%s'", tb_errmsg(), a, b ? b : "");
}

static void assert_near_solid(const tb_image *img, int r, int g, int b, int tol)
{
    for (int i = 0; i < img->h * img->w; i++) {
        const uint8_t *p = img->data + i * 3;
        if (abs(p[0] - r) > tol || abs(p[1] - g) > tol || abs(p[2] - b) > tol)
            fail_msg("pixel %d = (%d, %d, %d), expected (%d, %d, %d) +- %d", i, p[0], p[1], p[2], r, g, b, tol);
    }
}

static void read_ok(tb_dataset *ds, int64_t i, int min_side, tb_image *img, int label, int h, int w)
{
    int32_t got;
    if (tb_dataset_read(ds, i, min_side, img, &got) != TB_OK)
        fail_msg("read %lld: %s", (long long)i, tb_errmsg());
    assert_int_equal(got, label);
    assert_int_equal(img->c, 3);
    assert_int_equal(img->h, h);
    assert_int_equal(img->w, w);
}

static void test_decode_all_formats(void **state)
{
    fixture *f = *state;
    write_tree(f->root);
    tb_data_config cfg = tdu_config("imagefolder", f->root);
    tb_dataset *ds;
    if (tb_dataset_open(&ds, &cfg, true) != TB_OK)
        fail_msg("%s", tb_errmsg());
    assert_int_equal(tb_dataset_count(ds), 9);
    assert_int_equal(tb_dataset_classes(ds), 3);
    assert_int_equal(tb_dataset_channels(ds), 3);
    assert_int_equal(tb_dataset_height(ds), 0); /* sizes vary */
    tb_image img = {0};
    read_ok(ds, 0, 0, &img, 0, 30, 40); /* cat/a.jpg */
    assert_near_solid(&img, 200, 40, 60, 4);
    read_ok(ds, 1, 0, &img, 0, 21, 33); /* cat/b.JPEG, grayscale */
    assert_near_solid(&img, 90, 90, 90, 2);
    read_ok(ds, 2, 0, &img, 0, 23, 17); /* cat/c.png */
    for (int y = 0; y < 23; y++)
        for (int x = 0; x < 17; x++)
            for (int ch = 0; ch < 3; ch++)
                assert_int_equal(img.data[(y * 17 + x) * 3 + ch], pat(x, y, ch));
    read_ok(ds, 3, 0, &img, 1, 16, 24); /* dog/d.jpg, CMYK */
    assert_near_solid(&img, 30, 160, 220, 6);
    read_ok(ds, 4, 0, &img, 1, 12, 10); /* dog/e.png, gray */
    for (int i = 0; i < 120; i++)
        for (int ch = 0; ch < 3; ch++)
            assert_int_equal(img.data[i * 3 + ch], i * 2);
    read_ok(ds, 5, 0, &img, 1, 9, 9); /* dog/f.png, palette */
    for (int i = 0; i < 81; i++)
        for (int ch = 0; ch < 3; ch++)
            assert_int_equal(img.data[i * 3 + ch], ch == i % 3 ? 255 : 0);
    read_ok(ds, 6, 0, &img, 1, 5, 7); /* dog/g.png, RGBA */
    for (int i = 0; i < 35; i++)
        for (int ch = 0; ch < 3; ch++)
            assert_int_equal(img.data[i * 3 + ch], (ch + 1) * i);
    read_ok(ds, 7, 0, &img, 2, 300, 400); /* zebra/h.jpg */
    assert_near_solid(&img, 120, 130, 140, 3);
    read_ok(ds, 8, 0, &img, 2, 4, 6); /* zebra/i.png, 16-bit */
    for (int i = 0; i < 6 * 4 * 3; i++)
        assert_int_equal(img.data[i], (i * 9) & 255);
    tb_image_free(&img);
    tb_dataset_close(ds);
}

static void test_dct_scaling(void **state)
{
    fixture *f = *state;
    write_tree(f->root);
    tb_data_config cfg = tdu_config("imagefolder", f->root);
    tb_dataset *ds;
    assert_int_equal(tb_dataset_open(&ds, &cfg, true), TB_OK);
    tb_image img = {0};
    read_ok(ds, 7, 64, &img, 2, 75, 100); /* 1/4: shorter side 75 >= 64 */
    assert_near_solid(&img, 120, 130, 140, 3);
    read_ok(ds, 7, 150, &img, 2, 150, 200); /* 1/2 */
    read_ok(ds, 7, 151, &img, 2, 300, 400); /* no reduction keeps 151 */
    read_ok(ds, 7, 30, &img, 2, 38, 50);    /* 1/8, sizes rounded up */
    read_ok(ds, 2, 8, &img, 0, 23, 17);     /* PNG: never scaled */
    tb_image_free(&img);
    tb_dataset_close(ds);
}

static void test_val_split_and_stats(void **state)
{
    fixture *f = *state;
    write_tree(f->root);
    tb_data_config cfg = tdu_config("imagefolder", f->root);
    tb_dataset *tr, *va;
    assert_int_equal(tb_dataset_open(&tr, &cfg, true), TB_OK);
    assert_int_equal(tb_dataset_open(&va, &cfg, false), TB_OK);
    assert_int_equal(tb_dataset_count(va), 2);
    assert_int_equal(tb_dataset_classes(va), 3);
    assert_int_equal(tb_dataset_label(va, 0), 0);
    assert_int_equal(tb_dataset_label(va, 1), 1);
    tb_image img = {0};
    read_ok(va, 1, 0, &img, 1, 8, 31);
    tb_image_free(&img);
    /* validation uses the training sample's statistics */
    float m1[3], s1[3], m2[3], s2[3];
    tb_dataset_normalization(tr, m1, s1);
    tb_dataset_normalization(va, m2, s2);
    for (int k = 0; k < 3; k++) {
        assert_float_equal(m1[k], m2[k], 0);
        assert_float_equal(s1[k], s2[k], 0);
        assert_true(m1[k] > 20 && m1[k] < 235 && s1[k] > 1 && s1[k] < 128);
    }
    tb_dataset_close(tr);
    tb_dataset_close(va);
}

static void test_wordnet_classes_use_imagenet_stats(void **state)
{
    fixture *f = *state;
    char p[4096];
    const uint8_t c[3] = {1, 2, 3};
    path_of(p, sizeof p, f->root, "train/n01440764");
    tdu_mkdirs(p);
    path_of(p, sizeof p, f->root, "train/n01443537");
    tdu_mkdirs(p);
    jpeg_solid(f->root, "train/n01440764/x.JPEG", 8, 8, 3, c);
    jpeg_solid(f->root, "train/n01443537/y.JPEG", 8, 8, 3, c);
    tb_data_config cfg = tdu_config("imagefolder", f->root);
    tb_dataset *ds;
    assert_int_equal(tb_dataset_open(&ds, &cfg, true), TB_OK);
    float mean[3], std[3];
    tb_dataset_normalization(ds, mean, std);
    assert_float_equal(mean[0], 0.485 * 255, 0.01);
    assert_float_equal(std[2], 0.225 * 255, 0.01);
    tb_dataset_close(ds);
}

static void test_png_named_jpg(void **state)
{
    fixture *f = *state;
    char p[4096];
    path_of(p, sizeof p, f->root, "train/only");
    tdu_mkdirs(p);
    png_rgb(f->root, "train/only/really_a_png.jpg", 5, 4);
    tb_data_config cfg = tdu_config("imagefolder", f->root);
    tb_dataset *ds;
    assert_int_equal(tb_dataset_open(&ds, &cfg, true), TB_OK);
    tb_image img = {0};
    read_ok(ds, 0, 0, &img, 0, 4, 5);
    assert_int_equal(img.data[3 * 7 + 1], pat(2, 1, 1));
    tb_image_free(&img);
    tb_dataset_close(ds);
}

static void test_bad_folders(void **state)
{
    fixture *f = *state;
    tb_data_config cfg = tdu_config("imagefolder", f->root);
    tb_dataset *ds;
    assert_int_equal(tb_dataset_open(&ds, &cfg, true), TB_ERR_MISSING); /* no train/ */
    assert_msg("/train does not exist", NULL);
    cfg = tdu_config("imagefolder", "/nonexistent/folder");
    assert_int_equal(tb_dataset_open(&ds, &cfg, true), TB_ERR_MISSING);
    assert_msg("/nonexistent/folder", "does not exist");
    write_tree(f->root);
    cfg = tdu_config("imagefolder", f->root);
    char p[4096];
    /* an empty class folder (only a non-image file) */
    path_of(p, sizeof p, f->root, "train/empty");
    tdu_mkdirs(p);
    path_of(p, sizeof p, f->root, "train/empty/readme.md");
    tdu_write_file(p, "x", 1);
    assert_int_equal(tb_dataset_open(&ds, &cfg, true), TB_ERR_DATA);
    assert_msg("empty class folder", "train/empty");
    remove(p);
    path_of(p, sizeof p, f->root, "train/empty");
    remove(p);
    /* a validation class the training split lacks */
    path_of(p, sizeof p, f->root, "val/wolf");
    tdu_mkdirs(p);
    jpeg_solid(f->root, "val/wolf/w.jpg", 8, 8, 1, (const uint8_t[]){7});
    assert_int_equal(tb_dataset_open(&ds, &cfg, false), TB_ERR_DATA);
    assert_msg("val/wolf", "not one of the 3 training classes");
    path_of(p, sizeof p, f->root, "val/wolf/w.jpg");
    remove(p);
    path_of(p, sizeof p, f->root, "val/wolf");
    remove(p);
    /* no val/ at all */
    tdu_rmtree(tdu_join(p, sizeof p, f->root, "val"));
    assert_int_equal(tb_dataset_open(&ds, &cfg, false), TB_ERR_MISSING);
    assert_msg("/val does not exist", NULL);
}

/* Writes a bad file into val/cat and returns the validation split. */
static tb_dataset *val_with_bad_file(fixture *f, const char *name, const void *bytes, size_t n, bool skip_bad)
{
    write_tree(f->root);
    char p[4096];
    path_of(p, sizeof p, f->root, name);
    tdu_write_file(p, bytes, n);
    tb_data_config cfg = tdu_config("imagefolder", f->root);
    cfg.skip_bad = skip_bad;
    tb_dataset *ds;
    if (tb_dataset_open(&ds, &cfg, false) != TB_OK)
        fail_msg("%s", tb_errmsg());
    return ds;
}

static void test_undecodable(void **state)
{
    fixture *f = *state;
    tb_dataset *ds = val_with_bad_file(f, "val/cat/bad.jpg", "GIF89a not really", 17, false);
    assert_int_equal(tb_dataset_count(ds), 3); /* bad.jpg, v1.jpg, v2.png */
    tb_image img = {0};
    int32_t label;
    assert_int_equal(tb_dataset_read(ds, 0, 0, &img, &label), TB_ERR_DATA);
    assert_msg("val/cat/bad.jpg: undecodable image", "neither JPEG nor PNG (first bytes 47 49 46 38)");
    tb_dataset_close(ds);
    char p[4096];
    remove(tdu_join(p, sizeof p, f->root, "val/cat/bad.jpg"));

    /* a JPEG cut in half */
    path_of(p, sizeof p, f->root, "train/zebra/h.jpg");
    FILE *fp = fopen(p, "rb");
    assert_non_null(fp);
    uint8_t buf[8192];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    assert_true(n > 1000);
    ds = val_with_bad_file(f, "val/cat/cut.jpg", buf, n / 2, false);
    assert_int_equal(tb_dataset_read(ds, 0, 0, &img, &label), TB_ERR_DATA);
    assert_msg("val/cat/cut.jpg: truncated JPEG data", NULL);
    tb_dataset_close(ds);
    remove(tdu_join(p, sizeof p, f->root, "val/cat/cut.jpg"));

    /* a PNG cut short, and an empty file */
    path_of(p, sizeof p, f->root, "train/cat/c.png");
    fp = fopen(p, "rb");
    n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    ds = val_with_bad_file(f, "val/cat/cut.png", buf, n - 20, false);
    assert_int_equal(tb_dataset_read(ds, 0, 0, &img, &label), TB_ERR_DATA);
    assert_msg("val/cat/cut.png: undecodable PNG", NULL);
    tb_dataset_close(ds);
    remove(tdu_join(p, sizeof p, f->root, "val/cat/cut.png"));
    ds = val_with_bad_file(f, "val/cat/empty.png", "", 0, false);
    assert_int_equal(tb_dataset_read(ds, 0, 0, &img, &label), TB_ERR_DATA);
    assert_msg("val/cat/empty.png: undecodable image: the file is empty", NULL);
    tb_dataset_close(ds);
    tb_image_free(&img);
}

static void test_skip_bad(void **state)
{
    fixture *f = *state;
    tb_dataset *ds = val_with_bad_file(f, "val/cat/bad.jpg", "garbage!", 8, true);
    tb_image img = {0};
    int32_t label;
    /* sample 0 is bad: replaced by the next one (v1.jpg, cat) and counted once */
    assert_int_equal(tb_dataset_read(ds, 0, 0, &img, &label), TB_OK);
    assert_int_equal(img.h, 60);
    assert_int_equal(label, 0);
    assert_int_equal(tb_dataset_read(ds, 0, 0, &img, &label), TB_OK);
    assert_int_equal(tb_dataset_skipped(ds), 1);
    read_ok(ds, 2, 0, &img, 1, 8, 31);
    tb_image_free(&img);
    tb_dataset_close(ds);
    /* skip_bad also protects the statistics sample of the training split */
    tb_data_config cfg = tdu_config("imagefolder", f->root);
    char p[4096];
    path_of(p, sizeof p, f->root, "train/cat/zz.png");
    tdu_write_file(p, "nope", 4);
    tb_dataset *tr;
    assert_int_equal(tb_dataset_open(&tr, &cfg, true), TB_ERR_DATA);
    assert_msg("train/cat/zz.png", "undecodable");
    cfg.skip_bad = true;
    assert_int_equal(tb_dataset_open(&tr, &cfg, true), TB_OK);
    tb_dataset_close(tr);
}

/* A worker's decode error reaches tb_loader_next with the file's name. */
static void test_loader_error_propagates(void **state)
{
    fixture *f = *state;
    tb_dataset *ds = val_with_bad_file(f, "val/dog/zz_bad.png", "\x89PNG\r\n\x1a\n broken", 16, false);
    tb_loader_options opt = {.batch = 2, .train = false, .workers = 2, .image_size = 16, .augment = "imagenet"};
    tb_loader *ld;
    assert_int_equal(tb_loader_create(&ld, ds, &opt), TB_OK);
    assert_int_equal(tb_loader_start_epoch(ld, 0), TB_OK);
    tb_batch *b = NULL;
    int rc = TB_OK;
    while ((rc = tb_loader_next(ld, &b)) == TB_OK && b)
        tb_loader_release(ld, b);
    assert_int_equal(rc, TB_ERR_DATA);
    assert_null(b);
    assert_msg("val/dog/zz_bad.png: undecodable PNG", NULL);
    /* the loader stays failed */
    assert_int_equal(tb_loader_next(ld, &b), TB_ERR_DATA);
    assert_int_equal(tb_loader_start_epoch(ld, 1), TB_ERR_DATA);
    tb_loader_destroy(ld);
    tb_dataset_close(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_decode_all_formats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dct_scaling, setup, teardown),
        cmocka_unit_test_setup_teardown(test_val_split_and_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wordnet_classes_use_imagenet_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_png_named_jpg, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_folders, setup, teardown),
        cmocka_unit_test_setup_teardown(test_undecodable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_skip_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loader_error_propagates, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
