/* PENDING: being implemented. */
#include "kernels/cpu/cpu_ops.h"
#include "kernels/error.h"

int tb_cpu_relu_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x)
{
    (void)be;
    (void)y;
    (void)x;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu relu_forward: not implemented yet");
}

int tb_cpu_relu_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *y)
{
    (void)be;
    (void)dx;
    (void)dy;
    (void)y;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu relu_backward: not implemented yet");
}
