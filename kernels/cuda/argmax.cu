/* Argmax over the last axis, one thread per row: the first index of the
 * row's largest value (strict `>`, as the CPU: ties keep the earliest index,
 * NaN never wins). Each thread reads its row front to back, so a warp's
 * reads sweep 32 adjacent rows. */
#include "kernels/cuda/cuda_common.cuh"

template <typename T> static __global__ void argmax_kernel(int32_t *out, const T *x, int64_t rows, int64_t k)
{
    TB_GRID_STRIDE_LOOP(r, rows)
    {
        const T *z = x + r * k;
        float best = tb_f32(z[0]);
        int32_t at = 0;
        for (int64_t j = 1; j < k; j++) {
            float v = tb_f32(z[j]);
            if (v > best) {
                best = v;
                at = (int32_t)j;
            }
        }
        out[r] = at;
    }
}

static int argmax(tb_backend *be, tb_tensor *index, const tb_tensor *x)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    int64_t k = x->shape[x->ndim - 1], rows = tb_numel(x) / k;
    TB_TRY(tb_dispatch_float(x->dtype, "argmax", [&](auto tag) {
        using T = typename decltype(tag)::type;
        argmax_kernel<T><<<tb_cuda_blocks(ctx, rows), TB_CUDA_THREADS, 0, ctx->stream>>>(
            (int32_t *)index->data, (const T *)x->data, rows, k);
        return TB_OK;
    }));
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_argmax(tb_backend *be, tb_tensor *index, const tb_tensor *x)
{
    TB_CUDA_OP_RETURN(argmax(be, index, x), "argmax", "index", index, "x", x, NULL, NULL, NULL, NULL);
}
