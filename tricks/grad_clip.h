/* Gradient clipping by global norm (beyond the paper; PyTorch's
 * clip_grad_norm_ with norm type 2).
 *
 *   norm   = sqrt(sum over all gradients of g^2) / grad_scale
 *   factor = min(1, max_norm / (norm + 1e-6))
 * grad_scale is the loss scale the gradients still carry (1 without fp16
 * loss scaling), so the norm is that of the true gradients. The sum of
 * squares is accumulated on the device and the SGD step reads it there
 * (tb_sgd_params.clip_sumsq, the factor is tb_sgd_clip_factor), so clipping
 * costs no host read and a captured step replays it. A non-finite norm (fp16
 * overflow) gives factor 1: that step is skipped by the loss scaler's
 * overflow flag anyway.
 */
#ifndef TB_GRAD_CLIP_H
#define TB_GRAD_CLIP_H

#include "kernels/backend.h"
#include "kernels/ops.h"
#include "models/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tb_grad_clip {
    double max_norm;
    tb_tensor acc;     /* f32 {1} on the device: the sum of squares */
    void *mem;
} tb_grad_clip;

/* max_norm > 0 (optim.grad_clip). Allocates the accumulator once. */
int tb_grad_clip_init(tb_grad_clip *c, tb_backend *be, double max_norm);
void tb_grad_clip_destroy(tb_grad_clip *c, tb_backend *be);
/* Enqueues the sum of squares of `count` gradient tensors into c->acc
 * (zeroed first). */
int tb_grad_clip_accumulate(tb_grad_clip *c, tb_backend *be, const tb_tensor *grads, int count);
/* The same over the graph's parameter groups, then points p's clip fields
 * at the result: the SGD steps that follow clip. */
int tb_grad_clip_prepare(tb_grad_clip *c, tb_graph *g, tb_sgd_params *p);

#ifdef __cplusplus
}
#endif
#endif
