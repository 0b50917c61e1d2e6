/* Training steps of a small ResNet-50-D (width 1/4, small stem, 8 px,
 * batch 8) through the trainer's own step (tb_step_run: label smoothing,
 * mixup and CutMix with a fresh draw per step, a learning rate that changes
 * every step, SGD with Nesterov momentum and weight decay, fp16 loss
 * scaling).
 *
 * CPU against GPU, one step at a time: from the same initial weights and
 * batch, one step of each mix kind (none, mixup, CutMix) on both backends
 * must give the same loss, the same skip decision and the same change of
 * every f32 master weight, within per-precision tolerances; with hard
 * labels, the same training top-1 hits. Not a longer trajectory of this
 * network: at this learning rate it is chaotic (a relative 1e-7 nudge of
 * the weights moves the loss by ~10 % within four steps; even the CPU at 1
 * and 2 threads parts that fast), so any change of summation order would
 * fail it without a bug. The trajectory, six f32 steps, is a ResNet-18-D
 * at 32 px and a small learning rate, where it is not.
 *
 * Then the captured and overlapped step (CUDA graphs) against the same step
 * run op by op on the GPU, 11 steps, with deterministic cuDNN algorithms so
 * that the two run the same kernels in the same order: the same trajectory,
 * and the replays really happened. Exits 77 without a GPU; --self-check runs
 * the CPU against itself (where nothing can be captured). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_test_util.h"
#include "harness/train/step.h"
#include "kernels/backend.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/error.h"
#include "kernels/rng.h"
#include "models/models.h"

#define BATCH 8
#define IMAGE 8
#define CLASSES 10
#define STEPS 6
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

typedef struct net {
    tb_graph *g;
    tb_step step;
} net;

/* A ResNet with the small-image stem for `image` px inputs. */
static tb_model_spec small_resnet(const char *name, int image, float width)
{
    tb_model_spec spec;
    CHECK_OK(tb_model_spec_default(&spec, name));
    spec.variant = 'D';
    spec.stem = TB_STEM_SMALL;
    spec.width = width;
    spec.image = image;
    spec.classes = CLASSES;
    return spec;
}

/* The steps' global-norm clipping (optim.grad_clip; 0 = off): check_capture
 * turns it on, so that the norm computed and applied on the device is
 * replayed too. */
static double step_grad_clip;
/* The network's dropout before the classifier (0 = none): the capture test
 * of a network that draws masks on every step. */
static float net_dropout;
/* The fp16 steps' initial (dynamic) loss scale, and what the last
 * trajectory ended with: its final scale and the captures it recorded. */
static double net_loss_scale = 1024.0;
static double last_loss_scale;
static int last_recordings;

/* The network `spec` on backend be, initialised from the test's seed (the
 * same weights on every backend), and its step. */
static void net_init_spec(net *n, tb_backend *be, const tb_model_spec *spec, tb_dtype dt, bool capture,
                          double loss_scale, float smoothing)
{
    n->g = NULL;
    CHECK_OK(tb_graph_create(&n->g, be, dt, BATCH));
    CHECK_OK(tb_model_build(n->g, spec));
    CHECK_OK(tb_graph_finalize(n->g, true));
    CHECK_OK(tb_model_init(n->g, spec->init, seed));

    tb_step_options opt = {0};
    opt.label_smoothing = smoothing;
    opt.mixing = true;
    opt.fp16_scaling = dt == TB_F16;
    opt.dynamic_scale = true;
    opt.loss_scale = loss_scale;
    opt.momentum = 0.9;
    opt.weight_decay = 1e-4;
    opt.nesterov = true;
    opt.capture = capture;
    opt.grad_clip = step_grad_clip;
    CHECK_OK(tb_step_init(&n->step, n->g, &opt));
}

/* The tests' ResNet-50-D (width 1/4, IMAGE px). */
static void net_init(net *n, tb_backend *be, tb_dtype dt, bool capture, double loss_scale, float smoothing)
{
    tb_model_spec spec = small_resnet("resnet50", IMAGE, 0.25f);
    spec.dropout = net_dropout;
    net_init_spec(n, be, &spec, dt, capture, loss_scale, smoothing);
}

static void net_free(net *n)
{
    tb_step_destroy(&n->step);
    tb_graph_destroy(n->g);
}

/* `steps` batches of random `image` px images and labels from the test's seed. */
static void make_batches_sized(int steps, int image, float **images, int32_t **labels)
{
    size_t pixels = (size_t)BATCH * (size_t)image * (size_t)image * 3;
    *images = malloc(sizeof(float) * pixels * (size_t)steps);
    *labels = malloc(sizeof(int32_t) * BATCH * (size_t)steps);
    assert_non_null(*images);
    assert_non_null(*labels);
    tb_rng r;
    tb_rng_seed(&r, seed, 1);
    for (int s = 0; s < steps; s++) {
        for (size_t i = 0; i < pixels; i++)
            (*images)[(size_t)s * pixels + i] = (float)tb_rng_normal(&r);
        for (int i = 0; i < BATCH; i++)
            (*labels)[s * BATCH + i] = (int32_t)tb_rng_below(&r, CLASSES);
    }
}

static void make_batches(int steps, float **images, int32_t **labels)
{
    make_batches_sized(steps, IMAGE, images, labels);
}

/* Step s of the batches (its mix, its learning rate), passing the next
 * step's images for the overlapped upload when `next` is set. */
static tb_step_result run_step(net *n, const float *images, const int32_t *labels, int s, bool next)
{
    size_t pixels = (size_t)BATCH * IMAGE * IMAGE * 3;
    tb_mix mix = mix_of_step(s);
    tb_step_result res;
    CHECK_OK(tb_step_run(&n->step, images + (size_t)s * pixels, labels + s * BATCH, &mix, 0.01 * (1.0 + 0.1 * s),
                         next ? images + (size_t)(s + 1) * pixels : NULL, &res));
    return res;
}

/* Trains on backend be for `steps` steps and writes the loss of every step;
 * *replayed (optional) gets the number of steps run from a capture. With
 * overlap, each step passes the next step's images to be uploaded while it
 * runs (the trainer's way), from a buffer of their own. The graph's host
 * counters must have advanced once per step, replayed or not. */
static void trajectory(tb_backend *be, tb_dtype dt, bool capture, bool overlap, int steps, float *losses,
                       int *replayed)
{
    net n;
    net_init(&n, be, dt, capture, net_loss_scale, 0.1f);
    float *images;
    int32_t *labels;
    make_batches(steps, &images, &labels);
    for (int s = 0; s < steps; s++)
        losses[s] = run_step(&n, images, labels, s, overlap && s + 1 < steps).loss;
    if (replayed)
        *replayed = n.step.captured_steps;
    last_loss_scale = tb_loss_scaler_scale(&n.step.scaler);
    last_recordings = n.step.recordings;
    assert_int_equal(tb_graph_bn_batches_tracked(n.g), steps);
    assert_int_equal((int64_t)tb_graph_step(n.g), steps);
    free(images);
    free(labels);
    net_free(&n);
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

/* The f32 master weights of the parameters whose names start with
 * `prefix` ("" for all), parameter after parameter, on the host. */
static float *masters(net *n, const char *prefix, int64_t *count)
{
    *count = 0;
    for (int i = 0; i < tb_graph_n_params(n->g); i++)
        if (!strncmp(tb_graph_param(n->g, i)->name, prefix, strlen(prefix)))
            *count += tb_numel(&tb_graph_param(n->g, i)->master);
    float *h = malloc(sizeof(float) * (size_t)(*count ? *count : 1));
    assert_non_null(h);
    int64_t off = 0;
    for (int i = 0; i < tb_graph_n_params(n->g); i++) {
        tb_param *p = tb_graph_param(n->g, i);
        if (strncmp(p->name, prefix, strlen(prefix)))
            continue;
        CHECK_OK(tb_download(n->step.be, h + off, &p->master));
        off += tb_numel(&p->master);
    }
    return h;
}

/* How much one step moved the masters under `prefix`. */
typedef struct moved {
    float *delta;
    int64_t count;
} moved;

static moved moved_begin(net *n, const char *prefix)
{
    moved m;
    m.delta = masters(n, prefix, &m.count);
    return m;
}

static void moved_end(net *n, const char *prefix, moved *m)
{
    int64_t count;
    float *after = masters(n, prefix, &count);
    assert_int_equal(count, m->count);
    for (int64_t i = 0; i < count; i++)
        m->delta[i] = after[i] - m->delta[i];
    free(after);
}

/* One step of batch s (s's mix kind) from the initial weights on one
 * backend: its result, and how much every master weight and the
 * classifier's (fc.*) moved. */
static tb_step_result one_step(tb_backend *be, tb_dtype dt, int s, moved *all, moved *head)
{
    net n;
    /* a loss scale no step here overflows at, so that each step updates */
    net_init(&n, be, dt, false, 32.0, 0.1f);
    float *images;
    int32_t *labels;
    make_batches(s + 1, &images, &labels);
    *all = moved_begin(&n, "");
    *head = moved_begin(&n, "fc.");
    tb_step_result res = run_step(&n, images, labels, s, false);
    moved_end(&n, "", all);
    moved_end(&n, "fc.", head);
    free(images);
    free(labels);
    net_free(&n);
    return res;
}

/* ||got - ref|| / ||ref||, the relative L2 distance of two updates. */
static double rel_l2(const moved *ref, const moved *got)
{
    assert_int_equal(ref->count, got->count);
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < ref->count; i++) {
        double d = (double)got->delta[i] - (double)ref->delta[i];
        num += d * d;
        den += (double)ref->delta[i] * (double)ref->delta[i];
    }
    return den > 0.0 ? sqrt(num / den) : (num > 0.0 ? INFINITY : 0.0);
}

/* The step of each mix kind (batches 0, 1, 3: none, mixup, CutMix) on the
 * CPU and on the backend under test: the loss within loss_tol (relative),
 * the same skip decision (none: there must be an update to compare), the
 * classifier's update within head_tol and, when all_tol > 0, every
 * master's update within all_tol (relative L2 distances).
 *
 * Why not every weight, element by element, in every precision: at
 * initialisation this network's gradients are ill-conditioned (BN over 8
 * values at the last stages, 50 layers). The CPU at 1 and at 2 threads,
 * whose reductions differ only in their order, gives (relative L2 distance
 * of the updates, the three batches) in f32: classifier <= 5e-5, whole
 * network <= 3.2e-3; in f16: classifier 5e-2 and whole network 0.58 (one
 * f16 rounding flipped in the forward moves them); bf16: 0 and 1.5e-2. So
 * the whole network is compared in f32 only, the classifier (the loss, its
 * backward through the targets and the mix, the SGD step) in every
 * precision, with tolerances a wiring bug (distances of order 1) cannot
 * pass and a GPU's other summation order (beyond a thread count's) can. */
static void compare(tb_dtype dt, double loss_tol, double head_tol, double all_tol)
{
    static const int batches[3] = {0, 1, 3};
    for (int b = 0; b < 3; b++) {
        int s = batches[b];
        moved ref_all, ref_head, got_all, got_head;
        tb_step_result ref = one_step(ref_be, dt, s, &ref_all, &ref_head);
        tb_step_result got = one_step(dut_be, dt, s, &got_all, &got_head);
        double head = rel_l2(&ref_head, &got_head), all = rel_l2(&ref_all, &got_all);
        printf("%s batch %d (mix %d): loss %.6f (reference %.6f), skipped %d (reference %d), update distance: "
               "classifier %.3g, all %.3g\n",
               tb_dtype_name(dt), s, (int)mix_of_step(s).kind, (double)got.loss, (double)ref.loss, got.skipped,
               ref.skipped, head, all);
        if (ref.skipped || got.skipped)
            fail_msg("%s batch %d: a step was skipped for overflow (reference %d, under test %d)",
                     tb_dtype_name(dt), s, ref.skipped, got.skipped);
        double err = fabs((double)got.loss - (double)ref.loss);
        if (!isfinite(got.loss) || !(err <= loss_tol * fmax(1.0, fabs((double)ref.loss))))
            fail_msg("%s batch %d: loss %.6f, reference %.6f (tolerance %g)", tb_dtype_name(dt), s,
                     (double)got.loss, (double)ref.loss, loss_tol);
        if (!(head <= head_tol))
            fail_msg("%s batch %d: the classifier's update is %.3g away from the reference's (tolerance %g)",
                     tb_dtype_name(dt), s, head, head_tol);
        if (all_tol > 0.0 && !(all <= all_tol))
            fail_msg("%s batch %d: the network's update is %.3g away from the reference's (tolerance %g)",
                     tb_dtype_name(dt), s, all, all_tol);
        free(ref_all.delta);
        free(ref_head.delta);
        free(got_all.delta);
        free(got_head.delta);
    }
}

/* f32 with TF32 off; f16 and bf16 round every activation and gradient on
 * both sides, in different places. */
static void test_f32(void **state)
{
    (void)state;
    compare(TB_F32, 1e-4, 1e-3, 5e-2);
}

static void test_f16(void **state)
{
    (void)state;
    compare(TB_F16, 1e-2, 0.25, 0.0);
}

static void test_bf16(void **state)
{
    (void)state;
    compare(TB_BF16, 3e-2, 0.25, 0.0);
}

/* One step of batch 0 (no mix) from the initial weights with the given
 * labels, smoothing 0 or 0.1: its result and, when pred is given, each
 * sample's predicted class (the device's argmax of the probabilities). */
static tb_step_result labelled_step(tb_backend *be, const int32_t *labels, float smoothing, int32_t *pred)
{
    net n;
    net_init(&n, be, TB_F32, false, 32.0, smoothing);
    float *images;
    int32_t *unused;
    make_batches(1, &images, &unused);
    tb_mix mix = mix_of_step(0);
    tb_step_result res;
    CHECK_OK(tb_step_run(&n.step, images, labels, &mix, 0.01, NULL, &res));
    if (pred)
        CHECK_OK(tb_download(n.step.be, pred, &n.step.pred));
    free(images);
    free(unused);
    net_free(&n);
    return res;
}

/* Training top-1 counted on the device. The CPU's predictions for batch 0
 * give labels of which exactly every other one is right; with hard labels
 * both backends must count BATCH/2 hits (f32, where an argmax tie between
 * the backends would need two probabilities within 1e-5 of each other).
 * With label smoothing, or a mixed batch, no step counts them (-1). */
static void test_hits(void **state)
{
    (void)state;
    int32_t labels[BATCH], pred[BATCH];
    for (int i = 0; i < BATCH; i++)
        labels[i] = (int32_t)i % CLASSES;
    tb_step_result first = labelled_step(ref_be, labels, 0.0f, pred);
    assert_in_range(first.correct, 0, BATCH);
    for (int i = 0; i < BATCH; i++) {
        assert_in_range(pred[i], 0, CLASSES - 1);
        labels[i] = i % 2 ? (pred[i] + 1) % CLASSES : pred[i];
    }
    tb_step_result ref = labelled_step(ref_be, labels, 0.0f, NULL);
    tb_step_result got = labelled_step(dut_be, labels, 0.0f, NULL);
    printf("hard labels, every other one right: hits %d (reference %d, expected %d)\n", got.correct, ref.correct,
           BATCH / 2);
    assert_int_equal(ref.correct, BATCH / 2);
    assert_int_equal(got.correct, BATCH / 2);

    tb_step_result smoothed = labelled_step(dut_be, labels, 0.1f, NULL);
    assert_int_equal(smoothed.correct, -1);
    moved all, head;
    tb_step_result mixed = one_step(dut_be, TB_F32, 1, &all, &head);
    assert_int_equal(mixed.correct, -1);
    free(all.delta);
    free(head.delta);
}

/* STEPS f32 steps of a ResNet-18-D (width 1/4, TRAJ_IMAGE px) from the
 * same weights on batches 0, 1, ... without mixing, at a constant learning
 * rate: each step's loss. */
#define TRAJ_IMAGE 32
static void plain_trajectory(tb_backend *be, double lr, float *losses)
{
    net n;
    tb_model_spec spec = small_resnet("resnet18", TRAJ_IMAGE, 0.25f);
    net_init_spec(&n, be, &spec, TB_F32, false, 32.0, 0.1f);
    float *images;
    int32_t *labels;
    make_batches_sized(STEPS, TRAJ_IMAGE, &images, &labels);
    size_t pixels = (size_t)BATCH * TRAJ_IMAGE * TRAJ_IMAGE * 3;
    tb_mix none = mix_of_step(0);
    for (int s = 0; s < STEPS; s++) {
        tb_step_result res;
        CHECK_OK(tb_step_run(&n.step, images + (size_t)s * pixels, labels + s * BATCH, &none, lr, NULL, &res));
        losses[s] = res.loss;
    }
    free(images);
    free(labels);
    net_free(&n);
}

/* The loss trajectory of STEPS f32 steps on both backends. The ResNet-50
 * of the other tests at their learning rate is chaotic (see the top); this
 * ResNet-18 at 32 px and lr 1e-3 is not: the CPU at 1 and at 2 threads
 * part by at most 2e-5 (relative) over the six steps, while a 10 % error
 * in the learning rate moves a loss by up to 2e-3 and momentum 0.5 for 0.9
 * by up to 9e-3 (measured with this test's seed). */
static void test_trajectory_f32(void **state)
{
    (void)state;
    float ref[STEPS], got[STEPS];
    plain_trajectory(ref_be, 1e-3, ref);
    plain_trajectory(dut_be, 1e-3, got);
    compare_losses("f32 trajectory", ref, got, STEPS, 5e-4);
}

/* The captured step against the same step op by op, on the backend under
 * test, both with deterministic cuDNN algorithms: the same kernels in the
 * same order, so the trajectories should match to the bit (the tolerance
 * only allows for what no one promised). Steps
 * 0, 1 and 3 run op by op (the first of each mix kind), 2, 5 and 7 record
 * and replay, every later one replays: 8 replays in 11 steps. A change of
 * the fp16 loss scale is read from memory: nothing is recorded again.
 * With grad_clip > 0 the steps clip (on the device, no host read). */
static void check_capture(tb_dtype dt, double tol, double grad_clip)
{
    const char *off = getenv("TRICKBENCH_NO_CAPTURE");
    if (off && *off && strcmp(off, "0") != 0) {
        printf("TRICKBENCH_NO_CAPTURE is set: nothing is captured to compare (skipped)\n");
        skip();
    }
    float eager[CAPTURE_STEPS], replay[CAPTURE_STEPS];
    int replayed_eager = -1, replayed = -1;
    tb_cuda_options saved, opt;
    bool cuda = tb_cuda_get_options(dut_be, &saved) == TB_OK;
    if (cuda) {
        opt = saved;
        opt.deterministic = true;
        CHECK_OK(tb_cuda_set_options(dut_be, &opt));
    }
    step_grad_clip = grad_clip;
    trajectory(dut_be, dt, false, false, CAPTURE_STEPS, eager, &replayed_eager);
    trajectory(dut_be, dt, true, true, CAPTURE_STEPS, replay, &replayed);
    step_grad_clip = 0;
    int recordings = last_recordings;
    if (cuda)
        CHECK_OK(tb_cuda_set_options(dut_be, &saved));
    char what[64];
    snprintf(what, sizeof what, "%s captured%s", tb_dtype_name(dt), grad_clip > 0 ? ", clipped" : "");
    compare_losses(what, eager, replay, CAPTURE_STEPS, tol);
    assert_int_equal(replayed_eager, 0);
    assert_int_equal(replayed, tb_can_capture(dut_be) ? CAPTURE_STEPS - 3 : 0);
    /* one recording per mix kind, whatever the loss scale did */
    assert_int_equal(recordings, tb_can_capture(dut_be) ? TB_STEP_MIX_KINDS : 0);
}

static void test_capture_f32(void **state)
{
    (void)state;
    check_capture(TB_F32, 1e-5, 0.0);
}

static void test_capture_f16(void **state)
{
    (void)state;
    check_capture(TB_F16, 1e-3, 0.0);
}

/* A limit under the gradients' norm (the tests' random labels give norms
 * of order 1), so the factor is below 1 on every step: the clipped
 * trajectory must leave the unclipped one (on the CPU: losses 2.5 against
 * 6-7 by step 5), and replay like the op-by-op step. */
static void test_capture_clipped(void **state)
{
    (void)state;
    float plain[CAPTURE_STEPS], clipped[CAPTURE_STEPS];
    trajectory(dut_be, TB_F32, false, false, CAPTURE_STEPS, plain, NULL);
    step_grad_clip = 0.05;
    trajectory(dut_be, TB_F32, false, false, CAPTURE_STEPS, clipped, NULL);
    step_grad_clip = 0;
    int differ = 0;
    for (int s = 0; s < CAPTURE_STEPS; s++)
        differ += fabs((double)plain[s] - (double)clipped[s]) > 1e-2;
    if (differ < CAPTURE_STEPS / 2)
        fail_msg("clipping to 0.05 changed only %d of %d losses by more than 0.01", differ, CAPTURE_STEPS);
    check_capture(TB_F32, 1e-5, 0.05);
    check_capture(TB_F16, 1e-3, 0.05);
}

/* fp16 from a loss scale of 2^20: the first steps overflow (the logits'
 * gradient alone exceeds f16's range) and halve it; the captures read each
 * step's scale from memory, so nothing is recorded again and the replayed
 * steps match the op-by-op ones, skipped steps included. */
static void test_capture_scale_changes(void **state)
{
    (void)state;
    net_loss_scale = 1048576.0;
    check_capture(TB_F16, 1e-3, 0.0);
    double final_scale = last_loss_scale;
    net_loss_scale = 1024.0;
    if (!(final_scale < 1048576.0))
        fail_msg("the loss scale stayed at %g: no overflow to test", final_scale);
}

/* A network with dropout is captured too (its masks are seeded on the device
 * from the uploaded step) and replays each step's own masks: the losses of
 * the op-by-op steps, and the same draw as the CPU's on the first step. */
static void test_capture_dropout(void **state)
{
    (void)state;
    net_dropout = 0.3f;
    float ref[2], got[2];
    trajectory(ref_be, TB_F32, false, false, 2, ref, NULL);
    trajectory(dut_be, TB_F32, false, false, 2, got, NULL);
    compare_losses("f32 dropout vs cpu", ref, got, 2, 5e-4);
    check_capture(TB_F32, 1e-5, 0.0);
    net_dropout = 0;
}

/* Every test starts from the default network and step (a test that changes
 * them may stop early, by a skip or a failure). */
static int reset_net(void **state)
{
    (void)state;
    step_grad_clip = 0;
    net_dropout = 0;
    net_loss_scale = 1024.0;
    return 0;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_f32, reset_net),
        cmocka_unit_test_setup(test_f16, reset_net),
        cmocka_unit_test_setup(test_bf16, reset_net),
        cmocka_unit_test_setup(test_hits, reset_net),
        cmocka_unit_test_setup(test_trajectory_f32, reset_net),
        cmocka_unit_test_setup(test_capture_f32, reset_net),
        cmocka_unit_test_setup(test_capture_f16, reset_net),
        cmocka_unit_test_setup(test_capture_clipped, reset_net),
        cmocka_unit_test_setup(test_capture_scale_changes, reset_net),
        cmocka_unit_test_setup(test_capture_dropout, reset_net),
    };
    return tctx_main(argc, argv, &ref_be, &dut_be, &seed, "training trajectory cuda vs cpu", tests,
                     sizeof tests / sizeof tests[0]);
}
