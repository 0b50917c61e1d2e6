/* Which OpenBLAS kernels this process runs, and whether the CPU has better.
 *
 * OpenBLAS built with DYNAMIC_ARCH (Debian's) picks its kernels once, when
 * the library loads: those OPENBLAS_CORETYPE names, else those its CPU
 * detection chooses. An environment that sets OPENBLAS_CORETYPE=Haswell on
 * a CPU that runs AVX-512 (the development VM does, machine-wide) gets AVX2
 * kernels: there a training step runs at ~0.6x the speed of the AVX-512
 * kernels OpenBLAS detects without the variable (bench/RESULTS.md).
 * `trickbench version` and `bench` say which kernels run; the variable is
 * the user's, and is left alone. */
#include "kernels/cpu/blas_core.h"

#include <cblas.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>

/* AVX-512 F, DQ, BW and VL (what SkylakeX's kernels use), with the OS
 * saving the opmask and ZMM registers (XCR0 bits 5-7) besides SSE and AVX. */
static bool cpu_runs_avx512(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE))
        return false;
    unsigned xcr0_lo, xcr0_hi;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    (void)xcr0_hi;
    if ((xcr0_lo & 0xe6) != 0xe6)
        return false;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return false;
    const unsigned need = bit_AVX512F | bit_AVX512DQ | bit_AVX512BW | bit_AVX512VL;
    return (b & need) == need;
}
#else
static bool cpu_runs_avx512(void) { return false; }
#endif

const char *tb_cpu_blas_core(void)
{
    const char *name = openblas_get_corename();
    return name ? name : "unknown";
}

const char *tb_cpu_blas_better_core(void)
{
    const char *current = tb_cpu_blas_core();
    bool avx2_core = !strcmp(current, "Haswell") || !strcmp(current, "Zen");
    return avx2_core && cpu_runs_avx512() ? "SkylakeX" : NULL;
}
