/* PENDING: being implemented. */
#include "kernels/cpu/cpu_ops.h"
#include "kernels/error.h"

int tb_cpu_sgd_step(tb_backend *be, tb_tensor *master, tb_tensor *model, tb_tensor *momentum_buf, const tb_tensor *grad, const tb_tensor *decay_mask, const tb_tensor *skip, const tb_sgd_params *p)
{
    (void)be;
    (void)master;
    (void)model;
    (void)momentum_buf;
    (void)grad;
    (void)decay_mask;
    (void)skip;
    (void)p;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu sgd_step: not implemented yet");
}
