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
 * CUDA_CHECK_FOR / CUDA_CHECK_WAIT add what the call was for (host-side calls
 * outside an op: copies, waits, graph capture); the *_CHECK_RELEASE macros
 * report a failed free or destroy on stderr instead of returning it.
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

/* backend_cuda.cu: records a failed CUDA call together with what it was for,
 *   "<what>: <call>: <error name> (<error string>) at <file>:<line><note>"
 * (what: printf-style; note: "" or a hint starting with "; "), and returns
 * TB_ERR_BACKEND. */
int tb_cuda_call_failed(cudaError_t err, const char *call, const char *file, int line, const char *note,
                        const char *what_fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 6, 7)))
#endif
    ;

/* backend_cuda.cu: release paths (free, destroy) have no error path, so a
 * failed release is written to stderr, one line, and the release goes on:
 *   "trickbench: cuda: <call>: <error> at <file>:<line> (ignored: ...)"
 * tb_cuda_release_message formats that line (no newline) into buf and
 * returns what snprintf returns. */
void tb_cuda_release_failed(const char *call, const char *error, const char *file, int line);
int tb_cuda_release_message(char *buf, size_t size, const char *call, const char *error, const char *file,
                            int line);
/* backend_cuda.cu: "trickbench: cuda: <message>" and a newline on stderr, for
 * what the caller should know but that is no error (a slower fallback). */
void tb_cuda_note(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

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

/* CUDA_CHECK naming what the call was for (printf-style arguments), e.g.
 *   download of 12 bytes: cudaMemcpyAsync: cudaErrorInvalidValue (...) at <file>:<line> */
#define CUDA_CHECK_FOR(expr, ...)                                                             \
    do {                                                                                      \
        cudaError_t tb_cuda_err_ = (expr);                                                    \
        if (tb_cuda_err_ != cudaSuccess)                                                      \
            return tb_cuda_call_failed(tb_cuda_err_, #expr, __FILE__, __LINE__, "", __VA_ARGS__); \
    } while (0)

/* The same for a wait on a stream (synchronize, download): a kernel's fault
 * is reported by the next wait, so the message says where it may come from. */
#define TB_CUDA_WAIT_NOTE                                                                     \
    "; a failure here may come from any kernel or copy queued earlier on the stream, not "    \
    "from this call (CUDA_LAUNCH_BLOCKING=1 reports it at its launch)"
#define CUDA_CHECK_WAIT(expr, ...)                                                            \
    do {                                                                                      \
        cudaError_t tb_cuda_err_ = (expr);                                                    \
        if (tb_cuda_err_ != cudaSuccess)                                                      \
            return tb_cuda_call_failed(tb_cuda_err_, #expr, __FILE__, __LINE__, TB_CUDA_WAIT_NOTE, \
                                       __VA_ARGS__);                                          \
    } while (0)

/* Release calls (free, destroy): a failure is reported on stderr and the
 * release goes on (tb_cuda_release_failed). The CUDA variant clears the
 * runtime's last error, so that the next launch check does not blame its
 * kernel for it. */
#define CUDA_CHECK_RELEASE(expr)                                                              \
    do {                                                                                      \
        cudaError_t tb_cuda_err_ = (expr);                                                    \
        if (tb_cuda_err_ != cudaSuccess) {                                                    \
            (void)cudaGetLastError(); /* returns the error being cleared */                   \
            tb_cuda_release_failed(#expr, cudaGetErrorName(tb_cuda_err_), __FILE__, __LINE__); \
        }                                                                                     \
    } while (0)

#define CUDNN_CHECK_RELEASE(expr)                                                             \
    do {                                                                                      \
        cudnnStatus_t tb_cudnn_st_ = (expr);                                                  \
        if (tb_cudnn_st_ != CUDNN_STATUS_SUCCESS)                                             \
            tb_cuda_release_failed(#expr, cudnnGetErrorString(tb_cudnn_st_), __FILE__, __LINE__); \
    } while (0)

#define CUBLAS_CHECK_RELEASE(expr)                                                            \
    do {                                                                                      \
        cublasStatus_t tb_cublas_st_ = (expr);                                                \
        if (tb_cublas_st_ != CUBLAS_STATUS_SUCCESS)                                           \
            tb_cuda_release_failed(#expr, tb_cublas_status_string(tb_cublas_st_), __FILE__, __LINE__); \
    } while (0)

/* Ends every launcher: reports a bad launch configuration or a missing kernel image. */
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())

/* Prepends "cuda <op> (<name> <shape>, ...)" to the message of a failed op and
 * returns rc. Tensors may be NULL (absent optional arguments are skipped). */
int tb_cuda_op_failed(int rc, const char *op, const char *n0, const tb_tensor *t0, const char *n1,
                      const tb_tensor *t1, const char *n2, const tb_tensor *t2, const char *n3,
                      const tb_tensor *t3);

#endif
