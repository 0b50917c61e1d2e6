/* Checked front-ends of the detection ops (kernels/ops.h, "detection").
 *
 * Shapes, dtypes and scalar parameters are checked here, as for every op
 * (kernels/ops_check.h): TB_ERR_INVALID names the op, the problem and every
 * tensor of the call. Values that live in tensors (image indices of RoIs,
 * counts, gt labels) may be on a device, so the backends check them.
 *
 * The batch size n is read from the per-image count (or im_size) tensor;
 * tensors of n * capacity rows must have a row count divisible by n, and the
 * capacity is the quotient (or the parameter that names it).
 *
 * Workspace: an op whose backend reports scratch (the *_workspace_size
 * queries; a NULL slot means none) checks, after its shapes, that the
 * backend's workspace holds it: it is reserved once at graph build, and a
 * smaller one is TB_ERR_INVALID naming the op and the bytes, never a
 * reallocation. The queries return 0 for arguments the op would refuse.
 */
#include <math.h>
#include <stdio.h>

#include "kernels/backend.h"
#include "kernels/error.h"
#include "kernels/ops.h"
#include "kernels/ops_check.h"

/* ------------------------------------------------------------- workspace */

/* t is given with ndim positive dims: the queries read nothing else. */
static bool dims_ok(const tb_tensor *t, int ndim)
{
    if (!t || t->ndim != ndim)
        return false;
    for (int i = 0; i < ndim; i++)
        if (t->shape[i] <= 0)
            return false;
    return true;
}

/* ------------------------------------------------------------- roi_align */

static int roi_align_params_ok(const vcall *v, const tb_roi_align_params *p)
{
    if (!p)
        return vc_fail(v, "roi_align parameters are missing");
    if (p->pooled_h < 1 || p->pooled_w < 1)
        return vc_fail(v, "pooled size %dx%d must be positive", p->pooled_h, p->pooled_w);
    if (!(p->spatial_scale > 0.0f) || !isfinite(p->spatial_scale))
        return vc_fail(v, "spatial_scale %g must be positive and finite", (double)p->spatial_scale);
    if (p->sampling_ratio > 1024) /* the backends bound the adaptive grid alike */
        return vc_fail(v, "sampling_ratio %d is above 1024 samples per bin axis", p->sampling_ratio);
    return TB_OK;
}

/* feat (x or dx) is NHWC float, rois f32 {r,5}, pooled (y or dy) {r,ph,pw,c} of feat's dtype. */
static int roi_align_shapes(const vcall *v, const char *fn, const tb_tensor *feat, const char *pn,
                            const tb_tensor *pooled, const tb_tensor *rois, const tb_roi_align_params *p)
{
    TB_TRY(roi_align_params_ok(v, p));
    TB_TRY(need_float(v, fn, feat));
    TB_TRY(need_ndim(v, fn, feat, 4, "NHWC"));
    TB_TRY(need_dtype(v, "rois", rois, TB_F32));
    if (rois->ndim != 2 || rois->shape[1] != 5)
        return vc_fail(v, "rois %s must be {r,5}: (image, x1, y1, x2, y2)", SHP(rois));
    TB_TRY(need(v, pn, pooled));
    if (pooled->ndim != 4 || pooled->shape[0] != rois->shape[0] || pooled->shape[1] != p->pooled_h ||
        pooled->shape[2] != p->pooled_w || pooled->shape[3] != feat->shape[3])
        return vc_fail(v, "%s %s must be {%lld,%d,%d,%lld} (RoIs, pooled size, channels of %s)", pn, SHP(pooled),
                       (long long)rois->shape[0], p->pooled_h, p->pooled_w, (long long)feat->shape[3], fn);
    if (pooled->dtype != feat->dtype)
        return vc_fail(v, "%s %s and %s %s differ in dtype", fn, SHP(feat), pn, SHP(pooled));
    return TB_OK;
}

int tb_roi_align_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *rois,
                         const tb_roi_align_params *p)
{
    vcall v = vc_make(tb_op_name(TB_OP_ROI_ALIGN_FORWARD));
    vc_add(&v, "y", y), vc_add(&v, "x", x), vc_add(&v, "rois", rois);
    TB_TRY(roi_align_shapes(&v, "x", x, "y", y, rois, p));
    TB_TRY(no_overlap(&v, "y", y, "x", x));
    TB_TRY(need_workspace(&v, be, tb_roi_align_workspace_size(be, x, rois, p), "tb_roi_align_workspace_size"));
    DISPATCH(TB_OP_ROI_ALIGN_FORWARD, roi_align_forward, x->dtype, y, x, rois, p);
}

int tb_roi_align_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *rois,
                          const tb_roi_align_params *p)
{
    vcall v = vc_make(tb_op_name(TB_OP_ROI_ALIGN_BACKWARD));
    vc_add(&v, "dx", dx), vc_add(&v, "dy", dy), vc_add(&v, "rois", rois);
    TB_TRY(roi_align_shapes(&v, "dx", dx, "dy", dy, rois, p));
    TB_TRY(no_overlap(&v, "dx", dx, "dy", dy));
    TB_TRY(need_workspace(&v, be, tb_roi_align_workspace_size(be, dx, rois, p), "tb_roi_align_workspace_size"));
    DISPATCH(TB_OP_ROI_ALIGN_BACKWARD, roi_align_backward, dx->dtype, dx, dy, rois, p);
}

size_t tb_roi_align_workspace_size(tb_backend *be, const tb_tensor *x, const tb_tensor *rois,
                                   const tb_roi_align_params *p)
{
    if (!be || !be->iface.roi_align_workspace_size || !dims_ok(x, 4) || !tb_dtype_is_float(x->dtype) ||
        !dims_ok(rois, 2) || !p)
        return 0;
    return be->iface.roi_align_workspace_size(be, x, rois, p);
}

/* ------------------------------------------------------------- smooth L1 */

static int smooth_l1_inputs(const vcall *v, const tb_tensor *pred, const tb_tensor *target,
                            const tb_tensor *weights, float beta, float norm)
{
    TB_TRY(need_float(v, "pred", pred));
    TB_TRY(need_dtype(v, "target", target, TB_F32));
    TB_TRY(need_same_numel(v, "target", target, "pred", pred));
    TB_TRY(need_dtype(v, "weights", weights, TB_F32));
    TB_TRY(need_same_numel(v, "weights", weights, "pred", pred));
    if (!(beta >= 0.0f) || !isfinite(beta))
        return vc_fail(v, "beta %g must be finite and >= 0", (double)beta);
    if (!(norm > 0.0f) || !isfinite(norm))
        return vc_fail(v, "norm %g must be positive and finite", (double)norm);
    return TB_OK;
}

int tb_smooth_l1_forward(tb_backend *be, tb_tensor *loss, const tb_tensor *pred, const tb_tensor *target,
                         const tb_tensor *weights, float beta, float norm)
{
    vcall v = vc_make(tb_op_name(TB_OP_SMOOTH_L1_FORWARD));
    vc_add(&v, "loss", loss), vc_add(&v, "pred", pred), vc_add(&v, "target", target);
    vc_add(&v, "weights", weights);
    TB_TRY(smooth_l1_inputs(&v, pred, target, weights, beta, norm));
    TB_TRY(need_vec(&v, "loss", loss, TB_F32, 1, "a scalar"));
    DISPATCH(TB_OP_SMOOTH_L1_FORWARD, smooth_l1_forward, pred->dtype, loss, pred, target, weights, beta, norm);
}

int tb_smooth_l1_backward(tb_backend *be, tb_tensor *dpred, const tb_tensor *pred, const tb_tensor *target,
                          const tb_tensor *weights, float beta, float norm, float scale)
{
    vcall v = vc_make(tb_op_name(TB_OP_SMOOTH_L1_BACKWARD));
    vc_add(&v, "dpred", dpred), vc_add(&v, "pred", pred), vc_add(&v, "target", target);
    vc_add(&v, "weights", weights);
    TB_TRY(smooth_l1_inputs(&v, pred, target, weights, beta, norm));
    TB_TRY(need_like(&v, "dpred", dpred, "pred", pred));
    if (!isfinite(scale))
        return vc_fail(&v, "scale %g must be finite", (double)scale);
    DISPATCH(TB_OP_SMOOTH_L1_BACKWARD, smooth_l1_backward, pred->dtype, dpred, pred, target, weights, beta, norm,
             scale);
}

/* ------------------------------------------------------- shared shapes */

/* t is {rows, cols} of dtype dt (dt < 0: any float dtype), rows a multiple of
 * n; *per (optional) gets rows / n. */
static int need_rows_of(const vcall *v, const char *name, const tb_tensor *t, int dt, int64_t n, int64_t cols,
                        int64_t *per)
{
    TB_TRY(dt < 0 ? need_float(v, name, t) : need_dtype(v, name, t, (tb_dtype)dt));
    if (t->ndim != 2 || t->shape[1] != cols || t->shape[0] % n != 0)
        return vc_fail(v, "%s %s must be {n * rows per image, %lld} with n = %lld images", name, SHP(t),
                       (long long)cols, (long long)n);
    if (per)
        *per = t->shape[0] / n;
    return TB_OK;
}

/* An IoU threshold in [0, 1]. */
static int iou_ok(const vcall *v, const char *name, float t)
{
    if (!(t >= 0.0f && t <= 1.0f))
        return vc_fail(v, "%s %g is outside [0, 1]", name, (double)t);
    return TB_OK;
}

static int fraction_ok(const vcall *v, float f)
{
    if (!(f >= 0.0f && f <= 1.0f))
        return vc_fail(v, "pos_fraction %g is outside [0, 1]", (double)f);
    return TB_OK;
}

static int box_std_ok(const vcall *v, const float *std)
{
    for (int i = 0; i < 4; i++)
        if (!(std[i] > 0.0f) || !isfinite(std[i]))
            return vc_fail(v, "box_std (%g, %g, %g, %g) must be positive and finite", (double)std[0], (double)std[1],
                           (double)std[2], (double)std[3]);
    return TB_OK;
}

/* gt_boxes f32 {n,g,4} and gt_count i32 {n}; *g gets the gt capacity. */
static int gt_shapes(const vcall *v, const tb_tensor *gt_boxes, const tb_tensor *gt_count, int64_t *g)
{
    TB_TRY(need_dtype(v, "gt_count", gt_count, TB_I32));
    TB_TRY(need_ndim(v, "gt_count", gt_count, 1, "{n}"));
    TB_TRY(need_dtype(v, "gt_boxes", gt_boxes, TB_F32));
    if (gt_boxes->ndim != 3 || gt_boxes->shape[0] != gt_count->shape[0] || gt_boxes->shape[2] != 4)
        return vc_fail(v, "gt_boxes %s must be {%lld,g,4} (images of gt_count)", SHP(gt_boxes),
                       (long long)gt_count->shape[0]);
    *g = gt_boxes->shape[1];
    return TB_OK;
}

/* ---------------------------------------------------------- rpn_targets */

static int rpn_target_params_ok(const vcall *v, const tb_rpn_target_params *p)
{
    if (!p)
        return vc_fail(v, "rpn target parameters are missing");
    TB_TRY(iou_ok(v, "pos_iou", p->pos_iou));
    TB_TRY(iou_ok(v, "neg_iou", p->neg_iou));
    if (p->neg_iou > p->pos_iou)
        return vc_fail(v, "neg_iou %g is above pos_iou %g", (double)p->neg_iou, (double)p->pos_iou);
    if (p->samples_per_image < 1)
        return vc_fail(v, "samples_per_image %d must be positive", p->samples_per_image);
    return fraction_ok(v, p->pos_fraction);
}

int tb_rpn_targets(tb_backend *be, tb_tensor *labels, tb_tensor *targets, tb_tensor *weights,
                   const tb_tensor *anchors, const tb_tensor *gt_boxes, const tb_tensor *gt_count,
                   const tb_rpn_target_params *p)
{
    vcall v = vc_make(tb_op_name(TB_OP_RPN_TARGETS));
    vc_add(&v, "labels", labels), vc_add(&v, "targets", targets), vc_add(&v, "weights", weights);
    vc_add(&v, "anchors", anchors), vc_add(&v, "gt_boxes", gt_boxes), vc_add(&v, "gt_count", gt_count);
    TB_TRY(rpn_target_params_ok(&v, p));
    int64_t g;
    TB_TRY(gt_shapes(&v, gt_boxes, gt_count, &g));
    TB_TRY(need_dtype(&v, "anchors", anchors, TB_F32));
    if (anchors->ndim != 2 || anchors->shape[1] != 4)
        return vc_fail(&v, "anchors %s must be {a,4}", SHP(anchors));
    int64_t rows = gt_count->shape[0] * anchors->shape[0];
    TB_TRY(need_vec(&v, "labels", labels, TB_I32, rows, "images x anchors"));
    TB_TRY(need_mat(&v, "targets", targets, TB_F32, rows, 4));
    TB_TRY(need_mat(&v, "weights", weights, TB_F32, rows, 4));
    TB_TRY(need_workspace(&v, be, tb_rpn_targets_workspace_size(be, anchors, gt_boxes, p),
                          "tb_rpn_targets_workspace_size"));
    DISPATCH(TB_OP_RPN_TARGETS, rpn_targets, TB_DTYPE_COUNT, labels, targets, weights, anchors, gt_boxes, gt_count,
             p);
}

size_t tb_rpn_targets_workspace_size(tb_backend *be, const tb_tensor *anchors, const tb_tensor *gt_boxes,
                                     const tb_rpn_target_params *p)
{
    if (!be || !be->iface.rpn_targets_workspace_size || !dims_ok(anchors, 2) || !dims_ok(gt_boxes, 3) || !p)
        return 0;
    return be->iface.rpn_targets_workspace_size(be, anchors, gt_boxes, p);
}

/* -------------------------------------------------------- rpn_proposals */

static int proposal_params_ok(const vcall *v, const tb_proposal_params *p)
{
    if (!p)
        return vc_fail(v, "proposal parameters are missing");
    if (p->pre_nms_topk < 1 || p->post_nms_topk < 1)
        return vc_fail(v, "pre_nms_topk %d and post_nms_topk %d must be positive", p->pre_nms_topk,
                       p->post_nms_topk);
    TB_TRY(iou_ok(v, "nms_iou", p->nms_iou));
    if (!(p->min_size >= 0.0f) || !isfinite(p->min_size))
        return vc_fail(v, "min_size %g must be finite and >= 0", (double)p->min_size);
    return TB_OK;
}

int tb_rpn_proposals(tb_backend *be, tb_tensor *rois, tb_tensor *roi_count, const tb_tensor *logits,
                     const tb_tensor *deltas, const tb_tensor *anchors, const tb_tensor *im_size,
                     const tb_proposal_params *p)
{
    vcall v = vc_make(tb_op_name(TB_OP_RPN_PROPOSALS));
    vc_add(&v, "rois", rois), vc_add(&v, "roi_count", roi_count), vc_add(&v, "logits", logits);
    vc_add(&v, "deltas", deltas), vc_add(&v, "anchors", anchors), vc_add(&v, "im_size", im_size);
    TB_TRY(proposal_params_ok(&v, p));
    TB_TRY(need_dtype(&v, "im_size", im_size, TB_F32));
    if (im_size->ndim != 2 || im_size->shape[1] != 2)
        return vc_fail(&v, "im_size %s must be {n,2}: (height, width) per image", SHP(im_size));
    int64_t n = im_size->shape[0];
    TB_TRY(need_dtype(&v, "anchors", anchors, TB_F32));
    if (anchors->ndim != 2 || anchors->shape[1] != 4)
        return vc_fail(&v, "anchors %s must be {a,4}", SHP(anchors));
    int64_t rows = n * anchors->shape[0];
    TB_TRY(need_mat(&v, "logits", logits, -1, rows, 2));
    TB_TRY(need_mat(&v, "deltas", deltas, -1, rows, 4));
    TB_TRY(need_mat(&v, "rois", rois, TB_F32, n * p->post_nms_topk, 5));
    TB_TRY(need_vec(&v, "roi_count", roi_count, TB_I32, n, "images of im_size"));
    TB_TRY(need_backend(be, TB_OP_RPN_PROPOSALS, be && be->iface.rpn_proposals != NULL, deltas->dtype));
    TB_TRY(need_workspace(&v, be, tb_rpn_proposals_workspace_size(be, logits, anchors, p),
                          "tb_rpn_proposals_workspace_size"));
    DISPATCH(TB_OP_RPN_PROPOSALS, rpn_proposals, logits->dtype, rois, roi_count, logits, deltas, anchors, im_size,
             p);
}

size_t tb_rpn_proposals_workspace_size(tb_backend *be, const tb_tensor *logits, const tb_tensor *anchors,
                                       const tb_proposal_params *p)
{
    if (!be || !be->iface.rpn_proposals_workspace_size || !dims_ok(logits, 2) || !dims_ok(anchors, 2) || !p ||
        p->pre_nms_topk < 1 || logits->shape[0] % anchors->shape[0] != 0)
        return 0;
    return be->iface.rpn_proposals_workspace_size(be, logits, anchors, p);
}

/* ---------------------------------------------------------- roi_targets */

static int roi_target_params_ok(const vcall *v, const tb_roi_target_params *p)
{
    if (!p)
        return vc_fail(v, "roi target parameters are missing");
    if (p->rois_per_image < 1)
        return vc_fail(v, "rois_per_image %d must be positive", p->rois_per_image);
    TB_TRY(fraction_ok(v, p->pos_fraction));
    TB_TRY(iou_ok(v, "fg_iou", p->fg_iou));
    TB_TRY(iou_ok(v, "bg_iou_lo", p->bg_iou_lo));
    TB_TRY(iou_ok(v, "bg_iou_hi", p->bg_iou_hi));
    if (p->bg_iou_lo > p->bg_iou_hi)
        return vc_fail(v, "bg_iou_lo %g is above bg_iou_hi %g", (double)p->bg_iou_lo, (double)p->bg_iou_hi);
    return box_std_ok(v, p->box_std);
}

int tb_roi_targets(tb_backend *be, tb_tensor *rois, tb_tensor *labels, tb_tensor *targets, tb_tensor *weights,
                   const tb_tensor *proposals, const tb_tensor *proposal_count, const tb_tensor *gt_boxes,
                   const tb_tensor *gt_labels, const tb_tensor *gt_count, const tb_roi_target_params *p)
{
    vcall v = vc_make(tb_op_name(TB_OP_ROI_TARGETS));
    vc_add(&v, "rois", rois), vc_add(&v, "labels", labels), vc_add(&v, "targets", targets);
    vc_add(&v, "weights", weights), vc_add(&v, "proposals", proposals), vc_add(&v, "proposal_count", proposal_count);
    vc_add(&v, "gt_boxes", gt_boxes), vc_add(&v, "gt_labels", gt_labels), vc_add(&v, "gt_count", gt_count);
    TB_TRY(roi_target_params_ok(&v, p));
    int64_t g;
    TB_TRY(gt_shapes(&v, gt_boxes, gt_count, &g));
    int64_t n = gt_count->shape[0], rows = n * p->rois_per_image;
    TB_TRY(need_dtype(&v, "gt_labels", gt_labels, TB_I32));
    if (gt_labels->ndim != 2 || gt_labels->shape[0] != n || gt_labels->shape[1] != g)
        return vc_fail(&v, "gt_labels %s must be {%lld,%lld} (the first two dims of gt_boxes)", SHP(gt_labels),
                       (long long)n, (long long)g);
    TB_TRY(need_rows_of(&v, "proposals", proposals, TB_F32, n, 5, NULL));
    TB_TRY(need_vec(&v, "proposal_count", proposal_count, TB_I32, n, "images of gt_count"));
    TB_TRY(need_mat(&v, "rois", rois, TB_F32, rows, 5));
    TB_TRY(need_vec(&v, "labels", labels, TB_I32, rows, "images x rois_per_image"));
    TB_TRY(need_dtype(&v, "targets", targets, TB_F32));
    if (targets->ndim != 2 || targets->shape[0] != rows || targets->shape[1] % 4 != 0 || targets->shape[1] < 8)
        return vc_fail(&v, "targets %s must be {%lld, 4 * classes} with classes >= 2 (background included)",
                       SHP(targets), (long long)rows);
    TB_TRY(need_like(&v, "weights", weights, "targets", targets));
    /* candidate keys b * (P + G) + i must stay in 32-bit indices */
    if (proposals->shape[0] + n * g > INT32_MAX)
        return vc_fail(&v, "more than 2^31 candidates");
    TB_TRY(need_workspace(&v, be, tb_roi_targets_workspace_size(be, proposals, gt_boxes, p),
                          "tb_roi_targets_workspace_size"));
    DISPATCH(TB_OP_ROI_TARGETS, roi_targets, TB_DTYPE_COUNT, rois, labels, targets, weights, proposals,
             proposal_count, gt_boxes, gt_labels, gt_count, p);
}

size_t tb_roi_targets_workspace_size(tb_backend *be, const tb_tensor *proposals, const tb_tensor *gt_boxes,
                                     const tb_roi_target_params *p)
{
    if (!be || !be->iface.roi_targets_workspace_size || !dims_ok(proposals, 2) || !dims_ok(gt_boxes, 3) || !p ||
        proposals->shape[0] % gt_boxes->shape[0] != 0)
        return 0;
    return be->iface.roi_targets_workspace_size(be, proposals, gt_boxes, p);
}

/* --------------------------------------------------------- detect_boxes */

static int detect_params_ok(const vcall *v, const tb_detect_params *p)
{
    if (!p)
        return vc_fail(v, "detection parameters are missing");
    if (!isfinite(p->score_thresh))
        return vc_fail(v, "score_thresh %g must be finite", (double)p->score_thresh);
    TB_TRY(iou_ok(v, "nms_iou", p->nms_iou));
    if (p->max_per_image < 1)
        return vc_fail(v, "max_per_image %d must be positive", p->max_per_image);
    return box_std_ok(v, p->box_std);
}

int tb_detect_boxes(tb_backend *be, tb_tensor *boxes, tb_tensor *scores, tb_tensor *classes, tb_tensor *count,
                    const tb_tensor *probs, const tb_tensor *deltas, const tb_tensor *rois,
                    const tb_tensor *roi_count, const tb_tensor *im_size, const tb_detect_params *p)
{
    vcall v = vc_make(tb_op_name(TB_OP_DETECT_BOXES));
    vc_add(&v, "boxes", boxes), vc_add(&v, "scores", scores), vc_add(&v, "classes", classes);
    vc_add(&v, "count", count), vc_add(&v, "probs", probs), vc_add(&v, "deltas", deltas), vc_add(&v, "rois", rois);
    vc_add(&v, "roi_count", roi_count), vc_add(&v, "im_size", im_size);
    TB_TRY(detect_params_ok(&v, p));
    TB_TRY(need_dtype(&v, "roi_count", roi_count, TB_I32));
    TB_TRY(need_ndim(&v, "roi_count", roi_count, 1, "{n}"));
    int64_t n = roi_count->shape[0], d = p->max_per_image, per = 0;
    TB_TRY(need_mat(&v, "im_size", im_size, TB_F32, n, 2));
    TB_TRY(need_rows_of(&v, "rois", rois, TB_F32, n, 5, &per));
    TB_TRY(need_dtype(&v, "probs", probs, TB_F32));
    if (probs->ndim != 2 || probs->shape[0] != rois->shape[0] || probs->shape[1] < 2)
        return vc_fail(&v, "probs %s must be {%lld, classes} with classes >= 2 (background included)", SHP(probs),
                       (long long)rois->shape[0]);
    int64_t nc = probs->shape[1];
    TB_TRY(need_mat(&v, "deltas", deltas, -1, rois->shape[0], 4 * nc));
    if (nc * per > INT32_MAX) /* class * P + RoI indices are 32-bit */
        return vc_fail(&v, "classes x RoIs per image exceeds 2^31");
    TB_TRY(need_dtype(&v, "boxes", boxes, TB_F32));
    if (boxes->ndim != 3 || boxes->shape[0] != n || boxes->shape[1] != d || boxes->shape[2] != 4)
        return vc_fail(&v, "boxes %s must be {%lld,%lld,4} (images, max_per_image)", SHP(boxes), (long long)n,
                       (long long)d);
    TB_TRY(need_mat(&v, "scores", scores, TB_F32, n, d));
    TB_TRY(need_mat(&v, "classes", classes, TB_I32, n, d));
    TB_TRY(need_vec(&v, "count", count, TB_I32, n, "images of roi_count"));
    TB_TRY(need_workspace(&v, be, tb_detect_boxes_workspace_size(be, probs, roi_count, p),
                          "tb_detect_boxes_workspace_size"));
    DISPATCH(TB_OP_DETECT_BOXES, detect_boxes, deltas->dtype, boxes, scores, classes, count, probs, deltas, rois,
             roi_count, im_size, p);
}

size_t tb_detect_boxes_workspace_size(tb_backend *be, const tb_tensor *probs, const tb_tensor *roi_count,
                                      const tb_detect_params *p)
{
    if (!be || !be->iface.detect_boxes_workspace_size || !dims_ok(probs, 2) || probs->shape[1] < 2 ||
        !dims_ok(roi_count, 1) || !p || p->max_per_image < 1 || probs->shape[0] % roi_count->shape[0] != 0)
        return 0;
    return be->iface.detect_boxes_workspace_size(be, probs, roi_count, p);
}
