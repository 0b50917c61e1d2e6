/* PENDING: being implemented. */
#include "kernels/cpu/cpu_ops.h"
#include "kernels/error.h"

int tb_cpu_concat_forward(tb_backend *be, tb_tensor *y, const tb_tensor *const *xs, int count)
{
    (void)be;
    (void)y;
    (void)xs;
    (void)count;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu concat_forward: not implemented yet");
}

int tb_cpu_concat_backward(tb_backend *be, tb_tensor *const *dxs, int count, const tb_tensor *dy)
{
    (void)be;
    (void)dxs;
    (void)count;
    (void)dy;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu concat_backward: not implemented yet");
}
