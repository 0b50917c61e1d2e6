#include "kernels/tensor.h"

#include <stdio.h>
#include <strings.h>

#include "kernels/error.h"

size_t tb_dtype_size(tb_dtype dt)
{
    switch (dt) {
    case TB_F32: return 4;
    case TB_F16: return 2;
    case TB_BF16: return 2;
    case TB_U8: return 1;
    case TB_I32: return 4;
    default: return 0;
    }
}

const char *tb_dtype_name(tb_dtype dt)
{
    switch (dt) {
    case TB_F32: return "f32";
    case TB_F16: return "f16";
    case TB_BF16: return "bf16";
    case TB_U8: return "u8";
    case TB_I32: return "i32";
    default: return "?";
    }
}

int tb_dtype_is_float(tb_dtype dt) { return dt == TB_F32 || dt == TB_F16 || dt == TB_BF16; }

int tb_dtype_parse(const char *s, tb_dtype *out)
{
    if (!strcasecmp(s, "f32") || !strcasecmp(s, "fp32") || !strcasecmp(s, "float32"))
        *out = TB_F32;
    else if (!strcasecmp(s, "f16") || !strcasecmp(s, "fp16") || !strcasecmp(s, "float16"))
        *out = TB_F16;
    else if (!strcasecmp(s, "bf16") || !strcasecmp(s, "bfloat16"))
        *out = TB_BF16;
    else
        return tb_fail(TB_ERR_INVALID, "unknown precision '%s' (expected fp32, fp16 or bf16)", s);
    return TB_OK;
}

tb_tensor tb_tensor_make(void *data, tb_dtype dt, int ndim, const int64_t *shape)
{
    tb_tensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.dtype = dt;
    t.ndim = ndim < 0 ? 0 : (ndim > TB_MAX_DIMS ? TB_MAX_DIMS : ndim);
    for (int i = 0; i < t.ndim; i++)
        t.shape[i] = shape[i];
    return t;
}

tb_tensor tb_tensor_4d(void *data, tb_dtype dt, int64_t n, int64_t h, int64_t w, int64_t c)
{
    int64_t s[4] = {n, h, w, c};
    return tb_tensor_make(data, dt, 4, s);
}

tb_tensor tb_tensor_2d(void *data, tb_dtype dt, int64_t n, int64_t c)
{
    int64_t s[2] = {n, c};
    return tb_tensor_make(data, dt, 2, s);
}

tb_tensor tb_tensor_1d(void *data, tb_dtype dt, int64_t c)
{
    int64_t s[1] = {c};
    return tb_tensor_make(data, dt, 1, s);
}

int64_t tb_numel(const tb_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

size_t tb_nbytes(const tb_tensor *t) { return (size_t)tb_numel(t) * tb_dtype_size(t->dtype); }

int tb_same_shape(const tb_tensor *a, const tb_tensor *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return 0;
    return 1;
}

char *tb_shape_str(const tb_tensor *t, char *buf, size_t size)
{
    size_t off = 0;
    if (!t) {
        snprintf(buf, size, "(none)");
        return buf;
    }
    off += (size_t)snprintf(buf + off, size - off, "[");
    for (int i = 0; i < t->ndim && off < size; i++)
        off += (size_t)snprintf(buf + off, size - off, i ? ",%lld" : "%lld", (long long)t->shape[i]);
    if (off < size)
        snprintf(buf + off, size - off, "] %s", tb_dtype_name(t->dtype));
    return buf;
}

/* One loop per dtype (not tb_load_f32's switch per element), so that the
 * compiler vectorises the branch-free half conversions. */
void tb_convert_to_f32(float *dst, const void *src, tb_dtype src_dt, int64_t count)
{
    const uint16_t *h = src;
    switch (src_dt) {
    case TB_F32:
        memmove(dst, src, (size_t)count * sizeof(float));
        return;
    case TB_F16:
        for (int64_t i = 0; i < count; i++)
            dst[i] = tb_f16_to_f32(h[i]);
        return;
    case TB_BF16:
        for (int64_t i = 0; i < count; i++)
            dst[i] = tb_bf16_to_f32(h[i]);
        return;
    default:
        for (int64_t i = 0; i < count; i++)
            dst[i] = tb_load_f32(src, src_dt, i);
    }
}

void tb_convert_from_f32(void *dst, tb_dtype dst_dt, const float *src, int64_t count)
{
    uint16_t *h = dst;
    switch (dst_dt) {
    case TB_F32:
        memmove(dst, src, (size_t)count * sizeof(float));
        return;
    case TB_F16:
        for (int64_t i = 0; i < count; i++)
            h[i] = tb_f32_to_f16(src[i]);
        return;
    case TB_BF16:
        for (int64_t i = 0; i < count; i++)
            h[i] = tb_f32_to_bf16(src[i]);
        return;
    default:
        for (int64_t i = 0; i < count; i++)
            tb_store_f32(dst, dst_dt, i, src[i]);
    }
}
