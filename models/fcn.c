/* FCN on a dilated ResNet: see models/fcn.h. */
#include "models/fcn.h"

#include <stdio.h>
#include <string.h>

#include "kernels/error.h"
#include "models/layers.h"

const char *const tb_fcn_backbone_prefixes[] = {"conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4."};
const int tb_fcn_n_backbone_prefixes = 6;

static int channels_of(tb_graph *g, tb_value v)
{
    const tb_tensor *t = tb_graph_value_tensor(g, v);
    return t ? (int)t->shape[t->ndim - 1] : 0;
}

/* GluonCV's _FCNHead: 3x3 conv (no bias) -> BN -> ReLU -> dropout -> 1x1 conv (bias). */
static tb_value fcn_head(tb_graph *g, const tb_fcn_spec *spec, tb_value x, const char *name)
{
    int inter = channels_of(g, x) / 4;
    if (inter < 1)
        inter = 1;
    tb_value y = tb_layer_conv(g, x, inter, 3, 3, 1, 1, 1, 1, "%s.0", name);
    y = tb_g_relu(g, tb_layer_bn(g, y, TB_BN_EPS, 0, "%s.1", name));
    if (spec->head_dropout > 0.0f)
        y = tb_g_dropout(g, y, spec->head_dropout);
    char last[TB_NAME_LEN];
    snprintf(last, sizeof last, "%s.4", name);
    tb_conv_spec s = {.k = spec->backbone.classes, .kh = 1, .kw = 1, .stride = 1, .dilation = 1, .groups = 1,
                      .bias = true};
    return tb_g_conv(g, last, y, s);
}

int tb_fcn_build(tb_graph *g, const tb_fcn_spec *spec, tb_fcn *out)
{
    memset(out, 0, sizeof *out);
    out->out_aux = -1;
    TB_TRY(tb_model_spec_validate(&spec->backbone));
    TB_CHECK(!strncmp(spec->backbone.name, "resnet", 6), TB_ERR_INVALID, "fcn: the backbone must be a ResNet (got %s)",
             spec->backbone.name);
    TB_CHECK(spec->backbone.classes >= 2, TB_ERR_INVALID, "fcn: %d classes", spec->backbone.classes);
    const tb_model_spec *b = &spec->backbone;
    tb_g_set_bn_frozen(g, spec->freeze_bn);
    tb_value x = tb_g_input(g, b->image, b->image, b->channels);
    x = tb_resnet_build_stem(g, b, x);
    x = tb_resnet_build_stage(g, b, x, 1);
    x = tb_resnet_build_stage(g, b, x, 2);
    tb_value c3 = tb_resnet_build_stage_dilated(g, b, x, 3, 2);
    tb_value c4 = tb_resnet_build_stage_dilated(g, b, c3, 4, 4);
    tb_g_set_bn_frozen(g, false);
    tb_value main = tb_g_resize_bilinear(g, fcn_head(g, spec, c4, "classifier"), b->image, b->image);
    out->out_main = tb_g_add_output(g, main);
    if (spec->aux)
        out->out_aux = tb_g_add_output(g, tb_g_resize_bilinear(g, fcn_head(g, spec, c3, "aux_classifier"), b->image,
                                                               b->image));
    int st = tb_graph_status(g);
    if (st != TB_OK)
        return st;
    const tb_tensor *ft = tb_graph_value_tensor(g, c4);
    out->feat_h = (int)ft->shape[1];
    out->feat_w = (int)ft->shape[2];
    return TB_OK;
}

int tb_fcn_init(tb_graph *g, const tb_fcn_spec *spec, uint64_t seed)
{
    return tb_model_init(g, spec->backbone.init, seed);
}
