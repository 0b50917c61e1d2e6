/* OpenBLAS's choice of kernels (see blas_core.c). */
#ifndef TB_CPU_BLAS_CORE_H
#define TB_CPU_BLAS_CORE_H

#ifdef __cplusplus
extern "C" {
#endif

/* The OpenBLAS core whose kernels this process runs ("Haswell", "SkylakeX"...). */
const char *tb_cpu_blas_core(void);
/* The OPENBLAS_CORETYPE that would run faster kernels on this CPU, or NULL:
 * "SkylakeX" when OpenBLAS chose an AVX2 core on a CPU that runs AVX-512. */
const char *tb_cpu_blas_better_core(void);

#ifdef __cplusplus
}
#endif
#endif
