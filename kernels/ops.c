/* Checked front-ends of every op except conv2d (kernels/ops_conv2d.c) and the
 * detection ops (kernels/ops_detection.c); the shared checks are in
 * kernels/ops_check.h.
 *
 * Each front-end validates ranks, shapes, dtypes and scalar arguments, then
 * dispatches through the backend's function table. An error is
 * TB_ERR_INVALID with a message "op: problem (every tensor of the call with
 * its shape and dtype)"; a NULL slot or a dtype the backend declines is
 * TB_ERR_UNSUPPORTED naming the op and the backend.
 *
 * Optional tensors are absent when the pointer is NULL or its data is NULL
 * (tensor.h); absent ones reach the backend as NULL pointers. Beyond what
 * ops.h lists as optional, these are also accepted as absent (a frozen or
 * input-side gradient): batchnorm's dx, linear's dw, and the running stats of
 * batchnorm_forward_train (both or neither; absent = not tracked).
 */
#include <math.h>
#include <stdio.h>

#include "kernels/backend.h"
#include "kernels/error.h"
#include "kernels/ops.h"
#include "kernels/ops_check.h"

/* ------------------------------------------------------------- batchnorm */

static int bn_input(const vcall *v, const char *name, const tb_tensor *x)
{
    TB_TRY(need_float(v, name, x));
    if (x->ndim != 2 && x->ndim != 4)
        return vc_fail(v, "%s %s must be 4-D NHWC or 2-D {n,c}", name, SHP(x));
    return TB_OK;
}

static int bn_eps(const vcall *v, float eps)
{
    if (!(eps > 0.0f) || !isfinite(eps))
        return vc_fail(v, "eps %g must be positive and finite", (double)eps);
    return TB_OK;
}

/* x, y like x, and the f32 {c} gamma and beta of a forward. */
static int bn_affine_checks(const vcall *v, const tb_tensor *y, const tb_tensor *x, const tb_tensor *gamma,
                            const tb_tensor *beta)
{
    TB_TRY(bn_input(v, "x", x));
    TB_TRY(need_like(v, "y", y, "x", x));
    TB_TRY(need_vec(v, "gamma", gamma, TB_F32, channels(x), "channels of x"));
    return need_vec(v, "beta", beta, TB_F32, channels(x), "channels of x");
}

/* The checks of a training forward, shared by batchnorm and batchnorm_relu. */
static int bn_train_checks(const vcall *v, const tb_tensor *y, const tb_tensor *save_mean,
                           const tb_tensor *save_invstd, const tb_tensor *running_mean, const tb_tensor *running_var,
                           const tb_tensor *x, const tb_tensor *gamma, const tb_tensor *beta, float momentum,
                           float eps)
{
    TB_TRY(bn_affine_checks(v, y, x, gamma, beta));
    int64_t c = channels(x);
    const char *why = "channels of x";
    TB_TRY(need_vec(v, "save_mean", save_mean, TB_F32, c, why));
    TB_TRY(need_vec(v, "save_invstd", save_invstd, TB_F32, c, why));
    if (present(running_mean) != present(running_var))
        return vc_fail(v, "running_mean and running_var must be given together");
    if (present(running_mean)) {
        TB_TRY(need_vec(v, "running_mean", running_mean, TB_F32, c, why));
        TB_TRY(need_vec(v, "running_var", running_var, TB_F32, c, why));
    }
    if (tb_numel(x) / c < 2)
        return vc_fail(v, "training needs more than one value per channel (x %s)", SHP(x));
    if (!(momentum >= 0.0f && momentum <= 1.0f))
        return vc_fail(v, "momentum %g is outside [0, 1]", (double)momentum);
    return bn_eps(v, eps);
}

/* The checks of an evaluation forward (running statistics required). */
static int bn_eval_checks(const vcall *v, const tb_tensor *y, const tb_tensor *x, const tb_tensor *gamma,
                          const tb_tensor *beta, const tb_tensor *running_mean, const tb_tensor *running_var,
                          float eps)
{
    TB_TRY(bn_affine_checks(v, y, x, gamma, beta));
    int64_t c = channels(x);
    const char *why = "channels of x";
    TB_TRY(need_vec(v, "running_mean", running_mean, TB_F32, c, why));
    TB_TRY(need_vec(v, "running_var", running_var, TB_F32, c, why));
    return bn_eps(v, eps);
}

/* The checks of a backward: dy like x, the f32 {c} vectors; dx, dgamma and
 * dbeta optional. */
static int bn_backward_checks(const vcall *v, const tb_tensor *dx, const tb_tensor *dgamma, const tb_tensor *dbeta,
                              const tb_tensor *dy, const tb_tensor *x, const tb_tensor *gamma, const char *stat1,
                              const tb_tensor *s1, const char *stat2, const tb_tensor *s2)
{
    TB_TRY(bn_input(v, "x", x));
    TB_TRY(need_like(v, "dy", dy, "x", x));
    if (present(dx))
        TB_TRY(need_like(v, "dx", dx, "x", x));
    int64_t c = channels(x);
    const char *why = "channels of x";
    TB_TRY(need_vec(v, "gamma", gamma, TB_F32, c, why));
    TB_TRY(need_vec(v, stat1, s1, TB_F32, c, why));
    TB_TRY(need_vec(v, stat2, s2, TB_F32, c, why));
    if (present(dgamma))
        TB_TRY(need_vec(v, "dgamma", dgamma, TB_F32, c, why));
    if (present(dbeta))
        TB_TRY(need_vec(v, "dbeta", dbeta, TB_F32, c, why));
    return TB_OK;
}

int tb_batchnorm_forward_train(tb_backend *be, tb_tensor *y, tb_tensor *save_mean, tb_tensor *save_invstd,
                               tb_tensor *running_mean, tb_tensor *running_var, const tb_tensor *x,
                               const tb_tensor *gamma, const tb_tensor *beta, float momentum, float eps)
{
    vcall v = vc_make(tb_op_name(TB_OP_BATCHNORM_FORWARD_TRAIN));
    vc_add(&v, "y", y), vc_add(&v, "save_mean", save_mean), vc_add(&v, "save_invstd", save_invstd);
    vc_add(&v, "running_mean", running_mean), vc_add(&v, "running_var", running_var), vc_add(&v, "x", x);
    vc_add(&v, "gamma", gamma), vc_add(&v, "beta", beta);
    TB_TRY(bn_train_checks(&v, y, save_mean, save_invstd, running_mean, running_var, x, gamma, beta, momentum, eps));
    DISPATCH(TB_OP_BATCHNORM_FORWARD_TRAIN, batchnorm_forward_train, x->dtype, y, save_mean, save_invstd,
             opt(running_mean), opt(running_var), x, gamma, beta, momentum, eps);
}

int tb_batchnorm_forward_eval(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *gamma,
                              const tb_tensor *beta, const tb_tensor *running_mean,
                              const tb_tensor *running_var, float eps)
{
    vcall v = vc_make(tb_op_name(TB_OP_BATCHNORM_FORWARD_EVAL));
    vc_add(&v, "y", y), vc_add(&v, "x", x), vc_add(&v, "gamma", gamma), vc_add(&v, "beta", beta);
    vc_add(&v, "running_mean", running_mean), vc_add(&v, "running_var", running_var);
    TB_TRY(bn_eval_checks(&v, y, x, gamma, beta, running_mean, running_var, eps));
    DISPATCH(TB_OP_BATCHNORM_FORWARD_EVAL, batchnorm_forward_eval, x->dtype, y, x, gamma, beta, running_mean,
             running_var, eps);
}

int tb_batchnorm_backward(tb_backend *be, tb_tensor *dx, tb_tensor *dgamma, tb_tensor *dbeta,
                          const tb_tensor *dy, const tb_tensor *x, const tb_tensor *gamma,
                          const tb_tensor *save_mean, const tb_tensor *save_invstd)
{
    vcall v = vc_make(tb_op_name(TB_OP_BATCHNORM_BACKWARD));
    vc_add(&v, "dx", dx), vc_add(&v, "dgamma", dgamma), vc_add(&v, "dbeta", dbeta), vc_add(&v, "dy", dy);
    vc_add(&v, "x", x), vc_add(&v, "gamma", gamma), vc_add(&v, "save_mean", save_mean);
    vc_add(&v, "save_invstd", save_invstd);
    TB_TRY(bn_backward_checks(&v, dx, dgamma, dbeta, dy, x, gamma, "save_mean", save_mean, "save_invstd",
                              save_invstd));
    DISPATCH(TB_OP_BATCHNORM_BACKWARD, batchnorm_backward, x->dtype, opt(dx), opt(dgamma), opt(dbeta), dy, x,
             gamma, save_mean, save_invstd);
}

int tb_batchnorm_backward_eval(tb_backend *be, tb_tensor *dx, tb_tensor *dgamma, tb_tensor *dbeta,
                               const tb_tensor *dy, const tb_tensor *x, const tb_tensor *gamma,
                               const tb_tensor *running_mean, const tb_tensor *running_var, float eps)
{
    vcall v = vc_make(tb_op_name(TB_OP_BATCHNORM_BACKWARD_EVAL));
    vc_add(&v, "dx", dx), vc_add(&v, "dgamma", dgamma), vc_add(&v, "dbeta", dbeta), vc_add(&v, "dy", dy);
    vc_add(&v, "x", x), vc_add(&v, "gamma", gamma), vc_add(&v, "running_mean", running_mean);
    vc_add(&v, "running_var", running_var);
    TB_TRY(bn_backward_checks(&v, dx, dgamma, dbeta, dy, x, gamma, "running_mean", running_mean, "running_var",
                              running_var));
    TB_TRY(bn_eps(&v, eps));
    DISPATCH(TB_OP_BATCHNORM_BACKWARD_EVAL, batchnorm_backward_eval, x->dtype, opt(dx), opt(dgamma), opt(dbeta),
             dy, x, gamma, running_mean, running_var, eps);
}

/* ---------------------------------------------- batchnorm + add + relu */

static bool bn_relu_query_ok(const tb_tensor *x)
{
    if (!x || !tb_dtype_is_float(x->dtype) || (x->ndim != 2 && x->ndim != 4))
        return false;
    for (int d = 0; d < x->ndim; d++)
        if (x->shape[d] <= 0)
            return false;
    return true;
}

size_t tb_batchnorm_relu_reserve_size(tb_backend *be, const tb_tensor *x, bool add)
{
    if (!be || !be->iface.batchnorm_relu_reserve_size || !bn_relu_query_ok(x))
        return 0;
    return be->iface.batchnorm_relu_reserve_size(be, x, add);
}

size_t tb_batchnorm_relu_workspace_size(tb_backend *be, const tb_tensor *x, bool add)
{
    if (!be || !be->iface.batchnorm_relu_workspace_size || !bn_relu_query_ok(x))
        return 0;
    return be->iface.batchnorm_relu_workspace_size(be, x, add);
}

/* The reserve space and the workspace hold what the backend asks for x
 * with or without an added z. */
static int bn_relu_space(const vcall *v, tb_backend *be, const tb_tensor *x, bool add, const tb_tensor *reserve)
{
    size_t need = tb_batchnorm_relu_reserve_size(be, x, add);
    if (need > 0 && (!present(reserve) || reserve->dtype != TB_U8 || (size_t)tb_numel(reserve) < need))
        return vc_fail(v, "needs a u8 reserve of at least %zu bytes (tb_batchnorm_relu_reserve_size)", need);
    return need_workspace(v, be, tb_batchnorm_relu_workspace_size(be, x, add), "tb_batchnorm_relu_workspace_size");
}

int tb_batchnorm_relu_forward_train(tb_backend *be, tb_tensor *y, tb_tensor *save_mean, tb_tensor *save_invstd,
                                    tb_tensor *running_mean, tb_tensor *running_var, tb_tensor *reserve,
                                    const tb_tensor *x, const tb_tensor *z, const tb_tensor *gamma,
                                    const tb_tensor *beta, float momentum, float eps)
{
    vcall v = vc_make(tb_op_name(TB_OP_BATCHNORM_RELU_FORWARD_TRAIN));
    vc_add(&v, "y", y), vc_add(&v, "save_mean", save_mean), vc_add(&v, "save_invstd", save_invstd);
    vc_add(&v, "running_mean", running_mean), vc_add(&v, "running_var", running_var);
    vc_add(&v, "reserve", reserve), vc_add(&v, "x", x), vc_add(&v, "z", z);
    vc_add(&v, "gamma", gamma), vc_add(&v, "beta", beta);
    TB_TRY(bn_train_checks(&v, y, save_mean, save_invstd, running_mean, running_var, x, gamma, beta, momentum, eps));
    if (present(z))
        TB_TRY(need_like(&v, "z", z, "x", x));
    TB_TRY(bn_relu_space(&v, be, x, present(z), reserve));
    DISPATCH(TB_OP_BATCHNORM_RELU_FORWARD_TRAIN, batchnorm_relu_forward_train, x->dtype, y, save_mean, save_invstd,
             opt(running_mean), opt(running_var), opt(reserve), x, copt(z), gamma, beta, momentum, eps);
}

int tb_batchnorm_relu_forward_eval(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *z,
                                   const tb_tensor *gamma, const tb_tensor *beta, const tb_tensor *running_mean,
                                   const tb_tensor *running_var, float eps)
{
    vcall v = vc_make(tb_op_name(TB_OP_BATCHNORM_RELU_FORWARD_EVAL));
    vc_add(&v, "y", y), vc_add(&v, "x", x), vc_add(&v, "z", z), vc_add(&v, "gamma", gamma);
    vc_add(&v, "beta", beta), vc_add(&v, "running_mean", running_mean), vc_add(&v, "running_var", running_var);
    TB_TRY(bn_eval_checks(&v, y, x, gamma, beta, running_mean, running_var, eps));
    if (present(z))
        TB_TRY(need_like(&v, "z", z, "x", x));
    DISPATCH(TB_OP_BATCHNORM_RELU_FORWARD_EVAL, batchnorm_relu_forward_eval, x->dtype, y, x, copt(z), gamma, beta,
             running_mean, running_var, eps);
}

int tb_batchnorm_relu_backward(tb_backend *be, tb_tensor *dx, tb_tensor *dz, tb_tensor *dgamma, tb_tensor *dbeta,
                               tb_tensor *reserve, const tb_tensor *dy, const tb_tensor *x, const tb_tensor *y,
                               const tb_tensor *gamma, const tb_tensor *beta, const tb_tensor *save_mean,
                               const tb_tensor *save_invstd, bool add, bool dz_write)
{
    vcall v = vc_make(tb_op_name(TB_OP_BATCHNORM_RELU_BACKWARD));
    vc_add(&v, "dx", dx), vc_add(&v, "dz", dz), vc_add(&v, "dgamma", dgamma), vc_add(&v, "dbeta", dbeta);
    vc_add(&v, "reserve", reserve), vc_add(&v, "dy", dy), vc_add(&v, "x", x), vc_add(&v, "y", y);
    vc_add(&v, "gamma", gamma), vc_add(&v, "beta", beta), vc_add(&v, "save_mean", save_mean);
    vc_add(&v, "save_invstd", save_invstd);
    TB_TRY(bn_backward_checks(&v, dx, dgamma, dbeta, dy, x, gamma, "save_mean", save_mean, "save_invstd",
                              save_invstd));
    TB_TRY(need_like(&v, "y", y, "x", x));
    TB_TRY(need_vec(&v, "beta", beta, TB_F32, channels(x), "channels of x"));
    if (present(dz) && !add)
        return vc_fail(&v, "dz is given but the forward added no z (add is false)");
    if (dz_write && !present(dz))
        return vc_fail(&v, "dz_write is set but no dz is given");
    if (dz_write && present(dx) && dx->data == dz->data)
        return vc_fail(&v, "dz_write with dz the same tensor as dx (it would overwrite dx's gradient)");
    if (present(dz))
        TB_TRY(need_like(&v, "dz", dz, "x", x));
    TB_TRY(bn_relu_space(&v, be, x, add, reserve));
    DISPATCH(TB_OP_BATCHNORM_RELU_BACKWARD, batchnorm_relu_backward, x->dtype, opt(dx), opt(dz), opt(dgamma),
             opt(dbeta), opt(reserve), dy, x, y, gamma, beta, save_mean, save_invstd, add, dz_write);
}

/* ------------------------------------------------------------------ relu */

int tb_relu_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x)
{
    vcall v = vc_make(tb_op_name(TB_OP_RELU_FORWARD));
    vc_add(&v, "y", y), vc_add(&v, "x", x);
    TB_TRY(need_float(&v, "x", x));
    TB_TRY(need_like(&v, "y", y, "x", x));
    DISPATCH(TB_OP_RELU_FORWARD, relu_forward, x->dtype, y, x);
}

int tb_relu_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *y)
{
    vcall v = vc_make(tb_op_name(TB_OP_RELU_BACKWARD));
    vc_add(&v, "dx", dx), vc_add(&v, "dy", dy), vc_add(&v, "y", y);
    TB_TRY(need_float(&v, "y", y));
    TB_TRY(need_like(&v, "dy", dy, "y", y));
    TB_TRY(need_like(&v, "dx", dx, "y", y));
    DISPATCH(TB_OP_RELU_BACKWARD, relu_backward, y->dtype, dx, dy, y);
}

/* --------------------------------------------------------------- pooling */

int64_t tb_pool_out_size(int64_t in, int kernel, int stride, int pad, bool ceil_mode)
{
    if (in <= 0 || kernel <= 0 || stride <= 0 || pad < 0)
        return 0;
    int64_t span = in + 2 * (int64_t)pad - kernel + (ceil_mode ? stride - 1 : 0);
    if (span < 0) /* the window does not fit even once */
        return 0;
    int64_t out = span / stride + 1;
    /* PyTorch: the last window must start inside the input or the left padding */
    if (ceil_mode && (out - 1) * stride >= in + pad)
        out--;
    return out;
}

static int pool_fail_params(const vcall *v, const tb_pool_params *p, const char *problem)
{
    return vc_fail(v, "%s: kernel %dx%d, stride %dx%d, pad %dx%d, ceil_mode %d", problem, p->kernel_h, p->kernel_w,
                   p->stride_h, p->stride_w, p->pad_h, p->pad_w, (int)p->ceil_mode);
}

/* Checks p and x (4-D float) and the output shape y must have. */
static int pool_shapes(const vcall *v, const char *x_name, const tb_tensor *x, const char *y_name,
                       const tb_tensor *y, const tb_pool_params *p)
{
    if (!p)
        return vc_fail(v, "pooling parameters are missing");
    if (p->kernel_h < 1 || p->kernel_w < 1 || p->stride_h < 1 || p->stride_w < 1)
        return pool_fail_params(v, p, "kernel and stride must be positive");
    if (p->pad_h < 0 || p->pad_w < 0 || 2 * p->pad_h > p->kernel_h || 2 * p->pad_w > p->kernel_w)
        return pool_fail_params(v, p, "padding must be between 0 and half the kernel");
    TB_TRY(need_float(v, x_name, x));
    TB_TRY(need_ndim(v, x_name, x, 4, "NHWC"));
    int64_t oh = tb_pool_out_size(x->shape[1], p->kernel_h, p->stride_h, p->pad_h, p->ceil_mode);
    int64_t ow = tb_pool_out_size(x->shape[2], p->kernel_w, p->stride_w, p->pad_w, p->ceil_mode);
    if (oh <= 0 || ow <= 0)
        return pool_fail_params(v, p, "the window does not fit the input");
    TB_TRY(need(v, y_name, y));
    if (y->ndim != 4 || y->shape[0] != x->shape[0] || y->shape[1] != oh || y->shape[2] != ow ||
        y->shape[3] != x->shape[3])
        return vc_fail(v, "%s %s must be {%lld,%lld,%lld,%lld} for %s %s with kernel %dx%d, stride %dx%d, pad %dx%d, "
                       "ceil_mode %d", y_name, SHP(y), (long long)x->shape[0], (long long)oh, (long long)ow,
                       (long long)x->shape[3], x_name, SHP(x), p->kernel_h, p->kernel_w, p->stride_h, p->stride_w, p->pad_h,
                       p->pad_w, (int)p->ceil_mode);
    if (y->dtype != x->dtype)
        return vc_fail(v, "%s %s and %s %s differ in dtype", x_name, SHP(x), y_name, SHP(y));
    return TB_OK;
}

int tb_maxpool_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_pool_params *p)
{
    vcall v = vc_make(tb_op_name(TB_OP_MAXPOOL_FORWARD));
    vc_add(&v, "y", y), vc_add(&v, "x", x);
    TB_TRY(pool_shapes(&v, "x", x, "y", y, p));
    DISPATCH(TB_OP_MAXPOOL_FORWARD, maxpool_forward, x->dtype, y, x, p);
}

int tb_maxpool_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *y,
                        const tb_tensor *x, const tb_pool_params *p)
{
    vcall v = vc_make(tb_op_name(TB_OP_MAXPOOL_BACKWARD));
    vc_add(&v, "dx", dx), vc_add(&v, "dy", dy), vc_add(&v, "y", y), vc_add(&v, "x", x);
    TB_TRY(pool_shapes(&v, "x", x, "dy", dy, p));
    TB_TRY(need_like(&v, "y", y, "dy", dy));
    TB_TRY(need_like(&v, "dx", dx, "x", x));
    DISPATCH(TB_OP_MAXPOOL_BACKWARD, maxpool_backward, x->dtype, dx, dy, y, x, p);
}

int tb_avgpool_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_pool_params *p)
{
    vcall v = vc_make(tb_op_name(TB_OP_AVGPOOL_FORWARD));
    vc_add(&v, "y", y), vc_add(&v, "x", x);
    TB_TRY(pool_shapes(&v, "x", x, "y", y, p));
    DISPATCH(TB_OP_AVGPOOL_FORWARD, avgpool_forward, x->dtype, y, x, p);
}

int tb_avgpool_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_pool_params *p)
{
    vcall v = vc_make(tb_op_name(TB_OP_AVGPOOL_BACKWARD));
    vc_add(&v, "dx", dx), vc_add(&v, "dy", dy);
    /* dx plays the input: its shape fixes dy's */
    TB_TRY(pool_shapes(&v, "dx", dx, "dy", dy, p));
    DISPATCH(TB_OP_AVGPOOL_BACKWARD, avgpool_backward, dx->dtype, dx, dy, p);
}

static int global_pool_shapes(const vcall *v, const char *xn, const tb_tensor *x, const char *yn,
                              const tb_tensor *y)
{
    TB_TRY(need_float(v, xn, x));
    TB_TRY(need_ndim(v, xn, x, 4, "NHWC"));
    TB_TRY(need(v, yn, y));
    if (y->ndim != 2 || y->shape[0] != x->shape[0] || y->shape[1] != x->shape[3])
        return vc_fail(v, "%s %s must be {%lld,%lld} for %s %s", yn, SHP(y), (long long)x->shape[0],
                       (long long)x->shape[3], xn, SHP(x));
    if (y->dtype != x->dtype)
        return vc_fail(v, "%s %s and %s %s differ in dtype", xn, SHP(x), yn, SHP(y));
    return TB_OK;
}

int tb_global_avgpool_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x)
{
    vcall v = vc_make(tb_op_name(TB_OP_GLOBAL_AVGPOOL_FORWARD));
    vc_add(&v, "y", y), vc_add(&v, "x", x);
    TB_TRY(global_pool_shapes(&v, "x", x, "y", y));
    DISPATCH(TB_OP_GLOBAL_AVGPOOL_FORWARD, global_avgpool_forward, x->dtype, y, x);
}

int tb_global_avgpool_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy)
{
    vcall v = vc_make(tb_op_name(TB_OP_GLOBAL_AVGPOOL_BACKWARD));
    vc_add(&v, "dx", dx), vc_add(&v, "dy", dy);
    TB_TRY(global_pool_shapes(&v, "dx", dx, "dy", dy));
    DISPATCH(TB_OP_GLOBAL_AVGPOOL_BACKWARD, global_avgpool_backward, dx->dtype, dx, dy);
}

/* ---------------------------------------------------------------- linear */

/* x {n,c} float, w {k,c} of x's dtype, both small enough for BLAS's int sizes. */
static int linear_shapes(const vcall *v, const tb_tensor *x, const tb_tensor *w)
{
    TB_TRY(need_float(v, "x", x));
    TB_TRY(need_ndim(v, "x", x, 2, "{n,c}"));
    TB_TRY(need(v, "w", w));
    if (w->ndim != 2 || w->shape[1] != x->shape[1])
        return vc_fail(v, "w %s must be {k,%lld} for x %s", SHP(w), (long long)x->shape[1], SHP(x));
    if (w->dtype != x->dtype)
        return vc_fail(v, "x %s and w %s differ in dtype", SHP(x), SHP(w));
    if (x->shape[0] > INT32_MAX || x->shape[1] > INT32_MAX || w->shape[0] > INT32_MAX)
        return vc_fail(v, "dims exceed the BLAS int range");
    return TB_OK;
}

int tb_linear_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *w,
                      const tb_tensor *bias)
{
    vcall v = vc_make(tb_op_name(TB_OP_LINEAR_FORWARD));
    vc_add(&v, "y", y), vc_add(&v, "x", x), vc_add(&v, "w", w), vc_add(&v, "bias", bias);
    TB_TRY(linear_shapes(&v, x, w));
    int64_t n = x->shape[0], k = w->shape[0];
    TB_TRY(need_mat(&v, "y", y, x->dtype, n, k));
    if (present(bias))
        TB_TRY(need_vec(&v, "bias", bias, w->dtype, k, "rows of w"));
    DISPATCH(TB_OP_LINEAR_FORWARD, linear_forward, x->dtype, y, x, w, copt(bias));
}

int tb_linear_backward(tb_backend *be, tb_tensor *dx, tb_tensor *dw, tb_tensor *dbias, const tb_tensor *dy,
                       const tb_tensor *x, const tb_tensor *w)
{
    vcall v = vc_make(tb_op_name(TB_OP_LINEAR_BACKWARD));
    vc_add(&v, "dx", dx), vc_add(&v, "dw", dw), vc_add(&v, "dbias", dbias), vc_add(&v, "dy", dy);
    vc_add(&v, "x", x), vc_add(&v, "w", w);
    TB_TRY(linear_shapes(&v, x, w));
    int64_t n = x->shape[0], k = w->shape[0];
    TB_TRY(need_mat(&v, "dy", dy, x->dtype, n, k));
    if (present(dx))
        TB_TRY(need_like(&v, "dx", dx, "x", x));
    if (present(dw))
        TB_TRY(need_like(&v, "dw", dw, "w", w));
    if (present(dbias))
        TB_TRY(need_vec(&v, "dbias", dbias, w->dtype, k, "rows of w"));
    DISPATCH(TB_OP_LINEAR_BACKWARD, linear_backward, x->dtype, opt(dx), opt(dw), opt(dbias), dy, x, w);
}

/* ------------------------------------------------------- add and concat */

int tb_add_forward(tb_backend *be, tb_tensor *y, const tb_tensor *a, const tb_tensor *b)
{
    vcall v = vc_make(tb_op_name(TB_OP_ADD_FORWARD));
    vc_add(&v, "y", y), vc_add(&v, "a", a), vc_add(&v, "b", b);
    TB_TRY(need_float(&v, "a", a));
    TB_TRY(need_like(&v, "b", b, "a", a));
    TB_TRY(need_like(&v, "y", y, "a", a));
    DISPATCH(TB_OP_ADD_FORWARD, add_forward, a->dtype, y, a, b);
}

int tb_add_backward(tb_backend *be, tb_tensor *da, tb_tensor *db, const tb_tensor *dy)
{
    vcall v = vc_make(tb_op_name(TB_OP_ADD_BACKWARD));
    vc_add(&v, "da", da), vc_add(&v, "db", db), vc_add(&v, "dy", dy);
    TB_TRY(need_float(&v, "dy", dy));
    if (present(da))
        TB_TRY(need_like(&v, "da", da, "dy", dy));
    if (present(db))
        TB_TRY(need_like(&v, "db", db, "dy", dy));
    DISPATCH(TB_OP_ADD_BACKWARD, add_backward, dy->dtype, opt(da), opt(db), dy);
}

/* The parts (xs or dxs) against the whole (y or dy): same dtype and rank,
 * equal leading dims, channel counts summing to the whole's. */
static int concat_shapes(vcall *v, const char *part, const tb_tensor *const *xs, int count, const char *whole,
                         const tb_tensor *y)
{
    for (int i = 0; xs && i < count; i++)
        vc_add_at(v, part, i, xs[i]);
    TB_TRY(need_float(v, whole, y));
    if (!xs || count < 1)
        return vc_fail(v, "needs at least one %s tensor (count %d)", part, count);
    int64_t sum = 0;
    for (int i = 0; i < count; i++) {
        const tb_tensor *x = xs[i];
        if (!present(x))
            return vc_fail(v, "%s[%d] is missing", part, i);
        TB_TRY(need(v, part, x));
        if (x->dtype != y->dtype)
            return vc_fail(v, "%s[%d] %s and %s %s differ in dtype", part, i, SHP(x), whole, SHP(y));
        bool same_lead = x->ndim == y->ndim;
        for (int d = 0; same_lead && d < y->ndim - 1; d++)
            same_lead = x->shape[d] == y->shape[d];
        if (!same_lead)
            return vc_fail(v, "%s[%d] %s and %s %s differ in a dim other than the last", part, i, SHP(x), whole,
                           SHP(y));
        sum += channels(x);
    }
    if (sum != channels(y))
        return vc_fail(v, "the parts have %lld channels in all, %s %s has %lld", (long long)sum, whole, SHP(y),
                       (long long)channels(y));
    return TB_OK;
}

int tb_concat_forward(tb_backend *be, tb_tensor *y, const tb_tensor *const *xs, int count)
{
    vcall v = vc_make(tb_op_name(TB_OP_CONCAT_FORWARD));
    vc_add(&v, "y", y);
    TB_TRY(concat_shapes(&v, "xs", xs, count, "y", y));
    DISPATCH(TB_OP_CONCAT_FORWARD, concat_forward, y->dtype, y, xs, count);
}

int tb_concat_backward(tb_backend *be, tb_tensor *const *dxs, int count, const tb_tensor *dy)
{
    vcall v = vc_make(tb_op_name(TB_OP_CONCAT_BACKWARD));
    vc_add(&v, "dy", dy);
    TB_TRY(concat_shapes(&v, "dxs", (const tb_tensor *const *)dxs, count, "dy", dy));
    DISPATCH(TB_OP_CONCAT_BACKWARD, concat_backward, dy->dtype, dxs, count, dy);
}

/* --------------------------------------------------------------- dropout */

static int dropout_p(const vcall *v, float p)
{
    if (!(p >= 0.0f && p < 1.0f))
        return vc_fail(v, "p %g is outside [0, 1)", (double)p);
    return TB_OK;
}

int tb_dropout_forward(tb_backend *be, tb_tensor *y, tb_tensor *mask, const tb_tensor *x, float p,
                       uint64_t seed)
{
    return tb_dropout_forward_at_step(be, y, mask, x, p, seed, 0, NULL);
}

/* step NULL: seed is the draw's seed (tb_dropout_forward). */
int tb_dropout_forward_at_step(tb_backend *be, tb_tensor *y, tb_tensor *mask, const tb_tensor *x, float p,
                               uint64_t seed, uint64_t salt, const tb_tensor *step)
{
    vcall v = vc_make(tb_op_name(TB_OP_DROPOUT_FORWARD));
    vc_add(&v, "y", y), vc_add(&v, "mask", mask), vc_add(&v, "x", x), vc_add(&v, "step", step);
    TB_TRY(need_float(&v, "x", x));
    TB_TRY(need_like(&v, "y", y, "x", x));
    TB_TRY(need_shape_dtype(&v, "mask", mask, "x", x, TB_U8));
    TB_TRY(dropout_p(&v, p));
    if (step)
        TB_TRY(need_vec(&v, "step", step, TB_I32, 1, "a scalar"));
    DISPATCH(TB_OP_DROPOUT_FORWARD, dropout_forward, x->dtype, y, mask, x, p, seed, salt, step);
}

int tb_dropout_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *mask, float p)
{
    vcall v = vc_make(tb_op_name(TB_OP_DROPOUT_BACKWARD));
    vc_add(&v, "dx", dx), vc_add(&v, "dy", dy), vc_add(&v, "mask", mask);
    TB_TRY(need_float(&v, "dy", dy));
    TB_TRY(need_like(&v, "dx", dx, "dy", dy));
    TB_TRY(need_shape_dtype(&v, "mask", mask, "dy", dy, TB_U8));
    TB_TRY(dropout_p(&v, p));
    DISPATCH(TB_OP_DROPOUT_BACKWARD, dropout_backward, dy->dtype, dx, dy, mask, p);
}

/* ------------------------------------------------- softmax cross-entropy */

static int temperature_ok(const vcall *v, float t)
{
    if (!(t > 0.0f) || !isfinite(t))
        return vc_fail(v, "temperature %g must be positive and finite", (double)t);
    return TB_OK;
}

/* logits {n,k} (dt < 0: any float dtype), and exactly one of labels / targets. */
static int ce_targets(const vcall *v, const char *ln, const tb_tensor *logits, int dt, const tb_tensor *labels,
                      const tb_tensor *targets)
{
    TB_TRY(dt < 0 ? need_float(v, ln, logits) : need_dtype(v, ln, logits, (tb_dtype)dt));
    TB_TRY(need_ndim(v, ln, logits, 2, "{n,k}"));
    int64_t n = logits->shape[0], k = logits->shape[1];
    if (present(labels) == present(targets))
        return vc_fail(v, "exactly one of labels and targets must be given");
    if (present(labels))
        return need_vec(v, "labels", labels, TB_I32, n, "rows of the logits");
    return need_mat(v, "targets", targets, TB_F32, n, k);
}

int tb_softmax_ce_forward(tb_backend *be, tb_tensor *loss, tb_tensor *probs, const tb_tensor *logits,
                          const tb_tensor *labels, const tb_tensor *targets, float temperature)
{
    vcall v = vc_make(tb_op_name(TB_OP_SOFTMAX_CE_FORWARD));
    vc_add(&v, "loss", loss), vc_add(&v, "probs", probs), vc_add(&v, "logits", logits);
    vc_add(&v, "labels", labels), vc_add(&v, "targets", targets);
    TB_TRY(ce_targets(&v, "logits", logits, -1, labels, targets));
    TB_TRY(need_mat(&v, "probs", probs, TB_F32, logits->shape[0], logits->shape[1]));
    TB_TRY(need_vec(&v, "loss", loss, TB_F32, 1, "a scalar"));
    TB_TRY(temperature_ok(&v, temperature));
    DISPATCH(TB_OP_SOFTMAX_CE_FORWARD, softmax_ce_forward, logits->dtype, loss, probs, logits, copt(labels),
             copt(targets), temperature);
}

int tb_softmax_ce_backward(tb_backend *be, tb_tensor *dlogits, const tb_tensor *probs,
                           const tb_tensor *labels, const tb_tensor *targets, float temperature,
                           float scale)
{
    return tb_softmax_ce_backward_scaled(be, dlogits, probs, labels, targets, temperature, scale, NULL);
}

int tb_softmax_ce_backward_scaled(tb_backend *be, tb_tensor *dlogits, const tb_tensor *probs,
                                  const tb_tensor *labels, const tb_tensor *targets, float temperature,
                                  float scale, const tb_tensor *scale_t)
{
    vcall v = vc_make(tb_op_name(TB_OP_SOFTMAX_CE_BACKWARD));
    vc_add(&v, "dlogits", dlogits), vc_add(&v, "probs", probs), vc_add(&v, "labels", labels);
    vc_add(&v, "targets", targets), vc_add(&v, "scale_t", scale_t);
    if (scale_t)
        TB_TRY(need_vec(&v, "scale_t", scale_t, TB_F32, 1, "a scalar"));
    TB_TRY(ce_targets(&v, "probs", probs, TB_F32, labels, targets));
    TB_TRY(need_mat(&v, "dlogits", dlogits, -1, probs->shape[0], probs->shape[1]));
    TB_TRY(temperature_ok(&v, temperature));
    if (!isfinite(scale))
        return vc_fail(&v, "scale %g must be finite", (double)scale);
    DISPATCH(TB_OP_SOFTMAX_CE_BACKWARD, softmax_ce_backward, dlogits->dtype, dlogits, probs, copt(labels),
             copt(targets), temperature, scale, scale_t);
}

int tb_soft_targets(tb_backend *be, tb_tensor *targets, const tb_tensor *labels_a, const tb_tensor *labels_b,
                    const tb_tensor *lam, float eps)
{
    vcall v = vc_make(tb_op_name(TB_OP_SOFT_TARGETS));
    vc_add(&v, "targets", targets), vc_add(&v, "labels_a", labels_a), vc_add(&v, "labels_b", labels_b);
    vc_add(&v, "lam", lam);
    TB_TRY(need_dtype(&v, "targets", targets, TB_F32));
    TB_TRY(need_ndim(&v, "targets", targets, 2, "{n,k}"));
    int64_t n = targets->shape[0], k = targets->shape[1];
    TB_TRY(need_vec(&v, "labels_a", labels_a, TB_I32, n, "rows of targets"));
    if (present(labels_b) != present(lam))
        return vc_fail(&v, "labels_b and lam go together (both for mixed targets, neither without mixing)");
    if (present(labels_b)) {
        TB_TRY(need_vec(&v, "labels_b", labels_b, TB_I32, n, "rows of targets"));
        TB_TRY(need_vec(&v, "lam", lam, TB_F32, 1, "a scalar"));
    }
    if (!(eps >= 0.0f && eps < 1.0f))
        return vc_fail(&v, "eps %g is outside [0, 1)", (double)eps);
    if (eps > 0.0f && k < 2)
        return vc_fail(&v, "label smoothing needs at least 2 classes, targets have %lld", (long long)k);
    DISPATCH(TB_OP_SOFT_TARGETS, soft_targets, TB_F32, targets, labels_a, copt(labels_b), copt(lam), eps);
}

int tb_softmax(tb_backend *be, tb_tensor *probs, const tb_tensor *logits, float temperature)
{
    vcall v = vc_make(tb_op_name(TB_OP_SOFTMAX));
    vc_add(&v, "probs", probs), vc_add(&v, "logits", logits);
    TB_TRY(need_float(&v, "logits", logits));
    TB_TRY(need_ndim(&v, "logits", logits, 2, "{n,k}"));
    TB_TRY(need_mat(&v, "probs", probs, TB_F32, logits->shape[0], logits->shape[1]));
    TB_TRY(temperature_ok(&v, temperature));
    DISPATCH(TB_OP_SOFTMAX, softmax, logits->dtype, probs, logits, temperature);
}

int tb_argmax(tb_backend *be, tb_tensor *index, const tb_tensor *x)
{
    vcall v = vc_make(tb_op_name(TB_OP_ARGMAX));
    vc_add(&v, "index", index), vc_add(&v, "x", x);
    TB_TRY(need_float(&v, "x", x));
    int64_t k = x->shape[x->ndim - 1];
    if (k > INT32_MAX)
        return vc_fail(&v, "x %s has %lld classes in its last axis; at most 2^31 - 1", SHP(x), (long long)k);
    TB_TRY(need_vec(&v, "index", index, TB_I32, tb_numel(x) / k, "one per row of x's last axis"));
    TB_TRY(no_overlap(&v, "index", index, "x", x));
    DISPATCH(TB_OP_ARGMAX, argmax, x->dtype, index, x);
}

int tb_count_equal(tb_backend *be, tb_tensor *count, const tb_tensor *a, const tb_tensor *b)
{
    vcall v = vc_make(tb_op_name(TB_OP_COUNT_EQUAL));
    vc_add(&v, "count", count), vc_add(&v, "a", a), vc_add(&v, "b", b);
    TB_TRY(need_dtype(&v, "a", a, TB_I32));
    TB_TRY(need_ndim(&v, "a", a, 1, "{n}"));
    if (a->shape[0] > INT32_MAX)
        return vc_fail(&v, "a %s: a count of more than 2^31 - 1 does not fit count", SHP(a));
    TB_TRY(need_vec(&v, "b", b, TB_I32, a->shape[0], "length of a"));
    TB_TRY(need_vec(&v, "count", count, TB_I32, 1, "a scalar"));
    TB_TRY(no_overlap(&v, "count", count, "a", a));
    TB_TRY(no_overlap(&v, "count", count, "b", b));
    DISPATCH(TB_OP_COUNT_EQUAL, count_equal, TB_DTYPE_COUNT, count, a, b);
}

/* --------------------------------------------------------- mixup, cutmix */

int tb_mixup_batch(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *lam)
{
    vcall v = vc_make(tb_op_name(TB_OP_MIXUP_BATCH));
    vc_add(&v, "y", y), vc_add(&v, "x", x), vc_add(&v, "lam", lam);
    TB_TRY(need_float(&v, "x", x));
    TB_TRY(need_like(&v, "y", y, "x", x));
    TB_TRY(no_overlap(&v, "y", y, "x", x));
    TB_TRY(need_vec(&v, "lam", lam, TB_F32, 1, "a scalar"));
    DISPATCH(TB_OP_MIXUP_BATCH, mixup_batch, x->dtype, y, x, lam);
}

int tb_cutmix_batch(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *box)
{
    vcall v = vc_make(tb_op_name(TB_OP_CUTMIX_BATCH));
    vc_add(&v, "y", y), vc_add(&v, "x", x), vc_add(&v, "box", box);
    TB_TRY(need_float(&v, "x", x));
    TB_TRY(need_ndim(&v, "x", x, 4, "NHWC"));
    TB_TRY(need_like(&v, "y", y, "x", x));
    TB_TRY(no_overlap(&v, "y", y, "x", x));
    TB_TRY(need_vec(&v, "box", box, TB_I32, 4, "{y0, y1, x0, x1}"));
    DISPATCH(TB_OP_CUTMIX_BATCH, cutmix_batch, x->dtype, y, x, box);
}

int tb_reverse_labels(tb_backend *be, tb_tensor *labels_b, const tb_tensor *labels)
{
    vcall v = vc_make(tb_op_name(TB_OP_REVERSE_LABELS));
    vc_add(&v, "labels_b", labels_b), vc_add(&v, "labels", labels);
    TB_TRY(need_dtype(&v, "labels", labels, TB_I32));
    TB_TRY(need_ndim(&v, "labels", labels, 1, "{n}"));
    TB_TRY(need_vec(&v, "labels_b", labels_b, TB_I32, labels->shape[0], "length of labels"));
    TB_TRY(no_overlap(&v, "labels_b", labels_b, "labels", labels));
    DISPATCH(TB_OP_REVERSE_LABELS, reverse_labels, TB_DTYPE_COUNT, labels_b, labels);
}

/* ------------------------------------------------------- elementwise util */

static tb_dtype float_or_none(tb_dtype dt) { return tb_dtype_is_float(dt) ? dt : TB_DTYPE_COUNT; }

int tb_fill(tb_backend *be, tb_tensor *t, float value)
{
    vcall v = vc_make(tb_op_name(TB_OP_FILL));
    vc_add(&v, "t", t);
    TB_TRY(need(&v, "t", t));
    if (t->dtype == TB_U8 && !(value >= 0.0f && value <= 255.0f && value == floorf(value)))
        return vc_fail(&v, "value %g is not a u8", (double)value);
    if (t->dtype == TB_I32 && !(value >= -2147483648.0f && value < 2147483648.0f && value == floorf(value)))
        return vc_fail(&v, "value %g is not an i32", (double)value);
    DISPATCH(TB_OP_FILL, fill, float_or_none(t->dtype), t, value);
}

int tb_copy(tb_backend *be, tb_tensor *dst, const tb_tensor *src)
{
    vcall v = vc_make(tb_op_name(TB_OP_COPY));
    vc_add(&v, "dst", dst), vc_add(&v, "src", src);
    TB_TRY(need(&v, "src", src));
    TB_TRY(need_same_numel(&v, "dst", dst, "src", src));
    if (dst->dtype != src->dtype)
        return vc_fail(&v, "src %s and dst %s differ in dtype (tb_convert converts)", SHP(src), SHP(dst));
    DISPATCH(TB_OP_COPY, copy, float_or_none(src->dtype), dst, src);
}

int tb_convert(tb_backend *be, tb_tensor *dst, const tb_tensor *src)
{
    vcall v = vc_make(tb_op_name(TB_OP_CONVERT));
    vc_add(&v, "dst", dst), vc_add(&v, "src", src);
    TB_TRY(need_float(&v, "src", src));
    TB_TRY(need_float(&v, "dst", dst));
    TB_TRY(need_same_numel(&v, "dst", dst, "src", src));
    DISPATCH(TB_OP_CONVERT, convert, src->dtype, dst, src);
}

int tb_axpby(tb_backend *be, tb_tensor *y, float alpha, const tb_tensor *x, float beta)
{
    vcall v = vc_make(tb_op_name(TB_OP_AXPBY));
    vc_add(&v, "y", y), vc_add(&v, "x", x);
    TB_TRY(need_float(&v, "x", x));
    TB_TRY(need_same_numel(&v, "y", y, "x", x));
    if (y->dtype != TB_F32 && y->dtype != x->dtype)
        return vc_fail(&v, "y %s must be f32 or x's dtype %s", SHP(y), tb_dtype_name(x->dtype));
    DISPATCH(TB_OP_AXPBY, axpby, x->dtype, y, alpha, x, beta);
}

int tb_nonfinite_check(tb_backend *be, tb_tensor *flag, const tb_tensor *x)
{
    vcall v = vc_make(tb_op_name(TB_OP_NONFINITE_CHECK));
    vc_add(&v, "flag", flag), vc_add(&v, "x", x);
    TB_TRY(need_float(&v, "x", x));
    TB_TRY(need_vec(&v, "flag", flag, TB_I32, 1, "a scalar"));
    DISPATCH(TB_OP_NONFINITE_CHECK, nonfinite_check, x->dtype, flag, x);
}

int tb_sumsq(tb_backend *be, tb_tensor *out, const tb_tensor *x)
{
    vcall v = vc_make(tb_op_name(TB_OP_SUMSQ));
    vc_add(&v, "out", out), vc_add(&v, "x", x);
    TB_TRY(need_float(&v, "x", x));
    TB_TRY(need_vec(&v, "out", out, TB_F32, 1, "a scalar"));
    DISPATCH(TB_OP_SUMSQ, sumsq, x->dtype, out, x);
}

/* ------------------------------------------------------------- optimizer */

static int sgd_scalars(const vcall *v, const tb_sgd_params *p)
{
    if (!p)
        return vc_fail(v, "SGD parameters are missing");
    if (!isfinite(p->lr))
        return vc_fail(v, "lr %g must be finite", (double)p->lr);
    if (!(p->momentum >= 0.0f) || !isfinite(p->momentum))
        return vc_fail(v, "momentum %g must be finite and >= 0", (double)p->momentum);
    if (!(p->weight_decay >= 0.0f) || !isfinite(p->weight_decay))
        return vc_fail(v, "weight_decay %g must be finite and >= 0", (double)p->weight_decay);
    if (!(p->grad_scale > 0.0f) || !isfinite(p->grad_scale))
        return vc_fail(v, "grad_scale %g must be positive and finite", (double)p->grad_scale);
    if (p->nesterov && p->momentum == 0.0f)
        return vc_fail(v, "nesterov needs a non-zero momentum (as in PyTorch)");
    if (p->clip_sumsq && (!(p->clip_max_norm > 0.0) || !isfinite(p->clip_max_norm)))
        return vc_fail(v, "clip_max_norm %g must be positive and finite", p->clip_max_norm);
    return TB_OK;
}

double tb_sgd_clip_factor(double sumsq, double grad_scale, double max_norm)
{
    double norm = sqrt(sumsq) / grad_scale;
    if (!isfinite(norm))
        return 1.0;
    double f = max_norm / (norm + 1e-6);
    return f < 1.0 ? f : 1.0;
}

int tb_sgd_step(tb_backend *be, tb_tensor *master, tb_tensor *model, tb_tensor *momentum_buf,
                const tb_tensor *grad, const tb_tensor *decay_mask, const tb_tensor *skip,
                const tb_sgd_params *p)
{
    vcall v = vc_make(tb_op_name(TB_OP_SGD_STEP));
    vc_add(&v, "master", master), vc_add(&v, "model", model), vc_add(&v, "momentum_buf", momentum_buf);
    vc_add(&v, "grad", grad), vc_add(&v, "decay_mask", decay_mask), vc_add(&v, "skip", skip);
    TB_TRY(sgd_scalars(&v, p));
    TB_TRY(need_dtype(&v, "master", master, TB_F32));
    TB_TRY(need_float(&v, "grad", grad));
    TB_TRY(need_same_numel(&v, "grad", grad, "master", master));
    if (p->momentum != 0.0f || present(momentum_buf)) {
        TB_TRY(need_dtype(&v, "momentum_buf", momentum_buf, TB_F32));
        TB_TRY(need_same_numel(&v, "momentum_buf", momentum_buf, "master", master));
    }
    if (present(model)) {
        TB_TRY(need_float(&v, "model", model));
        TB_TRY(need_same_numel(&v, "model", model, "master", master));
    }
    if (present(decay_mask)) {
        TB_TRY(need_dtype(&v, "decay_mask", decay_mask, TB_U8));
        TB_TRY(need_same_numel(&v, "decay_mask", decay_mask, "master", master));
    }
    if (present(skip))
        TB_TRY(need_vec(&v, "skip", skip, TB_I32, 1, "a scalar flag"));
    if (p->lr_tensor)
        TB_TRY(need_vec(&v, "lr_tensor", p->lr_tensor, TB_F32, 1, "a scalar"));
    if (p->clip_sumsq)
        TB_TRY(need_vec(&v, "clip_sumsq", p->clip_sumsq, TB_F32, 1, "a scalar"));
    if (p->grad_scale_tensor)
        TB_TRY(need_vec(&v, "grad_scale_tensor", p->grad_scale_tensor, TB_F32, 1, "a scalar"));
    DISPATCH(TB_OP_SGD_STEP, sgd_step, grad->dtype, master, opt(model), opt(momentum_buf), grad,
             copt(decay_mask), copt(skip), p);
}
