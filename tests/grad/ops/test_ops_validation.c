/* The op front-ends: every malformed call returns TB_ERR_INVALID with a
 * message naming the op and the shapes involved; a missing backend slot or a
 * declined dtype is TB_ERR_UNSUPPORTED naming the op and the backend. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "kernels/backend.h"
#include "kernels/error.h"
#include "kernels/ops.h"
#include "ops_testutil.h"

/* rc must be `code` and the message must contain every listed fragment. */
static void expect_fail(int line, int rc, int code, const char *const *frags)
{
    if (rc != code)
        fail_msg("line %d: status %s, expected %s (message: %s)", line, tb_status_name(rc), tb_status_name(code),
                 rc == TB_OK ? "" : tb_errmsg());
    for (int i = 0; frags[i]; i++)
        if (!strstr(tb_errmsg(), frags[i]))
            fail_msg("line %d: message \"%s\" lacks \"%s\"", line, tb_errmsg(), frags[i]);
}

#define BAD(call, ...) expect_fail(__LINE__, (call), TB_ERR_INVALID, (const char *const[]){__VA_ARGS__, NULL})
#define UNSUPPORTED(call, ...) \
    expect_fail(__LINE__, (call), TB_ERR_UNSUPPORTED, (const char *const[]){__VA_ARGS__, NULL})
#define OK(call) assert_int_equal((call), TB_OK)

static void test_batchnorm_errors(void **state)
{
    (void)state;
    tb_tensor x = tt_4d(TB_F32, 2, 3, 3, 4), y = tt_4d(TB_F32, 2, 3, 3, 4), y5 = tt_4d(TB_F32, 2, 3, 3, 5);
    tb_tensor v4[6], v3 = tt_1d(TB_F32, 3), h4 = tt_1d(TB_F16, 4);
    for (int i = 0; i < 6; i++)
        v4[i] = tt_1d(TB_F32, 4);
    tb_tensor x3 = tt_new(TB_F32, 3, 2, 3, 4, 1), one = tt_4d(TB_F32, 1, 1, 1, 4), yone = tt_4d(TB_F32, 1, 1, 1, 4);
    OK(tb_batchnorm_forward_train(tt_be, &y, &v4[0], &v4[1], &v4[2], &v4[3], &x, &v4[4], &v4[5], 0.1f, 1e-5f));
    BAD(tb_batchnorm_forward_train(tt_be, &y5, &v4[0], &v4[1], &v4[2], &v4[3], &x, &v4[4], &v4[5], 0.1f, 1e-5f),
        "batchnorm_forward_train", "[2,3,3,4] f32", "[2,3,3,5] f32", "differ in shape");
    BAD(tb_batchnorm_forward_train(tt_be, &y, &v4[0], &v4[1], &v4[2], &v4[3], &x, &v3, &v4[5], 0.1f, 1e-5f),
        "batchnorm_forward_train", "gamma [3] f32", "x [2,3,3,4] f32");
    BAD(tb_batchnorm_forward_train(tt_be, &y, &v4[0], &v4[1], &v4[2], &v4[3], &x, &h4, &v4[5], 0.1f, 1e-5f),
        "batchnorm_forward_train", "gamma [4] f16", "must be f32");
    BAD(tb_batchnorm_forward_train(tt_be, &y, &v4[0], &v4[1], &v4[2], NULL, &x, &v4[4], &v4[5], 0.1f, 1e-5f),
        "batchnorm_forward_train", "running_var (none)", "together");
    BAD(tb_batchnorm_forward_train(tt_be, &x3, &v4[0], &v4[1], &v4[2], &v4[3], &x3, &v4[4], &v4[5], 0.1f, 1e-5f),
        "batchnorm_forward_train", "[2,3,4] f32", "4-D");
    BAD(tb_batchnorm_forward_train(tt_be, &yone, &v4[0], &v4[1], &v4[2], &v4[3], &one, &v4[4], &v4[5], 0.1f, 1e-5f),
        "batchnorm_forward_train", "more than one value per channel", "[1,1,1,4] f32");
    BAD(tb_batchnorm_forward_train(tt_be, &y, &v4[0], &v4[1], &v4[2], &v4[3], &x, &v4[4], &v4[5], 0.1f, 0.0f),
        "batchnorm_forward_train", "eps", "[2,3,3,4] f32");
    BAD(tb_batchnorm_forward_train(tt_be, &y, &v4[0], &v4[1], &v4[2], &v4[3], &x, &v4[4], &v4[5], 1.5f, 1e-5f),
        "batchnorm_forward_train", "momentum");
    BAD(tb_batchnorm_forward_eval(tt_be, &y, &x, &v4[4], &v4[5], &v4[2], &v3, 1e-5f), "batchnorm_forward_eval",
        "running_var [3] f32", "x [2,3,3,4] f32");
    BAD(tb_batchnorm_forward_eval(tt_be, &y, &x, &v4[4], &v4[5], NULL, &v4[3], 1e-5f), "batchnorm_forward_eval",
        "running_mean is missing");
    BAD(tb_batchnorm_backward(tt_be, &x, &v4[0], &v4[1], &y5, &x, &v4[4], &v4[2], &v4[3]), "batchnorm_backward",
        "dy [2,3,3,5] f32", "x [2,3,3,4] f32");
    BAD(tb_batchnorm_backward(tt_be, &y, &v3, &v4[1], &y, &x, &v4[4], &v4[2], &v4[3]), "batchnorm_backward",
        "dgamma [3] f32");
    tt_free_all();
}

static void test_batchnorm_relu_errors(void **state)
{
    (void)state;
    tb_tensor x = tt_4d(TB_F32, 2, 3, 3, 4), y = tt_4d(TB_F32, 2, 3, 3, 4), z = tt_4d(TB_F32, 2, 3, 3, 4);
    tb_tensor z5 = tt_4d(TB_F32, 2, 3, 3, 5), zh = tt_4d(TB_F16, 2, 3, 3, 4), dx = tt_4d(TB_F32, 2, 3, 3, 4);
    tb_tensor v4[6], v3 = tt_1d(TB_F32, 3);
    for (int i = 0; i < 6; i++)
        v4[i] = tt_1d(TB_F32, 4);
    OK(tb_batchnorm_relu_forward_train(tt_be, &y, &v4[0], &v4[1], &v4[2], &v4[3], NULL, &x, &z, &v4[4], &v4[5],
                                       0.1f, 1e-5f));
    OK(tb_batchnorm_relu_forward_train(tt_be, &y, &v4[0], &v4[1], &v4[2], &v4[3], NULL, &x, NULL, &v4[4], &v4[5],
                                       0.1f, 1e-5f));
    BAD(tb_batchnorm_relu_forward_train(tt_be, &y, &v4[0], &v4[1], &v4[2], &v4[3], NULL, &x, &z5, &v4[4], &v4[5],
                                        0.1f, 1e-5f),
        "batchnorm_relu_forward_train", "z [2,3,3,5] f32", "x [2,3,3,4] f32");
    BAD(tb_batchnorm_relu_forward_train(tt_be, &y, &v4[0], &v4[1], &v4[2], &v4[3], NULL, &x, &zh, &v4[4], &v4[5],
                                        0.1f, 1e-5f),
        "batchnorm_relu_forward_train", "z [2,3,3,4] f16", "dtype");
    BAD(tb_batchnorm_relu_forward_train(tt_be, &y, &v4[0], &v4[1], &v4[2], &v4[3], NULL, &x, &z, &v3, &v4[5],
                                        0.1f, 1e-5f),
        "batchnorm_relu_forward_train", "gamma [3] f32");
    BAD(tb_batchnorm_relu_forward_eval(tt_be, &y, &x, &z5, &v4[4], &v4[5], &v4[2], &v4[3], 1e-5f),
        "batchnorm_relu_forward_eval", "z [2,3,3,5] f32");
    OK(tb_batchnorm_relu_backward(tt_be, &dx, &z, &v4[4], &v4[5], NULL, &y, &x, &y, &v4[4], &v4[5], &v4[0], &v4[1],
                                  true, false));
    BAD(tb_batchnorm_relu_backward(tt_be, &dx, &z, &v4[4], &v4[5], NULL, &y, &x, &y, &v4[4], &v4[5], &v4[0], &v4[1],
                                   false, false),
        "batchnorm_relu_backward", "dz is given but the forward added no z");
    BAD(tb_batchnorm_relu_backward(tt_be, &dx, &z5, NULL, NULL, NULL, &y, &x, &y, &v4[4], &v4[5], &v4[0], &v4[1],
                                   true, false),
        "batchnorm_relu_backward", "dz [2,3,3,5] f32");
    BAD(tb_batchnorm_relu_backward(tt_be, &dx, NULL, NULL, NULL, NULL, &y, &x, &z5, &v4[4], &v4[5], &v4[0], &v4[1],
                                   false, false),
        "batchnorm_relu_backward", "y [2,3,3,5] f32");
    BAD(tb_batchnorm_relu_backward(tt_be, &dx, NULL, NULL, NULL, NULL, &y, &x, &y, &v4[4], &v4[5], &v4[0], &v4[1],
                                   true, true),
        "batchnorm_relu_backward", "dz_write is set but no dz is given");
    BAD(tb_batchnorm_relu_backward(tt_be, &dx, &dx, NULL, NULL, NULL, &y, &x, &y, &v4[4], &v4[5], &v4[0], &v4[1],
                                   true, true),
        "batchnorm_relu_backward", "dz the same tensor as dx");
    tt_free_all();
}

static void test_relu_pool_errors(void **state)
{
    (void)state;
    tb_tensor x = tt_4d(TB_F32, 2, 7, 7, 3), xh = tt_4d(TB_F16, 2, 7, 7, 3), xu = tt_4d(TB_U8, 2, 7, 7, 3);
    tb_tensor y = tt_4d(TB_F32, 2, 4, 4, 3), ybad = tt_4d(TB_F32, 2, 3, 3, 3), x2 = tt_2d(TB_F32, 2, 3);
    BAD(tb_relu_forward(tt_be, &xh, &x), "relu_forward", "x [2,7,7,3] f32", "y [2,7,7,3] f16", "dtype");
    BAD(tb_relu_forward(tt_be, &xu, &xu), "relu_forward", "x [2,7,7,3] u8", "f32, f16 or bf16");
    BAD(tb_relu_forward(tt_be, NULL, &x), "relu_forward", "y is missing", "x [2,7,7,3] f32");
    BAD(tb_relu_backward(tt_be, &x, &y, &x), "relu_backward", "dy [2,4,4,3] f32", "y [2,7,7,3] f32");
    tb_pool_params p = {3, 3, 2, 2, 1, 1, false, false};
    OK(tb_maxpool_forward(tt_be, &y, &x, &p));
    BAD(tb_maxpool_forward(tt_be, &ybad, &x, &p), "maxpool_forward", "y [2,3,3,3] f32", "{2,4,4,3}",
        "x [2,7,7,3] f32");
    BAD(tb_maxpool_forward(tt_be, &y, &x2, &p), "maxpool_forward", "x [2,3] f32", "4-D");
    BAD(tb_maxpool_forward(tt_be, &y, &x, NULL), "maxpool_forward", "parameters are missing", "x [2,7,7,3] f32");
    tb_pool_params wide = {3, 3, 2, 2, 2, 2, false, false};
    BAD(tb_maxpool_forward(tt_be, &y, &x, &wide), "maxpool_forward", "half the kernel", "pad 2x2",
        "y [2,4,4,3] f32");
    tb_pool_params zero = {3, 3, 0, 2, 1, 1, false, false};
    BAD(tb_maxpool_forward(tt_be, &y, &x, &zero), "maxpool_forward", "stride 0x2");
    tb_pool_params huge = {9, 9, 1, 1, 0, 0, false, false};
    BAD(tb_maxpool_forward(tt_be, &y, &x, &huge), "maxpool_forward", "does not fit");
    BAD(tb_maxpool_backward(tt_be, &y, &y, &y, &x, &p), "maxpool_backward", "dx [2,4,4,3] f32", "x [2,7,7,3] f32");
    BAD(tb_avgpool_forward(tt_be, &ybad, &x, &p), "avgpool_forward", "y [2,3,3,3] f32", "x [2,7,7,3] f32");
    BAD(tb_avgpool_backward(tt_be, &x, &ybad, &p), "avgpool_backward", "dy [2,3,3,3] f32", "dx [2,7,7,3] f32");
    tb_tensor g = tt_2d(TB_F32, 2, 4), gh = tt_2d(TB_F16, 2, 3);
    BAD(tb_global_avgpool_forward(tt_be, &g, &x), "global_avgpool_forward", "y [2,4] f32", "{2,3}",
        "x [2,7,7,3] f32");
    BAD(tb_global_avgpool_backward(tt_be, &x, &gh), "global_avgpool_backward", "dx [2,7,7,3] f32",
        "dy [2,3] f16");
    tt_free_all();
}

static void test_linear_errors(void **state)
{
    (void)state;
    tb_tensor x = tt_2d(TB_F32, 3, 5), w = tt_2d(TB_F32, 4, 5), w6 = tt_2d(TB_F32, 4, 6), b = tt_1d(TB_F32, 4);
    tb_tensor b3 = tt_1d(TB_F32, 3), y = tt_2d(TB_F32, 3, 4), y5 = tt_2d(TB_F32, 3, 5), x4 = tt_4d(TB_F32, 3, 1, 1, 5);
    tb_tensor wh = tt_2d(TB_F16, 4, 5);
    BAD(tb_linear_forward(tt_be, &y, &x, &w6, &b), "linear_forward", "w [4,6] f32", "x [3,5] f32", "y [3,4] f32");
    BAD(tb_linear_forward(tt_be, &y, &x, &w, &b3), "linear_forward", "bias [3] f32", "{4}");
    BAD(tb_linear_forward(tt_be, &y5, &x, &w, &b), "linear_forward", "y [3,5] f32", "{3,4}");
    BAD(tb_linear_forward(tt_be, &y, &x4, &w, &b), "linear_forward", "x [3,1,1,5] f32", "2-D");
    BAD(tb_linear_forward(tt_be, &y, &x, &wh, NULL), "linear_forward", "w [4,5] f16", "differ in dtype");
    BAD(tb_linear_backward(tt_be, &x, &w6, &b, &y, &x, &w), "linear_backward", "dw [4,6] f32", "w [4,5] f32");
    BAD(tb_linear_backward(tt_be, &x, &w, &b, &y5, &x, &w), "linear_backward", "dy [3,5] f32", "{3,4}");

    /* f16 needs workspace for the f32 GEMM staging: a fresh backend has none */
    tb_backend *fresh = NULL;
    OK(tb_cpu_backend_create(&fresh, 1));
    tb_tensor xh = tt_2d(TB_F16, 3, 5), yh = tt_2d(TB_F16, 3, 4);
    BAD(tb_linear_forward(fresh, &yh, &xh, &wh, NULL), "linear_forward", "workspace", "x [3,5] f16", "w [4,5] f16");
    BAD(tb_linear_backward(fresh, &xh, &wh, NULL, &yh, &xh, &wh), "linear_backward", "workspace");
    OK(tb_backend_reserve_workspace(fresh, 4 * (3 * 5 + 4 * 5 + 3 * 4)));
    OK(tb_linear_forward(fresh, &yh, &xh, &wh, NULL));
    tb_backend_destroy(fresh);
    tt_free_all();
}

static void test_add_concat_dropout_errors(void **state)
{
    (void)state;
    tb_tensor a = tt_4d(TB_F32, 2, 4, 4, 8), b = tt_4d(TB_F32, 2, 4, 4, 16), bh = tt_4d(TB_F16, 2, 4, 4, 8);
    BAD(tb_add_forward(tt_be, &a, &a, &b), "add_forward: a [2,4,4,8] f32 and b [2,4,4,16] f32 differ in shape");
    BAD(tb_add_forward(tt_be, &a, &a, &bh), "add_forward", "a [2,4,4,8] f32", "b [2,4,4,8] f16", "dtype");
    BAD(tb_add_backward(tt_be, &a, &bh, &a), "add_backward", "db [2,4,4,8] f16", "dy [2,4,4,8] f32");

    tb_tensor p1 = tt_4d(TB_F32, 2, 4, 4, 3), p2 = tt_4d(TB_F32, 2, 4, 4, 5), p3 = tt_4d(TB_F32, 2, 4, 3, 5);
    tb_tensor ph = tt_4d(TB_F16, 2, 4, 4, 5);
    const tb_tensor *ok[2] = {&p1, &p2}, *mis[2] = {&p1, &p3}, *mixed[2] = {&p1, &ph}, *hole[2] = {&p1, NULL};
    OK(tb_concat_forward(tt_be, &a, ok, 2));
    BAD(tb_concat_forward(tt_be, &b, ok, 2), "concat_forward", "8 channels", "y [2,4,4,16] f32",
        "xs[0] [2,4,4,3] f32", "xs[1] [2,4,4,5] f32");
    BAD(tb_concat_forward(tt_be, &a, mis, 2), "concat_forward", "xs[1] [2,4,3,5] f32", "other than the last");
    BAD(tb_concat_forward(tt_be, &a, mixed, 2), "concat_forward", "xs[1] [2,4,4,5] f16", "dtype");
    BAD(tb_concat_forward(tt_be, &a, hole, 2), "concat_forward", "xs[1] is missing");
    BAD(tb_concat_forward(tt_be, &a, ok, 0), "concat_forward", "at least one", "y [2,4,4,8] f32");
    tb_tensor *dmixed[2] = {&p1, &ph};
    BAD(tb_concat_backward(tt_be, dmixed, 2, &a), "concat_backward", "dxs[1] [2,4,4,5] f16", "dy [2,4,4,8] f32");

    tb_tensor m = tt_4d(TB_U8, 2, 4, 4, 8), mf = tt_4d(TB_F32, 2, 4, 4, 8), m16 = tt_4d(TB_U8, 2, 4, 4, 16);
    BAD(tb_dropout_forward(tt_be, &a, &m, &a, 1.0f, 1), "dropout_forward", "p 1", "x [2,4,4,8] f32");
    BAD(tb_dropout_forward(tt_be, &a, &m, &a, -0.1f, 1), "dropout_forward", "p -0.1");
    BAD(tb_dropout_forward(tt_be, &a, &mf, &a, 0.5f, 1), "dropout_forward", "mask [2,4,4,8] f32", "must be u8");
    tb_tensor step2 = tt_1d(TB_I32, 2), stepf = tt_1d(TB_F32, 1), stepneg = tt_1d(TB_I32, 1);
    ((int32_t *)stepneg.data)[0] = -3;
    BAD(tb_dropout_forward_at_step(tt_be, &a, &m, &a, 0.5f, 1, 0, &step2), "dropout_forward", "step [2] i32");
    BAD(tb_dropout_forward_at_step(tt_be, &a, &m, &a, 0.5f, 1, 0, &stepf), "dropout_forward", "step [1] f32");
    BAD(tb_dropout_forward_at_step(tt_be, &a, &m, &a, 0.5f, 1, 0, &stepneg), "dropout_forward", "step -3");
    BAD(tb_dropout_backward(tt_be, &a, &a, &m16, 0.5f), "dropout_backward", "mask [2,4,4,16] u8", "dy [2,4,4,8] f32");
    tt_free_all();
}

static void test_softmax_errors(void **state)
{
    (void)state;
    tb_tensor logits = tt_2d(TB_F32, 4, 5), probs = tt_2d(TB_F32, 4, 5), loss = tt_1d(TB_F32, 1);
    tb_tensor labels = tt_1d(TB_I32, 4), targets = tt_2d(TB_F32, 4, 5), l3 = tt_1d(TB_I32, 3);
    tb_tensor ph = tt_2d(TB_F16, 4, 5), loss2 = tt_1d(TB_F32, 2), lf = tt_1d(TB_F32, 4), d6 = tt_2d(TB_F32, 4, 6);
    OK(tb_softmax_ce_forward(tt_be, &loss, &probs, &logits, &labels, NULL, 1.0f));
    BAD(tb_softmax_ce_forward(tt_be, &loss, &probs, &logits, &labels, &targets, 1.0f), "softmax_ce_forward",
        "exactly one", "labels [4] i32", "targets [4,5] f32");
    BAD(tb_softmax_ce_forward(tt_be, &loss, &probs, &logits, NULL, NULL, 1.0f), "softmax_ce_forward", "exactly one",
        "logits [4,5] f32");
    BAD(tb_softmax_ce_forward(tt_be, &loss, &probs, &logits, &l3, NULL, 1.0f), "softmax_ce_forward",
        "labels [3] i32", "{4}");
    BAD(tb_softmax_ce_forward(tt_be, &loss, &probs, &logits, &lf, NULL, 1.0f), "softmax_ce_forward",
        "labels [4] f32", "must be i32");
    BAD(tb_softmax_ce_forward(tt_be, &loss, &ph, &logits, &labels, NULL, 1.0f), "softmax_ce_forward",
        "probs [4,5] f16");
    BAD(tb_softmax_ce_forward(tt_be, &loss2, &probs, &logits, &labels, NULL, 1.0f), "softmax_ce_forward",
        "loss [2] f32");
    BAD(tb_softmax_ce_forward(tt_be, &loss, &probs, &logits, &labels, NULL, 0.0f), "softmax_ce_forward",
        "temperature 0", "logits [4,5] f32");
    BAD(tb_softmax_ce_backward(tt_be, &d6, &probs, &labels, NULL, 1.0f, 1.0f), "softmax_ce_backward",
        "dlogits [4,6] f32", "probs [4,5] f32");
    BAD(tb_softmax_ce_backward(tt_be, &logits, &probs, &labels, NULL, -1.0f, 1.0f), "softmax_ce_backward",
        "temperature -1");
    BAD(tb_softmax_ce_backward(tt_be, &logits, &probs, &labels, NULL, 1.0f, NAN), "softmax_ce_backward", "scale");
    tb_tensor lam = tt_lam(0.5f), lam2 = tt_1d(TB_F32, 2), lam_i = tt_1d(TB_I32, 1);
    BAD(tb_soft_targets(tt_be, &targets, &labels, NULL, &lam, 0.1f), "soft_targets", "go together",
        "targets [4,5] f32", "labels_a [4] i32", "labels_b (none)", "lam [1] f32");
    BAD(tb_soft_targets(tt_be, &targets, &labels, &labels, NULL, 0.1f), "soft_targets", "go together",
        "lam (none)");
    BAD(tb_soft_targets(tt_be, &targets, &labels, &labels, &lam, 1.0f), "soft_targets", "eps 1");
    BAD(tb_soft_targets(tt_be, &targets, &labels, &labels, &lam2, 0.0f), "soft_targets", "lam [2] f32");
    BAD(tb_soft_targets(tt_be, &targets, &labels, &labels, &lam_i, 0.0f), "soft_targets", "lam [1] i32");
    BAD(tb_soft_targets(tt_be, &ph, &labels, NULL, NULL, 0.1f), "soft_targets", "targets [4,5] f16");
    BAD(tb_soft_targets(tt_be, &targets, &l3, NULL, NULL, 0.1f), "soft_targets", "labels_a [3] i32");
    tb_tensor t1 = tt_2d(TB_F32, 4, 1);
    BAD(tb_soft_targets(tt_be, &t1, &labels, NULL, NULL, 0.1f), "soft_targets", "at least 2 classes",
        "targets [4,1] f32");
    BAD(tb_softmax(tt_be, &d6, &logits, 1.0f), "softmax", "probs [4,6] f32", "logits [4,5] f32");
    BAD(tb_softmax(tt_be, &probs, &logits, INFINITY), "softmax", "temperature inf");
    tb_tensor x4 = tt_4d(TB_F32, 2, 3, 3, 5), idx18 = tt_1d(TB_I32, 18), idx9 = tt_1d(TB_I32, 9);
    tb_tensor idxf = tt_1d(TB_F32, 18), xi = tt_2d(TB_I32, 18, 5), idx2d = tt_2d(TB_I32, 18, 1);
    OK(tb_argmax(tt_be, &idx18, &x4));
    BAD(tb_argmax(tt_be, &idx9, &x4), "argmax", "index [9] i32", "{18}", "x [2,3,3,5] f32");
    BAD(tb_argmax(tt_be, &idxf, &x4), "argmax", "index [18] f32", "i32");
    BAD(tb_argmax(tt_be, &idx2d, &x4), "argmax", "index [18,1] i32");
    BAD(tb_argmax(tt_be, &idx18, &xi), "argmax", "x [18,5] i32", "f32, f16 or bf16");
    BAD(tb_argmax(tt_be, NULL, &x4), "argmax", "index", "missing");
    tb_tensor c1 = tt_1d(TB_I32, 1), c2 = tt_1d(TB_I32, 2), cf = tt_1d(TB_F32, 1);
    OK(tb_count_equal(tt_be, &c1, &idx18, &idx18));
    BAD(tb_count_equal(tt_be, &c1, &idx18, &idx9), "count_equal", "b [9] i32", "{18}");
    BAD(tb_count_equal(tt_be, &c2, &idx18, &idx18), "count_equal", "count [2] i32", "a scalar");
    BAD(tb_count_equal(tt_be, &cf, &idx18, &idx18), "count_equal", "count [1] f32");
    BAD(tb_count_equal(tt_be, &c1, &idxf, &idxf), "count_equal", "a [18] f32", "i32");
    BAD(tb_count_equal(tt_be, &idx18, &idx18, &idx18), "count_equal", "count [18] i32");
    tt_free_all();
}

static void test_mix_errors(void **state)
{
    (void)state;
    tb_tensor x = tt_4d(TB_F32, 4, 6, 6, 3), y = tt_4d(TB_F32, 4, 6, 6, 3), y2 = tt_4d(TB_F32, 4, 6, 5, 3);
    tb_tensor x2 = tt_2d(TB_F32, 4, 3), l = tt_1d(TB_I32, 4), lb = tt_1d(TB_I32, 4), l5 = tt_1d(TB_I32, 5);
    tb_tensor lf = tt_1d(TB_F32, 4);
    tb_tensor half = tt_lam(0.5f), big = tt_lam(1.5f), lam3 = tt_1d(TB_F32, 3);
    tb_tensor tall = tt_box(2, 7, 0, 3), inverted = tt_box(3, 2, 0, 3), box = tt_box(0, 1, 0, 1);
    tb_tensor box3 = tt_1d(TB_I32, 3), boxf = tt_1d(TB_F32, 4);
    BAD(tb_mixup_batch(tt_be, &x, &x, &half), "mixup_batch", "overlap", "x [4,6,6,3] f32");
    BAD(tb_mixup_batch(tt_be, &y, &x, &big), "mixup_batch", "lam 1.5"); /* the CPU backend's value check */
    BAD(tb_mixup_batch(tt_be, &y, &x, &lam3), "mixup_batch", "lam [3] f32");
    BAD(tb_mixup_batch(tt_be, &y, &x, NULL), "mixup_batch", "lam (none)");
    BAD(tb_mixup_batch(tt_be, &y2, &x, &half), "mixup_batch", "y [4,6,5,3] f32", "x [4,6,6,3] f32");
    BAD(tb_cutmix_batch(tt_be, &y, &x, &tall), "cutmix_batch", "[2,7)", "6x6");
    BAD(tb_cutmix_batch(tt_be, &y, &x, &inverted), "cutmix_batch", "box");
    BAD(tb_cutmix_batch(tt_be, &y, &x, &box3), "cutmix_batch", "box [3] i32", "x [4,6,6,3] f32");
    BAD(tb_cutmix_batch(tt_be, &y, &x, &boxf), "cutmix_batch", "box [4] f32");
    BAD(tb_cutmix_batch(tt_be, &x2, &x2, &box), "cutmix_batch", "x [4,3] f32", "4-D");
    BAD(tb_reverse_labels(tt_be, &l, &l), "reverse_labels", "overlap", "labels [4] i32");
    BAD(tb_reverse_labels(tt_be, &l5, &l), "reverse_labels", "labels_b [5] i32", "{4}");
    BAD(tb_reverse_labels(tt_be, &lb, &lf), "reverse_labels", "labels [4] f32", "i32");
    tt_free_all();
}

static void test_elementwise_errors(void **state)
{
    (void)state;
    tb_tensor f = tt_1d(TB_F32, 6), f5 = tt_1d(TB_F32, 5), h = tt_2d(TB_F16, 2, 3), b = tt_1d(TB_BF16, 6);
    tb_tensor u = tt_1d(TB_U8, 6), i = tt_1d(TB_I32, 1), i2 = tt_1d(TB_I32, 2), f1 = tt_1d(TB_F32, 1);
    BAD(tb_fill(tt_be, &u, 300.0f), "fill", "300", "t [6] u8");
    BAD(tb_fill(tt_be, &i, 0.5f), "fill", "0.5", "t [1] i32");
    BAD(tb_fill(tt_be, NULL, 0.0f), "fill", "t is missing");
    BAD(tb_copy(tt_be, &h, &f), "copy", "src [6] f32", "dst [2,3] f16", "dtype");
    BAD(tb_copy(tt_be, &f5, &f), "copy", "src [6] f32", "dst [5] f32", "element count");
    BAD(tb_convert(tt_be, &f, &u), "convert", "src [6] u8", "f32, f16 or bf16");
    BAD(tb_convert(tt_be, &f5, &h), "convert", "dst [5] f32", "src [2,3] f16");
    BAD(tb_axpby(tt_be, &h, 1.0f, &b, 1.0f), "axpby", "y [2,3] f16", "bf16");
    BAD(tb_nonfinite_check(tt_be, &f1, &f), "nonfinite_check", "flag [1] f32", "x [6] f32");
    BAD(tb_nonfinite_check(tt_be, &i2, &f), "nonfinite_check", "flag [2] i32");
    BAD(tb_sumsq(tt_be, &i, &f), "sumsq", "out [1] i32", "x [6] f32");
    BAD(tb_sumsq(tt_be, &f1, &u), "sumsq", "x [6] u8");
    tt_free_all();
}

static void test_sgd_errors(void **state)
{
    (void)state;
    tb_tensor w = tt_1d(TB_F32, 6), v = tt_1d(TB_F32, 6), g = tt_1d(TB_F16, 6), g5 = tt_1d(TB_F32, 5);
    tb_tensor wh = tt_1d(TB_F16, 6), mf = tt_1d(TB_F32, 6), skip2 = tt_1d(TB_I32, 2), m = tt_1d(TB_U8, 6);
    tb_sgd_params p = {.lr = 0.1f, .momentum = 0.9f, .weight_decay = 1e-4f, .grad_scale = 1.0f};
    OK(tb_sgd_step(tt_be, &w, &wh, &v, &g, &m, NULL, &p));
    BAD(tb_sgd_step(tt_be, &wh, NULL, &v, &g, NULL, NULL, &p), "sgd_step", "master [6] f16", "must be f32");
    BAD(tb_sgd_step(tt_be, &w, NULL, &v, &g5, NULL, NULL, &p), "sgd_step", "grad [5] f32", "master [6] f32");
    BAD(tb_sgd_step(tt_be, &w, NULL, NULL, &g, NULL, NULL, &p), "sgd_step", "momentum_buf is missing");
    BAD(tb_sgd_step(tt_be, &w, NULL, &v, &g, &mf, NULL, &p), "sgd_step", "decay_mask [6] f32", "u8");
    BAD(tb_sgd_step(tt_be, &w, NULL, &v, &g, NULL, &skip2, &p), "sgd_step", "skip [2] i32");
    BAD(tb_sgd_step(tt_be, &w, NULL, &v, &g, NULL, NULL, NULL), "sgd_step", "parameters are missing");
    tb_sgd_params bad = p;
    bad.grad_scale = 0.0f;
    BAD(tb_sgd_step(tt_be, &w, NULL, &v, &g, NULL, NULL, &bad), "sgd_step", "grad_scale 0", "master [6] f32");
    bad = p;
    bad.momentum = 0.0f;
    bad.nesterov = true;
    BAD(tb_sgd_step(tt_be, &w, NULL, NULL, &g, NULL, NULL, &bad), "sgd_step", "nesterov");
    bad = p;
    bad.lr = NAN;
    BAD(tb_sgd_step(tt_be, &w, NULL, &v, &g, NULL, NULL, &bad), "sgd_step", "lr");
    tt_free_all();
}

static bool no_bf16(tb_backend *be, tb_op_id op, tb_dtype dt)
{
    (void)be;
    (void)op;
    return dt != TB_BF16;
}

static void test_unsupported(void **state)
{
    (void)state;
    tb_tensor x = tt_4d(TB_F32, 1, 2, 2, 3), y = tt_4d(TB_F32, 1, 2, 2, 3), xb = tt_4d(TB_BF16, 1, 2, 2, 3);
    tb_backend fake = *tt_be;
    snprintf(fake.name, sizeof fake.name, "fake backend");
    fake.iface.relu_forward = NULL;
    fake.iface.sgd_step = NULL;
    UNSUPPORTED(tb_relu_forward(&fake, &y, &x), "relu_forward", "fake backend");
    tb_sgd_params p = {.lr = 0.1f, .grad_scale = 1.0f};
    tb_tensor w = tt_1d(TB_F32, 3), g = tt_1d(TB_F32, 3);
    UNSUPPORTED(tb_sgd_step(&fake, &w, NULL, NULL, &g, NULL, NULL, &p), "sgd_step", "fake backend");
    fake.iface.supports_op = no_bf16;
    UNSUPPORTED(tb_add_forward(&fake, &xb, &xb, &xb), "add_forward", "bf16", "fake backend");
    OK(tb_add_forward(&fake, &y, &x, &x));
    BAD(tb_relu_forward(NULL, &y, &x), "relu_forward", "no backend");
    tt_free_all();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batchnorm_errors),  cmocka_unit_test(test_batchnorm_relu_errors),
        cmocka_unit_test(test_relu_pool_errors),
        cmocka_unit_test(test_linear_errors),     cmocka_unit_test(test_add_concat_dropout_errors),
        cmocka_unit_test(test_softmax_errors),    cmocka_unit_test(test_mix_errors),
        cmocka_unit_test(test_elementwise_errors), cmocka_unit_test(test_sgd_errors),
        cmocka_unit_test(test_unsupported),
    };
    return cmocka_run_group_tests(tests, tt_setup, tt_teardown);
}
