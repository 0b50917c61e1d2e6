/* Gradient clipping: the global norm over several tensors (and dtypes), the
 * loss-scale correction, and PyTorch's clip factor. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kernels/backend.h"
#include "kernels/error.h"
#include "tricks/grad_clip.h"

static void test_factor(void **state)
{
    (void)state;
    assert_float_equal(tb_grad_clip_factor(0.5, 1.0), 1.0, 0);
    assert_float_equal(tb_grad_clip_factor(4.0, 1.0), 1.0 / (4.0 + 1e-6), 1e-15);
    assert_float_equal(tb_grad_clip_factor(INFINITY, 1.0), 1.0, 0);
    assert_float_equal(tb_grad_clip_factor(NAN, 1.0), 1.0, 0);
}

static void test_global_norm(void **state)
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
    double sumsq = 9 + 0 + 1 + 4 + 16 + 1 + 0.25;
    double norm = -1;
    assert_int_equal(tb_grad_global_norm(be, &c.acc, grads, 2, 1.0, &norm), TB_OK);
    assert_float_equal(norm, sqrt(sumsq), 1e-6);
    /* called again: the accumulator restarts at 0; a loss scale of 4 divides the norm */
    assert_int_equal(tb_grad_global_norm(be, &c.acc, grads, 2, 4.0, &norm), TB_OK);
    assert_float_equal(norm, sqrt(sumsq) / 4, 1e-6);
    assert_int_equal(tb_grad_global_norm(be, &c.acc, grads, 1, 1.0, &norm), TB_OK);
    assert_float_equal(norm, sqrt(14.0), 1e-6);
    tb_free(be, mem);
    tb_grad_clip_destroy(&c, be);
    assert_int_equal(tb_grad_clip_init(&c, be, 0.0), TB_ERR_INVALID);
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
        cmocka_unit_test(test_global_norm),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
