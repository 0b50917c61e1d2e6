/* Global average pool: y[n, c] = mean over h, w of x[n, h, w, c].
 * Forward: one block per (image, 32 channels), the blocks of grid row y
 * taking images y, y + gridDim.y, ... (a detector's RoI head pools more
 * "images" than a grid row count may hold); the 8 rows of the block stride
 * over the h * w positions (coalesced over channels) and are summed in a
 * fixed order. Backward: dx[n, h, w, c] += dy[n, c] / (h * w). */
#include "kernels/cuda/cuda_common.cuh"

template <typename T>
static __global__ void gap_forward_kernel(T *y, const T *x, int64_t images, int64_t hw, int64_t c)
{
    __shared__ float acc[8][33];
    int64_t ch = (int64_t)blockIdx.x * 32 + threadIdx.x;
    for (int64_t n = blockIdx.y; n < images; n += gridDim.y) {
        float s = 0.0f;
        if (ch < c)
            for (int64_t p = threadIdx.y; p < hw; p += 8)
                s += tb_f32(x[(n * hw + p) * c + ch]);
        acc[threadIdx.y][threadIdx.x] = s;
        __syncthreads();
        if (threadIdx.y == 0 && ch < c) {
            float t = 0.0f;
            for (int i = 0; i < 8; i++)
                t += acc[i][threadIdx.x];
            y[n * c + ch] = tb_from_f32<T>(t / (float)hw);
        }
        __syncthreads(); /* acc is written again for the next image */
    }
}

template <typename T>
static __global__ void gap_backward_kernel(T *dx, const T *dy, int64_t total, int64_t hw, int64_t c)
{
    TB_GRID_STRIDE_LOOP(i, total)
    {
        int64_t ch = i % c, n = i / (hw * c);
        dx[i] = tb_from_f32<T>(tb_f32(dx[i]) + tb_f32(dy[n * c + ch]) / (float)hw);
    }
}

static int gap_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    int64_t n = x->shape[0], hw = x->shape[1] * x->shape[2], c = x->shape[3];
    if (n == 0 || c == 0)
        return TB_OK;
    TB_CHECK((c + 31) / 32 <= INT32_MAX, TB_ERR_UNSUPPORTED, "global_avgpool_forward: %lld channels", (long long)c);
    dim3 grid((unsigned)((c + 31) / 32), (unsigned)(n < 65535 ? n : 65535)), block(32, 8);
    TB_TRY(tb_dispatch_float(x->dtype, "global_avgpool_forward", [&](auto tag) {
        using T = typename decltype(tag)::type;
        gap_forward_kernel<T><<<grid, block, 0, ctx->stream>>>((T *)y->data, (const T *)x->data, n, hw, c);
        return TB_OK;
    }));
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_global_avgpool_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x)
{
    TB_CUDA_OP_RETURN(gap_forward(be, y, x), "global_avgpool_forward", "y", y, "x", x, NULL, NULL, NULL, NULL);
}

static int gap_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    if (!dx || !dx->data)
        return TB_OK;
    int64_t total = tb_numel(dx), hw = dx->shape[1] * dx->shape[2], c = dx->shape[3];
    if (total == 0)
        return TB_OK;
    TB_TRY(tb_dispatch_float(dx->dtype, "global_avgpool_backward", [&](auto tag) {
        using T = typename decltype(tag)::type;
        gap_backward_kernel<T><<<tb_cuda_blocks(ctx, total), TB_CUDA_THREADS, 0, ctx->stream>>>(
            (T *)dx->data, (const T *)dy->data, total, hw, c);
        return TB_OK;
    }));
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_global_avgpool_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy)
{
    TB_CUDA_OP_RETURN(gap_backward(be, dx, dy), "global_avgpool_backward", "dx", dx, "dy", dy, NULL, NULL, NULL,
                      NULL);
}
