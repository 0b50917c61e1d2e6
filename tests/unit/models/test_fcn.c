/* The FCN builder: a dilated ResNet keeps output stride 8 (ImageNet stem),
 * dilates stage 3 by 2 and stage 4 by 4 with the first block of each
 * dilating as the stage before ended (GluonCV, torchvision), the heads have
 * torchvision's names and the outputs are upsampled to the input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "kernels/backend.h"
#include "kernels/error.h"
#include "model_test_util.h"
#include "models/fcn.h"

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

static tb_node_info node(const tb_graph *g, const char *name)
{
    int i = test_find_node(g, name);
    if (i < 0)
        fail_msg("no node named '%s'", name);
    tb_node_info info;
    tb_graph_node_info(g, i, &info);
    return info;
}

static void build(tb_graph **g, tb_fcn *net, const char *name, tb_model_stem stem, int image)
{
    tb_fcn_spec s = {.aux = true, .head_dropout = 0.1f};
    assert_int_equal(tb_model_spec_default(&s.backbone, name), TB_OK);
    s.backbone.variant = 'D';
    s.backbone.stem = stem;
    s.backbone.width = 0.25f;
    s.backbone.classes = 7;
    s.backbone.image = image;
    s.backbone.channels = 3;
    assert_int_equal(tb_graph_create(g, be, TB_F32, 2), TB_OK);
    assert_int_equal(tb_fcn_build(*g, &s, net), TB_OK);
    assert_int_equal(tb_graph_finalize(*g, false), TB_OK);
}

static void test_resnet50_dilated(void **state)
{
    (void)state;
    tb_graph *g;
    tb_fcn net;
    build(&g, &net, "resnet50", TB_STEM_IMAGENET, 64);
    assert_int_equal(net.feat_h, 8); /* output stride 8 */
    assert_int_equal(node(g, "layer3.0.conv2").conv.stride, 1);
    assert_int_equal(node(g, "layer3.0.conv2").conv.dilation, 1);
    assert_int_equal(node(g, "layer3.1.conv2").conv.dilation, 2);
    assert_int_equal(node(g, "layer3.1.conv2").conv.pad_h, 2);
    assert_int_equal(node(g, "layer4.0.conv2").conv.dilation, 2);
    assert_int_equal(node(g, "layer4.2.conv2").conv.dilation, 4);
    /* D's shortcut pool is absent where the stride is 1 */
    assert_true(test_find_node(g, "layer4.0.downsample.1") >= 0);
    /* heads: in/4 channels (512 at full width: 2048 x 0.25 / 4 = 128 here) */
    assert_int_equal(node(g, "classifier.0").conv.k, 128);
    assert_int_equal(node(g, "classifier.4").conv.k, 7);
    assert_int_equal(node(g, "aux_classifier.0").conv.k, 64);
    assert_int_equal(tb_graph_n_outputs(g), 2);
    const tb_tensor *y = tb_graph_value_tensor(g, node(g, "classifier.4").output);
    assert_int_equal(y->shape[1], 8);
    tb_graph_destroy(g);
}

static void test_resnet18_basic_blocks_dilate_both_convs(void **state)
{
    (void)state;
    tb_graph *g;
    tb_fcn net;
    build(&g, &net, "resnet18", TB_STEM_SMALL, 32);
    assert_int_equal(net.feat_h, 16); /* the small stem does not downsample: stride 2 */
    assert_int_equal(node(g, "layer3.0.conv1").conv.dilation, 1);
    assert_int_equal(node(g, "layer3.0.conv2").conv.dilation, 2);
    assert_int_equal(node(g, "layer4.1.conv1").conv.dilation, 4);
    assert_int_equal(node(g, "layer4.1.conv2").conv.dilation, 4);
    tb_graph_destroy(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resnet50_dilated),
        cmocka_unit_test(test_resnet18_basic_blocks_dilate_both_convs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
