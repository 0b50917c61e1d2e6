/* VOC detection evaluator: hand-computed AP values (11-point and area) for
 * the devkit's matching rules. Each expected value is derived in a comment
 * from the precision/recall points (rec, prec) of the sorted detections. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>

#include "harness/eval/voc_map.h"
#include "kernels/error.h"

#define TOL 1e-12

/* Boxes used below: two far-apart objects and shifted copies. */
static const float BOX_A[4] = { 0, 0, 10, 10 };
static const float BOX_B[4] = { 20, 0, 30, 10 };
static const float BOX_C[4] = { 40, 0, 50, 10 };
static const float BOX_FAR[4] = { 100, 100, 110, 110 };  /* overlaps nothing */

static void set_box(float *dst, const float *src)
{
    for (int i = 0; i < 4; i++)
        dst[i] = src[i];
}

static tb_voc_eval *make_eval(int classes)
{
    tb_voc_eval *ev = NULL;
    assert_int_equal(tb_voc_eval_create(&ev, classes), TB_OK);
    return ev;
}

static tb_voc_class_result class_result(tb_voc_eval *ev, int cls)
{
    tb_voc_class_result r;
    assert_int_equal(tb_voc_eval_class(ev, cls, &r), TB_OK);
    return r;
}

/* One image, everything in class 0. */
static void add_class0(tb_voc_eval *ev, const float (*gt)[4], const uint8_t *difficult, int gt_count,
                       const float (*det)[4], const float *scores, int det_count)
{
    float gt_boxes[16 * 4] = { 0 }, det_boxes[16 * 4] = { 0 };
    int32_t gt_labels[16] = { 0 }, det_labels[16] = { 0 };
    for (int i = 0; i < gt_count; i++)
        set_box(gt_boxes + 4 * i, gt[i]);
    for (int i = 0; i < det_count; i++)
        set_box(det_boxes + 4 * i, det[i]);
    assert_int_equal(tb_voc_eval_add_image(ev, gt_boxes, gt_labels, difficult, gt_count, det_boxes, scores,
                                           det_labels, det_count),
                     TB_OK);
}

static void expect_ap(tb_voc_eval *ev, int cls, double ap07, double area)
{
    tb_voc_class_result r = class_result(ev, cls);
    assert_float_equal(r.ap_11point, ap07, TOL);
    assert_float_equal(r.ap_area, area, TOL);
}

/* The devkit's IoU (VOCevaldet.m): inclusive pixel indices, widths + 1. */
static double devkit_iou(const double *bb, const double *gt)
{
    double iw = fmin(bb[2], gt[2]) - fmax(bb[0], gt[0]) + 1;
    double ih = fmin(bb[3], gt[3]) - fmax(bb[1], gt[1]) + 1;
    if (iw <= 0 || ih <= 0)
        return 0.0;
    double ua = (bb[2] - bb[0] + 1) * (bb[3] - bb[1] + 1) + (gt[2] - gt[0] + 1) * (gt[3] - gt[1] + 1) - iw * ih;
    return iw * ih / ua;
}

/* The data layer's conversion x1 = xmin - 1, x2 = xmax makes our IoU the devkit's, exactly. */
static void test_iou_plus_one_convention(void **state)
{
    (void)state;
    const double voc[][4] = { { 1, 1, 10, 10 },   { 1, 1, 10, 5 },   { 5, 3, 17, 9 }, { 48, 240, 195, 371 },
                              { 8, 12, 352, 498 }, { 10, 10, 10, 10 }, { 11, 1, 20, 10 } };
    int n = (int)(sizeof voc / sizeof voc[0]);
    for (int a = 0; a < n; a++) {
        for (int b = 0; b < n; b++) {
            float fa[4] = { (float)voc[a][0] - 1, (float)voc[a][1] - 1, (float)voc[a][2], (float)voc[a][3] };
            float fb[4] = { (float)voc[b][0] - 1, (float)voc[b][1] - 1, (float)voc[b][2], (float)voc[b][3] };
            assert_true(tb_voc_box_iou(fa, fb) == devkit_iou(voc[a], voc[b]));
        }
    }
    /* (1,1,10,10) vs (1,1,10,5): 10 x 5 of 10 x 10 pixels, exactly 0.5 */
    const float g[4] = { 0, 0, 10, 10 }, d[4] = { 0, 0, 10, 5 };
    assert_true(tb_voc_box_iou(g, d) == 0.5);
    /* (11,1,20,10) only touches (1,1,10,10): no overlap */
    const float t[4] = { 10, 0, 20, 10 };
    assert_true(tb_voc_box_iou(g, t) == 0.0);
}

/* Every object found, no false positive, over two images: rec .5, 1; prec 1, 1 -> AP 1. */
static void test_perfect_detector(void **state)
{
    (void)state;
    tb_voc_eval *ev = make_eval(1);
    const float s1[] = { 0.9f }, s2[] = { 0.8f };
    add_class0(ev, (const float (*)[4])BOX_A, NULL, 1, (const float (*)[4])BOX_A, s1, 1);
    add_class0(ev, (const float (*)[4])BOX_B, NULL, 1, (const float (*)[4])BOX_B, s2, 1);
    expect_ap(ev, 0, 1.0, 1.0);
    tb_voc_class_result r = class_result(ev, 0);
    assert_int_equal(r.gt, 2);
    assert_int_equal(r.tp, 2);
    assert_int_equal(r.fp, 0);
    assert_int_equal(r.detections, 2);
    double map;
    int counted;
    assert_int_equal(tb_voc_eval_map(ev, TB_VOC_AP_11POINT, &map, &counted), TB_OK);
    assert_float_equal(map, 1.0, TOL);
    assert_int_equal(counted, 1);
    tb_voc_eval_destroy(ev);
}

/* FP 0.9, TP 0.8, TP 0.7 on 2 gt: (rec, prec) = (0, 0), (.5, .5), (1, 2/3).
 * 11-point: max prec at rec >= t is 2/3 for every t -> 2/3.
 * area: envelope 2/3 on (0, 1] -> 2/3. */
static void test_false_positive_first(void **state)
{
    (void)state;
    tb_voc_eval *ev = make_eval(1);
    const float gt[2][4] = { { 0, 0, 10, 10 }, { 20, 0, 30, 10 } };
    const float det[3][4] = { { 100, 100, 110, 110 }, { 0, 0, 10, 10 }, { 20, 0, 30, 10 } };
    const float scores[3] = { 0.9f, 0.8f, 0.7f };
    add_class0(ev, gt, NULL, 2, det, scores, 3);
    expect_ap(ev, 0, 2.0 / 3.0, 2.0 / 3.0);
    tb_voc_eval_destroy(ev);
}

/* TP 0.9, FP 0.8, TP 0.7 on 3 gt (one never found):
 * (rec, prec) = (1/3, 1), (1/3, 1/2), (2/3, 2/3).
 * 11-point: t = 0, .1, .2, .3 -> 1 (4 values); t = .4, .5, .6 -> 2/3 (3); t >= .7 -> 0:
 *   (4 + 3 * 2/3) / 11 = 6/11.
 * area: 1/3 * 1 + 1/3 * 2/3 = 5/9. */
static void test_missed_object(void **state)
{
    (void)state;
    tb_voc_eval *ev = make_eval(1);
    const float gt[3][4] = { { 0, 0, 10, 10 }, { 20, 0, 30, 10 }, { 40, 0, 50, 10 } };
    const float det[3][4] = { { 0, 0, 10, 10 }, { 100, 100, 110, 110 }, { 20, 0, 30, 10 } };
    const float scores[3] = { 0.9f, 0.8f, 0.7f };
    add_class0(ev, gt, NULL, 3, det, scores, 3);
    expect_ap(ev, 0, 6.0 / 11.0, 5.0 / 9.0);
    tb_voc_eval_destroy(ev);
}

/* A second detection of object A (IoU .82) is a duplicate, FP:
 * TP .9, FP .8, TP .7 on 2 gt: (rec, prec) = (.5, 1), (.5, .5), (1, 2/3).
 * 11-point: t = 0...0.5 -> 1 (6 values), t = .6...1 -> 2/3 (5): (6 + 10/3) / 11 = 28/33.
 * area: .5 * 1 + .5 * 2/3 = 5/6. */
static void test_duplicate_is_false_positive(void **state)
{
    (void)state;
    tb_voc_eval *ev = make_eval(1);
    const float gt[2][4] = { { 0, 0, 10, 10 }, { 20, 0, 30, 10 } };
    const float det[3][4] = { { 0, 0, 10, 10 }, { 1, 0, 11, 10 }, { 20, 0, 30, 10 } };
    const float scores[3] = { 0.9f, 0.8f, 0.7f };
    add_class0(ev, gt, NULL, 2, det, scores, 3);
    expect_ap(ev, 0, 28.0 / 33.0, 5.0 / 6.0);
    tb_voc_class_result r = class_result(ev, 0);
    assert_int_equal(r.tp, 2);
    assert_int_equal(r.fp, 1);
    tb_voc_eval_destroy(ev);
}

/* The devkit takes the gt of highest IoU among all of the class, matched or
 * not: det 2 overlaps A (IoU 90/110, already matched) more than the free
 * gt A' = (4,0,14,10) (IoU 70/130 >= .5), so it is a FP, not a match of A'.
 * (rec, prec) = (.5, 1), (.5, .5): 11-point 6/11 (t <= .5), area .5. */
static void test_best_gt_already_matched(void **state)
{
    (void)state;
    tb_voc_eval *ev = make_eval(1);
    const float gt[2][4] = { { 0, 0, 10, 10 }, { 4, 0, 14, 10 } };
    const float det[2][4] = { { 0, 0, 10, 10 }, { 1, 0, 11, 10 } };
    const float scores[2] = { 0.9f, 0.8f };
    assert_true(tb_voc_box_iou(det[1], gt[1]) >= 0.5);
    add_class0(ev, gt, NULL, 2, det, scores, 2);
    expect_ap(ev, 0, 6.0 / 11.0, 0.5);
    tb_voc_eval_destroy(ev);
}

/* gt: A (normal), B and C difficult. Detections: B .95 (ignored), A .9 (TP),
 * far .5 (FP). C, never detected, is not in the recall denominator (gt = 1).
 * Curve without the ignored one: (1, 1), (1, .5) -> 11-point 1, area 1.
 * (Counting the ignored one as FP would give .5; counting B and C in recall 1/3.) */
static void test_difficult_objects(void **state)
{
    (void)state;
    tb_voc_eval *ev = make_eval(1);
    const float gt[3][4] = { { 0, 0, 10, 10 }, { 20, 0, 30, 10 }, { 40, 0, 50, 10 } };
    const uint8_t difficult[3] = { 0, 1, 1 };
    const float det[3][4] = { { 20, 0, 30, 10 }, { 0, 0, 10, 10 }, { 100, 100, 110, 110 } };
    const float scores[3] = { 0.95f, 0.9f, 0.5f };
    add_class0(ev, gt, difficult, 3, det, scores, 3);
    expect_ap(ev, 0, 1.0, 1.0);
    tb_voc_class_result r = class_result(ev, 0);
    assert_int_equal(r.gt, 1);
    assert_int_equal(r.gt_difficult, 2);
    assert_int_equal(r.detections, 3);
    assert_int_equal(r.tp, 1);
    assert_int_equal(r.fp, 1);
    assert_int_equal(r.ignored, 1);
    tb_voc_eval_destroy(ev);
}

/* Class 0 perfect (AP 1); class 1 has gt but no detection (AP 0); class 2
 * has only a FP and no gt (AP NaN, left out of mAP): mAP = (1 + 0) / 2. */
static void test_class_without_detections_or_gt(void **state)
{
    (void)state;
    tb_voc_eval *ev = make_eval(3);
    float gt[2 * 4], det[2 * 4];
    set_box(gt, BOX_A);
    set_box(gt + 4, BOX_B);
    set_box(det, BOX_A);
    set_box(det + 4, BOX_FAR);
    const int32_t gt_labels[2] = { 0, 1 }, det_labels[2] = { 0, 2 };
    const float scores[2] = { 0.9f, 0.3f };
    assert_int_equal(tb_voc_eval_add_image(ev, gt, gt_labels, NULL, 2, det, scores, det_labels, 2), TB_OK);
    expect_ap(ev, 0, 1.0, 1.0);
    expect_ap(ev, 1, 0.0, 0.0);
    tb_voc_class_result r2 = class_result(ev, 2);
    assert_true(isnan(r2.ap_11point) && isnan(r2.ap_area));
    assert_int_equal(r2.gt, 0);
    assert_int_equal(r2.fp, 1);
    double map07, map;
    int counted;
    assert_int_equal(tb_voc_eval_map(ev, TB_VOC_AP_11POINT, &map07, &counted), TB_OK);
    assert_int_equal(tb_voc_eval_map(ev, TB_VOC_AP_AREA, &map, NULL), TB_OK);
    assert_float_equal(map07, 0.5, TOL);
    assert_float_equal(map, 0.5, TOL);
    assert_int_equal(counted, 2);
    tb_voc_eval_destroy(ev);
}

/* IoU exactly 0.5 matches (>=, VOCopts.minoverlap); one of 1/3 does not. */
static void test_iou_half_matches(void **state)
{
    (void)state;
    tb_voc_eval *ev = make_eval(1);
    const float det_half[1][4] = { { 0, 0, 10, 5 } }, det_third[1][4] = { { 5, 0, 15, 10 } };
    const float s[1] = { 0.9f };
    add_class0(ev, (const float (*)[4])BOX_A, NULL, 1, det_half, s, 1);
    expect_ap(ev, 0, 1.0, 1.0);
    tb_voc_eval_reset(ev);
    add_class0(ev, (const float (*)[4])BOX_A, NULL, 1, det_third, s, 1);
    expect_ap(ev, 0, 0.0, 0.0);
    assert_int_equal(class_result(ev, 0).fp, 1);
    tb_voc_eval_destroy(ev);
}

/* Image 1: gt A, B; detections FP .9, A .6. Image 2: gt A; detections A .8, A-shifted .7 (dup).
 * Global order: FP .9, TP .8, FP .7, TP .6 on 3 gt:
 * (rec, prec) = (0, 0), (1/3, 1/2), (1/3, 1/3), (2/3, 1/2).
 * 11-point: t <= .6 (7 values) -> 1/2, t >= .7 -> 0: 3.5/11 = 7/22.
 * area: 1/3 * 1/2 + 1/3 * 1/2 = 1/3. The order of the images does not matter. */
static void add_mixed_image(tb_voc_eval *ev, int which)
{
    if (which == 0) {
        const float gt[2][4] = { { 0, 0, 10, 10 }, { 20, 0, 30, 10 } };
        const float det[2][4] = { { 100, 100, 110, 110 }, { 0, 0, 10, 10 } };
        const float scores[2] = { 0.9f, 0.6f };
        add_class0(ev, gt, NULL, 2, det, scores, 2);
    } else {
        const float det[2][4] = { { 1, 0, 11, 10 }, { 0, 0, 10, 10 } };
        const float scores[2] = { 0.7f, 0.8f };  /* the better box comes second: sorted per image */
        add_class0(ev, (const float (*)[4])BOX_A, NULL, 1, det, scores, 2);
    }
}

static void test_mixed_images(void **state)
{
    (void)state;
    for (int first = 0; first < 2; first++) {
        tb_voc_eval *ev = make_eval(1);
        add_mixed_image(ev, first);
        add_mixed_image(ev, 1 - first);
        expect_ap(ev, 0, 7.0 / 22.0, 1.0 / 3.0);
        tb_voc_class_result r = class_result(ev, 0);
        assert_int_equal(r.gt, 3);
        assert_int_equal(r.tp, 2);
        assert_int_equal(r.fp, 2);
        tb_voc_eval_destroy(ev);
    }
}

/* Results are recomputed when images are added after a read. */
static void test_incremental_reads(void **state)
{
    (void)state;
    tb_voc_eval *ev = make_eval(1);
    const float s1[] = { 0.9f }, s2[] = { 0.95f };
    add_class0(ev, (const float (*)[4])BOX_A, NULL, 1, (const float (*)[4])BOX_A, s1, 1);
    expect_ap(ev, 0, 1.0, 1.0);
    /* an image with a FP of higher score and a missed object: FP .95, TP .9 on 2 gt:
     * (0, 0), (.5, .5) -> 11-point 6 * .5 / 11 = 3/11, area .25 */
    add_class0(ev, (const float (*)[4])BOX_C, NULL, 1, (const float (*)[4])BOX_FAR, s2, 1);
    expect_ap(ev, 0, 3.0 / 11.0, 0.25);
    tb_voc_eval_destroy(ev);
}

/* Equal scores keep the order of addition (stable sort): a FP added before
 * a TP of the same score ranks first: (0, 0), (1, .5) -> AP .5; the other
 * way round (1, 1), (1, .5) -> AP 1. */
static void test_score_ties_keep_insertion_order(void **state)
{
    (void)state;
    const float s[] = { 0.5f };
    for (int fp_first = 0; fp_first < 2; fp_first++) {
        tb_voc_eval *ev = make_eval(1);
        for (int k = 0; k < 2; k++) {
            if ((k == 0) == (fp_first == 1))
                add_class0(ev, NULL, NULL, 0, (const float (*)[4])BOX_FAR, s, 1);
            else
                add_class0(ev, (const float (*)[4])BOX_A, NULL, 1, (const float (*)[4])BOX_A, s, 1);
        }
        double expect = fp_first ? 0.5 : 1.0;
        expect_ap(ev, 0, expect, expect);
        tb_voc_eval_destroy(ev);
    }
}

/* The same within one image: of two equal-score detections of object A,
 * the one given first (IoU .82) takes A and the exact box is the duplicate;
 * the global order then puts that TP first: (1, 1), (1, .5) -> AP 1. Taking
 * them the other way round would rank the FP first: AP .5. */
static void test_score_ties_within_an_image(void **state)
{
    (void)state;
    tb_voc_eval *ev = make_eval(1);
    const float det[2][4] = { { 1, 0, 11, 10 }, { 0, 0, 10, 10 } };
    const float scores[2] = { 0.5f, 0.5f };
    add_class0(ev, (const float (*)[4])BOX_A, NULL, 1, det, scores, 2);
    expect_ap(ev, 0, 1.0, 1.0);
    tb_voc_eval_destroy(ev);
}

/* 3 of 10 objects found, no FP: rec .1, .2, .3 at prec 1. The 11-point
 * thresholds are k * 0.1 as numpy's arange (t(3) = 0.30000000000000004 >
 * 3/10), so t = 0, .1, .2 count: 3/11, not 4/11. area: .3. */
static void test_eleven_point_thresholds(void **state)
{
    (void)state;
    const double rec[3] = { 1.0 / 10, 2.0 / 10, 3.0 / 10 }, prec[3] = { 1, 1, 1 };
    assert_float_equal(tb_voc_ap(rec, prec, 3, TB_VOC_AP_11POINT), 3.0 / 11.0, TOL);
    assert_float_equal(tb_voc_ap(rec, prec, 3, TB_VOC_AP_AREA), 0.3, TOL);
    assert_float_equal(tb_voc_ap(rec, prec, 0, TB_VOC_AP_AREA), 0.0, 0.0);

    tb_voc_eval *ev = make_eval(1);
    float gt[10][4], det[3][4], scores[3];
    for (int i = 0; i < 10; i++) {
        const float b[4] = { 20.0f * i, 0, 20.0f * i + 10, 10 };
        set_box(gt[i], b);
        if (i < 3) {
            set_box(det[i], b);
            scores[i] = 0.9f - 0.1f * i;
        }
    }
    add_class0(ev, gt, NULL, 10, det, scores, 3);
    expect_ap(ev, 0, 3.0 / 11.0, 0.3);
    tb_voc_eval_destroy(ev);
}

/* The batch form equals image-by-image adds and skips padding images. */
static void test_add_batch(void **state)
{
    (void)state;
    enum { N = 3, G = 2, D = 3 };
    float gt_boxes[N][G][4] = { { { 0, 0, 10, 10 }, { 20, 0, 30, 10 } }, { { 0, 0, 10, 10 } } };
    int32_t gt_labels[N][G] = { { 0, 1 }, { 1, 0 }, { 7, 7 } };  /* image 3 is padding: labels invalid */
    uint8_t difficult[N][G] = { { 0, 1 }, { 0, 0 } };
    int32_t gt_count[N] = { 2, 1, 2 };
    float det_boxes[N][D][4] = { { { 0, 0, 10, 10 }, { 20, 0, 30, 10 }, { 100, 100, 110, 110 } },
                                 { { 0, 0, 10, 5 } } };
    float det_scores[N][D] = { { 0.9f, 0.8f, 0.7f }, { 0.6f } };
    int32_t det_labels[N][D] = { { 0, 1, 0 }, { 1 }, { 9, 9, 9 } };
    int32_t det_count[N] = { 3, 1, 3 };
    tb_tensor tgb = tb_tensor_make(gt_boxes, TB_F32, 3, (const int64_t[]){ N, G, 4 });
    tb_tensor tgl = tb_tensor_2d(gt_labels, TB_I32, N, G), tgd = tb_tensor_2d(difficult, TB_U8, N, G);
    tb_tensor tgc = tb_tensor_1d(gt_count, TB_I32, N);
    tb_tensor tdb = tb_tensor_make(det_boxes, TB_F32, 3, (const int64_t[]){ N, D, 4 });
    tb_tensor tds = tb_tensor_2d(det_scores, TB_F32, N, D), tdl = tb_tensor_2d(det_labels, TB_I32, N, D);
    tb_tensor tdc = tb_tensor_1d(det_count, TB_I32, N);

    tb_voc_eval *batch = make_eval(2), *single = make_eval(2);
    assert_int_equal(tb_voc_eval_add_batch(batch, &tgb, &tgl, &tgd, &tgc, &tdb, &tds, &tdl, &tdc, 2), TB_OK);
    for (int i = 0; i < 2; i++)
        assert_int_equal(tb_voc_eval_add_image(single, gt_boxes[i][0], gt_labels[i], difficult[i], gt_count[i],
                                               det_boxes[i][0], det_scores[i], det_labels[i], det_count[i]),
                         TB_OK);
    for (int c = 0; c < 2; c++) {
        tb_voc_class_result a = class_result(batch, c), b = class_result(single, c);
        assert_int_equal(a.gt, b.gt);
        assert_int_equal(a.gt_difficult, b.gt_difficult);
        assert_int_equal(a.tp, b.tp);
        assert_int_equal(a.fp, b.fp);
        assert_int_equal(a.ignored, b.ignored);
        assert_true(a.ap_area == b.ap_area && a.ap_11point == b.ap_11point);
    }
    /* class 0: gt A (image 1) only, TP .9 and FP .7 -> AP 1; class 1: gt A (image 2), B difficult
     * (image 1): B's detection .8 ignored, image 2's half box .6 TP -> AP 1 */
    tb_voc_class_result r1 = class_result(batch, 1);
    assert_int_equal(r1.ignored, 1);
    assert_int_equal(r1.tp, 1);
    expect_ap(batch, 0, 1.0, 1.0);
    expect_ap(batch, 1, 1.0, 1.0);
    /* the padding image's invalid labels are an error once included */
    assert_int_equal(tb_voc_eval_add_batch(batch, &tgb, &tgl, &tgd, &tgc, &tdb, &tds, &tdl, &tdc, 3),
                     TB_ERR_INVALID);
    tb_tensor wrong = tb_tensor_2d(det_scores, TB_F32, N, D - 1);
    assert_int_equal(tb_voc_eval_add_batch(batch, &tgb, &tgl, &tgd, &tgc, &tdb, &wrong, &tdl, &tdc, 2),
                     TB_ERR_INVALID);
    tb_voc_eval_destroy(batch);
    tb_voc_eval_destroy(single);
}

/* Bad input is an error that adds nothing. */
static void test_bad_input(void **state)
{
    (void)state;
    tb_voc_eval *ev = NULL;
    assert_int_equal(tb_voc_eval_create(&ev, 0), TB_ERR_INVALID);
    ev = make_eval(2);
    float gt[4], det[8];
    set_box(gt, BOX_A);
    set_box(det, BOX_A);
    set_box(det + 4, BOX_B);
    int32_t gt_label = 0, det_labels[2] = { 0, 2 };
    float scores[2] = { 0.9f, 0.8f };
    assert_int_equal(tb_voc_eval_add_image(ev, gt, &gt_label, NULL, 1, det, scores, det_labels, 2), TB_ERR_INVALID);
    det_labels[1] = 1;
    scores[1] = NAN;
    assert_int_equal(tb_voc_eval_add_image(ev, gt, &gt_label, NULL, 1, det, scores, det_labels, 2), TB_ERR_INVALID);
    gt_label = -1;
    scores[1] = 0.8f;
    assert_int_equal(tb_voc_eval_add_image(ev, gt, &gt_label, NULL, 1, det, scores, det_labels, 2), TB_ERR_INVALID);
    tb_voc_class_result r = class_result(ev, 0);
    assert_int_equal(r.gt, 0);
    assert_int_equal(r.detections, 0);
    assert_int_equal(tb_voc_eval_class(ev, 2, &r), TB_ERR_INVALID);
    double map;
    assert_int_equal(tb_voc_eval_map(ev, TB_VOC_AP_AREA, &map, NULL), TB_OK);
    assert_true(isnan(map));  /* no class has gt */
    tb_voc_eval_destroy(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iou_plus_one_convention),
        cmocka_unit_test(test_perfect_detector),
        cmocka_unit_test(test_false_positive_first),
        cmocka_unit_test(test_missed_object),
        cmocka_unit_test(test_duplicate_is_false_positive),
        cmocka_unit_test(test_best_gt_already_matched),
        cmocka_unit_test(test_difficult_objects),
        cmocka_unit_test(test_class_without_detections_or_gt),
        cmocka_unit_test(test_iou_half_matches),
        cmocka_unit_test(test_mixed_images),
        cmocka_unit_test(test_incremental_reads),
        cmocka_unit_test(test_score_ties_keep_insertion_order),
        cmocka_unit_test(test_score_ties_within_an_image),
        cmocka_unit_test(test_eleven_point_thresholds),
        cmocka_unit_test(test_add_batch),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
