/* ReLU. The forward may run in place (y->data == x->data); the backward reads
 * the output y, which stays valid when y overwrote x.
 * NaN propagates through the forward (as in PyTorch), so a non-finite
 * activation under loss scaling still reaches the overflow check. */
#include "kernels/cpu/cpu_ops.h"
#include "kernels/error.h"

int tb_cpu_relu_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x)
{
    int64_t count = tb_numel(x);
    if (x->dtype == TB_F32) {
        const float *xs = x->data;
        float *ys = y->data;
#pragma omp parallel for schedule(static) num_threads(be->threads)
        for (int64_t i = 0; i < count; i++)
            ys[i] = xs[i] < 0.0f ? 0.0f : xs[i];
        return TB_OK;
    }
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t i = 0; i < count; i++) {
        float v = tb_load_f32(x->data, x->dtype, i);
        tb_store_f32(y->data, y->dtype, i, v < 0.0f ? 0.0f : v);
    }
    return TB_OK;
}

int tb_cpu_relu_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *y)
{
    int64_t count = tb_numel(y);
    if (y->dtype == TB_F32) {
        const float *ys = y->data, *dys = dy->data;
        float *dxs = dx->data;
#pragma omp parallel for schedule(static) num_threads(be->threads)
        /* dy is loaded unconditionally so that the loop is a vectorisable select */
        for (int64_t i = 0; i < count; i++) {
            float g = dys[i];
            dxs[i] += ys[i] > 0.0f ? g : 0.0f;
        }
        return TB_OK;
    }
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t i = 0; i < count; i++) {
        if (tb_load_f32(y->data, y->dtype, i) > 0.0f)
            tb_store_f32(dx->data, dx->dtype, i,
                         tb_load_f32(dx->data, dx->dtype, i) + tb_load_f32(dy->data, dy->dtype, i));
    }
    return TB_OK;
}
