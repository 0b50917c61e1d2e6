/* Bilinear resize (align_corners = false) of the segmentation task:
 *  - forward against a reference written here from the definition in
 *    kernels/ops.h (tent weights in double over every input pixel, the
 *    sample coordinate clamped into the map), over up- and down-sampling by
 *    non-integer factors, mixed, identity, 2x, 1-pixel inputs and outputs,
 *    and more channels than one CPU block;
 *  - backward against the literal transpose (a double scatter written here),
 *    starting from non-zero dx (accumulation);
 *  - values and gradients computed with PyTorch's F.interpolate, hard-coded;
 *  - a hand-derived ramp showing the clamping at both borders;
 *  - backward against central finite differences (f32 tensors, differences in
 *    double), accumulation and run-to-run determinism (gc_check);
 *  - the backward bitwise identical with 1 and 2 threads (it gathers: no races);
 *  - f16 and bf16 against f32; the front-end's shape and dtype checks.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cases/resize_cases.h"
#include "kernels/backend.h"
#include "kernels/error.h"
#include "kernels/ops.h"
#include "ops_testutil.h"

#define OK(call) assert_int_equal((call), TB_OK)

static tb_tensor like(const tb_tensor *t)
{
    return tt_4d(t->dtype, t->shape[0], t->shape[1], t->shape[2], t->shape[3]);
}

/* The cases (rs_cases, rs_case_count) are tests/cases/resize_cases.c, shared
 * with the cuda suite. RS_MAX_NUMEL: elements of the largest x or y there. */
#define RS_MAX_NUMEL 4096

/* The sample coordinate of output position o (kernels/ops.h), clamped into [0, in - 1]. */
static double ref_coord(int64_t o, int64_t in, int64_t out)
{
    double s = ((double)o + 0.5) * (double)in / (double)out - 0.5;
    return fmin(fmax(s, 0.0), (double)(in - 1));
}

/* Tent weight of input position k for coordinate s: 1 - |s - k|, at least 0. */
static double tent(double s, int64_t k) { return fmax(0.0, 1.0 - fabs(s - (double)k)); }

/* The weight of x(b, k, l, ch) in y(b, i, j, ch). */
static double ref_weight(int64_t i, int64_t j, int64_t k, int64_t l, const tb_tensor *x, const tb_tensor *y)
{
    return tent(ref_coord(i, x->shape[1], y->shape[1]), k) * tent(ref_coord(j, x->shape[2], y->shape[2]), l);
}

/* Calls f(yi, xi, weight) for every (output, input) element pair with a
 * non-zero weight, in double. */
typedef void (*pair_fn)(void *ctx, int64_t yi, int64_t xi, double wt);

static void ref_pairs(const tb_tensor *x, const tb_tensor *y, pair_fn f, void *ctx)
{
    int64_t n = x->shape[0], h = x->shape[1], w = x->shape[2], c = x->shape[3], oh = y->shape[1], ow = y->shape[2];
    for (int64_t b = 0; b < n; b++)
        for (int64_t i = 0; i < oh; i++)
            for (int64_t j = 0; j < ow; j++)
                for (int64_t k = 0; k < h; k++)
                    for (int64_t l = 0; l < w; l++) {
                        double wt = ref_weight(i, j, k, l, x, y);
                        if (wt == 0.0)
                            continue;
                        for (int64_t ch = 0; ch < c; ch++)
                            f(ctx, ((b * oh + i) * ow + j) * c + ch, ((b * h + k) * w + l) * c + ch, wt);
                    }
}

typedef struct ref_acc {
    const tb_tensor *src;
    double *dst;
} ref_acc;

static void gather_fwd(void *ctx, int64_t yi, int64_t xi, double wt)
{
    ref_acc *a = ctx;
    a->dst[yi] += wt * tt_get(a->src, xi);
}

static void scatter_bwd(void *ctx, int64_t yi, int64_t xi, double wt)
{
    ref_acc *a = ctx;
    a->dst[xi] += wt * tt_get(a->src, yi);
}

static void test_forward_reference(void **state)
{
    (void)state;
    tb_rng r;
    tb_rng_seed(&r, 31, 0);
    for (size_t k = 0; k < rs_case_count; k++) {
        const rs_case *rc = &rs_cases[k];
        tb_tensor x = tt_4d(TB_F32, rc->n, rc->h, rc->w, rc->c), y = tt_4d(TB_F32, rc->n, rc->oh, rc->ow, rc->c);
        tb_tensor ref = like(&y);
        tt_uniform(&x, &r, -1.0, 1.0, TB_F32);
        tt_uniform(&y, &r, -1.0, 1.0, TB_F32); /* overwritten, not accumulated */
        static double want[RS_MAX_NUMEL];
        assert_true(tb_numel(&y) <= RS_MAX_NUMEL);
        memset(want, 0, sizeof want);
        ref_acc a = {&x, want};
        ref_pairs(&x, &y, gather_fwd, &a);
        tt_set_values(&ref, want);
        OK(tb_resize_bilinear_forward(tt_be, &y, &x));
        tt_assert_close(rc->name, &y, &ref, 1e-5, 1e-5);
        tt_check_guards();
        tt_free_all();
    }
}

static void test_backward_reference(void **state)
{
    (void)state;
    tb_rng r;
    tb_rng_seed(&r, 32, 0);
    for (size_t k = 0; k < rs_case_count; k++) {
        const rs_case *rc = &rs_cases[k];
        tb_tensor dx = tt_4d(TB_F32, rc->n, rc->h, rc->w, rc->c), dy = tt_4d(TB_F32, rc->n, rc->oh, rc->ow, rc->c);
        tb_tensor ref = like(&dx);
        tt_uniform(&dy, &r, -1.0, 1.0, TB_F32);
        tt_uniform(&dx, &r, -1.0, 1.0, TB_F32); /* accumulated into */
        static double want[RS_MAX_NUMEL];
        assert_true(tb_numel(&dx) <= RS_MAX_NUMEL);
        for (int64_t i = 0; i < tb_numel(&dx); i++)
            want[i] = tt_get(&dx, i);
        ref_acc a = {&dy, want};
        ref_pairs(&dx, &dy, scatter_bwd, &a);
        tt_set_values(&ref, want);
        OK(tb_resize_bilinear_backward(tt_be, &dx, &dy));
        tt_assert_close(rc->name, &dx, &ref, 1e-5, 1e-5);
        tt_check_guards();
        tt_free_all();
    }
}

/* ------------------------------------------------------------- PyTorch */

/* x[k] = (37 k mod 11) - 5 and dy[k] = (13 k mod 7) - 3 over the flat NHWC
 * index k; y and dx = d sum(y * dy) / dx as computed by PyTorch 2.x
 * (F.interpolate(x.permute(0, 3, 1, 2), size=(oh, ow), mode="bilinear",
 * align_corners=False), autograd), printed with %.9g and hard-coded here. */
typedef struct torch_case {
    int h, w, c, oh, ow;
    const double *y, *dx;
} torch_case;

static const double torch_y0[] = {
    -5, -1, -1, -2.5, 2.49999976, -2.66666603, 0.499999881, 2.66666698, -1.5, 2.5, -3, 1,
    -0.999999583, -1.4000001, 0.800000191, -2.89999986, 2.0999999, -3.06666613, 0.099999845, 2.26666689,
    -1.9000001, 2.0999999, -3.4000001, 0.599999964, 5, -2, 3.5, -3.5, 1.49999976, -3.66666603,
    -0.500000119, 1.66666687, -2.5, 1.5, -4, 0, 4.39999962, -2.60000014, 2.9000001, -0.799999356,
    0.899999619, 1.23333442, -1.10000026, 2.16666675, -3.10000014, 0.899999857, -4.60000038, -0.600000143,
    4, -3, 2.5, 1, 0.499999762, 4.49999952, -1.50000024, 2.5, -3.5, 0.5, -5, -1};
static const double torch_dx0[] = {
    -3.49999976, 3.20000005, 0.766666651, 0.466666758, -0.566666603, -2.96666694, 3.70000005, 1.29999995,
    0.89999938, -0.400000334, -2.93333316, 2.06666684, 0.233333379, 1.03333318, -0.799999952, -3.49999976,
    1.60000038, -0.799999714, 1.66666663, -0.0333333686, -3.16666698, 1.43333352, 1.10000014, 2.20000005};
static const double torch_y1[] = {-1.5, 1.16666651, 3, 2, -0.750000238, -2.66666603};
static const double torch_dx1[] = {
    -0.25000003, -0.750000119, 0, 0.750000119, 0.25000003, -0.49999997, -1.49999988, 0, 1.49999988, 0.49999997,
    0, 0, 0, 0, 0, 0.5, 1.5, 0, 0.75, 0.25,
    0, 0, 0, 0, 0, 0, 0, 0, -0.500000238, -0.166666746,
    0, 0, 0, -0.249999762, -0.0833332539};
static const double torch_y2[] = {-5, -1, -5, -1, -5, -1, -5, -1, -5, -1, -5, -1};
static const double torch_dx2[] = {1.00000012, 2};
static const double torch_y3[] = {-0.5};
static const double torch_dx3[] = {0, -1.5, 0, 0, -1.5, 0};

static const torch_case torch_cases[] = {
    {3, 4, 2, 5, 6, torch_y0, torch_dx0},  /* up by 5/3 and 3/2, two channels */
    {7, 5, 1, 3, 2, torch_y1, torch_dx1},  /* down by 7/3 and 5/2: rows 2-3 and 5 get no gradient */
    {1, 1, 2, 2, 3, torch_y2, torch_dx2},  /* 1-pixel input */
    {2, 3, 1, 1, 1, torch_y3, torch_dx3},  /* 1-pixel output: the centre (0.5, 1) */
};

static void test_pytorch_values(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof torch_cases / sizeof torch_cases[0]; k++) {
        const torch_case *tc = &torch_cases[k];
        tb_tensor x = tt_4d(TB_F32, 1, tc->h, tc->w, tc->c), y = tt_4d(TB_F32, 1, tc->oh, tc->ow, tc->c);
        tb_tensor dy = like(&y), dx = like(&x), want_y = like(&y), want_dx = like(&x);
        for (int64_t i = 0; i < tb_numel(&x); i++)
            tt_set(&x, i, (double)(37 * i % 11 - 5));
        for (int64_t i = 0; i < tb_numel(&dy); i++)
            tt_set(&dy, i, (double)(13 * i % 7 - 3));
        tt_set_values(&want_y, tc->y);
        tt_set_values(&want_dx, tc->dx);
        OK(tb_resize_bilinear_forward(tt_be, &y, &x));
        tt_assert_close("forward vs PyTorch", &y, &want_y, 2e-6, 2e-6);
        tt_zero(&dx);
        OK(tb_resize_bilinear_backward(tt_be, &dx, &dy));
        tt_assert_close("backward vs PyTorch", &dx, &want_dx, 2e-6, 2e-6);
        tt_check_guards();
        tt_free_all();
    }
}

/* A row whose value is its column, 4 -> 8 columns: sample columns
 * (j + 0.5) / 2 - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, ..., 3.25 (both
 * taps on the last column), so y = 0, 0.25, 0.75, ..., 2.75, 3. Rows 1 -> 3
 * all read the one input row. */
static void test_border_clamping(void **state)
{
    (void)state;
    tb_tensor x = tt_4d(TB_F32, 1, 1, 4, 1), y = tt_4d(TB_F32, 1, 3, 8, 1);
    for (int i = 0; i < 4; i++)
        tt_set(&x, i, i);
    OK(tb_resize_bilinear_forward(tt_be, &y, &x));
    const double want[8] = {0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 8; j++)
            assert_true(fabs(tt_get(&y, i * 8 + j) - want[j]) < 1e-6);
    /* The transpose with dy = 1: column 0 gets 1 + 0.75 + 0.25 from outputs
     * 0..2, column 3 gets 0.25 + 0.75 + 1 (the clamped both-taps weight) from
     * outputs 5..7, columns 1 and 2 get 2 each; times 3 output rows. */
    tb_tensor dy = like(&y), dx = like(&x);
    for (int64_t i = 0; i < tb_numel(&dy); i++)
        tt_set(&dy, i, 1.0);
    tt_zero(&dx);
    OK(tb_resize_bilinear_backward(tt_be, &dx, &dy));
    for (int i = 0; i < 4; i++)
        assert_true(fabs(tt_get(&dx, i) - 6.0) < 1e-6);
    tt_free_all();
}

/* ------------------------------------------------------------ gradients */

static int rs_fwd(gcase *c) { return tb_resize_bilinear_forward(tt_be, &c->out[0], &c->in[0]); }
static int rs_bwd(gcase *c) { return tb_resize_bilinear_backward(tt_be, &c->din[0], &c->dout[0]); }

static void test_gradients(void **state)
{
    (void)state;
    tb_rng r;
    tb_rng_seed(&r, 33, 0);
    for (size_t k = 0; k < rs_case_count; k++) {
        const rs_case *rc = &rs_cases[k];
        gcase c;
        memset(&c, 0, sizeof c);
        snprintf(c.name, sizeof c.name, "resize_bilinear %s", rc->name);
        c.h = 1e-2;
        c.atol = 2e-3;
        c.rtol = 1e-2;
        c.n_in = c.n_out = 1;
        c.in[0] = tt_4d(TB_F32, rc->n, rc->h, rc->w, rc->c);
        tt_uniform(&c.in[0], &r, -1.0, 1.0, TB_F32);
        c.din[0] = like(&c.in[0]);
        c.out[0] = tt_4d(TB_F32, rc->n, rc->oh, rc->ow, rc->c);
        c.dout[0] = like(&c.out[0]);
        tt_uniform(&c.dout[0], &r, -1.0, 1.0, TB_F32);
        c.fwd = rs_fwd;
        c.bwd = rs_bwd;
        gc_check(&c);
        tt_free_all();
    }
}

/* The backward gathers per dx row: the same bits with 1 and 2 threads
 * (upsampling, where many dy rows feed each dx row, and downsampling). */
static void test_thread_count_invariance(void **state)
{
    (void)state;
    tb_backend *one = NULL;
    OK(tb_cpu_backend_create(&one, 1));
    tb_rng r;
    tb_rng_seed(&r, 34, 0);
    const int sizes[2][4] = {{13, 11, 40, 37}, {40, 37, 13, 11}};
    for (int k = 0; k < 2; k++) {
        tb_tensor x = tt_4d(TB_F32, 2, sizes[k][0], sizes[k][1], 6), y = tt_4d(TB_F32, 2, sizes[k][2], sizes[k][3], 6);
        tb_tensor y1 = like(&y), dx = like(&x), dx1 = like(&x);
        tt_uniform(&x, &r, -1.0, 1.0, TB_F32);
        tt_uniform(&dx, &r, -1.0, 1.0, TB_F32);
        tt_copy_values(&dx1, &dx);
        OK(tb_resize_bilinear_forward(one, &y1, &x));
        OK(tb_resize_bilinear_forward(tt_be, &y, &x));
        tt_assert_bitwise("forward, 1 vs 2 threads", &y1, &y);
        OK(tb_resize_bilinear_backward(tt_be, &dx, &y)); /* y serves as dy */
        OK(tb_resize_bilinear_backward(one, &dx1, &y));
        tt_assert_bitwise("backward, 1 vs 2 threads", &dx1, &dx);
        tt_check_guards();
        tt_free_all();
    }
    tb_backend_destroy(one);
}

/* -------------------------------------------------------- low precision */

/* f16 and bf16 against f32 on the same (rounded) values: one rounding per output. */
static void test_low_precision(void **state)
{
    (void)state;
    tb_rng r;
    tb_rng_seed(&r, 35, 0);
    const tb_dtype dts[2] = {TB_F16, TB_BF16};
    for (int d = 0; d < 2; d++)
        for (size_t k = 0; k < rs_case_count; k++) {
            const rs_case *rc = &rs_cases[k];
            tb_dtype dt = dts[d];
            double tol = dt == TB_F16 ? 2e-3 : 1.6e-2;
            tb_tensor x32 = tt_4d(TB_F32, rc->n, rc->h, rc->w, rc->c), x = tt_4d(dt, rc->n, rc->h, rc->w, rc->c);
            tb_tensor y32 = tt_4d(TB_F32, rc->n, rc->oh, rc->ow, rc->c), y = tt_4d(dt, rc->n, rc->oh, rc->ow, rc->c);
            tb_tensor dy32 = like(&y32), dy = like(&y), dx32 = like(&x32), dx = like(&x);
            tt_uniform(&x32, &r, -1.0, 1.0, dt);
            tt_copy_values(&x, &x32);
            tt_uniform(&dy32, &r, -1.0, 1.0, dt);
            tt_copy_values(&dy, &dy32);
            tt_uniform(&dx32, &r, -1.0, 1.0, dt);
            tt_copy_values(&dx, &dx32);
            OK(tb_resize_bilinear_forward(tt_be, &y32, &x32));
            OK(tb_resize_bilinear_forward(tt_be, &y, &x));
            char what[128];
            snprintf(what, sizeof what, "%s forward %s", tb_dtype_name(dt), rc->name);
            tt_assert_close(what, &y, &y32, tol, tol);
            OK(tb_resize_bilinear_backward(tt_be, &dx32, &dy32));
            OK(tb_resize_bilinear_backward(tt_be, &dx, &dy));
            snprintf(what, sizeof what, "%s backward %s", tb_dtype_name(dt), rc->name);
            tt_assert_close(what, &dx, &dx32, tol, tol);
            tt_check_guards();
            tt_free_all();
        }
}

/* ----------------------------------------------------------- validation */

static void expect_invalid(int rc, const char *needle)
{
    assert_int_equal(rc, TB_ERR_INVALID);
    if (!strstr(tb_errmsg(), needle))
        fail_msg("error \"%s\" does not mention \"%s\"", tb_errmsg(), needle);
}

static void test_validation(void **state)
{
    (void)state;
    tb_tensor x = tt_4d(TB_F32, 2, 3, 4, 5), y = tt_4d(TB_F32, 2, 6, 8, 5);
    tb_tensor other_n = tt_4d(TB_F32, 1, 6, 8, 5), other_c = tt_4d(TB_F32, 2, 6, 8, 4);
    tb_tensor half = tt_4d(TB_F16, 2, 6, 8, 5), ints = tt_4d(TB_I32, 2, 3, 4, 5);
    tb_tensor flat = tt_new(TB_F32, 3, 2, 48, 5, 1);
    expect_invalid(tb_resize_bilinear_forward(tt_be, &other_n, &x), "same batch and channels");
    expect_invalid(tb_resize_bilinear_forward(tt_be, &other_c, &x), "same batch and channels");
    expect_invalid(tb_resize_bilinear_forward(tt_be, &half, &x), "differ in dtype");
    expect_invalid(tb_resize_bilinear_forward(tt_be, &y, &ints), "must be f32, f16 or bf16");
    expect_invalid(tb_resize_bilinear_forward(tt_be, &flat, &x), "4-D NHWC");
    expect_invalid(tb_resize_bilinear_forward(tt_be, NULL, &x), "y is missing");
    expect_invalid(tb_resize_bilinear_backward(tt_be, &x, &other_c), "same batch and channels");
    expect_invalid(tb_resize_bilinear_backward(tt_be, NULL, &y), "dx is missing");
    tb_tensor alias = y; /* y resized onto itself */
    expect_invalid(tb_resize_bilinear_forward(tt_be, &alias, &y), "must not overlap");
    expect_invalid(tb_resize_bilinear_forward(NULL, &y, &x), "no backend");
    tt_check_guards();
    tt_free_all();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_reference),
        cmocka_unit_test(test_backward_reference),
        cmocka_unit_test(test_pytorch_values),
        cmocka_unit_test(test_border_clamping),
        cmocka_unit_test(test_gradients),
        cmocka_unit_test(test_thread_count_invariance),
        cmocka_unit_test(test_low_precision),
        cmocka_unit_test(test_validation),
    };
    return cmocka_run_group_tests(tests, tt_setup, tt_teardown);
}
