/* The per-task trainers' interface to the harness (runner).
 *
 * The runner resolves a run config, opens the store, and calls a trainer
 * function; the trainer reports each epoch through a callback (the runner
 * writes one transaction per epoch) and returns final metrics. The trainer
 * never touches the store, so tests can drive the runner with a fake trainer.
 */
#ifndef TB_TRAINER_H
#define TB_TRAINER_H

#include <stdbool.h>
#include <stdint.h>

#include "harness/config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tb_epoch_record {
    int epoch;                /* 1-based */
    double lr;                /* learning rate at the end of the epoch */
    double train_loss;        /* mean training loss over the epoch */
    double train_top1;        /* training accuracy in % (NaN with mixup/cutmix) */
    bool evaluated;           /* whether validation ran after this epoch */
    double val_loss;
    double val_top1;          /* % */
    double val_top5;          /* % (NaN when classes <= 5) */
    double seconds;           /* wall time of the training pass only, after a device sync */
    double images_per_sec;    /* training images / seconds */
    int64_t skipped_steps;    /* steps skipped by dynamic loss scaling during the epoch */
    double loss_scale;        /* current loss scale (1 without fp16) */
} tb_epoch_record;

typedef enum tb_run_outcome {
    TB_RUN_FINISHED = 0,
    TB_RUN_DIVERGED,          /* non-finite loss: status "diverged" with the epoch */
    TB_RUN_FAILED,            /* an error (message in tb_errmsg) */
    TB_RUN_INTERRUPTED        /* SIGINT/SIGTERM */
} tb_run_outcome;

typedef struct tb_metric {
    char name[48];            /* top1, top5, loss, params, macs, epoch_seconds_median, ... */
    double value;
} tb_metric;

#define TB_MAX_METRICS 192 /* ADE20K's 150 per-class IoUs and the rest */

typedef struct tb_train_result {
    tb_run_outcome outcome;
    int diverged_epoch;       /* for TB_RUN_DIVERGED */
    int epochs_done;
    tb_metric metrics[TB_MAX_METRICS];
    int n_metrics;
    char device[128];         /* the backend's name, e.g. "cpu (2 threads)" */
    char checkpoint[1024];    /* safetensors written at the end, "" if none */
    int resumed_epoch;        /* the run went on after this epoch from its state file; 0 = from the start */
} tb_train_result;

typedef struct tb_train_options {
    const char *device;       /* overrides cfg->device when non-NULL */
    int threads;              /* CPU threads; 0 = all cores */
    const char *checkpoint_path; /* where to write the final checkpoint; NULL = none */
    const char *teacher_checkpoint; /* resolved teacher for distillation (from a run label); NULL = cfg's */
    const tb_model_config *teacher_model; /* that teacher run's model section; NULL = cfg's teacher_model */
    const char *backbone_checkpoint; /* resolved model.backbone_from (a run label); NULL = cfg's */
    const tb_model_config *backbone_model; /* that backbone run's model section, to check against cfg's */
    bool quiet;               /* no progress output */
    /* The training-state file (harness/train/resume.h): written after every
     * finished epoch and resumed from when it exists; NULL = none. */
    const char *state_path;
} tb_train_options;

typedef struct tb_train_callbacks {
    void *user;
    /* Called after each epoch; a non-zero return stops training with that status. */
    int (*on_epoch)(void *user, const tb_epoch_record *rec);
    /* Polled between steps; true stops the run as interrupted (SIGINT/SIGTERM). */
    bool (*should_stop)(void *user);
    /* Progress within an epoch (for a live line); may be NULL. */
    void (*on_progress)(void *user, int epoch, int64_t step, int64_t steps, double loss, double images_per_sec);
} tb_train_callbacks;

/* A trainer: returns TB_OK when it produced a result (finished, diverged or
 * interrupted, see res->outcome) and an error status when the run could not
 * be carried out (bad data, unsupported config, ...). */
typedef int (*tb_trainer_fn)(const tb_run_config *cfg, const tb_train_options *opt,
                             const tb_train_callbacks *cb, tb_train_result *res);

/* The classification trainer (harness/train/classification.c). */
int tb_train_classification(const tb_run_config *cfg, const tb_train_options *opt,
                            const tb_train_callbacks *cb, tb_train_result *res);

/* Scores the weights a finished classification run saved (safetensors at
 * `weights`) on the run's validation split (the test split when
 * data.holdout is 0), as the trainer's last evaluation did; with flip, each
 * image and its mirror image, their softmax averaged (test-time
 * augmentation). An EMA run's checkpoint holds its averaged weights, the
 * ones it was scored with. */
typedef struct tb_eval_result {
    double loss, top1, top5;
    int64_t images;
} tb_eval_result;
int tb_eval_classification(const tb_run_config *cfg, const tb_train_options *opt, const char *weights, bool flip,
                           tb_eval_result *out);

/* The detection trainer (harness/train/detection.c): Faster R-CNN. */
int tb_train_detection(const tb_run_config *cfg, const tb_train_options *opt, const tb_train_callbacks *cb,
                       tb_train_result *res);

/* The segmentation trainer (harness/train/segmentation.c): FCN. */
int tb_train_segmentation(const tb_run_config *cfg, const tb_train_options *opt, const tb_train_callbacks *cb,
                          tb_train_result *res);

/* The trainer of a task; NULL for a task without one (the message in tb_errmsg). */
tb_trainer_fn tb_trainer_for_task(tb_task task);

/* Adds or replaces a named metric in a result. */
void tb_result_set_metric(tb_train_result *res, const char *name, double value);

#ifdef __cplusplus
}
#endif
#endif
