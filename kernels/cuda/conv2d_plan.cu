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
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/conv2d_plan.h"

static void plan_destroy(tb_cuda_conv_plan *pl)
{
    if (!pl)
        return;
    if (pl->x_desc)
        cudnnDestroyTensorDescriptor(pl->x_desc);
    if (pl->y_desc)
        cudnnDestroyTensorDescriptor(pl->y_desc);
    if (pl->w_desc)
        cudnnDestroyFilterDescriptor(pl->w_desc);
    if (pl->conv_desc)
        cudnnDestroyConvolutionDescriptor(pl->conv_desc);
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

static void find_bufs_free(find_bufs *fb)
{
    cudaFree(fb->x);
    cudaFree(fb->y);
    cudaFree(fb->w);
    cudaFree(fb->ws);
    memset(fb, 0, sizeof *fb);
}

/* false when the device lacks the memory: the caller then uses heuristics. */
static bool find_bufs_alloc(find_bufs *fb, cudaStream_t stream, size_t x_bytes, size_t y_bytes, size_t w_bytes,
                            size_t limit)
{
    memset(fb, 0, sizeof *fb);
    if (cudaMalloc(&fb->x, x_bytes) != cudaSuccess || cudaMalloc(&fb->y, y_bytes) != cudaSuccess ||
        cudaMalloc(&fb->w, w_bytes) != cudaSuccess) {
        cudaGetLastError();
        find_bufs_free(fb);
        return false;
    }
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess && limit > free_b / 2)
        limit = free_b / 2;
    /* the limit itself first (a limit under 1 MiB included), then halves
     * down to 1 MiB; none at all leaves the zero-workspace algorithms */
    for (size_t size = limit; size > 0; size = size > ((size_t)1 << 20) ? size / 2 : 0) {
        if (cudaMalloc(&fb->ws, size) == cudaSuccess) {
            fb->ws_size = size;
            break;
        }
        cudaGetLastError();
        fb->ws = NULL;
    }
    /* defined contents: garbage could hold NaN patterns */
    if (cudaMemsetAsync(fb->x, 0, x_bytes, stream) != cudaSuccess ||
        cudaMemsetAsync(fb->y, 0, y_bytes, stream) != cudaSuccess ||
        cudaMemsetAsync(fb->w, 0, w_bytes, stream) != cudaSuccess) {
        cudaGetLastError();
        find_bufs_free(fb);
        return false;
    }
    return true;
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
        return cudnnSetConvolutionMathType(pl->conv_desc, math) == CUDNN_STATUS_SUCCESS &&
               cudnnGetConvolutionForwardWorkspaceSize(ctx->cudnn, pl->x_desc, pl->w_desc, pl->conv_desc,
                                                       pl->y_desc, algo, ws) == CUDNN_STATUS_SUCCESS;
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
        return cudnnSetConvolutionMathType(pl->conv_desc, math) == CUDNN_STATUS_SUCCESS &&
               cudnnGetConvolutionBackwardDataWorkspaceSize(ctx->cudnn, pl->w_desc, pl->y_desc, pl->conv_desc,
                                                            pl->x_desc, algo, ws) == CUDNN_STATUS_SUCCESS;
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
        return cudnnSetConvolutionMathType(pl->conv_desc, math) == CUDNN_STATUS_SUCCESS &&
               cudnnGetConvolutionBackwardFilterWorkspaceSize(ctx->cudnn, pl->x_desc, pl->y_desc, pl->conv_desc,
                                                              pl->w_desc, algo, ws) == CUDNN_STATUS_SUCCESS;
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
    if (search && find_bufs_alloc(&fb, ctx->stream, tb_nbytes(x), tb_nbytes(y), tb_nbytes(w), budget)) {
        int rc = choose_all(ctx, pl, fb.ws_size < budget ? fb.ws_size : budget, &fb);
        find_bufs_free(&fb);
        pl->searched = rc == TB_OK;
        return rc;
    }
    pl->searched = false;
    return choose_all(ctx, pl, budget, NULL);
}

int tb_cuda_conv_plan_get(tb_backend *be, const tb_tensor *y, const tb_tensor *x, const tb_tensor *w,
                          const tb_conv2d_params *p, bool search, tb_cuda_conv_plan **out)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    tb_cuda_conv_key key = make_key(ctx, y, x, w, p);
    for (int i = 0; i < ctx->n_plans; i++) {
        if (!memcmp(&ctx->plans[i]->key, &key, sizeof key)) {
            *out = ctx->plans[i];
            return TB_OK;
        }
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
    if (rc != TB_OK) {
        plan_destroy(pl);
        return rc;
    }
    ctx->plans[ctx->n_plans++] = pl;
    *out = pl;
    return TB_OK;
}
