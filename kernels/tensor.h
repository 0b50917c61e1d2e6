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

/* Both half conversions are branch-free (each case computed, then chosen
 * by masks: a ternary here compiles to branches), so that the bulk
 * conversions of the CPU backend's f16 path vectorise; bit for bit the
 * straightforward definitions, for every input. */
static inline uint32_t tb_mask_if(int cond) { return 0u - (uint32_t)(cond != 0); }

static inline float tb_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    int32_t em = h & 0x7fff;
    uint32_t normal = ((uint32_t)em << 13) + (112u << 23); /* rebias the exponent */
    uint32_t special = ((uint32_t)em << 13) | 0x7f800000u; /* inf, NaN with its payload */
    /* subnormal (and zero): man * 2^-24, exact, with no subnormal float arithmetic */
    uint32_t sub = tb_f32_to_bits((float)em * 5.9604644775390625e-8f);
    uint32_t is_special = tb_mask_if(em >= 0x7c00), is_sub = tb_mask_if(em < 0x0400);
    uint32_t bits = (special & is_special) | (sub & is_sub) | (normal & ~(is_special | is_sub));
    return tb_bits_to_f32(sign | bits);
}

static inline uint16_t tb_f32_to_f16(float f)
{
    uint32_t u = tb_f32_to_bits(f);
    uint32_t sign = (u >> 16) & 0x8000u;
    int32_t abs = (int32_t)(u & 0x7fffffffu);
    /* inf, or NaN (which stays a quiet NaN) */
    uint32_t naninf = 0x7c00u | (tb_mask_if(abs > 0x7f800000) & 0x200u);
    /* below the smallest normal half: add 0.5 (as f32 magic) so the FPU
     * rounds to nearest even at 2^-24 */
    uint32_t sub = tb_f32_to_bits(tb_bits_to_f32((uint32_t)abs) + 0.5f) - 0x3f000000u;
    /* rebias the exponent (-112 << 23) and round to nearest even */
    uint32_t normal = ((uint32_t)abs + 0xc8000fffu + (((uint32_t)abs >> 13) & 1u)) >> 13;
    uint32_t is_naninf = tb_mask_if(abs >= 0x7f800000);
    uint32_t is_over = tb_mask_if(abs >= 0x477ff000) & ~is_naninf; /* rounds to >= 65520: inf */
    uint32_t is_sub = tb_mask_if(abs < 0x38800000);
    uint32_t is_normal = ~(is_naninf | is_over | is_sub);
    uint32_t r = (naninf & is_naninf) | (0x7c00u & is_over) | (sub & is_sub) | (normal & is_normal);
    return (uint16_t)(sign | r);
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
