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

/* The half conversions against definitions of their own, in double:
 * every half's value (ldexp), and f32 -> f16 round-to-nearest-even at and
 * one f32 ulp around every midpoint between neighbouring halves, plus a
 * sweep through all f32 bit patterns. */
static double half_value(uint32_t h)
{
    int e = (int)((h >> 10) & 0x1f), m = (int)(h & 0x3ff);
    double v = e == 0 ? ldexp(m, -24) : (e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25));
    return (h & 0x8000u) ? -v : v;
}

static uint16_t half_of(float f)
{
    uint16_t sign = signbit(f) ? 0x8000u : 0;
    double a = fabs((double)f);
    if (isnan(f))
        return (uint16_t)(sign | 0x7e00u);
    if (a >= 65520.0)
        return (uint16_t)(sign | 0x7c00u);
    if (a < ldexp(1.0, -14)) /* subnormal halves: multiples of 2^-24 (1024 * 2^-24 is the smallest normal) */
        return (uint16_t)(sign | (uint16_t)nearbyint(a * 16777216.0));
    int e;
    double m = frexp(a, &e); /* a = m * 2^e, m in [0.5, 1) */
    double q = nearbyint((m * 2.0 - 1.0) * 1024.0);
    if (q == 1024.0)
        q = 0.0, e++;
    return (uint16_t)(sign | (uint16_t)((e - 1 + 15) << 10) | (uint16_t)q);
}

static void check_half_of(float f)
{
    uint16_t got = tb_f32_to_f16(f), want = half_of(f);
    if (got != want)
        fail_msg("tb_f32_to_f16(%a) = 0x%04x, want 0x%04x", (double)f, got, want);
}

static void test_f16_conversions_against_double(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 0x10000u; h++) {
        double want = half_value(h);
        float got = tb_f16_to_f32((uint16_t)h);
        if (isnan(want) ? !isnan(got) : ((double)got != want || !signbit(got) != !signbit(want)))
            fail_msg("tb_f16_to_f32(0x%04x) = %a, want %a", h, (double)got, want);
    }
    for (uint32_t h = 0; h < 0x7c00u; h++) {
        float mid = (float)((half_value(h) + half_value(h + 1)) / 2.0); /* exact in f32 */
        for (int sgn = 0; sgn < 2; sgn++) {
            float f = sgn ? -mid : mid;
            check_half_of(f);
            check_half_of(nextafterf(f, 0.0f));
            check_half_of(nextafterf(f, sgn ? -INFINITY : INFINITY));
        }
    }
    for (uint64_t u = 0; u < 0x100000000ull; u += 4099) {
        uint32_t b = (uint32_t)u;
        float f;
        memcpy(&f, &b, sizeof f);
        check_half_of(f);
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
        cmocka_unit_test(test_f16_conversions_against_double),
        cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_dtype_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
