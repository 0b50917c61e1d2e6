/* The built graphs have the structure of the paper's variants (checked on
 * the nodes), torchvision/timm parameter names, the residual-BN flag, and
 * clear errors for bad specs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "harness/config.h"
#include "kernels/backend.h"
#include "kernels/error.h"
#include "model_test_util.h"

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

static int count_kind(const tb_graph *g, tb_node_kind kind)
{
    int n = 0;
    for (int i = 0; i < tb_graph_n_nodes(g); i++) {
        tb_node_info info;
        tb_graph_node_info(g, i, &info);
        n += info.kind == kind;
    }
    return n;
}

static void assert_conv(const tb_node_info *c, int k, int kernel, int stride)
{
    assert_int_equal(c->kind, TB_NODE_CONV);
    assert_int_equal(c->conv.k, k);
    assert_int_equal(c->conv.kh, kernel);
    assert_int_equal(c->conv.kw, kernel);
    assert_int_equal(c->conv.stride, stride);
}

/* A: stride 2 on the first 1x1 of a downsampling bottleneck; B: on the 3x3. */
static void test_variant_a_and_b_strides(void **state)
{
    (void)state;
    tb_model_spec s = test_spec("resnet50", 'A', TB_STEM_IMAGENET, 224, 1, 1000);
    tb_graph *g = test_build(be, &s, 1, false);
    for (int layer = 2; layer <= 4; layer++) {
        char n1[32], n2[32], nd[40];
        snprintf(n1, sizeof n1, "layer%d.0.conv1", layer);
        snprintf(n2, sizeof n2, "layer%d.0.conv2", layer);
        snprintf(nd, sizeof nd, "layer%d.0.downsample.0", layer);
        tb_node_info c1 = node(g, n1), c2 = node(g, n2), d = node(g, nd);
        assert_conv(&c1, 64 << (layer - 1), 1, 2);
        assert_conv(&c2, 64 << (layer - 1), 3, 1);
        assert_conv(&d, 256 << (layer - 1), 1, 2);
    }
    tb_node_info c1 = node(g, "layer1.0.conv1");
    assert_int_equal(c1.conv.stride, 1);
    assert_conv((tb_node_info[]){node(g, "conv1")}, 64, 7, 2);
    assert_int_equal(count_kind(g, TB_NODE_AVGPOOL), 0);
    tb_graph_destroy(g);

    s.variant = 'B';
    g = test_build(be, &s, 1, false);
    for (int layer = 2; layer <= 4; layer++) {
        char n1[32], n2[32];
        snprintf(n1, sizeof n1, "layer%d.0.conv1", layer);
        snprintf(n2, sizeof n2, "layer%d.0.conv2", layer);
        tb_node_info a = node(g, n1), b = node(g, n2);
        assert_conv(&a, 64 << (layer - 1), 1, 1);
        assert_conv(&b, 64 << (layer - 1), 3, 2);
    }
    tb_graph_destroy(g);
}

/* C: the stem is three 3x3 convs (32, 32, 64; strides 2, 1, 1) then the max pool. */
static void test_variant_c_stem(void **state)
{
    (void)state;
    tb_model_spec s = test_spec("resnet50", 'C', TB_STEM_IMAGENET, 224, 1, 1000);
    tb_graph *g = test_build(be, &s, 1, false);
    tb_node_info a = node(g, "conv1.0"), b = node(g, "conv1.3"), c = node(g, "conv1.6");
    assert_conv(&a, 32, 3, 2);
    assert_conv(&b, 32, 3, 1);
    assert_conv(&c, 64, 3, 1);
    assert_int_equal(test_find_node(g, "conv1"), -1);
    assert_int_equal(node(g, "conv1.1").kind, TB_NODE_BN);
    assert_int_equal(node(g, "conv1.4").kind, TB_NODE_BN);
    assert_int_equal(node(g, "bn1").kind, TB_NODE_BN);
    /* the first conv reads the network input; three convs precede the max pool */
    tb_node_info first;
    tb_graph_node_info(g, 0, &first);
    assert_string_equal(first.name, "conv1.0");
    assert_int_equal(count_kind(g, TB_NODE_MAXPOOL), 1);
    /* C keeps B's strided 1x1 shortcut */
    tb_node_info d = node(g, "layer2.0.downsample.0");
    assert_conv(&d, 512, 1, 2);
    tb_graph_destroy(g);
}

/* D: 2x2 stride-2 average pool (ceil, padding not counted) then a stride-1 1x1 conv. */
static void test_variant_d_shortcut(void **state)
{
    (void)state;
    tb_model_spec s = test_spec("resnet50", 'D', TB_STEM_IMAGENET, 224, 1, 1000);
    tb_graph *g = test_build(be, &s, 1, false);
    assert_int_equal(count_kind(g, TB_NODE_AVGPOOL), 3);
    for (int layer = 2; layer <= 4; layer++) {
        char nc[40];
        snprintf(nc, sizeof nc, "layer%d.0.downsample.1", layer);
        tb_node_info conv = node(g, nc);
        assert_conv(&conv, 256 << (layer - 1), 1, 1);
        int p = test_producer(g, conv.input);
        assert_true(p >= 0);
        tb_node_info pool;
        tb_graph_node_info(g, p, &pool);
        assert_int_equal(pool.kind, TB_NODE_AVGPOOL);
        assert_int_equal(pool.pool.kernel_h, 2);
        assert_int_equal(pool.pool.kernel_w, 2);
        assert_int_equal(pool.pool.stride_h, 2);
        assert_int_equal(pool.pool.stride_w, 2);
        assert_int_equal(pool.pool.pad_h, 0);
        assert_true(pool.pool.ceil_mode);
        assert_false(pool.pool.count_include_pad);
        snprintf(nc, sizeof nc, "layer%d.0.downsample.2", layer);
        assert_int_equal(node(g, nc).kind, TB_NODE_BN);
        /* the main path strides the 3x3 as B */
        snprintf(nc, sizeof nc, "layer%d.0.conv2", layer);
        assert_int_equal(node(g, nc).conv.stride, 2);
    }
    /* layer1's shortcut has stride 1: no pool (timm's nn.Identity at index 0) */
    tb_node_info c1 = node(g, "layer1.0.downsample.1");
    assert_conv(&c1, 256, 1, 1);
    tb_node_info prod;
    tb_graph_node_info(g, test_producer(g, c1.input), &prod);
    assert_int_equal(prod.kind, TB_NODE_MAXPOOL);
    assert_int_equal(test_find_node(g, "layer1.0.downsample.0"), -1);
    assert_int_equal(node(g, "conv1.0").kind, TB_NODE_CONV);
    tb_graph_destroy(g);
}

/* The small stem: one 3x3 stride-1 conv, no max pool, for every variant; D keeps its pools. */
static void test_small_stem(void **state)
{
    (void)state;
    for (char v = 'A'; v <= 'D'; v++) {
        tb_model_spec s = test_spec("resnet18", v, TB_STEM_SMALL, 28, 0.25f, 10);
        s.channels = 1;
        tb_graph *g = test_build(be, &s, 1, false);
        tb_node_info first;
        tb_graph_node_info(g, 0, &first);
        assert_string_equal(first.name, "conv1");
        assert_conv(&first, 16, 3, 1);
        assert_int_equal(count_kind(g, TB_NODE_MAXPOOL), 0);
        assert_int_equal(count_kind(g, TB_NODE_AVGPOOL), v == 'D' ? 3 : 0);
        assert_int_equal(test_find_node(g, "conv1.0"), -1);
        tb_graph_destroy(g);
    }
}

/* Names exactly as torchvision (A/B) and timm (D) state dicts. */
static void test_parameter_names(void **state)
{
    (void)state;
    static const char *const tv18[] = {"conv1.weight", "bn1.weight", "bn1.bias", "layer1.0.conv1.weight",
                                       "layer1.0.bn1.weight", "layer1.0.bn1.bias", "layer1.0.conv2.weight",
                                       "layer1.0.bn2.weight", "layer1.0.bn2.bias"};
    tb_model_spec s = test_spec("resnet18", 'B', TB_STEM_IMAGENET, 224, 1, 1000);
    tb_graph *g = test_build(be, &s, 1, false);
    for (int i = 0; i < (int)(sizeof tv18 / sizeof tv18[0]); i++)
        assert_string_equal(tb_graph_param(g, i)->name, tv18[i]);
    int n = tb_graph_n_params(g);
    assert_int_equal(n, 62);
    assert_string_equal(tb_graph_param(g, n - 2)->name, "fc.weight");
    assert_string_equal(tb_graph_param(g, n - 1)->name, "fc.bias");
    bool ds0 = false, ds1 = false;
    for (int i = 0; i < n; i++) {
        ds0 |= !strcmp(tb_graph_param(g, i)->name, "layer2.0.downsample.0.weight");
        ds1 |= !strcmp(tb_graph_param(g, i)->name, "layer2.0.downsample.1.bias");
    }
    assert_true(ds0 && ds1);
    assert_string_equal(tb_graph_buffer(g, 0)->name, "bn1.running_mean");
    assert_string_equal(tb_graph_buffer(g, 1)->name, "bn1.running_var");
    tb_graph_destroy(g);

    static const char *const timm50d[] = {"conv1.0.weight", "conv1.1.weight", "conv1.1.bias", "conv1.3.weight",
                                          "conv1.4.weight", "conv1.4.bias", "conv1.6.weight", "bn1.weight",
                                          "bn1.bias", "layer1.0.conv1.weight"};
    s = test_spec("resnet50", 'D', TB_STEM_IMAGENET, 224, 1, 1000);
    g = test_build(be, &s, 1, false);
    for (int i = 0; i < (int)(sizeof timm50d / sizeof timm50d[0]); i++)
        assert_string_equal(tb_graph_param(g, i)->name, timm50d[i]);
    bool conv = false, bn = false;
    for (int i = 0; i < tb_graph_n_params(g); i++) {
        const tb_param *p = tb_graph_param(g, i);
        conv |= !strcmp(p->name, "layer3.0.downsample.1.weight") && p->role == TB_ROLE_CONV_WEIGHT;
        bn |= !strcmp(p->name, "layer3.0.downsample.2.weight") && p->role == TB_ROLE_BN_GAMMA;
    }
    assert_true(conv && bn);
    tb_graph_destroy(g);
}

static void test_mobilenet_and_inception_names(void **state)
{
    (void)state;
    tb_model_spec s = test_spec("mobilenet_v1", 'B', TB_STEM_IMAGENET, 224, 1, 1000);
    tb_graph *g = test_build(be, &s, 1, false);
    assert_string_equal(tb_graph_param(g, 0)->name, "conv_stem.weight");
    assert_string_equal(tb_graph_param(g, 1)->name, "bn1.weight");
    assert_string_equal(tb_graph_param(g, 3)->name, "blocks.0.0.conv_dw.weight");
    tb_node_info dw = node(g, "blocks.3.5.conv_dw");
    assert_int_equal(dw.conv.groups, 512);
    assert_int_equal(node(g, "blocks.4.0.conv_dw").conv.stride, 2);
    assert_int_equal(node(g, "blocks.4.1.conv_pw").conv.k, 1024);
    assert_string_equal(tb_graph_param(g, tb_graph_n_params(g) - 1)->name, "classifier.bias");
    assert_int_equal(count_kind(g, TB_NODE_ADD), 0);
    tb_graph_destroy(g);

    s = test_spec("inception_v3", 'B', TB_STEM_IMAGENET, 299, 1, 1000);
    g = test_build(be, &s, 1, false);
    assert_string_equal(tb_graph_param(g, 0)->name, "Conv2d_1a_3x3.conv.weight");
    assert_string_equal(tb_graph_param(g, 1)->name, "Conv2d_1a_3x3.bn.weight");
    assert_true(test_find_node(g, "Mixed_5b.branch1x1.conv") >= 0);
    assert_true(test_find_node(g, "Mixed_7c.branch3x3dbl_3b.bn") >= 0);
    tb_node_info c = node(g, "Mixed_6b.branch7x7_2.conv");
    assert_int_equal(c.conv.kh, 1);
    assert_int_equal(c.conv.kw, 7);
    assert_int_equal(c.conv.pad_w, 3);
    assert_int_equal(test_find_node(g, "AuxLogits.fc"), -1);
    /* branch pools count the padding (F.avg_pool2d's default) */
    for (int i = 0; i < tb_graph_n_nodes(g); i++) {
        tb_node_info info;
        tb_graph_node_info(g, i, &info);
        if (info.kind == TB_NODE_AVGPOOL)
            assert_true(info.pool.count_include_pad);
    }
    /* the final concat has 2048 channels */
    assert_int_equal(count_kind(g, TB_NODE_CONCAT), 11);
    tb_graph_destroy(g);
}

/* Zero-gamma's role: exactly the last BN of every residual block is flagged. */
static void test_last_bn_flags(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        char variant;
        const char *suffix;
        int blocks;
    } nets[] = {{"resnet18", 'B', ".bn2.weight", 8}, {"resnet50", 'D', ".bn3.weight", 16},
                {"mobilenet_v1", 'B', "", 0}, {"inception_v3", 'B', "", 0}};
    for (size_t k = 0; k < sizeof nets / sizeof nets[0]; k++) {
        tb_model_spec s = test_spec(nets[k].name, nets[k].variant, TB_STEM_IMAGENET,
                                    nets[k].name[0] == 'i' ? 299 : 224, 1, 1000);
        tb_graph *g = test_build(be, &s, 1, false);
        int gammas = 0, flagged = 0;
        for (int i = 0; i < tb_graph_n_params(g); i++) {
            const tb_param *p = tb_graph_param(g, i);
            if (!(p->flags & TB_BN_LAST_IN_RESIDUAL_BLOCK))
                continue;
            flagged++;
            if (p->role == TB_ROLE_BN_GAMMA) {
                gammas++;
                size_t ln = strlen(p->name), ls = strlen(nets[k].suffix);
                assert_true(ln > ls && !strcmp(p->name + ln - ls, nets[k].suffix));
                assert_true(!strncmp(p->name, "layer", 5));
            }
        }
        assert_int_equal(gammas, nets[k].blocks);
        assert_int_equal(flagged, 2 * nets[k].blocks); /* gamma and beta */
        tb_graph_destroy(g);
    }
}

static void test_width_multiplier(void **state)
{
    (void)state;
    tb_model_spec s = test_spec("resnet50", 'D', TB_STEM_IMAGENET, 64, 0.125f, 10);
    tb_graph *g = test_build(be, &s, 1, false);
    assert_int_equal(node(g, "conv1.0").conv.k, 4);
    assert_int_equal(node(g, "conv1.6").conv.k, 8);
    assert_int_equal(node(g, "layer4.2.conv3").conv.k, 256);
    tb_graph_destroy(g);
    /* tiny multipliers keep at least one channel */
    s = test_spec("resnet18", 'B', TB_STEM_SMALL, 28, 0.001f, 10);
    g = test_build(be, &s, 1, false);
    assert_int_equal(node(g, "conv1").conv.k, 1);
    assert_int_equal(node(g, "layer4.1.conv2").conv.k, 1);
    tb_graph_destroy(g);
}

static void expect_build_error(tb_model_spec s, const char *needle)
{
    tb_graph *g = NULL;
    assert_int_equal(tb_graph_create(&g, be, TB_F32, 1), TB_OK);
    int rc = tb_model_build(g, &s);
    assert_int_not_equal(rc, TB_OK);
    if (!strstr(tb_errmsg(), needle))
        fail_msg("message '%s' lacks '%s'", tb_errmsg(), needle);
    tb_graph_destroy(g);
}

static void test_bad_specs(void **state)
{
    (void)state;
    tb_model_spec s;
    assert_int_equal(tb_model_spec_default(&s, "vgg16"), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "vgg16"));
    expect_build_error(test_spec("resnet50", 'E', TB_STEM_IMAGENET, 224, 1, 10), "variant 'E'");
    expect_build_error(test_spec("mobilenet_v1", 'D', TB_STEM_IMAGENET, 224, 1, 10), "ResNet variants");
    expect_build_error(test_spec("inception_v3", 'B', TB_STEM_IMAGENET, 74, 1, 10), "at least 75 px");
    expect_build_error(test_spec("inception_v3", 'B', TB_STEM_IMAGENET, 299, 0.5f, 10), "width");
    expect_build_error(test_spec("inception_v3", 'B', TB_STEM_SMALL, 299, 1, 10), "small stem");
    expect_build_error(test_spec("resnet18", 'B', TB_STEM_IMAGENET, 224, 0, 10), "width multiplier");
    expect_build_error(test_spec("resnet18", 'B', TB_STEM_IMAGENET, 224, 1, 0), "classes");
    s = test_spec("resnet18", 'B', TB_STEM_IMAGENET, 224, 1, 10);
    s.dropout = 1.0f;
    expect_build_error(s, "dropout");
}

static void test_spec_from_config(void **state)
{
    (void)state;
    tb_model_config cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.name, sizeof cfg.name, "resnet50");
    cfg.variant = 'D';
    snprintf(cfg.stem, sizeof cfg.stem, "auto");
    cfg.width = 0.5f;
    snprintf(cfg.init, sizeof cfg.init, "xavier");
    cfg.dropout = 0.2f;
    tb_model_spec s;
    assert_int_equal(tb_model_spec_from_config(&s, &cfg, 28, 1, 10), TB_OK);
    assert_string_equal(s.name, "resnet50");
    assert_int_equal(s.variant, 'D');
    assert_int_equal(s.stem, TB_STEM_SMALL);
    assert_true(s.width == 0.5f);
    assert_int_equal(s.classes, 10);
    assert_int_equal(s.image, 28);
    assert_int_equal(s.channels, 1);
    assert_int_equal(s.init, TB_INIT_XAVIER);
    assert_true(s.dropout == 0.2f);
    /* auto picks the ImageNet stem above 64 px; explicit classes win over the dataset's */
    cfg.classes = 100;
    assert_int_equal(tb_model_spec_from_config(&s, &cfg, 224, 3, 10), TB_OK);
    assert_int_equal(s.stem, TB_STEM_IMAGENET);
    assert_int_equal(s.classes, 100);
    snprintf(cfg.init, sizeof cfg.init, "orthogonal");
    assert_int_equal(tb_model_spec_from_config(&s, &cfg, 224, 3, 10), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "model.init"));
    assert_non_null(strstr(tb_errmsg(), "orthogonal"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_variant_a_and_b_strides),
        cmocka_unit_test(test_variant_c_stem),
        cmocka_unit_test(test_variant_d_shortcut),
        cmocka_unit_test(test_small_stem),
        cmocka_unit_test(test_parameter_names),
        cmocka_unit_test(test_mobilenet_and_inception_names),
        cmocka_unit_test(test_last_bn_flags),
        cmocka_unit_test(test_width_multiplier),
        cmocka_unit_test(test_bad_specs),
        cmocka_unit_test(test_spec_from_config),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
