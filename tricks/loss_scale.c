#include "tricks/loss_scale.h"

#include <math.h>

#include "kernels/error.h"

int tb_loss_scaler_init(tb_loss_scaler *s, bool dynamic, double init_scale)
{
    TB_CHECK(isfinite(init_scale), TB_ERR_INVALID, "tricks.loss_scale = %g: must be a finite number", init_scale);
    if (init_scale <= 0)
        init_scale = dynamic ? TB_LOSS_SCALE_DYNAMIC_INIT : 1.0;
    TB_CHECK(init_scale <= 3.0e38, TB_ERR_INVALID, "tricks.loss_scale = %g: larger than the f32 range",
             init_scale);
    *s = (tb_loss_scaler){
        .dynamic = dynamic,
        .scale = init_scale,
        .growth_factor = TB_LOSS_SCALE_GROWTH,
        .backoff_factor = TB_LOSS_SCALE_BACKOFF,
        .growth_interval = TB_LOSS_SCALE_INTERVAL,
    };
    return TB_OK;
}

float tb_loss_scaler_scale(const tb_loss_scaler *s) { return (float)s->scale; }

bool tb_loss_scaler_update(tb_loss_scaler *s, bool overflow)
{
    s->steps++;
    if (overflow) {
        s->skipped++;
        s->good_steps = 0;
        if (s->dynamic)
            s->scale = fmax(s->scale * s->backoff_factor, TB_LOSS_SCALE_MIN);
        return false;
    }
    if (s->dynamic && ++s->good_steps == s->growth_interval) {
        /* GradScaler skips growth that would overflow f32 */
        double grown = s->scale * s->growth_factor;
        if (grown <= 3.0e38)
            s->scale = grown;
        s->good_steps = 0;
    }
    return true;
}

int64_t tb_loss_scaler_skipped(const tb_loss_scaler *s) { return s->skipped; }
