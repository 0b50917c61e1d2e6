/* Softmax cross-entropy with temperature, on hard labels or soft targets,
 * plus the soft-target builder (label smoothing, mixup/cutmix mixing) and a
 * plain softmax (distillation teachers).
 *
 * Per row, with z = logits / T: lse = max z + log sum exp(z - max z) (stable,
 * summed in double), log p = z - lse, probs = exp(log p),
 * loss_row = -sum_k t[k] log p[k]. loss = mean over rows, the row losses
 * summed per fixed row chunk and combined in chunk order (bitwise
 * reproducible for any thread count).
 * A negative hard label marks an ignored row (segmentation's ignore label,
 * detection's unsampled anchors): its probs are still written, but it adds
 * nothing to the loss or the gradient, and the mean is over the labelled rows
 * (loss 0 when there are none), as PyTorch's ignore_index.
 * Labels are checked on the host before any output is written: one >= k (or,
 * for soft_targets, any negative one) is TB_ERR_INVALID naming the row. */
#include <math.h>
#include <stdbool.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/error.h"

/* Every label is below k (and not negative unless ignoring is allowed);
 * *labelled (optional) gets the number of rows with a label >= 0. */
static int check_labels(const char *op, const tb_tensor *labels, int64_t k, bool allow_ignore, int64_t *labelled)
{
    const int32_t *lab = labels->data;
    int64_t count = 0;
    for (int64_t i = 0; i < labels->shape[0]; i++) {
        if (lab[i] >= k || (lab[i] < 0 && !allow_ignore))
            return tb_fail(TB_ERR_INVALID, "%s: label %d of row %lld is outside [0, %lld)%s", op, (int)lab[i],
                           (long long)i, (long long)k, allow_ignore ? " (negative = ignored)" : "");
        count += lab[i] >= 0;
    }
    if (labelled)
        *labelled = count;
    return TB_OK;
}

/* log-sum-exp of row i of logits / T. */
static double row_lse(const tb_tensor *logits, int64_t i, int64_t k, float t)
{
    double m = -INFINITY, s = 0.0;
    for (int64_t j = 0; j < k; j++) {
        double z = tb_load_f32(logits->data, logits->dtype, i * k + j) / t;
        m = z > m ? z : m;
    }
    for (int64_t j = 0; j < k; j++)
        s += exp(tb_load_f32(logits->data, logits->dtype, i * k + j) / t - m);
    return m + log(s);
}

/* probs[i,:] = softmax(logits[i,:] / T); returns -sum t log p for the row
 * (hard label, soft target row, or neither: 0). */
static double row_softmax(float *probs, const tb_tensor *logits, const int32_t *labels, const float *targets,
                          int64_t i, int64_t k, float t)
{
    double lse = row_lse(logits, i, k, t), loss = 0.0;
    for (int64_t j = 0; j < k; j++) {
        double logp = tb_load_f32(logits->data, logits->dtype, i * k + j) / t - lse;
        probs[i * k + j] = (float)exp(logp);
        if (targets)
            loss -= targets[i * k + j] * logp;
        else if (labels && labels[i] == j)
            loss -= logp;
    }
    return loss;
}

int tb_cpu_softmax_ce_forward(tb_backend *be, tb_tensor *loss, tb_tensor *probs, const tb_tensor *logits,
                              const tb_tensor *labels, const tb_tensor *targets, float temperature)
{
    int64_t n = logits->shape[0], k = logits->shape[1], labelled = n;
    if (labels)
        TB_TRY(check_labels("softmax_ce_forward", labels, k, true, &labelled));
    const int32_t *lab = labels ? labels->data : NULL;
    const float *tgt = targets ? targets->data : NULL;
    int64_t chunks = tb_cpu_chunk_count(n);
    double partial[TB_CPU_CHUNKS];
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t ch = 0; ch < chunks; ch++) {
        int64_t lo, hi;
        double s = 0.0;
        tb_cpu_chunk(n, chunks, ch, &lo, &hi);
        for (int64_t i = lo; i < hi; i++)
            s += row_softmax(probs->data, logits, lab, tgt, i, k, temperature);
        partial[ch] = s;
    }
    double total = 0.0;
    for (int64_t ch = 0; ch < chunks; ch++)
        total += partial[ch];
    ((float *)loss->data)[0] = labelled > 0 ? (float)(total / (double)labelled) : 0.0f;
    return TB_OK;
}

int tb_cpu_softmax_ce_backward(tb_backend *be, tb_tensor *dlogits, const tb_tensor *probs,
                               const tb_tensor *labels, const tb_tensor *targets, float temperature,
                               float scale, const tb_tensor *scale_t)
{
    if (scale_t) {
        scale *= ((const float *)scale_t->data)[0];
        if (!isfinite(scale))
            return tb_fail(TB_ERR_INVALID, "softmax_ce_backward: scale %g (times scale_t) must be finite",
                           (double)scale);
    }
    int64_t n = probs->shape[0], k = probs->shape[1], labelled = n;
    if (labels)
        TB_TRY(check_labels("softmax_ce_backward", labels, k, true, &labelled));
    if (labelled == 0) /* every row ignored: the loss is the constant 0 */
        return TB_OK;
    const int32_t *lab = labels ? labels->data : NULL;
    const float *tgt = targets ? targets->data : NULL, *p = probs->data;
    float coef = (float)((double)scale / ((double)labelled * (double)temperature));
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t i = 0; i < n; i++) {
        if (lab && lab[i] < 0)
            continue;
        for (int64_t j = 0; j < k; j++) {
            float t = tgt ? tgt[i * k + j] : (lab[i] == j ? 1.0f : 0.0f);
            int64_t e = i * k + j;
            tb_store_f32(dlogits->data, dlogits->dtype, e,
                         tb_load_f32(dlogits->data, dlogits->dtype, e) + coef * (p[e] - t));
        }
    }
    return TB_OK;
}

int tb_cpu_soft_targets(tb_backend *be, tb_tensor *targets, const tb_tensor *labels_a,
                        const tb_tensor *labels_b, const tb_tensor *lam_t, float eps)
{
    int64_t n = targets->shape[0], k = targets->shape[1];
    float lam;
    TB_TRY(tb_cpu_lam("soft_targets", lam_t, &lam));
    TB_TRY(check_labels("soft_targets", labels_a, k, false, NULL));
    if (labels_b)
        TB_TRY(check_labels("soft_targets", labels_b, k, false, NULL));
    const int32_t *a = labels_a->data, *b = labels_b ? labels_b->data : NULL;
    float on = 1.0f - eps, off = eps > 0.0f ? eps / (float)(k - 1) : 0.0f;
    float *t = targets->data;
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < k; j++) {
            float ta = a[i] == j ? on : off;
            float tb = b ? (b[i] == j ? on : off) : 0.0f;
            t[i * k + j] = b ? lam * ta + (1.0f - lam) * tb : ta;
        }
    return TB_OK;
}

int tb_cpu_softmax(tb_backend *be, tb_tensor *probs, const tb_tensor *logits, float temperature)
{
    int64_t n = logits->shape[0], k = logits->shape[1];
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t i = 0; i < n; i++)
        (void)row_softmax(probs->data, logits, NULL, NULL, i, k, temperature);
    return TB_OK;
}
