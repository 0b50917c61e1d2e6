/* Max pooling (NHWC), PyTorch semantics: windows clipped to the input
 * (padding never wins), NaN propagates, the backward routes each output
 * gradient to the first maximum of its window. The backward gathers: each
 * input element recomputes the argmax of the few windows that cover it and
 * sums their gradients in a fixed order, so no atomics are needed. */
#include "kernels/cuda/pool_window.cuh"

/* Index (h * w + w) of the first maximum of window (oh, ow) of image n,
 * channel c; its value in *best. */
template <typename T>
__device__ __forceinline__ int64_t window_argmax(const T *x, const tb_pool_geom g, int64_t n, int64_t oh,
                                                 int64_t ow, int64_t c, float *best)
{
    int64_t h0, h1, w0, w1;
    tb_pool_window(oh, g.kh, g.sh, g.ph, g.h, &h0, &h1);
    tb_pool_window(ow, g.kw, g.sw, g.pw, g.w, &w0, &w1);
    float m = -INFINITY;
    int64_t arg = h0 * g.w + w0;
    for (int64_t ih = h0; ih < h1; ih++) {
        for (int64_t iw = w0; iw < w1; iw++) {
            float v = tb_f32(x[((n * g.h + ih) * g.w + iw) * g.c + c]);
            if (v > m || (isnan(v) && !isnan(m))) {
                m = v;
                arg = ih * g.w + iw;
            }
        }
    }
    *best = m;
    return arg;
}

template <typename T> static __global__ void maxpool_forward_kernel(T *y, const T *x, const tb_pool_geom g)
{
    TB_GRID_STRIDE_LOOP(i, g.n * g.oh * g.ow * g.c)
    {
        int64_t c = i % g.c, t = i / g.c;
        int64_t ow = t % g.ow;
        t /= g.ow;
        int64_t oh = t % g.oh, n = t / g.oh;
        float m;
        window_argmax(x, g, n, oh, ow, c, &m);
        y[i] = tb_from_f32<T>(m);
    }
}

template <typename T>
static __global__ void maxpool_backward_kernel(T *dx, const T *dy, const T *x, const tb_pool_geom g)
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
                float m;
                if (window_argmax(x, g, n, oh, ow, c, &m) == ih * g.w + iw) {
                    acc += tb_f32(dy[((n * g.oh + oh) * g.ow + ow) * g.c + c]);
                    hit = true;
                }
            }
        }
        if (hit)
            dx[i] = tb_from_f32<T>(tb_f32(dx[i]) + acc);
    }
}

static int maxpool_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_pool_params *p)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    tb_pool_geom g = tb_pool_geom_make(x, y, p);
    int64_t n = tb_numel(y);
    if (n == 0)
        return TB_OK;
    TB_TRY(tb_dispatch_float(x->dtype, "maxpool_forward", [&](auto tag) {
        using T = typename decltype(tag)::type;
        maxpool_forward_kernel<T><<<tb_cuda_blocks(ctx, n), TB_CUDA_THREADS, 0, ctx->stream>>>(
            (T *)y->data, (const T *)x->data, g);
        return TB_OK;
    }));
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_maxpool_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_pool_params *p)
{
    TB_CUDA_OP_RETURN(maxpool_forward(be, y, x, p), "maxpool_forward", "y", y, "x", x, NULL, NULL, NULL, NULL);
}

static int maxpool_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *x,
                            const tb_pool_params *p)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    if (!dx || !dx->data)
        return TB_OK;
    tb_pool_geom g = tb_pool_geom_make(x, dy, p);
    int64_t n = tb_numel(x);
    if (n == 0)
        return TB_OK;
    TB_TRY(tb_dispatch_float(x->dtype, "maxpool_backward", [&](auto tag) {
        using T = typename decltype(tag)::type;
        maxpool_backward_kernel<T><<<tb_cuda_blocks(ctx, n), TB_CUDA_THREADS, 0, ctx->stream>>>(
            (T *)dx->data, (const T *)dy->data, (const T *)x->data, g);
        return TB_OK;
    }));
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

/* y is not needed: the argmax is recomputed from x (ops.h). */
int tb_cuda_maxpool_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *y,
                             const tb_tensor *x, const tb_pool_params *p)
{
    (void)y;
    TB_CUDA_OP_RETURN(maxpool_backward(be, dx, dy, x, p), "maxpool_backward", "dx", dx, "dy", dy, "x", x, NULL,
                      NULL);
}
