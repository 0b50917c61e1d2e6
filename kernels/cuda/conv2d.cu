/* conv2d through cuDNN: NHWC activations, KRSC (= OHWI) filters, groups via
 * the convolution descriptor. Backward passes accumulate (beta = 1). The
 * bias is added and reduced by our own kernels (kernels/cuda/reduce.cu):
 * cuDNN's bias paths do not cover every dtype we use. */
#include "kernels/cuda/conv2d_plan.h"
#include "kernels/cuda/cuda_common.cuh"

static int need_workspace(tb_backend *be, size_t bytes, const char *direction)
{
    TB_CHECK(bytes <= be->workspace_size || bytes == 0, TB_ERR_INVALID,
             "conv2d %s: its algorithm needs %zu bytes of workspace but %zu are reserved; reserve "
             "tb_conv2d_workspace_size() at graph build",
             direction, bytes, be->workspace_size);
    return TB_OK;
}

static int conv_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *w,
                        const tb_tensor *bias, const tb_conv2d_params *p)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    tb_cuda_conv_plan *pl;
    TB_TRY(tb_cuda_conv_plan_get(be, y, x, w, p, false, &pl));
    TB_TRY(need_workspace(be, pl->fwd_ws, "forward"));
    const float one = 1.0f, zero = 0.0f;
    CUDNN_CHECK(cudnnSetConvolutionMathType(pl->conv_desc, pl->fwd_math));
    CUDNN_CHECK(cudnnConvolutionForward(ctx->cudnn, &one, pl->x_desc, x->data, pl->w_desc, w->data, pl->conv_desc,
                                        pl->fwd_algo, be->workspace, pl->fwd_ws, &zero, pl->y_desc, y->data));
    if (bias && bias->data)
        TB_TRY(tb_cuda_bias_broadcast(ctx, y->data, bias->data, y->dtype, tb_numel(y) / y->shape[3], y->shape[3],
                                      true));
    return TB_OK;
}

int tb_cuda_conv2d_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *w,
                           const tb_tensor *bias, const tb_conv2d_params *p)
{
    TB_CUDA_OP_RETURN(conv_forward(be, y, x, w, bias, p), "conv2d_forward", "y", y, "x", x, "w", w, "bias", bias);
}

/* x's shape is implied by dx; dx == NULL (the network input) is a no-op. */
static int conv_backward_data(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *w,
                              const tb_conv2d_params *p)
{
    if (!dx || !dx->data)
        return TB_OK;
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    tb_cuda_conv_plan *pl;
    TB_TRY(tb_cuda_conv_plan_get(be, dy, dx, w, p, false, &pl));
    TB_TRY(need_workspace(be, pl->bwd_data_ws, "backward data"));
    const float one = 1.0f;
    CUDNN_CHECK(cudnnSetConvolutionMathType(pl->conv_desc, pl->bwd_data_math));
    CUDNN_CHECK(cudnnConvolutionBackwardData(ctx->cudnn, &one, pl->w_desc, w->data, pl->y_desc, dy->data,
                                             pl->conv_desc, pl->bwd_data_algo, be->workspace, pl->bwd_data_ws, &one,
                                             pl->x_desc, dx->data));
    return TB_OK;
}

int tb_cuda_conv2d_backward_data(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *w,
                                 const tb_conv2d_params *p)
{
    TB_CUDA_OP_RETURN(conv_backward_data(be, dx, dy, w, p), "conv2d_backward_data", "dx", dx, "dy", dy, "w", w,
                      NULL, NULL);
}

static int conv_backward_filter(tb_backend *be, tb_tensor *dw, tb_tensor *dbias, const tb_tensor *dy,
                                const tb_tensor *x, const tb_conv2d_params *p)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    if (dw && dw->data) {
        tb_cuda_conv_plan *pl;
        TB_TRY(tb_cuda_conv_plan_get(be, dy, x, dw, p, false, &pl));
        TB_TRY(need_workspace(be, pl->bwd_filter_ws, "backward filter"));
        const float one = 1.0f;
        CUDNN_CHECK(cudnnSetConvolutionMathType(pl->conv_desc, pl->bwd_filter_math));
        CUDNN_CHECK(cudnnConvolutionBackwardFilter(ctx->cudnn, &one, pl->x_desc, x->data, pl->y_desc, dy->data,
                                                   pl->conv_desc, pl->bwd_filter_algo, be->workspace,
                                                   pl->bwd_filter_ws, &one, pl->w_desc, dw->data));
    }
    if (dbias && dbias->data)
        TB_TRY(tb_cuda_column_sum_acc(ctx, dbias->data, dbias->dtype, dy->data, dy->dtype,
                                      tb_numel(dy) / dy->shape[3], dy->shape[3]));
    return TB_OK;
}

int tb_cuda_conv2d_backward_filter(tb_backend *be, tb_tensor *dw, tb_tensor *dbias, const tb_tensor *dy,
                                   const tb_tensor *x, const tb_conv2d_params *p)
{
    TB_CUDA_OP_RETURN(conv_backward_filter(be, dw, dbias, dy, x, p), "conv2d_backward_filter", "dw", dw, "dbias",
                      dbias, "dy", dy, "x", x);
}

/* Plans the three directions now and returns the largest workspace they
 * need: at graph build (plan) timing them when the options say so; before a
 * call, the cached plan or cuDNN's heuristic choice within the reserved
 * workspace (timing allocates and synchronises: never inside a step).
 * This query cannot return an error: a failure returns 0, and one at graph
 * build is recorded in the plan cache (tb_cuda_conv_plan.failed), so the op
 * reports it, with its op name and shapes, instead of planning again in a
 * step. */
size_t tb_cuda_conv2d_workspace_size(tb_backend *be, const tb_tensor *y, const tb_tensor *x, const tb_tensor *w,
                                     const tb_conv2d_params *p, bool plan)
{
    tb_cuda_conv_plan *pl;
    if (tb_cuda_conv_plan_get(be, y, x, w, p, plan, &pl) != TB_OK)
        return 0;
    size_t ws = pl->fwd_ws;
    if (pl->bwd_data_ws > ws)
        ws = pl->bwd_data_ws;
    if (pl->bwd_filter_ws > ws)
        ws = pl->bwd_filter_ws;
    return ws;
}
