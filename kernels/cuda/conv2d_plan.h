/* Convolution plans: cuDNN descriptors and the algorithm of each direction,
 * chosen once per (shapes, parameters, dtype, options) and cached in the
 * backend context (C++ only). */
#ifndef TB_CUDA_CONV2D_PLAN_H
#define TB_CUDA_CONV2D_PLAN_H

#include "kernels/cuda/cuda_context.h"

typedef struct tb_cuda_conv_key {
    int64_t n, h, w, c, k, r, s, oh, ow;
    int32_t stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups;
    int32_t dtype, tf32, deterministic;
} tb_cuda_conv_key;

typedef struct tb_cuda_conv_plan {
    tb_cuda_conv_key key;
    cudnnTensorDescriptor_t x_desc, y_desc, bias_desc;
    cudnnFilterDescriptor_t w_desc;
    cudnnConvolutionDescriptor_t conv_desc;
    cudnnConvolutionFwdAlgo_t fwd_algo;
    cudnnConvolutionBwdDataAlgo_t bwd_data_algo;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter_algo;
    cudnnMathType_t fwd_math, bwd_data_math, bwd_filter_math;
    size_t fwd_ws, bwd_data_ws, bwd_filter_ws;
    bool searched; /* algorithms timed on the device (cudnnFind*Ex), not heuristic */
    /* Not TB_OK: planning these shapes at graph build (search) failed, and
     * the plan only records that: every later use reports the failure (with
     * this message) instead of planning again inside a step.
     * tb_cuda_conv_plans_clear forgets it. */
    int failed;
    char failure[512];
} tb_cuda_conv_plan;

/* Finds the cached plan for these shapes, or makes one. search=true (the
 * workspace query at graph build) may time algorithms on the device with up
 * to the options' workspace limit; search=false (an op met a shape nobody
 * planned) takes cuDNN's heuristic choice within the reserved workspace.
 * A failure with search=true is cached too: the same shapes fail again,
 * with the message of that failure, until the options change. */
int tb_cuda_conv_plan_get(tb_backend *be, const tb_tensor *y, const tb_tensor *x, const tb_tensor *w,
                          const tb_conv2d_params *p, bool search, tb_cuda_conv_plan **out);

#endif
