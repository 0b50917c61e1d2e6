/* Checked CUDA, cuDNN and cuBLAS calls (STYLE.md, rule 6).
 *
 * Each macro evaluates a library call and, on failure, records
 * "<call>: <library error> at <file>:<line>" with tb_fail(TB_ERR_BACKEND) and
 * returns that status from the enclosing function. The op entry points wrap
 * their implementation and prepend the op name and the tensor shapes
 * (tb_cuda_op_failed), so a failure reads
 *   cuda conv2d_forward (y [8,28,28,16] f16, ...): cudnnConvolutionForward:
 *   CUDNN_STATUS_BAD_PARAM at kernels/cuda/conv2d.cu:120
 * Only the name of the called function is printed, not its argument list.
 */
#ifndef TB_CUDA_CHECK_H
#define TB_CUDA_CHECK_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "kernels/error.h"
#include "kernels/tensor.h"

/* Length of the function name at the start of a stringified call. */
int tb_cuda_call_name_len(const char *call);
const char *tb_cublas_status_string(cublasStatus_t st);

#define CUDA_CHECK(expr)                                                                      \
    do {                                                                                      \
        cudaError_t tb_cuda_err_ = (expr);                                                    \
        if (tb_cuda_err_ != cudaSuccess)                                                      \
            return tb_fail(TB_ERR_BACKEND, "%.*s: %s (%s) at %s:%d", tb_cuda_call_name_len(#expr), \
                           #expr, cudaGetErrorName(tb_cuda_err_), cudaGetErrorString(tb_cuda_err_), \
                           __FILE__, __LINE__);                                               \
    } while (0)

#define CUDNN_CHECK(expr)                                                                     \
    do {                                                                                      \
        cudnnStatus_t tb_cudnn_st_ = (expr);                                                  \
        if (tb_cudnn_st_ != CUDNN_STATUS_SUCCESS)                                             \
            return tb_fail(TB_ERR_BACKEND, "%.*s: %s at %s:%d", tb_cuda_call_name_len(#expr), #expr, \
                           cudnnGetErrorString(tb_cudnn_st_), __FILE__, __LINE__);            \
    } while (0)

#define CUBLAS_CHECK(expr)                                                                    \
    do {                                                                                      \
        cublasStatus_t tb_cublas_st_ = (expr);                                                \
        if (tb_cublas_st_ != CUBLAS_STATUS_SUCCESS)                                           \
            return tb_fail(TB_ERR_BACKEND, "%.*s: %s at %s:%d", tb_cuda_call_name_len(#expr), #expr, \
                           tb_cublas_status_string(tb_cublas_st_), __FILE__, __LINE__);       \
    } while (0)

/* Ends every launcher: reports a bad launch configuration or a missing kernel image. */
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())

/* Prepends "cuda <op> (<name> <shape>, ...)" to the message of a failed op and
 * returns rc. Tensors may be NULL (absent optional arguments are skipped). */
int tb_cuda_op_failed(int rc, const char *op, const char *n0, const tb_tensor *t0, const char *n1,
                      const tb_tensor *t1, const char *n2, const tb_tensor *t2, const char *n3,
                      const tb_tensor *t3);

#endif
