/* Single-precision GEMM for the CPU kernels: oneDNN's sgemm (see gemm.c). */
#ifndef TB_CPU_GEMM_H
#define TB_CPU_GEMM_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The first failed GEMM of a parallel loop, kept for the caller to report
 * on its own thread (error messages are thread-local). */
typedef struct tb_cpu_gemm_error {
    int status; /* 0: no failure; else oneDNN's dnnl_status_t */
    int64_t m, n, k;
} tb_cpu_gemm_error;

/* Row-major C[m,n] = alpha * op(A) * op(B) + beta * C, op = transpose when
 * trans_*. Runs on the calling thread inside an OpenMP parallel region, on
 * `threads` threads outside one. Returns 0 or the dnnl_status_t of the
 * failure; with err, a failure is also recorded there (thread-safe). */
int tb_cpu_sgemm(int threads, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                 const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc,
                 tb_cpu_gemm_error *err);

/* tb_fail for a recorded failure: "<op>: oneDNN sgemm m x n x k failed: <status>". */
int tb_cpu_gemm_fail(const tb_cpu_gemm_error *err, const char *op);

/* "oneDNN 2.6.3, avx512_core_bf16": the library and the instruction set its
 * kernels use on this CPU (ONEDNN_MAX_CPU_ISA can lower it). */
const char *tb_cpu_gemm_library(void);
/* The instruction set alone ("avx512_core_bf16", "avx2", ...). */
const char *tb_cpu_gemm_isa(void);

#ifdef __cplusplus
}
#endif
#endif
