#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "kernels/error.h"
#include "kernels/tensor.h"

static void test_shapes(void **state)
{
    (void)state;
    tb_tensor t = tb_tensor_4d(NULL, TB_F16, 2, 3, 5, 7);
    assert_int_equal(tb_numel(&t), 210);
    assert_int_equal(tb_nbytes(&t), 420);
    char buf[64];
    assert_string_equal(tb_shape_str(&t, buf, sizeof buf), "[2,3,5,7] f16");
    tb_tensor u = tb_tensor_2d(NULL, TB_F32, 2, 105);
    assert_false(tb_same_shape(&t, &u));
}

static void test_f16_round_trip_exact_values(void **state)
{
    (void)state;
    const float exact[] = {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 6.103515625e-05f /* min normal */,
                           5.960464477539063e-08f /* min subnormal */, 0.333251953125f};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        assert_true(tb_f16_to_f32(tb_f32_to_f16(exact[i])) == exact[i]);
    assert_true(isinf(tb_f16_to_f32(tb_f32_to_f16(70000.0f))));
    assert_true(isnan(tb_f16_to_f32(tb_f32_to_f16(NAN))));
    /* round to nearest even: 1 + 2^-11 is halfway between 1 and 1 + 2^-10 */
    assert_true(tb_f16_to_f32(tb_f32_to_f16(1.0f + 0.00048828125f)) == 1.0f);
    assert_true(tb_f16_to_f32(tb_f32_to_f16(1.0f + 3 * 0.00048828125f)) == 1.0f + 4 * 0.00048828125f);
}

static void test_f16_every_half_round_trips(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 0x10000u; h++) {
        float f = tb_f16_to_f32((uint16_t)h);
        if (isnan(f))
            continue;
        assert_int_equal(tb_f32_to_f16(f), h);
    }
}

static void test_bf16(void **state)
{
    (void)state;
    assert_true(tb_bf16_to_f32(tb_f32_to_bf16(1.0f)) == 1.0f);
    assert_true(tb_bf16_to_f32(tb_f32_to_bf16(-3.0e38f)) < -2.9e38f);
    assert_true(isnan(tb_bf16_to_f32(tb_f32_to_bf16(NAN))));
    /* bf16 keeps 8 significant bits: rounding error is at most half an ulp, 2^-8 relative */
    for (float v = 1e-3f; v < 1e3f; v *= 1.37f)
        assert_true(fabsf(tb_bf16_to_f32(tb_f32_to_bf16(v)) - v) <= v * (1.0f / 256.0f));
}

static void test_dtype_parse(void **state)
{
    (void)state;
    tb_dtype d;
    assert_int_equal(tb_dtype_parse("fp16", &d), TB_OK);
    assert_int_equal(d, TB_F16);
    assert_int_equal(tb_dtype_parse("bf16", &d), TB_OK);
    assert_int_equal(d, TB_BF16);
    assert_int_equal(tb_dtype_parse("fp8", &d), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "fp8"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_f16_round_trip_exact_values),
        cmocka_unit_test(test_f16_every_half_round_trips),
        cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_dtype_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
