/* ReLU: y = max(x, 0); dx += dy * (y > 0). The backward reads the output
 * so that the forward may run in place (y == x). `x < 0 ? 0 : x` as on the
 * CPU: NaN passes through (a non-finite activation still reaches the
 * loss-scaling overflow check) and -0 stays -0. */
#include "kernels/cuda/cuda_common.cuh"

template <typename T> static __global__ void relu_forward_kernel(T *y, const T *x, int64_t n)
{
    TB_GRID_STRIDE_LOOP(i, n)
    {
        float v = tb_f32(x[i]);
        y[i] = tb_from_f32<T>(v < 0.0f ? 0.0f : v);
    }
}

template <typename T> static __global__ void relu_backward_kernel(T *dx, const T *dy, const T *y, int64_t n)
{
    TB_GRID_STRIDE_LOOP(i, n)
    {
        if (tb_f32(y[i]) > 0.0f)
            dx[i] = tb_from_f32<T>(tb_f32(dx[i]) + tb_f32(dy[i]));
    }
}

static int relu_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    int64_t n = tb_numel(x);
    if (n == 0)
        return TB_OK;
    TB_TRY(tb_dispatch_float(x->dtype, "relu_forward", [&](auto tag) {
        using T = typename decltype(tag)::type;
        relu_forward_kernel<T><<<tb_cuda_blocks(ctx, n), TB_CUDA_THREADS, 0, ctx->stream>>>((T *)y->data,
                                                                                          (const T *)x->data, n);
        return TB_OK;
    }));
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_relu_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x)
{
    TB_CUDA_OP_RETURN(relu_forward(be, y, x), "relu_forward", "y", y, "x", x, NULL, NULL, NULL, NULL);
}

static int relu_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *y)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    int64_t n = tb_numel(dy);
    if (n == 0 || !dx || !dx->data)
        return TB_OK;
    TB_TRY(tb_dispatch_float(dy->dtype, "relu_backward", [&](auto tag) {
        using T = typename decltype(tag)::type;
        relu_backward_kernel<T><<<tb_cuda_blocks(ctx, n), TB_CUDA_THREADS, 0, ctx->stream>>>(
            (T *)dx->data, (const T *)dy->data, (const T *)y->data, n);
        return TB_OK;
    }));
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_relu_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *y)
{
    TB_CUDA_OP_RETURN(relu_backward(be, dx, dy, y), "relu_backward", "dx", dx, "dy", dy, "y", y, NULL, NULL);
}
