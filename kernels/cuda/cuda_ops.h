/* The CUDA backend's op implementations and options.
 *
 * Prototypes are those of kernels/ops.h with a tb_cuda_ prefix (the front-end
 * has validated shapes and dtypes); every tensor lives in device memory of
 * the backend. All work is queued on the backend's one stream: no op
 * allocates device memory or waits for the device, so a training step can be
 * captured as a CUDA graph. Scratch comes from be->workspace (convolutions,
 * the box-level detection ops) or from small buffers made when the backend
 * is created (reductions).
 *
 * This header is plain C (the tests include it); the backend's private
 * context is in kernels/cuda/cuda_context.h (C++ only).
 */
#ifndef TB_CUDA_OPS_H
#define TB_CUDA_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h"
#include "kernels/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Numerics and algorithm-search options of a CUDA backend. */
typedef struct tb_cuda_options {
    /* f32 convolutions and GEMMs may use TF32 tensor cores (PyTorch's
     * default for cuDNN convolutions, torch.backends.cudnn.allow_tf32). */
    bool allow_tf32;
    /* Only deterministic cuDNN algorithms (no atomics in backward passes). */
    bool deterministic;
    /* tb_conv2d_workspace_size times the candidate algorithms on the device
     * (cudnnFind*AlgorithmEx, like torch.backends.cudnn.benchmark) instead of
     * taking cuDNN's heuristic choice. Only at graph build, never in a step. */
    bool find_algorithms;
    /* Upper bound on the workspace one convolution may ask for (bytes). */
    size_t conv_workspace_limit;
    /* Training BatchNorm of 4-D tensors with CUDNN_BATCHNORM_SPATIAL_PERSISTENT
     * (cuDNN's fast NHWC kernels) instead of CUDNN_BATCHNORM_SPATIAL. */
    bool batchnorm_persistent;
} tb_cuda_options;

/* Defaults: TF32 allowed, non-deterministic algorithms allowed, algorithm
 * search on, 1 GiB workspace limit, persistent BatchNorm. */
void tb_cuda_default_options(tb_cuda_options *opt);
/* Changes the options; forgets every cached convolution plan, so call it
 * before building a graph. be must be a CUDA backend. */
int tb_cuda_set_options(tb_backend *be, const tb_cuda_options *opt);
int tb_cuda_get_options(tb_backend *be, tb_cuda_options *opt);

/* conv2d.cu (plans in conv2d_plan.cu) */
int tb_cuda_conv2d_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *w,
                           const tb_tensor *bias, const tb_conv2d_params *p);
int tb_cuda_conv2d_backward_data(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *w,
                                 const tb_conv2d_params *p);
int tb_cuda_conv2d_backward_filter(tb_backend *be, tb_tensor *dw, tb_tensor *dbias, const tb_tensor *dy,
                                   const tb_tensor *x, const tb_conv2d_params *p);
size_t tb_cuda_conv2d_workspace_size(tb_backend *be, const tb_tensor *y, const tb_tensor *x,
                                     const tb_tensor *w, const tb_conv2d_params *p, bool plan);
/* batchnorm.cu */
int tb_cuda_batchnorm_forward_train(tb_backend *be, tb_tensor *y, tb_tensor *save_mean, tb_tensor *save_invstd,
                                    tb_tensor *running_mean, tb_tensor *running_var, const tb_tensor *x,
                                    const tb_tensor *gamma, const tb_tensor *beta, float momentum, float eps);
int tb_cuda_batchnorm_forward_eval(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *gamma,
                                   const tb_tensor *beta, const tb_tensor *running_mean,
                                   const tb_tensor *running_var, float eps);
int tb_cuda_batchnorm_backward(tb_backend *be, tb_tensor *dx, tb_tensor *dgamma, tb_tensor *dbeta,
                               const tb_tensor *dy, const tb_tensor *x, const tb_tensor *gamma,
                               const tb_tensor *save_mean, const tb_tensor *save_invstd);
int tb_cuda_batchnorm_backward_eval(tb_backend *be, tb_tensor *dx, tb_tensor *dgamma, tb_tensor *dbeta,
                                    const tb_tensor *dy, const tb_tensor *x, const tb_tensor *gamma,
                                    const tb_tensor *running_mean, const tb_tensor *running_var, float eps);
/* batchnorm_relu.cu */
size_t tb_cuda_batchnorm_relu_reserve_size(tb_backend *be, const tb_tensor *x, bool add);
size_t tb_cuda_batchnorm_relu_workspace_size(tb_backend *be, const tb_tensor *x, bool add);
int tb_cuda_batchnorm_relu_forward_train(tb_backend *be, tb_tensor *y, tb_tensor *save_mean, tb_tensor *save_invstd,
                                         tb_tensor *running_mean, tb_tensor *running_var, tb_tensor *reserve,
                                         const tb_tensor *x, const tb_tensor *z, const tb_tensor *gamma,
                                         const tb_tensor *beta, float momentum, float eps);
int tb_cuda_batchnorm_relu_forward_eval(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *z,
                                        const tb_tensor *gamma, const tb_tensor *beta,
                                        const tb_tensor *running_mean, const tb_tensor *running_var, float eps);
int tb_cuda_batchnorm_relu_backward(tb_backend *be, tb_tensor *dx, tb_tensor *dz, tb_tensor *dgamma,
                                    tb_tensor *dbeta, tb_tensor *reserve, const tb_tensor *dy, const tb_tensor *x,
                                    const tb_tensor *y, const tb_tensor *gamma, const tb_tensor *beta,
                                    const tb_tensor *save_mean, const tb_tensor *save_invstd, bool add,
                                    bool dz_write);
/* relu.cu */
int tb_cuda_relu_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x);
int tb_cuda_relu_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *y);
/* maxpool.cu, avgpool.cu, global_avgpool.cu */
int tb_cuda_maxpool_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_pool_params *p);
int tb_cuda_maxpool_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *y,
                             const tb_tensor *x, const tb_pool_params *p);
int tb_cuda_avgpool_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_pool_params *p);
int tb_cuda_avgpool_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_pool_params *p);
int tb_cuda_global_avgpool_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x);
int tb_cuda_global_avgpool_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy);
/* linear.cu */
int tb_cuda_linear_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *w,
                           const tb_tensor *bias);
int tb_cuda_linear_backward(tb_backend *be, tb_tensor *dx, tb_tensor *dw, tb_tensor *dbias, const tb_tensor *dy,
                            const tb_tensor *x, const tb_tensor *w);
/* add.cu, concat.cu, dropout.cu */
int tb_cuda_add_forward(tb_backend *be, tb_tensor *y, const tb_tensor *a, const tb_tensor *b);
int tb_cuda_add_backward(tb_backend *be, tb_tensor *da, tb_tensor *db, const tb_tensor *dy);
int tb_cuda_concat_forward(tb_backend *be, tb_tensor *y, const tb_tensor *const *xs, int count);
int tb_cuda_concat_backward(tb_backend *be, tb_tensor *const *dxs, int count, const tb_tensor *dy);
int tb_cuda_dropout_forward(tb_backend *be, tb_tensor *y, tb_tensor *mask, const tb_tensor *x, float p,
                            uint64_t seed, uint64_t salt, const tb_tensor *step);
int tb_cuda_dropout_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *mask, float p);
/* softmax_ce.cu (+ soft targets, softmax) */
int tb_cuda_softmax_ce_forward(tb_backend *be, tb_tensor *loss, tb_tensor *probs, const tb_tensor *logits,
                               const tb_tensor *labels, const tb_tensor *targets, float temperature);
int tb_cuda_softmax_ce_backward(tb_backend *be, tb_tensor *dlogits, const tb_tensor *probs,
                                const tb_tensor *labels, const tb_tensor *targets, float temperature,
                                float scale, const tb_tensor *scale_t);
int tb_cuda_soft_targets(tb_backend *be, tb_tensor *targets, const tb_tensor *labels_a,
                         const tb_tensor *labels_b, const tb_tensor *lam, float eps);
int tb_cuda_softmax(tb_backend *be, tb_tensor *probs, const tb_tensor *logits, float temperature);
/* mix.cu */
int tb_cuda_mixup_batch(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *lam);
int tb_cuda_cutmix_batch(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *box);
int tb_cuda_reverse_labels(tb_backend *be, tb_tensor *labels_b, const tb_tensor *labels);
/* argmax.cu */
int tb_cuda_argmax(tb_backend *be, tb_tensor *index, const tb_tensor *x);
/* count_equal.cu */
int tb_cuda_count_equal(tb_backend *be, tb_tensor *count, const tb_tensor *a, const tb_tensor *b);
/* elementwise.cu (fill, copy, convert, axpby), check.cu (nonfinite_check, sumsq) */
int tb_cuda_fill(tb_backend *be, tb_tensor *t, float value);
int tb_cuda_copy(tb_backend *be, tb_tensor *dst, const tb_tensor *src);
int tb_cuda_convert(tb_backend *be, tb_tensor *dst, const tb_tensor *src);
int tb_cuda_axpby(tb_backend *be, tb_tensor *y, float alpha, const tb_tensor *x, float beta);
int tb_cuda_nonfinite_check(tb_backend *be, tb_tensor *flag, const tb_tensor *x);
int tb_cuda_sumsq(tb_backend *be, tb_tensor *out, const tb_tensor *x);
/* roi_align.cu, smooth_l1.cu (detection) */
int tb_cuda_roi_align_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *rois,
                              const tb_roi_align_params *p);
int tb_cuda_roi_align_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *rois,
                               const tb_roi_align_params *p);
int tb_cuda_smooth_l1_forward(tb_backend *be, tb_tensor *loss, const tb_tensor *pred, const tb_tensor *target,
                              const tb_tensor *weights, float beta, float norm);
int tb_cuda_smooth_l1_backward(tb_backend *be, tb_tensor *dpred, const tb_tensor *pred, const tb_tensor *target,
                               const tb_tensor *weights, float beta, float norm, float scale);
/* rpn_targets.cu, rpn_proposals.cu, roi_targets.cu, detect_boxes.cu: the
 * box-level detection ops (shared device code in box.cuh, box_sort.cu,
 * nms.cu). Scratch from be->workspace only, sized by their queries; counts
 * are read on the device (clamped, see each file), never on the host. */
int tb_cuda_rpn_targets(tb_backend *be, tb_tensor *labels, tb_tensor *targets, tb_tensor *weights,
                        const tb_tensor *anchors, const tb_tensor *gt_boxes, const tb_tensor *gt_count,
                        const tb_rpn_target_params *p);
size_t tb_cuda_rpn_targets_workspace_size(tb_backend *be, const tb_tensor *anchors, const tb_tensor *gt_boxes,
                                          const tb_rpn_target_params *p);
int tb_cuda_rpn_proposals(tb_backend *be, tb_tensor *rois, tb_tensor *roi_count, const tb_tensor *logits,
                          const tb_tensor *deltas, const tb_tensor *anchors, const tb_tensor *im_size,
                          const tb_proposal_params *p);
size_t tb_cuda_rpn_proposals_workspace_size(tb_backend *be, const tb_tensor *logits, const tb_tensor *anchors,
                                            const tb_proposal_params *p);
int tb_cuda_roi_targets(tb_backend *be, tb_tensor *rois, tb_tensor *labels, tb_tensor *targets, tb_tensor *weights,
                        const tb_tensor *proposals, const tb_tensor *proposal_count, const tb_tensor *gt_boxes,
                        const tb_tensor *gt_labels, const tb_tensor *gt_count, const tb_roi_target_params *p);
size_t tb_cuda_roi_targets_workspace_size(tb_backend *be, const tb_tensor *proposals, const tb_tensor *gt_boxes,
                                          const tb_roi_target_params *p);
int tb_cuda_detect_boxes(tb_backend *be, tb_tensor *boxes, tb_tensor *scores, tb_tensor *classes, tb_tensor *count,
                         const tb_tensor *probs, const tb_tensor *deltas, const tb_tensor *rois,
                         const tb_tensor *roi_count, const tb_tensor *im_size, const tb_detect_params *p);
size_t tb_cuda_detect_boxes_workspace_size(tb_backend *be, const tb_tensor *probs, const tb_tensor *roi_count,
                                           const tb_detect_params *p);
/* resize_bilinear.cu (segmentation) */
int tb_cuda_resize_bilinear_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x);
int tb_cuda_resize_bilinear_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy);
/* sgd.cu */
int tb_cuda_sgd_step(tb_backend *be, tb_tensor *master, tb_tensor *model, tb_tensor *momentum_buf,
                     const tb_tensor *grad, const tb_tensor *decay_mask, const tb_tensor *skip,
                     const tb_sgd_params *p);

#ifdef __cplusplus
}
#endif
#endif
