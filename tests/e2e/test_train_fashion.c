/* e2e: a small ResNet with the small-image stem, trained on the CPU on real
 * Fashion-MNIST (the Debian package) for one short epoch (20,000 images), must reach at least
 * 85% top-1 on the 10,000 test images. Asserts accuracy, never time.
 * Skipped (77) when dataset-fashion-mnist is not installed. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness/config.h"
#include "harness/data/dataset.h"
#include "harness/train/trainer.h"
#include "kernels/error.h"

static int epochs_seen;

static int on_epoch(void *user, const tb_epoch_record *rec)
{
    (void)user;
    epochs_seen++;
    fprintf(stderr, "epoch %d: lr %.4f train loss %.4f train top1 %.2f%% val top1 %.2f%% top5 %.2f%% "
                    "%.1f s %.0f images/s\n",
            rec->epoch, rec->lr, rec->train_loss, rec->train_top1, rec->val_top1, rec->val_top5, rec->seconds,
            rec->images_per_sec);
    return TB_OK;
}

int main(void)
{
    if (access(TB_FASHION_MNIST_ROOT "/train-images-idx3-ubyte.gz", R_OK) != 0) {
        fprintf(stderr, "dataset-fashion-mnist is not installed: skipped\n");
        return 77;
    }
    tb_run_config cfg;
    tb_config_defaults(&cfg);
    snprintf(cfg.data.dataset, sizeof cfg.data.dataset, "fashion-mnist");
    snprintf(cfg.data.augment, sizeof cfg.data.augment, "none");
    cfg.data.train_limit = 20000; /* one short epoch: a third of the training split */
    snprintf(cfg.model.name, sizeof cfg.model.name, "resnet18");
    snprintf(cfg.model.stem, sizeof cfg.model.stem, "small");
    cfg.model.variant = 'B';
    cfg.model.width = 0.25f;
    cfg.optim.batch = 64;
    cfg.optim.lr = 0.1;
    cfg.optim.epochs = 1;
    cfg.optim.weight_decay = 5e-5;
    cfg.schedule.type = TB_SCHED_COSINE;
    cfg.schedule.warmup_epochs = 0.1;
    cfg.seed = 1;
    snprintf(cfg.device, sizeof cfg.device, "cpu");

    tb_train_options opt = {.threads = 2, .quiet = false};
    tb_train_callbacks cb = {.on_epoch = on_epoch};
    tb_train_result res;
    int rc = tb_train_classification(&cfg, &opt, &cb, &res);
    if (rc != TB_OK) {
        fprintf(stderr, "training failed: %s\n", tb_errmsg());
        return 1;
    }
    double top1 = NAN;
    for (int i = 0; i < res.n_metrics; i++)
        if (!strcmp(res.metrics[i].name, "top1"))
            top1 = res.metrics[i].value;
    fprintf(stderr, "final test top-1 %.2f%% after %d epoch(s)\n", top1, epochs_seen);
    if (res.outcome != TB_RUN_FINISHED || epochs_seen != 1 || !(top1 >= 85.0)) {
        fprintf(stderr, "FAIL: expected a finished run with test top-1 >= 85%%\n");
        return 1;
    }
    return 0;
}
