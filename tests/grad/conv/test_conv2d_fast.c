/* The fast CPU conv2d (oneDNN's convolution primitives for f32 convs with
 * one group, im2col/direct GEMMs for the rest, depthwise kernel), reached
 * through the checked front-end, against the naive reference: f32
 * within 1e-4, f16/bf16 against f32 on the same values within 1e-2, the
 * accumulate (+=) contract, chunked images, and bitwise determinism. The
 * tables (tiny, medium, chunked) are tests/cases/conv_cases.c, shared with the
 * cuda suite. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "conv_test_util.h"
#include "kernels/cpu/conv2d_onednn.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/error.h"

typedef struct conv_inputs {
    conv_buf x, w, b, g, dx0, dw0, db0; /* g is dy; d*0 the gradients' values before the backward */
} conv_inputs;

typedef struct conv_outputs {
    conv_buf y, dx, dw, db;
} conv_outputs;

typedef enum conv_path { PATH_FAST, PATH_NAIVE } conv_path;

static conv_inputs inputs_new(const conv_case *cc, tb_dtype dt, uint64_t seed)
{
    conv_shapes s = conv_case_shapes(cc, dt);
    conv_inputs in = {conv_buf_new(dt, tb_numel(&s.x)), conv_buf_new(dt, tb_numel(&s.w)), conv_buf_new(dt, cc->k),
                      conv_buf_new(dt, tb_numel(&s.y)), conv_buf_new(dt, tb_numel(&s.x)),
                      conv_buf_new(dt, tb_numel(&s.w)), conv_buf_new(dt, cc->k)};
    conv_buf *all[7] = {&in.x, &in.w, &in.b, &in.g, &in.dx0, &in.dw0, &in.db0};
    for (int i = 0; i < 7; i++)
        conv_buf_random(all[i], seed * 16 + (uint64_t)i);
    return in;
}

/* The same values in another dtype (exact when converting from a lower precision to f32). */
static conv_inputs inputs_as(const conv_inputs *src, tb_dtype dt)
{
    conv_inputs in;
    const conv_buf *from[7] = {&src->x, &src->w, &src->b, &src->g, &src->dx0, &src->dw0, &src->db0};
    conv_buf *to[7] = {&in.x, &in.w, &in.b, &in.g, &in.dx0, &in.dw0, &in.db0};
    for (int i = 0; i < 7; i++) {
        *to[i] = conv_buf_new(dt, from[i]->count);
        conv_buf_copy(to[i], from[i]);
    }
    return in;
}

static void inputs_free(conv_inputs *in)
{
    conv_buf *all[7] = {&in->x, &in->w, &in->b, &in->g, &in->dx0, &in->dw0, &in->db0};
    for (int i = 0; i < 7; i++)
        conv_buf_free(all[i]);
}

static void outputs_free(conv_outputs *out)
{
    conv_buf_free(&out->y), conv_buf_free(&out->dx), conv_buf_free(&out->dw), conv_buf_free(&out->db);
}

/* Runs forward, backward data (dx starts at dx0) and backward filter (dw, db
 * start at dw0, db0) on one path; `times` backward calls. */
static conv_outputs run(tb_backend *be, const conv_case *cc, const conv_inputs *in, conv_path path, int times)
{
    tb_dtype dt = in->x.dt;
    conv_shapes s = conv_case_shapes(cc, dt);
    conv_outputs out = {conv_buf_new(dt, in->g.count), conv_buf_new(dt, in->x.count), conv_buf_new(dt, in->w.count),
                        conv_buf_new(dt, cc->k)};
    conv_buf_copy(&out.dx, &in->dx0), conv_buf_copy(&out.dw, &in->dw0), conv_buf_copy(&out.db, &in->db0);
    tb_tensor x = s.x, w = s.w, b = s.b, y = s.y, g = s.y, dx = s.x, dw = s.w, db = s.b;
    x.data = in->x.data, w.data = in->w.data, b.data = in->b.data, g.data = in->g.data;
    y.data = out.y.data, dx.data = out.dx.data, dw.data = out.dw.data, db.data = out.db.data;
    const tb_tensor *bias = cc->bias ? &b : NULL;
    tb_tensor *dbias = cc->bias ? &db : NULL;
    int rc;
    if (path == PATH_FAST)
        rc = tb_conv2d_forward(be, &y, &x, &w, bias, &cc->p);
    else
        rc = tb_cpu_conv2d_forward_naive(be, &y, &x, &w, bias, &cc->p);
    if (rc != TB_OK)
        fail_msg("%s forward: %s", cc->name, tb_errmsg());
    for (int t = 0; t < times; t++) {
        if (path == PATH_FAST) {
            rc = tb_conv2d_backward_data(be, &dx, &g, &w, &cc->p);
            if (rc == TB_OK)
                rc = tb_conv2d_backward_filter(be, &dw, dbias, &g, &x, &cc->p);
        } else {
            rc = tb_cpu_conv2d_backward_data_naive(be, &dx, &g, &w, &cc->p);
            if (rc == TB_OK)
                rc = tb_cpu_conv2d_backward_filter_naive(be, &dw, dbias, &g, &x, &cc->p);
        }
        if (rc != TB_OK)
            fail_msg("%s backward: %s", cc->name, tb_errmsg());
    }
    conv_buf *o[4] = {&out.y, &out.dx, &out.dw, &out.db};
    for (int i = 0; i < 4; i++) {
        if (!conv_buf_guards_intact(o[i]))
            fail_msg("%s: a write outside output %d", cc->name, i);
        conv_buf_sync(o[i]);
    }
    return out;
}

static void expect_close(const conv_case *cc, const char *label, const conv_outputs *got,
                         const conv_outputs *want, double tol)
{
    const char *names[4] = {"y", "dx", "dw", "dbias"};
    const conv_buf *a[4] = {&got->y, &got->dx, &got->dw, &got->db}, *b[4] = {&want->y, &want->dx, &want->dw, &want->db};
    for (int i = 0; i < 4; i++) {
        char what[160];
        snprintf(what, sizeof what, "%s %s %s", cc->name, label, names[i]);
        if (conv_first_mismatch(what, a[i]->f32, b[i]->f32, a[i]->count, tol, tol) >= 0)
            fail_msg("%s differs", what);
    }
}

static int setup(void **state)
{
    tb_backend *be = conv_test_backend(0);
    size_t ws = 0;
    tb_dtype dts[3] = {TB_F32, TB_F16, TB_BF16};
    for (int d = 0; d < 3; d++) {
        for (size_t i = 0; i < conv_medium_case_count; i++) {
            size_t need = conv_case_workspace(be, &conv_medium_cases[i], dts[d]);
            ws = need > ws ? need : ws;
        }
        size_t need = conv_case_workspace(be, &conv_chunked_case, dts[d]);
        ws = need > ws ? need : ws;
    }
    if (tb_backend_reserve_workspace(be, ws) != TB_OK)
        return -1;
    *state = be;
    return 0;
}

static int teardown(void **state)
{
    tb_backend_destroy(*state);
    return 0;
}

static void fast_vs_naive(tb_backend *be, const conv_case *cc, tb_dtype dt, uint64_t seed)
{
    conv_inputs in = inputs_new(cc, dt, seed);
    conv_outputs fast = run(be, cc, &in, PATH_FAST, 1), naive = run(be, cc, &in, PATH_NAIVE, 1);
    expect_close(cc, "fast vs naive", &fast, &naive, 1e-4);
    outputs_free(&fast), outputs_free(&naive), inputs_free(&in);
}

static void test_fast_matches_naive_tiny(void **state)
{
    for (size_t i = 0; i < conv_tiny_case_count; i++)
        fast_vs_naive(*state, &conv_tiny_cases[i], TB_F32, 10 + i);
}

static void test_fast_matches_naive_medium(void **state)
{
    for (size_t i = 0; i < conv_medium_case_count; i++)
        fast_vs_naive(*state, &conv_medium_cases[i], TB_F32, 50 + i);
}

/* An odd thread count: uneven row blocks and tasks, and more tasks than rows
 * in the tiny cases. */
static void test_fast_matches_naive_three_threads(void **state)
{
    (void)state;
    tb_backend *be = NULL;
    assert_int_equal(tb_cpu_backend_create(&be, 3), TB_OK);
    size_t ws = 0, nm = conv_medium_case_count;
    for (size_t i = 0; i < nm + conv_tiny_case_count; i++) {
        const conv_case *cc = i < nm ? &conv_medium_cases[i] : &conv_tiny_cases[i - nm];
        size_t need = conv_case_workspace(be, cc, TB_F32);
        ws = need > ws ? need : ws;
    }
    assert_int_equal(tb_backend_reserve_workspace(be, ws), TB_OK);
    for (size_t i = 0; i < nm + conv_tiny_case_count; i++)
        fast_vs_naive(be, i < nm ? &conv_medium_cases[i] : &conv_tiny_cases[i - nm], TB_F32, 200 + i);
    tb_backend_destroy(be);
    /* the backend sets the process-wide OpenMP thread count: back to the shared one's */
    tb_backend *again = NULL;
    assert_int_equal(tb_cpu_backend_create(&again, 2), TB_OK);
    tb_backend_destroy(again);
}

/* The chunked case really is chunked: its workspace is well under the column
 * buffer of the whole batch (7 MiB per image against a 16 MiB chunk budget:
 * chunks of 2 and 1 images). */
static void test_fast_chunked_batch(void **state)
{
    tb_backend *be = *state;
    const conv_case *cc = &conv_chunked_case;
    conv_shapes s = conv_case_shapes(cc, TB_F32);
    size_t whole_col = sizeof(float) * (size_t)(tb_numel(&s.y) / cc->k) * (size_t)(cc->r * cc->s * cc->c);
    assert_true(conv_case_workspace(be, cc, TB_F32) < whole_col * 4 / 5);
    assert_true(conv_case_workspace(be, cc, TB_BF16) < whole_col * 4 / 5);
    fast_vs_naive(be, cc, TB_F32, 90);
}

static void low_vs_f32(tb_backend *be, const conv_case *cc, uint64_t seed, bool with_naive)
{
    tb_dtype dts[2] = {TB_F16, TB_BF16};
    for (int d = 0; d < 2; d++) {
        conv_inputs low = inputs_new(cc, dts[d], seed);
        conv_inputs f32 = inputs_as(&low, TB_F32);
        conv_outputs ref = run(be, cc, &f32, PATH_FAST, 1);
        conv_outputs fast = run(be, cc, &low, PATH_FAST, 1);
        expect_close(cc, tb_dtype_name(dts[d]), &fast, &ref, 1e-2);
        if (with_naive) {
            conv_outputs naive = run(be, cc, &low, PATH_NAIVE, 1);
            expect_close(cc, tb_dtype_name(dts[d]), &naive, &ref, 1e-2);
            outputs_free(&naive);
        }
        outputs_free(&ref), outputs_free(&fast);
        inputs_free(&low), inputs_free(&f32);
    }
}

static void test_low_precision_matches_f32(void **state)
{
    for (size_t i = 0; i < conv_tiny_case_count; i++)
        low_vs_f32(*state, &conv_tiny_cases[i], 20 + i, true);
    for (size_t i = 0; i < conv_medium_case_count; i++)
        low_vs_f32(*state, &conv_medium_cases[i], 60 + i, true);
    low_vs_f32(*state, &conv_chunked_case, 91, false); /* f32 fast is checked against naive above */
}

/* Two backward calls from zero give twice the gradient of one (to rounding),
 * in f32 and f16, on every strategy. */
static void test_fast_backward_accumulates(void **state)
{
    tb_backend *be = *state;
    const conv_case *cases[4] = {&conv_medium_cases[0], &conv_medium_cases[1], &conv_medium_cases[2],
                                 &conv_medium_cases[3]};
    tb_dtype dts[2] = {TB_F32, TB_F16};
    for (int d = 0; d < 2; d++)
        for (int i = 0; i < 4; i++) {
            conv_inputs in = inputs_new(cases[i], dts[d], 70 + i);
            conv_buf_zero(&in.dx0), conv_buf_zero(&in.dw0), conv_buf_zero(&in.db0);
            conv_outputs once = run(be, cases[i], &in, PATH_FAST, 1), twice = run(be, cases[i], &in, PATH_FAST, 2);
            conv_buf *o[3] = {&once.dx, &once.dw, &once.db};
            for (int t = 0; t < 3; t++)
                for (int64_t j = 0; j < o[t]->count; j++)
                    o[t]->f32[j] *= 2.0f;
            expect_close(cases[i], dts[d] == TB_F32 ? "twice f32" : "twice f16", &twice, &once,
                         dts[d] == TB_F32 ? 1e-5 : 2e-3);
            /* and something was accumulated at all */
            double norm = 0.0;
            for (int64_t j = 0; j < once.dw.count; j++)
                norm += fabs(once.dw.f32[j]);
            assert_true(norm > 0.0);
            outputs_free(&once), outputs_free(&twice), inputs_free(&in);
        }
    /* dx NULL (the network input) is a no-op, not an error */
    conv_shapes s = conv_case_shapes(&conv_medium_cases[0], TB_F32);
    conv_inputs in = inputs_new(&conv_medium_cases[0], TB_F32, 80);
    s.y.data = in.g.data, s.w.data = in.w.data;
    assert_int_equal(tb_conv2d_backward_data(be, NULL, &s.y, &s.w, &conv_medium_cases[0].p), TB_OK);
    assert_int_equal(tb_cpu_conv2d_backward_data(be, NULL, &s.y, &s.w, &conv_medium_cases[0].p), TB_OK);
    inputs_free(&in);
}

static bool same_bits(const conv_buf *a, const conv_buf *b)
{
    return memcmp(a->data, b->data, tb_dtype_size(a->dt) * (size_t)a->count) == 0;
}

/* Fixed thread count: two runs are bitwise equal (no atomics, fixed sum order). */
static void test_fast_deterministic(void **state)
{
    tb_backend *be = *state;
    tb_dtype dts[2] = {TB_F32, TB_BF16};
    for (int d = 0; d < 2; d++)
        for (size_t i = 0; i <= conv_medium_case_count; i++) {
            const conv_case *cc = i < conv_medium_case_count ? &conv_medium_cases[i] : &conv_chunked_case;
            conv_inputs in = inputs_new(cc, dts[d], 100 + i);
            conv_outputs a = run(be, cc, &in, PATH_FAST, 1), b = run(be, cc, &in, PATH_FAST, 1);
            if (!same_bits(&a.y, &b.y) || !same_bits(&a.dx, &b.dx) || !same_bits(&a.dw, &b.dw) ||
                !same_bits(&a.db, &b.db))
                fail_msg("%s %s: two runs differ", cc->name, tb_dtype_name(dts[d]));
            outputs_free(&a), outputs_free(&b), inputs_free(&in);
        }
}

/* Which path runs what: f32 convs with one group on oneDNN's primitives
 * (every such case of the tables above, so they test that path), 1x1
 * stride-1 unpadded, f16/bf16 and grouped convs on the GEMM path (tested by
 * the same tables). */
static void test_onednn_takes_dense_f32(void **state)
{
    tb_backend *be = *state;
    int dense = 0;
    for (size_t i = 0; i < conv_tiny_case_count + conv_medium_case_count; i++) {
        const conv_case *cc =
            i < conv_tiny_case_count ? &conv_tiny_cases[i] : &conv_medium_cases[i - conv_tiny_case_count];
        tb_dtype dts[3] = {TB_F32, TB_F16, TB_BF16};
        for (int d = 0; d < 3; d++) {
            conv_shapes s = conv_case_shapes(cc, dts[d]);
            size_t bytes = 0;
            bool took = tb_cpu_conv2d_onednn_plan(be, &s.y, &s.x, &s.w, &cc->p, &bytes);
            bool gemm_1x1 = cc->r == 1 && cc->s == 1 && cc->p.stride_h == 1 && cc->p.stride_w == 1 &&
                            cc->p.pad_h == 0 && cc->p.pad_w == 0;
            bool want = dts[d] == TB_F32 && cc->p.groups == 1 && !gemm_1x1;
            if (took != want)
                fail_msg("%s %s: oneDNN path %s", cc->name, tb_dtype_name(dts[d]), took ? "taken" : "not taken");
            if (took && (bytes == 0 || bytes > be->workspace_size))
                fail_msg("%s: oneDNN workspace %zu bytes (%zu reserved)", cc->name, bytes, be->workspace_size);
            dense += took;
        }
    }
    assert_true(dense >= 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast_matches_naive_tiny),
        cmocka_unit_test(test_fast_matches_naive_medium),
        cmocka_unit_test(test_fast_matches_naive_three_threads),
        cmocka_unit_test(test_fast_chunked_batch),
        cmocka_unit_test(test_low_precision_matches_f32),
        cmocka_unit_test(test_fast_backward_accumulates),
        cmocka_unit_test(test_fast_deterministic),
        cmocka_unit_test(test_onednn_takes_dense_f32),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
