/* Device-side helpers shared by the CUDA kernels: dtype conversion (all
 * arithmetic is f32; low-precision values are rounded to nearest even on
 * store, as the CPU backend's tb_store_f32 does), dtype dispatch for the
 * launchers, launch geometry and block reductions. Everything here is inline
 * or a template, so it can be included by every .cu file. */
#ifndef TB_CUDA_COMMON_CUH
#define TB_CUDA_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "kernels/cuda/cuda_context.h"

/* ---- element conversion (host too: tests compare them with tensor.h's) ---- */
#define TB_HD __host__ __device__ __forceinline__
TB_HD float tb_f32(float v) { return v; }
TB_HD float tb_f32(__half v) { return __half2float(v); }
TB_HD float tb_f32(__nv_bfloat16 v) { return __bfloat162float(v); }
TB_HD float tb_f32(uint8_t v) { return (float)v; }
TB_HD float tb_f32(int32_t v) { return (float)v; }

template <typename T> TB_HD T tb_from_f32(float v);
template <> TB_HD float tb_from_f32<float>(float v) { return v; }
template <> TB_HD __half tb_from_f32<__half>(float v) { return __float2half_rn(v); }
template <> TB_HD __nv_bfloat16 tb_from_f32<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
/* Same truncating casts as the CPU's tb_store_f32 for integer dtypes. */
template <> TB_HD uint8_t tb_from_f32<uint8_t>(float v) { return (uint8_t)v; }
template <> TB_HD int32_t tb_from_f32<int32_t>(float v) { return (int32_t)v; }

/* ---- dtype dispatch in launchers ---- */
template <typename T> struct tb_type_tag {
    using type = T;
};

/* Calls f(tb_type_tag<T>{}) for the C++ type of a float dtype. */
template <typename F> static inline int tb_dispatch_float(tb_dtype dt, const char *what, F &&f)
{
    switch (dt) {
    case TB_F32: return f(tb_type_tag<float>{});
    case TB_F16: return f(tb_type_tag<__half>{});
    case TB_BF16: return f(tb_type_tag<__nv_bfloat16>{});
    default: return tb_fail(TB_ERR_UNSUPPORTED, "%s: dtype %s is not a float dtype", what, tb_dtype_name(dt));
    }
}

/* Same for every dtype, integers included. */
template <typename F> static inline int tb_dispatch_any(tb_dtype dt, const char *what, F &&f)
{
    switch (dt) {
    case TB_U8: return f(tb_type_tag<uint8_t>{});
    case TB_I32: return f(tb_type_tag<int32_t>{});
    default: return tb_dispatch_float(dt, what, f);
    }
}

/* ---- launch geometry ---- */
#define TB_CUDA_THREADS 256

/* Blocks for a grid-stride loop over n elements: enough to fill the GPU,
 * never more than needed. */
static inline unsigned tb_cuda_blocks(const tb_cuda_ctx *ctx, int64_t n, int threads = TB_CUDA_THREADS)
{
    int64_t need = (n + threads - 1) / threads;
    int64_t cap = (int64_t)ctx->sm_count * 32;
    if (need > cap)
        need = cap;
    return (unsigned)(need < 1 ? 1 : need);
}

#define TB_GRID_STRIDE_LOOP(i, n)                                                          \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (int64_t)(n);     \
         i += (int64_t)gridDim.x * blockDim.x)

/* ---- block reductions (blockDim.x a multiple of 32, at most 1024) ---- */
__device__ __forceinline__ float tb_warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float tb_warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Sum over the block, returned to every thread. scratch: 32 floats of shared memory. */
__device__ __forceinline__ float tb_block_sum(float v, float *scratch)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = (blockDim.x + 31) >> 5;
    v = tb_warp_sum(v);
    __syncthreads(); /* scratch may still be read by a previous reduction */
    if (lane == 0)
        scratch[warp] = v;
    __syncthreads();
    v = lane < nwarps ? scratch[lane] : 0.0f;
    return tb_warp_sum(v);
}

__device__ __forceinline__ float tb_block_max(float v, float *scratch)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = (blockDim.x + 31) >> 5;
    v = tb_warp_max(v);
    __syncthreads();
    if (lane == 0)
        scratch[warp] = v;
    __syncthreads();
    v = lane < nwarps ? scratch[lane] : -INFINITY;
    return tb_warp_max(v);
}

/* ---- counter-based uniform: the device twin of tb_hash_uniform (rng.h) ---- */
TB_HD uint64_t tb_splitmix64_dev(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* the device twin of tb_dropout_step_seed (rng.h) */
TB_HD uint64_t tb_dropout_step_seed_dev(uint64_t seed, uint64_t step, uint64_t salt)
{
    return tb_splitmix64_dev(seed ^ tb_splitmix64_dev(step * 4099u + salt));
}

TB_HD float tb_hash_uniform_dev(uint64_t seed, uint64_t i)
{
    uint64_t h = tb_splitmix64_dev(seed ^ tb_splitmix64_dev(i));
    return (float)(h >> 40) * (1.0f / 16777216.0f);
}

/* Wraps an op implementation: on failure, names the op and its tensors. */
#define TB_CUDA_OP_RETURN(rc, op, ...)                                   \
    do {                                                                 \
        int tb_op_rc_ = (rc);                                            \
        return tb_op_rc_ == TB_OK ? TB_OK : tb_cuda_op_failed(tb_op_rc_, op, __VA_ARGS__); \
    } while (0)

#endif
