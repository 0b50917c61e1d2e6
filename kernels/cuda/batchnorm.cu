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
 * statistics are f32 for every activation dtype (cuDNN derives that). */
#include <limits.h>

#include "kernels/cuda/cuda_common.cuh"

/* The backward must use the forward's mode: both follow the options. */
static cudnnBatchNormMode_t train_mode(const tb_cuda_ctx *ctx, const tb_tensor *x)
{
    return x->ndim == 4 && ctx->opt.batchnorm_persistent ? CUDNN_BATCHNORM_SPATIAL_PERSISTENT
                                                         : CUDNN_BATCHNORM_SPATIAL;
}

/* Sets the backend's two BatchNorm descriptors for x; *c receives the channels. */
static int bn_describe(tb_cuda_ctx *ctx, const tb_tensor *x, cudnnBatchNormMode_t mode, int64_t *c)
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
    TB_TRY(bn_describe(ctx, x, mode, &c));
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
    TB_TRY(bn_describe(ctx, x, CUDNN_BATCHNORM_SPATIAL, &c));
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
static int bn_backward(tb_backend *be, tb_tensor *dx, tb_tensor *dgamma, tb_tensor *dbeta, const tb_tensor *dy,
                       const tb_tensor *x, const tb_tensor *gamma, const tb_tensor *save_mean,
                       const tb_tensor *save_invstd)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    TB_CHECK(dx && dx->data, TB_ERR_INVALID, "batchnorm_backward: dx is required");
    TB_CHECK(save_mean && save_mean->data && save_invstd && save_invstd->data, TB_ERR_INVALID,
             "batchnorm_backward: the saved mean and inverse std of the forward are required");
    cudnnBatchNormMode_t mode = train_mode(ctx, x);
    int64_t c = 0;
    TB_TRY(bn_describe(ctx, x, mode, &c));
    void *dg = data_or_null(dgamma), *db = data_or_null(dbeta);
    if (!dg || !db) {
        TB_CHECK(2 * c <= (int64_t)TB_CUDA_REDUCE_ELEMS, TB_ERR_UNSUPPORTED,
                 "batchnorm_backward: %lld channels exceed the scratch for frozen parameters", (long long)c);
        CUDA_CHECK(cudaMemsetAsync(ctx->reduce, 0, 2 * (size_t)c * sizeof(float), ctx->stream));
        if (!dg)
            dg = ctx->reduce;
        if (!db)
            db = ctx->reduce + c;
    }
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
