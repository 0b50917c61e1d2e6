/* Linear layer through cuBLAS (cublasGemmEx, f32 accumulation).
 *
 * cuBLAS is column-major; a row-major {rows, cols} matrix is its transpose
 * there. With x {n, c}, w {k, c}, y {n, k} row-major:
 *   y  = x w^T     ->  Y^T (k x n)  = W^T(k x c, from w) * X^T (c x n)
 *   dx += dy w     ->  dX^T (c x n) = W^T... i.e. w (c x k) * dY^T (k x n)
 *   dw += dy^T x   ->  dW^T (c x k) = X^T (c x n) * dY (n x k)
 * The bias is broadcast into y first and the GEMM adds onto it (beta = 1);
 * gradients accumulate with beta = 1. f32 GEMMs use TF32 tensor cores only
 * when the backend's options allow TF32. */
#include "kernels/cuda/cuda_common.cuh"

typedef struct gemm_args {
    cublasOperation_t ta, tb;
    int m, n, k;
    const void *a;
    int lda;
    const void *b;
    int ldb;
    void *c;
    int ldc;
    float beta;
} gemm_args;

static int gemm(tb_cuda_ctx *ctx, tb_dtype dt, const gemm_args *g)
{
    cudaDataType_t type;
    TB_TRY(tb_cuda_dtype(dt, &type));
    cublasComputeType_t compute =
        dt == TB_F32 && ctx->opt.allow_tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    const float alpha = 1.0f;
    CUBLAS_CHECK(cublasGemmEx(ctx->cublas, g->ta, g->tb, g->m, g->n, g->k, &alpha, g->a, type, g->lda, g->b, type,
                              g->ldb, &g->beta, g->c, type, g->ldc, compute, CUBLAS_GEMM_DEFAULT));
    return TB_OK;
}

static int check_int(int64_t v, const char *what)
{
    TB_CHECK(v > 0 && v <= INT32_MAX, TB_ERR_UNSUPPORTED, "linear: %s = %lld is outside cuBLAS's int range", what,
             (long long)v);
    return TB_OK;
}

static int linear_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *w,
                          const tb_tensor *bias)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    int64_t n = x->shape[0], c = x->shape[1], k = w->shape[0];
    TB_TRY(check_int(n, "n"));
    TB_TRY(check_int(c, "c"));
    TB_TRY(check_int(k, "k"));
    bool has_bias = bias && bias->data;
    if (has_bias)
        TB_TRY(tb_cuda_bias_broadcast(ctx, y->data, bias->data, y->dtype, n, k, false));
    gemm_args g = {CUBLAS_OP_T, CUBLAS_OP_N, (int)k, (int)n, (int)c, w->data, (int)c, x->data, (int)c,
                   y->data, (int)k, has_bias ? 1.0f : 0.0f};
    return gemm(ctx, y->dtype, &g);
}

int tb_cuda_linear_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *w,
                           const tb_tensor *bias)
{
    TB_CUDA_OP_RETURN(linear_forward(be, y, x, w, bias), "linear_forward", "y", y, "x", x, "w", w, "bias", bias);
}

static int linear_backward(tb_backend *be, tb_tensor *dx, tb_tensor *dw, tb_tensor *dbias, const tb_tensor *dy,
                           const tb_tensor *x, const tb_tensor *w)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    int64_t n = x->shape[0], c = x->shape[1], k = w->shape[0];
    TB_TRY(check_int(n, "n"));
    TB_TRY(check_int(c, "c"));
    TB_TRY(check_int(k, "k"));
    if (dx && dx->data) {
        gemm_args g = {CUBLAS_OP_N, CUBLAS_OP_N, (int)c, (int)n, (int)k, w->data, (int)c, dy->data, (int)k,
                       dx->data, (int)c, 1.0f};
        TB_TRY(gemm(ctx, dy->dtype, &g));
    }
    if (dw && dw->data) {
        gemm_args g = {CUBLAS_OP_N, CUBLAS_OP_T, (int)c, (int)k, (int)n, x->data, (int)c, dy->data, (int)k,
                       dw->data, (int)c, 1.0f};
        TB_TRY(gemm(ctx, dy->dtype, &g));
    }
    if (dbias && dbias->data)
        TB_TRY(tb_cuda_column_sum_acc(ctx, dbias->data, dbias->dtype, dy->data, dy->dtype, n, k));
    return TB_OK;
}

int tb_cuda_linear_backward(tb_backend *be, tb_tensor *dx, tb_tensor *dw, tb_tensor *dbias, const tb_tensor *dy,
                            const tb_tensor *x, const tb_tensor *w)
{
    TB_CUDA_OP_RETURN(linear_backward(be, dx, dw, dbias, dy, x, w), "linear_backward", "dy", dy, "x", x, "w", w,
                      "dw", dw);
}
