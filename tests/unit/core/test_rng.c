#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kernels/rng.h"

static void test_same_seed_same_stream(void **state)
{
    (void)state;
    tb_rng a, b, c;
    tb_rng_seed(&a, 42, 0);
    tb_rng_seed(&b, 42, 0);
    tb_rng_seed(&c, 42, 1);
    int differs = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = tb_rng_next(&a);
        assert_true(x == tb_rng_next(&b));
        differs |= x != tb_rng_next(&c);
    }
    assert_true(differs);
}

static void test_uniform_moments(void **state)
{
    (void)state;
    tb_rng r;
    tb_rng_seed(&r, 7, 0);
    double sum = 0, sumsq = 0;
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        double u = tb_rng_uniform(&r);
        assert_true(u >= 0.0 && u < 1.0);
        sum += u;
        sumsq += u * u;
    }
    double mean = sum / n, var = sumsq / n - mean * mean;
    assert_true(fabs(mean - 0.5) < 0.005);
    assert_true(fabs(var - 1.0 / 12) < 0.002);
}

static void test_beta_mean(void **state)
{
    (void)state;
    /* Beta(a, a) has mean 1/2 and variance 1 / (4 (2a + 1)); a = 0.2 as mixup */
    tb_rng r;
    tb_rng_seed(&r, 3, 0);
    const int n = 100000;
    const double a = 0.2;
    double sum = 0, sumsq = 0;
    for (int i = 0; i < n; i++) {
        double x = tb_rng_beta(&r, a, a);
        assert_true(x >= 0.0 && x <= 1.0);
        sum += x;
        sumsq += x * x;
    }
    double mean = sum / n, var = sumsq / n - mean * mean;
    assert_true(fabs(mean - 0.5) < 0.01);
    assert_true(fabs(var - 1.0 / (4 * (2 * a + 1))) < 0.01);
}

static void test_below_and_shuffle(void **state)
{
    (void)state;
    tb_rng r;
    tb_rng_seed(&r, 11, 0);
    int counts[5] = {0};
    for (int i = 0; i < 50000; i++)
        counts[tb_rng_below(&r, 5)]++;
    for (int i = 0; i < 5; i++)
        assert_true(abs(counts[i] - 10000) < 500);
    int32_t v[100];
    for (int i = 0; i < 100; i++)
        v[i] = i;
    tb_rng_shuffle_i32(&r, v, 100);
    int seen[100] = {0}, moved = 0;
    for (int i = 0; i < 100; i++) {
        seen[v[i]]++;
        moved += v[i] != i;
    }
    for (int i = 0; i < 100; i++)
        assert_int_equal(seen[i], 1);
    assert_true(moved > 50);
}

static void test_hash_uniform_is_pure(void **state)
{
    (void)state;
    assert_true(tb_hash_uniform(5, 17) == tb_hash_uniform(5, 17));
    assert_true(tb_hash_uniform(5, 17) != tb_hash_uniform(6, 17));
    double sum = 0;
    for (int i = 0; i < 100000; i++) {
        float u = tb_hash_uniform(99, (uint64_t)i);
        assert_true(u >= 0.0f && u < 1.0f);
        sum += u;
    }
    assert_true(fabs(sum / 100000 - 0.5) < 0.005);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_seed_same_stream),
        cmocka_unit_test(test_uniform_moments),
        cmocka_unit_test(test_beta_mean),
        cmocka_unit_test(test_below_and_shuffle),
        cmocka_unit_test(test_hash_uniform_is_pure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
