/* Elementwise sum of two same-shape tensors (residual connections).
 * y may alias a or b. Backward: da += dy, db += dy (either may be NULL, and
 * da == db is fine: each adds dy once). */
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/error.h"

/* Elements per block of the low-precision paths: converted to f32 a block
 * at a time, so that the conversions and the sums vectorise. */
#define ADD_BLOCK 256

int tb_cpu_add_forward(tb_backend *be, tb_tensor *y, const tb_tensor *a, const tb_tensor *b)
{
    int64_t count = tb_numel(y);
    if (y->dtype == TB_F32) {
        const float *as = a->data, *bs = b->data;
        float *ys = y->data;
#pragma omp parallel for schedule(static) num_threads(be->threads)
        for (int64_t i = 0; i < count; i++)
            ys[i] = as[i] + bs[i];
        return TB_OK;
    }
    int64_t blocks = (count + ADD_BLOCK - 1) / ADD_BLOCK;
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t k = 0; k < blocks; k++) {
        int64_t i0 = k * ADD_BLOCK, len = tb_cpu_min64(ADD_BLOCK, count - i0);
        float ta[ADD_BLOCK], tb[ADD_BLOCK], sum[ADD_BLOCK];
        const float *ra = tb_cpu_load_row(ta, a, i0, len), *rb = tb_cpu_load_row(tb, b, i0, len);
        for (int64_t j = 0; j < len; j++)
            sum[j] = ra[j] + rb[j];
        tb_cpu_store_row(y, i0, sum, len);
    }
    return TB_OK;
}

static void accumulate(tb_backend *be, tb_tensor *d, const tb_tensor *dy)
{
    int64_t count = tb_numel(dy);
    if (d->dtype == TB_F32) {
        const float *g = dy->data;
        float *ds = d->data;
#pragma omp parallel for schedule(static) num_threads(be->threads)
        for (int64_t i = 0; i < count; i++)
            ds[i] += g[i];
        return;
    }
    int64_t blocks = (count + ADD_BLOCK - 1) / ADD_BLOCK;
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t k = 0; k < blocks; k++) {
        int64_t i0 = k * ADD_BLOCK, len = tb_cpu_min64(ADD_BLOCK, count - i0);
        float tg[ADD_BLOCK];
        tb_cpu_accum_row(d, i0, tb_cpu_load_row(tg, dy, i0, len), len);
    }
}

int tb_cpu_add_backward(tb_backend *be, tb_tensor *da, tb_tensor *db, const tb_tensor *dy)
{
    if (da)
        accumulate(be, da, dy);
    if (db)
        accumulate(be, db, dy);
    return TB_OK;
}
