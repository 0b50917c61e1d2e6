/* PENDING: being implemented. */
#include "kernels/cpu/cpu_ops.h"
#include "kernels/error.h"

int tb_cpu_global_avgpool_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x)
{
    (void)be;
    (void)y;
    (void)x;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu global_avgpool_forward: not implemented yet");
}

int tb_cpu_global_avgpool_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy)
{
    (void)be;
    (void)dx;
    (void)dy;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu global_avgpool_backward: not implemented yet");
}
