/* Elementwise utilities: fill (any dtype), copy, dtype conversion, and
 * y = alpha * x + beta * y (EMA, scaling). */
#include "kernels/cuda/cuda_common.cuh"

template <typename T> static __global__ void fill_kernel(T *t, int64_t n, float value)
{
    T v = tb_from_f32<T>(value);
    TB_GRID_STRIDE_LOOP(i, n) t[i] = v;
}

template <typename TD, typename TS> static __global__ void convert_kernel(TD *dst, const TS *src, int64_t n)
{
    TB_GRID_STRIDE_LOOP(i, n) dst[i] = tb_from_f32<TD>(tb_f32(src[i]));
}

/* beta == 0 does not read y (BLAS semantics: y may hold garbage). */
template <typename TY, typename TX>
static __global__ void axpby_kernel(TY *y, float alpha, const TX *x, float beta, int64_t n)
{
    TB_GRID_STRIDE_LOOP(i, n)
    {
        float v = alpha * tb_f32(x[i]);
        if (beta != 0.0f)
            v += beta * tb_f32(y[i]);
        y[i] = tb_from_f32<TY>(v);
    }
}

static int fill(tb_backend *be, tb_tensor *t, float value)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    int64_t n = tb_numel(t);
    if (n == 0)
        return TB_OK;
    if (tb_f32_to_bits(value) == 0) { /* +0 is all-zero bytes in every dtype */
        CUDA_CHECK(cudaMemsetAsync(t->data, 0, tb_nbytes(t), ctx->stream));
        return TB_OK;
    }
    TB_TRY(tb_dispatch_any(t->dtype, "fill", [&](auto tag) {
        using T = typename decltype(tag)::type;
        fill_kernel<T><<<tb_cuda_blocks(ctx, n), TB_CUDA_THREADS, 0, ctx->stream>>>((T *)t->data, n, value);
        return TB_OK;
    }));
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_fill(tb_backend *be, tb_tensor *t, float value)
{
    TB_CUDA_OP_RETURN(fill(be, t, value), "fill", "t", t, NULL, NULL, NULL, NULL, NULL, NULL);
}

static int copy(tb_backend *be, tb_tensor *dst, const tb_tensor *src)
{
    size_t bytes = tb_nbytes(dst);
    if (bytes == 0 || dst->data == src->data)
        return TB_OK;
    CUDA_CHECK(cudaMemcpyAsync(dst->data, src->data, bytes, cudaMemcpyDeviceToDevice, tb_cuda_ctx_of(be)->stream));
    return TB_OK;
}

int tb_cuda_copy(tb_backend *be, tb_tensor *dst, const tb_tensor *src)
{
    TB_CUDA_OP_RETURN(copy(be, dst, src), "copy", "dst", dst, "src", src, NULL, NULL, NULL, NULL);
}

/* Any source dtype (u8 images included) into a float dtype. */
static int convert(tb_backend *be, tb_tensor *dst, const tb_tensor *src)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    int64_t n = tb_numel(dst);
    if (n == 0)
        return TB_OK;
    if (dst->dtype == src->dtype)
        return copy(be, dst, src);
    TB_TRY(tb_dispatch_float(dst->dtype, "convert", [&](auto dtag) {
        using TD = typename decltype(dtag)::type;
        return tb_dispatch_any(src->dtype, "convert", [&](auto stag) {
            using TS = typename decltype(stag)::type;
            convert_kernel<TD, TS><<<tb_cuda_blocks(ctx, n), TB_CUDA_THREADS, 0, ctx->stream>>>(
                (TD *)dst->data, (const TS *)src->data, n);
            return TB_OK;
        });
    }));
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_convert(tb_backend *be, tb_tensor *dst, const tb_tensor *src)
{
    TB_CUDA_OP_RETURN(convert(be, dst, src), "convert", "dst", dst, "src", src, NULL, NULL, NULL, NULL);
}

static int axpby(tb_backend *be, tb_tensor *y, float alpha, const tb_tensor *x, float beta)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    int64_t n = tb_numel(y);
    if (n == 0)
        return TB_OK;
    TB_TRY(tb_dispatch_float(y->dtype, "axpby", [&](auto ytag) {
        using TY = typename decltype(ytag)::type;
        return tb_dispatch_float(x->dtype, "axpby", [&](auto xtag) {
            using TX = typename decltype(xtag)::type;
            axpby_kernel<TY, TX><<<tb_cuda_blocks(ctx, n), TB_CUDA_THREADS, 0, ctx->stream>>>(
                (TY *)y->data, alpha, (const TX *)x->data, beta, n);
            return TB_OK;
        });
    }));
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_axpby(tb_backend *be, tb_tensor *y, float alpha, const tb_tensor *x, float beta)
{
    TB_CUDA_OP_RETURN(axpby(be, y, alpha, x, beta), "axpby", "y", y, "x", x, NULL, NULL, NULL, NULL);
}
