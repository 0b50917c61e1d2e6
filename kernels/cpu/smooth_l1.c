/* Smooth L1 (Huber with slope 1) loss of box regression:
 *   loss = sum_i w_i * sl1(pred_i - target_i) / norm
 *   sl1(d) = 0.5 d^2 / beta for |d| < beta, |d| - 0.5 beta otherwise; beta 0 is L1
 *   dpred += scale * w * sl1'(d) / norm, sl1'(d) = d / beta inside, sign(d) outside
 *   (sign(0) = 0, so L1 has no gradient at an exact fit, as PyTorch).
 * A zero weight contributes nothing, not even a NaN from its prediction:
 * most rows of a detection batch are unsampled, and they are skipped.
 * The loss is summed in double per fixed chunk, combined in chunk order
 * (bitwise reproducible for any thread count).
 */
#include <math.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/error.h"

static double sl1(double d, double beta)
{
    double a = fabs(d);
    return a < beta ? 0.5 * d * d / beta : a - 0.5 * beta;
}

static float sl1_grad(float d, float beta)
{
    if (fabsf(d) < beta)
        return d / beta;
    return (float)((d > 0.0f) - (d < 0.0f));
}

int tb_cpu_smooth_l1_forward(tb_backend *be, tb_tensor *loss, const tb_tensor *pred, const tb_tensor *target,
                             const tb_tensor *weights, float beta, float norm)
{
    int64_t n = tb_numel(pred);
    const float *t = target->data, *w = weights->data;
    int64_t chunks = tb_cpu_chunk_count(n);
    double partial[TB_CPU_CHUNKS];
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t ch = 0; ch < chunks; ch++) {
        int64_t lo, hi;
        double s = 0.0;
        tb_cpu_chunk(n, chunks, ch, &lo, &hi);
        for (int64_t i = lo; i < hi; i++)
            if (w[i] != 0.0f)
                s += w[i] * sl1((double)tb_load_f32(pred->data, pred->dtype, i) - t[i], beta);
        partial[ch] = s;
    }
    double total = 0.0;
    for (int64_t ch = 0; ch < chunks; ch++)
        total += partial[ch];
    ((float *)loss->data)[0] = (float)(total / norm);
    return TB_OK;
}

int tb_cpu_smooth_l1_backward(tb_backend *be, tb_tensor *dpred, const tb_tensor *pred, const tb_tensor *target,
                              const tb_tensor *weights, float beta, float norm, float scale)
{
    int64_t n = tb_numel(pred);
    const float *t = target->data, *w = weights->data;
    float coef = scale / norm;
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t i = 0; i < n; i++) {
        if (w[i] == 0.0f)
            continue;
        float d = tb_load_f32(pred->data, pred->dtype, i) - t[i];
        float g = coef * w[i] * sl1_grad(d, beta);
        tb_store_f32(dpred->data, dpred->dtype, i, tb_load_f32(dpred->data, dpred->dtype, i) + g);
    }
    return TB_OK;
}
