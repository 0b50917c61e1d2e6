/* Fused SGD step in PyTorch's formulation (torch.optim.SGD, dampening 0):
 *   g = grad / grad_scale + wd * mask * master
 *   v = momentum * v + g
 *   g = nesterov ? g + momentum * v : v
 *   master -= lr * g ; model = (model dtype) master
 * The momentum buffer is only touched when momentum != 0 (it may then be
 * absent). A non-zero skip flag (set on the device by the overflow check of
 * dynamic loss scaling) makes the whole step a no-op. */
#include <math.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/error.h"

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
    float inv_scale = 1.0f / p->grad_scale, mom = p->momentum, wd = p->weight_decay;
    float lr = p->lr_tensor ? ((const float *)p->lr_tensor->data)[0] : p->lr;
    if (!isfinite(lr))
        return tb_fail(TB_ERR_INVALID, "sgd_step: lr %g (lr_tensor) must be finite", (double)lr);
    int nesterov = p->nesterov;
    /* f32 gradients are read directly, skipping the per-element dtype switch */
    const float *gf = grad->dtype == TB_F32 ? grad->data : NULL;
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t i = 0; i < count; i++) {
        float g = (gf ? gf[i] : tb_load_f32(grad->data, grad->dtype, i)) * inv_scale;
        if (mask && mask[i])
            g += wd * w[i];
        if (v) {
            v[i] = mom * v[i] + g;
            g = nesterov ? g + mom * v[i] : v[i];
        }
        w[i] -= lr * g;
        if (model)
            tb_store_f32(model->data, model->dtype, i, w[i]);
    }
    return TB_OK;
}
