/* Small helpers shared by the CPU kernels (private to kernels/cpu).
 *
 * Low-precision tensors are handled by converting a contiguous run of
 * elements to f32 in a caller-provided stack buffer (a "row"), computing in
 * f32, and converting back. For f32 tensors the row helpers hand out the
 * tensor's own memory, so the f32 path costs no copy.
 *
 * Reductions are split into a FIXED number of chunks whose partial sums are
 * combined in chunk order, so a result is bitwise identical for any thread
 * count (stronger than the project's "fixed thread count" promise).
 */
#ifndef TB_CPU_UTIL_H
#define TB_CPU_UTIL_H

#include <stdint.h>

#include "kernels/backend.h"
#include "kernels/error.h"
#include "kernels/tensor.h"

/* Channels processed per block by kernels that keep per-channel state on the stack. */
#define TB_CPU_CB 256
/* Fixed number of row chunks of a deterministic reduction. */
#define TB_CPU_CHUNKS 16

/* On a function holding a hot loop (not an OpenMP region: GCC outlines
 * those before it clones): compiled also for AVX-512 and AVX2, the CPU
 * picking one at load time. The loops vectorise across channels and are
 * not reassociated (no -ffast-math, and -std=c11 turns off FMA
 * contraction), so every clone computes the same bits. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define TB_CPU_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
/* For streaming loops where AVX-512 measured no better than AVX2 (BN's
 * apply and input-gradient passes: ResNet-18 at 28 px 0-5 % slower with the
 * AVX-512 clone, ResNet-50 at 224 px a few % faster; AVX2 alone +7 % there
 * and even on ResNet-18). */
#define TB_CPU_AVX2_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define TB_CPU_VECTOR_CLONES
#define TB_CPU_AVX2_CLONES
#endif

static inline void *tb_cpu_at(const tb_tensor *t, int64_t i)
{
    return (char *)t->data + i * (int64_t)tb_dtype_size(t->dtype);
}

/* Elements [off, off+count) of t as f32: t's memory itself for f32, else
 * converted into tmp (which must hold count floats). */
static inline const float *tb_cpu_load_row(float *tmp, const tb_tensor *t, int64_t off, int64_t count)
{
    if (t->dtype == TB_F32)
        return (const float *)t->data + off;
    tb_convert_to_f32(tmp, tb_cpu_at(t, off), t->dtype, count);
    return tmp;
}

/* Writes count f32 values to elements [off, off+count) of t. */
static inline void tb_cpu_store_row(const tb_tensor *t, int64_t off, const float *src, int64_t count)
{
    tb_convert_from_f32(tb_cpu_at(t, off), t->dtype, src, count);
}

/* t[off+i] += add[i] for i < count, computed in f32 and rounded once. */
static inline void tb_cpu_accum_row(const tb_tensor *t, int64_t off, const float *add, int64_t count)
{
    if (t->dtype == TB_F32) {
        float *d = (float *)t->data + off;
        for (int64_t i = 0; i < count; i++)
            d[i] += add[i];
        return;
    }
    /* one loop per half type (not a dtype switch per element): they vectorise */
    uint16_t *h = (uint16_t *)t->data + off;
    if (t->dtype == TB_F16) {
        for (int64_t i = 0; i < count; i++)
            h[i] = tb_f32_to_f16(tb_f16_to_f32(h[i]) + add[i]);
        return;
    }
    if (t->dtype == TB_BF16) {
        for (int64_t i = 0; i < count; i++)
            h[i] = tb_f32_to_bf16(tb_bf16_to_f32(h[i]) + add[i]);
        return;
    }
    for (int64_t i = 0; i < count; i++)
        tb_store_f32(t->data, t->dtype, off + i, tb_load_f32(t->data, t->dtype, off + i) + add[i]);
}

/* Bounds [*lo, *hi) of chunk k when `total` items are cut into `chunks` near-equal parts. */
static inline void tb_cpu_chunk(int64_t total, int64_t chunks, int64_t k, int64_t *lo, int64_t *hi)
{
    *lo = total * k / chunks;
    *hi = total * (k + 1) / chunks;
}

/* Number of chunks for a deterministic reduction over `total` items. */
static inline int64_t tb_cpu_chunk_count(int64_t total)
{
    return total < TB_CPU_CHUNKS ? (total > 0 ? total : 1) : TB_CPU_CHUNKS;
}

/* The mixing weight of tb_mixup_batch / tb_soft_targets (f32 {1}; NULL =
 * 1). It is host memory on this backend, so its value is checked like
 * labels are (the CUDA kernels clamp it instead; see kernels/ops.h). */
static inline int tb_cpu_lam(const char *op, const tb_tensor *lam, float *out)
{
    *out = lam ? ((const float *)lam->data)[0] : 1.0f;
    if (!(*out >= 0.0f && *out <= 1.0f))
        return tb_fail(TB_ERR_INVALID, "%s: lam %g is outside [0, 1]", op, (double)*out);
    return TB_OK;
}

static inline int64_t tb_cpu_min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t tb_cpu_max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Input range [*lo, *hi) of output position o of a pooling window along one
 * axis, clipped to the input; *padded gets the window length clipped to the
 * padded input instead (PyTorch's divisor for count_include_pad: padding
 * counts, but a ceil-mode window running past the padding does not). */
static inline void tb_cpu_pool_window(int64_t o, int kernel, int stride, int pad, int64_t in, int64_t *lo,
                                      int64_t *hi, int64_t *padded)
{
    int64_t start = o * stride - pad;
    int64_t end = tb_cpu_min64(start + kernel, in + pad);
    *padded = end - start;
    *lo = tb_cpu_max64(start, 0);
    *hi = tb_cpu_min64(end, in);
}

#endif
