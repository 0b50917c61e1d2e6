/* Gradient clipping: the sum of squares over several tensors (and dtypes),
 * PyTorch's clip factor with the loss-scale correction, and the SGD step
 * applying it from the device-side sum. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kernels/backend.h"
#include "kernels/error.h"
#include "kernels/ops.h"
#include "tricks/grad_clip.h"

static void test_factor(void **state)
{
    (void)state;
    /* sumsq, grad_scale, max_norm */
    assert_float_equal(tb_sgd_clip_factor(0.25, 1.0, 1.0), 1.0, 0);
    assert_float_equal(tb_sgd_clip_factor(16.0, 1.0, 1.0), 1.0 / (4.0 + 1e-6), 1e-15);
    /* a loss scale of 8 divides the norm: 32 / 8 = 4 */
    assert_float_equal(tb_sgd_clip_factor(1024.0, 8.0, 2.0), 2.0 / (4.0 + 1e-6), 1e-15);
    assert_float_equal(tb_sgd_clip_factor(INFINITY, 1.0, 1.0), 1.0, 0);
    assert_float_equal(tb_sgd_clip_factor(NAN, 1.0, 1.0), 1.0, 0);
}

static float read_acc(tb_backend *be, const tb_tensor *acc)
{
    float v = -1;
    assert_int_equal(tb_download(be, &v, acc), TB_OK);
    return v;
}

static void test_sum_of_squares(void **state)
{
    tb_backend *be = *state;
    tb_grad_clip c;
    assert_int_equal(tb_grad_clip_init(&c, be, 1.0), TB_OK);
    void *mem;
    assert_int_equal(tb_alloc(be, &mem, 64), TB_OK);
    float *a = mem;
    uint16_t *b = (uint16_t *)(a + 4);
    const float av[4] = {3, 0, -1, 2}, bv[3] = {-4, 1, 0.5f};
    for (int i = 0; i < 4; i++)
        a[i] = av[i];
    for (int i = 0; i < 3; i++)
        b[i] = tb_f32_to_f16(bv[i]); /* exact in f16 */
    tb_tensor grads[2] = {tb_tensor_1d(a, TB_F32, 4), tb_tensor_1d(b, TB_F16, 3)};
    assert_int_equal(tb_grad_clip_accumulate(&c, be, grads, 2), TB_OK);
    assert_float_equal(read_acc(be, &c.acc), 9 + 0 + 1 + 4 + 16 + 1 + 0.25, 1e-5);
    /* called again: the accumulator restarts at 0 */
    assert_int_equal(tb_grad_clip_accumulate(&c, be, grads, 1), TB_OK);
    assert_float_equal(read_acc(be, &c.acc), 14.0, 1e-6);
    tb_free(be, mem);
    tb_grad_clip_destroy(&c, be);
    assert_int_equal(tb_grad_clip_init(&c, be, 0.0), TB_ERR_INVALID);
}

/* One plain SGD step (no momentum, no decay) with clip_sumsq: w -= lr * g *
 * factor / grad_scale, against the same step without clipping. */
static void test_sgd_applies_factor(void **state)
{
    tb_backend *be = *state;
    tb_grad_clip c;
    assert_int_equal(tb_grad_clip_init(&c, be, 0.5), TB_OK);
    void *mem;
    assert_int_equal(tb_alloc(be, &mem, 64), TB_OK);
    float *w = mem, *g = w + 4;
    const float gv[4] = {6, 0, -2, 4}; /* scaled by 2: true norm sqrt(9 + 1 + 4) */
    for (int i = 0; i < 4; i++)
        w[i] = 1.0f, g[i] = gv[i];
    tb_tensor wt = tb_tensor_1d(w, TB_F32, 4), gt = tb_tensor_1d(g, TB_F32, 4);
    tb_sgd_params p = {.lr = 0.1f, .grad_scale = 2.0f};
    assert_int_equal(tb_grad_clip_accumulate(&c, be, &gt, 1), TB_OK);
    p.clip_sumsq = &c.acc;
    p.clip_max_norm = c.max_norm;
    assert_int_equal(tb_sgd_step(be, &wt, NULL, NULL, &gt, NULL, NULL, &p), TB_OK);
    double factor = 0.5 / (sqrt(14.0) + 1e-6);
    for (int i = 0; i < 4; i++)
        assert_float_equal(w[i], 1.0 - 0.1 * gv[i] / 2 * factor, 1e-6);
    /* a norm under the limit leaves the step unclipped */
    p.clip_max_norm = 100.0f;
    for (int i = 0; i < 4; i++)
        w[i] = 1.0f;
    assert_int_equal(tb_sgd_step(be, &wt, NULL, NULL, &gt, NULL, NULL, &p), TB_OK);
    for (int i = 0; i < 4; i++)
        assert_float_equal(w[i], 1.0f - 0.1f * gv[i] / 2, 1e-7);
    /* the front end refuses a clip without a positive limit */
    p.clip_max_norm = 0.0f;
    assert_int_equal(tb_sgd_step(be, &wt, NULL, NULL, &gt, NULL, NULL, &p), TB_ERR_INVALID);
    tb_free(be, mem);
    tb_grad_clip_destroy(&c, be);
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
        cmocka_unit_test(test_factor),
        cmocka_unit_test(test_sum_of_squares),
        cmocka_unit_test(test_sgd_applies_factor),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
