/* Max pooling (NHWC), PyTorch semantics: windows clipped to the input
 * (padding never wins), NaN propagates, the backward routes each output
 * gradient to the first maximum of its window (in row-major window order).
 * The backward gathers: each input element looks at the few windows that
 * cover it and takes the gradient of those whose first maximum it is, in
 * a fixed order, so no atomics are needed. The forward's output y tells the
 * maximum (the graph keeps y for this backward); only an element equal to
 * it scans the window for an earlier equal one, so the common element (not
 * a maximum) costs a comparison per covering window. */
#include "kernels/cuda/pool_window.cuh"

/* Whether v is the maximum m a window's forward picked (a NaN picks NaN). */
__device__ __forceinline__ bool is_window_max(float v, float m) { return v == m || (isnan(v) && isnan(m)); }

/* The forward's scan of output o's window over xc (x at its image and
 * channel): a pixel replaces the best only when greater, or NaN over a number. */
template <typename T, typename I>
__device__ __forceinline__ float window_max(const T *xc, const tb_pool_geom<I> &g, const tb_pool_out_at<I> &o)
{
    float m = -INFINITY;
    for (I ih = o.h0; ih < o.h1; ih++) {
        for (I iw = o.w0; iw < o.w1; iw++) {
            float v = tb_f32(xc[(ih * g.w + iw) * g.c]);
            if (v > m || (isnan(v) && !isnan(m)))
                m = v;
        }
    }
    return m;
}

/* Whether pixel (ih, iw), which holds the window's maximum m, is its first:
 * no pixel before it in the window's row-major order holds m. */
template <typename T, typename I>
__device__ __forceinline__ bool first_max_at(const T *xc, const tb_pool_geom<I> &g, I oh, I ow, I ih, I iw, float m)
{
    I h0, h1, w0, w1;
    tb_pool_window<I>(oh, g.kh, g.sh, g.ph, g.h, &h0, &h1);
    tb_pool_window<I>(ow, g.kw, g.sw, g.pw, g.w, &w0, &w1);
    for (I h = h0; h <= ih; h++) {
        I end = h == ih ? iw : w1;
        for (I w = w0; w < end; w++)
            if (is_window_max(tb_f32(xc[(h * g.w + w) * g.c]), m))
                return false;
    }
    return true;
}

template <typename T, typename I> static __global__ void maxpool_forward_kernel(T *y, const T *x, const tb_pool_geom<I> g)
{
    I total = g.n * g.oh * g.ow * g.c;
    TB_POOL_LOOP(I, i, total)
    {
        tb_pool_out_at<I> o = tb_pool_output(i, g);
        y[i] = tb_from_f32<T>(window_max(x + o.n * g.h * g.w * g.c + o.c, g, o));
    }
}

template <typename T, typename I>
static __global__ void maxpool_backward_kernel(T *dx, const T *dy, const T *y, const T *x, const tb_pool_geom<I> g)
{
    I total = g.n * g.h * g.w * g.c;
    TB_POOL_LOOP(I, i, total)
    {
        tb_pool_in_at<I> a = tb_pool_input(i, g);
        const T *xc = x + a.n * g.h * g.w * g.c + a.c;
        float v = tb_f32(x[i]), acc = 0.0f;
        bool hit = false;
        for (I oh = a.oh0; oh <= a.oh1; oh++) {
            for (I ow = a.ow0; ow <= a.ow1; ow++) {
                I o = ((a.n * g.oh + oh) * g.ow + ow) * g.c + a.c;
                float m = tb_f32(y[o]);
                if (is_window_max(v, m) && first_max_at(xc, g, oh, ow, a.ih, a.iw, m)) {
                    acc += tb_f32(dy[o]);
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
    int64_t n = tb_numel(y);
    if (n == 0)
        return TB_OK;
    TB_TRY(tb_dispatch_float(x->dtype, "maxpool_forward", [&](auto tag) {
        using T = typename decltype(tag)::type;
        return tb_pool_launch(ctx, x, y, p, [&](auto itag) {
            using I = typename decltype(itag)::type;
            maxpool_forward_kernel<T, I><<<tb_cuda_blocks(ctx, n), TB_CUDA_THREADS, 0, ctx->stream>>>(
                (T *)y->data, (const T *)x->data, tb_pool_geom_make<I>(x, y, p));
            return TB_OK;
        });
    }));
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_maxpool_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_pool_params *p)
{
    TB_CUDA_OP_RETURN(maxpool_forward(be, y, x, p), "maxpool_forward", "y", y, "x", x, NULL, NULL, NULL, NULL);
}

static int maxpool_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *y,
                            const tb_tensor *x, const tb_pool_params *p)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    if (!dx || !dx->data)
        return TB_OK;
    int64_t n = tb_numel(x);
    if (n == 0)
        return TB_OK;
    TB_TRY(tb_dispatch_float(x->dtype, "maxpool_backward", [&](auto tag) {
        using T = typename decltype(tag)::type;
        return tb_pool_launch(ctx, x, dy, p, [&](auto itag) {
            using I = typename decltype(itag)::type;
            maxpool_backward_kernel<T, I><<<tb_cuda_blocks(ctx, n), TB_CUDA_THREADS, 0, ctx->stream>>>(
                (T *)dx->data, (const T *)dy->data, (const T *)y->data, (const T *)x->data,
                tb_pool_geom_make<I>(x, dy, p));
            return TB_OK;
        });
    }));
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_maxpool_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *y,
                             const tb_tensor *x, const tb_pool_params *p)
{
    TB_CUDA_OP_RETURN(maxpool_backward(be, dx, dy, y, x, p), "maxpool_backward", "dx", dx, "dy", dy, "y", y, "x",
                      x);
}
