/* The static graph: building, planning into arenas, forward and backward.
 * See models/graph.h for the model of use. */
#include "models/graph.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/error.h"
#include "kernels/rng.h"

#define TB_ALIGN 256 /* every tensor starts on a 256-byte boundary (cuDNN/cuBLAS friendly) */

typedef struct node {
    tb_node_kind kind;
    char name[TB_NAME_LEN];
    int *in;          /* input values */
    int n_in;
    int out;          /* output value */
    int p_w, p_b;     /* conv/linear weight and bias, BN gamma and beta; -1 when absent */
    int buf_mean, buf_var;
    tb_conv_spec spec;
    tb_conv2d_params conv;
    tb_pool_params pool;
    float eps, momentum, drop_p;
    unsigned flags;
    int part;         /* tb_g_begin_part index */
    bool bn_frozen;   /* BN: running statistics in training too, no update */
    tb_roi_align_params roi;
    tb_tensor save_mean, save_invstd; /* BN */
    tb_tensor mask;                   /* dropout */
    /* fusion (fuse_bn_relus): a ReLU that absorbed the BN before it (and the
     * residual add between them) runs batchnorm_relu with that BN's state;
     * the absorbed nodes are dead and never run */
    int fused_bn;                     /* index of the absorbed BN node, -1 none */
    int fused_z;                      /* the value added before the ReLU, -1 none */
    bool dz_write;                    /* the first backward writer of fused_z's gradient (plan_dz_writes) */
    tb_tensor reserve;                /* u8, the fused op's reserve space */
    int zero_first, zero_n;           /* g->grad_zero[zero_first..+zero_n]: gradients zeroed before its backward */
    bool dead;
} node;

typedef struct value {
    tb_tensor t;
    tb_tensor grad;
    int producer;     /* node index, -1 for the input */
    int consumers;
    int alias_of;     /* value whose activation memory this one reuses (in-place ReLU), -1 none */
    bool needs_grad;  /* something trainable lies upstream: backward writes its gradient */
    bool dead;        /* produced only inside a fused node: no memory */
    bool zero_at_step; /* gradient zeroed by tb_graph_zero_grads (outputs, values without a producer) */
} value;

#define TB_MAX_OUTPUTS 8

struct tb_graph {
    tb_backend *be;
    tb_dtype dtype;
    int batch;
    int status;
    bool finalized, allocated;

    node *nodes;
    int n_nodes, cap_nodes;
    value *values;
    int n_values, cap_values;
    tb_param *params;
    int n_params, cap_params;
    tb_buffer *buffers;
    int n_buffers, cap_buffers;

    int input, output;
    int outputs[TB_MAX_OUTPUTS];
    int n_outputs;
    int cur_part;
    bool mode_frozen, mode_bn_frozen;
    bool fuse;        /* fuse BN (+ add) + ReLU at finalize */
    bool inference;   /* forward(train=false) only: no gradients, optimizer or saved state; activations share memory */
    int64_t macs;
    int64_t bn_batches_tracked;
    uint64_t seed, step;
    const tb_tensor *step_source; /* i32 {1} holding step when a training forward runs, or NULL */

    tb_param_group groups[2];
    bool group_used[2];
    void *mem_params[2][5];   /* master, value, grad, momentum, decay mask per group */
    void *mem_buffers, *mem_act, *mem_grad, *mem_saved;
    int *grad_zero;           /* values whose gradients a node zeroes before its backward, node after node */
    size_t act_bytes, grad_bytes, saved_bytes, buffer_bytes;
};

/* ------------------------------------------------------------ utilities */

static size_t align_up(size_t n) { return (n + TB_ALIGN - 1) & ~(size_t)(TB_ALIGN - 1); }

static int grow(void **arr, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return TB_OK;
    int ncap = *cap ? *cap * 2 : 16;
    while (ncap < need)
        ncap *= 2;
    void *p = realloc(*arr, (size_t)ncap * elem);
    if (!p)
        return tb_fail(TB_ERR_NOMEM, "graph: out of memory while building");
    memset((char *)p + (size_t)*cap * elem, 0, (size_t)(ncap - *cap) * elem);
    *arr = p;
    *cap = ncap;
    return TB_OK;
}

/* Records the first builder error; later calls see it and return -1. */
static int fail(tb_graph *g, int code)
{
    if (g->status == TB_OK)
        g->status = code;
    return -1;
}

static bool bad_value(tb_graph *g, tb_value v)
{
    if (g->status != TB_OK)
        return true;
    if (g->finalized) {
        fail(g, tb_fail(TB_ERR_INVALID, "graph: cannot add nodes after tb_graph_finalize"));
        return true;
    }
    if (v < 0 || v >= g->n_values) {
        fail(g, tb_fail(TB_ERR_INVALID, "graph: value %d does not exist (graph has %d)", v, g->n_values));
        return true;
    }
    return false;
}

static int new_value(tb_graph *g, int ndim, const int64_t *shape, int producer)
{
    if (grow((void **)&g->values, &g->cap_values, g->n_values + 1, sizeof(value)))
        return fail(g, TB_ERR_NOMEM);
    value *v = &g->values[g->n_values];
    memset(v, 0, sizeof *v);
    v->t = tb_tensor_make(NULL, g->dtype, ndim, shape);
    v->grad = tb_tensor_1d(NULL, g->dtype, 0); /* sized by set_needs_grad when it needs one */
    v->producer = producer;
    v->alias_of = -1;
    return g->n_values++;
}

static node *new_node(tb_graph *g, tb_node_kind kind, const char *name, const int *in, int n_in)
{
    if (grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof(node))) {
        fail(g, TB_ERR_NOMEM);
        return NULL;
    }
    node *nd = &g->nodes[g->n_nodes];
    memset(nd, 0, sizeof *nd);
    nd->kind = kind;
    snprintf(nd->name, sizeof nd->name, "%s", name ? name : "");
    nd->in = malloc(sizeof(int) * (size_t)(n_in > 0 ? n_in : 1));
    if (!nd->in) {
        fail(g, tb_fail(TB_ERR_NOMEM, "graph: out of memory while building"));
        return NULL;
    }
    memcpy(nd->in, in, sizeof(int) * (size_t)n_in);
    nd->n_in = n_in;
    nd->p_w = nd->p_b = nd->buf_mean = nd->buf_var = -1;
    nd->fused_bn = nd->fused_z = -1;
    nd->part = g->cur_part;
    g->n_nodes++;
    for (int i = 0; i < n_in; i++)
        g->values[in[i]].consumers++;
    return nd;
}

static bool param_frozen(const tb_graph *g, int p) { return p >= 0 && (g->params[p].flags & TB_PARAM_FROZEN); }

static void set_needs_grad(value *v, bool needs)
{
    v->needs_grad = needs;
    v->grad = needs ? v->t : tb_tensor_1d(NULL, v->t.dtype, 0);
}

/* Adds the node's output value; returns its index (or -1). The output needs a
 * gradient when an input does or the node has a trainable parameter. */
static int finish_node(tb_graph *g, node *nd, int ndim, const int64_t *shape)
{
    /* new_value grows only the value array, so nd stays valid */
    int v = new_value(g, ndim, shape, (int)(nd - g->nodes));
    if (v < 0)
        return -1;
    nd->out = v;
    bool needs = (nd->p_w >= 0 && !param_frozen(g, nd->p_w)) || (nd->p_b >= 0 && !param_frozen(g, nd->p_b));
    for (int i = 0; i < nd->n_in; i++)
        needs = needs || g->values[nd->in[i]].needs_grad;
    set_needs_grad(&g->values[v], needs);
    return v;
}

static int add_param(tb_graph *g, const char *module, const char *suffix, tb_param_role role, int ndim,
                     const int64_t *shape, int64_t fan_in, int64_t fan_out, unsigned flags)
{
    if (grow((void **)&g->params, &g->cap_params, g->n_params + 1, sizeof(tb_param)))
        return fail(g, TB_ERR_NOMEM);
    tb_param *p = &g->params[g->n_params];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s%s%s", module, *module ? "." : "", suffix);
    p->role = role;
    bool bn = role == TB_ROLE_BN_GAMMA || role == TB_ROLE_BN_BETA;
    p->flags = flags | ((g->mode_frozen || (bn && g->mode_bn_frozen)) ? TB_PARAM_FROZEN : 0u);
    p->group = (g->dtype == TB_F32 || bn) ? TB_GROUP_F32 : TB_GROUP_LOWP;
    p->fan_in = fan_in;
    p->fan_out = fan_out;
    p->master = tb_tensor_make(NULL, TB_F32, ndim, shape);
    p->value = tb_tensor_make(NULL, p->group == TB_GROUP_LOWP ? g->dtype : TB_F32, ndim, shape);
    p->grad = p->value;
    return g->n_params++;
}

static int add_buffer(tb_graph *g, const char *module, const char *suffix, int64_t c)
{
    if (grow((void **)&g->buffers, &g->cap_buffers, g->n_buffers + 1, sizeof(tb_buffer)))
        return fail(g, TB_ERR_NOMEM);
    tb_buffer *b = &g->buffers[g->n_buffers];
    snprintf(b->name, sizeof b->name, "%s%s%s", module, *module ? "." : "", suffix);
    b->t = tb_tensor_1d(NULL, TB_F32, c);
    return g->n_buffers++;
}

static int64_t channels_of(const tb_tensor *t) { return t->shape[t->ndim - 1]; }

/* ------------------------------------------------------------- building */

int tb_graph_create(tb_graph **out, tb_backend *be, tb_dtype dtype, int batch)
{
    *out = NULL;
    TB_CHECK(be != NULL, TB_ERR_INVALID, "graph: no backend given");
    TB_CHECK(tb_dtype_is_float(dtype), TB_ERR_INVALID, "graph: activations must be f32, f16 or bf16, not %s",
             tb_dtype_name(dtype));
    TB_CHECK(batch >= 1, TB_ERR_INVALID, "graph: batch must be >= 1 (got %d)", batch);
    tb_graph *g = calloc(1, sizeof *g);
    TB_CHECK(g != NULL, TB_ERR_NOMEM, "graph: out of memory");
    g->be = be;
    g->dtype = dtype;
    g->batch = batch;
    g->input = g->output = -1;
    g->seed = 0x7b5eedull;
    const char *no_fuse = getenv("TRICKBENCH_NO_FUSE");
    g->fuse = !(no_fuse && *no_fuse && strcmp(no_fuse, "0") != 0);
    *out = g;
    return TB_OK;
}

tb_value tb_g_input(tb_graph *g, int h, int w, int c)
{
    if (g->status != TB_OK)
        return -1;
    if (g->input >= 0)
        return fail(g, tb_fail(TB_ERR_INVALID, "graph: the input is already defined"));
    if (h < 1 || w < 1 || c < 1)
        return fail(g, tb_fail(TB_ERR_INVALID, "graph: input size %dx%dx%d is invalid", h, w, c));
    int64_t shape[4] = {g->batch, h, w, c};
    g->input = new_value(g, 4, shape, -1);
    return g->input;
}

tb_value tb_g_conv(tb_graph *g, const char *name, tb_value x, tb_conv_spec s)
{
    if (bad_value(g, x))
        return -1;
    const tb_tensor *xt = &g->values[x].t;
    if (xt->ndim != 4)
        return fail(g, tb_fail(TB_ERR_INVALID, "graph: conv %s needs a 4-D input", name));
    int64_t c = xt->shape[3];
    if (s.groups < 1)
        s.groups = 1;
    if (s.dilation < 1)
        s.dilation = 1;
    if (s.stride < 1)
        s.stride = 1;
    if (s.k < 1 || s.kh < 1 || s.kw < 1 || c % s.groups || s.k % s.groups)
        return fail(g, tb_fail(TB_ERR_INVALID, "graph: conv %s: k=%d kernel %dx%d groups %d invalid for %lld input channels",
                               name, s.k, s.kh, s.kw, s.groups, (long long)c));
    tb_conv2d_params p = {s.stride, s.stride, s.pad_h, s.pad_w, s.dilation, s.dilation, s.groups};
    int64_t oh = tb_conv2d_out_size(xt->shape[1], s.kh, s.stride, s.pad_h, s.dilation);
    int64_t ow = tb_conv2d_out_size(xt->shape[2], s.kw, s.stride, s.pad_w, s.dilation);
    if (oh < 1 || ow < 1)
        return fail(g, tb_fail(TB_ERR_INVALID, "graph: conv %s: kernel %dx%d does not fit input %lldx%lld",
                               name, s.kh, s.kw, (long long)xt->shape[1], (long long)xt->shape[2]));
    int in[1] = {x};
    node *nd = new_node(g, TB_NODE_CONV, name, in, 1);
    if (!nd)
        return -1;
    int ni = (int)(nd - g->nodes);
    nd->spec = s;
    nd->conv = p;
    int64_t cg = c / s.groups;
    int64_t wshape[4] = {s.k, s.kh, s.kw, cg};
    int pw = add_param(g, name, "weight", TB_ROLE_CONV_WEIGHT, 4, wshape, cg * s.kh * s.kw,
                       (int64_t)s.k / s.groups * s.kh * s.kw, 0);
    int pb = -1;
    if (s.bias) {
        int64_t bshape[1] = {s.k};
        pb = add_param(g, name, "bias", TB_ROLE_BIAS, 1, bshape, cg * s.kh * s.kw, s.k, 0);
    }
    g->nodes[ni].p_w = pw;
    g->nodes[ni].p_b = pb;
    g->macs += oh * ow * s.k * s.kh * s.kw * cg;
    int64_t yshape[4] = {xt->shape[0], oh, ow, s.k};
    return finish_node(g, &g->nodes[ni], 4, yshape);
}

tb_value tb_g_bn(tb_graph *g, const char *name, tb_value x, float eps, float momentum, unsigned flags)
{
    if (bad_value(g, x))
        return -1;
    tb_tensor xt = g->values[x].t;
    int64_t c = channels_of(&xt);
    int in[1] = {x};
    node *nd = new_node(g, TB_NODE_BN, name, in, 1);
    if (!nd)
        return -1;
    int ni = (int)(nd - g->nodes);
    nd->eps = eps;
    nd->momentum = momentum;
    nd->flags = flags;
    nd->bn_frozen = g->mode_bn_frozen;
    nd->save_mean = tb_tensor_1d(NULL, TB_F32, c);
    nd->save_invstd = tb_tensor_1d(NULL, TB_F32, c);
    int64_t shape[1] = {c};
    int pg = add_param(g, name, "weight", TB_ROLE_BN_GAMMA, 1, shape, c, c, flags);
    int pb = add_param(g, name, "bias", TB_ROLE_BN_BETA, 1, shape, c, c, flags);
    int bm = add_buffer(g, name, "running_mean", c);
    int bv = add_buffer(g, name, "running_var", c);
    nd = &g->nodes[ni];
    nd->p_w = pg;
    nd->p_b = pb;
    nd->buf_mean = bm;
    nd->buf_var = bv;
    return finish_node(g, nd, xt.ndim, xt.shape);
}

static tb_value unary(tb_graph *g, tb_node_kind kind, tb_value x, int ndim, const int64_t *shape, node **out_nd)
{
    int in[1] = {x};
    node *nd = new_node(g, kind, "", in, 1);
    if (!nd)
        return -1;
    int ni = (int)(nd - g->nodes);
    int v = finish_node(g, nd, ndim, shape);
    if (out_nd)
        *out_nd = v >= 0 ? &g->nodes[ni] : NULL;
    return v;
}

tb_value tb_g_relu(tb_graph *g, tb_value x)
{
    if (bad_value(g, x))
        return -1;
    tb_tensor xt = g->values[x].t;
    return unary(g, TB_NODE_RELU, x, xt.ndim, xt.shape, NULL);
}

static tb_value pool(tb_graph *g, tb_node_kind kind, tb_value x, tb_pool_params p)
{
    if (bad_value(g, x))
        return -1;
    tb_tensor xt = g->values[x].t;
    if (xt.ndim != 4)
        return fail(g, tb_fail(TB_ERR_INVALID, "graph: pooling needs a 4-D input"));
    int64_t oh = tb_pool_out_size(xt.shape[1], p.kernel_h, p.stride_h, p.pad_h, p.ceil_mode);
    int64_t ow = tb_pool_out_size(xt.shape[2], p.kernel_w, p.stride_w, p.pad_w, p.ceil_mode);
    if (oh < 1 || ow < 1)
        return fail(g, tb_fail(TB_ERR_INVALID, "graph: pool %dx%d stride %d does not fit input %lldx%lld",
                               p.kernel_h, p.kernel_w, p.stride_h, (long long)xt.shape[1],
                               (long long)xt.shape[2]));
    int64_t shape[4] = {xt.shape[0], oh, ow, xt.shape[3]};
    node *nd = NULL;
    int v = unary(g, kind, x, 4, shape, &nd);
    if (nd)
        nd->pool = p;
    return v;
}

tb_value tb_g_maxpool(tb_graph *g, tb_value x, tb_pool_params p) { return pool(g, TB_NODE_MAXPOOL, x, p); }

tb_value tb_g_avgpool(tb_graph *g, tb_value x, tb_pool_params p) { return pool(g, TB_NODE_AVGPOOL, x, p); }

tb_value tb_g_global_avgpool(tb_graph *g, tb_value x)
{
    if (bad_value(g, x))
        return -1;
    tb_tensor xt = g->values[x].t;
    if (xt.ndim != 4)
        return fail(g, tb_fail(TB_ERR_INVALID, "graph: global average pool needs a 4-D input"));
    int64_t shape[2] = {xt.shape[0], xt.shape[3]};
    return unary(g, TB_NODE_GLOBAL_AVGPOOL, x, 2, shape, NULL);
}

tb_value tb_g_linear(tb_graph *g, const char *name, tb_value x, int k, bool bias)
{
    if (bad_value(g, x))
        return -1;
    tb_tensor xt = g->values[x].t;
    if (xt.ndim != 2 || k < 1)
        return fail(g, tb_fail(TB_ERR_INVALID, "graph: linear %s needs a 2-D input and k >= 1", name));
    int64_t c = xt.shape[1];
    int in[1] = {x};
    node *nd = new_node(g, TB_NODE_LINEAR, name, in, 1);
    if (!nd)
        return -1;
    int ni = (int)(nd - g->nodes);
    int64_t wshape[2] = {k, c}, bshape[1] = {k};
    int pw = add_param(g, name, "weight", TB_ROLE_LINEAR_WEIGHT, 2, wshape, c, k, 0);
    int pb = bias ? add_param(g, name, "bias", TB_ROLE_BIAS, 1, bshape, c, k, 0) : -1;
    g->nodes[ni].p_w = pw;
    g->nodes[ni].p_b = pb;
    g->macs += c * k;
    int64_t yshape[2] = {xt.shape[0], k};
    return finish_node(g, &g->nodes[ni], 2, yshape);
}

tb_value tb_g_add(tb_graph *g, tb_value a, tb_value b)
{
    if (bad_value(g, a) || bad_value(g, b))
        return -1;
    tb_tensor at = g->values[a].t, bt = g->values[b].t;
    if (!tb_same_shape(&at, &bt)) {
        char sa[64], sb[64];
        return fail(g, tb_fail(TB_ERR_INVALID, "graph: add of %s and %s: shapes differ",
                               tb_shape_str(&at, sa, sizeof sa), tb_shape_str(&bt, sb, sizeof sb)));
    }
    int in[2] = {a, b};
    node *nd = new_node(g, TB_NODE_ADD, "", in, 2);
    if (!nd)
        return -1;
    return finish_node(g, nd, at.ndim, at.shape);
}

tb_value tb_g_concat(tb_graph *g, const tb_value *xs, int count)
{
    if (count < 1)
        return fail(g, tb_fail(TB_ERR_INVALID, "graph: concat of no inputs"));
    for (int i = 0; i < count; i++)
        if (bad_value(g, xs[i]))
            return -1;
    tb_tensor t0 = g->values[xs[0]].t;
    int64_t c = 0;
    for (int i = 0; i < count; i++) {
        tb_tensor ti = g->values[xs[i]].t;
        bool ok = ti.ndim == t0.ndim;
        for (int d = 0; ok && d < t0.ndim - 1; d++)
            ok = ti.shape[d] == t0.shape[d];
        if (!ok)
            return fail(g, tb_fail(TB_ERR_INVALID, "graph: concat input %d differs from input 0 outside channels", i));
        c += channels_of(&ti);
    }
    node *nd = new_node(g, TB_NODE_CONCAT, "", xs, count);
    if (!nd)
        return -1;
    int64_t shape[4];
    memcpy(shape, t0.shape, sizeof shape);
    shape[t0.ndim - 1] = c;
    return finish_node(g, nd, t0.ndim, shape);
}

tb_value tb_g_dropout(tb_graph *g, tb_value x, float p)
{
    if (bad_value(g, x))
        return -1;
    if (!(p >= 0.0f && p < 1.0f))
        return fail(g, tb_fail(TB_ERR_INVALID, "graph: dropout probability %g not in [0, 1)", (double)p));
    tb_tensor xt = g->values[x].t;
    node *nd = NULL;
    int v = unary(g, TB_NODE_DROPOUT, x, xt.ndim, xt.shape, &nd);
    if (nd) {
        nd->drop_p = p;
        nd->mask = tb_tensor_make(NULL, TB_U8, xt.ndim, xt.shape);
    }
    return v;
}

int tb_g_set_output(tb_graph *g, tb_value v)
{
    if (bad_value(g, v))
        return g->status ? g->status : TB_ERR_INVALID;
    if (g->values[v].t.ndim != 2)
        return fail(g, tb_fail(TB_ERR_INVALID, "graph: the output must be 2-D logits {n, k}")), g->status;
    g->output = v;
    g->outputs[0] = v;
    if (g->n_outputs == 0)
        g->n_outputs = 1;
    return TB_OK;
}

tb_value tb_g_resize_bilinear(tb_graph *g, tb_value x, int oh, int ow)
{
    if (bad_value(g, x))
        return -1;
    tb_tensor xt = g->values[x].t;
    if (xt.ndim != 4 || oh < 1 || ow < 1)
        return fail(g, tb_fail(TB_ERR_INVALID, "graph: resize to %dx%d needs a 4-D input", oh, ow));
    int64_t shape[4] = {xt.shape[0], oh, ow, xt.shape[3]};
    return unary(g, TB_NODE_RESIZE, x, 4, shape, NULL);
}

int tb_g_add_output(tb_graph *g, tb_value v)
{
    if (bad_value(g, v))
        return -1;
    if (g->n_outputs == TB_MAX_OUTPUTS)
        return fail(g, tb_fail(TB_ERR_INVALID, "graph: more than %d outputs", TB_MAX_OUTPUTS));
    if (!g->values[v].needs_grad)
        return fail(g, tb_fail(TB_ERR_INVALID, "graph: output value %d has nothing trainable upstream", v));
    g->outputs[g->n_outputs] = v;
    if (g->n_outputs == 0)
        g->output = v;
    return g->n_outputs++;
}

void tb_g_set_frozen(tb_graph *g, bool frozen) { g->mode_frozen = frozen; }
void tb_g_set_fusion(tb_graph *g, bool fuse) { g->fuse = fuse; }
void tb_g_set_inference(tb_graph *g, bool inference) { g->inference = inference; }
void tb_g_set_bn_frozen(tb_graph *g, bool frozen) { g->mode_bn_frozen = frozen; }

int tb_g_begin_part(tb_graph *g)
{
    if (g->status != TB_OK)
        return -1;
    return ++g->cur_part;
}

tb_value tb_g_external(tb_graph *g, tb_dtype dtype, int ndim, const int64_t *shape)
{
    if (g->status != TB_OK)
        return -1;
    if (ndim < 1 || ndim > 4)
        return fail(g, tb_fail(TB_ERR_INVALID, "graph: external value of rank %d (1-4 allowed)", ndim));
    for (int d = 0; d < ndim; d++)
        if (shape[d] < 1)
            return fail(g, tb_fail(TB_ERR_INVALID, "graph: external value with dimension %d of size %lld", d,
                                   (long long)shape[d]));
    int v = new_value(g, ndim, shape, -1);
    if (v < 0)
        return -1;
    g->values[v].t.dtype = dtype;
    set_needs_grad(&g->values[v], false);
    return v;
}

tb_value tb_g_roi_align(tb_graph *g, tb_value x, tb_value rois, tb_roi_align_params p)
{
    if (bad_value(g, x) || bad_value(g, rois))
        return -1;
    tb_tensor xt = g->values[x].t, rt = g->values[rois].t;
    if (xt.ndim != 4 || rt.ndim != 2 || rt.shape[1] != 5 || rt.dtype != TB_F32)
        return fail(g, tb_fail(TB_ERR_INVALID, "graph: roi_align needs a 4-D feature map and f32 rois {r, 5}"));
    if (p.pooled_h < 1 || p.pooled_w < 1 || !(p.spatial_scale > 0.0f))
        return fail(g, tb_fail(TB_ERR_INVALID, "graph: roi_align pooled %dx%d scale %g invalid", p.pooled_h,
                               p.pooled_w, (double)p.spatial_scale));
    int in[2] = {x, rois};
    node *nd = new_node(g, TB_NODE_ROI_ALIGN, "", in, 2);
    if (!nd)
        return -1;
    nd->roi = p;
    int64_t shape[4] = {rt.shape[0], p.pooled_h, p.pooled_w, xt.shape[3]};
    return finish_node(g, nd, 4, shape);
}

/* ------------------------------------------------------------- planning */

static bool is_output(const tb_graph *g, int v)
{
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == v)
            return true;
    return false;
}

/* The training BN that produced v, read only by its one consumer, in `part`
 * (frozen BNs keep their own eval-mode backward; a BN whose input takes no
 * gradient stays apart too, because cuDNN's backward always writes dx);
 * -1 if none. */
static int fusable_bn(const tb_graph *g, int v, int part)
{
    const value *val = &g->values[v];
    if (val->producer < 0 || val->consumers != 1 || is_output(g, v))
        return -1;
    const node *p = &g->nodes[val->producer];
    if (p->kind != TB_NODE_BN || p->bn_frozen || p->dead || p->part != part || !g->values[p->in[0]].needs_grad)
        return -1;
    return val->producer;
}

/* BN -> ReLU and BN -> add -> ReLU, each intermediate value read only by
 * the next node, become one batchnorm_relu run by the ReLU node (which
 * comes after every input: nodes run in build order). When both inputs of
 * the add are BN outputs (a projection shortcut), the first one is fused
 * and the other becomes z. */
static void fuse_bn_relus(tb_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++) {
        node *r = &g->nodes[i];
        if (r->kind != TB_NODE_RELU || r->dead)
            continue;
        int v = r->in[0];
        int bn = fusable_bn(g, v, r->part), add = -1, z = -1;
        if (bn < 0) {
            const value *val = &g->values[v];
            if (val->producer < 0 || val->consumers != 1 || is_output(g, v))
                continue;
            node *a = &g->nodes[val->producer];
            if (a->kind != TB_NODE_ADD || a->dead || a->part != r->part || a->in[0] == a->in[1])
                continue;
            for (int k = 0; k < 2 && bn < 0; k++) {
                bn = fusable_bn(g, a->in[k], r->part);
                z = a->in[1 - k];
            }
            if (bn < 0)
                continue;
            add = val->producer;
        }
        r->fused_bn = bn;
        r->fused_z = add >= 0 ? z : -1;
        g->nodes[bn].dead = true;
        g->values[g->nodes[bn].out].dead = true;
        if (add >= 0) {
            g->nodes[add].dead = true;
            g->values[g->nodes[add].out].dead = true;
        }
    }
}

/* Whether the backward of live node j writes the gradient of value v: a
 * fused node writes its absorbed BN's input and its z, any other node its
 * inputs (a dead node writes nothing: its absorber does, at its index). */
static bool writes_grad_of(const tb_graph *g, int j, int v)
{
    const node *nd = &g->nodes[j];
    if (nd->dead)
        return false;
    if (nd->fused_bn >= 0)
        return nd->fused_z == v || g->nodes[nd->fused_bn].in[0] == v;
    for (int k = 0; k < nd->n_in; k++)
        if (nd->in[k] == v)
            return true;
    return false;
}

/* A fused node whose backward is the first to write the shortcut's gradient
 * stores it instead of adding it to zeros (tb_batchnorm_relu_backward's
 * dz_write). Backward runs the nodes in reverse build order, so that is
 * when no later node writes z's gradient, z is no output (the loss seeds
 * those) and not the BN's own input (dx and dz would be one tensor). */
static void plan_dz_writes(tb_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++) {
        node *nd = &g->nodes[i];
        int z = nd->fused_z;
        if (nd->dead || nd->fused_bn < 0 || z < 0 || is_output(g, z) || g->nodes[nd->fused_bn].in[0] == z)
            continue;
        bool written_later = false;
        for (int j = i + 1; j < g->n_nodes && !written_later; j++)
            written_later = writes_grad_of(g, j, z);
        nd->dz_write = !written_later;
    }
}

/* In-place ReLU: its input may be overwritten when nothing else reads it and
 * its producer's backward does not need its own output (ReLU and max pool do;
 * so does a fused ReLU, which is a RELU node). */
static void plan_inplace_relus(tb_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++) {
        node *nd = &g->nodes[i];
        if (nd->kind != TB_NODE_RELU || nd->fused_bn >= 0)
            continue;
        value *in = &g->values[nd->in[0]];
        if (in->consumers != 1 || in->producer < 0 || is_output(g, nd->in[0]))
            continue;
        tb_node_kind pk = g->nodes[in->producer].kind;
        if (pk == TB_NODE_RELU || pk == TB_NODE_MAXPOOL)
            continue;
        g->values[nd->out].alias_of = in->alias_of >= 0 ? in->alias_of : nd->in[0];
    }
}

static const tb_tensor *fused_x(tb_graph *g, const node *nd) { return &g->values[g->nodes[nd->fused_bn].in[0]].t; }

static size_t workspace_needed(tb_graph *g)
{
    size_t ws = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        node *nd = &g->nodes[i];
        if (nd->fused_bn >= 0) {
            size_t s = tb_batchnorm_relu_workspace_size(g->be, fused_x(g, nd), nd->fused_z >= 0);
            if (s > ws)
                ws = s;
        } else if (nd->kind == TB_NODE_CONV) {
            size_t s = tb_conv2d_workspace_size(g->be, &g->values[nd->out].t, &g->values[nd->in[0]].t,
                                                &g->params[nd->p_w].value, &nd->conv);
            if (s > ws)
                ws = s;
        } else if (nd->kind == TB_NODE_ROI_ALIGN) {
            size_t s = tb_roi_align_workspace_size(g->be, &g->values[nd->in[0]].t, &g->values[nd->in[1]].t, &nd->roi);
            if (s > ws)
                ws = s;
        } else if (nd->kind == TB_NODE_LINEAR && g->dtype != TB_F32) {
            /* low-precision GEMMs stage x, w and y (or their gradients) in f32 */
            const tb_tensor *x = &g->values[nd->in[0]].t, *y = &g->values[nd->out].t;
            size_t s = 4 * (size_t)(tb_numel(x) + tb_numel(&g->params[nd->p_w].value) + tb_numel(y));
            if (s > ws)
                ws = s;
        }
    }
    return ws;
}

static int alloc_group(tb_graph *g, int gi, int64_t count)
{
    tb_param_group *grp = &g->groups[gi];
    tb_dtype vdt = gi == TB_GROUP_LOWP ? g->dtype : TB_F32;
    bool train = !g->inference;
    size_t bytes[5] = {(size_t)count * 4, gi == TB_GROUP_LOWP ? (size_t)count * tb_dtype_size(vdt) : 0,
                       train ? (size_t)count * tb_dtype_size(vdt) : 0, train ? (size_t)count * 4 : 0,
                       train ? (size_t)count : 0};
    for (int k = 0; k < 5; k++)
        if (bytes[k])
            TB_TRY(tb_alloc(g->be, &g->mem_params[gi][k], bytes[k]));
    grp->count = count;
    grp->master = tb_tensor_1d(g->mem_params[gi][0], TB_F32, count);
    grp->value = gi == TB_GROUP_LOWP ? tb_tensor_1d(g->mem_params[gi][1], vdt, count) : grp->master;
    grp->grad = tb_tensor_1d(g->mem_params[gi][2], vdt, count);
    grp->momentum = tb_tensor_1d(g->mem_params[gi][3], TB_F32, count);
    grp->decay_mask = tb_tensor_1d(g->mem_params[gi][4], TB_U8, count);
    if (!train)
        return TB_OK;
    TB_TRY(tb_fill(g->be, &grp->momentum, 0.0f));
    TB_TRY(tb_fill(g->be, &grp->decay_mask, 1.0f));
    TB_TRY(tb_fill(g->be, &grp->grad, 0.0f));
    return TB_OK;
}

static int allocate_params(tb_graph *g)
{
    int64_t count[2] = {0, 0};
    for (int i = 0; i < g->n_params; i++) {
        tb_param *p = &g->params[i];
        p->offset = count[p->group];
        /* keep each parameter 64-element aligned inside its group */
        count[p->group] += (tb_numel(&p->master) + 63) & ~(int64_t)63;
    }
    for (int gi = 0; gi < 2; gi++) {
        g->group_used[gi] = count[gi] > 0;
        if (count[gi])
            TB_TRY(alloc_group(g, gi, count[gi]));
    }
    for (int i = 0; i < g->n_params; i++) {
        tb_param *p = &g->params[i];
        tb_param_group *grp = &g->groups[p->group];
        size_t vsz = tb_dtype_size(p->value.dtype);
        p->master.data = (char *)grp->master.data + (size_t)p->offset * 4;
        p->value.data = (char *)grp->value.data + (size_t)p->offset * vsz;
        p->grad.data = grp->grad.data ? (char *)grp->grad.data + (size_t)p->offset * vsz : NULL;
    }
    /* padding elements between parameters must not be decayed or moved */
    for (int gi = 0; gi < 2; gi++)
        if (g->group_used[gi])
            TB_TRY(tb_fill(g->be, &g->groups[gi].master, 0.0f));
    return TB_OK;
}

static int allocate_buffers(tb_graph *g)
{
    size_t off = 0;
    for (int i = 0; i < g->n_buffers; i++)
        off += align_up(tb_nbytes(&g->buffers[i].t));
    g->buffer_bytes = off;
    if (!off)
        return TB_OK;
    TB_TRY(tb_alloc(g->be, &g->mem_buffers, off));
    off = 0;
    for (int i = 0; i < g->n_buffers; i++) {
        tb_buffer *b = &g->buffers[i];
        b->t.data = (char *)g->mem_buffers + off;
        off += align_up(tb_nbytes(&b->t));
        /* running_var starts at 1, running_mean at 0 (PyTorch) */
        bool is_var = strstr(b->name, "running_var") != NULL;
        TB_TRY(tb_fill(g->be, &b->t, is_var ? 1.0f : 0.0f));
    }
    return TB_OK;
}

/* The storage value of v: the value whose memory an in-place ReLU reuses. */
static int storage_of(const tb_graph *g, int v) { return g->values[v].alias_of >= 0 ? g->values[v].alias_of : v; }

/* Index of the last live node that reads storage s in a forward; INT_MAX for
 * storage that outlives the forward (the input, external values, outputs)
 * and for storage read in a later part than the one that makes it (a
 * caller may run that part again on its own, as detection runs the box
 * head once per chunk of proposals). */
static int last_read(const tb_graph *g, int s)
{
    if (g->values[s].producer < 0)
        return INT_MAX;
    for (int o = 0; o < g->n_outputs; o++)
        if (storage_of(g, g->outputs[o]) == s)
            return INT_MAX;
    int last = g->values[s].producer, part = g->nodes[last].part;
    for (int i = 0; i < g->n_nodes; i++) {
        const node *nd = &g->nodes[i];
        if (nd->dead)
            continue;
        bool reads = nd->fused_bn >= 0 && (storage_of(g, g->nodes[nd->fused_bn].in[0]) == s ||
                                           (nd->fused_z >= 0 && storage_of(g, nd->fused_z) == s));
        for (int k = 0; k < nd->n_in && !reads; k++)
            reads = !g->values[nd->in[k]].dead && storage_of(g, nd->in[k]) == s;
        if (reads && nd->part != part)
            return INT_MAX;
        if (reads && i > last)
            last = i;
    }
    return last;
}

/* A block of one arena, in use from clock `start` to `end` inclusive. */
typedef struct live_range {
    int start, end;
    size_t size;
    int id;
} live_range;

typedef struct act_block {
    size_t off, size;
    int until; /* the last clock it is in use */
} act_block;

/* The lowest offset where `size` bytes fit between the live blocks (sorted by offset). */
static size_t first_fit(const act_block *live, int n, size_t size)
{
    size_t off = 0;
    for (int k = 0; k < n; k++) {
        if (live[k].off >= off + size)
            break;
        if (live[k].off + live[k].size > off)
            off = live[k].off + live[k].size;
    }
    return off;
}

static int by_start(const void *pa, const void *pb)
{
    const live_range *a = pa, *b = pb;
    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

/* Places the ranges (sorted here by start) one after another, each first-fit
 * among the blocks still in use at its start: a block whose range ends at
 * clock t is still in use by what starts at t (a node's output never
 * overlaps its inputs). Writes offset[id] and *peak. */
static int place_ranges(live_range *r, int n, size_t *offset, size_t *peak)
{
    act_block *live = calloc((size_t)n + 1, sizeof *live);
    if (!live)
        return tb_fail(TB_ERR_NOMEM, "graph: out of memory planning an arena");
    qsort(r, (size_t)n, sizeof *r, by_start);
    int n_live = 0;
    *peak = 0;
    for (int i = 0; i < n; i++) {
        int kept = 0;
        for (int k = 0; k < n_live; k++)
            if (live[k].until >= r[i].start)
                live[kept++] = live[k];
        n_live = kept;
        size_t off = first_fit(live, n_live, r[i].size);
        int at = 0;
        while (at < n_live && live[at].off < off)
            at++;
        memmove(&live[at + 1], &live[at], (size_t)(n_live - at) * sizeof *live);
        live[at] = (act_block){off, r[i].size, r[i].end};
        n_live++;
        offset[r[i].id] = off;
        if (off + r[i].size > *peak)
            *peak = off + r[i].size;
    }
    free(live);
    return TB_OK;
}

/* Places the n ranges of values[id] memory (place_ranges) and allocates
 * one arena of the peak for them: *mem, *bytes, and each value's activation
 * (grad false) or gradient (grad true) pointer. */
static int allocate_ranges(tb_graph *g, live_range *r, int n, void **mem, size_t *bytes, bool grad)
{
    size_t *offset = calloc((size_t)g->n_values + 1, sizeof *offset);
    if (!offset)
        return tb_fail(TB_ERR_NOMEM, "graph: out of memory planning an arena");
    int rc = place_ranges(r, n, offset, bytes);
    if (rc == TB_OK)
        rc = tb_alloc(g->be, mem, *bytes ? *bytes : 1);
    for (int i = 0; rc == TB_OK && i < n; i++) {
        value *v = &g->values[r[i].id];
        (grad ? &v->grad : &v->t)->data = (char *)*mem + offset[r[i].id];
    }
    free(offset);
    return rc;
}

/* An inference graph's activations: each storage value from its producer to
 * its last reader (node indices; -1 for values without a producer), placed
 * first-fit among the storages alive then, in one arena of the peak size. */
static int plan_shared_activations(tb_graph *g)
{
    live_range *r = calloc((size_t)g->n_values + 1, sizeof *r);
    if (!r)
        return tb_fail(TB_ERR_NOMEM, "graph: out of memory planning activations");
    int n = 0;
    for (int v = 0; v < g->n_values; v++) {
        const value *val = &g->values[v];
        if (!val->dead && val->alias_of < 0)
            r[n++] = (live_range){val->producer, last_read(g, v), align_up(tb_nbytes(&val->t)), v};
        g->values[v].grad = tb_tensor_1d(NULL, val->t.dtype, 0);
    }
    int rc = allocate_ranges(g, r, n, &g->mem_act, &g->act_bytes, false);
    free(r);
    return rc;
}

/* The live node whose backward writes v's gradient first (backward runs the
 * nodes in reverse: the highest index), -1 if none does. */
static int first_grad_writer(const tb_graph *g, int v)
{
    for (int j = g->n_nodes - 1; j >= 0; j--)
        if (writes_grad_of(g, j, v))
            return j;
    return -1;
}

/* When v's gradient must be zero: -1 at the start of the step (the loss
 * seeds output gradients before the backward; a value without a producer
 * outlives it), else the node before whose backward it is zeroed: its first
 * writer, or its producer when nothing writes it (the producer then reads
 * zeros). */
static int grad_zero_node(const tb_graph *g, int v)
{
    if (g->values[v].producer < 0 || is_output(g, v))
        return -1;
    int w = first_grad_writer(g, v);
    return w >= 0 ? w : g->values[v].producer;
}

/* Whether node w stores v's gradient instead of adding to it (a fused
 * node's dz_write), so that it needs no zeros first. */
static bool stores_grad(const tb_graph *g, int w, int v)
{
    const node *nd = &g->nodes[w];
    return nd->fused_bn >= 0 && nd->fused_z == v && nd->dz_write;
}

/* Each node's list of gradients to zero before its backward, in g->grad_zero. */
static int plan_grad_zeroing(tb_graph *g, const int *zero_node)
{
    g->grad_zero = malloc(sizeof(int) * (size_t)(g->n_values + 1));
    if (!g->grad_zero)
        return tb_fail(TB_ERR_NOMEM, "graph: out of memory planning gradients");
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        node *nd = &g->nodes[i];
        nd->zero_first = n;
        for (int v = 0; v < g->n_values; v++)
            if (zero_node[v] == i && !stores_grad(g, i, v))
                g->grad_zero[n++] = v;
        nd->zero_n = n - nd->zero_first;
    }
    return TB_OK;
}

/* A training graph's activation gradients share one arena: in backward
 * time (node i runs at n_nodes - 1 - i), each is in use from when it is
 * zeroed (grad_zero_node) to its producer's backward, which reads it last;
 * one without a producer for the whole step. Zeroing each just before its
 * first writer instead of the whole arena up front keeps the arena at the
 * backward's peak, not the sum of all gradients. */
static int plan_shared_grads(tb_graph *g)
{
    live_range *r = calloc((size_t)g->n_values + 1, sizeof *r);
    int *zero_node = calloc((size_t)g->n_values + 1, sizeof *zero_node);
    int n = 0, rc = TB_OK, last = g->n_nodes - 1;
    if (!r || !zero_node)
        rc = tb_fail(TB_ERR_NOMEM, "graph: out of memory planning gradients");
    for (int v = 0; rc == TB_OK && v < g->n_values; v++) {
        value *val = &g->values[v];
        zero_node[v] = INT_MIN;
        if (val->dead || tb_numel(&val->grad) == 0)
            continue;
        int z = grad_zero_node(g, v);
        zero_node[v] = z;
        val->zero_at_step = z < 0;
        r[n++] = (live_range){z < 0 ? -1 : last - z, val->producer < 0 ? INT_MAX : last - val->producer,
                              align_up(tb_nbytes(&val->grad)), v};
    }
    if (rc == TB_OK)
        rc = plan_grad_zeroing(g, zero_node);
    if (rc == TB_OK)
        rc = allocate_ranges(g, r, n, &g->mem_grad, &g->grad_bytes, true);
    free(r);
    free(zero_node);
    return rc;
}

/* An in-place ReLU's output is its input's memory. */
static void point_aliases(tb_graph *g)
{
    for (int i = 0; i < g->n_values; i++)
        if (g->values[i].alias_of >= 0)
            g->values[i].t.data = g->values[g->values[i].alias_of].t.data;
}

static int allocate_activations(tb_graph *g)
{
    if (g->inference) { /* no gradients, no state saved for a backward */
        TB_TRY(plan_shared_activations(g));
        point_aliases(g);
        return TB_OK;
    }
    size_t act = 0, saved = 0;
    for (int i = 0; i < g->n_values; i++) {
        value *v = &g->values[i];
        if (!v->dead && v->alias_of < 0)
            act += align_up(tb_nbytes(&v->t));
    }
    for (int i = 0; i < g->n_nodes; i++) {
        node *nd = &g->nodes[i];
        if (nd->kind == TB_NODE_BN)
            saved += 2 * align_up(tb_nbytes(&nd->save_mean));
        if (nd->kind == TB_NODE_DROPOUT)
            saved += align_up(tb_nbytes(&nd->mask));
        if (nd->fused_bn >= 0) {
            size_t rs = tb_batchnorm_relu_reserve_size(g->be, fused_x(g, nd), nd->fused_z >= 0);
            nd->reserve = tb_tensor_1d(NULL, TB_U8, (int64_t)rs);
            saved += align_up(rs);
        }
    }
    g->act_bytes = act;
    g->saved_bytes = saved;
    TB_TRY(tb_alloc(g->be, &g->mem_act, act));
    TB_TRY(plan_shared_grads(g));
    TB_TRY(tb_alloc(g->be, &g->mem_saved, saved ? saved : 1));
    size_t ao = 0, so = 0;
    for (int i = 0; i < g->n_values; i++) {
        value *v = &g->values[i];
        if (!v->dead && v->alias_of < 0) {
            v->t.data = (char *)g->mem_act + ao;
            ao += align_up(tb_nbytes(&v->t));
        }
    }
    point_aliases(g);
    for (int i = 0; i < g->n_nodes; i++) {
        node *nd = &g->nodes[i];
        if (nd->kind == TB_NODE_BN) {
            nd->save_mean.data = (char *)g->mem_saved + so;
            so += align_up(tb_nbytes(&nd->save_mean));
            nd->save_invstd.data = (char *)g->mem_saved + so;
            so += align_up(tb_nbytes(&nd->save_invstd));
        }
        if (nd->kind == TB_NODE_DROPOUT) {
            nd->mask.data = (char *)g->mem_saved + so;
            so += align_up(tb_nbytes(&nd->mask));
        }
        if (nd->fused_bn >= 0 && tb_numel(&nd->reserve) > 0) {
            nd->reserve.data = (char *)g->mem_saved + so;
            so += align_up(tb_nbytes(&nd->reserve));
        }
    }
    return TB_OK;
}

int tb_graph_finalize(tb_graph *g, bool allocate)
{
    TB_TRY(g->status);
    TB_CHECK(!g->finalized, TB_ERR_INVALID, "graph: finalized twice");
    TB_CHECK(g->input >= 0, TB_ERR_INVALID, "graph: no input defined (tb_g_input)");
    TB_CHECK(g->n_outputs > 0, TB_ERR_INVALID, "graph: no output defined (tb_g_set_output)");
    g->finalized = true;
    if (!allocate)
        return TB_OK;
    if (g->fuse) {
        fuse_bn_relus(g);
        plan_dz_writes(g);
    }
    plan_inplace_relus(g);
    int rc = allocate_params(g);
    if (rc == TB_OK)
        rc = allocate_buffers(g);
    if (rc == TB_OK)
        rc = allocate_activations(g);
    if (rc == TB_OK)
        rc = tb_backend_reserve_workspace(g->be, workspace_needed(g));
    if (rc != TB_OK)
        return g->status = rc;
    g->allocated = true;
    return TB_OK;
}

/* ------------------------------------------------------------ inspection */

int tb_graph_status(const tb_graph *g) { return g->status; }
tb_backend *tb_graph_backend(tb_graph *g) { return g->be; }
tb_dtype tb_graph_dtype(const tb_graph *g) { return g->dtype; }
int tb_graph_batch(const tb_graph *g) { return g->batch; }
int64_t tb_graph_macs(const tb_graph *g) { return g->macs; }
int tb_graph_n_params(const tb_graph *g) { return g->n_params; }
tb_param *tb_graph_param(tb_graph *g, int i) { return (i >= 0 && i < g->n_params) ? &g->params[i] : NULL; }
int tb_graph_n_buffers(const tb_graph *g) { return g->n_buffers; }
tb_buffer *tb_graph_buffer(tb_graph *g, int i) { return (i >= 0 && i < g->n_buffers) ? &g->buffers[i] : NULL; }
int64_t tb_graph_bn_batches_tracked(const tb_graph *g) { return g->bn_batches_tracked; }
void tb_graph_set_bn_batches_tracked(tb_graph *g, int64_t n) { g->bn_batches_tracked = n; }
tb_value tb_graph_value_count(const tb_graph *g) { return g->n_values; }
int tb_graph_n_nodes(const tb_graph *g) { return g->n_nodes; }
void tb_graph_set_seed(tb_graph *g, uint64_t seed) { g->seed = seed; }
uint64_t tb_graph_step(const tb_graph *g) { return g->step; }
void tb_graph_set_step(tb_graph *g, uint64_t step) { g->step = step; }
void tb_graph_set_step_source(tb_graph *g, const tb_tensor *step) { g->step_source = step; }
const tb_tensor *tb_graph_step_source(const tb_graph *g) { return g->step_source; }

size_t tb_graph_memory_bytes(const tb_graph *g)
{
    size_t params = 0;
    for (int gi = 0; gi < 2; gi++) {
        if (!g->group_used[gi])
            continue;
        const tb_param_group *grp = &g->groups[gi];
        size_t per = 4 + (gi == TB_GROUP_LOWP ? tb_dtype_size(grp->value.dtype) : 0); /* master, value */
        if (!g->inference)
            per += 4 + 1 + tb_dtype_size(grp->grad.dtype); /* momentum, decay mask, gradient */
        params += (size_t)grp->count * per;
    }
    return params + g->buffer_bytes + g->act_bytes + g->grad_bytes + g->saved_bytes;
}

size_t tb_graph_activation_bytes(const tb_graph *g) { return g->act_bytes; }
size_t tb_graph_gradient_bytes(const tb_graph *g) { return g->grad_bytes; }

int64_t tb_graph_param_elements(const tb_graph *g)
{
    int64_t n = 0;
    for (int i = 0; i < g->n_params; i++)
        n += tb_numel(&g->params[i].master);
    return n;
}

tb_param_group *tb_graph_group(tb_graph *g, int group)
{
    if (group < 0 || group > 1 || !g->allocated || !g->group_used[group])
        return NULL;
    return &g->groups[group];
}

const tb_tensor *tb_graph_value_tensor(tb_graph *g, tb_value v)
{
    return (v >= 0 && v < g->n_values) ? &g->values[v].t : NULL;
}

int tb_graph_node_info(const tb_graph *g, int i, tb_node_info *out)
{
    TB_CHECK(i >= 0 && i < g->n_nodes, TB_ERR_INVALID, "graph: node %d does not exist", i);
    const node *nd = &g->nodes[i];
    memset(out, 0, sizeof *out);
    out->kind = nd->kind;
    out->name = nd->name;
    out->input = nd->in[0];
    out->output = nd->out;
    out->conv = nd->spec;
    out->pool = nd->pool;
    out->fused = nd->dead || nd->fused_bn >= 0;
    return TB_OK;
}

tb_tensor *tb_graph_input(tb_graph *g) { return &g->values[g->input].t; }
int tb_graph_n_parts(const tb_graph *g) { return g->cur_part + 1; }
int tb_graph_n_outputs(const tb_graph *g) { return g->n_outputs; }
tb_tensor *tb_graph_output_at(tb_graph *g, int i)
{
    return (i >= 0 && i < g->n_outputs) ? &g->values[g->outputs[i]].t : NULL;
}
tb_tensor *tb_graph_output_grad_at(tb_graph *g, int i)
{
    return (i >= 0 && i < g->n_outputs) ? &g->values[g->outputs[i]].grad : NULL;
}
tb_tensor *tb_graph_value_tensor_mut(tb_graph *g, tb_value v)
{
    return (v >= 0 && v < g->n_values) ? &g->values[v].t : NULL;
}
tb_tensor *tb_graph_output(tb_graph *g) { return &g->values[g->output].t; }
tb_tensor *tb_graph_output_grad(tb_graph *g) { return &g->values[g->output].grad; }

/* --------------------------------------------------------------- running */

static const tb_tensor *bias_of(tb_graph *g, const node *nd)
{
    return nd->p_b >= 0 ? &g->params[nd->p_b].value : NULL;
}

static const tb_tensor *fused_z(tb_graph *g, const node *nd)
{
    return nd->fused_z >= 0 ? &g->values[nd->fused_z].t : NULL;
}

static int forward_fused(tb_graph *g, node *nd, bool train)
{
    node *bn = &g->nodes[nd->fused_bn];
    tb_tensor *y = &g->values[nd->out].t;
    const tb_tensor *x = fused_x(g, nd), *gamma = &g->params[bn->p_w].value, *beta = &g->params[bn->p_b].value;
    tb_tensor *rm = &g->buffers[bn->buf_mean].t, *rv = &g->buffers[bn->buf_var].t;
    if (train)
        return tb_batchnorm_relu_forward_train(g->be, y, &bn->save_mean, &bn->save_invstd, rm, rv, &nd->reserve, x,
                                               fused_z(g, nd), gamma, beta, bn->momentum, bn->eps);
    return tb_batchnorm_relu_forward_eval(g->be, y, x, fused_z(g, nd), gamma, beta, rm, rv, bn->eps);
}

static int forward_node(tb_graph *g, int i, bool train)
{
    tb_backend *be = g->be;
    node *nd = &g->nodes[i];
    if (nd->dead)
        return TB_OK;
    if (nd->fused_bn >= 0)
        return forward_fused(g, nd, train);
    tb_tensor *y = &g->values[nd->out].t;
    const tb_tensor *x = &g->values[nd->in[0]].t;
    switch (nd->kind) {
    case TB_NODE_CONV:
        return tb_conv2d_forward(be, y, x, &g->params[nd->p_w].value, bias_of(g, nd), &nd->conv);
    case TB_NODE_BN:
        if (train && !nd->bn_frozen)
            return tb_batchnorm_forward_train(be, y, &nd->save_mean, &nd->save_invstd,
                                              &g->buffers[nd->buf_mean].t, &g->buffers[nd->buf_var].t, x,
                                              &g->params[nd->p_w].value, &g->params[nd->p_b].value,
                                              nd->momentum, nd->eps);
        return tb_batchnorm_forward_eval(be, y, x, &g->params[nd->p_w].value, &g->params[nd->p_b].value,
                                         &g->buffers[nd->buf_mean].t, &g->buffers[nd->buf_var].t, nd->eps);
    case TB_NODE_RELU: return tb_relu_forward(be, y, x);
    case TB_NODE_MAXPOOL: return tb_maxpool_forward(be, y, x, &nd->pool);
    case TB_NODE_AVGPOOL: return tb_avgpool_forward(be, y, x, &nd->pool);
    case TB_NODE_GLOBAL_AVGPOOL: return tb_global_avgpool_forward(be, y, x);
    case TB_NODE_LINEAR: return tb_linear_forward(be, y, x, &g->params[nd->p_w].value, bias_of(g, nd));
    case TB_NODE_ADD: return tb_add_forward(be, y, x, &g->values[nd->in[1]].t);
    case TB_NODE_CONCAT: {
        const tb_tensor *xs[64];
        TB_CHECK(nd->n_in <= 64, TB_ERR_INVALID, "graph: concat of more than 64 inputs");
        for (int k = 0; k < nd->n_in; k++)
            xs[k] = &g->values[nd->in[k]].t;
        return tb_concat_forward(be, y, xs, nd->n_in);
    }
    case TB_NODE_DROPOUT:
        if (!train || nd->drop_p == 0.0f)
            return tb_copy(be, y, x);
        /* the same seed either way: made on the device from the step there,
         * or here */
        if (g->step_source)
            return tb_dropout_forward_at_step(be, y, &nd->mask, x, nd->drop_p, g->seed, (uint64_t)i, g->step_source);
        return tb_dropout_forward(be, y, &nd->mask, x, nd->drop_p, tb_dropout_step_seed(g->seed, g->step, (uint64_t)i));
    case TB_NODE_ROI_ALIGN: return tb_roi_align_forward(be, y, x, &g->values[nd->in[1]].t, &nd->roi);
    case TB_NODE_RESIZE: return tb_resize_bilinear_forward(be, y, x);
    }
    return tb_fail(TB_ERR_INTERNAL, "graph: unknown node kind %d", (int)nd->kind);
}

int tb_graph_forward_part(tb_graph *g, bool train, int part)
{
    TB_CHECK(g->allocated, TB_ERR_INVALID, "graph: forward before tb_graph_finalize(g, true)");
    TB_CHECK(!train || !g->inference, TB_ERR_INVALID,
             "graph: an inference graph runs forward in evaluation mode only (train = false)");
    TB_CHECK(part >= 0 && part <= g->cur_part, TB_ERR_INVALID, "graph: part %d does not exist (%d parts)", part,
             g->cur_part + 1);
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].part != part)
            continue;
        int rc = forward_node(g, i, train);
        if (rc != TB_OK)
            return tb_err_context(rc, "forward node %d (%s)", i, g->nodes[i].name);
    }
    if (train && part == g->cur_part)
        tb_graph_count_train_forward(g);
    return TB_OK;
}

void tb_graph_count_train_forward(tb_graph *g)
{
    g->step++;
    g->bn_batches_tracked++;
    /* a dropout node in training reads its own mask in backward: nothing else to record */
}

bool tb_graph_replayable(const tb_graph *g)
{
    if (g->inference || g->step_source) /* dropout never draws, or draws from the device's step */
        return true;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].kind == TB_NODE_DROPOUT)
            return false;
    return true;
}

int tb_graph_forward(tb_graph *g, bool train)
{
    for (int part = 0; part <= g->cur_part; part++)
        TB_TRY(tb_graph_forward_part(g, train, part));
    return TB_OK;
}

static tb_tensor *param_grad(tb_graph *g, int p)
{
    return (p >= 0 && !param_frozen(g, p)) ? &g->params[p].grad : NULL;
}

static tb_tensor *input_grad(tb_graph *g, int v) { return g->values[v].needs_grad ? &g->values[v].grad : NULL; }

static int backward_fused(tb_graph *g, node *nd)
{
    node *bn = &g->nodes[nd->fused_bn];
    const tb_tensor *dy = &g->values[nd->out].grad, *y = &g->values[nd->out].t;
    tb_tensor *dz = nd->fused_z >= 0 ? input_grad(g, nd->fused_z) : NULL;
    return tb_batchnorm_relu_backward(g->be, input_grad(g, bn->in[0]), dz, param_grad(g, bn->p_w),
                                      param_grad(g, bn->p_b), &nd->reserve, dy, fused_x(g, nd), y,
                                      &g->params[bn->p_w].value, &g->params[bn->p_b].value, &bn->save_mean,
                                      &bn->save_invstd, nd->fused_z >= 0, dz != NULL && nd->dz_write);
}

static int backward_node(tb_graph *g, int i)
{
    tb_backend *be = g->be;
    node *nd = &g->nodes[i];
    /* nothing trainable upstream (the network input, frozen stages): no gradient */
    if (nd->dead || !g->values[nd->out].needs_grad)
        return TB_OK;
    if (nd->fused_bn >= 0)
        return backward_fused(g, nd);
    const tb_tensor *dy = &g->values[nd->out].grad;
    const tb_tensor *y = &g->values[nd->out].t;
    int in0 = nd->in[0];
    const tb_tensor *x = &g->values[in0].t;
    tb_tensor *dx = input_grad(g, in0);
    switch (nd->kind) {
    case TB_NODE_CONV:
        if (dx)
            TB_TRY(tb_conv2d_backward_data(be, dx, dy, &g->params[nd->p_w].value, &nd->conv));
        if (!param_grad(g, nd->p_w))
            return TB_OK;
        return tb_conv2d_backward_filter(be, param_grad(g, nd->p_w), param_grad(g, nd->p_b), dy, x, &nd->conv);
    case TB_NODE_BN:
        if (nd->bn_frozen)
            return tb_batchnorm_backward_eval(be, dx, param_grad(g, nd->p_w), param_grad(g, nd->p_b), dy, x,
                                              &g->params[nd->p_w].value, &g->buffers[nd->buf_mean].t,
                                              &g->buffers[nd->buf_var].t, nd->eps);
        return tb_batchnorm_backward(be, dx, param_grad(g, nd->p_w), param_grad(g, nd->p_b), dy, x,
                                     &g->params[nd->p_w].value, &nd->save_mean, &nd->save_invstd);
    case TB_NODE_RELU: return dx ? tb_relu_backward(be, dx, dy, y) : TB_OK;
    case TB_NODE_MAXPOOL: return dx ? tb_maxpool_backward(be, dx, dy, y, x, &nd->pool) : TB_OK;
    case TB_NODE_AVGPOOL: return dx ? tb_avgpool_backward(be, dx, dy, &nd->pool) : TB_OK;
    case TB_NODE_GLOBAL_AVGPOOL: return dx ? tb_global_avgpool_backward(be, dx, dy) : TB_OK;
    case TB_NODE_LINEAR:
        return tb_linear_backward(be, dx, param_grad(g, nd->p_w), param_grad(g, nd->p_b), dy, x,
                                  &g->params[nd->p_w].value);
    case TB_NODE_ADD: return tb_add_backward(be, dx, input_grad(g, nd->in[1]), dy);
    case TB_NODE_CONCAT: {
        tb_tensor *dxs[64];
        for (int k = 0; k < nd->n_in; k++) {
            dxs[k] = input_grad(g, nd->in[k]);
            /* the concat op writes every slice: a frozen input would need a scratch gradient */
            TB_CHECK(dxs[k] != NULL, TB_ERR_UNSUPPORTED, "graph: concat input %d has no gradient (frozen)", k);
        }
        return tb_concat_backward(be, dxs, nd->n_in, dy);
    }
    case TB_NODE_ROI_ALIGN:
        return dx ? tb_roi_align_backward(be, dx, dy, &g->values[nd->in[1]].t, &nd->roi) : TB_OK;
    case TB_NODE_RESIZE: return dx ? tb_resize_bilinear_backward(be, dx, dy) : TB_OK;
    case TB_NODE_DROPOUT:
        if (!dx)
            return TB_OK;
        if (nd->drop_p == 0.0f)
            return tb_add_backward(be, dx, NULL, dy);
        return tb_dropout_backward(be, dx, dy, &nd->mask, nd->drop_p);
    }
    return tb_fail(TB_ERR_INTERNAL, "graph: unknown node kind %d", (int)nd->kind);
}

int tb_graph_zero_grads(tb_graph *g)
{
    TB_CHECK(g->allocated, TB_ERR_INVALID, "graph: zero_grads before tb_graph_finalize(g, true)");
    TB_CHECK(!g->inference, TB_ERR_INVALID, "graph: an inference graph has no gradients");
    for (int v = 0; v < g->n_values; v++)
        if (g->values[v].zero_at_step)
            TB_TRY(tb_fill(g->be, &g->values[v].grad, 0.0f));
    for (int gi = 0; gi < 2; gi++)
        if (g->group_used[gi])
            TB_TRY(tb_fill(g->be, &g->groups[gi].grad, 0.0f));
    return TB_OK;
}

/* The gradients node nd's backward writes first, zeroed (plan_grad_zeroing). */
static int zero_first_written(tb_graph *g, const node *nd)
{
    for (int k = 0; k < nd->zero_n; k++)
        TB_TRY(tb_fill(g->be, &g->values[g->grad_zero[nd->zero_first + k]].grad, 0.0f));
    return TB_OK;
}

int tb_graph_backward(tb_graph *g)
{
    TB_CHECK(g->allocated, TB_ERR_INVALID, "graph: backward before tb_graph_finalize(g, true)");
    TB_CHECK(!g->inference, TB_ERR_INVALID, "graph: an inference graph has no backward");
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        int rc = zero_first_written(g, &g->nodes[i]);
        if (rc == TB_OK)
            rc = backward_node(g, i);
        if (rc != TB_OK)
            return tb_err_context(rc, "backward node %d (%s)", i, g->nodes[i].name);
    }
    return TB_OK;
}

int tb_graph_sync_params(tb_graph *g)
{
    TB_CHECK(g->allocated, TB_ERR_INVALID, "graph: sync_params before allocation");
    if (g->group_used[TB_GROUP_LOWP])
        TB_TRY(tb_convert(g->be, &g->groups[TB_GROUP_LOWP].value, &g->groups[TB_GROUP_LOWP].master));
    return TB_OK;
}

int tb_graph_param_upload(tb_graph *g, int i, const float *host)
{
    TB_CHECK(g->allocated && i >= 0 && i < g->n_params, TB_ERR_INVALID, "graph: cannot upload parameter %d", i);
    return tb_upload(g->be, &g->params[i].master, host);
}

int tb_graph_param_download(tb_graph *g, int i, float *host)
{
    TB_CHECK(g->allocated && i >= 0 && i < g->n_params, TB_ERR_INVALID, "graph: cannot download parameter %d", i);
    return tb_download(g->be, host, &g->params[i].master);
}

void tb_graph_destroy(tb_graph *g)
{
    if (!g)
        return;
    for (int gi = 0; gi < 2; gi++)
        for (int k = 0; k < 5; k++)
            tb_free(g->be, g->mem_params[gi][k]);
    tb_free(g->be, g->mem_buffers);
    tb_free(g->be, g->mem_act);
    tb_free(g->be, g->mem_grad);
    tb_free(g->be, g->mem_saved);
    for (int i = 0; i < g->n_nodes; i++)
        free(g->nodes[i].in);
    free(g->nodes);
    free(g->values);
    free(g->grad_zero);
    free(g->params);
    free(g->buffers);
    free(g);
}
