/* Progress of a matrix on stderr. On a terminal: one live line per run (run
 * i/N, label, seed, epoch, bar, images/s, loss, "ETA run (all matrix)"),
 * redrawn at most 10 times a second, then a summary line when it ends. Off a
 * terminal (a log file, CI): one line per epoch. Colour only on a terminal
 * and never when NO_COLOR is set. */
#ifndef TB_PROGRESS_H
#define TB_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "harness/train/trainer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tb_progress_mode {
    TB_PROGRESS_AUTO = 0, /* live on a terminal, lines otherwise */
    TB_PROGRESS_LIVE,
    TB_PROGRESS_LINES,
    TB_PROGRESS_QUIET
} tb_progress_mode;

typedef struct tb_progress {
    FILE *out;
    tb_progress_mode mode;
    bool color;
    int n_runs;
    double total_epochs;    /* epochs of all runs to do, for the matrix ETA */
    double done_epochs;     /* of finished epochs */
    double matrix_start;    /* seconds (monotonic) */
    double train_seconds;   /* spent in epochs so far, for the ETA */
    /* the current run */
    int index;
    char label[256];
    uint64_t seed;
    int epochs;
    double run_start;
    double epoch_start;
    double last_draw;
    bool line_open;         /* a live line is on screen */
} tb_progress;

void tb_progress_init(tb_progress *p, FILE *out, tb_progress_mode mode, int n_runs, double total_epochs);
void tb_progress_run_begin(tb_progress *p, int index, const char *label, uint64_t seed, int epochs);
void tb_progress_step(tb_progress *p, int epoch, int64_t step, int64_t steps, double loss, double images_per_sec);
void tb_progress_epoch(tb_progress *p, const tb_epoch_record *rec);
/* `status` is finished/failed/diverged/interrupted/skipped; `detail` a short text. */
void tb_progress_run_end(tb_progress *p, const char *status, const char *detail);
/* A message line (clears a live line first). */
void tb_progress_note(tb_progress *p, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Monotonic seconds. */
double tb_progress_now(void);

/* "1:05", "2:03:04", "?" for a non-finite or negative duration. */
void tb_progress_format_duration(double seconds, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
