/* What every trainer does the same way: open the backend the run asks for,
 * and hand the loaders the backend's host allocator (pinned memory on CUDA). */
#ifndef TB_TRAINER_COMMON_H
#define TB_TRAINER_COMMON_H

#include <stdbool.h>
#include <stddef.h>

#include "harness/train/trainer.h"
#include "kernels/backend.h"
#include "models/graph.h"
#include "tricks/schedule.h"

/* Creates the backend of opt->device (else cfg->device, else auto), says on
 * stderr what was picked unless opt->quiet, and names it in res->device. */
int tb_trainer_open_backend(const tb_run_config *cfg, const tb_train_options *opt, tb_train_result *res,
                            tb_backend **out);

/* The VOC-layout root of a detection or segmentation run: data.root, or for
 * fashion-scenes with data.root "" data/fashion-scenes-SIZE-TRAIN-TEST under
 * the working directory; fashion-scenes is generated there on first use. */
int tb_trainer_scenes_root(const tb_run_config *cfg, char *root, size_t size);
/* The image sets a dataset reads when data.train_sets / val_sets are "". */
const char *tb_trainer_default_sets(const char *dataset, bool train);

/* Whether the run starts from stored weights (a backbone or a checkpoint). */
bool tb_trainer_pretrained(const tb_run_config *cfg, const tb_train_options *opt);
/* Loads the backbone (opt->backbone_checkpoint, resolved from a run label,
 * else model.backbone_from as a .safetensors file) into the graph tensors
 * whose names start with `prefixes`, after checking that a backbone run's
 * model matches this run's; then model.checkpoint, strictly, when given. */
int tb_trainer_load_weights(tb_graph *g, const tb_run_config *cfg, const tb_train_options *opt,
                            const char *const *prefixes, int n_prefixes);

/* Saves a finished run's weights to opt->checkpoint_path (when given) and
 * names the file in res->checkpoint. */
int tb_trainer_save_checkpoint(tb_graph *g, const tb_train_options *opt, tb_train_result *res);
/* Detection and segmentation train in fp32 with the lr schedules, zero_gamma
 * and no_bias_decay: any classification-only trick or data subset is an
 * error naming its key (never ignored). */
int tb_trainer_check_transfer_config(const tb_run_config *cfg);

/* One SGD step over every parameter group of the graph (f32 masters, the
 * low-precision copies refreshed); no overflow skip. */
int tb_trainer_sgd(tb_graph *g, const tb_sgd_params *p);
/* Lays n tensors (shapes set, data NULL) out in one device allocation, each
 * on a 256-byte boundary; *mem is freed with tb_free. */
int tb_trainer_alloc_tensors(tb_backend *be, void **mem, tb_tensor *const *ts, int n);

/* Loader allocation hooks; user is the tb_backend. */
int tb_trainer_loader_alloc(void *user, void **p, size_t bytes);
void tb_trainer_loader_free(void *user, void *p);
/* Before a batch goes back to its loader after a failed step (rc !=
 * TB_OK): waits for the device, whose copy from the batch's pinned memory
 * may still run (a successful step ended on its loss read). Errors of the
 * wait are dropped: rc is the one to report. */
void tb_trainer_settle(tb_backend *be, int rc);

/* What every trainer run holds; a task's run struct starts with it. */
typedef struct tb_trainer_frame {
    const tb_run_config *cfg;
    const tb_train_options *opt;   /* never NULL inside a run */
    const tb_train_callbacks *cb;
    tb_train_result *res;
    tb_backend *be;
    tb_graph *g;                   /* the trained network: checkpointed, destroyed by tb_trainer_main */
} tb_trainer_frame;

/* The stages of a detection or segmentation run; each gets the task's run
 * struct (whose first member is the frame). */
typedef struct tb_trainer_stages {
    int (*open_data)(void *run);
    int (*build)(void *run);       /* creates f->g */
    int (*setup)(void *run);
    int (*train)(void *run);       /* sets res->outcome */
    void (*cleanup)(void *run);    /* frees what the stages made, not f->g nor f->be */
} tb_trainer_stages;

/* A transfer-task trainer from start to end: the result reset (failed until
 * the run says otherwise), the task and the config checked
 * (tb_trainer_check_transfer_config), the backend opened, the stages in
 * order, the checkpoint of a finished run saved, everything freed. */
int tb_trainer_main(tb_trainer_frame *f, tb_task task, const tb_run_config *cfg, const tb_train_options *opt,
                    const tb_train_callbacks *cb, tb_train_result *res, const tb_trainer_stages *stages);

/* The epoch loop of the detection and segmentation trainers: per epoch,
 * the training pass (schedule, progress, stop requests, a non-finite loss
 * ends the run as diverged), timed after a device sync; evaluation every
 * optim.eval_every epochs and after the last; one epoch record each through
 * the callbacks. The task supplies its batches and its step. */
typedef struct tb_epoch_loop {
    const tb_run_config *cfg;
    const tb_train_options *opt;
    const tb_train_callbacks *cb;
    tb_train_result *res;
    tb_backend *be;
    const tb_schedule *sched;
    int64_t steps_per_epoch;
    void *user;
    int (*start_epoch)(void *user, int epoch);
    /* the next training batch, or *batch = NULL at the end of the epoch */
    int (*next)(void *user, void **batch);
    void (*release)(void *user, void *batch);
    /* one training step; iter counts steps from the start of the run */
    int (*step)(void *user, void *batch, int64_t iter, double lr, float *loss);
    /* evaluation after epoch `epoch` (1-based); prints its own summary */
    int (*evaluate)(void *user, int epoch);
} tb_epoch_loop;

/* Runs every epoch. On return res->outcome is FINISHED (then the medians of
 * the epoch times are set as metrics), DIVERGED or INTERRUPTED. */
int tb_trainer_epoch_loop(const tb_epoch_loop *loop);

#endif
