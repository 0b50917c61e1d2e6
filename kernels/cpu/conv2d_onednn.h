/* conv2d through oneDNN's convolution primitives (see conv2d_onednn.c). */
#ifndef TB_CPU_CONV2D_ONEDNN_H
#define TB_CPU_CONV2D_ONEDNN_H

#include <stdbool.h>
#include <stddef.h>

#include "kernels/backend.h"
#include "kernels/ops.h"

/* The backend's primitives: created with the backend, destroyed with it. */
typedef struct tb_cpu_onednn tb_cpu_onednn;
int tb_cpu_onednn_create(tb_cpu_onednn **out);
void tb_cpu_onednn_destroy(tb_cpu_onednn *st);

/* Whether this conv runs on oneDNN's primitives (f32, one group, and oneDNN
 * has them for the shape), creating and keeping them the first time a shape
 * is asked for: at graph build through the workspace query. *bytes receives
 * the workspace the three directions need at most. */
bool tb_cpu_conv2d_onednn_plan(tb_backend *be, const tb_tensor *y, const tb_tensor *x, const tb_tensor *w,
                               const tb_conv2d_params *p, size_t *bytes);

/* The ops, for convs that tb_cpu_conv2d_onednn_plan took; they accumulate
 * into dx, dw and dbias like the GEMM path. */
int tb_cpu_conv2d_onednn_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *w,
                                 const tb_tensor *bias, const tb_conv2d_params *p);
int tb_cpu_conv2d_onednn_backward_data(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *w,
                                       const tb_conv2d_params *p);
int tb_cpu_conv2d_onednn_backward_filter(tb_backend *be, tb_tensor *dw, tb_tensor *dbias, const tb_tensor *dy,
                                         const tb_tensor *x, const tb_conv2d_params *p);

#endif
