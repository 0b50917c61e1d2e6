/* One Faster R-CNN training step and one detection pass, shared by the
 * detection trainer and its tests.
 *
 * Training step: upload -> part 0 (backbone, RPN) -> RPN targets, RPN losses
 * (2-class softmax CE over the sampled anchors + smooth L1 on the positives)
 * -> proposals -> RoI sampling and targets -> part 1 (RoIAlign, stage 5,
 * predictors) -> box-head losses (CE + smooth L1) -> backward through both
 * heads -> SGD, with one host read at the end (the four losses).
 *
 * Loss normalisation (torchvision): each CE is a mean over its sampled rows;
 * the RPN box loss is a sum over positive anchors divided by the sampled
 * anchors (images * rpn_batch), the box-head loss a sum over foreground RoIs
 * divided by the sampled RoIs (images * roi_batch). Smooth L1 beta is 1/9 for
 * both (torchvision). Every buffer is allocated in tb_det_step_init.
 */
#ifndef TB_TRAIN_DET_STEP_H
#define TB_TRAIN_DET_STEP_H

#include <stdbool.h>
#include <stdint.h>

#include "harness/config.h"
#include "kernels/backend.h"
#include "models/faster_rcnn.h"
#include "models/graph.h"

typedef struct tb_det_step_options {
    int images;               /* per batch */
    int classes;              /* foreground classes + 1 */
    int max_objects;          /* gt capacity per image */
    const tb_detection_config *det;
    double momentum, weight_decay;
    bool nesterov;
} tb_det_step_options;

typedef struct tb_det_step {
    tb_backend *be;
    tb_graph *g;
    tb_frcnn net;
    tb_det_step_options opt;
    int64_t anchors;          /* feat_h * feat_w * anchors per position */
    int post_train, post_test, post_cap;
    int rois_per_image;       /* RoIs per image in one part-1 forward */
    void *mem;
    tb_tensor anchor_boxes;   /* f32 {anchors, 4} */
    tb_tensor gt_boxes, gt_labels, gt_count, im_size; /* the uploaded batch's annotations */
    tb_tensor rpn_labels, rpn_targets, rpn_weights, rpn_probs;
    tb_tensor proposals, proposal_count;
    tb_tensor roi_labels, roi_targets, roi_weights, cls_probs;
    tb_tensor losses;         /* f32 {4}: rpn cls, rpn box, rcnn cls, rcnn box */
    /* detection pass */
    tb_tensor all_probs, all_deltas, det_boxes, det_scores, det_classes, det_count;
} tb_det_step;

/* g must be built with tb_frcnn_build (net describes it), finalized and initialised. */
int tb_det_step_init(tb_det_step *s, tb_graph *g, const tb_frcnn *net, const tb_det_step_options *opt);
void tb_det_step_destroy(tb_det_step *s);

/* A host batch: images f32 NHWC normalised; per image the gt boxes
 * {max_objects, 4}, 0-based labels, counts, valid (height, width). */
typedef struct tb_det_host_batch {
    const float *images;
    const float *gt_boxes;
    const int32_t *gt_labels;
    const int32_t *gt_count;
    const float *im_size;
} tb_det_host_batch;

typedef struct tb_det_step_result {
    float loss;               /* the sum of the four */
    float rpn_cls, rpn_box, rcnn_cls, rcnn_box;
} tb_det_step_result;

/* One training step; `seed` drives this step's anchor and RoI sampling. */
int tb_det_step_run(tb_det_step *s, const tb_det_host_batch *b, double lr, uint64_t seed,
                    tb_det_step_result *out);

/* Detections of one batch (evaluation mode), downloaded to the host:
 * boxes {images, d, 4}, scores {images, d}, classes {images, d}, count {images},
 * d = detection.test_max_detections. */
int tb_det_step_detect(tb_det_step *s, const tb_det_host_batch *b, float *boxes, float *scores,
                       int32_t *classes, int32_t *count);

#endif
