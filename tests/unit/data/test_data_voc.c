/* PASCAL VOC reading: annotation XML (fields, difficult, the coordinate
 * conversion, malformed files), image sets, the detection dataset over
 * several folders, images and masks. In a build without libxml2 (meson
 * -Dlibxml2=disabled), only that an annotation then fails and says why. */
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
#include "det_test_util.h"
#include "harness/data/det_dataset.h"
#include "harness/data/label_png.h"
#include "harness/data/voc.h"
#include "kernels/error.h"
#include "tb_build_config.h"

#if HAVE_LIBXML2
static const tb_det_format *voc(void) { return &tb_det_format_voc; }

static int parse(const char *root, const char *id, tb_voc_annotation *a)
{
    char p[4096];
    tdu_pathf(p, sizeof p, "%s/VOC2007/Annotations/%s.xml", root, id);
    return tb_voc_parse_annotation(p, voc()->class_names, voc()->classes, a);
}

/* A hand-written annotation in the style of the VOC files: whitespace,
 * a <part> with its own bndbox, an object without <difficult>. */
static const char *hand_written =
    "<annotation>\n"
    "\t<folder>VOC2007</folder>\n\t<filename>000005.jpg</filename>\n"
    "\t<source><database>The VOC2007 Database</database></source>\n"
    "\t<size>\n\t\t<width>500</width>\n\t\t<height>375</height>\n\t\t<depth>3</depth>\n\t</size>\n"
    "\t<segmented>0</segmented>\n"
    "\t<object>\n\t\t<name>chair</name>\n\t\t<pose>Rear</pose>\n\t\t<truncated>0</truncated>\n"
    "\t\t<difficult>0</difficult>\n"
    "\t\t<bndbox>\n\t\t\t<xmin>263</xmin>\n\t\t\t<ymin>211</ymin>\n\t\t\t<xmax>324</xmax>\n\t\t\t<ymax>339</ymax>\n"
    "\t\t</bndbox>\n\t</object>\n"
    "\t<object>\n\t\t<name> person </name>\n\t\t<truncated>1</truncated>\n\t\t<difficult>1</difficult>\n"
    "\t\t<part><name>head</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></part>\n"
    "\t\t<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>500</xmax><ymax>375</ymax></bndbox>\n\t</object>\n"
    "\t<object>\n\t\t<name>tvmonitor</name>\n"
    "\t\t<bndbox><xmin>10.5</xmin><ymin>20</ymin><xmax>10.5</xmax><ymax>20</ymax></bndbox>\n\t</object>\n"
    "</annotation>\n";

static void test_parse_hand_written(void **state)
{
    (void)state;
    char *root = tdu_tempdir();
    dtu_make_voc_dirs(root, "VOC2007");
    dtu_write_text_xml(root, "VOC2007", "000005", hand_written);
    tb_voc_annotation a;
    if (parse(root, "000005", &a) != TB_OK)
        fail_msg("%s", tb_errmsg());
    assert_int_equal(a.width, 500);
    assert_int_equal(a.height, 375);
    assert_int_equal(a.count, 3);
    /* chair = class 8; 1-based inclusive 263..324 -> continuous [262, 324) */
    assert_int_equal(a.objects[0].label, 8);
    assert_int_equal(a.objects[0].difficult, 0);
    assert_true(a.objects[0].box[0] == 262.0f && a.objects[0].box[1] == 210.0f);
    assert_true(a.objects[0].box[2] == 324.0f && a.objects[0].box[3] == 339.0f);
    /* person = 14, difficult kept; the whole image is [0, 500) x [0, 375); the part's box is ignored */
    assert_int_equal(a.objects[1].label, 14);
    assert_int_equal(a.objects[1].difficult, 1);
    assert_true(a.objects[1].box[0] == 0.0f && a.objects[1].box[1] == 0.0f);
    assert_true(a.objects[1].box[2] == 500.0f && a.objects[1].box[3] == 375.0f);
    /* no <difficult>: 0; a one-pixel box (xmin == xmax) has width 1; decimals accepted */
    assert_int_equal(a.objects[2].label, 19);
    assert_int_equal(a.objects[2].difficult, 0);
    assert_true(a.objects[2].box[2] - a.objects[2].box[0] == 1.0f);
    assert_true(a.objects[2].box[0] == 9.5f && a.objects[2].box[3] - a.objects[2].box[1] == 1.0f);
    tb_voc_annotation_free(&a);
    tdu_rmtree(root);
    free(root);
}

/* A malformed file gives TB_ERR_DATA whose message names the file and each of `needles`. */
static void expect_bad(const char *root, const char *id, const char *text, const char *n1, const char *n2)
{
    dtu_write_text_xml(root, "VOC2007", id, text);
    tb_voc_annotation a;
    int rc = parse(root, id, &a);
    if (rc != TB_ERR_DATA)
        fail_msg("%s: expected TB_ERR_DATA, got %s (%s)", id, tb_status_name(rc), tb_errmsg());
    const char *msg = tb_errmsg();
    char file[512];
    snprintf(file, sizeof file, "%s.xml", id);
    if (!strstr(msg, file) || (n1 && !strstr(msg, n1)) || (n2 && !strstr(msg, n2)))
        fail_msg("%s: message lacks '%s' / '%s' / '%s': %s", id, file, n1 ? n1 : "", n2 ? n2 : "", msg);
    assert_null(a.objects);
}

#define HEAD "<annotation><size><width>100</width><height>80</height></size>"
#define OK_OBJ "<object><name>dog</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object>"

static void test_malformed(void **state)
{
    (void)state;
    char *root = tdu_tempdir();
    dtu_make_voc_dirs(root, "VOC2007");
    expect_bad(root, "bad_xml", HEAD OK_OBJ "<object><name>cat</name>", "malformed XML", NULL);
    expect_bad(root, "not_voc", "<html></html>", "<annotation>", NULL);
    expect_bad(root, "no_size", "<annotation>" OK_OBJ "</annotation>", "<size>", NULL);
    expect_bad(root, "no_bndbox", HEAD OK_OBJ "<object><name>cat</name><difficult>0</difficult></object></annotation>",
               "object 1", "bndbox");
    expect_bad(root, "no_ymax",
               HEAD "<object><name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax></bndbox></object>"
                    "</annotation>",
               "object 0", "ymax");
    expect_bad(root, "no_name", HEAD "<object><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax>"
                                     "</bndbox></object></annotation>",
               "object 0", "<name>");
    expect_bad(root, "unknown_class",
               HEAD OK_OBJ OK_OBJ "<object><name>unicorn</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax>"
                                  "<ymax>5</ymax></bndbox></object></annotation>",
               "object 2", "unicorn");
    expect_bad(root, "inverted",
               HEAD "<object><name>cat</name><bndbox><xmin>50</xmin><ymin>1</ymin><xmax>40</xmax><ymax>5</ymax>"
                    "</bndbox></object></annotation>",
               "object 0", "inverted");
    expect_bad(root, "outside",
               HEAD "<object><name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>101</xmax><ymax>5</ymax>"
                    "</bndbox></object></annotation>",
               "object 0", "outside");
    expect_bad(root, "zero_based",
               HEAD "<object><name>cat</name><bndbox><xmin>0</xmin><ymin>1</ymin><xmax>10</xmax><ymax>5</ymax>"
                    "</bndbox></object></annotation>",
               "object 0", "outside");
    expect_bad(root, "nan_coord",
               HEAD "<object><name>cat</name><bndbox><xmin>1</xmin><ymin>x1</ymin><xmax>10</xmax><ymax>5</ymax>"
                    "</bndbox></object></annotation>",
               "object 0", "ymin");
    expect_bad(root, "bad_difficult",
               HEAD "<object><name>cat</name><difficult>2</difficult><bndbox><xmin>1</xmin><ymin>1</ymin>"
                    "<xmax>10</xmax><ymax>5</ymax></bndbox></object></annotation>",
               "object 0", "difficult");
    /* a missing file is TB_ERR_MISSING, not TB_ERR_DATA */
    tb_voc_annotation a;
    assert_int_equal(parse(root, "absent", &a), TB_ERR_MISSING);
    assert_non_null(strstr(tb_errmsg(), "absent.xml"));
    tdu_rmtree(root);
    free(root);
}

static void test_image_set(void **state)
{
    (void)state;
    char *root = tdu_tempdir();
    dtu_make_voc_dirs(root, "VOC2007");
    char p[4096];
    const char *text = "000001\n\n  000002  -1\r\n000003 1\n000004";
    tdu_write_file(tdu_pathf(p, sizeof p, "%s/VOC2007/ImageSets/Main/x.txt", root), text, strlen(text));
    char **ids;
    int64_t n;
    if (tb_voc_read_image_set(p, &ids, &n) != TB_OK)
        fail_msg("%s", tb_errmsg());
    assert_int_equal(n, 4);
    assert_string_equal(ids[0], "000001");
    assert_string_equal(ids[1], "000002");
    assert_string_equal(ids[2], "000003");
    assert_string_equal(ids[3], "000004");
    free(ids);
    tdu_rmtree(root);
    free(root);
}

/* Two folders, two sets: VOC2007:trainval + VOC2012:trainval. */
static void make_two_folders(const char *root)
{
    dtu_make_voc_dirs(root, "VOC2007");
    dtu_make_voc_dirs(root, "VOC2012");
    const char *ids07[] = {"000001", "000002"};
    const char *ids12[] = {"2008_000001"};
    dtu_write_image_set(root, "VOC2007", "trainval", ids07, 2);
    dtu_write_image_set(root, "VOC2012", "trainval", ids12, 1);
    dtu_obj a[] = {{"dog", 2, 3, 20, 30, 0}, {"person", 5, 5, 40, 25, 1}};
    dtu_obj b[] = {{"cat", 1, 1, 30, 10, -1}};
    dtu_obj c[] = {{"car", 3, 4, 5, 6, 0}, {"bus", 1, 1, 8, 8, 0}, {"train", 10, 10, 12, 12, 0}};
    dtu_write_voc_xml(root, "VOC2007", "000001", 48, 32, a, 2);
    dtu_write_voc_xml(root, "VOC2007", "000002", 30, 40, b, 1);
    dtu_write_voc_xml(root, "VOC2012", "2008_000001", 16, 24, c, 3);
    dtu_write_voc_jpeg(root, "VOC2007", "000001", 48, 32, 3, 1);
    dtu_write_voc_jpeg(root, "VOC2007", "000002", 30, 40, 3, 2);
    dtu_write_voc_jpeg(root, "VOC2012", "2008_000001", 16, 24, 1, 3); /* a gray JPEG read as RGB */
}

static void test_dataset_open_read(void **state)
{
    (void)state;
    char *root = tdu_tempdir();
    make_two_folders(root);
    tb_det_dataset *ds;
    if (tb_det_dataset_open(&ds, root, "VOC2007:trainval, VOC2012:trainval", voc()) != TB_OK)
        fail_msg("%s", tb_errmsg());
    assert_int_equal(tb_det_dataset_count(ds), 3);
    assert_int_equal(tb_det_dataset_classes(ds), 20);
    assert_string_equal(tb_det_dataset_class_name(ds, 0), "aeroplane");
    assert_string_equal(tb_det_dataset_class_name(ds, 19), "tvmonitor");
    assert_string_equal(tb_det_dataset_image_name(ds, 2), "VOC2012/2008_000001");
    assert_int_equal(tb_det_dataset_max_objects(ds), 3);
    int h, w;
    tb_det_dataset_max_size(ds, &h, &w);
    assert_int_equal(h, 40);
    assert_int_equal(w, 48);
    tb_det_dataset_image_size(ds, 1, &h, &w);
    assert_int_equal(h, 40);
    assert_int_equal(w, 30);
    const tb_det_object *objs;
    int count;
    tb_det_dataset_objects(ds, 0, &objs, &count);
    assert_int_equal(count, 2);
    assert_int_equal(objs[0].label, 11); /* dog */
    assert_true(objs[0].box[0] == 1.0f && objs[0].box[1] == 2.0f && objs[0].box[2] == 20.0f && objs[0].box[3] == 30.0f);
    assert_int_equal(objs[1].difficult, 1);
    tb_det_dataset_objects(ds, 2, &objs, &count);
    assert_int_equal(count, 3);
    assert_int_equal(objs[2].label, 18); /* train */
    float mean[3], std[3];
    tb_det_dataset_normalization(ds, mean, std);
    assert_true(mean[0] > 123.6f && mean[0] < 123.7f && std[2] > 57.3f && std[2] < 57.4f);

    tb_image img = {0};
    if (tb_det_dataset_read(ds, 0, &img) != TB_OK)
        fail_msg("%s", tb_errmsg());
    assert_int_equal(img.h, 32);
    assert_int_equal(img.w, 48);
    assert_int_equal(img.c, 3);
    /* quality 100: within a few levels of what was written */
    assert_true(abs((int)img.data[(5 * 48 + 7) * 3 + 1] - (int)dtu_pixel(1, 5, 7, 1)) <= 4);
    if (tb_det_dataset_read(ds, 2, &img) != TB_OK)
        fail_msg("%s", tb_errmsg());
    assert_int_equal(img.c, 3);
    assert_true(img.data[0] == img.data[1] && img.data[1] == img.data[2]);
    tb_image_free(&img);
    tb_det_dataset_close(ds);
    tdu_rmtree(root);
    free(root);
}

static void test_dataset_gray_format_and_size_mismatch(void **state)
{
    (void)state;
    char *root = tdu_tempdir();
    make_two_folders(root);
    /* fashion-scenes' format reads gray; its classes do not include "dog" */
    tb_det_dataset *ds;
    assert_int_equal(tb_det_dataset_open(&ds, root, "VOC2007:trainval", &tb_det_format_fashion_scenes), TB_ERR_DATA);
    assert_non_null(strstr(tb_errmsg(), "000001.xml"));
    assert_non_null(strstr(tb_errmsg(), "'dog'"));
    /* a gray format over RGB files: luma */
    tb_det_format gray = tb_det_format_voc;
    gray.channels = 1;
    if (tb_det_dataset_open(&ds, root, "VOC2007:trainval", &gray) != TB_OK)
        fail_msg("%s", tb_errmsg());
    tb_image img = {0};
    if (tb_det_dataset_read(ds, 0, &img) != TB_OK)
        fail_msg("%s", tb_errmsg());
    assert_int_equal(img.c, 1);
    int expect = (299 * dtu_pixel(1, 5, 7, 0) + 587 * dtu_pixel(1, 5, 7, 1) + 114 * dtu_pixel(1, 5, 7, 2) + 500) / 1000;
    assert_true(abs((int)img.data[5 * 48 + 7] - expect) <= 4);
    /* an image whose size differs from its annotation */
    dtu_write_voc_jpeg(root, "VOC2007", "000002", 31, 40, 3, 2);
    assert_int_equal(tb_det_dataset_read(ds, 1, &img), TB_ERR_DATA);
    assert_non_null(strstr(tb_errmsg(), "000002.jpg"));
    tb_image_free(&img);
    tb_det_dataset_close(ds);
    tdu_rmtree(root);
    free(root);
}

static void test_dataset_errors(void **state)
{
    (void)state;
    char *root = tdu_tempdir();
    make_two_folders(root);
    tb_det_dataset *ds = (tb_det_dataset *)1;
    assert_int_equal(tb_det_dataset_open(&ds, root, "VOC2007", voc()), TB_ERR_INVALID);
    assert_null(ds);
    assert_int_equal(tb_det_dataset_open(&ds, root, "VOC2007:trainval,", voc()), TB_ERR_INVALID);
    assert_int_equal(tb_det_dataset_open(&ds, root, "VOC2007:a:b", voc()), TB_ERR_INVALID);
    assert_int_equal(tb_det_dataset_open(&ds, root, "VOC2007:test", voc()), TB_ERR_MISSING);
    assert_non_null(strstr(tb_errmsg(), "ImageSets/Main/test.txt"));
    char p[4096];
    assert_int_equal(tb_det_dataset_open(&ds, tdu_pathf(p, sizeof p, "%s/nope", root), "VOC2007:trainval", voc()),
                     TB_ERR_MISSING);
    /* an id without an annotation */
    const char *ids[] = {"000001", "000009"};
    dtu_write_image_set(root, "VOC2007", "broken", ids, 2);
    assert_int_equal(tb_det_dataset_open(&ds, root, "VOC2007:broken", voc()), TB_ERR_MISSING);
    assert_non_null(strstr(tb_errmsg(), "000009.xml"));
    /* a bad annotation anywhere fails the open, naming file and object */
    dtu_obj bad[] = {{"dog", 1, 1, 5, 5, 0}, {"cat", 9, 1, 3, 5, 0}};
    dtu_write_voc_xml(root, "VOC2012", "2008_000001", 16, 24, bad, 2);
    assert_int_equal(tb_det_dataset_open(&ds, root, "VOC2007:trainval,VOC2012:trainval", voc()), TB_ERR_DATA);
    assert_non_null(strstr(tb_errmsg(), "2008_000001.xml"));
    assert_non_null(strstr(tb_errmsg(), "object 1"));
    tdu_rmtree(root);
    free(root);
}

static void test_masks(void **state)
{
    (void)state;
    char *root = tdu_tempdir();
    make_two_folders(root);
    /* VOC2007/000001: 8-bit palette (raw indices incl. 255 void), VOC2007/000002: 4-bit palette,
     * VOC2012: 8-bit gray */
    uint8_t *m = malloc(48 * 32);
    for (int i = 0; i < 48 * 32; i++)
        m[i] = (uint8_t)(i % 7 == 0 ? 255 : i % 21);
    uint8_t pal[256 * 3];
    tb_voc_colormap(pal);
    char p[4096];
    tdu_write_png(tdu_pathf(p, sizeof p, "%s/VOC2007/SegmentationClass/000001.png", root), 48, 32,
                  PNG_COLOR_TYPE_PALETTE, 8, m, pal, 256);
    uint8_t *packed = calloc(30 * 40, 1); /* rows at stride 30, 15 bytes used (4 bits per value) */
    for (int y = 0; y < 40; y++)
        for (int x = 0; x < 30; x += 2)
            packed[y * 30 + x / 2] = (uint8_t)((((x + y) % 16) << 4) | ((x + 1 + y) % 16));
    tdu_write_png(tdu_pathf(p, sizeof p, "%s/VOC2007/SegmentationClass/000002.png", root), 30, 40,
                  PNG_COLOR_TYPE_PALETTE, 4, packed, pal, 16);
    uint8_t g[16 * 24];
    for (int i = 0; i < 16 * 24; i++)
        g[i] = (uint8_t)(i % 11);
    tdu_write_png(tdu_pathf(p, sizeof p, "%s/VOC2012/SegmentationClass/2008_000001.png", root), 16, 24,
                  PNG_COLOR_TYPE_GRAY, 8, g, NULL, 0);
    tb_det_dataset *ds;
    if (tb_det_dataset_open(&ds, root, "VOC2007:trainval,VOC2012:trainval", voc()) != TB_OK)
        fail_msg("%s", tb_errmsg());
    tb_image mask = {0};
    if (tb_det_dataset_read_mask(ds, 0, &mask) != TB_OK)
        fail_msg("%s", tb_errmsg());
    assert_int_equal(mask.c, 1);
    assert_memory_equal(mask.data, m, 48 * 32);
    if (tb_det_dataset_read_mask(ds, 1, &mask) != TB_OK)
        fail_msg("%s", tb_errmsg());
    for (int y = 0; y < 40; y++)
        for (int x = 0; x < 30; x++)
            assert_int_equal(mask.data[y * 30 + x], (x + y) % 16);
    if (tb_det_dataset_read_mask(ds, 2, &mask) != TB_OK)
        fail_msg("%s", tb_errmsg());
    assert_memory_equal(mask.data, g, 16 * 24);
    /* our writer round-trips, and an RGB PNG is not a label map */
    tdu_pathf(p, sizeof p, "%s/VOC2007/SegmentationClass/000001.png", root);
    if (tb_label_png_write(p, m, 32, 48) != TB_OK)
        fail_msg("%s", tb_errmsg());
    if (tb_det_dataset_read_mask(ds, 0, &mask) != TB_OK)
        fail_msg("%s", tb_errmsg());
    assert_memory_equal(mask.data, m, 48 * 32);
    uint8_t rgb[16 * 24 * 3] = {0};
    tdu_write_png(tdu_pathf(p, sizeof p, "%s/VOC2012/SegmentationClass/2008_000001.png", root), 16, 24,
                  PNG_COLOR_TYPE_RGB, 8, rgb, NULL, 0);
    assert_int_equal(tb_det_dataset_read_mask(ds, 2, &mask), TB_ERR_DATA);
    assert_non_null(strstr(tb_errmsg(), "2008_000001.png"));
    tb_image_free(&mask);
    free(m);
    free(packed);
    tb_det_dataset_close(ds);
    tdu_rmtree(root);
    free(root);
}

static void test_colormap(void **state)
{
    (void)state;
    uint8_t c[256 * 3];
    tb_voc_colormap(c);
    /* the VOC devkit's colours: background black, 1 aeroplane (128,0,0), 15 person (192,128,128), 255 void */
    assert_int_equal(c[0] + c[1] + c[2], 0);
    assert_true(c[3] == 128 && c[4] == 0 && c[5] == 0);
    assert_true(c[45] == 192 && c[46] == 128 && c[47] == 128);
    assert_true(c[765] == 224 && c[766] == 224 && c[767] == 192);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_hand_written),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_image_set),
        cmocka_unit_test(test_dataset_open_read),
        cmocka_unit_test(test_dataset_gray_format_and_size_mismatch),
        cmocka_unit_test(test_dataset_errors),
        cmocka_unit_test(test_masks),
        cmocka_unit_test(test_colormap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
#else
static void test_annotation_without_libxml2(void **state)
{
    (void)state;
    char *root = tdu_tempdir();
    dtu_make_voc_dirs(root, "VOC2007");
    dtu_write_text_xml(root, "VOC2007", "000005",
                       "<annotation><size><width>5</width><height>5</height></size></annotation>\n");
    char p[4096];
    tdu_pathf(p, sizeof p, "%s/VOC2007/Annotations/000005.xml", root);
    tb_voc_annotation a;
    assert_int_equal(tb_voc_parse_annotation(p, tb_det_format_voc.class_names, tb_det_format_voc.classes, &a),
                     TB_ERR_UNSUPPORTED);
    assert_non_null(strstr(tb_errmsg(), "000005.xml"));
    assert_non_null(strstr(tb_errmsg(), "without libxml2"));
    assert_null(a.objects);
    assert_int_equal(a.count, 0);
    tdu_rmtree(root);
    free(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_annotation_without_libxml2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
#endif
