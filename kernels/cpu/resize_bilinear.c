/* Bilinear resize of NHWC tensors, align_corners = false (PyTorch's
 * F.interpolate(mode="bilinear", align_corners=False) without antialiasing).
 *
 * Along each axis, output position o of `out` samples the input of `in`
 * pixels at src = scale * (o + 0.5) - 0.5 with scale = in / out (f32, as
 * PyTorch computes it), clamped below at 0; the taps are lo = floor(src) and
 * hi = lo + 1, or lo again at the last pixel, with weights 1 - l and l,
 * l = src - lo. (src < in - 0.5 * scale - 0.5, so lo never passes the last
 * pixel.) An output pixel is the product of a row tap pair and a column tap
 * pair, summed in PyTorch's order:
 *   y = wy_lo * (wx_lo * x[lo, lo] + wx_hi * x[lo, hi]) + wy_hi * (...).
 *
 * Forward: one task per output row, channels in blocks of RB_CB (f16/bf16
 * converted per block, computed in f32, rounded once).
 *
 * Backward: dx += the transpose, computed by GATHERING: each dx pixel sums
 * wy * wx * dy over the output pixels whose taps reach it. Taps are
 * non-decreasing in the output position, so those output rows (columns) are
 * one contiguous range, found by binary search on the exact forward taps.
 * One task per dx row: no two threads touch one dx element, no atomics, and
 * each element is one fixed-order f32 sum added to dx with one rounding:
 * bitwise reproducible for any thread count, for every dtype.
 */
#include <stdbool.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/error.h"

#define RB_CB 64

/* The two input taps of one output position along one axis. */
typedef struct rb_tap {
    int64_t lo, hi;
    float wlo, whi;
} rb_tap;

static rb_tap rb_tap_at(int64_t o, int64_t in, int64_t out)
{
    float scale = (float)in / (float)out;
    float src = scale * ((float)o + 0.5f) - 0.5f;
    if (src < 0.0f)
        src = 0.0f;
    rb_tap t;
    t.lo = (int64_t)src; /* floor: src >= 0 */
    t.hi = t.lo < in - 1 ? t.lo + 1 : t.lo;
    t.whi = src - (float)t.lo;
    t.wlo = 1.0f - t.whi;
    return t;
}

/* The weight with which output position t reads input position k (both taps
 * add up when they coincide at the last pixel). */
static float rb_weight(const rb_tap *t, int64_t k)
{
    return (t->lo == k ? t->wlo : 0.0f) + (t->hi == k ? t->whi : 0.0f);
}

/* First output position in [0, out) whose taps end at or after input k
 * (past = false), or start after k (past = true); out when there is none.
 * Both predicates are monotone in the position. */
static int64_t rb_first(int64_t k, int64_t in, int64_t out, bool past)
{
    int64_t lo = 0, hi = out;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        rb_tap t = rb_tap_at(mid, in, out);
        if (past ? t.lo > k : t.hi >= k)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* ---------------------------------------------------------------- forward */

/* Output row (b, i) of y from x. */
static void rb_forward_row(const tb_tensor *y, const tb_tensor *x, int64_t b, int64_t i)
{
    int64_t h = x->shape[1], w = x->shape[2], c = x->shape[3], oh = y->shape[1], ow = y->shape[2];
    rb_tap ty = rb_tap_at(i, h, oh);
    int64_t row_lo = (b * h + ty.lo) * w, row_hi = (b * h + ty.hi) * w;
    for (int64_t j = 0; j < ow; j++) {
        rb_tap tx = rb_tap_at(j, w, ow);
        for (int64_t c0 = 0; c0 < c; c0 += RB_CB) {
            int64_t cb = tb_cpu_min64(RB_CB, c - c0);
            float t00[RB_CB], t01[RB_CB], t10[RB_CB], t11[RB_CB], out[RB_CB];
            const float *x00 = tb_cpu_load_row(t00, x, (row_lo + tx.lo) * c + c0, cb);
            const float *x01 = tb_cpu_load_row(t01, x, (row_lo + tx.hi) * c + c0, cb);
            const float *x10 = tb_cpu_load_row(t10, x, (row_hi + tx.lo) * c + c0, cb);
            const float *x11 = tb_cpu_load_row(t11, x, (row_hi + tx.hi) * c + c0, cb);
            for (int64_t k = 0; k < cb; k++)
                out[k] = ty.wlo * (tx.wlo * x00[k] + tx.whi * x01[k]) + ty.whi * (tx.wlo * x10[k] + tx.whi * x11[k]);
            tb_cpu_store_row(y, ((b * oh + i) * ow + j) * c + c0, out, cb);
        }
    }
}

int tb_cpu_resize_bilinear_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x)
{
    int64_t rows = y->shape[0] * y->shape[1], oh = y->shape[1];
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t r = 0; r < rows; r++)
        rb_forward_row(y, x, r / oh, r % oh);
    return TB_OK;
}

/* --------------------------------------------------------------- backward */

/* Output positions [first, end) along one axis. */
typedef struct rb_range {
    int64_t first, end;
} rb_range;

/* The output positions whose taps reach input position k. */
static rb_range rb_readers(int64_t k, int64_t in, int64_t out)
{
    rb_range r = {rb_first(k, in, out, false), rb_first(k, in, out, true)};
    return r;
}

/* acc[0..cb) = the gradient of dx pixel (b, ih, iw), channels [c0, c0 + cb),
 * from the dy pixels of rows `rows` and columns `cols`. */
static void rb_gather(float *acc, const tb_tensor *dy, int64_t b, int64_t ih, int64_t iw, rb_range rows,
                      rb_range cols, int64_t h, int64_t w, int64_t c0, int64_t cb)
{
    int64_t oh = dy->shape[1], ow = dy->shape[2], c = dy->shape[3];
    for (int64_t k = 0; k < cb; k++)
        acc[k] = 0.0f;
    for (int64_t i = rows.first; i < rows.end; i++) {
        rb_tap ty = rb_tap_at(i, h, oh);
        float wy = rb_weight(&ty, ih);
        for (int64_t j = cols.first; j < cols.end; j++) {
            rb_tap tx = rb_tap_at(j, w, ow);
            float wt = wy * rb_weight(&tx, iw), tmp[RB_CB];
            const float *g = tb_cpu_load_row(tmp, dy, ((b * oh + i) * ow + j) * c + c0, cb);
            for (int64_t k = 0; k < cb; k++)
                acc[k] += wt * g[k];
        }
    }
}

/* dx row (b, ih) += its gradient. */
static void rb_backward_row(const tb_tensor *dx, const tb_tensor *dy, int64_t b, int64_t ih)
{
    int64_t h = dx->shape[1], w = dx->shape[2], c = dx->shape[3];
    rb_range rows = rb_readers(ih, h, dy->shape[1]);
    if (rows.first == rows.end) /* downsampling can skip input rows entirely */
        return;
    for (int64_t iw = 0; iw < w; iw++) {
        rb_range cols = rb_readers(iw, w, dy->shape[2]);
        if (cols.first == cols.end)
            continue;
        for (int64_t c0 = 0; c0 < c; c0 += RB_CB) {
            float acc[RB_CB];
            int64_t cb = tb_cpu_min64(RB_CB, c - c0);
            rb_gather(acc, dy, b, ih, iw, rows, cols, h, w, c0, cb);
            tb_cpu_accum_row(dx, ((b * h + ih) * w + iw) * c + c0, acc, cb);
        }
    }
}

int tb_cpu_resize_bilinear_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy)
{
    int64_t rows = dx->shape[0] * dx->shape[1], h = dx->shape[1];
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t r = 0; r < rows; r++)
        rb_backward_row(dx, dy, r / h, r % h);
    return TB_OK;
}
