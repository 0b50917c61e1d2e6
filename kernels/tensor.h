/* Tensors: a typed view into memory owned by a backend (usually an arena).
 *
 * Layouts (DESIGN.md): activations NHWC, shape {n, h, w, c}; convolution
 * weights OHWI (cuDNN's KRSC), shape {k, r, s, c / groups}; linear weights
 * {k, c} (out x in, as PyTorch); vectors {c}; 2-D activations {n, c}.
 * A tensor never owns its memory.
 */
#ifndef TB_TENSOR_H
#define TB_TENSOR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tb_dtype {
    TB_F32 = 0,
    TB_F16,
    TB_BF16,
    TB_U8,
    TB_I32,
    TB_DTYPE_COUNT
} tb_dtype;

#define TB_MAX_DIMS 4

typedef struct tb_tensor {
    void *data;                 /* NULL means "absent" for optional arguments */
    tb_dtype dtype;
    int ndim;
    int64_t shape[TB_MAX_DIMS];
} tb_tensor;

size_t tb_dtype_size(tb_dtype dt);
const char *tb_dtype_name(tb_dtype dt);
int tb_dtype_is_float(tb_dtype dt);
/* Parses "f32"/"fp32"/"float32", "f16"/"fp16", "bf16"; returns TB_OK or an error. */
int tb_dtype_parse(const char *s, tb_dtype *out);

/* Builds a tensor descriptor (data may be NULL until assigned). */
tb_tensor tb_tensor_make(void *data, tb_dtype dt, int ndim, const int64_t *shape);
tb_tensor tb_tensor_4d(void *data, tb_dtype dt, int64_t n, int64_t h, int64_t w, int64_t c);
tb_tensor tb_tensor_2d(void *data, tb_dtype dt, int64_t n, int64_t c);
tb_tensor tb_tensor_1d(void *data, tb_dtype dt, int64_t c);

int64_t tb_numel(const tb_tensor *t);
size_t tb_nbytes(const tb_tensor *t);
int tb_same_shape(const tb_tensor *a, const tb_tensor *b);
/* Writes e.g. "[8,28,28,16] f16" into buf and returns buf. */
char *tb_shape_str(const tb_tensor *t, char *buf, size_t size);

/* ---- f16 / bf16 conversion (host side; round to nearest even) ---- */

static inline float tb_bits_to_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t tb_f32_to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float tb_bf16_to_f32(uint16_t h) { return tb_bits_to_f32((uint32_t)h << 16); }

static inline uint16_t tb_f32_to_bf16(float f)
{
    uint32_t u = tb_f32_to_bits(f);
    if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu))
        return (uint16_t)((u >> 16) | 0x0040u); /* quiet NaN stays NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float tb_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0) {
        if (man == 0)
            return tb_bits_to_f32(sign);
        /* subnormal: value = man * 2^-24 */
        float v = (float)man * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    if (exp == 31)
        return tb_bits_to_f32(sign | 0x7f800000u | (man << 13));
    return tb_bits_to_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

static inline uint16_t tb_f32_to_f16(float f)
{
    uint32_t u = tb_f32_to_bits(f);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t abs = u & 0x7fffffffu;
    if (abs >= 0x7f800000u) /* inf or NaN */
        return (uint16_t)(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
    if (abs >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7c00u);
    if (abs < 0x38800000u) { /* below the smallest normal half: subnormal or zero */
        /* add 0.5 (as f32 magic) so the FPU rounds to nearest even at 2^-24 */
        float v = tb_bits_to_f32(abs) + 0.5f;
        return (uint16_t)(sign | (tb_f32_to_bits(v) - 0x3f000000u));
    }
    uint32_t mant_odd = (abs >> 13) & 1u;
    abs += 0xc8000fffu + mant_odd; /* rebias exponent (-112 << 23) and round */
    return (uint16_t)(sign | (abs >> 13));
}

/* Element access for CPU code that handles every float dtype through f32. */
static inline float tb_load_f32(const void *p, tb_dtype dt, int64_t i)
{
    switch (dt) {
    case TB_F32: return ((const float *)p)[i];
    case TB_F16: return tb_f16_to_f32(((const uint16_t *)p)[i]);
    case TB_BF16: return tb_bf16_to_f32(((const uint16_t *)p)[i]);
    case TB_U8: return (float)((const uint8_t *)p)[i];
    case TB_I32: return (float)((const int32_t *)p)[i];
    default: return 0.0f;
    }
}

static inline void tb_store_f32(void *p, tb_dtype dt, int64_t i, float v)
{
    switch (dt) {
    case TB_F32: ((float *)p)[i] = v; break;
    case TB_F16: ((uint16_t *)p)[i] = tb_f32_to_f16(v); break;
    case TB_BF16: ((uint16_t *)p)[i] = tb_f32_to_bf16(v); break;
    case TB_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case TB_I32: ((int32_t *)p)[i] = (int32_t)v; break;
    default: break;
    }
}

/* Bulk conversions between a float dtype and f32 (host memory). */
void tb_convert_to_f32(float *dst, const void *src, tb_dtype src_dt, int64_t count);
void tb_convert_from_f32(void *dst, tb_dtype dst_dt, const float *src, int64_t count);

#ifdef __cplusplus
}
#endif
#endif
