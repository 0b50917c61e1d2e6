/* ResNet-18/34/50/101/152 in the paper's variants A-D (He et al. 2019,
 * section 4.1, figure 2), with the ImageNet or the small-image stem.
 * Names: torchvision's for A/B, timm's (resnet50d) for C/D; see models.h. */
#include <stdio.h>
#include <string.h>

#include "kernels/error.h"
#include "models/layers.h"

typedef struct resnet_ctx {
    tb_graph *g;
    char variant;
    float width;
    int inplanes;     /* channels entering the next block */
} resnet_ctx;

/* A 3x3 convolution without bias, dilated by d (padding d keeps the size). */
static tb_value conv3x3(tb_graph *g, tb_value x, int out, int stride, int d, const char *block, const char *conv)
{
    char name[TB_NAME_LEN];
    snprintf(name, sizeof name, "%s.%s", block, conv);
    tb_conv_spec s = {.k = out, .kh = 3, .kw = 3, .stride = stride, .pad_h = d, .pad_w = d, .dilation = d,
                      .groups = 1, .bias = false};
    return tb_g_conv(g, name, x, s);
}

static const struct {
    const char *name;
    int blocks[4];
    bool bottleneck;
} layouts[] = {
    {"resnet18", {2, 2, 2, 2}, false},  {"resnet34", {3, 4, 6, 3}, false},
    {"resnet50", {3, 4, 6, 3}, true},   {"resnet101", {3, 4, 23, 3}, true},
    {"resnet152", {3, 8, 36, 3}, true},
};

bool tb_resnet_layout(const char *name, int blocks[4], bool *bottleneck)
{
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
        if (!strcmp(name, layouts[i].name)) {
            memcpy(blocks, layouts[i].blocks, sizeof layouts[i].blocks);
            *bottleneck = layouts[i].bottleneck;
            return true;
        }
    }
    return false;
}

static bool deep_stem(char variant) { return variant == 'C' || variant == 'D'; }

/* conv -> BN -> ReLU of the ImageNet stems. */
static tb_value stem(resnet_ctx *r, const tb_model_spec *spec, tb_value x)
{
    tb_graph *g = r->g;
    int c64 = tb_scale_width(64, r->width);
    if (spec->stem == TB_STEM_SMALL) {
        x = tb_layer_conv(g, x, c64, 3, 3, 1, 1, 1, 1, "conv1");
        x = tb_g_relu(g, tb_layer_bn(g, x, TB_BN_EPS, 0, "bn1"));
    } else if (deep_stem(r->variant)) {
        /* timm's stem_type='deep': conv1 = Sequential(conv, bn, relu, conv, bn, relu, conv), then bn1 */
        int c32 = tb_scale_width(32, r->width);
        x = tb_layer_conv(g, x, c32, 3, 3, 2, 1, 1, 1, "conv1.0");
        x = tb_g_relu(g, tb_layer_bn(g, x, TB_BN_EPS, 0, "conv1.1"));
        x = tb_layer_conv(g, x, c32, 3, 3, 1, 1, 1, 1, "conv1.3");
        x = tb_g_relu(g, tb_layer_bn(g, x, TB_BN_EPS, 0, "conv1.4"));
        x = tb_layer_conv(g, x, c64, 3, 3, 1, 1, 1, 1, "conv1.6");
        x = tb_g_relu(g, tb_layer_bn(g, x, TB_BN_EPS, 0, "bn1"));
    } else {
        x = tb_layer_conv(g, x, c64, 7, 7, 2, 3, 3, 1, "conv1");
        x = tb_g_relu(g, tb_layer_bn(g, x, TB_BN_EPS, 0, "bn1"));
    }
    if (spec->stem == TB_STEM_IMAGENET)
        x = tb_g_maxpool(g, x, tb_pool_make(3, 2, 1, false, false));
    r->inplanes = c64;
    return x;
}

/* The projection shortcut: 1x1 conv (stride s) + BN for A/B/C; for D a 2x2
 * average pool (where s = 2) then a stride-1 1x1 conv + BN, indexed as in
 * timm's Sequential(pool or Identity, conv, bn). */
static tb_value shortcut(resnet_ctx *r, tb_value x, int out, int stride, const char *block)
{
    tb_graph *g = r->g;
    if (r->variant == 'D') {
        if (stride != 1)
            x = tb_g_avgpool(g, x, tb_pool_resnet_d());
        x = tb_layer_conv(g, x, out, 1, 1, 1, 0, 0, 1, "%s.downsample.1", block);
        return tb_layer_bn(g, x, TB_BN_EPS, 0, "%s.downsample.2", block);
    }
    x = tb_layer_conv(g, x, out, 1, 1, stride, 0, 0, 1, "%s.downsample.0", block);
    return tb_layer_bn(g, x, TB_BN_EPS, 0, "%s.downsample.1", block);
}

/* Basic block: 3x3 (stride s, dilation d1) -> BN -> ReLU -> 3x3 (dilation
 * d2) -> BN, + shortcut, ReLU. Variants A and B coincide: the stride can only
 * sit on the first 3x3. */
static tb_value basic_block(resnet_ctx *r, tb_value x, int planes, int stride, int d1, int d2, const char *block)
{
    tb_graph *g = r->g;
    tb_value y = conv3x3(g, x, planes, stride, d1, block, "conv1");
    y = tb_g_relu(g, tb_layer_bn(g, y, TB_BN_EPS, 0, "%s.bn1", block));
    y = conv3x3(g, y, planes, 1, d2, block, "conv2");
    y = tb_layer_bn(g, y, TB_BN_EPS, TB_BN_LAST_IN_RESIDUAL_BLOCK, "%s.bn2", block);
    tb_value id = x;
    if (stride != 1 || r->inplanes != planes)
        id = shortcut(r, x, planes, stride, block);
    r->inplanes = planes;
    return tb_g_relu(g, tb_g_add(g, y, id));
}

/* Bottleneck: 1x1 -> 3x3 -> 1x1 (x4 channels). Variant A strides the first
 * 1x1 (the original ResNet); B, C and D stride the 3x3 (figure 2a of the paper). */
static tb_value bottleneck_block(resnet_ctx *r, tb_value x, int planes, int stride, int d, const char *block)
{
    tb_graph *g = r->g;
    int out = planes * 4;
    int s1 = r->variant == 'A' ? stride : 1;
    int s2 = r->variant == 'A' ? 1 : stride;
    tb_value y = tb_layer_conv(g, x, planes, 1, 1, s1, 0, 0, 1, "%s.conv1", block);
    y = tb_g_relu(g, tb_layer_bn(g, y, TB_BN_EPS, 0, "%s.bn1", block));
    y = conv3x3(g, y, planes, s2, d, block, "conv2");
    y = tb_g_relu(g, tb_layer_bn(g, y, TB_BN_EPS, 0, "%s.bn2", block));
    y = tb_layer_conv(g, y, out, 1, 1, 1, 0, 0, 1, "%s.conv3", block);
    y = tb_layer_bn(g, y, TB_BN_EPS, TB_BN_LAST_IN_RESIDUAL_BLOCK, "%s.bn3", block);
    tb_value id = x;
    if (stride != 1 || r->inplanes != out)
        id = shortcut(r, x, out, stride, block);
    r->inplanes = out;
    return tb_g_relu(g, tb_g_add(g, y, id));
}

static int64_t value_channels(tb_graph *g, tb_value x)
{
    const tb_tensor *t = tb_graph_value_tensor(g, x);
    return t ? t->shape[t->ndim - 1] : 0;
}

tb_value tb_resnet_build_stem(tb_graph *g, const tb_model_spec *spec, tb_value x)
{
    resnet_ctx r = {.g = g, .variant = spec->variant, .width = spec->width};
    return stem(&r, spec, x);
}

tb_value tb_resnet_build_stage(tb_graph *g, const tb_model_spec *spec, tb_value x, int stage)
{
    return tb_resnet_build_stage_dilated(g, spec, x, stage, 1);
}

tb_value tb_resnet_build_stage_dilated(tb_graph *g, const tb_model_spec *spec, tb_value x, int stage, int dilation)
{
    int blocks[4];
    bool bottleneck;
    if (tb_graph_status(g) != TB_OK || !tb_resnet_layout(spec->name, blocks, &bottleneck) || stage < 1 ||
        stage > 4)
        return -1; /* tb_model_spec_validate has rejected the name already */
    if (dilation != 1 && dilation != 2 && dilation != 4) {
        tb_fail(TB_ERR_INVALID, "resnet: stage %d dilation %d (1, 2 or 4)", stage, dilation);
        return -1;
    }
    static const int base_planes[4] = {64, 128, 256, 512};
    resnet_ctx r = {.g = g, .variant = spec->variant, .width = spec->width,
                    .inplanes = (int)value_channels(g, x)};
    int planes = tb_scale_width(base_planes[stage - 1], spec->width);
    for (int b = 0; b < blocks[stage - 1]; b++) {
        char block[32];
        snprintf(block, sizeof block, "layer%d.%d", stage, b);
        /* a dilated stage keeps the resolution; its first block dilates as the
         * stage before it ended (GluonCV's dilated ResNetV1b, torchvision's
         * replace_stride_with_dilation) */
        int stride = (b == 0 && stage > 1 && dilation == 1) ? 2 : 1;
        int d = b == 0 ? (dilation == 4 ? 2 : 1) : dilation;
        x = bottleneck ? bottleneck_block(&r, x, planes, stride, d, block)
                       : basic_block(&r, x, planes, stride, d, dilation, block);
    }
    return x;
}

tb_value tb_resnet_build(tb_graph *g, const tb_model_spec *spec, tb_value x)
{
    x = tb_resnet_build_stem(g, spec, x);
    for (int stage = 1; stage <= 4; stage++)
        x = tb_resnet_build_stage(g, spec, x, stage);
    return tb_layer_head(g, x, spec, "fc");
}
