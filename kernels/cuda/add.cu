/* Elementwise add: y = a + b; da += dy, db += dy (either may be NULL). */
#include "kernels/cuda/cuda_common.cuh"

template <typename T> static __global__ void add_forward_kernel(T *y, const T *a, const T *b, int64_t n)
{
    TB_GRID_STRIDE_LOOP(i, n) y[i] = tb_from_f32<T>(tb_f32(a[i]) + tb_f32(b[i]));
}

/* One pass for both gradients; da or db may be NULL. */
template <typename T> static __global__ void add_backward_kernel(T *da, T *db, const T *dy, int64_t n)
{
    TB_GRID_STRIDE_LOOP(i, n)
    {
        float g = tb_f32(dy[i]);
        if (da)
            da[i] = tb_from_f32<T>(tb_f32(da[i]) + g);
        if (db)
            db[i] = tb_from_f32<T>(tb_f32(db[i]) + g);
    }
}

static int add_forward(tb_backend *be, tb_tensor *y, const tb_tensor *a, const tb_tensor *b)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    int64_t n = tb_numel(y);
    if (n == 0)
        return TB_OK;
    TB_TRY(tb_dispatch_float(y->dtype, "add_forward", [&](auto tag) {
        using T = typename decltype(tag)::type;
        add_forward_kernel<T><<<tb_cuda_blocks(ctx, n), TB_CUDA_THREADS, 0, ctx->stream>>>(
            (T *)y->data, (const T *)a->data, (const T *)b->data, n);
        return TB_OK;
    }));
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_add_forward(tb_backend *be, tb_tensor *y, const tb_tensor *a, const tb_tensor *b)
{
    TB_CUDA_OP_RETURN(add_forward(be, y, a, b), "add_forward", "y", y, "a", a, "b", b, NULL, NULL);
}

static int add_backward(tb_backend *be, tb_tensor *da, tb_tensor *db, const tb_tensor *dy)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    int64_t n = tb_numel(dy);
    void *pa = da ? da->data : NULL, *pb = db ? db->data : NULL;
    if (n == 0 || (!pa && !pb))
        return TB_OK;
    TB_TRY(tb_dispatch_float(dy->dtype, "add_backward", [&](auto tag) {
        using T = typename decltype(tag)::type;
        add_backward_kernel<T><<<tb_cuda_blocks(ctx, n), TB_CUDA_THREADS, 0, ctx->stream>>>(
            (T *)pa, (T *)pb, (const T *)dy->data, n);
        return TB_OK;
    }));
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_add_backward(tb_backend *be, tb_tensor *da, tb_tensor *db, const tb_tensor *dy)
{
    TB_CUDA_OP_RETURN(add_backward(be, da, db, dy), "add_backward", "da", da, "db", db, "dy", dy, NULL, NULL);
}
