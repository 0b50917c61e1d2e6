/* Fused BatchNorm + add + ReLU, y = relu(BN(x) + z) (z optional), on CUDA.
 *
 * Two paths, chosen by a pure function of the tensor and the options
 * (use_cudnn_ex) so that a backward always takes its forward's path:
 *  - cuDNN's fused kernels (cudnnBatchNormalizationForwardTrainingEx /
 *    BackwardEx with CUDNN_BATCHNORM_OPS_BN_ACTIVATION or
 *    BN_ADD_ACTIVATION, NHWC, SPATIAL_PERSISTENT): f16 4-D tensors with
 *    channels a multiple of 4 - the case cuDNN documents and the one other
 *    frameworks register it for (fp16 channels-last ResNets). The ReLU's
 *    mask lives in the reserve space, which the graph keeps per node from
 *    the forward to its backward.
 *  - everything else (f32, bf16, 2-D, odd channels, persistent BN turned
 *    off): cuDNN's BatchNorm, then one kernel y = relu(y + z) in place;
 *    backward: one kernel g = dy * (y > 0) into the workspace (adding g to
 *    dz on the way; with dz_write g goes to dz itself, and the BatchNorm
 *    backward reads it there), then cuDNN's BatchNorm backward of g. No
 *    reserve.
 * The evaluation forward is one elementwise kernel for every dtype.
 *
 * Gradients accumulate like every backward here. cuDNN's fused backward
 * blends dx with betaDataDiff = 1; the residual's gradient it can only
 * write, so it goes to dz itself with dz_write (the graph's first writer of
 * the shortcut's gradient) and otherwise into the workspace, from where a
 * kernel adds it to dz (dz may be absent, cuDNN still needs somewhere to
 * write it). */
#include <initializer_list>

#include "kernels/cuda/cuda_common.cuh"

/* ---------------------------------------------------------------- kernels */

static __device__ __forceinline__ float relu_f(float v) { return v < 0.0f ? 0.0f : v; }

/* The streaming kernels below (the unfused path's passes over whole
 * activations) work on 16-byte packs, 8 halves or 4 floats per 128-bit
 * load and store, where every pointer is 16-byte aligned (arena tensors
 * are 256-byte aligned), then on the tail element by element. */
template <typename T> struct alignas(16) pack16 {
    T v[16 / sizeof(T)];
};

static inline bool aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

/* Packs a kernel may use: none when a pointer is misaligned. */
static inline int64_t packs_of(int64_t total, int n, std::initializer_list<const void *> ptrs)
{
    for (const void *p : ptrs)
        if (p && !aligned16(p))
            return 0;
    return total / n;
}

template <typename T> __device__ __forceinline__ pack16<T> load_pack(const T *p, int64_t i)
{
    return reinterpret_cast<const pack16<T> *>(p)[i];
}

template <typename T> __device__ __forceinline__ void store_pack(T *p, int64_t i, const pack16<T> &v)
{
    reinterpret_cast<pack16<T> *>(p)[i] = v;
}

/* relu(y + z) of one element, relu(y) without z (no + 0, which would turn
 * -0 into +0); NaN passes as in relu.cu. */
template <typename T> __device__ __forceinline__ T add_relu_1(T yv, bool has_z, float z_val)
{
    float v = tb_f32(yv);
    if (has_z)
        v += z_val;
    return tb_from_f32<T>(relu_f(v));
}

/* y = relu(y + z) in place (z may be NULL). packs: 16-byte packs to take
 * first (0 when misaligned). */
template <typename T> static __global__ void add_relu_kernel(T *y, const T *z, int64_t total, int64_t packs)
{
    constexpr int N = 16 / sizeof(T);
    TB_GRID_STRIDE_LOOP(p, packs)
    {
        pack16<T> a = load_pack(y, p), b = a;
        if (z)
            b = load_pack(z, p);
#pragma unroll
        for (int k = 0; k < N; k++)
            a.v[k] = add_relu_1(a.v[k], z != NULL, tb_f32(b.v[k]));
        store_pack(y, p, a);
    }
    TB_GRID_STRIDE_LOOP(j, total - packs * N)
    {
        int64_t i = packs * N + j;
        y[i] = add_relu_1(y[i], z != NULL, z ? tb_f32(z[i]) : 0.0f);
    }
}

/* The gate of one element: dy where y > 0, else 0. */
template <typename T> __device__ __forceinline__ float gate_1(T yv, T dyv)
{
    return tb_f32(yv) > 0.0f ? tb_f32(dyv) : 0.0f;
}

/* g = dy where y > 0, else 0; dz += g when dz is given. */
template <typename T>
static __global__ void gate_kernel(T *g, T *dz, const T *dy, const T *y, int64_t total, int64_t packs)
{
    constexpr int N = 16 / sizeof(T);
    TB_GRID_STRIDE_LOOP(p, packs)
    {
        pack16<T> yv = load_pack(y, p), dyv = load_pack(dy, p), out = yv, acc = yv;
        if (dz)
            acc = load_pack(dz, p);
#pragma unroll
        for (int k = 0; k < N; k++) {
            float d = gate_1(yv.v[k], dyv.v[k]);
            out.v[k] = tb_from_f32<T>(d);
            if (dz)
                acc.v[k] = tb_from_f32<T>(tb_f32(acc.v[k]) + d);
        }
        store_pack(g, p, out);
        if (dz)
            store_pack(dz, p, acc);
    }
    TB_GRID_STRIDE_LOOP(j, total - packs * N)
    {
        int64_t i = packs * N + j;
        float d = gate_1(y[i], dy[i]);
        g[i] = tb_from_f32<T>(d);
        if (dz)
            dz[i] = tb_from_f32<T>(tb_f32(dz[i]) + d);
    }
}

/* dst += src. */
template <typename T> static __global__ void accumulate_kernel(T *dst, const T *src, int64_t total, int64_t packs)
{
    constexpr int N = 16 / sizeof(T);
    TB_GRID_STRIDE_LOOP(p, packs)
    {
        pack16<T> a = load_pack(dst, p), b = load_pack(src, p);
#pragma unroll
        for (int k = 0; k < N; k++)
            a.v[k] = tb_from_f32<T>(tb_f32(a.v[k]) + tb_f32(b.v[k]));
        store_pack(dst, p, a);
    }
    TB_GRID_STRIDE_LOOP(j, total - packs * N)
    {
        int64_t i = packs * N + j;
        dst[i] = tb_from_f32<T>(tb_f32(dst[i]) + tb_f32(src[i]));
    }
}

/* y = relu((x - mean) * gamma / sqrt(var + eps) + beta + z) with the running statistics. */
template <typename T>
static __global__ void eval_kernel(T *y, const T *x, const T *z, const float *gamma, const float *beta,
                                   const float *mean, const float *var, int64_t total, int64_t c, float eps)
{
    TB_GRID_STRIDE_LOOP(i, total)
    {
        int64_t ch = i % c;
        float scale = gamma[ch] / sqrtf(var[ch] + eps);
        float v = (tb_f32(x[i]) - mean[ch]) * scale + beta[ch];
        if (z)
            v += tb_f32(z[i]);
        y[i] = tb_from_f32<T>(relu_f(v));
    }
}

/* ------------------------------------------------------------- the paths */

static bool use_cudnn_ex(const tb_cuda_ctx *ctx, const tb_tensor *x)
{
    return x->ndim == 4 && x->dtype == TB_F16 && x->shape[3] % 4 == 0 && ctx->opt.batchnorm_persistent;
}

static cudnnBatchNormOps_t ex_ops(bool add)
{
    return add ? CUDNN_BATCHNORM_OPS_BN_ADD_ACTIVATION : CUDNN_BATCHNORM_OPS_BN_ACTIVATION;
}

static size_t align256(size_t n) { return (n + 255) & ~(size_t)255; }

/* cuDNN's own workspace for the fused forward and backward (the larger). */
static int ex_cudnn_workspace(tb_cuda_ctx *ctx, const tb_tensor *x, bool add, size_t *out)
{
    int64_t c = 0;
    TB_TRY(tb_cuda_bn_describe(ctx, x, CUDNN_BATCHNORM_SPATIAL_PERSISTENT, &c));
    cudnnTensorDescriptor_t xd = ctx->bn_x_desc, zd = add ? ctx->bn_x_desc : NULL;
    size_t fwd = 0, bwd = 0;
    CUDNN_CHECK(cudnnGetBatchNormalizationForwardTrainingExWorkspaceSize(
        ctx->cudnn, CUDNN_BATCHNORM_SPATIAL_PERSISTENT, ex_ops(add), xd, zd, xd, ctx->bn_param_desc, ctx->relu_desc,
        &fwd));
    CUDNN_CHECK(cudnnGetBatchNormalizationBackwardExWorkspaceSize(ctx->cudnn, CUDNN_BATCHNORM_SPATIAL_PERSISTENT,
                                                                  ex_ops(add), xd, xd, xd, zd, xd,
                                                                  ctx->bn_param_desc, ctx->relu_desc, &bwd));
    *out = align256(fwd > bwd ? fwd : bwd);
    return TB_OK;
}

/* cuDNN's reserve space for the fused forward and backward. */
static int ex_reserve_size(tb_cuda_ctx *ctx, const tb_tensor *x, bool add, size_t *out)
{
    int64_t c = 0;
    TB_TRY(tb_cuda_bn_describe(ctx, x, CUDNN_BATCHNORM_SPATIAL_PERSISTENT, &c));
    CUDNN_CHECK(cudnnGetBatchNormalizationTrainingExReserveSpaceSize(
        ctx->cudnn, CUDNN_BATCHNORM_SPATIAL_PERSISTENT, ex_ops(add), ctx->relu_desc, ctx->bn_x_desc, out));
    return TB_OK;
}

/* The two size queries cannot return an error: a failed one reports 0, and
 * the op repeats the same checked queries (ex_reserve_size,
 * ex_cudnn_workspace) before its cuDNN call, so it reports the failure with
 * its op name and shapes. Host-side queries only: nothing is allocated. */
size_t tb_cuda_batchnorm_relu_reserve_size(tb_backend *be, const tb_tensor *x, bool add)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    size_t bytes = 0;
    if (!use_cudnn_ex(ctx, x) || ex_reserve_size(ctx, x, add, &bytes) != TB_OK)
        return 0;
    return bytes;
}

/* Fused path: cuDNN's workspace, then (with z) the residual gradient; at
 * least the gated gradient, for a backward without dx (which takes the
 * other path). Other path: the gated gradient. */
size_t tb_cuda_batchnorm_relu_workspace_size(tb_backend *be, const tb_tensor *x, bool add)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    if (!use_cudnn_ex(ctx, x))
        return tb_nbytes(x);
    size_t ws = 0;
    if (ex_cudnn_workspace(ctx, x, add, &ws) != TB_OK)
        return 0;
    ws += add ? tb_nbytes(x) : 0;
    return ws > tb_nbytes(x) ? ws : tb_nbytes(x);
}

static void *data_or_null(const tb_tensor *t) { return t ? t->data : NULL; }

template <typename Launch> static int launch_float(tb_dtype dt, const char *what, Launch &&launch)
{
    TB_TRY(tb_dispatch_float(dt, what, launch));
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

static int bnr_forward_train(tb_backend *be, tb_tensor *y, tb_tensor *save_mean, tb_tensor *save_invstd,
                             tb_tensor *running_mean, tb_tensor *running_var, tb_tensor *reserve, const tb_tensor *x,
                             const tb_tensor *z, const tb_tensor *gamma, const tb_tensor *beta, float momentum,
                             float eps)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    int64_t total = tb_numel(x);
    if (!use_cudnn_ex(ctx, x)) {
        TB_TRY(tb_cuda_batchnorm_forward_train(be, y, save_mean, save_invstd, running_mean, running_var, x, gamma,
                                               beta, momentum, eps));
        return launch_float(x->dtype, "batchnorm_relu_forward_train", [&](auto tag) {
            using T = typename decltype(tag)::type;
            constexpr int N = 16 / sizeof(T);
            int64_t packs = packs_of(total, N, {y->data, data_or_null(z)});
            add_relu_kernel<T><<<tb_cuda_blocks(ctx, packs + (total - packs * N)), TB_CUDA_THREADS, 0, ctx->stream>>>(
                (T *)y->data, (const T *)data_or_null(z), total, packs);
            return TB_OK;
        });
    }
    bool add = z != NULL;
    size_t ws = 0;
    TB_TRY(ex_cudnn_workspace(ctx, x, add, &ws));
    size_t rs = 0;
    TB_TRY(ex_reserve_size(ctx, x, add, &rs));
    int64_t c = 0;
    TB_TRY(tb_cuda_bn_describe(ctx, x, CUDNN_BATCHNORM_SPATIAL_PERSISTENT, &c));
    const float one = 1.0f, zero = 0.0f;
    CUDNN_CHECK(cudnnBatchNormalizationForwardTrainingEx(
        ctx->cudnn, CUDNN_BATCHNORM_SPATIAL_PERSISTENT, ex_ops(add), &one, &zero, ctx->bn_x_desc, x->data,
        add ? ctx->bn_x_desc : NULL, data_or_null(z), ctx->bn_x_desc, y->data, ctx->bn_param_desc, gamma->data,
        beta->data, (double)momentum, data_or_null(running_mean), data_or_null(running_var), (double)eps,
        save_mean->data, save_invstd->data, ctx->relu_desc, be->workspace, ws, data_or_null(reserve), rs));
    return TB_OK;
}

int tb_cuda_batchnorm_relu_forward_train(tb_backend *be, tb_tensor *y, tb_tensor *save_mean, tb_tensor *save_invstd,
                                         tb_tensor *running_mean, tb_tensor *running_var, tb_tensor *reserve,
                                         const tb_tensor *x, const tb_tensor *z, const tb_tensor *gamma,
                                         const tb_tensor *beta, float momentum, float eps)
{
    TB_CUDA_OP_RETURN(bnr_forward_train(be, y, save_mean, save_invstd, running_mean, running_var, reserve, x, z, gamma,
                                        beta, momentum, eps),
                      "batchnorm_relu_forward_train", "y", y, "x", x, "z", z, "gamma", gamma);
}

static int bnr_forward_eval(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *z,
                            const tb_tensor *gamma, const tb_tensor *beta, const tb_tensor *running_mean,
                            const tb_tensor *running_var, float eps)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    int64_t total = tb_numel(x), c = x->shape[x->ndim - 1];
    return launch_float(x->dtype, "batchnorm_relu_forward_eval", [&](auto tag) {
        using T = typename decltype(tag)::type;
        eval_kernel<T><<<tb_cuda_blocks(ctx, total), TB_CUDA_THREADS, 0, ctx->stream>>>(
            (T *)y->data, (const T *)x->data, (const T *)data_or_null(z), (const float *)gamma->data,
            (const float *)beta->data, (const float *)running_mean->data, (const float *)running_var->data, total, c,
            eps);
        return TB_OK;
    });
}

int tb_cuda_batchnorm_relu_forward_eval(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *z,
                                        const tb_tensor *gamma, const tb_tensor *beta,
                                        const tb_tensor *running_mean, const tb_tensor *running_var, float eps)
{
    TB_CUDA_OP_RETURN(bnr_forward_eval(be, y, x, z, gamma, beta, running_mean, running_var, eps),
                      "batchnorm_relu_forward_eval", "y", y, "x", x, "z", z, "running_var", running_var);
}

/* The gated gradient into the workspace, then BatchNorm's backward of it. */
static int backward_unfused(tb_backend *be, tb_tensor *dx, tb_tensor *dz, tb_tensor *dgamma, tb_tensor *dbeta,
                            const tb_tensor *dy, const tb_tensor *x, const tb_tensor *y, const tb_tensor *gamma,
                            const tb_tensor *save_mean, const tb_tensor *save_invstd, bool dz_write)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    int64_t total = tb_numel(x);
    tb_tensor gated = *dy;
    gated.data = dz_write ? dz->data : be->workspace;
    TB_TRY(launch_float(x->dtype, "batchnorm_relu_backward", [&](auto tag) {
        using T = typename decltype(tag)::type;
        constexpr int N = 16 / sizeof(T);
        T *acc = dz_write ? NULL : (T *)data_or_null(dz);
        int64_t packs = packs_of(total, N, {gated.data, acc, dy->data, y->data});
        gate_kernel<T><<<tb_cuda_blocks(ctx, packs + (total - packs * N)), TB_CUDA_THREADS, 0, ctx->stream>>>(
            (T *)gated.data, acc, (const T *)dy->data, (const T *)y->data, total, packs);
        return TB_OK;
    }));
    if (!dx && !dgamma && !dbeta)
        return TB_OK;
    return tb_cuda_batchnorm_backward(be, dx, dgamma, dbeta, &gated, x, gamma, save_mean, save_invstd);
}

static int bnr_backward(tb_backend *be, tb_tensor *dx, tb_tensor *dz, tb_tensor *dgamma, tb_tensor *dbeta,
                        tb_tensor *reserve, const tb_tensor *dy, const tb_tensor *x, const tb_tensor *y,
                        const tb_tensor *gamma, const tb_tensor *beta, const tb_tensor *save_mean,
                        const tb_tensor *save_invstd, bool add, bool dz_write)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    /* cuDNN's fused backward always writes dx: without one, the unfused path
     * (which needs only y, not the reserve) */
    if (!use_cudnn_ex(ctx, x) || !dx)
        return backward_unfused(be, dx, dz, dgamma, dbeta, dy, x, y, gamma, save_mean, save_invstd, dz_write);
    size_t ws = 0;
    TB_TRY(ex_cudnn_workspace(ctx, x, add, &ws));
    size_t rs = 0;
    TB_TRY(ex_reserve_size(ctx, x, add, &rs));
    int64_t c = 0;
    TB_TRY(tb_cuda_bn_describe(ctx, x, CUDNN_BATCHNORM_SPATIAL_PERSISTENT, &c));
    void *dg = NULL, *db = NULL;
    TB_TRY(tb_cuda_bn_param_grads(ctx, c, dgamma, dbeta, &dg, &db));
    void *dz_scratch = !add ? NULL : dz_write ? dz->data : (char *)be->workspace + ws;
    const float one = 1.0f;
    const double unused_eps = 1e-5; /* the saved statistics are given */
    CUDNN_CHECK(cudnnBatchNormalizationBackwardEx(
        ctx->cudnn, CUDNN_BATCHNORM_SPATIAL_PERSISTENT, ex_ops(add), &one, &one, &one, &one, ctx->bn_x_desc, x->data,
        ctx->bn_x_desc, y->data, ctx->bn_x_desc, dy->data, add ? ctx->bn_x_desc : NULL, dz_scratch, ctx->bn_x_desc,
        dx->data, ctx->bn_param_desc, gamma->data, beta->data, dg, db, unused_eps, save_mean->data,
        save_invstd->data, ctx->relu_desc, be->workspace, ws, data_or_null(reserve), rs));
    if (!dz || dz_write)
        return TB_OK;
    int64_t total = tb_numel(x);
    return launch_float(x->dtype, "batchnorm_relu_backward", [&](auto tag) {
        using T = typename decltype(tag)::type;
        constexpr int N = 16 / sizeof(T);
        int64_t packs = packs_of(total, N, {dz->data, dz_scratch});
        accumulate_kernel<T><<<tb_cuda_blocks(ctx, packs + (total - packs * N)), TB_CUDA_THREADS, 0, ctx->stream>>>(
            (T *)dz->data, (const T *)dz_scratch, total, packs);
        return TB_OK;
    });
}

int tb_cuda_batchnorm_relu_backward(tb_backend *be, tb_tensor *dx, tb_tensor *dz, tb_tensor *dgamma,
                                    tb_tensor *dbeta, tb_tensor *reserve, const tb_tensor *dy, const tb_tensor *x,
                                    const tb_tensor *y, const tb_tensor *gamma, const tb_tensor *beta,
                                    const tb_tensor *save_mean, const tb_tensor *save_invstd, bool add,
                                    bool dz_write)
{
    TB_CUDA_OP_RETURN(bnr_backward(be, dx, dz, dgamma, dbeta, reserve, dy, x, y, gamma, beta, save_mean, save_invstd,
                                   add, dz_write),
                      "batchnorm_relu_backward", "dx", dx, "dz", dz, "dy", dy, "x", x);
}
