/* Pooling windows with PyTorch's rules, shared by maxpool.cu and avgpool.cu.
 * Output sizes come from the y / dy tensors (the front-end computed them
 * with tb_pool_out_size, ceil mode included); a window is
 * [o * stride - pad, o * stride - pad + kernel) clipped to the input, and an
 * average divides by the window size clipped to the padded input
 * (count_include_pad) or to the input itself.
 *
 * Index type I: the kernels split a flat index into (n, h, w, c) with a
 * division and a modulo per coordinate, which in 64 bits is a long software
 * sequence on the GPU; tb_pool_launch runs them with 32-bit indices whenever
 * every tensor of the op has fewer than 2^31 elements (all of ImageNet-size
 * training), 64-bit otherwise. */
#ifndef TB_CUDA_POOL_WINDOW_CUH
#define TB_CUDA_POOL_WINDOW_CUH

#include <limits.h>

#include "kernels/cuda/cuda_common.cuh"

template <typename I> struct tb_pool_geom {
    I n, h, w, c, oh, ow;
    I kh, kw, sh, sw, ph, pw;
    bool include_pad;
};

template <typename I>
static inline tb_pool_geom<I> tb_pool_geom_make(const tb_tensor *x, const tb_tensor *y, const tb_pool_params *p)
{
    tb_pool_geom<I> g;
    g.n = (I)x->shape[0];
    g.h = (I)x->shape[1];
    g.w = (I)x->shape[2];
    g.c = (I)x->shape[3];
    g.oh = (I)y->shape[1];
    g.ow = (I)y->shape[2];
    g.kh = (I)p->kernel_h;
    g.kw = (I)p->kernel_w;
    g.sh = (I)p->stride_h;
    g.sw = (I)p->stride_w;
    g.ph = (I)p->pad_h;
    g.pw = (I)p->pad_w;
    g.include_pad = p->count_include_pad;
    return g;
}

/* Window of output o along one axis, clipped to [0, in). */
template <typename I> TB_HD void tb_pool_window(I o, I k, I s, I pad, I in, I *start, I *end)
{
    I a = o * s - pad, b = a + k;
    *start = a > 0 ? a : 0;
    *end = b < in ? b : in;
}

/* Window size along one axis clipped to the padded input [-pad, in + pad). */
template <typename I> TB_HD I tb_pool_padded_len(I o, I k, I s, I pad, I in)
{
    I a = o * s - pad, b = a + k;
    if (b > in + pad)
        b = in + pad;
    return b - a;
}

/* Outputs whose window covers input index i along one axis: [*lo, *hi]. */
template <typename I> TB_HD void tb_pool_outputs_of(I i, I k, I s, I pad, I out, I *lo, I *hi)
{
    I first = i + pad - k + 1; /* smallest o * s that still reaches i */
    *lo = first <= 0 ? 0 : (first + s - 1) / s;
    I last = (i + pad) / s;
    *hi = last < out - 1 ? last : out - 1;
}

/* (n, h, w, c) of flat NHWC index i of an n x h x w x c tensor. */
template <typename I> TB_HD void tb_pool_split(I i, I h, I w, I c, I *ni, I *hi, I *wi, I *ci)
{
    I t = i / c;
    *ci = i - t * c;
    I t2 = t / w;
    *wi = t - t2 * w;
    *ni = t2 / h;
    *hi = t2 - *ni * h;
}

/* Output element i (NHWC flat index of y) and its window [h0, h1) x [w0, w1) of x. */
template <typename I> struct tb_pool_out_at {
    I n, oh, ow, c, h0, h1, w0, w1;
};
template <typename I> TB_HD tb_pool_out_at<I> tb_pool_output(I i, const tb_pool_geom<I> &g)
{
    tb_pool_out_at<I> o;
    tb_pool_split<I>(i, g.oh, g.ow, g.c, &o.n, &o.oh, &o.ow, &o.c);
    tb_pool_window<I>(o.oh, g.kh, g.sh, g.ph, g.h, &o.h0, &o.h1);
    tb_pool_window<I>(o.ow, g.kw, g.sw, g.pw, g.w, &o.w0, &o.w1);
    return o;
}

/* Input element i (NHWC flat index of x) and the outputs whose windows
 * cover it, [oh0, oh1] x [ow0, ow1]. */
template <typename I> struct tb_pool_in_at {
    I n, ih, iw, c, oh0, oh1, ow0, ow1;
};
template <typename I> TB_HD tb_pool_in_at<I> tb_pool_input(I i, const tb_pool_geom<I> &g)
{
    tb_pool_in_at<I> a;
    tb_pool_split<I>(i, g.h, g.w, g.c, &a.n, &a.ih, &a.iw, &a.c);
    tb_pool_outputs_of<I>(a.ih, g.kh, g.sh, g.ph, g.oh, &a.oh0, &a.oh1);
    tb_pool_outputs_of<I>(a.iw, g.kw, g.sw, g.pw, g.ow, &a.ow0, &a.ow1);
    return a;
}

#define TB_POOL_LOOP(I, i, n) \
    for (I i = (I)(blockIdx.x * blockDim.x + threadIdx.x); i < (n); i += (I)(gridDim.x * blockDim.x))

static inline int64_t tb_pool_max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Calls f(tag<I>) with I = int32_t when every index stays below 2^31: a
 * flat index below the larger tensor's size plus the grid (the grid-stride
 * loop's last step), and the window arithmetic's intermediates (o * stride
 * + kernel, i + pad, ...) below the largest side + kernel + stride + 2 pad;
 * else I = int64_t. */
template <typename F>
static inline int tb_pool_launch(tb_cuda_ctx *ctx, const tb_tensor *x, const tb_tensor *y, const tb_pool_params *p,
                                 F &&f)
{
    int64_t most = tb_pool_max64(tb_numel(x), tb_numel(y));
    int64_t grid = (int64_t)tb_cuda_blocks(ctx, most) * TB_CUDA_THREADS;
    int64_t side = tb_pool_max64(tb_pool_max64(x->shape[1], x->shape[2]), tb_pool_max64(y->shape[1], y->shape[2]));
    int64_t window = side + tb_pool_max64(p->kernel_h, p->kernel_w) + tb_pool_max64(p->stride_h, p->stride_w) +
                     2 * tb_pool_max64(p->pad_h, p->pad_w);
    if (most + grid < INT_MAX && window < INT_MAX)
        return f(tb_type_tag<int32_t>{});
    return f(tb_type_tag<int64_t>{});
}

#endif
