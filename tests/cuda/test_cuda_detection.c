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

#include <stdlib.h>

#include "cuda_test_util.h"
#include "kernels/backend.h"
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
    tpair *dpred = tp_2d(t, dt, sc->rows, sc->cols, TP_UNIFORM, -1, 1);
    if (!pred || !target || !weights || !loss || !dpred || !set_weights(t, weights, sc))
        return;
    RUN_BOTH(t, tb_smooth_l1_forward(BE, S(loss), S(pred), S(target), S(weights), sc->beta, sc->norm));
    tp_check(t, "loss", loss, F32_REDUCE_TOL);
    RUN_BOTH(t, tb_smooth_l1_backward(BE, S(dpred), S(pred), S(target), S(weights), sc->beta, sc->norm, 2.0f));
    tp_check(t, "dpred", dpred, tp_tol(dt, false));
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
        cmocka_unit_test(test_smooth_l1),
    };
    return tctx_main(argc, argv, &ref_be, &dut_be, &seed, "cuda detection ops vs cpu", tests,
                     sizeof tests / sizeof tests[0]);
}
