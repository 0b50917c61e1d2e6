/* CUDA vs CPU, the bilinear resize of the segmentation task (forward and
 * backward): the grad suite's cases (tests/cases/resize_cases.c), FCN's 8x
 * upsampling of 21-class logits, up- and down-sampling by non-integer
 * factors, mixed, identity, 1-pixel inputs and outputs, and maps
 * large enough that the f16/bf16 backward accumulates in several f32 slabs
 * (two images per slab, bands of rows, and channel ranges of single rows).
 * f32, f16 and bf16 on fresh random inputs, dx starting from random values
 * (accumulation), guard bytes around every tensor. Exits 77 without a GPU;
 * `test_cuda_resize --self-check` runs the CPU against itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cases/resize_cases.h"
#include "cuda_test_util.h"
#include "kernels/backend.h"
#include "kernels/ops.h"

static tb_backend *ref_be, *dut_be;
static uint64_t seed;
static const tb_dtype dtypes[] = {TB_F32, TB_F16, TB_BF16};
#define NDT 3

/* The grad suite's table (tests/cases/resize_cases.c: small maps, 1-pixel
 * and 1-row inputs, 1-pixel and 1-column outputs, 70 channels), then ours:
 * FCN's real sizes and the f16/bf16 backward's scratch slabs. */
static const rs_case cuda_rs_cases[] = {
    {"FCN x8 upsampling, 21 classes", 2, 8, 8, 21, 64, 64},
    {"up by non-integer factors", 2, 13, 17, 5, 50, 41},
    {"down by non-integer factors", 2, 50, 41, 6, 13, 17},
    {"up rows, down columns", 1, 9, 30, 3, 20, 7},
    {"identity", 1, 10, 10, 8, 10, 10},
    {"1-pixel input", 3, 1, 1, 4, 7, 5},
    {"1-pixel output", 2, 6, 5, 3, 1, 1},
    {"1-row input", 2, 1, 9, 2, 4, 12},
    /* f16/bf16 backward, with the 2^20-value f32 scratch of the CUDA backend: */
    {"slabs of two images", 3, 128, 128, 32, 96, 160},
    {"bands of rows (2 048 000 values in one image)", 1, 200, 160, 64, 150, 333},
    {"channel ranges of single rows (a row of 1 200 000 values)", 1, 4, 3000, 400, 3, 2000},
};

static void run_resize(tctx *t, const rs_case *rc, tb_dtype dt)
{
    tctx_case(t, "resize_bilinear %s [%d,%d,%d,%d] -> %dx%d %s", rc->name, rc->n, rc->h, rc->w, rc->c, rc->oh,
              rc->ow, tb_dtype_name(dt));
    tpair *x = tp_4d(t, dt, rc->n, rc->h, rc->w, rc->c, TP_UNIFORM, -1, 1);
    tpair *y = tp_4d(t, dt, rc->n, rc->oh, rc->ow, rc->c, TP_UNIFORM, -1, 1);
    tpair *dy = tp_4d(t, dt, rc->n, rc->oh, rc->ow, rc->c, TP_UNIFORM, -1, 1);
    tpair *dx = tp_4d(t, dt, rc->n, rc->h, rc->w, rc->c, TP_UNIFORM, -1, 1);
    if (!x || !y || !dy || !dx)
        return;
    RUN_BOTH(t, tb_resize_bilinear_forward(BE, S(y), S(x)));
    tp_check(t, "y", y, tp_tol(dt, false));
    RUN_BOTH(t, tb_resize_bilinear_backward(BE, S(dx), S(dy)));
    tp_check(t, "dx", dx, tp_tol(dt, true));
    tp_check(t, "x unchanged", x, 0.0);
    tp_check(t, "dy unchanged", dy, 0.0);
}

static void test_resize_bilinear(void **state)
{
    (void)state;
    tctx ctx, *t = &ctx;
    tctx_init(t, ref_be, dut_be, seed ^ 0x4001);
    for (size_t i = 0; i < rs_case_count; i++)
        for (int d = 0; d < NDT; d++)
            run_resize(t, &rs_cases[i], dtypes[d]);
    for (size_t i = 0; i < sizeof cuda_rs_cases / sizeof cuda_rs_cases[0]; i++)
        for (int d = 0; d < NDT; d++)
            run_resize(t, &cuda_rs_cases[i], dtypes[d]);
    tctx_free(t);
    assert_int_equal(t->failures, 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resize_bilinear),
    };
    return tctx_main(argc, argv, &ref_be, &dut_be, &seed, "cuda resize ops vs cpu", tests,
                     sizeof tests / sizeof tests[0]);
}
