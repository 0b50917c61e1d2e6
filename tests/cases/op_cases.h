/* The table of op cases with a backward (every op but conv2d and resize),
 * defined once: the grad suite runs it against finite differences, in
 * f16/bf16 against f32 and with 1 and 2 threads
 * (tests/grad/ops/test_ops_grad.c); the cuda suite against the CPU
 * (tests/cuda/test_cuda_layers.c, the softmax CE in test_cuda_util_ops.c). */
#ifndef TB_TEST_OP_CASES_H
#define TB_TEST_OP_CASES_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/ops.h"

typedef enum op_case_kind {
    OC_BATCHNORM,      /* x {d}, gamma/beta f32 {channels}; d 4-D NHWC or 2-D {n, c} */
    OC_BATCHNORM_RELU, /* the fused batchnorm (+ add) + relu; OC_V_ADD: with the shortcut z */
    OC_RELU,
    OC_MAXPOOL,        /* x {d} 4-D, `pool` */
    OC_AVGPOOL,
    OC_GLOBAL_AVGPOOL, /* x {d} 4-D -> {n, c} */
    OC_LINEAR,         /* x {d[0], d[1]}, w {k, d[1]}; OC_V_BIAS, OC_V_NAIVE */
    OC_ADD,
    OC_CONCAT,         /* parts along the last axis of d (whose last extent is 0) */
    OC_DROPOUT,        /* p = f */
    OC_SOFTMAX_CE,     /* logits {d[0], d[1]}, temperature f; labels, or OC_V_SOFT targets */
} op_case_kind;

/* Variant flags. */
enum {
    OC_V_BIAS = 1,  /* linear with a bias */
    OC_V_NAIVE = 2, /* linear through the CPU's naive twin (tb_cpu_linear_*_naive) */
    OC_V_SOFT = 4,  /* softmax CE on soft targets (below) instead of labels */
    OC_V_ADD = 8,   /* batchnorm + add + relu */
};

/* The soft targets of OC_V_SOFT: tb_soft_targets(labels, the reversed
 * labels, lam, eps), i.e. label smoothing 0.1 plus mixup with the reversed
 * batch, lam 0.7. */
#define OC_SOFT_LAM 0.7f
#define OC_SOFT_EPS 0.1f

typedef struct op_case {
    const char *name;
    op_case_kind op;
    int ndim;
    int64_t d[4];
    tb_pool_params pool;
    int64_t k;        /* linear outputs */
    int64_t parts[3]; /* concat: channels of each part (0 = unused) */
    float f;          /* dropout p, softmax temperature */
    int variant;      /* OC_V_* flags */
} op_case;

extern const op_case op_cases[];
extern const size_t op_case_count;

#endif
