/* Global average pool: y[n,c] = mean over h,w of x[n,h,w,c] (summed in double,
 * in pixel order). Backward: dx[n,h,w,c] += dy[n,c] / (h*w). */
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/error.h"

int tb_cpu_global_avgpool_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x)
{
    int64_t n = x->shape[0], hw = x->shape[1] * x->shape[2], c = x->shape[3];
    int64_t blocks = (c + TB_CPU_CB - 1) / TB_CPU_CB;
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t t = 0; t < n * blocks; t++) {
        int64_t b = t / blocks, j0 = (t % blocks) * TB_CPU_CB;
        int64_t cb = tb_cpu_min64(TB_CPU_CB, c - j0);
        double acc[TB_CPU_CB];
        float tmp[TB_CPU_CB], out[TB_CPU_CB];
        for (int64_t j = 0; j < cb; j++)
            acc[j] = 0.0;
        for (int64_t pix = 0; pix < hw; pix++) {
            const float *row = tb_cpu_load_row(tmp, x, (b * hw + pix) * c + j0, cb);
            for (int64_t j = 0; j < cb; j++)
                acc[j] += row[j];
        }
        for (int64_t j = 0; j < cb; j++)
            out[j] = (float)(acc[j] / (double)hw);
        tb_cpu_store_row(y, b * c + j0, out, cb);
    }
    return TB_OK;
}

int tb_cpu_global_avgpool_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy)
{
    int64_t n = dx->shape[0], hw = dx->shape[1] * dx->shape[2], c = dx->shape[3];
    float count = (float)hw;
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t r = 0; r < n * hw; r++) {
        int64_t b = r / hw;
        float tmp[TB_CPU_CB], g[TB_CPU_CB];
        for (int64_t j0 = 0; j0 < c; j0 += TB_CPU_CB) {
            int64_t cb = tb_cpu_min64(TB_CPU_CB, c - j0);
            const float *row = tb_cpu_load_row(tmp, dy, b * c + j0, cb);
            for (int64_t j = 0; j < cb; j++)
                g[j] = row[j] / count;
            tb_cpu_accum_row(dx, r * c + j0, g, cb);
        }
    }
    return TB_OK;
}
