/* Faster R-CNN (Ren et al. 2015) on a ResNet, as the original paper's
 * ResNet model and GluonCV's faster_rcnn_resnet50_v1b_voc build it ("C4"):
 *
 *   part 0: image {n,h,w,c} -> stem, layer1..layer3 (stride 16 with the
 *           ImageNet stem, 4 with the small stem) = the feature map
 *           -> RPN: 3x3 conv (same channels) + ReLU, then two 1x1 convs:
 *              objectness {n,fh,fw,a*2} (background, object: the original's
 *              2-class softmax) and box deltas {n,fh,fw,a*4}
 *   (the caller turns the RPN outputs into proposals and samples RoIs)
 *   part 1: RoIAlign of the feature map over the rois external {r,5}
 *           -> layer4 (its first block halves the RoI: 14 -> 7)
 *           -> global average pool -> class scores {r, classes} and
 *              class-specific box deltas {r, 4*classes}
 *
 * Names: the backbone keeps the classification names (conv1, bn1, layer1..4:
 * a classification checkpoint loads into it by name, its fc ignored); the
 * heads use torchvision's: rpn.head.conv, rpn.head.cls_logits,
 * rpn.head.bbox_pred, roi_heads.box_predictor.cls_score and .bbox_pred.
 * Anchors are ordered (y, x, a) to match the NHWC RPN outputs, a running over
 * sizes then ratios.
 */
#ifndef TB_FASTER_RCNN_H
#define TB_FASTER_RCNN_H

#include <stdbool.h>
#include <stdint.h>

#include "models/graph.h"
#include "models/models.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tb_frcnn_spec {
    tb_model_spec backbone;   /* a ResNet; classes = foreground classes + 1 (background is 0) */
    int images;               /* per batch */
    int height, width;        /* the canvas */
    int anchors;              /* anchors per feature position */
    int rois;                 /* RoIs the box head takes per forward (all images together) */
    tb_roi_align_params roi;  /* pooled size, sampling, aligned; spatial_scale is filled in */
    bool freeze_bn;           /* every BN of the network frozen (running statistics) */
    int frozen_stages;        /* 0: all trained; k: the stem and layer1..layer k frozen */
} tb_frcnn_spec;

typedef struct tb_frcnn {
    int feat_h, feat_w;       /* the feature map (RPN grid) */
    int feat_channels;
    float stride;             /* input pixels per feature pixel */
    tb_value rois;            /* external f32 {rois, 5}: fill before part 1 */
    int out_rpn_logits, out_rpn_deltas, out_cls, out_box; /* output indices */
} tb_frcnn;

/* Adds the network to a created, empty graph (batch = images). */
int tb_frcnn_build(tb_graph *g, tb_frcnn_spec *spec, tb_frcnn *out);

/* Initialises a finalized, allocated graph: the backbone as
 * tb_model_init(spec->backbone.init), the heads from normal distributions
 * (std 0.01; 0.001 for the box-head's bbox_pred; biases 0, as GluonCV). */
int tb_frcnn_init(tb_graph *g, const tb_frcnn_spec *spec, uint64_t seed);

/* Anchors {feat_h * feat_w * n_sizes * n_ratios, 4} into out: centred on
 * ((x + 0.5) * stride, (y + 0.5) * stride), area size^2, height/width ratio. */
void tb_frcnn_anchors(float *out, int feat_h, int feat_w, float stride, const float *sizes, int n_sizes,
                      const float *ratios, int n_ratios);

/* Parameter-name prefixes of the backbone (what a classification checkpoint
 * provides): for tb_safetensors_load_prefixes. */
extern const char *const tb_frcnn_backbone_prefixes[];
extern const int tb_frcnn_n_backbone_prefixes;

#ifdef __cplusplus
}
#endif
#endif
