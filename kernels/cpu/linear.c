/* PENDING: being implemented. */
#include "kernels/cpu/cpu_ops.h"
#include "kernels/error.h"

int tb_cpu_linear_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *w, const tb_tensor *bias)
{
    (void)be;
    (void)y;
    (void)x;
    (void)w;
    (void)bias;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu linear_forward: not implemented yet");
}

int tb_cpu_linear_backward(tb_backend *be, tb_tensor *dx, tb_tensor *dw, tb_tensor *dbias, const tb_tensor *dy, const tb_tensor *x, const tb_tensor *w)
{
    (void)be;
    (void)dx;
    (void)dw;
    (void)dbias;
    (void)dy;
    (void)x;
    (void)w;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu linear_backward: not implemented yet");
}

int tb_cpu_linear_forward_naive(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *w, const tb_tensor *bias)
{
    (void)be;
    (void)y;
    (void)x;
    (void)w;
    (void)bias;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu linear_forward_naive: not implemented yet");
}

int tb_cpu_linear_backward_naive(tb_backend *be, tb_tensor *dx, tb_tensor *dw, tb_tensor *dbias, const tb_tensor *dy, const tb_tensor *x, const tb_tensor *w)
{
    (void)be;
    (void)dx;
    (void)dw;
    (void)dbias;
    (void)dy;
    (void)x;
    (void)w;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu linear_backward_naive: not implemented yet");
}
