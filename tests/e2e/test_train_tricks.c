/* The classification trainer with every trick switched on, one at a time and
 * together, on the synthetic dataset: each run must finish with finite
 * metrics; a run with an absurd learning rate must end "diverged" with its
 * epoch; two identical runs must agree bitwise; a finished run's checkpoint
 * must serve as a distillation teacher and as a starting point. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness/config.h"
#include "harness/train/trainer.h"
#include "kernels/error.h"

#define MAX_EPOCHS 4

typedef struct recorder {
    tb_epoch_record recs[MAX_EPOCHS];
    int n;
} recorder;

static int on_epoch(void *user, const tb_epoch_record *rec)
{
    recorder *r = user;
    if (r->n < MAX_EPOCHS)
        r->recs[r->n++] = *rec;
    return TB_OK;
}

static void small_config(tb_run_config *cfg)
{
    tb_config_defaults(cfg);
    snprintf(cfg->data.dataset, sizeof cfg->data.dataset, "synthetic");
    cfg->data.synthetic_train = 256;
    cfg->data.synthetic_val = 64;
    cfg->data.synthetic_classes = 6;
    cfg->data.synthetic_size = 12;
    cfg->data.synthetic_channels = 1;
    cfg->data.workers = 1;
    /* the class prototypes are positional: crops and flips would blur them */
    snprintf(cfg->data.augment, sizeof cfg->data.augment, "none");
    snprintf(cfg->model.name, sizeof cfg->model.name, "resnet18");
    snprintf(cfg->model.stem, sizeof cfg->model.stem, "small");
    cfg->model.width = 0.125f;
    cfg->optim.batch = 32;
    cfg->optim.lr = 0.05;
    cfg->optim.epochs = 2;
    cfg->schedule.type = TB_SCHED_COSINE;
    cfg->seed = 3;
    snprintf(cfg->device, sizeof cfg->device, "cpu");
}

static double metric(const tb_train_result *res, const char *name)
{
    for (int i = 0; i < res->n_metrics; i++)
        if (!strcmp(res->metrics[i].name, name))
            return res->metrics[i].value;
    return NAN;
}

static void train_ok(const tb_run_config *cfg, const tb_train_options *opt, recorder *rec, tb_train_result *res)
{
    tb_train_callbacks cb = {.user = rec, .on_epoch = on_epoch};
    memset(rec, 0, sizeof *rec);
    int rc = tb_train_classification(cfg, opt, &cb, res);
    if (rc != TB_OK)
        fail_msg("training failed: %s", tb_errmsg());
    assert_int_equal(res->outcome, TB_RUN_FINISHED);
    assert_int_equal(rec->n, cfg->optim.epochs);
    for (int e = 0; e < rec->n; e++) {
        assert_true(isfinite(rec->recs[e].train_loss));
        assert_true(rec->recs[e].seconds > 0);
    }
    assert_true(rec->recs[rec->n - 1].evaluated);
    assert_true(isfinite(metric(res, "top1")));
    assert_true(isfinite(metric(res, "loss")));
    assert_true(metric(res, "params") > 0);
}

static const tb_train_options quiet = {.threads = 2, .quiet = true};

static void test_each_trick_trains(void **state)
{
    (void)state;
    for (int t = 0; t < 11; t++) {
        tb_run_config cfg;
        small_config(&cfg);
        const char *what = "";
        switch (t) {
        case 0: what = "baseline"; break;
        case 1: what = "fp16 dynamic loss scaling"; cfg.tricks.precision = TB_PREC_FP16; cfg.tricks.loss_scale_dynamic = true; break;
        case 2: what = "bf16"; cfg.tricks.precision = TB_PREC_BF16; break;
        case 3: what = "label smoothing"; cfg.tricks.label_smoothing = 0.1; break;
        case 4: what = "mixup"; cfg.tricks.mixup_alpha = 0.2; cfg.tricks.mixup_off_epochs = 1; break;
        case 5: what = "cutmix"; cfg.tricks.cutmix_alpha = 1.0; break;
        case 6: what = "EMA"; cfg.tricks.ema = 0.9; break;
        case 7: what = "gradient clipping"; cfg.optim.grad_clip = 0.5; break;
        case 8: what = "zero gamma, no bias decay"; cfg.tricks.zero_gamma = true; cfg.tricks.no_bias_decay = true; break;
        case 9: what = "warmup, linear scaling, step"; cfg.schedule.type = TB_SCHED_STEP; cfg.schedule.n_step_epochs = 1;
                cfg.schedule.step_epochs[0] = 1; cfg.schedule.warmup_epochs = 0.5; cfg.optim.linear_scaling = true;
                cfg.optim.base_batch = 64; break;
        case 10: what = "everything, fp16"; cfg.tricks.precision = TB_PREC_FP16; cfg.tricks.loss_scale_dynamic = true;
                 cfg.tricks.label_smoothing = 0.1; cfg.tricks.mixup_alpha = 0.2; cfg.tricks.cutmix_alpha = 1.0;
                 cfg.tricks.ema = 0.99; cfg.tricks.zero_gamma = true; cfg.tricks.no_bias_decay = true;
                 cfg.optim.grad_clip = 5.0; cfg.model.variant = 'D'; cfg.model.dropout = 0.2f; break;
        }
        recorder rec;
        tb_train_result res;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        train_ok(&cfg, &quiet, &rec, &res);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        print_message("trick %-32s top-1 %6.2f%%  %.1f s\n", what, metric(&res, "top1"),
                      (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    }
}

static void test_learns_synthetic_classes(void **state)
{
    (void)state;
    tb_run_config cfg;
    small_config(&cfg);
    cfg.optim.epochs = 3;
    recorder rec;
    tb_train_result res;
    train_ok(&cfg, &quiet, &rec, &res);
    print_message("synthetic top-1 %.2f%%, losses %.4f -> %.4f\n", metric(&res, "top1"), rec.recs[0].train_loss, rec.recs[2].train_loss);
    /* 6 classes: chance is 16.7% */
    assert_true(metric(&res, "top1") > 60.0);
    assert_true(rec.recs[2].train_loss < rec.recs[0].train_loss);
}

static void test_divergence_is_an_outcome(void **state)
{
    (void)state;
    tb_run_config cfg;
    small_config(&cfg);
    cfg.optim.lr = 1e12;
    cfg.schedule.type = TB_SCHED_CONSTANT;
    recorder rec = {0};
    tb_train_callbacks cb = {.user = &rec, .on_epoch = on_epoch};
    tb_train_result res;
    assert_int_equal(tb_train_classification(&cfg, &quiet, &cb, &res), TB_OK);
    assert_int_equal(res.outcome, TB_RUN_DIVERGED);
    assert_int_equal(res.diverged_epoch, 1);
}

static void test_identical_runs_agree_bitwise(void **state)
{
    (void)state;
    tb_run_config cfg;
    small_config(&cfg);
    cfg.tricks.mixup_alpha = 0.2;
    cfg.tricks.label_smoothing = 0.1;
    recorder a, b;
    tb_train_result ra, rb;
    train_ok(&cfg, &quiet, &a, &ra);
    train_ok(&cfg, &quiet, &b, &rb);
    for (int e = 0; e < a.n; e++) {
        assert_memory_equal(&a.recs[e].train_loss, &b.recs[e].train_loss, sizeof(double));
        assert_memory_equal(&a.recs[e].val_loss, &b.recs[e].val_loss, sizeof(double));
    }
    cfg.seed = 4;
    train_ok(&cfg, &quiet, &b, &rb);
    assert_true(a.recs[0].train_loss != b.recs[0].train_loss);
}

static void test_checkpoint_teaches_and_resumes(void **state)
{
    (void)state;
    char path[] = "/tmp/tb-teacher-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    tb_run_config cfg;
    small_config(&cfg);
    cfg.model.width = 0.25f;
    tb_train_options opt = quiet;
    opt.checkpoint_path = path;
    recorder rec;
    tb_train_result teacher;
    train_ok(&cfg, &opt, &rec, &teacher);
    assert_string_equal(teacher.checkpoint, path);

    /* a student distilled from it (the teacher's architecture given explicitly) */
    tb_run_config st;
    small_config(&st);
    st.tricks.distill.enabled = true;
    st.tricks.distill.temperature = 4.0;
    st.tricks.distill.hard_weight = 1.0;
    snprintf(st.tricks.distill.teacher_checkpoint, sizeof st.tricks.distill.teacher_checkpoint, "%s", path);
    st.tricks.distill.teacher_model = cfg.model;
    tb_train_result student;
    train_ok(&st, &quiet, &rec, &student);
    /* taught by the soft targets alone, a student must learn what the teacher
     * knows, which needs the teacher to see the student's own batch every
     * step (a teacher fed nothing left the student at chance, ~17%) */
    st.tricks.distill.hard_weight = 0.0;
    st.tricks.distill.temperature = 1.0; /* the teacher's sharp predictions: labels in all but name */
    recorder srec;
    tb_train_result soft_only;
    train_ok(&st, &quiet, &srec, &soft_only);
    print_message("teacher top-1 %.2f%%, student from soft targets only %.2f%%\n", metric(&teacher, "top1"),
                  metric(&soft_only, "top1"));
    assert_true(metric(&teacher, "top1") > 60.0);
    assert_true(metric(&soft_only, "top1") > 35.0); /* 46.9% when written; chance is 16.7% */

    /* the same checkpoint as the starting point of a run with the teacher's architecture */
    tb_run_config cont = cfg;
    snprintf(cont.model.checkpoint, sizeof cont.model.checkpoint, "%s", path);
    cont.optim.lr = 1e-6;
    cont.optim.epochs = 1;
    tb_train_result res;
    train_ok(&cont, &quiet, &rec, &res);
    /* started from trained weights, the first epoch's loss is far below a fresh start's */
    tb_run_config fresh = cont;
    fresh.model.checkpoint[0] = '\0';
    recorder frec;
    tb_train_result fres;
    train_ok(&fresh, &quiet, &frec, &fres);
    print_message("first-epoch loss from the checkpoint %.4f, from scratch %.4f\n", rec.recs[0].train_loss,
                  frec.recs[0].train_loss);
    assert_true(rec.recs[0].train_loss < 0.8 * frec.recs[0].train_loss);

    /* a student of another architecture cannot load it: the error names the file */
    tb_run_config bad = st;
    bad.tricks.distill.teacher_model.width = 0.5f;
    tb_train_callbacks cb = {0};
    assert_int_not_equal(tb_train_classification(&bad, &quiet, &cb, &res), TB_OK);
    assert_non_null(strstr(tb_errmsg(), path));
    unlink(path);
}

static void test_bad_configs_are_errors(void **state)
{
    (void)state;
    tb_run_config cfg;
    tb_train_result res;
    tb_train_callbacks cb = {0};
    small_config(&cfg);
    cfg.optim.batch = 1000; /* larger than the 256 training images */
    assert_int_equal(tb_train_classification(&cfg, &quiet, &cb, &res), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "optim.batch"));
    small_config(&cfg);
    cfg.tricks.distill.enabled = true;
    assert_int_equal(tb_train_classification(&cfg, &quiet, &cb, &res), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "tricks.distill"));
    small_config(&cfg);
    cfg.task = TB_TASK_DETECTION;
    assert_int_equal(tb_train_classification(&cfg, &quiet, &cb, &res), TB_ERR_NOT_IMPLEMENTED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_trick_trains),
        cmocka_unit_test(test_learns_synthetic_classes),
        cmocka_unit_test(test_divergence_is_an_outcome),
        cmocka_unit_test(test_identical_runs_agree_bitwise),
        cmocka_unit_test(test_checkpoint_teaches_and_resumes),
        cmocka_unit_test(test_bad_configs_are_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
