/* Elementwise utilities: fill, copy, dtype conversion, axpby (EMA, scaling),
 * the non-finite check of dynamic loss scaling and sums of squares
 * (gradient norms). Shapes may differ as long as element counts agree (the
 * front-end checks); tensors are treated as flat arrays. */
#include <math.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/error.h"

int tb_cpu_fill(tb_backend *be, tb_tensor *t, float value)
{
    int64_t count = tb_numel(t);
    switch (t->dtype) {
    case TB_F16:
    case TB_BF16: {
        uint16_t bits = t->dtype == TB_F16 ? tb_f32_to_f16(value) : tb_f32_to_bf16(value);
        uint16_t *d = t->data;
#pragma omp parallel for schedule(static) num_threads(be->threads)
        for (int64_t i = 0; i < count; i++)
            d[i] = bits;
        return TB_OK;
    }
    case TB_U8:
        memset(t->data, (int)value, (size_t)count);
        return TB_OK;
    case TB_F32: {
        /* the hot case (zeroing gradients each step): no per-element dtype switch */
        float *d = t->data;
        if (value == 0.0f && !signbit(value)) {
            memset(d, 0, sizeof(float) * (size_t)count);
            return TB_OK;
        }
#pragma omp parallel for schedule(static) num_threads(be->threads)
        for (int64_t i = 0; i < count; i++)
            d[i] = value;
        return TB_OK;
    }
    default: /* i32: exact through tb_store_f32 (the front-end range-checked it) */
#pragma omp parallel for schedule(static) num_threads(be->threads)
        for (int64_t i = 0; i < count; i++)
            tb_store_f32(t->data, t->dtype, i, value);
        return TB_OK;
    }
}

int tb_cpu_copy(tb_backend *be, tb_tensor *dst, const tb_tensor *src)
{
    (void)be;
    if (dst->data != src->data)
        memcpy(dst->data, src->data, tb_nbytes(src));
    return TB_OK;
}

int tb_cpu_convert(tb_backend *be, tb_tensor *dst, const tb_tensor *src)
{
    int64_t count = tb_numel(src);
    if (dst->dtype == src->dtype)
        return tb_cpu_copy(be, dst, src);
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t i = 0; i < count; i++)
        tb_store_f32(dst->data, dst->dtype, i, tb_load_f32(src->data, src->dtype, i));
    return TB_OK;
}

/* y = alpha * x + beta * y; beta == 0 does not read y (BLAS convention), so
 * an uninitialised y cannot leak a NaN. */
int tb_cpu_axpby(tb_backend *be, tb_tensor *y, float alpha, const tb_tensor *x, float beta)
{
    int64_t count = tb_numel(x);
    if (y->dtype == TB_F32 && x->dtype == TB_F32) {
        const float *xs = x->data;
        float *ys = y->data;
#pragma omp parallel for schedule(static) num_threads(be->threads)
        for (int64_t i = 0; i < count; i++)
            ys[i] = beta == 0.0f ? alpha * xs[i] : alpha * xs[i] + beta * ys[i];
        return TB_OK;
    }
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t i = 0; i < count; i++) {
        float v = alpha * tb_load_f32(x->data, x->dtype, i);
        if (beta != 0.0f)
            v += beta * tb_load_f32(y->data, y->dtype, i);
        tb_store_f32(y->data, y->dtype, i, v);
    }
    return TB_OK;
}

/* Exponent all ones = inf or NaN, checked on the stored bits. */
static int nonfinite_at(const tb_tensor *x, int64_t i)
{
    switch (x->dtype) {
    case TB_F32: return !isfinite(((const float *)x->data)[i]);
    case TB_F16: return (((const uint16_t *)x->data)[i] & 0x7c00u) == 0x7c00u;
    case TB_BF16: return (((const uint16_t *)x->data)[i] & 0x7f80u) == 0x7f80u;
    default: return 0;
    }
}

int tb_cpu_nonfinite_check(tb_backend *be, tb_tensor *flag, const tb_tensor *x)
{
    int64_t count = tb_numel(x);
    int bad = 0;
#pragma omp parallel for schedule(static) num_threads(be->threads) reduction(| : bad)
    for (int64_t i = 0; i < count; i++)
        bad |= nonfinite_at(x, i);
    if (bad)
        ((int32_t *)flag->data)[0] |= 1;
    return TB_OK;
}

int tb_cpu_sumsq(tb_backend *be, tb_tensor *out, const tb_tensor *x)
{
    int64_t count = tb_numel(x);
    int64_t chunks = tb_cpu_chunk_count(count);
    double partial[TB_CPU_CHUNKS];
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t ch = 0; ch < chunks; ch++) {
        int64_t lo, hi;
        double s = 0.0;
        tb_cpu_chunk(count, chunks, ch, &lo, &hi);
        for (int64_t i = lo; i < hi; i++) {
            double v = tb_load_f32(x->data, x->dtype, i);
            s += v * v;
        }
        partial[ch] = s;
    }
    double total = ((float *)out->data)[0];
    for (int64_t ch = 0; ch < chunks; ch++)
        total += partial[ch];
    ((float *)out->data)[0] = (float)total;
    return TB_OK;
}
