/* Antialiased bilinear resampling (see resample.h). */
#include "harness/data/resample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/error.h"

void tb_resample_scratch_free(tb_resample_scratch *s)
{
    free(s->coef);
    free(s->first);
    free(s->count);
    free(s->rows);
    memset(s, 0, sizeof *s);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return TB_OK;
    void *q = realloc(*p, need * elem);
    TB_CHECK(q, TB_ERR_NOMEM, "resample: cannot allocate %zu bytes", need * elem);
    *p = q;
    *cap = need;
    return TB_OK;
}

static double triangle(double t)
{
    t = fabs(t);
    return t < 1.0 ? 1.0 - t : 0.0;
}

/* Filter taps of `out` outputs covering [in0, in0 + len) of an axis of
 * `in` pixels: first[o], count[o] and count[o] weights at coef + o * taps. */
static void axis_coeffs(double in0, double len, int in, int out, int taps, float *coef, int *first, int *count)
{
    double scale = len / out;
    double fscale = scale > 1.0 ? scale : 1.0;
    double support = fscale; /* the triangle's support is 1, widened when downscaling */
    for (int o = 0; o < out; o++) {
        double center = in0 + (o + 0.5) * scale;
        int lo = (int)floor(center - support + 0.5);
        int hi = (int)floor(center + support + 0.5);
        lo = lo < 0 ? 0 : lo;
        hi = hi > in ? in : hi;
        if (hi - lo > taps)
            hi = lo + taps;
        if (hi <= lo) { /* centre outside the image: nearest edge pixel */
            lo = center < 0 ? 0 : in - 1;
            hi = lo + 1;
        }
        double total = 0.0;
        float *w = coef + (size_t)o * taps;
        for (int i = lo; i < hi; i++) {
            double v = triangle((i + 0.5 - center) / fscale);
            w[i - lo] = (float)v;
            total += v;
        }
        if (total <= 0.0) { /* only possible at exact tap edges: take the nearest pixel */
            int near = (int)floor(center);
            near = near < lo ? lo : near >= hi ? hi - 1 : near;
            for (int i = lo; i < hi; i++)
                w[i - lo] = i == near ? 1.0f : 0.0f;
        } else {
            for (int i = lo; i < hi; i++)
                w[i - lo] = (float)(w[i - lo] / total);
        }
        first[o] = lo;
        count[o] = hi - lo;
    }
}

/* One output row of the horizontal pass; flip writes it mirrored. */
static inline void filter_row(const uint8_t *in, float *out, int dw, int taps, const float *coef, const int *first,
                              const int *count, int c, bool flip)
{
    for (int o = 0; o < dw; o++) {
        const float *w = coef + (size_t)o * taps;
        const uint8_t *p = in + (size_t)first[o] * c;
        float *dst = out + (size_t)(flip ? dw - 1 - o : o) * c;
        for (int ch = 0; ch < c; ch++) {
            float acc = 0.0f;
            for (int k = 0; k < count[o]; k++)
                acc += w[k] * p[k * c + ch];
            dst[ch] = acc;
        }
    }
}

static int axis_taps(double len, int out)
{
    double scale = len / out;
    double fscale = scale > 1.0 ? scale : 1.0;
    return (int)ceil(fscale) * 2 + 2;
}

int tb_resample_box(const uint8_t *src, int sh, int sw, int c, const double box[4], float *dst, int dh, int dw,
                    bool flip, tb_resample_scratch *s)
{
    double y0 = box[0], x0 = box[1], bh = box[2], bw = box[3];
    TB_CHECK(sh > 0 && sw > 0 && dh > 0 && dw > 0 && c > 0 && bh > 0 && bw > 0, TB_ERR_INVALID,
             "resample: bad sizes %dx%dx%d box %gx%g -> %dx%d", sh, sw, c, bh, bw, dh, dw);
    if (y0 == 0 && x0 == 0 && bh == sh && bw == sw && dh == sh && dw == sw) { /* a copy */
        for (int y = 0; y < sh; y++)
            for (int x = 0; x < sw; x++) {
                const uint8_t *p = src + ((size_t)y * sw + x) * c;
                float *q = dst + ((size_t)y * sw + (flip ? sw - 1 - x : x)) * c;
                for (int ch = 0; ch < c; ch++)
                    q[ch] = p[ch];
            }
        return TB_OK;
    }
    int tx = axis_taps(bw, dw), ty = axis_taps(bh, dh);
    size_t ncoef = (size_t)dw * tx + (size_t)dh * ty;
    TB_TRY(grow((void **)&s->coef, &s->coef_cap, ncoef, sizeof *s->coef));
    size_t idx_cap = s->idx_cap;
    TB_TRY(grow((void **)&s->first, &idx_cap, (size_t)(dw + dh), sizeof *s->first));
    TB_TRY(grow((void **)&s->count, &s->idx_cap, (size_t)(dw + dh), sizeof *s->count));
    float *cx = s->coef, *cy = s->coef + (size_t)dw * tx;
    int *fx = s->first, *nx = s->count, *fy = s->first + dw, *ny = s->count + dw;
    axis_coeffs(x0, bw, sw, dw, tx, cx, fx, nx);
    axis_coeffs(y0, bh, sh, dh, ty, cy, fy, ny);
    int row_lo = fy[0], row_hi = fy[dh - 1] + ny[dh - 1];
    for (int o = 0; o < dh; o++) {
        row_lo = fy[o] < row_lo ? fy[o] : row_lo;
        row_hi = fy[o] + ny[o] > row_hi ? fy[o] + ny[o] : row_hi;
    }
    size_t row_len = (size_t)dw * c;
    TB_TRY(grow((void **)&s->rows, &s->rows_cap, (size_t)(row_hi - row_lo) * row_len, sizeof *s->rows));
    /* horizontal pass over the source rows the vertical pass will read;
     * a literal channel count lets the compiler specialise the inner loops */
    for (int y = row_lo; y < row_hi; y++) {
        const uint8_t *in = src + (size_t)y * sw * c;
        float *out = s->rows + (size_t)(y - row_lo) * row_len;
        if (c == 3)
            filter_row(in, out, dw, tx, cx, fx, nx, 3, flip);
        else if (c == 1)
            filter_row(in, out, dw, tx, cx, fx, nx, 1, flip);
        else
            filter_row(in, out, dw, tx, cx, fx, nx, c, flip);
    }
    /* vertical pass */
    for (int o = 0; o < dh; o++) {
        const float *w = cy + (size_t)o * ty;
        float *out = dst + (size_t)o * row_len;
        const float *base = s->rows + (size_t)(fy[o] - row_lo) * row_len;
        for (size_t i = 0; i < row_len; i++)
            out[i] = w[0] * base[i];
        for (int k = 1; k < ny[o]; k++) {
            const float *r = base + (size_t)k * row_len;
            for (size_t i = 0; i < row_len; i++)
                out[i] += w[k] * r[i];
        }
    }
    return TB_OK;
}
