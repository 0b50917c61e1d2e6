/* PENDING: op front-ends without validation yet. */
#include "kernels/backend.h"
#include "kernels/error.h"
#include "kernels/ops.h"

int tb_conv2d_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *w, const tb_tensor *bias, const tb_conv2d_params *p)
{
    if (!be->iface.conv2d_forward)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_CONV2D_FORWARD), be->name);
    return be->iface.conv2d_forward(be, y, x, w, bias, p);
}

int tb_conv2d_backward_data(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *w, const tb_conv2d_params *p)
{
    if (!be->iface.conv2d_backward_data)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_CONV2D_BACKWARD_DATA), be->name);
    return be->iface.conv2d_backward_data(be, dx, dy, w, p);
}

int tb_conv2d_backward_filter(tb_backend *be, tb_tensor *dw, tb_tensor *dbias, const tb_tensor *dy, const tb_tensor *x, const tb_conv2d_params *p)
{
    if (!be->iface.conv2d_backward_filter)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(TB_OP_CONV2D_BACKWARD_FILTER), be->name);
    return be->iface.conv2d_backward_filter(be, dw, dbias, dy, x, p);
}

size_t tb_conv2d_workspace_size(tb_backend *be, const tb_tensor *y, const tb_tensor *x, const tb_tensor *w, const tb_conv2d_params *p)
{
    if (!be->iface.conv2d_workspace_size)
        return 0;
    return be->iface.conv2d_workspace_size(be, y, x, w, p);
}

int64_t tb_conv2d_out_size(int64_t in, int kernel, int stride, int pad, int dil)
{
    if (stride <= 0 || dil <= 0 || kernel <= 0)
        return 0;
    return (in + 2 * pad - dil * (kernel - 1) - 1) / stride + 1;
}
