/* sgemm_libs: single-threaded sgemm GFLOP/s of one BLAS-like library on the
 * GEMM shapes of the CPU conv's im2col path (ResNet-18/50 layers): forward
 * y[m,n] = col[m,k] w[n,k]^T, backward data col[m,k] = dy[m,n] w[n,k],
 * backward filter w[n,k] += dy[m,n]^T col[m,k]. Best of 5 calls each.
 * Not part of the build: it compares libraries trickbench does not all use.
 *
 *   gcc -O2 bench/sgemm_libs.c -o /tmp/sgemm_dnnl -DUSE_DNNL -ldnnl && /tmp/sgemm_dnnl
 *   gcc -O2 bench/sgemm_libs.c -o /tmp/sgemm_ob $(pkg-config --cflags --libs openblas) &&
 *     OPENBLAS_NUM_THREADS=1 /tmp/sgemm_ob            (apt-get install libopenblas-dev)
 *   gcc -O2 bench/sgemm_libs.c -o /tmp/sgemm_blis -I/usr/include/x86_64-linux-gnu/blis-serial \
 *     -L/usr/lib/x86_64-linux-gnu/blis-serial -Wl,-rpath,/usr/lib/x86_64-linux-gnu/blis-serial -lblis &&
 *     /tmp/sgemm_blis                                  (apt-get install libblis-serial-dev)
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#ifdef USE_DNNL
#include <oneapi/dnnl/dnnl.h>
#else
#include <cblas.h>
#endif

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void gemm(int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb, float beta,
                 float *c, int ldc)
{
#ifdef USE_DNNL
    if (dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc) != dnnl_success) {
        fprintf(stderr, "dnnl_sgemm failed\n");
        exit(1);
    }
#else
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a,
                lda, b, ldb, beta, c, ldc);
#endif
}

int main(void)
{
    /* {m, n, k}: pixels of a task, output channels, r*s*c */
    static const int shapes[][3] = {{3136, 32, 288},  {3136, 64, 288},  {1024, 128, 576}, {1024, 128, 1152},
                                    {256, 256, 2304}, {4096, 64, 576},  {2048, 256, 1152}, {784, 128, 64},
                                    {3136, 64, 64}};
    const size_t count = (size_t)1 << 24;
    float *a = malloc(count * sizeof(float)), *b = malloc(count * sizeof(float)), *c = malloc(count * sizeof(float));
    if (!a || !b || !c)
        return 1;
    for (size_t i = 0; i < count; i++)
        a[i] = (float)(i % 7) * 0.1f, b[i] = (float)(i % 5) * 0.1f, c[i] = 0.0f;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        double best[3] = {1e9, 1e9, 1e9};
        for (int rep = 0; rep < 5; rep++) {
            double t = now();
            gemm(0, 1, m, n, k, a, k, b, k, 0.0f, c, n);
            t = now() - t, best[0] = t < best[0] ? t : best[0];
            t = now();
            gemm(0, 0, m, k, n, a, n, b, k, 0.0f, c, k);
            t = now() - t, best[1] = t < best[1] ? t : best[1];
            t = now();
            gemm(1, 0, n, k, m, a, n, b, k, 1.0f, c, k);
            t = now() - t, best[2] = t < best[2] ? t : best[2];
        }
        double gf = 2.0 * m * n * k / 1e9;
        printf("| %d | %d | %d | %.0f | %.0f | %.0f |\n", m, n, k, gf / best[0], gf / best[1], gf / best[2]);
    }
    free(a), free(b), free(c);
    return 0;
}
