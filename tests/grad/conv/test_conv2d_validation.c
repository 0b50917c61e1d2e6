/* Every invalid conv2d call returns TB_ERR_INVALID with a message naming the
 * op and the shapes, and writes nothing. */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "kernels/backend.h"
#include "kernels/error.h"
#include "kernels/ops.h"

/* A valid grouped call: x {2,9,8,6}, w {4,3,3,3} (groups 2), stride 2, pad 1 -> y {2,5,4,4}. */
typedef struct call {
    tb_tensor x, w, y, b;
    tb_conv2d_params p;
} call;

static float xbuf[2 * 9 * 8 * 12], wbuf[8 * 12 * 3 * 6], ybuf[2 * 9 * 8 * 12], bbuf[8];

static call valid_call(void)
{
    call c;
    c.x = tb_tensor_4d(xbuf, TB_F32, 2, 9, 8, 6);
    c.w = tb_tensor_4d(wbuf, TB_F32, 4, 3, 3, 3);
    c.y = tb_tensor_4d(ybuf, TB_F32, 2, 5, 4, 4);
    c.b = tb_tensor_1d(bbuf, TB_F32, 4);
    c.p = (tb_conv2d_params){2, 2, 1, 1, 1, 1, 2};
    return c;
}

typedef struct mutation {
    const char *name;
    const char *expect; /* a phrase the message must contain */
    void (*apply)(call *c);
    bool bias_only; /* backward data has no bias: the call stays valid there */
} mutation;

static void m_x_3d(call *c) { c->x.ndim = 3; }
static void m_w_2d(call *c) { c->w.ndim = 2; }
static void m_y_5d_shape(call *c) { c->y.ndim = 2; }
static void m_w_f16(call *c) { c->w.dtype = TB_F16; }
static void m_x_bf16(call *c) { c->x.dtype = TB_BF16; }
static void m_all_i32(call *c) { c->x.dtype = c->w.dtype = c->y.dtype = c->b.dtype = TB_I32; }
static void m_c_groups(call *c) { c->p.groups = 4; } /* 6 channels, 4 groups */
static void m_k_groups(call *c) { c->w.shape[0] = 5; c->y.shape[3] = 5; c->b.shape[0] = 5; }
static void m_w_cin(call *c) { c->w.shape[3] = 6; } /* dense weights for a grouped conv */
static void m_batch(call *c) { c->y.shape[0] = 3; }
static void m_y_channels(call *c) { c->y.shape[3] = 8; }
static void m_oh(call *c) { c->y.shape[1] = 4; }
static void m_ow(call *c) { c->y.shape[2] = 5; }
static void m_stride0(call *c) { c->p.stride_w = 0; }
static void m_dil0(call *c) { c->p.dil_h = 0; }
static void m_pad_neg(call *c) { c->p.pad_h = -1; }
static void m_groups0(call *c) { c->p.groups = 0; }
static void m_kernel_too_big(call *c) { c->w.shape[1] = 12; }
static void m_bias_shape(call *c) { c->b.shape[0] = 5; }
static void m_bias_2d(call *c) { c->b.ndim = 2; c->b.shape[1] = 1; }
static void m_bias_dtype(call *c) { c->b.dtype = TB_F16; }
static void m_x_no_data(call *c) { c->x.data = NULL; }
static void m_zero_dim(call *c) { c->x.shape[2] = 0; }

static const mutation mutations[] = {
    {"input not 4-D", "must be 4-D", m_x_3d, false},
    {"weight not 4-D", "must be 4-D OHWI", m_w_2d, false},
    {"output not 4-D", "must be 4-D", m_y_5d_shape, false},
    {"weight dtype", "dtype", m_w_f16, false},
    {"input dtype", "dtype bf16 differs", m_x_bf16, false},
    {"integer dtype", "not a float dtype", m_all_i32, false},
    {"channels not divisible by groups", "not divisible by groups 4", m_c_groups, false},
    {"out channels not divisible by groups", "not divisible by groups 2", m_k_groups, false},
    {"weight input channels", "expects 6 input channels per group", m_w_cin, false},
    {"batch", "batch of", m_batch, false},
    {"output channels", "output channels", m_y_channels, false},
    {"output height", "should be 5x4", m_oh, false},
    {"output width", "should be 5x4", m_ow, false},
    {"zero stride", "stride 2x0 must be positive", m_stride0, false},
    {"zero dilation", "dilation 0x1 must be positive", m_dil0, false},
    {"negative padding", "padding -1x1 must not be negative", m_pad_neg, false},
    {"zero groups", "groups 0 must be positive", m_groups0, false},
    {"kernel larger than input", "does not fit", m_kernel_too_big, false},
    {"bias length", "must be {4}", m_bias_shape, true},
    {"bias rank", "must be {4}", m_bias_2d, true},
    {"bias dtype", "dtype f16 differs", m_bias_dtype, true},
    {"missing data", "has no data", m_x_no_data, false},
    {"zero dimension", "must be positive", m_zero_dim, false},
};

static int setup(void **state)
{
    tb_backend *be = NULL;
    if (tb_cpu_backend_create(&be, 2) != TB_OK)
        return -1;
    call c = valid_call();
    if (tb_backend_reserve_workspace(be, tb_conv2d_workspace_size(be, &c.y, &c.x, &c.w, &c.p)) != TB_OK)
        return -1;
    *state = be;
    return 0;
}

static int teardown(void **state)
{
    tb_backend_destroy(*state);
    return 0;
}

/* The message names the op and shows the shapes of the call. */
static void expect_invalid(int rc, const char *op, const char *what, const char *phrase, const call *c)
{
    char xs[64], ws[64];
    const char *msg = tb_errmsg();
    if (rc != TB_ERR_INVALID)
        fail_msg("%s %s: status %d (%s), expected invalid; message: %s", op, what, rc, tb_status_name(rc), msg);
    tb_shape_str(&c->x, xs, sizeof xs);
    tb_shape_str(&c->w, ws, sizeof ws);
    if (strncmp(msg, op, strlen(op)) != 0 || !strstr(msg, xs) || !strstr(msg, ws) || !strstr(msg, phrase))
        fail_msg("%s %s: message lacks the op, the shapes %s / %s or '%s': %s", op, what, xs, ws, phrase, msg);
}

static void test_valid_call_passes(void **state)
{
    tb_backend *be = *state;
    call c = valid_call();
    assert_int_equal(tb_conv2d_forward(be, &c.y, &c.x, &c.w, &c.b, &c.p), TB_OK);
    assert_int_equal(tb_conv2d_backward_data(be, &c.x, &c.y, &c.w, &c.p), TB_OK);
    assert_int_equal(tb_conv2d_backward_filter(be, &c.w, &c.b, &c.y, &c.x, &c.p), TB_OK);
}

static void test_every_mutation_is_rejected(void **state)
{
    tb_backend *be = *state;
    for (size_t i = 0; i < sizeof mutations / sizeof mutations[0]; i++) {
        const mutation *m = &mutations[i];
        call c = valid_call();
        m->apply(&c);
        memset(ybuf, 0, sizeof ybuf);
        tb_err_clear();
        expect_invalid(tb_conv2d_forward(be, &c.y, &c.x, &c.w, &c.b, &c.p), "conv2d_forward", m->name, m->expect,
                       &c);
        for (size_t j = 0; j < sizeof ybuf / sizeof ybuf[0]; j++)
            if (ybuf[j] != 0.0f)
                fail_msg("%s: the rejected forward wrote its output", m->name);
        /* the backward ops check the same shapes (under their own tensor names) */
        tb_err_clear();
        if (m->bias_only)
            assert_int_equal(tb_conv2d_backward_data(be, &c.x, &c.y, &c.w, &c.p), TB_OK);
        else
            expect_invalid(tb_conv2d_backward_data(be, &c.x, &c.y, &c.w, &c.p), "conv2d_backward_data", m->name,
                           "(", &c);
        tb_err_clear();
        expect_invalid(tb_conv2d_backward_filter(be, &c.w, &c.b, &c.y, &c.x, &c.p), "conv2d_backward_filter",
                       m->name, "(", &c);
    }
}

static void test_example_message(void **state)
{
    tb_backend *be = *state;
    call c = valid_call();
    c.p.groups = 1; /* weight {4,3,3,3} now expects 3 channels, input has 6 */
    assert_int_equal(tb_conv2d_forward(be, &c.y, &c.x, &c.w, &c.b, &c.p), TB_ERR_INVALID);
    const char *msg = tb_errmsg();
    if (!strstr(msg, "conv2d_forward: weight [4,3,3,3] f32 expects 3 input channels per group, "
                     "input [2,9,8,6] f32 has 6 (groups 1)"))
        fail_msg("unexpected message: %s", msg);
    /* backward filter names the gradients */
    c = valid_call();
    c.b.shape[0] = 3;
    assert_int_equal(tb_conv2d_backward_filter(be, &c.w, &c.b, &c.y, &c.x, &c.p), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "bias grad must be {4}"));
    assert_non_null(strstr(tb_errmsg(), "output grad [2,5,4,4] f32"));
}

static void test_workspace_must_be_reserved(void **state)
{
    (void)state;
    tb_backend *be = NULL;
    assert_int_equal(tb_cpu_backend_create(&be, 2), TB_OK);
    call c = valid_call();
    size_t need = tb_conv2d_workspace_size(be, &c.y, &c.x, &c.w, &c.p);
    assert_true(need > 0);
    int rc = tb_conv2d_forward(be, &c.y, &c.x, &c.w, &c.b, &c.p);
    expect_invalid(rc, "conv2d_forward", "no workspace", "tb_backend_reserve_workspace", &c);
    char needed[64];
    snprintf(needed, sizeof needed, "needs %zu bytes", need);
    assert_non_null(strstr(tb_errmsg(), needed));
    /* the backend itself refuses too, when called directly */
    assert_int_equal(be->iface.conv2d_backward_filter(be, &c.w, &c.b, &c.y, &c.x, &c.p), TB_ERR_INVALID);
    assert_int_equal(tb_backend_reserve_workspace(be, need), TB_OK);
    assert_int_equal(tb_conv2d_forward(be, &c.y, &c.x, &c.w, &c.b, &c.p), TB_OK);
    tb_backend_destroy(be);
}

static void test_workspace_query_is_total(void **state)
{
    tb_backend *be = *state;
    call c = valid_call();
    c.p.groups = 0; /* nonsense shapes give 0, not a crash */
    assert_int_equal(tb_conv2d_workspace_size(be, &c.y, &c.x, &c.w, &c.p), 0);
    c = valid_call();
    c.x.ndim = 2;
    assert_int_equal(tb_conv2d_workspace_size(be, &c.y, &c.x, &c.w, &c.p), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_call_passes),
        cmocka_unit_test(test_every_mutation_is_rejected),
        cmocka_unit_test(test_example_message),
        cmocka_unit_test(test_workspace_must_be_reserved),
        cmocka_unit_test(test_workspace_query_is_total),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
