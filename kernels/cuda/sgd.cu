/* Fused SGD step over one flat parameter group (PyTorch's formulation):
 *   g = grad / grad_scale + wd * mask * master
 *   v = momentum * v + g                        (momentum != 0)
 *   g = nesterov ? g + momentum * v : v         (momentum != 0)
 *   master -= lr * g ; model = (model dtype) master
 * One thread per element reads grad, mask, master and v once and writes
 * master, v and the low-precision model copy. The skip flag (overflow under
 * dynamic loss scaling) is read on the device, so a skipped step costs no
 * host round trip; so is the sum of squares that gradient clipping needs. */
#include "kernels/cuda/cuda_common.cuh"

typedef struct sgd_args {
    float lr, momentum, weight_decay, grad_scale;
    double clip_max_norm;
    bool nesterov;
} sgd_args;

/* 1 / grad_scale, or with clip_sumsq 1 / (float)(grad_scale / factor),
 * tb_sgd_clip_factor's formula in double: bit for bit what the CPU computes
 * from the same sum of squares (IEEE sqrt and division). Every thread works
 * it out from the sum the step accumulated on the device (no host read). */
static __device__ float gradient_multiplier(const float *clip_sumsq, float grad_scale, const sgd_args &a)
{
    if (!clip_sumsq)
        return 1.0f / grad_scale;
    double norm = sqrt((double)*clip_sumsq) / grad_scale;
    if (!isfinite(norm))
        return 1.0f / grad_scale;
    double f = a.clip_max_norm / (norm + 1e-6);
    double factor = f < 1.0 ? f : 1.0;
    return 1.0f / (float)(grad_scale / factor);
}

template <typename TG, typename TM>
static __global__ void sgd_kernel(float *master, TM *model, float *vbuf, const TG *grad, const uint8_t *mask,
                                  const int32_t *skip, const float *lr_p, const float *clip_sumsq,
                                  const float *scale_p, int64_t n, const sgd_args a)
{
    if (skip && *skip != 0)
        return;
    /* the step's rate and loss scale read on the device (a captured step
     * replays with them); a scale the CPU would refuse (<= 0, not finite)
     * leaves the gradients unscaled */
    const float lr = lr_p ? *lr_p : a.lr;
    float grad_scale = scale_p ? *scale_p : a.grad_scale;
    if (!(grad_scale > 0.0f) || !isfinite(grad_scale))
        grad_scale = 1.0f;
    const float mult = gradient_multiplier(clip_sumsq, grad_scale, a);
    TB_GRID_STRIDE_LOOP(i, n)
    {
        float w = master[i];
        float g = tb_f32(grad[i]) * mult;
        if (mask && mask[i])
            g += a.weight_decay * w;
        if (a.momentum != 0.0f) {
            float v = a.momentum * vbuf[i] + g;
            vbuf[i] = v;
            g = a.nesterov ? g + a.momentum * v : v;
        }
        w -= lr * g;
        master[i] = w;
        if (model)
            model[i] = tb_from_f32<TM>(w);
    }
}

static int sgd_step(tb_backend *be, tb_tensor *master, tb_tensor *model, tb_tensor *momentum_buf,
                    const tb_tensor *grad, const tb_tensor *decay_mask, const tb_tensor *skip,
                    const tb_sgd_params *p)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    int64_t n = tb_numel(master);
    if (n == 0)
        return TB_OK;
    TB_CHECK(p->momentum == 0.0f || (momentum_buf && momentum_buf->data), TB_ERR_INVALID,
             "sgd_step: momentum %g needs a momentum buffer", (double)p->momentum);
    TB_CHECK(p->grad_scale != 0.0f, TB_ERR_INVALID, "sgd_step: grad_scale must not be 0");
    sgd_args a;
    a.lr = p->lr;
    a.momentum = p->momentum;
    a.weight_decay = p->weight_decay;
    a.grad_scale = p->grad_scale;
    a.clip_max_norm = p->clip_max_norm;
    a.nesterov = p->nesterov;
    float *v = momentum_buf ? (float *)momentum_buf->data : NULL;
    const uint8_t *mask = decay_mask && decay_mask->data ? (const uint8_t *)decay_mask->data : NULL;
    const int32_t *sk = skip && skip->data ? (const int32_t *)skip->data : NULL;
    /* a model copy that is the master itself (f32 groups) needs no second write */
    void *mdl = model && model->data && model->data != master->data ? model->data : NULL;
    tb_dtype mdt = mdl ? model->dtype : TB_F32;
    TB_TRY(tb_dispatch_float(grad->dtype, "sgd_step", [&](auto gtag) {
        using TG = typename decltype(gtag)::type;
        return tb_dispatch_float(mdt, "sgd_step", [&](auto mtag) {
            using TM = typename decltype(mtag)::type;
            sgd_kernel<TG, TM><<<tb_cuda_blocks(ctx, n), TB_CUDA_THREADS, 0, ctx->stream>>>(
                (float *)master->data, (TM *)mdl, v, (const TG *)grad->data, mask, sk,
                p->lr_tensor ? (const float *)p->lr_tensor->data : NULL,
                p->clip_sumsq ? (const float *)p->clip_sumsq->data : NULL,
                p->grad_scale_tensor ? (const float *)p->grad_scale_tensor->data : NULL, n, a);
            return TB_OK;
        });
    }));
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_sgd_step(tb_backend *be, tb_tensor *master, tb_tensor *model, tb_tensor *momentum_buf,
                     const tb_tensor *grad, const tb_tensor *decay_mask, const tb_tensor *skip,
                     const tb_sgd_params *p)
{
    TB_CUDA_OP_RETURN(sgd_step(be, master, model, momentum_buf, grad, decay_mask, skip, p), "sgd_step", "master",
                      master, "model", model, "grad", grad, "momentum", momentum_buf);
}
