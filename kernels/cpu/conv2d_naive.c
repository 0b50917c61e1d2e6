/* PENDING: being implemented. */
#include "kernels/cpu/cpu_ops.h"
#include "kernels/error.h"

int tb_cpu_conv2d_forward_naive(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *w, const tb_tensor *bias, const tb_conv2d_params *p)
{
    (void)be;
    (void)y;
    (void)x;
    (void)w;
    (void)bias;
    (void)p;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu conv2d_forward_naive: not implemented yet");
}

int tb_cpu_conv2d_backward_data_naive(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *w, const tb_conv2d_params *p)
{
    (void)be;
    (void)dx;
    (void)dy;
    (void)w;
    (void)p;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu conv2d_backward_data_naive: not implemented yet");
}

int tb_cpu_conv2d_backward_filter_naive(tb_backend *be, tb_tensor *dw, tb_tensor *dbias, const tb_tensor *dy, const tb_tensor *x, const tb_conv2d_params *p)
{
    (void)be;
    (void)dw;
    (void)dbias;
    (void)dy;
    (void)x;
    (void)p;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu conv2d_backward_filter_naive: not implemented yet");
}
