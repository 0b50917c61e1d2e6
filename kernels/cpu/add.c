/* Elementwise sum of two same-shape tensors (residual connections).
 * y may alias a or b. Backward: da += dy, db += dy (either may be NULL, and
 * da == db is fine: each adds dy once). */
#include "kernels/cpu/cpu_ops.h"
#include "kernels/error.h"

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
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t i = 0; i < count; i++)
        tb_store_f32(y->data, y->dtype, i, tb_load_f32(a->data, a->dtype, i) + tb_load_f32(b->data, b->dtype, i));
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
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t i = 0; i < count; i++)
        tb_store_f32(d->data, d->dtype, i, tb_load_f32(d->data, d->dtype, i) + tb_load_f32(dy->data, dy->dtype, i));
}

int tb_cpu_add_backward(tb_backend *be, tb_tensor *da, tb_tensor *db, const tb_tensor *dy)
{
    if (da)
        accumulate(be, da, dy);
    if (db)
        accumulate(be, db, dy);
    return TB_OK;
}
