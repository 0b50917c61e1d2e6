/* Average pooling (NHWC) with PyTorch's divisor rules, ceil mode included
 * (ResNet-D's 2x2 shortcut pool: ceil_mode, count_include_pad = false).
 * The backward gathers, for each input element, the gradients of the
 * windows that cover it, each divided by that window's divisor. */
#include "kernels/cuda/pool_window.cuh"

template <typename I> __device__ __forceinline__ float window_divisor(const tb_pool_geom<I> &g, I oh, I ow)
{
    I h0, h1, w0, w1;
    /* the product in 64 bits: two window sides that each fit I may not */
    if (g.include_pad)
        return (float)((int64_t)tb_pool_padded_len<I>(oh, g.kh, g.sh, g.ph, g.h) *
                       (int64_t)tb_pool_padded_len<I>(ow, g.kw, g.sw, g.pw, g.w));
    tb_pool_window<I>(oh, g.kh, g.sh, g.ph, g.h, &h0, &h1);
    tb_pool_window<I>(ow, g.kw, g.sw, g.pw, g.w, &w0, &w1);
    return (float)((int64_t)(h1 - h0) * (int64_t)(w1 - w0));
}

template <typename T, typename I> static __global__ void avgpool_forward_kernel(T *y, const T *x, const tb_pool_geom<I> g)
{
    I total = g.n * g.oh * g.ow * g.c;
    TB_POOL_LOOP(I, i, total)
    {
        tb_pool_out_at<I> o = tb_pool_output(i, g);
        const T *xc = x + o.n * g.h * g.w * g.c + o.c;
        float s = 0.0f;
        for (I ih = o.h0; ih < o.h1; ih++)
            for (I iw = o.w0; iw < o.w1; iw++)
                s += tb_f32(xc[(ih * g.w + iw) * g.c]);
        float d = window_divisor(g, o.oh, o.ow);
        y[i] = tb_from_f32<T>(d > 0.0f ? s / d : 0.0f);
    }
}

template <typename T, typename I> static __global__ void avgpool_backward_kernel(T *dx, const T *dy, const tb_pool_geom<I> g)
{
    I total = g.n * g.h * g.w * g.c;
    TB_POOL_LOOP(I, i, total)
    {
        tb_pool_in_at<I> a = tb_pool_input(i, g);
        float acc = 0.0f;
        bool hit = false;
        for (I oh = a.oh0; oh <= a.oh1; oh++) {
            for (I ow = a.ow0; ow <= a.ow1; ow++) {
                float d = window_divisor(g, oh, ow);
                if (d > 0.0f) {
                    acc += tb_f32(dy[((a.n * g.oh + oh) * g.ow + ow) * g.c + a.c]) / d;
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
    int64_t n = tb_numel(y);
    if (n == 0)
        return TB_OK;
    TB_TRY(tb_dispatch_float(x->dtype, "avgpool_forward", [&](auto tag) {
        using T = typename decltype(tag)::type;
        return tb_pool_launch(ctx, x, y, p, [&](auto itag) {
            using I = typename decltype(itag)::type;
            avgpool_forward_kernel<T, I><<<tb_cuda_blocks(ctx, n), TB_CUDA_THREADS, 0, ctx->stream>>>(
                (T *)y->data, (const T *)x->data, tb_pool_geom_make<I>(x, y, p));
            return TB_OK;
        });
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
    int64_t n = tb_numel(dx);
    if (n == 0)
        return TB_OK;
    TB_TRY(tb_dispatch_float(dx->dtype, "avgpool_backward", [&](auto tag) {
        using T = typename decltype(tag)::type;
        return tb_pool_launch(ctx, dx, dy, p, [&](auto itag) {
            using I = typename decltype(itag)::type;
            avgpool_backward_kernel<T, I><<<tb_cuda_blocks(ctx, n), TB_CUDA_THREADS, 0, ctx->stream>>>(
                (T *)dx->data, (const T *)dy->data, tb_pool_geom_make<I>(dx, dy, p));
            return TB_OK;
        });
    }));
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_avgpool_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_pool_params *p)
{
    TB_CUDA_OP_RETURN(avgpool_backward(be, dx, dy, p), "avgpool_backward", "dx", dx, "dy", dy, NULL, NULL, NULL,
                      NULL);
}
