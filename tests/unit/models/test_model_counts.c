/* Parameter and MAC counts of every model and variant against the published
 * figures: torchvision's parameters() totals, timm's resnet50d, Keras'
 * MobileNet (trainable parameters), the Bag-of-Tricks paper's GFLOPs (table
 * 5: ResNet-50 3.8 (A), 4.1 (B), 4.3 (C), 4.3 (D); it counts MACs), and
 * torchvision's GFLOPS column (MACs as well): resnet18 1.81, resnet34 3.66,
 * resnet50 4.09, resnet101 7.80, resnet152 11.51, inception_v3 5.71.
 * Counting needs no memory: the graphs are finalized without allocation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

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

typedef struct count_case {
    const char *name;
    char variant;
    tb_model_stem stem;
    int image;
    float width;
    int classes;
    int64_t params;           /* exact */
    double macs_lo, macs_hi;  /* published figure, rounded as published */
    int64_t macs;             /* exact count of this implementation (regression guard) */
} count_case;

#define IN TB_STEM_IMAGENET
#define SM TB_STEM_SMALL

static const count_case cases[] = {
    /* torchvision (A and B share the parameters; A moves the stride onto the 1x1 conv) */
    {"resnet18", 'B', IN, 224, 1, 1000, 11689512, 1.805e9, 1.815e9, 1814073344},
    {"resnet18", 'A', IN, 224, 1, 1000, 11689512, 1.805e9, 1.815e9, 1814073344},
    {"resnet34", 'B', IN, 224, 1, 1000, 21797672, 3.655e9, 3.665e9, 3663761408},
    {"resnet50", 'A', IN, 224, 1, 1000, 25557032, 3.75e9, 3.9e9, 3857973248},
    {"resnet50", 'B', IN, 224, 1, 1000, 25557032, 4.085e9, 4.095e9, 4089184256},
    {"resnet50", 'C', IN, 224, 1, 1000, 25576264, 4.3e9, 4.4e9, 4328824832},
    {"resnet50", 'D', IN, 224, 1, 1000, 25576264, 4.3e9, 4.4e9, 4328824832},
    {"resnet101", 'B', IN, 224, 1, 1000, 44549160, 7.795e9, 7.805e9, 7801405440},
    {"resnet152", 'B', IN, 224, 1, 1000, 60192808, 11.505e9, 11.515e9, 11513626624},
    /* timm's resnet101d / resnet152d: the deep stem adds 19,232 parameters to any depth */
    {"resnet101", 'D', IN, 224, 1, 1000, 44568392, 8.0e9, 8.1e9, 8041046016},
    {"resnet152", 'D', IN, 224, 1, 1000, 60212040, 11.7e9, 11.8e9, 11753267200},
    {"resnet18", 'D', IN, 224, 1, 1000, 11708744, 2.0e9, 2.1e9, 2053713920},
    /* Keras MobileNet(alpha=1.0): 4,231,976 trainable, 569 M mult-adds (the paper) */
    {"mobilenet_v1", 'B', IN, 224, 1, 1000, 4231976, 0.565e9, 0.572e9, 568740352},
    /* Keras MobileNet(alpha=0.25): 470,072 trainable, 41 M mult-adds (the paper) */
    {"mobilenet_v1", 'B', IN, 224, 0.25f, 1000, 470072, 0.040e9, 0.042e9, 41030272},
    /* torchvision inception_v3: 27,161,264 with AuxLogits (3,326,696) */
    {"inception_v3", 'B', IN, 299, 1, 1000, 23834568, 5.705e9, 5.715e9, 5713216096},
    /* the CIFAR ResNet-18 (small stem, 10 classes): 11,173,962 parameters, 0.56 GMACs */
    {"resnet18", 'B', SM, 32, 1, 10, 11173962, 0.55e9, 0.56e9, 555422720},
};

static void test_published_counts(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const count_case *c = &cases[i];
        tb_model_spec s = test_spec(c->name, c->variant, c->stem, c->image, c->width, c->classes);
        tb_graph *g = test_build(be, &s, 1, false);
        int64_t params = tb_graph_param_elements(g), macs = tb_graph_macs(g);
        tb_graph_destroy(g);
        if (params != c->params || macs != c->macs || (double)macs < c->macs_lo || (double)macs > c->macs_hi)
            fail_msg("%s %c %s %dpx width %g: params %lld (want %lld), MACs %lld (want %lld, published %.4g-%.4g)",
                     c->name, c->variant, tb_stem_name(c->stem), c->image, (double)c->width, (long long)params,
                     (long long)c->params, (long long)macs, (long long)c->macs, c->macs_lo, c->macs_hi);
    }
}

/* Variants A and B of basic-block ResNets are the same network. */
static void test_basic_blocks_a_equals_b(void **state)
{
    (void)state;
    tb_model_spec a = test_spec("resnet34", 'A', IN, 224, 1, 1000);
    tb_model_spec b = test_spec("resnet34", 'B', IN, 224, 1, 1000);
    tb_graph *ga = test_build(be, &a, 1, false), *gb = test_build(be, &b, 1, false);
    assert_int_equal(tb_graph_n_nodes(ga), tb_graph_n_nodes(gb));
    for (int i = 0; i < tb_graph_n_nodes(ga); i++) {
        tb_node_info x, y;
        tb_graph_node_info(ga, i, &x);
        tb_graph_node_info(gb, i, &y);
        assert_int_equal(x.kind, y.kind);
        assert_string_equal(x.name, y.name);
        assert_int_equal(x.conv.stride, y.conv.stride);
    }
    tb_graph_destroy(ga);
    tb_graph_destroy(gb);
}

/* The classifier and input channels change the counts as expected. */
static void test_classes_and_channels(void **state)
{
    (void)state;
    tb_model_spec s = test_spec("resnet50", 'B', IN, 224, 1, 10);
    tb_graph *g = test_build(be, &s, 1, false);
    assert_int_equal(tb_graph_param_elements(g), 25557032 - 2048 * 990 - 990);
    tb_graph_destroy(g);
    s = test_spec("resnet50", 'B', IN, 224, 1, 1000);
    s.channels = 1;
    g = test_build(be, &s, 1, false);
    assert_int_equal(tb_graph_param_elements(g), 25557032 - 2 * 64 * 49);
    tb_graph_destroy(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_published_counts),
        cmocka_unit_test(test_basic_blocks_a_equals_b),
        cmocka_unit_test(test_classes_and_channels),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
