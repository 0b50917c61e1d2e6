/* Average pooling (NHWC) with PyTorch's divisor rules, ceil mode included
 * (ResNet-D's 2x2 shortcut pool: ceil_mode, count_include_pad = false).
 * The backward gathers, for each input element, the gradients of the
 * windows that cover it, each divided by that window's divisor. */
#include "kernels/cuda/pool_window.cuh"

__device__ __forceinline__ float window_divisor(const tb_pool_geom g, int64_t oh, int64_t ow)
{
    int64_t h0, h1, w0, w1;
    if (g.include_pad)
        return (float)(tb_pool_padded_len(oh, g.kh, g.sh, g.ph, g.h) * tb_pool_padded_len(ow, g.kw, g.sw, g.pw, g.w));
    tb_pool_window(oh, g.kh, g.sh, g.ph, g.h, &h0, &h1);
    tb_pool_window(ow, g.kw, g.sw, g.pw, g.w, &w0, &w1);
    return (float)((h1 - h0) * (w1 - w0));
}

template <typename T> static __global__ void avgpool_forward_kernel(T *y, const T *x, const tb_pool_geom g)
{
    TB_GRID_STRIDE_LOOP(i, g.n * g.oh * g.ow * g.c)
    {
        int64_t c = i % g.c, t = i / g.c;
        int64_t ow = t % g.ow;
        t /= g.ow;
        int64_t oh = t % g.oh, n = t / g.oh;
        int64_t h0, h1, w0, w1;
        tb_pool_window(oh, g.kh, g.sh, g.ph, g.h, &h0, &h1);
        tb_pool_window(ow, g.kw, g.sw, g.pw, g.w, &w0, &w1);
        float s = 0.0f;
        for (int64_t ih = h0; ih < h1; ih++)
            for (int64_t iw = w0; iw < w1; iw++)
                s += tb_f32(x[((n * g.h + ih) * g.w + iw) * g.c + c]);
        float d = window_divisor(g, oh, ow);
        y[i] = tb_from_f32<T>(d > 0.0f ? s / d : 0.0f);
    }
}

template <typename T> static __global__ void avgpool_backward_kernel(T *dx, const T *dy, const tb_pool_geom g)
{
    TB_GRID_STRIDE_LOOP(i, g.n * g.h * g.w * g.c)
    {
        int64_t c = i % g.c, t = i / g.c;
        int64_t iw = t % g.w;
        t /= g.w;
        int64_t ih = t % g.h, n = t / g.h;
        int64_t oh0, oh1, ow0, ow1;
        tb_pool_outputs_of(ih, g.kh, g.sh, g.ph, g.oh, &oh0, &oh1);
        tb_pool_outputs_of(iw, g.kw, g.sw, g.pw, g.ow, &ow0, &ow1);
        float acc = 0.0f;
        bool hit = false;
        for (int64_t oh = oh0; oh <= oh1; oh++) {
            for (int64_t ow = ow0; ow <= ow1; ow++) {
                float d = window_divisor(g, oh, ow);
                if (d > 0.0f) {
                    acc += tb_f32(dy[((n * g.oh + oh) * g.ow + ow) * g.c + c]) / d;
                    hit = true;
                }
            }
        }
        if (hit)
            dx[i] = tb_from_f32<T>(tb_f32(dx[i]) + acc);
    }
}

static int avgpool_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_pool_params *p)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    tb_pool_geom g = tb_pool_geom_make(x, y, p);
    int64_t n = tb_numel(y);
    if (n == 0)
        return TB_OK;
    TB_TRY(tb_dispatch_float(x->dtype, "avgpool_forward", [&](auto tag) {
        using T = typename decltype(tag)::type;
        avgpool_forward_kernel<T><<<tb_cuda_blocks(ctx, n), TB_CUDA_THREADS, 0, ctx->stream>>>(
            (T *)y->data, (const T *)x->data, g);
        return TB_OK;
    }));
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_avgpool_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_pool_params *p)
{
    TB_CUDA_OP_RETURN(avgpool_forward(be, y, x, p), "avgpool_forward", "y", y, "x", x, NULL, NULL, NULL, NULL);
}

static int avgpool_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_pool_params *p)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    if (!dx || !dx->data)
        return TB_OK;
    tb_pool_geom g = tb_pool_geom_make(dx, dy, p);
    int64_t n = tb_numel(dx);
    if (n == 0)
        return TB_OK;
    TB_TRY(tb_dispatch_float(dx->dtype, "avgpool_backward", [&](auto tag) {
        using T = typename decltype(tag)::type;
        avgpool_backward_kernel<T><<<tb_cuda_blocks(ctx, n), TB_CUDA_THREADS, 0, ctx->stream>>>(
            (T *)dx->data, (const T *)dy->data, g);
        return TB_OK;
    }));
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_avgpool_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_pool_params *p)
{
    TB_CUDA_OP_RETURN(avgpool_backward(be, dx, dy, p), "avgpool_backward", "dx", dx, "dy", dy, NULL, NULL, NULL,
                      NULL);
}
