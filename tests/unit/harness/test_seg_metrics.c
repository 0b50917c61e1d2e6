/* Segmentation metrics: pixel accuracy and both mIoU conventions against a
 * hand-computed confusion matrix, ignored pixels, and merging. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "harness/eval/seg_metrics.h"
#include "kernels/error.h"

#define TOL 1e-12

/* 4 classes, ignore label 255. (target, prediction) pairs:
 *   (0,0) x3, (0,1) x1, (1,1) x2, (1,0) x1, (1,3) x1, (255,2) x2 (ignored)
 * Histogram (rows target, columns prediction):
 *   row 0: 3 1 0 0
 *   row 1: 1 2 0 1
 *   rows 2, 3: 0
 * labelled 8, correct 5: pixel accuracy 5/8.
 * IoU_0 = 3 / (4 + 4 - 3) = 3/5; IoU_1 = 2 / (4 + 3 - 2) = 2/5;
 * class 2: only predicted on ignored pixels, union 0 -> absent (NaN);
 * IoU_3 = 0 / (0 + 1 - 0) = 0 (predicted, never in the target).
 * mIoU all classes (GluonCV) = (3/5 + 2/5 + 0 + 0) / 4 = 1/4;
 * mIoU present classes (mmseg) = (3/5 + 2/5 + 0) / 3 = 1/3. */
static const uint8_t TARGET[] = { 0, 0, 0, 0, 1, 1, 1, 1, 255, 255 };
static const uint8_t PRED[] = { 0, 0, 0, 1, 1, 1, 0, 3, 2, 2 };
enum { PIXELS = sizeof TARGET };

static tb_seg_metrics *make(int classes, int ignore)
{
    tb_seg_metrics *m = NULL;
    assert_int_equal(tb_seg_metrics_create(&m, classes, ignore), TB_OK);
    return m;
}

static void expect_hand_computed(const tb_seg_metrics *m)
{
    const int64_t expect[16] = { 3, 1, 0, 0, 1, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0 };
    assert_memory_equal(tb_seg_metrics_hist(m), expect, sizeof expect);
    assert_int_equal(tb_seg_metrics_labelled(m), 8);
    assert_int_equal(tb_seg_metrics_correct(m), 5);
    assert_float_equal(tb_seg_pixel_accuracy(m), 5.0 / 8.0, TOL);
    assert_float_equal(tb_seg_class_iou(m, 0), 3.0 / 5.0, TOL);
    assert_float_equal(tb_seg_class_iou(m, 1), 2.0 / 5.0, TOL);
    assert_true(isnan(tb_seg_class_iou(m, 2)));
    assert_float_equal(tb_seg_class_iou(m, 3), 0.0, 0.0);
    assert_float_equal(tb_seg_miou(m, TB_SEG_MIOU_ALL), 0.25, TOL);
    assert_float_equal(tb_seg_miou(m, TB_SEG_MIOU_PRESENT), 1.0 / 3.0, TOL);
}

static void test_hand_computed_u8(void **state)
{
    (void)state;
    tb_seg_metrics *m = make(4, 255);
    assert_int_equal(tb_seg_metrics_add(m, PRED, TB_U8, TARGET, TB_U8, PIXELS), TB_OK);
    expect_hand_computed(m);
    tb_seg_metrics_destroy(m);
}

/* i32 maps with a negative ignore label, in two batches, through tensors. */
static void test_hand_computed_i32_negative_ignore(void **state)
{
    (void)state;
    int32_t target[PIXELS], pred[PIXELS];
    for (int i = 0; i < PIXELS; i++) {
        target[i] = TARGET[i] == 255 ? -1 : TARGET[i];
        pred[i] = PRED[i];
    }
    tb_seg_metrics *m = make(4, -1);
    tb_tensor tp = tb_tensor_2d(pred, TB_I32, 1, 5), tt = tb_tensor_1d(target, TB_I32, 5);
    assert_int_equal(tb_seg_metrics_add_tensors(m, &tp, &tt), TB_OK);
    assert_int_equal(tb_seg_metrics_labelled(m), 5);
    /* u8 255 targets are not ignored with ignore label -1: out of range, the batch adds nothing */
    assert_int_equal(tb_seg_metrics_add(m, pred + 5, TB_I32, TARGET + 5, TB_U8, PIXELS - 5), TB_ERR_DATA);
    assert_int_equal(tb_seg_metrics_labelled(m), 5);
    assert_int_equal(tb_seg_metrics_add(m, pred + 5, TB_I32, target + 5, TB_I32, PIXELS - 5), TB_OK);
    expect_hand_computed(m);
    tb_seg_metrics_destroy(m);
}

/* Nothing labelled: pixel accuracy undefined, mIoU 0 (all classes) or NaN (present). */
static void test_empty(void **state)
{
    (void)state;
    tb_seg_metrics *m = make(3, 255);
    const uint8_t t[2] = { 255, 255 }, p[2] = { 1, 2 };
    assert_int_equal(tb_seg_metrics_add(m, p, TB_U8, t, TB_U8, 2), TB_OK);
    assert_true(isnan(tb_seg_pixel_accuracy(m)));
    assert_float_equal(tb_seg_miou(m, TB_SEG_MIOU_ALL), 0.0, 0.0);
    assert_true(isnan(tb_seg_miou(m, TB_SEG_MIOU_PRESENT)));
    tb_seg_metrics_destroy(m);
}

/* Two histograms merged equal one that saw every pixel. */
static void test_merge_equals_single_histogram(void **state)
{
    (void)state;
    enum { N = 4000, CLASSES = 5 };
    static int32_t target[N], pred[N];
    uint64_t s = 12345;
    for (int i = 0; i < N; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t r = (uint32_t)(s >> 33);
        target[i] = r % 7 == 6 ? 255 : (int32_t)(r % CLASSES);  /* some ignored */
        pred[i] = (r >> 8) % 3 == 0 ? target[i] % CLASSES : (int32_t)((r >> 12) % CLASSES);
    }
    tb_seg_metrics *all = make(CLASSES, 255), *a = make(CLASSES, 255), *b = make(CLASSES, 255);
    assert_int_equal(tb_seg_metrics_add(all, pred, TB_I32, target, TB_I32, N), TB_OK);
    assert_int_equal(tb_seg_metrics_add(a, pred, TB_I32, target, TB_I32, 1377), TB_OK);
    assert_int_equal(tb_seg_metrics_add(b, pred + 1377, TB_I32, target + 1377, TB_I32, N - 1377), TB_OK);
    assert_int_equal(tb_seg_metrics_merge(a, b), TB_OK);
    assert_memory_equal(tb_seg_metrics_hist(a), tb_seg_metrics_hist(all), CLASSES * CLASSES * sizeof(int64_t));
    assert_true(tb_seg_metrics_labelled(all) > 0 && tb_seg_metrics_labelled(all) < N);
    assert_true(tb_seg_miou(a, TB_SEG_MIOU_ALL) == tb_seg_miou(all, TB_SEG_MIOU_ALL));
    /* b alone differs (it misses the first pixels) */
    assert_true(memcmp(tb_seg_metrics_hist(b), tb_seg_metrics_hist(all), CLASSES * CLASSES * sizeof(int64_t)) != 0);
    tb_seg_metrics *other = make(CLASSES + 1, 255);
    assert_int_equal(tb_seg_metrics_merge(a, other), TB_ERR_INVALID);
    tb_seg_metrics_destroy(other);
    tb_seg_metrics_destroy(all);
    tb_seg_metrics_destroy(a);
    tb_seg_metrics_destroy(b);
}

/* A target outside the classes (not the ignore label) or a prediction
 * outside the classes on a labelled pixel is an error that adds nothing;
 * predictions on ignored pixels are not looked at. */
static void test_bad_labels(void **state)
{
    (void)state;
    tb_seg_metrics *m = make(4, 255);
    const uint8_t t_bad[3] = { 0, 1, 4 }, p_ok[3] = { 0, 1, 2 };
    assert_int_equal(tb_seg_metrics_add(m, p_ok, TB_U8, t_bad, TB_U8, 3), TB_ERR_DATA);
    const uint8_t t_ok[3] = { 0, 255, 1 }, p_bad[3] = { 0, 9, 4 };
    assert_int_equal(tb_seg_metrics_add(m, p_bad, TB_U8, t_ok, TB_U8, 3), TB_ERR_INVALID);
    assert_int_equal(tb_seg_metrics_labelled(m), 0);
    const uint8_t p_ign[3] = { 0, 9, 1 };
    assert_int_equal(tb_seg_metrics_add(m, p_ign, TB_U8, t_ok, TB_U8, 3), TB_OK);
    assert_int_equal(tb_seg_metrics_labelled(m), 2);
    assert_int_equal(tb_seg_metrics_add(m, p_ign, TB_F32, t_ok, TB_U8, 3), TB_ERR_INVALID);
    /* negative targets are ignored whatever the ignore label */
    const int32_t t_neg[2] = { -1, 0 }, p_neg[2] = { 3, 0 };
    assert_int_equal(tb_seg_metrics_add(m, p_neg, TB_I32, t_neg, TB_I32, 2), TB_OK);
    assert_int_equal(tb_seg_metrics_labelled(m), 3);
    assert_int_equal(tb_seg_metrics_hist(m)[3], 0);  /* (target 0, prediction 3) */
    tb_seg_metrics *z = NULL;
    assert_int_equal(tb_seg_metrics_create(&z, 0, 255), TB_ERR_INVALID);
    tb_seg_metrics_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_computed_u8),
        cmocka_unit_test(test_hand_computed_i32_negative_ignore),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_merge_equals_single_histogram),
        cmocka_unit_test(test_bad_labels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
