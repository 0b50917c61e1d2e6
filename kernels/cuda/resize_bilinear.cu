/* Bilinear resize of NHWC tensors, align_corners = false (PyTorch's
 * F.interpolate(mode="bilinear", align_corners=False)); the rule is in
 * kernels/cpu/resize_bilinear.c, the reference. Along each axis, output
 * position o samples src = scale * (o + 0.5) - 0.5 (scale = in / out),
 * clamped below at 0, between taps lo = floor(src) and hi = min(lo + 1,
 * in - 1). The taps are computed with explicitly rounded f32 operations
 * (no fused multiply-add), so they are bit for bit the CPU's and the same in
 * the launchers' host code, which plans the backward's slabs with them.
 * Arithmetic in f32 for every dtype.
 *
 * Forward: one thread per output element (b, i, j, c); neighbouring threads
 * read neighbouring channels.
 *
 * Backward: one thread per dy element adds dy * wy * wx to its four taps
 * with f32 atomicAdd (PyTorch's upsample_bilinear2d_backward does the same):
 *  - f32 dx: atomics straight into dx;
 *  - f16 / bf16 dx: atomics into an f32 copy of a slab of dx in the
 *    backend's reduction scratch (whole images when they fit, else bands of
 *    rows of one image with every channel, else single channels of a band),
 *    zeroed first and added to dx with one rounding per element, as
 *    roi_align.cu does and as the CPU does. Each slab's pass covers only the
 *    dy rows whose taps reach the band.
 * Float atomics make the summation order, and so the last bits of dx, vary
 * from run to run (as PyTorch's kernel). */
#include "kernels/cuda/cuda_common.cuh"

typedef struct rs_geom {
    int64_t n, h, w, c; /* x / dx */
    int64_t oh, ow;     /* y / dy */
    float scale_h, scale_w;
} rs_geom;

/* Part of dx accumulated by one backward pass: images [n0, n1), rows
 * [r0, r1), channels [c0, c0 + cc), stored as {n1 - n0, r1 - r0, w, cc};
 * the pass runs over dy rows [i0, i1). */
typedef struct rs_slab {
    int64_t n0, n1, r0, r1, c0, cc, i0, i1;
} rs_slab;

typedef struct rs_tap {
    int64_t lo, hi;
    float wlo, whi;
} rs_tap;

static TB_HD rs_tap rs_tap_at(int64_t o, int64_t in, float scale)
{
#ifdef __CUDA_ARCH__
    float src = __fsub_rn(__fmul_rn(scale, __fadd_rn((float)o, 0.5f)), 0.5f);
#else
    float src = scale * ((float)o + 0.5f) - 0.5f; /* x86-64 host code: no FMA contraction */
#endif
    src = src < 0.0f ? 0.0f : src;
    rs_tap t;
    t.lo = (int64_t)src;
    t.hi = t.lo < in - 1 ? t.lo + 1 : t.lo;
    t.whi = src - (float)t.lo;
    t.wlo = 1.0f - t.whi;
    return t;
}

/* ---------------------------------------------------------------- kernels */

template <typename T>
static __global__ void resize_forward_kernel(T *y, const T *x, const rs_geom g)
{
    TB_GRID_STRIDE_LOOP(e, g.n * g.oh * g.ow * g.c)
    {
        int64_t ch = e % g.c, t = e / g.c;
        int64_t j = t % g.ow;
        t /= g.ow;
        int64_t i = t % g.oh, b = t / g.oh;
        rs_tap ty = rs_tap_at(i, g.h, g.scale_h), tx = rs_tap_at(j, g.w, g.scale_w);
        const T *xb = x + b * g.h * g.w * g.c + ch;
        float x00 = tb_f32(xb[(ty.lo * g.w + tx.lo) * g.c]), x01 = tb_f32(xb[(ty.lo * g.w + tx.hi) * g.c]);
        float x10 = tb_f32(xb[(ty.hi * g.w + tx.lo) * g.c]), x11 = tb_f32(xb[(ty.hi * g.w + tx.hi) * g.c]);
        y[e] = tb_from_f32<T>(ty.wlo * (tx.wlo * x00 + tx.whi * x01) + ty.whi * (tx.wlo * x10 + tx.whi * x11));
    }
}

/* acc (the slab's f32 copy of dx) += the transpose of the forward for the
 * slab's images, rows and channels; one thread per dy element of rows [i0, i1). */
template <typename T>
static __global__ void resize_scatter_kernel(float *acc, const T *dy, const rs_geom g, const rs_slab s)
{
    int64_t rows = s.i1 - s.i0, band = s.r1 - s.r0;
    TB_GRID_STRIDE_LOOP(e, (s.n1 - s.n0) * rows * g.ow * s.cc)
    {
        int64_t cs = e % s.cc, t = e / s.cc;
        int64_t j = t % g.ow;
        t /= g.ow;
        int64_t i = s.i0 + t % rows, b = s.n0 + t / rows;
        float gr = tb_f32(dy[((b * g.oh + i) * g.ow + j) * g.c + s.c0 + cs]);
        rs_tap ty = rs_tap_at(i, g.h, g.scale_h), tx = rs_tap_at(j, g.w, g.scale_w);
        float *ab = acc + (b - s.n0) * band * g.w * s.cc + cs;
        const int64_t ys[2] = {ty.lo, ty.hi}, xs[2] = {tx.lo, tx.hi};
        const float wy[2] = {ty.wlo, ty.whi}, wx[2] = {tx.wlo, tx.whi};
        for (int a = 0; a < 2; a++) {
            if (ys[a] < s.r0 || ys[a] >= s.r1) /* a row of another band */
                continue;
            float *arow = ab + (ys[a] - s.r0) * g.w * s.cc;
            for (int k = 0; k < 2; k++)
                atomicAdd(arow + xs[k] * s.cc, wy[a] * wx[k] * gr);
        }
    }
}

/* dx[slab] += acc, rounded once per element. */
template <typename T>
static __global__ void slab_add_kernel(T *dx, const float *acc, const rs_geom g, const rs_slab s)
{
    int64_t band = s.r1 - s.r0;
    TB_GRID_STRIDE_LOOP(e, (s.n1 - s.n0) * band * g.w * s.cc)
    {
        int64_t cs = e % s.cc, pix = e / s.cc; /* pix: ((image - n0) * band + row - r0) * w + column */
        int64_t col = pix % g.w, t = pix / g.w;
        int64_t row = s.r0 + t % band, b = s.n0 + t / band;
        int64_t d = ((b * g.h + row) * g.w + col) * g.c + s.c0 + cs;
        dx[d] = tb_from_f32<T>(tb_f32(dx[d]) + acc[e]);
    }
}

/* ---------------------------------------------------------------- launchers */

static rs_geom rs_geom_make(const tb_tensor *x, const tb_tensor *y)
{
    rs_geom g;
    g.n = x->shape[0];
    g.h = x->shape[1];
    g.w = x->shape[2];
    g.c = x->shape[3];
    g.oh = y->shape[1];
    g.ow = y->shape[2];
    g.scale_h = (float)g.h / (float)g.oh;
    g.scale_w = (float)g.w / (float)g.ow;
    return g;
}

static int resize_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    rs_geom g = rs_geom_make(x, y);
    int64_t total = tb_numel(y);
    TB_TRY(tb_dispatch_float(x->dtype, "resize_bilinear_forward", [&](auto tag) {
        using T = typename decltype(tag)::type;
        resize_forward_kernel<T><<<tb_cuda_blocks(ctx, total), TB_CUDA_THREADS, 0, ctx->stream>>>(
            (T *)y->data, (const T *)x->data, g);
        return TB_OK;
    }));
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_resize_bilinear_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x)
{
    TB_CUDA_OP_RETURN(resize_forward(be, y, x), "resize_bilinear_forward", "y", y, "x", x, NULL, NULL, NULL, NULL);
}

/* First output position in [0, out) whose taps reach input k or beyond
 * (past = false), or start beyond k (past = true); out when there is none
 * (the taps are non-decreasing in the position). */
static int64_t rs_first(int64_t k, int64_t in, int64_t out, float scale, bool past)
{
    int64_t lo = 0, hi = out;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        rs_tap t = rs_tap_at(mid, in, scale);
        if (past ? t.lo > k : t.hi >= k)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* One scatter pass over slab s into acc (f32). */
template <typename T>
static int scatter_slab(tb_cuda_ctx *ctx, float *acc, const T *dy, const rs_geom &g, const rs_slab &s)
{
    int64_t threads = (s.n1 - s.n0) * (s.i1 - s.i0) * g.ow * s.cc;
    if (threads == 0) /* a band that downsampling skips entirely */
        return TB_OK;
    resize_scatter_kernel<T><<<tb_cuda_blocks(ctx, threads), TB_CUDA_THREADS, 0, ctx->stream>>>(acc, dy, g, s);
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

/* Low-precision dx: slabs that fit the f32 scratch (see the header comment). */
template <typename T>
static int backward_by_slabs(tb_cuda_ctx *ctx, T *dx, const T *dy, const rs_geom &g)
{
    const int64_t cap = (int64_t)TB_CUDA_REDUCE_ELEMS;
    TB_CHECK(g.w <= cap, TB_ERR_UNSUPPORTED,
             "resize_bilinear_backward: a row of %lld pixels exceeds the f32 accumulation scratch (%lld values)",
             (long long)g.w, (long long)cap);
    int64_t cc = g.w * g.c <= cap ? g.c : cap / g.w;
    int64_t band = g.h * g.w * cc <= cap ? g.h : cap / (g.w * cc);
    int64_t images = band == g.h ? cap / (g.h * g.w * cc) : 1;
    for (int64_t n0 = 0; n0 < g.n; n0 += images)
        for (int64_t r0 = 0; r0 < g.h; r0 += band)
            for (int64_t c0 = 0; c0 < g.c; c0 += cc) {
                rs_slab s;
                s.n0 = n0;
                s.n1 = n0 + images < g.n ? n0 + images : g.n;
                s.r0 = r0;
                s.r1 = r0 + band < g.h ? r0 + band : g.h;
                s.c0 = c0;
                s.cc = c0 + cc < g.c ? cc : g.c - c0;
                s.i0 = rs_first(s.r0, g.h, g.oh, g.scale_h, false);
                s.i1 = rs_first(s.r1 - 1, g.h, g.oh, g.scale_h, true);
                int64_t elems = (s.n1 - s.n0) * (s.r1 - s.r0) * g.w * s.cc;
                CUDA_CHECK(cudaMemsetAsync(ctx->reduce, 0, (size_t)elems * sizeof(float), ctx->stream));
                TB_TRY(scatter_slab(ctx, ctx->reduce, dy, g, s));
                slab_add_kernel<T><<<tb_cuda_blocks(ctx, elems), TB_CUDA_THREADS, 0, ctx->stream>>>(dx, ctx->reduce,
                                                                                                   g, s);
                CUDA_CHECK_LAUNCH();
            }
    return TB_OK;
}

static int resize_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    rs_geom g = rs_geom_make(dx, dy);
    if (dx->dtype == TB_F32) {
        rs_slab whole = {0, g.n, 0, g.h, 0, g.c, 0, g.oh}; /* the slab is dx itself */
        return scatter_slab(ctx, (float *)dx->data, (const float *)dy->data, g, whole);
    }
    return tb_dispatch_float(dx->dtype, "resize_bilinear_backward", [&](auto tag) {
        using T = typename decltype(tag)::type;
        return backward_by_slabs<T>(ctx, (T *)dx->data, (const T *)dy->data, g);
    });
}

int tb_cuda_resize_bilinear_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy)
{
    TB_CUDA_OP_RETURN(resize_backward(be, dx, dy), "resize_bilinear_backward", "dx", dx, "dy", dy, NULL, NULL, NULL,
                      NULL);
}
