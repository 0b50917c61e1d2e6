/* Label smoothing rows: the paper's convention (1 - eps, eps / (K - 1)). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kernels/error.h"
#include "tricks/label_smoothing.h"

static void test_row(void **state)
{
    (void)state;
    float row[10];
    assert_int_equal(tb_label_smoothing_row(row, 10, 3, 0.1), TB_OK);
    double sum = 0;
    for (int i = 0; i < 10; i++) {
        sum += row[i];
        assert_float_equal(row[i], i == 3 ? 0.9f : 0.1f / 9.0f, 1e-7);
    }
    assert_float_equal(sum, 1.0, 1e-6);
    /* ImageNet: 1000 classes */
    static float big[1000];
    assert_int_equal(tb_label_smoothing_row(big, 1000, 999, 0.1), TB_OK);
    sum = 0;
    for (int i = 0; i < 1000; i++)
        sum += big[i];
    assert_float_equal(sum, 1.0, 1e-5);
    assert_float_equal(big[0], 0.1f / 999.0f, 1e-9);
    assert_float_equal(big[999], 0.9f, 1e-7);
    /* eps 0: one-hot */
    assert_int_equal(tb_label_smoothing_row(row, 10, 0, 0.0), TB_OK);
    assert_true(row[0] == 1.0f && row[1] == 0.0f && row[9] == 0.0f);
}

static void test_values_and_errors(void **state)
{
    (void)state;
    assert_float_equal(tb_label_smoothing_on(5, 0.2), 0.8, 1e-12);
    assert_float_equal(tb_label_smoothing_off(5, 0.2), 0.05, 1e-12);
    float row[4];
    assert_int_equal(tb_label_smoothing_row(row, 4, 4, 0.1), TB_ERR_INVALID);
    assert_int_equal(tb_label_smoothing_row(row, 4, -1, 0.1), TB_ERR_INVALID);
    assert_int_equal(tb_label_smoothing_row(row, 1, 0, 0.1), TB_ERR_INVALID);
    assert_int_equal(tb_label_smoothing_row(row, 4, 0, 1.0), TB_ERR_INVALID);
    assert_int_equal(tb_label_smoothing_row(row, 4, 0, -0.1), TB_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_row),
        cmocka_unit_test(test_values_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
