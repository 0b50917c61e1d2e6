/* One Faster R-CNN training step and one detection pass: see det_step.h. */
#include "harness/train/det_step.h"

#include <stdlib.h>
#include <string.h>

#include "harness/train/trainer_common.h"
#include "kernels/error.h"
#include "kernels/ops.h"

#define SMOOTH_L1_BETA (1.0f / 9.0f) /* torchvision's RPN and box head */
static const float box_std[4] = {0.1f, 0.1f, 0.2f, 0.2f};

static int upload_anchors(tb_det_step *s)
{
    const tb_detection_config *d = s->opt.det;
    float *host = malloc((size_t)tb_nbytes(&s->anchor_boxes));
    TB_CHECK(host != NULL, TB_ERR_NOMEM, "detection: out of memory for %lld anchors", (long long)s->anchors);
    tb_frcnn_anchors(host, s->net.feat_h, s->net.feat_w, s->net.stride, d->anchor_sizes.v, d->anchor_sizes.n,
                     d->anchor_ratios.v, d->anchor_ratios.n);
    int rc = tb_upload(s->be, &s->anchor_boxes, host);
    free(host);
    return rc;
}

static tb_proposal_params proposal_params(const tb_det_step *s, bool train);
static tb_rpn_target_params rpn_target_params(const tb_det_step *s, uint64_t seed);
static tb_roi_target_params roi_target_params(const tb_det_step *s, uint64_t seed);
static tb_detect_params detect_params(const tb_det_step *s);
static tb_tensor rows_of(const tb_tensor *t, int64_t first, int64_t rows);
static tb_tensor per_anchor(const tb_tensor *t, int m);

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

/* The box ops take their scratch from the backend's workspace: reserve the
 * most any of them needs, once, here (never inside a step). */
static int reserve_workspace(tb_det_step *s)
{
    tb_backend *be = s->be;
    tb_tensor logits = per_anchor(tb_graph_output_at(s->g, s->net.out_rpn_logits), 2);
    tb_tensor props = rows_of(&s->proposals, 0, (int64_t)s->opt.images * s->post_train);
    tb_rpn_target_params tp = rpn_target_params(s, 0);
    tb_proposal_params ptrain = proposal_params(s, true), ptest = proposal_params(s, false);
    tb_roi_target_params rp = roi_target_params(s, 0);
    tb_detect_params dp = detect_params(s);
    size_t need = tb_rpn_targets_workspace_size(be, &s->anchor_boxes, &s->gt_boxes, &tp);
    need = max_size(need, tb_rpn_proposals_workspace_size(be, &logits, &s->anchor_boxes, &ptrain));
    need = max_size(need, tb_rpn_proposals_workspace_size(be, &logits, &s->anchor_boxes, &ptest));
    need = max_size(need, tb_roi_targets_workspace_size(be, &props, &s->gt_boxes, &rp));
    need = max_size(need, tb_detect_boxes_workspace_size(be, &s->all_probs, &s->proposal_count, &dp));
    return tb_backend_reserve_workspace(be, need);
}

int tb_det_step_init(tb_det_step *s, tb_graph *g, const tb_frcnn *net, const tb_det_step_options *opt)
{
    memset(s, 0, sizeof *s);
    /* the loaders' images are f32 and go into the input as they are */
    TB_CHECK(tb_graph_dtype(g) == TB_F32, TB_ERR_UNSUPPORTED, "detection: only fp32 graphs are supported");
    s->be = tb_graph_backend(g);
    s->g = g;
    s->net = *net;
    s->opt = *opt;
    const tb_detection_config *d = opt->det;
    int n = opt->images, k = opt->classes, gmax = opt->max_objects;
    int a_per = d->anchor_sizes.n * d->anchor_ratios.n;
    s->anchors = (int64_t)net->feat_h * net->feat_w * a_per;
    s->post_train = d->rpn_post_nms_train;
    s->post_test = d->rpn_post_nms_test;
    s->post_cap = s->post_train > s->post_test ? s->post_train : s->post_test;
    s->rois_per_image = d->roi_batch;
    int64_t na = (int64_t)n * s->anchors, r = (int64_t)n * d->roi_batch, pt = (int64_t)n * s->post_test;
    int dmax = d->test_max_detections;
    s->anchor_boxes = tb_tensor_2d(NULL, TB_F32, s->anchors, 4);
    s->gt_boxes = tb_tensor_make(NULL, TB_F32, 3, (int64_t[]){n, gmax, 4});
    s->gt_labels = tb_tensor_2d(NULL, TB_I32, n, gmax);
    s->gt_count = tb_tensor_1d(NULL, TB_I32, n);
    s->im_size = tb_tensor_2d(NULL, TB_F32, n, 2);
    s->rpn_labels = tb_tensor_1d(NULL, TB_I32, na);
    s->rpn_targets = tb_tensor_2d(NULL, TB_F32, na, 4);
    s->rpn_weights = tb_tensor_2d(NULL, TB_F32, na, 4);
    s->rpn_probs = tb_tensor_2d(NULL, TB_F32, na, 2);
    s->proposals = tb_tensor_2d(NULL, TB_F32, (int64_t)n * s->post_cap, 5);
    s->proposal_count = tb_tensor_1d(NULL, TB_I32, n);
    s->roi_labels = tb_tensor_1d(NULL, TB_I32, r);
    s->roi_targets = tb_tensor_2d(NULL, TB_F32, r, 4 * k);
    s->roi_weights = tb_tensor_2d(NULL, TB_F32, r, 4 * k);
    s->cls_probs = tb_tensor_2d(NULL, TB_F32, r, k);
    s->losses = tb_tensor_1d(NULL, TB_F32, 4);
    s->all_probs = tb_tensor_2d(NULL, TB_F32, pt, k);
    s->all_deltas = tb_tensor_2d(NULL, tb_graph_dtype(g), pt, 4 * k);
    s->det_boxes = tb_tensor_make(NULL, TB_F32, 3, (int64_t[]){n, dmax, 4});
    s->det_scores = tb_tensor_2d(NULL, TB_F32, n, dmax);
    s->det_classes = tb_tensor_2d(NULL, TB_I32, n, dmax);
    s->det_count = tb_tensor_1d(NULL, TB_I32, n);
    tb_tensor *all[] = {&s->anchor_boxes, &s->gt_boxes, &s->gt_labels, &s->gt_count, &s->im_size,
                        &s->rpn_labels, &s->rpn_targets, &s->rpn_weights, &s->rpn_probs, &s->proposals,
                        &s->proposal_count, &s->roi_labels, &s->roi_targets, &s->roi_weights, &s->cls_probs,
                        &s->losses, &s->all_probs, &s->all_deltas, &s->det_boxes, &s->det_scores,
                        &s->det_classes, &s->det_count};
    TB_TRY(tb_trainer_alloc_tensors(s->be, &s->mem, all, (int)(sizeof all / sizeof all[0])));
    int rc = reserve_workspace(s);
    if (rc == TB_OK)
        rc = upload_anchors(s);
    if (rc != TB_OK) /* the caller destroys only a step that was set up */
        tb_det_step_destroy(s);
    return rc;
}

void tb_det_step_destroy(tb_det_step *s)
{
    if (s->be)
        tb_free(s->be, s->mem);
    s->mem = NULL;
}

/* ------------------------------------------------------------------ views */

/* Rows [first, first + rows) of a 2-D tensor. */
static tb_tensor rows_of(const tb_tensor *t, int64_t first, int64_t rows)
{
    int64_t cols = t->shape[t->ndim - 1];
    size_t row_bytes = (size_t)cols * tb_dtype_size(t->dtype);
    return tb_tensor_2d((char *)t->data + (size_t)first * row_bytes, t->dtype, rows, cols);
}

/* An NHWC head output {n, h, w, a*m} seen as {n*h*w*a, m}. */
static tb_tensor per_anchor(const tb_tensor *t, int m)
{
    return tb_tensor_2d(t->data, t->dtype, tb_numel(t) / m, m);
}

static tb_tensor loss_slot(tb_det_step *s, int i) { return tb_tensor_1d((float *)s->losses.data + i, TB_F32, 1); }

/* ------------------------------------------------------------- the step */

static int upload_batch(tb_det_step *s, const tb_det_host_batch *b)
{
    TB_TRY(tb_upload(s->be, &s->gt_boxes, b->gt_boxes));
    TB_TRY(tb_upload(s->be, &s->gt_labels, b->gt_labels));
    TB_TRY(tb_upload(s->be, &s->gt_count, b->gt_count));
    TB_TRY(tb_upload(s->be, &s->im_size, b->im_size));
    return tb_upload(s->be, tb_graph_input(s->g), b->images);
}

static tb_proposal_params proposal_params(const tb_det_step *s, bool train)
{
    const tb_detection_config *d = s->opt.det;
    return (tb_proposal_params){.pre_nms_topk = train ? d->rpn_pre_nms_train : d->rpn_pre_nms_test,
                                .post_nms_topk = train ? s->post_train : s->post_test,
                                .nms_iou = d->rpn_nms,
                                .min_size = d->rpn_min_size};
}

static int propose(tb_det_step *s, bool train, tb_tensor *props)
{
    tb_tensor logits = per_anchor(tb_graph_output_at(s->g, s->net.out_rpn_logits), 2);
    tb_tensor deltas = per_anchor(tb_graph_output_at(s->g, s->net.out_rpn_deltas), 4);
    tb_proposal_params pp = proposal_params(s, train);
    *props = rows_of(&s->proposals, 0, (int64_t)s->opt.images * pp.post_nms_topk);
    return tb_rpn_proposals(s->be, props, &s->proposal_count, &logits, &deltas, &s->anchor_boxes, &s->im_size,
                            &pp);
}

static tb_rpn_target_params rpn_target_params(const tb_det_step *s, uint64_t seed)
{
    const tb_detection_config *d = s->opt.det;
    return (tb_rpn_target_params){.pos_iou = d->rpn_pos_iou, .neg_iou = d->rpn_neg_iou,
                                  .samples_per_image = d->rpn_batch, .pos_fraction = d->rpn_pos_fraction,
                                  .seed = seed};
}

static tb_roi_target_params roi_target_params(const tb_det_step *s, uint64_t seed)
{
    const tb_detection_config *d = s->opt.det;
    tb_roi_target_params rp = {.rois_per_image = d->roi_batch, .pos_fraction = d->roi_pos_fraction,
                               .fg_iou = d->roi_fg_iou, .bg_iou_hi = d->roi_fg_iou,
                               .bg_iou_lo = d->roi_bg_iou_lo, .seed = seed};
    memcpy(rp.box_std, box_std, sizeof box_std);
    return rp;
}

static tb_detect_params detect_params(const tb_det_step *s)
{
    const tb_detection_config *d = s->opt.det;
    tb_detect_params dp = {.score_thresh = d->test_score, .nms_iou = d->test_nms,
                           .max_per_image = d->test_max_detections};
    memcpy(dp.box_std, box_std, sizeof box_std);
    return dp;
}

static int rpn_losses(tb_det_step *s, uint64_t seed)
{
    const tb_detection_config *d = s->opt.det;
    tb_rpn_target_params tp = rpn_target_params(s, seed);
    TB_TRY(tb_rpn_targets(s->be, &s->rpn_labels, &s->rpn_targets, &s->rpn_weights, &s->anchor_boxes, &s->gt_boxes,
                          &s->gt_count, &tp));
    tb_tensor logits = per_anchor(tb_graph_output_at(s->g, s->net.out_rpn_logits), 2);
    tb_tensor deltas = per_anchor(tb_graph_output_at(s->g, s->net.out_rpn_deltas), 4);
    tb_tensor l0 = loss_slot(s, 0), l1 = loss_slot(s, 1);
    TB_TRY(tb_softmax_ce_forward(s->be, &l0, &s->rpn_probs, &logits, &s->rpn_labels, NULL, 1.0f));
    return tb_smooth_l1_forward(s->be, &l1, &deltas, &s->rpn_targets, &s->rpn_weights, SMOOTH_L1_BETA,
                                (float)s->opt.images * (float)d->rpn_batch);
}

static int sample_rois(tb_det_step *s, const tb_tensor *props, uint64_t seed)
{
    tb_roi_target_params rp = roi_target_params(s, seed);
    tb_tensor *rois = tb_graph_value_tensor_mut(s->g, s->net.rois);
    return tb_roi_targets(s->be, rois, &s->roi_labels, &s->roi_targets, &s->roi_weights, props, &s->proposal_count,
                          &s->gt_boxes, &s->gt_labels, &s->gt_count, &rp);
}

static int head_losses(tb_det_step *s)
{
    tb_tensor *cls = tb_graph_output_at(s->g, s->net.out_cls), *box = tb_graph_output_at(s->g, s->net.out_box);
    tb_tensor l2 = loss_slot(s, 2), l3 = loss_slot(s, 3);
    TB_TRY(tb_softmax_ce_forward(s->be, &l2, &s->cls_probs, cls, &s->roi_labels, NULL, 1.0f));
    return tb_smooth_l1_forward(s->be, &l3, box, &s->roi_targets, &s->roi_weights, SMOOTH_L1_BETA,
                                (float)tb_numel(&s->roi_labels));
}

/* Output gradients of the four losses (weight 1 each), then the graph's backward. */
static int backward(tb_det_step *s)
{
    const tb_detection_config *d = s->opt.det;
    tb_graph *g = s->g;
    TB_TRY(tb_graph_zero_grads(g));
    tb_tensor dlogits = per_anchor(tb_graph_output_grad_at(g, s->net.out_rpn_logits), 2);
    tb_tensor ddeltas = per_anchor(tb_graph_output_grad_at(g, s->net.out_rpn_deltas), 4);
    tb_tensor deltas = per_anchor(tb_graph_output_at(g, s->net.out_rpn_deltas), 4);
    TB_TRY(tb_softmax_ce_backward(s->be, &dlogits, &s->rpn_probs, &s->rpn_labels, NULL, 1.0f, 1.0f));
    TB_TRY(tb_smooth_l1_backward(s->be, &ddeltas, &deltas, &s->rpn_targets, &s->rpn_weights, SMOOTH_L1_BETA,
                                 (float)s->opt.images * (float)d->rpn_batch, 1.0f));
    TB_TRY(tb_softmax_ce_backward(s->be, tb_graph_output_grad_at(g, s->net.out_cls), &s->cls_probs, &s->roi_labels,
                                  NULL, 1.0f, 1.0f));
    TB_TRY(tb_smooth_l1_backward(s->be, tb_graph_output_grad_at(g, s->net.out_box),
                                 tb_graph_output_at(g, s->net.out_box), &s->roi_targets, &s->roi_weights,
                                 SMOOTH_L1_BETA, (float)tb_numel(&s->roi_labels), 1.0f));
    return tb_graph_backward(g);
}

static int optimizer_step(tb_det_step *s, double lr)
{
    tb_sgd_params sp = {.lr = (float)lr, .momentum = (float)s->opt.momentum,
                        .weight_decay = (float)s->opt.weight_decay, .grad_scale = 1.0f,
                        .nesterov = s->opt.nesterov};
    return tb_trainer_sgd(s->g, &sp);
}

int tb_det_step_run(tb_det_step *s, const tb_det_host_batch *b, double lr, uint64_t seed, tb_det_step_result *out)
{
    TB_TRY(upload_batch(s, b));
    TB_TRY(tb_graph_forward_part(s->g, true, 0));
    /* two independent sampling streams: anchors and RoIs */
    TB_TRY(rpn_losses(s, seed));
    tb_tensor props;
    TB_TRY(propose(s, true, &props));
    TB_TRY(sample_rois(s, &props, seed ^ 0x726f6973ull));
    TB_TRY(tb_graph_forward_part(s->g, true, 1));
    TB_TRY(head_losses(s));
    TB_TRY(backward(s));
    TB_TRY(optimizer_step(s, lr));
    float host[4];
    TB_TRY(tb_download(s->be, host, &s->losses));
    out->rpn_cls = host[0];
    out->rpn_box = host[1];
    out->rcnn_cls = host[2];
    out->rcnn_box = host[3];
    out->loss = host[0] + host[1] + host[2] + host[3];
    return TB_OK;
}

/* ------------------------------------------------------------- detection */

/* Runs the box head over every proposal, a graph's worth of RoIs at a time:
 * with the head's BN frozen or in evaluation mode, RoIs are independent. */
static int score_proposals(tb_det_step *s, const tb_tensor *props)
{
    tb_graph *g = s->g;
    tb_tensor *rois = tb_graph_value_tensor_mut(g, s->net.rois);
    int64_t cap = rois->shape[0], total = props->shape[0];
    for (int64_t first = 0; first < total; first += cap) {
        int64_t len = total - first < cap ? total - first : cap;
        tb_tensor src = rows_of(props, first, len), dst = rows_of(rois, 0, len);
        if (len < cap)
            TB_TRY(tb_fill(s->be, rois, 0.0f));
        TB_TRY(tb_copy(s->be, &dst, &src));
        TB_TRY(tb_graph_forward_part(g, false, 1));
        tb_tensor cls = rows_of(tb_graph_output_at(g, s->net.out_cls), 0, len);
        tb_tensor box = rows_of(tb_graph_output_at(g, s->net.out_box), 0, len);
        tb_tensor probs = rows_of(&s->all_probs, first, len), deltas = rows_of(&s->all_deltas, first, len);
        TB_TRY(tb_softmax(s->be, &probs, &cls, 1.0f));
        TB_TRY(tb_copy(s->be, &deltas, &box));
    }
    return TB_OK;
}

int tb_det_step_detect(tb_det_step *s, const tb_det_host_batch *b, float *boxes, float *scores, int32_t *classes,
                       int32_t *count)
{
    TB_TRY(upload_batch(s, b));
    TB_TRY(tb_graph_forward_part(s->g, false, 0));
    tb_tensor props;
    TB_TRY(propose(s, false, &props));
    TB_TRY(score_proposals(s, &props));
    tb_detect_params dp = detect_params(s);
    TB_TRY(tb_detect_boxes(s->be, &s->det_boxes, &s->det_scores, &s->det_classes, &s->det_count, &s->all_probs,
                           &s->all_deltas, &props, &s->proposal_count, &s->im_size, &dp));
    TB_TRY(tb_download(s->be, boxes, &s->det_boxes));
    TB_TRY(tb_download(s->be, scores, &s->det_scores));
    TB_TRY(tb_download(s->be, classes, &s->det_classes));
    return tb_download(s->be, count, &s->det_count);
}
