/* Mixup / CutMix draws: lambda ~ Beta(a, a), determinism, off epochs, the
 * 50/50 switch, and timm's CutMix box with the area-corrected lambda. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kernels/error.h"
#include "tricks/mix.h"

static void test_active(void **state)
{
    (void)state;
    for (int e = 0; e < 8; e++)
        assert_true(tb_mix_active(e, 10, 2));
    assert_false(tb_mix_active(8, 10, 2));
    assert_false(tb_mix_active(9, 10, 2));
    assert_true(tb_mix_active(9, 10, 0));
    assert_false(tb_mix_active(0, 3, 5)); /* more off epochs than epochs: never on */

    tb_mix_config c = {.mixup_alpha = 0.2, .off_epochs = 2, .epochs = 10};
    tb_mix m = tb_mix_draw(&c, 1, 7, 3, 28, 28);
    assert_int_equal(m.kind, TB_MIX_MIXUP);
    m = tb_mix_draw(&c, 1, 8, 3, 28, 28);
    assert_int_equal(m.kind, TB_MIX_NONE);
    assert_true(m.lam == 1.0f);
    c.mixup_alpha = 0;
    m = tb_mix_draw(&c, 1, 0, 3, 28, 28);
    assert_int_equal(m.kind, TB_MIX_NONE);
}

static void check_beta_moments(double alpha)
{
    tb_mix_config c = {.mixup_alpha = alpha, .epochs = 100};
    const int n = 40000;
    double sum = 0, sumsq = 0;
    for (int i = 0; i < n; i++) {
        tb_mix m = tb_mix_draw(&c, 12345, i / 400, i % 400, 32, 32);
        assert_int_equal(m.kind, TB_MIX_MIXUP);
        assert_true(m.lam >= 0.0f && m.lam <= 1.0f);
        sum += m.lam;
        sumsq += (double)m.lam * m.lam;
    }
    double mean = sum / n, var = sumsq / n - mean * mean;
    double expect_var = 1.0 / (4.0 * (2.0 * alpha + 1.0));
    if (fabs(mean - 0.5) > 0.01 || fabs(var - expect_var) > 0.006)
        fail_msg("Beta(%g, %g): mean %g (0.5), variance %g (%g)", alpha, alpha, mean, var, expect_var);
}

static void test_lambda_distribution(void **state)
{
    (void)state;
    check_beta_moments(0.2); /* the paper's alpha */
    check_beta_moments(1.0); /* uniform */
}

static void test_determinism(void **state)
{
    (void)state;
    tb_mix_config c = {.mixup_alpha = 0.2, .cutmix_alpha = 1.0, .epochs = 5};
    int differ_step = 0, differ_seed = 0, differ_epoch = 0;
    for (int s = 0; s < 50; s++) {
        tb_mix a = tb_mix_draw(&c, 7, 2, s, 32, 32), b = tb_mix_draw(&c, 7, 2, s, 32, 32);
        assert_memory_equal(&a, &b, sizeof a);
        tb_mix next = tb_mix_draw(&c, 7, 2, s + 1, 32, 32);
        tb_mix other_seed = tb_mix_draw(&c, 8, 2, s, 32, 32);
        tb_mix other_epoch = tb_mix_draw(&c, 7, 3, s, 32, 32);
        differ_step += a.lam != next.lam;
        differ_seed += a.lam != other_seed.lam;
        differ_epoch += a.lam != other_epoch.lam;
    }
    assert_true(differ_step > 40 && differ_seed > 40 && differ_epoch > 40);
}

static void test_switch(void **state)
{
    (void)state;
    tb_mix_config c = {.mixup_alpha = 0.2, .cutmix_alpha = 1.0, .epochs = 1};
    int cut = 0, mix = 0;
    const int n = 4000;
    for (int i = 0; i < n; i++) {
        tb_mix m = tb_mix_draw(&c, 99, 0, i, 32, 32);
        cut += m.kind == TB_MIX_CUTMIX;
        mix += m.kind == TB_MIX_MIXUP;
    }
    assert_int_equal(cut + mix, n);
    assert_true(fabs((double)cut / n - 0.5) < 0.04);
    c.mixup_alpha = 0; /* CutMix only */
    for (int i = 0; i < 100; i++)
        assert_int_equal(tb_mix_draw(&c, 99, 0, i, 32, 32).kind, TB_MIX_CUTMIX);
}

static void test_cutmix_box(void **state)
{
    (void)state;
    /* lam 0.75 on 32x32: ratio 0.5, a 16x16 box */
    tb_mix m = tb_mix_cutmix_box(0.75, 16, 16, 32, 32);
    assert_int_equal(m.kind, TB_MIX_CUTMIX);
    assert_int_equal(m.y0, 8);
    assert_int_equal(m.y1, 24);
    assert_int_equal(m.x0, 8);
    assert_int_equal(m.x1, 24);
    assert_float_equal(m.lam, 0.75f, 1e-7);
    /* clipped at the corner: [0,10) x [22,32) -> lam from the real area */
    m = tb_mix_cutmix_box(0.75, 2, 30, 32, 32);
    assert_int_equal(m.y0, 0);
    assert_int_equal(m.y1, 10);
    assert_int_equal(m.x0, 22);
    assert_int_equal(m.x1, 32);
    assert_float_equal(m.lam, 1.0f - 100.0f / 1024.0f, 1e-7);
    /* odd cut sizes: int(28 * sqrt(0.5)) = 19, half 9 -> 18 pixels wide */
    m = tb_mix_cutmix_box(0.5, 14, 14, 28, 28);
    assert_int_equal(m.y1 - m.y0, 18);
    assert_int_equal(m.x1 - m.x0, 18);

    /* drawn boxes: inside the image, lam = 1 - area / (h w) */
    tb_mix_config c = {.cutmix_alpha = 1.0, .epochs = 1};
    for (int i = 0; i < 2000; i++) {
        const int h = 24, w = 40;
        m = tb_mix_draw(&c, 5, 0, i, h, w);
        assert_int_equal(m.kind, TB_MIX_CUTMIX);
        assert_true(0 <= m.y0 && m.y0 <= m.y1 && m.y1 <= h);
        assert_true(0 <= m.x0 && m.x0 <= m.x1 && m.x1 <= w);
        double area = (double)(m.y1 - m.y0) * (m.x1 - m.x0);
        assert_float_equal(m.lam, 1.0 - area / (h * w), 1e-6);
    }
}

static void test_validate(void **state)
{
    (void)state;
    tb_mix_config c = {.mixup_alpha = 0.2, .cutmix_alpha = 1.0, .off_epochs = 2, .epochs = 10};
    assert_int_equal(tb_mix_validate(&c), TB_OK);
    c.mixup_alpha = -1;
    assert_int_equal(tb_mix_validate(&c), TB_ERR_INVALID);
    c.mixup_alpha = 0.2;
    c.off_epochs = -1;
    assert_int_equal(tb_mix_validate(&c), TB_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_active),
        cmocka_unit_test(test_lambda_distribution),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_switch),
        cmocka_unit_test(test_cutmix_box),
        cmocka_unit_test(test_validate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
