#include "tricks/grad_clip.h"

#include <math.h>

#include "kernels/error.h"

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

int tb_grad_clip_accumulate(tb_grad_clip *c, tb_backend *be, const tb_tensor *grads, int count)
{
    TB_TRY(tb_fill(be, &c->acc, 0.0f));
    for (int i = 0; i < count; i++)
        TB_TRY(tb_sumsq(be, &c->acc, &grads[i]));
    return TB_OK;
}

int tb_grad_clip_prepare(tb_grad_clip *c, tb_graph *g, tb_sgd_params *p)
{
    tb_tensor grads[2];
    int count = 0;
    for (int gi = TB_GROUP_F32; gi <= TB_GROUP_LOWP; gi++) {
        tb_param_group *grp = tb_graph_group(g, gi);
        if (grp)
            grads[count++] = grp->grad;
    }
    TB_TRY(tb_grad_clip_accumulate(c, tb_graph_backend(g), grads, count));
    p->clip_sumsq = &c->acc;
    p->clip_max_norm = c->max_norm;
    return TB_OK;
}
