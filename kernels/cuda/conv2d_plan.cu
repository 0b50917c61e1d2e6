/* Convolution plans: descriptors plus one algorithm per direction, chosen
 * once per shape and cached (kernels/cuda/conv2d_plan.h).
 *
 * Math types: f16/bf16 use tensor cores (CUDNN_TENSOR_OP_MATH) with f32
 * accumulation; f32 uses CUDNN_DEFAULT_MATH, which permits TF32 on Ampere
 * and later, unless the backend's options forbid TF32 (then CUDNN_FMA_MATH,
 * and any algorithm reporting tensor-op math is skipped). Each direction
 * remembers the math type of its algorithm, set on the descriptor before
 * every call, as PyTorch does. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/conv2d_plan.h"

/* A failed destroy is reported on stderr (the *_CHECK_RELEASE macros). */
static void plan_destroy(tb_cuda_conv_plan *pl)
{
    if (!pl)
        return;
    if (pl->x_desc)
        CUDNN_CHECK_RELEASE(cudnnDestroyTensorDescriptor(pl->x_desc));
    if (pl->y_desc)
        CUDNN_CHECK_RELEASE(cudnnDestroyTensorDescriptor(pl->y_desc));
    if (pl->w_desc)
        CUDNN_CHECK_RELEASE(cudnnDestroyFilterDescriptor(pl->w_desc));
    if (pl->conv_desc)
        CUDNN_CHECK_RELEASE(cudnnDestroyConvolutionDescriptor(pl->conv_desc));
    free(pl);
}

void tb_cuda_conv_plans_clear(tb_cuda_ctx *ctx)
{
    for (int i = 0; i < ctx->n_plans; i++)
        plan_destroy(ctx->plans[i]);
    ctx->n_plans = 0;
}

static tb_cuda_conv_key make_key(const tb_cuda_ctx *ctx, const tb_tensor *y, const tb_tensor *x,
                                 const tb_tensor *w, const tb_conv2d_params *p)
{
    tb_cuda_conv_key k;
    memset(&k, 0, sizeof k); /* keys are compared with memcmp */
    k.n = x->shape[0];
    k.h = x->shape[1];
    k.w = x->shape[2];
    k.c = x->shape[3];
    k.k = w->shape[0];
    k.r = w->shape[1];
    k.s = w->shape[2];
    k.oh = y->shape[1];
    k.ow = y->shape[2];
    k.stride_h = p->stride_h;
    k.stride_w = p->stride_w;
    k.pad_h = p->pad_h;
    k.pad_w = p->pad_w;
    k.dil_h = p->dil_h;
    k.dil_w = p->dil_w;
    k.groups = p->groups;
    k.dtype = (int32_t)x->dtype;
    k.tf32 = ctx->opt.allow_tf32;
    k.deterministic = ctx->opt.deterministic;
    return k;
}

/* The convolution of a key, for messages:
 * "x [8,28,28,16] w [32,3,3,16] y [8,28,28,32] f16, stride 1x1, pad 1x1, dilation 1x1, groups 1". */
static const char *key_str(const tb_cuda_conv_key *k, char *buf, size_t size)
{
    snprintf(buf, size,
             "x [%lld,%lld,%lld,%lld] w [%lld,%lld,%lld,%lld] y [%lld,%lld,%lld,%lld] %s, stride %dx%d, pad %dx%d, "
             "dilation %dx%d, groups %d",
             (long long)k->n, (long long)k->h, (long long)k->w, (long long)k->c, (long long)k->k, (long long)k->r,
             (long long)k->s, (long long)(k->groups > 0 ? k->c / k->groups : k->c), (long long)k->n,
             (long long)k->oh, (long long)k->ow, (long long)k->k, tb_dtype_name((tb_dtype)k->dtype), k->stride_h,
             k->stride_w, k->pad_h, k->pad_w, k->dil_h, k->dil_w, k->groups);
    return buf;
}

static cudnnMathType_t allowed_math(const tb_cuda_conv_key *key)
{
    if (key->dtype != TB_F32)
        return CUDNN_TENSOR_OP_MATH;
    return key->tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
}

static int plan_descriptors(tb_cuda_conv_plan *pl)
{
    const tb_cuda_conv_key *k = &pl->key;
    cudnnDataType_t dt;
    TB_TRY(tb_cudnn_dtype((tb_dtype)k->dtype, &dt));
    TB_CHECK(k->n * k->h * k->w * k->c < INT_MAX && k->n * k->oh * k->ow * k->k < INT_MAX, TB_ERR_UNSUPPORTED,
             "conv2d: tensors of 2^31 elements or more are beyond cuDNN's 4-D descriptors");
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&pl->x_desc));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&pl->y_desc));
    CUDNN_CHECK(cudnnCreateFilterDescriptor(&pl->w_desc));
    CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&pl->conv_desc));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(pl->x_desc, CUDNN_TENSOR_NHWC, dt, (int)k->n, (int)k->c, (int)k->h,
                                           (int)k->w));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(pl->y_desc, CUDNN_TENSOR_NHWC, dt, (int)k->n, (int)k->k, (int)k->oh,
                                           (int)k->ow));
    /* OHWI is cuDNN's KRSC: an NHWC-format filter */
    CUDNN_CHECK(cudnnSetFilter4dDescriptor(pl->w_desc, dt, CUDNN_TENSOR_NHWC, (int)k->k, (int)(k->c / k->groups),
                                           (int)k->r, (int)k->s));
    CUDNN_CHECK(cudnnSetConvolution2dDescriptor(pl->conv_desc, k->pad_h, k->pad_w, k->stride_h, k->stride_w,
                                                k->dil_h, k->dil_w, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    CUDNN_CHECK(cudnnSetConvolutionGroupCount(pl->conv_desc, k->groups));
    int on, oc, oh, ow;
    CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(pl->conv_desc, pl->x_desc, pl->w_desc, &on, &oc, &oh, &ow));
    TB_CHECK(on == k->n && oc == k->k && oh == k->oh && ow == k->ow, TB_ERR_INVALID,
             "conv2d: cuDNN computes output [%d,%d,%d,%d] (n,h,w,k) but y is [%lld,%lld,%lld,%lld]", on, oh, ow,
             oc, (long long)k->n, (long long)k->oh, (long long)k->ow, (long long)k->k);
    return TB_OK;
}

static bool cudnn_not_supported(cudnnStatus_t st)
{
#ifdef CUDNN_STATUS_CATEGORY /* cuDNN 9: refined codes within a category */
    return CUDNN_STATUS_CATEGORY(st) == CUDNN_STATUS_NOT_SUPPORTED;
#else
    return st == CUDNN_STATUS_NOT_SUPPORTED;
#endif
}

/* One call of a candidate's workspace query; true when it succeeded.
 * CUDNN_STATUS_NOT_SUPPORTED is cuDNN's answer for an algorithm that does
 * not do this convolution: the candidate is skipped quietly. Any other
 * failure skips it too (the next candidate may well do), with a note on
 * stderr naming the call, the convolution and the algorithm. */
static bool candidate_ok(cudnnStatus_t st, const char *call, const char *file, int line,
                         const tb_cuda_conv_plan *pl, int algo)
{
    if (st == CUDNN_STATUS_SUCCESS)
        return true;
    if (!cudnn_not_supported(st)) {
        char shape[256];
        tb_cuda_note("conv2d %s: %.*s: %s at %s:%d for algorithm %d; that algorithm is not considered",
                     key_str(&pl->key, shape, sizeof shape), tb_cuda_call_name_len(call), call,
                     cudnnGetErrorString(st), file, line, algo);
    }
    return false;
}
#define CANDIDATE_OK(pl, algo, expr) candidate_ok((expr), #expr, __FILE__, __LINE__, (pl), (int)(algo))

/* First candidate (cuDNN orders them fastest first) that succeeded, fits
 * the budget and honours the determinism and TF32 options. */
template <typename Perf, typename WsFn>
static bool pick_algo(const Perf *perf, int count, const tb_cuda_conv_key *key, size_t budget, WsFn ws_of,
                      Perf *best, size_t *best_ws)
{
    for (int i = 0; i < count; i++) {
        Perf c = perf[i];
        if (c.status != CUDNN_STATUS_SUCCESS)
            continue;
        if (key->deterministic && c.determinism != CUDNN_DETERMINISTIC)
            continue;
        /* f32 data never takes ALLOW_CONVERSION: it may round the inputs to
         * f16 on tensor cores, coarser than TF32 (which DEFAULT_MATH and
         * TENSOR_OP_MATH give when TF32 is allowed) */
        if (key->dtype == TB_F32 && c.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION)
            continue;
        if (key->dtype == TB_F32 && !key->tf32) {
            if (c.mathType == CUDNN_TENSOR_OP_MATH)
                continue;
            c.mathType = CUDNN_FMA_MATH;
        }
        size_t ws = 0;
        if (!ws_of(c.algo, c.mathType, &ws))
            continue;
        if (ws > budget)
            continue;
        *best = c;
        *best_ws = ws;
        return true;
    }
    return false;
}

/* Device buffers for timing algorithms (cudnnFind*Ex writes its outputs). */
typedef struct find_bufs {
    void *x, *y, *w, *ws;
    size_t ws_size;
} find_bufs;

/* cudaFree(NULL) is a no-op; a failed free is reported on stderr. */
static void find_bufs_free(find_bufs *fb)
{
    CUDA_CHECK_RELEASE(cudaFree(fb->x));
    CUDA_CHECK_RELEASE(cudaFree(fb->y));
    CUDA_CHECK_RELEASE(cudaFree(fb->w));
    CUDA_CHECK_RELEASE(cudaFree(fb->ws));
    memset(fb, 0, sizeof *fb);
}

/* *got false when the device lacks the memory (not an error here: the
 * search makes do with less); any other failure is an error. */
static int find_malloc(void **p, size_t bytes, const char *what, bool *got)
{
    cudaError_t e = cudaMalloc(p, bytes);
    *got = e == cudaSuccess;
    if (e == cudaSuccess)
        return TB_OK;
    *p = NULL;
    (void)cudaGetLastError(); /* returns e: cleared, so that no later launch check blames its kernel */
    if (e == cudaErrorMemoryAllocation)
        return TB_OK;
    return tb_cuda_call_failed(e, "cudaMalloc", __FILE__, __LINE__, "", "%zu bytes for cudnnFind's %s", bytes, what);
}

/* The largest workspace up to limit and half the free memory: the limit
 * itself first (a limit under 1 MiB included), then halves down to 1 MiB;
 * none at all leaves the zero-workspace algorithms. Less than the limit is
 * noted on stderr (it narrows the choice). */
static int find_workspace(find_bufs *fb, const tb_cuda_conv_plan *pl, size_t limit)
{
    size_t free_b = 0, total_b = 0;
    CUDA_CHECK_FOR(cudaMemGetInfo(&free_b, &total_b), "free device memory for cudnnFind's workspace");
    if (limit > free_b / 2)
        limit = free_b / 2;
    for (size_t size = limit; size > 0 && !fb->ws; size = size > ((size_t)1 << 20) ? size / 2 : 0) {
        bool got = false;
        TB_TRY(find_malloc(&fb->ws, size, "workspace", &got));
        fb->ws_size = got ? size : 0;
    }
    if (fb->ws_size < limit) {
        char shape[256];
        tb_cuda_note("conv2d %s: cudnnFind gets %zu bytes of workspace, not %zu (no device memory for more): "
                     "algorithms that need more are not considered",
                     key_str(&pl->key, shape, sizeof shape), fb->ws_size, limit);
    }
    return TB_OK;
}

/* *have false (after a note on stderr) when the device lacks the memory
 * for the copies of x, y or w: the plan then takes cuDNN's heuristic choice. */
static int find_bufs_fill(find_bufs *fb, const tb_cuda_conv_plan *pl, cudaStream_t stream, const size_t bytes[3],
                          size_t limit, bool *have)
{
    void **bufs[3] = {&fb->x, &fb->y, &fb->w};
    static const char *const names[3] = {"copy of x", "copy of y", "copy of w"};
    for (int i = 0; i < 3; i++) {
        bool got = false;
        TB_TRY(find_malloc(bufs[i], bytes[i], names[i], &got));
        if (!got) {
            char shape[256];
            tb_cuda_note("conv2d %s: no device memory for cudnnFind's %zu-byte %s; cuDNN's heuristic choice of "
                         "algorithms is taken instead (not timed)",
                         key_str(&pl->key, shape, sizeof shape), bytes[i], names[i]);
            return TB_OK;
        }
    }
    TB_TRY(find_workspace(fb, pl, limit));
    for (int i = 0; i < 3; i++) /* defined contents: garbage could hold NaN patterns */
        CUDA_CHECK_FOR(cudaMemsetAsync(*bufs[i], 0, bytes[i], stream), "zeroing cudnnFind's %zu-byte %s", bytes[i],
                       names[i]);
    *have = true;
    return TB_OK;
}

/* Device buffers for timing algorithms; *have false when they cannot be had
 * (see find_bufs_fill). Nothing is left allocated unless *have. */
static int find_bufs_alloc(find_bufs *fb, const tb_cuda_conv_plan *pl, cudaStream_t stream, size_t x_bytes,
                           size_t y_bytes, size_t w_bytes, size_t limit, bool *have)
{
    memset(fb, 0, sizeof *fb);
    const size_t bytes[3] = {x_bytes, y_bytes, w_bytes};
    *have = false;
    int rc = find_bufs_fill(fb, pl, stream, bytes, limit, have);
    if (!*have)
        find_bufs_free(fb);
    return rc;
}

static int choose_fwd(tb_cuda_ctx *ctx, tb_cuda_conv_plan *pl, size_t budget, const find_bufs *fb)
{
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int count = 0;
    CUDNN_CHECK(cudnnSetConvolutionMathType(pl->conv_desc, allowed_math(&pl->key)));
    if (fb)
        CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(ctx->cudnn, pl->x_desc, fb->x, pl->w_desc, fb->w,
                                                           pl->conv_desc, pl->y_desc, fb->y,
                                                           CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, perf, fb->ws,
                                                           fb->ws_size));
    else
        CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(ctx->cudnn, pl->x_desc, pl->w_desc, pl->conv_desc,
                                                           pl->y_desc, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count,
                                                           perf));
    auto ws_of = [&](cudnnConvolutionFwdAlgo_t algo, cudnnMathType_t math, size_t *ws) {
        return CANDIDATE_OK(pl, algo, cudnnSetConvolutionMathType(pl->conv_desc, math)) &&
               CANDIDATE_OK(pl, algo,
                            cudnnGetConvolutionForwardWorkspaceSize(ctx->cudnn, pl->x_desc, pl->w_desc, pl->conv_desc,
                                                                    pl->y_desc, algo, ws));
    };
    cudnnConvolutionFwdAlgoPerf_t best;
    if (!pick_algo(perf, count, &pl->key, budget, ws_of, &best, &pl->fwd_ws))
        return tb_fail(TB_ERR_UNSUPPORTED, "conv2d: cuDNN offers no%s forward algorithm within %zu bytes of workspace",
                       pl->key.deterministic ? " deterministic" : "", budget);
    pl->fwd_algo = best.algo;
    pl->fwd_math = best.mathType;
    return TB_OK;
}

static int choose_bwd_data(tb_cuda_ctx *ctx, tb_cuda_conv_plan *pl, size_t budget, const find_bufs *fb)
{
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int count = 0;
    CUDNN_CHECK(cudnnSetConvolutionMathType(pl->conv_desc, allowed_math(&pl->key)));
    if (fb)
        CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(ctx->cudnn, pl->w_desc, fb->w, pl->y_desc, fb->y,
                                                                pl->conv_desc, pl->x_desc, fb->x,
                                                                CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, perf,
                                                                fb->ws, fb->ws_size));
    else
        CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(ctx->cudnn, pl->w_desc, pl->y_desc, pl->conv_desc,
                                                                pl->x_desc, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                                                                &count, perf));
    auto ws_of = [&](cudnnConvolutionBwdDataAlgo_t algo, cudnnMathType_t math, size_t *ws) {
        return CANDIDATE_OK(pl, algo, cudnnSetConvolutionMathType(pl->conv_desc, math)) &&
               CANDIDATE_OK(pl, algo,
                            cudnnGetConvolutionBackwardDataWorkspaceSize(ctx->cudnn, pl->w_desc, pl->y_desc,
                                                                         pl->conv_desc, pl->x_desc, algo, ws));
    };
    cudnnConvolutionBwdDataAlgoPerf_t best;
    if (!pick_algo(perf, count, &pl->key, budget, ws_of, &best, &pl->bwd_data_ws))
        return tb_fail(TB_ERR_UNSUPPORTED,
                       "conv2d: cuDNN offers no%s backward-data algorithm within %zu bytes of workspace",
                       pl->key.deterministic ? " deterministic" : "", budget);
    pl->bwd_data_algo = best.algo;
    pl->bwd_data_math = best.mathType;
    return TB_OK;
}

static int choose_bwd_filter(tb_cuda_ctx *ctx, tb_cuda_conv_plan *pl, size_t budget, const find_bufs *fb)
{
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    int count = 0;
    CUDNN_CHECK(cudnnSetConvolutionMathType(pl->conv_desc, allowed_math(&pl->key)));
    if (fb)
        CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(
            ctx->cudnn, pl->x_desc, fb->x, pl->y_desc, fb->y, pl->conv_desc, pl->w_desc, fb->w,
            CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, perf, fb->ws, fb->ws_size));
    else
        CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(ctx->cudnn, pl->x_desc, pl->y_desc,
                                                                  pl->conv_desc, pl->w_desc,
                                                                  CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count,
                                                                  perf));
    auto ws_of = [&](cudnnConvolutionBwdFilterAlgo_t algo, cudnnMathType_t math, size_t *ws) {
        return CANDIDATE_OK(pl, algo, cudnnSetConvolutionMathType(pl->conv_desc, math)) &&
               CANDIDATE_OK(pl, algo,
                            cudnnGetConvolutionBackwardFilterWorkspaceSize(ctx->cudnn, pl->x_desc, pl->y_desc,
                                                                           pl->conv_desc, pl->w_desc, algo, ws));
    };
    cudnnConvolutionBwdFilterAlgoPerf_t best;
    if (!pick_algo(perf, count, &pl->key, budget, ws_of, &best, &pl->bwd_filter_ws))
        return tb_fail(TB_ERR_UNSUPPORTED,
                       "conv2d: cuDNN offers no%s backward-filter algorithm within %zu bytes of workspace",
                       pl->key.deterministic ? " deterministic" : "", budget);
    pl->bwd_filter_algo = best.algo;
    pl->bwd_filter_math = best.mathType;
    return TB_OK;
}

static int choose_all(tb_cuda_ctx *ctx, tb_cuda_conv_plan *pl, size_t budget, const find_bufs *fb)
{
    TB_TRY(choose_fwd(ctx, pl, budget, fb));
    TB_TRY(choose_bwd_data(ctx, pl, budget, fb));
    TB_TRY(choose_bwd_filter(ctx, pl, budget, fb));
    return TB_OK;
}

/* Times the algorithms when asked to and the memory is there, else heuristics. */
static int plan_algorithms(tb_cuda_ctx *ctx, tb_cuda_conv_plan *pl, size_t budget, bool search,
                           const tb_tensor *y, const tb_tensor *x, const tb_tensor *w)
{
    find_bufs fb;
    bool have = false;
    if (search)
        TB_TRY(find_bufs_alloc(&fb, pl, ctx->stream, tb_nbytes(x), tb_nbytes(y), tb_nbytes(w), budget, &have));
    if (have) {
        int rc = choose_all(ctx, pl, fb.ws_size < budget ? fb.ws_size : budget, &fb);
        find_bufs_free(&fb);
        pl->searched = rc == TB_OK;
        if (rc == TB_OK)
            return TB_OK;
        /* e.g. no timed algorithm fit the workspace the search could get:
         * cuDNN's heuristic choice, within the whole budget, may still do */
        char shape[256];
        tb_cuda_note("conv2d %s: the timed search found no algorithm (%s); trying cuDNN's heuristic choice",
                     key_str(&pl->key, shape, sizeof shape), tb_errmsg());
    }
    pl->searched = false;
    return choose_all(ctx, pl, budget, NULL);
}

/* Keeps a plan whose planning at graph build failed as the record of that
 * failure (tb_cuda_conv_plan.failed): tb_conv2d_workspace_size cannot return
 * it, so the op reports it. Returns rc with the convolution named. */
static int plan_record_failure(tb_cuda_ctx *ctx, tb_cuda_conv_plan *pl, int rc)
{
    char shape[256];
    rc = tb_err_context(rc, "planning conv2d %s", key_str(&pl->key, shape, sizeof shape));
    pl->failed = rc;
    snprintf(pl->failure, sizeof pl->failure, "%s", tb_errmsg());
    ctx->plans[ctx->n_plans++] = pl;
    return rc;
}

static int plan_found(tb_cuda_conv_plan *pl, tb_cuda_conv_plan **out)
{
    if (pl->failed != TB_OK)
        return tb_fail(pl->failed, "%s (failed when these shapes were first planned; not retried until the CUDA "
                                   "options change)", pl->failure);
    *out = pl;
    return TB_OK;
}

int tb_cuda_conv_plan_get(tb_backend *be, const tb_tensor *y, const tb_tensor *x, const tb_tensor *w,
                          const tb_conv2d_params *p, bool search, tb_cuda_conv_plan **out)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    tb_cuda_conv_key key = make_key(ctx, y, x, w, p);
    for (int i = 0; i < ctx->n_plans; i++) {
        if (!memcmp(&ctx->plans[i]->key, &key, sizeof key))
            return plan_found(ctx->plans[i], out);
    }
    TB_CHECK(ctx->n_plans < TB_CUDA_MAX_CONV_PLANS, TB_ERR_UNSUPPORTED,
             "conv2d: more than %d distinct convolution shapes on one CUDA backend", TB_CUDA_MAX_CONV_PLANS);
    tb_cuda_conv_plan *pl = (tb_cuda_conv_plan *)calloc(1, sizeof *pl);
    TB_CHECK(pl, TB_ERR_NOMEM, "conv2d: out of memory for a convolution plan");
    pl->key = key;
    size_t budget = search ? ctx->opt.conv_workspace_limit : be->workspace_size;
    int rc = plan_descriptors(pl);
    if (rc == TB_OK)
        rc = plan_algorithms(ctx, pl, budget, search && ctx->opt.find_algorithms, y, x, w);
    if (rc != TB_OK && search) /* graph build: the op must not plan again in a step */
        return plan_record_failure(ctx, pl, rc);
    if (rc != TB_OK) { /* an op: it reports this itself, and a larger reserve may help later */
        plan_destroy(pl);
        return rc;
    }
    ctx->plans[ctx->n_plans++] = pl;
    *out = pl;
    return TB_OK;
}
