#include "tricks/schedule.h"

#include <math.h>

#include "kernels/error.h"

double tb_schedule_target_lr(const tb_optim_config *optim)
{
    if (!optim->linear_scaling || optim->base_batch <= 0)
        return optim->lr;
    return optim->lr * (double)optim->batch / (double)optim->base_batch;
}

static int check_optim(const tb_optim_config *o)
{
    TB_CHECK(isfinite(o->lr) && o->lr > 0, TB_ERR_INVALID, "optim.lr = %g: must be a positive number", o->lr);
    TB_CHECK(o->epochs >= 1, TB_ERR_INVALID, "optim.epochs = %d: must be at least 1", o->epochs);
    if (o->linear_scaling) {
        TB_CHECK(o->batch >= 1, TB_ERR_INVALID, "optim.batch = %d: must be at least 1", o->batch);
        TB_CHECK(o->base_batch >= 1, TB_ERR_INVALID,
                 "optim.base_batch = %d: must be at least 1 when optim.linear_scaling is on", o->base_batch);
    }
    return TB_OK;
}

static int check_steps(const tb_schedule_config *c, double warmup_epochs)
{
    TB_CHECK(c->n_step_epochs >= 0 && c->n_step_epochs <= TB_MAX_STEP_EPOCHS, TB_ERR_INVALID,
             "schedule.step_epochs: %d entries, at most %d are allowed", c->n_step_epochs, TB_MAX_STEP_EPOCHS);
    TB_CHECK(isfinite(c->step_gamma) && c->step_gamma > 0, TB_ERR_INVALID,
             "schedule.step_gamma = %g: must be a positive number", c->step_gamma);
    for (int i = 0; i < c->n_step_epochs; i++) {
        int e = c->step_epochs[i];
        TB_CHECK(e >= 1, TB_ERR_INVALID, "schedule.step_epochs[%d] = %d: must be at least 1", i, e);
        TB_CHECK(i == 0 || e > c->step_epochs[i - 1], TB_ERR_INVALID,
                 "schedule.step_epochs[%d] = %d: must be larger than the previous entry %d", i, e,
                 c->step_epochs[i - 1]);
        /* a decay inside the warmup would be undone by the ramp to the undecayed target */
        TB_CHECK(e >= warmup_epochs, TB_ERR_INVALID,
                 "schedule.step_epochs[%d] = %d falls inside the warmup (schedule.warmup_epochs = %g)", i, e,
                 warmup_epochs);
    }
    return TB_OK;
}

static int check_schedule(const tb_schedule_config *c, double target)
{
    switch (c->type) {
    case TB_SCHED_STEP: TB_TRY(check_steps(c, c->warmup_epochs)); break;
    case TB_SCHED_POLY:
        TB_CHECK(isfinite(c->poly_power) && c->poly_power > 0, TB_ERR_INVALID,
                 "schedule.poly_power = %g: must be a positive number", c->poly_power);
        break;
    case TB_SCHED_COSINE:
    case TB_SCHED_LINEAR:
    case TB_SCHED_CONSTANT: break;
    default: return tb_fail(TB_ERR_INVALID, "schedule.type = %d: unknown schedule type", (int)c->type);
    }
    TB_CHECK(isfinite(c->final_lr) && c->final_lr >= 0, TB_ERR_INVALID,
             "schedule.final_lr = %g: must be a number >= 0", c->final_lr);
    TB_CHECK(c->type == TB_SCHED_STEP || c->type == TB_SCHED_CONSTANT || c->final_lr <= target, TB_ERR_INVALID,
             "schedule.final_lr = %g exceeds the (scaled) learning rate %g it decays from", c->final_lr, target);
    TB_CHECK(isfinite(c->warmup_epochs) && c->warmup_epochs >= 0, TB_ERR_INVALID,
             "schedule.warmup_epochs = %g: must be a number >= 0", c->warmup_epochs);
    return TB_OK;
}

int tb_schedule_init(tb_schedule *s, const tb_optim_config *optim, const tb_schedule_config *sched,
                     int64_t iters_per_epoch)
{
    TB_CHECK(iters_per_epoch >= 1, TB_ERR_INVALID,
             "schedule: %lld iterations per epoch (the training set is smaller than one batch?)",
             (long long)iters_per_epoch);
    TB_TRY(check_optim(optim));
    double target = tb_schedule_target_lr(optim);
    TB_TRY(check_schedule(sched, target));

    *s = (tb_schedule){0};
    s->type = sched->type;
    s->target_lr = target;
    s->final_lr = sched->final_lr;
    s->gamma = sched->step_gamma;
    s->power = sched->poly_power;
    s->iters_per_epoch = iters_per_epoch;
    s->total_iters = (int64_t)optim->epochs * iters_per_epoch;
    s->warmup_iters = (int64_t)llround(sched->warmup_epochs * (double)iters_per_epoch);
    TB_CHECK(s->warmup_iters < s->total_iters, TB_ERR_INVALID,
             "schedule.warmup_epochs = %g (%lld iterations) is not shorter than training "
             "(optim.epochs = %d, %lld iterations)",
             sched->warmup_epochs, (long long)s->warmup_iters, optim->epochs, (long long)s->total_iters);
    if (s->type == TB_SCHED_STEP) {
        s->n_steps = sched->n_step_epochs;
        for (int i = 0; i < s->n_steps; i++)
            s->step_iters[i] = (int64_t)sched->step_epochs[i] * iters_per_epoch;
    }
    return TB_OK;
}

/* Fraction of the post-warmup decay already done, in [0, 1]. */
static double decay_progress(const tb_schedule *s, int64_t iter)
{
    double span = (double)(s->total_iters - s->warmup_iters);
    double t = (double)(iter - s->warmup_iters);
    return t >= span ? 1.0 : t / span;
}

double tb_schedule_lr(const tb_schedule *s, int64_t iter)
{
    if (iter < 0)
        iter = 0;
    if (iter < s->warmup_iters)
        return s->target_lr * (double)(iter + 1) / (double)s->warmup_iters;
    double range = s->target_lr - s->final_lr;
    double p = decay_progress(s, iter);
    switch (s->type) {
    case TB_SCHED_STEP: {
        double lr = s->target_lr;
        for (int i = 0; i < s->n_steps && iter >= s->step_iters[i]; i++)
            lr *= s->gamma;
        return lr;
    }
    case TB_SCHED_COSINE: return s->final_lr + 0.5 * range * (1.0 + cos(M_PI * p));
    case TB_SCHED_POLY: return s->final_lr + range * pow(1.0 - p, s->power);
    case TB_SCHED_LINEAR: return s->final_lr + range * (1.0 - p);
    case TB_SCHED_CONSTANT:
    default: return s->target_lr;
    }
}
