/* Fully connected layer: y[n,k] = x[n,c] * w[k,c]^T + bias[k].
 *
 * Fast path: oneDNN's sgemm (gemm.c) on the backend's threads. f16/bf16 tensors are converted to f32 in the
 * backend workspace first (ops never allocate); the workspace must hold
 *     4 * (n*c + k*c + n*k) bytes     for f16/bf16 (0 for f32)
 * for the forward and the backward alike, and a smaller one is
 * TB_ERR_INVALID. dx, dw and dbias may each be NULL. The naive twins below are the reference (double
 * accumulation, any dtype, no workspace) that the grad suite checks against.
 */
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/cpu/gemm.h"
#include "kernels/error.h"

static int linear_workspace(tb_backend *be, const char *op, const tb_tensor *x, const tb_tensor *w,
                            float **xs, float **ws, float **ys)
{
    int64_t n = x->shape[0], c = x->shape[1], k = w->shape[0];
    size_t need = sizeof(float) * (size_t)(n * c + k * c + n * k);
    if (be->workspace_size < need || !be->workspace) {
        char sx[64], sw[64];
        return tb_fail(TB_ERR_INVALID,
                       "%s: x %s and w %s need %zu bytes of workspace for the f32 conversion, "
                       "%zu reserved (tb_backend_reserve_workspace at graph build)",
                       op, tb_shape_str(x, sx, sizeof sx), tb_shape_str(w, sw, sizeof sw), need,
                       be->workspace_size);
    }
    *xs = be->workspace;
    *ws = *xs + n * c;
    *ys = *ws + k * c;
    return TB_OK;
}

/* One GEMM of the layer on the backend's threads; a failure says which. */
static int linear_gemm(tb_backend *be, const char *op, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                       const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    tb_cpu_gemm_error err = {0};
    if (tb_cpu_sgemm(be->threads, ta, tb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc, &err))
        return tb_cpu_gemm_fail(&err, op);
    return TB_OK;
}

/* y[i,:] += bias for each of the n rows. */
static void add_bias(tb_backend *be, float *y, const tb_tensor *bias, int64_t n, int64_t k)
{
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t i = 0; i < n; i++)
        for (int64_t o = 0; o < k; o++)
            y[i * k + o] += tb_load_f32(bias->data, bias->dtype, o);
}

int tb_cpu_linear_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *w,
                          const tb_tensor *bias)
{
    int64_t n = x->shape[0], c = x->shape[1], k = w->shape[0];
    if (x->dtype == TB_F32) {
        TB_TRY(linear_gemm(be, "cpu linear_forward", false, true, n, k, c, x->data, c, w->data, c, 0.0f, y->data, k));
        if (bias)
            add_bias(be, y->data, bias, n, k);
        return TB_OK;
    }
    float *xs = NULL, *ws = NULL, *ys = NULL;
    TB_TRY(linear_workspace(be, "linear_forward", x, w, &xs, &ws, &ys));
    tb_convert_to_f32(xs, x->data, x->dtype, (int64_t)n * c);
    tb_convert_to_f32(ws, w->data, w->dtype, (int64_t)k * c);
    TB_TRY(linear_gemm(be, "cpu linear_forward", false, true, n, k, c, xs, c, ws, c, 0.0f, ys, k));
    if (bias)
        add_bias(be, ys, bias, n, k);
    tb_convert_from_f32(y->data, y->dtype, ys, (int64_t)n * k);
    return TB_OK;
}

/* dbias[o] += sum_i dy[i,o], summed in double in row order. */
static void bias_grad(tb_tensor *dbias, const float *dy, int64_t n, int64_t k)
{
    for (int64_t o = 0; o < k; o++) {
        double s = 0.0;
        for (int64_t i = 0; i < n; i++)
            s += dy[i * k + o];
        tb_store_f32(dbias->data, dbias->dtype, o, tb_load_f32(dbias->data, dbias->dtype, o) + (float)s);
    }
}

int tb_cpu_linear_backward(tb_backend *be, tb_tensor *dx, tb_tensor *dw, tb_tensor *dbias, const tb_tensor *dy,
                           const tb_tensor *x, const tb_tensor *w)
{
    int64_t n = x->shape[0], c = x->shape[1], k = w->shape[0];
    if (x->dtype == TB_F32) {
        if (dx)
            TB_TRY(linear_gemm(be, "cpu linear_backward", false, false, n, c, k, dy->data, k, w->data, c, 1.0f,
                               dx->data, c));
        if (dw)
            TB_TRY(linear_gemm(be, "cpu linear_backward", true, false, k, c, n, dy->data, k, x->data, c, 1.0f,
                               dw->data, c));
        if (dbias)
            bias_grad(dbias, dy->data, n, k);
        return TB_OK;
    }
    /* workspace: a = dy (n*k), b = w then dw (k*c), m = dx then x (n*c) */
    float *m = NULL, *b = NULL, *a = NULL;
    TB_TRY(linear_workspace(be, "linear_backward", x, w, &m, &b, &a));
    tb_convert_to_f32(a, dy->data, dy->dtype, (int64_t)n * k);
    if (dx) {
        tb_convert_to_f32(b, w->data, w->dtype, (int64_t)k * c);
        tb_convert_to_f32(m, dx->data, dx->dtype, (int64_t)n * c);
        TB_TRY(linear_gemm(be, "cpu linear_backward", false, false, n, c, k, a, k, b, c, 1.0f, m, c));
        tb_convert_from_f32(dx->data, dx->dtype, m, (int64_t)n * c);
    }
    if (dw) {
        tb_convert_to_f32(m, x->data, x->dtype, (int64_t)n * c);
        tb_convert_to_f32(b, dw->data, dw->dtype, (int64_t)k * c);
        TB_TRY(linear_gemm(be, "cpu linear_backward", true, false, k, c, n, a, k, m, c, 1.0f, b, c));
        tb_convert_from_f32(dw->data, dw->dtype, b, (int64_t)k * c);
    }
    if (dbias)
        bias_grad(dbias, a, n, k);
    return TB_OK;
}

/* ------------------------------------------------------------ naive twins */

int tb_cpu_linear_forward_naive(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *w,
                                const tb_tensor *bias)
{
    (void)be;
    int64_t n = x->shape[0], c = x->shape[1], k = w->shape[0];
    for (int64_t i = 0; i < n; i++)
        for (int64_t o = 0; o < k; o++) {
            double s = bias ? tb_load_f32(bias->data, bias->dtype, o) : 0.0;
            for (int64_t j = 0; j < c; j++)
                s += (double)tb_load_f32(x->data, x->dtype, i * c + j) * tb_load_f32(w->data, w->dtype, o * c + j);
            tb_store_f32(y->data, y->dtype, i * k + o, (float)s);
        }
    return TB_OK;
}

int tb_cpu_linear_backward_naive(tb_backend *be, tb_tensor *dx, tb_tensor *dw, tb_tensor *dbias,
                                 const tb_tensor *dy, const tb_tensor *x, const tb_tensor *w)
{
    (void)be;
    int64_t n = x->shape[0], c = x->shape[1], k = w->shape[0];
    for (int64_t i = 0; dx && i < n; i++)
        for (int64_t j = 0; j < c; j++) {
            double s = tb_load_f32(dx->data, dx->dtype, i * c + j);
            for (int64_t o = 0; o < k; o++)
                s += (double)tb_load_f32(dy->data, dy->dtype, i * k + o) * tb_load_f32(w->data, w->dtype, o * c + j);
            tb_store_f32(dx->data, dx->dtype, i * c + j, (float)s);
        }
    for (int64_t o = 0; dw && o < k; o++)
        for (int64_t j = 0; j < c; j++) {
            double s = tb_load_f32(dw->data, dw->dtype, o * c + j);
            for (int64_t i = 0; i < n; i++)
                s += (double)tb_load_f32(dy->data, dy->dtype, i * k + o) * tb_load_f32(x->data, x->dtype, i * c + j);
            tb_store_f32(dw->data, dw->dtype, o * c + j, (float)s);
        }
    for (int64_t o = 0; dbias && o < k; o++) {
        double s = tb_load_f32(dbias->data, dbias->dtype, o);
        for (int64_t i = 0; i < n; i++)
            s += tb_load_f32(dy->data, dy->dtype, i * k + o);
        tb_store_f32(dbias->data, dbias->dtype, o, (float)s);
    }
    return TB_OK;
}
