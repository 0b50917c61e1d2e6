/* conv2d on the CPU: GEMMs through oneDNN's sgemm (gemm.c), our own loops with OpenMP.
 *
 * f32 convs with one group run on oneDNN's convolution primitives instead
 * when it has them for the shape (conv2d_onednn.c); what follows is the path
 * of everything else: f16/bf16, grouped and depthwise convs.
 *
 * x {n,h,w,c} NHWC, w {k,r,s,cg} OHWI with cg = c/groups, y {n,oh,ow,k};
 * group g maps input channels [g*cg, (g+1)*cg) to output channels
 * [g*kg, (g+1)*kg), kg = k/groups. Three strategies, chosen from the shapes:
 *
 *  - direct: a 1x1, stride-1, unpadded conv is a plain GEMM in NHWC,
 *    y[n*h*w, k] = x[n*h*w, c] * w[k, c]^T (one per group, with leading
 *    dimensions c and k picking the group's columns).
 *  - im2col: every other grouped or dense conv. For a chunk of images and one
 *    group, col[pixel, (ky,kx,ci)] holds the input patch of each output pixel
 *    (columns in OHWI order, so w's rows are the other GEMM operand as is).
 *    Backward data is a GEMM into col and a col2im that adds col back into
 *    dx; backward filter is im2col and a GEMM accumulating (beta = 1) into
 *    per-block partial sums that are added to dw at the end. For stride-1,
 *    undilated, ungrouped convs the backward data is instead the forward
 *    conv of dy with the flipped, transposed filter (flip_plan), whose
 *    GEMMs accumulate straight into dx: no column zeroing, no col2im.
 *  - depthwise (groups == c == k): per-group GEMMs would be 1 x r*s, so a
 *    direct kernel vectorised over channels does it instead.
 *
 * f16/bf16 tensors are converted chunk by chunk to f32 in the workspace,
 * computed in f32 and converted back; gradients are read, added to in f32 and
 * stored. Everything lives in be->workspace, sized by the same plan that
 * tb_cpu_conv2d_workspace_size reports, so the op never allocates.
 *
 * Threads: the output pixels of a chunk are split into fixed row blocks and
 * each OpenMP thread runs the im2col and single-threaded GEMMs of its
 * blocks (a GEMM called inside the parallel region runs on its thread). A
 * first version that let the BLAS (OpenBLAS then) thread the GEMMs between
 * OpenMP im2col loops ran slower on 2 threads than on 1 (33 against 58
 * GFLOP/s on ResNet-50's 3x3 64-channel layer): its pthread pool busy-waited
 * after each call and fought the OpenMP team for the cores.
 *
 * Determinism: every output element is written by one task (GEMM rows,
 * col2im and depthwise gathers; no atomics), task boundaries depend only on
 * the shapes and the thread count, and the reductions over pixels (dw,
 * dbias) go to one partial per block of rows, summed in block order at the
 * end, so results are bitwise reproducible for a fixed thread count. The
 * partials cost be->threads copies of dw (and dbias) in the workspace.
 */
#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/conv2d_onednn.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/cpu/gemm.h"
#include "kernels/error.h"

/* Column buffer plus f32 staging per chunk of images: big enough that the
 * GEMMs have thousands of rows, small enough that a chunk's columns are still
 * in cache when its GEMMs read them. At least one image always fits,
 * whatever its size. 4 MiB measured best on the 2-core EPYC (ResNet-18 at
 * 28 px, batch 64: 50.4 images/s at 16 MiB, 53.5 at 4, 51.4 at 2, 47.7 at 1;
 * ResNet-50 at 224 px: 4.85 at 16 MiB, 5.03 at 4). */
#define CONV_CHUNK_BYTES ((size_t)4 << 20)
/* Rows per GEMM task before a chunk is split into more tasks than threads:
 * each task packs the whole weight operand again. */
#define CONV_TASK_MIN_ROWS 1024
#define CONV_CONVERT_BLOCK 16384 /* elements per parallel conversion task */

typedef enum conv_kind { CONV_DIRECT, CONV_IM2COL, CONV_DEPTHWISE } conv_kind;

typedef struct conv_plan {
    int64_t n, h, w, c, k, r, s, oh, ow, cg, kg, rscg;
    int groups, sh, sw, ph, pw, dh, dw;
    conv_kind kind;
    bool flip;     /* backward data as a forward conv of dy (see flip_plan) */
    bool accumulate; /* forward GEMMs add to y (beta = 1): the flipped backward data */
    tb_dtype dt;
    bool low;      /* f16/bf16: staged through f32 */
    int threads;   /* OpenMP threads (be->threads); each GEMM runs single-threaded inside them */
    int blocks;    /* row blocks of backward filter, one partial sum each: = threads */
    int64_t nb;    /* images per chunk */
    /* workspace regions, in floats; each starts 64-byte aligned */
    size_t col_n, xs_n, ys_n, wf_n, bf_n, part_n;
    float *col;    /* im2col buffer of one chunk and one group */
    float *xs;     /* x or dx of one chunk in f32 (low precision) */
    float *ys;     /* y or dy of one chunk in f32 (low precision) */
    float *wf;     /* w in f32 (low precision); depthwise: w transposed to {r*s, k} */
    float *bf;     /* bias in f32 (low precision forward) */
    float *part;   /* per-block partial sums: dbias {blocks, k}, then dw {blocks, k*r*s*cg} */
    tb_cpu_gemm_error *gemm_err; /* the call's first failed GEMM (any thread) */
} conv_plan;

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static size_t round_floats(size_t n) { return (n + 15) & ~(size_t)15; }

/* The shapes and parameters; false when they are not a valid conv (the
 * front-end says why), so the workspace query stays total. */
static bool plan_geometry(conv_plan *pl, const tb_tensor *y, const tb_tensor *x, const tb_tensor *w,
                          const tb_conv2d_params *p)
{
    if (x->ndim != 4 || w->ndim != 4 || y->ndim != 4 || p->groups <= 0 || p->stride_h <= 0 || p->stride_w <= 0 ||
        p->dil_h <= 0 || p->dil_w <= 0 || p->pad_h < 0 || p->pad_w < 0)
        return false;
    pl->n = x->shape[0], pl->h = x->shape[1], pl->w = x->shape[2], pl->c = x->shape[3];
    pl->k = w->shape[0], pl->r = w->shape[1], pl->s = w->shape[2];
    pl->oh = y->shape[1], pl->ow = y->shape[2];
    pl->groups = p->groups;
    pl->sh = p->stride_h, pl->sw = p->stride_w, pl->ph = p->pad_h, pl->pw = p->pad_w;
    pl->dh = p->dil_h, pl->dw = p->dil_w;
    if (pl->n <= 0 || pl->h <= 0 || pl->w <= 0 || pl->c <= 0 || pl->k <= 0 || pl->r <= 0 || pl->s <= 0 ||
        pl->oh <= 0 || pl->ow <= 0 || pl->c % pl->groups || pl->k % pl->groups)
        return false;
    pl->cg = pl->c / pl->groups, pl->kg = pl->k / pl->groups;
    pl->rscg = pl->r * pl->s * pl->cg;
    /* the GEMM tasks are sized in int */
    return w->shape[3] == pl->cg && pl->oh * pl->ow <= INT_MAX && pl->rscg <= INT_MAX && pl->k <= INT_MAX &&
           pl->c <= INT_MAX;
}

/* Strategy, chunking and workspace regions, all functions of the shapes,
 * the dtype and the thread count only. */
static bool plan_init(conv_plan *pl, const tb_backend *be, const tb_tensor *y, const tb_tensor *x,
                      const tb_tensor *w, const tb_conv2d_params *p)
{
    memset(pl, 0, sizeof *pl);
    if (!plan_geometry(pl, y, x, w, p))
        return false;
    if (pl->r == 1 && pl->s == 1 && pl->sh == 1 && pl->sw == 1 && pl->ph == 0 && pl->pw == 0)
        pl->kind = CONV_DIRECT;
    else if (pl->groups == pl->c && pl->k == pl->c)
        pl->kind = CONV_DEPTHWISE;
    else
        pl->kind = CONV_IM2COL;
    pl->dt = x->dtype;
    pl->low = pl->dt != TB_F32;
    pl->threads = be->threads > 0 ? be->threads : 1;
    pl->blocks = pl->threads;
    /* Stride 1, no dilation, one group, padding under the kernel size: dx is
     * a forward conv of dy with the flipped, transposed filter, written by
     * GEMMs straight into dx, instead of a GEMM into col and a col2im. */
    pl->flip = pl->kind == CONV_IM2COL && pl->groups == 1 && pl->sh == 1 && pl->sw == 1 && pl->dh == 1 &&
               pl->dw == 1 && pl->ph < pl->r && pl->pw < pl->s && pl->oh == pl->h + 2 * pl->ph - pl->r + 1 &&
               pl->ow == pl->w + 2 * pl->pw - pl->s + 1 && pl->r * pl->s * pl->k <= INT_MAX;

    int64_t col_img = pl->kind == CONV_IM2COL ? pl->oh * pl->ow * pl->rscg : 0;
    if (pl->flip) /* the flipped conv's columns: one row per input pixel, r*s*k wide */
        col_img = max64(col_img, pl->h * pl->w * pl->r * pl->s * pl->k);
    int64_t stage_img = pl->low ? pl->h * pl->w * pl->c + pl->oh * pl->ow * pl->k : 0;
    int64_t per_img = col_img + stage_img;
    pl->nb = pl->n;
    if (per_img > 0)
        pl->nb = min64(pl->n, max64(1, (int64_t)(CONV_CHUNK_BYTES / sizeof(float)) / per_img));
    pl->nb = min64(pl->nb, INT_MAX / (pl->oh * pl->ow));
    if (pl->flip) /* the flipped conv's GEMM rows are input pixels */
        pl->nb = max64(1, min64(pl->nb, INT_MAX / (pl->h * pl->w)));

    pl->col_n = (size_t)(pl->nb * col_img);
    pl->xs_n = pl->low ? (size_t)(pl->nb * pl->h * pl->w * pl->c) : 0;
    pl->ys_n = pl->low ? (size_t)(pl->nb * pl->oh * pl->ow * pl->k) : 0;
    pl->wf_n = (pl->low || pl->flip || pl->kind == CONV_DEPTHWISE) ? (size_t)(pl->k * pl->rscg) : 0;
    pl->bf_n = pl->low ? (size_t)pl->k : 0;
    pl->part_n = (size_t)pl->blocks * (size_t)(pl->k + pl->k * pl->rscg);
    return true;
}

/* Row tasks of a chunk's forward / backward-data GEMMs: up to 4 per thread
 * (scheduled dynamically, so a thread slowed by another process does not
 * hold the others up) while each keeps CONV_TASK_MIN_ROWS rows. Task
 * boundaries depend only on the shapes, so results do not depend on which
 * thread runs a task. */
static int plan_tasks(const conv_plan *pl, int64_t rows)
{
    return (int)min64(4 * (int64_t)pl->threads, max64(pl->threads, rows / CONV_TASK_MIN_ROWS));
}

static size_t plan_bytes(const conv_plan *pl)
{
    return sizeof(float) * (round_floats(pl->col_n) + round_floats(pl->xs_n) + round_floats(pl->ys_n) +
                            round_floats(pl->wf_n) + round_floats(pl->bf_n) + round_floats(pl->part_n));
}

/* Plans the call and carves the regions out of the reserved workspace. */
static int plan_prepare(conv_plan *pl, tb_backend *be, const tb_tensor *y, const tb_tensor *x, const tb_tensor *w,
                        const tb_conv2d_params *p, const char *op)
{
    if (!plan_init(pl, be, y, x, w, p))
        return tb_fail(TB_ERR_INVALID, "cpu %s: inconsistent shapes (call it through tb_%s, which says why)", op, op);
    size_t need = plan_bytes(pl);
    if (be->workspace_size < need)
        return tb_fail(TB_ERR_INVALID,
                       "cpu %s: needs %zu bytes of workspace, %zu reserved; reserve "
                       "tb_conv2d_workspace_size() at graph build",
                       op, need, be->workspace_size);
    float *base = be->workspace;
    float **dst[6] = {&pl->col, &pl->xs, &pl->ys, &pl->wf, &pl->bf, &pl->part};
    size_t sizes[6] = {pl->col_n, pl->xs_n, pl->ys_n, pl->wf_n, pl->bf_n, pl->part_n};
    for (int i = 0; i < 6; i++) {
        *dst[i] = sizes[i] ? base : NULL;
        base += round_floats(sizes[i]);
    }
    return TB_OK;
}

/* ------------------------------------------------------------ conversions */

static void to_f32(float *dst, const void *src, tb_dtype dt, int64_t count, int threads)
{
    int64_t blocks = (count + CONV_CONVERT_BLOCK - 1) / CONV_CONVERT_BLOCK;
    size_t es = tb_dtype_size(dt);
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t b = 0; b < blocks; b++) {
        int64_t off = b * CONV_CONVERT_BLOCK;
        tb_convert_to_f32(dst + off, (const char *)src + (size_t)off * es, dt, min64(CONV_CONVERT_BLOCK, count - off));
    }
}

static void from_f32(void *dst, tb_dtype dt, const float *src, int64_t count, int threads)
{
    int64_t blocks = (count + CONV_CONVERT_BLOCK - 1) / CONV_CONVERT_BLOCK;
    size_t es = tb_dtype_size(dt);
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t b = 0; b < blocks; b++) {
        int64_t off = b * CONV_CONVERT_BLOCK;
        tb_convert_from_f32((char *)dst + (size_t)off * es, dt, src + off, min64(CONV_CONVERT_BLOCK, count - off));
    }
}

/* Elements [off, off+count) of t as f32: the tensor itself, or staged in buf. */
static float *stage_in(const conv_plan *pl, float *buf, const tb_tensor *t, int64_t off, int64_t count)
{
    if (!pl->low)
        return (float *)t->data + off;
    to_f32(buf, (const char *)t->data + (size_t)off * tb_dtype_size(t->dtype), t->dtype, count, pl->threads);
    return buf;
}

static void stage_out(const conv_plan *pl, tb_tensor *t, const float *buf, int64_t off, int64_t count)
{
    if (pl->low)
        from_f32((char *)t->data + (size_t)off * tb_dtype_size(t->dtype), t->dtype, buf, count, pl->threads);
}

/* w as f32 in the layout the strategy reads: OHWI, or {r*s, k} for depthwise
 * so the channel loop is contiguous. */
static const float *weights_f32(const conv_plan *pl, const tb_tensor *w)
{
    if (pl->kind == CONV_DEPTHWISE) {
        int64_t taps = pl->r * pl->s;
        for (int64_t kk = 0; kk < pl->k; kk++)
            for (int64_t t = 0; t < taps; t++)
                pl->wf[t * pl->k + kk] = tb_load_f32(w->data, w->dtype, kk * taps + t);
        return pl->wf;
    }
    if (!pl->low)
        return w->data;
    to_f32(pl->wf, w->data, w->dtype, pl->k * pl->rscg, pl->threads);
    return pl->wf;
}

/* -------------------------------------------------------- im2col / col2im */

/* Rows [lo, hi) of `rows` for block blk of `blocks`: a fixed partition. */
static void block_rows(int64_t rows, int blocks, int blk, int64_t *lo, int64_t *hi)
{
    *lo = rows * blk / blocks;
    *hi = rows * (blk + 1) / blocks;
}

/* For output pixels [p0, p1) of the chunk (pixel = (b*oh + oy)*ow + ox):
 * col[pixel - p0, (ky,kx,ci)] = x[b, iy, ix, grp*cg + ci], zero outside the input. */
static void im2col_rows(const conv_plan *pl, float *col, const float *x, int64_t p0, int64_t p1, int64_t grp)
{
    const int64_t cg = pl->cg, s = pl->s;
    /* with one group and no column dilation a kernel row's taps are adjacent in x */
    const bool contiguous = pl->dw == 1 && cg == pl->c;
    for (int64_t px = p0; px < p1; px++) {
        int64_t ox = px % pl->ow, oy = (px / pl->ow) % pl->oh, b = px / (pl->ow * pl->oh);
        float *dst = col + (px - p0) * pl->rscg;
        int64_t ix0 = ox * pl->sw - pl->pw;
        for (int64_t ky = 0; ky < pl->r; ky++) {
            float *drow = dst + ky * s * cg;
            int64_t iy = oy * pl->sh - pl->ph + ky * pl->dh;
            if (iy < 0 || iy >= pl->h) {
                memset(drow, 0, sizeof(float) * (size_t)(s * cg));
                continue;
            }
            const float *xrow = x + (b * pl->h + iy) * pl->w * pl->c + grp * cg;
            if (contiguous) {
                int64_t lo = min64(s, max64(0, -ix0));
                int64_t hi = max64(lo, min64(s, pl->w - ix0));
                memset(drow, 0, sizeof(float) * (size_t)(lo * cg));
                memcpy(drow + lo * cg, xrow + (ix0 + lo) * pl->c, sizeof(float) * (size_t)((hi - lo) * cg));
                memset(drow + hi * cg, 0, sizeof(float) * (size_t)((s - hi) * cg));
                continue;
            }
            for (int64_t kx = 0; kx < s; kx++) {
                int64_t ix = ix0 + kx * pl->dw;
                if (ix < 0 || ix >= pl->w)
                    memset(drow + kx * cg, 0, sizeof(float) * (size_t)cg);
                else
                    memcpy(drow + kx * cg, xrow + ix * pl->c, sizeof(float) * (size_t)cg);
            }
        }
    }
}

/* The output row (column) that tap ky (kx) of the kernel reads input row iy
 * (column ix) for; false when no output position does (stride, padding). */
static inline bool tap_out_y(const conv_plan *pl, int64_t iy, int64_t ky, int64_t *oy)
{
    int64_t t = iy + pl->ph - ky * pl->dh;
    if (t < 0 || t % pl->sh || t / pl->sh >= pl->oh)
        return false;
    *oy = t / pl->sh;
    return true;
}

static inline bool tap_out_x(const conv_plan *pl, int64_t ix, int64_t kx, int64_t *ox)
{
    int64_t t = ix + pl->pw - kx * pl->dw;
    if (t < 0 || t % pl->sw || t / pl->sw >= pl->ow)
        return false;
    *ox = t / pl->sw;
    return true;
}

/* dx[b,iy,ix,grp*cg+ci] += every col entry that im2col copied from there.
 * A gather per input pixel (each written by one thread, taps in a fixed order). */
static void col2im_add(const conv_plan *pl, float *dx, const float *col, int64_t nbc, int64_t grp)
{
    const int64_t rows = nbc * pl->h, cg = pl->cg;
#pragma omp parallel for schedule(static) num_threads(pl->threads)
    for (int64_t ro = 0; ro < rows; ro++) {
        int64_t b = ro / pl->h, iy = ro % pl->h;
        for (int64_t ix = 0; ix < pl->w; ix++) {
            float *restrict dxp = dx + (ro * pl->w + ix) * pl->c + grp * cg;
            for (int64_t ky = 0; ky < pl->r; ky++) {
                int64_t oy;
                if (!tap_out_y(pl, iy, ky, &oy))
                    continue;
                for (int64_t kx = 0; kx < pl->s; kx++) {
                    int64_t ox;
                    if (!tap_out_x(pl, ix, kx, &ox))
                        continue;
                    const float *restrict cp =
                        col + ((b * pl->oh + oy) * pl->ow + ox) * pl->rscg + (ky * pl->s + kx) * cg;
                    for (int64_t ci = 0; ci < cg; ci++)
                        dxp[ci] += cp[ci];
                }
            }
        }
    }
}

/* ------------------------------------------------------- depthwise kernels */

static void depthwise_forward(const conv_plan *pl, float *y, const float *x, const float *wt, const float *bias,
                              int64_t nbc)
{
    const int64_t rows = nbc * pl->oh, k = pl->k;
#pragma omp parallel for schedule(static) num_threads(pl->threads)
    for (int64_t ro = 0; ro < rows; ro++) {
        int64_t b = ro / pl->oh, oy = ro % pl->oh;
        for (int64_t ox = 0; ox < pl->ow; ox++) {
            float *restrict yp = y + (ro * pl->ow + ox) * k;
            if (bias)
                memcpy(yp, bias, sizeof(float) * (size_t)k);
            else
                memset(yp, 0, sizeof(float) * (size_t)k);
            for (int64_t ky = 0; ky < pl->r; ky++) {
                int64_t iy = oy * pl->sh - pl->ph + ky * pl->dh;
                if (iy < 0 || iy >= pl->h)
                    continue;
                for (int64_t kx = 0; kx < pl->s; kx++) {
                    int64_t ix = ox * pl->sw - pl->pw + kx * pl->dw;
                    if (ix < 0 || ix >= pl->w)
                        continue;
                    const float *restrict xp = x + ((b * pl->h + iy) * pl->w + ix) * k;
                    const float *restrict wp = wt + (ky * pl->s + kx) * k;
                    for (int64_t kk = 0; kk < k; kk++)
                        yp[kk] += xp[kk] * wp[kk];
                }
            }
        }
    }
}

/* dx += gather of dy * w over the taps that read each input pixel. */
static void depthwise_backward_data(const conv_plan *pl, float *dx, const float *dy, const float *wt, int64_t nbc)
{
    const int64_t rows = nbc * pl->h, k = pl->k;
#pragma omp parallel for schedule(static) num_threads(pl->threads)
    for (int64_t ro = 0; ro < rows; ro++) {
        int64_t b = ro / pl->h, iy = ro % pl->h;
        for (int64_t ix = 0; ix < pl->w; ix++) {
            float *restrict dxp = dx + (ro * pl->w + ix) * k;
            for (int64_t ky = 0; ky < pl->r; ky++) {
                int64_t oy;
                if (!tap_out_y(pl, iy, ky, &oy))
                    continue;
                for (int64_t kx = 0; kx < pl->s; kx++) {
                    int64_t ox;
                    if (!tap_out_x(pl, ix, kx, &ox))
                        continue;
                    const float *restrict dyp = dy + ((b * pl->oh + oy) * pl->ow + ox) * k;
                    const float *restrict wp = wt + (ky * pl->s + kx) * k;
                    for (int64_t kk = 0; kk < k; kk++)
                        dxp[kk] += dyp[kk] * wp[kk];
                }
            }
        }
    }
}

/* Block blk's partials over its output rows: pw[tap, kk] += dy * x, and
 * pb[kk] += dy when the bias gradient is wanted. */
static void depthwise_filter_block(const conv_plan *pl, float *pw, float *pb, const float *dy, const float *x,
                                   int64_t nbc, int blk)
{
    const int64_t k = pl->k;
    int64_t lo, hi;
    block_rows(nbc * pl->oh, pl->blocks, blk, &lo, &hi);
    for (int64_t ro = lo; ro < hi; ro++) {
        int64_t b = ro / pl->oh, oy = ro % pl->oh;
        for (int64_t ox = 0; ox < pl->ow; ox++) {
            const float *restrict dyp = dy + (ro * pl->ow + ox) * k;
            if (pb)
                for (int64_t kk = 0; kk < k; kk++)
                    pb[kk] += dyp[kk];
            for (int64_t ky = 0; ky < pl->r; ky++) {
                int64_t iy = oy * pl->sh - pl->ph + ky * pl->dh;
                if (iy < 0 || iy >= pl->h)
                    continue;
                for (int64_t kx = 0; kx < pl->s; kx++) {
                    int64_t ix = ox * pl->sw - pl->pw + kx * pl->dw;
                    if (ix < 0 || ix >= pl->w)
                        continue;
                    const float *restrict xp = x + ((b * pl->h + iy) * pl->w + ix) * k;
                    float *restrict wp = pw + (ky * pl->s + kx) * k;
                    for (int64_t kk = 0; kk < k; kk++)
                        wp[kk] += dyp[kk] * xp[kk];
                }
            }
        }
    }
}

/* ------------------------------------------------- GEMM blocks and chunks */

/* Each block of output pixels runs its own im2col and single-threaded GEMMs
 * (see the header comment for why the GEMMs are not threaded themselves). */

static void forward_block(const conv_plan *pl, float *y, const float *x, const float *wv, const float *bias,
                          int64_t nbc, int tasks, int blk)
{
    int64_t lo, hi;
    block_rows(nbc * pl->oh * pl->ow, tasks, blk, &lo, &hi);
    if (hi == lo)
        return;
    const int m = (int)(hi - lo), c = (int)pl->c, k = (int)pl->k, cg = (int)pl->cg, kg = (int)pl->kg;
    const int rscg = (int)pl->rscg;
    float *yb = y + lo * k, *col = pl->col ? pl->col + lo * rscg : NULL; /* DIRECT has no col */
    float beta = pl->accumulate ? 1.0f : 0.0f;
    if (bias) { /* start from the bias and let the GEMMs add to it */
        for (int i = 0; i < m; i++)
            memcpy(yb + (int64_t)i * k, bias, sizeof(float) * (size_t)k);
        beta = 1.0f;
    }
    for (int g = 0; g < pl->groups; g++) {
        if (pl->kind == CONV_DIRECT) {
            tb_cpu_sgemm(1, false, true, m, kg, cg, 1.0f, x + lo * c + g * cg, c, wv + (int64_t)g * kg * cg, cg,
                         beta, yb + g * kg, k, pl->gemm_err);
        } else {
            im2col_rows(pl, col, x, lo, hi, g);
            tb_cpu_sgemm(1, false, true, m, kg, rscg, 1.0f, col, rscg, wv + (int64_t)g * kg * rscg, rscg, beta,
                         yb + g * kg, k, pl->gemm_err);
        }
    }
}

/* DIRECT: dx rows += dy rows * w. IM2COL: col rows = dy rows * w (group g). */
static void backward_data_block(const conv_plan *pl, float *dx, const float *dy, const float *wv, int64_t nbc,
                                int g, int tasks, int blk)
{
    int64_t lo, hi;
    block_rows(nbc * pl->oh * pl->ow, tasks, blk, &lo, &hi);
    if (hi == lo)
        return;
    const int m = (int)(hi - lo), c = (int)pl->c, k = (int)pl->k, cg = (int)pl->cg, kg = (int)pl->kg;
    const int rscg = (int)pl->rscg;
    if (pl->kind == CONV_DIRECT)
        tb_cpu_sgemm(1, false, false, m, cg, kg, 1.0f, dy + lo * k + g * kg, k, wv + (int64_t)g * kg * cg, cg, 1.0f,
                     dx + lo * c + g * cg, c, pl->gemm_err);
    else
        tb_cpu_sgemm(1, false, false, m, rscg, kg, 1.0f, dy + lo * k + g * kg, k, wv + (int64_t)g * kg * rscg,
                     rscg, 0.0f, pl->col + lo * rscg, rscg, pl->gemm_err);
}

/* Block blk's partials: pw (OHWI) += dy rows^T * patches, pb += dy rows. */
static void backward_filter_block(const conv_plan *pl, float *pw, float *pb, const float *dy, const float *x,
                                  int64_t nbc, int blk)
{
    int64_t lo, hi;
    block_rows(nbc * pl->oh * pl->ow, pl->blocks, blk, &lo, &hi);
    if (hi == lo)
        return;
    const int m = (int)(hi - lo), c = (int)pl->c, k = (int)pl->k, cg = (int)pl->cg, kg = (int)pl->kg;
    const int rscg = (int)pl->rscg;
    const float *dyb = dy + lo * k;
    float *col = pl->col ? pl->col + lo * rscg : NULL; /* DIRECT has no col */
    for (int g = 0; g < pl->groups; g++) {
        if (pl->kind == CONV_DIRECT) {
            tb_cpu_sgemm(1, true, false, kg, cg, m, 1.0f, dyb + g * kg, k, x + lo * c + g * cg, c, 1.0f,
                         pw + (int64_t)g * kg * cg, cg, pl->gemm_err);
        } else {
            im2col_rows(pl, col, x, lo, hi, g);
            tb_cpu_sgemm(1, true, false, kg, rscg, m, 1.0f, dyb + g * kg, k, col, rscg, 1.0f,
                         pw + (int64_t)g * kg * rscg, rscg, pl->gemm_err);
        }
    }
    if (pb)
        for (int64_t i = 0; i < m; i++)
            for (int64_t kk = 0; kk < k; kk++)
                pb[kk] += dyb[i * k + kk];
}

static void forward_chunk(const conv_plan *pl, float *y, const float *x, const float *wv, const float *bias,
                          int64_t nbc)
{
    if (pl->kind == CONV_DEPTHWISE) {
        depthwise_forward(pl, y, x, wv, bias, nbc);
        return;
    }
    const int tasks = plan_tasks(pl, nbc * pl->oh * pl->ow);
#pragma omp parallel for schedule(dynamic, 1) num_threads(pl->threads)
    for (int blk = 0; blk < tasks; blk++)
        forward_block(pl, y, x, wv, bias, nbc, tasks, blk);
}

/* The plan of the forward conv that computes dx from dy: input dy {nb,oh,ow,k},
 * output dx {nb,h,w,c}, padding r-1-ph (s-1-pw), stride 1, accumulating. */
static conv_plan flip_plan(const conv_plan *pl)
{
    conv_plan fp = *pl;
    fp.h = pl->oh, fp.w = pl->ow, fp.c = fp.cg = pl->k;
    fp.oh = pl->h, fp.ow = pl->w, fp.k = fp.kg = pl->c;
    fp.ph = (int)(pl->r - 1 - pl->ph), fp.pw = (int)(pl->s - 1 - pl->pw);
    fp.rscg = pl->r * pl->s * pl->k;
    fp.accumulate = true;
    return fp;
}

#define FLIP_TILE 16
/* wt[ci, ky, kx, kk] = w[kk, r-1-ky, s-1-kx, ci]: the flipped conv's OHWI
 * filter. Tiled transpose per tap, parallel over taps and input channels. */
static void flip_weights(const conv_plan *pl, float *wt, const tb_tensor *w)
{
    const int64_t taps = pl->r * pl->s, k = pl->k, c = pl->c;
    const int64_t cblocks = (c + FLIP_TILE - 1) / FLIP_TILE;
    const bool f32 = w->dtype == TB_F32;
    const float *wf = w->data;
#pragma omp parallel for schedule(static) num_threads(pl->threads)
    for (int64_t q = 0; q < taps * cblocks; q++) {
        const int64_t t = q / cblocks, c0 = (q % cblocks) * FLIP_TILE, c1 = min64(c, c0 + FLIP_TILE);
        const int64_t src_tap = taps - 1 - t; /* (r-1-ky)*s + (s-1-kx) */
        for (int64_t k0 = 0; k0 < k; k0 += FLIP_TILE) {
            const int64_t k1 = min64(k, k0 + FLIP_TILE);
            for (int64_t kk = k0; kk < k1; kk++)
                for (int64_t ci = c0; ci < c1; ci++) {
                    int64_t src = (kk * taps + src_tap) * c + ci;
                    wt[(ci * taps + t) * k + kk] = f32 ? wf[src] : tb_load_f32(w->data, w->dtype, src);
                }
        }
    }
}

static void backward_data_chunk(const conv_plan *pl, float *dx, const float *dy, const float *wv, int64_t nbc)
{
    if (pl->kind == CONV_DEPTHWISE) {
        depthwise_backward_data(pl, dx, dy, wv, nbc);
        return;
    }
    const int tasks = plan_tasks(pl, nbc * pl->oh * pl->ow);
    if (pl->kind == CONV_DIRECT) { /* dx rows are the GEMM's own output: one pass */
#pragma omp parallel for schedule(dynamic, 1) num_threads(pl->threads)
        for (int blk = 0; blk < tasks; blk++)
            for (int g = 0; g < pl->groups; g++)
                backward_data_block(pl, dx, dy, wv, nbc, g, tasks, blk);
        return;
    }
    for (int g = 0; g < pl->groups; g++) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(pl->threads)
        for (int blk = 0; blk < tasks; blk++)
            backward_data_block(pl, dx, dy, wv, nbc, g, tasks, blk);
        /* after every block's GEMM: an input pixel gathers from several blocks' rows */
        col2im_add(pl, dx, pl->col, nbc, g);
    }
}

/* Partials of block blk: bias {k} at part + blk*k, weights at part + blocks*k + blk*k*rscg. */
static float *bias_part(const conv_plan *pl, int blk) { return pl->part + (int64_t)blk * pl->k; }
static float *weight_part(const conv_plan *pl, int blk)
{
    return pl->part + (int64_t)pl->blocks * pl->k + (int64_t)blk * pl->k * pl->rscg;
}

static void backward_filter_chunk(const conv_plan *pl, const float *dy, const float *x, int64_t nbc, bool want_bias)
{
#pragma omp parallel for schedule(static) num_threads(pl->threads)
    for (int blk = 0; blk < pl->blocks; blk++) {
        float *pb = want_bias ? bias_part(pl, blk) : NULL;
        if (pl->kind == CONV_DEPTHWISE)
            depthwise_filter_block(pl, weight_part(pl, blk), pb, dy, x, nbc, blk);
        else
            backward_filter_block(pl, weight_part(pl, blk), pb, dy, x, nbc, blk);
    }
}

/* ------------------------------------------------------------ reductions */

/* dbias[kk] += sum of the block partials, in block order. */
static void reduce_bias(const conv_plan *pl, tb_tensor *dbias)
{
    for (int64_t kk = 0; kk < pl->k; kk++) {
        float acc = 0.0f;
        for (int blk = 0; blk < pl->blocks; blk++)
            acc += bias_part(pl, blk)[kk];
        tb_cpu_accum_row(dbias, kk, &acc, 1);
    }
}

/* dw[i] (OHWI) += sum of the block partials, in block order. Depthwise
 * partials are {tap, k}: element (kk, tap) of dw sits at tap*k + kk there. */
/* Not depthwise: the same sums, in runs of REDUCE_RUN elements so the
 * loops vectorise (acc starts at 0.0f and is added once, rounded once, like
 * the depthwise path below: bitwise equal), for every dtype of dw. */
#define REDUCE_RUN 1024
static void reduce_dw_runs(const conv_plan *pl, tb_tensor *dw)
{
    const int64_t count = pl->k * pl->rscg, runs = (count + REDUCE_RUN - 1) / REDUCE_RUN;
#pragma omp parallel for schedule(static) num_threads(pl->threads)
    for (int64_t r = 0; r < runs; r++) {
        const int64_t i0 = r * REDUCE_RUN, len = min64(REDUCE_RUN, count - i0);
        float acc[REDUCE_RUN];
        for (int64_t j = 0; j < len; j++)
            acc[j] = 0.0f;
        for (int blk = 0; blk < pl->blocks; blk++) {
            const float *restrict src = weight_part(pl, blk) + i0;
            for (int64_t j = 0; j < len; j++)
                acc[j] += src[j];
        }
        tb_cpu_accum_row(dw, i0, acc, len);
    }
}

static void reduce_dw(const conv_plan *pl, tb_tensor *dw)
{
    const int64_t count = pl->k * pl->rscg, taps = pl->r * pl->s;
    const bool transposed = pl->kind == CONV_DEPTHWISE;
    if (!transposed) {
        reduce_dw_runs(pl, dw);
        return;
    }
#pragma omp parallel for schedule(static) num_threads(pl->threads)
    for (int64_t i = 0; i < count; i++) {
        int64_t j = transposed ? (i % taps) * pl->k + i / taps : i;
        float acc = 0.0f;
        for (int blk = 0; blk < pl->blocks; blk++)
            acc += weight_part(pl, blk)[j];
        tb_cpu_accum_row(dw, i, &acc, 1);
    }
}

/* ------------------------------------------------------------------ ops */

int tb_cpu_conv2d_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *w,
                          const tb_tensor *bias, const tb_conv2d_params *p)
{
    size_t onednn_bytes;
    if (tb_cpu_conv2d_onednn_plan(be, y, x, w, p, &onednn_bytes))
        return tb_cpu_conv2d_onednn_forward(be, y, x, w, bias, p);
    conv_plan pl;
    TB_TRY(plan_prepare(&pl, be, y, x, w, p, "conv2d_forward"));
    tb_cpu_gemm_error gemm_err = {0};
    pl.gemm_err = &gemm_err;
    const float *wv = weights_f32(&pl, w);
    const float *bv = NULL;
    if (bias) {
        bv = bias->data;
        if (pl.low) {
            tb_convert_to_f32(pl.bf, bias->data, bias->dtype, pl.k);
            bv = pl.bf;
        }
    }
    const int64_t x_img = pl.h * pl.w * pl.c, y_img = pl.oh * pl.ow * pl.k;
    for (int64_t n0 = 0; n0 < pl.n; n0 += pl.nb) {
        int64_t nbc = min64(pl.nb, pl.n - n0);
        const float *xc = stage_in(&pl, pl.xs, x, n0 * x_img, nbc * x_img);
        float *yc = pl.low ? pl.ys : (float *)y->data + n0 * y_img;
        forward_chunk(&pl, yc, xc, wv, bv, nbc);
        stage_out(&pl, y, yc, n0 * y_img, nbc * y_img);
    }
    if (gemm_err.status)
        return tb_cpu_gemm_fail(&gemm_err, "cpu conv2d_forward");
    return TB_OK;
}

int tb_cpu_conv2d_backward_data(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *w,
                                const tb_conv2d_params *p)
{
    if (!dx)
        return TB_OK;
    size_t onednn_bytes;
    if (tb_cpu_conv2d_onednn_plan(be, dy, dx, w, p, &onednn_bytes))
        return tb_cpu_conv2d_onednn_backward_data(be, dx, dy, w, p);
    conv_plan pl;
    TB_TRY(plan_prepare(&pl, be, dy, dx, w, p, "conv2d_backward_data"));
    tb_cpu_gemm_error gemm_err = {0};
    pl.gemm_err = &gemm_err;
    conv_plan fp;
    const float *wv;
    if (pl.flip) {
        fp = flip_plan(&pl);
        flip_weights(&pl, pl.wf, w);
        wv = pl.wf;
    } else {
        wv = weights_f32(&pl, w);
    }
    const int64_t x_img = pl.h * pl.w * pl.c, y_img = pl.oh * pl.ow * pl.k;
    for (int64_t n0 = 0; n0 < pl.n; n0 += pl.nb) {
        int64_t nbc = min64(pl.nb, pl.n - n0);
        const float *dyc = stage_in(&pl, pl.ys, dy, n0 * y_img, nbc * y_img);
        float *dxc = stage_in(&pl, pl.xs, dx, n0 * x_img, nbc * x_img); /* read: we accumulate */
        if (pl.flip)
            forward_chunk(&fp, dxc, dyc, wv, NULL, nbc);
        else
            backward_data_chunk(&pl, dxc, dyc, wv, nbc);
        stage_out(&pl, dx, dxc, n0 * x_img, nbc * x_img);
    }
    if (gemm_err.status)
        return tb_cpu_gemm_fail(&gemm_err, "cpu conv2d_backward_data");
    return TB_OK;
}

int tb_cpu_conv2d_backward_filter(tb_backend *be, tb_tensor *dw, tb_tensor *dbias, const tb_tensor *dy,
                                  const tb_tensor *x, const tb_conv2d_params *p)
{
    size_t onednn_bytes;
    if (tb_cpu_conv2d_onednn_plan(be, dy, x, dw, p, &onednn_bytes))
        return tb_cpu_conv2d_onednn_backward_filter(be, dw, dbias, dy, x, p);
    conv_plan pl;
    TB_TRY(plan_prepare(&pl, be, dy, x, dw, p, "conv2d_backward_filter"));
    tb_cpu_gemm_error gemm_err = {0};
    pl.gemm_err = &gemm_err;
    memset(pl.part, 0, sizeof(float) * pl.part_n);
    const int64_t x_img = pl.h * pl.w * pl.c, y_img = pl.oh * pl.ow * pl.k;
    for (int64_t n0 = 0; n0 < pl.n; n0 += pl.nb) {
        int64_t nbc = min64(pl.nb, pl.n - n0);
        const float *dyc = stage_in(&pl, pl.ys, dy, n0 * y_img, nbc * y_img);
        const float *xc = stage_in(&pl, pl.xs, x, n0 * x_img, nbc * x_img);
        backward_filter_chunk(&pl, dyc, xc, nbc, dbias != NULL);
    }
    if (gemm_err.status)
        return tb_cpu_gemm_fail(&gemm_err, "cpu conv2d_backward_filter");
    reduce_dw(&pl, dw);
    if (dbias)
        reduce_bias(&pl, dbias);
    return TB_OK;
}

size_t tb_cpu_conv2d_workspace_size(tb_backend *be, const tb_tensor *y, const tb_tensor *x, const tb_tensor *w,
                                    const tb_conv2d_params *p, bool plan)
{
    /* oneDNN's primitives for the shape are created by the first query (at
     * graph build: plan) and found again by the later ones; the GEMM path's
     * plan is arithmetic, the same at build and at call */
    (void)plan;
    conv_plan pl;
    if (!plan_init(&pl, be, y, x, w, p))
        return 0;
    size_t onednn_bytes;
    if (tb_cpu_conv2d_onednn_plan(be, y, x, w, p, &onednn_bytes))
        return onednn_bytes;
    return plan_bytes(&pl);
}
