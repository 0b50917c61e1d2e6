#include "fake_trainer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "kernels/error.h"

fake_settings fake;

/* seed 1..4 -> a spread of results, so std and t-tests have data */
static const double seed_offset[] = {0.0, 0.0, 0.4, 0.2, -0.3};

void fake_reset(void)
{
    memset(&fake, 0, sizeof fake);
    fake.fail_lr = -1;
    fake.diverge_ls = -1;
}

double fake_top1(const tb_run_config *cfg)
{
    double off = cfg->seed < 5 ? seed_offset[cfg->seed] : 0;
    /* variant D adds more with label smoothing: a real interaction for the effects table */
    double d = cfg->model.variant == 'D' ? 2.0 + (cfg->tricks.label_smoothing > 0 ? 0.5 : 0) : 0;
    return 80.0 + d + 10.0 * cfg->tricks.label_smoothing + off;
}

static void set_metric(tb_train_result *res, const char *name, double v)
{
    snprintf(res->metrics[res->n_metrics].name, sizeof res->metrics[0].name, "%s", name);
    res->metrics[res->n_metrics++].value = v;
}

int fake_trainer(const tb_run_config *cfg, const tb_train_options *opt, const tb_train_callbacks *cb,
                 tb_train_result *res)
{
    fake.calls++;
    snprintf(fake.last_teacher, sizeof fake.last_teacher, "%s", opt->teacher_checkpoint ? opt->teacher_checkpoint : "");
    memset(res, 0, sizeof *res);
    snprintf(res->device, sizeof res->device, "fake (%d threads)", opt->threads);
    if (cfg->optim.lr == fake.fail_lr)
        return tb_fail(TB_ERR_DATA, "fake failure at lr %g", cfg->optim.lr);
    for (int e = 1; e <= cfg->optim.epochs; e++) {
        for (int step = 1; step <= 4; step++) {
            if (cb->should_stop && cb->should_stop(cb->user)) {
                res->outcome = TB_RUN_INTERRUPTED;
                return TB_OK;
            }
            if (fake.sleep_ms) {
                struct timespec ts = {0, (long)fake.sleep_ms * 250000L};
                nanosleep(&ts, NULL);
            }
            if (cb->on_progress)
                cb->on_progress(cb->user, e, step, 4, 1.0 / e, 1000.0);
        }
        tb_epoch_record rec = {.epoch = e, .lr = cfg->optim.lr, .train_loss = 1.0 / e, .train_top1 = 50.0 + e,
                               .evaluated = true, .val_loss = 0.5 / e, .val_top1 = fake_top1(cfg),
                               .val_top5 = fake_top1(cfg) + 15, .seconds = 2.0 + 0.5 * e,
                               .images_per_sec = 1000.0 + 100 * e, .loss_scale = 1};
        if (cfg->tricks.label_smoothing == fake.diverge_ls) {
            rec.train_loss = NAN;
            res->outcome = TB_RUN_DIVERGED;
            res->diverged_epoch = e;
            res->epochs_done = e - 1;
            return TB_OK;
        }
        int rc = cb->on_epoch(cb->user, &rec);
        if (rc != TB_OK)
            return rc;
        res->epochs_done = e;
    }
    if (opt->checkpoint_path) {
        FILE *f = fopen(opt->checkpoint_path, "w");
        if (!f)
            return tb_fail(TB_ERR_IO, "cannot write %s", opt->checkpoint_path);
        fputs("fake", f);
        fclose(f);
        snprintf(res->checkpoint, sizeof res->checkpoint, "%s", opt->checkpoint_path);
    }
    res->outcome = TB_RUN_FINISHED;
    set_metric(res, "top1", fake_top1(cfg));
    set_metric(res, "top5", fake_top1(cfg) + 15);
    set_metric(res, "loss", 0.5 / cfg->optim.epochs);
    set_metric(res, "params", 11e6 * cfg->model.width);
    return TB_OK;
}
