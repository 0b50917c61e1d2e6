/* PENDING: being implemented. */
#include "kernels/cpu/cpu_ops.h"
#include "kernels/error.h"

int tb_cpu_fill(tb_backend *be, tb_tensor *t, float value)
{
    (void)be;
    (void)t;
    (void)value;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu fill: not implemented yet");
}

int tb_cpu_copy(tb_backend *be, tb_tensor *dst, const tb_tensor *src)
{
    (void)be;
    (void)dst;
    (void)src;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu copy: not implemented yet");
}

int tb_cpu_convert(tb_backend *be, tb_tensor *dst, const tb_tensor *src)
{
    (void)be;
    (void)dst;
    (void)src;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu convert: not implemented yet");
}

int tb_cpu_axpby(tb_backend *be, tb_tensor *y, float alpha, const tb_tensor *x, float beta)
{
    (void)be;
    (void)y;
    (void)alpha;
    (void)x;
    (void)beta;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu axpby: not implemented yet");
}

int tb_cpu_nonfinite_check(tb_backend *be, tb_tensor *flag, const tb_tensor *x)
{
    (void)be;
    (void)flag;
    (void)x;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu nonfinite_check: not implemented yet");
}

int tb_cpu_sumsq(tb_backend *be, tb_tensor *out, const tb_tensor *x)
{
    (void)be;
    (void)out;
    (void)x;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu sumsq: not implemented yet");
}
