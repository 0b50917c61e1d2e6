/* MobileNet v1 (Howard et al. 2017): a 3x3 stride-2 conv, 13 depthwise
 * separable blocks (3x3 depthwise conv + BN + ReLU, 1x1 pointwise conv + BN +
 * ReLU), global average pool and a fully connected classifier with bias.
 * Names are timm's mobilenetv1_100: conv_stem, bn1, blocks.S.B.{conv_dw, bn1,
 * conv_pw, bn2}, classifier. No residual connections (timm's "dsa" blocks
 * are noskip). ReLU rather than ReLU6: see models.h. */
#include "models/layers.h"

/* timm's arch_def: {out channels, repeats, stride of the first block} per stage */
static const struct {
    int out, repeats, stride;
} stages[] = {{64, 1, 1}, {128, 2, 2}, {256, 2, 2}, {512, 6, 2}, {1024, 2, 2}};

static tb_value separable(tb_graph *g, tb_value x, int in, int out, int stride, int s, int b)
{
    x = tb_layer_conv(g, x, in, 3, 3, stride, 1, 1, in, "blocks.%d.%d.conv_dw", s, b);
    x = tb_g_relu(g, tb_layer_bn(g, x, TB_BN_EPS, 0, "blocks.%d.%d.bn1", s, b));
    x = tb_layer_conv(g, x, out, 1, 1, 1, 0, 0, 1, "blocks.%d.%d.conv_pw", s, b);
    return tb_g_relu(g, tb_layer_bn(g, x, TB_BN_EPS, 0, "blocks.%d.%d.bn2", s, b));
}

tb_value tb_mobilenet_v1_build(tb_graph *g, const tb_model_spec *spec, tb_value x)
{
    int c = tb_scale_width(32, spec->width);
    /* the small stem keeps the resolution for 28-32 px images (the usual CIFAR MobileNet) */
    int stem_stride = spec->stem == TB_STEM_SMALL ? 1 : 2;
    x = tb_layer_conv(g, x, c, 3, 3, stem_stride, 1, 1, 1, "conv_stem");
    x = tb_g_relu(g, tb_layer_bn(g, x, TB_BN_EPS, 0, "bn1"));
    for (int s = 0; s < (int)(sizeof stages / sizeof stages[0]); s++) {
        int out = tb_scale_width(stages[s].out, spec->width);
        for (int b = 0; b < stages[s].repeats; b++) {
            x = separable(g, x, c, out, b == 0 ? stages[s].stride : 1, s, b);
            c = out;
        }
    }
    return tb_layer_head(g, x, spec, "classifier");
}
