/* The conv2d case tables, defined once: the grad suite runs them against the
 * naive reference and finite differences (tests/grad/conv), the cuda suite
 * against the CPU (tests/cuda/test_cuda_layers.c). */
#ifndef TB_TEST_CONV_CASES_H
#define TB_TEST_CONV_CASES_H

#include <stdbool.h>
#include <stddef.h>

#include "kernels/ops.h"

/* x {n,h,w,c}, w {k,r,s,c/groups}, bias {k} when `bias`. */
typedef struct conv_case {
    const char *name;
    int n, h, w, c, k, r, s;
    tb_conv2d_params p; /* stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups */
    bool bias;
} conv_case;

/* Tiny cases covering every feature: odd sizes, strides 1/2, padding 0-3,
 * dilation 2, groups 1/2/c (depthwise, also with a channel multiplier), batch
 * 1 and 3, bias or not, 1x1 convs, Inception's 1x7 / 7x1 kernels, and
 * outputs with fewer pixels (rows) than threads. */
extern const conv_case conv_tiny_cases[];
extern const size_t conv_tiny_case_count;

/* Bigger than the tiny table: real channel counts. */
extern const conv_case conv_medium_cases[];
extern const size_t conv_medium_case_count;

/* Enough pixels per image that the CPU's im2col strategy splits the batch
 * into chunks (2 + 1 images) and each chunk into more row tasks than threads. */
extern const conv_case conv_chunked_case;

#endif
