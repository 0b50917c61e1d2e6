/* CUDA vs CPU, the loss, mixing, elementwise and optimizer ops: softmax
 * cross-entropy (hard and soft targets, temperature, ignored rows), soft targets,
 * softmax, mixup/cutmix/reverse labels, fill/copy/convert/axpby, the
 * non-finite check, sum of squares, and several SGD steps in a row. Exits 77
 * without a GPU; `test_cuda_util_ops --self-check` runs the CPU against
 * itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cases/op_cases.h"
#include "cuda_test_util.h"
#include "kernels/backend.h"
#include "kernels/ops.h"

static tb_backend *ref_be, *dut_be;
static uint64_t seed;
static const tb_dtype dtypes[] = {TB_F32, TB_F16, TB_BF16};
#define NDT 3

/* Loss, probabilities and targets are f32 computed from the same inputs. */
#define F32_REDUCE_TOL 1e-4

/* ----------------------------------------------------------- softmax ce */
typedef struct ce_case {
    int n, k;
    float temperature;
    bool hard;
    int ignore; /* hard labels: rows i with i % ignore == 0 get label -1 (ignored); 0: none */
    bool mixup; /* soft targets from tb_soft_targets (smoothing + mixup, OC_V_SOFT), not random rows */
} ce_case;

/* The grad suite's softmax CE cases (OC_SOFTMAX_CE in tests/cases/op_cases.c)
 * run first, then these. */
static const ce_case ce_cases[] = {
    {4, 10, 1.0f, true, 0, false}, {4, 10, 2.5f, false, 0, false}, {1, 3, 1.0f, true, 0, false},
    {7, 1000, 1.0f, false, 0, false}, {33, 100, 0.5f, true, 0, false},
    /* ignored rows: a third, every row (loss 0, no gradient), half of two, a
     * quarter of 1000 per-pixel rows of 21 classes (segmentation) */
    {9, 10, 1.0f, true, 3, false}, {5, 7, 2.0f, true, 1, false}, {2, 4, 1.0f, true, 2, false},
    {1000, 21, 1.0f, true, 4, false},
    /* more rows than the reduction scratch holds floats (2^20): per-pixel
     * losses of a segmentation batch (16 x 480 x 480 rows in the paper's ADE20K) */
    {(1 << 20) + 77, 3, 1.0f, true, 5, false}, {(1 << 20) + 77, 2, 1.5f, false, 0, false},
};

/* Soft targets as test_ops_grad makes them: labels, the batch reversed, then
 * label smoothing and mixup (OC_SOFT_LAM, OC_SOFT_EPS), on each side. */
static bool set_mixup_targets(tctx *t, tpair *targets, const ce_case *cc)
{
    const float lam_value = OC_SOFT_LAM;
    tpair *a = tp_1d(t, TB_I32, cc->n, TP_LABELS, 0, (float)cc->k), *b = tp_1d(t, TB_I32, cc->n, TP_ZERO, 0, 0);
    tpair *lam = tp_values(t, TB_F32, 1, &lam_value);
    if (!a || !b || !lam)
        return false;
    RUN_BOTH(t, tb_reverse_labels(BE, S(b), S(a)));
    tp_check(t, "reversed labels", b, 0.0);
    RUN_BOTH(t, tb_soft_targets(BE, S(targets), S(a), S(b), S(lam), OC_SOFT_EPS));
    return tp_check(t, "targets (smoothing + mixup)", targets, tp_tol(TB_F32, false));
}

/* Labels in [0, k) with every ignore-th row (from row 0) set to -1. */
static bool set_ignored_labels(tctx *t, tpair *labels, const ce_case *cc)
{
    float *v = malloc(sizeof(float) * (size_t)cc->n);
    if (!v)
        return false;
    for (int i = 0; i < cc->n; i++)
        v[i] = i % cc->ignore == 0 ? -1.0f : (float)tb_rng_below(&t->rng, (uint64_t)cc->k);
    bool ok = tp_set(t, labels, v);
    free(v);
    return ok;
}

static void run_ce(tctx *t, const ce_case *cc, tb_dtype dt)
{
    tctx_case(t, "softmax_ce n %d k %d T %g %s%s %s", cc->n, cc->k, (double)cc->temperature,
              cc->hard ? "labels" : cc->mixup ? "soft targets (smoothing + mixup)" : "soft targets",
              cc->ignore ? " (some ignored)" : "", tb_dtype_name(dt));
    tpair *logits = tp_2d(t, dt, cc->n, cc->k, TP_UNIFORM, -3, 3);
    tpair *labels = cc->hard ? tp_1d(t, TB_I32, cc->n, TP_LABELS, 0, (float)cc->k) : NULL;
    tpair *targets = cc->hard ? NULL : tp_2d(t, TB_F32, cc->n, cc->k, TP_PROB_ROWS, 0, 1);
    tpair *loss = tp_1d(t, TB_F32, 1, TP_UNIFORM, -1, 1);
    tpair *probs = tp_2d(t, TB_F32, cc->n, cc->k, TP_UNIFORM, -1, 1);
    /* from zeros: gradients of order 1/n would drown in a random start's
     * tolerance (a backward that wrote nothing would pass); the second call
     * checks that it accumulates */
    tpair *dlogits = tp_2d(t, dt, cc->n, cc->k, TP_ZERO, 0, 0);
    if (!logits || !loss || !probs || !dlogits || (cc->hard ? !labels : !targets))
        return;
    if (cc->ignore && !set_ignored_labels(t, labels, cc))
        return;
    if (cc->mixup && !set_mixup_targets(t, targets, cc))
        return;
    RUN_BOTH(t, tb_softmax_ce_forward(BE, S(loss), S(probs), S(logits), S(labels), S(targets), cc->temperature));
    tp_check(t, "loss", loss, F32_REDUCE_TOL);
    if (cc->ignore == 1) { /* the contract itself, not only agreement: no labelled row, loss exactly 0 */
        float l = -1.0f;
        if (tctx_rc(t, 1, "download loss", tb_download(t->be[1], &l, &loss->t[1])) && l != 0.0f) {
            printf("FAIL %s: loss %g with every row ignored (want 0)\n", t->name, (double)l);
            t->failures++;
        }
    }
    tp_check(t, "probs", probs, F32_REDUCE_TOL);
    /* the second call takes its scale as 0.5 times a 4 in device memory (a
     * captured step's loss scale): the same 2 */
    const float four = 4.0f;
    tpair *scale = tp_values(t, TB_F32, 1, &four);
    if (!scale)
        return;
    RUN_BOTH(t, tb_softmax_ce_backward(BE, S(dlogits), S(probs), S(labels), S(targets), cc->temperature, 2.0f));
    tp_check(t, "dlogits (from zeros)", dlogits, tp_tol(dt, false));
    RUN_BOTH(t, tb_softmax_ce_backward_scaled(BE, S(dlogits), S(probs), S(labels), S(targets), cc->temperature, 0.5f,
                                              S(scale)));
    tp_check(t, "dlogits (added to the first, scale in memory)", dlogits, tp_tol(dt, false));
    RUN_BOTH(t, tb_softmax(BE, S(probs), S(logits), cc->temperature * 2.0f));
    tp_check(t, "softmax", probs, F32_REDUCE_TOL);
}

static void test_softmax_ce(void **state)
{
    (void)state;
    tctx ctx, *t = &ctx;
    tctx_init(t, ref_be, dut_be, seed ^ 0x2001);
    for (size_t i = 0; i < op_case_count; i++) {
        const op_case *oc = &op_cases[i];
        if (oc->op != OC_SOFTMAX_CE) /* the layers: test_cuda_layers.c's test_grad_op_cases */
            continue;
        bool soft = (oc->variant & OC_V_SOFT) != 0;
        ce_case cc = {(int)oc->d[0], (int)oc->d[1], oc->f, !soft, 0, soft};
        for (int d = 0; d < NDT; d++)
            run_ce(t, &cc, dtypes[d]);
    }
    for (size_t i = 0; i < sizeof ce_cases / sizeof ce_cases[0]; i++)
        for (int d = 0; d < NDT; d++)
            run_ce(t, &ce_cases[i], dtypes[d]);
    /* label smoothing and mixed targets */
    for (int with_b = 0; with_b < 2; with_b++) {
        int n = 6, k = 10;
        float lam = with_b ? 0.7f : 1.0f, eps = with_b ? 0.1f : 0.2f;
        tctx_case(t, "soft_targets lam %g eps %g%s", (double)lam, (double)eps, with_b ? " two labels" : "");
        tpair *a = tp_1d(t, TB_I32, n, TP_LABELS, 0, (float)k);
        tpair *b = with_b ? tp_1d(t, TB_I32, n, TP_LABELS, 0, (float)k) : NULL;
        tpair *tg = tp_2d(t, TB_F32, n, k, TP_UNIFORM, -1, 1);
        tpair *lam_t = with_b ? tp_values(t, TB_F32, 1, &lam) : NULL;
        if (!a || !tg || (with_b && (!b || !lam_t)))
            continue;
        RUN_BOTH(t, tb_soft_targets(BE, S(tg), S(a), S(b), S(lam_t), eps));
        tp_check(t, "targets", tg, tp_tol(TB_F32, false));
    }
    tctx_free(t);
    assert_int_equal(t->failures, 0);
}

/* ------------------------------------------------------------ argmax */
/* Per-row class predictions, index for index: random logits (in f16/bf16
 * rounding makes ties, which must keep the first), a segmentation-sized
 * {n, h, w, classes} tensor with 150 classes, and rows of NaN and inf. */
static void test_argmax(void **state)
{
    (void)state;
    tctx ctx, *t = &ctx;
    tctx_init(t, ref_be, dut_be, seed ^ 0x2006);
    for (int d = 0; d < NDT; d++) {
        tb_dtype dt = dtypes[d];
        tctx_case(t, "argmax %s", tb_dtype_name(dt));
        tpair *x = tp_4d(t, dt, 2, 9, 7, 150, TP_UNIFORM, -4, 4);
        tpair *idx = tp_1d(t, TB_I32, 2 * 9 * 7, TP_LABELS, 0, 1000);
        tpair *small = tp_2d(t, dt, 1001, 3, TP_UNIFORM, -1, 1), *sidx = tp_1d(t, TB_I32, 1001, TP_LABELS, 0, 1000);
        const float v[12] = {NAN, 1, 2, 3, -1, NAN, 0.5f, -2, INFINITY, 1, INFINITY, -INFINITY};
        tpair *special = tp_values(t, dt, 12, v), *pidx = tp_1d(t, TB_I32, 3, TP_LABELS, 0, 1000);
        if (!x || !idx || !small || !sidx || !special || !pidx)
            continue;
        RUN_BOTH(t, tb_argmax(BE, S(idx), S(x)));
        tp_check(t, "argmax {2,9,7,150}", idx, 0.0);
        RUN_BOTH(t, tb_argmax(BE, S(sidx), S(small)));
        tp_check(t, "argmax {1001,3}", sidx, 0.0);
        for (int side_ = 0; side_ < 2; side_++) { /* {12} viewed as three rows of four */
            tb_tensor rows = tb_tensor_2d(special->t[side_].data, dt, 3, 4);
            tctx_rc(t, side_, "argmax of NaN and inf rows", tb_argmax(BE, &pidx->t[side_], &rows));
        }
        tp_check(t, "argmax NaN and inf rows", pidx, 0.0);
    }
    /* the hits of 1000 random predictions against random labels, and of a vector against itself */
    tctx_case(t, "count_equal");
    tpair *a = tp_1d(t, TB_I32, 1000, TP_LABELS, 0, 4), *b = tp_1d(t, TB_I32, 1000, TP_LABELS, 0, 4);
    tpair *count = tp_1d(t, TB_I32, 1, TP_LABELS, 5000, 6000);
    if (a && b && count) {
        RUN_BOTH(t, tb_count_equal(BE, S(count), S(a), S(b)));
        tp_check(t, "count_equal", count, 0.0);
        RUN_BOTH(t, tb_count_equal(BE, S(count), S(a), S(a)));
        tp_check(t, "count_equal of a vector and itself", count, 0.0);
    }
    tctx_free(t);
    assert_int_equal(t->failures, 0);
}

/* ------------------------------------------------------------ mixing */
static void test_mixing(void **state)
{
    (void)state;
    tctx ctx, *t = &ctx;
    tctx_init(t, ref_be, dut_be, seed ^ 0x2002);
    for (int d = 0; d < NDT; d++) {
        tb_dtype dt = dtypes[d];
        tctx_case(t, "mixup/cutmix %s", tb_dtype_name(dt));
        tpair *x = tp_4d(t, dt, 5, 6, 7, 3, TP_UNIFORM, -1, 1);
        tpair *y = tp_4d(t, dt, 5, 6, 7, 3, TP_UNIFORM, -1, 1);
        const float lam = 0.3f, box[4] = {1, 4, 2, 6}, whole[4] = {0, 6, 0, 7}, empty[4] = {3, 3, 0, 7};
        tpair *lam_t = tp_values(t, TB_F32, 1, &lam), *box_t = tp_values(t, TB_I32, 4, box);
        tpair *whole_t = tp_values(t, TB_I32, 4, whole), *empty_t = tp_values(t, TB_I32, 4, empty);
        if (!x || !y || !lam_t || !box_t || !whole_t || !empty_t)
            continue;
        RUN_BOTH(t, tb_mixup_batch(BE, S(y), S(x), S(lam_t)));
        tp_check(t, "mixup", y, tp_tol(dt, false));
        RUN_BOTH(t, tb_cutmix_batch(BE, S(y), S(x), S(box_t)));
        tp_check(t, "cutmix", y, 0.0);
        RUN_BOTH(t, tb_cutmix_batch(BE, S(y), S(x), S(whole_t)));
        tp_check(t, "cutmix whole image", y, 0.0);
        RUN_BOTH(t, tb_cutmix_batch(BE, S(y), S(x), S(empty_t)));
        tp_check(t, "cutmix empty box", y, 0.0);
    }
    tctx_case(t, "reverse_labels");
    tpair *l = tp_1d(t, TB_I32, 9, TP_LABELS, 0, 100), *lb = tp_1d(t, TB_I32, 9, TP_LABELS, 0, 100);
    if (l && lb) {
        RUN_BOTH(t, tb_reverse_labels(BE, S(lb), S(l)));
        tp_check(t, "labels_b", lb, 0.0);
    }
    tctx_free(t);
    assert_int_equal(t->failures, 0);
}

/* ------------------------------------------------------- elementwise */
static void test_fill_copy_convert(void **state)
{
    (void)state;
    static const tb_dtype all[] = {TB_F32, TB_F16, TB_BF16, TB_U8, TB_I32};
    tctx ctx, *t = &ctx;
    tctx_init(t, ref_be, dut_be, seed ^ 0x2003);
    for (int d = 0; d < 5; d++) {
        tb_dtype dt = all[d];
        tctx_case(t, "fill/copy %s", tb_dtype_name(dt));
        tpair *a = tp_1d(t, dt, 1027, TP_UNIFORM, -1, 1), *b = tp_1d(t, dt, 1027, TP_UNIFORM, -1, 1);
        if (!a || !b)
            continue;
        RUN_BOTH(t, tb_fill(BE, S(a), 3.0f));
        tp_check(t, "fill 3", a, 0.0);
        RUN_BOTH(t, tb_fill(BE, S(b), 0.0f));
        tp_check(t, "fill 0", b, 0.0);
        RUN_BOTH(t, tb_copy(BE, S(b), S(a)));
        tp_check(t, "copy", b, 0.0);
    }
    /* conversions round to nearest even on both backends: bitwise equal.
     * Magnitudes 2^-30 .. 2^17: f16 subnormals, underflow to 0, overflow to inf. */
    float wide[13 * 77];
    for (int i = 0; i < 13 * 77; i++)
        wide[i] = (i % 2 ? -1.0f : 1.0f) * exp2f(tb_rng_uniform_f(&t->rng, -30.0f, 17.0f));
    for (int s = 0; s < NDT; s++)
        for (int d = 0; d < NDT; d++) {
            tb_dtype src = dtypes[s], dst = dtypes[d];
            tctx_case(t, "convert %s -> %s", tb_dtype_name(src), tb_dtype_name(dst));
            tpair *x = tp_2d(t, src, 13, 77, TP_ZERO, 0, 0);
            tpair *y = tp_2d(t, dst, 13, 77, TP_UNIFORM, -1, 1);
            if (!x || !y || !tp_set(t, x, wide))
                continue;
            RUN_BOTH(t, tb_convert(BE, S(y), S(x)));
            tp_check_bits(t, "converted", y); /* overflow to inf is part of the test */
        }
    for (int d = 0; d < NDT; d++)
        for (int same = 0; same < 2; same++) {
            tb_dtype dx = dtypes[d], dy = same ? dtypes[d] : TB_F32;
            tctx_case(t, "axpby x %s y %s", tb_dtype_name(dx), tb_dtype_name(dy));
            tpair *x = tp_1d(t, dx, 999, TP_UNIFORM, -1, 1), *y = tp_1d(t, dy, 999, TP_UNIFORM, -1, 1);
            if (!x || !y)
                continue;
            RUN_BOTH(t, tb_axpby(BE, S(y), 0.3f, S(x), 0.7f));
            tp_check(t, "y = 0.3 x + 0.7 y", y, tp_tol(dy, false));
            RUN_BOTH(t, tb_axpby(BE, S(y), -2.0f, S(x), 0.0f));
            tp_check(t, "y = -2 x", y, tp_tol(dy, false));
        }
    tctx_free(t);
    assert_int_equal(t->failures, 0);
}

static void test_checks(void **state)
{
    (void)state;
    tctx ctx, *t = &ctx;
    tctx_init(t, ref_be, dut_be, seed ^ 0x2004);
    static const float specials[] = {INFINITY, -INFINITY, NAN};
    for (int d = 0; d < NDT; d++) {
        tb_dtype dt = dtypes[d];
        int64_t count = 5003;
        float *v = malloc(sizeof(float) * (size_t)count);
        if (!v)
            fail_msg("out of memory");
        for (int s = -1; s < 3; s++) {
            tctx_case(t, "nonfinite_check %s %s", tb_dtype_name(dt), s < 0 ? "finite" : "special value");
            for (int64_t i = 0; i < count; i++)
                v[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
            if (s >= 0)
                v[count - 1 - 977 * s] = specials[s];
            tpair *x = tp_1d(t, dt, count, TP_ZERO, 0, 0);
            tpair *flag = tp_1d(t, TB_I32, 1, TP_ZERO, 0, 0);
            if (!x || !flag || !tp_set(t, x, v))
                continue;
            float two = 2.0f; /* a bit set before must survive (flag |= 1) */
            if (s == 2 && !tp_set(t, flag, &two))
                continue;
            RUN_BOTH(t, tb_nonfinite_check(BE, S(flag), S(x)));
            tp_check(t, "flag", flag, 0.0);
        }
        free(v);
        tctx_case(t, "sumsq %s", tb_dtype_name(dt));
        tpair *x = tp_4d(t, dt, 3, 7, 11, 13, TP_UNIFORM, -1, 1), *big = tp_1d(t, dt, 300007, TP_UNIFORM, -1, 1);
        tpair *out = tp_1d(t, TB_F32, 1, TP_UNIFORM, 1, 2);
        if (!x || !big || !out)
            continue;
        RUN_BOTH(t, tb_sumsq(BE, S(out), S(x)));
        tp_check(t, "out += sum x^2", out, F32_REDUCE_TOL);
        RUN_BOTH(t, tb_sumsq(BE, S(out), S(big)));
        tp_check(t, "out += sum x^2 (300007)", out, F32_REDUCE_TOL);
    }
    tctx_free(t);
    assert_int_equal(t->failures, 0);
}

/* ------------------------------------------------------------- SGD */
typedef struct sgd_case {
    const char *name;
    tb_dtype grad_dt;
    bool model, mask, momentum_buf;
    int skip; /* -1: no flag, else its value */
    tb_sgd_params p; /* SGD(lr, momentum, weight_decay, grad_scale, nesterov) */
    float lr_tensor; /* > 0: the rate comes from an lr_tensor holding this (p.lr is then ignored) */
    float clip;      /* > 0: clipping to this global norm, its sum of squares accumulated on each side */
    bool scale_in_memory; /* p.grad_scale comes from a grad_scale_tensor (p.grad_scale is then 1000) */
} sgd_case;

/* lr, momentum, weight_decay, grad_scale, nesterov */
#define SGD(rate, m, wd, gs, nag) {.lr = rate, .momentum = m, .weight_decay = wd, .grad_scale = gs, .nesterov = nag}

static const sgd_case sgd_cases[] = {
    {"f32 momentum, masked decay", TB_F32, false, true, true, -1, SGD(0.1f, 0.9f, 1e-4f, 1.0f, false),
     0.0f, 0.0f, false},
    {"f16 model, nesterov, loss scale 128", TB_F16, true, true, true, 0, SGD(0.05f, 0.9f, 5e-5f, 128.0f, true),
     0.0f, 0.0f, false},
    {"bf16 model, no momentum, no mask", TB_BF16, true, false, false, -1, SGD(0.2f, 0.0f, 1e-4f, 1.0f, false),
     0.0f, 0.0f, false},
    {"f16 skipped (overflow flag set)", TB_F16, true, true, true, 1, SGD(0.1f, 0.9f, 1e-4f, 1024.0f, true),
     0.0f, 0.0f, false},
    {"f32 nesterov, decay everywhere", TB_F32, false, true, true, 0, SGD(0.4f, 0.8f, 1e-3f, 1.0f, true),
     0.0f, 0.0f, false},
    {"bf16 model, rate from lr_tensor", TB_BF16, true, true, true, -1, SGD(9.0f, 0.9f, 1e-4f, 1.0f, true),
     0.03f, 0.0f, false},
    /* 4099 gradients uniform in [-g, g]: a true norm near 37, so these clip */
    {"f32 clipped to norm 1", TB_F32, false, true, true, -1, SGD(0.1f, 0.9f, 1e-4f, 1.0f, true), 0.0f, 1.0f, false},
    {"f16 model, loss scale 64, clipped to norm 5", TB_F16, true, true, true, 0, SGD(0.1f, 0.9f, 1e-4f, 64.0f, false),
     0.0f, 5.0f, false},
    {"f16 model, loss scale 512 from memory, clipped", TB_F16, true, true, true, 0,
     SGD(0.1f, 0.9f, 1e-4f, 512.0f, true), 0.0f, 5.0f, true},
    {"f32 clip limit above the norm", TB_F32, false, false, true, -1, SGD(0.1f, 0.9f, 0.0f, 1.0f, false), 0.0f,
     1000.0f, false},
};

static void run_sgd(tctx *t, const sgd_case *sc)
{
    const int64_t count = 4099;
    tctx_case(t, "sgd %s", sc->name);
    tpair *master = tp_1d(t, TB_F32, count, TP_UNIFORM, -1, 1);
    tpair *model = sc->model ? tp_1d(t, sc->grad_dt, count, TP_UNIFORM, -1, 1) : NULL;
    tpair *vbuf = sc->momentum_buf ? tp_1d(t, TB_F32, count, TP_UNIFORM, -0.1f, 0.1f) : NULL;
    tpair *mask = sc->mask ? tp_1d(t, TB_U8, count, TP_MASK, 0, 1) : NULL;
    tpair *skip = sc->skip >= 0 ? tp_1d(t, TB_I32, 1, TP_ZERO, 0, 0) : NULL;
    if (!master || (sc->model && !model) || (sc->momentum_buf && !vbuf) || (sc->mask && !mask) ||
        (sc->skip >= 0 && !skip))
        return;
    float flag = (float)sc->skip;
    if (skip && !tp_set(t, skip, &flag))
        return;
    tpair *lr = sc->lr_tensor > 0 ? tp_values(t, TB_F32, 1, &sc->lr_tensor) : NULL;
    if (sc->lr_tensor > 0 && !lr)
        return;
    tpair *sumsq = sc->clip > 0 ? tp_1d(t, TB_F32, 1, TP_ZERO, 0, 0) : NULL;
    if (sc->clip > 0 && !sumsq)
        return;
    tpair *gscale = sc->scale_in_memory ? tp_values(t, TB_F32, 1, &sc->p.grad_scale) : NULL;
    if (sc->scale_in_memory && !gscale)
        return;
    tb_sgd_params ps[2] = {sc->p, sc->p}; /* per side: the scalars point into that side's memory */
    for (int s = 0; s < 2; s++) {
        ps[s].lr_tensor = lr ? &lr->t[s] : NULL;
        ps[s].clip_sumsq = sumsq ? &sumsq->t[s] : NULL;
        ps[s].clip_max_norm = sc->clip;
        ps[s].grad_scale_tensor = gscale ? &gscale->t[s] : NULL;
        if (gscale)
            ps[s].grad_scale = 1000.0f; /* ignored */
    }
    float g = sc->p.grad_scale;
    for (int step = 0; step < 3; step++) {
        tpair *grad = tp_1d(t, sc->grad_dt, count, TP_UNIFORM, -g, g);
        if (!grad)
            return;
        if (sumsq) {
            RUN_BOTH(t, tb_fill(BE, S(sumsq), 0.0f));
            RUN_BOTH(t, tb_sumsq(BE, S(sumsq), S(grad)));
        }
        RUN_BOTH(t, tb_sgd_step(BE, S(master), S(model), S(vbuf), S(grad), S(mask), S(skip), &ps[side_]));
    }
    tp_check(t, "master", master, tp_tol(TB_F32, false));
    if (model)
        tp_check(t, "model", model, tp_tol(sc->grad_dt, false));
    if (vbuf)
        tp_check(t, "momentum", vbuf, tp_tol(TB_F32, false));
}

static void test_sgd(void **state)
{
    (void)state;
    tctx ctx, *t = &ctx;
    tctx_init(t, ref_be, dut_be, seed ^ 0x2005);
    for (size_t i = 0; i < sizeof sgd_cases / sizeof sgd_cases[0]; i++)
        run_sgd(t, &sgd_cases[i]);
    tctx_free(t);
    assert_int_equal(t->failures, 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_softmax_ce), cmocka_unit_test(test_mixing), cmocka_unit_test(test_fill_copy_convert),
        cmocka_unit_test(test_checks),     cmocka_unit_test(test_sgd),        cmocka_unit_test(test_argmax),
    };
    return tctx_main(argc, argv, &ref_be, &dut_be, &seed, "cuda loss/util/optimizer ops vs cpu", tests,
                     sizeof tests / sizeof tests[0]);
}
