/* The graph features detection needs (frozen parameters and BN, parts,
 * several outputs, an external value, a batch axis that changes at RoIAlign)
 * and the Faster R-CNN builder on top of them: shapes, names, what is
 * frozen, anchors, and a classification checkpoint loading into the backbone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "kernels/backend.h"
#include "kernels/error.h"
#include "models/faster_rcnn.h"
#include "models/models.h"
#include "models/safetensors.h"
#include "tricks/decay_mask.h"

static tb_backend *be;

static int setup(void **state)
{
    (void)state;
    return tb_cpu_backend_create(&be, 1);
}

static int teardown(void **state)
{
    (void)state;
    tb_backend_destroy(be);
    return 0;
}

static tb_param *param_named(tb_graph *g, const char *name)
{
    for (int i = 0; i < tb_graph_n_params(g); i++)
        if (!strcmp(tb_graph_param(g, i)->name, name))
            return tb_graph_param(g, i);
    return NULL;
}

static double abs_sum(const tb_tensor *t)
{
    double s = 0;
    for (int64_t i = 0; i < tb_numel(t); i++)
        s += fabs(tb_load_f32(t->data, t->dtype, i));
    return s;
}

static void fill_ramp(tb_tensor *t, float scale)
{
    for (int64_t i = 0; i < tb_numel(t); i++)
        tb_store_f32(t->data, t->dtype, i, scale * (float)((i * 7919) % 101 - 50) / 50.0f);
}

/* conv (frozen) -> frozen BN -> conv -> output 0; part 1: RoIAlign over an
 * external -> conv -> global pool -> output 1. */
static void test_frozen_parts_outputs(void **state)
{
    (void)state;
    tb_graph *g;
    assert_int_equal(tb_graph_create(&g, be, TB_F32, 2), TB_OK);
    tb_value x = tb_g_input(g, 8, 8, 3);
    tb_g_set_frozen(g, true);
    tb_g_set_bn_frozen(g, true);
    tb_conv_spec s3 = {.k = 4, .kh = 3, .kw = 3, .stride = 1, .pad_h = 1, .pad_w = 1, .dilation = 1, .groups = 1};
    tb_value a = tb_g_bn(g, "bn0", tb_g_conv(g, "conv0", x, s3), 1e-5f, 0.1f, 0);
    tb_g_set_frozen(g, false);
    tb_g_set_bn_frozen(g, false);
    tb_value f = tb_g_conv(g, "conv1", a, s3);
    assert_int_equal(tb_g_add_output(g, f), 0);
    assert_int_equal(tb_g_begin_part(g), 1);
    tb_value rois = tb_g_external(g, TB_F32, 2, (const int64_t[]){3, 5});
    tb_roi_align_params rp = {.pooled_h = 2, .pooled_w = 2, .spatial_scale = 1.0f, .sampling_ratio = 2};
    tb_value p = tb_g_roi_align(g, f, rois, rp);
    tb_value h = tb_g_global_avgpool(g, tb_g_conv(g, "conv2", p, s3));
    assert_int_equal(tb_g_add_output(g, h), 1);
    assert_int_equal(tb_graph_finalize(g, true), TB_OK);
    assert_int_equal(tb_graph_n_parts(g), 2);
    assert_int_equal(tb_graph_n_outputs(g), 2);
    /* the batch axis changes: 2 images in, 3 RoIs out */
    assert_int_equal(tb_graph_output_at(g, 1)->shape[0], 3);
    assert_int_equal(tb_graph_output_at(g, 1)->shape[1], 4);
    assert_true(param_named(g, "conv0.weight")->flags & TB_PARAM_FROZEN);
    assert_true(param_named(g, "bn0.weight")->flags & TB_PARAM_FROZEN);
    assert_false(param_named(g, "conv1.weight")->flags & TB_PARAM_FROZEN);

    fill_ramp(tb_graph_input(g), 1.0f);
    for (int i = 0; i < tb_graph_n_params(g); i++)
        fill_ramp(&tb_graph_param(g, i)->master, 0.3f);
    float boxes[15] = {0, 0, 0, 4, 4, 1, 2, 2, 7, 7, 1, 0, 3, 5, 8};
    memcpy(tb_graph_value_tensor_mut(g, rois)->data, boxes, sizeof boxes);
    float mean_before = ((float *)tb_graph_buffer(g, 0)->t.data)[0];
    assert_int_equal(tb_graph_forward_part(g, true, 0), TB_OK);
    /* a frozen BN uses and keeps its running statistics */
    assert_true(((float *)tb_graph_buffer(g, 0)->t.data)[0] == mean_before);
    assert_int_equal(tb_graph_forward_part(g, true, 1), TB_OK);
    assert_int_equal(tb_graph_zero_grads(g), TB_OK);
    fill_ramp(tb_graph_output_grad_at(g, 0), 1.0f);
    fill_ramp(tb_graph_output_grad_at(g, 1), 1.0f);
    assert_int_equal(tb_graph_backward(g), TB_OK);
    assert_true(abs_sum(&param_named(g, "conv0.weight")->grad) == 0.0);
    assert_true(abs_sum(&param_named(g, "bn0.weight")->grad) == 0.0);
    assert_true(abs_sum(&param_named(g, "conv1.weight")->grad) > 0.0);
    assert_true(abs_sum(&param_named(g, "conv2.weight")->grad) > 0.0);
    /* frozen parameters never decay */
    assert_int_equal(tb_trick_decay_mask(g, false), TB_OK);
    tb_param_group *grp = tb_graph_group(g, TB_GROUP_F32);
    const uint8_t *mask = grp->decay_mask.data;
    assert_int_equal(mask[param_named(g, "conv0.weight")->offset], 0);
    assert_int_equal(mask[param_named(g, "conv1.weight")->offset], 1);
    tb_graph_destroy(g);
}

static void test_graph_rejects_bad_detection_nodes(void **state)
{
    (void)state;
    tb_graph *g;
    assert_int_equal(tb_graph_create(&g, be, TB_F32, 1), TB_OK);
    tb_value x = tb_g_input(g, 4, 4, 2);
    tb_value r = tb_g_external(g, TB_F32, 2, (const int64_t[]){2, 4}); /* rois need 5 columns */
    tb_roi_align_params rp = {.pooled_h = 2, .pooled_w = 2, .spatial_scale = 1.0f};
    assert_int_equal(tb_g_roi_align(g, x, r, rp), -1);
    assert_int_equal(tb_graph_status(g), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "roi_align"));
    tb_graph_destroy(g);
    /* an output with nothing trainable upstream has no gradient to seed */
    assert_int_equal(tb_graph_create(&g, be, TB_F32, 1), TB_OK);
    x = tb_g_input(g, 4, 4, 2);
    assert_int_equal(tb_g_add_output(g, tb_g_relu(g, x)), -1);
    assert_non_null(strstr(tb_errmsg(), "nothing trainable"));
    tb_graph_destroy(g);
}

static void spec_small(tb_frcnn_spec *s)
{
    memset(s, 0, sizeof *s);
    assert_int_equal(tb_model_spec_default(&s->backbone, "resnet18"), TB_OK);
    s->backbone.variant = 'D';
    s->backbone.stem = TB_STEM_SMALL;
    s->backbone.width = 0.125f;
    s->backbone.classes = 11;
    s->backbone.channels = 1;
    s->backbone.image = 64;
    s->images = 2;
    s->height = s->width = 64;
    s->anchors = 9;
    s->rois = 2 * 8;
    s->roi = (tb_roi_align_params){.pooled_h = 7, .pooled_w = 7, .sampling_ratio = 2};
    s->freeze_bn = true;
    s->frozen_stages = 1;
}

static void test_frcnn_structure(void **state)
{
    (void)state;
    tb_frcnn_spec s;
    spec_small(&s);
    tb_graph *g;
    tb_frcnn net;
    assert_int_equal(tb_graph_create(&g, be, TB_F32, s.images), TB_OK);
    assert_int_equal(tb_frcnn_build(g, &s, &net), TB_OK);
    assert_int_equal(tb_graph_finalize(g, true), TB_OK);
    /* small stem: stride 4 at layer3 (64 px -> 16) */
    assert_int_equal(net.feat_h, 16);
    assert_int_equal(net.feat_w, 16);
    assert_true(net.stride == 4.0f);
    assert_true(s.roi.spatial_scale == 0.25f);
    const tb_tensor *rl = tb_graph_output_at(g, net.out_rpn_logits), *rd = tb_graph_output_at(g, net.out_rpn_deltas);
    assert_int_equal(rl->shape[3], 18);
    assert_int_equal(rd->shape[3], 36);
    assert_int_equal(tb_graph_output_at(g, net.out_cls)->shape[0], 16);
    assert_int_equal(tb_graph_output_at(g, net.out_cls)->shape[1], 11);
    assert_int_equal(tb_graph_output_at(g, net.out_box)->shape[1], 44);
    /* names: the classification backbone's, torchvision's heads, no fc */
    assert_non_null(param_named(g, "layer4.1.conv2.weight"));
    assert_non_null(param_named(g, "rpn.head.conv.weight"));
    assert_non_null(param_named(g, "roi_heads.box_predictor.bbox_pred.bias"));
    assert_null(param_named(g, "fc.weight"));
    /* the stem and layer1 are frozen, layer2 is trained, every BN is frozen */
    assert_true(param_named(g, "conv1.weight")->flags & TB_PARAM_FROZEN);
    assert_true(param_named(g, "layer1.0.conv1.weight")->flags & TB_PARAM_FROZEN);
    assert_false(param_named(g, "layer2.0.conv1.weight")->flags & TB_PARAM_FROZEN);
    assert_true(param_named(g, "layer4.0.bn1.weight")->flags & TB_PARAM_FROZEN);
    assert_int_equal(tb_frcnn_init(g, &s, 3), TB_OK);
    /* GluonCV's head init: small normal weights, zero biases */
    tb_param *bp = param_named(g, "roi_heads.box_predictor.bbox_pred.weight");
    double mean_abs = abs_sum(&bp->master) / (double)tb_numel(&bp->master);
    assert_true(mean_abs > 0.0002 && mean_abs < 0.002);
    assert_true(abs_sum(&param_named(g, "rpn.head.conv.bias")->master) == 0.0);
    tb_graph_destroy(g);
}

/* A classification ResNet's checkpoint provides the detector's backbone. */
static void test_frcnn_loads_classification_backbone(void **state)
{
    (void)state;
    tb_frcnn_spec s;
    spec_small(&s);
    tb_model_spec cls = s.backbone;
    cls.classes = 10;
    cls.image = 28;
    tb_graph *c, *g;
    assert_int_equal(tb_graph_create(&c, be, TB_F32, 1), TB_OK);
    assert_int_equal(tb_model_build(c, &cls), TB_OK);
    assert_int_equal(tb_graph_finalize(c, true), TB_OK);
    assert_int_equal(tb_model_init(c, TB_INIT_KAIMING, 11), TB_OK);
    char path[] = "/tmp/tb_frcnn_backbone_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(tb_safetensors_save(c, path), TB_OK);
    tb_frcnn net;
    assert_int_equal(tb_graph_create(&g, be, TB_F32, s.images), TB_OK);
    assert_int_equal(tb_frcnn_build(g, &s, &net), TB_OK);
    assert_int_equal(tb_graph_finalize(g, true), TB_OK);
    assert_int_equal(tb_frcnn_init(g, &s, 5), TB_OK);
    assert_int_equal(tb_safetensors_load_prefixes(g, path, tb_frcnn_backbone_prefixes, tb_frcnn_n_backbone_prefixes),
                     TB_OK);
    unlink(path);
    const char *name = "layer4.1.conv2.weight";
    tb_param *a = NULL, *b = param_named(g, name);
    for (int i = 0; i < tb_graph_n_params(c); i++)
        if (!strcmp(tb_graph_param(c, i)->name, name))
            a = tb_graph_param(c, i);
    assert_non_null(a);
    assert_memory_equal(a->master.data, b->master.data, tb_nbytes(&a->master));
    tb_graph_destroy(c);
    tb_graph_destroy(g);
}

static void test_anchors(void **state)
{
    (void)state;
    float out[2 * 1 * 2 * 1 * 4];
    tb_frcnn_anchors(out, 1, 2, 16.0f, (const float[]){32, 64}, 2, (const float[]){1.0f}, 1);
    /* position (0, 0): centre (8, 8); size 32 then 64 */
    assert_true(out[0] == -8.0f && out[1] == -8.0f && out[2] == 24.0f && out[3] == 24.0f);
    assert_true(out[4] == -24.0f && out[7] == 40.0f);
    /* position (0, 1): centre (24, 8) */
    assert_true(out[8] == 8.0f && out[10] == 40.0f);
    float r[4];
    tb_frcnn_anchors(r, 1, 1, 16.0f, (const float[]){32}, 1, (const float[]){2.0f}, 1);
    /* ratio = height / width = 2 at the same area */
    float w = r[2] - r[0], h = r[3] - r[1];
    assert_true(fabsf(h / w - 2.0f) < 1e-5f && fabsf(w * h - 1024.0f) < 1e-2f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frozen_parts_outputs),
        cmocka_unit_test(test_graph_rejects_bad_detection_nodes),
        cmocka_unit_test(test_frcnn_structure),
        cmocka_unit_test(test_frcnn_loads_classification_backbone),
        cmocka_unit_test(test_anchors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
