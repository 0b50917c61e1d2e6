#include "conv_test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/error.h"
#include "kernels/rng.h"

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
