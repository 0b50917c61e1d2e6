/* Gradient checks: the overflow flag of dynamic loss scaling and the sum of
 * squares behind gradient norms. Both stay on the device (no host sync). */
#include "kernels/cuda/cuda_common.cuh"

/* flag |= 1 when any element is inf or NaN; only finders touch the flag. */
template <typename T> static __global__ void nonfinite_kernel(int32_t *flag, const T *x, int64_t n)
{
    bool bad = false;
    TB_GRID_STRIDE_LOOP(i, n) bad |= !isfinite(tb_f32(x[i]));
    if (bad)
        atomicOr(flag, 1);
}

/* Pass 1: partial[block] = sum of x^2 over the block's grid-stride share. */
template <typename T> static __global__ void sumsq_partial_kernel(float *partial, const T *x, int64_t n)
{
    __shared__ float scratch[32];
    float s = 0.0f;
    TB_GRID_STRIDE_LOOP(i, n)
    {
        float v = tb_f32(x[i]);
        s += v * v;
    }
    s = tb_block_sum(s, scratch);
    if (threadIdx.x == 0)
        partial[blockIdx.x] = s;
}

static int nonfinite_check(tb_backend *be, tb_tensor *flag, const tb_tensor *x)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    int64_t n = tb_numel(x);
    if (n == 0)
        return TB_OK;
    TB_TRY(tb_dispatch_float(x->dtype, "nonfinite_check", [&](auto tag) {
        using T = typename decltype(tag)::type;
        nonfinite_kernel<T><<<tb_cuda_blocks(ctx, n), TB_CUDA_THREADS, 0, ctx->stream>>>(
            (int32_t *)flag->data, (const T *)x->data, n);
        return TB_OK;
    }));
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_nonfinite_check(tb_backend *be, tb_tensor *flag, const tb_tensor *x)
{
    TB_CUDA_OP_RETURN(nonfinite_check(be, flag, x), "nonfinite_check", "flag", flag, "x", x, NULL, NULL, NULL,
                      NULL);
}

/* Two passes in a fixed order (deterministic for a given GPU): block
 * partials into the reduction scratch, then one block adds them to out. */
static int sumsq(tb_backend *be, tb_tensor *out, const tb_tensor *x)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    int64_t n = tb_numel(x);
    if (n == 0)
        return TB_OK;
    unsigned blocks = tb_cuda_blocks(ctx, n);
    if (blocks > TB_CUDA_REDUCE_BLOCKS)
        blocks = TB_CUDA_REDUCE_BLOCKS;
    TB_TRY(tb_dispatch_float(x->dtype, "sumsq", [&](auto tag) {
        using T = typename decltype(tag)::type;
        sumsq_partial_kernel<T><<<blocks, TB_CUDA_THREADS, 0, ctx->stream>>>(ctx->reduce, (const T *)x->data, n);
        return TB_OK;
    }));
    CUDA_CHECK_LAUNCH();
    return tb_cuda_sum_f32(ctx, (float *)out->data, ctx->reduce, blocks, 1.0f, true);
}

int tb_cuda_sumsq(tb_backend *be, tb_tensor *out, const tb_tensor *x)
{
    TB_CUDA_OP_RETURN(sumsq(be, out, x), "sumsq", "out", out, "x", x, NULL, NULL, NULL, NULL);
}
