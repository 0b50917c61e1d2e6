/* Private state of a CUDA backend and helpers shared by the .cu files
 * (C++ only; the public C interface is kernels/cuda/cuda_ops.h). */
#ifndef TB_CUDA_CONTEXT_H
#define TB_CUDA_CONTEXT_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "kernels/backend.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"

struct tb_cuda_conv_plan; /* conv2d_plan.cu */

/* Most convolution shapes one backend remembers (ResNet-50 has about 25). */
#define TB_CUDA_MAX_CONV_PLANS 1024
/* f32 elements of the reduction scratch buffer: per-block partial sums
 * (and the cross-entropy's per-block counts), and BatchNorm's discarded
 * parameter gradients. */
#define TB_CUDA_REDUCE_ELEMS (1u << 20)
/* Blocks of the first pass of a two-pass reduction (fits the scratch). */
#define TB_CUDA_REDUCE_BLOCKS 1024
/* cuBLAS's own workspace, given to it so it never allocates inside a step
 * (NVIDIA recommends 32 MiB on Hopper). */
#define TB_CUDA_CUBLAS_WORKSPACE (32u << 20)

typedef struct tb_cuda_ctx {
    int device;
    int cc_major, cc_minor;
    int sm_count;
    cudaStream_t stream;
    cudaStream_t copy_stream;           /* the next batch's upload (tb_upload_next) */
    cudaEvent_t consumed, uploaded;     /* stream -> copy_stream, copy_stream -> stream */
    cudnnHandle_t cudnn;
    cublasHandle_t cublas;
    void *cublas_workspace;
    float *reduce;                      /* TB_CUDA_REDUCE_ELEMS f32 */
    cudnnTensorDescriptor_t bn_x_desc;  /* re-set by every BatchNorm call */
    cudnnTensorDescriptor_t bn_param_desc;
    cudnnActivationDescriptor_t relu_desc; /* the fused BatchNorm's ReLU */
    tb_cuda_options opt;
    struct tb_cuda_conv_plan *plans[TB_CUDA_MAX_CONV_PLANS];
    int n_plans;
} tb_cuda_ctx;

static inline tb_cuda_ctx *tb_cuda_ctx_of(tb_backend *be) { return (tb_cuda_ctx *)be->ctx; }

/* cuDNN / CUDA data type of a tensor dtype (floats only for cuDNN). */
int tb_cudnn_dtype(tb_dtype dt, cudnnDataType_t *out);
int tb_cuda_dtype(tb_dtype dt, cudaDataType_t *out);

/* batchnorm.cu: the two BatchNorm descriptors set for x in `mode` (*c
 * receives the channels). */
int tb_cuda_bn_describe(tb_cuda_ctx *ctx, const tb_tensor *x, cudnnBatchNormMode_t mode, int64_t *c);
/* Where cuDNN's BatchNorm backward writes the parameter gradients: dgamma's
 * and dbeta's data, or for an absent one (frozen) the zeroed reduction
 * scratch, whose contents are dropped (cuDNN always writes both). */
int tb_cuda_bn_param_grads(tb_cuda_ctx *ctx, int64_t c, tb_tensor *dgamma, tb_tensor *dbeta, void **dg, void **db);

/* conv2d_plan.cu: releases every cached plan (options changed, backend destroyed). */
void tb_cuda_conv_plans_clear(tb_cuda_ctx *ctx);

/* reduce.cu: shared launchers.
 * out[j] += sum over rows of x[i, j] (x {rows, cols} of dtype dt, out of dtype
 * out_dt): conv and linear bias gradients. Deterministic (fixed order). */
int tb_cuda_column_sum_acc(tb_cuda_ctx *ctx, void *out, tb_dtype out_dt, const void *x, tb_dtype dt,
                           int64_t rows, int64_t cols);
/* y[i, j] = bias[j] (broadcast over rows), or y[i, j] += bias[j] when accumulate. */
int tb_cuda_bias_broadcast(tb_cuda_ctx *ctx, void *y, const void *bias, tb_dtype dt, int64_t rows,
                           int64_t cols, bool accumulate);
/* out[0] = scale * sum of in[0..n) (f32), in one block, in a fixed order. */
int tb_cuda_sum_f32(tb_cuda_ctx *ctx, float *out, const float *in, int64_t n, float scale, bool accumulate);
/* Row chunks of a two-pass column reduction over {rows, cols} with blocks of
 * 32 columns: enough blocks to fill the GPU, at least 64 rows a chunk, and
 * chunks * per_chunk partials within the reduction scratch (per_chunk: the
 * partials one chunk writes), at most 65535 (gridDim.y). */
int64_t tb_cuda_column_chunks(const tb_cuda_ctx *ctx, int64_t rows, int64_t cols, int64_t per_chunk);

#endif
