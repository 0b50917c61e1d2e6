/* A few training steps of a small ResNet-50-D (width 1/4, small stem,
 * 8 px, batch 8) on the CPU and on the GPU, from the same initial weights
 * and batches, through the trainer's own step (tb_step_run: label
 * smoothing, mixup and CutMix with a fresh draw per step, a learning rate
 * that changes every step, SGD with Nesterov momentum and weight decay, fp16
 * loss scaling): the two loss trajectories must agree within a
 * per-precision tolerance (the GPU side uploading each next batch while a
 * step runs, as the trainer does). Then the captured and overlapped step
 * (CUDA graphs) against the same step run op by op on the GPU: the same
 * trajectory, and the replays really happened. Exits 77 without a GPU; --self-check runs the CPU against
 * itself (where nothing can be captured). */
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
#define CAPTURE_STEPS 11 /* every mix kind twice or more: recorded, then replayed */

static tb_backend *ref_be, *dut_be;
static uint64_t seed;

#define CHECK_OK(expr)                                                        \
    do {                                                                      \
        int rc_ = (expr);                                                     \
        if (rc_ != TB_OK)                                                     \
            fail_msg("%s: %s (%s)", #expr, tb_errmsg(), tb_status_name(rc_)); \
    } while (0)

/* Step s's mix: none, mixup, none, CutMix, ... with a fresh lam and box. */
static tb_mix mix_of_step(int s)
{
    tb_mix mix = {TB_MIX_NONE, 1.0f, 0, 0, 0, 0};
    if (s % 4 == 1) {
        mix.kind = TB_MIX_MIXUP;
        mix.lam = 0.9f - 0.05f * (float)s;
    } else if (s % 4 == 3) {
        mix.kind = TB_MIX_CUTMIX;
        mix.y0 = s % IMAGE / 2, mix.y1 = IMAGE - s % 3, mix.x0 = 1, mix.x1 = 2 + s % (IMAGE - 2);
        mix.lam = 1.0f - (float)((mix.y1 - mix.y0) * (mix.x1 - mix.x0)) / (IMAGE * IMAGE);
    }
    return mix;
}

/* Trains on backend be for `steps` steps and writes the loss of every step;
 * *replayed (optional) gets the number of steps run from a capture. With
 * overlap, each step passes the next step's images to be uploaded while it
 * runs (the trainer's way), from a buffer of their own. The graph's host
 * counters must have advanced once per step, replayed or not. */
static void trajectory(tb_backend *be, tb_dtype dt, bool capture, bool overlap, int steps, float *losses,
                       int *replayed)
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
    opt.capture = capture;
    tb_step step;
    CHECK_OK(tb_step_init(&step, g, &opt));

    size_t pixels = (size_t)BATCH * IMAGE * IMAGE * 3;
    float *images = malloc(sizeof(float) * pixels * (size_t)steps);
    int32_t *labels = malloc(sizeof(int32_t) * BATCH * (size_t)steps);
    assert_non_null(images);
    assert_non_null(labels);
    tb_rng r;
    tb_rng_seed(&r, seed, 1);
    for (int s = 0; s < steps; s++) {
        for (size_t i = 0; i < pixels; i++)
            images[(size_t)s * pixels + i] = (float)tb_rng_normal(&r);
        for (int i = 0; i < BATCH; i++)
            labels[s * BATCH + i] = (int32_t)tb_rng_below(&r, CLASSES);
    }
    for (int s = 0; s < steps; s++) {
        tb_mix mix = mix_of_step(s);
        tb_step_result res;
        const float *next = overlap && s + 1 < steps ? images + (size_t)(s + 1) * pixels : NULL;
        CHECK_OK(tb_step_run(&step, images + (size_t)s * pixels, labels + s * BATCH, &mix, 0.01 * (1.0 + 0.1 * s),
                             next, &res));
        losses[s] = res.loss;
    }
    if (replayed)
        *replayed = step.captured_steps;
    assert_int_equal(tb_graph_bn_batches_tracked(g), steps);
    assert_int_equal((int64_t)tb_graph_step(g), steps);
    free(images);
    free(labels);
    tb_step_destroy(&step);
    tb_graph_destroy(g);
}

static void compare_losses(const char *what, const float *ref, const float *got, int steps, double tol)
{
    int bad = 0;
    for (int s = 0; s < steps; s++) {
        double err = fabs((double)got[s] - (double)ref[s]);
        bool ok = isfinite(ref[s]) && isfinite(got[s]) && err <= tol * fmax(1.0, fabs((double)ref[s]));
        printf("%s step %d: loss %.6f (reference %.6f)%s\n", what, s, (double)got[s], (double)ref[s],
               ok ? "" : "  <- beyond tolerance");
        bad += !ok;
    }
    if (bad)
        fail_msg("%s: %d of %d losses differ by more than %g", what, bad, steps, tol);
}

static void compare(tb_dtype dt, double tol)
{
    float ref[STEPS], got[STEPS];
    trajectory(ref_be, dt, false, false, STEPS, ref, NULL);
    trajectory(dut_be, dt, false, true, STEPS, got, NULL);
    compare_losses(tb_dtype_name(dt), ref, got, STEPS, tol);
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

/* The captured step against the same step op by op, on the backend under
 * test: the same kernels in the same order, so only algorithms that
 * accumulate in a varying order (atomics) make the losses differ. Steps
 * 0, 1 and 3 run op by op (the first of each mix kind), 2, 5 and 7 record
 * and replay, every later one replays: 8 replays in 11 steps. A change of
 * the fp16 loss scale records again but still replays, so the count holds. */
static void check_capture(tb_dtype dt, double tol)
{
    float eager[CAPTURE_STEPS], replay[CAPTURE_STEPS];
    int replayed_eager = -1, replayed = -1;
    trajectory(dut_be, dt, false, false, CAPTURE_STEPS, eager, &replayed_eager);
    trajectory(dut_be, dt, true, true, CAPTURE_STEPS, replay, &replayed);
    char what[64];
    snprintf(what, sizeof what, "%s captured", tb_dtype_name(dt));
    compare_losses(what, eager, replay, CAPTURE_STEPS, tol);
    assert_int_equal(replayed_eager, 0);
    assert_int_equal(replayed, tb_can_capture(dut_be) ? CAPTURE_STEPS - 3 : 0);
}

static void test_capture_f32(void **state)
{
    (void)state;
    check_capture(TB_F32, 1e-5);
}

static void test_capture_f16(void **state)
{
    (void)state;
    check_capture(TB_F16, 1e-3);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f32),
        cmocka_unit_test(test_f16),
        cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_capture_f32),
        cmocka_unit_test(test_capture_f16),
    };
    return tctx_main(argc, argv, &ref_be, &dut_be, &seed, "training trajectory cuda vs cpu", tests,
                     sizeof tests / sizeof tests[0]);
}
