/* Softmax cross-entropy on hard (i32 labels) or soft (f32 targets) targets
 * with a temperature, the soft-target builder (label smoothing, mixup) and
 * the plain softmax used for distillation teachers.
 *
 * Forward: one warp per row computes the stable log-sum-exp of logits / T,
 * the row's loss and (optionally) the probabilities (a warp, not a block:
 * segmentation has millions of rows of ~150 classes, classification rows of
 * 1000 take 32 steps a lane). Each block sums its rows' losses and counts
 * its labelled rows in a fixed order into the reduction scratch, and one
 * block divides the sum of those partials by the count: deterministic for
 * any number of rows, and nothing per row is stored.
 * A label >= k makes that row's loss NaN, which the trainer's divergence
 * check reports (the device cannot return an error); the backward gives
 * that row zero targets. The soft-target builder, which the CPU makes
 * refuse a label outside [0, k), gives such a row `off` everywhere (mixup
 * and smoothing take their labels from the dataset readers, which check
 * their range).
 *
 * A negative label is an ignored row (ops.h): its probabilities are still
 * written, but it adds nothing to the loss or the gradient, and the mean is
 * over the labelled rows (0 when there are none), PyTorch's ignore_index
 * with reduction "mean". The count of labelled rows never leaves the device:
 * the forward counts them with the losses, and the backward counts them
 * again first (the scratch holding the forward's count is reused by other
 * ops in between; integer atomics: exact and order-independent) into the
 * reduction scratch, which its kernel reads. */
#include "kernels/cuda/cuda_common.cuh"

/* Rows per block of the forward and of softmax: one warp each. */
#define CE_WARPS (TB_CUDA_THREADS / 32)
static_assert(2 * TB_CUDA_REDUCE_BLOCKS <= TB_CUDA_REDUCE_ELEMS, "the forward's partials and counts fit the scratch");

/* Stable max and sum of exp over one row (logits / T), across one warp
 * (every lane gets both). */
template <typename T>
__device__ __forceinline__ void row_stats(const T *z, int64_t k, float temperature, int lane, float *max_out,
                                          float *sum_out)
{
    float m = -INFINITY;
    for (int64_t j = lane; j < k; j += 32)
        m = fmaxf(m, tb_f32(z[j]) / temperature);
    m = tb_warp_max(m);
    float s = 0.0f;
    for (int64_t j = lane; j < k; j += 32)
        s += expf(tb_f32(z[j]) / temperature - m);
    *sum_out = tb_warp_sum(s);
    *max_out = m;
}

/* Warp w of block b takes rows b * CE_WARPS + w, then every gridDim.x *
 * CE_WARPS-th: probabilities and loss of each; the block writes the sum of
 * its rows' losses to partial[b] and its labelled rows to count[b] (labels
 * only), adding warp by warp in a fixed order. */
template <typename T>
static __global__ void softmax_ce_forward_kernel(float *partial, int32_t *count, float *probs, const T *logits,
                                                 const int32_t *labels, const float *targets, int64_t n, int64_t k,
                                                 float temperature)
{
    __shared__ float warp_loss[CE_WARPS];
    __shared__ int32_t warp_labelled[CE_WARPS];
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    float acc = 0.0f;
    int32_t labelled = 0;
    for (int64_t row = (int64_t)blockIdx.x * CE_WARPS + w; row < n; row += (int64_t)gridDim.x * CE_WARPS) {
        const T *z = logits + row * k;
        float m, s;
        row_stats(z, k, temperature, lane, &m, &s);
        float logsum = m + logf(s);
        if (probs)
            for (int64_t j = lane; j < k; j += 32)
                probs[row * k + j] = expf(tb_f32(z[j]) / temperature - m) / s;
        if (labels) {
            int32_t y = labels[row];
            acc += y < 0 ? 0.0f : (y < k ? logsum - tb_f32(z[y]) / temperature : NAN);
            labelled += y >= 0 ? 1 : 0;
        } else {
            float l = 0.0f;
            for (int64_t j = lane; j < k; j += 32)
                l += targets[row * k + j] * (logsum - tb_f32(z[j]) / temperature);
            acc += tb_warp_sum(l);
        }
    }
    if (lane == 0) {
        warp_loss[w] = acc;
        warp_labelled[w] = labelled;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        float sum = 0.0f;
        int32_t c = 0;
        for (int i = 0; i < CE_WARPS; i++) {
            sum += warp_loss[i];
            c += warp_labelled[i];
        }
        partial[blockIdx.x] = sum;
        if (count)
            count[blockIdx.x] = c;
    }
}

/* loss = the sum of the blocks' partial losses / rows: the labelled rows
 * (0 when there are none) when count is given, else n. One block, a fixed
 * order; the count is summed exactly in 64 bits. */
static __global__ void ce_mean_kernel(float *loss, const float *partial, const int32_t *count, int blocks, int64_t n)
{
    __shared__ float scratch[32];
    float s = 0.0f;
    for (int i = threadIdx.x; i < blocks; i += blockDim.x)
        s += partial[i];
    s = tb_block_sum(s, scratch);
    if (threadIdx.x == 0) {
        int64_t rows = n;
        if (count) {
            rows = 0;
            for (int i = 0; i < blocks; i++)
                rows += count[i];
        }
        loss[0] = rows > 0 ? s / (float)rows : 0.0f;
    }
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
                                                  float scale, const float *scale_p, float temperature)
{
    if (scale_p) /* the step's loss scale, read on the device (a captured step replays with it) */
        scale *= *scale_p;
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

/* Probabilities of softmax(logits / T), one warp per row as in the forward. */
template <typename T>
static __global__ void softmax_kernel(float *probs, const T *logits, int64_t n, int64_t k, float temperature)
{
    int lane = threadIdx.x & 31;
    for (int64_t row = (int64_t)blockIdx.x * CE_WARPS + (threadIdx.x >> 5); row < n;
         row += (int64_t)gridDim.x * CE_WARPS) {
        const T *z = logits + row * k;
        float m, s;
        row_stats(z, k, temperature, lane, &m, &s);
        for (int64_t j = lane; j < k; j += 32)
            probs[row * k + j] = expf(tb_f32(z[j]) / temperature - m) / s;
    }
}

/* Blocks for n rows at CE_WARPS rows a block, at most TB_CUDA_REDUCE_BLOCKS
 * (the forward's partials must fit the scratch; 1024 blocks of 8 warps
 * about fill an H100/H200). */
static unsigned row_blocks(int64_t n)
{
    int64_t b = (n + CE_WARPS - 1) / CE_WARPS;
    return (unsigned)(b < 1 ? 1 : (b > TB_CUDA_REDUCE_BLOCKS ? TB_CUDA_REDUCE_BLOCKS : b));
}

/* ---------------------------------------------------------------- launchers */

static int softmax_ce_forward(tb_backend *be, tb_tensor *loss, tb_tensor *probs, const tb_tensor *logits,
                              const tb_tensor *labels, const tb_tensor *targets, float temperature)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    int64_t n = logits->shape[0], k = logits->shape[1];
    TB_CHECK(n >= 1, TB_ERR_UNSUPPORTED, "softmax_ce_forward: %lld rows", (long long)n);
    const int32_t *lab = labels && labels->data ? (const int32_t *)labels->data : NULL;
    const float *tgt = lab ? NULL : (const float *)targets->data;
    float *pr = probs && probs->data ? (float *)probs->data : NULL;
    unsigned blocks = row_blocks(n);
    /* the scratch: partial losses, then the labelled-row counts */
    float *partial = ctx->reduce;
    int32_t *count = lab ? (int32_t *)(ctx->reduce + TB_CUDA_REDUCE_BLOCKS) : NULL;
    TB_TRY(tb_dispatch_float(logits->dtype, "softmax_ce_forward", [&](auto tag) {
        using T = typename decltype(tag)::type;
        softmax_ce_forward_kernel<T><<<blocks, TB_CUDA_THREADS, 0, ctx->stream>>>(
            partial, count, pr, (const T *)logits->data, lab, tgt, n, k, temperature);
        return TB_OK;
    }));
    CUDA_CHECK_LAUNCH();
    ce_mean_kernel<<<1, 1024, 0, ctx->stream>>>((float *)loss->data, partial, count, (int)blocks, n);
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
                               const tb_tensor *targets, float temperature, float scale, const tb_tensor *scale_t)
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
            (T *)dlogits->data, (const float *)probs->data, lab, count, tgt, n, k, scale,
            scale_t ? (const float *)scale_t->data : NULL, temperature);
        return TB_OK;
    }));
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_softmax_ce_backward(tb_backend *be, tb_tensor *dlogits, const tb_tensor *probs,
                                const tb_tensor *labels, const tb_tensor *targets, float temperature, float scale,
                                const tb_tensor *scale_t)
{
    TB_CUDA_OP_RETURN(softmax_ce_backward(be, dlogits, probs, labels, targets, temperature, scale, scale_t),
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
    TB_TRY(tb_dispatch_float(logits->dtype, "softmax", [&](auto tag) {
        using T = typename decltype(tag)::type;
        softmax_kernel<T><<<row_blocks(n), TB_CUDA_THREADS, 0, ctx->stream>>>(
            (float *)probs->data, (const T *)logits->data, n, k, temperature);
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
