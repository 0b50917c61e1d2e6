/* Helpers shared by the model builders (resnet.c, mobilenet.c, inception.c):
 * conv / BN / ReLU with printf-style module names, channel scaling, and the
 * classifier head. Like the graph's builder calls they are sticky: after an
 * error they return -1 and the graph's status says what went wrong. */
#ifndef TB_MODELS_LAYERS_H
#define TB_MODELS_LAYERS_H

#include <stdbool.h>

#include "models/graph.h"
#include "models/models.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TB_BN_MOMENTUM 0.1f   /* PyTorch's default */
#define TB_BN_EPS 1e-5f       /* PyTorch's default */

/* max(1, round(c * width)) */
int tb_scale_width(int c, float width);

/* Convolution without bias (every conv of these networks is followed by BN). */
tb_value tb_layer_conv(tb_graph *g, tb_value x, int out, int kh, int kw, int stride, int pad_h, int pad_w,
                       int groups, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 10, 11)))
#endif
    ;

tb_value tb_layer_bn(tb_graph *g, tb_value x, float eps, unsigned flags, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

/* Global average pool, optional dropout, linear with bias named `name`. */
tb_value tb_layer_head(tb_graph *g, tb_value x, const tb_model_spec *spec, const char *name);

/* The pool of ResNet-D's shortcut: 2x2, stride 2, ceil_mode, padding not counted. */
tb_pool_params tb_pool_resnet_d(void);
tb_pool_params tb_pool_make(int kernel, int stride, int pad, bool ceil_mode, bool count_include_pad);

/* The builders: each takes the input value and returns the logits value. */
tb_value tb_resnet_build(tb_graph *g, const tb_model_spec *spec, tb_value x);
tb_value tb_mobilenet_v1_build(tb_graph *g, const tb_model_spec *spec, tb_value x);
tb_value tb_inception_v3_build(tb_graph *g, const tb_model_spec *spec, tb_value x);

/* A ResNet in pieces (detection and segmentation backbones): the stem, and
 * stage 1-4 (torchvision's layer1-layer4) on top of whatever x holds. */
tb_value tb_resnet_build_stem(tb_graph *g, const tb_model_spec *spec, tb_value x);
tb_value tb_resnet_build_stage(tb_graph *g, const tb_model_spec *spec, tb_value x, int stage);
/* Stage `stage` with stride 1 and dilation 2 or 4 (1 = the plain stage): the
 * dilated ResNet of segmentation (output stride 8 with dilation 2 in stage 3
 * and 4 in stage 4). */
tb_value tb_resnet_build_stage_dilated(tb_graph *g, const tb_model_spec *spec, tb_value x, int stage, int dilation);

/* ResNet depths: blocks per stage and whether the blocks are bottlenecks;
 * false for an unknown name. */
bool tb_resnet_layout(const char *name, int blocks[4], bool *bottleneck);

#ifdef __cplusplus
}
#endif
#endif
