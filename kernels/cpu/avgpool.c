/* PENDING: being implemented. */
#include "kernels/cpu/cpu_ops.h"
#include "kernels/error.h"

int tb_cpu_avgpool_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_pool_params *p)
{
    (void)be;
    (void)y;
    (void)x;
    (void)p;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu avgpool_forward: not implemented yet");
}

int tb_cpu_avgpool_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_pool_params *p)
{
    (void)be;
    (void)dx;
    (void)dy;
    (void)p;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu avgpool_backward: not implemented yet");
}
