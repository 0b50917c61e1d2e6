/* Single-precision GEMM for the CPU kernels, through oneDNN's sgemm.
 *
 * Why oneDNN and not OpenBLAS (which the CPU backend used first): oneDNN
 * picks its kernels from what the CPU runs, and only ONEDNN_MAX_CPU_ISA can
 * lower that; OpenBLAS's are chosen by OPENBLAS_CORETYPE when it is set, and
 * machines that set it machine-wide to Haswell exist (the development VM: an
 * AVX-512 CPU running AVX2 kernels, half the speed). On the convolution
 * shapes of ResNet-18/50 oneDNN's single-threaded sgemm also runs as fast as
 * or faster than OpenBLAS's AVX-512 kernels, most where the output has few
 * channels (32 channels: 239 against 172 GFLOP/s forward, 253 against 145
 * for the filter gradient; bench/RESULTS.md).
 *
 * Threads: oneDNN (Debian builds it on OpenMP, the runtime our kernels use)
 * runs a GEMM called inside an active parallel region on the calling thread,
 * so the convolutions split their rows into tasks and call one GEMM per
 * task. Called outside one, it would take omp_get_max_threads() threads, so
 * the count is set to the caller's for the call. Partitioning depends on the
 * shapes and that count only: results are reproducible for a fixed count.
 *
 * oneDNN's sgemm takes its packing buffers from malloc on each call; glibc
 * hands the same blocks back from the second step on, and the step's time in
 * bench/RESULTS.md includes it. */
#include "kernels/cpu/gemm.h"

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "kernels/error.h"

static void note_failure(tb_cpu_gemm_error *err, int status, int64_t m, int64_t n, int64_t k)
{
    if (!err)
        return;
#pragma omp critical(tb_cpu_gemm_error)
    if (!err->status) {
        err->status = status;
        err->m = m, err->n = n, err->k = k;
    }
}

int tb_cpu_sgemm(int threads, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                 const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc,
                 tb_cpu_gemm_error *err)
{
    const char ta = trans_a ? 'T' : 'N', tb = trans_b ? 'T' : 'N';
    dnnl_status_t st;
    if (omp_in_parallel()) {
        st = dnnl_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    } else {
        int saved = omp_get_max_threads();
        omp_set_num_threads(threads > 0 ? threads : 1);
        st = dnnl_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        omp_set_num_threads(saved);
    }
    if (st != dnnl_success)
        note_failure(err, (int)st, m, n, k);
    return (int)st;
}

int tb_cpu_gemm_fail(const tb_cpu_gemm_error *err, const char *op)
{
    return tb_fail(TB_ERR_INTERNAL, "%s: oneDNN sgemm %lld x %lld x %lld failed: %s", op, (long long)err->m,
                   (long long)err->n, (long long)err->k, dnnl_status2str((dnnl_status_t)err->status));
}

const char *tb_cpu_gemm_isa(void)
{
    const char *name = dnnl_cpu_isa2str(dnnl_get_effective_cpu_isa());
    if (!name)
        return "unknown";
    return strncmp(name, "cpu_isa_", 8) ? name : name + 8;
}

const char *tb_cpu_gemm_library(void)
{
    static char text[96];
    const dnnl_version_t *v = dnnl_version();
    snprintf(text, sizeof text, "oneDNN %d.%d.%d, %s", v->major, v->minor, v->patch, tb_cpu_gemm_isa());
    return text;
}
