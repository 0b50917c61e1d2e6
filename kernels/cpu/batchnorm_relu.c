/* Fused batch norm + add + ReLU: y = relu(BN(x) + z), z optional.
 *
 * The loops are batchnorm.c's with an epilogue (tb_cpu_bn_*): the forward
 * adds z and clamps in the pass that writes y; the backward gates dy by
 * y > 0 as it loads it, adds the gated dy to dz and runs BN's backward on
 * it. In f32 the results are bit for bit those of batchnorm, add and relu
 * run one after the other; the saving is the passes over memory (and the
 * intermediate tensors) of the two ops it absorbs. The CPU needs no reserve
 * space: y is the ReLU's gate. */
#include "kernels/cpu/cpu_ops.h"
#include "kernels/error.h"

int tb_cpu_batchnorm_relu_forward_train(tb_backend *be, tb_tensor *y, tb_tensor *save_mean, tb_tensor *save_invstd,
                                        tb_tensor *running_mean, tb_tensor *running_var, tb_tensor *reserve,
                                        const tb_tensor *x, const tb_tensor *z, const tb_tensor *gamma,
                                        const tb_tensor *beta, float momentum, float eps)
{
    (void)reserve;
    tb_cpu_bn_epilogue ep = {z, true};
    return tb_cpu_bn_forward_train(be, y, save_mean, save_invstd, running_mean, running_var, x, gamma, beta,
                                   momentum, eps, ep);
}

int tb_cpu_batchnorm_relu_forward_eval(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *z,
                                       const tb_tensor *gamma, const tb_tensor *beta,
                                       const tb_tensor *running_mean, const tb_tensor *running_var, float eps)
{
    tb_cpu_bn_epilogue ep = {z, true};
    return tb_cpu_bn_forward_eval(be, y, x, gamma, beta, running_mean, running_var, eps, ep);
}

int tb_cpu_batchnorm_relu_backward(tb_backend *be, tb_tensor *dx, tb_tensor *dz, tb_tensor *dgamma,
                                   tb_tensor *dbeta, tb_tensor *reserve, const tb_tensor *dy, const tb_tensor *x,
                                   const tb_tensor *y, const tb_tensor *gamma, const tb_tensor *beta,
                                   const tb_tensor *save_mean, const tb_tensor *save_invstd, bool add,
                                   bool dz_write)
{
    (void)reserve;
    (void)beta;
    (void)add;
    return tb_cpu_bn_backward(be, dx, dz, dgamma, dbeta, dy, y, x, gamma, save_mean, save_invstd, dz_write);
}
