/* Every op with a backward, table-driven: gradients against central finite
 * differences in double (L = sum(y * g) for random g), accumulation (a second
 * backward doubles the gradients), determinism (a rerun is bitwise equal),
 * the same cases in f16/bf16 against f32 within the dtype's tolerance, the
 * fast linear against its naive twin, and thread-count independence. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cases/op_cases.h"
#include "kernels/backend.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/error.h"
#include "kernels/ops.h"
#include "ops_testutil.h"

/* The table of cases (op_cases) is tests/cases/op_cases.c, shared with the
 * cuda suite; setup_case turns one into a gcase. */

static tb_tensor like(tb_dtype dt, int ndim, const int64_t *d)
{
    return tt_new(dt, ndim, d[0], ndim > 1 ? d[1] : 1, ndim > 2 ? d[2] : 1, ndim > 3 ? d[3] : 1);
}

static void begin(gcase *c, const op_case *s, tb_dtype dt)
{
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s (%s)", s->name, tb_dtype_name(dt));
    c->h = 1e-2;
    c->atol = 2e-3;
    c->rtol = 1e-2;
}

/* Input gradients shaped like the inputs, and upstream gradients
 * dout = uniform(-1, 1) in each output's dtype, rounded to rdt. */
static void finish(gcase *c, tb_rng *r, tb_dtype rdt)
{
    for (int i = 0; i < c->n_in; i++)
        c->din[i] = like(c->in[i].dtype, c->in[i].ndim, c->in[i].shape);
    for (int o = 0; o < c->n_out; o++) {
        tb_tensor *y = &c->out[o];
        c->dout[o] = like(y->dtype, y->ndim, y->shape);
        tt_uniform(&c->dout[o], r, -1.0, 1.0, rdt);
    }
}

/* ------------------------------------------------------------- batchnorm */

static int bn_fwd(gcase *c)
{
    return tb_batchnorm_forward_train(tt_be, &c->out[0], &c->aux[0], &c->aux[1], &c->aux[2], &c->aux[3],
                                      &c->in[0], &c->in[1], &c->in[2], 0.1f, 1e-5f);
}

static int bn_bwd(gcase *c)
{
    return tb_batchnorm_backward(tt_be, &c->din[0], &c->din[1], &c->din[2], &c->dout[0], &c->in[0], &c->in[1],
                                 &c->aux[0], &c->aux[1]);
}

/* x, gamma, beta (inputs 0-2) and the saved and running statistics (aux 0-3). */
static void bn_inputs(gcase *c, const op_case *s, tb_dtype dt, tb_dtype rdt, tb_rng *r)
{
    int64_t ch = s->d[s->ndim - 1];
    c->n_in = 3;
    c->in[0] = like(dt, s->ndim, s->d);
    tt_uniform(&c->in[0], r, -2.0, 3.0, rdt);
    c->in[1] = tt_1d(TB_F32, ch);
    tt_uniform(&c->in[1], r, 0.5, 1.5, TB_F32);
    c->in[2] = tt_1d(TB_F32, ch);
    tt_uniform(&c->in[2], r, -0.5, 0.5, TB_F32);
    for (int a = 0; a < 4; a++)
        c->aux[a] = tt_1d(TB_F32, ch);
}

static void setup_bn(gcase *c, const op_case *s, tb_dtype dt, tb_dtype rdt, tb_rng *r)
{
    begin(c, s, dt);
    bn_inputs(c, s, dt, rdt, r);
    c->n_out = 1;
    c->out[0] = like(dt, s->ndim, s->d);
    c->fwd = bn_fwd;
    c->bwd = bn_bwd;
    c->h = 5e-3;
    finish(c, r, rdt);
}

/* ------------------------------------------ batchnorm + add + relu (fused) */

static const tb_tensor *bnr_z(gcase *c) { return c->flag & OC_V_ADD ? &c->in[3] : NULL; }

static int bnr_fwd(gcase *c)
{
    return tb_batchnorm_relu_forward_train(tt_be, &c->out[0], &c->aux[0], &c->aux[1], &c->aux[2], &c->aux[3],
                                           &c->aux[4], &c->in[0], bnr_z(c), &c->in[1], &c->in[2], 0.1f, 1e-5f);
}

static int bnr_bwd(gcase *c)
{
    tb_tensor *dz = c->flag & OC_V_ADD ? &c->din[3] : NULL;
    return tb_batchnorm_relu_backward(tt_be, &c->din[0], dz, &c->din[1], &c->din[2], &c->aux[4], &c->dout[0],
                                      &c->in[0], &c->out[0], &c->in[1], &c->in[2], &c->aux[0], &c->aux[1],
                                      (c->flag & OC_V_ADD) != 0, false);
}

/* Moves inputs until every pre-activation BN(x) + z is at least `margin` from
 * the ReLU's kink, so that finite differences never straddle it: z alone
 * when there is one (the statistics do not depend on it), else x (which
 * moves the statistics too, hence the rounds). Values rounded to rdt. */
static void keep_off_kink(gcase *c, tb_dtype rdt, double margin)
{
    const tb_tensor *x = &c->in[0], *z = bnr_z(c);
    int64_t ch = x->shape[x->ndim - 1], rows = tb_numel(x) / ch;
    for (int round = 0; round < 50; round++) {
        bool moved = false;
        for (int64_t j = 0; j < ch; j++) {
            double s = 0, q = 0;
            for (int64_t r = 0; r < rows; r++)
                s += tt_get(x, r * ch + j);
            double mean = s / (double)rows;
            for (int64_t r = 0; r < rows; r++)
                q += (tt_get(x, r * ch + j) - mean) * (tt_get(x, r * ch + j) - mean);
            double scale = tt_get(&c->in[1], j) / sqrt(q / (double)rows + 1e-5);
            for (int64_t r = 0; r < rows; r++) {
                int64_t e = r * ch + j;
                double pre = (tt_get(x, e) - mean) * scale + tt_get(&c->in[2], j) + (z ? tt_get(z, e) : 0.0);
                if (fabs(pre) >= margin)
                    continue;
                double push = pre >= 0 ? 3 * margin : -3 * margin;
                if (z)
                    tt_set(z, e, tt_round(tt_get(z, e) + push, rdt));
                else
                    tt_set(x, e, tt_round(tt_get(x, e) + push / scale, rdt));
                moved = true;
            }
        }
        if (!moved)
            return;
    }
    fail_msg("%s: inputs stay near the ReLU kink", c->name);
}

static void setup_bn_relu(gcase *c, const op_case *s, tb_dtype dt, tb_dtype rdt, tb_rng *r)
{
    begin(c, s, dt);
    c->flag = s->variant;
    bn_inputs(c, s, dt, rdt, r);
    if (c->flag & OC_V_ADD) {
        c->n_in = 4;
        c->in[3] = like(dt, s->ndim, s->d);
        tt_uniform(&c->in[3], r, -1.0, 1.0, rdt);
    }
    c->aux[4] = tt_1d(TB_U8, 1); /* the CPU needs no reserve space; one byte stands for it */
    keep_off_kink(c, rdt, 0.05);
    c->n_out = 1;
    c->out[0] = like(dt, s->ndim, s->d);
    c->fwd = bnr_fwd;
    c->bwd = bnr_bwd;
    c->h = 2e-3;
    finish(c, r, rdt);
}

/* ------------------------------------------------------------------ relu */

static int relu_fwd(gcase *c) { return tb_relu_forward(tt_be, &c->out[0], &c->in[0]); }
static int relu_bwd(gcase *c) { return tb_relu_backward(tt_be, &c->din[0], &c->dout[0], &c->out[0]); }

static void setup_relu(gcase *c, const op_case *s, tb_dtype dt, tb_dtype rdt, tb_rng *r)
{
    begin(c, s, dt);
    c->n_in = c->n_out = 1;
    c->in[0] = like(dt, s->ndim, s->d);
    /* magnitudes in [0.05, 1): finite differences never straddle the kink */
    for (int64_t i = 0; i < tb_numel(&c->in[0]); i++) {
        double m = 0.05 + 0.95 * tb_rng_uniform(r);
        tt_set(&c->in[0], i, tt_round(tb_rng_uniform(r) < 0.5 ? -m : m, rdt));
    }
    c->out[0] = like(dt, s->ndim, s->d);
    c->fwd = relu_fwd;
    c->bwd = relu_bwd;
    c->h = 1e-3;
    finish(c, r, rdt);
}

/* --------------------------------------------------------------- pooling */

static int maxpool_fwd(gcase *c) { return tb_maxpool_forward(tt_be, &c->out[0], &c->in[0], &c->pool); }
static int maxpool_bwd(gcase *c)
{
    return tb_maxpool_backward(tt_be, &c->din[0], &c->dout[0], &c->out[0], &c->in[0], &c->pool);
}
static int avgpool_fwd(gcase *c) { return tb_avgpool_forward(tt_be, &c->out[0], &c->in[0], &c->pool); }
static int avgpool_bwd(gcase *c) { return tb_avgpool_backward(tt_be, &c->din[0], &c->dout[0], &c->pool); }

static void setup_pool(gcase *c, const op_case *s, tb_dtype dt, tb_dtype rdt, tb_rng *r, bool max)
{
    begin(c, s, dt);
    c->pool = s->pool;
    c->n_in = c->n_out = 1;
    c->in[0] = like(dt, 4, s->d);
    if (max) {
        /* distinct values 0.01 apart, steps of 1e-3: no ties, no argmax change */
        tt_distinct(&c->in[0], r, 0.01);
        for (int64_t i = 0; i < tb_numel(&c->in[0]); i++)
            tt_set(&c->in[0], i, tt_round(tt_get(&c->in[0], i), rdt));
        c->h = 1e-3;
    } else {
        tt_uniform(&c->in[0], r, -1.0, 1.0, rdt);
    }
    int64_t oh = tb_pool_out_size(s->d[1], s->pool.kernel_h, s->pool.stride_h, s->pool.pad_h, s->pool.ceil_mode);
    int64_t ow = tb_pool_out_size(s->d[2], s->pool.kernel_w, s->pool.stride_w, s->pool.pad_w, s->pool.ceil_mode);
    c->out[0] = tt_4d(dt, s->d[0], oh, ow, s->d[3]);
    c->fwd = max ? maxpool_fwd : avgpool_fwd;
    c->bwd = max ? maxpool_bwd : avgpool_bwd;
    finish(c, r, rdt);
}

static void setup_maxpool(gcase *c, const op_case *s, tb_dtype dt, tb_dtype rdt, tb_rng *r)
{
    setup_pool(c, s, dt, rdt, r, true);
}

static void setup_avgpool(gcase *c, const op_case *s, tb_dtype dt, tb_dtype rdt, tb_rng *r)
{
    setup_pool(c, s, dt, rdt, r, false);
}

static int gap_fwd(gcase *c) { return tb_global_avgpool_forward(tt_be, &c->out[0], &c->in[0]); }
static int gap_bwd(gcase *c) { return tb_global_avgpool_backward(tt_be, &c->din[0], &c->dout[0]); }

static void setup_gap(gcase *c, const op_case *s, tb_dtype dt, tb_dtype rdt, tb_rng *r)
{
    begin(c, s, dt);
    c->n_in = c->n_out = 1;
    c->in[0] = like(dt, 4, s->d);
    tt_uniform(&c->in[0], r, -1.0, 1.0, rdt);
    c->out[0] = tt_2d(dt, s->d[0], s->d[3]);
    c->fwd = gap_fwd;
    c->bwd = gap_bwd;
    finish(c, r, rdt);
}

/* ---------------------------------------------------------------- linear */

static const tb_tensor *bias_of(gcase *c) { return c->flag & OC_V_BIAS ? &c->in[2] : NULL; }

static int linear_fwd(gcase *c)
{
    if (c->flag & OC_V_NAIVE)
        return tb_cpu_linear_forward_naive(tt_be, &c->out[0], &c->in[0], &c->in[1], bias_of(c));
    return tb_linear_forward(tt_be, &c->out[0], &c->in[0], &c->in[1], bias_of(c));
}

static int linear_bwd(gcase *c)
{
    tb_tensor *db = c->flag & OC_V_BIAS ? &c->din[2] : NULL;
    if (c->flag & OC_V_NAIVE)
        return tb_cpu_linear_backward_naive(tt_be, &c->din[0], &c->din[1], db, &c->dout[0], &c->in[0], &c->in[1]);
    return tb_linear_backward(tt_be, &c->din[0], &c->din[1], db, &c->dout[0], &c->in[0], &c->in[1]);
}

static void setup_linear(gcase *c, const op_case *s, tb_dtype dt, tb_dtype rdt, tb_rng *r)
{
    int64_t n = s->d[0], ch = s->d[1], k = s->k;
    begin(c, s, dt);
    c->flag = s->variant;
    c->n_in = s->variant & OC_V_BIAS ? 3 : 2;
    c->in[0] = tt_2d(dt, n, ch);
    c->in[1] = tt_2d(dt, k, ch);
    tt_uniform(&c->in[0], r, -1.0, 1.0, rdt);
    tt_uniform(&c->in[1], r, -1.0, 1.0, rdt);
    if (s->variant & OC_V_BIAS) {
        c->in[2] = tt_1d(dt, k);
        tt_uniform(&c->in[2], r, -1.0, 1.0, rdt);
    }
    c->n_out = 1;
    c->out[0] = tt_2d(dt, n, k);
    assert_int_equal(tb_backend_reserve_workspace(tt_be, 4 * (size_t)(n * ch + k * ch + n * k)), TB_OK);
    c->fwd = linear_fwd;
    c->bwd = linear_bwd;
    finish(c, r, rdt);
}

/* ------------------------------------------------------- add and concat */

static int add_fwd(gcase *c) { return tb_add_forward(tt_be, &c->out[0], &c->in[0], &c->in[1]); }
static int add_bwd(gcase *c) { return tb_add_backward(tt_be, &c->din[0], &c->din[1], &c->dout[0]); }

static void setup_add(gcase *c, const op_case *s, tb_dtype dt, tb_dtype rdt, tb_rng *r)
{
    begin(c, s, dt);
    c->n_in = 2;
    c->n_out = 1;
    for (int i = 0; i < 2; i++) {
        c->in[i] = like(dt, s->ndim, s->d);
        tt_uniform(&c->in[i], r, -1.0, 1.0, rdt);
    }
    c->out[0] = like(dt, s->ndim, s->d);
    c->fwd = add_fwd;
    c->bwd = add_bwd;
    finish(c, r, rdt);
}

static int concat_fwd(gcase *c)
{
    const tb_tensor *xs[GC_MAX_IN];
    for (int i = 0; i < c->n_in; i++)
        xs[i] = &c->in[i];
    return tb_concat_forward(tt_be, &c->out[0], xs, c->n_in);
}

static int concat_bwd(gcase *c)
{
    tb_tensor *dxs[GC_MAX_IN];
    for (int i = 0; i < c->n_in; i++)
        dxs[i] = &c->din[i];
    return tb_concat_backward(tt_be, dxs, c->n_in, &c->dout[0]);
}

static void setup_concat(gcase *c, const op_case *s, tb_dtype dt, tb_dtype rdt, tb_rng *r)
{
    int64_t d[4];
    int last = s->ndim - 1;
    begin(c, s, dt);
    memcpy(d, s->d, sizeof d);
    d[last] = 0;
    for (int i = 0; i < 3 && s->parts[i]; i++) {
        int64_t di[4];
        memcpy(di, s->d, sizeof di);
        di[last] = s->parts[i];
        c->in[c->n_in] = like(dt, s->ndim, di);
        tt_uniform(&c->in[c->n_in++], r, -1.0, 1.0, rdt);
        d[last] += s->parts[i];
    }
    c->n_out = 1;
    c->out[0] = like(dt, s->ndim, d);
    c->fwd = concat_fwd;
    c->bwd = concat_bwd;
    finish(c, r, rdt);
}

/* --------------------------------------------------------------- dropout */

static int dropout_fwd(gcase *c) { return tb_dropout_forward(tt_be, &c->out[0], &c->aux[0], &c->in[0], c->f[0], 77); }
static int dropout_bwd(gcase *c) { return tb_dropout_backward(tt_be, &c->din[0], &c->dout[0], &c->aux[0], c->f[0]); }

static void setup_dropout(gcase *c, const op_case *s, tb_dtype dt, tb_dtype rdt, tb_rng *r)
{
    begin(c, s, dt);
    c->f[0] = s->f;
    c->n_in = c->n_out = 1;
    c->in[0] = like(dt, s->ndim, s->d);
    tt_uniform(&c->in[0], r, -1.0, 1.0, rdt);
    c->aux[0] = like(TB_U8, s->ndim, s->d);
    c->out[0] = like(dt, s->ndim, s->d);
    c->fwd = dropout_fwd;
    c->bwd = dropout_bwd;
    finish(c, r, rdt);
}

/* ------------------------------------------------- softmax cross-entropy */

static const tb_tensor *labels_of(gcase *c) { return c->flag & OC_V_SOFT ? NULL : &c->aux[1]; }
static const tb_tensor *targets_of(gcase *c) { return c->flag & OC_V_SOFT ? &c->aux[2] : NULL; }

static int ce_fwd(gcase *c)
{
    return tb_softmax_ce_forward(tt_be, &c->out[0], &c->aux[0], &c->in[0], labels_of(c), targets_of(c), c->f[0]);
}

static int ce_bwd(gcase *c)
{
    float g = (float)tt_get(&c->dout[0], 0);
    return tb_softmax_ce_backward(tt_be, &c->din[0], &c->aux[0], labels_of(c), targets_of(c), c->f[0], g);
}

static void setup_ce(gcase *c, const op_case *s, tb_dtype dt, tb_dtype rdt, tb_rng *r)
{
    int64_t n = s->d[0], k = s->d[1];
    begin(c, s, dt);
    c->flag = s->variant;
    c->f[0] = s->f;
    c->n_in = c->n_out = 1;
    c->in[0] = tt_2d(dt, n, k);
    tt_uniform(&c->in[0], r, -3.0, 3.0, rdt);
    c->aux[0] = tt_2d(TB_F32, n, k);
    c->aux[1] = tt_1d(TB_I32, n);
    c->aux[3] = tt_1d(TB_I32, n);
    for (int64_t i = 0; i < n; i++)
        ((int32_t *)c->aux[1].data)[i] = (int32_t)tb_rng_below(r, (uint64_t)k);
    if (s->variant & OC_V_SOFT) {
        /* label smoothing 0.1 plus mixup with the reversed batch, lam 0.7 */
        c->aux[2] = tt_2d(TB_F32, n, k);
        assert_int_equal(tb_reverse_labels(tt_be, &c->aux[3], &c->aux[1]), TB_OK);
        tb_tensor lam = tt_lam(OC_SOFT_LAM);
        assert_int_equal(tb_soft_targets(tt_be, &c->aux[2], &c->aux[1], &c->aux[3], &lam, OC_SOFT_EPS), TB_OK);
    }
    c->out[0] = tt_1d(TB_F32, 1);
    c->fwd = ce_fwd;
    c->bwd = ce_bwd;
    finish(c, r, TB_F32);
}

/* ------------------------------------------------------------ the cases */

/* A case's tensors and callbacks in dtype dt, values rounded to rdt. */
static void setup_case(gcase *c, const op_case *s, tb_dtype dt, tb_dtype rdt, tb_rng *r)
{
    switch (s->op) {
    case OC_BATCHNORM: setup_bn(c, s, dt, rdt, r); return;
    case OC_BATCHNORM_RELU: setup_bn_relu(c, s, dt, rdt, r); return;
    case OC_RELU: setup_relu(c, s, dt, rdt, r); return;
    case OC_MAXPOOL: setup_maxpool(c, s, dt, rdt, r); return;
    case OC_AVGPOOL: setup_avgpool(c, s, dt, rdt, r); return;
    case OC_GLOBAL_AVGPOOL: setup_gap(c, s, dt, rdt, r); return;
    case OC_LINEAR: setup_linear(c, s, dt, rdt, r); return;
    case OC_ADD: setup_add(c, s, dt, rdt, r); return;
    case OC_CONCAT: setup_concat(c, s, dt, rdt, r); return;
    case OC_DROPOUT: setup_dropout(c, s, dt, rdt, r); return;
    case OC_SOFTMAX_CE: setup_ce(c, s, dt, rdt, r); return;
    }
    fail_msg("%s: no setup for op kind %d", s->name, (int)s->op);
}

static void test_gradients(void **state)
{
    (void)state;
    for (size_t i = 0; i < op_case_count; i++) {
        gcase c;
        tb_rng r;
        tb_rng_seed(&r, 1000 + (uint64_t)i, 0);
        setup_case(&c, &op_cases[i], TB_F32, TB_F32, &r);
        gc_check(&c);
        tt_free_all();
    }
}

/* f16/bf16 against f32 on identical (rounded) inputs: outputs and gradients
 * agree to a few units of the low precision's rounding. */
static void compare_lowp(tb_dtype dt, double unit)
{
    for (size_t i = 0; i < op_case_count; i++) {
        gcase ref, lp;
        tb_rng r;
        tb_rng_seed(&r, 2000 + (uint64_t)i, 0);
        setup_case(&ref, &op_cases[i], TB_F32, dt, &r);
        tb_rng_seed(&r, 2000 + (uint64_t)i, 0);
        setup_case(&lp, &op_cases[i], dt, dt, &r);
        gc_run(&ref);
        gc_run(&lp);
        double tol = 4 * unit;
        for (int o = 0; o < ref.n_out; o++)
            tt_assert_close(lp.name, &lp.out[o], &ref.out[o], tol * tt_max_abs(&ref.out[o]), tol);
        for (int k = 0; k < ref.n_in; k++)
            tt_assert_close(lp.name, &lp.din[k], &ref.din[k], tol * tt_max_abs(&ref.din[k]), tol);
        tt_free_all();
    }
}

static void test_f16_against_f32(void **state)
{
    (void)state;
    compare_lowp(TB_F16, 1.0 / 2048);
}

static void test_bf16_against_f32(void **state)
{
    (void)state;
    compare_lowp(TB_BF16, 1.0 / 256);
}

/* The sgemm path against the naive twin on a larger, odd-sized problem. */
static void test_linear_fast_vs_naive(void **state)
{
    (void)state;
    const tb_dtype dts[] = {TB_F32, TB_F16, TB_BF16};
    for (int d = 0; d < 3; d++) {
        tb_dtype dt = dts[d];
        int64_t n = 13, ch = 37, k = 11;
        tb_rng r;
        tb_rng_seed(&r, 5, 0);
        tb_tensor x = tt_2d(dt, n, ch), w = tt_2d(dt, k, ch), b = tt_1d(dt, k), dy = tt_2d(dt, n, k);
        tt_uniform(&x, &r, -1, 1, dt), tt_uniform(&w, &r, -1, 1, dt), tt_uniform(&b, &r, -1, 1, dt);
        tt_uniform(&dy, &r, -1, 1, dt);
        tb_tensor y1 = tt_2d(dt, n, k), y2 = tt_2d(dt, n, k);
        tb_tensor dx1 = tt_2d(dt, n, ch), dx2 = tt_2d(dt, n, ch), dw1 = tt_2d(dt, k, ch), dw2 = tt_2d(dt, k, ch);
        tb_tensor db1 = tt_1d(dt, k), db2 = tt_1d(dt, k);
        /* start from non-zero gradients: both must accumulate */
        tt_uniform(&dx1, &r, -1, 1, dt), tt_copy_values(&dx2, &dx1);
        tt_uniform(&dw1, &r, -1, 1, dt), tt_copy_values(&dw2, &dw1);
        tt_uniform(&db1, &r, -1, 1, dt), tt_copy_values(&db2, &db1);
        assert_int_equal(tb_backend_reserve_workspace(tt_be, 4 * (size_t)(n * ch + k * ch + n * k)), TB_OK);
        assert_int_equal(tb_cpu_linear_forward(tt_be, &y1, &x, &w, &b), TB_OK);
        assert_int_equal(tb_cpu_linear_forward_naive(tt_be, &y2, &x, &w, &b), TB_OK);
        assert_int_equal(tb_cpu_linear_backward(tt_be, &dx1, &dw1, &db1, &dy, &x, &w), TB_OK);
        assert_int_equal(tb_cpu_linear_backward_naive(tt_be, &dx2, &dw2, &db2, &dy, &x, &w), TB_OK);
        double tol = dt == TB_F32 ? 1e-5 : dt == TB_F16 ? 2e-3 : 1.6e-2;
        tt_assert_close("linear y", &y1, &y2, tol, tol);
        tt_assert_close("linear dx", &dx1, &dx2, tol, tol);
        tt_assert_close("linear dw", &dw1, &dw2, tol, tol);
        tt_assert_close("linear dbias", &db1, &db2, tol, tol);
        tt_free_all();
    }
}

/* Reductions use a fixed chunking: 1 and 2 threads give bitwise equal results. */
static void test_thread_count_independence(void **state)
{
    (void)state;
    tb_backend *two = tt_be, *one = NULL;
    assert_int_equal(tb_cpu_backend_create(&one, 1), TB_OK);
    for (size_t i = 0; i < op_case_count; i++) {
        if (op_cases[i].op == OC_LINEAR) /* BLAS blocking may depend on its thread count */
            continue;
        gcase a, b;
        tb_rng r;
        tb_rng_seed(&r, 3000 + (uint64_t)i, 0);
        setup_case(&a, &op_cases[i], TB_F32, TB_F32, &r);
        tb_rng_seed(&r, 3000 + (uint64_t)i, 0);
        setup_case(&b, &op_cases[i], TB_F32, TB_F32, &r);
        tt_be = one;
        gc_run(&a);
        tt_be = two;
        gc_run(&b);
        for (int o = 0; o < a.n_out; o++)
            tt_assert_bitwise(a.name, &a.out[o], &b.out[o]);
        for (int k = 0; k < a.n_in; k++)
            tt_assert_bitwise(a.name, &a.din[k], &b.din[k]);
        tt_free_all();
    }
    tt_be = two;
    tb_backend_destroy(one);
}

/* dz_write: dz = g whatever dz held before, while dx, dgamma and dbeta still
 * accumulate; the same values as accumulating into zeroed gradients. */
static void test_bn_relu_dz_write(void **state)
{
    (void)state;
    const tb_dtype dts[] = {TB_F32, TB_F16, TB_BF16};
    const op_case s = {"batchnorm+add+relu dz_write", OC_BATCHNORM_RELU, 4, {2, 3, 5, 6}, {0}, 0, {0}, 0, OC_V_ADD};
    for (int d = 0; d < 3; d++) {
        gcase c;
        tb_rng r;
        tb_rng_seed(&r, 77, 0);
        setup_bn_relu(&c, &s, dts[d], dts[d], &r);
        gc_run(&c); /* the forward, and din = the accumulating backward into zeros */
        tb_tensor got[4];
        for (int k = 0; k < 4; k++) {
            got[k] = like(c.din[k].dtype, c.din[k].ndim, c.din[k].shape);
            if (k == 3)
                tt_uniform(&got[k], &r, -5.0, 5.0, dts[d]); /* stale contents dz_write must ignore */
        }
        for (int call = 1; call <= 2; call++) {
            assert_int_equal(tb_batchnorm_relu_backward(tt_be, &got[0], &got[3], &got[1], &got[2], &c.aux[4],
                                                        &c.dout[0], &c.in[0], &c.out[0], &c.in[1], &c.in[2],
                                                        &c.aux[0], &c.aux[1], true, true),
                             TB_OK);
            for (int k = 0; k < 4; k++) {
                tb_tensor want = like(c.din[k].dtype, c.din[k].ndim, c.din[k].shape);
                tt_copy_values(&want, &c.din[k]);
                if (call == 2 && k < 3) /* the others accumulate: twice the gradient, exact in binary */
                    for (int64_t i = 0; i < tb_numel(&want); i++)
                        tt_set(&want, i, 2.0 * tt_get(&want, i));
                tt_assert_close(c.name, &got[k], &want, 0.0, 0.0);
            }
        }
        tt_check_guards();
        tt_free_all();
    }
}

/* A larger BN (many rows) stays accurate: mean and invstd against double. */
static void test_batchnorm_large_accuracy(void **state)
{
    (void)state;
    int64_t n = 8, h = 64, w = 64, ch = 3;
    tb_rng r;
    tb_rng_seed(&r, 9, 0);
    tb_tensor x = tt_4d(TB_F32, n, h, w, ch), y = tt_4d(TB_F32, n, h, w, ch);
    tb_tensor g = tt_1d(TB_F32, ch), b = tt_1d(TB_F32, ch), sm = tt_1d(TB_F32, ch), si = tt_1d(TB_F32, ch);
    tb_tensor rm = tt_1d(TB_F32, ch), rv = tt_1d(TB_F32, ch);
    tt_uniform(&x, &r, 99.0, 101.0, TB_F32); /* mean 100, std 0.577: cancellation-prone */
    assert_int_equal(tb_fill(tt_be, &g, 1.0f), TB_OK);
    assert_int_equal(tb_batchnorm_forward_train(tt_be, &y, &sm, &si, &rm, &rv, &x, &g, &b, 0.1f, 1e-5f), TB_OK);
    for (int64_t j = 0; j < ch; j++) {
        double s = 0, q = 0, m = (double)(n * h * w);
        for (int64_t i = j; i < tb_numel(&x); i += ch)
            s += tt_get(&x, i);
        for (int64_t i = j; i < tb_numel(&x); i += ch)
            q += (tt_get(&x, i) - s / m) * (tt_get(&x, i) - s / m);
        assert_true(fabs(tt_get(&sm, j) - s / m) <= 1e-5 * s / m);
        assert_true(fabs(tt_get(&si, j) - 1.0 / sqrt(q / m + 1e-5)) <= 1e-5 / sqrt(q / m));
    }
    tt_free_all();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradients),
        cmocka_unit_test(test_f16_against_f32),
        cmocka_unit_test(test_bf16_against_f32),
        cmocka_unit_test(test_linear_fast_vs_naive),
        cmocka_unit_test(test_thread_count_independence),
        cmocka_unit_test(test_bn_relu_dz_write),
        cmocka_unit_test(test_batchnorm_large_accuracy),
    };
    return cmocka_run_group_tests(tests, tt_setup, tt_teardown);
}
