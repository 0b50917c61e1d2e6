#include "models/layers.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>

int tb_scale_width(int c, float width)
{
    long v = lroundf((float)c * width);
    return v < 1 ? 1 : (int)v;
}

tb_value tb_layer_conv(tb_graph *g, tb_value x, int out, int kh, int kw, int stride, int pad_h, int pad_w,
                       int groups, const char *fmt, ...)
{
    char name[TB_NAME_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    tb_conv_spec s = {.k = out, .kh = kh, .kw = kw, .stride = stride, .pad_h = pad_h, .pad_w = pad_w,
                      .dilation = 1, .groups = groups, .bias = false};
    return tb_g_conv(g, name, x, s);
}

tb_value tb_layer_bn(tb_graph *g, tb_value x, float eps, unsigned flags, const char *fmt, ...)
{
    char name[TB_NAME_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return tb_g_bn(g, name, x, eps, TB_BN_MOMENTUM, flags);
}

tb_value tb_layer_head(tb_graph *g, tb_value x, const tb_model_spec *spec, const char *name)
{
    x = tb_g_global_avgpool(g, x);
    if (spec->dropout > 0.0f)
        x = tb_g_dropout(g, x, spec->dropout);
    return tb_g_linear(g, name, x, spec->classes, true);
}

tb_pool_params tb_pool_make(int kernel, int stride, int pad, bool ceil_mode, bool count_include_pad)
{
    tb_pool_params p = {.kernel_h = kernel, .kernel_w = kernel, .stride_h = stride, .stride_w = stride,
                        .pad_h = pad, .pad_w = pad, .ceil_mode = ceil_mode,
                        .count_include_pad = count_include_pad};
    return p;
}

tb_pool_params tb_pool_resnet_d(void) { return tb_pool_make(2, 2, 0, true, false); }
