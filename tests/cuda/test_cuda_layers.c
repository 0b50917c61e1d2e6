/* CUDA vs CPU, the layer ops: conv2d, batchnorm (the frozen BN's eval
 * backward too), the fused batchnorm + add + relu, max/avg/global pooling, linear, relu, add, concat, dropout;
 * and that the backend supports every op. Every op forward and backward in f32,
 * f16 and bf16 on fresh random inputs over the grad suite's case tables
 * (tests/cases: conv2d's tiny, medium and chunked cases, and the op table of
 * test_ops_grad) and cases of our own (larger shapes, ties, unplanned convs,
 * special values): odd sizes, strides, padding, dilation, groups incl.
 * depthwise, ceil mode, batch 1 and more; backward outputs start from random
 * values so that accumulation (+=) is checked; guard bytes around every
 * tensor. Exits 77 without a GPU; `test_cuda_layers --self-check` runs the
 * CPU against itself. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include <stdio.h>

#include "cases/conv_cases.h"
#include "cases/op_cases.h"
#include "cuda_test_util.h"
#include "kernels/backend.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/error.h"
#include "kernels/ops.h"

static tb_backend *ref_be, *dut_be;
static uint64_t seed;
static const tb_dtype dtypes[] = {TB_F32, TB_F16, TB_BF16};
#define NDT 3

/* ---------------------------------------------------------------- conv2d */
/* The grad suite's tables (tests/cases/conv_cases.c: tiny, medium, chunked),
 * then cases of the CUDA backend's own: real channel counts, ResNet's
 * shapes, and convs whose plan is made by the op itself. */
static const conv_case cuda_conv_cases[] = {
    {"3x3 pad 1, bias", 2, 7, 9, 3, 5, 3, 3, {1, 1, 1, 1, 1, 1, 1}, true},
    {"1x1", 1, 8, 8, 4, 6, 1, 1, {1, 1, 0, 0, 1, 1, 1}, false},
    {"3x3 stride 2, odd input", 3, 11, 10, 6, 8, 3, 3, {2, 2, 1, 1, 1, 1, 1}, true},
    {"3x3 dilation 2", 2, 9, 9, 4, 4, 3, 3, {1, 1, 2, 2, 2, 2, 1}, false},
    {"depthwise 3x3", 2, 8, 7, 8, 8, 3, 3, {1, 1, 1, 1, 1, 1, 8}, true},
    {"depthwise 3x3 stride 2", 1, 9, 9, 16, 16, 3, 3, {2, 2, 1, 1, 1, 1, 16}, false},
    {"groups 3, stride (1,2), pad (1,0)", 2, 10, 10, 6, 9, 3, 3, {1, 2, 1, 0, 1, 1, 3}, false},
    {"5x3 kernel, pad (2,1)", 2, 9, 8, 5, 7, 5, 3, {1, 1, 2, 1, 1, 1, 1}, true},
    {"7x7 stride 2 stem", 2, 17, 17, 3, 16, 7, 7, {2, 2, 3, 3, 1, 1, 1}, false},
    {"1x1 stride 2 shortcut", 4, 6, 5, 16, 32, 1, 1, {2, 2, 0, 0, 1, 1, 1}, false},
    {"3x3 64 channels", 8, 14, 14, 64, 64, 3, 3, {1, 1, 1, 1, 1, 1, 1}, false},
    {"1x1 bottleneck 128->512", 4, 7, 7, 128, 512, 1, 1, {1, 1, 0, 0, 1, 1, 1}, false},
};

/* No workspace query first: the op plans itself (heuristics). */
static const conv_case cuda_unplanned_conv_cases[] = {
    {"3x2 no padding, batch 1, unplanned", 1, 5, 6, 7, 3, 3, 2, {1, 1, 0, 0, 1, 1, 1}, true},
    {"3x3 stride 2, unplanned", 2, 12, 12, 32, 16, 3, 3, {2, 2, 1, 1, 1, 1, 1}, false},
};

static void run_conv(tctx *t, const conv_case *cc, bool unplanned, tb_dtype dt, double rtol)
{
    const tb_conv2d_params *p = &cc->p;
    int64_t oh = tb_conv2d_out_size(cc->h, cc->r, p->stride_h, p->pad_h, p->dil_h);
    int64_t ow = tb_conv2d_out_size(cc->w, cc->s, p->stride_w, p->pad_w, p->dil_w);
    tctx_case(t, "conv2d %s %s", cc->name, tb_dtype_name(dt));
    tpair *x = tp_4d(t, dt, cc->n, cc->h, cc->w, cc->c, TP_UNIFORM, -1, 1);
    tpair *w = tp_4d(t, dt, cc->k, cc->r, cc->s, cc->c / p->groups, TP_UNIFORM, -1, 1);
    tpair *b = cc->bias ? tp_1d(t, dt, cc->k, TP_UNIFORM, -1, 1) : NULL;
    tpair *y = tp_4d(t, dt, cc->n, oh, ow, cc->k, TP_UNIFORM, -1, 1);
    tpair *dy = tp_4d(t, dt, cc->n, oh, ow, cc->k, TP_UNIFORM, -1, 1);
    tpair *dx = tp_4d(t, dt, cc->n, cc->h, cc->w, cc->c, TP_UNIFORM, -1, 1);
    tpair *dw = tp_4d(t, dt, cc->k, cc->r, cc->s, cc->c / p->groups, TP_UNIFORM, -1, 1);
    tpair *db = cc->bias ? tp_1d(t, dt, cc->k, TP_UNIFORM, -1, 1) : NULL;
    if (!x || !w || !y || !dy || !dx || !dw || (cc->bias && (!b || !db)))
        return;
    for (int side_ = 0; side_ < 2; side_++) {
        if (unplanned && side_ == 1)
            continue;
        size_t ws = tb_conv2d_workspace_size(BE, S(y), S(x), S(w), p);
        tctx_rc(t, side_, "reserve workspace", tb_backend_reserve_workspace(BE, ws));
    }
    RUN_BOTH(t, tb_conv2d_forward(BE, S(y), S(x), S(w), S(b), p));
    tp_check(t, "y", y, rtol);
    RUN_BOTH(t, tb_conv2d_backward_data(BE, S(dx), S(dy), S(w), p));
    tp_check(t, "dx", dx, rtol);
    RUN_BOTH(t, tb_conv2d_backward_filter(BE, S(dw), S(db), S(dy), S(x), p));
    tp_check(t, "dw", dw, rtol);
    if (db)
        tp_check(t, "dbias", db, rtol);
    tp_check(t, "x unchanged", x, 0.0);
}

/* Every case of a table in f32, f16 and bf16. */
static void run_conv_table(tctx *t, const conv_case *cases, size_t count, bool unplanned)
{
    for (size_t i = 0; i < count; i++)
        for (int d = 0; d < NDT; d++)
            run_conv(t, &cases[i], unplanned, dtypes[d], tp_tol(dtypes[d], true));
}

static void test_conv2d(void **state)
{
    (void)state;
    tctx ctx, *t = &ctx;
    tctx_init(t, ref_be, dut_be, seed ^ 0x1001);
    run_conv_table(t, conv_tiny_cases, conv_tiny_case_count, false);
    run_conv_table(t, conv_medium_cases, conv_medium_case_count, false);
    run_conv_table(t, &conv_chunked_case, 1, false);
    run_conv_table(t, cuda_conv_cases, sizeof cuda_conv_cases / sizeof cuda_conv_cases[0], false);
    run_conv_table(t, cuda_unplanned_conv_cases,
                   sizeof cuda_unplanned_conv_cases / sizeof cuda_unplanned_conv_cases[0], true);
    /* f32 on TF32 tensor cores (the default of a CUDA backend) */
    tctx_set_tf32(dut_be, true);
    for (size_t i = 0; i < 4; i++)
        run_conv(t, &cuda_conv_cases[i * 3], false, TB_F32, TP_TOL_TF32);
    tctx_set_tf32(dut_be, false);
    tctx_free(t);
    assert_int_equal(t->failures, 0);
}

/* ------------------------------------------------------------- batchnorm */
typedef struct bn_case {
    int n, h, w, c; /* h == 0: a 2-D {n, c} input */
    float eps;      /* 1e-5 (ResNet), 1e-3 (Inception-V3): a backward that ignored it would differ there */
} bn_case;

static const bn_case bn_cases[] = {
    {2, 5, 7, 3, 1e-5f},    {1, 4, 4, 8, 1e-3f},     {4, 3, 3, 16, 1e-5f},    {8, 0, 0, 10, 1e-3f},
    {3, 1, 1, 5, 1e-5f},    {16, 8, 8, 64, 1e-3f},   {2, 14, 14, 256, 1e-5f},
};

static tpair *bn_act(tctx *t, tb_dtype dt, const bn_case *bc, float lo, float hi)
{
    return bc->h ? tp_4d(t, dt, bc->n, bc->h, bc->w, bc->c, TP_UNIFORM, lo, hi)
                 : tp_2d(t, dt, bc->n, bc->c, TP_UNIFORM, lo, hi);
}

static void run_bn(tctx *t, const bn_case *bc, tb_dtype dt, const char *mode)
{
    const float momentum = 0.1f, eps = bc->eps;
    double rtol = tp_tol(dt, true), stat_tol = tp_tol(TB_F32, true);
    tctx_case(t, "batchnorm [%d,%d,%d,%d] %s %s", bc->n, bc->h, bc->w, bc->c, tb_dtype_name(dt), mode);
    tpair *x = bn_act(t, dt, bc, -2, 3), *y = bn_act(t, dt, bc, -1, 1), *y_eval = bn_act(t, dt, bc, -1, 1);
    tpair *dy = bn_act(t, dt, bc, -1, 1), *dx = bn_act(t, dt, bc, -1, 1), *dx_frozen = bn_act(t, dt, bc, -1, 1);
    tpair *gamma = tp_1d(t, TB_F32, bc->c, TP_UNIFORM, 0.5f, 1.5f);
    tpair *beta = tp_1d(t, TB_F32, bc->c, TP_UNIFORM, -0.5f, 0.5f);
    tpair *rmean = tp_1d(t, TB_F32, bc->c, TP_UNIFORM, -0.5f, 0.5f);
    tpair *rvar = tp_1d(t, TB_F32, bc->c, TP_UNIFORM, 0.5f, 1.5f);
    tpair *smean = tp_1d(t, TB_F32, bc->c, TP_UNIFORM, -1, 1);
    tpair *sinv = tp_1d(t, TB_F32, bc->c, TP_UNIFORM, -1, 1);
    tpair *dgamma = tp_1d(t, TB_F32, bc->c, TP_UNIFORM, -1, 1);
    tpair *dbeta = tp_1d(t, TB_F32, bc->c, TP_UNIFORM, -1, 1);
    tpair *dx_eval = bn_act(t, dt, bc, -1, 1);
    tpair *dgamma_eval = tp_1d(t, TB_F32, bc->c, TP_UNIFORM, -1, 1);
    tpair *dbeta_eval = tp_1d(t, TB_F32, bc->c, TP_UNIFORM, -1, 1);
    if (!x || !y || !y_eval || !dy || !dx || !dx_frozen || !gamma || !beta || !rmean || !rvar || !smean ||
        !sinv || !dgamma || !dbeta || !dx_eval || !dgamma_eval || !dbeta_eval)
        return;
    RUN_BOTH(t, tb_batchnorm_forward_train(BE, S(y), S(smean), S(sinv), S(rmean), S(rvar), S(x), S(gamma),
                                           S(beta), momentum, eps));
    tp_check(t, "y", y, rtol);
    tp_check(t, "save_mean", smean, stat_tol);
    tp_check(t, "save_invstd", sinv, stat_tol);
    tp_check(t, "running_mean", rmean, stat_tol);
    tp_check(t, "running_var", rvar, stat_tol);
    RUN_BOTH(t, tb_batchnorm_forward_eval(BE, S(y_eval), S(x), S(gamma), S(beta), S(rmean), S(rvar), eps));
    tp_check(t, "y (eval)", y_eval, rtol);
    RUN_BOTH(t, tb_batchnorm_backward(BE, S(dx), S(dgamma), S(dbeta), S(dy), S(x), S(gamma), S(smean), S(sinv)));
    tp_check(t, "dx", dx, rtol);
    tp_check(t, "dgamma", dgamma, stat_tol * 10);
    tp_check(t, "dbeta", dbeta, stat_tol * 10);
    RUN_BOTH(t, tb_batchnorm_backward(BE, S(dx_frozen), NULL, NULL, S(dy), S(x), S(gamma), S(smean), S(sinv)));
    tp_check(t, "dx (frozen gamma, beta)", dx_frozen, rtol);
    /* only the parameter gradients (an input that takes none: cuDNN's backward always writes dx) */
    tpair *dgamma_only = tp_1d(t, TB_F32, bc->c, TP_UNIFORM, -1, 1);
    tpair *dbeta_only = tp_1d(t, TB_F32, bc->c, TP_UNIFORM, -1, 1);
    if (!dgamma_only || !dbeta_only)
        return;
    RUN_BOTH(t, tb_batchnorm_backward(BE, NULL, S(dgamma_only), S(dbeta_only), S(dy), S(x), S(gamma), S(smean),
                                      S(sinv)));
    tp_check(t, "dgamma (no dx)", dgamma_only, stat_tol * 10);
    tp_check(t, "dbeta (no dx)", dbeta_only, stat_tol * 10);
    /* backward of the eval forward (frozen BN): dx is elementwise, the
     * parameter gradients reduce; each output optional */
    RUN_BOTH(t, tb_batchnorm_backward_eval(BE, S(dx_eval), S(dgamma_eval), S(dbeta_eval), S(dy), S(x), S(gamma),
                                           S(rmean), S(rvar), eps));
    tp_check(t, "dx (eval backward)", dx_eval, tp_tol(dt, false));
    tp_check(t, "dgamma (eval backward)", dgamma_eval, stat_tol * 10);
    tp_check(t, "dbeta (eval backward)", dbeta_eval, stat_tol * 10);
    RUN_BOTH(t, tb_batchnorm_backward_eval(BE, S(dx_eval), NULL, NULL, S(dy), S(x), S(gamma), S(rmean), S(rvar),
                                           eps));
    tp_check(t, "dx (eval backward, no parameter gradients)", dx_eval, tp_tol(dt, false));
    RUN_BOTH(t, tb_batchnorm_backward_eval(BE, NULL, S(dgamma_eval), NULL, S(dy), S(x), S(gamma), S(rmean), S(rvar),
                                           eps));
    tp_check(t, "dgamma (eval backward, no dx, no dbeta)", dgamma_eval, stat_tol * 10);
    tp_check(t, "dbeta unchanged", dbeta_eval, stat_tol * 10);
}

/* cuDNN's persistent NHWC BatchNorm on or off (the CUDA backend's option). */
static void set_bn_persistent(bool on)
{
    if (dut_be->kind != TB_DEVICE_CUDA)
        return;
    tb_cuda_options opt;
    assert_int_equal(tb_cuda_get_options(dut_be, &opt), TB_OK);
    opt.batchnorm_persistent = on;
    assert_int_equal(tb_cuda_set_options(dut_be, &opt), TB_OK);
}

static void test_batchnorm(void **state)
{
    (void)state;
    tctx ctx, *t = &ctx;
    tctx_init(t, ref_be, dut_be, seed ^ 0x1002);
    /* cuDNN's persistent NHWC kernels (the default) and its plain spatial mode */
    for (int persistent = 1; persistent >= 0; persistent--) {
        set_bn_persistent(persistent);
        for (size_t i = 0; i < sizeof bn_cases / sizeof bn_cases[0]; i++)
            for (int d = 0; d < NDT; d++)
                run_bn(t, &bn_cases[i], dtypes[d], persistent ? "persistent" : "spatial");
    }
    set_bn_persistent(true);
    tctx_free(t);
    assert_int_equal(t->failures, 0);
}

/* ------------------------------------------------ batchnorm + add + relu */

/* Moves z (or, without z, x) until every pre-activation BN(x) + z is at
 * least `margin` from the ReLU's kink on the reference side's values, so
 * that the two backends' rounding never opens the gate on one side and
 * closes it on the other. Statistics in double, as the CPU keeps them. */
static float round_to(float v, tb_dtype dt)
{
    uint32_t tmp = 0;
    tb_store_f32(&tmp, dt, 0, v);
    return tb_load_f32(&tmp, dt, 0);
}

static bool bnr_keep_off_kink(tctx *t, tpair *x, tpair *z, const tpair *gamma, const tpair *beta, double eps,
                              double margin)
{
    const tb_tensor *xt = &x->t[0];
    int64_t c = xt->shape[xt->ndim - 1], total = tb_numel(xt), rows = total / c;
    float *xv = malloc(sizeof(float) * (size_t)total), *zv = malloc(sizeof(float) * (size_t)total);
    assert_non_null(xv);
    assert_non_null(zv);
    for (int64_t i = 0; i < total; i++) {
        xv[i] = tb_load_f32(xt->data, xt->dtype, i);
        zv[i] = z ? tb_load_f32(z->t[0].data, z->t[0].dtype, i) : 0.0f;
    }
    const float *g = gamma->t[0].data, *b = beta->t[0].data;
    bool settled = false;
    for (int round = 0; round < 50 && !settled; round++) {
        settled = true;
        for (int64_t j = 0; j < c; j++) {
            double sum = 0, sq = 0;
            for (int64_t r = 0; r < rows; r++)
                sum += xv[r * c + j];
            double mean = sum / (double)rows;
            for (int64_t r = 0; r < rows; r++)
                sq += (xv[r * c + j] - mean) * (xv[r * c + j] - mean);
            double scale = g[j] / sqrt(sq / (double)rows + eps);
            for (int64_t r = 0; r < rows; r++) {
                int64_t e = r * c + j;
                double pre = (xv[e] - mean) * scale + b[j] + zv[e];
                if (fabs(pre) >= margin)
                    continue;
                double push = pre >= 0 ? 3 * margin : -3 * margin;
                if (z)
                    zv[e] = round_to((float)(zv[e] + push), xt->dtype);
                else
                    xv[e] = round_to((float)(xv[e] + push / scale), xt->dtype);
                settled = false;
            }
        }
    }
    bool ok = settled && tp_set(t, x, xv) && (!z || tp_set(t, z, zv));
    if (!settled)
        tctx_fail(t, "inputs stay near the ReLU kink");
    free(xv);
    free(zv);
    return ok;
}

static void run_bn_relu(tctx *t, const bn_case *bc, tb_dtype dt, bool add, const char *mode)
{
    const float momentum = 0.1f, eps = bc->eps;
    double rtol = tp_tol(dt, true), stat_tol = tp_tol(TB_F32, true);
    tctx_case(t, "batchnorm%s+relu [%d,%d,%d,%d] %s %s", add ? "+add" : "", bc->n, bc->h, bc->w, bc->c,
              tb_dtype_name(dt), mode);
    tpair *x = bn_act(t, dt, bc, -2, 3), *z = add ? bn_act(t, dt, bc, -1, 1) : NULL;
    tpair *y = bn_act(t, dt, bc, -1, 1), *y_eval = bn_act(t, dt, bc, -1, 1), *dy = bn_act(t, dt, bc, -1, 1);
    tpair *dx = bn_act(t, dt, bc, -1, 1), *dz = add ? bn_act(t, dt, bc, -1, 1) : NULL;
    tpair *dx_frozen = bn_act(t, dt, bc, -1, 1);
    tpair *gamma = tp_1d(t, TB_F32, bc->c, TP_UNIFORM, 0.5f, 1.5f);
    tpair *beta = tp_1d(t, TB_F32, bc->c, TP_UNIFORM, -0.5f, 0.5f);
    tpair *rmean = tp_1d(t, TB_F32, bc->c, TP_UNIFORM, -0.5f, 0.5f);
    tpair *rvar = tp_1d(t, TB_F32, bc->c, TP_UNIFORM, 0.5f, 1.5f);
    tpair *smean = tp_1d(t, TB_F32, bc->c, TP_UNIFORM, -1, 1);
    tpair *sinv = tp_1d(t, TB_F32, bc->c, TP_UNIFORM, -1, 1);
    tpair *dgamma = tp_1d(t, TB_F32, bc->c, TP_UNIFORM, -1, 1);
    tpair *dbeta = tp_1d(t, TB_F32, bc->c, TP_UNIFORM, -1, 1);
    if (!x || (add && (!z || !dz)) || !y || !y_eval || !dy || !dx || !dx_frozen || !gamma || !beta || !rmean ||
        !rvar || !smean || !sinv || !dgamma || !dbeta)
        return;
    /* the reserve the backend under test asks for (the CPU needs none: one byte stands for it) */
    size_t rs = tb_batchnorm_relu_reserve_size(dut_be, &x->t[1], add);
    tpair *reserve = tp_1d(t, TB_U8, rs > 0 ? (int64_t)rs : 1, TP_ZERO, 0, 0);
    if (!reserve || !bnr_keep_off_kink(t, x, z, gamma, beta, eps, 0.05))
        return;
    for (int side_ = 0; side_ < 2; side_++)
        tctx_rc(t, side_, "reserve workspace",
                tb_backend_reserve_workspace(BE, tb_batchnorm_relu_workspace_size(BE, S(x), add)));
    RUN_BOTH(t, tb_batchnorm_relu_forward_train(BE, S(y), S(smean), S(sinv), S(rmean), S(rvar), S(reserve), S(x),
                                                S(z), S(gamma), S(beta), momentum, eps));
    tp_check(t, "y", y, rtol);
    tp_check(t, "save_mean", smean, stat_tol);
    tp_check(t, "save_invstd", sinv, stat_tol);
    tp_check(t, "running_mean", rmean, stat_tol);
    tp_check(t, "running_var", rvar, stat_tol);
    RUN_BOTH(t, tb_batchnorm_relu_backward(BE, S(dx), S(dz), S(dgamma), S(dbeta), S(reserve), S(dy), S(x), S(y),
                                           S(gamma), S(beta), S(smean), S(sinv), add, false));
    tp_check(t, "dx", dx, rtol);
    if (dz)
        tp_check(t, "dz", dz, tp_tol(dt, false));
    tp_check(t, "dgamma", dgamma, stat_tol * 10);
    tp_check(t, "dbeta", dbeta, stat_tol * 10);
    /* frozen gamma and beta, and (with z) a shortcut that takes no gradient */
    RUN_BOTH(t, tb_batchnorm_relu_backward(BE, S(dx_frozen), NULL, NULL, NULL, S(reserve), S(dy), S(x), S(y),
                                           S(gamma), S(beta), S(smean), S(sinv), add, false));
    tp_check(t, "dx (frozen gamma, beta; no dz)", dx_frozen, rtol);
    /* no dx: the CUDA backend's fused path cannot (cuDNN always writes dx) and takes the other one */
    tpair *dz_nodx = add ? bn_act(t, dt, bc, -1, 1) : NULL;
    tpair *dgamma_nodx = tp_1d(t, TB_F32, bc->c, TP_UNIFORM, -1, 1);
    tpair *dbeta_nodx = tp_1d(t, TB_F32, bc->c, TP_UNIFORM, -1, 1);
    if ((add && !dz_nodx) || !dgamma_nodx || !dbeta_nodx)
        return;
    RUN_BOTH(t, tb_batchnorm_relu_backward(BE, NULL, S(dz_nodx), S(dgamma_nodx), S(dbeta_nodx), S(reserve), S(dy),
                                           S(x), S(y), S(gamma), S(beta), S(smean), S(sinv), add, false));
    if (dz_nodx)
        tp_check(t, "dz (no dx)", dz_nodx, tp_tol(dt, false));
    tp_check(t, "dgamma (no dx)", dgamma_nodx, stat_tol * 10);
    tp_check(t, "dbeta (no dx)", dbeta_nodx, stat_tol * 10);
    if (add) { /* dz_write: the shortcut's gradient stored, its stale random contents gone; dx still adds */
        tpair *dx_w = bn_act(t, dt, bc, -1, 1), *dz_w = bn_act(t, dt, bc, -1, 1);
        if (!dx_w || !dz_w)
            return;
        RUN_BOTH(t, tb_batchnorm_relu_backward(BE, S(dx_w), S(dz_w), NULL, NULL, S(reserve), S(dy), S(x), S(y),
                                               S(gamma), S(beta), S(smean), S(sinv), add, true));
        tp_check(t, "dx (dz_write)", dx_w, rtol);
        tp_check(t, "dz (dz_write)", dz_w, tp_tol(dt, false));
    }
    RUN_BOTH(t, tb_batchnorm_relu_forward_eval(BE, S(y_eval), S(x), S(z), S(gamma), S(beta), S(rmean), S(rvar), eps));
    tp_check(t, "y (eval)", y_eval, rtol);
}

/* Both of the CUDA backend's paths: cuDNN's fused kernels (f16, NHWC,
 * persistent) and cuDNN's BatchNorm with our elementwise kernels. */
static void test_batchnorm_relu(void **state)
{
    (void)state;
    tctx ctx, *t = &ctx;
    tctx_init(t, ref_be, dut_be, seed ^ 0x100c);
    for (int persistent = 1; persistent >= 0; persistent--) {
        set_bn_persistent(persistent);
        for (size_t i = 0; i < sizeof bn_cases / sizeof bn_cases[0]; i++)
            for (int d = 0; d < NDT; d++)
                for (int add = 0; add < 2; add++)
                    run_bn_relu(t, &bn_cases[i], dtypes[d], add, persistent ? "persistent" : "spatial");
    }
    set_bn_persistent(true);
    tctx_free(t);
    assert_int_equal(t->failures, 0);
}

/* --------------------------------------------------------------- pooling */
typedef struct pool_case {
    const char *name;
    bool max;
    int n, h, w, c;
    tb_pool_params p; /* kernel h/w, stride h/w, pad h/w, ceil_mode, count_include_pad */
    bool ties;        /* x drawn from {-0, 0, 0.25, 0.5}: windows with several equal maxima */
} pool_case;

static const pool_case pool_cases[] = {
    {"max 3x3 s2 p1 (ResNet stem)", true, 2, 9, 9, 5, {3, 3, 2, 2, 1, 1, false, false}, false},
    {"max 3x3 s2 p1, 16 channels", true, 1, 8, 8, 16, {3, 3, 2, 2, 1, 1, false, false}, false},
    {"max 2x2 s2 odd input", true, 2, 7, 7, 3, {2, 2, 2, 2, 0, 0, false, false}, false},
    {"max 2x2 s2 ceil", true, 2, 7, 7, 3, {2, 2, 2, 2, 0, 0, true, false}, false},
    {"max 3x3 s2 ceil", true, 2, 10, 10, 3, {3, 3, 2, 2, 0, 0, true, false}, false},
    {"max 3x2 s(1,2) p(1,0)", true, 1, 6, 7, 4, {3, 2, 1, 2, 1, 0, false, false}, false},
    {"max 3x3 s2 p1, tied maxima and signed zeros", true, 2, 11, 9, 8, {3, 3, 2, 2, 1, 1, false, false}, true},
    {"max 2x2 s1 ceil, tied maxima", true, 1, 6, 6, 5, {2, 2, 1, 1, 0, 0, true, false}, true},
    {"avg 2x2 s2 ceil, pad not counted (ResNet-D)", false, 2, 7, 7, 6, {2, 2, 2, 2, 0, 0, true, false}, false},
    {"avg 2x2 s2 ceil, even input", false, 2, 8, 8, 4, {2, 2, 2, 2, 0, 0, true, false}, false},
    {"avg 3x3 s1 p1, pad counted", false, 2, 6, 5, 3, {3, 3, 1, 1, 1, 1, false, true}, false},
    {"avg 3x3 s1 p1, pad not counted", false, 2, 6, 5, 3, {3, 3, 1, 1, 1, 1, false, false}, false},
    {"avg 3x3 s2 p1 ceil, pad counted", false, 1, 10, 10, 4, {3, 3, 2, 2, 1, 1, true, true}, false},
};

/* PyTorch's output size, ceil mode included. */
static int64_t pool_out(int64_t in, int k, int s, int pad, bool ceil_mode)
{
    int64_t span = in + 2 * pad - k;
    int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    if (ceil_mode && (out - 1) * s >= in + pad)
        out--;
    return out;
}

static void run_pool(tctx *t, const pool_case *pc, tb_dtype dt)
{
    const tb_pool_params *p = &pc->p;
    int64_t oh = pool_out(pc->h, p->kernel_h, p->stride_h, p->pad_h, p->ceil_mode);
    int64_t ow = pool_out(pc->w, p->kernel_w, p->stride_w, p->pad_w, p->ceil_mode);
    tctx_case(t, "pool %s %s", pc->name, tb_dtype_name(dt));
    tpair *x = tp_4d(t, dt, pc->n, pc->h, pc->w, pc->c, TP_UNIFORM, -1, 1);
    tpair *y = tp_4d(t, dt, pc->n, oh, ow, pc->c, TP_UNIFORM, -1, 1);
    tpair *dy = tp_4d(t, dt, pc->n, oh, ow, pc->c, TP_UNIFORM, -1, 1);
    tpair *dx = tp_4d(t, dt, pc->n, pc->h, pc->w, pc->c, TP_UNIFORM, -1, 1);
    if (!x || !y || !dy || !dx)
        return;
    if (pc->ties) { /* ReLU-like plateaus: the gradient must reach the first maximum on both sides */
        static const float levels[4] = {-0.0f, 0.0f, 0.25f, 0.5f};
        int64_t count = (int64_t)pc->n * pc->h * pc->w * pc->c;
        float *v = malloc(sizeof(float) * (size_t)count);
        if (!v) {
            tctx_fail(t, "out of host memory");
            return;
        }
        for (int64_t i = 0; i < count; i++)
            v[i] = levels[tb_rng_below(&t->rng, 4)];
        bool ok = tp_set(t, x, v);
        free(v);
        if (!ok)
            return;
    }
    if (pc->max) {
        RUN_BOTH(t, tb_maxpool_forward(BE, S(y), S(x), p));
        tp_check(t, "y", y, 0.0); /* a maximum is exact */
        RUN_BOTH(t, tb_maxpool_backward(BE, S(dx), S(dy), S(y), S(x), p));
    } else {
        RUN_BOTH(t, tb_avgpool_forward(BE, S(y), S(x), p));
        tp_check(t, "y", y, tp_tol(dt, true));
        RUN_BOTH(t, tb_avgpool_backward(BE, S(dx), S(dy), p));
    }
    tp_check(t, "dx", dx, tp_tol(dt, true));
}

/* x {g[0], g[1], g[2], g[3]} -> {g[0], g[3]} */
static void run_gap(tctx *t, const int64_t *g, tb_dtype dt)
{
    tctx_case(t, "global_avgpool [%lld,%lld,%lld,%lld] %s", (long long)g[0], (long long)g[1], (long long)g[2],
              (long long)g[3], tb_dtype_name(dt));
    tpair *x = tp_4d(t, dt, g[0], g[1], g[2], g[3], TP_UNIFORM, -1, 1);
    tpair *y = tp_2d(t, dt, g[0], g[3], TP_UNIFORM, -1, 1);
    tpair *dy = tp_2d(t, dt, g[0], g[3], TP_UNIFORM, -1, 1);
    tpair *dx = tp_4d(t, dt, g[0], g[1], g[2], g[3], TP_UNIFORM, -1, 1);
    if (!x || !y || !dy || !dx)
        return;
    RUN_BOTH(t, tb_global_avgpool_forward(BE, S(y), S(x)));
    tp_check(t, "y", y, tp_tol(dt, true));
    RUN_BOTH(t, tb_global_avgpool_backward(BE, S(dx), S(dy)));
    tp_check(t, "dx", dx, tp_tol(dt, false));
}

static void test_pooling(void **state)
{
    (void)state;
    tctx ctx, *t = &ctx;
    tctx_init(t, ref_be, dut_be, seed ^ 0x1003);
    for (size_t i = 0; i < sizeof pool_cases / sizeof pool_cases[0]; i++)
        for (int d = 0; d < NDT; d++)
            run_pool(t, &pool_cases[i], dtypes[d]);
    /* the last: more images than a grid row count holds (a detector's RoI
     * head pools images x RoIs) */
    static const int64_t gap_cases[][4] = {
        {2, 7, 7, 64}, {1, 1, 1, 5}, {3, 5, 3, 10}, {4, 7, 7, 2048}, {70001, 2, 2, 3}};
    for (size_t i = 0; i < sizeof gap_cases / sizeof gap_cases[0]; i++)
        for (int d = 0; d < NDT; d++)
            run_gap(t, gap_cases[i], dtypes[d]);
    tctx_free(t);
    assert_int_equal(t->failures, 0);
}

/* ---------------------------------------------------------------- linear */
typedef struct linear_case {
    int n, c, k;
    bool bias, dx, dw; /* dw false: a frozen layer, only dx (and dbias) */
} linear_case;

static const linear_case linear_cases[] = {
    {1, 7, 5, true, true, true},      {4, 64, 10, true, true, true}, {9, 33, 17, false, true, true},
    {32, 512, 1000, true, true, true}, {3, 20, 6, true, false, true}, {5, 24, 9, true, true, false},
};

static void run_linear(tctx *t, const linear_case *lc, tb_dtype dt, double rtol)
{
    tctx_case(t, "linear n %d c %d k %d%s%s%s %s", lc->n, lc->c, lc->k, lc->bias ? " bias" : "",
              lc->dx ? "" : " (no dx)", lc->dw ? "" : " (no dw)", tb_dtype_name(dt));
    tpair *x = tp_2d(t, dt, lc->n, lc->c, TP_UNIFORM, -1, 1);
    tpair *w = tp_2d(t, dt, lc->k, lc->c, TP_UNIFORM, -1, 1);
    tpair *b = lc->bias ? tp_1d(t, dt, lc->k, TP_UNIFORM, -1, 1) : NULL;
    tpair *y = tp_2d(t, dt, lc->n, lc->k, TP_UNIFORM, -1, 1);
    tpair *dy = tp_2d(t, dt, lc->n, lc->k, TP_UNIFORM, -1, 1);
    tpair *dx = lc->dx ? tp_2d(t, dt, lc->n, lc->c, TP_UNIFORM, -1, 1) : NULL;
    tpair *dw = lc->dw ? tp_2d(t, dt, lc->k, lc->c, TP_UNIFORM, -1, 1) : NULL;
    tpair *db = lc->bias ? tp_1d(t, dt, lc->k, TP_UNIFORM, -1, 1) : NULL;
    if (!x || !w || !y || !dy || (lc->bias && (!b || !db)) || (lc->dx && !dx) || (lc->dw && !dw))
        return;
    RUN_BOTH(t, tb_linear_forward(BE, S(y), S(x), S(w), S(b)));
    tp_check(t, "y", y, rtol);
    RUN_BOTH(t, tb_linear_backward(BE, S(dx), S(dw), S(db), S(dy), S(x), S(w)));
    if (dx)
        tp_check(t, "dx", dx, rtol);
    if (dw)
        tp_check(t, "dw", dw, rtol);
    if (db)
        tp_check(t, "dbias", db, rtol);
}

static void test_linear(void **state)
{
    (void)state;
    tctx ctx, *t = &ctx;
    tctx_init(t, ref_be, dut_be, seed ^ 0x1004);
    for (size_t i = 0; i < sizeof linear_cases / sizeof linear_cases[0]; i++)
        for (int d = 0; d < NDT; d++)
            run_linear(t, &linear_cases[i], dtypes[d], tp_tol(dtypes[d], true));
    tctx_set_tf32(dut_be, true);
    run_linear(t, &linear_cases[3], TB_F32, TP_TOL_TF32);
    tctx_set_tf32(dut_be, false);
    tctx_free(t);
    assert_int_equal(t->failures, 0);
}

/* ------------------------------------------- relu, add, concat, dropout */
/* "[2,5,7,3] f16" */
static const char *shape_str(tb_dtype dt, int ndim, const int64_t *shape, char *buf, size_t size)
{
    tb_tensor desc = tb_tensor_make(NULL, dt, ndim, shape);
    return tb_shape_str(&desc, buf, size);
}

static void run_relu(tctx *t, tb_dtype dt, int ndim, const int64_t *shape)
{
    double tol = tp_tol(dt, false);
    char dims[96];
    tctx_case(t, "relu %s", shape_str(dt, ndim, shape, dims, sizeof dims));
    tpair *x = tp_new(t, dt, ndim, shape, TP_UNIFORM, -1, 1), *y = tp_new(t, dt, ndim, shape, TP_UNIFORM, -1, 1);
    tpair *dy = tp_new(t, dt, ndim, shape, TP_UNIFORM, -1, 1), *dx = tp_new(t, dt, ndim, shape, TP_UNIFORM, -1, 1);
    tpair *z = tp_new(t, dt, ndim, shape, TP_UNIFORM, -1, 1);
    if (!x || !y || !dy || !dx || !z)
        return;
    RUN_BOTH(t, tb_relu_forward(BE, S(y), S(x)));
    tp_check(t, "y", y, 0.0);
    RUN_BOTH(t, tb_relu_backward(BE, S(dx), S(dy), S(y)));
    tp_check(t, "dx", dx, tol);
    RUN_BOTH(t, tb_relu_forward(BE, S(z), S(z))); /* in place */
    tp_check(t, "in place", z, 0.0);
}

static void run_add(tctx *t, tb_dtype dt, int ndim, const int64_t *shape)
{
    double tol = tp_tol(dt, false);
    char dims[96];
    tctx_case(t, "add %s", shape_str(dt, ndim, shape, dims, sizeof dims));
    tpair *a = tp_new(t, dt, ndim, shape, TP_UNIFORM, -1, 1), *b = tp_new(t, dt, ndim, shape, TP_UNIFORM, -1, 1);
    tpair *y = tp_new(t, dt, ndim, shape, TP_UNIFORM, -1, 1), *dy = tp_new(t, dt, ndim, shape, TP_UNIFORM, -1, 1);
    tpair *da = tp_new(t, dt, ndim, shape, TP_UNIFORM, -1, 1), *db = tp_new(t, dt, ndim, shape, TP_UNIFORM, -1, 1);
    if (!a || !b || !y || !dy || !da || !db)
        return;
    RUN_BOTH(t, tb_add_forward(BE, S(y), S(a), S(b)));
    tp_check(t, "y", y, tol);
    RUN_BOTH(t, tb_add_backward(BE, S(da), S(db), S(dy)));
    tp_check(t, "da", da, tol);
    tp_check(t, "db", db, tol);
    RUN_BOTH(t, tb_add_backward(BE, NULL, S(db), S(dy)));
    tp_check(t, "db (da absent)", db, tol);
}

/* Parts of `shape` whose last extents are parts[0..count), along the last axis. */
static void run_concat(tctx *t, tb_dtype dt, const char *name, int ndim, const int64_t *shape, const int64_t *parts,
                       int count)
{
    tctx_case(t, "%s %s", name, tb_dtype_name(dt));
    int64_t part_shape[4], whole_shape[4];
    tpair *x[3], *dx[3];
    for (int a = 0; a < ndim; a++)
        part_shape[a] = whole_shape[a] = shape[a];
    whole_shape[ndim - 1] = 0;
    for (int i = 0; i < count; i++) {
        part_shape[ndim - 1] = parts[i];
        whole_shape[ndim - 1] += parts[i];
        x[i] = tp_new(t, dt, ndim, part_shape, TP_UNIFORM, -1, 1);
        dx[i] = tp_new(t, dt, ndim, part_shape, TP_UNIFORM, -1, 1);
        if (!x[i] || !dx[i])
            return;
    }
    tpair *y = tp_new(t, dt, ndim, whole_shape, TP_UNIFORM, -1, 1);
    tpair *dy = tp_new(t, dt, ndim, whole_shape, TP_UNIFORM, -1, 1);
    if (!y || !dy)
        return;
    for (int side_ = 0; side_ < 2; side_++) {
        const tb_tensor *xs[3];
        tb_tensor *dxs[3];
        for (int i = 0; i < count; i++)
            xs[i] = S(x[i]), dxs[i] = S(dx[i]);
        tctx_rc(t, side_, "concat_forward", tb_concat_forward(BE, S(y), xs, count));
        tctx_rc(t, side_, "concat_backward", tb_concat_backward(BE, dxs, count, S(dy)));
    }
    tp_check(t, "y", y, 0.0);
    for (int i = 0; i < count; i++)
        tp_check(t, "dx", dx[i], tp_tol(dt, false));
}

static void run_dropout(tctx *t, tb_dtype dt, int ndim, const int64_t *shape, float p, uint64_t drop_seed)
{
    char dims[96];
    tctx_case(t, "dropout %s p %g", shape_str(dt, ndim, shape, dims, sizeof dims), (double)p);
    tpair *x = tp_new(t, dt, ndim, shape, TP_UNIFORM, -1, 1), *y = tp_new(t, dt, ndim, shape, TP_UNIFORM, -1, 1);
    tpair *mask = tp_new(t, TB_U8, ndim, shape, TP_MASK, 0, 1);
    tpair *dy = tp_new(t, dt, ndim, shape, TP_UNIFORM, -1, 1), *dx = tp_new(t, dt, ndim, shape, TP_UNIFORM, -1, 1);
    if (!x || !y || !mask || !dy || !dx)
        return;
    RUN_BOTH(t, tb_dropout_forward(BE, S(y), S(mask), S(x), p, drop_seed));
    tp_check(t, "mask (same draw on every backend)", mask, 0.0);
    tp_check(t, "y", y, tp_tol(dt, false));
    RUN_BOTH(t, tb_dropout_backward(BE, S(dx), S(dy), S(mask), p));
    tp_check(t, "dx", dx, tp_tol(dt, false));
}

/* ReLU passes NaN through and keeps -0 (x < 0 ? 0 : x), so that a
 * non-finite activation still reaches the loss-scaling overflow check:
 * forward and in place, and a backward whose NaN gradients are gated off
 * where y <= 0 or y is NaN (a select, not a multiply by the 0/1 gate). f32
 * bitwise; f16/bf16 value by value (NaN payloads may differ). */
static void run_relu_special_values(tctx *t, tb_dtype dt)
{
    tctx_case(t, "relu NaN, inf, -0 %s", tb_dtype_name(dt));
    const float v[8] = {NAN, -NAN, INFINITY, -INFINITY, -0.0f, 0.0f, -2.5f, 3.5f};
    const float g[8] = {1.0f, NAN, -INFINITY, 2.0f, NAN, 3.0f, NAN, -1.0f};
    const float zero[8] = {0};
    tpair *x = tp_values(t, dt, 8, v), *y = tp_values(t, dt, 8, v);
    tpair *dy = tp_values(t, dt, 8, g), *dx = tp_values(t, dt, 8, zero);
    if (!x || !y || !dy || !dx)
        return;
    bool bitwise = dt == TB_F32;
    RUN_BOTH(t, tb_relu_forward(BE, S(y), S(x)));
    bitwise ? tp_check_bits(t, "relu special values", y) : tp_check_special(t, "relu special values", y);
    RUN_BOTH(t, tb_relu_backward(BE, S(dx), S(dy), S(y)));
    tp_check_special(t, "relu backward special values", dx);
    RUN_BOTH(t, tb_relu_forward(BE, S(x), S(x)));
    bitwise ? tp_check_bits(t, "relu special values in place", x)
            : tp_check_special(t, "relu special values in place", x);
}

static void test_elementwise_layers(void **state)
{
    (void)state;
    tctx ctx, *t = &ctx;
    tctx_init(t, ref_be, dut_be, seed ^ 0x1005);
    static const int64_t small[4] = {2, 5, 7, 3}, wide[4] = {1, 1, 1, 1001}, concat_shape[4] = {2, 3, 3, 0};
    static const int64_t concat_parts[3] = {3, 5, 8}, long_vec[1] = {4097}, short_vec[1] = {210};
    for (int d = 0; d < NDT; d++) {
        run_relu_special_values(t, dtypes[d]);
        run_relu(t, dtypes[d], 4, small);
        run_relu(t, dtypes[d], 4, wide);
        run_add(t, dtypes[d], 4, small);
        run_add(t, dtypes[d], 4, wide);
        run_concat(t, dtypes[d], "concat 3+5+8", 4, concat_shape, concat_parts, 3);
        run_dropout(t, dtypes[d], 1, long_vec, 0.3f, seed + 17);
        run_dropout(t, dtypes[d], 1, short_vec, 0.0f, seed + 18);
    }
    tctx_free(t);
    assert_int_equal(t->failures, 0);
}

/* ------------------------------------------ the grad suite's op table */
/* Each case of tests/cases/op_cases.c (the table test_ops_grad checks
 * against finite differences) through the run functions above, in f32, f16
 * and bf16. The switch names every kind: a kind added to the table fails the
 * build here (-Wswitch) until it runs or is skipped with its reason. */
static void run_op_case(tctx *t, const op_case *oc, tb_dtype dt)
{
    const int64_t *d = oc->d;
    switch (oc->op) {
    case OC_BATCHNORM:
    case OC_BATCHNORM_RELU: {
        /* eps 1e-5 (and momentum 0.1), as test_ops_grad runs them */
        bn_case bc = {(int)d[0], 0, 0, (int)d[1], 1e-5f};
        if (oc->ndim == 4)
            bc = (bn_case){(int)d[0], (int)d[1], (int)d[2], (int)d[3], 1e-5f};
        for (int persistent = 1; persistent >= 0; persistent--) {
            set_bn_persistent(persistent);
            const char *mode = persistent ? "persistent" : "spatial";
            if (oc->op == OC_BATCHNORM)
                run_bn(t, &bc, dt, mode);
            else
                run_bn_relu(t, &bc, dt, (oc->variant & OC_V_ADD) != 0, mode);
        }
        set_bn_persistent(true);
        return;
    }
    case OC_RELU: run_relu(t, dt, oc->ndim, d); return;
    case OC_MAXPOOL:
    case OC_AVGPOOL: {
        pool_case pc = {oc->name, oc->op == OC_MAXPOOL, (int)d[0], (int)d[1], (int)d[2], (int)d[3], oc->pool, false};
        run_pool(t, &pc, dt);
        return;
    }
    case OC_GLOBAL_AVGPOOL: run_gap(t, d, dt); return;
    case OC_LINEAR: {
        /* OC_V_NAIVE selects the CPU's naive twin (tb_cpu_linear_*_naive),
         * which has no CUDA counterpart: its shape is that of "linear with
         * bias", run here through tb_linear_* already */
        if (oc->variant & OC_V_NAIVE)
            return;
        linear_case lc = {(int)d[0], (int)d[1], (int)oc->k, (oc->variant & OC_V_BIAS) != 0, true, true};
        run_linear(t, &lc, dt, tp_tol(dt, true));
        return;
    }
    case OC_ADD: run_add(t, dt, oc->ndim, d); return;
    case OC_CONCAT: {
        int count = 0;
        while (count < 3 && oc->parts[count])
            count++;
        run_concat(t, dt, oc->name, oc->ndim, d, oc->parts, count);
        return;
    }
    case OC_DROPOUT: run_dropout(t, dt, oc->ndim, d, oc->f, seed + 19); return;
    case OC_SOFTMAX_CE: return; /* with the other loss cases: test_cuda_util_ops.c's test_softmax_ce */
    }
    tctx_fail(t, "%s: op kind %d has no CUDA test", oc->name, (int)oc->op);
}

static void test_grad_op_cases(void **state)
{
    (void)state;
    tctx ctx, *t = &ctx;
    tctx_init(t, ref_be, dut_be, seed ^ 0x100d);
    for (size_t i = 0; i < op_case_count; i++)
        for (int d = 0; d < NDT; d++)
            run_op_case(t, &op_cases[i], dtypes[d]);
    tctx_free(t);
    assert_int_equal(t->failures, 0);
}

/* Both backends declare every op in f32, f16 and bf16 (the CUDA backend
 * declines bf16 only below compute capability 8.0, which no GPU this runs
 * on has: an H100/H200 is 9.0), and decline a non-float compute dtype and
 * an op id out of range. Whether each op then runs is what the other tests
 * check. */
static void test_supports_every_op(void **state)
{
    (void)state;
    for (int op = 0; op < TB_OP_COUNT; op++) {
        for (int d = 0; d < NDT; d++)
            if (!tb_supports_op(dut_be, (tb_op_id)op, dtypes[d]))
                fail_msg("%s does not support %s in %s", dut_be->name, tb_op_name((tb_op_id)op),
                         tb_dtype_name(dtypes[d]));
        if (tb_supports_op(dut_be, (tb_op_id)op, TB_I32))
            fail_msg("%s claims %s in i32", dut_be->name, tb_op_name((tb_op_id)op));
    }
    assert_false(tb_supports_op(dut_be, TB_OP_COUNT, TB_F32));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_supports_every_op), cmocka_unit_test(test_conv2d),
        cmocka_unit_test(test_batchnorm),         cmocka_unit_test(test_batchnorm_relu),         cmocka_unit_test(test_pooling),
        cmocka_unit_test(test_linear),            cmocka_unit_test(test_elementwise_layers),
        cmocka_unit_test(test_grad_op_cases),     /* the grad suite's op table (tests/cases/op_cases.c) */
    };
    return tctx_main(argc, argv, &ref_be, &dut_be, &seed, "cuda layers vs cpu", tests,
                     sizeof tests / sizeof tests[0]);
}
