/* conv2d by direct loops: the reference the fast path (conv2d.c) and every
 * other backend are tested against. One output (or gradient) element at a
 * time, read through tb_load_f32 so every float dtype takes the same path,
 * accumulated in f32 and stored once. No threads, no workspace, no tricks.
 *
 * x {n,h,w,c} NHWC, w {k,r,s,c/groups} OHWI, y {n,oh,ow,k}; output channel
 * kk belongs to group kk / (k/groups) and reads input channels
 * [g*cg, (g+1)*cg) with cg = c/groups. Input row of output row oy and kernel
 * row ky: iy = oy*stride_h - pad_h + ky*dil_h (the same for columns).
 */
#include "kernels/cpu/cpu_ops.h"
#include "kernels/error.h"

typedef struct naive_geom {
    int64_t n, h, w, c, k, r, s, oh, ow, cg, kg;
} naive_geom;

static naive_geom geom_of(const tb_tensor *x, const tb_tensor *w, const tb_tensor *y, int groups)
{
    naive_geom g = {x->shape[0], x->shape[1], x->shape[2], x->shape[3], w->shape[0], w->shape[1], w->shape[2],
                    y->shape[1], y->shape[2], x->shape[3] / groups, w->shape[0] / groups};
    return g;
}

int tb_cpu_conv2d_forward_naive(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *w,
                                const tb_tensor *bias, const tb_conv2d_params *p)
{
    (void)be;
    naive_geom g = geom_of(x, w, y, p->groups);
    for (int64_t b = 0; b < g.n; b++)
        for (int64_t oy = 0; oy < g.oh; oy++)
            for (int64_t ox = 0; ox < g.ow; ox++)
                for (int64_t kk = 0; kk < g.k; kk++) {
                    int64_t c0 = (kk / g.kg) * g.cg;
                    float acc = bias ? tb_load_f32(bias->data, bias->dtype, kk) : 0.0f;
                    for (int64_t ky = 0; ky < g.r; ky++) {
                        int64_t iy = oy * p->stride_h - p->pad_h + ky * p->dil_h;
                        if (iy < 0 || iy >= g.h)
                            continue;
                        for (int64_t kx = 0; kx < g.s; kx++) {
                            int64_t ix = ox * p->stride_w - p->pad_w + kx * p->dil_w;
                            if (ix < 0 || ix >= g.w)
                                continue;
                            for (int64_t ci = 0; ci < g.cg; ci++)
                                acc += tb_load_f32(x->data, x->dtype, ((b * g.h + iy) * g.w + ix) * g.c + c0 + ci) *
                                       tb_load_f32(w->data, w->dtype, ((kk * g.r + ky) * g.s + kx) * g.cg + ci);
                        }
                    }
                    tb_store_f32(y->data, y->dtype, ((b * g.oh + oy) * g.ow + ox) * g.k + kk, acc);
                }
    return TB_OK;
}

/* dx[b,iy,ix,ci] += sum over the (ky,kx,oy,ox) with iy = oy*sh - ph + ky*dh
 * (and likewise for x) and the output channels of ci's group of
 * dy[b,oy,ox,kk] * w[kk,ky,kx,ci - c0]. */
int tb_cpu_conv2d_backward_data_naive(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *w,
                                      const tb_conv2d_params *p)
{
    (void)be;
    if (!dx)
        return TB_OK;
    naive_geom g = geom_of(dx, w, dy, p->groups);
    for (int64_t b = 0; b < g.n; b++)
        for (int64_t iy = 0; iy < g.h; iy++)
            for (int64_t ix = 0; ix < g.w; ix++)
                for (int64_t ci = 0; ci < g.c; ci++) {
                    int64_t grp = ci / g.cg;
                    float acc = 0.0f;
                    for (int64_t ky = 0; ky < g.r; ky++) {
                        int64_t ty = iy + p->pad_h - ky * p->dil_h;
                        if (ty < 0 || ty % p->stride_h || ty / p->stride_h >= g.oh)
                            continue;
                        int64_t oy = ty / p->stride_h;
                        for (int64_t kx = 0; kx < g.s; kx++) {
                            int64_t tx = ix + p->pad_w - kx * p->dil_w;
                            if (tx < 0 || tx % p->stride_w || tx / p->stride_w >= g.ow)
                                continue;
                            int64_t ox = tx / p->stride_w;
                            for (int64_t kk = grp * g.kg; kk < (grp + 1) * g.kg; kk++)
                                acc += tb_load_f32(dy->data, dy->dtype, ((b * g.oh + oy) * g.ow + ox) * g.k + kk) *
                                       tb_load_f32(w->data, w->dtype,
                                                   ((kk * g.r + ky) * g.s + kx) * g.cg + (ci - grp * g.cg));
                        }
                    }
                    int64_t i = ((b * g.h + iy) * g.w + ix) * g.c + ci;
                    tb_store_f32(dx->data, dx->dtype, i, tb_load_f32(dx->data, dx->dtype, i) + acc);
                }
    return TB_OK;
}

/* dw[kk,ky,kx,ci] += sum over b,oy,ox of dy[b,oy,ox,kk] * x[b,iy,ix,c0+ci];
 * dbias[kk] += sum over b,oy,ox of dy[b,oy,ox,kk]. */
int tb_cpu_conv2d_backward_filter_naive(tb_backend *be, tb_tensor *dw, tb_tensor *dbias, const tb_tensor *dy,
                                        const tb_tensor *x, const tb_conv2d_params *p)
{
    (void)be;
    naive_geom g = geom_of(x, dw, dy, p->groups);
    for (int64_t kk = 0; kk < g.k; kk++) {
        int64_t c0 = (kk / g.kg) * g.cg;
        for (int64_t ky = 0; ky < g.r; ky++)
            for (int64_t kx = 0; kx < g.s; kx++)
                for (int64_t ci = 0; ci < g.cg; ci++) {
                    float acc = 0.0f;
                    for (int64_t b = 0; b < g.n; b++)
                        for (int64_t oy = 0; oy < g.oh; oy++) {
                            int64_t iy = oy * p->stride_h - p->pad_h + ky * p->dil_h;
                            if (iy < 0 || iy >= g.h)
                                continue;
                            for (int64_t ox = 0; ox < g.ow; ox++) {
                                int64_t ix = ox * p->stride_w - p->pad_w + kx * p->dil_w;
                                if (ix < 0 || ix >= g.w)
                                    continue;
                                acc += tb_load_f32(dy->data, dy->dtype, ((b * g.oh + oy) * g.ow + ox) * g.k + kk) *
                                       tb_load_f32(x->data, x->dtype, ((b * g.h + iy) * g.w + ix) * g.c + c0 + ci);
                            }
                        }
                    int64_t i = ((kk * g.r + ky) * g.s + kx) * g.cg + ci;
                    tb_store_f32(dw->data, dw->dtype, i, tb_load_f32(dw->data, dw->dtype, i) + acc);
                }
        if (dbias) {
            float acc = 0.0f;
            for (int64_t j = 0; j < g.n * g.oh * g.ow; j++)
                acc += tb_load_f32(dy->data, dy->dtype, j * g.k + kk);
            tb_store_f32(dbias->data, dbias->dtype, kk, tb_load_f32(dbias->data, dbias->dtype, kk) + acc);
        }
    }
    return TB_OK;
}
