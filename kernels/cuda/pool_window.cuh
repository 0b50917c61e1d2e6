/* Pooling windows with PyTorch's rules, shared by maxpool.cu and avgpool.cu.
 * Output sizes come from the y / dy tensors (the front-end computed them
 * with tb_pool_out_size, ceil mode included); a window is
 * [o * stride - pad, o * stride - pad + kernel) clipped to the input, and an
 * average divides by the window size clipped to the padded input
 * (count_include_pad) or to the input itself. */
#ifndef TB_CUDA_POOL_WINDOW_CUH
#define TB_CUDA_POOL_WINDOW_CUH

#include "kernels/cuda/cuda_common.cuh"

typedef struct tb_pool_geom {
    int64_t n, h, w, c, oh, ow;
    int kh, kw, sh, sw, ph, pw;
    bool include_pad;
} tb_pool_geom;

static inline tb_pool_geom tb_pool_geom_make(const tb_tensor *x, const tb_tensor *y, const tb_pool_params *p)
{
    tb_pool_geom g;
    g.n = x->shape[0];
    g.h = x->shape[1];
    g.w = x->shape[2];
    g.c = x->shape[3];
    g.oh = y->shape[1];
    g.ow = y->shape[2];
    g.kh = p->kernel_h;
    g.kw = p->kernel_w;
    g.sh = p->stride_h;
    g.sw = p->stride_w;
    g.ph = p->pad_h;
    g.pw = p->pad_w;
    g.include_pad = p->count_include_pad;
    return g;
}

/* Window of output o along one axis, clipped to [0, in). */
TB_HD void tb_pool_window(int64_t o, int k, int s, int pad, int64_t in, int64_t *start,
                                               int64_t *end)
{
    int64_t a = o * s - pad, b = a + k;
    *start = a > 0 ? a : 0;
    *end = b < in ? b : in;
}

/* Window size along one axis clipped to the padded input [-pad, in + pad). */
TB_HD int64_t tb_pool_padded_len(int64_t o, int k, int s, int pad, int64_t in)
{
    int64_t a = o * s - pad, b = a + k;
    if (b > in + pad)
        b = in + pad;
    return b - a;
}

/* Outputs whose window covers input index i along one axis: [*lo, *hi]. */
TB_HD void tb_pool_outputs_of(int64_t i, int k, int s, int pad, int64_t out, int64_t *lo,
                                                   int64_t *hi)
{
    int64_t first = i + pad - k + 1; /* smallest o * s that still reaches i */
    *lo = first <= 0 ? 0 : (first + s - 1) / s;
    int64_t last = (i + pad) / s;
    *hi = last < out - 1 ? last : out - 1;
}

#endif
