/* PENDING: being implemented. */
#include "kernels/cpu/cpu_ops.h"
#include "kernels/error.h"

int tb_cpu_batchnorm_forward_train(tb_backend *be, tb_tensor *y, tb_tensor *save_mean, tb_tensor *save_invstd, tb_tensor *running_mean, tb_tensor *running_var, const tb_tensor *x, const tb_tensor *gamma, const tb_tensor *beta, float momentum, float eps)
{
    (void)be;
    (void)y;
    (void)save_mean;
    (void)save_invstd;
    (void)running_mean;
    (void)running_var;
    (void)x;
    (void)gamma;
    (void)beta;
    (void)momentum;
    (void)eps;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu batchnorm_forward_train: not implemented yet");
}

int tb_cpu_batchnorm_forward_eval(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *gamma, const tb_tensor *beta, const tb_tensor *running_mean, const tb_tensor *running_var, float eps)
{
    (void)be;
    (void)y;
    (void)x;
    (void)gamma;
    (void)beta;
    (void)running_mean;
    (void)running_var;
    (void)eps;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu batchnorm_forward_eval: not implemented yet");
}

int tb_cpu_batchnorm_backward(tb_backend *be, tb_tensor *dx, tb_tensor *dgamma, tb_tensor *dbeta, const tb_tensor *dy, const tb_tensor *x, const tb_tensor *gamma, const tb_tensor *save_mean, const tb_tensor *save_invstd)
{
    (void)be;
    (void)dx;
    (void)dgamma;
    (void)dbeta;
    (void)dy;
    (void)x;
    (void)gamma;
    (void)save_mean;
    (void)save_invstd;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu batchnorm_backward: not implemented yet");
}
