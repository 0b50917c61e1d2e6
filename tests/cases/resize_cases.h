/* The bilinear-resize case table, defined once: the grad suite runs it
 * against its double reference, finite differences and f32
 * (tests/grad/ops/test_resize_grad.c), the cuda suite against the CPU
 * (tests/cuda/test_cuda_resize.c). */
#ifndef TB_TEST_RESIZE_CASES_H
#define TB_TEST_RESIZE_CASES_H

#include <stddef.h>

/* One resize: x {n,h,w,c} -> y {n,oh,ow,c}. */
typedef struct rs_case {
    const char *name;
    int n, h, w, c, oh, ow;
} rs_case;

/* Up- and down-sampling by non-integer factors, mixed, identity, 2x,
 * 1-pixel inputs and outputs, and more channels than one CPU block; every
 * x and y at most 4096 elements (the grad suite's double references). */
extern const rs_case rs_cases[];
extern const size_t rs_case_count;

#endif
