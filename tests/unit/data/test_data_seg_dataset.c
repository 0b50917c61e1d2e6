/* Segmentation datasets: ADE20K folders written by the test (the label
 * shift, 0 -> ignored, file order, the class list, bad files named in
 * errors) and detection masks (fashion-scenes; VOC's 255 void). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <png.h>
#include <unistd.h>

#include "data_test_util.h"
#include "det_test_util.h"
#include "seg_test_util.h"
#include "harness/data/dataset_impl.h"
#include "harness/data/label_png.h"
#include "harness/data/seg_dataset.h"
#include "kernels/error.h"

/* Stored ADE value of pixel (y, x) of image `seed`: every value 0..150 appears. */
static uint8_t ade_value(int seed, int y, int x, int w) { return (uint8_t)((seed * 11 + y * w + x) % 151); }

/* An h x w image and its annotation: stored values ade_value(seed, ...). */
static void write_ade_pair(const char *base, const char *split, const char *stem, int h, int w, int seed,
                           bool palette)
{
    stu_write_ade_image(base, split, stem, h, w, seed);
    uint8_t *lab = malloc((size_t)h * w);
    assert_non_null(lab);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            lab[(size_t)y * w + x] = ade_value(seed, y, x, w);
    stu_write_ade_labels(base, split, stem, h, w, lab, palette);
    free(lab);
}

/* ROOT/ADEChallengeData2016 with training: 3 images (written out of order,
 * mixed case) plus files that are not images; validation: 1 image. */
static char *make_ade(char *base, size_t cap)
{
    char *root = tdu_tempdir();
    tdu_pathf(base, cap, "%s/%s", root, TB_ADE20K_FOLDER);
    char p[4096];
    stu_make_ade_dirs(base);
    write_ade_pair(base, "training", "ADE_b", 12, 20, 1, false);
    write_ade_pair(base, "training", "ADE_B", 9, 7, 2, true);
    write_ade_pair(base, "training", "ADE_a", 16, 10, 3, false);
    write_ade_pair(base, "validation", "ADE_val_1", 8, 8, 4, false);
    tdu_write_file(tdu_pathf(p, sizeof p, "%s/images/training/notes.txt", base), "x", 1);
    tdu_write_file(tdu_pathf(p, sizeof p, "%s/images/training/.hidden.jpg", base), "x", 1);
    return root;
}

static tb_seg_dataset *open_ade(const char *root, const char *split)
{
    tb_seg_dataset *ds = NULL;
    if (tb_seg_dataset_open_ade20k(&ds, root, split) != TB_OK)
        fail_msg("%s", tb_errmsg());
    return ds;
}

static void free_tree(char *root)
{
    tdu_rmtree(root);
    free(root);
}

static void test_ade_classes(void **state)
{
    (void)state;
    char base[4096];
    char *root = make_ade(base, sizeof base);
    tb_seg_dataset *ds = open_ade(root, "training");
    assert_int_equal(tb_seg_dataset_classes(ds), 150);
    assert_int_equal(tb_seg_dataset_channels(ds), 3);
    assert_string_equal(tb_seg_dataset_name(ds), "ade20k");
    assert_string_equal(tb_seg_dataset_class_name(ds, 0), "wall");
    assert_string_equal(tb_seg_dataset_class_name(ds, 1), "building");
    assert_string_equal(tb_seg_dataset_class_name(ds, 12), "person");
    assert_string_equal(tb_seg_dataset_class_name(ds, 44), "chest of drawers");
    assert_string_equal(tb_seg_dataset_class_name(ds, 89), "television receiver");
    assert_string_equal(tb_seg_dataset_class_name(ds, 149), "flag");
    assert_string_equal(tb_seg_dataset_class_name(ds, 150), "?");
    assert_string_equal(tb_seg_dataset_class_name(ds, -1), "?");
    for (int a = 0; a < 150; a++) /* short names are distinct */
        for (int b = a + 1; b < 150; b++)
            assert_string_not_equal(tb_seg_dataset_class_name(ds, a), tb_seg_dataset_class_name(ds, b));
    float mean[3], std[3];
    tb_seg_dataset_normalization(ds, mean, std);
    assert_float_equal(mean[0], 123.675f, 1e-4);
    assert_float_equal(std[2], 57.375f, 1e-4);
    tb_seg_dataset_close(ds);
    free_tree(root);
}

/* Sorted .jpg files only; labels shifted down, 0 ignored; RGB pixels. */
static void test_ade_read(void **state)
{
    (void)state;
    char base[4096];
    char *root = make_ade(base, sizeof base);
    /* the parent root and the ADEChallengeData2016 folder itself, "train" alias */
    tb_seg_dataset *ds = open_ade(root, "train"), *ds2 = open_ade(base, "training");
    assert_int_equal(tb_seg_dataset_count(ds), 3);
    assert_int_equal(tb_seg_dataset_count(ds2), 3);
    assert_string_equal(tb_seg_dataset_image_name(ds, 0), "training/ADE_B");
    assert_string_equal(tb_seg_dataset_image_name(ds, 1), "training/ADE_a");
    assert_string_equal(tb_seg_dataset_image_name(ds, 2), "training/ADE_b");
    const int seeds[3] = {2, 3, 1}, hs[3] = {9, 16, 12}, ws[3] = {7, 10, 20};
    tb_image img = {0}, lab = {0};
    int ignored = 0, top = 0;
    for (int i = 0; i < 3; i++) {
        if (tb_seg_dataset_read(ds, i, &img, &lab) != TB_OK)
            fail_msg("%s", tb_errmsg());
        assert_true(img.h == hs[i] && img.w == ws[i] && img.c == 3);
        assert_true(lab.h == hs[i] && lab.w == ws[i] && lab.c == 1);
        for (int y = 0; y < img.h; y++)
            for (int x = 0; x < img.w; x++) {
                int v = ade_value(seeds[i], y, x, img.w);
                int got = lab.data[(size_t)y * lab.w + x];
                assert_int_equal(got, v == 0 ? TB_SEG_IGNORE_U8 : v - 1);
                ignored += got == TB_SEG_IGNORE_U8;
                top += got == 149;
                for (int k = 0; k < 3; k++) { /* a smooth image: quality 100 JPEG keeps it closely */
                    int d = img.data[((size_t)y * img.w + x) * 3 + k] - stu_pixel(seeds[i], y, x, k);
                    assert_true(d >= -4 && d <= 4);
                }
            }
    }
    assert_true(ignored > 0 && top > 0);
    tb_seg_dataset *val = open_ade(root, "val");
    assert_int_equal(tb_seg_dataset_count(val), 1);
    assert_string_equal(tb_seg_dataset_image_name(val, 0), "validation/ADE_val_1");
    assert_int_equal(tb_seg_dataset_read(val, 1, &img, &lab), TB_ERR_INVALID);
    tb_image_free(&img);
    tb_image_free(&lab);
    tb_seg_dataset_close(val);
    tb_seg_dataset_close(ds2);
    tb_seg_dataset_close(ds);
    free_tree(root);
}

static void expect_msg(const char *needle)
{
    if (!strstr(tb_errmsg(), needle))
        fail_msg("message '%s' does not name '%s'", tb_errmsg(), needle);
}

static void test_ade_open_errors(void **state)
{
    (void)state;
    char base[4096], p[4096], q[4096];
    char *root = make_ade(base, sizeof base);
    tb_seg_dataset *ds = NULL;
    assert_int_equal(tb_seg_dataset_open_ade20k(&ds, root, "test"), TB_ERR_INVALID);
    expect_msg("'test'");
    tdu_pathf(p, sizeof p, "%s/missing", root);
    assert_int_equal(tb_seg_dataset_open_ade20k(&ds, p, "training"), TB_ERR_MISSING);
    expect_msg(p);
    assert_int_equal(tb_seg_dataset_open_ade20k(&ds, "/", "training"), TB_ERR_MISSING);
    expect_msg("images/training");
    assert_int_equal(tb_seg_dataset_open(&ds, "cityscapes", root, true), TB_ERR_INVALID);
    /* an image without its annotation */
    tdu_pathf(p, sizeof p, "%s/annotations/training/ADE_a.png", base);
    tdu_pathf(q, sizeof q, "%s/annotations/training/ADE_a.png.bak", base);
    assert_int_equal(rename(p, q), 0);
    assert_int_equal(tb_seg_dataset_open_ade20k(&ds, root, "training"), TB_ERR_DATA);
    assert_null(ds);
    expect_msg(p);
    expect_msg("images/training/ADE_a.jpg");
    assert_int_equal(rename(q, p), 0);
    /* an empty split */
    tdu_mkdirs(tdu_pathf(p, sizeof p, "%s/e/images/training", root));
    tdu_mkdirs(tdu_pathf(p, sizeof p, "%s/e/annotations/training", root));
    tdu_pathf(p, sizeof p, "%s/e", root);
    assert_int_equal(tb_seg_dataset_open_ade20k(&ds, p, "training"), TB_ERR_DATA);
    expect_msg("no .jpg images");
    free_tree(root);
}

/* Replaces annotation STEM of training with the given bytes. */
static void overwrite(const char *base, const char *stem, const void *bytes, size_t n)
{
    char p[4096];
    tdu_write_file(tdu_pathf(p, sizeof p, "%s/annotations/training/%s.png", base, stem), bytes, n);
}

static void test_ade_read_errors(void **state)
{
    (void)state;
    char base[4096], p[4096];
    char *root = make_ade(base, sizeof base);
    tb_seg_dataset *ds = open_ade(root, "training");
    tb_image img = {0}, lab = {0};
    /* ADE_a (index 1, 16 x 10): a stored 151 */
    uint8_t bad[160];
    memset(bad, 5, sizeof bad);
    bad[3 * 10 + 7] = 151;
    tdu_write_png(tdu_pathf(p, sizeof p, "%s/annotations/training/ADE_a.png", base), 10, 16, PNG_COLOR_TYPE_GRAY, 8,
                  bad, NULL, 0);
    assert_int_equal(tb_seg_dataset_read(ds, 1, &img, &lab), TB_ERR_DATA);
    expect_msg(p);
    expect_msg("151");
    expect_msg("x 7, y 3");
    /* a label map of another size */
    tdu_write_png(p, 8, 16, PNG_COLOR_TYPE_GRAY, 8, bad, NULL, 0);
    assert_int_equal(tb_seg_dataset_read(ds, 1, &img, &lab), TB_ERR_DATA);
    expect_msg(p);
    expect_msg("8x16");
    expect_msg("ADE_a.jpg");
    /* a truncated PNG */
    memset(bad, 5, sizeof bad);
    tdu_write_png(p, 10, 16, PNG_COLOR_TYPE_GRAY, 8, bad, NULL, 0);
    assert_int_equal(tb_seg_dataset_read(ds, 1, &img, &lab), TB_OK);
    uint8_t *bytes = NULL;
    size_t cap = 0, size = 0;
    assert_int_equal(tb_read_file(p, &bytes, &cap, &size), TB_OK);
    overwrite(base, "ADE_a", bytes, size / 2);
    assert_int_equal(tb_seg_dataset_read(ds, 1, &img, &lab), TB_ERR_DATA);
    expect_msg(p);
    /* not a PNG at all */
    overwrite(base, "ADE_a", "GIF89a....", 10);
    assert_int_equal(tb_seg_dataset_read(ds, 1, &img, &lab), TB_ERR_DATA);
    expect_msg(p);
    /* a truncated JPEG names the image */
    tdu_pathf(p, sizeof p, "%s/images/training/ADE_b.jpg", base);
    assert_int_equal(tb_read_file(p, &bytes, &cap, &size), TB_OK);
    tdu_write_file(p, bytes, 40);
    assert_int_equal(tb_seg_dataset_read(ds, 2, &img, &lab), TB_ERR_DATA);
    expect_msg(p);
    /* the other images still read */
    assert_int_equal(tb_seg_dataset_read(ds, 0, &img, &lab), TB_OK);
    free(bytes);
    tb_image_free(&img);
    tb_image_free(&lab);
    tb_seg_dataset_close(ds);
    free_tree(root);
}

/* fashion-scenes: 11 classes, the mask values are the classes. */
static void test_fashion_scenes_masks(void **state)
{
    (void)state;
    char *src = tdu_tempdir(), *root = tdu_tempdir();
    stu_make_fashion_scenes(root, src, 4, 2, 64);
    tb_seg_dataset *ds = NULL, *test = NULL;
    if (tb_seg_dataset_open(&ds, "fashion-scenes", root, true) != TB_OK ||
        tb_seg_dataset_open(&test, "fashion-scenes", root, false) != TB_OK)
        fail_msg("%s", tb_errmsg());
    assert_int_equal(tb_seg_dataset_count(ds), 4);
    assert_int_equal(tb_seg_dataset_count(test), 2);
    assert_int_equal(tb_seg_dataset_classes(ds), 11);
    assert_int_equal(tb_seg_dataset_channels(ds), 1);
    assert_string_equal(tb_seg_dataset_name(ds), "fashion-scenes");
    assert_string_equal(tb_seg_dataset_class_name(ds, 0), "background");
    assert_string_equal(tb_seg_dataset_class_name(ds, 1), "t-shirt");
    assert_string_equal(tb_seg_dataset_class_name(ds, 10), "ankle-boot");
    assert_string_equal(tb_seg_dataset_class_name(ds, 11), "?");
    assert_string_equal(tb_seg_dataset_image_name(test, 1), "FashionScenes/test_000001");
    float mean[3], std[3];
    tb_seg_dataset_normalization(ds, mean, std);
    assert_float_equal(mean[0], 72.940352f, 1e-4);
    tb_det_dataset *det = NULL;
    if (tb_det_dataset_open(&det, root, "FashionScenes:train", &tb_det_format_fashion_scenes) != TB_OK)
        fail_msg("%s", tb_errmsg());
    tb_image img = {0}, lab = {0}, mask = {0}, dimg = {0};
    int items = 0;
    for (int i = 0; i < 4; i++) {
        if (tb_seg_dataset_read(ds, i, &img, &lab) != TB_OK || tb_det_dataset_read_mask(det, i, &mask) != TB_OK ||
            tb_det_dataset_read(det, i, &dimg) != TB_OK)
            fail_msg("%s", tb_errmsg());
        assert_true(img.h == 64 && img.w == 64 && img.c == 1 && lab.h == 64 && lab.w == 64);
        assert_memory_equal(lab.data, mask.data, 64 * 64);
        assert_memory_equal(img.data, dimg.data, 64 * 64);
        for (int p = 0; p < 64 * 64; p++) {
            assert_true(lab.data[p] <= 10);
            items += lab.data[p] > 0;
        }
    }
    assert_true(items > 0);
    tb_image_free(&img);
    tb_image_free(&lab);
    tb_image_free(&mask);
    tb_image_free(&dimg);
    tb_det_dataset_close(det);
    tb_seg_dataset_close(test);
    tb_seg_dataset_close(ds);
    free_tree(src);
    free_tree(root);
}

/* VOC masks: 255 (void) is ignored, 0..20 are the classes, 21 is an error. */
static void test_voc_masks(void **state)
{
    (void)state;
    char *root = tdu_tempdir();
    dtu_make_voc_dirs(root, "VOC2012");
    const char *ids[] = {"a"};
    dtu_obj obj = {"dog", 1, 1, 4, 4, 0};
    dtu_write_voc_xml(root, "VOC2012", "a", 6, 4, &obj, 1);
    dtu_write_voc_jpeg(root, "VOC2012", "a", 6, 4, 3, 1);
    dtu_write_image_set(root, "VOC2012", "train", ids, 1);
    uint8_t m[24];
    for (int p = 0; p < 24; p++)
        m[p] = (uint8_t)(p % 5 == 0 ? 255 : p % 21);
    char path[4096];
    tdu_pathf(path, sizeof path, "%s/VOC2012/SegmentationClass/a.png", root);
    assert_int_equal(tb_label_png_write(path, m, 4, 6), TB_OK);
    tb_seg_dataset *ds = NULL;
    if (tb_seg_dataset_open_det(&ds, root, "VOC2012:train", &tb_det_format_voc) != TB_OK)
        fail_msg("%s", tb_errmsg());
    assert_int_equal(tb_seg_dataset_classes(ds), 21);
    assert_string_equal(tb_seg_dataset_class_name(ds, 15), "person");
    tb_image img = {0}, lab = {0};
    if (tb_seg_dataset_read(ds, 0, &img, &lab) != TB_OK)
        fail_msg("%s", tb_errmsg());
    assert_true(img.c == 3 && lab.h == 4 && lab.w == 6);
    assert_memory_equal(lab.data, m, 24); /* 255 stays the u8 ignore value, classes as stored */
    m[23] = 21;
    assert_int_equal(tb_label_png_write(path, m, 4, 6), TB_OK);
    assert_int_equal(tb_seg_dataset_read(ds, 0, &img, &lab), TB_ERR_DATA);
    expect_msg(path);
    expect_msg("value 21 at (x 5, y 3)");
    tb_image_free(&img);
    tb_image_free(&lab);
    tb_seg_dataset_close(ds);
    /* the detection dataset's own errors come through */
    assert_int_equal(tb_seg_dataset_open_det(&ds, root, "VOC2012:val", &tb_det_format_voc), TB_ERR_MISSING);
    assert_null(ds);
    free_tree(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ade_classes),
        cmocka_unit_test(test_ade_read),
        cmocka_unit_test(test_ade_open_errors),
        cmocka_unit_test(test_ade_read_errors),
        cmocka_unit_test(test_fashion_scenes_masks),
        cmocka_unit_test(test_voc_masks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
