/* Learning-rate schedules: every type against its formula at chosen
 * iterations, warmup, linear scaling, and the validation errors. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "kernels/error.h"
#include "tricks/schedule.h"

static tb_optim_config optim(double lr, int epochs)
{
    tb_optim_config o = {0};
    o.lr = lr;
    o.batch = 256;
    o.base_batch = 256;
    o.epochs = epochs;
    return o;
}

static tb_schedule_config sched(tb_schedule_type type)
{
    tb_schedule_config c = {0};
    c.type = type;
    c.step_gamma = 0.1;
    c.poly_power = 0.9;
    return c;
}

static void assert_lr(const tb_schedule *s, int64_t t, double expect)
{
    double lr = tb_schedule_lr(s, t);
    if (fabs(lr - expect) > 1e-12 * fmax(1.0, fabs(expect)))
        fail_msg("iteration %lld: lr %.15g, expected %.15g", (long long)t, lr, expect);
}

static void test_linear_scaling(void **state)
{
    (void)state;
    tb_optim_config o = optim(0.1, 3);
    o.batch = 1024;
    tb_schedule_config c = sched(TB_SCHED_CONSTANT);
    tb_schedule s;
    assert_int_equal(tb_schedule_init(&s, &o, &c, 10), TB_OK);
    assert_lr(&s, 0, 0.1); /* linear_scaling off: batch does not matter */
    o.linear_scaling = true;
    assert_int_equal(tb_schedule_init(&s, &o, &c, 10), TB_OK);
    assert_lr(&s, 0, 0.4); /* 1024 / 256 = 4x */
    assert_lr(&s, 29, 0.4);
    assert_lr(&s, 1000, 0.4);
    o.batch = 64;
    assert_int_equal(tb_schedule_init(&s, &o, &c, 10), TB_OK);
    assert_lr(&s, 5, 0.025);
}

static void test_warmup(void **state)
{
    (void)state;
    tb_optim_config o = optim(0.1, 10);
    o.batch = 512;
    o.linear_scaling = true; /* target 0.2 */
    tb_schedule_config c = sched(TB_SCHED_COSINE);
    c.warmup_epochs = 5;
    tb_schedule s;
    assert_int_equal(tb_schedule_init(&s, &o, &c, 100), TB_OK);
    assert_int_equal(s.warmup_iters, 500);
    assert_lr(&s, 0, 0.2 / 500);       /* (t + 1) / W: the first step already moves */
    assert_lr(&s, 249, 0.2 * 250 / 500);
    assert_lr(&s, 499, 0.2);           /* last warmup iteration at the target */
    assert_lr(&s, 500, 0.2);           /* cosine starts at t' = 0 */
    assert_lr(&s, -3, 0.2 / 500);
    /* fractional warmup epochs round to iterations */
    c.warmup_epochs = 0.5;
    assert_int_equal(tb_schedule_init(&s, &o, &c, 100), TB_OK);
    assert_int_equal(s.warmup_iters, 50);
    assert_lr(&s, 9, 0.2 * 10 / 50);
}

static void test_step(void **state)
{
    (void)state;
    tb_optim_config o = optim(0.1, 90);
    tb_schedule_config c = sched(TB_SCHED_STEP);
    c.n_step_epochs = 2;
    c.step_epochs[0] = 30;
    c.step_epochs[1] = 60;
    tb_schedule s;
    assert_int_equal(tb_schedule_init(&s, &o, &c, 10), TB_OK);
    assert_lr(&s, 0, 0.1);
    assert_lr(&s, 299, 0.1);   /* last iteration of epoch 29 */
    assert_lr(&s, 300, 0.01);  /* first iteration of epoch 30 */
    assert_lr(&s, 599, 0.01);
    assert_lr(&s, 600, 0.001);
    assert_lr(&s, 899, 0.001);
    assert_lr(&s, 5000, 0.001);
    /* with warmup the step epochs still count from the start of training */
    c.warmup_epochs = 5;
    assert_int_equal(tb_schedule_init(&s, &o, &c, 10), TB_OK);
    assert_lr(&s, 24, 0.1 * 25 / 50);
    assert_lr(&s, 49, 0.1);
    assert_lr(&s, 50, 0.1);
    assert_lr(&s, 299, 0.1);
    assert_lr(&s, 300, 0.01);
    /* gamma 0.5 */
    c.step_gamma = 0.5;
    assert_int_equal(tb_schedule_init(&s, &o, &c, 10), TB_OK);
    assert_lr(&s, 650, 0.025);
}

static void test_cosine(void **state)
{
    (void)state;
    tb_optim_config o = optim(0.4, 10);
    tb_schedule_config c = sched(TB_SCHED_COSINE);
    c.warmup_epochs = 2;
    tb_schedule s;
    assert_int_equal(tb_schedule_init(&s, &o, &c, 100), TB_OK);
    /* W = 200, T' = 800 */
    assert_lr(&s, 200, 0.4);
    assert_lr(&s, 600, 0.2); /* t' = T'/2: half */
    assert_lr(&s, 400, 0.5 * 0.4 * (1 + cos(M_PI / 4)));
    assert_lr(&s, 999, 0.5 * 0.4 * (1 + cos(M_PI * 799 / 800)));
    assert_lr(&s, 1000, 0.0);
    assert_lr(&s, 2000, 0.0);
    /* to a final lr, without warmup */
    c.warmup_epochs = 0;
    c.final_lr = 0.04;
    assert_int_equal(tb_schedule_init(&s, &o, &c, 100), TB_OK);
    assert_lr(&s, 0, 0.4);
    assert_lr(&s, 500, 0.04 + 0.5 * 0.36);
    assert_lr(&s, 250, 0.04 + 0.5 * 0.36 * (1 + cos(M_PI * 0.25)));
}

static void test_poly_linear_constant(void **state)
{
    (void)state;
    tb_optim_config o = optim(0.1, 4);
    tb_schedule_config c = sched(TB_SCHED_POLY);
    c.poly_power = 2;
    tb_schedule s;
    assert_int_equal(tb_schedule_init(&s, &o, &c, 25), TB_OK);
    assert_lr(&s, 0, 0.1);
    assert_lr(&s, 50, 0.1 * 0.25);
    assert_lr(&s, 10, 0.1 * 0.9 * 0.9);
    assert_lr(&s, 100, 0.0);
    c.poly_power = 0.9;
    c.warmup_epochs = 1; /* W = 25, T' = 75 */
    assert_int_equal(tb_schedule_init(&s, &o, &c, 25), TB_OK);
    assert_lr(&s, 55, 0.1 * pow(1 - 30.0 / 75, 0.9));

    c = sched(TB_SCHED_LINEAR);
    c.final_lr = 0.01;
    assert_int_equal(tb_schedule_init(&s, &o, &c, 25), TB_OK);
    assert_lr(&s, 0, 0.1);
    assert_lr(&s, 25, 0.01 + 0.09 * 0.75);
    assert_lr(&s, 99, 0.01 + 0.09 * (1 - 99.0 / 100));
    assert_lr(&s, 100, 0.01);

    c = sched(TB_SCHED_CONSTANT);
    c.warmup_epochs = 2;
    assert_int_equal(tb_schedule_init(&s, &o, &c, 25), TB_OK);
    assert_lr(&s, 9, 0.1 * 10 / 50);
    assert_lr(&s, 50, 0.1);
    assert_lr(&s, 99, 0.1);
}

static void expect_invalid(const tb_optim_config *o, const tb_schedule_config *c, int64_t ipe, const char *key)
{
    tb_schedule s;
    tb_err_clear();
    assert_int_equal(tb_schedule_init(&s, o, c, ipe), TB_ERR_INVALID);
    if (!strstr(tb_errmsg(), key))
        fail_msg("message \"%s\" does not name %s", tb_errmsg(), key);
}

static void test_validation(void **state)
{
    (void)state;
    tb_optim_config o = optim(0.1, 5);
    tb_schedule_config c = sched(TB_SCHED_COSINE);
    c.warmup_epochs = 5;
    expect_invalid(&o, &c, 10, "schedule.warmup_epochs");
    c.warmup_epochs = 7;
    expect_invalid(&o, &c, 10, "schedule.warmup_epochs");
    c.warmup_epochs = -1;
    expect_invalid(&o, &c, 10, "schedule.warmup_epochs");
    c.warmup_epochs = 0;
    expect_invalid(&o, &c, 0, "iterations per epoch");
    c.final_lr = 0.5;
    expect_invalid(&o, &c, 10, "schedule.final_lr");
    c.final_lr = 0;

    tb_optim_config bad = o;
    bad.lr = -0.1;
    expect_invalid(&bad, &c, 10, "optim.lr");
    bad = o;
    bad.epochs = 0;
    expect_invalid(&bad, &c, 10, "optim.epochs");
    bad = o;
    bad.linear_scaling = true;
    bad.base_batch = 0;
    expect_invalid(&bad, &c, 10, "optim.base_batch");

    c = sched(TB_SCHED_STEP);
    c.n_step_epochs = 2;
    c.step_epochs[0] = 3;
    c.step_epochs[1] = 2;
    expect_invalid(&o, &c, 10, "schedule.step_epochs[1]");
    c.step_epochs[1] = 4;
    c.warmup_epochs = 3.5;
    expect_invalid(&o, &c, 10, "schedule.step_epochs[0]");
    c.warmup_epochs = 0;
    c.step_gamma = 0;
    expect_invalid(&o, &c, 10, "schedule.step_gamma");
    c = sched(TB_SCHED_POLY);
    c.poly_power = 0;
    expect_invalid(&o, &c, 10, "schedule.poly_power");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_scaling),
        cmocka_unit_test(test_warmup),
        cmocka_unit_test(test_step),
        cmocka_unit_test(test_cosine),
        cmocka_unit_test(test_poly_linear_constant),
        cmocka_unit_test(test_validation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
