/* conv2d on the CPU through oneDNN's convolution primitives.
 *
 * Why: oneDNN's direct convolution kernels (JIT-compiled for the CPU's
 * instruction set: brgconv / jit:avx512_core, jit:avx2...) read the NHWC
 * activations in place, with no im2col copy, and run ResNet-18's 3x3 layers
 * at 430-550 GFLOP/s on the two cores of the development VM, where im2col
 * plus a GEMM leaves a third of a ResNet-18 step to the copies around the
 * GEMMs (bench/RESULTS.md). PyTorch's CPU convolutions are the same kernels.
 *
 * What runs here: f32 convs with one group whose primitives oneDNN creates
 * for the shape, except 1x1 stride-1 unpadded convs (conv2d.c's GEMM path
 * keeps those, f16/bf16, grouped and depthwise convs, and whatever oneDNN
 * declines). A 1x1 stride-1 conv is a plain GEMM in NHWC with no im2col, and
 * there oneDNN's sgemm beats its convolution primitives: ResNet-50's res2
 * 1x1 64->256 takes 27.4 ms forward + backward on the GEMM path against
 * 43.5 ms on the primitives (backward filter 295 against 145 GFLOP/s), and
 * every 1x1 layer of conv_bench is faster or even that way. The primitives of a shape are created
 * once, when the graph is built (tb_conv2d_workspace_size), and kept by the
 * backend; an op called for a shape never planned creates them at its first
 * call. Every buffer a call needs (weights in the primitive's blocked layout,
 * oneDNN's scratchpad in user mode, the backward data's staging) is carved
 * from the backend's workspace, so a step allocates nothing.
 *
 * Layouts: activations are NHWC ({n,c,h,w} with the nhwc tag), weights OHWI
 * (ohwi tag); the primitives choose their own weight layout (format any)
 * and a reorder converts w before the forward and backward-data convs and
 * adds the blocked weight gradient into dw after the backward-weights conv
 * (a reorder with a sum post-op: dw += gradient, the GEMM path's contract).
 * The backward-data primitive overwrites its output, so it writes a staging
 * buffer that is then added into dx. Bias: added after the forward conv, and
 * its gradient summed from dy here (one pass per channel block).
 *
 * Threads: oneDNN runs on omp_get_max_threads() threads, which the backend
 * sets to its own count at creation; the count is part of a primitive's key
 * because its scratchpad size depends on it. For a fixed count the kernels
 * partition work, and sum partial weight gradients, in a fixed order: a run
 * is reproducible bit for bit. */
#include "kernels/cpu/conv2d_onednn.h"

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_util.h"
#include "kernels/error.h"

/* Shapes kept at most; a backend that meets more (a job that builds graphs
 * for many input sizes) runs the others on the GEMM path. */
#define ONEDNN_MAX_SHAPES 512
#define ONEDNN_BIAS_BLOCK 16

enum { DIR_FWD, DIR_BWD_DATA, DIR_BWD_WEIGHTS, DIR_COUNT };

typedef struct conv_key {
    int64_t n, h, w, c, k, r, s, oh, ow;
    int sh, sw, ph, pw, dh, dw, threads;
} conv_key;

/* One direction: the conv and the reorder of its weights (into the blocked
 * layout, or for backward weights out of it into dw). */
typedef struct conv_dir {
    dnnl_primitive_t conv, reorder;
    dnnl_memory_t act_in, act_out, w_plain, w_blocked, scratch, reorder_scratch;
    size_t w_bytes, scratch_bytes, reorder_scratch_bytes, stage_bytes;
} conv_dir;

typedef struct conv_entry {
    conv_key key;
    bool usable; /* false: oneDNN declined the shape */
    conv_dir dir[DIR_COUNT];
} conv_entry;

struct tb_cpu_onednn {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    conv_entry *entries[ONEDNN_MAX_SHAPES];
    int count;
};

static int onednn_fail(dnnl_status_t st, const char *what)
{
    return tb_fail(TB_ERR_INTERNAL, "oneDNN: %s failed: %s", what, dnnl_status2str(st));
}

int tb_cpu_onednn_create(tb_cpu_onednn **out)
{
    *out = NULL;
    tb_cpu_onednn *st = calloc(1, sizeof *st);
    if (!st)
        return tb_fail(TB_ERR_NOMEM, "out of memory creating the oneDNN state");
    dnnl_status_t s = dnnl_engine_create(&st->engine, dnnl_cpu, 0);
    if (s == dnnl_success)
        s = dnnl_stream_create(&st->stream, st->engine, dnnl_stream_default_flags);
    if (s != dnnl_success) {
        tb_cpu_onednn_destroy(st);
        return onednn_fail(s, "creating the CPU engine and stream");
    }
    *out = st;
    return TB_OK;
}

/* Releases report a failure and go on: there is nothing else to do with it. */
static void warn_failed(dnnl_status_t st, const char *what)
{
    if (st != dnnl_success)
        fprintf(stderr, "warning: oneDNN: %s failed: %s\n", what, dnnl_status2str(st));
}

static void release_primitive(dnnl_primitive_t p)
{
    if (p)
        warn_failed(dnnl_primitive_destroy(p), "destroying a primitive");
}

static void release_memory(dnnl_memory_t m)
{
    if (m)
        warn_failed(dnnl_memory_destroy(m), "destroying a memory object");
}

static void release_dir(conv_dir *d)
{
    release_primitive(d->conv);
    release_primitive(d->reorder);
    dnnl_memory_t mems[6] = {d->act_in, d->act_out, d->w_plain, d->w_blocked, d->scratch, d->reorder_scratch};
    for (int i = 0; i < 6; i++)
        release_memory(mems[i]);
    memset(d, 0, sizeof *d);
}

void tb_cpu_onednn_destroy(tb_cpu_onednn *st)
{
    if (!st)
        return;
    for (int i = 0; i < st->count; i++) {
        for (int d = 0; d < DIR_COUNT; d++)
            release_dir(&st->entries[i]->dir[d]);
        free(st->entries[i]);
    }
    if (st->stream)
        warn_failed(dnnl_stream_destroy(st->stream), "destroying the stream");
    if (st->engine)
        warn_failed(dnnl_engine_destroy(st->engine), "destroying the engine");
    free(st);
}

/* ----------------------------------------------------------------- plans */

static bool make_key(conv_key *key, const tb_backend *be, const tb_tensor *y, const tb_tensor *x,
                     const tb_tensor *w, const tb_conv2d_params *p)
{
    if (x->dtype != TB_F32 || w->dtype != TB_F32 || y->dtype != TB_F32 || p->groups != 1 || x->ndim != 4 ||
        w->ndim != 4 || y->ndim != 4 || w->shape[3] != x->shape[3])
        return false;
    if (w->shape[1] == 1 && w->shape[2] == 1 && p->stride_h == 1 && p->stride_w == 1 && p->pad_h == 0 &&
        p->pad_w == 0)
        return false; /* a plain GEMM: the GEMM path's (see the header) */
    memset(key, 0, sizeof *key);
    key->n = x->shape[0], key->h = x->shape[1], key->w = x->shape[2], key->c = x->shape[3];
    key->k = w->shape[0], key->r = w->shape[1], key->s = w->shape[2];
    key->oh = y->shape[1], key->ow = y->shape[2];
    key->sh = p->stride_h, key->sw = p->stride_w, key->ph = p->pad_h, key->pw = p->pad_w;
    key->dh = p->dil_h, key->dw = p->dil_w, key->threads = be->threads > 0 ? be->threads : 1;
    return true;
}

static bool same_key(const conv_key *a, const conv_key *b) { return !memcmp(a, b, sizeof *a); }

static conv_entry *find_entry(const tb_cpu_onednn *st, const conv_key *key)
{
    for (int i = 0; i < st->count; i++)
        if (same_key(&st->entries[i]->key, key))
            return st->entries[i];
    return NULL;
}

/* The descriptors of one shape: x and y NHWC, w as the primitive likes it
 * (any) and as we keep it (OHWI), and the conv's geometry in oneDNN's terms
 * (dilation d-1, right padding whatever makes the output size ours). */
typedef struct conv_descs {
    dnnl_memory_desc_t x, y, w_any, w_plain;
    dnnl_dims_t strides, dilates, pad_l, pad_r;
} conv_descs;

static dnnl_status_t init_descs(conv_descs *d, const conv_key *k)
{
    dnnl_dims_t xd = {k->n, k->c, k->h, k->w}, yd = {k->n, k->k, k->oh, k->ow}, wd = {k->k, k->c, k->r, k->s};
    dnnl_status_t s = dnnl_memory_desc_init_by_tag(&d->x, 4, xd, dnnl_f32, dnnl_nhwc);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&d->y, 4, yd, dnnl_f32, dnnl_nhwc);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&d->w_any, 4, wd, dnnl_f32, dnnl_format_tag_any);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&d->w_plain, 4, wd, dnnl_f32, dnnl_ohwi);
    d->strides[0] = k->sh, d->strides[1] = k->sw;
    d->dilates[0] = k->dh - 1, d->dilates[1] = k->dw - 1;
    d->pad_l[0] = k->ph, d->pad_l[1] = k->pw;
    d->pad_r[0] = (k->oh - 1) * k->sh + (k->r - 1) * k->dh + 1 - k->h - k->ph;
    d->pad_r[1] = (k->ow - 1) * k->sw + (k->s - 1) * k->dw + 1 - k->w - k->pw;
    return s;
}

static dnnl_status_t memory_for(dnnl_memory_t *m, const dnnl_memory_desc_t *md, dnnl_engine_t engine)
{
    return dnnl_memory_create(m, md, engine, DNNL_MEMORY_NONE);
}

/* attr: scratchpad in user mode (from our workspace), plus dst += when sum. */
static dnnl_status_t make_attr(dnnl_primitive_attr_t *attr, bool sum)
{
    dnnl_status_t s = dnnl_primitive_attr_create(attr);
    if (s == dnnl_success)
        s = dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user);
    if (s == dnnl_success && sum) {
        dnnl_post_ops_t po;
        s = dnnl_post_ops_create(&po);
        if (s == dnnl_success) {
            s = dnnl_post_ops_append_sum(po, 1.0f);
            if (s == dnnl_success)
                s = dnnl_primitive_attr_set_post_ops(*attr, po);
            warn_failed(dnnl_post_ops_destroy(po), "destroying post-ops");
        }
    }
    return s;
}

/* The conv primitive of a descriptor and its memories; pd stays for hints. */
static dnnl_status_t make_conv(conv_dir *d, dnnl_primitive_desc_t *pd, const void *op_desc, dnnl_engine_t engine,
                               const_dnnl_primitive_desc_t hint, dnnl_query_t w_query,
                               const dnnl_memory_desc_t *in_md, const dnnl_memory_desc_t *out_md)
{
    dnnl_primitive_attr_t attr;
    dnnl_status_t s = make_attr(&attr, false);
    if (s != dnnl_success)
        return s;
    s = dnnl_primitive_desc_create(pd, op_desc, attr, engine, hint);
    warn_failed(dnnl_primitive_attr_destroy(attr), "destroying an attribute");
    if (s != dnnl_success)
        return s;
    const dnnl_memory_desc_t *w_md = dnnl_primitive_desc_query_md(*pd, w_query, 0);
    const dnnl_memory_desc_t *sp_md = dnnl_primitive_desc_query_md(*pd, dnnl_query_scratchpad_md, 0);
    d->w_bytes = dnnl_memory_desc_get_size(w_md);
    d->scratch_bytes = sp_md ? dnnl_memory_desc_get_size(sp_md) : 0;
    s = dnnl_primitive_create(&d->conv, *pd);
    if (s == dnnl_success)
        s = memory_for(&d->w_blocked, w_md, engine);
    if (s == dnnl_success && d->scratch_bytes)
        s = memory_for(&d->scratch, sp_md, engine);
    if (s == dnnl_success)
        s = memory_for(&d->act_in, in_md, engine);
    if (s == dnnl_success)
        s = memory_for(&d->act_out, out_md, engine);
    return s;
}

/* The reorder between the plain weights and the conv's: into the blocked
 * layout (to_blocked), or out of it, adding into the plain weights. */
static dnnl_status_t make_reorder(conv_dir *d, const dnnl_memory_desc_t *plain, dnnl_engine_t engine,
                                  bool to_blocked)
{
    const dnnl_memory_desc_t *blocked;
    dnnl_status_t s = dnnl_memory_get_memory_desc(d->w_blocked, &blocked);
    if (s != dnnl_success)
        return s;
    dnnl_primitive_attr_t attr;
    s = make_attr(&attr, !to_blocked);
    if (s != dnnl_success)
        return s;
    dnnl_primitive_desc_t pd;
    s = to_blocked ? dnnl_reorder_primitive_desc_create(&pd, plain, engine, blocked, engine, attr)
                   : dnnl_reorder_primitive_desc_create(&pd, blocked, engine, plain, engine, attr);
    warn_failed(dnnl_primitive_attr_destroy(attr), "destroying an attribute");
    if (s != dnnl_success)
        return s;
    const dnnl_memory_desc_t *sp_md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    d->reorder_scratch_bytes = sp_md ? dnnl_memory_desc_get_size(sp_md) : 0;
    s = dnnl_primitive_create(&d->reorder, pd);
    if (s == dnnl_success && d->reorder_scratch_bytes)
        s = memory_for(&d->reorder_scratch, sp_md, engine);
    if (s == dnnl_success)
        s = memory_for(&d->w_plain, plain, engine);
    warn_failed(dnnl_primitive_desc_destroy(pd), "destroying a primitive descriptor");
    return s;
}

/* All three directions of a shape; any failure (oneDNN declines the
 * geometry, e.g. padding it cannot express) leaves the shape to the GEMM path. */
static dnnl_status_t build_entry(conv_entry *e, tb_cpu_onednn *st)
{
    conv_descs d;
    dnnl_status_t s = init_descs(&d, &e->key);
    dnnl_convolution_desc_t fwd, bwd_data, bwd_weights;
    if (s == dnnl_success)
        s = dnnl_dilated_convolution_forward_desc_init(&fwd, dnnl_forward_training, dnnl_convolution_direct, &d.x,
                                                       &d.w_any, NULL, &d.y, d.strides, d.dilates, d.pad_l, d.pad_r);
    if (s == dnnl_success)
        s = dnnl_dilated_convolution_backward_data_desc_init(&bwd_data, dnnl_convolution_direct, &d.x, &d.w_any,
                                                             &d.y, d.strides, d.dilates, d.pad_l, d.pad_r);
    if (s == dnnl_success)
        s = dnnl_dilated_convolution_backward_weights_desc_init(&bwd_weights, dnnl_convolution_direct, &d.x,
                                                                &d.w_any, NULL, &d.y, d.strides, d.dilates,
                                                                d.pad_l, d.pad_r);
    if (s != dnnl_success)
        return s;
    dnnl_primitive_desc_t fwd_pd = NULL, pd = NULL;
    s = make_conv(&e->dir[DIR_FWD], &fwd_pd, &fwd, st->engine, NULL, dnnl_query_weights_md, &d.x, &d.y);
    if (s == dnnl_success)
        s = make_reorder(&e->dir[DIR_FWD], &d.w_plain, st->engine, true);
    if (s == dnnl_success) {
        s = make_conv(&e->dir[DIR_BWD_DATA], &pd, &bwd_data, st->engine, fwd_pd, dnnl_query_weights_md, &d.y, &d.x);
        if (pd)
            warn_failed(dnnl_primitive_desc_destroy(pd), "destroying a primitive descriptor");
        pd = NULL;
    }
    if (s == dnnl_success)
        s = make_reorder(&e->dir[DIR_BWD_DATA], &d.w_plain, st->engine, true);
    if (s == dnnl_success) {
        s = make_conv(&e->dir[DIR_BWD_WEIGHTS], &pd, &bwd_weights, st->engine, fwd_pd, dnnl_query_diff_weights_md,
                      &d.x, &d.y);
        if (pd)
            warn_failed(dnnl_primitive_desc_destroy(pd), "destroying a primitive descriptor");
    }
    if (s == dnnl_success)
        s = make_reorder(&e->dir[DIR_BWD_WEIGHTS], &d.w_plain, st->engine, false);
    if (fwd_pd)
        warn_failed(dnnl_primitive_desc_destroy(fwd_pd), "destroying a primitive descriptor");
    /* the backward data's output is staged, then added into dx */
    e->dir[DIR_BWD_DATA].stage_bytes = sizeof(float) * (size_t)(e->key.n * e->key.h * e->key.w * e->key.c);
    return s;
}

static size_t round64(size_t b) { return (b + 63) & ~(size_t)63; }

static size_t dir_bytes(const conv_dir *d)
{
    return round64(d->w_bytes) + round64(d->scratch_bytes) + round64(d->reorder_scratch_bytes) +
           round64(d->stage_bytes);
}

/* oneDNN sizes its kernels and scratchpads for omp_get_max_threads(). */
static int threads_begin(int threads)
{
    int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    return saved;
}

static conv_entry *lookup_or_build(tb_backend *be, const conv_key *key)
{
    tb_cpu_onednn *st = be->ctx;
    if (!st)
        return NULL;
    conv_entry *e = find_entry(st, key);
    if (e || st->count == ONEDNN_MAX_SHAPES)
        return e;
    e = calloc(1, sizeof *e);
    if (!e)
        return NULL; /* the GEMM path runs it, which needs no memory of its own */
    e->key = *key;
    int saved = threads_begin(key->threads);
    e->usable = build_entry(e, st) == dnnl_success;
    omp_set_num_threads(saved);
    if (!e->usable)
        for (int d = 0; d < DIR_COUNT; d++)
            release_dir(&e->dir[d]);
    st->entries[st->count++] = e;
    return e;
}

bool tb_cpu_conv2d_onednn_plan(tb_backend *be, const tb_tensor *y, const tb_tensor *x, const tb_tensor *w,
                               const tb_conv2d_params *p, size_t *bytes)
{
    conv_key key;
    *bytes = 0;
    if (!make_key(&key, be, y, x, w, p))
        return false;
    const conv_entry *e = lookup_or_build(be, &key);
    if (!e || !e->usable)
        return false;
    for (int d = 0; d < DIR_COUNT; d++) {
        size_t b = dir_bytes(&e->dir[d]);
        if (b > *bytes)
            *bytes = b;
    }
    return true;
}

/* ------------------------------------------------------------- execution */

/* The direction's buffers carved from the workspace: blocked weights,
 * scratchpads, staging. */
typedef struct dir_buffers {
    void *w_blocked, *scratch, *reorder_scratch;
    float *stage;
} dir_buffers;

static int carve(tb_backend *be, const conv_dir *d, dir_buffers *b, const char *op)
{
    if (be->workspace_size < dir_bytes(d))
        return tb_fail(TB_ERR_INVALID,
                       "cpu %s: needs %zu bytes of workspace, %zu reserved; reserve "
                       "tb_conv2d_workspace_size() at graph build",
                       op, dir_bytes(d), be->workspace_size);
    char *p = be->workspace;
    b->w_blocked = p, p += round64(d->w_bytes);
    b->scratch = p, p += round64(d->scratch_bytes);
    b->reorder_scratch = p, p += round64(d->reorder_scratch_bytes);
    b->stage = (float *)p;
    return TB_OK;
}

static dnnl_status_t set_handle(dnnl_memory_t m, const void *ptr)
{
    return m ? dnnl_memory_set_data_handle(m, (void *)ptr) : dnnl_success;
}

static dnnl_status_t run_reorder(tb_cpu_onednn *st, const conv_dir *d, const dir_buffers *b, const void *plain,
                                 bool to_blocked)
{
    dnnl_status_t s = set_handle(d->w_plain, plain);
    if (s == dnnl_success)
        s = set_handle(d->w_blocked, b->w_blocked);
    if (s == dnnl_success)
        s = set_handle(d->reorder_scratch, b->reorder_scratch);
    if (s != dnnl_success)
        return s;
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_FROM, to_blocked ? d->w_plain : d->w_blocked},
                               {DNNL_ARG_TO, to_blocked ? d->w_blocked : d->w_plain},
                               {DNNL_ARG_SCRATCHPAD, d->reorder_scratch}};
    return dnnl_primitive_execute(d->reorder, st->stream, d->reorder_scratch ? 3 : 2, args);
}

/* The conv of a direction: in_arg/out_arg name act_in/act_out, w_arg the weights. */
static dnnl_status_t run_conv(tb_cpu_onednn *st, const conv_dir *d, const dir_buffers *b, int in_arg,
                              const void *in, int w_arg, int out_arg, void *out)
{
    dnnl_status_t s = set_handle(d->act_in, in);
    if (s == dnnl_success)
        s = set_handle(d->act_out, out);
    if (s == dnnl_success)
        s = set_handle(d->w_blocked, b->w_blocked);
    if (s == dnnl_success)
        s = set_handle(d->scratch, b->scratch);
    if (s != dnnl_success)
        return s;
    dnnl_exec_arg_t args[4] = {{in_arg, d->act_in}, {out_arg, d->act_out}, {w_arg, d->w_blocked},
                               {DNNL_ARG_SCRATCHPAD, d->scratch}};
    return dnnl_primitive_execute(d->conv, st->stream, d->scratch ? 4 : 3, args);
}

/* The call's primitives (entry) and its buffers in the workspace. */
static int prepare(tb_backend *be, const tb_tensor *y, const tb_tensor *x, const tb_tensor *w,
                   const tb_conv2d_params *p, int dir, const char *op, const conv_entry **entry, dir_buffers *b)
{
    conv_key key;
    const conv_entry *e = make_key(&key, be, y, x, w, p) ? lookup_or_build(be, &key) : NULL;
    if (!e || !e->usable)
        return tb_fail(TB_ERR_INTERNAL, "cpu %s: oneDNN has no primitive for this conv (the GEMM path should run it)",
                       op);
    *entry = e;
    return carve(be, &e->dir[dir], b, op);
}

/* One direction on the backend's threads: the weights reorder before the
 * conv (forward, backward data: into the blocked layout) or after it
 * (backward weights: added into dw), then the wait. */
static int run_direction(tb_backend *be, const conv_entry *e, int dir, const dir_buffers *b, const void *w_plain,
                         int in_arg, const void *in, int out_arg, void *out, const char *what)
{
    tb_cpu_onednn *st = be->ctx;
    const conv_dir *d = &e->dir[dir];
    const bool weights_out = dir == DIR_BWD_WEIGHTS;
    int saved = threads_begin(e->key.threads);
    dnnl_status_t s = weights_out ? dnnl_success : run_reorder(st, d, b, w_plain, true);
    if (s == dnnl_success)
        s = run_conv(st, d, b, in_arg, in, weights_out ? DNNL_ARG_DIFF_WEIGHTS : DNNL_ARG_WEIGHTS, out_arg, out);
    if (s == dnnl_success && weights_out)
        s = run_reorder(st, d, b, w_plain, false);
    if (s == dnnl_success)
        s = dnnl_stream_wait(st->stream);
    omp_set_num_threads(saved);
    return s == dnnl_success ? TB_OK : onednn_fail(s, what);
}

/* y[pixel, :] += bias over every output pixel. */
static void add_bias(float *y, const float *bias, int64_t pixels, int64_t k, int threads)
{
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t i = 0; i < pixels; i++)
        for (int64_t kk = 0; kk < k; kk++)
            y[i * k + kk] += bias[kk];
}

int tb_cpu_conv2d_onednn_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *w,
                                 const tb_tensor *bias, const tb_conv2d_params *p)
{
    const conv_entry *e = NULL;
    dir_buffers b = {0};
    TB_TRY(prepare(be, y, x, w, p, DIR_FWD, "conv2d_forward", &e, &b));
    TB_TRY(run_direction(be, e, DIR_FWD, &b, w->data, DNNL_ARG_SRC, x->data, DNNL_ARG_DST, y->data,
                         "conv2d forward"));
    if (bias)
        add_bias(y->data, bias->data, e->key.n * e->key.oh * e->key.ow, e->key.k, e->key.threads);
    return TB_OK;
}

/* dx += the staged gradient. */
static void add_into(float *dx, const float *g, int64_t count, int threads)
{
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t i = 0; i < count; i++)
        dx[i] += g[i];
}

int tb_cpu_conv2d_onednn_backward_data(tb_backend *be, tb_tensor *dx, const tb_tensor *dy, const tb_tensor *w,
                                       const tb_conv2d_params *p)
{
    const conv_entry *e = NULL;
    dir_buffers b = {0};
    TB_TRY(prepare(be, dy, dx, w, p, DIR_BWD_DATA, "conv2d_backward_data", &e, &b));
    TB_TRY(run_direction(be, e, DIR_BWD_DATA, &b, w->data, DNNL_ARG_DIFF_DST, dy->data, DNNL_ARG_DIFF_SRC, b.stage,
                         "conv2d backward data"));
    add_into(dx->data, b.stage, tb_numel(dx), e->key.threads);
    return TB_OK;
}

/* dbias[kk] += sum of dy[:, kk] over the pixels, in pixel order: each
 * channel block is one task, so the sums do not depend on the threads. */
static void bias_grad(tb_tensor *dbias, const float *dy, int64_t pixels, int64_t k, int threads)
{
    const int64_t blocks = (k + ONEDNN_BIAS_BLOCK - 1) / ONEDNN_BIAS_BLOCK;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t blk = 0; blk < blocks; blk++) {
        const int64_t k0 = blk * ONEDNN_BIAS_BLOCK, len = k - k0 < ONEDNN_BIAS_BLOCK ? k - k0 : ONEDNN_BIAS_BLOCK;
        float acc[ONEDNN_BIAS_BLOCK] = {0};
        for (int64_t i = 0; i < pixels; i++)
            for (int64_t j = 0; j < len; j++)
                acc[j] += dy[i * k + k0 + j];
        tb_cpu_accum_row(dbias, k0, acc, len);
    }
}

int tb_cpu_conv2d_onednn_backward_filter(tb_backend *be, tb_tensor *dw, tb_tensor *dbias, const tb_tensor *dy,
                                         const tb_tensor *x, const tb_conv2d_params *p)
{
    const conv_entry *e = NULL;
    dir_buffers b = {0};
    TB_TRY(prepare(be, dy, x, dw, p, DIR_BWD_WEIGHTS, "conv2d_backward_filter", &e, &b));
    /* dw += the blocked gradient, by the reorder's sum post-op */
    TB_TRY(run_direction(be, e, DIR_BWD_WEIGHTS, &b, dw->data, DNNL_ARG_SRC, x->data, DNNL_ARG_DIFF_DST,
                         (void *)dy->data, "conv2d backward weights"));
    if (dbias)
        bias_grad(dbias, dy->data, e->key.n * e->key.oh * e->key.ow, e->key.k, e->key.threads);
    return TB_OK;
}
