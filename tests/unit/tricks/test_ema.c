/* Weight EMA on plain tensors: the update formula, the warmup decay, and
 * swap in/out (the graph-level tracking is in test_graph_tricks). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kernels/backend.h"
#include "kernels/error.h"
#include "tricks/ema.h"

static void test_decay_schedule(void **state)
{
    (void)state;
    assert_float_equal(tb_ema_decay_at(0.999, false, 1), 0.999, 0);
    assert_float_equal(tb_ema_decay_at(0.999, false, 100000), 0.999, 0);
    /* timm ModelEmaV3 warmup: 0 at the first update, then 1 - k^(-2/3) capped by the decay */
    assert_float_equal(tb_ema_decay_at(0.999, true, 1), 0.0, 0);
    assert_float_equal(tb_ema_decay_at(0.999, true, 2), 1.0 - pow(2.0, -2.0 / 3.0), 1e-15);
    assert_float_equal(tb_ema_decay_at(0.999, true, 8), 0.75, 1e-15);
    assert_float_equal(tb_ema_decay_at(0.999, true, 10000000), 0.999, 0);
    assert_true(tb_ema_decay_at(0.9999, true, 1000) < tb_ema_decay_at(0.9999, true, 1001));
}

static void test_update_formula(void **state)
{
    tb_backend *be = *state;
    enum { A = 5, B = 3 };
    void *mem;
    assert_int_equal(tb_alloc(be, &mem, (A + B) * sizeof(float)), TB_OK);
    float *w = mem;
    tb_tensor live[2] = {tb_tensor_1d(w, TB_F32, A), tb_tensor_2d(w + A, TB_F32, 1, B)};
    double ref[A + B];
    for (int i = 0; i < A + B; i++)
        ref[i] = w[i] = (float)i - 2.5f;
    tb_ema e;
    assert_int_equal(tb_ema_init_tensors(&e, be, live, 2, 0.99, true), TB_OK);
    for (int step = 1; step <= 20; step++) {
        for (int i = 0; i < A + B; i++)
            w[i] += 0.1f * (float)((i + step) % 4) - 0.13f;
        assert_int_equal(tb_ema_update(&e), TB_OK);
        double d = tb_ema_decay_at(0.99, true, step);
        for (int i = 0; i < A + B; i++)
            ref[i] = d * ref[i] + (1 - d) * w[i];
    }
    float now[A + B];
    for (int i = 0; i < A + B; i++)
        now[i] = w[i];
    assert_int_equal(tb_ema_swap_in(&e, NULL), TB_OK);
    for (int i = 0; i < A + B; i++)
        assert_float_equal(w[i], ref[i], 1e-5);
    assert_int_equal(tb_ema_swap_out(&e, NULL), TB_OK);
    for (int i = 0; i < A + B; i++)
        assert_true(w[i] == now[i]);
    tb_ema_destroy(&e);
    tb_free(be, mem);
}

static void test_errors(void **state)
{
    tb_backend *be = *state;
    float x[4] = {0};
    int32_t n[4] = {0};
    tb_tensor t = tb_tensor_1d(x, TB_F32, 4), ti = tb_tensor_1d(n, TB_I32, 4);
    tb_ema e;
    assert_int_equal(tb_ema_init_tensors(&e, be, &t, 1, 1.0, false), TB_ERR_INVALID);
    assert_int_equal(tb_ema_init_tensors(&e, be, &t, 1, 0.0, false), TB_ERR_INVALID);
    assert_int_equal(tb_ema_init_tensors(&e, be, &ti, 1, 0.9, false), TB_ERR_INVALID);
    assert_int_equal(tb_ema_init_tensors(&e, be, &t, 0, 0.9, false), TB_ERR_INVALID);
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
        cmocka_unit_test(test_decay_schedule),
        cmocka_unit_test(test_update_formula),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
