/* PENDING: op front-ends without validation yet. */
#include "kernels/backend.h"
#include "kernels/error.h"
#include "kernels/ops.h"

int tb_batchnorm_forward_train(tb_backend *be, tb_tensor *y, tb_tensor *save_mean, tb_tensor *save_invstd, tb_tensor *running_mean, tb_tensor *running_var, const tb_tensor *x, const tb_tensor *gamma, const tb_tensor *beta, float momentum, float eps)
{
    if (!be->iface.batchnorm_forward_train)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_BATCHNORM_FORWARD_TRAIN), be->name);
    return be->iface.batchnorm_forward_train(be, y, save_mean, save_invstd, running_mean, running_var, x, gamma, beta, momentum, eps);
}

int tb_batchnorm_forward_eval(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *gamma, const tb_tensor *beta, const tb_tensor *running_mean, const tb_tensor *running_var, float eps)
{
    if (!be->iface.batchnorm_forward_eval)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_BATCHNORM_FORWARD_EVAL), be->name);
    return be->iface.batchnorm_forward_eval(be, y, x, gamma, beta, running_mean, running_var, eps);
}

int tb_batchnorm_backward(tb_backend *be, tb_tensor *dx, tb_tensor *dgamma, tb_tensor *dbeta, const tb_tensor *dy, const tb_tensor *x, const tb_tensor *gamma, const tb_tensor *save_mean, const tb_tensor *save_invstd)
{
    if (!be->iface.batchnorm_backward)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_BATCHNORM_BACKWARD), be->name);
    return be->iface.batchnorm_backward(be, dx, dgamma, dbeta, dy, x, gamma, save_mean, save_invstd);
}

int tb_relu_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x)
{
    if (!be->iface.relu_forward)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_RELU_FORWARD), be->name);
    return be->iface.relu_forward(be, y, x);
}

int tb_relu_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *y)
{
    if (!be->iface.relu_backward)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_RELU_BACKWARD), be->name);
    return be->iface.relu_backward(be, dx, dy, y);
}

int tb_maxpool_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_pool_params *p)
{
    if (!be->iface.maxpool_forward)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_MAXPOOL_FORWARD), be->name);
    return be->iface.maxpool_forward(be, y, x, p);
}

int tb_maxpool_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *y, const tb_tensor *x, const tb_pool_params *p)
{
    if (!be->iface.maxpool_backward)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_MAXPOOL_BACKWARD), be->name);
    return be->iface.maxpool_backward(be, dx, dy, y, x, p);
}

int tb_avgpool_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_pool_params *p)
{
    if (!be->iface.avgpool_forward)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_AVGPOOL_FORWARD), be->name);
    return be->iface.avgpool_forward(be, y, x, p);
}

int tb_avgpool_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_pool_params *p)
{
    if (!be->iface.avgpool_backward)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_AVGPOOL_BACKWARD), be->name);
    return be->iface.avgpool_backward(be, dx, dy, p);
}

int tb_global_avgpool_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x)
{
    if (!be->iface.global_avgpool_forward)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_GLOBAL_AVGPOOL_FORWARD), be->name);
    return be->iface.global_avgpool_forward(be, y, x);
}

int tb_global_avgpool_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy)
{
    if (!be->iface.global_avgpool_backward)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_GLOBAL_AVGPOOL_BACKWARD), be->name);
    return be->iface.global_avgpool_backward(be, dx, dy);
}

int tb_linear_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *w, const tb_tensor *bias)
{
    if (!be->iface.linear_forward)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_LINEAR_FORWARD), be->name);
    return be->iface.linear_forward(be, y, x, w, bias);
}

int tb_linear_backward(tb_backend *be, tb_tensor *dx, tb_tensor *dw, tb_tensor *dbias, const tb_tensor *dy, const tb_tensor *x, const tb_tensor *w)
{
    if (!be->iface.linear_backward)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_LINEAR_BACKWARD), be->name);
    return be->iface.linear_backward(be, dx, dw, dbias, dy, x, w);
}

int tb_add_forward(tb_backend *be, tb_tensor *y, const tb_tensor *a, const tb_tensor *b)
{
    if (!be->iface.add_forward)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_ADD_FORWARD), be->name);
    return be->iface.add_forward(be, y, a, b);
}

int tb_add_backward(tb_backend *be, tb_tensor *da, tb_tensor *db, const tb_tensor *dy)
{
    if (!be->iface.add_backward)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_ADD_BACKWARD), be->name);
    return be->iface.add_backward(be, da, db, dy);
}

int tb_concat_forward(tb_backend *be, tb_tensor *y, const tb_tensor *const *xs, int count)
{
    if (!be->iface.concat_forward)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_CONCAT_FORWARD), be->name);
    return be->iface.concat_forward(be, y, xs, count);
}

int tb_concat_backward(tb_backend *be, tb_tensor *const *dxs, int count, const tb_tensor *dy)
{
    if (!be->iface.concat_backward)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_CONCAT_BACKWARD), be->name);
    return be->iface.concat_backward(be, dxs, count, dy);
}

int tb_dropout_forward(tb_backend *be, tb_tensor *y, tb_tensor *mask, const tb_tensor *x, float p, uint64_t seed)
{
    if (!be->iface.dropout_forward)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_DROPOUT_FORWARD), be->name);
    return be->iface.dropout_forward(be, y, mask, x, p, seed);
}

int tb_dropout_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *mask, float p)
{
    if (!be->iface.dropout_backward)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_DROPOUT_BACKWARD), be->name);
    return be->iface.dropout_backward(be, dx, dy, mask, p);
}

int tb_softmax_ce_forward(tb_backend *be, tb_tensor *loss, tb_tensor *probs, const tb_tensor *logits, const tb_tensor *labels, const tb_tensor *targets, float temperature)
{
    if (!be->iface.softmax_ce_forward)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_SOFTMAX_CE_FORWARD), be->name);
    return be->iface.softmax_ce_forward(be, loss, probs, logits, labels, targets, temperature);
}

int tb_softmax_ce_backward(tb_backend *be, tb_tensor *dlogits, const tb_tensor *probs, const tb_tensor *labels, const tb_tensor *targets, float temperature, float scale)
{
    if (!be->iface.softmax_ce_backward)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_SOFTMAX_CE_BACKWARD), be->name);
    return be->iface.softmax_ce_backward(be, dlogits, probs, labels, targets, temperature, scale);
}

int tb_soft_targets(tb_backend *be, tb_tensor *targets, const tb_tensor *labels_a, const tb_tensor *labels_b, float lam, float eps)
{
    if (!be->iface.soft_targets)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_SOFT_TARGETS), be->name);
    return be->iface.soft_targets(be, targets, labels_a, labels_b, lam, eps);
}

int tb_softmax(tb_backend *be, tb_tensor *probs, const tb_tensor *logits, float temperature)
{
    if (!be->iface.softmax)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_SOFTMAX), be->name);
    return be->iface.softmax(be, probs, logits, temperature);
}

int tb_mixup_batch(tb_backend *be, tb_tensor *y, const tb_tensor *x, float lam)
{
    if (!be->iface.mixup_batch)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_MIXUP_BATCH), be->name);
    return be->iface.mixup_batch(be, y, x, lam);
}

int tb_cutmix_batch(tb_backend *be, tb_tensor *y, const tb_tensor *x, int y0, int y1, int x0, int x1)
{
    if (!be->iface.cutmix_batch)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_CUTMIX_BATCH), be->name);
    return be->iface.cutmix_batch(be, y, x, y0, y1, x0, x1);
}

int tb_reverse_labels(tb_backend *be, tb_tensor *labels_b, const tb_tensor *labels)
{
    if (!be->iface.reverse_labels)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_REVERSE_LABELS), be->name);
    return be->iface.reverse_labels(be, labels_b, labels);
}

int tb_fill(tb_backend *be, tb_tensor *t, float value)
{
    if (!be->iface.fill)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_FILL), be->name);
    return be->iface.fill(be, t, value);
}

int tb_copy(tb_backend *be, tb_tensor *dst, const tb_tensor *src)
{
    if (!be->iface.copy)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_COPY), be->name);
    return be->iface.copy(be, dst, src);
}

int tb_convert(tb_backend *be, tb_tensor *dst, const tb_tensor *src)
{
    if (!be->iface.convert)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_CONVERT), be->name);
    return be->iface.convert(be, dst, src);
}

int tb_axpby(tb_backend *be, tb_tensor *y, float alpha, const tb_tensor *x, float beta)
{
    if (!be->iface.axpby)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_AXPBY), be->name);
    return be->iface.axpby(be, y, alpha, x, beta);
}

int tb_nonfinite_check(tb_backend *be, tb_tensor *flag, const tb_tensor *x)
{
    if (!be->iface.nonfinite_check)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_NONFINITE_CHECK), be->name);
    return be->iface.nonfinite_check(be, flag, x);
}

int tb_sumsq(tb_backend *be, tb_tensor *out, const tb_tensor *x)
{
    if (!be->iface.sumsq)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_SUMSQ), be->name);
    return be->iface.sumsq(be, out, x);
}

int tb_sgd_step(tb_backend *be, tb_tensor *master, tb_tensor *model, tb_tensor *momentum_buf, const tb_tensor *grad, const tb_tensor *decay_mask, const tb_tensor *skip, const tb_sgd_params *p)
{
    if (!be->iface.sgd_step)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_SGD_STEP), be->name);
    return be->iface.sgd_step(be, master, model, momentum_buf, grad, decay_mask, skip, p);
}

int64_t tb_pool_out_size(int64_t in, int kernel, int stride, int pad, bool ceil_mode)
{
    (void)in; (void)kernel; (void)stride; (void)pad; (void)ceil_mode;
    return 0;
}
