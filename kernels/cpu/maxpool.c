/* Max pooling over NHWC, padding acting as -inf (padded positions are never
 * chosen). The backward recomputes each window's FIRST maximum (row-major
 * window order) from x and routes dy there; a NaN counts as the maximum so it
 * propagates like PyTorch's.
 *
 * Forward is parallel over output rows; the backward scatters into
 * overlapping windows, so it is parallel over (image, channel block) pairs,
 * which never share a dx element. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/error.h"

static inline int beats(float v, float best) { return v > best || (isnan(v) && !isnan(best)); }

/* best[j] / arg[j] (= input pixel iy*w+ix) over the window at (oy, ox) of image b, channels [j0, j0+cb). */
static void window_max(const tb_tensor *x, const tb_pool_params *p, int64_t b, int64_t oy, int64_t ox,
                       int64_t j0, int64_t cb, float *best, int64_t *arg)
{
    int64_t h = x->shape[1], w = x->shape[2], c = x->shape[3];
    int64_t y0, y1, x0, x1, unused;
    float tmp[TB_CPU_CB];
    tb_cpu_pool_window(oy, p->kernel_h, p->stride_h, p->pad_h, h, &y0, &y1, &unused);
    tb_cpu_pool_window(ox, p->kernel_w, p->stride_w, p->pad_w, w, &x0, &x1, &unused);
    for (int64_t j = 0; j < cb; j++) {
        best[j] = -INFINITY;
        arg[j] = -1;
    }
    for (int64_t iy = y0; iy < y1; iy++)
        for (int64_t ix = x0; ix < x1; ix++) {
            int64_t pix = iy * w + ix;
            const float *row = tb_cpu_load_row(tmp, x, (b * h * w + pix) * c + j0, cb);
            for (int64_t j = 0; j < cb; j++)
                if (arg[j] < 0 || beats(row[j], best[j])) {
                    best[j] = row[j];
                    arg[j] = pix;
                }
        }
}

/* f32 fast path of window_max for channels [j0, j0+cb): the first window
 * pixel seeds best/arg and the rest are branch-free selects (same result as
 * window_max: a later pixel wins only when it beats the current best), so
 * the channel loops vectorise. arg is int32 (callers check h*w fits). */
static void window_max_f32(const float *x, const tb_pool_params *p, int64_t h, int64_t w, int64_t c, int64_t b,
                           int64_t oy, int64_t ox, int64_t j0, int64_t cb, float *restrict best,
                           int32_t *restrict arg)
{
    int64_t y0, y1, x0, x1, unused;
    tb_cpu_pool_window(oy, p->kernel_h, p->stride_h, p->pad_h, h, &y0, &y1, &unused);
    tb_cpu_pool_window(ox, p->kernel_w, p->stride_w, p->pad_w, w, &x0, &x1, &unused);
    if (y0 >= y1 || x0 >= x1) { /* a window entirely in the padding */
        for (int64_t j = 0; j < cb; j++) {
            best[j] = -INFINITY;
            arg[j] = -1;
        }
        return;
    }
    const float *img = x + b * h * w * c + j0;
    const float *first = img + (y0 * w + x0) * c;
    for (int64_t j = 0; j < cb; j++) {
        best[j] = first[j];
        arg[j] = (int32_t)(y0 * w + x0);
    }
    for (int64_t iy = y0; iy < y1; iy++)
        for (int64_t ix = (iy == y0 ? x0 + 1 : x0); ix < x1; ix++) {
            int32_t pix = (int32_t)(iy * w + ix);
            const float *restrict row = img + (int64_t)pix * c;
            for (int64_t j = 0; j < cb; j++) {
                float v = row[j], bj = best[j];
                /* beats(v, bj) without branches: v > bj, or v is NaN and bj is not */
                int win = (v > bj) | ((v != v) & (bj == bj));
                best[j] = win ? v : bj;
                arg[j] = win ? pix : arg[j];
            }
        }
}

/* f32 tensors whose pixel indices fit the int32 argmax of window_max_f32. */
static int fast_f32(const tb_tensor *x, const tb_tensor *y)
{
    return x->dtype == TB_F32 && y->dtype == TB_F32 && x->shape[1] * x->shape[2] < INT32_MAX;
}

static void maxpool_forward_f32(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_pool_params *p)
{
    int64_t n = y->shape[0], oh = y->shape[1], ow = y->shape[2], c = y->shape[3];
    int64_t h = x->shape[1], w = x->shape[2];
    const float *xs = x->data;
    float *ys = y->data;
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t t = 0; t < n * oh; t++) {
        int64_t b = t / oh, oy = t % oh;
        float best[TB_CPU_CB];
        int32_t arg[TB_CPU_CB];
        for (int64_t ox = 0; ox < ow; ox++)
            for (int64_t j0 = 0; j0 < c; j0 += TB_CPU_CB) {
                int64_t cb = tb_cpu_min64(TB_CPU_CB, c - j0);
                window_max_f32(xs, p, h, w, c, b, oy, ox, j0, cb, best, arg);
                memcpy(ys + ((t * ow) + ox) * c + j0, best, sizeof(float) * (size_t)cb);
            }
    }
}

static void maxpool_backward_f32(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *x,
                                 const tb_pool_params *p)
{
    int64_t n = dy->shape[0], oh = dy->shape[1], ow = dy->shape[2], c = dy->shape[3];
    int64_t h = x->shape[1], w = x->shape[2];
    int64_t blocks = (c + TB_CPU_CB - 1) / TB_CPU_CB;
    const float *xs = x->data, *dys = dy->data;
    float *dxs = dx->data;
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t t = 0; t < n * blocks; t++) {
        int64_t b = t / blocks, j0 = (t % blocks) * TB_CPU_CB;
        int64_t cb = tb_cpu_min64(TB_CPU_CB, c - j0);
        float best[TB_CPU_CB];
        int32_t arg[TB_CPU_CB];
        for (int64_t oy = 0; oy < oh; oy++)
            for (int64_t ox = 0; ox < ow; ox++) {
                window_max_f32(xs, p, h, w, c, b, oy, ox, j0, cb, best, arg);
                const float *g = dys + ((b * oh + oy) * ow + ox) * c + j0;
                float *img = dxs + b * h * w * c + j0;
                for (int64_t j = 0; j < cb; j++)
                    if (arg[j] >= 0)
                        img[(int64_t)arg[j] * c + j] += g[j];
            }
    }
}

int tb_cpu_maxpool_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_pool_params *p)
{
    if (fast_f32(x, y)) {
        maxpool_forward_f32(be, y, x, p);
        return TB_OK;
    }
    int64_t n = y->shape[0], oh = y->shape[1], ow = y->shape[2], c = y->shape[3];
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t t = 0; t < n * oh; t++) {
        int64_t b = t / oh, oy = t % oh;
        float best[TB_CPU_CB];
        int64_t arg[TB_CPU_CB];
        for (int64_t ox = 0; ox < ow; ox++)
            for (int64_t j0 = 0; j0 < c; j0 += TB_CPU_CB) {
                int64_t cb = tb_cpu_min64(TB_CPU_CB, c - j0);
                window_max(x, p, b, oy, ox, j0, cb, best, arg);
                tb_cpu_store_row(y, ((t * ow) + ox) * c + j0, best, cb);
            }
    }
    return TB_OK;
}

int tb_cpu_maxpool_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *y,
                            const tb_tensor *x, const tb_pool_params *p)
{
    (void)y; /* the CPU recomputes the argmax from x (the CUDA backend compares with y) */
    if (fast_f32(x, dy) && dx->dtype == TB_F32) {
        maxpool_backward_f32(be, dx, dy, x, p);
        return TB_OK;
    }
    int64_t n = dy->shape[0], oh = dy->shape[1], ow = dy->shape[2], c = dy->shape[3];
    int64_t h = x->shape[1], w = x->shape[2];
    int64_t blocks = (c + TB_CPU_CB - 1) / TB_CPU_CB;
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t t = 0; t < n * blocks; t++) {
        int64_t b = t / blocks, j0 = (t % blocks) * TB_CPU_CB;
        int64_t cb = tb_cpu_min64(TB_CPU_CB, c - j0);
        float best[TB_CPU_CB], tmp[TB_CPU_CB];
        int64_t arg[TB_CPU_CB];
        for (int64_t oy = 0; oy < oh; oy++)
            for (int64_t ox = 0; ox < ow; ox++) {
                window_max(x, p, b, oy, ox, j0, cb, best, arg);
                const float *g = tb_cpu_load_row(tmp, dy, ((b * oh + oy) * ow + ox) * c + j0, cb);
                for (int64_t j = 0; j < cb; j++) {
                    if (arg[j] < 0)
                        continue;
                    int64_t i = (b * h * w + arg[j]) * c + j0 + j;
                    tb_store_f32(dx->data, dx->dtype, i, tb_load_f32(dx->data, dx->dtype, i) + g[j]);
                }
            }
    }
    return TB_OK;
}
