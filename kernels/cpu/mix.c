/* Batch mixing for mixup and CutMix. Sample i is paired with sample n-1-i
 * (GluonCV's and timm's "flip" pairing), so no permutation has to travel to
 * the device and the partner labels are tb_reverse_labels(labels).
 * Outputs must not alias inputs (the front-end checks). */
#include <string.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/error.h"

int tb_cpu_mixup_batch(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *lam_t)
{
    float lam;
    TB_TRY(tb_cpu_lam("mixup_batch", lam_t, &lam));
    int64_t n = x->shape[0], per = tb_numel(x) / n;
    float mu = 1.0f - lam;
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t e = 0; e < n * per; e++) {
        int64_t i = e / per, partner = (n - 1 - i) * per + e % per;
        float v = lam * tb_load_f32(x->data, x->dtype, e) + mu * tb_load_f32(x->data, x->dtype, partner);
        tb_store_f32(y->data, y->dtype, e, v);
    }
    return TB_OK;
}

int tb_cpu_cutmix_batch(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *box)
{
    int64_t n = x->shape[0], h = x->shape[1], w = x->shape[2], c = x->shape[3];
    const int32_t *b4 = box->data;
    int y0 = b4[0], y1 = b4[1], x0 = b4[2], x1 = b4[3];
    if (y0 < 0 || y0 > y1 || y1 > h || x0 < 0 || x0 > x1 || x1 > w)
        return tb_fail(TB_ERR_INVALID, "cutmix_batch: box rows [%d,%d) x cols [%d,%d) is not inside the %lldx%lld image",
                       y0, y1, x0, x1, (long long)h, (long long)w);
    size_t es = tb_dtype_size(x->dtype), row_bytes = (size_t)(w * c) * es;
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t r = 0; r < n * h; r++) {
        int64_t b = r / h, iy = r % h;
        memcpy(tb_cpu_at(y, r * w * c), tb_cpu_at(x, r * w * c), row_bytes);
        if (iy >= y0 && iy < y1 && x1 > x0) {
            int64_t src = ((n - 1 - b) * h + iy) * w * c;
            memcpy(tb_cpu_at(y, r * w * c + x0 * c), tb_cpu_at(x, src + x0 * c), (size_t)((x1 - x0) * c) * es);
        }
    }
    return TB_OK;
}

int tb_cpu_reverse_labels(tb_backend *be, tb_tensor *labels_b, const tb_tensor *labels)
{
    (void)be;
    int64_t n = labels->shape[0];
    const int32_t *a = labels->data;
    int32_t *b = labels_b->data;
    for (int64_t i = 0; i < n; i++)
        b[i] = a[n - 1 - i];
    return TB_OK;
}
