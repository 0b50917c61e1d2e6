/* Average pooling over NHWC with PyTorch's divisor rules:
 *  - count_include_pad = false: the number of in-bounds elements of the window
 *    (ResNet-D's 2x2/s2 ceil-mode shortcut pool);
 *  - count_include_pad = true: the window clipped to the padded input, so
 *    padding counts but a ceil-mode window past the padding does not.
 * Forward is parallel over output rows; the backward scatters into
 * overlapping windows, so it is parallel over (image, channel block) pairs. */
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/error.h"

typedef struct window {
    int64_t y0, y1, x0, x1;
    float count; /* the divisor */
} window;

static window pool_window(const tb_pool_params *p, int64_t h, int64_t w, int64_t oy, int64_t ox)
{
    window win;
    int64_t ph, pw;
    tb_cpu_pool_window(oy, p->kernel_h, p->stride_h, p->pad_h, h, &win.y0, &win.y1, &ph);
    tb_cpu_pool_window(ox, p->kernel_w, p->stride_w, p->pad_w, w, &win.x0, &win.x1, &pw);
    int64_t count = p->count_include_pad ? ph * pw : (win.y1 - win.y0) * (win.x1 - win.x0);
    win.count = count > 0 ? (float)count : 1.0f; /* never 0 for validated params */
    return win;
}

int tb_cpu_avgpool_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_pool_params *p)
{
    int64_t n = y->shape[0], oh = y->shape[1], ow = y->shape[2], c = y->shape[3];
    int64_t h = x->shape[1], w = x->shape[2];
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t t = 0; t < n * oh; t++) {
        int64_t b = t / oh, oy = t % oh;
        float acc[TB_CPU_CB], tmp[TB_CPU_CB];
        for (int64_t ox = 0; ox < ow; ox++) {
            window win = pool_window(p, h, w, oy, ox);
            for (int64_t j0 = 0; j0 < c; j0 += TB_CPU_CB) {
                int64_t cb = tb_cpu_min64(TB_CPU_CB, c - j0);
                for (int64_t j = 0; j < cb; j++)
                    acc[j] = 0.0f;
                for (int64_t iy = win.y0; iy < win.y1; iy++)
                    for (int64_t ix = win.x0; ix < win.x1; ix++) {
                        const float *row = tb_cpu_load_row(tmp, x, ((b * h + iy) * w + ix) * c + j0, cb);
                        for (int64_t j = 0; j < cb; j++)
                            acc[j] += row[j];
                    }
                for (int64_t j = 0; j < cb; j++)
                    acc[j] /= win.count;
                tb_cpu_store_row(y, (t * ow + ox) * c + j0, acc, cb);
            }
        }
    }
    return TB_OK;
}

int tb_cpu_avgpool_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_pool_params *p)
{
    int64_t n = dy->shape[0], oh = dy->shape[1], ow = dy->shape[2], c = dy->shape[3];
    int64_t h = dx->shape[1], w = dx->shape[2];
    int64_t blocks = (c + TB_CPU_CB - 1) / TB_CPU_CB;
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t t = 0; t < n * blocks; t++) {
        int64_t b = t / blocks, j0 = (t % blocks) * TB_CPU_CB;
        int64_t cb = tb_cpu_min64(TB_CPU_CB, c - j0);
        float g[TB_CPU_CB], tmp[TB_CPU_CB];
        for (int64_t oy = 0; oy < oh; oy++)
            for (int64_t ox = 0; ox < ow; ox++) {
                window win = pool_window(p, h, w, oy, ox);
                const float *row = tb_cpu_load_row(tmp, dy, ((b * oh + oy) * ow + ox) * c + j0, cb);
                for (int64_t j = 0; j < cb; j++)
                    g[j] = row[j] / win.count;
                for (int64_t iy = win.y0; iy < win.y1; iy++)
                    for (int64_t ix = win.x0; ix < win.x1; ix++)
                        tb_cpu_accum_row(dx, ((b * h + iy) * w + ix) * c + j0, g, cb);
            }
    }
    return TB_OK;
}
