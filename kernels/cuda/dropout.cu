/* Inverted dropout. Element i is kept when tb_hash_uniform(seed, i) >= p,
 * the same draw as the CPU backend, so both backends produce the same mask
 * (u8, 1 = kept) for a seed; kept values are scaled by 1 / (1 - p). With a
 * step tensor the seed is made on the device (tb_dropout_step_seed_dev). */
#include "kernels/cuda/cuda_common.cuh"

template <typename T>
static __global__ void dropout_forward_kernel(T *y, uint8_t *mask, const T *x, int64_t n, float p, float scale,
                                              uint64_t seed, uint64_t salt, const int32_t *step)
{
    /* the step read when the kernel runs (a replayed capture's own step);
     * a negative one, which the CPU refuses, counts as 0 */
    if (step)
        seed = tb_dropout_step_seed_dev(seed, (uint64_t)(*step > 0 ? *step : 0), salt);
    TB_GRID_STRIDE_LOOP(i, n)
    {
        bool keep = tb_hash_uniform_dev(seed, (uint64_t)i) >= p;
        mask[i] = keep ? 1 : 0;
        y[i] = tb_from_f32<T>(keep ? tb_f32(x[i]) * scale : 0.0f);
    }
}

template <typename T>
static __global__ void dropout_backward_kernel(T *dx, const T *dy, const uint8_t *mask, int64_t n, float scale)
{
    TB_GRID_STRIDE_LOOP(i, n)
    {
        if (mask[i])
            dx[i] = tb_from_f32<T>(tb_f32(dx[i]) + tb_f32(dy[i]) * scale);
    }
}

/* p = 1 drops everything: the scale is then irrelevant and kept finite. */
static float keep_scale(float p) { return p < 1.0f ? 1.0f / (1.0f - p) : 0.0f; }

static int dropout_forward(tb_backend *be, tb_tensor *y, tb_tensor *mask, const tb_tensor *x, float p,
                           uint64_t seed, uint64_t salt, const tb_tensor *step)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    int64_t n = tb_numel(x);
    if (n == 0)
        return TB_OK;
    TB_TRY(tb_dispatch_float(x->dtype, "dropout_forward", [&](auto tag) {
        using T = typename decltype(tag)::type;
        dropout_forward_kernel<T><<<tb_cuda_blocks(ctx, n), TB_CUDA_THREADS, 0, ctx->stream>>>(
            (T *)y->data, (uint8_t *)mask->data, (const T *)x->data, n, p, keep_scale(p), seed, salt,
            step ? (const int32_t *)step->data : NULL);
        return TB_OK;
    }));
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_dropout_forward(tb_backend *be, tb_tensor *y, tb_tensor *mask, const tb_tensor *x, float p,
                            uint64_t seed, uint64_t salt, const tb_tensor *step)
{
    TB_CUDA_OP_RETURN(dropout_forward(be, y, mask, x, p, seed, salt, step), "dropout_forward", "y", y, "mask", mask,
                      "x", x, "step", step);
}

static int dropout_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *mask, float p)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    int64_t n = tb_numel(dy);
    if (n == 0 || !dx || !dx->data)
        return TB_OK;
    TB_TRY(tb_dispatch_float(dy->dtype, "dropout_backward", [&](auto tag) {
        using T = typename decltype(tag)::type;
        dropout_backward_kernel<T><<<tb_cuda_blocks(ctx, n), TB_CUDA_THREADS, 0, ctx->stream>>>(
            (T *)dx->data, (const T *)dy->data, (const uint8_t *)mask->data, n, keep_scale(p));
        return TB_OK;
    }));
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_dropout_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *mask, float p)
{
    TB_CUDA_OP_RETURN(dropout_backward(be, dx, dy, mask, p), "dropout_backward", "dx", dx, "dy", dy, "mask", mask,
                      NULL, NULL);
}
