/* Concatenation along the channel (last) axis: each input is a {rows, ci}
 * block copied into columns [off, off + ci) of y {rows, sum ci}; the
 * backward adds the same column block of dy into each dx (NULL skipped). */
#include "kernels/cuda/cuda_common.cuh"

template <typename T>
static __global__ void concat_forward_kernel(T *y, const T *x, int64_t rows, int64_t ci, int64_t cy, int64_t off)
{
    TB_GRID_STRIDE_LOOP(i, rows * ci)
    {
        int64_t r = i / ci, j = i % ci;
        y[r * cy + off + j] = x[i];
    }
}

template <typename T>
static __global__ void concat_backward_kernel(T *dx, const T *dy, int64_t rows, int64_t ci, int64_t cy, int64_t off)
{
    TB_GRID_STRIDE_LOOP(i, rows * ci)
    {
        int64_t r = i / ci, j = i % ci;
        dx[i] = tb_from_f32<T>(tb_f32(dx[i]) + tb_f32(dy[r * cy + off + j]));
    }
}

static int64_t last_dim(const tb_tensor *t) { return t->shape[t->ndim - 1]; }

static int concat_forward(tb_backend *be, tb_tensor *y, const tb_tensor *const *xs, int count)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    int64_t cy = last_dim(y), rows = tb_numel(y) / (cy ? cy : 1), off = 0;
    for (int k = 0; k < count; k++) {
        int64_t ci = last_dim(xs[k]);
        if (rows * ci > 0) {
            TB_TRY(tb_dispatch_float(y->dtype, "concat_forward", [&](auto tag) {
                using T = typename decltype(tag)::type;
                concat_forward_kernel<T><<<tb_cuda_blocks(ctx, rows * ci), TB_CUDA_THREADS, 0, ctx->stream>>>(
                    (T *)y->data, (const T *)xs[k]->data, rows, ci, cy, off);
                return TB_OK;
            }));
            CUDA_CHECK_LAUNCH();
        }
        off += ci;
    }
    return TB_OK;
}

int tb_cuda_concat_forward(tb_backend *be, tb_tensor *y, const tb_tensor *const *xs, int count)
{
    TB_CUDA_OP_RETURN(concat_forward(be, y, xs, count), "concat_forward", "y", y, "xs[0]", count > 0 ? xs[0] : NULL,
                      "xs[1]", count > 1 ? xs[1] : NULL, NULL, NULL);
}

static int concat_backward(tb_backend *be, tb_tensor *const *dxs, int count, const tb_tensor *dy)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    int64_t cy = last_dim(dy), rows = tb_numel(dy) / (cy ? cy : 1), off = 0;
    for (int k = 0; k < count; k++) {
        int64_t ci = last_dim(dxs[k]);
        if (dxs[k]->data && rows * ci > 0) {
            TB_TRY(tb_dispatch_float(dy->dtype, "concat_backward", [&](auto tag) {
                using T = typename decltype(tag)::type;
                concat_backward_kernel<T><<<tb_cuda_blocks(ctx, rows * ci), TB_CUDA_THREADS, 0, ctx->stream>>>(
                    (T *)dxs[k]->data, (const T *)dy->data, rows, ci, cy, off);
                return TB_OK;
            }));
            CUDA_CHECK_LAUNCH();
        }
        off += ci;
    }
    return TB_OK;
}

int tb_cuda_concat_backward(tb_backend *be, tb_tensor *const *dxs, int count, const tb_tensor *dy)
{
    TB_CUDA_OP_RETURN(concat_backward(be, dxs, count, dy), "concat_backward", "dy", dy, "dxs[0]",
                      count > 0 ? dxs[0] : NULL, "dxs[1]", count > 1 ? dxs[1] : NULL, NULL, NULL);
}
