/* Mixup and CutMix of a batch with its reverse (sample i with n-1-i, as
 * GluonCV and timm pair them), and the partner labels. The mixing weight and
 * the box are read on the device (a captured step replays with each step's
 * draw) and clamped into range, since the host cannot check them there. */
#include "kernels/cuda/cuda_common.cuh"

template <typename T>
static __global__ void mixup_kernel(T *y, const T *x, int64_t n, int64_t per, const float *lam_p)
{
    float lam = fminf(fmaxf(*lam_p, 0.0f), 1.0f);
    TB_GRID_STRIDE_LOOP(i, n * per)
    {
        int64_t s = i / per, j = i % per;
        float a = tb_f32(x[i]), b = tb_f32(x[(n - 1 - s) * per + j]);
        y[i] = tb_from_f32<T>(lam * a + (1.0f - lam) * b);
    }
}

/* x {n, h, w, c}: inside the box rows [y0, y1) x columns [x0, x1) (box =
 * {y0, y1, x0, x1}) take the partner's pixel; a box reaching outside the
 * image is cut to it, an inverted one is empty. */
template <typename T>
static __global__ void cutmix_kernel(T *y, const T *x, int64_t n, int64_t h, int64_t w, int64_t c,
                                     const int32_t *box)
{
    int64_t y0 = box[0], y1 = box[1], x0 = box[2], x1 = box[3];
    int64_t per = h * w * c;
    TB_GRID_STRIDE_LOOP(i, n * per)
    {
        int64_t s = i / per, j = i % per;
        int64_t row = j / (w * c), col = (j / c) % w;
        bool inside = row >= y0 && row < y1 && col >= x0 && col < x1;
        y[i] = inside ? x[(n - 1 - s) * per + j] : x[i];
    }
}

static __global__ void reverse_labels_kernel(int32_t *out, const int32_t *labels, int64_t n)
{
    TB_GRID_STRIDE_LOOP(i, n) out[i] = labels[n - 1 - i];
}

static int mixup_batch(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *lam)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    int64_t n = x->shape[0], total = tb_numel(x);
    if (total == 0)
        return TB_OK;
    int64_t per = total / n;
    TB_TRY(tb_dispatch_float(x->dtype, "mixup_batch", [&](auto tag) {
        using T = typename decltype(tag)::type;
        mixup_kernel<T><<<tb_cuda_blocks(ctx, total), TB_CUDA_THREADS, 0, ctx->stream>>>(
            (T *)y->data, (const T *)x->data, n, per, (const float *)lam->data);
        return TB_OK;
    }));
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_mixup_batch(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *lam)
{
    TB_CUDA_OP_RETURN(mixup_batch(be, y, x, lam), "mixup_batch", "y", y, "x", x, "lam", lam, NULL, NULL);
}

static int cutmix_batch(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *box)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    TB_CHECK(x->ndim == 4, TB_ERR_INVALID, "cutmix_batch: x must be {n,h,w,c}");
    int64_t total = tb_numel(x);
    if (total == 0)
        return TB_OK;
    TB_TRY(tb_dispatch_float(x->dtype, "cutmix_batch", [&](auto tag) {
        using T = typename decltype(tag)::type;
        cutmix_kernel<T><<<tb_cuda_blocks(ctx, total), TB_CUDA_THREADS, 0, ctx->stream>>>(
            (T *)y->data, (const T *)x->data, x->shape[0], x->shape[1], x->shape[2], x->shape[3],
            (const int32_t *)box->data);
        return TB_OK;
    }));
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_cutmix_batch(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *box)
{
    TB_CUDA_OP_RETURN(cutmix_batch(be, y, x, box), "cutmix_batch", "y", y, "x", x, "box", box, NULL, NULL);
}

static int reverse_labels(tb_backend *be, tb_tensor *labels_b, const tb_tensor *labels)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    int64_t n = tb_numel(labels);
    if (n == 0)
        return TB_OK;
    reverse_labels_kernel<<<tb_cuda_blocks(ctx, n), TB_CUDA_THREADS, 0, ctx->stream>>>(
        (int32_t *)labels_b->data, (const int32_t *)labels->data, n);
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_reverse_labels(tb_backend *be, tb_tensor *labels_b, const tb_tensor *labels)
{
    TB_CUDA_OP_RETURN(reverse_labels(be, labels_b, labels), "reverse_labels", "labels_b", labels_b, "labels", labels,
                      NULL, NULL, NULL, NULL);
}
