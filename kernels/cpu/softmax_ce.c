/* PENDING: being implemented. */
#include "kernels/cpu/cpu_ops.h"
#include "kernels/error.h"

int tb_cpu_softmax_ce_forward(tb_backend *be, tb_tensor *loss, tb_tensor *probs, const tb_tensor *logits, const tb_tensor *labels, const tb_tensor *targets, float temperature)
{
    (void)be;
    (void)loss;
    (void)probs;
    (void)logits;
    (void)labels;
    (void)targets;
    (void)temperature;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu softmax_ce_forward: not implemented yet");
}

int tb_cpu_softmax_ce_backward(tb_backend *be, tb_tensor *dlogits, const tb_tensor *probs, const tb_tensor *labels, const tb_tensor *targets, float temperature, float scale)
{
    (void)be;
    (void)dlogits;
    (void)probs;
    (void)labels;
    (void)targets;
    (void)temperature;
    (void)scale;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu softmax_ce_backward: not implemented yet");
}

int tb_cpu_soft_targets(tb_backend *be, tb_tensor *targets, const tb_tensor *labels_a, const tb_tensor *labels_b, float lam, float eps)
{
    (void)be;
    (void)targets;
    (void)labels_a;
    (void)labels_b;
    (void)lam;
    (void)eps;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu soft_targets: not implemented yet");
}

int tb_cpu_softmax(tb_backend *be, tb_tensor *probs, const tb_tensor *logits, float temperature)
{
    (void)be;
    (void)probs;
    (void)logits;
    (void)temperature;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu softmax: not implemented yet");
}
