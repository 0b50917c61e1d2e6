#include "tricks/grad_clip.h"

#include <math.h>

#include "kernels/error.h"
#include "kernels/ops.h"

int tb_grad_clip_init(tb_grad_clip *c, tb_backend *be, double max_norm)
{
    *c = (tb_grad_clip){0};
    TB_CHECK(isfinite(max_norm) && max_norm > 0, TB_ERR_INVALID,
             "optim.grad_clip = %g: must be a positive number (0 turns clipping off)", max_norm);
    TB_TRY(tb_alloc(be, &c->mem, sizeof(float)));
    c->max_norm = max_norm;
    c->acc = tb_tensor_1d(c->mem, TB_F32, 1);
    return TB_OK;
}

void tb_grad_clip_destroy(tb_grad_clip *c, tb_backend *be)
{
    tb_free(be, c->mem);
    *c = (tb_grad_clip){0};
}

double tb_grad_clip_factor(double norm, double max_norm)
{
    if (!isfinite(norm))
        return 1.0;
    double f = max_norm / (norm + 1e-6);
    return f < 1.0 ? f : 1.0;
}

int tb_grad_global_norm(tb_backend *be, tb_tensor *acc, const tb_tensor *grads, int count, double grad_scale,
                        double *norm)
{
    TB_CHECK(grad_scale > 0, TB_ERR_INVALID, "grad norm: grad_scale = %g must be positive", grad_scale);
    TB_TRY(tb_fill(be, acc, 0.0f));
    for (int i = 0; i < count; i++)
        TB_TRY(tb_sumsq(be, acc, &grads[i]));
    float sum = 0.0f;
    TB_TRY(tb_download(be, &sum, acc));
    *norm = sqrt((double)sum) / grad_scale;
    return TB_OK;
}

int tb_grad_clip_compute(tb_grad_clip *c, tb_graph *g, double grad_scale, double *norm, double *factor)
{
    tb_tensor grads[2];
    int count = 0;
    for (int gi = TB_GROUP_F32; gi <= TB_GROUP_LOWP; gi++) {
        tb_param_group *grp = tb_graph_group(g, gi);
        if (grp)
            grads[count++] = grp->grad;
    }
    TB_TRY(tb_grad_global_norm(tb_graph_backend(g), &c->acc, grads, count, grad_scale, norm));
    *factor = tb_grad_clip_factor(*norm, c->max_norm);
    return TB_OK;
}
