/* Exponential moving average of the weights (beyond the paper; timm's
 * ModelEmaV2/V3), evaluated in place of the trained weights.
 *
 * Shadow copies (f32) of every parameter group's master and of every BN
 * running statistic are allocated once at init (tb_alloc) and start as a copy
 * of the current values; after each optimizer step
 *     shadow = d * shadow + (1 - d) * current        (tb_axpby)
 * BN running statistics are averaged like weights, as ModelEmaV2 does with
 * all buffers. Decay: constant d = tricks.ema, or with warmup (timm's
 * ModelEmaV3 use_warmup, gamma 1, power 2/3): the k-th update (1-based) uses
 *     d_1 = 0,  d_k = min(d, 1 - k^(-2/3)) for k >= 2
 * (timm's 1 - (1 + step / gamma)^-power with step = k - 1), so the early
 * averages are not dominated by the random initialisation.
 * For evaluation tb_ema_swap_in() copies the shadow into the live tensors
 * (saving them) and tb_ema_swap_out() restores them; nothing is allocated.
 */
#ifndef TB_EMA_H
#define TB_EMA_H

#include <stdbool.h>
#include <stdint.h>

#include "kernels/backend.h"
#include "models/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tb_ema {
    tb_backend *be;
    double decay;
    bool warmup;
    bool swapped;        /* between swap_in and swap_out */
    int64_t updates;
    int count;           /* tracked tensors */
    tb_tensor *live;     /* host array of descriptors of the tracked f32 tensors */
    tb_tensor *shadow;   /* the averages, one device allocation */
    tb_tensor *backup;   /* the live values while the shadow is swapped in */
    void *shadow_mem;
    void *backup_mem;
} tb_ema;

/* Tracks every group master and BN buffer of a finalized graph. decay must be
 * in (0, 1) (tricks.ema). */
int tb_ema_init(tb_ema *e, tb_graph *g, double decay, bool warmup);
/* Tracks arbitrary f32 tensors of `be` (what tb_ema_init uses; tests). */
int tb_ema_init_tensors(tb_ema *e, tb_backend *be, const tb_tensor *live, int count, double decay,
                        bool warmup);
void tb_ema_destroy(tb_ema *e);
/* The decay the k-th update (1-based) uses. */
double tb_ema_decay_at(double decay, bool warmup, int64_t k);
/* One update after an optimizer step (no host sync). */
int tb_ema_update(tb_ema *e);
/* Swap the averages in for evaluation and back. g (optional) gets its
 * low-precision copies synced from the masters after each swap. */
int tb_ema_swap_in(tb_ema *e, tb_graph *g);
int tb_ema_swap_out(tb_ema *e, tb_graph *g);

#ifdef __cplusplus
}
#endif
#endif
