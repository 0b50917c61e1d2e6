/* conv2d front-ends: check shapes, dtypes, parameters and the reserved
 * workspace, then dispatch to the backend.
 *
 * Every error names the op, the problem, and every tensor of the call with its
 * shape and dtype, plus the convolution parameters, so a failing graph node
 * can be found from the message alone.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#include "kernels/backend.h"
#include "kernels/error.h"
#include "kernels/ops.h"

int64_t tb_conv2d_out_size(int64_t in, int kernel, int stride, int pad, int dil)
{
    if (stride <= 0 || dil <= 0 || kernel <= 0 || pad < 0 || in <= 0)
        return 0;
    int64_t span = in + 2 * (int64_t)pad - (int64_t)dil * (kernel - 1) - 1;
    /* C division truncates toward zero: a negative span would round up to 0
     * and report one output pixel for a kernel larger than the padded input */
    if (span < 0)
        return 0;
    return span / stride + 1;
}

/* The tensors of one call, named as the op's documentation names them. */
typedef struct conv_call {
    const char *op;
    const char *x_name, *w_name, *y_name, *b_name;
    const tb_tensor *x, *w, *y, *b;
    const tb_conv2d_params *p;
} conv_call;

/* Records "op: problem (x [...] f32, w [...] f32, y [...] f32, bias ...; stride ...)". */
static int conv_fail(const conv_call *a, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static int conv_fail(const conv_call *a, const char *fmt, ...)
{
    char problem[512], xs[64], ws[64], ys[64], bs[64], params[128] = "no parameters";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(problem, sizeof problem, fmt, ap);
    va_end(ap);
    if (a->p)
        snprintf(params, sizeof params, "stride %dx%d, pad %dx%d, dilation %dx%d, groups %d", a->p->stride_h,
                 a->p->stride_w, a->p->pad_h, a->p->pad_w, a->p->dil_h, a->p->dil_w, a->p->groups);
    return tb_fail(TB_ERR_INVALID, "%s: %s (%s %s, %s %s, %s %s, %s %s; %s)", a->op, problem, a->x_name,
                   tb_shape_str(a->x, xs, sizeof xs), a->w_name, tb_shape_str(a->w, ws, sizeof ws), a->y_name,
                   tb_shape_str(a->y, ys, sizeof ys), a->b_name, tb_shape_str(a->b, bs, sizeof bs), params);
}

static int check_params(const conv_call *a)
{
    const tb_conv2d_params *p = a->p;
    if (!p)
        return conv_fail(a, "missing convolution parameters");
    if (p->stride_h <= 0 || p->stride_w <= 0)
        return conv_fail(a, "stride %dx%d must be positive", p->stride_h, p->stride_w);
    if (p->dil_h <= 0 || p->dil_w <= 0)
        return conv_fail(a, "dilation %dx%d must be positive", p->dil_h, p->dil_w);
    if (p->pad_h < 0 || p->pad_w < 0)
        return conv_fail(a, "padding %dx%d must not be negative", p->pad_h, p->pad_w);
    if (p->groups <= 0)
        return conv_fail(a, "groups %d must be positive", p->groups);
    return TB_OK;
}

static int check_ranks_and_dtypes(const conv_call *a)
{
    char s[64];
    if (!a->x || !a->w || !a->y)
        return conv_fail(a, "missing %s tensor", !a->x ? a->x_name : !a->w ? a->w_name : a->y_name);
    if (a->x->ndim != 4)
        return conv_fail(a, "%s %s must be 4-D NHWC", a->x_name, tb_shape_str(a->x, s, sizeof s));
    if (a->w->ndim != 4)
        return conv_fail(a, "%s %s must be 4-D OHWI {k,r,s,c/groups}", a->w_name, tb_shape_str(a->w, s, sizeof s));
    if (a->y->ndim != 4)
        return conv_fail(a, "%s %s must be 4-D NHWC", a->y_name, tb_shape_str(a->y, s, sizeof s));
    if (!tb_dtype_is_float(a->w->dtype))
        return conv_fail(a, "%s dtype %s is not a float dtype (f32, f16, bf16)", a->w_name,
                         tb_dtype_name(a->w->dtype));
    const tb_tensor *others[3] = {a->x, a->y, a->b};
    const char *names[3] = {a->x_name, a->y_name, a->b_name};
    for (int i = 0; i < 3; i++)
        if (others[i] && others[i]->dtype != a->w->dtype)
            return conv_fail(a, "%s dtype %s differs from %s dtype %s (one dtype per call)", names[i],
                             tb_dtype_name(others[i]->dtype), a->w_name, tb_dtype_name(a->w->dtype));
    return TB_OK;
}

static int check_shapes(const conv_call *a)
{
    char xs[64], ws[64], ys[64];
    const tb_conv2d_params *p = a->p;
    const int64_t *x = a->x->shape, *w = a->w->shape, *y = a->y->shape;
    int groups = p->groups;
    for (int i = 0; i < 4; i++)
        if (x[i] <= 0 || w[i] <= 0 || y[i] <= 0)
            return conv_fail(a, "every dimension must be positive");
    if (x[3] % groups)
        return conv_fail(a, "%s has %lld channels, not divisible by groups %d", a->x_name, (long long)x[3], groups);
    if (w[0] % groups)
        return conv_fail(a, "%s has %lld output channels, not divisible by groups %d", a->w_name,
                         (long long)w[0], groups);
    if (w[3] != x[3] / groups)
        return conv_fail(a, "%s %s expects %lld input channels per group, %s %s has %lld (groups %d)", a->w_name,
                         tb_shape_str(a->w, ws, sizeof ws), (long long)w[3], a->x_name,
                         tb_shape_str(a->x, xs, sizeof xs), (long long)(x[3] / groups), groups);
    if (y[0] != x[0])
        return conv_fail(a, "batch of %s %s differs from %s %s", a->y_name, tb_shape_str(a->y, ys, sizeof ys),
                         a->x_name, tb_shape_str(a->x, xs, sizeof xs));
    if (y[3] != w[0])
        return conv_fail(a, "%s %s has %lld channels but %s %s has %lld output channels", a->y_name,
                         tb_shape_str(a->y, ys, sizeof ys), (long long)y[3], a->w_name,
                         tb_shape_str(a->w, ws, sizeof ws), (long long)w[0]);
    int64_t oh = tb_conv2d_out_size(x[1], (int)w[1], p->stride_h, p->pad_h, p->dil_h);
    int64_t ow = tb_conv2d_out_size(x[2], (int)w[2], p->stride_w, p->pad_w, p->dil_w);
    if (oh <= 0 || ow <= 0)
        return conv_fail(a, "kernel %lldx%lld (dilation %dx%d) does not fit the %lldx%lld input padded by %dx%d",
                         (long long)w[1], (long long)w[2], p->dil_h, p->dil_w, (long long)x[1], (long long)x[2],
                         p->pad_h, p->pad_w);
    if (y[1] != oh || y[2] != ow)
        return conv_fail(a, "%s %s should be %lldx%lld spatially for %s %s", a->y_name,
                         tb_shape_str(a->y, ys, sizeof ys), (long long)oh, (long long)ow, a->x_name,
                         tb_shape_str(a->x, xs, sizeof xs));
    if (a->b && (a->b->ndim != 1 || a->b->shape[0] != w[0]))
        return conv_fail(a, "%s must be {%lld}, one per output channel", a->b_name, (long long)w[0]);
    return TB_OK;
}

static int check_data(const conv_call *a)
{
    const tb_tensor *t[4] = {a->x, a->w, a->y, a->b};
    const char *names[4] = {a->x_name, a->w_name, a->y_name, a->b_name};
    for (int i = 0; i < 4; i++)
        if (t[i] && !t[i]->data)
            return conv_fail(a, "%s has no data", names[i]);
    return TB_OK;
}

/* The op's workspace must have been reserved at graph build; a step never allocates. */
static int check_workspace(tb_backend *be, const conv_call *a)
{
    if (!be->iface.conv2d_workspace_size)
        return TB_OK;
    size_t need = be->iface.conv2d_workspace_size(be, a->y, a->x, a->w, a->p, false);
    if (be->workspace_size < need)
        return conv_fail(a, "needs %zu bytes of workspace but %s has %zu reserved; reserve "
                            "tb_conv2d_workspace_size() bytes with tb_backend_reserve_workspace at graph build",
                         need, be->name, be->workspace_size);
    return TB_OK;
}

static int check_call(tb_backend *be, const conv_call *a, bool implemented)
{
    TB_TRY(check_params(a));
    TB_TRY(check_ranks_and_dtypes(a));
    TB_TRY(check_shapes(a));
    TB_TRY(check_data(a));
    if (!implemented)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", a->op, be->name);
    return check_workspace(be, a);
}

int tb_conv2d_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *w, const tb_tensor *bias,
                      const tb_conv2d_params *p)
{
    conv_call a = {tb_op_name(TB_OP_CONV2D_FORWARD), "input", "weight", "output", "bias", x, w, y, bias, p};
    TB_TRY(check_call(be, &a, be->iface.conv2d_forward != NULL));
    return be->iface.conv2d_forward(be, y, x, w, bias, p);
}

int tb_conv2d_backward_data(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *w,
                            const tb_conv2d_params *p)
{
    if (!dx) /* the network input: no gradient wanted */
        return TB_OK;
    conv_call a = {tb_op_name(TB_OP_CONV2D_BACKWARD_DATA), "input grad", "weight", "output grad", "bias",
                   dx, w, dy, NULL, p};
    TB_TRY(check_call(be, &a, be->iface.conv2d_backward_data != NULL));
    return be->iface.conv2d_backward_data(be, dx, dy, w, p);
}

int tb_conv2d_backward_filter(tb_backend *be, tb_tensor *dw, tb_tensor *dbias, const tb_tensor *dy,
                              const tb_tensor *x, const tb_conv2d_params *p)
{
    conv_call a = {tb_op_name(TB_OP_CONV2D_BACKWARD_FILTER), "input", "weight grad", "output grad", "bias grad",
                   x, dw, dy, dbias, p};
    TB_TRY(check_call(be, &a, be->iface.conv2d_backward_filter != NULL));
    return be->iface.conv2d_backward_filter(be, dw, dbias, dy, x, p);
}

size_t tb_conv2d_workspace_size(tb_backend *be, const tb_tensor *y, const tb_tensor *x, const tb_tensor *w,
                                const tb_conv2d_params *p)
{
    if (!be->iface.conv2d_workspace_size || !y || !x || !w || !p || x->ndim != 4 || w->ndim != 4 || y->ndim != 4)
        return 0;
    return be->iface.conv2d_workspace_size(be, y, x, w, p, true);
}
