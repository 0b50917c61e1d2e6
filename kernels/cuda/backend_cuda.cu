/* The CUDA backend: one device, one stream, one cuDNN and one cuBLAS handle
 * bound to that stream, and the op table of kernels/cuda/cuda_ops.h.
 *
 * tb_cuda_available() must never crash or abort on a machine without a GPU
 * or driver: it only asks the runtime for the device count (which answers
 * with an error there) and whether this binary carries code the device can
 * run, and returns the runtime's error string as the reason. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_common.cuh"

/* ---------------------------------------------------------------- messages */
int tb_cuda_call_failed(cudaError_t err, const char *call, const char *file, int line, const char *note,
                        const char *what_fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, what_fmt);
    vsnprintf(what, sizeof what, what_fmt, ap);
    va_end(ap);
    return tb_fail(TB_ERR_BACKEND, "%s: %.*s: %s (%s) at %s:%d%s", what, tb_cuda_call_name_len(call), call,
                   cudaGetErrorName(err), cudaGetErrorString(err), file, line, note ? note : "");
}

int tb_cuda_release_message(char *buf, size_t size, const char *call, const char *error, const char *file, int line)
{
    return snprintf(buf, size, "trickbench: cuda: %.*s: %s at %s:%d (ignored: a release has no error path)",
                    tb_cuda_call_name_len(call), call, error, file, line);
}

/* Not tb_fail: a release often runs while an earlier error's message is
 * still to be read, and must not replace it. */
void tb_cuda_release_failed(const char *call, const char *error, const char *file, int line)
{
    char msg[512];
    tb_cuda_release_message(msg, sizeof msg, call, error, file, line);
    fprintf(stderr, "%s\n", msg);
}

void tb_cuda_note(const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "trickbench: cuda: %s\n", msg);
}

/* Empty kernel: whether its attributes can be read tells whether this build
 * has machine code or PTX that the device can run. */
__global__ void tb_cuda_probe_kernel(void) {}

/* Why device 0 cannot run this build's kernels (e: the probe's error). */
static void cuda_unrunnable_reason(char *why, size_t why_size, cudaError_t e)
{
    cudaDeviceProp prop;
    cudaError_t pe = cudaGetDeviceProperties(&prop, 0);
    if (pe != cudaSuccess) {
        snprintf(why, why_size, "device 0 cannot run this build's kernels: %s (its properties are unknown: %s)",
                 cudaGetErrorString(e), cudaGetErrorName(pe));
        return;
    }
    snprintf(why, why_size,
             "device 0 (%s, compute capability %d.%d) cannot run this build's kernels: %s; "
             "rebuild with -Dsm_archs=%d%d",
             prop.name, prop.major, prop.minor, cudaGetErrorString(e), prop.major, prop.minor);
}

bool tb_cuda_available(char *why, size_t why_size)
{
    char scratch[8];
    if (!why || !why_size) {
        why = scratch;
        why_size = sizeof scratch;
    }
    why[0] = '\0';
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        snprintf(why, why_size, "%s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
        (void)cudaGetLastError(); /* clear it (returns e): later runtime calls must not see it */
        return false;
    }
    if (count < 1) {
        snprintf(why, why_size, "no CUDA device found");
        return false;
    }
    cudaFuncAttributes attr;
    e = cudaFuncGetAttributes(&attr, tb_cuda_probe_kernel);
    if (e != cudaSuccess) {
        cuda_unrunnable_reason(why, why_size, e);
        (void)cudaGetLastError(); /* as above */
        return false;
    }
    return true;
}

/* ---------------------------------------------------------------- memory */
static int cuda_alloc(tb_backend *be, void **ptr, size_t bytes)
{
    (void)be;
    *ptr = NULL;
    cudaError_t e = cudaMalloc(ptr, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); /* returns e: cleared, so that no later check blames its call */
        *ptr = NULL;
        size_t free_b = 0, total_b = 0;
        cudaError_t me = cudaMemGetInfo(&free_b, &total_b);
        (void)cudaGetLastError(); /* as above, for me */
        char mem[128];
        if (me == cudaSuccess)
            snprintf(mem, sizeof mem, "%zu of %zu bytes free on the device", free_b, total_b);
        else
            snprintf(mem, sizeof mem, "free device memory unknown: cudaMemGetInfo: %s", cudaGetErrorName(me));
        return tb_fail(e == cudaErrorMemoryAllocation ? TB_ERR_NOMEM : TB_ERR_BACKEND,
                       "cudaMalloc of %zu bytes: %s (%s) at %s:%d (%s)", bytes, cudaGetErrorName(e),
                       cudaGetErrorString(e), __FILE__, __LINE__, mem);
    }
    return TB_OK;
}

static void cuda_free(tb_backend *be, void *ptr)
{
    (void)be;
    if (ptr)
        CUDA_CHECK_RELEASE(cudaFree(ptr));
}

/* Pinned memory: uploads from it are truly asynchronous. */
static int cuda_alloc_host(tb_backend *be, void **ptr, size_t bytes)
{
    (void)be;
    *ptr = NULL;
    cudaError_t e = cudaMallocHost(ptr, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); /* returns e: cleared, as in cuda_alloc */
        *ptr = NULL;
        return tb_fail(TB_ERR_NOMEM, "cudaMallocHost of %zu bytes: %s (%s) at %s:%d", bytes, cudaGetErrorName(e),
                       cudaGetErrorString(e), __FILE__, __LINE__);
    }
    return TB_OK;
}

static void cuda_free_host(tb_backend *be, void *ptr)
{
    (void)be;
    if (ptr)
        CUDA_CHECK_RELEASE(cudaFreeHost(ptr));
}

/* Asynchronous on the stream: from pinned memory the caller must not reuse
 * src before the stream reaches the copy; from pageable memory the runtime
 * stages src before returning. */
static int cuda_upload(tb_backend *be, void *dst, const void *src, size_t bytes)
{
    if (!bytes)
        return TB_OK;
    CUDA_CHECK_FOR(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, tb_cuda_ctx_of(be)->stream),
                   "upload of %zu bytes (host %p to device %p)", bytes, src, dst);
    return TB_OK;
}

/* The wait reports any earlier kernel's fault too (CUDA_CHECK_WAIT says so). */
static int cuda_download(tb_backend *be, void *dst, const void *src, size_t bytes)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    if (bytes)
        CUDA_CHECK_FOR(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, ctx->stream),
                       "download of %zu bytes (device %p to host %p)", bytes, src, dst);
    CUDA_CHECK_WAIT(cudaStreamSynchronize(ctx->stream), "download of %zu bytes: waiting for the compute stream",
                    bytes);
    return TB_OK;
}

static int cuda_synchronize(tb_backend *be)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    CUDA_CHECK_WAIT(cudaStreamSynchronize(ctx->copy_stream), "synchronize: waiting for the copy stream");
    CUDA_CHECK_WAIT(cudaStreamSynchronize(ctx->stream), "synchronize: waiting for the compute stream");
    return TB_OK;
}

/* The next batch's upload on the copy stream, after the compute stream has
 * passed its last mark (the previous contents are read), and the compute
 * stream waiting for it. The mark is recorded as an external event so that
 * a captured step records it on each replay. */
static int cuda_upload_next(tb_backend *be, void *dst, const void *src, size_t bytes)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    CUDA_CHECK_FOR(cudaStreamWaitEvent(ctx->copy_stream, ctx->consumed, 0),
                   "upload of the next batch (%zu bytes): the copy stream waiting for the last mark", bytes);
    if (bytes)
        CUDA_CHECK_FOR(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ctx->copy_stream),
                       "upload of the next batch: %zu bytes (host %p to device %p) on the copy stream", bytes, src,
                       dst);
    CUDA_CHECK_FOR(cudaEventRecord(ctx->uploaded, ctx->copy_stream),
                   "upload of the next batch (%zu bytes): marking its end", bytes);
    return TB_OK;
}

static int cuda_wait_uploaded(tb_backend *be)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    CUDA_CHECK_FOR(cudaStreamWaitEvent(ctx->stream, ctx->uploaded, 0),
                   "the compute stream waiting for the next batch's upload");
    return TB_OK;
}

/* Inside a capture the record must be an external event node (re-recorded
 * at every replay, and visible to the copy stream outside the graph); that
 * flag is invalid outside a capture, where the step runs op by op. */
static int cuda_mark_consumed(tb_backend *be)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
    CUDA_CHECK_FOR(cudaStreamIsCapturing(ctx->stream, &st), "marking the batch consumed: capture status");
    unsigned flags = st == cudaStreamCaptureStatusActive ? cudaEventRecordExternal : cudaEventRecordDefault;
    CUDA_CHECK_FOR(cudaEventRecordWithFlags(ctx->consumed, ctx->stream, flags), "marking the batch consumed%s",
                   st == cudaStreamCaptureStatusActive ? " (inside a capture)" : "");
    return TB_OK;
}

static int cuda_device_memory(tb_backend *be, size_t *used, size_t *total)
{
    (void)be;
    size_t free_bytes = 0;
    CUDA_CHECK_FOR(cudaMemGetInfo(&free_bytes, total), "device memory query");
    *used = *total - free_bytes;
    return TB_OK;
}

/* CUDA graphs by stream capture. Thread-local mode: the data loader's
 * threads may go on using the runtime while the trainer's thread captures. */
static int cuda_capture_begin(tb_backend *be)
{
    CUDA_CHECK_FOR(cudaStreamBeginCapture(tb_cuda_ctx_of(be)->stream, cudaStreamCaptureModeThreadLocal),
                   "capture of a step: beginning it on the compute stream");
    return TB_OK;
}

/* Ends the capture in every case (an op that failed while capturing leaves
 * the capture invalidated, and the stream is usable again only after this);
 * *graph gets the instantiated graph when all went well. */
static int cuda_capture_end(tb_backend *be, void **graph)
{
    *graph = NULL;
    cudaGraph_t g = NULL;
    cudaError_t ended = cudaStreamEndCapture(tb_cuda_ctx_of(be)->stream, &g);
    if (ended != cudaSuccess) {
        /* an invalidated capture: clear the runtime's last error, so that the
         * next launch check does not blame its kernel for it */
        (void)cudaGetLastError(); /* returns `ended` */
        if (g)
            CUDA_CHECK_RELEASE(cudaGraphDestroy(g));
        return tb_cuda_call_failed(ended, "cudaStreamEndCapture", __FILE__, __LINE__,
                                   "; a capture is invalidated by an op that failed while capturing or by a call "
                                   "not allowed during a capture (a synchronisation)",
                                   "capture of a step: ending it");
    }
    cudaGraphExec_t exec = NULL;
    cudaError_t e = cudaGraphInstantiate(&exec, g, 0);
    if (e != cudaSuccess)
        (void)cudaGetLastError(); /* as above: not the next kernel's error */
    /* the graph is no longer needed either way: a failed destroy is only reported */
    CUDA_CHECK_RELEASE(cudaGraphDestroy(g));
    if (e != cudaSuccess)
        return tb_cuda_call_failed(e, "cudaGraphInstantiate", __FILE__, __LINE__, "",
                                   "capture of a step: instantiating the captured graph");
    *graph = exec;
    return TB_OK;
}

static int cuda_replay(tb_backend *be, void *graph)
{
    CUDA_CHECK_FOR(cudaGraphLaunch((cudaGraphExec_t)graph, tb_cuda_ctx_of(be)->stream),
                   "replay of a captured step (graph %p) on the compute stream", graph);
    return TB_OK;
}

static void cuda_replay_free(tb_backend *be, void *graph)
{
    (void)be;
    CUDA_CHECK_RELEASE(cudaGraphExecDestroy((cudaGraphExec_t)graph));
}

/* Every op runs in f32, f16 and bf16 (for the box-level detection ops: the
 * dtype of their logits / deltas; boxes stay f32, counts i32, as on the
 * CPU); bf16 needs compute capability 8.0. */
static bool cuda_supports_op(tb_backend *be, tb_op_id op, tb_dtype dt)
{
    if ((int)op < 0 || op >= TB_OP_COUNT)
        return false;
    if (dt == TB_BF16)
        return tb_cuda_ctx_of(be)->cc_major >= 8;
    return dt == TB_F32 || dt == TB_F16;
}

/* The context's handles and buffers. Safe on a partly created backend:
 * every member may still be zero. A failed release is reported on stderr
 * and the others are still released (after a kernel fault, which breaks the
 * CUDA context, every one of them fails). */
static void cuda_release_ctx(tb_cuda_ctx *ctx)
{
    if (ctx->stream) /* nothing queued may still use what is released */
        CUDA_CHECK_RELEASE(cudaStreamSynchronize(ctx->stream));
    tb_cuda_conv_plans_clear(ctx);
    if (ctx->bn_x_desc)
        CUDNN_CHECK_RELEASE(cudnnDestroyTensorDescriptor(ctx->bn_x_desc));
    if (ctx->bn_param_desc)
        CUDNN_CHECK_RELEASE(cudnnDestroyTensorDescriptor(ctx->bn_param_desc));
    if (ctx->relu_desc)
        CUDNN_CHECK_RELEASE(cudnnDestroyActivationDescriptor(ctx->relu_desc));
    if (ctx->cublas)
        CUBLAS_CHECK_RELEASE(cublasDestroy(ctx->cublas));
    if (ctx->cudnn)
        CUDNN_CHECK_RELEASE(cudnnDestroy(ctx->cudnn));
    if (ctx->cublas_workspace)
        CUDA_CHECK_RELEASE(cudaFree(ctx->cublas_workspace));
    if (ctx->reduce)
        CUDA_CHECK_RELEASE(cudaFree(ctx->reduce));
    if (ctx->copy_stream) {
        CUDA_CHECK_RELEASE(cudaStreamSynchronize(ctx->copy_stream));
        CUDA_CHECK_RELEASE(cudaStreamDestroy(ctx->copy_stream));
    }
    if (ctx->consumed)
        CUDA_CHECK_RELEASE(cudaEventDestroy(ctx->consumed));
    if (ctx->uploaded)
        CUDA_CHECK_RELEASE(cudaEventDestroy(ctx->uploaded));
    if (ctx->stream)
        CUDA_CHECK_RELEASE(cudaStreamDestroy(ctx->stream));
}

static void cuda_destroy(tb_backend *be)
{
    tb_cuda_ctx *ctx = be ? tb_cuda_ctx_of(be) : NULL;
    if (ctx) {
        cuda_release_ctx(ctx);
        free(ctx);
    }
    free(be);
}

/* ---------------------------------------------------------------- options */
void tb_cuda_default_options(tb_cuda_options *opt)
{
    opt->allow_tf32 = true;
    opt->deterministic = false;
    opt->find_algorithms = true;
    opt->conv_workspace_limit = (size_t)1 << 30;
    opt->batchnorm_persistent = true;
}

int tb_cuda_set_options(tb_backend *be, const tb_cuda_options *opt)
{
    TB_CHECK(be && be->kind == TB_DEVICE_CUDA, TB_ERR_INVALID, "tb_cuda_set_options: not a CUDA backend");
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    ctx->opt = *opt;
    tb_cuda_conv_plans_clear(ctx);
    return TB_OK;
}

int tb_cuda_get_options(tb_backend *be, tb_cuda_options *opt)
{
    TB_CHECK(be && be->kind == TB_DEVICE_CUDA, TB_ERR_INVALID, "tb_cuda_get_options: not a CUDA backend");
    *opt = tb_cuda_ctx_of(be)->opt;
    return TB_OK;
}

/* ---------------------------------------------------------------- creation */
static void cuda_set_ops(tb_backend_iface *f)
{
    f->alloc = cuda_alloc;
    f->free = cuda_free;
    f->alloc_host = cuda_alloc_host;
    f->free_host = cuda_free_host;
    f->device_memory = cuda_device_memory;
    f->upload = cuda_upload;
    f->download = cuda_download;
    f->synchronize = cuda_synchronize;
    f->destroy = cuda_destroy;
    f->upload_next = cuda_upload_next;
    f->wait_uploaded = cuda_wait_uploaded;
    f->mark_consumed = cuda_mark_consumed;
    f->capture_begin = cuda_capture_begin;
    f->capture_end = cuda_capture_end;
    f->replay = cuda_replay;
    f->replay_free = cuda_replay_free;
    f->supports_op = cuda_supports_op;

    f->conv2d_forward = tb_cuda_conv2d_forward;
    f->conv2d_backward_data = tb_cuda_conv2d_backward_data;
    f->conv2d_backward_filter = tb_cuda_conv2d_backward_filter;
    f->conv2d_workspace_size = tb_cuda_conv2d_workspace_size;
    f->batchnorm_forward_train = tb_cuda_batchnorm_forward_train;
    f->batchnorm_forward_eval = tb_cuda_batchnorm_forward_eval;
    f->batchnorm_backward = tb_cuda_batchnorm_backward;
    f->batchnorm_relu_reserve_size = tb_cuda_batchnorm_relu_reserve_size;
    f->batchnorm_relu_workspace_size = tb_cuda_batchnorm_relu_workspace_size;
    f->batchnorm_relu_forward_train = tb_cuda_batchnorm_relu_forward_train;
    f->batchnorm_relu_forward_eval = tb_cuda_batchnorm_relu_forward_eval;
    f->batchnorm_relu_backward = tb_cuda_batchnorm_relu_backward;
    f->relu_forward = tb_cuda_relu_forward;
    f->relu_backward = tb_cuda_relu_backward;
    f->maxpool_forward = tb_cuda_maxpool_forward;
    f->maxpool_backward = tb_cuda_maxpool_backward;
    f->avgpool_forward = tb_cuda_avgpool_forward;
    f->avgpool_backward = tb_cuda_avgpool_backward;
    f->global_avgpool_forward = tb_cuda_global_avgpool_forward;
    f->global_avgpool_backward = tb_cuda_global_avgpool_backward;
    f->linear_forward = tb_cuda_linear_forward;
    f->linear_backward = tb_cuda_linear_backward;
    f->add_forward = tb_cuda_add_forward;
    f->add_backward = tb_cuda_add_backward;
    f->concat_forward = tb_cuda_concat_forward;
    f->concat_backward = tb_cuda_concat_backward;
    f->dropout_forward = tb_cuda_dropout_forward;
    f->dropout_backward = tb_cuda_dropout_backward;
    f->softmax_ce_forward = tb_cuda_softmax_ce_forward;
    f->softmax_ce_backward = tb_cuda_softmax_ce_backward;
    f->soft_targets = tb_cuda_soft_targets;
    f->softmax = tb_cuda_softmax;
    f->mixup_batch = tb_cuda_mixup_batch;
    f->cutmix_batch = tb_cuda_cutmix_batch;
    f->reverse_labels = tb_cuda_reverse_labels;
    f->argmax = tb_cuda_argmax;
    f->count_equal = tb_cuda_count_equal;
    f->fill = tb_cuda_fill;
    f->copy = tb_cuda_copy;
    f->convert = tb_cuda_convert;
    f->axpby = tb_cuda_axpby;
    f->nonfinite_check = tb_cuda_nonfinite_check;
    f->sumsq = tb_cuda_sumsq;
    f->sgd_step = tb_cuda_sgd_step;
    f->batchnorm_backward_eval = tb_cuda_batchnorm_backward_eval;
    f->roi_align_forward = tb_cuda_roi_align_forward;
    f->roi_align_backward = tb_cuda_roi_align_backward;
    f->smooth_l1_forward = tb_cuda_smooth_l1_forward;
    f->smooth_l1_backward = tb_cuda_smooth_l1_backward;
    f->resize_bilinear_forward = tb_cuda_resize_bilinear_forward;
    f->resize_bilinear_backward = tb_cuda_resize_bilinear_backward;
    f->rpn_targets = tb_cuda_rpn_targets;
    f->rpn_targets_workspace_size = tb_cuda_rpn_targets_workspace_size;
    f->rpn_proposals = tb_cuda_rpn_proposals;
    f->rpn_proposals_workspace_size = tb_cuda_rpn_proposals_workspace_size;
    f->roi_targets = tb_cuda_roi_targets;
    f->roi_targets_workspace_size = tb_cuda_roi_targets_workspace_size;
    f->detect_boxes = tb_cuda_detect_boxes;
    f->detect_boxes_workspace_size = tb_cuda_detect_boxes_workspace_size;
}

static int cuda_init(tb_backend *be, int device_index)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    int count = 0;
    CUDA_CHECK(cudaGetDeviceCount(&count));
    TB_CHECK(device_index >= 0 && device_index < count, TB_ERR_INVALID,
             "CUDA device %d does not exist (this machine has %d)", device_index, count);
    CUDA_CHECK(cudaSetDevice(device_index));
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, device_index));
    ctx->device = device_index;
    ctx->cc_major = prop.major;
    ctx->cc_minor = prop.minor;
    ctx->sm_count = prop.multiProcessorCount > 0 ? prop.multiProcessorCount : 1;

    size_t cudnn_version = cudnnGetVersion();
    TB_CHECK(cudnn_version / 10000 == CUDNN_MAJOR, TB_ERR_BACKEND,
             "cuDNN %zu is loaded but trickbench was built against cuDNN %d.%d; point LD_LIBRARY_PATH at cuDNN %d",
             cudnn_version, CUDNN_MAJOR, CUDNN_MINOR, CUDNN_MAJOR);

    CUDA_CHECK(cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking));
    CUDA_CHECK(cudaStreamCreateWithFlags(&ctx->copy_stream, cudaStreamNonBlocking));
    CUDA_CHECK(cudaEventCreateWithFlags(&ctx->consumed, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventCreateWithFlags(&ctx->uploaded, cudaEventDisableTiming));
    CUDNN_CHECK(cudnnCreate(&ctx->cudnn));
    CUDNN_CHECK(cudnnSetStream(ctx->cudnn, ctx->stream));
    CUBLAS_CHECK(cublasCreate(&ctx->cublas));
    /* cublasSetStream resets the workspace, so it comes first */
    CUBLAS_CHECK(cublasSetStream(ctx->cublas, ctx->stream));
    CUDA_CHECK(cudaMalloc(&ctx->cublas_workspace, TB_CUDA_CUBLAS_WORKSPACE));
    CUBLAS_CHECK(cublasSetWorkspace(ctx->cublas, ctx->cublas_workspace, TB_CUDA_CUBLAS_WORKSPACE));
    /* CUBLAS_COMPUTE_32F alone still lets a split-K GEMM add its partial sums
     * in f16/bf16; the CPU reference sums in f32 and rounds once */
    CUBLAS_CHECK(cublasSetMathMode(
        ctx->cublas, (cublasMath_t)(CUBLAS_DEFAULT_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)));
    CUDA_CHECK(cudaMalloc((void **)&ctx->reduce, TB_CUDA_REDUCE_ELEMS * sizeof(float)));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&ctx->bn_x_desc));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&ctx->bn_param_desc));
    CUDNN_CHECK(cudnnCreateActivationDescriptor(&ctx->relu_desc));
    CUDNN_CHECK(cudnnSetActivationDescriptor(ctx->relu_desc, CUDNN_ACTIVATION_RELU, CUDNN_PROPAGATE_NAN, 0.0));

    snprintf(be->name, sizeof be->name, "cuda:%d %.64s (sm_%d%d, cuDNN %zu.%zu.%zu)", device_index, prop.name,
             prop.major, prop.minor, cudnn_version / 10000, cudnn_version / 100 % 100, cudnn_version % 100);
    return TB_OK;
}

int tb_cuda_backend_create(tb_backend **out, int device_index)
{
    *out = NULL;
    char why[256];
    if (!tb_cuda_available(why, sizeof why))
        return tb_fail(TB_ERR_UNSUPPORTED, "--device cuda: no usable GPU: %s", why);
    tb_backend *be = (tb_backend *)calloc(1, sizeof *be);
    tb_cuda_ctx *ctx = (tb_cuda_ctx *)calloc(1, sizeof *ctx);
    if (!be || !ctx) {
        free(be);
        free(ctx);
        return tb_fail(TB_ERR_NOMEM, "out of memory creating the CUDA backend");
    }
    be->ctx = ctx;
    be->kind = TB_DEVICE_CUDA;
    be->threads = 0;
    tb_cuda_default_options(&ctx->opt);
    cuda_set_ops(&be->iface);
    int rc = cuda_init(be, device_index);
    if (rc != TB_OK) {
        cuda_destroy(be);
        return tb_err_context(rc, "creating the CUDA backend on device %d", device_index);
    }
    *out = be;
    return TB_OK;
}
