#include "conv_test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/error.h"
#include "kernels/rng.h"

#define P(sh, sw, ph, pw, dh, dw, g) {sh, sw, ph, pw, dh, dw, g}

const conv_case conv_tiny_cases[] = {
    /* name                      n  h  w  c  k  r  s  stride pad   dil   groups   bias */
    {"3x3 s1 p1 7x5 bias",       1, 7, 5, 4, 6, 3, 3, P(1, 1, 1, 1, 1, 1, 1), true},
    {"3x3 s2 p1 batch3",         3, 7, 5, 3, 4, 3, 3, P(2, 2, 1, 1, 1, 1, 1), false},
    {"3x3 s2 p0 odd",            1, 7, 5, 2, 3, 3, 3, P(2, 2, 0, 0, 1, 1, 1), true},
    {"5x5 s1 p2",                1, 6, 7, 2, 3, 5, 5, P(1, 1, 2, 2, 1, 1, 1), true},
    {"3x3 dil2 p2 batch2",       2, 7, 7, 3, 2, 3, 3, P(1, 1, 2, 2, 2, 2, 1), false},
    {"3x3 dil4 p4 (FCN stage 4)", 1, 12, 12, 4, 3, 3, 3, P(1, 1, 4, 4, 4, 4, 1), false},
    {"mixed stride/pad/dil",     1, 8, 9, 3, 4, 3, 2, P(2, 1, 1, 0, 1, 2, 1), true},
    {"groups2 3x3",              1, 5, 6, 4, 6, 3, 3, P(1, 1, 1, 1, 1, 1, 2), true},
    {"groups2 s2 batch3",        3, 7, 5, 6, 4, 3, 3, P(2, 2, 1, 1, 1, 1, 2), false},
    {"depthwise 3x3",            2, 7, 5, 5, 5, 3, 3, P(1, 1, 1, 1, 1, 1, 5), true},
    {"depthwise s2",             1, 8, 7, 4, 4, 3, 3, P(2, 2, 1, 1, 1, 1, 4), false},
    {"depthwise 5x5 dil2 b3",    3, 9, 8, 3, 3, 5, 5, P(1, 2, 4, 2, 2, 1, 3), true},
    {"depthwise multiplier 2",   1, 6, 5, 3, 6, 3, 3, P(1, 1, 1, 1, 1, 1, 3), true},
    {"1x1 batch3 bias",          3, 5, 7, 6, 4, 1, 1, P(1, 1, 0, 0, 1, 1, 1), true},
    {"1x1 s2",                   2, 7, 5, 4, 3, 1, 1, P(2, 2, 0, 0, 1, 1, 1), false},
    {"1x1 groups2",              1, 3, 5, 4, 6, 1, 1, P(1, 1, 0, 0, 1, 1, 2), true},
    {"1x1 pad1",                 1, 4, 3, 3, 2, 1, 1, P(1, 1, 1, 1, 1, 1, 1), false},
    {"1x7 pad(0,3)",             1, 5, 9, 3, 4, 1, 7, P(1, 1, 0, 3, 1, 1, 1), true},
    {"7x1 pad(3,0) batch3",      3, 9, 5, 3, 4, 7, 1, P(1, 1, 3, 0, 1, 1, 1), false},
    {"7x7 s2 p3 stem",           1, 11, 9, 3, 4, 7, 7, P(2, 2, 3, 3, 1, 1, 1), true},
    {"3x3 pad2 wider than input", 1, 2, 3, 2, 3, 3, 3, P(1, 2, 2, 2, 1, 1, 1), true},
    {"3x3 one output pixel",     1, 3, 3, 2, 3, 3, 3, P(1, 1, 0, 0, 1, 1, 1), true},
    {"depthwise one output row", 1, 3, 4, 3, 3, 3, 3, P(1, 1, 0, 0, 1, 1, 3), true},
};
const size_t conv_tiny_case_count = sizeof conv_tiny_cases / sizeof conv_tiny_cases[0];

conv_shapes conv_case_shapes(const conv_case *cc, tb_dtype dt)
{
    const tb_conv2d_params *p = &cc->p;
    int64_t oh = tb_conv2d_out_size(cc->h, cc->r, p->stride_h, p->pad_h, p->dil_h);
    int64_t ow = tb_conv2d_out_size(cc->w, cc->s, p->stride_w, p->pad_w, p->dil_w);
    conv_shapes s;
    s.x = tb_tensor_4d(NULL, dt, cc->n, cc->h, cc->w, cc->c);
    s.w = tb_tensor_4d(NULL, dt, cc->k, cc->r, cc->s, cc->c / p->groups);
    s.y = tb_tensor_4d(NULL, dt, cc->n, oh, ow, cc->k);
    s.b = tb_tensor_1d(NULL, dt, cc->k);
    return s;
}

#define GUARD 64
#define GUARD_BYTE 0xA5

conv_buf conv_buf_new(tb_dtype dt, int64_t count)
{
    conv_buf b;
    size_t es = tb_dtype_size(dt);
    b.dt = dt;
    b.count = count;
    b.raw = malloc(es * (size_t)(count + 2 * GUARD));
    b.f32 = calloc((size_t)count, sizeof(float));
    if (!b.raw || !b.f32) {
        fprintf(stderr, "out of memory in the test\n");
        exit(1);
    }
    memset(b.raw, GUARD_BYTE, es * (size_t)(count + 2 * GUARD));
    b.data = b.raw + es * GUARD;
    memset(b.data, 0, es * (size_t)count);
    return b;
}

void conv_buf_free(conv_buf *b)
{
    free(b->raw);
    free(b->f32);
    b->raw = NULL;
    b->f32 = NULL;
}

bool conv_buf_guards_intact(const conv_buf *b)
{
    size_t es = tb_dtype_size(b->dt);
    const unsigned char *tail = b->raw + es * (size_t)(GUARD + b->count);
    for (size_t i = 0; i < es * GUARD; i++)
        if (b->raw[i] != GUARD_BYTE || tail[i] != GUARD_BYTE)
            return false;
    return true;
}

void conv_buf_sync(conv_buf *b) { tb_convert_to_f32(b->f32, b->data, b->dt, b->count); }

void conv_buf_random(conv_buf *b, uint64_t seed)
{
    tb_rng rng;
    tb_rng_seed(&rng, seed, 0);
    for (int64_t i = 0; i < b->count; i++)
        tb_store_f32(b->data, b->dt, i, tb_rng_uniform_f(&rng, -1.0f, 1.0f));
    conv_buf_sync(b);
}

void conv_buf_zero(conv_buf *b)
{
    memset(b->data, 0, tb_dtype_size(b->dt) * (size_t)b->count);
    conv_buf_sync(b);
}

void conv_buf_copy(conv_buf *dst, const conv_buf *src)
{
    tb_convert_from_f32(dst->data, dst->dt, src->f32, src->count);
    conv_buf_sync(dst);
}

double *conv_to_double(const float *v, int64_t count)
{
    double *d = malloc(sizeof(double) * (size_t)count);
    if (!d) {
        fprintf(stderr, "out of memory in the test\n");
        exit(1);
    }
    for (int64_t i = 0; i < count; i++)
        d[i] = v[i];
    return d;
}

void conv_ref_forward(const conv_case *cc, const double *x, const double *w, const double *b, double *y,
                      double *abs_sum)
{
    conv_shapes s = conv_case_shapes(cc, TB_F32);
    const tb_conv2d_params *p = &cc->p;
    int64_t oh = s.y.shape[1], ow = s.y.shape[2], cg = cc->c / p->groups, kg = cc->k / p->groups;
    for (int64_t n = 0; n < cc->n; n++)
        for (int64_t oy = 0; oy < oh; oy++)
            for (int64_t ox = 0; ox < ow; ox++)
                for (int64_t k = 0; k < cc->k; k++) {
                    double acc = b ? b[k] : 0.0, mag = b ? fabs(b[k]) : 0.0;
                    for (int64_t r = 0; r < cc->r; r++)
                        for (int64_t q = 0; q < cc->s; q++) {
                            int64_t iy = oy * p->stride_h - p->pad_h + r * p->dil_h;
                            int64_t ix = ox * p->stride_w - p->pad_w + q * p->dil_w;
                            if (iy < 0 || iy >= cc->h || ix < 0 || ix >= cc->w)
                                continue;
                            for (int64_t ci = 0; ci < cg; ci++) {
                                double t = x[((n * cc->h + iy) * cc->w + ix) * cc->c + (k / kg) * cg + ci] *
                                           w[((k * cc->r + r) * cc->s + q) * cg + ci];
                                acc += t;
                                mag += fabs(t);
                            }
                        }
                    int64_t i = ((n * oh + oy) * ow + ox) * cc->k + k;
                    y[i] = acc;
                    if (abs_sum)
                        abs_sum[i] = mag;
                }
}

int64_t conv_first_mismatch(const char *what, const float *a, const float *b, int64_t count, double atol,
                            double rtol)
{
    for (int64_t i = 0; i < count; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!isfinite(a[i]) || !isfinite(b[i]) || d > atol + rtol * fabs((double)b[i])) {
            fprintf(stderr, "%s: element %lld: got %.9g, expected %.9g (|diff| %.3g > %.3g)\n", what, (long long)i,
                    (double)a[i], (double)b[i], d, atol + rtol * fabs((double)b[i]));
            return i;
        }
    }
    return -1;
}

size_t conv_case_workspace(tb_backend *be, const conv_case *cc, tb_dtype dt)
{
    conv_shapes s = conv_case_shapes(cc, dt);
    return tb_conv2d_workspace_size(be, &s.y, &s.x, &s.w, &cc->p);
}

tb_backend *conv_test_backend(size_t extra_workspace)
{
    tb_backend *be = NULL;
    if (tb_cpu_backend_create(&be, 2) != TB_OK) {
        fprintf(stderr, "creating the CPU backend: %s\n", tb_errmsg());
        exit(1);
    }
    size_t ws = extra_workspace;
    tb_dtype dts[3] = {TB_F32, TB_F16, TB_BF16};
    for (size_t i = 0; i < conv_tiny_case_count; i++)
        for (int d = 0; d < 3; d++) {
            size_t need = conv_case_workspace(be, &conv_tiny_cases[i], dts[d]);
            ws = need > ws ? need : ws;
        }
    if (tb_backend_reserve_workspace(be, ws) != TB_OK) {
        fprintf(stderr, "reserving %zu bytes of workspace: %s\n", ws, tb_errmsg());
        exit(1);
    }
    return be;
}
