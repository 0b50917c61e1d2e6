/* Softmax cross-entropy on hard (i32 labels) or soft (f32 targets) targets
 * with a temperature, the soft-target builder (label smoothing, mixup) and
 * the plain softmax used for distillation teachers.
 *
 * Forward: one block per row computes the stable log-sum-exp of logits / T,
 * the row's loss and (optionally) the probabilities; the batch mean is then
 * summed by one block in row order (deterministic) into the f32 loss {1}.
 * A label >= k makes that row's loss NaN, which the trainer's divergence
 * check reports (the device cannot return an error).
 *
 * A negative label is an ignored row (ops.h): its probabilities are still
 * written, but it adds nothing to the loss or the gradient, and the mean is
 * over the labelled rows (0 when there are none), PyTorch's ignore_index
 * with reduction "mean". The count of labelled rows never leaves the device:
 * the forward's final block counts them while summing the row losses, and
 * the backward counts them first (integer atomics: exact and
 * order-independent) into the reduction scratch, which its kernel reads. */
#include "kernels/cuda/cuda_common.cuh"

/* Stable max and sum of exp over one row (logits / T), shared by the block. */
template <typename T>
__device__ __forceinline__ void row_stats(const T *z, int64_t k, float temperature, float *scratch, float *max_out,
                                          float *sum_out)
{
    float m = -INFINITY;
    for (int64_t j = threadIdx.x; j < k; j += blockDim.x)
        m = fmaxf(m, tb_f32(z[j]) / temperature);
    m = tb_block_max(m, scratch);
    float s = 0.0f;
    for (int64_t j = threadIdx.x; j < k; j += blockDim.x)
        s += expf(tb_f32(z[j]) / temperature - m);
    *sum_out = tb_block_sum(s, scratch);
    *max_out = m;
}

template <typename T>
static __global__ void softmax_ce_forward_kernel(float *row_loss, float *probs, const T *logits, const int32_t *labels,
                                                 const float *targets, int64_t k, float temperature)
{
    __shared__ float scratch[32];
    int64_t row = blockIdx.x;
    const T *z = logits + row * k;
    float m, s;
    row_stats(z, k, temperature, scratch, &m, &s);
    float logsum = m + logf(s);
    if (probs)
        for (int64_t j = threadIdx.x; j < k; j += blockDim.x)
            probs[row * k + j] = expf(tb_f32(z[j]) / temperature - m) / s;
    float loss = 0.0f;
    if (labels) {
        int32_t y = labels[row];
        loss = y < 0 ? 0.0f : (y < k ? logsum - tb_f32(z[y]) / temperature : NAN);
    } else {
        float l = 0.0f;
        for (int64_t j = threadIdx.x; j < k; j += blockDim.x)
            l += targets[row * k + j] * (logsum - tb_f32(z[j]) / temperature);
        loss = tb_block_sum(l, scratch);
    }
    if (threadIdx.x == 0)
        row_loss[row] = loss;
}

/* loss = sum of the row losses / labelled rows (0 when none), in one block,
 * in a fixed order; rows with a negative label have row_loss 0. */
static __global__ void ce_labelled_mean_kernel(float *loss, const float *row_loss, const int32_t *labels, int64_t n)
{
    __shared__ float scratch[32];
    float s = 0.0f, cnt = 0.0f; /* cnt is exact: n <= TB_CUDA_REDUCE_ELEMS < 2^24 */
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        s += row_loss[i];
        cnt += labels[i] >= 0 ? 1.0f : 0.0f;
    }
    s = tb_block_sum(s, scratch);
    cnt = tb_block_sum(cnt, scratch);
    if (threadIdx.x == 0)
        loss[0] = cnt > 0.0f ? s / cnt : 0.0f;
}

/* *count += rows with a label >= 0 (*count zeroed by the launcher). */
static __global__ void ce_count_labelled_kernel(int32_t *count, const int32_t *labels, int64_t n)
{
    int32_t c = 0;
    TB_GRID_STRIDE_LOOP(i, n) c += labels[i] >= 0 ? 1 : 0;
    for (int o = 16; o > 0; o >>= 1)
        c += __shfl_xor_sync(0xffffffffu, c, o);
    if ((threadIdx.x & 31) == 0 && c)
        atomicAdd(count, c);
}

/* dlogits += scale (probs - t) / (rows T), rows = n for soft targets, the
 * labelled rows counted on the device (*count) for labels; an ignored row
 * is left as it is. */
template <typename T>
static __global__ void softmax_ce_backward_kernel(T *dlogits, const float *probs, const int32_t *labels,
                                                  const int32_t *count, const float *targets, int64_t n, int64_t k,
                                                  float scale, float temperature)
{
    double rows = labels ? (double)(*count > 0 ? *count : 1) : (double)n;
    float f = (float)((double)scale / (rows * (double)temperature)); /* rounded as on the CPU */
    TB_GRID_STRIDE_LOOP(i, n * k)
    {
        int64_t row = i / k, j = i % k;
        if (labels && labels[row] < 0)
            continue;
        float t = labels ? (labels[row] == j ? 1.0f : 0.0f) : targets[i];
        dlogits[i] = tb_from_f32<T>(tb_f32(dlogits[i]) + f * (probs[i] - t));
    }
}

/* lam_p (with b) is the step's mixing weight, read on the device and
 * clamped to [0, 1] (the host cannot check it inside a captured step). */
static __global__ void soft_targets_kernel(float *t, const int32_t *a, const int32_t *b, const float *lam_p,
                                           int64_t total, int64_t k, float on, float off)
{
    float lam = b ? fminf(fmaxf(*lam_p, 0.0f), 1.0f) : 1.0f;
    TB_GRID_STRIDE_LOOP(i, total)
    {
        int64_t row = i / k, j = i % k;
        float ta = a[row] == j ? on : off;
        t[i] = b ? lam * ta + (1.0f - lam) * (b[row] == j ? on : off) : ta;
    }
}

template <typename T> static __global__ void softmax_kernel(float *probs, const T *logits, int64_t k, float temperature)
{
    __shared__ float scratch[32];
    int64_t row = blockIdx.x;
    const T *z = logits + row * k;
    float m, s;
    row_stats(z, k, temperature, scratch, &m, &s);
    for (int64_t j = threadIdx.x; j < k; j += blockDim.x)
        probs[row * k + j] = expf(tb_f32(z[j]) / temperature - m) / s;
}

/* ---------------------------------------------------------------- launchers */

static int softmax_ce_forward(tb_backend *be, tb_tensor *loss, tb_tensor *probs, const tb_tensor *logits,
                              const tb_tensor *labels, const tb_tensor *targets, float temperature)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    int64_t n = logits->shape[0], k = logits->shape[1];
    TB_CHECK(n >= 1 && n <= (int64_t)TB_CUDA_REDUCE_ELEMS, TB_ERR_UNSUPPORTED,
             "softmax_ce_forward: batch %lld outside 1..%u", (long long)n, TB_CUDA_REDUCE_ELEMS);
    const int32_t *lab = labels && labels->data ? (const int32_t *)labels->data : NULL;
    const float *tgt = lab ? NULL : (const float *)targets->data;
    float *pr = probs && probs->data ? (float *)probs->data : NULL;
    TB_TRY(tb_dispatch_float(logits->dtype, "softmax_ce_forward", [&](auto tag) {
        using T = typename decltype(tag)::type;
        softmax_ce_forward_kernel<T><<<(unsigned)n, TB_CUDA_THREADS, 0, ctx->stream>>>(
            ctx->reduce, pr, (const T *)logits->data, lab, tgt, k, temperature);
        return TB_OK;
    }));
    CUDA_CHECK_LAUNCH();
    if (!lab)
        return tb_cuda_sum_f32(ctx, (float *)loss->data, ctx->reduce, n, 1.0f / (float)n, false);
    ce_labelled_mean_kernel<<<1, 1024, 0, ctx->stream>>>((float *)loss->data, ctx->reduce, lab, n);
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_softmax_ce_forward(tb_backend *be, tb_tensor *loss, tb_tensor *probs, const tb_tensor *logits,
                               const tb_tensor *labels, const tb_tensor *targets, float temperature)
{
    TB_CUDA_OP_RETURN(softmax_ce_forward(be, loss, probs, logits, labels, targets, temperature),
                      "softmax_ce_forward", "logits", logits, "labels", labels, "targets", targets, "probs", probs);
}

static int softmax_ce_backward(tb_backend *be, tb_tensor *dlogits, const tb_tensor *probs, const tb_tensor *labels,
                               const tb_tensor *targets, float temperature, float scale)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    int64_t n = probs->shape[0], k = probs->shape[1], total = n * k;
    if (total == 0 || !dlogits || !dlogits->data)
        return TB_OK;
    const int32_t *lab = labels && labels->data ? (const int32_t *)labels->data : NULL;
    const float *tgt = lab ? NULL : (const float *)targets->data;
    int32_t *count = (int32_t *)ctx->reduce;
    if (lab) {
        TB_CHECK(n <= INT32_MAX, TB_ERR_UNSUPPORTED, "softmax_ce_backward: %lld rows exceed the i32 count",
                 (long long)n);
        CUDA_CHECK(cudaMemsetAsync(count, 0, sizeof *count, ctx->stream));
        ce_count_labelled_kernel<<<tb_cuda_blocks(ctx, n), TB_CUDA_THREADS, 0, ctx->stream>>>(count, lab, n);
        CUDA_CHECK_LAUNCH();
    }
    TB_TRY(tb_dispatch_float(dlogits->dtype, "softmax_ce_backward", [&](auto tag) {
        using T = typename decltype(tag)::type;
        softmax_ce_backward_kernel<T><<<tb_cuda_blocks(ctx, total), TB_CUDA_THREADS, 0, ctx->stream>>>(
            (T *)dlogits->data, (const float *)probs->data, lab, count, tgt, n, k, scale, temperature);
        return TB_OK;
    }));
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_softmax_ce_backward(tb_backend *be, tb_tensor *dlogits, const tb_tensor *probs,
                                const tb_tensor *labels, const tb_tensor *targets, float temperature, float scale)
{
    TB_CUDA_OP_RETURN(softmax_ce_backward(be, dlogits, probs, labels, targets, temperature, scale),
                      "softmax_ce_backward", "dlogits", dlogits, "probs", probs, "labels", labels, "targets",
                      targets);
}

static int soft_targets(tb_backend *be, tb_tensor *targets, const tb_tensor *labels_a, const tb_tensor *labels_b,
                        const tb_tensor *lam, float eps)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    int64_t n = targets->shape[0], k = targets->shape[1], total = n * k;
    if (total == 0)
        return TB_OK;
    /* the paper's smoothing: 1 - eps on the label, eps / (k - 1) elsewhere */
    float on = 1.0f - eps, off = k > 1 ? eps / (float)(k - 1) : 0.0f;
    const int32_t *b = labels_b && labels_b->data ? (const int32_t *)labels_b->data : NULL;
    const float *lam_p = b ? (const float *)lam->data : NULL;
    soft_targets_kernel<<<tb_cuda_blocks(ctx, total), TB_CUDA_THREADS, 0, ctx->stream>>>(
        (float *)targets->data, (const int32_t *)labels_a->data, b, lam_p, total, k, on, off);
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_soft_targets(tb_backend *be, tb_tensor *targets, const tb_tensor *labels_a, const tb_tensor *labels_b,
                         const tb_tensor *lam, float eps)
{
    TB_CUDA_OP_RETURN(soft_targets(be, targets, labels_a, labels_b, lam, eps), "soft_targets", "targets", targets,
                      "labels_a", labels_a, "labels_b", labels_b, "lam", lam);
}

static int softmax(tb_backend *be, tb_tensor *probs, const tb_tensor *logits, float temperature)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    int64_t n = logits->shape[0], k = logits->shape[1];
    if (n == 0 || k == 0)
        return TB_OK;
    TB_CHECK(n <= INT32_MAX, TB_ERR_UNSUPPORTED, "softmax: %lld rows exceed one grid", (long long)n);
    TB_TRY(tb_dispatch_float(logits->dtype, "softmax", [&](auto tag) {
        using T = typename decltype(tag)::type;
        softmax_kernel<T><<<(unsigned)n, TB_CUDA_THREADS, 0, ctx->stream>>>((float *)probs->data,
                                                                           (const T *)logits->data, k, temperature);
        return TB_OK;
    }));
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_softmax(tb_backend *be, tb_tensor *probs, const tb_tensor *logits, float temperature)
{
    TB_CUDA_OP_RETURN(softmax(be, probs, logits, temperature), "softmax", "probs", probs, "logits", logits, NULL,
                      NULL, NULL, NULL);
}
