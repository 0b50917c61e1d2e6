/* The training-state file: what lets an interrupted classification run go on
 * from its last finished epoch with exactly the result of an uninterrupted
 * run (bitwise on the CPU backend with the same thread count).
 *
 * Decisions:
 * - Where: the runner passes DIR/<hash>.state.safetensors (beside the final
 *   checkpoint DIR/<hash>.safetensors) as tb_train_options.state_path; NULL
 *   (direct callers that do not ask for it) means no state file at all.
 * - When: after every finished epoch, after that epoch's evaluation and after
 *   on_epoch returned 0 (the runner has committed the epoch row), so a state
 *   file for epoch E implies recorded rows 1..E; a row recorded after the
 *   state file (a crash between the two) is replaced when the epoch is run
 *   again. A stop mid-epoch (should_stop) discards the partial epoch and
 *   leaves the last state file as it is. A finished or diverged run deletes
 *   the file (both are final results), so does `run --rerun` (runner.c); a
 *   failed or interrupted run keeps it.
 * - Crash safety: written to PATH.tmp, fsync'ed, renamed over PATH; a CRC-32
 *   (zlib) of all tensor bytes is the last tensor, so a damaged file is
 *   detected, not loaded.
 * - Format: safetensors (models/safetensors_file.h). The writer there has no
 *   __metadata__ parameter, so the identity lives in tensors: the format
 *   version, the run's config hash (64 ASCII bytes, U8) and the backend name
 *   (U8, NUL padded). Then the loop position (epoch, steps per epoch, total
 *   epochs), the per-epoch seconds and images/s (F64, for the final medians),
 *   the latest evaluation (loss, top-1, top-5), BN num_batches_tracked, the
 *   student's training-forward count (the graph's dropout step), the loss
 *   scaler (scale; good steps, steps, skipped), then device tensors in f32,
 *   exactly as they are: each parameter group's flat master and momentum
 *   ("group0.master", ...), every BN running statistic ("buffer.<name>"),
 *   and with EMA its update count and every shadow tensor ("ema.<i>"). The
 *   low-precision weight copies are not stored: they are a conversion of the
 *   masters (tb_graph_sync_params), as the SGD step makes them.
 * - Nothing else is state: the loaders and mixup/cutmix draws are pure
 *   functions of (seed, epoch, step), the learning rate of the iteration,
 *   gradients are zeroed every step, the distillation teacher is fixed.
 * - Loading checks everything (structure, CRC, version, config hash, the
 *   loop position, every tensor's dtype and shape against this graph) before
 *   touching the graph; a file that fails a check is REJECTED with a message
 *   naming the file and the trainer starts from epoch 1 (the file is
 *   replaced after that run's first epoch). A different backend name (device
 *   or thread count) is not a rejection: the state is still a correct
 *   training state, but the trainer warns that the result is no longer
 *   bitwise that of an uninterrupted run.
 * - Dropout: the graph's training-forward counter (tb_graph_step), which
 *   with the seed determines every dropout mask, is saved and restored.
 */
#ifndef TB_TRAIN_RESUME_H
#define TB_TRAIN_RESUME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness/train/step.h"
#include "models/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TB_RESUME_VERSION 1
#define TB_RESUME_DEVICE_LEN 128

/* The training loop's position and the host-side figures a resumed run needs. */
typedef struct tb_resume_progress {
    int epoch;                /* epochs finished (>= 1 in a file) */
    int epochs;               /* the run's optim.epochs: the length of the arrays */
    int64_t steps_per_epoch;
    double *epoch_seconds;    /* [epochs]; the first `epoch` are meaningful (caller-owned) */
    double *epoch_ips;        /* [epochs] images/s */
    double last_eval[3];      /* latest validation loss, top-1, top-5 (NaN before the first) */
} tb_resume_progress;

/* Writes the state of `g` and `s` after p->epoch finished epochs to `path`
 * (through PATH.tmp + fsync + rename). hash: the run's config hash;
 * device: the backend's name. */
int tb_resume_save(const char *path, const char *hash, const char *device, tb_graph *g, const tb_step *s,
                   const tb_resume_progress *p);

typedef enum tb_resume_outcome {
    TB_RESUME_LOADED = 0,     /* g, s and p now hold the saved state */
    TB_RESUME_NONE,           /* no file: a fresh start */
    TB_RESUME_REJECTED        /* corrupt or another run's: tb_errmsg() says why; nothing was changed */
} tb_resume_outcome;

/* Loads `path` into g, s and p (p->epochs, p->steps_per_epoch and the arrays
 * set by the caller; they must match the file). device (optional) receives
 * the backend name the file was written with. Returns TB_OK with *outcome,
 * or an error when loading failed after the graph was partly overwritten
 * (the run must then not go on). */
int tb_resume_load(const char *path, const char *hash, tb_graph *g, tb_step *s, tb_resume_progress *p,
                   char *device, size_t device_size, tb_resume_outcome *outcome);

/* The epoch a state file for `hash` resumes after, from its small tensors
 * only (no CRC pass); 0 when there is no usable file. For the runner. */
int tb_resume_peek(const char *path, const char *hash);

/* Deletes PATH and PATH.tmp; missing files are fine. */
int tb_resume_remove(const char *path);

/* "DIR/x.safetensors" -> "DIR/x.state.safetensors" (other names get
 * ".state.safetensors" appended). Returns false when it does not fit. */
bool tb_resume_path_for(const char *checkpoint_path, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
