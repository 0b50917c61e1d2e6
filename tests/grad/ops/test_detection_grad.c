/* Gradients and values of the differentiable detection-side ops:
 *  - roi_align: forward against a direct bilinear computation written here
 *    (tent weights in double, over every pixel), a hand-computed ramp, and the
 *    backward against central finite differences, for RoIs partly outside the
 *    map, aligned true/false, sampling_ratio 0 (adaptive) and 2; f16 against
 *    f32; the workspace (tb_roi_align_workspace_size, reserved before every
 *    call): a smaller one is a clear error, exactly the query's bytes suffice
 *    at the largest shape here, and the f16/bf16 backward is bitwise the f32
 *    backward rounded once.
 *  - smooth_l1: hand values, and the backward against finite differences for
 *    beta 0 (L1), 1/9 and 1.
 *  - batchnorm_backward_eval (frozen BN): finite differences, optional outputs.
 *  - softmax_ce with ignored rows (negative labels): the loss is the CE of the
 *    labelled rows only, ignored rows get no gradient.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kernels/backend.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/error.h"
#include "kernels/ops.h"
#include "ops_testutil.h"

#define OK(call) assert_int_equal((call), TB_OK)

static tb_tensor like(const tb_tensor *t)
{
    return tt_new(t->dtype, t->ndim, t->shape[0], t->ndim > 1 ? t->shape[1] : 1, t->ndim > 2 ? t->shape[2] : 1,
                  t->ndim > 3 ? t->shape[3] : 1);
}

static void gc_begin(gcase *c, const char *name)
{
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->h = 1e-2;
    c->atol = 2e-3;
    c->rtol = 1e-2;
}

static void gc_finish(gcase *c, tb_rng *r)
{
    for (int i = 0; i < c->n_in; i++)
        c->din[i] = like(&c->in[i]);
    for (int o = 0; o < c->n_out; o++) {
        c->dout[o] = like(&c->out[o]);
        tt_uniform(&c->dout[o], r, -1.0, 1.0, c->out[o].dtype);
    }
}

/* ============================================================ roi_align */

/* RoIs over a 2-image, 6x7 map at spatial_scale 0.5 (input canvas 12x14). */
#define RA_ROIS 6
static const double ra_rois[RA_ROIS][5] = {
    {0, 1.0, 1.2, 9.5, 8.3},   /* inside */
    {1, -4.0, -3.0, 6.2, 5.1}, /* sticks out left and top */
    {0, 8.3, 6.1, 20.2, 16.6}, /* sticks out right and bottom, partly beyond size + 1 */
    {1, 3.1, 3.3, 3.6, 3.5},   /* tiny: the legacy rule makes it one feature pixel */
    {0, 2.0, 2.0, 2.0, 2.0},   /* empty */
    {1, 12.9, 0.3, 13.9, 11.7} /* along the right edge */
};

/* x(b, yy, xx, ch) by tent weights over every pixel, coordinates clamped into
 * the map first; 0 outside [-1, size]: torchvision's bilinear rule restated. */
static double ref_bilinear(const tb_tensor *x, int64_t b, double yy, double xx, int64_t ch)
{
    int64_t h = x->shape[1], w = x->shape[2], c = x->shape[3];
    if (yy < -1.0 || yy > (double)h || xx < -1.0 || xx > (double)w)
        return 0.0;
    yy = fmin(fmax(yy, 0.0), (double)(h - 1));
    xx = fmin(fmax(xx, 0.0), (double)(w - 1));
    double s = 0.0;
    for (int64_t i = 0; i < h; i++)
        for (int64_t j = 0; j < w; j++) {
            double wy = fmax(0.0, 1.0 - fabs(yy - (double)i)), wx = fmax(0.0, 1.0 - fabs(xx - (double)j));
            s += wy * wx * tt_get(x, ((b * h + i) * w + j) * c + ch);
        }
    return s;
}

/* The whole forward, in double, from the definition in kernels/ops.h. */
static void ref_roi_align(double *y, const tb_tensor *x, const tb_tensor *rois, const tb_roi_align_params *p)
{
    int64_t c = x->shape[3];
    double off = p->aligned ? 0.5 : 0.0;
    for (int64_t r = 0; r < rois->shape[0]; r++) {
        double v[5];
        for (int k = 0; k < 5; k++)
            v[k] = tt_get(rois, 5 * r + k);
        double x0 = v[1] * p->spatial_scale - off, y0 = v[2] * p->spatial_scale - off;
        double rw = (v[3] - v[1]) * p->spatial_scale, rh = (v[4] - v[2]) * p->spatial_scale;
        if (!p->aligned)
            rw = fmax(rw, 1.0), rh = fmax(rh, 1.0);
        int gh = p->sampling_ratio > 0 ? p->sampling_ratio : (int)ceil(rh / p->pooled_h);
        int gw = p->sampling_ratio > 0 ? p->sampling_ratio : (int)ceil(rw / p->pooled_w);
        double bh = rh / p->pooled_h, bw = rw / p->pooled_w, count = fmax(gh * gw, 1);
        for (int ph = 0; ph < p->pooled_h; ph++)
            for (int pw = 0; pw < p->pooled_w; pw++)
                for (int64_t ch = 0; ch < c; ch++) {
                    double s = 0.0;
                    for (int iy = 0; iy < gh; iy++)
                        for (int ix = 0; ix < gw; ix++)
                            s += ref_bilinear(x, (int64_t)v[0], y0 + bh * (ph + (iy + 0.5) / gh),
                                              x0 + bw * (pw + (ix + 0.5) / gw), ch);
                    y[((r * p->pooled_h + ph) * p->pooled_w + pw) * c + ch] = s / count;
                }
    }
}

/* Reserves the op's workspace on tt_be, as a graph does at build. */
static void ra_reserve(const tb_tensor *x, const tb_tensor *rois, const tb_roi_align_params *p)
{
    OK(tb_backend_reserve_workspace(tt_be, tb_roi_align_workspace_size(tt_be, x, rois, p)));
}

static tb_tensor make_rois(int count, const double (*v)[5])
{
    tb_tensor rois = tt_2d(TB_F32, count, 5);
    for (int r = 0; r < count; r++)
        for (int k = 0; k < 5; k++)
            tt_set(&rois, 5 * r + k, v[r][k]);
    return rois;
}

static const tb_roi_align_params ra_variants[4] = {
    {2, 3, 0.5f, 0, true},
    {2, 3, 0.5f, 0, false},
    {2, 3, 0.5f, 2, true},
    {2, 3, 0.5f, 2, false},
};

static void test_roi_align_forward_reference(void **state)
{
    (void)state;
    tb_rng r;
    tb_rng_seed(&r, 11, 0);
    tb_tensor x = tt_4d(TB_F32, 2, 6, 7, 3), rois = make_rois(RA_ROIS, ra_rois);
    tt_uniform(&x, &r, -1.0, 1.0, TB_F32);
    for (int v = 0; v < 4; v++) {
        const tb_roi_align_params *p = &ra_variants[v];
        tb_tensor y = tt_4d(TB_F32, RA_ROIS, p->pooled_h, p->pooled_w, 3), ref = like(&y);
        double want[RA_ROIS * 2 * 3 * 3];
        ra_reserve(&x, &rois, p);
        OK(tb_roi_align_forward(tt_be, &y, &x, &rois, p));
        ref_roi_align(want, &x, &rois, p);
        tt_set_values(&ref, want);
        char what[64];
        snprintf(what, sizeof what, "roi_align variant %d", v);
        tt_assert_close(what, &y, &ref, 1e-5, 1e-5);
    }
    tt_check_guards();
    tt_free_all();
}

/* A map whose value is its column index: bilinear sampling reproduces it, so
 * each bin averages its sample columns. aligned, scale 1, RoI x 1.5..4.5:
 * start 1.0, bins 1 wide, samples at start + pw + 0.25 and + 0.75. */
static void test_roi_align_ramp(void **state)
{
    (void)state;
    tb_tensor x = tt_4d(TB_F32, 1, 4, 8, 2), y = tt_4d(TB_F32, 1, 1, 3, 2);
    for (int64_t i = 0; i < tb_numel(&x); i++)
        tt_set(&x, i, (double)(i / 2 % 8));
    const double roi[1][5] = {{0, 1.5, 0.5, 4.5, 2.5}};
    tb_tensor rois = make_rois(1, roi);
    tb_roi_align_params p = {1, 3, 1.0f, 2, true};
    ra_reserve(&x, &rois, &p);
    OK(tb_roi_align_forward(tt_be, &y, &x, &rois, &p));
    const double want[6] = {1.5, 1.5, 2.5, 2.5, 3.5, 3.5};
    for (int i = 0; i < 6; i++)
        assert_true(fabs(tt_get(&y, i) - want[i]) < 1e-6);
    /* legacy (not aligned): start 1.5, samples at 1.75 and 2.25, ... */
    p.aligned = false;
    OK(tb_roi_align_forward(tt_be, &y, &x, &rois, &p));
    for (int i = 0; i < 6; i++)
        assert_true(fabs(tt_get(&y, i) - (want[i] + 0.5)) < 1e-6);
    tt_free_all();
}

static int ra_fwd(gcase *c)
{
    return tb_roi_align_forward(tt_be, &c->out[0], &c->in[0], &c->aux[0], &ra_variants[c->flag]);
}

static int ra_bwd(gcase *c)
{
    return tb_roi_align_backward(tt_be, &c->din[0], &c->dout[0], &c->aux[0], &ra_variants[c->flag]);
}

static void test_roi_align_gradients(void **state)
{
    (void)state;
    tb_rng r;
    tb_rng_seed(&r, 12, 0);
    for (int v = 0; v < 4; v++) {
        gcase c;
        char name[64];
        snprintf(name, sizeof name, "roi_align variant %d", v);
        gc_begin(&c, name);
        c.flag = v;
        c.n_in = c.n_out = 1;
        c.in[0] = tt_4d(TB_F32, 2, 6, 7, 3);
        tt_uniform(&c.in[0], &r, -1.0, 1.0, TB_F32);
        c.aux[0] = make_rois(RA_ROIS, ra_rois);
        c.out[0] = tt_4d(TB_F32, RA_ROIS, 2, 3, 3);
        c.fwd = ra_fwd;
        c.bwd = ra_bwd;
        ra_reserve(&c.in[0], &c.aux[0], &ra_variants[v]);
        gc_finish(&c, &r);
        gc_check(&c);
        tt_free_all();
    }
}

/* f16 and bf16 features against the same values in f32. */
static void test_roi_align_low_precision(void **state)
{
    (void)state;
    tb_rng r;
    tb_rng_seed(&r, 13, 0);
    const tb_dtype dts[2] = {TB_F16, TB_BF16};
    for (int k = 0; k < 2; k++) {
        tb_dtype dt = dts[k];
        double tol = dt == TB_F16 ? 2e-3 : 1.6e-2;
        tb_tensor x32 = tt_4d(TB_F32, 2, 6, 7, 3), x = tt_4d(dt, 2, 6, 7, 3), rois = make_rois(RA_ROIS, ra_rois);
        tt_uniform(&x32, &r, -1.0, 1.0, dt);
        tt_copy_values(&x, &x32);
        tb_tensor y32 = tt_4d(TB_F32, RA_ROIS, 2, 3, 3), y = tt_4d(dt, RA_ROIS, 2, 3, 3);
        tb_tensor dy32 = like(&y32), dy = like(&y), dx32 = like(&x32), dx = like(&x);
        tt_uniform(&dy32, &r, -1.0, 1.0, dt);
        tt_copy_values(&dy, &dy32);
        ra_reserve(&x32, &rois, &ra_variants[0]);
        ra_reserve(&x, &rois, &ra_variants[0]);
        OK(tb_roi_align_forward(tt_be, &y32, &x32, &rois, &ra_variants[0]));
        OK(tb_roi_align_forward(tt_be, &y, &x, &rois, &ra_variants[0]));
        tt_assert_close("roi_align low precision forward", &y, &y32, tol, tol);
        OK(tb_roi_align_backward(tt_be, &dx32, &dy32, &rois, &ra_variants[0]));
        OK(tb_roi_align_backward(tt_be, &dx, &dy, &rois, &ra_variants[0]));
        tt_assert_close("roi_align low precision backward", &dx, &dx32, tol, tol);
        tt_free_all();
    }
}

/* A bad image index is an error naming the RoI, and nothing is written. */
static void test_roi_align_bad_rois(void **state)
{
    (void)state;
    tb_tensor x = tt_4d(TB_F32, 2, 6, 7, 3), y = tt_4d(TB_F32, 1, 2, 3, 3);
    const double bad[1][5] = {{2, 0, 0, 4, 4}};
    tb_tensor rois = make_rois(1, bad);
    ra_reserve(&x, &rois, &ra_variants[0]);
    assert_int_equal(tb_roi_align_forward(tt_be, &y, &x, &rois, &ra_variants[0]), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "RoI 0"));
    assert_true(tt_max_abs(&y) == 0.0);
    tt_set(&rois, 0, 0.5);
    assert_int_equal(tb_roi_align_backward(tt_be, &x, &y, &rois, &ra_variants[0]), TB_ERR_INVALID);
    tt_free_all();
}

/* Fails unless rc is TB_ERR_INVALID with a message naming `op`, the bytes
 * needed and reserved, and the query. */
static void expect_small_workspace(int rc, const char *op, size_t need, size_t have)
{
    char frags[4][96];
    snprintf(frags[0], sizeof frags[0], "%s", op);
    snprintf(frags[1], sizeof frags[1], "needs %zu bytes of workspace", need);
    snprintf(frags[2], sizeof frags[2], "%zu reserved", have);
    snprintf(frags[3], sizeof frags[3], "tb_roi_align_workspace_size()");
    if (rc != TB_ERR_INVALID)
        fail_msg("%s with %zu of %zu bytes: status %s, expected TB_ERR_INVALID", op, have, need, tb_status_name(rc));
    for (int i = 0; i < 4; i++)
        if (!strstr(tb_errmsg(), frags[i]))
            fail_msg("%s: message \"%s\" lacks \"%s\"", op, tb_errmsg(), frags[i]);
}

#define WS_GUARD 4096
#define WS_GUARD_BYTE 0xa5

/* The backward in a workspace of exactly `need` bytes lent to be, filled
 * with 0xff and followed by guard bytes: it must succeed and write nothing
 * past `need`. */
static void ra_backward_exact(tb_backend *be, size_t need, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *rois,
                              const tb_roi_align_params *p)
{
    void *own = be->workspace;
    size_t own_size = be->workspace_size;
    unsigned char *buf = aligned_alloc(64, (need + WS_GUARD + 63) & ~(size_t)63);
    assert_non_null(buf);
    memset(buf, 0xff, need);
    memset(buf + need, WS_GUARD_BYTE, WS_GUARD);
    be->workspace = buf, be->workspace_size = need;
    int rc = tb_roi_align_backward(be, dx, dy, rois, p);
    be->workspace = own, be->workspace_size = own_size;
    size_t bad = WS_GUARD;
    for (size_t i = 0; i < WS_GUARD && bad == WS_GUARD; i++)
        if (buf[need + i] != WS_GUARD_BYTE)
            bad = i;
    free(buf);
    if (rc != TB_OK)
        fail_msg("roi_align_backward in an exact %zu-byte workspace: %s", need, tb_errmsg());
    if (bad != WS_GUARD)
        fail_msg("roi_align_backward wrote past its %zu-byte workspace (guard byte %zu)", need, bad);
}

/* The largest roi_align of this file, in f16 and bf16, 200 channels (7
 * blocks of 32, the last partial): a workspace one byte short of the query
 * is an error (front-end: forward and backward; the CPU code itself) that
 * writes nothing; exactly the query suffices with 1 and 2 threads; and the
 * result is bitwise the f32 backward on the same values, rounded once. */
static void test_roi_align_workspace(void **state)
{
    (void)state;
    tb_rng r;
    tb_rng_seed(&r, 14, 0);
    const tb_roi_align_params *p = &ra_variants[1];
    tb_tensor rois = make_rois(RA_ROIS, ra_rois), x32 = tt_4d(TB_F32, 2, 19, 25, 200);
    assert_int_equal(tb_roi_align_workspace_size(tt_be, &x32, &rois, p), 0); /* f32 needs none */
    assert_int_equal(tb_roi_align_workspace_size(tt_be, &x32, NULL, p), 0);
    const tb_dtype dts[2] = {TB_F16, TB_BF16};
    for (int k = 0; k < 2; k++) {
        tb_dtype dt = dts[k];
        tb_tensor x = tt_4d(dt, 2, 19, 25, 200), y = tt_4d(dt, RA_ROIS, 2, 3, 200), dy = like(&y);
        tb_tensor dx = like(&x), dx32 = like(&x32), dy32 = tt_4d(TB_F32, RA_ROIS, 2, 3, 200);
        tb_tensor want = like(&x), got = like(&x);
        tt_uniform(&dy32, &r, -1.0, 1.0, dt);
        tt_copy_values(&dy, &dy32);
        tt_uniform(&dx32, &r, -1.0, 1.0, dt); /* the backward accumulates onto these */
        tt_copy_values(&dx, &dx32);
        ra_reserve(&x32, &rois, p);
        OK(tb_roi_align_backward(tt_be, &dx32, &dy32, &rois, p));
        tb_convert_from_f32(want.data, dt, dx32.data, tb_numel(&dx32));

        for (int threads = 1; threads <= 2; threads++) {
            tb_backend *be = NULL;
            OK(tb_cpu_backend_create(&be, threads));
            size_t need = tb_roi_align_workspace_size(be, &x, &rois, p);
            assert_true(need > 0);
            assert_true(need < tb_numel(&x) * sizeof(float) / 2); /* far below an f32 copy of dx */
            OK(tb_backend_reserve_workspace(be, need - 1));
            memcpy(got.data, dx.data, tb_nbytes(&dx));
            expect_small_workspace(tb_roi_align_forward(be, &y, &x, &rois, p), "roi_align_forward", need, need - 1);
            expect_small_workspace(tb_roi_align_backward(be, &got, &dy, &rois, p), "roi_align_backward", need,
                                   need - 1);
            expect_small_workspace(tb_cpu_roi_align_backward(be, &got, &dy, &rois, p), "cpu roi_align_backward",
                                   need, need - 1);
            assert_true(tt_max_abs(&y) == 0.0);
            assert_memory_equal(got.data, dx.data, tb_nbytes(&dx)); /* nothing written */
            ra_backward_exact(be, need, &got, &dy, &rois, p);
            tt_assert_bitwise("roi_align low-precision backward vs f32 rounded once", &got, &want);
            tb_backend_destroy(be);
        }
        tt_check_guards();
    }
    tt_free_all();
}

/* ============================================================ smooth L1 */

static void test_smooth_l1_values(void **state)
{
    (void)state;
    tb_tensor pred = tt_1d(TB_F32, 5), tgt = tt_1d(TB_F32, 5), w = tt_1d(TB_F32, 5), loss = tt_1d(TB_F32, 1);
    tb_tensor d = tt_1d(TB_F32, 5);
    const double pv[5] = {0.5, -2.0, 0.1, 3.0, 1.0}, tv[5] = {0, 0, 0, 0, 1.0}, wv[5] = {1, 1, 0, 2, 1};
    tt_set_values(&pred, pv), tt_set_values(&tgt, tv), tt_set_values(&w, wv);
    OK(tb_smooth_l1_forward(tt_be, &loss, &pred, &tgt, &w, 1.0f, 2.0f));
    assert_true(fabs(tt_get(&loss, 0) - (0.125 + 1.5 + 2 * 2.5) / 2.0) < 1e-6);
    OK(tb_smooth_l1_forward(tt_be, &loss, &pred, &tgt, &w, 0.0f, 2.0f));
    assert_true(fabs(tt_get(&loss, 0) - (0.5 + 2.0 + 2 * 3.0) / 2.0) < 1e-6);
    OK(tb_smooth_l1_backward(tt_be, &d, &pred, &tgt, &w, 1.0f, 2.0f, 1.0f));
    const double g1[5] = {0.25, -0.5, 0, 1.0, 0};
    for (int i = 0; i < 5; i++)
        assert_true(fabs(tt_get(&d, i) - g1[i]) < 1e-6);
    /* beta 2: element 0 (d 0.5) is in the quadratic part: 0.5 d^2 / 2, gradient d / 2 */
    OK(tb_smooth_l1_forward(tt_be, &loss, &pred, &tgt, &w, 2.0f, 1.0f));
    assert_true(fabs(tt_get(&loss, 0) - (0.0625 + 1.0 + 2 * 2.0)) < 1e-6);
    tb_tensor d2 = tt_1d(TB_F32, 5);
    OK(tb_smooth_l1_backward(tt_be, &d2, &pred, &tgt, &w, 2.0f, 1.0f, 1.0f));
    const double g2[5] = {0.25, -1.0, 0, 2.0, 0};
    for (int i = 0; i < 5; i++)
        assert_true(fabs(tt_get(&d2, i) - g2[i]) < 1e-6);
    /* beta 0: sign(d) / norm, sign(0) = 0 (element 4 is an exact fit); accumulates */
    OK(tb_smooth_l1_backward(tt_be, &d, &pred, &tgt, &w, 0.0f, 2.0f, 2.0f));
    const double g0[5] = {0.25 + 1.0, -0.5 - 1.0, 0, 1.0 + 2.0, 0};
    for (int i = 0; i < 5; i++)
        assert_true(fabs(tt_get(&d, i) - g0[i]) < 1e-6);
    tt_free_all();
}

static int sl1_fwd(gcase *c)
{
    return tb_smooth_l1_forward(tt_be, &c->out[0], &c->in[0], &c->aux[0], &c->aux[1], c->f[0], c->f[1]);
}

static int sl1_bwd(gcase *c)
{
    float g = (float)tt_get(&c->dout[0], 0);
    return tb_smooth_l1_backward(tt_be, &c->din[0], &c->in[0], &c->aux[0], &c->aux[1], c->f[0], c->f[1], g);
}

static void test_smooth_l1_gradients(void **state)
{
    (void)state;
    tb_rng r;
    tb_rng_seed(&r, 21, 0);
    const float betas[3] = {0.0f, 1.0f / 9.0f, 1.0f};
    for (int k = 0; k < 3; k++) {
        gcase c;
        char name[64];
        snprintf(name, sizeof name, "smooth_l1 beta %g", (double)betas[k]);
        gc_begin(&c, name);
        c.h = 2e-3;
        c.f[0] = betas[k];
        c.f[1] = 4.0f;
        c.n_in = c.n_out = 1;
        c.in[0] = tt_2d(TB_F32, 8, 4);
        c.aux[0] = tt_2d(TB_F32, 8, 4);
        c.aux[1] = tt_2d(TB_F32, 8, 4);
        for (int64_t i = 0; i < 32; i++) {
            /* half inside the quadratic part (|d| in [0.2, 0.8] beta), half in the linear
             * part (|d| in [beta + 0.03, 2)): no kink within h of any point */
            double m, lo = betas[k] + 0.03;
            if (betas[k] > 0.0f && i % 2)
                m = betas[k] * (0.2 + 0.6 * tb_rng_uniform(&r));
            else
                m = lo + (2.0 - lo) * tb_rng_uniform(&r);
            double t = tb_rng_uniform(&r) * 4.0 - 2.0;
            tt_set(&c.aux[0], i, t);
            tt_set(&c.in[0], i, t + (tb_rng_uniform(&r) < 0.5 ? -m : m));
            const double ws[4] = {0.0, 0.5, 1.0, 2.0};
            tt_set(&c.aux[1], i, ws[tb_rng_below(&r, 4)]);
        }
        c.out[0] = tt_1d(TB_F32, 1);
        c.fwd = sl1_fwd;
        c.bwd = sl1_bwd;
        gc_finish(&c, &r);
        gc_check(&c);
        tt_free_all();
    }
}

/* ============================================= frozen batchnorm backward */

static int bne_fwd(gcase *c)
{
    return tb_batchnorm_forward_eval(tt_be, &c->out[0], &c->in[0], &c->in[1], &c->in[2], &c->aux[0], &c->aux[1],
                                     1e-5f);
}

static int bne_bwd(gcase *c)
{
    return tb_batchnorm_backward_eval(tt_be, &c->din[0], &c->din[1], &c->din[2], &c->dout[0], &c->in[0], &c->in[1],
                                      &c->aux[0], &c->aux[1], 1e-5f);
}

static void test_batchnorm_eval_gradients(void **state)
{
    (void)state;
    tb_rng r;
    tb_rng_seed(&r, 31, 0);
    gcase c;
    gc_begin(&c, "batchnorm_backward_eval");
    c.h = 5e-3;
    c.n_in = 3;
    c.n_out = 1;
    c.in[0] = tt_4d(TB_F32, 2, 3, 3, 5);
    tt_uniform(&c.in[0], &r, -2.0, 3.0, TB_F32);
    c.in[1] = tt_1d(TB_F32, 5);
    tt_uniform(&c.in[1], &r, 0.5, 1.5, TB_F32);
    c.in[2] = tt_1d(TB_F32, 5);
    tt_uniform(&c.in[2], &r, -0.5, 0.5, TB_F32);
    c.aux[0] = tt_1d(TB_F32, 5);
    tt_uniform(&c.aux[0], &r, -0.5, 0.5, TB_F32);
    c.aux[1] = tt_1d(TB_F32, 5);
    tt_uniform(&c.aux[1], &r, 0.3, 2.0, TB_F32);
    c.out[0] = tt_4d(TB_F32, 2, 3, 3, 5);
    c.fwd = bne_fwd;
    c.bwd = bne_bwd;
    gc_finish(&c, &r);
    gc_check(&c);

    /* the formula itself, in double: dx = dy * gamma / sqrt(running_var + eps) */
    gc_run(&c);
    for (int64_t i = 0; i < tb_numel(&c.in[0]); i++) {
        int64_t j = i % 5;
        double want = tt_get(&c.dout[0], i) * tt_get(&c.in[1], j) / sqrt(tt_get(&c.aux[1], j) + 1e-5);
        assert_true(fabs(tt_get(&c.din[0], i) - want) <= 1e-6 * (1.0 + fabs(want)));
    }
    for (int64_t j = 0; j < 5; j++) {
        double sg = 0.0, sb = 0.0, invstd = 1.0 / sqrt(tt_get(&c.aux[1], j) + 1e-5);
        for (int64_t i = j; i < tb_numel(&c.in[0]); i += 5) {
            sb += tt_get(&c.dout[0], i);
            sg += tt_get(&c.dout[0], i) * (tt_get(&c.in[0], i) - tt_get(&c.aux[0], j)) * invstd;
        }
        assert_true(fabs(tt_get(&c.din[1], j) - sg) <= 1e-5 * (1.0 + fabs(sg)));
        assert_true(fabs(tt_get(&c.din[2], j) - sb) <= 1e-5 * (1.0 + fabs(sb)));
    }

    /* each output is optional: dx alone, dgamma alone, dbeta alone give the same values */
    tb_tensor dx = like(&c.din[0]), dg = like(&c.din[1]), db = like(&c.din[2]);
    const tb_tensor *x = &c.in[0], *g = &c.in[1], *dy = &c.dout[0], *rm = &c.aux[0], *rv = &c.aux[1];
    OK(tb_batchnorm_backward_eval(tt_be, &dx, NULL, NULL, dy, x, g, rm, rv, 1e-5f));
    tt_assert_close("dx alone", &dx, &c.din[0], 1e-7, 1e-6);
    OK(tb_batchnorm_backward_eval(tt_be, NULL, &dg, NULL, dy, x, g, rm, rv, 1e-5f));
    tt_assert_close("dgamma alone", &dg, &c.din[1], 1e-7, 1e-6);
    OK(tb_batchnorm_backward_eval(tt_be, NULL, NULL, &db, dy, x, g, rm, rv, 1e-5f));
    tt_assert_close("dbeta alone", &db, &c.din[2], 1e-7, 1e-6);

    /* f16 activations and gradients: within f16 rounding of the f32 result */
    tb_tensor xh = tt_4d(TB_F16, 2, 3, 3, 5), dyh = like(&xh), dxh = like(&xh), dgh = like(&dg), dbh = like(&db);
    tt_copy_values(&xh, x);
    tt_copy_values(&dyh, dy);
    tt_copy_values(&c.in[0], &xh); /* the f32 run gets the f16-rounded values */
    tt_copy_values(&c.dout[0], &dyh);
    tt_zero(&c.din[0]), tt_zero(&c.din[1]), tt_zero(&c.din[2]);
    OK(bne_bwd(&c));
    OK(tb_batchnorm_backward_eval(tt_be, &dxh, &dgh, &dbh, &dyh, &xh, g, rm, rv, 1e-5f));
    tt_assert_close("f16 dx", &dxh, &c.din[0], 2e-3, 2e-3);
    tt_assert_close("f16 dgamma", &dgh, &c.din[1], 1e-4, 1e-5);
    tt_assert_close("f16 dbeta", &dbh, &c.din[2], 1e-4, 1e-5);
    tt_free_all();
}

/* ================================================ softmax CE ignored rows */

static void test_softmax_ce_ignore(void **state)
{
    (void)state;
    tb_rng r;
    tb_rng_seed(&r, 41, 0);
    const int32_t lab[5] = {2, -1, 0, -7, 3};
    tb_tensor logits = tt_2d(TB_F32, 5, 4), probs = tt_2d(TB_F32, 5, 4), labels = tt_1d(TB_I32, 5);
    tb_tensor sub = tt_2d(TB_F32, 3, 4), sub_probs = tt_2d(TB_F32, 3, 4), sub_labels = tt_1d(TB_I32, 3);
    tb_tensor loss = tt_1d(TB_F32, 1), sub_loss = tt_1d(TB_F32, 1);
    tt_uniform(&logits, &r, -3.0, 3.0, TB_F32);
    memcpy(labels.data, lab, sizeof lab);
    const int rows[3] = {0, 2, 4};
    for (int i = 0; i < 3; i++) {
        ((int32_t *)sub_labels.data)[i] = lab[rows[i]];
        for (int j = 0; j < 4; j++)
            tt_set(&sub, 4 * i + j, tt_get(&logits, 4 * rows[i] + j));
    }
    OK(tb_softmax_ce_forward(tt_be, &loss, &probs, &logits, &labels, NULL, 1.0f));
    OK(tb_softmax_ce_forward(tt_be, &sub_loss, &sub_probs, &sub, &sub_labels, NULL, 1.0f));
    /* the mean over the 3 labelled rows, computed here in double too */
    double want = 0.0;
    for (int i = 0; i < 3; i++) {
        double z = 0.0;
        for (int j = 0; j < 4; j++)
            z += exp(tt_get(&sub, 4 * i + j));
        want -= log(exp(tt_get(&sub, 4 * i + lab[rows[i]])) / z);
    }
    assert_true(fabs(tt_get(&loss, 0) - want / 3.0) < 1e-5);
    assert_true(fabs(tt_get(&loss, 0) - tt_get(&sub_loss, 0)) < 1e-6);

    tb_tensor d = tt_2d(TB_F32, 5, 4), sub_d = tt_2d(TB_F32, 3, 4);
    OK(tb_softmax_ce_backward(tt_be, &d, &probs, &labels, NULL, 1.0f, 2.0f));
    OK(tb_softmax_ce_backward(tt_be, &sub_d, &sub_probs, &sub_labels, NULL, 1.0f, 2.0f));
    for (int j = 0; j < 4; j++) {
        assert_true(tt_get(&d, 4 * 1 + j) == 0.0);
        assert_true(tt_get(&d, 4 * 3 + j) == 0.0);
    }
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++)
            assert_true(fabs(tt_get(&d, 4 * rows[i] + j) - tt_get(&sub_d, 4 * i + j)) < 1e-6);

    /* every row ignored: loss 0, gradient untouched */
    for (int i = 0; i < 5; i++)
        ((int32_t *)labels.data)[i] = -1;
    OK(tb_softmax_ce_forward(tt_be, &loss, &probs, &logits, &labels, NULL, 1.0f));
    assert_true(tt_get(&loss, 0) == 0.0);
    OK(tb_fill(tt_be, &d, 0.5f));
    OK(tb_softmax_ce_backward(tt_be, &d, &probs, &labels, NULL, 1.0f, 1.0f));
    for (int64_t i = 0; i < 20; i++)
        assert_true(tt_get(&d, i) == 0.5);

    /* a label >= k is still an error naming its row; soft_targets still refuses -1 */
    ((int32_t *)labels.data)[3] = 4;
    assert_int_equal(tb_softmax_ce_forward(tt_be, &loss, &probs, &logits, &labels, NULL, 1.0f), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "row 3"));
    assert_int_equal(tb_softmax_ce_backward(tt_be, &d, &probs, &labels, NULL, 1.0f, 1.0f), TB_ERR_INVALID);
    ((int32_t *)labels.data)[3] = -1;
    assert_int_equal(tb_soft_targets(tt_be, &probs, &labels, NULL, NULL, 0.0f), TB_ERR_INVALID);
    tt_free_all();
}

static int ce_fwd(gcase *c)
{
    return tb_softmax_ce_forward(tt_be, &c->out[0], &c->aux[0], &c->in[0], &c->aux[1], NULL, 1.0f);
}

static int ce_bwd(gcase *c)
{
    float g = (float)tt_get(&c->dout[0], 0);
    return tb_softmax_ce_backward(tt_be, &c->din[0], &c->aux[0], &c->aux[1], NULL, 1.0f, g);
}

/* Finite differences with ignored rows: their logits do not move the loss. */
static void test_softmax_ce_ignore_gradients(void **state)
{
    (void)state;
    tb_rng r;
    tb_rng_seed(&r, 42, 0);
    gcase c;
    gc_begin(&c, "softmax_ce with ignored rows");
    c.h = 5e-3;
    c.n_in = c.n_out = 1;
    c.in[0] = tt_2d(TB_F32, 6, 5);
    tt_uniform(&c.in[0], &r, -3.0, 3.0, TB_F32);
    c.aux[0] = tt_2d(TB_F32, 6, 5);
    c.aux[1] = tt_1d(TB_I32, 6);
    const int32_t lab[6] = {-1, 4, 0, -1, -1, 2};
    memcpy(c.aux[1].data, lab, sizeof lab);
    c.out[0] = tt_1d(TB_F32, 1);
    c.fwd = ce_fwd;
    c.bwd = ce_bwd;
    gc_finish(&c, &r);
    gc_check(&c);
    tt_free_all();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roi_align_forward_reference),
        cmocka_unit_test(test_roi_align_ramp),
        cmocka_unit_test(test_roi_align_gradients),
        cmocka_unit_test(test_roi_align_low_precision),
        cmocka_unit_test(test_roi_align_bad_rois),
        cmocka_unit_test(test_roi_align_workspace),
        cmocka_unit_test(test_smooth_l1_values),
        cmocka_unit_test(test_smooth_l1_gradients),
        cmocka_unit_test(test_batchnorm_eval_gradients),
        cmocka_unit_test(test_softmax_ce_ignore),
        cmocka_unit_test(test_softmax_ce_ignore_gradients),
    };
    return cmocka_run_group_tests(tests, tt_setup, tt_teardown);
}
