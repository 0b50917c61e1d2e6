/* The CPU backend's op implementations: the reference for every other
 * backend. Prototypes are those of kernels/ops.h with a tb_cpu_ prefix; the
 * front-end has already validated shapes and dtypes. Fast paths keep a naive
 * twin (the *_naive functions) that the grad suite compares them against.
 */
#ifndef TB_CPU_OPS_H
#define TB_CPU_OPS_H

#include "kernels/backend.h"
#include "kernels/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* conv2d.c: oneDNN's convolution primitives (f32, one group: conv2d_onednn.c),
 * else im2col + sgemm and 1x1 convs as direct GEMMs, depthwise kernels */
int tb_cpu_conv2d_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *w,
                          const tb_tensor *bias, const tb_conv2d_params *p);
int tb_cpu_conv2d_backward_data(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *w,
                                const tb_conv2d_params *p);
int tb_cpu_conv2d_backward_filter(tb_backend *be, tb_tensor *dw, tb_tensor *dbias, const tb_tensor *dy,
                                  const tb_tensor *x, const tb_conv2d_params *p);
size_t tb_cpu_conv2d_workspace_size(tb_backend *be, const tb_tensor *y, const tb_tensor *x,
                                    const tb_tensor *w, const tb_conv2d_params *p, bool plan);
/* conv2d_naive.c: direct loops, the reference the fast path is tested against */
int tb_cpu_conv2d_forward_naive(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *w,
                                const tb_tensor *bias, const tb_conv2d_params *p);
int tb_cpu_conv2d_backward_data_naive(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *w,
                                      const tb_conv2d_params *p);
int tb_cpu_conv2d_backward_filter_naive(tb_backend *be, tb_tensor *dw, tb_tensor *dbias, const tb_tensor *dy,
                                        const tb_tensor *x, const tb_conv2d_params *p);

/* batchnorm.c */
int tb_cpu_batchnorm_forward_train(tb_backend *be, tb_tensor *y, tb_tensor *save_mean, tb_tensor *save_invstd,
                                   tb_tensor *running_mean, tb_tensor *running_var, const tb_tensor *x,
                                   const tb_tensor *gamma, const tb_tensor *beta, float momentum, float eps);
int tb_cpu_batchnorm_forward_eval(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *gamma,
                                  const tb_tensor *beta, const tb_tensor *running_mean,
                                  const tb_tensor *running_var, float eps);
int tb_cpu_batchnorm_backward(tb_backend *be, tb_tensor *dx, tb_tensor *dgamma, tb_tensor *dbeta,
                              const tb_tensor *dy, const tb_tensor *x, const tb_tensor *gamma,
                              const tb_tensor *save_mean, const tb_tensor *save_invstd);
int tb_cpu_batchnorm_backward_eval(tb_backend *be, tb_tensor *dx, tb_tensor *dgamma, tb_tensor *dbeta,
                                   const tb_tensor *dy, const tb_tensor *x, const tb_tensor *gamma,
                                   const tb_tensor *running_mean, const tb_tensor *running_var, float eps);
/* batchnorm.c's loops with the fused epilogue of batchnorm_relu.c: the
 * forward adds z (optional) and applies ReLU when relu is set; the backward
 * gates dy by gate_y > 0 (gate_y optional) and adds the gated dy to dz
 * (optional; stores it instead with dz_write). */
typedef struct tb_cpu_bn_epilogue {
    const tb_tensor *z;
    bool relu;
} tb_cpu_bn_epilogue;
int tb_cpu_bn_forward_train(tb_backend *be, tb_tensor *y, tb_tensor *save_mean, tb_tensor *save_invstd,
                            tb_tensor *running_mean, tb_tensor *running_var, const tb_tensor *x,
                            const tb_tensor *gamma, const tb_tensor *beta, float momentum, float eps,
                            tb_cpu_bn_epilogue ep);
int tb_cpu_bn_forward_eval(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *gamma,
                           const tb_tensor *beta, const tb_tensor *running_mean, const tb_tensor *running_var,
                           float eps, tb_cpu_bn_epilogue ep);
int tb_cpu_bn_backward(tb_backend *be, tb_tensor *dx, tb_tensor *dz, tb_tensor *dgamma, tb_tensor *dbeta,
                       const tb_tensor *dy, const tb_tensor *gate_y, const tb_tensor *x, const tb_tensor *gamma,
                       const tb_tensor *save_mean, const tb_tensor *save_invstd, bool dz_write);
/* batchnorm_relu.c */
int tb_cpu_batchnorm_relu_forward_train(tb_backend *be, tb_tensor *y, tb_tensor *save_mean, tb_tensor *save_invstd,
                                        tb_tensor *running_mean, tb_tensor *running_var, tb_tensor *reserve,
                                        const tb_tensor *x, const tb_tensor *z, const tb_tensor *gamma,
                                        const tb_tensor *beta, float momentum, float eps);
int tb_cpu_batchnorm_relu_forward_eval(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *z,
                                       const tb_tensor *gamma, const tb_tensor *beta,
                                       const tb_tensor *running_mean, const tb_tensor *running_var, float eps);
int tb_cpu_batchnorm_relu_backward(tb_backend *be, tb_tensor *dx, tb_tensor *dz, tb_tensor *dgamma,
                                   tb_tensor *dbeta, tb_tensor *reserve, const tb_tensor *dy, const tb_tensor *x,
                                   const tb_tensor *y, const tb_tensor *gamma, const tb_tensor *beta,
                                   const tb_tensor *save_mean, const tb_tensor *save_invstd, bool add,
                                   bool dz_write);
/* relu.c */
int tb_cpu_relu_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x);
int tb_cpu_relu_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *y);
/* maxpool.c, avgpool.c, global_avgpool.c */
int tb_cpu_maxpool_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_pool_params *p);
int tb_cpu_maxpool_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *y,
                            const tb_tensor *x, const tb_pool_params *p);
int tb_cpu_avgpool_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_pool_params *p);
int tb_cpu_avgpool_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_pool_params *p);
int tb_cpu_global_avgpool_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x);
int tb_cpu_global_avgpool_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy);
/* linear.c (sgemm) and its naive twin */
int tb_cpu_linear_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *w,
                          const tb_tensor *bias);
int tb_cpu_linear_backward(tb_backend *be, tb_tensor *dx, tb_tensor *dw, tb_tensor *dbias, const tb_tensor *dy,
                           const tb_tensor *x, const tb_tensor *w);
int tb_cpu_linear_forward_naive(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *w,
                                const tb_tensor *bias);
int tb_cpu_linear_backward_naive(tb_backend *be, tb_tensor *dx, tb_tensor *dw, tb_tensor *dbias,
                                 const tb_tensor *dy, const tb_tensor *x, const tb_tensor *w);
/* add.c, concat.c, dropout.c */
int tb_cpu_add_forward(tb_backend *be, tb_tensor *y, const tb_tensor *a, const tb_tensor *b);
int tb_cpu_add_backward(tb_backend *be, tb_tensor *da, tb_tensor *db, const tb_tensor *dy);
int tb_cpu_concat_forward(tb_backend *be, tb_tensor *y, const tb_tensor *const *xs, int count);
int tb_cpu_concat_backward(tb_backend *be, tb_tensor *const *dxs, int count, const tb_tensor *dy);
int tb_cpu_dropout_forward(tb_backend *be, tb_tensor *y, tb_tensor *mask, const tb_tensor *x, float p,
                           uint64_t seed, uint64_t salt, const tb_tensor *step);
int tb_cpu_dropout_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *mask, float p);
/* softmax_ce.c (+ soft targets, softmax) */
int tb_cpu_softmax_ce_forward(tb_backend *be, tb_tensor *loss, tb_tensor *probs, const tb_tensor *logits,
                              const tb_tensor *labels, const tb_tensor *targets, float temperature);
int tb_cpu_softmax_ce_backward(tb_backend *be, tb_tensor *dlogits, const tb_tensor *probs,
                               const tb_tensor *labels, const tb_tensor *targets, float temperature,
                               float scale, const tb_tensor *scale_t);
int tb_cpu_soft_targets(tb_backend *be, tb_tensor *targets, const tb_tensor *labels_a,
                        const tb_tensor *labels_b, const tb_tensor *lam, float eps);
int tb_cpu_softmax(tb_backend *be, tb_tensor *probs, const tb_tensor *logits, float temperature);
/* mix.c */
int tb_cpu_mixup_batch(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *lam);
int tb_cpu_cutmix_batch(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *box);
int tb_cpu_reverse_labels(tb_backend *be, tb_tensor *labels_b, const tb_tensor *labels);
/* argmax.c */
int tb_cpu_argmax(tb_backend *be, tb_tensor *index, const tb_tensor *x);
/* count_equal.c */
int tb_cpu_count_equal(tb_backend *be, tb_tensor *count, const tb_tensor *a, const tb_tensor *b);
/* elementwise.c */
int tb_cpu_fill(tb_backend *be, tb_tensor *t, float value);
int tb_cpu_copy(tb_backend *be, tb_tensor *dst, const tb_tensor *src);
int tb_cpu_convert(tb_backend *be, tb_tensor *dst, const tb_tensor *src);
int tb_cpu_axpby(tb_backend *be, tb_tensor *y, float alpha, const tb_tensor *x, float beta);
int tb_cpu_nonfinite_check(tb_backend *be, tb_tensor *flag, const tb_tensor *x);
int tb_cpu_sumsq(tb_backend *be, tb_tensor *out, const tb_tensor *x);
/* sgd.c */
int tb_cpu_sgd_step(tb_backend *be, tb_tensor *master, tb_tensor *model, tb_tensor *momentum_buf,
                    const tb_tensor *grad, const tb_tensor *decay_mask, const tb_tensor *skip,
                    const tb_sgd_params *p);

/* detection: roi_align.c, smooth_l1.c, rpn_targets.c, rpn_proposals.c,
 * roi_targets.c, detect_boxes.c (box helpers: box.h). Their scratch comes
 * from be->workspace, sized by the *_workspace_size functions. */
int tb_cpu_roi_align_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *rois,
                             const tb_roi_align_params *p);
int tb_cpu_roi_align_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *rois,
                              const tb_roi_align_params *p);
size_t tb_cpu_roi_align_workspace_size(tb_backend *be, const tb_tensor *x, const tb_tensor *rois,
                                       const tb_roi_align_params *p);
int tb_cpu_smooth_l1_forward(tb_backend *be, tb_tensor *loss, const tb_tensor *pred, const tb_tensor *target,
                             const tb_tensor *weights, float beta, float norm);
int tb_cpu_smooth_l1_backward(tb_backend *be, tb_tensor *dpred, const tb_tensor *pred, const tb_tensor *target,
                              const tb_tensor *weights, float beta, float norm, float scale);
int tb_cpu_rpn_targets(tb_backend *be, tb_tensor *labels, tb_tensor *targets, tb_tensor *weights,
                       const tb_tensor *anchors, const tb_tensor *gt_boxes, const tb_tensor *gt_count,
                       const tb_rpn_target_params *p);
size_t tb_cpu_rpn_targets_workspace_size(tb_backend *be, const tb_tensor *anchors, const tb_tensor *gt_boxes,
                                         const tb_rpn_target_params *p);
int tb_cpu_rpn_proposals(tb_backend *be, tb_tensor *rois, tb_tensor *roi_count, const tb_tensor *logits,
                         const tb_tensor *deltas, const tb_tensor *anchors, const tb_tensor *im_size,
                         const tb_proposal_params *p);
size_t tb_cpu_rpn_proposals_workspace_size(tb_backend *be, const tb_tensor *logits, const tb_tensor *anchors,
                                           const tb_proposal_params *p);
int tb_cpu_roi_targets(tb_backend *be, tb_tensor *rois, tb_tensor *labels, tb_tensor *targets, tb_tensor *weights,
                       const tb_tensor *proposals, const tb_tensor *proposal_count, const tb_tensor *gt_boxes,
                       const tb_tensor *gt_labels, const tb_tensor *gt_count, const tb_roi_target_params *p);
size_t tb_cpu_roi_targets_workspace_size(tb_backend *be, const tb_tensor *proposals, const tb_tensor *gt_boxes,
                                         const tb_roi_target_params *p);
int tb_cpu_detect_boxes(tb_backend *be, tb_tensor *boxes, tb_tensor *scores, tb_tensor *classes, tb_tensor *count,
                        const tb_tensor *probs, const tb_tensor *deltas, const tb_tensor *rois,
                        const tb_tensor *roi_count, const tb_tensor *im_size, const tb_detect_params *p);
size_t tb_cpu_detect_boxes_workspace_size(tb_backend *be, const tb_tensor *probs, const tb_tensor *roi_count,
                                          const tb_detect_params *p);

/* segmentation: resize_bilinear.c */
int tb_cpu_resize_bilinear_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x);
int tb_cpu_resize_bilinear_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy);

/* nms.c: greedy NMS over host boxes f32 {n, 4} (x1, y1, x2, y2) already in
 * descending score order: box i is kept unless an earlier kept box has IoU >
 * iou_thresh (in [0, 1]) with it. Writes the indices of the first max_keep
 * kept boxes to keep (ascending) and returns their number. The fast path
 * (structure of arrays, a vectorised inner loop, early stop) needs
 * tb_cpu_nms_scratch_size(n) bytes of 4-byte aligned scratch; the naive twin
 * (the textbook double loop, the reference of the unit tests) needs n bytes.
 * Both give identical results. */
size_t tb_cpu_nms_scratch_size(int64_t n);
int64_t tb_cpu_nms(int32_t *keep, const float *boxes, int64_t n, float iou_thresh, int64_t max_keep,
                   void *scratch);
int64_t tb_cpu_nms_naive(int32_t *keep, const float *boxes, int64_t n, float iou_thresh, int64_t max_keep,
                         unsigned char *suppressed);

#ifdef __cplusplus
}
#endif
#endif
