/* CUDA vs CPU, the differentiable detection ops: roi_align (forward and
 * backward: legacy and aligned, adaptive and fixed sampling, several scales
 * and bin shapes, RoIs partly outside the feature map, tiny RoIs and zero
 * padding rows, maps large enough that the f16/bf16 backward accumulates in
 * several f32 slabs) and smooth L1 (RPN and box-head shapes, beta 0 = L1,
 * 0/1 and real weights). f32, f16 and bf16 on fresh random inputs, backward
 * outputs starting from random values (accumulation), guard bytes around
 * every tensor. The box-level ops are in test_cuda_box_targets.c
 * (rpn_targets, roi_targets) and test_cuda_box_nms.c (rpn_proposals,
 * detect_boxes). Exits 77 without a GPU; `test_cuda_detection --self-check`
 * runs the CPU against itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_test_util.h"
#include "kernels/backend.h"
#include "kernels/error.h"
#include "kernels/ops.h"

static tb_backend *ref_be, *dut_be;
static uint64_t seed;
static const tb_dtype dtypes[] = {TB_F32, TB_F16, TB_BF16};
#define NDT 3

/* The loss is f32 computed from the same inputs on both sides. */
#define F32_REDUCE_TOL 1e-4

/* ------------------------------------------------------------- roi_align */
typedef struct roi_case {
    const char *name;
    int n, h, w, c; /* feature map */
    int r;          /* RoIs */
    tb_roi_align_params p; /* pooled_h, pooled_w, spatial_scale, sampling_ratio, aligned */
} roi_case;

static const roi_case roi_cases[] = {
    {"7x7 adaptive, legacy, stride 16", 2, 12, 15, 8, 10, {7, 7, 1.0f / 16, 0, false}},
    {"7x7 sampling 2, aligned, stride 16", 2, 12, 15, 8, 10, {7, 7, 1.0f / 16, 2, true}},
    {"2x2 sampling 1, aligned, scale 1", 1, 6, 5, 3, 7, {2, 2, 1.0f, 1, true}},
    {"3x5 sampling 3, legacy, stride 4", 3, 9, 11, 5, 12, {3, 5, 0.25f, 3, false}},
    {"14x14 adaptive, aligned, 64 channels", 2, 20, 24, 64, 16, {14, 14, 0.125f, 0, true}},
    {"2x2 sampling 2, one channel, stride 2", 1, 7, 7, 1, 5, {2, 2, 0.5f, 2, false}},
    /* f16/bf16 backward: one image per f32 slab (2 x 48x48x256 > the scratch) */
    {"two images, one slab each", 2, 48, 48, 256, 32, {7, 7, 1.0f / 16, 2, true}},
    /* one image beyond the scratch: slabs of channels (202 + 54) */
    {"channel slabs", 1, 72, 72, 256, 24, {7, 7, 0.125f, 0, true}},
};

/* RoIs {r, 5} in input pixels of the (h / scale) x (w / scale) canvas:
 * boxes partly outside the canvas, every fifth under one feature pixel, and
 * a zero padding row (b, 0, 0, 0, 0) last, as the detection ops emit. */
static bool set_rois(tctx *t, tpair *rois, const roi_case *rc)
{
    float cw = (float)rc->w / rc->p.spatial_scale, ch = (float)rc->h / rc->p.spatial_scale;
    float *v = malloc(sizeof(float) * 5 * (size_t)rc->r);
    if (!v)
        return false;
    for (int i = 0; i < rc->r; i++) {
        float *b = v + 5 * i;
        bool tiny = i % 5 == 4;
        float bw = tiny ? tb_rng_uniform_f(&t->rng, 0.1f, 1.0f) / rc->p.spatial_scale
                        : tb_rng_uniform_f(&t->rng, 0.05f, 0.7f) * cw;
        float bh = tiny ? tb_rng_uniform_f(&t->rng, 0.1f, 1.0f) / rc->p.spatial_scale
                        : tb_rng_uniform_f(&t->rng, 0.05f, 0.7f) * ch;
        b[0] = (float)tb_rng_below(&t->rng, (uint64_t)rc->n);
        b[1] = tb_rng_uniform_f(&t->rng, -0.15f * cw, 0.95f * cw);
        b[2] = tb_rng_uniform_f(&t->rng, -0.15f * ch, 0.95f * ch);
        b[3] = b[1] + bw;
        b[4] = b[2] + bh;
        if (i == rc->r - 1)
            b[1] = b[2] = b[3] = b[4] = 0.0f;
    }
    bool ok = tp_set(t, rois, v);
    free(v);
    return ok;
}

static void run_roi_align(tctx *t, const roi_case *rc, tb_dtype dt)
{
    const tb_roi_align_params *p = &rc->p;
    tctx_case(t, "roi_align %s [%d,%d,%d,%d] %d RoIs %s", rc->name, rc->n, rc->h, rc->w, rc->c, rc->r,
              tb_dtype_name(dt));
    tpair *x = tp_4d(t, dt, rc->n, rc->h, rc->w, rc->c, TP_UNIFORM, -1, 1);
    tpair *rois = tp_2d(t, TB_F32, rc->r, 5, TP_ZERO, 0, 0);
    tpair *y = tp_4d(t, dt, rc->r, p->pooled_h, p->pooled_w, rc->c, TP_UNIFORM, -1, 1);
    tpair *dy = tp_4d(t, dt, rc->r, p->pooled_h, p->pooled_w, rc->c, TP_UNIFORM, -1, 1);
    tpair *dx = tp_4d(t, dt, rc->n, rc->h, rc->w, rc->c, TP_UNIFORM, -1, 1);
    if (!x || !rois || !y || !dy || !dx || !set_rois(t, rois, rc))
        return;
    /* the f16/bf16 backward accumulates in f32 scratch from the workspace */
    for (int side_ = 0; side_ < 2; side_++)
        tctx_rc(t, side_, "reserve workspace",
                tb_backend_reserve_workspace(BE, tb_roi_align_workspace_size(BE, S(x), S(rois), p)));
    RUN_BOTH(t, tb_roi_align_forward(BE, S(y), S(x), S(rois), p));
    tp_check(t, "y", y, tp_tol(dt, true));
    RUN_BOTH(t, tb_roi_align_backward(BE, S(dx), S(dy), S(rois), p));
    tp_check(t, "dx", dx, tp_tol(dt, true));
    tp_check(t, "x unchanged", x, 0.0);
    tp_check(t, "rois unchanged", rois, 0.0);
}

static void test_roi_align(void **state)
{
    (void)state;
    tctx ctx, *t = &ctx;
    tctx_init(t, ref_be, dut_be, seed ^ 0x3001);
    for (size_t i = 0; i < sizeof roi_cases / sizeof roi_cases[0]; i++)
        for (int d = 0; d < NDT; d++)
            run_roi_align(t, &roi_cases[i], dtypes[d]);
    tctx_free(t);
    assert_int_equal(t->failures, 0);
}

/* RoIs the CPU rejects with TB_ERR_INVALID (kernels/cpu/roi_align.c): an
 * infinite corner, one needing more than 1024 adaptive samples per bin
 * axis, a fractional image index. The device cannot return an error, so
 * CUDA writes NaN for such a RoI's outputs and gives it no gradient: its
 * other rows, and dx, equal the CPU's over the valid RoIs alone. With
 * --self-check (a CPU under test) both sides must reject. */
static const float rejected_rois[5][5] = {
    {0, 1, 1, 9, 9}, {0, 1, 1, INFINITY, 9}, {0, 0, 0, 1e9f, 5}, {0.5f, 1, 1, 5, 5}, {0, 2, 3, 12, 14},
};
static const int valid_rows[2] = {0, 4};

static float *download_f32(tctx *t, int side, const tpair *p)
{
    float *v = malloc(p->bytes);
    if (!v)
        tctx_fail(t, "out of host memory");
    if (v && !tctx_rc(t, side, "download", tb_download(t->be[side], v, &p->t[side]))) {
        free(v);
        return NULL;
    }
    return v;
}

/* got's rows valid_rows[k] (of row_size floats) against ref's rows k; the others NaN. */
static void check_valid_rows(tctx *t, const char *what, const float *got, const float *ref, int row_size)
{
    for (int r = 0, k = 0; r < 5; r++) {
        bool valid = k < 2 && valid_rows[k] == r;
        for (int j = 0; j < row_size; j++) {
            float g = got[r * row_size + j];
            if (valid && !(fabsf(g - ref[k * row_size + j]) <= 1e-5f * (1.0f + fabsf(ref[k * row_size + j])))) {
                tctx_fail(t, "%s row %d [%d]: %g, the CPU over the valid RoIs gives %g", what, r, j, (double)g,
                          (double)ref[k * row_size + j]);
                return;
            }
            if (!valid && !isnan(g)) {
                tctx_fail(t, "%s row %d (a rejected RoI) [%d]: %g, expected NaN", what, r, j, (double)g);
                return;
            }
        }
        k += valid;
    }
}

static void compare_dx(tctx *t, const float *got, const float *ref, int64_t count)
{
    for (int64_t i = 0; i < count; i++)
        if (!(fabsf(got[i] - ref[i]) <= 1e-5f * (1.0f + fabsf(ref[i])))) {
            tctx_fail(t, "dx[%lld]: %g, the CPU over the valid RoIs gives %g", (long long)i, (double)got[i],
                      (double)ref[i]);
            return;
        }
}

static void test_roi_align_rejected(void **state)
{
    (void)state;
    tctx ctx, *t = &ctx;
    tctx_init(t, ref_be, dut_be, seed ^ 0x3003);
    tctx_case(t, "roi_align rejected RoIs");
    const tb_roi_align_params p = {2, 2, 0.5f, 0, true};
    float good[2][5];
    for (int k = 0; k < 2; k++)
        memcpy(good[k], rejected_rois[valid_rows[k]], sizeof good[k]);
    tpair *x = tp_4d(t, TB_F32, 1, 8, 8, 4, TP_UNIFORM, -1, 1);
    tpair *rois = tp_2d(t, TB_F32, 5, 5, TP_ZERO, 0, 0), *rois_good = tp_2d(t, TB_F32, 2, 5, TP_ZERO, 0, 0);
    tpair *y = tp_4d(t, TB_F32, 5, 2, 2, 4, TP_ZERO, 0, 0), *y_good = tp_4d(t, TB_F32, 2, 2, 2, 4, TP_ZERO, 0, 0);
    tpair *dy = tp_4d(t, TB_F32, 5, 2, 2, 4, TP_UNIFORM, -1, 1);
    tpair *dy_good = tp_4d(t, TB_F32, 2, 2, 2, 4, TP_ZERO, 0, 0);
    tpair *dx = tp_4d(t, TB_F32, 1, 8, 8, 4, TP_ZERO, 0, 0), *dx_good = tp_4d(t, TB_F32, 1, 8, 8, 4, TP_ZERO, 0, 0);
    float *dy_host = NULL, *got = NULL, *ref = NULL;
    if (!x || !rois || !rois_good || !y || !y_good || !dy || !dy_good || !dx || !dx_good ||
        !tp_set(t, rois, &rejected_rois[0][0]) || !tp_set(t, rois_good, &good[0][0]) ||
        !(dy_host = download_f32(t, 0, dy)))
        goto done;
    for (int k = 0; k < 2; k++)
        memmove(dy_host + k * 16, dy_host + valid_rows[k] * 16, 16 * sizeof(float));
    if (!tp_set(t, dy_good, dy_host))
        goto done;
    for (int side = 0; side < 2; side++) {
        bool rejects = t->be[side]->kind != TB_DEVICE_CUDA;
        int rc = tb_roi_align_forward(t->be[side], &y->t[side], &x->t[side], &rois->t[side], &p);
        int rc_b = tb_roi_align_backward(t->be[side], &dx->t[side], &dy->t[side], &rois->t[side], &p);
        if (rejects && (rc != TB_ERR_INVALID || rc_b != TB_ERR_INVALID))
            tctx_fail(t, "side %d: forward/backward returned %d/%d, expected TB_ERR_INVALID", side, rc, rc_b);
        if (!rejects) {
            tctx_rc(t, side, "forward, rejected RoIs", rc);
            tctx_rc(t, side, "backward, rejected RoIs", rc_b);
        }
    }
    tctx_rc(t, 0, "forward, valid RoIs", tb_roi_align_forward(t->be[0], &y_good->t[0], &x->t[0], &rois_good->t[0], &p));
    tctx_rc(t, 0, "backward, valid RoIs",
            tb_roi_align_backward(t->be[0], &dx_good->t[0], &dy_good->t[0], &rois_good->t[0], &p));
    if (t->be[1]->kind != TB_DEVICE_CUDA)
        goto done;
    if (!(got = download_f32(t, 1, y)) || !(ref = download_f32(t, 0, y_good)))
        goto done;
    check_valid_rows(t, "y", got, ref, 16);
    free(got);
    free(ref);
    got = ref = NULL;
    if (!(got = download_f32(t, 1, dx)) || !(ref = download_f32(t, 0, dx_good)))
        goto done;
    compare_dx(t, got, ref, 8 * 8 * 4);
done:
    free(dy_host);
    free(got);
    free(ref);
    tctx_free(t);
    assert_int_equal(t->failures, 0);
}

/* ------------------------------------------------------------- smooth L1 */
typedef struct sl1_case {
    const char *name;
    int rows, cols;
    float beta, norm;
    bool mask; /* weights 1 on a quarter of the rows, else 0 (sampled anchors); false: uniform in [0, 2] */
} sl1_case;

static const sl1_case sl1_cases[] = {
    {"RPN: beta 1/9, sampled anchors, norm 256", 1200, 4, 1.0f / 9, 256.0f, true},
    {"box head: beta 1, 21 classes, norm 128", 128, 84, 1.0f, 128.0f, true},
    {"L1 (beta 0), real weights", 50, 4, 0.0f, 50.0f, false},
    {"80000 elements, beta 0.5", 20000, 4, 0.5f, 1000.0f, false},
};

static bool set_weights(tctx *t, tpair *weights, const sl1_case *sc)
{
    size_t count = (size_t)sc->rows * (size_t)sc->cols;
    float *v = malloc(sizeof(float) * count);
    if (!v)
        return false;
    for (int i = 0; i < sc->rows; i++) {
        float row = tb_rng_below(&t->rng, 4) == 0 ? 1.0f : 0.0f;
        for (int j = 0; j < sc->cols; j++)
            v[(size_t)i * (size_t)sc->cols + (size_t)j] = sc->mask ? row : tb_rng_uniform_f(&t->rng, 0.0f, 2.0f);
    }
    bool ok = tp_set(t, weights, v);
    free(v);
    return ok;
}

static void run_smooth_l1(tctx *t, const sl1_case *sc, tb_dtype dt)
{
    tctx_case(t, "smooth_l1 %s %s", sc->name, tb_dtype_name(dt));
    tpair *pred = tp_2d(t, dt, sc->rows, sc->cols, TP_UNIFORM, -1.5f, 1.5f);
    tpair *target = tp_2d(t, TB_F32, sc->rows, sc->cols, TP_UNIFORM, -1, 1);
    tpair *weights = tp_2d(t, TB_F32, sc->rows, sc->cols, TP_ZERO, 0, 0);
    tpair *loss = tp_1d(t, TB_F32, 1, TP_UNIFORM, -1, 1);
    /* from zeros: gradients divided by norm would drown in a random start's
     * tolerance; the second call checks that the backward accumulates */
    tpair *dpred = tp_2d(t, dt, sc->rows, sc->cols, TP_ZERO, 0, 0);
    if (!pred || !target || !weights || !loss || !dpred || !set_weights(t, weights, sc))
        return;
    RUN_BOTH(t, tb_smooth_l1_forward(BE, S(loss), S(pred), S(target), S(weights), sc->beta, sc->norm));
    tp_check(t, "loss", loss, F32_REDUCE_TOL);
    for (int call = 0; call < 2; call++) {
        RUN_BOTH(t, tb_smooth_l1_backward(BE, S(dpred), S(pred), S(target), S(weights), sc->beta, sc->norm, 2.0f));
        tp_check(t, call ? "dpred (added to the first)" : "dpred (from zeros)", dpred, tp_tol(dt, false));
    }
}

static void test_smooth_l1(void **state)
{
    (void)state;
    tctx ctx, *t = &ctx;
    tctx_init(t, ref_be, dut_be, seed ^ 0x3002);
    for (size_t i = 0; i < sizeof sl1_cases / sizeof sl1_cases[0]; i++)
        for (int d = 0; d < NDT; d++)
            run_smooth_l1(t, &sl1_cases[i], dtypes[d]);
    tctx_free(t);
    assert_int_equal(t->failures, 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roi_align),
        cmocka_unit_test(test_roi_align_rejected),
        cmocka_unit_test(test_smooth_l1),
    };
    return tctx_main(argc, argv, &ref_be, &dut_be, &seed, "cuda detection ops vs cpu", tests,
                     sizeof tests / sizeof tests[0]);
}
