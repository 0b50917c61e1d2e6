/* The front-ends of the detection ops and of the frozen BN backward: a
 * well-formed call succeeds, and a malformed one is TB_ERR_INVALID with a
 * message naming the op and the offending tensor's shape (one shape error
 * and one parameter error per op), before the backend runs. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "det_unit_util.h"
#include "kernels/error.h"
#include "kernels/ops.h"

static void expect_invalid(int line, int rc, const char *const *frags)
{
    if (rc != TB_ERR_INVALID)
        fail_msg("line %d: status %s, expected TB_ERR_INVALID (%s)", line, tb_status_name(rc),
                 rc == TB_OK ? "" : tb_errmsg());
    for (int i = 0; frags[i]; i++)
        if (!strstr(tb_errmsg(), frags[i]))
            fail_msg("line %d: message \"%s\" lacks \"%s\"", line, tb_errmsg(), frags[i]);
}

#define BAD(call, ...) expect_invalid(__LINE__, (call), (const char *const[]){__VA_ARGS__, NULL})
#define OK(call) du_ok((call), #call)

static void test_roi_align_errors(void **state)
{
    (void)state;
    tb_tensor x = du_new(TB_F32, 4, 1, 6, 6) /* {1,6,6,1} */, rois = du_new(TB_F32, 2, 2, 5, 1);
    tb_tensor y = du_new(TB_F32, 4, 2, 2, 2), y3 = du_new(TB_F32, 4, 2, 3, 2);
    tb_roi_align_params p = {2, 2, 0.5f, 0, true};
    du_reserve(tb_roi_align_workspace_size(du_be, &x, &rois, &p));
    OK(tb_roi_align_forward(du_be, &y, &x, &rois, &p));
    BAD(tb_roi_align_forward(du_be, &y3, &x, &rois, &p), "roi_align_forward", "y [2,3,2,1] f32", "{2,2,2,1}");
    p.spatial_scale = 0.0f;
    BAD(tb_roi_align_forward(du_be, &y, &x, &rois, &p), "roi_align_forward", "spatial_scale");
    p.spatial_scale = 0.5f;
    BAD(tb_roi_align_backward(du_be, &x, &y3, &rois, &p), "roi_align_backward", "dy [2,3,2,1] f32");
    du_free_all();
}

static void test_smooth_l1_errors(void **state)
{
    (void)state;
    tb_tensor pred = du_new(TB_F32, 2, 4, 4, 1), t = du_new(TB_F32, 2, 4, 4, 1), w = du_new(TB_F32, 2, 4, 4, 1);
    tb_tensor t3 = du_new(TB_F32, 2, 3, 4, 1), loss = du_new(TB_F32, 1, 1, 1, 1);
    OK(tb_smooth_l1_forward(du_be, &loss, &pred, &t, &w, 1.0f, 1.0f));
    BAD(tb_smooth_l1_forward(du_be, &loss, &pred, &t3, &w, 1.0f, 1.0f), "smooth_l1_forward", "target [3,4] f32",
        "element count");
    BAD(tb_smooth_l1_forward(du_be, &loss, &pred, &t, &w, 1.0f, 0.0f), "smooth_l1_forward", "norm");
    BAD(tb_smooth_l1_backward(du_be, &t3, &pred, &t, &w, 1.0f, 1.0f, 1.0f), "smooth_l1_backward", "dpred [3,4]");
    du_free_all();
}

static void test_batchnorm_eval_errors(void **state)
{
    (void)state;
    tb_tensor x = du_new(TB_F32, 2, 6, 4, 1), dx = du_new(TB_F32, 2, 6, 4, 1), dy = du_new(TB_F32, 2, 6, 4, 1);
    tb_tensor g = du_new(TB_F32, 1, 4, 1, 1), m = du_new(TB_F32, 1, 4, 1, 1), v = du_new(TB_F32, 1, 4, 1, 1);
    tb_tensor v3 = du_new(TB_F32, 1, 3, 1, 1);
    OK(tb_batchnorm_backward_eval(du_be, &dx, NULL, NULL, &dy, &x, &g, &m, &v, 1e-5f));
    BAD(tb_batchnorm_backward_eval(du_be, &dx, NULL, NULL, &dy, &x, &g, &m, &v3, 1e-5f), "batchnorm_backward_eval",
        "running_var [3] f32", "x [6,4] f32");
    BAD(tb_batchnorm_backward_eval(du_be, &dx, NULL, NULL, &dy, &x, &g, &m, &v, -1.0f), "batchnorm_backward_eval",
        "eps");
    du_free_all();
}

static void test_rpn_targets_errors(void **state)
{
    (void)state;
    tb_tensor labels = du_new(TB_I32, 1, 10, 1, 1), labels9 = du_new(TB_I32, 1, 9, 1, 1);
    tb_tensor targets = du_new(TB_F32, 2, 10, 4, 1), weights = du_new(TB_F32, 2, 10, 4, 1);
    tb_tensor anchors = du_new(TB_F32, 2, 5, 4, 1), gt = du_new(TB_F32, 3, 2, 3, 4), gc = du_new(TB_I32, 1, 2, 1, 1);
    tb_rpn_target_params p = {0.7f, 0.3f, 4, 0.5f, 1};
    du_reserve(tb_rpn_targets_workspace_size(du_be, &anchors, &gt, &p));
    OK(tb_rpn_targets(du_be, &labels, &targets, &weights, &anchors, &gt, &gc, &p));
    BAD(tb_rpn_targets(du_be, &labels9, &targets, &weights, &anchors, &gt, &gc, &p), "rpn_targets",
        "labels [9] i32", "{10}");
    p.neg_iou = 0.8f;
    BAD(tb_rpn_targets(du_be, &labels, &targets, &weights, &anchors, &gt, &gc, &p), "rpn_targets", "neg_iou");
    du_free_all();
}

static void test_rpn_proposals_errors(void **state)
{
    (void)state;
    tb_tensor rois = du_new(TB_F32, 2, 6, 5, 1), rois5 = du_new(TB_F32, 2, 5, 5, 1), cnt = du_new(TB_I32, 1, 2, 1, 1);
    tb_tensor logits = du_new(TB_F16, 2, 10, 2, 1), deltas = du_new(TB_F32, 2, 10, 4, 1);
    tb_tensor anchors = du_new(TB_F32, 2, 5, 4, 1), im = du_new(TB_F32, 2, 2, 2, 1);
    float *imv = du_f(&im);
    imv[0] = imv[1] = imv[2] = imv[3] = 50.0f;
    tb_proposal_params p = {4, 3, 0.7f, 0.0f};
    du_reserve(tb_rpn_proposals_workspace_size(du_be, &logits, &anchors, &p));
    OK(tb_rpn_proposals(du_be, &rois, &cnt, &logits, &deltas, &anchors, &im, &p));
    BAD(tb_rpn_proposals(du_be, &rois5, &cnt, &logits, &deltas, &anchors, &im, &p), "rpn_proposals",
        "rois [5,5] f32", "{6,5}");
    p.nms_iou = 1.5f;
    BAD(tb_rpn_proposals(du_be, &rois, &cnt, &logits, &deltas, &anchors, &im, &p), "rpn_proposals", "nms_iou");
    du_free_all();
}

static void test_roi_targets_errors(void **state)
{
    (void)state;
    tb_tensor rois = du_new(TB_F32, 2, 8, 5, 1), labels = du_new(TB_I32, 1, 8, 1, 1);
    tb_tensor targets = du_new(TB_F32, 2, 8, 12, 1), weights = du_new(TB_F32, 2, 8, 12, 1);
    tb_tensor t10 = du_new(TB_F32, 2, 8, 10, 1);
    tb_tensor props = du_new(TB_F32, 2, 6, 5, 1), pc = du_new(TB_I32, 1, 2, 1, 1);
    tb_tensor gt = du_new(TB_F32, 3, 2, 2, 4), gl = du_new(TB_I32, 2, 2, 2, 1), gc = du_new(TB_I32, 1, 2, 1, 1);
    tb_roi_target_params p = {4, 0.25f, 0.5f, 0.5f, 0.0f, {0.1f, 0.1f, 0.2f, 0.2f}, 3};
    du_reserve(tb_roi_targets_workspace_size(du_be, &props, &gt, &p));
    OK(tb_roi_targets(du_be, &rois, &labels, &targets, &weights, &props, &pc, &gt, &gl, &gc, &p));
    BAD(tb_roi_targets(du_be, &rois, &labels, &t10, &weights, &props, &pc, &gt, &gl, &gc, &p), "roi_targets",
        "targets [8,10] f32", "4 * classes");
    p.box_std[2] = 0.0f;
    BAD(tb_roi_targets(du_be, &rois, &labels, &targets, &weights, &props, &pc, &gt, &gl, &gc, &p), "roi_targets",
        "box_std");
    du_free_all();
}

static void test_detect_boxes_errors(void **state)
{
    (void)state;
    tb_tensor boxes = du_new(TB_F32, 3, 2, 5, 4), scores = du_new(TB_F32, 2, 2, 5, 1);
    tb_tensor classes = du_new(TB_I32, 2, 2, 5, 1), count = du_new(TB_I32, 1, 2, 1, 1);
    tb_tensor probs = du_new(TB_F32, 2, 6, 3, 1), deltas = du_new(TB_BF16, 2, 6, 12, 1);
    tb_tensor d8 = du_new(TB_F32, 2, 6, 8, 1), rois = du_new(TB_F32, 2, 6, 5, 1);
    tb_tensor rc = du_new(TB_I32, 1, 2, 1, 1), im = du_new(TB_F32, 2, 2, 2, 1);
    tb_detect_params p = {0.05f, 0.5f, 5, {0.1f, 0.1f, 0.2f, 0.2f}};
    du_reserve(tb_detect_boxes_workspace_size(du_be, &probs, &rc, &p));
    OK(tb_detect_boxes(du_be, &boxes, &scores, &classes, &count, &probs, &deltas, &rois, &rc, &im, &p));
    BAD(tb_detect_boxes(du_be, &boxes, &scores, &classes, &count, &probs, &d8, &rois, &rc, &im, &p), "detect_boxes",
        "deltas [6,8] f32", "{6,12}");
    p.max_per_image = 4; /* boxes hold 5 per image */
    BAD(tb_detect_boxes(du_be, &boxes, &scores, &classes, &count, &probs, &deltas, &rois, &rc, &im, &p),
        "detect_boxes", "boxes [2,5,4] f32");
    du_free_all();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roi_align_errors),
        cmocka_unit_test(test_smooth_l1_errors),
        cmocka_unit_test(test_batchnorm_eval_errors),
        cmocka_unit_test(test_rpn_targets_errors),
        cmocka_unit_test(test_rpn_proposals_errors),
        cmocka_unit_test(test_roi_targets_errors),
        cmocka_unit_test(test_detect_boxes_errors),
    };
    return cmocka_run_group_tests(tests, du_setup, du_teardown);
}
