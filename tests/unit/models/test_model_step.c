/* One training forward and backward of every model family on the CPU, at a
 * small batch and image: the loss is finite and every parameter receives a
 * finite, non-zero gradient. Also initialisation: determinism from the seed,
 * the distributions of the paper's Xavier and torchvision's Kaiming, BN
 * state; dropout seeded from a device-side step; inference graphs. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "harness/train/step.h"
#include "kernels/backend.h"
#include "kernels/error.h"
#include "kernels/ops.h"
#include "kernels/rng.h"
#include "model_test_util.h"

static tb_backend *be;

static int setup(void **state)
{
    (void)state;
    return tb_cpu_backend_create(&be, 2);
}

static int teardown(void **state)
{
    (void)state;
    tb_backend_destroy(be);
    return 0;
}

#define CHECK_OK(expr)                                                   \
    do {                                                                 \
        int rc_ = (expr);                                                \
        if (rc_ != TB_OK)                                                \
            fail_msg("%s: %s (%s)", #expr, tb_errmsg(), tb_status_name(rc_)); \
    } while (0)

static void fill_input(tb_graph *g, uint64_t seed)
{
    tb_tensor *x = tb_graph_input(g);
    int64_t n = tb_numel(x);
    float *h = malloc(sizeof(float) * (size_t)n);
    tb_rng r;
    tb_rng_seed(&r, seed, 0);
    for (int64_t i = 0; i < n; i++)
        h[i] = (float)tb_rng_normal(&r);
    CHECK_OK(tb_upload(be, x, h));
    free(h);
}

/* forward (train) -> softmax CE -> backward; returns the loss. */
static float train_step(tb_graph *g, int classes)
{
    int n = tb_graph_batch(g);
    int32_t labels_host[8];
    for (int i = 0; i < n; i++)
        labels_host[i] = (i * 7 + 3) % classes;
    void *mem_labels = NULL, *mem_loss = NULL, *mem_probs = NULL;
    CHECK_OK(tb_alloc(be, &mem_labels, sizeof(int32_t) * (size_t)n));
    CHECK_OK(tb_alloc(be, &mem_loss, sizeof(float)));
    CHECK_OK(tb_alloc(be, &mem_probs, sizeof(float) * (size_t)(n * classes)));
    tb_tensor labels = tb_tensor_1d(mem_labels, TB_I32, n);
    tb_tensor loss = tb_tensor_1d(mem_loss, TB_F32, 1);
    tb_tensor probs = tb_tensor_2d(mem_probs, TB_F32, n, classes);
    CHECK_OK(tb_upload(be, &labels, labels_host));
    CHECK_OK(tb_graph_forward(g, true));
    CHECK_OK(tb_softmax_ce_forward(be, &loss, &probs, tb_graph_output(g), &labels, NULL, 1.0f));
    CHECK_OK(tb_graph_zero_grads(g));
    CHECK_OK(tb_softmax_ce_backward(be, tb_graph_output_grad(g), &probs, &labels, NULL, 1.0f, 1.0f));
    CHECK_OK(tb_graph_backward(g));
    float l = 0;
    CHECK_OK(tb_download(be, &l, &loss));
    tb_free(be, mem_labels);
    tb_free(be, mem_loss);
    tb_free(be, mem_probs);
    return l;
}

static void assert_all_gradients(tb_graph *g, const char *model)
{
    for (int i = 0; i < tb_graph_n_params(g); i++) {
        tb_param *p = tb_graph_param(g, i);
        int64_t n = tb_numel(&p->grad);
        float *h = malloc(sizeof(float) * (size_t)n);
        CHECK_OK(tb_download(be, h, &p->grad));
        double sumsq = 0;
        for (int64_t k = 0; k < n; k++) {
            if (!isfinite(h[k]))
                fail_msg("%s: gradient of %s[%lld] is %g", model, p->name, (long long)k, (double)h[k]);
            sumsq += (double)h[k] * h[k];
        }
        free(h);
        if (!(sumsq > 0))
            fail_msg("%s: the gradient of %s is zero", model, p->name);
    }
}

static void step_case(tb_model_spec s, int batch)
{
    tb_graph *g = test_build(be, &s, batch, true);
    CHECK_OK(tb_model_init(g, s.init, 42));
    fill_input(g, 7);
    float loss = train_step(g, s.classes);
    if (!isfinite(loss) || loss <= 0.0f)
        fail_msg("%s %c: loss %g", s.name, s.variant, (double)loss);
    assert_all_gradients(g, s.name);
    /* the training forward counted one batch for every BN */
    assert_int_equal(tb_graph_bn_batches_tracked(g), 1);
    tb_graph_destroy(g);
}

static void test_resnet18_small(void **state)
{
    (void)state;
    tb_model_spec s = test_spec("resnet18", 'B', TB_STEM_SMALL, 28, 0.25f, 10);
    s.channels = 1;
    step_case(s, 2);
}

static void test_resnet50_d(void **state)
{
    (void)state;
    step_case(test_spec("resnet50", 'D', TB_STEM_IMAGENET, 64, 0.125f, 10), 2);
}

static void test_resnet50_a_xavier(void **state)
{
    (void)state;
    tb_model_spec s = test_spec("resnet50", 'A', TB_STEM_SMALL, 32, 0.125f, 10);
    s.init = TB_INIT_XAVIER;
    step_case(s, 2);
}

static void test_mobilenet(void **state)
{
    (void)state;
    step_case(test_spec("mobilenet_v1", 'B', TB_STEM_IMAGENET, 64, 0.25f, 10), 2);
}

/* At 75 px Mixed_7's maps are 1x1, so each BN there normalises `batch`
 * values per channel: one gives zero variance (PyTorch refuses it) and two
 * give outputs of exactly +-1 whose input gradient is identically zero, so
 * nothing upstream would learn. Batch 3 is the smallest that trains. */
static void test_inception(void **state)
{
    (void)state;
    tb_model_spec s = test_spec("inception_v3", 'B', TB_STEM_IMAGENET, 75, 1, 10);
    s.dropout = 0.5f;
    step_case(s, 3);
}

/* Dropout seeded from a step source (the device-side step a captured
 * training step uploads) draws exactly the host's masks, step after step,
 * and makes the graph replayable; without one it is not. */
static void test_dropout_step_source(void **state)
{
    (void)state;
    tb_model_spec s = test_spec("resnet18", 'D', TB_STEM_SMALL, 16, 0.25f, 10);
    s.dropout = 0.5f;
    tb_graph *host = test_build(be, &s, 4, true), *dev = test_build(be, &s, 4, true);
    CHECK_OK(tb_model_init(host, s.init, 5));
    CHECK_OK(tb_model_init(dev, s.init, 5));
    assert_false(tb_graph_replayable(host));
    void *mem;
    CHECK_OK(tb_alloc(be, &mem, sizeof(int32_t)));
    tb_tensor step = tb_tensor_1d(mem, TB_I32, 1);
    tb_graph_set_step_source(dev, &step);
    assert_true(tb_graph_replayable(dev));
    tb_graph_set_step(host, 1000), tb_graph_set_step(dev, 1000);
    float *first = NULL;
    for (int k = 0; k < 3; k++) {
        int32_t at = (int32_t)tb_graph_step(dev);
        CHECK_OK(tb_upload(be, &step, &at));
        fill_input(host, 30 + (uint64_t)k), fill_input(dev, 30 + (uint64_t)k);
        CHECK_OK(tb_graph_forward(host, true));
        CHECK_OK(tb_graph_forward(dev, true));
        tb_tensor *a = tb_graph_output(host), *b = tb_graph_output(dev);
        if (memcmp(a->data, b->data, tb_nbytes(a)) != 0)
            fail_msg("training forward %d: logits with the step source differ from the host-seeded ones", k);
        if (k == 0) { /* the next steps draw other masks: same input, other logits */
            first = malloc(tb_nbytes(a));
            assert_non_null(first);
            memcpy(first, a->data, tb_nbytes(a));
        }
    }
    fill_input(dev, 30);
    int32_t at = (int32_t)tb_graph_step(dev);
    CHECK_OK(tb_upload(be, &step, &at));
    CHECK_OK(tb_graph_forward(dev, true));
    assert_true(memcmp(first, tb_graph_output(dev)->data, tb_nbytes(tb_graph_output(dev))) != 0);
    free(first);
    tb_graph_set_step_source(dev, NULL);
    assert_false(tb_graph_replayable(dev));
    tb_free(be, mem);
    tb_graph_destroy(host);
    tb_graph_destroy(dev);
}

/* A training step uploads the graph's step counter with its scalars, for
 * dropout's device-side seed: the value of each step's own forward. */
static void test_step_uploads_graph_step(void **state)
{
    (void)state;
    tb_model_spec s = test_spec("resnet18", 'D', TB_STEM_SMALL, 16, 0.25f, 10);
    s.dropout = 0.5f;
    tb_graph *g = test_build(be, &s, 4, true);
    CHECK_OK(tb_model_init(g, s.init, 5));
    tb_step st;
    tb_step_options opt = {.momentum = 0.9, .weight_decay = 1e-4};
    CHECK_OK(tb_step_init(&st, g, &opt));
    assert_true(tb_graph_replayable(g));
    const tb_tensor *x = tb_graph_input(g);
    size_t pixels = (size_t)tb_numel(x);
    float *images = calloc(pixels, sizeof(float));
    int32_t labels[4] = {1, 2, 3, 4};
    assert_non_null(images);
    tb_mix none = {.kind = TB_MIX_NONE, .lam = 1.0f};
    tb_graph_set_step(g, 41);
    for (int k = 0; k < 3; k++) {
        tb_step_result res;
        CHECK_OK(tb_step_run(&st, images, labels, &none, 0.01, NULL, &res));
        int32_t uploaded = -1;
        CHECK_OK(tb_download(be, &uploaded, &st.graph_step));
        assert_int_equal(uploaded, 41 + k);
        assert_int_equal((int64_t)tb_graph_step(g), 42 + k);
    }
    free(images);
    tb_step_destroy(&st);
    assert_false(tb_graph_replayable(g)); /* the step's source left with it */
    tb_graph_destroy(g);
}

/* ---- inference graphs ---- */

static float *forward_eval_logits(tb_graph *g)
{
    CHECK_OK(tb_graph_forward(g, false));
    tb_tensor *y = tb_graph_output(g);
    float *h = malloc(tb_nbytes(y));
    assert_non_null(h);
    CHECK_OK(tb_download(be, h, y));
    return h;
}

/* An inference graph (shared activation memory, no gradients) computes the
 * evaluation forward of the training graph bitwise, twice in a row (a value
 * placed over one still to be read would change the logits), in well under
 * half the memory, and refuses what needs gradients. */
static void inference_case(tb_model_spec s, int batch)
{
    tb_graph *t = test_build(be, &s, batch, true), *inf = NULL;
    CHECK_OK(tb_graph_create(&inf, be, TB_F32, batch));
    tb_g_set_inference(inf, true);
    CHECK_OK(tb_model_build(inf, &s));
    CHECK_OK(tb_graph_finalize(inf, true));
    CHECK_OK(tb_model_init(t, s.init, 11));
    CHECK_OK(tb_model_init(inf, s.init, 11));
    size_t bytes = tb_nbytes(tb_graph_output(t));
    for (uint64_t round = 0; round < 2; round++) {
        fill_input(t, 3 + round);
        fill_input(inf, 3 + round);
        float *want = forward_eval_logits(t), *got = forward_eval_logits(inf);
        if (memcmp(want, got, bytes) != 0)
            fail_msg("%s %c: the inference graph's logits differ (round %d)", s.name, s.variant, (int)round);
        free(want);
        free(got);
    }
    size_t tm = tb_graph_memory_bytes(t), im = tb_graph_memory_bytes(inf);
    if (im * 2 >= tm)
        fail_msg("%s %c: inference graph %zu bytes, training graph %zu", s.name, s.variant, im, tm);
    /* the backward's gradients share their arena: about as many bytes as the
     * activations if each had its own, far fewer at the backward's peak */
    size_t ta = tb_graph_activation_bytes(t), tg = tb_graph_gradient_bytes(t);
    printf("%s %c: training graph activations %zu bytes, gradients %zu; inference activations %zu\n", s.name,
           s.variant, ta, tg, tb_graph_activation_bytes(inf));
    if (tg * 2 >= ta)
        fail_msg("%s %c: gradient arena %zu bytes, activations %zu", s.name, s.variant, tg, ta);
    assert_int_equal(tb_graph_gradient_bytes(inf), 0);
    assert_int_equal(tb_graph_forward(inf, true), TB_ERR_INVALID);
    assert_int_equal(tb_graph_zero_grads(inf), TB_ERR_INVALID);
    assert_int_equal(tb_graph_backward(inf), TB_ERR_INVALID);
    tb_graph_destroy(t);
    tb_graph_destroy(inf);
}

/* input -> conv (part 0) | conv -> relu -> conv -> conv -> pool -> fc (part 1),
 * inference or not: a second run of part 1 alone must give the same logits
 * (part 0's output is read in a later part, so it survives). */
static tb_graph *two_part_graph(bool inference)
{
    tb_graph *g = NULL;
    CHECK_OK(tb_graph_create(&g, be, TB_F32, 2));
    tb_g_set_inference(g, inference);
    tb_conv_spec c3 = {.k = 8, .kh = 3, .kw = 3, .stride = 1, .pad_h = 1, .pad_w = 1, .dilation = 1, .groups = 1,
                       .bias = true};
    tb_value x = tb_g_conv(g, "c0", tb_g_input(g, 8, 8, 3), c3);
    tb_g_begin_part(g);
    tb_value y = tb_g_relu(g, tb_g_conv(g, "c1", x, c3));
    y = tb_g_conv(g, "c3", tb_g_conv(g, "c2", y, c3), c3);
    CHECK_OK(tb_g_set_output(g, tb_g_linear(g, "fc", tb_g_global_avgpool(g, y), 5, true)));
    CHECK_OK(tb_graph_finalize(g, true));
    CHECK_OK(tb_model_init(g, TB_INIT_KAIMING, 3));
    fill_input(g, 9);
    return g;
}

static void test_inference_graph_parts(void **state)
{
    (void)state;
    tb_graph *t = two_part_graph(false), *inf = two_part_graph(true);
    float *want = forward_eval_logits(t), *got = forward_eval_logits(inf);
    size_t bytes = tb_nbytes(tb_graph_output(t));
    assert_memory_equal(want, got, bytes);
    CHECK_OK(tb_graph_forward_part(inf, false, 1));
    float *again = malloc(bytes);
    assert_non_null(again);
    CHECK_OK(tb_download(be, again, tb_graph_output(inf)));
    assert_memory_equal(want, again, bytes);
    free(want);
    free(got);
    free(again);
    tb_graph_destroy(t);
    tb_graph_destroy(inf);
}

static void test_inference_graphs(void **state)
{
    (void)state;
    tb_model_spec r18 = test_spec("resnet18", 'D', TB_STEM_SMALL, 28, 0.25f, 10);
    r18.channels = 1;
    inference_case(r18, 2);
    inference_case(test_spec("resnet50", 'D', TB_STEM_IMAGENET, 64, 0.125f, 10), 2);
    inference_case(test_spec("mobilenet_v1", 'B', TB_STEM_IMAGENET, 64, 0.25f, 10), 2);
    tb_model_spec inc = test_spec("inception_v3", 'B', TB_STEM_IMAGENET, 75, 1, 10);
    inc.dropout = 0.5f;
    inference_case(inc, 3);
}

/* ---- initialisation ---- */

static float *download_param(tb_graph *g, int i)
{
    int64_t n = tb_numel(&tb_graph_param(g, i)->master);
    float *h = malloc(sizeof(float) * (size_t)n);
    CHECK_OK(tb_graph_param_download(g, i, h));
    return h;
}

static int find_param(tb_graph *g, const char *name)
{
    for (int i = 0; i < tb_graph_n_params(g); i++)
        if (!strcmp(tb_graph_param(g, i)->name, name))
            return i;
    fail_msg("no parameter %s", name);
    return -1;
}

static void moments(const float *v, int64_t n, double *mean, double *std, double *maxabs)
{
    double s = 0, s2 = 0, m = 0;
    for (int64_t i = 0; i < n; i++) {
        s += v[i];
        s2 += (double)v[i] * v[i];
        m = fabs(v[i]) > m ? fabs(v[i]) : m;
    }
    *mean = s / (double)n;
    *std = sqrt(s2 / (double)n - *mean * *mean);
    *maxabs = m;
}

static void test_init_distributions(void **state)
{
    (void)state;
    tb_model_spec s = test_spec("resnet18", 'B', TB_STEM_SMALL, 8, 1, 10);
    tb_graph *g = test_build(be, &s, 1, true);
    const char *conv = "layer4.1.conv2.weight"; /* 512 x 3 x 3 x 512: fan_in = fan_out = 4608 */
    for (int k = 0; k < 2; k++) {
        tb_init_kind init = k ? TB_INIT_XAVIER : TB_INIT_KAIMING;
        CHECK_OK(tb_model_init(g, init, 1));
        int i = find_param(g, conv);
        int64_t n = tb_numel(&tb_graph_param(g, i)->master);
        float *w = download_param(g, i);
        double mean, std, maxabs;
        moments(w, n, &mean, &std, &maxabs);
        free(w);
        double fan = 4608;
        if (init == TB_INIT_KAIMING) {
            assert_true(fabs(std / sqrt(2.0 / fan) - 1) < 0.01);
        } else {
            double a = sqrt(6.0 / (fan + fan));
            assert_true(maxabs <= a);
            assert_true(fabs(std / (a / sqrt(3.0)) - 1) < 0.01);
        }
        assert_true(fabs(mean) < 0.001);
        /* fc: kaiming keeps nn.Linear's uniform(+-1/sqrt(fan_in)); xavier uses fan_in + fan_out */
        i = find_param(g, "fc.weight");
        w = download_param(g, i);
        moments(w, 10 * 512, &mean, &std, &maxabs);
        free(w);
        double bound = init == TB_INIT_KAIMING ? 1.0 / sqrt(512.0) : sqrt(6.0 / (512.0 + 10.0));
        assert_true(maxabs <= bound && maxabs > 0.95 * bound);
        float *b = download_param(g, find_param(g, "fc.bias"));
        for (int j = 0; j < 10; j++)
            assert_true(b[j] == 0.0f);
        free(b);
    }
    float *gamma = download_param(g, find_param(g, "layer1.0.bn2.weight"));
    float *beta = download_param(g, find_param(g, "layer1.0.bn2.bias"));
    for (int j = 0; j < 64; j++)
        assert_true(gamma[j] == 1.0f && beta[j] == 0.0f);
    free(gamma);
    free(beta);
    for (int i = 0; i < tb_graph_n_buffers(g); i++) {
        tb_buffer *b = tb_graph_buffer(g, i);
        float v[512];
        CHECK_OK(tb_download(be, v, &b->t));
        float want = strstr(b->name, "running_var") ? 1.0f : 0.0f;
        for (int64_t j = 0; j < tb_numel(&b->t); j++)
            assert_true(v[j] == want);
    }
    assert_int_equal(tb_graph_bn_batches_tracked(g), 0);
    tb_graph_destroy(g);
}

static void test_init_deterministic(void **state)
{
    (void)state;
    tb_model_spec s = test_spec("mobilenet_v1", 'B', TB_STEM_SMALL, 8, 0.25f, 10);
    tb_graph *a = test_build(be, &s, 1, true), *b = test_build(be, &s, 1, true);
    CHECK_OK(tb_model_init(a, TB_INIT_KAIMING, 5));
    CHECK_OK(tb_model_init(b, TB_INIT_KAIMING, 5));
    bool differs = false;
    for (int i = 0; i < tb_graph_n_params(a); i++) {
        int64_t n = tb_numel(&tb_graph_param(a, i)->master);
        float *x = download_param(a, i), *y = download_param(b, i);
        assert_memory_equal(x, y, sizeof(float) * (size_t)n);
        free(x);
        free(y);
    }
    CHECK_OK(tb_model_init(b, TB_INIT_KAIMING, 6));
    float *x = download_param(a, 0), *y = download_param(b, 0);
    differs = memcmp(x, y, sizeof(float) * (size_t)tb_numel(&tb_graph_param(a, 0)->master)) != 0;
    free(x);
    free(y);
    assert_true(differs);
    tb_graph_destroy(a);
    tb_graph_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_distributions),
        cmocka_unit_test(test_init_deterministic),
        cmocka_unit_test(test_resnet18_small),
        cmocka_unit_test(test_resnet50_d),
        cmocka_unit_test(test_resnet50_a_xavier),
        cmocka_unit_test(test_mobilenet),
        cmocka_unit_test(test_inception),
        cmocka_unit_test(test_dropout_step_source),
        cmocka_unit_test(test_step_uploads_graph_step),
        cmocka_unit_test(test_inference_graphs),
        cmocka_unit_test(test_inference_graph_parts),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
