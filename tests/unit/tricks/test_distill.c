/* Distillation loss and gradient against a hand computation in double
 * (itself checked by central finite differences), on the CPU backend. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "kernels/backend.h"
#include "kernels/error.h"
#include "tricks/distill.h"

enum { N = 3, K = 4 };

static const float student[N * K] = {1.0f, -0.5f, 2.0f, 0.3f, -1.2f, 0.4f, 0.0f, 0.9f, 2.5f, 2.4f, -3.0f, 0.1f};
static const float teacher[N * K] = {0.2f, -1.0f, 3.0f, 0.0f, -0.3f, 1.5f, 0.2f, 0.1f, 1.0f, 2.0f, -1.0f, 0.5f};
static const int32_t labels[N] = {2, 3, 0};

static void softmax_row(double *out, const double *z, double t)
{
    double m = -INFINITY, s = 0;
    for (int j = 0; j < K; j++)
        m = fmax(m, z[j] / t);
    for (int j = 0; j < K; j++)
        s += exp(z[j] / t - m);
    for (int j = 0; j < K; j++)
        out[j] = exp(z[j] / t - m) / s;
}

/* targets: soft rows (N*K) or NULL for the hard labels */
static double host_loss(const double *z, const float *targets, double t, double hw)
{
    double hard = 0, soft = 0;
    for (int i = 0; i < N; i++) {
        double p[K], q[K], tp[K], r[K];
        for (int j = 0; j < K; j++)
            r[j] = teacher[i * K + j];
        softmax_row(p, z + i * K, 1.0);
        softmax_row(q, z + i * K, t);
        softmax_row(tp, r, t);
        for (int j = 0; j < K; j++) {
            double y = targets ? targets[i * K + j] : (labels[i] == j);
            hard -= y * log(p[j]);
            soft -= tp[j] * log(q[j]);
        }
    }
    return hw * hard / N + t * t * soft / N;
}

/* d loss / dz by hand: hw (p - y) / n + T (q - tp) / n */
static void host_grad(double *g, const double *z, const float *targets, double t, double hw)
{
    for (int i = 0; i < N; i++) {
        double p[K], q[K], tp[K], r[K];
        for (int j = 0; j < K; j++)
            r[j] = teacher[i * K + j];
        softmax_row(p, z + i * K, 1.0);
        softmax_row(q, z + i * K, t);
        softmax_row(tp, r, t);
        for (int j = 0; j < K; j++) {
            double y = targets ? targets[i * K + j] : (labels[i] == j);
            g[i * K + j] = hw * (p[j] - y) / N + t * (q[j] - tp[j]) / N;
        }
    }
}

static void check_case(tb_backend *be, const float *targets, float t, float hw, float grad_scale)
{
    double z[N * K], g[N * K];
    for (int i = 0; i < N * K; i++)
        z[i] = student[i];
    host_grad(g, z, targets, t, hw);
    /* the hand gradient is the derivative of the hand loss */
    for (int i = 0; i < N * K; i++) {
        double zp[N * K], zm[N * K], h = 1e-5;
        memcpy(zp, z, sizeof z);
        memcpy(zm, z, sizeof z);
        zp[i] += h;
        zm[i] -= h;
        double fd = (host_loss(zp, targets, t, hw) - host_loss(zm, targets, t, hw)) / (2 * h);
        if (fabs(fd - g[i]) > 1e-6 * fmax(1.0, fabs(fd)))
            fail_msg("hand gradient %d: %g vs finite difference %g", i, g[i], fd);
    }

    void *mem;
    assert_int_equal(tb_alloc(be, &mem, (4 * N * K + N) * sizeof(float)), TB_OK);
    float *f = mem;
    tb_tensor zs = tb_tensor_2d(f, TB_F32, N, K), zt = tb_tensor_2d(f + N * K, TB_F32, N, K);
    tb_tensor dz = tb_tensor_2d(f + 2 * N * K, TB_F32, N, K), tg = tb_tensor_2d(f + 3 * N * K, TB_F32, N, K);
    tb_tensor lb = tb_tensor_1d(f + 4 * N * K, TB_I32, N);
    float dz_init[N * K];
    for (int i = 0; i < N * K; i++)
        dz_init[i] = 0.25f * (float)(i % 3); /* the backward accumulates */
    assert_int_equal(tb_upload(be, &zs, student), TB_OK);
    assert_int_equal(tb_upload(be, &zt, teacher), TB_OK);
    assert_int_equal(tb_upload(be, &dz, dz_init), TB_OK);
    assert_int_equal(tb_upload(be, &lb, labels), TB_OK);
    if (targets)
        assert_int_equal(tb_upload(be, &tg, targets), TB_OK);

    tb_distill_buffers b;
    assert_int_equal(tb_distill_buffers_alloc(&b, be, N, K), TB_OK);
    /* a loss scale other than 1 comes from backend memory, as a captured
     * step's does: the same gradient */
    void *scale_mem = NULL;
    tb_tensor scale_t = {0};
    if (grad_scale != 1.0f) {
        assert_int_equal(tb_alloc(be, &scale_mem, sizeof(float)), TB_OK);
        scale_t = tb_tensor_1d(scale_mem, TB_F32, 1);
        assert_int_equal(tb_upload(be, &scale_t, &grad_scale), TB_OK);
    }
    int rc = tb_distill_loss(be, &dz, &b, &zs, &zt, targets ? NULL : &lb, targets ? &tg : NULL, t, hw,
                             scale_mem ? 1.0f : grad_scale, scale_mem ? &scale_t : NULL);
    tb_free(be, scale_mem);
    if (rc != TB_OK)
        fail_msg("tb_distill_loss: %s", tb_errmsg());
    float loss, out[N * K];
    assert_int_equal(tb_download(be, &loss, &b.loss), TB_OK);
    assert_int_equal(tb_download(be, out, &dz), TB_OK);
    double expect = host_loss(z, targets, t, hw);
    if (fabs(loss - expect) > 1e-5 * fmax(1.0, fabs(expect)))
        fail_msg("T %g hw %g: loss %.7g, expected %.7g", t, hw, loss, expect);
    for (int i = 0; i < N * K; i++) {
        double want = dz_init[i] + grad_scale * g[i];
        if (fabs(out[i] - want) > 1e-5 * fmax(1.0, fabs(want)))
            fail_msg("T %g hw %g scale %g: dlogits[%d] %.7g, expected %.7g", t, hw, grad_scale, i, out[i],
                     want);
    }
    tb_distill_buffers_free(&b, be);
    tb_free(be, mem);
}

static void test_hard_labels(void **state)
{
    tb_backend *be = *state;
    check_case(be, NULL, 20.0f, 1.0f, 1.0f); /* the paper: T = 20 */
    check_case(be, NULL, 2.0f, 0.5f, 1.0f);
    check_case(be, NULL, 1.0f, 0.0f, 1.0f);  /* soft term only */
    check_case(be, NULL, 4.0f, 1.0f, 1024.0f); /* under a loss scale */
}

static void test_soft_targets(void **state)
{
    tb_backend *be = *state;
    /* label-smoothed, mixed targets as tb_soft_targets would give */
    float t[N * K];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < K; j++)
            t[i * K + j] = 0.7f * (labels[i] == j ? 0.9f : 0.1f / 3) +
                           0.3f * (labels[N - 1 - i] == j ? 0.9f : 0.1f / 3);
    check_case(be, t, 3.0f, 1.0f, 1.0f);
}

static void test_errors(void **state)
{
    tb_backend *be = *state;
    tb_distill_buffers b;
    assert_int_equal(tb_distill_buffers_alloc(&b, be, N, K), TB_OK);
    float zero[N * K] = {0};
    int32_t lab[N] = {0};
    tb_tensor z = tb_tensor_2d(zero, TB_F32, N, K), z2 = tb_tensor_2d(zero, TB_F32, N, K - 1);
    tb_tensor dz = tb_tensor_2d(zero, TB_F32, N, K), lb = tb_tensor_1d(lab, TB_I32, N);
    tb_err_clear();
    assert_int_equal(tb_distill_loss(be, &dz, &b, &z, &z, &lb, NULL, 0.0f, 1.0f, 1.0f, NULL), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "tricks.distill.temperature"));
    assert_int_equal(tb_distill_loss(be, &dz, &b, &z, &z, &lb, NULL, 2.0f, -1.0f, 1.0f, NULL), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "tricks.distill.hard_weight"));
    assert_int_equal(tb_distill_loss(be, &dz, &b, &z, &z2, &lb, NULL, 2.0f, 1.0f, 1.0f, NULL), TB_ERR_INVALID);
    assert_int_equal(tb_distill_loss(be, &dz, &b, &z, &z, NULL, NULL, 2.0f, 1.0f, 1.0f, NULL), TB_ERR_INVALID);
    tb_distill_buffers_free(&b, be);
}

static int setup(void **state)
{
    tb_backend *be = NULL;
    if (tb_cpu_backend_create(&be, 2) != TB_OK)
        return -1;
    *state = be;
    return 0;
}

static int teardown(void **state)
{
    tb_backend_destroy(*state);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hard_labels),
        cmocka_unit_test(test_soft_targets),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
