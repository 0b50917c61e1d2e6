/* The dynamic/static loss scaler state machine (PyTorch GradScaler). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include "kernels/error.h"
#include "tricks/loss_scale.h"

static void test_defaults(void **state)
{
    (void)state;
    tb_loss_scaler s;
    assert_int_equal(tb_loss_scaler_init(&s, true, 0), TB_OK);
    assert_true(tb_loss_scaler_scale(&s) == 65536.0f);
    assert_int_equal(tb_loss_scaler_init(&s, false, 0), TB_OK);
    assert_true(tb_loss_scaler_scale(&s) == 1.0f);
    assert_int_equal(tb_loss_scaler_init(&s, false, 128), TB_OK);
    assert_true(tb_loss_scaler_scale(&s) == 128.0f);
    assert_int_equal(tb_loss_scaler_init(&s, true, INFINITY), TB_ERR_INVALID);
}

static void test_growth(void **state)
{
    (void)state;
    tb_loss_scaler s;
    assert_int_equal(tb_loss_scaler_init(&s, true, 1024), TB_OK);
    for (int i = 0; i < 1999; i++)
        assert_true(tb_loss_scaler_update(&s, false));
    assert_true(tb_loss_scaler_scale(&s) == 1024.0f); /* not yet */
    assert_true(tb_loss_scaler_update(&s, false));   /* the 2000th finite step */
    assert_true(tb_loss_scaler_scale(&s) == 2048.0f);
    for (int i = 0; i < 2000; i++)
        tb_loss_scaler_update(&s, false);
    assert_true(tb_loss_scaler_scale(&s) == 4096.0f);
    assert_int_equal(tb_loss_scaler_skipped(&s), 0);
}

static void test_backoff_and_skip(void **state)
{
    (void)state;
    tb_loss_scaler s;
    assert_int_equal(tb_loss_scaler_init(&s, true, 0), TB_OK);
    for (int i = 0; i < 1500; i++)
        tb_loss_scaler_update(&s, false);
    assert_false(tb_loss_scaler_update(&s, true)); /* skipped */
    assert_true(tb_loss_scaler_scale(&s) == 32768.0f);
    assert_int_equal(tb_loss_scaler_skipped(&s), 1);
    /* the overflow restarted the count: 1999 more finite steps do not grow */
    for (int i = 0; i < 1999; i++)
        tb_loss_scaler_update(&s, false);
    assert_true(tb_loss_scaler_scale(&s) == 32768.0f);
    tb_loss_scaler_update(&s, false);
    assert_true(tb_loss_scaler_scale(&s) == 65536.0f);
    assert_false(tb_loss_scaler_update(&s, true));
    assert_false(tb_loss_scaler_update(&s, true));
    assert_true(tb_loss_scaler_scale(&s) == 16384.0f);
    assert_int_equal(tb_loss_scaler_skipped(&s), 3);
    assert_int_equal(s.steps, 1500 + 1 + 2000 + 2);
    /* many overflows stop at the floor, never 0 */
    for (int i = 0; i < 200; i++)
        tb_loss_scaler_update(&s, true);
    assert_true(tb_loss_scaler_scale(&s) > 0.0f);
}

static void test_static(void **state)
{
    (void)state;
    tb_loss_scaler s;
    assert_int_equal(tb_loss_scaler_init(&s, false, 512), TB_OK);
    for (int i = 0; i < 4000; i++)
        assert_true(tb_loss_scaler_update(&s, false));
    assert_true(tb_loss_scaler_scale(&s) == 512.0f);
    assert_false(tb_loss_scaler_update(&s, true)); /* skipped, scale kept */
    assert_true(tb_loss_scaler_scale(&s) == 512.0f);
    assert_int_equal(tb_loss_scaler_skipped(&s), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_backoff_and_skip),
        cmocka_unit_test(test_static),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
