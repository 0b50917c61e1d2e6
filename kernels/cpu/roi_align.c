/* RoIAlign on NHWC features (torchvision's roi_align, channels last).
 *
 * RoI r = (b, x1, y1, x2, y2) in input pixels maps to feature coordinates
 * start = x1 * spatial_scale - offset (offset 0.5 when aligned, else 0), size
 * = (x2 - x1) * spatial_scale, at least 1 when !aligned (the legacy rule).
 * Bin (ph, pw) has size size / pooled and a grid of gh x gw samples, gh =
 * sampling_ratio, or ceil(roi_h / pooled_h) when sampling_ratio <= 0; sample
 * (iy, ix) sits at start + ph * bin_h + (iy + 0.5) * bin_h / gh. The output is
 * the sum of the bilinear samples divided by max(gh * gw, 1).
 * Bilinear sampling (torchvision's bilinear_interpolate): a coordinate below
 * -1 or above the size gives a 0 sample; otherwise it is clamped at 0, and at
 * the last pixel the two taps coincide. Rows and columns are separable: a
 * sample's four weights are products of one y tap pair and one x tap pair.
 *
 * The RoIs are checked on the host before anything is written: the image
 * index must be an integer in [0, n), coordinates finite, and the adaptive
 * grid at most RA_MAX_GRID samples per axis (TB_ERR_INVALID naming the row).
 *
 * Forward: one task per (RoI, bin), channels in blocks of RA_CB (f16/bf16
 * pixels converted per block). Backward: dx += the same weights times dy /
 * count; threads split the CHANNELS (blocks of RA_BWD_CB), each walking every
 * RoI in order, so no two threads touch one dx element and the sum order is
 * fixed: bitwise reproducible for any thread count, no atomics. A f16/bf16 dx
 * is accumulated in f32 and rounded once: each thread copies its block's
 * channels of dx into its own f32 scratch {n*h*w, RA_BWD_CB}, accumulates
 * there and converts back. The scratch comes from the workspace
 * (min(threads, blocks) copies, reserved from tb_roi_align_workspace_size):
 * 128 bytes per pixel and thread where an f32 copy of dx takes 4 per
 * channel and pixel (1 MiB against 16 MiB for the 1024-channel map of two
 * 600x800 images at stride 16 with 2 threads).
 */
#include <math.h>
#include <omp.h>
#include <stdbool.h>

#include "kernels/cpu/box.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/error.h"

#define RA_CB 64
#define RA_BWD_CB 32
#define RA_MAX_GRID 1024

/* The geometry of one RoI. */
typedef struct ra_roi {
    int64_t b;
    float start_h, start_w, bin_h, bin_w;
    int grid_h, grid_w;
    float count;
} ra_roi;

/* One axis of a bilinear sample: taps lo, hi with weights wlo, whi; valid = 0 outside [-1, size]. */
typedef struct ra_tap {
    int64_t lo, hi;
    float wlo, whi;
    bool valid;
} ra_tap;

static ra_tap ra_axis(float v, int64_t size)
{
    ra_tap t = {0, 0, 0.0f, 0.0f, false};
    if (v < -1.0f || v > (float)size)
        return t;
    if (v <= 0.0f)
        v = 0.0f;
    t.lo = (int64_t)v;
    if (t.lo >= size - 1) {
        t.lo = t.hi = size - 1;
        v = (float)t.lo;
    } else {
        t.hi = t.lo + 1;
    }
    float l = v - (float)t.lo;
    t.wlo = 1.0f - l;
    t.whi = l;
    t.valid = true;
    return t;
}

static int ra_grid(float roi_size, int pooled, int sampling_ratio)
{
    return sampling_ratio > 0 ? sampling_ratio : (int)ceilf(roi_size / (float)pooled);
}

static ra_roi ra_geometry(const float *roi, const tb_roi_align_params *p)
{
    ra_roi g;
    float offset = p->aligned ? 0.5f : 0.0f;
    g.b = (int64_t)roi[0];
    g.start_w = roi[1] * p->spatial_scale - offset;
    g.start_h = roi[2] * p->spatial_scale - offset;
    float roi_w = roi[3] * p->spatial_scale - offset - g.start_w;
    float roi_h = roi[4] * p->spatial_scale - offset - g.start_h;
    if (!p->aligned) { /* legacy: a RoI is at least one feature pixel */
        roi_w = roi_w > 1.0f ? roi_w : 1.0f;
        roi_h = roi_h > 1.0f ? roi_h : 1.0f;
    }
    g.bin_h = roi_h / (float)p->pooled_h;
    g.bin_w = roi_w / (float)p->pooled_w;
    g.grid_h = ra_grid(roi_h, p->pooled_h, p->sampling_ratio);
    g.grid_w = ra_grid(roi_w, p->pooled_w, p->sampling_ratio);
    int cnt = g.grid_h * g.grid_w;
    g.count = (float)(cnt > 1 ? cnt : 1);
    return g;
}

static int ra_check_rois(const char *op, const tb_tensor *rois, int64_t n, const tb_roi_align_params *p)
{
    const float *rv = rois->data;
    for (int64_t r = 0; r < rois->shape[0]; r++) {
        const float *roi = rv + 5 * r;
        if (!(roi[0] >= 0.0f && roi[0] < (float)n && roi[0] == floorf(roi[0])))
            return tb_fail(TB_ERR_INVALID, "%s: RoI %lld has image index %g, not an integer in [0, %lld)", op,
                           (long long)r, (double)roi[0], (long long)n);
        for (int k = 1; k < 5; k++)
            if (!isfinite(roi[k]))
                return tb_fail(TB_ERR_INVALID, "%s: RoI %lld has a non-finite coordinate", op, (long long)r);
        if (p->sampling_ratio <= 0) {
            float scale = p->spatial_scale;
            float gh = fabsf(roi[4] - roi[2]) * scale / (float)p->pooled_h;
            float gw = fabsf(roi[3] - roi[1]) * scale / (float)p->pooled_w;
            if (gh > RA_MAX_GRID || gw > RA_MAX_GRID)
                return tb_fail(TB_ERR_INVALID,
                               "%s: RoI %lld (%g,%g,%g,%g) needs more than %d samples per bin axis at spatial_scale %g",
                               op, (long long)r, (double)roi[1], (double)roi[2], (double)roi[3], (double)roi[4],
                               RA_MAX_GRID, (double)scale);
        }
    }
    return TB_OK;
}

/* y at coordinate sample iy of bin ph */
static float ra_sample_y(const ra_roi *g, int ph, int iy)
{
    return g->start_h + (float)ph * g->bin_h + ((float)iy + 0.5f) * g->bin_h / (float)g->grid_h;
}

static float ra_sample_x(const ra_roi *g, int pw, int ix)
{
    return g->start_w + (float)pw * g->bin_w + ((float)ix + 0.5f) * g->bin_w / (float)g->grid_w;
}

/* acc[j] += w * x[pixel, c0 + j] for j < cb */
static void ra_gather(float *acc, const tb_tensor *x, int64_t pixel, int64_t c, int64_t c0, int64_t cb, float w)
{
    float tmp[RA_CB];
    const float *row = tb_cpu_load_row(tmp, x, pixel * c + c0, cb);
    for (int64_t j = 0; j < cb; j++)
        acc[j] += w * row[j];
}

/* Output bin (ph, pw) of RoI g for channels [c0, c0 + cb). */
static void ra_bin_forward(float *acc, const tb_tensor *x, const ra_roi *g, int ph, int pw, int64_t c0, int64_t cb)
{
    int64_t h = x->shape[1], w = x->shape[2], c = x->shape[3];
    int64_t base = g->b * h * w;
    for (int64_t j = 0; j < cb; j++)
        acc[j] = 0.0f;
    for (int iy = 0; iy < g->grid_h; iy++) {
        ra_tap ty = ra_axis(ra_sample_y(g, ph, iy), h);
        if (!ty.valid)
            continue;
        for (int ix = 0; ix < g->grid_w; ix++) {
            ra_tap tx = ra_axis(ra_sample_x(g, pw, ix), w);
            if (!tx.valid)
                continue;
            ra_gather(acc, x, base + ty.lo * w + tx.lo, c, c0, cb, ty.wlo * tx.wlo);
            ra_gather(acc, x, base + ty.lo * w + tx.hi, c, c0, cb, ty.wlo * tx.whi);
            ra_gather(acc, x, base + ty.hi * w + tx.lo, c, c0, cb, ty.whi * tx.wlo);
            ra_gather(acc, x, base + ty.hi * w + tx.hi, c, c0, cb, ty.whi * tx.whi);
        }
    }
    for (int64_t j = 0; j < cb; j++)
        acc[j] /= g->count;
}

int tb_cpu_roi_align_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *rois,
                             const tb_roi_align_params *p)
{
    TB_TRY(ra_check_rois("roi_align_forward", rois, x->shape[0], p));
    int64_t r_count = rois->shape[0], c = x->shape[3];
    int64_t bins = (int64_t)p->pooled_h * p->pooled_w;
    const float *rv = rois->data;
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t q = 0; q < r_count * bins; q++) {
        ra_roi g = ra_geometry(rv + 5 * (q / bins), p);
        int ph = (int)(q % bins / p->pooled_w), pw = (int)(q % p->pooled_w);
        for (int64_t c0 = 0; c0 < c; c0 += RA_CB) {
            float acc[RA_CB];
            int64_t cb = tb_cpu_min64(RA_CB, c - c0);
            ra_bin_forward(acc, x, &g, ph, pw, c0, cb);
            tb_cpu_store_row(y, q * c + c0, acc, cb);
        }
    }
    return TB_OK;
}

/* dx[pixel * stride + j] += w * g[j] */
static void ra_scatter(float *dx, int64_t pixel, int64_t stride, int64_t cb, float w, const float *g)
{
    float *d = dx + pixel * stride;
    for (int64_t j = 0; j < cb; j++)
        d[j] += w * g[j];
}

/* The backward of every RoI for channels [c0, c0 + cb) of dy, into f32
 * gradients at dx + pixel * stride (dx points at channel c0 of pixel 0). */
static void ra_backward_block(float *dx, int64_t stride, const tb_tensor *dy, const tb_tensor *rois,
                              const tb_roi_align_params *p, int64_t h, int64_t w, int64_t c, int64_t c0, int64_t cb)
{
    const float *rv = rois->data;
    for (int64_t r = 0; r < rois->shape[0]; r++) {
        ra_roi g = ra_geometry(rv + 5 * r, p);
        int64_t base = g.b * h * w;
        for (int ph = 0; ph < p->pooled_h; ph++)
            for (int pw = 0; pw < p->pooled_w; pw++) {
                float tmp[RA_BWD_CB], grad[RA_BWD_CB];
                int64_t q = (r * p->pooled_h + ph) * p->pooled_w + pw;
                const float *row = tb_cpu_load_row(tmp, dy, q * c + c0, cb);
                for (int64_t j = 0; j < cb; j++)
                    grad[j] = row[j] / g.count;
                for (int iy = 0; iy < g.grid_h; iy++) {
                    ra_tap ty = ra_axis(ra_sample_y(&g, ph, iy), h);
                    if (!ty.valid)
                        continue;
                    for (int ix = 0; ix < g.grid_w; ix++) {
                        ra_tap tx = ra_axis(ra_sample_x(&g, pw, ix), w);
                        if (!tx.valid)
                            continue;
                        ra_scatter(dx, base + ty.lo * w + tx.lo, stride, cb, ty.wlo * tx.wlo, grad);
                        ra_scatter(dx, base + ty.lo * w + tx.hi, stride, cb, ty.wlo * tx.whi, grad);
                        ra_scatter(dx, base + ty.hi * w + tx.lo, stride, cb, ty.whi * tx.wlo, grad);
                        ra_scatter(dx, base + ty.hi * w + tx.hi, stride, cb, ty.whi * tx.whi, grad);
                    }
                }
            }
    }
}

/* Channel blocks of the backward, and the threads that share them. */
static int64_t ra_blocks(int64_t c) { return (c + RA_BWD_CB - 1) / RA_BWD_CB; }

static int ra_threads(const tb_backend *be, int64_t blocks)
{
    int t = be->threads > 0 ? be->threads : 1;
    return (int)tb_cpu_min64(t, blocks);
}

/* Bytes of one thread's f32 block of dx (low-precision dx only). */
static size_t ra_block_bytes(const tb_tensor *dx)
{
    int64_t pixels = dx->shape[0] * dx->shape[1] * dx->shape[2];
    return ((size_t)pixels * (size_t)tb_cpu_min64(RA_BWD_CB, dx->shape[3]) * sizeof(float) + 63) & ~(size_t)63;
}

size_t tb_cpu_roi_align_workspace_size(tb_backend *be, const tb_tensor *x, const tb_tensor *rois,
                                       const tb_roi_align_params *p)
{
    (void)rois, (void)p;
    if (x->dtype == TB_F32)
        return 0;
    return (size_t)ra_threads(be, ra_blocks(x->shape[3])) * ra_block_bytes(x);
}

/* Block k of a low-precision dx: its channels to f32 in acc, the backward, and back, rounded once. */
static void ra_backward_low(float *acc, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *rois,
                            const tb_roi_align_params *p, int64_t k)
{
    int64_t h = dx->shape[1], w = dx->shape[2], c = dx->shape[3], pixels = dx->shape[0] * h * w;
    int64_t c0 = k * RA_BWD_CB, cb = tb_cpu_min64(RA_BWD_CB, c - c0);
    for (int64_t px = 0; px < pixels; px++)
        tb_convert_to_f32(acc + px * cb, tb_cpu_at(dx, px * c + c0), dx->dtype, cb);
    ra_backward_block(acc, cb, dy, rois, p, h, w, c, c0, cb);
    for (int64_t px = 0; px < pixels; px++)
        tb_convert_from_f32(tb_cpu_at(dx, px * c + c0), dx->dtype, acc + px * cb, cb);
}

int tb_cpu_roi_align_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *rois,
                              const tb_roi_align_params *p)
{
    TB_TRY(ra_check_rois("roi_align_backward", rois, dx->shape[0], p));
    int64_t h = dx->shape[1], w = dx->shape[2], c = dx->shape[3], blocks = ra_blocks(c);
    if (dx->dtype == TB_F32) {
        float *acc = dx->data;
#pragma omp parallel for schedule(static) num_threads(be->threads)
        for (int64_t k = 0; k < blocks; k++) {
            int64_t c0 = k * RA_BWD_CB;
            ra_backward_block(acc + c0, c, dy, rois, p, h, w, c, c0, tb_cpu_min64(RA_BWD_CB, c - c0));
        }
        return TB_OK;
    }
    int threads = ra_threads(be, blocks);
    size_t per_thread = ra_block_bytes(dx);
    TB_TRY(tb_cpu_workspace_check(be, "roi_align_backward", "roi_align", (size_t)threads * per_thread));
    char *ws = be->workspace;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t k = 0; k < blocks; k++) /* a team of at most `threads`: its copy exists */
        ra_backward_low((float *)(ws + per_thread * (size_t)omp_get_thread_num()), dx, dy, rois, p, k);
    return TB_OK;
}
