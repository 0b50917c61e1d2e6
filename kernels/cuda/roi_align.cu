/* RoIAlign (NHWC) with torchvision's semantics: RoI r of image rois[r, 0]
 * is (x1, y1, x2, y2) * spatial_scale (minus half a pixel when aligned;
 * legacy mode forces a size of at least 1), cut into pooled_h x pooled_w
 * bins; each bin averages grid_h x grid_w bilinear samples (sampling_ratio,
 * or ceil(roi size / pooled size) when <= 0), a sample outside
 * [-1, size] being 0 and one in [-1, 0] clamped to the border, exactly as
 * torchvision's bilinear_interpolate. Arithmetic in f32 for every dtype.
 *
 * Forward: one thread per output element (r, ph, pw, c); neighbouring
 * threads read neighbouring channels. A RoI the CPU rejects (roi_is_valid)
 * makes its outputs NaN (the device cannot return an error; the trainer's
 * divergence check reports it), and the backward skips such a RoI.
 *
 * Backward: the transpose scatters dy * weight / count to the four taps of
 * every sample with atomicAdd, as torchvision does. Accumulation is in f32
 * for every dtype:
 *  - f32 dx: atomics straight into dx;
 *  - f16 / bf16 dx: atomics into an f32 copy of a slab of dx (a range of
 *    images, or of channels of one image, that fits the backend's reduction
 *    scratch), zeroed first and then added to dx with one rounding per
 *    element. Atomics on __half / __nv_bfloat16 would round every one of the
 *    many contributions a feature pixel receives (8 significant bits in
 *    bf16), far from the CPU reference's single rounding; this matches it and
 *    what PyTorch's autocast does (roi_align runs in f32 there).
 * Float atomics make the summation order, and so the last bits of dx, vary
 * from run to run (torchvision's kernel is non-deterministic too). */
#include <math.h>

#include "kernels/cuda/cuda_common.cuh"

typedef struct roi_geom {
    int64_t n, h, w, c;    /* feature map x / dx */
    int64_t r, ph, pw;     /* RoIs and bins of y / dy */
    float scale;
    int sampling;
    bool aligned;
} roi_geom;

/* Part of dx accumulated by one backward pass: images [n0, n1), channels
 * [c0, c0 + cc), stored as {n1 - n0, h, w, cc}. */
typedef struct roi_slab {
    int64_t n0, n1, c0, cc;
} roi_slab;

/* One RoI in feature coordinates. */
typedef struct roi_box {
    int64_t b;             /* image; -1 when the index is not in [0, n) */
    float y0, x0;          /* top-left corner */
    float bin_h, bin_w;
    int grid_h, grid_w;    /* samples per bin and axis */
    float count;           /* divisor of a bin: max(grid_h * grid_w, 1) */
} roi_box;

/* The CPU's rejections (kernels/cpu/roi_align.c), which the device turns
 * into NaN outputs: an image index that is not an integer in [0, n), a
 * non-finite corner, or an adaptive grid of more than ROI_MAX_GRID samples
 * per bin axis (an inf corner would otherwise make ceilf give INT_MAX
 * iterations per thread). Same expressions as the CPU's check. */
#define ROI_MAX_GRID 1024.0f

__device__ __forceinline__ bool roi_is_valid(const float *roi, const roi_geom g)
{
    float bf = roi[0];
    if (!(bf >= 0.0f && bf < (float)g.n && bf == floorf(bf)))
        return false;
    for (int k = 1; k < 5; k++)
        if (!isfinite(roi[k]))
            return false;
    if (g.sampling > 0)
        return true;
    float gh = __fdiv_rn(__fmul_rn(fabsf(__fsub_rn(roi[4], roi[2])), g.scale), (float)g.ph);
    float gw = __fdiv_rn(__fmul_rn(fabsf(__fsub_rn(roi[3], roi[1])), g.scale), (float)g.pw);
    return gh <= ROI_MAX_GRID && gw <= ROI_MAX_GRID;
}

__device__ __forceinline__ roi_box roi_box_of(const float *roi, const roi_geom g)
{
    roi_box rb;
    rb.b = roi_is_valid(roi, g) ? (int64_t)roi[0] : -1;
    if (rb.b < 0) { /* no geometry: callers skip the RoI (NaN outputs, no gradient) */
        rb.x0 = rb.y0 = rb.bin_h = rb.bin_w = 0.0f;
        rb.grid_h = rb.grid_w = 0;
        rb.count = 1.0f;
        return rb;
    }
    /* _rn intrinsics: no fused multiply-add, so the geometry (and the grid
     * size ceilf derives from it) is bitwise the CPU's */
    float off = g.aligned ? 0.5f : 0.0f;
    rb.x0 = __fsub_rn(__fmul_rn(roi[1], g.scale), off);
    rb.y0 = __fsub_rn(__fmul_rn(roi[2], g.scale), off);
    float rw = __fsub_rn(__fsub_rn(__fmul_rn(roi[3], g.scale), off), rb.x0);
    float rh = __fsub_rn(__fsub_rn(__fmul_rn(roi[4], g.scale), off), rb.y0);
    if (!g.aligned) {
        rw = fmaxf(rw, 1.0f);
        rh = fmaxf(rh, 1.0f);
    }
    rb.bin_h = __fdiv_rn(rh, (float)g.ph);
    rb.bin_w = __fdiv_rn(rw, (float)g.pw);
    rb.grid_h = g.sampling > 0 ? g.sampling : (int)ceilf(rb.bin_h);
    rb.grid_w = g.sampling > 0 ? g.sampling : (int)ceilf(rb.bin_w);
    int cnt = rb.grid_h * rb.grid_w;
    rb.count = (float)(cnt > 1 ? cnt : 1);
    return rb;
}

/* Coordinate of sample i of bin p along one axis (torchvision's expression),
 * rounded step by step as the CPU's C (a sample exactly on the border of
 * [-1, size] must fall on the same side). */
__device__ __forceinline__ float sample_at(float start, float bin, int64_t p, int i, int grid)
{
    float in_bin = __fdiv_rn(__fmul_rn(__fadd_rn((float)i, 0.5f), bin), (float)grid);
    return __fadd_rn(__fadd_rn(start, __fmul_rn((float)p, bin)), in_bin);
}

/* The four taps of a bilinear sample at (y, x): positions (y * w + x) in
 * pos[0..3] and weights in wt[0..3]; false when the sample is outside
 * [-1, h] x [-1, w] (it is 0 and has no gradient). */
__device__ __forceinline__ bool bilinear_taps(float y, float x, int64_t h, int64_t w, int64_t pos[4], float wt[4])
{
    if (y < -1.0f || y > (float)h || x < -1.0f || x > (float)w)
        return false;
    y = y <= 0.0f ? 0.0f : y;
    x = x <= 0.0f ? 0.0f : x;
    int64_t yl = (int64_t)y, xl = (int64_t)x, yh, xh;
    if (yl >= h - 1) {
        yh = yl = h - 1;
        y = (float)yl;
    } else {
        yh = yl + 1;
    }
    if (xl >= w - 1) {
        xh = xl = w - 1;
        x = (float)xl;
    } else {
        xh = xl + 1;
    }
    float ly = y - (float)yl, lx = x - (float)xl, hy = 1.0f - ly, hx = 1.0f - lx;
    pos[0] = yl * w + xl;
    pos[1] = yl * w + xh;
    pos[2] = yh * w + xl;
    pos[3] = yh * w + xh;
    wt[0] = hy * hx;
    wt[1] = hy * lx;
    wt[2] = ly * hx;
    wt[3] = ly * lx;
    return true;
}

/* ---------------------------------------------------------------- kernels */

template <typename T>
static __global__ void roi_align_forward_kernel(T *y, const T *x, const float *rois, const roi_geom g)
{
    TB_GRID_STRIDE_LOOP(i, g.r * g.ph * g.pw * g.c)
    {
        int64_t c = i % g.c, t = i / g.c;
        int64_t pw = t % g.pw;
        t /= g.pw;
        int64_t ph = t % g.ph, r = t / g.ph;
        roi_box rb = roi_box_of(rois + r * 5, g);
        if (rb.b < 0) {
            y[i] = tb_from_f32<T>(NAN);
            continue;
        }
        const T *xb = x + rb.b * g.h * g.w * g.c + c;
        float s = 0.0f;
        for (int iy = 0; iy < rb.grid_h; iy++) {
            float yy = sample_at(rb.y0, rb.bin_h, ph, iy, rb.grid_h);
            for (int ix = 0; ix < rb.grid_w; ix++) {
                float xx = sample_at(rb.x0, rb.bin_w, pw, ix, rb.grid_w);
                int64_t pos[4];
                float wt[4];
                if (bilinear_taps(yy, xx, g.h, g.w, pos, wt))
                    s += wt[0] * tb_f32(xb[pos[0] * g.c]) + wt[1] * tb_f32(xb[pos[1] * g.c]) +
                         wt[2] * tb_f32(xb[pos[2] * g.c]) + wt[3] * tb_f32(xb[pos[3] * g.c]);
            }
        }
        y[i] = tb_from_f32<T>(s / rb.count);
    }
}

/* acc {n1 - n0, h, w, cc} (f32) += the transpose of the forward for the
 * slab's images and channels; one thread per (r, ph, pw, channel of the slab). */
template <typename T>
static __global__ void roi_align_scatter_kernel(float *acc, const T *dy, const float *rois, const roi_geom g,
                                                const roi_slab s)
{
    TB_GRID_STRIDE_LOOP(i, g.r * g.ph * g.pw * s.cc)
    {
        int64_t cs = i % s.cc, t = i / s.cc;
        int64_t pw = t % g.pw;
        t /= g.pw;
        int64_t ph = t % g.ph, r = t / g.ph;
        roi_box rb = roi_box_of(rois + r * 5, g);
        if (rb.b < s.n0 || rb.b >= s.n1) /* another slab's image, or an invalid index */
            continue;
        float gr = tb_f32(dy[((r * g.ph + ph) * g.pw + pw) * g.c + s.c0 + cs]) / rb.count;
        if (gr == 0.0f)
            continue;
        float *ab = acc + (rb.b - s.n0) * g.h * g.w * s.cc + cs;
        for (int iy = 0; iy < rb.grid_h; iy++) {
            float yy = sample_at(rb.y0, rb.bin_h, ph, iy, rb.grid_h);
            for (int ix = 0; ix < rb.grid_w; ix++) {
                float xx = sample_at(rb.x0, rb.bin_w, pw, ix, rb.grid_w);
                int64_t pos[4];
                float wt[4];
                if (!bilinear_taps(yy, xx, g.h, g.w, pos, wt))
                    continue;
                for (int k = 0; k < 4; k++)
                    atomicAdd(ab + pos[k] * s.cc, wt[k] * gr);
            }
        }
    }
}

/* dx[slab] += acc, rounded once per element. */
template <typename T>
static __global__ void slab_add_kernel(T *dx, const float *acc, const roi_geom g, const roi_slab s)
{
    TB_GRID_STRIDE_LOOP(i, (s.n1 - s.n0) * g.h * g.w * s.cc)
    {
        int64_t cs = i % s.cc, pix = i / s.cc; /* pix: (image - n0) * h * w + position */
        int64_t e = (s.n0 * g.h * g.w + pix) * g.c + s.c0 + cs;
        dx[e] = tb_from_f32<T>(tb_f32(dx[e]) + acc[i]);
    }
}

/* ---------------------------------------------------------------- launchers */

static roi_geom roi_geom_make(const tb_tensor *x, const tb_tensor *y, const tb_roi_align_params *p)
{
    roi_geom g;
    g.n = x->shape[0];
    g.h = x->shape[1];
    g.w = x->shape[2];
    g.c = x->shape[3];
    g.r = y->shape[0];
    g.ph = p->pooled_h;
    g.pw = p->pooled_w;
    g.scale = p->spatial_scale;
    g.sampling = p->sampling_ratio;
    g.aligned = p->aligned;
    return g;
}

static int roi_align_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *rois,
                             const tb_roi_align_params *p)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    roi_geom g = roi_geom_make(x, y, p);
    int64_t total = tb_numel(y);
    if (total == 0)
        return TB_OK;
    TB_TRY(tb_dispatch_float(x->dtype, "roi_align_forward", [&](auto tag) {
        using T = typename decltype(tag)::type;
        roi_align_forward_kernel<T><<<tb_cuda_blocks(ctx, total), TB_CUDA_THREADS, 0, ctx->stream>>>(
            (T *)y->data, (const T *)x->data, (const float *)rois->data, g);
        return TB_OK;
    }));
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_roi_align_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *rois,
                              const tb_roi_align_params *p)
{
    TB_CUDA_OP_RETURN(roi_align_forward(be, y, x, rois, p), "roi_align_forward", "y", y, "x", x, "rois", rois, NULL,
                      NULL);
}

/* One scatter pass over slab s into acc (f32). */
template <typename T>
static int scatter_slab(tb_cuda_ctx *ctx, float *acc, const T *dy, const float *rois, const roi_geom &g,
                        const roi_slab &s)
{
    int64_t threads = g.r * g.ph * g.pw * s.cc;
    roi_align_scatter_kernel<T><<<tb_cuda_blocks(ctx, threads), TB_CUDA_THREADS, 0, ctx->stream>>>(acc, dy, rois, g,
                                                                                                   s);
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

/* Low-precision dx: slabs of whole images when one image fits the scratch,
 * else channel ranges of one image (see the header comment). */
template <typename T>
static int backward_by_slabs(tb_cuda_ctx *ctx, T *dx, const T *dy, const float *rois, const roi_geom &g)
{
    const int64_t cap = (int64_t)TB_CUDA_REDUCE_ELEMS, hw = g.h * g.w;
    TB_CHECK(hw <= cap, TB_ERR_UNSUPPORTED,
             "roi_align_backward: a %lldx%lld feature map exceeds the f32 accumulation scratch (%lld positions)",
             (long long)g.h, (long long)g.w, (long long)cap);
    int64_t images = hw * g.c <= cap ? cap / (hw * g.c) : 1;
    int64_t cc = hw * g.c <= cap ? g.c : cap / hw;
    for (int64_t n0 = 0; n0 < g.n; n0 += images) {
        for (int64_t c0 = 0; c0 < g.c; c0 += cc) {
            roi_slab s;
            s.n0 = n0;
            s.n1 = n0 + images < g.n ? n0 + images : g.n;
            s.c0 = c0;
            s.cc = c0 + cc < g.c ? cc : g.c - c0;
            int64_t elems = (s.n1 - s.n0) * hw * s.cc;
            CUDA_CHECK(cudaMemsetAsync(ctx->reduce, 0, (size_t)elems * sizeof(float), ctx->stream));
            TB_TRY(scatter_slab(ctx, ctx->reduce, dy, rois, g, s));
            slab_add_kernel<T><<<tb_cuda_blocks(ctx, elems), TB_CUDA_THREADS, 0, ctx->stream>>>(dx, ctx->reduce, g, s);
            CUDA_CHECK_LAUNCH();
        }
    }
    return TB_OK;
}

static int roi_align_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *rois,
                              const tb_roi_align_params *p)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    if (!dx || !dx->data || tb_numel(dy) == 0 || tb_numel(dx) == 0)
        return TB_OK;
    roi_geom g = roi_geom_make(dx, dy, p);
    const float *r = (const float *)rois->data;
    if (dx->dtype == TB_F32) {
        roi_slab whole = {0, g.n, 0, g.c}; /* the slab is dx itself */
        return scatter_slab(ctx, (float *)dx->data, (const float *)dy->data, r, g, whole);
    }
    return tb_dispatch_float(dx->dtype, "roi_align_backward", [&](auto tag) {
        using T = typename decltype(tag)::type;
        return backward_by_slabs<T>(ctx, (T *)dx->data, (const T *)dy->data, r, g);
    });
}

int tb_cuda_roi_align_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *rois,
                               const tb_roi_align_params *p)
{
    TB_CUDA_OP_RETURN(roi_align_backward(be, dx, dy, rois, p), "roi_align_backward", "dx", dx, "dy", dy, "rois",
                      rois, NULL, NULL);
}
