/* FCN (Long et al. 2015) on a dilated ResNet, as GluonCV's FCN that the
 * paper's Table 9 trains on ADE20K:
 *
 *   image {n,h,w,c} -> stem, layer1, layer2, layer3 (dilation 2, stride 1),
 *   layer4 (dilation 4, stride 1): output stride 8 with the ImageNet stem
 *   (2 with the small-image stem, which does not downsample)
 *   -> head: 3x3 conv to in/4 channels (512 on ResNet-50), BN, ReLU,
 *      dropout 0.1, 1x1 conv (with bias) to the classes
 *   -> bilinear upsampling (align_corners false) to h x w: output 0
 *   auxiliary head on layer3 (in/4 channels, same structure) upsampled the
 *   same way: output 1, weighted by the trainer (GluonCV: 0.5).
 *
 * Names: the backbone keeps the classification names (a classification
 * checkpoint loads into it; its fc is ignored); the heads use torchvision's
 * FCN: classifier.0 (conv), classifier.1 (bn), classifier.4 (conv), and
 * aux_classifier.* likewise.
 */
#ifndef TB_FCN_H
#define TB_FCN_H

#include <stdbool.h>
#include <stdint.h>

#include "models/graph.h"
#include "models/models.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tb_fcn_spec {
    tb_model_spec backbone;   /* a ResNet; classes = segmentation classes; image = the crop */
    bool aux;                 /* the auxiliary head on layer3 */
    float head_dropout;       /* 0.1 */
    bool freeze_bn;           /* BN frozen everywhere (running statistics) */
} tb_fcn_spec;

typedef struct tb_fcn {
    int out_main, out_aux;    /* output indices; out_aux -1 without aux */
    int feat_h, feat_w;       /* the layer4 map */
} tb_fcn;

/* Adds the network to a created, empty graph: output 0 = logits {n,h,w,classes}. */
int tb_fcn_build(tb_graph *g, const tb_fcn_spec *spec, tb_fcn *out);

/* Initialises a finalized, allocated graph: everything as tb_model_init
 * (the heads' convs by the same rule, biases 0). */
int tb_fcn_init(tb_graph *g, const tb_fcn_spec *spec, uint64_t seed);

/* The backbone's parameter-name prefixes, for tb_safetensors_load_prefixes. */
extern const char *const tb_fcn_backbone_prefixes[];
extern const int tb_fcn_n_backbone_prefixes;

#ifdef __cplusplus
}
#endif
#endif
