/* Op values against hand-computed examples: pooling windows and divisors,
 * first-max routing, BatchNorm statistics (PyTorch's running-stat formula)
 * and eval mode, soft targets, softmax cross-entropy, mixup/cutmix, dropout
 * masks, the SGD formula, and the elementwise utilities. */
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
#include "kernels/rng.h"
#include "ops_testutil.h"

#define OK(call) assert_int_equal((call), TB_OK)

static void expect_values(const char *what, const tb_tensor *t, const double *want, double tol)
{
    for (int64_t i = 0; i < tb_numel(t); i++)
        if (!(fabs(tt_get(t, i) - want[i]) <= tol * (1.0 + fabs(want[i]))))
            fail_msg("%s: element %lld is %.9g, expected %.9g", what, (long long)i, tt_get(t, i), want[i]);
}

/* ------------------------------------------------------------- pooling */

static void test_pool_out_size(void **state)
{
    (void)state;
    struct {
        int64_t in;
        int k, s, p;
        bool ceil;
        int64_t want;
    } cases[] = {
        {7, 2, 2, 0, true, 4},  {7, 2, 2, 0, false, 3}, {4, 2, 2, 0, true, 2},   {1, 2, 2, 0, true, 1},
        {6, 3, 2, 1, true, 4},  {6, 3, 2, 1, false, 3}, {112, 3, 2, 1, false, 56}, {5, 3, 2, 0, true, 2},
        /* ceil mode would start a window in the right padding: dropped (PyTorch) */
        {5, 2, 2, 1, true, 3},  {3, 2, 2, 1, true, 2},
        /* invalid */
        {2, 3, 1, 0, false, 0}, {5, 0, 1, 0, false, 0}, {5, 2, 0, 0, false, 0}, {5, 2, 1, -1, false, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t got = tb_pool_out_size(cases[i].in, cases[i].k, cases[i].s, cases[i].p, cases[i].ceil);
        if (got != cases[i].want)
            fail_msg("pool_out_size(in %lld, k %d, s %d, p %d, ceil %d) = %lld, expected %lld",
                     (long long)cases[i].in, cases[i].k, cases[i].s, cases[i].p, (int)cases[i].ceil,
                     (long long)got, (long long)cases[i].want);
    }
}

/* 3x3 s2 p1 ceil on 6x6 ones: corner windows see padding, the last window
 * runs past the padding (PyTorch's divisor excludes that part). */
static void test_avgpool_divisors(void **state)
{
    (void)state;
    tb_pool_params p = {3, 3, 2, 2, 1, 1, true, true};
    tb_tensor x = tt_4d(TB_F32, 1, 6, 6, 1), y = tt_4d(TB_F32, 1, 4, 4, 1);
    OK(tb_fill(tt_be, &x, 1.0f));
    OK(tb_avgpool_forward(tt_be, &y, &x, &p));
    /* rows/cols: window 0 = 2 of 3 in bounds, 1 and 2 = 3 of 3, 3 = 1 of 2 (padded length 2) */
    const double f[4] = {2.0 / 3, 1.0, 1.0, 1.0 / 2};
    double want[16];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            want[i * 4 + j] = f[i] * f[j];
    expect_values("avgpool count_include_pad", &y, want, 1e-6);
    p.count_include_pad = false;
    OK(tb_avgpool_forward(tt_be, &y, &x, &p));
    for (int i = 0; i < 16; i++)
        want[i] = 1.0;
    expect_values("avgpool exclude pad", &y, want, 1e-6);
    tt_free_all();
}

/* ResNet-D's shortcut pool: 2x2 s2 ceil, count_include_pad false, odd size. */
static void test_avgpool_resnet_d(void **state)
{
    (void)state;
    tb_pool_params p = {2, 2, 2, 2, 0, 0, true, false};
    tb_tensor x = tt_4d(TB_F32, 1, 3, 3, 1), y = tt_4d(TB_F32, 1, 2, 2, 1), dy = tt_4d(TB_F32, 1, 2, 2, 1);
    tb_tensor dx = tt_4d(TB_F32, 1, 3, 3, 1);
    const double xv[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    tt_set_values(&x, xv);
    OK(tb_avgpool_forward(tt_be, &y, &x, &p));
    const double yv[4] = {3, 4.5, 7.5, 9};
    expect_values("resnet-d pool", &y, yv, 1e-6);
    OK(tb_fill(tt_be, &dy, 1.0f));
    OK(tb_avgpool_backward(tt_be, &dx, &dy, &p));
    const double dxv[9] = {0.25, 0.25, 0.5, 0.25, 0.25, 0.5, 0.5, 0.5, 1};
    expect_values("resnet-d pool backward", &dx, dxv, 1e-6);
    tt_free_all();
}

static void test_maxpool_first_max_and_padding(void **state)
{
    (void)state;
    tb_pool_params p = {3, 3, 2, 2, 1, 1, false, false};
    tb_tensor x = tt_4d(TB_F32, 1, 3, 3, 1), y = tt_4d(TB_F32, 1, 2, 2, 1), dy = tt_4d(TB_F32, 1, 2, 2, 1);
    tb_tensor dx = tt_4d(TB_F32, 1, 3, 3, 1);
    const double xv[9] = {1, 5, 2, 5, 0, 5, 3, 5, 4};
    tt_set_values(&x, xv);
    OK(tb_maxpool_forward(tt_be, &y, &x, &p));
    const double yv[4] = {5, 5, 5, 5};
    expect_values("maxpool", &y, yv, 0);
    const double dyv[4] = {1, 2, 3, 4};
    tt_set_values(&dy, dyv);
    OK(tb_maxpool_backward(tt_be, &dx, &dy, &y, &x, &p));
    /* ties go to the first maximum in window order */
    const double dxv[9] = {0, 3, 0, 3, 0, 4, 0, 0, 0};
    expect_values("maxpool backward ties", &dx, dxv, 0);

    /* padding is -inf: an all-negative input never yields 0 */
    const double neg[9] = {-1, -2, -3, -4, -5, -6, -7, -8, -9};
    tb_pool_params q = {3, 3, 1, 1, 1, 1, false, false};
    tb_tensor y3 = tt_4d(TB_F32, 1, 3, 3, 1);
    tt_set_values(&x, neg);
    OK(tb_maxpool_forward(tt_be, &y3, &x, &q));
    const double y3v[9] = {-1, -1, -2, -1, -1, -2, -4, -4, -5};
    expect_values("maxpool negative with padding", &y3, y3v, 0);

    /* NaN propagates */
    tt_set(&x, 4, NAN);
    OK(tb_maxpool_forward(tt_be, &y3, &x, &q));
    for (int i = 0; i < 9; i++)
        assert_true(isnan(tt_get(&y3, i)));
    tt_free_all();
}

static void test_global_avgpool_values(void **state)
{
    (void)state;
    tb_tensor x = tt_4d(TB_BF16, 2, 1, 2, 2), y = tt_2d(TB_BF16, 2, 2);
    const double xv[8] = {1, 10, 3, 20, -1, 0.5, -3, 1.5};
    tt_set_values(&x, xv);
    OK(tb_global_avgpool_forward(tt_be, &y, &x));
    const double yv[4] = {2, 15, -2, 1};
    expect_values("global avgpool", &y, yv, 0);
    tt_free_all();
}

static void test_relu_in_place_and_nan(void **state)
{
    (void)state;
    const tb_dtype dts[] = {TB_F32, TB_F16, TB_BF16};
    for (int d = 0; d < 3; d++) {
        tb_tensor x = tt_1d(dts[d], 5), dy = tt_1d(dts[d], 5), dx = tt_1d(dts[d], 5);
        const double xv[5] = {-1, 0, 2, NAN, -0.5};
        tt_set_values(&x, xv);
        OK(tb_relu_forward(tt_be, &x, &x)); /* in place */
        assert_true(tt_get(&x, 0) == 0 && tt_get(&x, 1) == 0 && tt_get(&x, 2) == 2 && tt_get(&x, 4) == 0);
        assert_true(isnan(tt_get(&x, 3)));
        OK(tb_fill(tt_be, &dy, 3.0f));
        OK(tb_fill(tt_be, &dx, 1.0f));
        OK(tb_relu_backward(tt_be, &dx, &dy, &x));
        const double dxv[5] = {1, 1, 4, 1, 1};
        expect_values("relu backward", &dx, dxv, 0);
    }
    tt_free_all();
}

/* ------------------------------------------------------------- batchnorm */

static void test_batchnorm_running_stats(void **state)
{
    (void)state;
    tb_tensor x = tt_2d(TB_F32, 4, 2), y = tt_2d(TB_F32, 4, 2);
    tb_tensor g = tt_1d(TB_F32, 2), b = tt_1d(TB_F32, 2), sm = tt_1d(TB_F32, 2), si = tt_1d(TB_F32, 2);
    tb_tensor rm = tt_1d(TB_F32, 2), rv = tt_1d(TB_F32, 2);
    const double xv[8] = {1, 0, 2, 0, 3, 0, 4, 8};
    const double gv[2] = {2, 0.5}, bv[2] = {0.1, -0.2}, rm0[2] = {0.5, -1}, rv0[2] = {2, 3};
    tt_set_values(&x, xv), tt_set_values(&g, gv), tt_set_values(&b, bv);
    tt_set_values(&rm, rm0), tt_set_values(&rv, rv0);
    float eps = 1e-5f;
    OK(tb_batchnorm_forward_train(tt_be, &y, &sm, &si, &rm, &rv, &x, &g, &b, 0.1f, eps));
    /* channel 0: mean 2.5, biased var 1.25, unbiased 5/3; channel 1: mean 2, var 12, unbiased 16 */
    const double mean[2] = {2.5, 2}, var[2] = {1.25, 12};
    const double want_sm[2] = {2.5, 2}, want_si[2] = {1 / sqrt(1.25 + 1e-5), 1 / sqrt(12 + 1e-5)};
    const double want_rm[2] = {0.9 * 0.5 + 0.1 * 2.5, 0.9 * -1 + 0.1 * 2};
    const double want_rv[2] = {0.9 * 2 + 0.1 * 5.0 / 3.0, 0.9 * 3 + 0.1 * 16};
    expect_values("save_mean", &sm, want_sm, 1e-6);
    expect_values("save_invstd", &si, want_si, 1e-6);
    expect_values("running_mean", &rm, want_rm, 1e-6);
    expect_values("running_var", &rv, want_rv, 1e-6);
    double want_y[8];
    for (int i = 0; i < 8; i++)
        want_y[i] = (xv[i] - mean[i % 2]) / sqrt(var[i % 2] + 1e-5) * gv[i % 2] + bv[i % 2];
    expect_values("bn train y", &y, want_y, 1e-6);

    /* eval mode normalises with the running statistics */
    OK(tb_batchnorm_forward_eval(tt_be, &y, &x, &g, &b, &rm, &rv, eps));
    for (int i = 0; i < 8; i++)
        want_y[i] = (xv[i] - want_rm[i % 2]) / sqrt(want_rv[i % 2] + 1e-5) * gv[i % 2] + bv[i % 2];
    expect_values("bn eval y", &y, want_y, 1e-6);

    /* without running stats (not tracked) the forward still works */
    OK(tb_batchnorm_forward_train(tt_be, &y, &sm, &si, NULL, NULL, &x, &g, &b, 0.1f, eps));
    tt_free_all();
}

/* Frozen parameters (NULL dgamma/dbeta) and input-side BN (NULL dx) give the
 * same partial results as the full call. */
static void test_batchnorm_optional_grads(void **state)
{
    (void)state;
    tb_rng r;
    tb_rng_seed(&r, 4, 0);
    tb_tensor x = tt_4d(TB_F16, 2, 3, 3, 5), y = tt_4d(TB_F16, 2, 3, 3, 5), dy = tt_4d(TB_F16, 2, 3, 3, 5);
    tb_tensor g = tt_1d(TB_F32, 5), b = tt_1d(TB_F32, 5), sm = tt_1d(TB_F32, 5), si = tt_1d(TB_F32, 5);
    tb_tensor dx1 = tt_4d(TB_F16, 2, 3, 3, 5), dx2 = tt_4d(TB_F16, 2, 3, 3, 5);
    tb_tensor dg1 = tt_1d(TB_F32, 5), db1 = tt_1d(TB_F32, 5), dg2 = tt_1d(TB_F32, 5), db2 = tt_1d(TB_F32, 5);
    tt_uniform(&x, &r, -1, 1, TB_F16), tt_uniform(&dy, &r, -1, 1, TB_F16), tt_uniform(&g, &r, 0.5, 1.5, TB_F32);
    OK(tb_batchnorm_forward_train(tt_be, &y, &sm, &si, NULL, NULL, &x, &g, &b, 0.1f, 1e-5f));
    OK(tb_batchnorm_backward(tt_be, &dx1, &dg1, &db1, &dy, &x, &g, &sm, &si));
    OK(tb_batchnorm_backward(tt_be, &dx2, NULL, NULL, &dy, &x, &g, &sm, &si));
    OK(tb_batchnorm_backward(tt_be, NULL, &dg2, &db2, &dy, &x, &g, &sm, &si));
    tt_assert_bitwise("bn dx without dgamma/dbeta", &dx2, &dx1);
    tt_assert_bitwise("bn dgamma without dx", &dg2, &dg1);
    tt_assert_bitwise("bn dbeta without dx", &db2, &db1);
    assert_true(tt_max_abs(&dx1) > 0 && tt_max_abs(&dg1) > 0 && tt_max_abs(&db1) > 0);
    tt_free_all();
}

/* ------------------------------------------------- softmax cross-entropy */

static void test_soft_targets_values(void **state)
{
    (void)state;
    tb_tensor t = tt_2d(TB_F32, 2, 4), a = tt_1d(TB_I32, 2), b = tt_1d(TB_I32, 2);
    ((int32_t *)a.data)[0] = 2, ((int32_t *)a.data)[1] = 0;
    ((int32_t *)b.data)[0] = 1, ((int32_t *)b.data)[1] = 0;
    const double e = 0.1 / 3;
    tb_tensor lam = tt_lam(0.7f);
    OK(tb_soft_targets(tt_be, &t, &a, &b, &lam, 0.1f));
    const double mixed[8] = {e, 0.7 * e + 0.3 * 0.9, 0.7 * 0.9 + 0.3 * e, e, 0.9, e, e, e};
    expect_values("smoothing + mixup", &t, mixed, 1e-6);
    OK(tb_soft_targets(tt_be, &t, &a, NULL, NULL, 0.1f));
    const double smooth[8] = {e, e, 0.9, e, 0.9, e, e, e};
    expect_values("smoothing only", &t, smooth, 1e-6);
    OK(tb_soft_targets(tt_be, &t, &a, NULL, NULL, 0.0f));
    const double hard[8] = {0, 0, 1, 0, 1, 0, 0, 0};
    expect_values("one-hot", &t, hard, 0);
    /* lam 1 with partner labels: the first labels alone */
    tb_tensor one = tt_lam(1.0f);
    OK(tb_soft_targets(tt_be, &t, &a, &b, &one, 0.1f));
    expect_values("lam 1", &t, smooth, 1e-6);
    /* the CPU backend checks the values of labels and of lam on the host */
    tb_tensor bad_lam = tt_lam(1.5f);
    assert_int_equal(tb_soft_targets(tt_be, &t, &a, &b, &bad_lam, 0.1f), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "lam 1.5"));
    ((int32_t *)b.data)[1] = 4;
    assert_int_equal(tb_soft_targets(tt_be, &t, &a, &b, &lam, 0.1f), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "row 1"));
    tt_free_all();
}

static void test_softmax_ce_values(void **state)
{
    (void)state;
    tb_tensor logits = tt_2d(TB_F32, 2, 3), probs = tt_2d(TB_F32, 2, 3), loss = tt_1d(TB_F32, 1);
    tb_tensor labels = tt_1d(TB_I32, 2), dl = tt_2d(TB_F32, 2, 3);
    const double lv[6] = {1, 2, 3, 0, 0, 0};
    tt_set_values(&logits, lv);
    ((int32_t *)labels.data)[0] = 2, ((int32_t *)labels.data)[1] = 1;
    OK(tb_softmax_ce_forward(tt_be, &loss, &probs, &logits, &labels, NULL, 1.0f));
    double z = exp(1) + exp(2) + exp(3);
    const double pv[6] = {exp(1) / z, exp(2) / z, exp(3) / z, 1.0 / 3, 1.0 / 3, 1.0 / 3};
    expect_values("probs", &probs, pv, 1e-6);
    const double lossv = (-log(exp(3) / z) + log(3.0)) / 2;
    expect_values("loss", &loss, &lossv, 1e-6);

    /* backward: dlogits += scale * (p - onehot) / (n * T), on top of existing values */
    OK(tb_fill(tt_be, &dl, 1.0f));
    OK(tb_softmax_ce_backward(tt_be, &dl, &probs, &labels, NULL, 1.0f, 4.0f));
    double dv[6];
    for (int i = 0; i < 6; i++)
        dv[i] = 1.0 + 4.0 * (pv[i] - (i == 2 || i == 4 ? 1.0 : 0.0)) / 2.0;
    expect_values("dlogits", &dl, dv, 1e-6);
    /* the scale times one in backend memory (a captured step's loss scale): 0.5 * 8 */
    tb_tensor scale_t = tt_lam(8.0f), scale2 = tt_1d(TB_F32, 2);
    OK(tb_fill(tt_be, &dl, 1.0f));
    OK(tb_softmax_ce_backward_scaled(tt_be, &dl, &probs, &labels, NULL, 1.0f, 0.5f, &scale_t));
    expect_values("dlogits, scale from memory", &dl, dv, 1e-6);
    assert_int_equal(tb_softmax_ce_backward_scaled(tt_be, &dl, &probs, &labels, NULL, 1.0f, 0.5f, &scale2),
                     TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "scale_t [2] f32"));

    /* temperature 2: softmax of logits / 2 */
    OK(tb_softmax_ce_forward(tt_be, &loss, &probs, &logits, &labels, NULL, 2.0f));
    double z2 = exp(0.5) + exp(1.0) + exp(1.5);
    const double loss2 = (-log(exp(1.5) / z2) + log(3.0)) / 2;
    expect_values("loss T 2", &loss, &loss2, 1e-6);
    tb_tensor teacher = tt_2d(TB_F32, 2, 3);
    OK(tb_softmax(tt_be, &teacher, &logits, 2.0f));
    const double tv[6] = {exp(0.5) / z2, exp(1.0) / z2, exp(1.5) / z2, 1.0 / 3, 1.0 / 3, 1.0 / 3};
    expect_values("softmax T 2", &teacher, tv, 1e-6);

    /* stable for huge logits, also stored in f16 */
    tb_tensor big = tt_2d(TB_F16, 2, 3);
    const double bv[6] = {1000, 0, -1000, 0, 30000, 0};
    tt_set_values(&big, bv);
    OK(tb_softmax_ce_forward(tt_be, &loss, &probs, &big, &labels, NULL, 1.0f));
    const double lbig = (2000.0 + 0.0) / 2; /* row 0: -log p[2] = 2000; row 1: label 1 has p = 1 */
    expect_values("stable loss", &loss, &lbig, 1e-6);

    /* a label outside [0, k) names its row */
    ((int32_t *)labels.data)[1] = 3;
    assert_int_equal(tb_softmax_ce_forward(tt_be, &loss, &probs, &logits, &labels, NULL, 1.0f), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "row 1"));
    ((int32_t *)labels.data)[1] = 7; /* a negative label is an ignored row, not an error */
    assert_int_equal(tb_softmax_ce_backward(tt_be, &dl, &probs, &labels, NULL, 1.0f, 1.0f), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "row 1"));
    tt_free_all();
}

/* --------------------------------------------------------- mixup, cutmix */

static void test_mixup_cutmix_reverse(void **state)
{
    (void)state;
    tb_tensor x = tt_2d(TB_F32, 3, 2), y = tt_2d(TB_F32, 3, 2);
    const double xv[6] = {1, 2, 3, 4, 5, 6};
    tt_set_values(&x, xv);
    tb_tensor lam = tt_lam(0.25f);
    OK(tb_mixup_batch(tt_be, &y, &x, &lam));
    const double yv[6] = {4, 5, 3, 4, 2, 3};
    expect_values("mixup", &y, yv, 1e-6);

    tb_tensor xi = tt_4d(TB_BF16, 2, 3, 4, 1), yi = tt_4d(TB_BF16, 2, 3, 4, 1);
    for (int i = 0; i < 12; i++)
        tt_set(&xi, i, i), tt_set(&xi, 12 + i, 100 + i);
    tb_tensor box = tt_box(1, 3, 1, 3);
    OK(tb_cutmix_batch(tt_be, &yi, &xi, &box));
    for (int b = 0; b < 2; b++)
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 4; c++) {
                bool in_box = r >= 1 && r < 3 && c >= 1 && c < 3;
                int src = in_box ? 1 - b : b;
                assert_true(tt_get(&yi, (b * 3 + r) * 4 + c) == tt_get(&xi, (src * 3 + r) * 4 + c));
            }
    tb_tensor empty = tt_box(2, 2, 0, 4);
    OK(tb_cutmix_batch(tt_be, &yi, &xi, &empty)); /* empty box: a copy */
    tt_assert_bitwise("cutmix empty box", &yi, &xi);

    tb_tensor la = tt_1d(TB_I32, 5), lb = tt_1d(TB_I32, 5);
    for (int i = 0; i < 5; i++)
        ((int32_t *)la.data)[i] = i + 1;
    OK(tb_reverse_labels(tt_be, &lb, &la));
    for (int i = 0; i < 5; i++)
        assert_int_equal(((int32_t *)lb.data)[i], 5 - i);
    tt_free_all();
}

/* ---------------------------------------------------------------- argmax */

/* The first maximum of each row of the last axis; NaN never wins (a row
 * starting with NaN gives 0), ties keep the earliest; any float dtype, any
 * rank (the rows are everything but the last axis). */
static void test_argmax_values(void **state)
{
    (void)state;
    static const double rows[6][4] = {
        {0.5, 2, -1, 2},     /* tie: the first */
        {-3, -2, -2.5, -4},  /* all negative */
        {NAN, 5, 6, 7},      /* NaN first: nothing is larger */
        {1, NAN, 0.5, 1.5},  /* NaN skipped */
        {-INFINITY, -INFINITY, -INFINITY, -6e4}, /* finite in f16 too */
        {INFINITY, 3, INFINITY, 0},
    };
    static const int32_t want[6] = {1, 1, 0, 3, 3, 0};
    static const tb_dtype dts[3] = {TB_F32, TB_F16, TB_BF16};
    for (int d = 0; d < 3; d++) {
        tb_tensor x = tt_4d(dts[d], 2, 1, 3, 4), idx = tt_1d(TB_I32, 6);
        for (int r = 0; r < 6; r++)
            for (int j = 0; j < 4; j++)
                tt_set(&x, r * 4 + j, rows[r][j]);
        OK(tb_argmax(tt_be, &idx, &x));
        for (int r = 0; r < 6; r++)
            if (((int32_t *)idx.data)[r] != want[r])
                fail_msg("argmax %s row %d: %d, want %d", tb_dtype_name(dts[d]), r, ((int32_t *)idx.data)[r],
                         want[r]);
    }
    tb_tensor one = tt_2d(TB_F32, 3, 1), idx1 = tt_1d(TB_I32, 3); /* one class: always 0 */
    tt_set(&one, 0, NAN), tt_set(&one, 1, -1), tt_set(&one, 2, 7);
    OK(tb_argmax(tt_be, &idx1, &one));
    for (int r = 0; r < 3; r++)
        assert_int_equal(((int32_t *)idx1.data)[r], 0);
    /* count_equal writes the number of equal positions (a stale count is overwritten) */
    tb_tensor a = tt_1d(TB_I32, 7), b = tt_1d(TB_I32, 7), count = tt_1d(TB_I32, 1);
    static const int32_t av[7] = {0, 3, 3, -1, 9, 2, 2}, bv[7] = {0, 3, 1, -1, 8, 2, 5};
    for (int i = 0; i < 7; i++)
        ((int32_t *)a.data)[i] = av[i], ((int32_t *)b.data)[i] = bv[i];
    ((int32_t *)count.data)[0] = 100;
    OK(tb_count_equal(tt_be, &count, &a, &b));
    assert_int_equal(((int32_t *)count.data)[0], 4);
    OK(tb_count_equal(tt_be, &count, &a, &a));
    assert_int_equal(((int32_t *)count.data)[0], 7);
    tt_free_all();
}

/* --------------------------------------------------------------- dropout */

static void test_dropout_values(void **state)
{
    (void)state;
    int64_t n = 4000;
    tb_rng r;
    tb_rng_seed(&r, 8, 0);
    tb_tensor x = tt_1d(TB_F32, n), y = tt_1d(TB_F32, n), mask = tt_1d(TB_U8, n);
    tb_tensor dy = tt_1d(TB_F32, n), dx = tt_1d(TB_F32, n);
    tt_uniform(&x, &r, -1, 1, TB_F32), tt_uniform(&dy, &r, -1, 1, TB_F32);
    OK(tb_fill(tt_be, &dx, 0.5f));
    OK(tb_dropout_forward(tt_be, &y, &mask, &x, 0.25f, 99));
    OK(tb_dropout_backward(tt_be, &dx, &dy, &mask, 0.25f));
    int64_t kept = 0;
    const uint8_t *m = mask.data;
    for (int64_t i = 0; i < n; i++) {
        int keep = tb_hash_uniform(99, (uint64_t)i) >= 0.25f;
        assert_int_equal(m[i], keep);
        kept += keep;
        assert_true(tt_get(&y, i) == (keep ? (double)(float)(tt_get(&x, i) * (1.0f / 0.75f)) : 0.0));
        assert_true(fabs(tt_get(&dx, i) - (0.5 + (keep ? tt_get(&dy, i) / 0.75 : 0.0))) < 1e-6);
    }
    assert_true(kept > 0.72 * n && kept < 0.78 * n);
    /* seeded from a step in memory: the masks of tb_dropout_step_seed */
    tb_tensor step = tt_1d(TB_I32, 1), mask2 = tt_1d(TB_U8, n);
    ((int32_t *)step.data)[0] = 321;
    OK(tb_dropout_forward_at_step(tt_be, &y, &mask2, &x, 0.25f, 99, 6, &step));
    OK(tb_dropout_forward(tt_be, &y, &mask, &x, 0.25f, tb_dropout_step_seed(99, 321, 6)));
    assert_memory_equal(mask.data, mask2.data, (size_t)n);
    OK(tb_dropout_forward(tt_be, &y, &mask, &x, 0.25f, 99));
    assert_memory_not_equal(mask.data, mask2.data, (size_t)n);
    /* p = 0 copies and keeps everything */
    OK(tb_dropout_forward(tt_be, &y, &mask, &x, 0.0f, 99));
    tt_assert_bitwise("dropout p 0", &y, &x);
    for (int64_t i = 0; i < n; i++)
        assert_int_equal(m[i], 1);
    tt_free_all();
}

/* ------------------------------------------------------------------ sgd */

static void test_sgd_momentum_by_hand(void **state)
{
    (void)state;
    tb_tensor w = tt_1d(TB_F32, 4), v = tt_1d(TB_F32, 4), g = tt_1d(TB_F32, 4), mask = tt_1d(TB_U8, 4);
    tb_tensor model = tt_1d(TB_BF16, 4), skip = tt_1d(TB_I32, 1);
    const double w0[4] = {1, -2, 0.5, 3}, gv[4] = {0.4, -0.8, 0.2, 4}, mv[4] = {1, 0, 1, 0};
    tt_set_values(&w, w0), tt_set_values(&g, gv), tt_set_values(&mask, mv);
    tb_sgd_params p = {.lr = 0.5f, .momentum = 0.9f, .weight_decay = 0.1f, .grad_scale = 2.0f, .nesterov = false};
    /* step 1: g = grad/2 + 0.1*mask*w = [0.3,-0.4,0.15,2]; v = g; w -= 0.5 v */
    OK(tb_sgd_step(tt_be, &w, &model, &v, &g, &mask, &skip, &p));
    const double w1[4] = {0.85, -1.8, 0.425, 2.0}, v1[4] = {0.3, -0.4, 0.15, 2};
    expect_values("sgd step 1 master", &w, w1, 1e-6);
    expect_values("sgd step 1 momentum", &v, v1, 1e-6);
    double m1[4];
    for (int i = 0; i < 4; i++)
        m1[i] = tt_round(w1[i], TB_BF16);
    expect_values("sgd step 1 bf16 model", &model, m1, 1e-6);
    /* step 2: g = [0.285,-0.4,0.1425,2]; v = 0.9 v + g = [0.555,-0.76,0.2775,3.8] */
    OK(tb_sgd_step(tt_be, &w, &model, &v, &g, &mask, &skip, &p));
    const double w2[4] = {0.5725, -1.42, 0.28625, 0.1}, v2[4] = {0.555, -0.76, 0.2775, 3.8};
    expect_values("sgd step 2 master", &w, w2, 1e-6);
    expect_values("sgd step 2 momentum", &v, v2, 1e-6);

    /* skip flag set on the device: nothing changes */
    ((int32_t *)skip.data)[0] = 1;
    tb_tensor ws = tt_1d(TB_F32, 4), vs = tt_1d(TB_F32, 4), ms = tt_1d(TB_BF16, 4);
    tt_copy_values(&ws, &w), tt_copy_values(&vs, &v), tt_copy_values(&ms, &model);
    OK(tb_sgd_step(tt_be, &w, &model, &v, &g, &mask, &skip, &p));
    tt_assert_bitwise("skip master", &w, &ws);
    tt_assert_bitwise("skip momentum", &v, &vs);
    tt_assert_bitwise("skip model", &model, &ms);
    tt_free_all();
}

static void test_sgd_nesterov_f16(void **state)
{
    (void)state;
    tb_tensor w = tt_1d(TB_F32, 4), v = tt_1d(TB_F32, 4), g = tt_1d(TB_F16, 4), mask = tt_1d(TB_U8, 4);
    tb_tensor model = tt_1d(TB_F16, 4);
    const double w0[4] = {1, -2, 0.5, 3}, gv[4] = {0.4, -0.8, 0.2, 4}, mv[4] = {1, 0, 1, 0};
    tt_set_values(&w, w0), tt_set_values(&g, gv), tt_set_values(&mask, mv);
    tb_sgd_params p = {.lr = 0.5f, .momentum = 0.9f, .weight_decay = 0.1f, .grad_scale = 2.0f, .nesterov = true};
    /* g = grad/2 + 0.1*mask*w (about [0.3,-0.4,0.15,2], grad rounded to f16);
     * v = g; the step uses g + 0.9 v = 1.9 g */
    OK(tb_sgd_step(tt_be, &w, &model, &v, &g, &mask, NULL, &p));
    double w1[4];
    for (int i = 0; i < 4; i++)
        w1[i] = w0[i] - 0.5 * 1.9 * (tt_round(gv[i], TB_F16) / 2 + 0.1 * mv[i] * w0[i]);
    assert_true(fabs(w1[0] - (1 - 0.95 * 0.3)) < 1e-4); /* the hand value, up to f16 rounding of grad */
    expect_values("nesterov master", &w, w1, 1e-6);
    double m1[4];
    for (int i = 0; i < 4; i++)
        m1[i] = tt_round(w1[i], TB_F16);
    expect_values("nesterov f16 model", &model, m1, 1e-6);

    /* momentum 0 without a buffer and without a mask: w -= lr * grad / scale */
    tb_sgd_params plain = {.lr = 0.5f, .momentum = 0.0f, .weight_decay = 0.1f, .grad_scale = 2.0f};
    OK(tb_sgd_step(tt_be, &w, NULL, NULL, &g, NULL, NULL, &plain));
    double w2[4];
    for (int i = 0; i < 4; i++)
        w2[i] = w1[i] - 0.5 * tt_round(gv[i], TB_F16) / 2;
    expect_values("plain sgd", &w, w2, 1e-6);

    /* lr_tensor: the rate read from the tensor when the step runs, lr ignored */
    tb_tensor lr = tt_lam(0.25f);
    plain.lr = 100.0f;
    plain.lr_tensor = &lr;
    OK(tb_sgd_step(tt_be, &w, NULL, NULL, &g, NULL, NULL, &plain));
    double w3[4];
    for (int i = 0; i < 4; i++)
        w3[i] = w2[i] - 0.25 * tt_round(gv[i], TB_F16) / 2;
    expect_values("sgd lr_tensor", &w, w3, 1e-6);
    ((float *)lr.data)[0] = NAN; /* the CPU backend checks the value on the host */
    assert_int_equal(tb_sgd_step(tt_be, &w, NULL, NULL, &g, NULL, NULL, &plain), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "lr_tensor"));
    tb_tensor lr2 = tt_1d(TB_F32, 2);
    plain.lr_tensor = &lr2;
    assert_int_equal(tb_sgd_step(tt_be, &w, NULL, NULL, &g, NULL, NULL, &plain), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "lr_tensor [2] f32"));

    /* grad_scale_tensor: the loss scale read from the tensor, grad_scale ignored */
    plain.lr_tensor = NULL;
    plain.lr = 0.25f;
    plain.grad_scale = 1000.0f;
    tb_tensor gs = tt_lam(4.0f);
    plain.grad_scale_tensor = &gs;
    OK(tb_sgd_step(tt_be, &w, NULL, NULL, &g, NULL, NULL, &plain));
    double w4[4];
    for (int i = 0; i < 4; i++)
        w4[i] = w3[i] - 0.25 * tt_round(gv[i], TB_F16) / 4;
    expect_values("sgd grad_scale_tensor", &w, w4, 1e-6);
    ((float *)gs.data)[0] = 0.0f;
    assert_int_equal(tb_sgd_step(tt_be, &w, NULL, NULL, &g, NULL, NULL, &plain), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "grad_scale_tensor"));
    tt_free_all();
}

/* --------------------------------------------------------- elementwise */

static void test_fill_copy_convert(void **state)
{
    (void)state;
    tb_tensor f = tt_1d(TB_F32, 5), h = tt_1d(TB_F16, 5), b = tt_1d(TB_BF16, 5), u = tt_1d(TB_U8, 5);
    tb_tensor i32 = tt_1d(TB_I32, 5);
    OK(tb_fill(tt_be, &f, 0.1f));
    OK(tb_fill(tt_be, &h, 0.1f));
    OK(tb_fill(tt_be, &b, 0.1f));
    OK(tb_fill(tt_be, &u, 7.0f));
    OK(tb_fill(tt_be, &i32, -3.0f));
    for (int i = 0; i < 5; i++) {
        assert_true(tt_get(&f, i) == (double)0.1f);
        assert_true(tt_get(&h, i) == tt_round(0.1, TB_F16));
        assert_true(tt_get(&b, i) == tt_round(0.1, TB_BF16));
        assert_int_equal(((uint8_t *)u.data)[i], 7);
        assert_int_equal(((int32_t *)i32.data)[i], -3);
    }
    tb_tensor f2 = tt_2d(TB_F32, 1, 5);
    const double fv[5] = {1.5, -2.25, 1e-3, 70000, 3.14159};
    tt_set_values(&f, fv);
    OK(tb_copy(tt_be, &f2, &f)); /* shapes may differ, element counts not */
    tt_assert_bitwise("copy", &f2, &f);
    OK(tb_convert(tt_be, &h, &f));
    OK(tb_convert(tt_be, &b, &h));
    for (int i = 0; i < 5; i++) {
        assert_true(tt_get(&h, i) == tt_round(fv[i], TB_F16) || (isinf(tt_get(&h, i)) && fv[i] > 65504));
        assert_true(tt_get(&b, i) == tt_round(tt_get(&h, i), TB_BF16));
    }
    OK(tb_convert(tt_be, &f2, &f)); /* same dtype: a copy */
    tt_assert_bitwise("convert f32 to f32", &f2, &f);
    tt_free_all();
}

static void test_axpby(void **state)
{
    (void)state;
    tb_tensor x = tt_1d(TB_F32, 3), y = tt_1d(TB_F32, 3), xh = tt_1d(TB_F16, 3), yb = tt_1d(TB_BF16, 3);
    tb_tensor xb = tt_1d(TB_BF16, 3);
    const double xv[3] = {1, -2, 0.5}, yv[3] = {4, 4, -8};
    tt_set_values(&x, xv), tt_set_values(&y, yv), tt_set_values(&xh, xv), tt_set_values(&xb, xv);
    tt_set_values(&yb, yv);
    OK(tb_axpby(tt_be, &y, 2.0f, &x, 0.5f));
    const double r1[3] = {4, -2, -3};
    expect_values("axpby f32", &y, r1, 0);
    OK(tb_axpby(tt_be, &y, 1.0f, &xh, 1.0f)); /* f16 x into f32 y (EMA of f16 weights) */
    const double r2[3] = {5, -4, -2.5};
    expect_values("axpby f16 into f32", &y, r2, 0);
    OK(tb_axpby(tt_be, &yb, 0.5f, &xb, 0.25f));
    const double r3[3] = {1.5, 0, -1.75};
    expect_values("axpby bf16", &yb, r3, 0);
    /* beta 0 never reads y: a NaN there does not leak */
    tt_set(&y, 1, NAN);
    OK(tb_axpby(tt_be, &y, 3.0f, &x, 0.0f));
    const double r4[3] = {3, -6, 1.5};
    expect_values("axpby beta 0", &y, r4, 0);
    tt_free_all();
}

static void test_nonfinite_check(void **state)
{
    (void)state;
    tb_tensor flag = tt_1d(TB_I32, 1);
    tb_tensor f = tt_1d(TB_F32, 1000), h = tt_1d(TB_F16, 7), b = tt_1d(TB_BF16, 7);
    int32_t *fl = flag.data;
    OK(tb_fill(tt_be, &h, 65504.0f)); /* largest finite half */
    OK(tb_fill(tt_be, &b, -3e38f));
    OK(tb_nonfinite_check(tt_be, &flag, &f));
    OK(tb_nonfinite_check(tt_be, &flag, &h));
    OK(tb_nonfinite_check(tt_be, &flag, &b));
    assert_int_equal(*fl, 0);
    tt_set(&f, 999, INFINITY);
    OK(tb_nonfinite_check(tt_be, &flag, &f));
    assert_int_equal(*fl, 1);
    tt_set(&f, 999, 0);
    OK(tb_nonfinite_check(tt_be, &flag, &f)); /* never cleared */
    assert_int_equal(*fl, 1);
    const struct {
        tb_tensor *t;
        double v;
    } bad[] = {{&h, NAN}, {&h, -INFINITY}, {&b, NAN}, {&b, INFINITY}, {&f, -NAN}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        *fl = 0;
        tt_set(bad[i].t, 3, bad[i].v);
        OK(tb_nonfinite_check(tt_be, &flag, bad[i].t));
        assert_int_equal(*fl, 1);
        tt_set(bad[i].t, 3, 1.0);
    }
    tt_free_all();
}

static void test_sumsq(void **state)
{
    (void)state;
    tb_tensor out = tt_1d(TB_F32, 1), x = tt_1d(TB_F32, 3), big = tt_1d(TB_F16, 300000);
    const double xv[3] = {1, 2, 3};
    tt_set_values(&x, xv);
    OK(tb_sumsq(tt_be, &out, &x));
    assert_true(tt_get(&out, 0) == 14.0);
    OK(tb_sumsq(tt_be, &out, &x)); /* accumulates */
    assert_true(tt_get(&out, 0) == 28.0);
    /* many small terms: accumulated in double, exact to f32 rounding */
    OK(tb_fill(tt_be, &big, 0.1f));
    OK(tb_fill(tt_be, &out, 0.0f));
    OK(tb_sumsq(tt_be, &out, &big));
    double h = tt_round(0.1, TB_F16);
    assert_true(fabs(tt_get(&out, 0) - 300000 * h * h) <= 1e-6 * 300000 * h * h);
    tt_free_all();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_out_size),
        cmocka_unit_test(test_avgpool_divisors),
        cmocka_unit_test(test_avgpool_resnet_d),
        cmocka_unit_test(test_maxpool_first_max_and_padding),
        cmocka_unit_test(test_global_avgpool_values),
        cmocka_unit_test(test_relu_in_place_and_nan),
        cmocka_unit_test(test_batchnorm_running_stats),
        cmocka_unit_test(test_batchnorm_optional_grads),
        cmocka_unit_test(test_soft_targets_values),
        cmocka_unit_test(test_softmax_ce_values),
        cmocka_unit_test(test_mixup_cutmix_reverse),
        cmocka_unit_test(test_argmax_values),
        cmocka_unit_test(test_dropout_values),
        cmocka_unit_test(test_sgd_momentum_by_hand),
        cmocka_unit_test(test_sgd_nesterov_f16),
        cmocka_unit_test(test_fill_copy_convert),
        cmocka_unit_test(test_axpby),
        cmocka_unit_test(test_nonfinite_check),
        cmocka_unit_test(test_sumsq),
    };
    return cmocka_run_group_tests(tests, tt_setup, tt_teardown);
}
