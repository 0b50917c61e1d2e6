/* Concatenation along the last (channel) axis. Every tensor is viewed as
 * rows x channels with the same rows; input i occupies channels
 * [offset_i, offset_i + c_i) of y. All tensors share one dtype, so rows are
 * copied as bytes. Backward: dxs[i] += its slice of dy. */
#include <string.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/error.h"

int tb_cpu_concat_forward(tb_backend *be, tb_tensor *y, const tb_tensor *const *xs, int count)
{
    int64_t cy = y->shape[y->ndim - 1];
    int64_t rows = tb_numel(y) / cy;
    size_t es = tb_dtype_size(y->dtype);
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t r = 0; r < rows; r++) {
        int64_t off = 0;
        for (int i = 0; i < count; i++) {
            int64_t ci = xs[i]->shape[xs[i]->ndim - 1];
            memcpy(tb_cpu_at(y, r * cy + off), tb_cpu_at(xs[i], r * ci), (size_t)ci * es);
            off += ci;
        }
    }
    return TB_OK;
}

int tb_cpu_concat_backward(tb_backend *be, tb_tensor *const *dxs, int count, const tb_tensor *dy)
{
    int64_t cy = dy->shape[dy->ndim - 1];
    int64_t rows = tb_numel(dy) / cy;
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t r = 0; r < rows; r++) {
        float tmp[TB_CPU_CB];
        int64_t off = 0;
        for (int i = 0; i < count; i++) {
            int64_t ci = dxs[i]->shape[dxs[i]->ndim - 1];
            for (int64_t j0 = 0; j0 < ci; j0 += TB_CPU_CB) {
                int64_t cb = tb_cpu_min64(TB_CPU_CB, ci - j0);
                const float *g = tb_cpu_load_row(tmp, dy, r * cy + off + j0, cb);
                tb_cpu_accum_row(dxs[i], r * ci + j0, g, cb);
            }
            off += ci;
        }
    }
    return TB_OK;
}
