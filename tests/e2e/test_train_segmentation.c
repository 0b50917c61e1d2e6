/* e2e: FCN on a dilated ResNet-18 (small stem, width 0.25, trained from
 * scratch) on generated fashion-scenes masks (128 px canvases holding 1-5
 * Fashion-MNIST items; 11 classes: background and the 10 items), 3 epochs
 * of 1,000 scenes at 64 px crops on the CPU, must reach a clearly
 * non-trivial mIoU (over all 11 classes).
 *
 * The threshold: predicting background everywhere scores the background's
 * IoU (~0.9) over 11 classes, ~8% mIoU; finding every item but giving them
 * all one class adds about a tenth more, ~9%. TB_SEG_E2E_MIOU (20%) is over
 * twice both, so the network must tell the items apart; this run reached
 * 28.3% when the test was written (the CPU backend is deterministic for its
 * 2 threads), and a broken loss, ignore rule, resize or dilation fails it.
 * Asserts mIoU, never time. Skipped (77) without dataset-fashion-mnist. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/config.h"
#include "harness/data/dataset.h"
#include "harness/train/trainer.h"
#include "kernels/error.h"

#define TB_SEG_E2E_MIOU 20.0

static int on_epoch(void *user, const tb_epoch_record *rec)
{
    (void)user;
    fprintf(stderr, "epoch %d: lr %.4f train loss %.4f %.1f s %.1f images/s\n", rec->epoch, rec->lr,
            rec->train_loss, rec->seconds, rec->images_per_sec);
    return TB_OK;
}

static double metric(const tb_train_result *res, const char *name)
{
    for (int i = 0; i < res->n_metrics; i++)
        if (!strcmp(res->metrics[i].name, name))
            return res->metrics[i].value;
    return NAN;
}

int main(void)
{
    if (access(TB_FASHION_MNIST_ROOT "/train-images-idx3-ubyte.gz", R_OK) != 0) {
        fprintf(stderr, "dataset-fashion-mnist is not installed: skipped\n");
        return 77;
    }
    const char *tmp = getenv("TMPDIR");
    char root[512];
    snprintf(root, sizeof root, "%s/tb_e2e_seg_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    tb_run_config cfg;
    tb_config_defaults(&cfg);
    cfg.task = TB_TASK_SEGMENTATION;
    snprintf(cfg.data.dataset, sizeof cfg.data.dataset, "fashion-scenes");
    snprintf(cfg.data.root, sizeof cfg.data.root, "%s", root);
    cfg.data.scenes_train = 1000;
    cfg.data.scenes_val = 200;
    cfg.data.scene_size = 128;
    cfg.segmentation.base_size = 64;
    cfg.segmentation.crop_size = 64;
    snprintf(cfg.model.name, sizeof cfg.model.name, "resnet18");
    snprintf(cfg.model.stem, sizeof cfg.model.stem, "small");
    cfg.model.width = 0.25f;
    cfg.optim.batch = 8;
    cfg.optim.lr = 0.1;
    cfg.optim.epochs = 3;
    cfg.optim.weight_decay = 1e-4;
    cfg.optim.eval_every = 3;
    cfg.schedule.type = TB_SCHED_POLY;
    cfg.seed = 1;
    snprintf(cfg.device, sizeof cfg.device, "cpu");
    int rc = tb_config_validate(&cfg, "test_train_segmentation");
    if (rc != TB_OK) {
        fprintf(stderr, "config: %s\n", tb_errmsg());
        return 1;
    }
    tb_train_options opt = {.threads = 2, .quiet = false};
    tb_train_callbacks cb = {.on_epoch = on_epoch};
    tb_train_result res;
    rc = tb_train_segmentation(&cfg, &opt, &cb, &res);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", root);
    if (rc != TB_OK) {
        fprintf(stderr, "training failed: %s\n", tb_errmsg());
        return 1;
    }
    double miou = metric(&res, "miou"), pixacc = metric(&res, "pixacc");
    fprintf(stderr, "final mIoU (all classes) %.2f%%, pixel accuracy %.2f%%\n", miou, pixacc);
    if (res.outcome != TB_RUN_FINISHED || !(miou >= TB_SEG_E2E_MIOU)) {
        fprintf(stderr, "FAIL: expected a finished run with mIoU >= %.0f%%\n", TB_SEG_E2E_MIOU);
        return 1;
    }
    return 0;
}
