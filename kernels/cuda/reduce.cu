/* Reductions and broadcasts shared by several ops: bias add and bias
 * gradient (conv2d, linear), and the final pass of two-pass reductions
 * (softmax_ce's loss, sumsq). Every reduction runs in a fixed order, so a
 * result does not change from run to run (no atomics). */
#include "kernels/cuda/cuda_common.cuh"

/* ---------------------------------------------------------------- kernels */

/* Pass 1 of a column sum: block (32, 8) sums 32 columns over one chunk of rows. */
template <typename T>
static __global__ void column_partial_kernel(float *partial, const T *x, int64_t rows, int64_t cols, int64_t chunk)
{
    __shared__ float acc[8][33];
    int64_t col = (int64_t)blockIdx.x * 32 + threadIdx.x;
    int64_t r0 = (int64_t)blockIdx.y * chunk;
    int64_t r1 = r0 + chunk < rows ? r0 + chunk : rows;
    float s = 0.0f;
    if (col < cols)
        for (int64_t r = r0 + threadIdx.y; r < r1; r += 8)
            s += tb_f32(x[r * cols + col]);
    acc[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && col < cols) {
        float t = 0.0f;
        for (int i = 0; i < 8; i++)
            t += acc[i][threadIdx.x];
        partial[(int64_t)blockIdx.y * cols + col] = t;
    }
}

/* Pass 2: out[j] += sum over chunks of partial[chunk, j], in chunk order. */
template <typename TO>
static __global__ void column_final_kernel(TO *out, const float *partial, int64_t chunks, int64_t cols)
{
    TB_GRID_STRIDE_LOOP(j, cols)
    {
        float s = 0.0f;
        for (int64_t c = 0; c < chunks; c++)
            s += partial[c * cols + j];
        out[j] = tb_from_f32<TO>(tb_f32(out[j]) + s);
    }
}

template <typename T>
static __global__ void bias_broadcast_kernel(T *y, const T *bias, int64_t total, int64_t cols, bool accumulate)
{
    TB_GRID_STRIDE_LOOP(i, total)
    {
        float b = tb_f32(bias[i % cols]);
        y[i] = tb_from_f32<T>(accumulate ? tb_f32(y[i]) + b : b);
    }
}

static __global__ void sum_f32_kernel(float *out, const float *in, int64_t n, float scale, bool accumulate)
{
    __shared__ float scratch[32];
    float s = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        s += in[i];
    s = tb_block_sum(s, scratch);
    if (threadIdx.x == 0)
        out[0] = (accumulate ? out[0] : 0.0f) + scale * s;
}

/* ---------------------------------------------------------------- launchers */

int64_t tb_cuda_column_chunks(const tb_cuda_ctx *ctx, int64_t rows, int64_t cols, int64_t per_chunk)
{
    int64_t col_blocks = (cols + 31) / 32;
    int64_t chunks = ((int64_t)ctx->sm_count * 8 + col_blocks - 1) / col_blocks;
    int64_t max_by_rows = (rows + 63) / 64, max_by_scratch = (int64_t)TB_CUDA_REDUCE_ELEMS / per_chunk;
    if (chunks > max_by_rows)
        chunks = max_by_rows;
    if (chunks > max_by_scratch)
        chunks = max_by_scratch;
    if (chunks > 65535)
        chunks = 65535;
    return chunks < 1 ? 1 : chunks;
}

int tb_cuda_column_sum_acc(tb_cuda_ctx *ctx, void *out, tb_dtype out_dt, const void *x, tb_dtype dt, int64_t rows,
                           int64_t cols)
{
    if (rows <= 0 || cols <= 0)
        return TB_OK;
    TB_CHECK(cols <= (int64_t)TB_CUDA_REDUCE_ELEMS, TB_ERR_UNSUPPORTED,
             "column sum over %lld columns exceeds the reduction scratch (%u)", (long long)cols,
             TB_CUDA_REDUCE_ELEMS);
    int64_t col_blocks = (cols + 31) / 32;
    int64_t chunks = tb_cuda_column_chunks(ctx, rows, cols, cols);
    int64_t chunk = (rows + chunks - 1) / chunks;
    chunks = (rows + chunk - 1) / chunk;
    dim3 grid((unsigned)col_blocks, (unsigned)chunks), block(32, 8);
    TB_TRY(tb_dispatch_float(dt, "column sum", [&](auto tag) {
        using T = typename decltype(tag)::type;
        column_partial_kernel<T><<<grid, block, 0, ctx->stream>>>(ctx->reduce, (const T *)x, rows, cols, chunk);
        return TB_OK;
    }));
    CUDA_CHECK_LAUNCH();
    TB_TRY(tb_dispatch_float(out_dt, "column sum", [&](auto tag) {
        using TO = typename decltype(tag)::type;
        column_final_kernel<TO><<<tb_cuda_blocks(ctx, cols), TB_CUDA_THREADS, 0, ctx->stream>>>(
            (TO *)out, ctx->reduce, chunks, cols);
        return TB_OK;
    }));
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_bias_broadcast(tb_cuda_ctx *ctx, void *y, const void *bias, tb_dtype dt, int64_t rows, int64_t cols,
                           bool accumulate)
{
    int64_t total = rows * cols;
    if (total <= 0)
        return TB_OK;
    TB_TRY(tb_dispatch_float(dt, "bias", [&](auto tag) {
        using T = typename decltype(tag)::type;
        bias_broadcast_kernel<T><<<tb_cuda_blocks(ctx, total), TB_CUDA_THREADS, 0, ctx->stream>>>(
            (T *)y, (const T *)bias, total, cols, accumulate);
        return TB_OK;
    }));
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_sum_f32(tb_cuda_ctx *ctx, float *out, const float *in, int64_t n, float scale, bool accumulate)
{
    sum_f32_kernel<<<1, 1024, 0, ctx->stream>>>(out, in, n, scale, accumulate);
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}
