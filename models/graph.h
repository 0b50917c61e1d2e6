/* The static network graph: built once per (model, batch shape).
 *
 * A builder adds nodes (tb_g_*) that read and write values; each value gets
 * an activation tensor and a gradient tensor. tb_graph_finalize() plans every
 * tensor into arenas (parameters, gradients, optimizer state, activations,
 * activation gradients, saved state, workspace) and allocates them once:
 * forward and backward never allocate. Builder calls are "sticky": after the
 * first error every call returns -1 and finalize returns that error, so a
 * model builder can be written without checking each call.
 *
 * Parameters carry names in torchvision/timm style ("layer1.0.bn3.weight")
 * and roles, so tricks select them by role (no bias decay, zero gamma).
 * Mixed precision: every parameter has an f32 master copy; in f16/bf16 graphs
 * conv and linear weights/biases are also kept in the low precision for the
 * compute (group 1); BatchNorm parameters stay f32 (group 0).
 */
#ifndef TB_GRAPH_H
#define TB_GRAPH_H

#include <stdbool.h>
#include <stdint.h>

#include "kernels/backend.h"
#include "kernels/ops.h"
#include "kernels/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tb_param_role {
    TB_ROLE_CONV_WEIGHT = 0,
    TB_ROLE_LINEAR_WEIGHT,
    TB_ROLE_BIAS,        /* conv or linear bias */
    TB_ROLE_BN_GAMMA,
    TB_ROLE_BN_BETA
} tb_param_role;

/* Flags on a BN node and its gamma/beta parameters. */
#define TB_BN_LAST_IN_RESIDUAL_BLOCK 1u /* the BN whose output joins the residual sum */
/* Flag on a parameter: never updated (no gradient is computed, no weight
 * decay applies; the SGD step leaves it as it is). */
#define TB_PARAM_FROZEN 2u

#define TB_NAME_LEN 96
#define TB_GROUP_F32 0  /* parameters computed with in f32 (BN, and everything in fp32 graphs) */
#define TB_GROUP_LOWP 1 /* conv/linear parameters of f16/bf16 graphs */

typedef struct tb_param {
    char name[TB_NAME_LEN];
    tb_param_role role;
    unsigned flags;
    int group;            /* TB_GROUP_F32 or TB_GROUP_LOWP */
    int64_t offset;       /* element offset inside its group's flat tensors */
    int64_t fan_in;       /* for initialisation: c/groups * r * s (conv), c (linear) */
    int64_t fan_out;      /* k * r * s (conv), k (linear) */
    tb_tensor master;     /* f32, the optimizer's copy */
    tb_tensor value;      /* what ops read: == master in group 0, the low-precision copy in group 1 */
    tb_tensor grad;       /* dtype of value */
} tb_param;

/* Non-trainable state saved in checkpoints (BN running statistics). */
typedef struct tb_buffer {
    char name[TB_NAME_LEN];   /* "bn1.running_mean", "bn1.running_var" */
    tb_tensor t;              /* f32 */
} tb_buffer;

/* One flat parameter group: what a fused optimizer step runs over. */
typedef struct tb_param_group {
    int64_t count;            /* elements */
    tb_tensor master;         /* f32 {count} */
    tb_tensor value;          /* == master (group 0) or low precision {count} (group 1) */
    tb_tensor grad;           /* value's dtype {count} */
    tb_tensor momentum;       /* f32 {count} */
    tb_tensor decay_mask;     /* u8 {count}: 1 = weight decay applies */
} tb_param_group;

typedef struct tb_conv_spec {
    int k;                    /* output channels */
    int kh, kw;
    int stride;
    int pad_h, pad_w;
    int dilation;
    int groups;
    bool bias;
} tb_conv_spec;

typedef int tb_value; /* index of a value in the graph; -1 after an error */

typedef struct tb_graph tb_graph;

/* ---- building ---- */
int tb_graph_create(tb_graph **out, tb_backend *be, tb_dtype dtype, int batch);
void tb_graph_destroy(tb_graph *g);

tb_value tb_g_input(tb_graph *g, int h, int w, int c);
tb_value tb_g_conv(tb_graph *g, const char *name, tb_value x, tb_conv_spec spec);
tb_value tb_g_bn(tb_graph *g, const char *name, tb_value x, float eps, float momentum, unsigned flags);
tb_value tb_g_relu(tb_graph *g, tb_value x);
tb_value tb_g_maxpool(tb_graph *g, tb_value x, tb_pool_params p);
tb_value tb_g_avgpool(tb_graph *g, tb_value x, tb_pool_params p);
tb_value tb_g_global_avgpool(tb_graph *g, tb_value x);
tb_value tb_g_linear(tb_graph *g, const char *name, tb_value x, int k, bool bias);
tb_value tb_g_add(tb_graph *g, tb_value a, tb_value b);
tb_value tb_g_concat(tb_graph *g, const tb_value *xs, int count);
tb_value tb_g_dropout(tb_graph *g, tb_value x, float p);
/* Marks the network output (logits {n, k}): output 0. */
int tb_g_set_output(tb_graph *g, tb_value v);

/* ---- beyond a classifier (detection, segmentation) ----
 * Values are shaped by their inputs, so a graph may change its batch axis
 * midway (RoIAlign turns n images into r RoIs).
 *
 * Builder modes, sticky until changed: parameters of nodes added while
 * `frozen` carry TB_PARAM_FROZEN; BN nodes added while `bn_frozen` use their
 * running statistics in training too (tb_batchnorm_forward_eval and
 * tb_batchnorm_backward_eval), never update them, and their gamma and beta
 * are frozen (torchvision's FrozenBatchNorm2d). A value needs a gradient only
 * when something trainable lies upstream of it; backward skips the rest. */
void tb_g_set_frozen(tb_graph *g, bool frozen);
void tb_g_set_bn_frozen(tb_graph *g, bool frozen);
/* Fusion (on by default; off with tb_g_set_fusion(g, false) before
 * finalize, or TRICKBENCH_NO_FUSE=1 in the environment): at finalize,
 * BN -> ReLU and BN -> add -> ReLU of training BNs whose intermediate values
 * nothing else reads run as one tb_batchnorm_relu op (kernels/ops.h). Their
 * parameters, buffers and names are unchanged; the intermediate values get
 * no memory. In f32 on the CPU the results are bitwise those of the
 * separate ops. */
void tb_g_set_fusion(tb_graph *g, bool fuse);
/* Inference (before finalize): the graph only ever runs tb_graph_forward(g,
 * false), as a distillation teacher or for scoring saved weights. Finalize
 * then allocates no gradients, optimizer state or state saved for a
 * backward, and activations share memory: each lives from its producer to
 * its last reader, so only the input, external values, outputs and values
 * a later part reads keep their contents after a forward (a part may run
 * again on its own). Training forwards, zero_grads and backward are errors. */
void tb_g_set_inference(tb_graph *g, bool inference);
/* A value the caller fills before a forward (e.g. RoIs), of any dtype; it has
 * no gradient. */
tb_value tb_g_external(tb_graph *g, tb_dtype dtype, int ndim, const int64_t *shape);
/* RoIAlign of feature map x {n,h,w,c} over rois (an f32 {r,5} value, usually
 * external): {r, pooled_h, pooled_w, c}. */
tb_value tb_g_roi_align(tb_graph *g, tb_value x, tb_value rois, tb_roi_align_params p);
/* Bilinear resize (align_corners false) of x {n,h,w,c} to {n,oh,ow,c}. */
tb_value tb_g_resize_bilinear(tb_graph *g, tb_value x, int oh, int ow);
/* Adds an output of any rank; returns its index (output 0 is tb_g_set_output's
 * when that was called first). */
int tb_g_add_output(tb_graph *g, tb_value v);
/* Starts a new part: nodes added from now on run in tb_graph_forward_part(g,
 * train, index). Parts let a caller compute between two stretches of one
 * forward (proposals and RoI sampling between the RPN and the box head). A
 * graph starts in part 0; returns the new part's index. */
int tb_g_begin_part(tb_graph *g);

/* Plans every tensor; with allocate=false only counts (parameters, MACs) are
 * available, which is what `trickbench model` needs for large inputs. */
int tb_graph_finalize(tb_graph *g, bool allocate);

/* ---- inspection ---- */
int tb_graph_status(const tb_graph *g);        /* the sticky builder error, TB_OK if none */
tb_backend *tb_graph_backend(tb_graph *g);
tb_dtype tb_graph_dtype(const tb_graph *g);
int tb_graph_batch(const tb_graph *g);
int64_t tb_graph_param_elements(const tb_graph *g); /* parameter scalars, frozen ones too, as PyTorch's parameters() */
int64_t tb_graph_macs(const tb_graph *g);     /* multiply-accumulates per image: conv + linear */
/* Bytes of device memory the graph's arenas hold (parameters, optimizer state,
 * activations, gradients, saved state; the backend's workspace excluded). */
size_t tb_graph_memory_bytes(const tb_graph *g);
/* The activation arena (every value's own memory in a training graph; the
 * peak of the shared plan in an inference graph) and the activation-gradient
 * arena (the peak of the backward's shared plan; 0 for inference), in bytes. */
size_t tb_graph_activation_bytes(const tb_graph *g);
size_t tb_graph_gradient_bytes(const tb_graph *g);
int tb_graph_n_params(const tb_graph *g);
tb_param *tb_graph_param(tb_graph *g, int i);
int tb_graph_n_buffers(const tb_graph *g);
tb_buffer *tb_graph_buffer(tb_graph *g, int i);
int64_t tb_graph_bn_batches_tracked(const tb_graph *g); /* PyTorch's num_batches_tracked */
void tb_graph_set_bn_batches_tracked(tb_graph *g, int64_t n);
tb_param_group *tb_graph_group(tb_graph *g, int group); /* NULL when the group is empty */
tb_value tb_graph_value_count(const tb_graph *g);
const tb_tensor *tb_graph_value_tensor(tb_graph *g, tb_value v);

/* Node introspection (tests check model structure, e.g. ResNet-D's pool). */
typedef enum tb_node_kind {
    TB_NODE_CONV = 0, TB_NODE_BN, TB_NODE_RELU, TB_NODE_MAXPOOL, TB_NODE_AVGPOOL,
    TB_NODE_GLOBAL_AVGPOOL, TB_NODE_LINEAR, TB_NODE_ADD, TB_NODE_CONCAT, TB_NODE_DROPOUT,
    TB_NODE_ROI_ALIGN, TB_NODE_RESIZE
} tb_node_kind;
typedef struct tb_node_info {
    tb_node_kind kind;
    const char *name;         /* module name for nodes with parameters, "" otherwise */
    tb_value input;           /* first input */
    tb_value output;
    tb_conv_spec conv;        /* for TB_NODE_CONV */
    tb_pool_params pool;      /* for pools */
    bool fused;               /* part of a fused batchnorm_relu (a ReLU that runs it, or a BN / add it absorbed) */
} tb_node_info;
int tb_graph_n_nodes(const tb_graph *g);
int tb_graph_node_info(const tb_graph *g, int i, tb_node_info *out);

/* ---- running ---- */
tb_tensor *tb_graph_input(tb_graph *g);        /* {n,h,w,c} in the graph dtype */
tb_tensor *tb_graph_output(tb_graph *g);       /* logits {n,k} in the graph dtype */
/* d loss / d logits, same shape and dtype: the caller fills it after
 * tb_graph_zero_grads; tb_graph_backward reuses its memory once the
 * output's producer has read it, so it is not readable after the backward. */
tb_tensor *tb_graph_output_grad(tb_graph *g);

/* train=true: batch statistics, running-stat update, dropout on. */
int tb_graph_forward(tb_graph *g, bool train);
/* The host-side counters of one training forward (the step number that
 * seeds dropout, BN's batches tracked): tb_graph_forward advances them; a
 * training step replayed from a capture (kernels/backend.h) calls this. */
void tb_graph_count_train_forward(tb_graph *g);
/* Whether a captured forward replays exactly: not when a node draws a fresh
 * random stream per step on the host (dropout's seed without a step
 * source, below). */
bool tb_graph_replayable(const tb_graph *g);
/* Runs the nodes of one part; a training forward is complete (step counters
 * advance) when its last part has run. */
int tb_graph_forward_part(tb_graph *g, bool train, int part);
int tb_graph_n_parts(const tb_graph *g);
int tb_graph_n_outputs(const tb_graph *g);
tb_tensor *tb_graph_output_at(tb_graph *g, int i);      /* NULL when out of range */
tb_tensor *tb_graph_output_grad_at(tb_graph *g, int i); /* as tb_graph_output_grad */
/* The writable tensor of a value (an external's, to fill it). */
tb_tensor *tb_graph_value_tensor_mut(tb_graph *g, tb_value v);
/* Zeroes the parameter gradients and the outputs' (and those of values
 * without a producer); tb_graph_backward zeroes every other activation
 * gradient just before its first writer (they share one arena). */
int tb_graph_zero_grads(tb_graph *g);
/* Runs the nodes in reverse from the output gradients (which the caller has
 * filled after tb_graph_zero_grads), accumulating parameter gradients. */
int tb_graph_backward(tb_graph *g);
/* Copies master weights into the low-precision copies (after init or load). */
int tb_graph_sync_params(tb_graph *g);
/* Host <-> device transfers of one parameter's master (f32) or a buffer. */
int tb_graph_param_upload(tb_graph *g, int i, const float *host);
int tb_graph_param_download(tb_graph *g, int i, float *host);
/* Seed for dropout masks; each training forward advances a step counter. */
void tb_graph_set_seed(tb_graph *g, uint64_t seed);
/* The training-forward counter (dropout masks are a function of seed and it):
 * saved and restored to resume a run. */
uint64_t tb_graph_step(const tb_graph *g);
void tb_graph_set_step(tb_graph *g, uint64_t step);
/* An i32 {1} in backend memory that the caller fills with tb_graph_step(g)
 * before every training forward (NULL: none, the default). Dropout then
 * makes its seed on the device from it (the same masks as without), so a
 * captured training forward replays with each step's own masks. */
void tb_graph_set_step_source(tb_graph *g, const tb_tensor *step);
const tb_tensor *tb_graph_step_source(const tb_graph *g);

#ifdef __cplusplus
}
#endif
#endif
