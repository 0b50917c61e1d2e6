/* Argmax over the last axis: the first index of each row's largest value.
 * A strict `>` scan, so ties keep the earliest index and NaN never wins. */
#include "kernels/cpu/cpu_ops.h"
#include "kernels/error.h"

int tb_cpu_argmax(tb_backend *be, tb_tensor *index, const tb_tensor *x)
{
    int64_t k = x->shape[x->ndim - 1], rows = tb_numel(x) / k;
    int32_t *out = index->data;
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t r = 0; r < rows; r++) {
        int64_t base = r * k;
        float best = tb_load_f32(x->data, x->dtype, base);
        int32_t at = 0;
        for (int64_t j = 1; j < k; j++) {
            float v = tb_load_f32(x->data, x->dtype, base + j);
            if (v > best) {
                best = v;
                at = (int32_t)j;
            }
        }
        out[r] = at;
    }
    return TB_OK;
}
