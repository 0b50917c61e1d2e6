/* Faster R-CNN on a ResNet ("C4"): see models/faster_rcnn.h. */
#include "models/faster_rcnn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/error.h"
#include "kernels/rng.h"
#include "models/layers.h"

const char *const tb_frcnn_backbone_prefixes[] = {"conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4."};
const int tb_frcnn_n_backbone_prefixes = 6;

/* A 3x3 or 1x1 convolution with bias (the heads have no BN). */
static tb_value head_conv(tb_graph *g, const char *name, tb_value x, int k, int kernel)
{
    tb_conv_spec s = {.k = k, .kh = kernel, .kw = kernel, .stride = 1, .pad_h = kernel / 2, .pad_w = kernel / 2,
                      .dilation = 1, .groups = 1, .bias = true};
    return tb_g_conv(g, name, x, s);
}

static int channels_of_value(tb_graph *g, tb_value v)
{
    const tb_tensor *t = tb_graph_value_tensor(g, v);
    return t ? (int)t->shape[t->ndim - 1] : 0;
}

/* The backbone up to layer3, frozen as the spec says. */
static tb_value build_trunk(tb_graph *g, const tb_frcnn_spec *spec, tb_value x)
{
    tb_g_set_frozen(g, spec->frozen_stages >= 1);
    x = tb_resnet_build_stem(g, &spec->backbone, x);
    for (int stage = 1; stage <= 3; stage++) {
        tb_g_set_frozen(g, stage <= spec->frozen_stages);
        x = tb_resnet_build_stage(g, &spec->backbone, x, stage);
    }
    tb_g_set_frozen(g, false);
    return x;
}

static int fail_status(tb_graph *g)
{
    int st = tb_graph_status(g);
    return st != TB_OK ? st : tb_fail(TB_ERR_INTERNAL, "faster_rcnn: building failed");
}

int tb_frcnn_build(tb_graph *g, tb_frcnn_spec *spec, tb_frcnn *out)
{
    memset(out, 0, sizeof *out);
    TB_TRY(tb_model_spec_validate(&spec->backbone));
    TB_CHECK(!strncmp(spec->backbone.name, "resnet", 6), TB_ERR_INVALID,
             "faster_rcnn: the backbone must be a ResNet (got %s)", spec->backbone.name);
    TB_CHECK(spec->backbone.classes >= 2 && spec->anchors >= 1 && spec->rois >= 1 && spec->frozen_stages >= 0 &&
                 spec->frozen_stages <= 4,
             TB_ERR_INVALID, "faster_rcnn: classes %d (with background), anchors %d, rois %d, frozen stages %d invalid",
             spec->backbone.classes, spec->anchors, spec->rois, spec->frozen_stages);
    tb_g_set_bn_frozen(g, spec->freeze_bn);
    tb_value x = tb_g_input(g, spec->height, spec->width, spec->backbone.channels);
    tb_value feat = build_trunk(g, spec, x);
    const tb_tensor *ft = tb_graph_value_tensor(g, feat);
    if (tb_graph_status(g) != TB_OK || !ft)
        return fail_status(g);
    out->feat_h = (int)ft->shape[1];
    out->feat_w = (int)ft->shape[2];
    out->feat_channels = (int)ft->shape[3];
    /* strides are powers of two; padding can add a row, so round in log space (torchvision does too) */
    out->stride = exp2f(roundf(log2f((float)spec->height / (float)out->feat_h)));
    spec->roi.spatial_scale = 1.0f / out->stride;

    int c = out->feat_channels;
    tb_value h = tb_g_relu(g, head_conv(g, "rpn.head.conv", feat, c, 3));
    out->out_rpn_logits = tb_g_add_output(g, head_conv(g, "rpn.head.cls_logits", h, spec->anchors * 2, 1));
    out->out_rpn_deltas = tb_g_add_output(g, head_conv(g, "rpn.head.bbox_pred", h, spec->anchors * 4, 1));

    tb_g_begin_part(g);
    int64_t rshape[2] = {spec->rois, 5};
    out->rois = tb_g_external(g, TB_F32, 2, rshape);
    tb_value pooled = tb_g_roi_align(g, feat, out->rois, spec->roi);
    tb_g_set_frozen(g, spec->frozen_stages >= 4);
    tb_value top = tb_g_global_avgpool(g, tb_resnet_build_stage(g, &spec->backbone, pooled, 4));
    tb_g_set_frozen(g, false);
    int classes = spec->backbone.classes;
    out->out_cls = tb_g_add_output(g, tb_g_linear(g, "roi_heads.box_predictor.cls_score", top, classes, true));
    out->out_box = tb_g_add_output(g, tb_g_linear(g, "roi_heads.box_predictor.bbox_pred", top, classes * 4, true));
    tb_g_set_bn_frozen(g, false);
    if (tb_graph_status(g) != TB_OK || channels_of_value(g, top) < 1)
        return fail_status(g);
    return TB_OK;
}

static bool starts_with(const char *s, const char *prefix) { return !strncmp(s, prefix, strlen(prefix)); }

/* GluonCV's head initialisation: normal(0, std), biases 0. */
static float head_std(const char *name)
{
    if (starts_with(name, "roi_heads.box_predictor.bbox_pred"))
        return 0.001f;
    return 0.01f;
}

int tb_frcnn_init(tb_graph *g, const tb_frcnn_spec *spec, uint64_t seed)
{
    TB_TRY(tb_model_init(g, spec->backbone.init, seed));
    int rc = TB_OK;
    for (int i = 0; rc == TB_OK && i < tb_graph_n_params(g); i++) {
        const tb_param *p = tb_graph_param(g, i);
        if (!starts_with(p->name, "rpn.") && !starts_with(p->name, "roi_heads."))
            continue;
        int64_t n = tb_numel(&p->master);
        float *host = malloc((size_t)n * sizeof *host);
        TB_CHECK(host != NULL, TB_ERR_NOMEM, "faster_rcnn init: out of memory");
        tb_rng r;
        tb_rng_seed(&r, seed ^ 0x6865616473ull, (uint64_t)i);
        float std = head_std(p->name);
        for (int64_t k = 0; k < n; k++)
            host[k] = p->role == TB_ROLE_BIAS ? 0.0f : (float)tb_rng_normal(&r) * std;
        rc = tb_graph_param_upload(g, i, host);
        free(host);
    }
    TB_TRY(rc);
    return tb_graph_sync_params(g);
}

void tb_frcnn_anchors(float *out, int feat_h, int feat_w, float stride, const float *sizes, int n_sizes,
                      const float *ratios, int n_ratios)
{
    int64_t k = 0;
    for (int y = 0; y < feat_h; y++)
        for (int x = 0; x < feat_w; x++) {
            float cx = ((float)x + 0.5f) * stride, cy = ((float)y + 0.5f) * stride;
            for (int s = 0; s < n_sizes; s++)
                for (int r = 0; r < n_ratios; r++) {
                    /* area size^2 and h/w = ratio: w = size / sqrt(ratio), h = size * sqrt(ratio) */
                    float w = sizes[s] / sqrtf(ratios[r]), h = sizes[s] * sqrtf(ratios[r]);
                    out[k++] = cx - 0.5f * w;
                    out[k++] = cy - 0.5f * h;
                    out[k++] = cx + 0.5f * w;
                    out[k++] = cy + 0.5f * h;
                }
        }
}
