/* Proposal and detection outputs on hand-made scores:
 *  - rpn_proposals: objectness order (ties to the lower anchor), pre-NMS
 *    top-k, decoding, clipping to the image, min_size, NMS, post-NMS cap,
 *    padding rows and counts; bf16 logits give the same result.
 *  - detect_boxes: per-class NMS keeps overlapping boxes of different
 *    classes, the score threshold, class-specific deltas with box_std,
 *    clipping, the max_per_image cap, padding, an image without RoIs.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "det_unit_util.h"
#include "kernels/error.h"
#include "kernels/ops.h"

/* ========================================================== rpn_proposals */

#define PA 6
static const float prop_anchors[PA][4] = {
    {0, 0, 10, 10},   /* A0 */
    {1, 0, 11, 10},   /* A1: IoU 90/110 with A0 */
    {30, 30, 40, 40}, /* A2 */
    {70, 0, 80, 10},  /* A3 */
    {60, 60, 70, 61}, /* A4: 1 px high, below min_size */
    {20, 0, 30, 10},  /* A5 */
};

/* objectness l1 - l0 per image and anchor */
static const float prop_score[2][PA] = {
    {2.0f, 3.0f, 1.0f, 1.0f, 5.0f, -10.0f}, /* A4 A1 A0 A2 A3 | A5 */
    {1.0f, 0.5f, 4.0f, 3.0f, 0.0f, 2.0f},   /* A2 A3 A5 A0 A1 | A4 */
};

typedef struct prop_io {
    tb_tensor rois, count, logits, deltas, anchors, im;
    int post;
} prop_io;

static prop_io prop_make(int post, tb_dtype logit_dt)
{
    prop_io io;
    io.post = post;
    io.rois = du_new(TB_F32, 2, 2 * post, 5, 1);
    io.count = du_new(TB_I32, 1, 2, 1, 1);
    io.logits = du_new(logit_dt, 2, 2 * PA, 2, 1);
    io.deltas = du_new(TB_F32, 2, 2 * PA, 4, 1);
    io.anchors = du_new(TB_F32, 2, PA, 4, 1);
    io.im = du_new(TB_F32, 2, 2, 2, 1);
    du_set_f(&io.anchors, &prop_anchors[0][0], PA * 4);
    for (int b = 0; b < 2; b++)
        for (int j = 0; j < PA; j++) { /* (l0, l1) = (j / 4, j / 4 + score): only the difference ranks */
            tb_store_f32(io.logits.data, logit_dt, 2 * (b * PA + j), 0.25f * (float)j);
            tb_store_f32(io.logits.data, logit_dt, 2 * (b * PA + j) + 1, 0.25f * (float)j + prop_score[b][j]);
        }
    /* image 1: A5 doubles its width (dw = log 2) around its centre 25 */
    du_f(&io.deltas)[4 * (PA + 5) + 2] = logf(2.0f);
    const float im[4] = {100, 100, 35, 40}; /* (height, width): image 0 100x100, image 1 35 high, 40 wide */
    du_set_f(&io.im, im, 4);
    return io;
}

static int prop_run(prop_io *io, const tb_proposal_params *p)
{
    du_reserve(tb_rpn_proposals_workspace_size(du_be, &io->logits, &io->anchors, p));
    return tb_rpn_proposals(du_be, &io->rois, &io->count, &io->logits, &io->deltas, &io->anchors, &io->im, p);
}

static void expect_roi(const prop_io *io, int row, int b, const float *box)
{
    const float zero[4] = {0, 0, 0, 0};
    const float *r = du_f(&io->rois) + 5 * row;
    assert_true(r[0] == (float)b);
    du_near("proposal", r + 1, box ? box : zero, 4, 1e-4f);
}

static void test_proposals_hand(void **state)
{
    (void)state;
    const tb_dtype dts[2] = {TB_F32, TB_BF16};
    for (int k = 0; k < 2; k++) {
        prop_io io = prop_make(4, dts[k]);
        tb_proposal_params p = {5, 4, 0.5f, 2.0f};
        du_ok(prop_run(&io, &p), "rpn_proposals");
        /* image 0: A4 too small, A1 suppresses A0, A2 before A3 (tie), A5 beyond the top 5 */
        assert_int_equal(du_i(&io.count)[0], 3);
        expect_roi(&io, 0, 0, prop_anchors[1]);
        expect_roi(&io, 1, 0, prop_anchors[2]);
        expect_roi(&io, 2, 0, prop_anchors[3]);
        expect_roi(&io, 3, 0, NULL);
        /* image 1 (35 high, 40 wide): A2 clipped at the bottom, A3 clipped to zero width and
         * dropped, A5 decoded to 15..35, A0 kept, A1 suppressed by A0 */
        assert_int_equal(du_i(&io.count)[1], 3);
        const float a2[4] = {30, 30, 40, 35}, a5[4] = {15, 0, 35, 10};
        expect_roi(&io, 4, 1, a2);
        expect_roi(&io, 5, 1, a5);
        expect_roi(&io, 6, 1, prop_anchors[0]);
        expect_roi(&io, 7, 1, NULL);

        /* pre_nms_topk 6 lets A5 into image 0; post_nms_topk 2 cuts both images to 2 */
        p.pre_nms_topk = 6;
        du_ok(prop_run(&io, &p), "rpn_proposals");
        assert_int_equal(du_i(&io.count)[0], 4);
        expect_roi(&io, 3, 0, prop_anchors[5]);
        du_free_all();

        io = prop_make(2, dts[k]);
        p.post_nms_topk = 2;
        du_ok(prop_run(&io, &p), "rpn_proposals");
        assert_int_equal(du_i(&io.count)[0], 2);
        assert_int_equal(du_i(&io.count)[1], 2);
        expect_roi(&io, 1, 0, prop_anchors[2]);
        expect_roi(&io, 3, 1, a5);

        /* NMS at 0.9: A0 and A1 (IoU 0.82) both survive */
        p.post_nms_topk = 2;
        p.nms_iou = 0.9f;
        p.pre_nms_topk = 3;
        du_ok(prop_run(&io, &p), "rpn_proposals");
        expect_roi(&io, 0, 0, prop_anchors[1]);
        expect_roi(&io, 1, 0, prop_anchors[0]);
        /* min_size 0 keeps A4 (ranked first in image 0) */
        p.min_size = 0.0f;
        du_ok(prop_run(&io, &p), "rpn_proposals");
        expect_roi(&io, 0, 0, prop_anchors[4]);
        du_free_all();
    }
}

/* =========================================================== detect_boxes */

#define DP 4 /* RoIs per image */
#define DC 3 /* classes with the background */

typedef struct det_io {
    tb_tensor boxes, scores, classes, count, probs, deltas, rois, rcount, im;
    int d;
} det_io;

static det_io det_make(int d)
{
    det_io io;
    io.d = d;
    io.boxes = du_new(TB_F32, 3, 2, d, 4);
    io.scores = du_new(TB_F32, 2, 2, d, 1);
    io.classes = du_new(TB_I32, 2, 2, d, 1);
    io.count = du_new(TB_I32, 1, 2, 1, 1);
    io.probs = du_new(TB_F32, 2, 2 * DP, DC, 1);
    io.deltas = du_new(TB_F32, 2, 2 * DP, 4 * DC, 1);
    io.rois = du_new(TB_F32, 2, 2 * DP, 5, 1);
    io.rcount = du_new(TB_I32, 1, 2, 1, 1);
    io.im = du_new(TB_F32, 2, 2, 2, 1);
    const float rois[2 * DP][5] = {
        {0, 0, 0, 10, 10},   /* R0 */
        {0, 1, 0, 11, 10},   /* R1: IoU 0.82 with R0 */
        {0, 50, 50, 60, 60}, /* R2: sticks out of the 55-high image */
        {0, 80, 0, 90, 10},  /* R3: beyond roi_count */
        {1, 0, 0, 10, 10},
    };
    du_set_f(&io.rois, &rois[0][0], 2 * DP * 5);
    const float probs[2 * DP][DC] = {
        {0.1f, 0.6f, 0.3f},
        {0.1f, 0.5f, 0.4f},
        {0.9f, 0.04f, 0.06f}, /* class 1 below the 0.05 threshold */
        {0.0f, 0.99f, 0.01f},
        {0.0f, 0.99f, 0.01f},
    };
    du_set_f(&io.probs, &probs[0][0], 2 * DP * DC);
    float *dl = du_f(&io.deltas);
    dl[2 * 4 * DC + 4 * 2] = 0.1f;                             /* R2, class 2: dx 0.1 * std 0.1 * width 10 */
    dl[2 * 4 * DC + 4 * 1] = 3.0f, dl[2 * 4 * DC + 4 * 1 + 1] = 3.0f; /* R2, class 1: not used */
    const int32_t rc[2] = {3, 0};
    du_set_i(&io.rcount, rc, 2);
    const float im[4] = {55, 100, 50, 50};
    du_set_f(&io.im, im, 4);
    return io;
}

static int det_run(det_io *io, const tb_detect_params *p)
{
    du_reserve(tb_detect_boxes_workspace_size(du_be, &io->probs, &io->rcount, p));
    return tb_detect_boxes(du_be, &io->boxes, &io->scores, &io->classes, &io->count, &io->probs, &io->deltas,
                           &io->rois, &io->rcount, &io->im, p);
}

static void expect_det(const det_io *io, int b, int t, const float *box, float score, int cls)
{
    int row = b * io->d + t;
    const float zero[4] = {0, 0, 0, 0};
    du_near("detection box", du_f(&io->boxes) + 4 * row, box ? box : zero, 4, 1e-4f);
    assert_true(fabsf(du_f(&io->scores)[row] - score) < 1e-7f);
    assert_int_equal(du_i(&io->classes)[row], cls);
}

static void test_detect_boxes_hand(void **state)
{
    (void)state;
    det_io io = det_make(5);
    tb_detect_params p = {0.05f, 0.5f, 5, {0.1f, 0.1f, 0.2f, 0.2f}};
    du_ok(det_run(&io, &p), "detect_boxes");
    /* class 1: R0 0.6 suppresses R1 0.5; class 2: R1 0.4 suppresses R0 0.3, R2 0.06 kept.
     * R0 (class 1) and R1 (class 2) overlap but are of different classes: both kept. */
    const float r0[4] = {0, 0, 10, 10}, r1[4] = {1, 0, 11, 10}, r2[4] = {50.1f, 50, 60.1f, 55};
    assert_int_equal(du_i(&io.count)[0], 3);
    expect_det(&io, 0, 0, r0, 0.6f, 0);
    expect_det(&io, 0, 1, r1, 0.4f, 1);
    expect_det(&io, 0, 2, r2, 0.06f, 1);
    expect_det(&io, 0, 3, NULL, 0.0f, -1);
    expect_det(&io, 0, 4, NULL, 0.0f, -1);
    /* image 1 has no RoIs */
    assert_int_equal(du_i(&io.count)[1], 0);
    for (int t = 0; t < 5; t++)
        expect_det(&io, 1, t, NULL, 0.0f, -1);

    /* a threshold of 0.35 leaves one box per class */
    p.score_thresh = 0.35f;
    du_ok(det_run(&io, &p), "detect_boxes");
    assert_int_equal(du_i(&io.count)[0], 2);
    expect_det(&io, 0, 1, r1, 0.4f, 1);
    expect_det(&io, 0, 2, NULL, 0.0f, -1);
    /* NMS at 0.9 keeps R1 in class 1 too: 0.6, 0.5, 0.4, ... */
    p.score_thresh = 0.05f;
    p.nms_iou = 0.9f;
    du_ok(det_run(&io, &p), "detect_boxes");
    assert_int_equal(du_i(&io.count)[0], 5);
    expect_det(&io, 0, 1, r1, 0.5f, 0);
    expect_det(&io, 0, 3, r0, 0.3f, 1);
    du_free_all();

    /* the cap: max_per_image 2 keeps the two best */
    io = det_make(2);
    p.max_per_image = 2;
    p.nms_iou = 0.5f;
    du_ok(det_run(&io, &p), "detect_boxes");
    assert_int_equal(du_i(&io.count)[0], 2);
    expect_det(&io, 0, 0, r0, 0.6f, 0);
    expect_det(&io, 0, 1, r1, 0.4f, 1);
    /* a roi_count above the capacity names the image */
    ((int32_t *)io.rcount.data)[1] = DP + 1;
    assert_int_equal(det_run(&io, &p), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "roi_count[1]"));
    du_free_all();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proposals_hand),
        cmocka_unit_test(test_detect_boxes_hand),
    };
    return cmocka_run_group_tests(tests, du_setup, du_teardown);
}
