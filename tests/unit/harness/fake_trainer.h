/* A fake classification trainer for the harness tests: no training, just
 * the trainer protocol (epochs through the callbacks, stop on request,
 * final metrics, a checkpoint file) with results that are a known function
 * of the config, plus ways to fail, diverge or be slow. */
#ifndef TB_TEST_FAKE_TRAINER_H
#define TB_TEST_FAKE_TRAINER_H

#include "harness/train/trainer.h"

typedef struct fake_settings {
    int sleep_ms;          /* per epoch */
    double fail_lr;        /* optim.lr equal to this fails with TB_ERR_DATA "fake failure" */
    double diverge_ls;     /* tricks.label_smoothing equal to this diverges in epoch 1 */
    int calls;             /* trainer calls in this process */
    char last_teacher[1024]; /* opt->teacher_checkpoint of the last call */
} fake_settings;

extern fake_settings fake;

void fake_reset(void);

/* top1 of a run: 80 + 2 for variant D + 10 * label_smoothing + the seed's
 * entry in fake_seed_offset (seed 1..4); top5 = top1 + 15. */
double fake_top1(const tb_run_config *cfg);

int fake_trainer(const tb_run_config *cfg, const tb_train_options *opt, const tb_train_callbacks *cb,
                 tb_train_result *res);

#endif
