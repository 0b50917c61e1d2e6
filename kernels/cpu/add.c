/* PENDING: being implemented. */
#include "kernels/cpu/cpu_ops.h"
#include "kernels/error.h"

int tb_cpu_add_forward(tb_backend *be, tb_tensor *y, const tb_tensor *a, const tb_tensor *b)
{
    (void)be;
    (void)y;
    (void)a;
    (void)b;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu add_forward: not implemented yet");
}

int tb_cpu_add_backward(tb_backend *be, tb_tensor *da, tb_tensor *db, const tb_tensor *dy)
{
    (void)be;
    (void)da;
    (void)db;
    (void)dy;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu add_backward: not implemented yet");
}
