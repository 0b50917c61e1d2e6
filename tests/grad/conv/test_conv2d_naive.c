/* The naive conv2d (the reference) against mathematics: its forward against
 * a direct double-precision convolution, its backward (data, filter, bias)
 * against central finite differences of loss = sum(y * g) in double. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "conv_test_util.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/error.h"

static int setup(void **state)
{
    *state = conv_test_backend(0);
    return 0;
}

static int teardown(void **state)
{
    tb_backend_destroy(*state);
    return 0;
}

static void test_out_size(void **state)
{
    (void)state;
    assert_int_equal(tb_conv2d_out_size(224, 7, 2, 3, 1), 112);
    assert_int_equal(tb_conv2d_out_size(7, 3, 2, 1, 1), 4);
    assert_int_equal(tb_conv2d_out_size(7, 3, 1, 2, 2), 7);
    assert_int_equal(tb_conv2d_out_size(5, 1, 2, 0, 1), 3);
    /* kernel wider than the padded input; C's truncating division must not turn -1/2 into 0 */
    assert_true(tb_conv2d_out_size(4, 5, 2, 0, 1) <= 0);
    assert_true(tb_conv2d_out_size(4, 3, 1, 0, 3) <= 0);
    assert_true(tb_conv2d_out_size(4, 3, 0, 0, 1) <= 0);
    assert_true(tb_conv2d_out_size(4, 3, 1, -1, 1) <= 0);
}

static void test_naive_forward_matches_double(void **state)
{
    tb_backend *be = *state;
    for (size_t ci = 0; ci < conv_tiny_case_count; ci++) {
        const conv_case *cc = &conv_tiny_cases[ci];
        conv_shapes s = conv_case_shapes(cc, TB_F32);
        conv_buf x = conv_buf_new(TB_F32, tb_numel(&s.x)), w = conv_buf_new(TB_F32, tb_numel(&s.w));
        conv_buf b = conv_buf_new(TB_F32, cc->k), y = conv_buf_new(TB_F32, tb_numel(&s.y));
        conv_buf_random(&x, 100 + ci);
        conv_buf_random(&w, 200 + ci);
        conv_buf_random(&b, 300 + ci);
        s.x.data = x.data, s.w.data = w.data, s.b.data = b.data, s.y.data = y.data;
        assert_int_equal(tb_cpu_conv2d_forward_naive(be, &s.y, &s.x, &s.w, cc->bias ? &s.b : NULL, &cc->p), TB_OK);
        conv_buf_sync(&y);

        double *xd = conv_to_double(x.f32, x.count), *wd = conv_to_double(w.f32, w.count);
        double *bd = conv_to_double(b.f32, b.count);
        double *ref = calloc((size_t)y.count, sizeof(double)), *mag = calloc((size_t)y.count, sizeof(double));
        conv_ref_forward(cc, xd, wd, cc->bias ? bd : NULL, ref, mag);
        for (int64_t i = 0; i < y.count; i++) {
            /* f32 accumulation: error well below 1e-5 of the sum of |terms| */
            double tol = 1e-5 * (mag[i] + 1e-3);
            if (fabs(y.f32[i] - ref[i]) > tol)
                fail_msg("%s: y[%lld] = %.9g, double reference %.9g", cc->name, (long long)i, (double)y.f32[i],
                         ref[i]);
        }
        assert_true(conv_buf_guards_intact(&y));
        free(xd), free(wd), free(bd), free(ref), free(mag);
        conv_buf_free(&x), conv_buf_free(&w), conv_buf_free(&b), conv_buf_free(&y);
    }
}

/* loss = sum(conv(x, w) + b) * g) in double */
static double loss(const conv_case *cc, const double *x, const double *w, const double *b, const double *g,
                   double *ybuf, int64_t ycount)
{
    conv_ref_forward(cc, x, w, b, ybuf, NULL);
    double l = 0.0;
    for (int64_t i = 0; i < ycount; i++)
        l += ybuf[i] * g[i];
    return l;
}

/* Central differences of loss in every element of v, against the analytic grad. */
static void check_fd(const conv_case *cc, const char *what, double *v, int64_t count, const float *grad,
                     const double *x, const double *w, const double *b, const double *g, double *ybuf,
                     int64_t ycount)
{
    const double eps = 1e-3;
    for (int64_t i = 0; i < count; i++) {
        double keep = v[i];
        v[i] = keep + eps;
        double lp = loss(cc, x, w, b, g, ybuf, ycount);
        v[i] = keep - eps;
        double lm = loss(cc, x, w, b, g, ybuf, ycount);
        v[i] = keep;
        double fd = (lp - lm) / (2 * eps);
        if (fabs(fd - grad[i]) > 1e-4 * (1.0 + fabs(fd)))
            fail_msg("%s: %s[%lld] = %.9g, finite difference %.9g", cc->name, what, (long long)i, (double)grad[i],
                     fd);
    }
}

static void test_naive_backward_matches_finite_differences(void **state)
{
    tb_backend *be = *state;
    for (size_t ci = 0; ci < conv_tiny_case_count; ci++) {
        const conv_case *cc = &conv_tiny_cases[ci];
        conv_shapes s = conv_case_shapes(cc, TB_F32);
        conv_buf x = conv_buf_new(TB_F32, tb_numel(&s.x)), w = conv_buf_new(TB_F32, tb_numel(&s.w));
        conv_buf b = conv_buf_new(TB_F32, cc->k), g = conv_buf_new(TB_F32, tb_numel(&s.y));
        conv_buf dx = conv_buf_new(TB_F32, x.count), dw = conv_buf_new(TB_F32, w.count);
        conv_buf db = conv_buf_new(TB_F32, cc->k);
        conv_buf_random(&x, 400 + ci);
        conv_buf_random(&w, 500 + ci);
        conv_buf_random(&b, 600 + ci);
        conv_buf_random(&g, 700 + ci);

        tb_tensor tdx = s.x, tdw = s.w, tdb = s.b, tg = s.y;
        s.x.data = x.data, s.w.data = w.data;
        tdx.data = dx.data, tdw.data = dw.data, tdb.data = db.data, tg.data = g.data;
        assert_int_equal(tb_cpu_conv2d_backward_data_naive(be, &tdx, &tg, &s.w, &cc->p), TB_OK);
        assert_int_equal(tb_cpu_conv2d_backward_filter_naive(be, &tdw, cc->bias ? &tdb : NULL, &tg, &s.x, &cc->p),
                         TB_OK);
        conv_buf_sync(&dx), conv_buf_sync(&dw), conv_buf_sync(&db);
        assert_true(conv_buf_guards_intact(&dx) && conv_buf_guards_intact(&dw) && conv_buf_guards_intact(&db));

        double *xd = conv_to_double(x.f32, x.count), *wd = conv_to_double(w.f32, w.count);
        double *bd = conv_to_double(b.f32, b.count), *gd = conv_to_double(g.f32, g.count);
        double *ybuf = malloc(sizeof(double) * (size_t)g.count);
        const double *bias = cc->bias ? bd : NULL;
        check_fd(cc, "dx", xd, x.count, dx.f32, xd, wd, bias, gd, ybuf, g.count);
        check_fd(cc, "dw", wd, w.count, dw.f32, xd, wd, bias, gd, ybuf, g.count);
        if (cc->bias)
            check_fd(cc, "dbias", bd, b.count, db.f32, xd, wd, bd, gd, ybuf, g.count);
        free(xd), free(wd), free(bd), free(gd), free(ybuf);
        conv_buf_free(&x), conv_buf_free(&w), conv_buf_free(&b), conv_buf_free(&g);
        conv_buf_free(&dx), conv_buf_free(&dw), conv_buf_free(&db);
    }
}

/* The naive path accumulates: dx/dw/dbias start from their old values. */
static void test_naive_backward_accumulates(void **state)
{
    tb_backend *be = *state;
    const conv_case *cc = &conv_tiny_cases[7]; /* groups 2, stride 2, batch 3 */
    conv_shapes s = conv_case_shapes(cc, TB_F32);
    conv_buf x = conv_buf_new(TB_F32, tb_numel(&s.x)), w = conv_buf_new(TB_F32, tb_numel(&s.w));
    conv_buf g = conv_buf_new(TB_F32, tb_numel(&s.y));
    conv_buf dx1 = conv_buf_new(TB_F32, x.count), dw1 = conv_buf_new(TB_F32, w.count);
    conv_buf db1 = conv_buf_new(TB_F32, cc->k);
    conv_buf dx2 = conv_buf_new(TB_F32, x.count), dw2 = conv_buf_new(TB_F32, w.count);
    conv_buf db2 = conv_buf_new(TB_F32, cc->k);
    conv_buf_random(&x, 1), conv_buf_random(&w, 2), conv_buf_random(&g, 3);
    conv_buf_random(&dx2, 4), conv_buf_random(&dw2, 5), conv_buf_random(&db2, 6);
    s.x.data = x.data, s.w.data = w.data, s.y.data = g.data;
    tb_tensor tdx = s.x, tdw = s.w, tdb = s.b;
    for (int pass = 0; pass < 2; pass++) {
        conv_buf *dx = pass ? &dx2 : &dx1, *dw = pass ? &dw2 : &dw1, *db = pass ? &db2 : &db1;
        tdx.data = dx->data, tdw.data = dw->data, tdb.data = db->data;
        assert_int_equal(tb_cpu_conv2d_backward_data_naive(be, &tdx, &s.y, &s.w, &cc->p), TB_OK);
        assert_int_equal(tb_cpu_conv2d_backward_filter_naive(be, &tdw, &tdb, &s.y, &s.x, &cc->p), TB_OK);
    }
    /* pass 2 started from random values r and ended at r + grad (dx2.f32 still holds r) */
    conv_buf *bufs1[3] = {&dx1, &dw1, &db1}, *bufs2[3] = {&dx2, &dw2, &db2};
    for (int t = 0; t < 3; t++) {
        conv_buf_sync(bufs1[t]);
        float *expect = malloc(sizeof(float) * (size_t)bufs2[t]->count);
        for (int64_t i = 0; i < bufs2[t]->count; i++)
            expect[i] = bufs2[t]->f32[i] + bufs1[t]->f32[i];
        conv_buf_sync(bufs2[t]);
        assert_int_equal(conv_first_mismatch("naive accumulate", bufs2[t]->f32, expect, bufs2[t]->count, 1e-6, 1e-6),
                         -1);
        free(expect);
    }
    assert_int_equal(tb_cpu_conv2d_backward_data_naive(be, NULL, &s.y, &s.w, &cc->p), TB_OK);
    conv_buf_free(&x), conv_buf_free(&w), conv_buf_free(&g);
    conv_buf_free(&dx1), conv_buf_free(&dw1), conv_buf_free(&db1);
    conv_buf_free(&dx2), conv_buf_free(&dw2), conv_buf_free(&db2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_out_size),
        cmocka_unit_test(test_naive_forward_matches_double),
        cmocka_unit_test(test_naive_backward_matches_finite_differences),
        cmocka_unit_test(test_naive_backward_accumulates),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
