/* CUDA vs CPU, the box-level detection ops that draw training samples:
 * rpn_targets and roi_targets (proposals and final detections, with their
 * NMS, are in test_cuda_box_nms.c; roi_align and smooth L1 in
 * test_cuda_detection.c). For each op:
 *  - random inputs: several images, some without gts (or proposals), some
 *    with many; rows past the counts hold boxes (and out-of-range labels)
 *    the ops must ignore; every IoU a decision compares kept MARGIN off its
 *    threshold (box_test_util.h);
 *  - hand-made inputs: IoU exactly at a threshold, tied IoUs (low-quality
 *    matches, duplicate gts), a gt overlapping nothing, a degenerate anchor,
 *    sampling that must choose (several seeds);
 *  - a VOC-scale case (17100 anchors and 20 gts; 2000 proposals, 40 gts,
 *    21 classes, 512 RoIs), so the large sorts run;
 *  - a workspace one byte short: TB_ERR_INVALID from the front-end and from
 *    the backend's own check, outputs untouched.
 * Labels (the sampled sets), sampled RoIs and weights must be bitwise equal,
 * targets within BOX_TOL. Outputs start from random bytes (every element must
 * be written) inside guard bytes. Exits 77 without a GPU;
 * `test_cuda_box_targets --self-check` runs the CPU against itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "box_test_util.h"
#include "cuda_test_util.h"
#include "kernels/backend.h"
#include "kernels/ops.h"

static tb_backend *ref_be, *dut_be;
static uint64_t seed;

/* ============================================================ rpn_targets */
typedef struct rt_inputs {
    int n, g;
    int64_t a;
    float *anchors, *gts, *count; /* {a, 4}, {n, g, 4}, {n} */
} rt_inputs;

static void rt_free(rt_inputs *in)
{
    free(in->anchors);
    free(in->gts);
    free(in->count);
}

/* Runs both sides and compares; with too_small also checks the workspace errors. */
static void run_rpn_targets(tctx *t, const char *name, const rt_inputs *in, const tb_rpn_target_params *p,
                            bool expect_positives, bool too_small)
{
    int n = in->n, g = in->g;
    int64_t a = in->a;
    tctx_case(t, "rpn_targets %s: %d images, %lld anchors, %d gt rows", name, n, (long long)a, g);
    int64_t gshape[3] = {n, g, 4};
    tpair *anc = tp_2d(t, TB_F32, a, 4, TP_ZERO, 0, 0), *gt = tp_new(t, TB_F32, 3, gshape, TP_ZERO, 0, 0);
    tpair *gc = tp_1d(t, TB_I32, n, TP_ZERO, 0, 0);
    tpair *labels = tp_1d(t, TB_I32, n * a, TP_LABELS, 0, 9);
    tpair *targets = tp_2d(t, TB_F32, n * a, 4, TP_UNIFORM, -9, 9);
    tpair *weights = tp_2d(t, TB_F32, n * a, 4, TP_UNIFORM, -9, 9);
    if (!anc || !gt || !gc || !labels || !targets || !weights || !tp_set(t, anc, in->anchors) ||
        !tp_set(t, gt, in->gts) || !tp_set(t, gc, in->count))
        return;
    RESERVE(t, tb_rpn_targets_workspace_size(BE, S(anc), S(gt), p));
    RUN_BOTH(t, tb_rpn_targets(BE, S(labels), S(targets), S(weights), S(anc), S(gt), S(gc), p));
    tp_check(t, "labels", labels, 0.0);
    tp_check(t, "targets", targets, BOX_TOL);
    tp_check(t, "weights", weights, 0.0);
    if (expect_positives && (count_ref(labels, 1) == 0 || count_ref(labels, 0) == 0))
        tctx_fail(t, "the inputs give no sampled positive or no negative: the case tests nothing");
    if (!too_small)
        return;
    EXPECT_TOO_SMALL(t, tb_rpn_targets_workspace_size(BE, S(anc), S(gt), p),
                     tb_rpn_targets(BE, S(labels), S(targets), S(weights), S(anc), S(gt), S(gc), p));
    EXPECT_TOO_SMALL(t, tb_rpn_targets_workspace_size(BE, S(anc), S(gt), p),
                     BE->iface.rpn_targets(BE, S(labels), S(targets), S(weights), S(anc), S(gt), S(gc), p));
    tp_check(t, "labels after the refused calls", labels, 0.0);
    tp_check(t, "targets after the refused calls", targets, BOX_TOL);
}

/* Random gts (counted ones MARGIN away from both thresholds against every
 * anchor), rows past the counts random too. */
static bool rt_random(tctx *t, rt_inputs *in, const int *counts, float w, float h, float lo, float hi,
                      const tb_rpn_target_params *p)
{
    in->gts = alloc_f(t, (size_t)in->n * in->g * 4);
    in->count = alloc_f(t, (size_t)in->n);
    if (!in->anchors || !in->gts || !in->count)
        return false;
    const float thr[2] = {p->pos_iou, p->neg_iou};
    for (int b = 0; b < in->n; b++) {
        in->count[b] = (float)counts[b];
        for (int i = 0; i < in->g; i++) {
            float *box = in->gts + ((size_t)b * in->g + i) * 4;
            int tries = 0;
            do
                rand_box(t, box, w, h, lo, hi);
            while (i < counts[b] && near_any(box, in->anchors, in->a, 4, thr, 2) && ++tries < 1000);
            if (tries >= 1000) {
                tctx_fail(t, "no gt box away from the thresholds in 1000 tries");
                return false;
            }
        }
    }
    return true;
}

static void test_rpn_targets_random(void **state)
{
    (void)state;
    tctx ctx, *t = &ctx;
    tctx_init(t, ref_be, dut_be, seed ^ 0x4001);
    /* fashion-scenes: 128 px canvas, stride 4, 32 x 32 x 9 anchors */
    static const int counts[4] = {3, 0, 12, 1};
    tb_rpn_target_params p = {.pos_iou = 0.7f, .neg_iou = 0.3f, .samples_per_image = 256, .pos_fraction = 0.5f,
                              .seed = 12345};
    rt_inputs in = {.n = 4, .g = 12};
    in.anchors = grid_anchors(t, 32, 32, 4.0f, 8.0f, &in.a);
    if (rt_random(t, &in, counts, 128.0f, 128.0f, 6.0f, 40.0f, &p)) {
        run_rpn_targets(t, "fashion-scenes anchors", &in, &p, true, false);
        p.pos_fraction = 0.25f, p.samples_per_image = 64, p.seed = 777;
        run_rpn_targets(t, "64 samples, a quarter positive", &in, &p, true, false);
        p.pos_fraction = 0.0f, p.seed = 99;
        run_rpn_targets(t, "no positives wanted", &in, &p, false, false);
        p.pos_fraction = 1.0f, p.samples_per_image = 100000;
        run_rpn_targets(t, "more samples than anchors", &in, &p, true, false);
    }
    rt_free(&in);
    tctx_free(t);
    assert_int_equal(t->failures, 0);
}

/* Hand-made: a gt equal to an anchor (IoU 1), a gt with two anchors at the
 * same best IoU 1/7 (both positive as low-quality matches), a gt between two
 * anchors of equal IoU 0.905, an IoU of exactly 0.5 (ignored unless it is a
 * gt's best), a gt overlapping nothing, a degenerate anchor, an image
 * without gts, garbage rows past the counts; 4 samples must choose. */
static void test_rpn_targets_hand_made(void **state)
{
    (void)state;
    tctx ctx, *t = &ctx;
    tctx_init(t, ref_be, dut_be, seed ^ 0x4002);
    static const float anchors[8 * 4] = {0, 0, 10, 10,   10, 10, 20, 20,  40, 0, 60, 20,   30, 30, 50, 50,
                                         32, 30, 52, 50, 100, 100, 140, 140, 0, 0, 0, 10, 60, 0, 80, 20};
    static const float gts[3 * 3 * 4] = {
        0, 0, 10, 10,   5, 5, 15, 15,   31, 30, 51, 50,      /* image 0 */
        1, 2, 3, 4,     5, 6, 7, 8,     9, 10, 11, 12,       /* image 1: no gts, garbage rows */
        200, 200, 210, 210, 60, 0, 70, 20, -5, -5, 500, 500, /* image 2: 2 gts, a garbage row */
    };
    static const float counts[3] = {3, 0, 2};
    rt_inputs in = {.n = 3, .g = 3, .a = 8, .anchors = (float *)anchors, .gts = (float *)gts,
                    .count = (float *)counts};
    tb_rpn_target_params p = {.pos_iou = 0.7f, .neg_iou = 0.3f, .samples_per_image = 4, .pos_fraction = 0.5f,
                              .seed = 4242};
    for (uint64_t s = 0; s < 6; s++) {
        p.seed = 4242 + s; /* several draws of 2 of image 0's 4 positives */
        run_rpn_targets(t, "hand-made, 4 samples", &in, &p, true, s == 0);
    }
    p.samples_per_image = 256;
    run_rpn_targets(t, "hand-made, every candidate sampled", &in, &p, true, false);
    p.neg_iou = 0.5f, p.pos_iou = 0.5f; /* the 0.5 IoU is positive now (>=) */
    run_rpn_targets(t, "hand-made, thresholds at the exact IoU 0.5", &in, &p, true, false);
    tctx_free(t);
    assert_int_equal(t->failures, 0);
}

/* VOC scale: 600 x 800 canvas at stride 16, 38 x 50 x 9 = 17100 anchors. */
static void test_rpn_targets_voc_scale(void **state)
{
    (void)state;
    tctx ctx, *t = &ctx;
    tctx_init(t, ref_be, dut_be, seed ^ 0x4003);
    static const int counts[2] = {20, 4};
    tb_rpn_target_params p = {.pos_iou = 0.7f, .neg_iou = 0.3f, .samples_per_image = 256, .pos_fraction = 0.5f,
                              .seed = 31337};
    rt_inputs in = {.n = 2, .g = 20};
    in.anchors = grid_anchors(t, 38, 50, 16.0f, 128.0f, &in.a);
    if (rt_random(t, &in, counts, 800.0f, 608.0f, 20.0f, 400.0f, &p))
        run_rpn_targets(t, "VOC scale", &in, &p, true, false);
    rt_free(&in);
    tctx_free(t);
    assert_int_equal(t->failures, 0);
}

/* ============================================================ roi_targets */
typedef struct rg_inputs {
    int n, np, g, classes;
    float *props, *pcount, *gts, *glabels, *gcount; /* {n*np,5}, {n}, {n,g,4}, {n,g}, {n} */
} rg_inputs;

static void rg_free(rg_inputs *in)
{
    free(in->props);
    free(in->pcount);
    free(in->gts);
    free(in->glabels);
    free(in->gcount);
}

static void run_roi_targets(tctx *t, const char *name, const rg_inputs *in, const tb_roi_target_params *p,
                            bool too_small)
{
    int n = in->n, g = in->g, per = p->rois_per_image;
    int64_t rows = (int64_t)n * per, cols = 4 * (int64_t)in->classes;
    tctx_case(t, "roi_targets %s: %d images, %d proposal and %d gt rows, %d classes, %d RoIs per image", name, n,
              in->np, g, in->classes, per);
    int64_t gshape[3] = {n, g, 4};
    tpair *props = tp_2d(t, TB_F32, (int64_t)n * in->np, 5, TP_ZERO, 0, 0);
    tpair *pc = tp_1d(t, TB_I32, n, TP_ZERO, 0, 0), *gc = tp_1d(t, TB_I32, n, TP_ZERO, 0, 0);
    tpair *gt = tp_new(t, TB_F32, 3, gshape, TP_ZERO, 0, 0), *gl = tp_2d(t, TB_I32, n, g, TP_ZERO, 0, 0);
    tpair *rois = tp_2d(t, TB_F32, rows, 5, TP_UNIFORM, -9, 9), *labels = tp_1d(t, TB_I32, rows, TP_LABELS, 0, 9);
    tpair *targets = tp_2d(t, TB_F32, rows, cols, TP_UNIFORM, -9, 9);
    tpair *weights = tp_2d(t, TB_F32, rows, cols, TP_UNIFORM, -9, 9);
    if (!props || !pc || !gc || !gt || !gl || !rois || !labels || !targets || !weights ||
        !tp_set(t, props, in->props) || !tp_set(t, pc, in->pcount) || !tp_set(t, gc, in->gcount) ||
        !tp_set(t, gt, in->gts) || !tp_set(t, gl, in->glabels))
        return;
    RESERVE(t, tb_roi_targets_workspace_size(BE, S(props), S(gt), p));
    RUN_BOTH(t, tb_roi_targets(BE, S(rois), S(labels), S(targets), S(weights), S(props), S(pc), S(gt), S(gl), S(gc),
                               p));
    tp_check(t, "labels", labels, 0.0);
    tp_check(t, "rois", rois, 0.0); /* copies of proposals and gts */
    tp_check(t, "targets", targets, BOX_TOL);
    tp_check(t, "weights", weights, 0.0);
    if (!too_small)
        return;
    EXPECT_TOO_SMALL(t, tb_roi_targets_workspace_size(BE, S(props), S(gt), p),
                     tb_roi_targets(BE, S(rois), S(labels), S(targets), S(weights), S(props), S(pc), S(gt), S(gl),
                                    S(gc), p));
    EXPECT_TOO_SMALL(t, tb_roi_targets_workspace_size(BE, S(props), S(gt), p),
                     BE->iface.roi_targets(BE, S(rois), S(labels), S(targets), S(weights), S(props), S(pc), S(gt),
                                           S(gl), S(gc), p));
    tp_check(t, "labels after the refused calls", labels, 0.0);
    tp_check(t, "targets after the refused calls", targets, BOX_TOL);
}

/* Random gts (counted ones MARGIN away from the thresholds thr[nthr]
 * against each other), labels in [0, classes - 1) (77 past the counts: must be ignored),
 * proposals half jittered gts, half anywhere, MARGIN away from the
 * thresholds against the counted gts; rows past the counts random. */
static bool rg_random(tctx *t, rg_inputs *in, const int *pcounts, const int *gcounts, float w, float h,
                      const float *thr, int nthr)
{
    int n = in->n, np = in->np, g = in->g;
    in->props = alloc_f(t, (size_t)n * np * 5);
    in->pcount = alloc_f(t, (size_t)n);
    in->gts = alloc_f(t, (size_t)n * g * 4);
    in->glabels = alloc_f(t, (size_t)n * g);
    in->gcount = alloc_f(t, (size_t)n);
    if (!in->props || !in->pcount || !in->gts || !in->glabels || !in->gcount)
        return false;
    for (int b = 0; b < n; b++) {
        float *gb = in->gts + (size_t)b * g * 4;
        in->pcount[b] = (float)pcounts[b];
        in->gcount[b] = (float)gcounts[b];
        for (int i = 0; i < g; i++) {
            int tries = 0;
            do
                rand_box(t, gb + 4 * i, w, h, 0.05f * w, 0.5f * w);
            while (i < gcounts[b] && near_any(gb + 4 * i, gb, i, 4, thr, nthr) && ++tries < 1000);
            if (tries >= 1000) {
                tctx_fail(t, "no gt box away from the thresholds in 1000 tries");
                return false;
            }
            in->glabels[b * g + i] = i < gcounts[b] ? (float)tb_rng_below(&t->rng, (uint64_t)in->classes - 1) : 77.0f;
        }
        for (int i = 0; i < np; i++) {
            float *row = in->props + ((size_t)b * np + i) * 5;
            row[0] = (float)b;
            int tries = 0;
            do {
                if (gcounts[b] > 0 && tb_rng_below(&t->rng, 2))
                    jitter_box(t, row + 1, gb + 4 * tb_rng_below(&t->rng, (uint64_t)gcounts[b]), 0.2f);
                else
                    rand_box(t, row + 1, w, h, 0.02f * w, 0.6f * w);
            } while (i < pcounts[b] && near_any(row + 1, gb, gcounts[b], 4, thr, nthr) && ++tries < 1000);
            if (tries >= 1000) {
                tctx_fail(t, "no proposal away from the thresholds in 1000 tries");
                return false;
            }
        }
    }
    return true;
}

static void test_roi_targets_random(void **state)
{
    (void)state;
    tctx ctx, *t = &ctx;
    tctx_init(t, ref_be, dut_be, seed ^ 0x4021);
    static const int pcounts[4] = {150, 0, 37, 100}, gcounts[4] = {3, 10, 0, 1};
    tb_roi_target_params p = {.rois_per_image = 48, .pos_fraction = 0.25f, .fg_iou = 0.5f, .bg_iou_hi = 0.5f,
                              .bg_iou_lo = 0.0f, .box_std = {0.1f, 0.1f, 0.2f, 0.2f}, .seed = 2024};
    rg_inputs in = {.n = 4, .np = 150, .g = 10, .classes = 6};
    static const float thr[2] = {0.5f, 0.1f}; /* fg_iou = bg_iou_hi, and both bg_iou_lo used */
    if (rg_random(t, &in, pcounts, gcounts, 128.0f, 128.0f, thr, 2)) {
        run_roi_targets(t, "random", &in, &p, false);
        p.bg_iou_lo = 0.1f, p.seed = 7; /* the original paper's background range */
        run_roi_targets(t, "random, background from 0.1", &in, &p, false);
        p.rois_per_image = 512, p.pos_fraction = 0.5f, p.seed = 8; /* more RoIs than candidates: padding */
        run_roi_targets(t, "random, 512 RoIs per image", &in, &p, false);
    }
    rg_free(&in);
    tctx_free(t);
    assert_int_equal(t->failures, 0);
}

/* Hand-made, image 0: gts G0 = G1 = (0,0,10,10) with labels 2 and 0 (tie:
 * every match takes G0, class 3); proposals (0,0,20,10) and (0,0,10,20) of
 * IoU exactly 0.5 (foreground: >=), one far away (IoU 0: background) and one
 * of IoU 1/3; 4 foreground candidates for 2 foreground slots. Image 1: no
 * gts, 2 proposals: background, then padding rows. */
static void test_roi_targets_hand_made(void **state)
{
    (void)state;
    tctx ctx, *t = &ctx;
    tctx_init(t, ref_be, dut_be, seed ^ 0x4022);
    static const float props[2 * 4 * 5] = {
        0, 0, 0, 20, 10,   0, 0, 0, 10, 20,   0, 50, 50, 60, 60,   0, 5, 0, 15, 10,
        1, 3, 3, 40, 40,   1, 60, 2, 90, 30,  1, 1, 1, 2, 2,       1, 7, 7, 9, 9, /* last two: past the count */
    };
    static const float gts[2 * 3 * 4] = {0, 0, 10, 10, 0, 0, 10, 10, 1, 1, 5, 5, /* third: past the count */
                                         4, 4, 8, 8,   1, 1, 2, 2,   3, 3, 9, 9};
    static const float glabels[2 * 3] = {2, 0, 99, 99, 99, 99};
    static const float pcount[2] = {4, 2}, gcount[2] = {2, 0};
    rg_inputs in = {.n = 2, .np = 4, .g = 3, .classes = 4, .props = (float *)props, .pcount = (float *)pcount,
                    .gts = (float *)gts, .glabels = (float *)glabels, .gcount = (float *)gcount};
    tb_roi_target_params p = {.rois_per_image = 4, .pos_fraction = 0.5f, .fg_iou = 0.5f, .bg_iou_hi = 0.5f,
                              .bg_iou_lo = 0.0f, .box_std = {0.1f, 0.1f, 0.2f, 0.2f}, .seed = 1};
    for (uint64_t s = 0; s < 6; s++) {
        p.seed = 1 + s; /* several draws of 2 of the 4 foreground candidates */
        run_roi_targets(t, "hand-made, 4 RoIs", &in, &p, s == 0);
    }
    p.rois_per_image = 16;
    run_roi_targets(t, "hand-made, 16 RoIs (padding)", &in, &p, false);
    p.bg_iou_lo = 0.4f; /* the 1/3 proposal is neither */
    run_roi_targets(t, "hand-made, background from 0.4", &in, &p, false);
    tctx_free(t);
    assert_int_equal(t->failures, 0);
}

/* VOC scale: 2000 proposals (GluonCV's post-NMS training count), 40 gt rows,
 * 21 classes, 512 RoIs per image (torchvision's). */
static void test_roi_targets_voc_scale(void **state)
{
    (void)state;
    tctx ctx, *t = &ctx;
    tctx_init(t, ref_be, dut_be, seed ^ 0x4023);
    static const int pcounts[2] = {2000, 1234}, gcounts[2] = {40, 9};
    tb_roi_target_params p = {.rois_per_image = 512, .pos_fraction = 0.25f, .fg_iou = 0.5f, .bg_iou_hi = 0.5f,
                              .bg_iou_lo = 0.0f, .box_std = {0.1f, 0.1f, 0.2f, 0.2f}, .seed = 99};
    rg_inputs in = {.n = 2, .np = 2000, .g = 40, .classes = 21};
    static const float thr[1] = {0.5f};
    if (rg_random(t, &in, pcounts, gcounts, 800.0f, 600.0f, thr, 1))
        run_roi_targets(t, "VOC scale", &in, &p, false);
    rg_free(&in);
    tctx_free(t);
    assert_int_equal(t->failures, 0);
}

/* ------------------------------------------------------------------ slots */
static void test_box_level_ops_have_slots(void **state)
{
    (void)state;
    assert_non_null(dut_be->iface.rpn_targets);
    assert_non_null(dut_be->iface.rpn_proposals);
    assert_non_null(dut_be->iface.roi_targets);
    assert_non_null(dut_be->iface.detect_boxes);
    assert_non_null(dut_be->iface.rpn_targets_workspace_size);
    assert_non_null(dut_be->iface.rpn_proposals_workspace_size);
    assert_non_null(dut_be->iface.roi_targets_workspace_size);
    assert_non_null(dut_be->iface.detect_boxes_workspace_size);
    if (dut_be->iface.supports_op) {
        assert_true(dut_be->iface.supports_op(dut_be, TB_OP_RPN_PROPOSALS, TB_F32));
        assert_true(dut_be->iface.supports_op(dut_be, TB_OP_RPN_PROPOSALS, TB_F16));
        assert_true(dut_be->iface.supports_op(dut_be, TB_OP_DETECT_BOXES, TB_F32));
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_box_level_ops_have_slots),
        cmocka_unit_test(test_rpn_targets_hand_made),
        cmocka_unit_test(test_rpn_targets_random),
        cmocka_unit_test(test_rpn_targets_voc_scale),
        cmocka_unit_test(test_roi_targets_hand_made),
        cmocka_unit_test(test_roi_targets_random),
        cmocka_unit_test(test_roi_targets_voc_scale),
    };
    return tctx_main(argc, argv, &ref_be, &dut_be, &seed, "cuda rpn_targets and roi_targets vs cpu", tests,
                     sizeof tests / sizeof tests[0]);
}
