/* The CPU backend: host memory and OpenMP threads. The ops split their
 * work across the OpenMP team; oneDNN's convolutions and GEMMs run on the
 * same team (gemm.c, conv2d_onednn.c). A run is reproducible for a fixed
 * thread count. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/backend.h"
#include "kernels/cpu/conv2d_onednn.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/error.h"

/* Cache-line aligned and a multiple of 64 bytes, so vector loops never straddle buffers. */
static int cpu_alloc(tb_backend *be, void **ptr, size_t bytes)
{
    (void)be;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    *ptr = aligned_alloc(64, rounded ? rounded : 64);
    if (!*ptr)
        return tb_fail(TB_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
    return TB_OK;
}

static void cpu_free(tb_backend *be, void *ptr)
{
    (void)be;
    free(ptr);
}

static int cpu_copy_bytes(tb_backend *be, void *dst, const void *src, size_t bytes)
{
    (void)be;
    if (dst != src)
        memcpy(dst, src, bytes);
    return TB_OK;
}

static int cpu_synchronize(tb_backend *be)
{
    (void)be;
    return TB_OK;
}

/* The CPU runs every op before returning: an upload of the next batch can
 * copy at once, and there is nothing to wait for or to mark. */
static int cpu_nothing_to_order(tb_backend *be)
{
    (void)be;
    return TB_OK;
}

static void cpu_destroy(tb_backend *be)
{
    tb_cpu_onednn_destroy(be->ctx);
    free(be);
}

static bool cpu_supports_op(tb_backend *be, tb_op_id op, tb_dtype dt)
{
    (void)be;
    return (int)op >= 0 && op < TB_OP_COUNT && (dt == TB_F32 || dt == TB_F16 || dt == TB_BF16);
}

static int cpu_thread_count(int requested)
{
    if (requested > 0)
        return requested;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int tb_cpu_backend_create(tb_backend **out, int threads)
{
    tb_backend *be = calloc(1, sizeof *be);
    if (!be)
        return tb_fail(TB_ERR_NOMEM, "out of memory creating the CPU backend");
    be->kind = TB_DEVICE_CPU;
    be->threads = cpu_thread_count(threads);
    snprintf(be->name, sizeof be->name, "cpu (%d thread%s)", be->threads, be->threads == 1 ? "" : "s");
    omp_set_num_threads(be->threads);
    tb_cpu_onednn *dnn = NULL;
    if (tb_cpu_onednn_create(&dnn) != TB_OK) {
        free(be);
        return TB_ERR_INTERNAL; /* the message names oneDNN's failure */
    }
    be->ctx = dnn;

    tb_backend_iface *f = &be->iface;
    f->alloc = cpu_alloc;
    f->free = cpu_free;
    f->alloc_host = cpu_alloc;
    f->free_host = cpu_free;
    f->upload = cpu_copy_bytes;
    f->download = cpu_copy_bytes;
    f->synchronize = cpu_synchronize;
    f->upload_next = cpu_copy_bytes;
    f->wait_uploaded = cpu_nothing_to_order;
    f->mark_consumed = cpu_nothing_to_order;
    f->destroy = cpu_destroy;
    f->supports_op = cpu_supports_op;

    f->conv2d_forward = tb_cpu_conv2d_forward;
    f->conv2d_backward_data = tb_cpu_conv2d_backward_data;
    f->conv2d_backward_filter = tb_cpu_conv2d_backward_filter;
    f->conv2d_workspace_size = tb_cpu_conv2d_workspace_size;
    f->batchnorm_forward_train = tb_cpu_batchnorm_forward_train;
    f->batchnorm_forward_eval = tb_cpu_batchnorm_forward_eval;
    f->batchnorm_backward = tb_cpu_batchnorm_backward;
    f->batchnorm_relu_forward_train = tb_cpu_batchnorm_relu_forward_train;
    f->batchnorm_relu_forward_eval = tb_cpu_batchnorm_relu_forward_eval;
    f->batchnorm_relu_backward = tb_cpu_batchnorm_relu_backward;
    f->relu_forward = tb_cpu_relu_forward;
    f->relu_backward = tb_cpu_relu_backward;
    f->maxpool_forward = tb_cpu_maxpool_forward;
    f->maxpool_backward = tb_cpu_maxpool_backward;
    f->avgpool_forward = tb_cpu_avgpool_forward;
    f->avgpool_backward = tb_cpu_avgpool_backward;
    f->global_avgpool_forward = tb_cpu_global_avgpool_forward;
    f->global_avgpool_backward = tb_cpu_global_avgpool_backward;
    f->linear_forward = tb_cpu_linear_forward;
    f->linear_backward = tb_cpu_linear_backward;
    f->add_forward = tb_cpu_add_forward;
    f->add_backward = tb_cpu_add_backward;
    f->concat_forward = tb_cpu_concat_forward;
    f->concat_backward = tb_cpu_concat_backward;
    f->dropout_forward = tb_cpu_dropout_forward;
    f->dropout_backward = tb_cpu_dropout_backward;
    f->softmax_ce_forward = tb_cpu_softmax_ce_forward;
    f->softmax_ce_backward = tb_cpu_softmax_ce_backward;
    f->soft_targets = tb_cpu_soft_targets;
    f->softmax = tb_cpu_softmax;
    f->mixup_batch = tb_cpu_mixup_batch;
    f->cutmix_batch = tb_cpu_cutmix_batch;
    f->reverse_labels = tb_cpu_reverse_labels;
    f->argmax = tb_cpu_argmax;
    f->count_equal = tb_cpu_count_equal;
    f->fill = tb_cpu_fill;
    f->copy = tb_cpu_copy;
    f->convert = tb_cpu_convert;
    f->axpby = tb_cpu_axpby;
    f->nonfinite_check = tb_cpu_nonfinite_check;
    f->sumsq = tb_cpu_sumsq;
    f->sgd_step = tb_cpu_sgd_step;
    f->batchnorm_backward_eval = tb_cpu_batchnorm_backward_eval;
    f->roi_align_forward = tb_cpu_roi_align_forward;
    f->roi_align_backward = tb_cpu_roi_align_backward;
    f->roi_align_workspace_size = tb_cpu_roi_align_workspace_size;
    f->smooth_l1_forward = tb_cpu_smooth_l1_forward;
    f->smooth_l1_backward = tb_cpu_smooth_l1_backward;
    f->rpn_targets = tb_cpu_rpn_targets;
    f->rpn_targets_workspace_size = tb_cpu_rpn_targets_workspace_size;
    f->rpn_proposals = tb_cpu_rpn_proposals;
    f->rpn_proposals_workspace_size = tb_cpu_rpn_proposals_workspace_size;
    f->roi_targets = tb_cpu_roi_targets;
    f->roi_targets_workspace_size = tb_cpu_roi_targets_workspace_size;
    f->detect_boxes = tb_cpu_detect_boxes;
    f->detect_boxes_workspace_size = tb_cpu_detect_boxes_workspace_size;
    f->resize_bilinear_forward = tb_cpu_resize_bilinear_forward;
    f->resize_bilinear_backward = tb_cpu_resize_bilinear_backward;
    *out = be;
    return TB_OK;
}
