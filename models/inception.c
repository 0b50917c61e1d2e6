/* Inception-V3 as torchvision builds it (Szegedy et al. 2016, torchvision's
 * models/inception.py), for 299 px inputs (75 px at least), without the
 * auxiliary classifier. Every convolution is torchvision's BasicConv2d:
 * conv without bias, BN with eps 0.001, ReLU; named NAME.conv and NAME.bn.
 * Branch pools are 3x3 average pools with stride 1 and padding 1 that count
 * the padding (F.avg_pool2d's default). */
#include <stdio.h>

#include "models/layers.h"

#define INCEPTION_BN_EPS 1e-3f

/* BasicConv2d with a kh x kw kernel, stride and padding; name "<block>.<branch>". */
static tb_value basic(tb_graph *g, tb_value x, int out, int kh, int kw, int stride, int ph, int pw,
                      const char *block, const char *branch)
{
    char name[TB_NAME_LEN];
    snprintf(name, sizeof name, "%s%s%s", block, *block ? "." : "", branch);
    x = tb_layer_conv(g, x, out, kh, kw, stride, ph, pw, 1, "%s.conv", name);
    return tb_g_relu(g, tb_layer_bn(g, x, INCEPTION_BN_EPS, 0, "%s.bn", name));
}

static tb_value avg3(tb_graph *g, tb_value x) { return tb_g_avgpool(g, x, tb_pool_make(3, 1, 1, false, true)); }
static tb_value max3s2(tb_graph *g, tb_value x) { return tb_g_maxpool(g, x, tb_pool_make(3, 2, 0, false, false)); }

/* 35x35 grid: 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 | avg pool -> 1x1 */
static tb_value inception_a(tb_graph *g, tb_value x, int pool_features, const char *n)
{
    tb_value b[4];
    b[0] = basic(g, x, 64, 1, 1, 1, 0, 0, n, "branch1x1");
    b[1] = basic(g, x, 48, 1, 1, 1, 0, 0, n, "branch5x5_1");
    b[1] = basic(g, b[1], 64, 5, 5, 1, 2, 2, n, "branch5x5_2");
    b[2] = basic(g, x, 64, 1, 1, 1, 0, 0, n, "branch3x3dbl_1");
    b[2] = basic(g, b[2], 96, 3, 3, 1, 1, 1, n, "branch3x3dbl_2");
    b[2] = basic(g, b[2], 96, 3, 3, 1, 1, 1, n, "branch3x3dbl_3");
    b[3] = basic(g, avg3(g, x), pool_features, 1, 1, 1, 0, 0, n, "branch_pool");
    return tb_g_concat(g, b, 4);
}

/* grid reduction 35 -> 17 */
static tb_value inception_b(tb_graph *g, tb_value x, const char *n)
{
    tb_value b[3];
    b[0] = basic(g, x, 384, 3, 3, 2, 0, 0, n, "branch3x3");
    b[1] = basic(g, x, 64, 1, 1, 1, 0, 0, n, "branch3x3dbl_1");
    b[1] = basic(g, b[1], 96, 3, 3, 1, 1, 1, n, "branch3x3dbl_2");
    b[1] = basic(g, b[1], 96, 3, 3, 2, 0, 0, n, "branch3x3dbl_3");
    b[2] = max3s2(g, x);
    return tb_g_concat(g, b, 3);
}

/* 17x17 grid with factorised 7x7 convolutions (1x7 and 7x1) */
static tb_value inception_c(tb_graph *g, tb_value x, int c7, const char *n)
{
    tb_value b[4];
    b[0] = basic(g, x, 192, 1, 1, 1, 0, 0, n, "branch1x1");
    b[1] = basic(g, x, c7, 1, 1, 1, 0, 0, n, "branch7x7_1");
    b[1] = basic(g, b[1], c7, 1, 7, 1, 0, 3, n, "branch7x7_2");
    b[1] = basic(g, b[1], 192, 7, 1, 1, 3, 0, n, "branch7x7_3");
    b[2] = basic(g, x, c7, 1, 1, 1, 0, 0, n, "branch7x7dbl_1");
    b[2] = basic(g, b[2], c7, 7, 1, 1, 3, 0, n, "branch7x7dbl_2");
    b[2] = basic(g, b[2], c7, 1, 7, 1, 0, 3, n, "branch7x7dbl_3");
    b[2] = basic(g, b[2], c7, 7, 1, 1, 3, 0, n, "branch7x7dbl_4");
    b[2] = basic(g, b[2], 192, 1, 7, 1, 0, 3, n, "branch7x7dbl_5");
    b[3] = basic(g, avg3(g, x), 192, 1, 1, 1, 0, 0, n, "branch_pool");
    return tb_g_concat(g, b, 4);
}

/* grid reduction 17 -> 8 */
static tb_value inception_d(tb_graph *g, tb_value x, const char *n)
{
    tb_value b[3];
    b[0] = basic(g, x, 192, 1, 1, 1, 0, 0, n, "branch3x3_1");
    b[0] = basic(g, b[0], 320, 3, 3, 2, 0, 0, n, "branch3x3_2");
    b[1] = basic(g, x, 192, 1, 1, 1, 0, 0, n, "branch7x7x3_1");
    b[1] = basic(g, b[1], 192, 1, 7, 1, 0, 3, n, "branch7x7x3_2");
    b[1] = basic(g, b[1], 192, 7, 1, 1, 3, 0, n, "branch7x7x3_3");
    b[1] = basic(g, b[1], 192, 3, 3, 2, 0, 0, n, "branch7x7x3_4");
    b[2] = max3s2(g, x);
    return tb_g_concat(g, b, 3);
}

/* 8x8 grid with the expanded filter bank (1x3 and 3x1 side by side) */
static tb_value inception_e(tb_graph *g, tb_value x, const char *n)
{
    tb_value b[6];
    b[0] = basic(g, x, 320, 1, 1, 1, 0, 0, n, "branch1x1");
    tb_value t = basic(g, x, 384, 1, 1, 1, 0, 0, n, "branch3x3_1");
    b[1] = basic(g, t, 384, 1, 3, 1, 0, 1, n, "branch3x3_2a");
    b[2] = basic(g, t, 384, 3, 1, 1, 1, 0, n, "branch3x3_2b");
    t = basic(g, x, 448, 1, 1, 1, 0, 0, n, "branch3x3dbl_1");
    t = basic(g, t, 384, 3, 3, 1, 1, 1, n, "branch3x3dbl_2");
    b[3] = basic(g, t, 384, 1, 3, 1, 0, 1, n, "branch3x3dbl_3a");
    b[4] = basic(g, t, 384, 3, 1, 1, 1, 0, n, "branch3x3dbl_3b");
    b[5] = basic(g, avg3(g, x), 192, 1, 1, 1, 0, 0, n, "branch_pool");
    /* torchvision concatenates [1x1, cat(2a, 2b), cat(3a, 3b), pool]: the same channel order */
    return tb_g_concat(g, b, 6);
}

tb_value tb_inception_v3_build(tb_graph *g, const tb_model_spec *spec, tb_value x)
{
    x = basic(g, x, 32, 3, 3, 2, 0, 0, "", "Conv2d_1a_3x3");
    x = basic(g, x, 32, 3, 3, 1, 0, 0, "", "Conv2d_2a_3x3");
    x = basic(g, x, 64, 3, 3, 1, 1, 1, "", "Conv2d_2b_3x3");
    x = max3s2(g, x);
    x = basic(g, x, 80, 1, 1, 1, 0, 0, "", "Conv2d_3b_1x1");
    x = basic(g, x, 192, 3, 3, 1, 0, 0, "", "Conv2d_4a_3x3");
    x = max3s2(g, x);
    x = inception_a(g, x, 32, "Mixed_5b");
    x = inception_a(g, x, 64, "Mixed_5c");
    x = inception_a(g, x, 64, "Mixed_5d");
    x = inception_b(g, x, "Mixed_6a");
    x = inception_c(g, x, 128, "Mixed_6b");
    x = inception_c(g, x, 160, "Mixed_6c");
    x = inception_c(g, x, 160, "Mixed_6d");
    x = inception_c(g, x, 192, "Mixed_6e");
    x = inception_d(g, x, "Mixed_7a");
    x = inception_e(g, x, "Mixed_7b");
    x = inception_e(g, x, "Mixed_7c");
    return tb_layer_head(g, x, spec, "fc");
}
