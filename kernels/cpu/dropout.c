/* Inverted dropout. mask[i] = tb_hash_uniform(seed, i) >= p (a pure function
 * of seed and i, so every backend and thread count draws the same mask);
 * kept elements are scaled by 1/(1-p). p == 0 copies x and sets the mask to 1.
 * With a step tensor the seed is tb_dropout_step_seed(seed, step, salt). */
#include "kernels/cpu/cpu_ops.h"
#include "kernels/error.h"
#include "kernels/rng.h"

int tb_cpu_dropout_forward(tb_backend *be, tb_tensor *y, tb_tensor *mask, const tb_tensor *x, float p,
                           uint64_t seed, uint64_t salt, const tb_tensor *step)
{
    if (step) {
        int32_t at = ((const int32_t *)step->data)[0];
        if (at < 0)
            return tb_fail(TB_ERR_INVALID, "dropout_forward: step %d (step tensor) must be >= 0", (int)at);
        seed = tb_dropout_step_seed(seed, (uint64_t)at, salt);
    }
    int64_t count = tb_numel(x);
    uint8_t *m = mask->data;
    float scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t i = 0; i < count; i++) {
        int keep = p == 0.0f || tb_hash_uniform(seed, (uint64_t)i) >= p;
        m[i] = (uint8_t)keep;
        tb_store_f32(y->data, y->dtype, i, keep ? tb_load_f32(x->data, x->dtype, i) * scale : 0.0f);
    }
    return TB_OK;
}

int tb_cpu_dropout_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *mask, float p)
{
    int64_t count = tb_numel(dy);
    const uint8_t *m = mask->data;
    float scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t i = 0; i < count; i++)
        if (m[i])
            tb_store_f32(dx->data, dx->dtype, i,
                         tb_load_f32(dx->data, dx->dtype, i) + tb_load_f32(dy->data, dy->dtype, i) * scale);
    return TB_OK;
}
