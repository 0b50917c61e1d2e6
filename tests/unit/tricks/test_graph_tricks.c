/* Tricks that act on a graph: the weight-decay mask (no bias decay), zero
 * gamma, and the weight EMA with swap in/out. A tiny network
 * conv1 -> bn1 -> relu -> conv2(+bias) -> bn2 (last in block) -> relu -> gap -> fc
 * in f32 (one parameter group) and f16 (two groups). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kernels/backend.h"
#include "kernels/error.h"
#include "models/graph.h"
#include "tricks/decay_mask.h"
#include "tricks/ema.h"
#include "tricks/zero_gamma.h"

/* parameter elements: conv1 4x3x3x2, bn1 4+4, conv2 4x1x1x4 + 4, bn2 4+4, fc 3x4 + 3 */
#define N_ELEMS 123
#define N_DECAYED 100 /* conv1, conv2 and fc weights */

static const struct {
    const char *name;
    int decays;      /* with no_bias_decay */
    int zero_gamma;  /* zeroed by zero_gamma */
} expected[] = {
    {"conv1.weight", 1, 0}, {"bn1.weight", 0, 0}, {"bn1.bias", 0, 0},
    {"conv2.weight", 1, 0}, {"conv2.bias", 0, 0}, {"bn2.weight", 0, 1},
    {"bn2.bias", 0, 0},     {"fc.weight", 1, 0},  {"fc.bias", 0, 0},
};
#define N_EXPECTED ((int)(sizeof expected / sizeof expected[0]))

static tb_backend *backend;

static tb_graph *tiny_graph(tb_dtype dt)
{
    tb_graph *g = NULL;
    if (tb_graph_create(&g, backend, dt, 2) != TB_OK)
        fail_msg("tb_graph_create: %s", tb_errmsg());
    tb_conv_spec c1 = {.k = 4, .kh = 3, .kw = 3, .stride = 1, .pad_h = 1, .pad_w = 1, .dilation = 1, .groups = 1};
    tb_conv_spec c2 = {.k = 4, .kh = 1, .kw = 1, .stride = 1, .dilation = 1, .groups = 1, .bias = true};
    tb_value x = tb_g_input(g, 6, 6, 2);
    x = tb_g_conv(g, "conv1", x, c1);
    x = tb_g_bn(g, "bn1", x, 1e-5f, 0.1f, 0);
    x = tb_g_relu(g, x);
    x = tb_g_conv(g, "conv2", x, c2);
    x = tb_g_bn(g, "bn2", x, 1e-5f, 0.1f, TB_BN_LAST_IN_RESIDUAL_BLOCK);
    x = tb_g_relu(g, x);
    x = tb_g_global_avgpool(g, x);
    x = tb_g_linear(g, "fc", x, 3, true);
    tb_g_set_output(g, x);
    if (tb_graph_finalize(g, true) != TB_OK)
        fail_msg("tb_graph_finalize: %s", tb_errmsg());
    assert_int_equal(tb_graph_n_params(g), N_EXPECTED);
    return g;
}

static int expected_index(const tb_param *p)
{
    for (int j = 0; j < N_EXPECTED; j++)
        if (strcmp(p->name, expected[j].name) == 0)
            return j;
    fail_msg("unexpected parameter name %s", p->name);
    return -1;
}

static void fill_params(tb_graph *g, float v)
{
    float buf[128];
    for (int i = 0; i < 128; i++)
        buf[i] = v;
    for (int i = 0; i < tb_graph_n_params(g); i++) {
        assert_true(tb_numel(&tb_graph_param(g, i)->master) <= 128);
        assert_int_equal(tb_graph_param_upload(g, i, buf), TB_OK);
    }
    assert_int_equal(tb_graph_sync_params(g), TB_OK);
}

static void check_mask(tb_graph *g, bool no_bias_decay)
{
    if (tb_trick_decay_mask(g, no_bias_decay) != TB_OK)
        fail_msg("tb_trick_decay_mask: %s", tb_errmsg());
    uint8_t *mask[2] = {NULL, NULL};
    int64_t total = 0, decayed = 0;
    for (int gi = 0; gi < 2; gi++) {
        tb_param_group *grp = tb_graph_group(g, gi);
        if (!grp)
            continue;
        mask[gi] = malloc((size_t)grp->count);
        assert_int_equal(tb_download(backend, mask[gi], &grp->decay_mask), TB_OK);
        for (int64_t i = 0; i < grp->count; i++)
            decayed += mask[gi][i];
    }
    for (int i = 0; i < tb_graph_n_params(g); i++) {
        const tb_param *p = tb_graph_param(g, i);
        total += tb_numel(&p->master);
        int want = no_bias_decay ? expected[expected_index(p)].decays : 1;
        assert_non_null(mask[p->group]);
        for (int64_t e = 0; e < tb_numel(&p->master); e++)
            if (mask[p->group][p->offset + e] != want)
                fail_msg("%s element %lld: mask %d, expected %d", p->name, (long long)e,
                         mask[p->group][p->offset + e], want);
    }
    assert_int_equal(total, N_ELEMS);
    /* every 1 lies on a parameter that decays: none in the alignment padding */
    assert_int_equal(decayed, no_bias_decay ? N_DECAYED : N_ELEMS);
    free(mask[0]);
    free(mask[1]);
}

static void test_decay_mask(void **state)
{
    (void)state;
    tb_dtype dts[2] = {TB_F32, TB_F16};
    for (int d = 0; d < 2; d++) {
        tb_graph *g = tiny_graph(dts[d]);
        check_mask(g, true);
        check_mask(g, false);
        tb_graph_destroy(g);
    }
    assert_true(tb_role_decays(TB_ROLE_CONV_WEIGHT, true) && tb_role_decays(TB_ROLE_LINEAR_WEIGHT, true));
    assert_false(tb_role_decays(TB_ROLE_BIAS, true) || tb_role_decays(TB_ROLE_BN_GAMMA, true) ||
                 tb_role_decays(TB_ROLE_BN_BETA, true));
    assert_true(tb_role_decays(TB_ROLE_BIAS, false) && tb_role_decays(TB_ROLE_BN_GAMMA, false));
}

static void test_zero_gamma(void **state)
{
    (void)state;
    tb_graph *g = tiny_graph(TB_F32);
    fill_params(g, 0.5f);
    int zeroed = -1;
    assert_int_equal(tb_trick_zero_gamma(g, &zeroed), TB_OK);
    assert_int_equal(zeroed, 1);
    for (int i = 0; i < tb_graph_n_params(g); i++) {
        const tb_param *p = tb_graph_param(g, i);
        float v[128];
        assert_int_equal(tb_graph_param_download(g, i, v), TB_OK);
        float want = expected[expected_index(p)].zero_gamma ? 0.0f : 0.5f;
        for (int64_t e = 0; e < tb_numel(&p->master); e++)
            if (v[e] != want)
                fail_msg("%s[%lld] = %g after zero_gamma, expected %g", p->name, (long long)e, v[e], want);
    }
    tb_graph_destroy(g);
}

static float param0(tb_graph *g, int i)
{
    float v[128];
    assert_int_equal(tb_graph_param_download(g, i, v), TB_OK);
    return v[0];
}

static float buffer0(tb_graph *g, int i)
{
    float v[64];
    assert_true(tb_numel(&tb_graph_buffer(g, i)->t) <= 64);
    assert_int_equal(tb_download(backend, v, &tb_graph_buffer(g, i)->t), TB_OK);
    return v[0];
}

static void set_buffers(tb_graph *g, float value)
{
    float v[64];
    for (int i = 0; i < 64; i++)
        v[i] = value;
    for (int i = 0; i < tb_graph_n_buffers(g); i++)
        assert_int_equal(tb_upload(backend, &tb_graph_buffer(g, i)->t, v), TB_OK);
}

static void test_ema_graph(void **state)
{
    (void)state;
    tb_graph *g = tiny_graph(TB_F16);
    assert_true(tb_graph_n_buffers(g) >= 4); /* running mean and var of bn1 and bn2 */
    fill_params(g, 0.5f);
    set_buffers(g, 2.0f);
    tb_ema e;
    assert_int_equal(tb_ema_init(&e, g, 0.9, false), TB_OK);
    fill_params(g, 1.0f); /* as if an optimizer step moved every weight to 1 */
    set_buffers(g, 4.0f);
    assert_int_equal(tb_ema_update(&e), TB_OK);
    fill_params(g, 3.0f);
    assert_int_equal(tb_ema_update(&e), TB_OK);
    /* 0.9 * (0.9 * 0.5 + 0.1 * 1) + 0.1 * 3 = 0.795; buffers 0.9 * (1.8 + 0.4) + 0.4 = 2.38 */
    assert_int_equal(tb_ema_swap_in(&e, g), TB_OK);
    for (int i = 0; i < tb_graph_n_params(g); i++)
        assert_float_equal(param0(g, i), 0.795f, 1e-6);
    for (int i = 0; i < tb_graph_n_buffers(g); i++)
        assert_float_equal(buffer0(g, i), 2.38f, 1e-6);
    assert_int_equal(tb_ema_update(&e), TB_ERR_INTERNAL); /* not while swapped in */
    assert_int_equal(tb_ema_swap_out(&e, g), TB_OK);
    for (int i = 0; i < tb_graph_n_params(g); i++)
        assert_float_equal(param0(g, i), 3.0f, 0);
    for (int i = 0; i < tb_graph_n_buffers(g); i++)
        assert_float_equal(buffer0(g, i), 4.0f, 0);
    assert_int_equal(tb_ema_swap_out(&e, g), TB_ERR_INTERNAL);
    tb_ema_destroy(&e);
    tb_graph_destroy(g);
}

static int setup(void **state)
{
    (void)state;
    return tb_cpu_backend_create(&backend, 2) == TB_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    tb_backend_destroy(backend);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decay_mask),
        cmocka_unit_test(test_zero_gamma),
        cmocka_unit_test(test_ema_graph),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
