/* PENDING: being implemented. */
#include "kernels/cpu/cpu_ops.h"
#include "kernels/error.h"

int tb_cpu_dropout_forward(tb_backend *be, tb_tensor *y, tb_tensor *mask, const tb_tensor *x, float p, uint64_t seed)
{
    (void)be;
    (void)y;
    (void)mask;
    (void)x;
    (void)p;
    (void)seed;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu dropout_forward: not implemented yet");
}

int tb_cpu_dropout_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *mask, float p)
{
    (void)be;
    (void)dx;
    (void)dy;
    (void)mask;
    (void)p;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu dropout_backward: not implemented yet");
}
