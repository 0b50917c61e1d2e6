/* Smooth L1 loss of box regression (Fast R-CNN, torchvision's beta form):
 *   loss = sum_i weights_i * sl1(pred_i - target_i) / norm
 *   sl1(d) = 0.5 d^2 / beta for |d| < beta, |d| - 0.5 beta otherwise
 * (beta 0: plain L1, whose gradient at d = 0 is 0, as PyTorch's sign()).
 * A zero weight contributes nothing, not even a NaN from its prediction
 * (most rows of a detection batch are unsampled), as on the CPU.
 * The forward sums in two passes in a fixed order
 * (block partials into the reduction scratch, then one block), like sumsq:
 * deterministic for a given GPU. The backward is elementwise. */
#include "kernels/cuda/cuda_common.cuh"

__device__ __forceinline__ float sl1(float d, float beta)
{
    float a = fabsf(d);
    return a < beta ? 0.5f * d * d / beta : a - 0.5f * beta;
}

/* d sl1 / d d */
__device__ __forceinline__ float sl1_grad(float d, float beta)
{
    if (fabsf(d) < beta)
        return d / beta;
    return d > 0.0f ? 1.0f : (d < 0.0f ? -1.0f : 0.0f);
}

/* ---------------------------------------------------------------- kernels */

/* Pass 1: partial[block] = sum of weights * sl1 over the block's grid-stride share. */
template <typename T>
static __global__ void smooth_l1_partial_kernel(float *partial, const T *pred, const float *target,
                                                const float *weights, int64_t n, float beta)
{
    __shared__ float scratch[32];
    float s = 0.0f;
    TB_GRID_STRIDE_LOOP(i, n)
    {
        float w = weights[i];
        if (w != 0.0f)
            s += w * sl1(tb_f32(pred[i]) - target[i], beta);
    }
    s = tb_block_sum(s, scratch);
    if (threadIdx.x == 0)
        partial[blockIdx.x] = s;
}

template <typename T>
static __global__ void smooth_l1_backward_kernel(T *dpred, const T *pred, const float *target, const float *weights,
                                                 int64_t n, float beta, float factor)
{
    TB_GRID_STRIDE_LOOP(i, n)
    {
        float w = weights[i];
        if (w != 0.0f)
            dpred[i] = tb_from_f32<T>(tb_f32(dpred[i]) + factor * w * sl1_grad(tb_f32(pred[i]) - target[i], beta));
    }
}

/* ---------------------------------------------------------------- launchers */

static int smooth_l1_forward(tb_backend *be, tb_tensor *loss, const tb_tensor *pred, const tb_tensor *target,
                             const tb_tensor *weights, float beta, float norm)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    int64_t n = tb_numel(pred); /* >= 1: the front-end rejects empty tensors */
    unsigned blocks = tb_cuda_blocks(ctx, n);
    if (blocks > TB_CUDA_REDUCE_BLOCKS)
        blocks = TB_CUDA_REDUCE_BLOCKS;
    TB_TRY(tb_dispatch_float(pred->dtype, "smooth_l1_forward", [&](auto tag) {
        using T = typename decltype(tag)::type;
        smooth_l1_partial_kernel<T><<<blocks, TB_CUDA_THREADS, 0, ctx->stream>>>(
            ctx->reduce, (const T *)pred->data, (const float *)target->data, (const float *)weights->data, n, beta);
        return TB_OK;
    }));
    CUDA_CHECK_LAUNCH();
    return tb_cuda_sum_f32(ctx, (float *)loss->data, ctx->reduce, blocks, 1.0f / norm, false);
}

int tb_cuda_smooth_l1_forward(tb_backend *be, tb_tensor *loss, const tb_tensor *pred, const tb_tensor *target,
                              const tb_tensor *weights, float beta, float norm)
{
    TB_CUDA_OP_RETURN(smooth_l1_forward(be, loss, pred, target, weights, beta, norm), "smooth_l1_forward", "loss",
                      loss, "pred", pred, "target", target, "weights", weights);
}

static int smooth_l1_backward(tb_backend *be, tb_tensor *dpred, const tb_tensor *pred, const tb_tensor *target,
                              const tb_tensor *weights, float beta, float norm, float scale)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    int64_t n = tb_numel(pred);
    if (n == 0 || !dpred || !dpred->data)
        return TB_OK;
    float factor = scale / norm;
    TB_TRY(tb_dispatch_float(dpred->dtype, "smooth_l1_backward", [&](auto tag) {
        using T = typename decltype(tag)::type;
        smooth_l1_backward_kernel<T><<<tb_cuda_blocks(ctx, n), TB_CUDA_THREADS, 0, ctx->stream>>>(
            (T *)dpred->data, (const T *)pred->data, (const float *)target->data, (const float *)weights->data, n,
            beta, factor);
        return TB_OK;
    }));
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_smooth_l1_backward(tb_backend *be, tb_tensor *dpred, const tb_tensor *pred, const tb_tensor *target,
                               const tb_tensor *weights, float beta, float norm, float scale)
{
    TB_CUDA_OP_RETURN(smooth_l1_backward(be, dpred, pred, target, weights, beta, norm, scale), "smooth_l1_backward",
                      "dpred", dpred, "pred", pred, "target", target, "weights", weights);
}
