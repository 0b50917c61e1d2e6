/* Fused SGD step in PyTorch's formulation (torch.optim.SGD, dampening 0):
 *   g = grad / grad_scale + wd * mask * master
 *   v = momentum * v + g
 *   g = nesterov ? g + momentum * v : v
 *   master -= lr * g ; model = (model dtype) master
 * The momentum buffer is only touched when momentum != 0 (it may then be
 * absent). A non-zero skip flag (set on the device by the overflow check of
 * dynamic loss scaling) makes the whole step a no-op. With clip_sumsq the
 * gradients are also scaled by the global-norm clipping factor. */
#include <math.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/error.h"

/* Elements per block: the gradient is converted to f32 and the model copy
 * written a block at a time, so that those loops vectorise. */
#define SGD_BLOCK 256

int tb_cpu_sgd_step(tb_backend *be, tb_tensor *master, tb_tensor *model, tb_tensor *momentum_buf,
                    const tb_tensor *grad, const tb_tensor *decay_mask, const tb_tensor *skip,
                    const tb_sgd_params *p)
{
    if (skip && ((const int32_t *)skip->data)[0] != 0)
        return TB_OK;
    int64_t count = tb_numel(master);
    float *w = master->data;
    float *v = p->momentum != 0.0f ? momentum_buf->data : NULL;
    const uint8_t *mask = decay_mask ? decay_mask->data : NULL;
    float grad_scale = p->grad_scale_tensor ? ((const float *)p->grad_scale_tensor->data)[0] : p->grad_scale;
    if (!(grad_scale > 0.0f) || !isfinite(grad_scale))
        return tb_fail(TB_ERR_INVALID, "sgd_step: grad_scale %g (grad_scale_tensor) must be positive and finite",
                       (double)grad_scale);
    float inv_scale = 1.0f / grad_scale, mom = p->momentum, wd = p->weight_decay;
    /* clipping folds into the one divisor each gradient gets: the loss scale
     * over the factor */
    if (p->clip_sumsq) {
        double factor = tb_sgd_clip_factor(((const float *)p->clip_sumsq->data)[0], grad_scale, p->clip_max_norm);
        inv_scale = 1.0f / (float)(grad_scale / factor);
    }
    float lr = p->lr_tensor ? ((const float *)p->lr_tensor->data)[0] : p->lr;
    if (!isfinite(lr))
        return tb_fail(TB_ERR_INVALID, "sgd_step: lr %g (lr_tensor) must be finite", (double)lr);
    int nesterov = p->nesterov;
    int64_t blocks = (count + SGD_BLOCK - 1) / SGD_BLOCK;
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t k = 0; k < blocks; k++) {
        int64_t i0 = k * SGD_BLOCK, len = tb_cpu_min64(SGD_BLOCK, count - i0);
        float tg[SGD_BLOCK];
        const float *gb = tb_cpu_load_row(tg, grad, i0, len);
        float *wb = w + i0, *vb = v ? v + i0 : NULL;
        const uint8_t *mb = mask ? mask + i0 : NULL;
        for (int64_t j = 0; j < len; j++) {
            float g = gb[j] * inv_scale;
            g = mb && mb[j] ? g + wd * wb[j] : g;
            if (vb) {
                vb[j] = mom * vb[j] + g;
                g = nesterov ? g + mom * vb[j] : vb[j];
            }
            wb[j] -= lr * g;
        }
        if (model)
            tb_cpu_store_row(model, i0, wb, len);
    }
    return TB_OK;
}
