/* The op set: one explicit forward and backward per op.
 *
 * Every function here is a checked front-end: it validates shapes and dtypes
 * (returning TB_ERR_INVALID with a message naming the op and the shapes) and
 * then calls the backend's implementation through its function table. Each
 * backend implements these with exactly the same prototype (kernels/backend.h).
 *
 * Conventions for the whole project:
 *  - Argument order: outputs, saved state, inputs, parameters, then sizes and
 *    descriptors.
 *  - Backward functions ACCUMULATE into every gradient they write (dx += ...,
 *    dw += ...); callers zero gradients before a backward pass. This makes
 *    residual branches and tensors read by several nodes free of special cases.
 *  - Activations may be f32, f16 or bf16 (stored low, computed in f32). Unless
 *    a comment says otherwise all float tensors of one call share one dtype.
 *    BatchNorm parameters, statistics, the loss, soft targets, probabilities,
 *    master weights and optimizer state are always f32.
 *  - Optional tensors are passed as NULL.
 *  - Ops that need scratch memory take it from the backend's workspace, which
 *    is reserved once at graph build (tb_backend_reserve_workspace) from the
 *    *_workspace_size queries; too small a workspace is an error, never a
 *    reallocation.
 */
#ifndef TB_OPS_H
#define TB_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tb_backend tb_backend;

/* ---------------------------------------------------------------- conv2d */
typedef struct tb_conv2d_params {
    int stride_h, stride_w;
    int pad_h, pad_w;   /* symmetric padding per axis */
    int dil_h, dil_w;
    int groups;         /* 1 = dense; c = depthwise */
} tb_conv2d_params;

/* Output size of one spatial axis; <= 0 means the configuration is invalid. */
int64_t tb_conv2d_out_size(int64_t in, int kernel, int stride, int pad, int dil);

/* y[n,oh,ow,k] = conv(x[n,h,w,c], w[k,r,s,c/groups]) + bias[k]
 * bias is optional and shares w's dtype. */
int tb_conv2d_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *w,
                      const tb_tensor *bias, const tb_conv2d_params *p);
/* dx += conv_transpose(dy, w). dx may be NULL (network input: nothing to do). */
int tb_conv2d_backward_data(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *w,
                            const tb_conv2d_params *p);
/* dw += correlation of x and dy; dbias += sum of dy over n,h,w (dbias optional). */
int tb_conv2d_backward_filter(tb_backend *be, tb_tensor *dw, tb_tensor *dbias, const tb_tensor *dy,
                              const tb_tensor *x, const tb_conv2d_params *p);
/* Bytes of workspace the three calls above need for these shapes. */
size_t tb_conv2d_workspace_size(tb_backend *be, const tb_tensor *y, const tb_tensor *x,
                                const tb_tensor *w, const tb_conv2d_params *p);

/* ------------------------------------------------------------- batchnorm */
/* Per-channel (last axis) batch norm over n,h,w; x may be 4-D or 2-D.
 * gamma, beta, running_*, save_* are f32 {c}.
 * Training: normalises with the batch mean and biased variance, saves mean and
 * 1/sqrt(var+eps), and updates running stats as PyTorch does:
 * running = (1 - momentum) * running + momentum * batch_stat, using the
 * unbiased variance for running_var. */
int tb_batchnorm_forward_train(tb_backend *be, tb_tensor *y, tb_tensor *save_mean, tb_tensor *save_invstd,
                               tb_tensor *running_mean, tb_tensor *running_var, const tb_tensor *x,
                               const tb_tensor *gamma, const tb_tensor *beta, float momentum, float eps);
int tb_batchnorm_forward_eval(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *gamma,
                              const tb_tensor *beta, const tb_tensor *running_mean,
                              const tb_tensor *running_var, float eps);
/* Backward of the training forward. dx, dgamma, dbeta accumulate; dgamma/dbeta may be NULL (frozen). */
int tb_batchnorm_backward(tb_backend *be, tb_tensor *dx, tb_tensor *dgamma, tb_tensor *dbeta,
                          const tb_tensor *dy, const tb_tensor *x, const tb_tensor *gamma,
                          const tb_tensor *save_mean, const tb_tensor *save_invstd);
/* Backward of the evaluation forward (a frozen BN: running statistics used in
 * training too, as detection backbones do):
 *   dx += dy * gamma / sqrt(running_var + eps)
 *   dgamma += sum dy * (x - running_mean) / sqrt(running_var + eps), dbeta += sum dy
 * dx, dgamma and dbeta are each optional (NULL = not wanted). */
int tb_batchnorm_backward_eval(tb_backend *be, tb_tensor *dx, tb_tensor *dgamma, tb_tensor *dbeta,
                               const tb_tensor *dy, const tb_tensor *x, const tb_tensor *gamma,
                               const tb_tensor *running_mean, const tb_tensor *running_var, float eps);

/* -------------------------------------------- batchnorm + add + relu (fused) */
/* y = relu(BN(x) + z), or y = relu(BN(x)) without z: a residual block's
 * "bn, add the shortcut, relu" and "bn, relu" in one op (cuDNN's
 * CUDNN_BATCHNORM_OPS_BN_ADD_ACTIVATION / BN_ACTIVATION); the graph fuses
 * them (models/graph.c). Statistics, saved state and running statistics as
 * tb_batchnorm_forward_train; z is shaped like x.
 * reserve: u8 of at least tb_batchnorm_relu_reserve_size bytes, written by
 * the training forward and read by its backward (absent when the size is 0);
 * scratch from the backend's workspace (tb_batchnorm_relu_workspace_size,
 * reserved at graph build). */
size_t tb_batchnorm_relu_reserve_size(tb_backend *be, const tb_tensor *x, bool add);
size_t tb_batchnorm_relu_workspace_size(tb_backend *be, const tb_tensor *x, bool add);
int tb_batchnorm_relu_forward_train(tb_backend *be, tb_tensor *y, tb_tensor *save_mean, tb_tensor *save_invstd,
                                    tb_tensor *running_mean, tb_tensor *running_var, tb_tensor *reserve,
                                    const tb_tensor *x, const tb_tensor *z, const tb_tensor *gamma,
                                    const tb_tensor *beta, float momentum, float eps);
/* y = relu(BN_eval(x) + z) with the running statistics. */
int tb_batchnorm_relu_forward_eval(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *z,
                                   const tb_tensor *gamma, const tb_tensor *beta, const tb_tensor *running_mean,
                                   const tb_tensor *running_var, float eps);
/* With g = dy * (y > 0): dz += g, and BN's training backward of g into dx,
 * dgamma, dbeta; all four accumulate and each is optional. add says whether
 * the forward added a z (its reserve depends on it; dz may still be absent).
 * dz_write (needs dz): dz = g instead of dz += g. The graph sets it where
 * this node is the first of the backward pass to write the shortcut's
 * gradient, which spares a device the pass that adds g to dz (cuDNN's fused
 * backward can only write dz). */
int tb_batchnorm_relu_backward(tb_backend *be, tb_tensor *dx, tb_tensor *dz, tb_tensor *dgamma, tb_tensor *dbeta,
                               tb_tensor *reserve, const tb_tensor *dy, const tb_tensor *x, const tb_tensor *y,
                               const tb_tensor *gamma, const tb_tensor *beta, const tb_tensor *save_mean,
                               const tb_tensor *save_invstd, bool add, bool dz_write);

/* ------------------------------------------------------------------ relu */
int tb_relu_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x);
/* dx += dy * (y > 0); uses the output so that y may overwrite x in place. */
int tb_relu_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *y);

/* --------------------------------------------------------------- pooling */
typedef struct tb_pool_params {
    int kernel_h, kernel_w;
    int stride_h, stride_w;
    int pad_h, pad_w;
    bool ceil_mode;          /* PyTorch's ceil_mode (ResNet-D's shortcut pool uses it) */
    bool count_include_pad;  /* average pool only; ResNet-D: false */
} tb_pool_params;

/* Output size of one axis with PyTorch's rules (ceil mode never starts a
 * window inside the right padding). */
int64_t tb_pool_out_size(int64_t in, int kernel, int stride, int pad, bool ceil_mode);

int tb_maxpool_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_pool_params *p);
/* dx += dy routed to the first maximum of each window (found in x; y must be
 * the forward's output for this x, which a backend may compare against). */
int tb_maxpool_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *y,
                        const tb_tensor *x, const tb_pool_params *p);
int tb_avgpool_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_pool_params *p);
int tb_avgpool_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_pool_params *p);

/* Global average pool: y[n,c] = mean over h,w of x[n,h,w,c]. */
int tb_global_avgpool_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x);
int tb_global_avgpool_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy);

/* ---------------------------------------------------------------- linear */
/* y[n,k] = x[n,c] * w[k,c]^T + bias[k] (bias optional, w's dtype). */
int tb_linear_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *w,
                      const tb_tensor *bias);
/* dx += dy * w (dx may be NULL); dw += dy^T * x; dbias += sum_n dy (optional). */
int tb_linear_backward(tb_backend *be, tb_tensor *dx, tb_tensor *dw, tb_tensor *dbias, const tb_tensor *dy,
                       const tb_tensor *x, const tb_tensor *w);

/* ------------------------------------------------------- add and concat */
/* y = a + b (same shape). */
int tb_add_forward(tb_backend *be, tb_tensor *y, const tb_tensor *a, const tb_tensor *b);
/* da += dy, db += dy (either may be NULL). */
int tb_add_backward(tb_backend *be, tb_tensor *da, tb_tensor *db, const tb_tensor *dy);
/* Concatenate along the last (channel) axis; all other dims equal. */
int tb_concat_forward(tb_backend *be, tb_tensor *y, const tb_tensor *const *xs, int count);
int tb_concat_backward(tb_backend *be, tb_tensor *const *dxs, int count, const tb_tensor *dy);

/* --------------------------------------------------------------- dropout */
/* Inverted dropout: keep with probability 1-p and scale by 1/(1-p).
 * mask is u8 (same shape as x, 1 = kept), drawn with tb_hash_uniform(seed, i)
 * so every backend draws the same mask. */
int tb_dropout_forward(tb_backend *be, tb_tensor *y, tb_tensor *mask, const tb_tensor *x, float p,
                       uint64_t seed);
/* The same with the draw's seed made on the device when the op runs:
 * tb_dropout_step_seed(seed, step[0], salt), step an i32 {1} (>= 0) in
 * backend memory. A captured training step replays with each step's own
 * mask: the trainer uploads the step counter before it. */
int tb_dropout_forward_at_step(tb_backend *be, tb_tensor *y, tb_tensor *mask, const tb_tensor *x, float p,
                               uint64_t seed, uint64_t salt, const tb_tensor *step);
int tb_dropout_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *mask, float p);

/* ------------------------------------------------- softmax cross-entropy */
/* loss (f32 {1}) = mean over the batch of -sum_k t[k] * log softmax(logits / T)[k].
 * Exactly one of labels (i32 {n}, hard targets) and targets (f32 {n,k},
 * rows summing to 1) is given. A negative label marks an ignored row (the
 * ignore label of segmentation, unsampled anchors of detection): it adds
 * nothing to the loss or the gradient, and the mean is over the labelled rows
 * (0 when there are none), as PyTorch's ignore_index with reduction mean. probs (f32 {n,k}) saves softmax(logits / T)
 * for the backward. The log-softmax is computed stably (max subtracted). */
int tb_softmax_ce_forward(tb_backend *be, tb_tensor *loss, tb_tensor *probs, const tb_tensor *logits,
                          const tb_tensor *labels, const tb_tensor *targets, float temperature);
/* dlogits += scale * (probs - t) / (n * T): the gradient of scale * loss
 * (n = the labelled rows; ignored rows get nothing). */
int tb_softmax_ce_backward(tb_backend *be, tb_tensor *dlogits, const tb_tensor *probs,
                           const tb_tensor *labels, const tb_tensor *targets, float temperature,
                           float scale);
/* The same with the scale times scale_t[0] (f32 {1} in backend memory, read
 * when the op runs, the product rounded to f32): the fp16 loss scale of a
 * captured training step, uploaded with its other scalars. */
int tb_softmax_ce_backward_scaled(tb_backend *be, tb_tensor *dlogits, const tb_tensor *probs,
                                  const tb_tensor *labels, const tb_tensor *targets, float temperature,
                                  float scale, const tb_tensor *scale_t);
/* Soft targets (f32 {n,k}) for label smoothing and mixup/cutmix:
 * t = lam * smooth(labels_a) + (1 - lam) * smooth(labels_b), where smooth(y)
 * puts 1 - eps on y and eps / (k - 1) on every other class (the paper's
 * definition). labels_b and lam (f32 {1}, in [0, 1]) come together or not at
 * all (then t = smooth(labels_a)). lam is a tensor in backend memory, read
 * when the op runs, so a captured training step (tb_capture_begin) sees each
 * step's draw; see "Per-step scalars" below. */
int tb_soft_targets(tb_backend *be, tb_tensor *targets, const tb_tensor *labels_a, const tb_tensor *labels_b,
                    const tb_tensor *lam, float eps);
/* Teacher distribution for distillation: targets = softmax(teacher_logits / T), f32 {n,k}. */
int tb_softmax(tb_backend *be, tb_tensor *probs, const tb_tensor *logits, float temperature);
/* Class predictions: with x viewed as {rows, k} (k its last axis), index[r]
 * = the first j holding the largest x[r, j]; NaN is never larger, so a row
 * starting with NaN gives 0. index: i32 {rows}. Segmentation's per-pixel
 * predictions, computed where the logits are. */
int tb_argmax(tb_backend *be, tb_tensor *index, const tb_tensor *x);
/* count[0] = the number of i with a[i] == b[i] (written, not added); a, b
 * i32 {n}, count i32 {1}. A training step's top-1 hits (tb_argmax of its
 * probabilities against the labels), counted on the device so that they
 * travel with the loss in the step's one read-back. */
int tb_count_equal(tb_backend *be, tb_tensor *count, const tb_tensor *a, const tb_tensor *b);

/* --------------------------------------------------------- mixup, cutmix */
/* Per-step scalars (the mixup weight, the CutMix box, the learning rate of
 * tb_sgd_params.lr_tensor) are tensors in backend memory, read when the op
 * runs: a training step captured once (a CUDA graph) then replays with each
 * step's values uploaded beside the batch. The CPU backend checks their
 * values on the host (TB_ERR_INVALID, as for labels); the CUDA kernels
 * cannot, and clamp them into range instead (lam to [0, 1], the box to the
 * image). */
/* Mixup of a batch with its reverse (sample i with sample n-1-i, as GluonCV
 * and timm pair them): y = lam * x + (1 - lam) * x[reversed], lam f32 {1}.
 * y must not alias x. */
int tb_mixup_batch(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *lam);
/* CutMix: y = x with the box rows [y0,y1) x columns [x0,x1) taken from
 * x[reversed]; box is i32 {4} = {y0, y1, x0, x1}. */
int tb_cutmix_batch(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *box);
/* labels_b[i] = labels[n-1-i] (i32), the partner labels of the two ops above. */
int tb_reverse_labels(tb_backend *be, tb_tensor *labels_b, const tb_tensor *labels);

/* ------------------------------------------------------- elementwise util */
int tb_fill(tb_backend *be, tb_tensor *t, float value);       /* any dtype */
int tb_copy(tb_backend *be, tb_tensor *dst, const tb_tensor *src); /* same dtype and numel */
int tb_convert(tb_backend *be, tb_tensor *dst, const tb_tensor *src); /* float dtypes, same numel */
/* y = alpha * x + beta * y (x may be any float dtype, y f32 or the same dtype). EMA, scaling. */
int tb_axpby(tb_backend *be, tb_tensor *y, float alpha, const tb_tensor *x, float beta);
/* flag (i32 {1}) |= 1 when x holds an inf or NaN; never cleared here. */
int tb_nonfinite_check(tb_backend *be, tb_tensor *flag, const tb_tensor *x);
/* out (f32 {1}) += sum of x^2 (gradient norms). */
int tb_sumsq(tb_backend *be, tb_tensor *out, const tb_tensor *x);

/* ============================================================ detection
 * Boxes are f32 (x1, y1, x2, y2) in input-canvas pixels with continuous
 * coordinates: a box covers [x1, x2) x [y1, y2), width x2 - x1, no "+1"
 * (torchvision and Detectron2; the VOC evaluator documents its own rule).
 * RoIs are f32 {r, 5}: (image index in the batch, x1, y1, x2, y2).
 * Box deltas (dx, dy, dw, dh) encode a box g against a reference a as
 *   ((gcx - acx) / aw / std0, (gcy - acy) / ah / std1, log(gw / aw) / std2, log(gh / ah) / std3)
 * and decoding clamps dw, dh at log(1000 / 16) (torchvision).
 * Counts vary per image, shapes do not: every per-image output has a fixed
 * capacity and an i32 count {n}; rows past the count are zero boxes (RoIs
 * (b, 0, 0, 0, 0)) with label -1 (ignored) where there is a label.
 * Random sampling draws from tb_hash_uniform(seed, ...) so that every backend
 * samples the same anchors and RoIs. */

typedef struct tb_roi_align_params {
    int pooled_h, pooled_w;
    float spatial_scale;   /* feature pixels per input pixel (1 / feature stride) */
    int sampling_ratio;    /* samples per bin per axis; <= 0: ceil(roi size / pooled size), adaptive */
    bool aligned;          /* shift by -0.5 pixel (Detectron2's aligned=True); false = torchvision's legacy */
} tb_roi_align_params;

/* y[r,ph,pw,c] = mean of the bilinear samples of x[rois[r,0]] in bin (ph, pw)
 * of RoI r (torchvision's roi_align); samples outside [-1, size] are 0. */
int tb_roi_align_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *rois,
                         const tb_roi_align_params *p);
/* dx += the transpose of the forward (bilinear weights scattered back). */
int tb_roi_align_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *rois,
                          const tb_roi_align_params *p);
/* Bytes of workspace the two calls above need: x is the feature map (x of
 * the forward, dx of the backward: same shape and dtype). The CPU needs
 * none for f32; for f16/bf16 its backward accumulates in f32 one block of
 * channels per thread. Both calls fail (TB_ERR_INVALID) on a smaller workspace. */
size_t tb_roi_align_workspace_size(tb_backend *be, const tb_tensor *x, const tb_tensor *rois,
                                   const tb_roi_align_params *p);

/* loss (f32 {1}) = sum_i weights_i * sl1(pred_i - target_i) / norm, where
 * sl1(d) = 0.5 d^2 / beta for |d| < beta, |d| - 0.5 beta otherwise (beta 0 = L1).
 * pred any float dtype; target and weights f32 of pred's numel. */
int tb_smooth_l1_forward(tb_backend *be, tb_tensor *loss, const tb_tensor *pred, const tb_tensor *target,
                         const tb_tensor *weights, float beta, float norm);
/* dpred += scale * weights * sl1'(pred - target) / norm. */
int tb_smooth_l1_backward(tb_backend *be, tb_tensor *dpred, const tb_tensor *pred, const tb_tensor *target,
                          const tb_tensor *weights, float beta, float norm, float scale);

typedef struct tb_rpn_target_params {
    float pos_iou;          /* anchors with IoU >= this to some gt are positive (0.7) */
    float neg_iou;          /* anchors whose best IoU < this are negative (0.3) */
    int samples_per_image;  /* anchors sampled per image (256) */
    float pos_fraction;     /* at most this fraction positive (0.5); negatives fill the rest */
    uint64_t seed;          /* sampling stream; the trainer passes a new one every step */
} tb_rpn_target_params;

/* RPN training targets for every anchor of every image. The anchor of
 * highest IoU with each gt box is positive too (ties included, as
 * torchvision's allow_low_quality_matches). Sampling keeps at most
 * samples_per_image * pos_fraction positives and fills up to
 * samples_per_image with negatives, chosen uniformly at random.
 *   labels  i32 {n*a}: 1 positive, 0 negative, -1 not sampled
 *   targets f32 {n*a, 4}: deltas of the matched gt box (std 1), 0 where not positive
 *   weights f32 {n*a, 4}: 1 for sampled positives, 0 elsewhere
 *   anchors f32 {a, 4}; gt_boxes f32 {n, g, 4}; gt_count i32 {n} (0..g) */
int tb_rpn_targets(tb_backend *be, tb_tensor *labels, tb_tensor *targets, tb_tensor *weights,
                   const tb_tensor *anchors, const tb_tensor *gt_boxes, const tb_tensor *gt_count,
                   const tb_rpn_target_params *p);
/* Bytes of workspace tb_rpn_targets needs for these anchors {a,4} and gt
 * boxes {n,g,4} (smaller: TB_ERR_INVALID). */
size_t tb_rpn_targets_workspace_size(tb_backend *be, const tb_tensor *anchors, const tb_tensor *gt_boxes,
                                     const tb_rpn_target_params *p);

typedef struct tb_proposal_params {
    int pre_nms_topk;       /* best-scoring anchors kept per image before NMS */
    int post_nms_topk;      /* proposals kept per image after NMS: the capacity of rois */
    float nms_iou;          /* 0.7 */
    float min_size;         /* boxes narrower or lower than this (input pixels) are dropped */
} tb_proposal_params;

/* Proposals per image: decode deltas (std 1) on the anchors, clip to the
 * image's valid size, drop small boxes, keep the pre_nms_topk best by
 * objectness, NMS, keep post_nms_topk, in descending score order.
 *   rois f32 {n * post_nms_topk, 5}; roi_count i32 {n}
 *   logits {n*a, 2} (background, object) and deltas {n*a, 4}: any float dtype
 *   anchors f32 {a, 4}; im_size f32 {n, 2}: valid (height, width) of each image */
int tb_rpn_proposals(tb_backend *be, tb_tensor *rois, tb_tensor *roi_count, const tb_tensor *logits,
                     const tb_tensor *deltas, const tb_tensor *anchors, const tb_tensor *im_size,
                     const tb_proposal_params *p);
/* Bytes of workspace tb_rpn_proposals needs for logits {n*a,2}, anchors
 * {a,4} and p's top-k sizes (smaller: TB_ERR_INVALID). */
size_t tb_rpn_proposals_workspace_size(tb_backend *be, const tb_tensor *logits, const tb_tensor *anchors,
                                       const tb_proposal_params *p);

typedef struct tb_roi_target_params {
    int rois_per_image;     /* RoIs sampled per image: the capacity (128 GluonCV, 512 torchvision) */
    float pos_fraction;     /* 0.25 */
    float fg_iou;           /* IoU >= this with a gt box: that box's class (0.5) */
    float bg_iou_hi;        /* background: IoU in [bg_iou_lo, bg_iou_hi) (0.5) */
    float bg_iou_lo;        /* (0.0; the original paper 0.1) */
    float box_std[4];       /* (0.1, 0.1, 0.2, 0.2) */
    uint64_t seed;
} tb_roi_target_params;

/* Box-head training targets: the candidates of image b are its proposals
 * plus its gt boxes; sampled foreground (at most rois_per_image *
 * pos_fraction) then background fill rois_per_image, padding rows get label -1.
 *   rois f32 {n * rois_per_image, 5}; labels i32 {n * rois_per_image}: 0 background,
 *   1..classes-1 = gt class + 1, -1 padding
 *   targets, weights f32 {n * rois_per_image, 4 * classes}: the matched gt box's
 *   deltas (box_std) in the label's 4 columns, weights 1 there for foreground, 0 elsewhere
 *   proposals f32 {n * p, 5}, proposal_count i32 {n}; gt_boxes f32 {n, g, 4};
 *   gt_labels i32 {n, g} (0-based classes); gt_count i32 {n}.
 *   classes (= foreground classes + 1) is read from targets' second axis / 4. */
int tb_roi_targets(tb_backend *be, tb_tensor *rois, tb_tensor *labels, tb_tensor *targets, tb_tensor *weights,
                   const tb_tensor *proposals, const tb_tensor *proposal_count, const tb_tensor *gt_boxes,
                   const tb_tensor *gt_labels, const tb_tensor *gt_count, const tb_roi_target_params *p);
/* Bytes of workspace tb_roi_targets needs for proposals {n*p,5} and gt
 * boxes {n,g,4} (smaller: TB_ERR_INVALID). */
size_t tb_roi_targets_workspace_size(tb_backend *be, const tb_tensor *proposals, const tb_tensor *gt_boxes,
                                     const tb_roi_target_params *p);

typedef struct tb_detect_params {
    float score_thresh;     /* 0.05 */
    float nms_iou;          /* per-class NMS, 0.5 */
    int max_per_image;      /* the capacity of the outputs (100) */
    float box_std[4];       /* as in training */
} tb_detect_params;

/* Final detections: for every RoI and foreground class, decode the class's
 * box, clip it to the image, keep scores > score_thresh, NMS per class, keep
 * the max_per_image best over all classes, in descending score order.
 *   boxes f32 {n, d, 4}, scores f32 {n, d}, classes i32 {n, d} (0-based), count i32 {n}
 *   probs f32 {n * p, classes} (softmax of the class logits), deltas {n * p, 4 * classes}
 *   (any float dtype), rois f32 {n * p, 5}, roi_count i32 {n}, im_size f32 {n, 2} */
int tb_detect_boxes(tb_backend *be, tb_tensor *boxes, tb_tensor *scores, tb_tensor *classes, tb_tensor *count,
                    const tb_tensor *probs, const tb_tensor *deltas, const tb_tensor *rois,
                    const tb_tensor *roi_count, const tb_tensor *im_size, const tb_detect_params *p);
/* Bytes of workspace tb_detect_boxes needs for probs {n*p,classes}, n =
 * roi_count's length, and p->max_per_image (smaller: TB_ERR_INVALID). */
size_t tb_detect_boxes_workspace_size(tb_backend *be, const tb_tensor *probs, const tb_tensor *roi_count,
                                      const tb_detect_params *p);

/* ========================================================= segmentation */

/* Bilinear resize of x {n,h,w,c} to y {n,oh,ow,c}, align_corners = false
 * (PyTorch's F.interpolate(mode="bilinear", align_corners=False)): output
 * pixel (i, j) samples the input at ((i + 0.5) * h / oh - 0.5, (j + 0.5) * w /
 * ow - 0.5), coordinates below 0 clamped to 0, the upper neighbour clamped to
 * the last row/column. Any float dtype (x and y the same). */
int tb_resize_bilinear_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x);
/* dx += the transpose of the forward (each dy spread over its 4 taps). */
int tb_resize_bilinear_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy);

/* ------------------------------------------------------------- optimizer */
typedef struct tb_sgd_params {
    float lr;
    float momentum;      /* 0 disables momentum */
    float weight_decay;  /* applied where decay_mask[i] != 0 */
    float grad_scale;    /* gradients are divided by this (loss scaling); 1 = none */
    bool nesterov;
    /* optional f32 {1} in backend memory: when set, the learning rate is read
     * from it when the step runs and lr is ignored (a captured training step
     * replays with each step's rate; see "Per-step scalars") */
    const tb_tensor *lr_tensor;
    /* optional f32 {1} in backend memory: the sum of squares of all the
     * gradients of this step as they are (loss scale included; tb_sumsq over
     * every group). When set, gradient clipping by global norm is applied on
     * the device, with no host read: each gradient, once divided by
     * grad_scale, is multiplied by tb_sgd_clip_factor(*clip_sumsq,
     * grad_scale, clip_max_norm) (clip_max_norm > 0). */
    const tb_tensor *clip_sumsq;
    double clip_max_norm;
    /* optional f32 {1} in backend memory: when set, grad_scale is read from
     * it when the step runs (the loss scale of a captured step) and the
     * field is ignored */
    const tb_tensor *grad_scale_tensor;
} tb_sgd_params;

/* Clipping by global norm (PyTorch's clip_grad_norm_, norm type 2):
 *   norm = sqrt(sumsq) / grad_scale ; factor = min(1, max_norm / (norm + 1e-6))
 * A non-finite norm gives 1: an overflowed fp16 step is skipped by the loss
 * scaler's flag anyway. The CPU's SGD uses this; the CUDA kernel computes
 * the same formula on the device (in f32). */
double tb_sgd_clip_factor(double sumsq, double grad_scale, double max_norm);

/* One fused SGD step over a flat group of parameters (PyTorch's formulation):
 *   g = grad / grad_scale + wd * mask * master
 *   v = momentum * v + g
 *   g = nesterov ? g + momentum * v : v
 *   master -= lr * g ; model = (model dtype) master
 * master and momentum are f32; grad is f32/f16/bf16; model (optional) is the
 * low-precision copy the network computes with. decay_mask is u8 (optional:
 * NULL decays nothing). skip (optional i32 {1}) != 0 makes the step a no-op,
 * decided on the device (overflow under dynamic loss scaling). */
int tb_sgd_step(tb_backend *be, tb_tensor *master, tb_tensor *model, tb_tensor *momentum_buf,
                const tb_tensor *grad, const tb_tensor *decay_mask, const tb_tensor *skip,
                const tb_sgd_params *p);

#ifdef __cplusplus
}
#endif
#endif
