/* BatchNorm through cuDNN: per-channel statistics over n, h, w of an NHWC
 * tensor (a 2-D {n, c} tensor is described as n x c x 1 x 1).
 *
 * Training on 4-D tensors uses CUDNN_BATCHNORM_SPATIAL_PERSISTENT (cuDNN's
 * fast NHWC path, which PyTorch also takes for channels-last tensors) unless
 * the backend's options turn it off; 2-D tensors and evaluation use
 * CUDNN_BATCHNORM_SPATIAL. cuDNN's conventions
 * are ours: exponentialAverageFactor is PyTorch's momentum, the running
 * variance is updated with the unbiased batch variance, and the saved
 * statistics are the batch mean and 1 / sqrt(var + eps). Parameters and
 * statistics are f32 for every activation dtype (cuDNN derives that).
 *
 * The backward of the evaluation forward (a frozen BN, as detection
 * backbones train) is ours, not cuDNN's (whose backward is the training
 * one): dx += dy * gamma / sqrt(running_var + eps) elementwise, and the
 * parameter gradients as column sums over the n * h * w rows in two passes
 * of a fixed order (deterministic, like reduce.cu's column sum). A training
 * backward without dx (cuDNN's always writes one) takes the same column sums
 * with the saved statistics. */
#include <limits.h>

#include "kernels/cuda/cuda_common.cuh"

/* ---------------------------------------------------- eval backward kernels */

template <typename T>
static __global__ void bn_eval_dx_kernel(T *dx, const T *dy, const float *gamma, const float *var, int64_t total,
                                         int64_t c, float eps)
{
    TB_GRID_STRIDE_LOOP(i, total)
    {
        int64_t ch = i % c;
        float k = gamma[ch] / sqrtf(var[ch] + eps);
        dx[i] = tb_from_f32<T>(tb_f32(dx[i]) + tb_f32(dy[i]) * k);
    }
}

/* Pass 1: block (32, 8) sums 32 channels over one chunk of rows:
 * partial[chunk, j] = sum dy * (x - mean) * invstd (dgamma) and
 * partial[chunks + chunk, j] = sum dy (dbeta). invstd is 1 / sqrt(var + eps)
 * (the eval backward: running statistics), or var holds it already (eps < 0:
 * the training backward's saved statistics). */
template <typename T>
static __global__ void bn_param_partial_kernel(float *partial, const T *dy, const T *x, const float *mean,
                                               const float *var, int64_t rows, int64_t c, int64_t chunk, float eps)
{
    __shared__ float acc_g[8][33], acc_b[8][33];
    int64_t col = (int64_t)blockIdx.x * 32 + threadIdx.x;
    int64_t r0 = (int64_t)blockIdx.y * chunk;
    int64_t r1 = r0 + chunk < rows ? r0 + chunk : rows;
    float sg = 0.0f, sb = 0.0f;
    if (col < c) {
        float m = mean[col], invstd = eps < 0.0f ? var[col] : 1.0f / sqrtf(var[col] + eps);
        for (int64_t r = r0 + threadIdx.y; r < r1; r += 8) {
            float d = tb_f32(dy[r * c + col]);
            sg += d * (tb_f32(x[r * c + col]) - m) * invstd;
            sb += d;
        }
    }
    acc_g[threadIdx.y][threadIdx.x] = sg;
    acc_b[threadIdx.y][threadIdx.x] = sb;
    __syncthreads();
    if (threadIdx.y == 0 && col < c) {
        float tg = 0.0f, tb = 0.0f;
        for (int i = 0; i < 8; i++) {
            tg += acc_g[i][threadIdx.x];
            tb += acc_b[i][threadIdx.x];
        }
        partial[(int64_t)blockIdx.y * c + col] = tg;
        partial[((int64_t)gridDim.y + blockIdx.y) * c + col] = tb;
    }
}

/* Pass 2: dgamma[j] += sum over chunks (in chunk order), dbeta likewise; either may be NULL. */
static __global__ void bn_param_final_kernel(float *dgamma, float *dbeta, const float *partial, int64_t chunks,
                                                  int64_t c)
{
    TB_GRID_STRIDE_LOOP(j, c)
    {
        float sg = 0.0f, sb = 0.0f;
        for (int64_t k = 0; k < chunks; k++) {
            sg += partial[k * c + j];
            sb += partial[(chunks + k) * c + j];
        }
        if (dgamma)
            dgamma[j] += sg;
        if (dbeta)
            dbeta[j] += sb;
    }
}

/* The backward must use the forward's mode: both follow the options. */
static cudnnBatchNormMode_t train_mode(const tb_cuda_ctx *ctx, const tb_tensor *x)
{
    return x->ndim == 4 && ctx->opt.batchnorm_persistent ? CUDNN_BATCHNORM_SPATIAL_PERSISTENT
                                                         : CUDNN_BATCHNORM_SPATIAL;
}

int tb_cuda_bn_describe(tb_cuda_ctx *ctx, const tb_tensor *x, cudnnBatchNormMode_t mode, int64_t *c)
{
    cudnnDataType_t dt;
    TB_TRY(tb_cudnn_dtype(x->dtype, &dt));
    int64_t n, h = 1, w = 1;
    if (x->ndim == 4) {
        n = x->shape[0];
        h = x->shape[1];
        w = x->shape[2];
        *c = x->shape[3];
    } else {
        TB_CHECK(x->ndim == 2, TB_ERR_INVALID, "batchnorm: x must be 4-D or 2-D, not %d-D", x->ndim);
        n = x->shape[0];
        *c = x->shape[1];
    }
    TB_CHECK(tb_numel(x) < INT_MAX, TB_ERR_UNSUPPORTED, "batchnorm: 2^31 elements or more are beyond cuDNN");
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(ctx->bn_x_desc, CUDNN_TENSOR_NHWC, dt, (int)n, (int)*c, (int)h, (int)w));
    CUDNN_CHECK(cudnnDeriveBNTensorDescriptor(ctx->bn_param_desc, ctx->bn_x_desc, mode));
    return TB_OK;
}

static void *data_or_null(const tb_tensor *t) { return t ? t->data : NULL; }

static int bn_forward_train(tb_backend *be, tb_tensor *y, tb_tensor *save_mean, tb_tensor *save_invstd,
                            tb_tensor *running_mean, tb_tensor *running_var, const tb_tensor *x,
                            const tb_tensor *gamma, const tb_tensor *beta, float momentum, float eps)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    cudnnBatchNormMode_t mode = train_mode(ctx, x);
    int64_t c = 0;
    TB_TRY(tb_cuda_bn_describe(ctx, x, mode, &c));
    const float one = 1.0f, zero = 0.0f;
    CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
        ctx->cudnn, mode, &one, &zero, ctx->bn_x_desc, x->data, ctx->bn_x_desc, y->data, ctx->bn_param_desc,
        gamma->data, beta->data, (double)momentum, data_or_null(running_mean), data_or_null(running_var),
        (double)eps, data_or_null(save_mean), data_or_null(save_invstd)));
    return TB_OK;
}

int tb_cuda_batchnorm_forward_train(tb_backend *be, tb_tensor *y, tb_tensor *save_mean, tb_tensor *save_invstd,
                                    tb_tensor *running_mean, tb_tensor *running_var, const tb_tensor *x,
                                    const tb_tensor *gamma, const tb_tensor *beta, float momentum, float eps)
{
    TB_CUDA_OP_RETURN(bn_forward_train(be, y, save_mean, save_invstd, running_mean, running_var, x, gamma, beta,
                                       momentum, eps),
                      "batchnorm_forward_train", "y", y, "x", x, "gamma", gamma, "running_mean", running_mean);
}

static int bn_forward_eval(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *gamma,
                           const tb_tensor *beta, const tb_tensor *running_mean, const tb_tensor *running_var,
                           float eps)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    int64_t c = 0;
    TB_TRY(tb_cuda_bn_describe(ctx, x, CUDNN_BATCHNORM_SPATIAL, &c));
    const float one = 1.0f, zero = 0.0f;
    CUDNN_CHECK(cudnnBatchNormalizationForwardInference(ctx->cudnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero,
                                                        ctx->bn_x_desc, x->data, ctx->bn_x_desc, y->data,
                                                        ctx->bn_param_desc, gamma->data, beta->data,
                                                        running_mean->data, running_var->data, (double)eps));
    return TB_OK;
}

int tb_cuda_batchnorm_forward_eval(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *gamma,
                                   const tb_tensor *beta, const tb_tensor *running_mean,
                                   const tb_tensor *running_var, float eps)
{
    TB_CUDA_OP_RETURN(bn_forward_eval(be, y, x, gamma, beta, running_mean, running_var, eps),
                      "batchnorm_forward_eval", "y", y, "x", x, "gamma", gamma, "running_var", running_var);
}

/* cuDNN always writes both parameter gradients: a frozen BN (NULL dgamma /
 * dbeta) gets them written into the reduction scratch and dropped. */
int tb_cuda_bn_param_grads(tb_cuda_ctx *ctx, int64_t c, tb_tensor *dgamma, tb_tensor *dbeta, void **dg, void **db)
{
    *dg = data_or_null(dgamma);
    *db = data_or_null(dbeta);
    if (*dg && *db)
        return TB_OK;
    TB_CHECK(2 * c <= (int64_t)TB_CUDA_REDUCE_ELEMS, TB_ERR_UNSUPPORTED,
             "batchnorm backward: %lld channels exceed the scratch for frozen parameters", (long long)c);
    CUDA_CHECK(cudaMemsetAsync(ctx->reduce, 0, 2 * (size_t)c * sizeof(float), ctx->stream));
    if (!*dg)
        *dg = ctx->reduce;
    if (!*db)
        *db = ctx->reduce + c;
    return TB_OK;
}

/* dgamma += sum dy * (x - mean) * invstd, dbeta += sum dy over the rows,
 * each optional, in two passes of a fixed order (deterministic). invstd from
 * var and eps, or var itself when eps < 0 (bn_param_partial_kernel). */
static int bn_param_grads(tb_cuda_ctx *ctx, tb_tensor *dgamma, tb_tensor *dbeta, const tb_tensor *dy,
                          const tb_tensor *x, const tb_tensor *mean, const tb_tensor *var, float eps)
{
    float *dg = (float *)data_or_null(dgamma), *db = (float *)data_or_null(dbeta);
    if (!dg && !db)
        return TB_OK;
    int64_t total = tb_numel(dy), c = dy->shape[dy->ndim - 1], rows = total / c;
    TB_CHECK(2 * c <= (int64_t)TB_CUDA_REDUCE_ELEMS, TB_ERR_UNSUPPORTED,
             "batchnorm: %lld channels exceed the reduction scratch of the parameter gradients", (long long)c);
    int64_t chunks = tb_cuda_column_chunks(ctx, rows, c, 2 * c); /* dgamma and dbeta partials */
    int64_t chunk = (rows + chunks - 1) / chunks;
    chunks = (rows + chunk - 1) / chunk;
    dim3 grid((unsigned)((c + 31) / 32), (unsigned)chunks), block(32, 8);
    TB_TRY(tb_dispatch_float(dy->dtype, "batchnorm parameter gradients", [&](auto tag) {
        using T = typename decltype(tag)::type;
        bn_param_partial_kernel<T><<<grid, block, 0, ctx->stream>>>(ctx->reduce, (const T *)dy->data,
                                                                    (const T *)x->data, (const float *)mean->data,
                                                                    (const float *)var->data, rows, c, chunk, eps);
        return TB_OK;
    }));
    CUDA_CHECK_LAUNCH();
    bn_param_final_kernel<<<tb_cuda_blocks(ctx, c), TB_CUDA_THREADS, 0, ctx->stream>>>(dg, db, ctx->reduce, chunks,
                                                                                       c);
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

static int bn_backward(tb_backend *be, tb_tensor *dx, tb_tensor *dgamma, tb_tensor *dbeta, const tb_tensor *dy,
                       const tb_tensor *x, const tb_tensor *gamma, const tb_tensor *save_mean,
                       const tb_tensor *save_invstd)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    TB_CHECK(save_mean && save_mean->data && save_invstd && save_invstd->data, TB_ERR_INVALID,
             "batchnorm_backward: the saved mean and inverse std of the forward are required");
    if (!dx || !dx->data) /* cuDNN's backward always writes dx: the parameter gradients alone are ours */
        return bn_param_grads(ctx, dgamma, dbeta, dy, x, save_mean, save_invstd, -1.0f);
    cudnnBatchNormMode_t mode = train_mode(ctx, x);
    int64_t c = 0;
    TB_TRY(tb_cuda_bn_describe(ctx, x, mode, &c));
    void *dg = NULL, *db = NULL;
    TB_TRY(tb_cuda_bn_param_grads(ctx, c, dgamma, dbeta, &dg, &db));
    const float one = 1.0f;
    /* the saved statistics are given, so cuDNN does not use epsilon; any
     * valid value will do (our backward has no eps argument) */
    const double unused_eps = 1e-5;
    CUDNN_CHECK(cudnnBatchNormalizationBackward(ctx->cudnn, mode, &one, &one, &one, &one, ctx->bn_x_desc, x->data,
                                                ctx->bn_x_desc, dy->data, ctx->bn_x_desc, dx->data,
                                                ctx->bn_param_desc, gamma->data, dg, db, unused_eps,
                                                save_mean->data, save_invstd->data));
    return TB_OK;
}

int tb_cuda_batchnorm_backward(tb_backend *be, tb_tensor *dx, tb_tensor *dgamma, tb_tensor *dbeta,
                               const tb_tensor *dy, const tb_tensor *x, const tb_tensor *gamma,
                               const tb_tensor *save_mean, const tb_tensor *save_invstd)
{
    TB_CUDA_OP_RETURN(bn_backward(be, dx, dgamma, dbeta, dy, x, gamma, save_mean, save_invstd), "batchnorm_backward",
                      "dx", dx, "dy", dy, "x", x, "dgamma", dgamma);
}

static int bn_backward_eval(tb_backend *be, tb_tensor *dx, tb_tensor *dgamma, tb_tensor *dbeta, const tb_tensor *dy,
                            const tb_tensor *x, const tb_tensor *gamma, const tb_tensor *running_mean,
                            const tb_tensor *running_var, float eps)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    int64_t total = tb_numel(dy), c = dy->shape[dy->ndim - 1];
    const float *var = (const float *)running_var->data;
    if (dx && dx->data) {
        TB_TRY(tb_dispatch_float(dy->dtype, "batchnorm_backward_eval", [&](auto tag) {
            using T = typename decltype(tag)::type;
            bn_eval_dx_kernel<T><<<tb_cuda_blocks(ctx, total), TB_CUDA_THREADS, 0, ctx->stream>>>(
                (T *)dx->data, (const T *)dy->data, (const float *)gamma->data, var, total, c, eps);
            return TB_OK;
        }));
        CUDA_CHECK_LAUNCH();
    }
    return bn_param_grads(ctx, dgamma, dbeta, dy, x, running_mean, running_var, eps);
}

int tb_cuda_batchnorm_backward_eval(tb_backend *be, tb_tensor *dx, tb_tensor *dgamma, tb_tensor *dbeta,
                                    const tb_tensor *dy, const tb_tensor *x, const tb_tensor *gamma,
                                    const tb_tensor *running_mean, const tb_tensor *running_var, float eps)
{
    TB_CUDA_OP_RETURN(bn_backward_eval(be, dx, dgamma, dbeta, dy, x, gamma, running_mean, running_var, eps),
                      "batchnorm_backward_eval", "dx", dx, "dy", dy, "x", x, "dgamma", dgamma);
}
