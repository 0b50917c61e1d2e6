/* The matrix runner: trains every run of a matrix that is not done yet,
 * recording each epoch and the result in the store.
 *
 * Resumable: a finished (or diverged) run is skipped unless `rerun`; a run
 * left 'running' by a process that is gone (a crash, kill -9) or
 * 'interrupted' / 'failed' goes on after its last finished epoch from its
 * training state (DIR/<hash>.state.safetensors, harness/train/resume.h),
 * keeping the rows of those epochs; without a usable state it starts again
 * from its first epoch. `rerun` deletes the state first. A failing or
 * diverging run is recorded with its error and the matrix goes on, unless
 * `fail_fast`. SIGINT/SIGTERM (with `handle_signals`) stop the current run,
 * record it as interrupted and return TB_ERR_INTERRUPTED; a second signal
 * kills the process at once.
 *
 * The trainer is a parameter so that tests drive the runner with a fake.
 */
#ifndef TB_RUNNER_H
#define TB_RUNNER_H

#include <stdbool.h>
#include <stdio.h>

#include "harness/matrix.h"
#include "harness/progress.h"
#include "harness/store.h"
#include "harness/train/trainer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tb_runner_options {
    const char *db_path;        /* NULL = TB_STORE_DEFAULT_PATH */
    const char *device;         /* overrides each run's config device; NULL = the config's */
    int threads;                /* CPU threads; 0 = all cores */
    bool rerun;                 /* run finished runs again too */
    bool fail_fast;             /* stop at the first failed or diverged run */
    int shard, shard_count;     /* run only shard `shard` (1-based) of `shard_count`; 0 = all */
    tb_trainer_fn trainer;      /* NULL = the trainer of each run's task (tb_trainer_for_task) */
    const char *checkpoint_dir; /* NULL = "checkpoints" beside the database */
    int busy_ms;                /* lock wait; 0 = TB_STORE_BUSY_MS */
    FILE *progress_out;         /* NULL = stderr */
    tb_progress_mode progress;
    bool handle_signals;        /* install SIGINT/SIGTERM handlers for the duration */
} tb_runner_options;

typedef struct tb_runner_summary {
    int selected;        /* runs of the matrix in this shard */
    int done_before;     /* skipped: already finished or diverged */
    int busy;            /* skipped: running in another live process */
    int finished;
    int diverged;
    int failed;
    int interrupted;
    int first_error;     /* tb_status of the first failed run (TB_OK if none) */
    char first_error_msg[1024];
    char first_error_label[TB_LABEL_MAX];
} tb_runner_summary;

/* Runs the matrix. Returns TB_OK when every selected run was attempted (see
 * the summary for failures), TB_ERR_INTERRUPTED after a signal, the failed
 * run's status with fail_fast, or a store error (locked, read-only, ...)
 * which stops the matrix since nothing could be recorded. */
int tb_runner_run(const tb_matrix *m, const tb_runner_options *opt, tb_runner_summary *sum);

/* The path of a run's checkpoint: DIR/<hash>.safetensors. */
void tb_runner_checkpoint_path(const tb_runner_options *opt, const char *hash, char *buf, size_t size);

/* The path of a run's training state: DIR/<hash>.state.safetensors. */
void tb_runner_state_path(const tb_runner_options *opt, const char *hash, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
