/* Loss scaling for fp16 training: the host-side state machine of PyTorch's
 * torch.cuda.amp.GradScaler.
 *
 * The trainer multiplies the loss gradient by tb_loss_scaler_scale() (the
 * `scale` argument of tb_softmax_ce_backward), has the graph check every
 * gradient for inf/NaN into an i32 flag (tb_nonfinite_check), and passes that
 * flag as the `skip` argument of tb_sgd_step with grad_scale = the same scale,
 * so an overflowing step is dropped on the device without a host round trip.
 * It reads the flag back together with the loss and calls
 * tb_loss_scaler_update().
 *
 * Dynamic (GradScaler's defaults): initial scale 65536 (2^16); after 2000
 * consecutive finite steps the scale doubles; an overflow halves it and
 * restarts the count. Static: the scale never changes. In both modes a step
 * with an overflow is skipped and counted (a static scale that overflows
 * would otherwise write inf into the weights). Unlike PyTorch the scale has
 * a floor of 2^-24: below that even unscaled fp16 gradients overflow, and
 * the trainer's divergence check (non-finite loss) reports the run.
 */
#ifndef TB_LOSS_SCALE_H
#define TB_LOSS_SCALE_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TB_LOSS_SCALE_DYNAMIC_INIT 65536.0
#define TB_LOSS_SCALE_GROWTH 2.0
#define TB_LOSS_SCALE_BACKOFF 0.5
#define TB_LOSS_SCALE_INTERVAL 2000
#define TB_LOSS_SCALE_MIN (1.0 / 16777216.0)

typedef struct tb_loss_scaler {
    bool dynamic;
    double scale;
    double growth_factor;
    double backoff_factor;
    int64_t growth_interval;
    int64_t good_steps;   /* consecutive finite steps since the last change */
    int64_t steps;        /* updates seen */
    int64_t skipped;      /* steps dropped because of inf/NaN gradients */
} tb_loss_scaler;

/* init_scale <= 0 picks the default: 65536 when dynamic, 1 when static.
 * A non-finite scale is an error naming tricks.loss_scale. */
int tb_loss_scaler_init(tb_loss_scaler *s, bool dynamic, double init_scale);
/* The factor to multiply the loss (its gradient) by for the next step. */
float tb_loss_scaler_scale(const tb_loss_scaler *s);
/* Records one step's outcome; returns whether the step was applied
 * (false: it overflowed and the optimizer skipped it). */
bool tb_loss_scaler_update(tb_loss_scaler *s, bool overflow);
int64_t tb_loss_scaler_skipped(const tb_loss_scaler *s);

#ifdef __cplusplus
}
#endif
#endif
