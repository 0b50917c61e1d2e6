/* count[0] = the number of positions where two i32 vectors agree: one block
 * (the vectors are a batch long), integer sums, so the count is exact. */
#include "kernels/cuda/cuda_common.cuh"

static __global__ void count_equal_kernel(int32_t *count, const int32_t *a, const int32_t *b, int64_t n)
{
    __shared__ unsigned long long total;
    if (threadIdx.x == 0)
        total = 0;
    __syncthreads();
    unsigned long long same = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        same += a[i] == b[i];
    atomicAdd(&total, same);
    __syncthreads();
    if (threadIdx.x == 0)
        *count = (int32_t)total;
}

static int count_equal(tb_backend *be, tb_tensor *count, const tb_tensor *a, const tb_tensor *b)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    count_equal_kernel<<<1, TB_CUDA_THREADS, 0, ctx->stream>>>((int32_t *)count->data, (const int32_t *)a->data,
                                                               (const int32_t *)b->data, a->shape[0]);
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_count_equal(tb_backend *be, tb_tensor *count, const tb_tensor *a, const tb_tensor *b)
{
    TB_CUDA_OP_RETURN(count_equal(be, count, a, b), "count_equal", "count", count, "a", a, "b", b, NULL, NULL);
}
