/* Gradient clipping by global norm (beyond the paper; PyTorch's
 * clip_grad_norm_ with norm type 2).
 *
 *   norm   = sqrt(sum over all gradients of g^2) / grad_scale
 *   factor = min(1, max_norm / (norm + 1e-6))
 * grad_scale is the loss scale the gradients still carry (1 without fp16
 * loss scaling), so the norm is that of the true gradients. The trainer
 * applies the factor through the optimizer: tb_sgd_params.grad_scale =
 * loss_scale / factor (the SGD step divides gradients by it), so no extra
 * pass over the gradients is needed. The norm is read back to the host: one
 * sync per step, paid only when clipping is on (optim.grad_clip > 0).
 * A non-finite norm (fp16 overflow) gives factor 1: that step is skipped by
 * the loss scaler's overflow flag anyway.
 */
#ifndef TB_GRAD_CLIP_H
#define TB_GRAD_CLIP_H

#include "kernels/backend.h"
#include "models/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tb_grad_clip {
    double max_norm;
    tb_tensor acc;     /* f32 {1} on the device: the running sum of squares */
    void *mem;
} tb_grad_clip;

/* max_norm > 0 (optim.grad_clip). Allocates the accumulator once. */
int tb_grad_clip_init(tb_grad_clip *c, tb_backend *be, double max_norm);
void tb_grad_clip_destroy(tb_grad_clip *c, tb_backend *be);
/* The factor for a norm (pure). */
double tb_grad_clip_factor(double norm, double max_norm);
/* Global norm of `count` gradient tensors, accumulated in acc (zeroed first). */
int tb_grad_global_norm(tb_backend *be, tb_tensor *acc, const tb_tensor *grads, int count, double grad_scale,
                        double *norm);
/* Norm over the graph's parameter groups and the factor for c->max_norm. */
int tb_grad_clip_compute(tb_grad_clip *c, tb_graph *g, double grad_scale, double *norm, double *factor);

#ifdef __cplusplus
}
#endif
#endif
