/* The static graph end to end: a small residual network's parameter
 * gradients against central finite differences, in-place ReLU planning,
 * shape errors, determinism of SGD steps, a low-precision graph against the
 * f32 one, and the fused BN (+ add) + ReLU against the separate ops. */
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
#include "kernels/ops.h"
#include "kernels/rng.h"
#include "models/graph.h"

#define BATCH 3
#define CLASSES 4

static tb_backend *be;

static int setup(void **state)
{
    (void)state;
    return tb_cpu_backend_create(&be, 2);
}

static int teardown(void **state)
{
    (void)state;
    tb_backend_destroy(be);
    return 0;
}

/* Shortcut variants of build_block. SHORTCUT_REREAD: the shortcut is added
 * once more after the block's ReLU; SHORTCUT_SIDE_BN: a BN of the shortcut
 * built before the block's ReLU and fused with a ReLU built after it. In
 * both the block's fused node is not the first to write the shortcut's
 * gradient (it must add to it). */
enum { SHORTCUT_PLAIN, SHORTCUT_BN, SHORTCUT_REREAD, SHORTCUT_SIDE_BN, SHORTCUT_VARIANTS };

/* conv-bn-relu-conv-bn(last) + 1x1 shortcut (+ bn), relu, maxpool, gap, linear */
static tb_graph *build_block(tb_dtype dt, bool fuse, int variant)
{
    tb_graph *g = NULL;
    assert_int_equal(tb_graph_create(&g, be, dt, BATCH), TB_OK);
    tb_g_set_fusion(g, fuse);
    tb_value x = tb_g_input(g, 6, 5, 3);
    tb_conv_spec c3 = {.k = 6, .kh = 3, .kw = 3, .stride = 1, .pad_h = 1, .pad_w = 1};
    tb_conv_spec c1 = {.k = 6, .kh = 1, .kw = 1, .stride = 1, .bias = true};
    tb_value a = tb_g_conv(g, "conv1", x, c3);
    a = tb_g_relu(g, tb_g_bn(g, "bn1", a, 1e-5f, 0.1f, 0));
    a = tb_g_bn(g, "bn2", tb_g_conv(g, "conv2", a, c3), 1e-5f, 0.1f, TB_BN_LAST_IN_RESIDUAL_BLOCK);
    tb_value s = tb_g_conv(g, "shortcut", x, c1);
    if (variant == SHORTCUT_BN)
        s = tb_g_bn(g, "shortcut_bn", s, 1e-5f, 0.1f, 0);
    tb_value side = variant == SHORTCUT_SIDE_BN ? tb_g_bn(g, "side_bn", s, 1e-5f, 0.1f, 0) : s;
    tb_value y = tb_g_relu(g, tb_g_add(g, a, s));
    if (variant == SHORTCUT_REREAD)
        y = tb_g_add(g, y, s);
    if (variant == SHORTCUT_SIDE_BN)
        y = tb_g_add(g, y, tb_g_relu(g, side));
    tb_pool_params mp = {3, 3, 2, 2, 1, 1, false, false};
    y = tb_g_global_avgpool(g, tb_g_maxpool(g, y, mp));
    y = tb_g_linear(g, "fc", y, CLASSES, true);
    assert_int_equal(tb_g_set_output(g, y), TB_OK);
    assert_int_equal(tb_graph_finalize(g, true), TB_OK);
    return g;
}

static tb_graph *build_resnet_block(tb_dtype dt) { return build_block(dt, true, SHORTCUT_PLAIN); }

static void init_params(tb_graph *g, uint64_t seed)
{
    tb_rng r;
    tb_rng_seed(&r, seed, 0);
    for (int i = 0; i < tb_graph_n_params(g); i++) {
        tb_param *p = tb_graph_param(g, i);
        int64_t n = tb_numel(&p->master);
        float *h = malloc(sizeof(float) * (size_t)n);
        for (int64_t j = 0; j < n; j++)
            h[j] = p->role == TB_ROLE_BN_GAMMA ? 1.0f + 0.2f * (float)tb_rng_normal(&r)
                                               : 0.4f * (float)tb_rng_normal(&r);
        assert_int_equal(tb_graph_param_upload(g, i, h), TB_OK);
        free(h);
    }
    assert_int_equal(tb_graph_sync_params(g), TB_OK);
}

static float *input_data;
static int32_t labels_host[BATCH] = {1, 3, 0};

static void set_input(tb_graph *g)
{
    tb_tensor *in = tb_graph_input(g);
    int64_t n = tb_numel(in);
    if (!input_data) {
        tb_rng r;
        tb_rng_seed(&r, 99, 0);
        input_data = malloc(sizeof(float) * (size_t)n);
        for (int64_t i = 0; i < n; i++)
            input_data[i] = (float)tb_rng_normal(&r);
    }
    tb_tensor staging = tb_tensor_1d(input_data, TB_F32, n);
    tb_tensor flat = tb_tensor_1d(in->data, in->dtype, n);
    assert_int_equal(tb_convert(be, &flat, &staging), TB_OK);
}

/* Forward in training mode and the mean softmax CE against labels_host. */
static double loss_of(tb_graph *g)
{
    set_input(g);
    assert_int_equal(tb_graph_forward(g, true), TB_OK);
    float loss = 0.0f, probs[BATCH * CLASSES];
    tb_tensor lt = tb_tensor_1d(&loss, TB_F32, 1);
    tb_tensor pt = tb_tensor_2d(probs, TB_F32, BATCH, CLASSES);
    tb_tensor lab = tb_tensor_1d(labels_host, TB_I32, BATCH);
    assert_int_equal(tb_softmax_ce_forward(be, &lt, &pt, tb_graph_output(g), &lab, NULL, 1.0f), TB_OK);
    return loss;
}

static void forward_backward(tb_graph *g)
{
    float loss = 0.0f, probs[BATCH * CLASSES];
    set_input(g);
    assert_int_equal(tb_graph_forward(g, true), TB_OK);
    tb_tensor lt = tb_tensor_1d(&loss, TB_F32, 1);
    tb_tensor pt = tb_tensor_2d(probs, TB_F32, BATCH, CLASSES);
    tb_tensor lab = tb_tensor_1d(labels_host, TB_I32, BATCH);
    assert_int_equal(tb_softmax_ce_forward(be, &lt, &pt, tb_graph_output(g), &lab, NULL, 1.0f), TB_OK);
    assert_int_equal(tb_graph_zero_grads(g), TB_OK);
    assert_int_equal(tb_softmax_ce_backward(be, tb_graph_output_grad(g), &pt, &lab, NULL, 1.0f, 1.0f), TB_OK);
    assert_int_equal(tb_graph_backward(g), TB_OK);
}

static void test_parameter_gradients_match_finite_differences(void **state)
{
    (void)state;
    tb_graph *g = build_resnet_block(TB_F32);
    init_params(g, 5);
    forward_backward(g);
    int checked = 0;
    for (int i = 0; i < tb_graph_n_params(g); i++) {
        tb_param *p = tb_graph_param(g, i);
        int64_t n = tb_numel(&p->master);
        float *w = malloc(sizeof(float) * (size_t)n);
        float *grad = malloc(sizeof(float) * (size_t)n);
        memcpy(grad, p->grad.data, sizeof(float) * (size_t)n); /* CPU backend: host memory */
        assert_int_equal(tb_graph_param_download(g, i, w), TB_OK);
        /* a few coordinates per parameter keep the test fast */
        for (int64_t j = 0; j < n; j += (n > 7 ? n / 7 : 1)) {
            const float eps = 1e-3f;
            float orig = w[j];
            w[j] = orig + eps;
            tb_graph_param_upload(g, i, w);
            double lp = loss_of(g);
            w[j] = orig - eps;
            tb_graph_param_upload(g, i, w);
            double lm = loss_of(g);
            w[j] = orig;
            tb_graph_param_upload(g, i, w);
            double fd = (lp - lm) / (2.0 * eps);
            double tol = 3e-3 + 3e-2 * fabs(fd);
            if (fabs(fd - grad[j]) > tol)
                fail_msg("%s[%lld]: analytic %.6f vs finite difference %.6f", p->name, (long long)j,
                         (double)grad[j], fd);
            checked++;
        }
        free(w);
        free(grad);
    }
    assert_true(checked > 40);
    tb_graph_destroy(g);
}

static void test_roles_names_and_counts(void **state)
{
    (void)state;
    tb_graph *g = build_resnet_block(TB_F32);
    int last_bn = 0;
    for (int i = 0; i < tb_graph_n_params(g); i++) {
        tb_param *p = tb_graph_param(g, i);
        if (p->flags & TB_BN_LAST_IN_RESIDUAL_BLOCK) {
            assert_true(p->role == TB_ROLE_BN_GAMMA || p->role == TB_ROLE_BN_BETA);
            assert_non_null(strstr(p->name, "bn2."));
            last_bn++;
        }
    }
    assert_int_equal(last_bn, 2);
    assert_string_equal(tb_graph_param(g, 0)->name, "conv1.weight");
    assert_string_equal(tb_graph_buffer(g, 0)->name, "bn1.running_mean");
    /* conv1 6*3*3*3 + bn1 12 + conv2 6*3*3*6 + bn2 12 + shortcut 6*3+6 + fc 4*6+4 */
    assert_int_equal(tb_graph_param_elements(g), 162 + 12 + 324 + 12 + 24 + 28);
    /* per image: 30 pixels * (162 + 324 + 18) + fc 24 */
    assert_int_equal(tb_graph_macs(g), 30 * (162 + 324 + 18) + 24);
    tb_graph_destroy(g);
}

static void test_builder_errors_are_sticky_and_named(void **state)
{
    (void)state;
    tb_graph *g = NULL;
    assert_int_equal(tb_graph_create(&g, be, TB_F32, 2), TB_OK);
    tb_value x = tb_g_input(g, 8, 8, 3);
    tb_value a = tb_g_conv(g, "a", x, (tb_conv_spec){.k = 4, .kh = 3, .kw = 3, .stride = 1, .pad_h = 1, .pad_w = 1});
    tb_value b = tb_g_conv(g, "b", x, (tb_conv_spec){.k = 5, .kh = 1, .kw = 1, .stride = 1});
    assert_int_equal(tb_g_add(g, a, b), -1);
    assert_int_equal(tb_g_relu(g, a), -1); /* sticky */
    assert_int_equal(tb_graph_finalize(g, true), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "[2,8,8,4]"));
    tb_graph_destroy(g);

    assert_int_equal(tb_graph_create(&g, be, TB_U8, 2), TB_ERR_INVALID);
    assert_int_equal(tb_graph_create(&g, be, TB_F32, 0), TB_ERR_INVALID);
}

static void sgd_steps(tb_graph *g, int steps, float *losses)
{
    tb_sgd_params sp = {.lr = 0.05f, .momentum = 0.9f, .weight_decay = 1e-4f, .grad_scale = 1.0f, .nesterov = true};
    for (int s = 0; s < steps; s++) {
        losses[s] = (float)loss_of(g);
        forward_backward(g);
        for (int gi = 0; gi < 2; gi++) {
            tb_param_group *grp = tb_graph_group(g, gi);
            if (!grp)
                continue;
            tb_tensor *model = gi == TB_GROUP_LOWP ? &grp->value : NULL;
            assert_int_equal(tb_sgd_step(be, &grp->master, model, &grp->momentum, &grp->grad, &grp->decay_mask,
                                         NULL, &sp),
                             TB_OK);
        }
    }
}

static void test_sgd_is_deterministic_and_learns(void **state)
{
    (void)state;
    float a[8], b[8];
    tb_graph *g = build_resnet_block(TB_F32);
    init_params(g, 11);
    sgd_steps(g, 8, a);
    tb_graph_destroy(g);
    g = build_resnet_block(TB_F32);
    init_params(g, 11);
    sgd_steps(g, 8, b);
    tb_graph_destroy(g);
    assert_memory_equal(a, b, sizeof a);
    assert_true(a[7] < a[0]);
}

static void test_low_precision_graphs_track_f32(void **state)
{
    (void)state;
    tb_dtype dts[2] = {TB_F16, TB_BF16};
    tb_graph *ref = build_resnet_block(TB_F32);
    init_params(ref, 21);
    double lref = loss_of(ref);
    for (int d = 0; d < 2; d++) {
        tb_graph *g = build_resnet_block(dts[d]);
        init_params(g, 21);
        assert_non_null(tb_graph_group(g, TB_GROUP_LOWP));
        assert_int_equal(tb_graph_param(g, 0)->value.dtype, dts[d]);
        double l = loss_of(g);
        assert_true(fabs(l - lref) < 0.05 * fabs(lref) + 0.02);
        float losses[6];
        sgd_steps(g, 6, losses);
        for (int s = 0; s < 6; s++)
            assert_true(isfinite(losses[s]));
        tb_graph_destroy(g);
    }
    tb_graph_destroy(ref);
}

static int count_fused_nodes(const tb_graph *g)
{
    int fused = 0;
    for (int i = 0; i < tb_graph_n_nodes(g); i++) {
        tb_node_info info;
        assert_int_equal(tb_graph_node_info(g, i, &info), TB_OK);
        fused += info.fused;
    }
    return fused;
}

/* Both residual adds (a plain shortcut, and a projection with its own BN
 * where only one BN can be fused), and shortcuts whose gradient another
 * node writes first (the fused node then adds to it instead of storing):
 * in f32 the fused graph trains bitwise like the unfused one, evaluates
 * alike, and holds less memory. */
static void test_fusion_is_bitwise_the_separate_ops(void **state)
{
    (void)state;
    for (int variant = 0; variant < SHORTCUT_VARIANTS; variant++) {
        tb_graph *fused = build_block(TB_F32, true, variant);
        tb_graph *plain = build_block(TB_F32, false, variant);
        /* bn1 + relu; bn2 + add + relu (and side_bn + relu) */
        assert_int_equal(count_fused_nodes(fused), variant == SHORTCUT_SIDE_BN ? 7 : 5);
        assert_int_equal(count_fused_nodes(plain), 0);
        assert_true(tb_graph_memory_bytes(fused) < tb_graph_memory_bytes(plain));
        init_params(fused, 31);
        init_params(plain, 31);
        float lf[5], lp[5];
        sgd_steps(fused, 5, lf);
        sgd_steps(plain, 5, lp);
        assert_memory_equal(lf, lp, sizeof lf);
        for (int i = 0; i < tb_graph_n_params(fused); i++) {
            tb_param *a = tb_graph_param(fused, i), *b = tb_graph_param(plain, i);
            assert_memory_equal(a->master.data, b->master.data, tb_nbytes(&a->master));
            assert_memory_equal(a->grad.data, b->grad.data, tb_nbytes(&a->grad));
        }
        for (int i = 0; i < tb_graph_n_buffers(fused); i++)
            assert_memory_equal(tb_graph_buffer(fused, i)->t.data, tb_graph_buffer(plain, i)->t.data,
                                tb_nbytes(&tb_graph_buffer(fused, i)->t));
        set_input(fused);
        set_input(plain);
        assert_int_equal(tb_graph_forward(fused, false), TB_OK);
        assert_int_equal(tb_graph_forward(plain, false), TB_OK);
        assert_memory_equal(tb_graph_output(fused)->data, tb_graph_output(plain)->data,
                            tb_nbytes(tb_graph_output(plain)));
        tb_graph_destroy(fused);
        tb_graph_destroy(plain);
    }
}

/* Low precision: the fused op keeps BN's output in f32 before the add, so
 * it is close to, not equal to, the separate ops. */
static void test_fusion_in_low_precision_tracks_separate_ops(void **state)
{
    (void)state;
    tb_dtype dts[2] = {TB_F16, TB_BF16};
    for (int d = 0; d < 2; d++) {
        tb_graph *fused = build_block(dts[d], true, SHORTCUT_BN), *plain = build_block(dts[d], false, SHORTCUT_BN);
        init_params(fused, 41);
        init_params(plain, 41);
        float lf[4], lp[4];
        sgd_steps(fused, 4, lf);
        sgd_steps(plain, 4, lp);
        for (int s = 0; s < 4; s++)
            assert_true(fabsf(lf[s] - lp[s]) <= 0.02f * fabsf(lp[s]) + 0.01f);
        tb_graph_destroy(fused);
        tb_graph_destroy(plain);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roles_names_and_counts),
        cmocka_unit_test(test_builder_errors_are_sticky_and_named),
        cmocka_unit_test(test_parameter_gradients_match_finite_differences),
        cmocka_unit_test(test_sgd_is_deterministic_and_learns),
        cmocka_unit_test(test_low_precision_graphs_track_f32),
        cmocka_unit_test(test_fusion_is_bitwise_the_separate_ops),
        cmocka_unit_test(test_fusion_in_low_precision_tracks_separate_ops),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    free(input_data);
    return rc;
}
