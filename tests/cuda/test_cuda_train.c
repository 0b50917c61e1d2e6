/* A few training steps of a small ResNet-50-D (width 1/4, small stem,
 * 16 px, batch 8) on the CPU and on the GPU, from the same initial weights
 * and batches, through the trainer's own step (tb_step_run: label
 * smoothing, mixup, SGD with Nesterov momentum and weight decay, fp16 loss
 * scaling): the two loss trajectories must agree within a per-precision
 * tolerance. Exits 77 without a GPU; --self-check runs the CPU against
 * itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cuda_test_util.h"
#include "harness/train/step.h"
#include "kernels/backend.h"
#include "kernels/error.h"
#include "kernels/rng.h"
#include "models/models.h"

#define BATCH 8
#define IMAGE 8
#define CLASSES 10
#define STEPS 4

static tb_backend *ref_be, *dut_be;
static uint64_t seed;

#define CHECK_OK(expr)                                                        \
    do {                                                                      \
        int rc_ = (expr);                                                     \
        if (rc_ != TB_OK)                                                     \
            fail_msg("%s: %s (%s)", #expr, tb_errmsg(), tb_status_name(rc_)); \
    } while (0)

/* Trains on backend be and writes the loss of every step. */
static void trajectory(tb_backend *be, tb_dtype dt, float *losses)
{
    tb_model_spec spec;
    CHECK_OK(tb_model_spec_default(&spec, "resnet50"));
    spec.variant = 'D';
    spec.stem = TB_STEM_SMALL;
    spec.width = 0.25f;
    spec.image = IMAGE;
    spec.classes = CLASSES;
    tb_graph *g = NULL;
    CHECK_OK(tb_graph_create(&g, be, dt, BATCH));
    CHECK_OK(tb_model_build(g, &spec));
    CHECK_OK(tb_graph_finalize(g, true));
    CHECK_OK(tb_model_init(g, spec.init, seed));

    tb_step_options opt = {0};
    opt.label_smoothing = 0.1f;
    opt.mixing = true;
    opt.fp16_scaling = dt == TB_F16;
    opt.dynamic_scale = true;
    opt.loss_scale = 1024.0;
    opt.momentum = 0.9;
    opt.weight_decay = 1e-4;
    opt.nesterov = true;
    tb_step step;
    CHECK_OK(tb_step_init(&step, g, &opt));

    size_t pixels = (size_t)BATCH * IMAGE * IMAGE * 3;
    float *images = malloc(sizeof(float) * pixels);
    int32_t labels[BATCH];
    assert_non_null(images);
    tb_rng r;
    tb_rng_seed(&r, seed, 1);
    for (int s = 0; s < STEPS; s++) {
        for (size_t i = 0; i < pixels; i++)
            images[i] = (float)tb_rng_normal(&r);
        for (int i = 0; i < BATCH; i++)
            labels[i] = (int32_t)tb_rng_below(&r, CLASSES);
        tb_mix mix = {TB_MIX_NONE, 1.0f, 0, 0, 0, 0};
        if (s % 3 == 2) { /* every third step mixes, as a drawn mixup would */
            mix.kind = TB_MIX_MIXUP;
            mix.lam = 0.7f;
        }
        tb_step_result res;
        CHECK_OK(tb_step_run(&step, images, labels, &mix, 0.01, &res));
        losses[s] = res.loss;
    }
    free(images);
    tb_step_destroy(&step);
    tb_graph_destroy(g);
}

static void compare(tb_dtype dt, double tol)
{
    float ref[STEPS], got[STEPS];
    trajectory(ref_be, dt, ref);
    trajectory(dut_be, dt, got);
    int bad = 0;
    for (int s = 0; s < STEPS; s++) {
        double err = fabs((double)got[s] - (double)ref[s]);
        bool ok = isfinite(ref[s]) && isfinite(got[s]) && err <= tol * fmax(1.0, fabs((double)ref[s]));
        printf("%s step %d: loss %.6f (reference %.6f)%s\n", tb_dtype_name(dt), s, (double)got[s], (double)ref[s],
               ok ? "" : "  <- beyond tolerance");
        bad += !ok;
    }
    if (bad)
        fail_msg("%s: %d of %d losses differ by more than %g", tb_dtype_name(dt), bad, STEPS, tol);
}

/* f32 compares at 1e-3: summation orders differ and six SGD steps amplify a
 * little. Half precisions round every activation. */
static void test_f32(void **state)
{
    (void)state;
    compare(TB_F32, 1e-3);
}

static void test_f16(void **state)
{
    (void)state;
    compare(TB_F16, 3e-2);
}

static void test_bf16(void **state)
{
    (void)state;
    compare(TB_BF16, 5e-2);
}

int main(int argc, char **argv)
{
    int rc = tctx_open_backends(argc, argv, &ref_be, &dut_be, &seed);
    if (rc != 0)
        return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f32),
        cmocka_unit_test(test_f16),
        cmocka_unit_test(test_bf16),
    };
    rc = cmocka_run_group_tests_name("training trajectory cuda vs cpu", tests, NULL, NULL);
    tb_backend_destroy(dut_be);
    tb_backend_destroy(ref_be);
    return rc;
}
