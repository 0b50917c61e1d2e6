/* Learning-rate schedules, evaluated per iteration (0-based global step).
 *
 * target lr: optim.lr, times optim.batch / optim.base_batch when
 * optim.linear_scaling is set (Goyal et al.; the paper's "linear scaling").
 *
 * Warmup (schedule.warmup_epochs, W = round(warmup_epochs * iters_per_epoch)
 * iterations): lr(t) = target * (t + 1) / W for t < W. This is GluonCV's
 * linear warmup with MXNet's update count, which starts at 1: the first step
 * already moves (no wasted step at lr 0) and iteration W - 1, the last one of
 * the warmup, runs at the full target. (GluonCV normalises by W - 1 and so
 * reaches the target one iteration earlier; timm uses t / W.)
 *
 * After the warmup, with t' = t - W and T' = total - W (both in iterations):
 *   step:     target * gamma^(number of step epochs e with t >= e * iters_per_epoch);
 *             epochs are counted from the start of training, as torchvision's
 *             MultiStepLR and GluonCV (which subtracts the warmup from its
 *             step list for the post-warmup scheduler) do.
 *   cosine:   final + 0.5 * (target - final) * (1 + cos(pi * t' / T')), the
 *             paper's formula per iteration (T' not T' - 1, so the last
 *             iteration is one step short of `final`).
 *   poly:     final + (target - final) * (1 - t' / T')^power
 *   linear:   final + (target - final) * (1 - t' / T')
 *   constant: target
 * Iterations past the end keep the value at t' = T'.
 */
#ifndef TB_SCHEDULE_H
#define TB_SCHEDULE_H

#include <stdint.h>

#include "harness/config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tb_schedule {
    tb_schedule_type type;
    double target_lr;           /* after linear scaling */
    double final_lr;
    double gamma;               /* step */
    double power;               /* poly */
    int64_t iters_per_epoch;
    int64_t total_iters;        /* epochs * iters_per_epoch */
    int64_t warmup_iters;
    int64_t step_iters[TB_MAX_STEP_EPOCHS]; /* step epochs in iterations */
    int n_steps;
} tb_schedule;

/* Validates the optim and schedule sections (errors name the key, e.g.
 * "schedule.warmup_epochs") and precomputes the schedule. */
int tb_schedule_init(tb_schedule *s, const tb_optim_config *optim, const tb_schedule_config *sched,
                     int64_t iters_per_epoch);
/* The learning rate for global iteration `iter` (0-based; negative = 0). */
double tb_schedule_lr(const tb_schedule *s, int64_t iter);
/* optim.lr with linear scaling applied (what the warmup ramps to). */
double tb_schedule_target_lr(const tb_optim_config *optim);

#ifdef __cplusplus
}
#endif
#endif
