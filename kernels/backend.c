#include "kernels/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tb_build_config.h"
#include "kernels/error.h"

static const char *const op_names[TB_OP_COUNT] = {
    [TB_OP_CONV2D_FORWARD] = "conv2d_forward",
    [TB_OP_CONV2D_BACKWARD_DATA] = "conv2d_backward_data",
    [TB_OP_CONV2D_BACKWARD_FILTER] = "conv2d_backward_filter",
    [TB_OP_BATCHNORM_FORWARD_TRAIN] = "batchnorm_forward_train",
    [TB_OP_BATCHNORM_FORWARD_EVAL] = "batchnorm_forward_eval",
    [TB_OP_BATCHNORM_BACKWARD] = "batchnorm_backward",
    [TB_OP_RELU_FORWARD] = "relu_forward",
    [TB_OP_RELU_BACKWARD] = "relu_backward",
    [TB_OP_MAXPOOL_FORWARD] = "maxpool_forward",
    [TB_OP_MAXPOOL_BACKWARD] = "maxpool_backward",
    [TB_OP_AVGPOOL_FORWARD] = "avgpool_forward",
    [TB_OP_AVGPOOL_BACKWARD] = "avgpool_backward",
    [TB_OP_GLOBAL_AVGPOOL_FORWARD] = "global_avgpool_forward",
    [TB_OP_GLOBAL_AVGPOOL_BACKWARD] = "global_avgpool_backward",
    [TB_OP_LINEAR_FORWARD] = "linear_forward",
    [TB_OP_LINEAR_BACKWARD] = "linear_backward",
    [TB_OP_ADD_FORWARD] = "add_forward",
    [TB_OP_ADD_BACKWARD] = "add_backward",
    [TB_OP_CONCAT_FORWARD] = "concat_forward",
    [TB_OP_CONCAT_BACKWARD] = "concat_backward",
    [TB_OP_DROPOUT_FORWARD] = "dropout_forward",
    [TB_OP_DROPOUT_BACKWARD] = "dropout_backward",
    [TB_OP_SOFTMAX_CE_FORWARD] = "softmax_ce_forward",
    [TB_OP_SOFTMAX_CE_BACKWARD] = "softmax_ce_backward",
    [TB_OP_SOFT_TARGETS] = "soft_targets",
    [TB_OP_SOFTMAX] = "softmax",
    [TB_OP_MIXUP_BATCH] = "mixup_batch",
    [TB_OP_CUTMIX_BATCH] = "cutmix_batch",
    [TB_OP_REVERSE_LABELS] = "reverse_labels",
    [TB_OP_FILL] = "fill",
    [TB_OP_COPY] = "copy",
    [TB_OP_CONVERT] = "convert",
    [TB_OP_AXPBY] = "axpby",
    [TB_OP_NONFINITE_CHECK] = "nonfinite_check",
    [TB_OP_SUMSQ] = "sumsq",
    [TB_OP_SGD_STEP] = "sgd_step",
    [TB_OP_BATCHNORM_BACKWARD_EVAL] = "batchnorm_backward_eval",
    [TB_OP_ROI_ALIGN_FORWARD] = "roi_align_forward",
    [TB_OP_ROI_ALIGN_BACKWARD] = "roi_align_backward",
    [TB_OP_SMOOTH_L1_FORWARD] = "smooth_l1_forward",
    [TB_OP_SMOOTH_L1_BACKWARD] = "smooth_l1_backward",
    [TB_OP_RPN_TARGETS] = "rpn_targets",
    [TB_OP_RPN_PROPOSALS] = "rpn_proposals",
    [TB_OP_ROI_TARGETS] = "roi_targets",
    [TB_OP_DETECT_BOXES] = "detect_boxes",
    [TB_OP_RESIZE_BILINEAR_FORWARD] = "resize_bilinear_forward",
    [TB_OP_RESIZE_BILINEAR_BACKWARD] = "resize_bilinear_backward",
    [TB_OP_BATCHNORM_RELU_FORWARD_TRAIN] = "batchnorm_relu_forward_train",
    [TB_OP_BATCHNORM_RELU_FORWARD_EVAL] = "batchnorm_relu_forward_eval",
    [TB_OP_BATCHNORM_RELU_BACKWARD] = "batchnorm_relu_backward",
    [TB_OP_ARGMAX] = "argmax",
    [TB_OP_COUNT_EQUAL] = "count_equal",
};

const char *tb_op_name(tb_op_id op)
{
    if ((int)op < 0 || op >= TB_OP_COUNT || !op_names[op])
        return "unknown_op";
    return op_names[op];
}

int tb_device_parse(const char *s, tb_device_kind *out)
{
    if (!strcasecmp(s, "auto"))
        *out = TB_DEVICE_AUTO;
    else if (!strcasecmp(s, "cpu"))
        *out = TB_DEVICE_CPU;
    else if (!strcasecmp(s, "cuda") || !strcasecmp(s, "gpu"))
        *out = TB_DEVICE_CUDA;
    else
        return tb_fail(TB_ERR_USAGE, "unknown device '%s' (expected auto, cpu or cuda)", s);
    return TB_OK;
}

const char *tb_device_name(tb_device_kind kind)
{
    switch (kind) {
    case TB_DEVICE_AUTO: return "auto";
    case TB_DEVICE_CPU: return "cpu";
    case TB_DEVICE_CUDA: return "cuda";
    default: return "?";
    }
}

#if !HAVE_CUDA
bool tb_cuda_available(char *why, size_t why_size)
{
    if (why && why_size)
        snprintf(why, why_size, "this trickbench was built without CUDA (-Dcuda=disabled or no toolkit found)");
    return false;
}

int tb_cuda_backend_create(tb_backend **out, int device_index)
{
    (void)device_index;
    *out = NULL;
    return tb_fail(TB_ERR_UNSUPPORTED, "--device cuda: this trickbench was built without CUDA; "
                                       "rebuild with -Dcuda=enabled on a machine with the CUDA toolkit");
}
#endif

int tb_backend_create(tb_backend **out, tb_device_kind kind, int threads, char *note, size_t note_size)
{
    char why[256] = "";
    *out = NULL;
    if (note && note_size)
        note[0] = '\0';
    if (kind == TB_DEVICE_CUDA) {
        if (!tb_cuda_available(why, sizeof why))
            return tb_fail(TB_ERR_UNSUPPORTED, "--device cuda requested but no usable GPU: %s", why);
        TB_TRY(tb_cuda_backend_create(out, 0));
        if (note && note_size)
            snprintf(note, note_size, "device: %s", (*out)->name);
        return TB_OK;
    }
    if (kind == TB_DEVICE_AUTO && tb_cuda_available(why, sizeof why)) {
        TB_TRY(tb_cuda_backend_create(out, 0));
        if (note && note_size)
            snprintf(note, note_size, "device auto: picked %s", (*out)->name);
        return TB_OK;
    }
    TB_TRY(tb_cpu_backend_create(out, threads));
    if (note && note_size) {
        if (kind == TB_DEVICE_AUTO)
            snprintf(note, note_size, "device auto: picked %s (no GPU: %s)", (*out)->name, why);
        else
            snprintf(note, note_size, "device: %s", (*out)->name);
    }
    return TB_OK;
}

void tb_backend_destroy(tb_backend *be)
{
    if (!be)
        return;
    if (be->workspace)
        be->iface.free(be, be->workspace);
    be->workspace = NULL;
    be->iface.destroy(be);
}

int tb_backend_reserve_workspace(tb_backend *be, size_t bytes)
{
    if (bytes <= be->workspace_size)
        return TB_OK;
    if (be->workspace)
        be->iface.free(be, be->workspace);
    be->workspace = NULL;
    be->workspace_size = 0;
    TB_TRY(tb_alloc(be, &be->workspace, bytes));
    be->workspace_size = bytes;
    return TB_OK;
}

int tb_alloc(tb_backend *be, void **ptr, size_t bytes)
{
    int rc = be->iface.alloc(be, ptr, bytes ? bytes : 1);
    if (rc != TB_OK)
        return tb_err_context(rc, "allocating %zu bytes on %s", bytes, be->name);
    return TB_OK;
}

void tb_free(tb_backend *be, void *ptr)
{
    if (ptr)
        be->iface.free(be, ptr);
}

int tb_upload(tb_backend *be, tb_tensor *dst, const void *src)
{
    return be->iface.upload(be, dst->data, src, tb_nbytes(dst));
}

int tb_download(tb_backend *be, void *dst, const tb_tensor *src)
{
    return be->iface.download(be, dst, src->data, tb_nbytes(src));
}

int tb_synchronize(tb_backend *be) { return be->iface.synchronize(be); }

int tb_device_memory(tb_backend *be, size_t *used, size_t *total)
{
    TB_CHECK(be->iface.device_memory, TB_ERR_UNSUPPORTED, "the %s backend has no device memory of its own",
             be->name);
    return be->iface.device_memory(be, used, total);
}

int tb_upload_next(tb_backend *be, tb_tensor *dst, const void *src)
{
    return be->iface.upload_next(be, dst->data, src, tb_nbytes(dst));
}

int tb_wait_uploaded(tb_backend *be) { return be->iface.wait_uploaded(be); }

int tb_mark_consumed(tb_backend *be) { return be->iface.mark_consumed(be); }

bool tb_can_capture(const tb_backend *be)
{
    return be->iface.capture_begin && be->iface.capture_end && be->iface.replay && be->iface.replay_free;
}

int tb_capture_begin(tb_backend *be)
{
    TB_CHECK(tb_can_capture(be), TB_ERR_UNSUPPORTED, "capture: the %s backend cannot capture ops", be->name);
    return be->iface.capture_begin(be);
}

int tb_capture_end(tb_backend *be, bool failed, tb_capture **out)
{
    *out = NULL;
    void *graph = NULL;
    /* An op that failed while capturing invalidated the capture, so ending
     * it fails too: keep the op's message, which says what broke it. */
    char why[2048] = "";
    if (failed)
        snprintf(why, sizeof why, "%s", tb_errmsg());
    int rc = be->iface.capture_end(be, &graph);
    if (failed || rc != TB_OK) {
        if (graph)
            be->iface.replay_free(be, graph);
        if (failed)
            tb_fail(TB_ERR_BACKEND, "%s", why);
        return rc;
    }
    *out = graph;
    return TB_OK;
}

int tb_capture_replay(tb_backend *be, tb_capture *c)
{
    TB_CHECK(c, TB_ERR_INTERNAL, "capture: replay of a missing capture");
    return be->iface.replay(be, c);
}

void tb_capture_free(tb_backend *be, tb_capture *c)
{
    if (c)
        be->iface.replay_free(be, c);
}

bool tb_supports_op(tb_backend *be, tb_op_id op, tb_dtype dt) { return be->iface.supports_op(be, op, dt); }
