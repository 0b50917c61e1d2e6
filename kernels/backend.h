/* A backend is a table of function pointers plus a context (ggml's
 * {iface, context}), chosen at run time. Every op of kernels/ops.h has a slot
 * with exactly the front-end's prototype; an op a backend does not implement
 * has a NULL slot and is reported by the front-end as unsupported, never
 * skipped. Backends: kernels/cpu (the reference) and kernels/cuda.
 */
#ifndef TB_BACKEND_H
#define TB_BACKEND_H

#include <stdbool.h>
#include <stddef.h>

#include "kernels/ops.h"
#include "kernels/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tb_device_kind { TB_DEVICE_AUTO = 0, TB_DEVICE_CPU, TB_DEVICE_CUDA } tb_device_kind;

typedef enum tb_op_id {
    TB_OP_CONV2D_FORWARD,
    TB_OP_CONV2D_BACKWARD_DATA,
    TB_OP_CONV2D_BACKWARD_FILTER,
    TB_OP_BATCHNORM_FORWARD_TRAIN,
    TB_OP_BATCHNORM_FORWARD_EVAL,
    TB_OP_BATCHNORM_BACKWARD,
    TB_OP_RELU_FORWARD,
    TB_OP_RELU_BACKWARD,
    TB_OP_MAXPOOL_FORWARD,
    TB_OP_MAXPOOL_BACKWARD,
    TB_OP_AVGPOOL_FORWARD,
    TB_OP_AVGPOOL_BACKWARD,
    TB_OP_GLOBAL_AVGPOOL_FORWARD,
    TB_OP_GLOBAL_AVGPOOL_BACKWARD,
    TB_OP_LINEAR_FORWARD,
    TB_OP_LINEAR_BACKWARD,
    TB_OP_ADD_FORWARD,
    TB_OP_ADD_BACKWARD,
    TB_OP_CONCAT_FORWARD,
    TB_OP_CONCAT_BACKWARD,
    TB_OP_DROPOUT_FORWARD,
    TB_OP_DROPOUT_BACKWARD,
    TB_OP_SOFTMAX_CE_FORWARD,
    TB_OP_SOFTMAX_CE_BACKWARD,
    TB_OP_SOFT_TARGETS,
    TB_OP_SOFTMAX,
    TB_OP_MIXUP_BATCH,
    TB_OP_CUTMIX_BATCH,
    TB_OP_REVERSE_LABELS,
    TB_OP_FILL,
    TB_OP_COPY,
    TB_OP_CONVERT,
    TB_OP_AXPBY,
    TB_OP_NONFINITE_CHECK,
    TB_OP_SUMSQ,
    TB_OP_SGD_STEP,
    TB_OP_BATCHNORM_BACKWARD_EVAL,
    TB_OP_ROI_ALIGN_FORWARD,
    TB_OP_ROI_ALIGN_BACKWARD,
    TB_OP_SMOOTH_L1_FORWARD,
    TB_OP_SMOOTH_L1_BACKWARD,
    TB_OP_RPN_TARGETS,
    TB_OP_RPN_PROPOSALS,
    TB_OP_ROI_TARGETS,
    TB_OP_DETECT_BOXES,
    TB_OP_RESIZE_BILINEAR_FORWARD,
    TB_OP_RESIZE_BILINEAR_BACKWARD,
    TB_OP_BATCHNORM_RELU_FORWARD_TRAIN,
    TB_OP_BATCHNORM_RELU_FORWARD_EVAL,
    TB_OP_BATCHNORM_RELU_BACKWARD,
    TB_OP_ARGMAX,
    TB_OP_COUNT_EQUAL,
    TB_OP_COUNT
} tb_op_id;

const char *tb_op_name(tb_op_id op);

typedef struct tb_backend_iface {
    /* memory: device buffers (host memory for the CPU backend) */
    int (*alloc)(tb_backend *be, void **ptr, size_t bytes);
    void (*free)(tb_backend *be, void *ptr);
    /* host-visible staging buffers (pinned on CUDA) for the data loader */
    int (*alloc_host)(tb_backend *be, void **ptr, size_t bytes);
    void (*free_host)(tb_backend *be, void *ptr);
    int (*upload)(tb_backend *be, void *dst, const void *src, size_t bytes);   /* host -> device, async on the stream */
    int (*download)(tb_backend *be, void *dst, const void *src, size_t bytes); /* device -> host, waits */
    int (*synchronize)(tb_backend *be);
    void (*destroy)(tb_backend *be);
    /* the next batch's upload, overlapped with the running step (CUDA: a copy
     * stream and two events; the CPU copies at once and waits for nothing):
     * upload_next copies once the stream has passed its last mark_consumed,
     * wait_uploaded makes the stream wait for those copies */
    int (*upload_next)(tb_backend *be, void *dst, const void *src, size_t bytes);
    int (*wait_uploaded)(tb_backend *be);
    int (*mark_consumed)(tb_backend *be);
    /* capture of the ops issued between capture_begin and capture_end into a
     * graph replayed by one call (CUDA graphs); NULL where the backend has no
     * such thing (the CPU), and then tb_can_capture is false */
    int (*capture_begin)(tb_backend *be);
    int (*capture_end)(tb_backend *be, void **graph);
    int (*replay)(tb_backend *be, void *graph);
    void (*replay_free)(tb_backend *be, void *graph);
    /* whether this backend implements op for activations of dtype dt */
    bool (*supports_op)(tb_backend *be, tb_op_id op, tb_dtype dt);
    /* device memory in use and in all (CUDA: cudaMemGetInfo, so with the
     * context and any other process); NULL where memory is the host's */
    int (*device_memory)(tb_backend *be, size_t *used, size_t *total);

    /* ops: prototypes identical to kernels/ops.h */
    int (*conv2d_forward)(tb_backend *, tb_tensor *, const tb_tensor *, const tb_tensor *, const tb_tensor *,
                          const tb_conv2d_params *);
    int (*conv2d_backward_data)(tb_backend *, tb_tensor *, const tb_tensor *, const tb_tensor *,
                                const tb_conv2d_params *);
    int (*conv2d_backward_filter)(tb_backend *, tb_tensor *, tb_tensor *, const tb_tensor *, const tb_tensor *,
                                  const tb_conv2d_params *);
    /* plan: the query at graph build, where a backend may choose (and time)
     * its algorithms; false: the check before a call, which never times */
    size_t (*conv2d_workspace_size)(tb_backend *, const tb_tensor *, const tb_tensor *, const tb_tensor *,
                                    const tb_conv2d_params *, bool plan);
    int (*batchnorm_forward_train)(tb_backend *, tb_tensor *, tb_tensor *, tb_tensor *, tb_tensor *, tb_tensor *,
                                   const tb_tensor *, const tb_tensor *, const tb_tensor *, float, float);
    int (*batchnorm_forward_eval)(tb_backend *, tb_tensor *, const tb_tensor *, const tb_tensor *,
                                  const tb_tensor *, const tb_tensor *, const tb_tensor *, float);
    int (*batchnorm_backward)(tb_backend *, tb_tensor *, tb_tensor *, tb_tensor *, const tb_tensor *,
                              const tb_tensor *, const tb_tensor *, const tb_tensor *, const tb_tensor *);
    int (*relu_forward)(tb_backend *, tb_tensor *, const tb_tensor *);
    int (*relu_backward)(tb_backend *, tb_tensor *, const tb_tensor *, const tb_tensor *);
    int (*maxpool_forward)(tb_backend *, tb_tensor *, const tb_tensor *, const tb_pool_params *);
    int (*maxpool_backward)(tb_backend *, tb_tensor *, const tb_tensor *, const tb_tensor *, const tb_tensor *,
                            const tb_pool_params *);
    int (*avgpool_forward)(tb_backend *, tb_tensor *, const tb_tensor *, const tb_pool_params *);
    int (*avgpool_backward)(tb_backend *, tb_tensor *, const tb_tensor *, const tb_pool_params *);
    int (*global_avgpool_forward)(tb_backend *, tb_tensor *, const tb_tensor *);
    int (*global_avgpool_backward)(tb_backend *, tb_tensor *, const tb_tensor *);
    int (*linear_forward)(tb_backend *, tb_tensor *, const tb_tensor *, const tb_tensor *, const tb_tensor *);
    int (*linear_backward)(tb_backend *, tb_tensor *, tb_tensor *, tb_tensor *, const tb_tensor *,
                           const tb_tensor *, const tb_tensor *);
    int (*add_forward)(tb_backend *, tb_tensor *, const tb_tensor *, const tb_tensor *);
    int (*add_backward)(tb_backend *, tb_tensor *, tb_tensor *, const tb_tensor *);
    int (*concat_forward)(tb_backend *, tb_tensor *, const tb_tensor *const *, int);
    int (*concat_backward)(tb_backend *, tb_tensor *const *, int, const tb_tensor *);
    /* seed, salt, step: tb_dropout_forward_at_step (step NULL: seed as given) */
    int (*dropout_forward)(tb_backend *, tb_tensor *, tb_tensor *, const tb_tensor *, float, uint64_t, uint64_t,
                           const tb_tensor *);
    int (*dropout_backward)(tb_backend *, tb_tensor *, const tb_tensor *, const tb_tensor *, float);
    int (*softmax_ce_forward)(tb_backend *, tb_tensor *, tb_tensor *, const tb_tensor *, const tb_tensor *,
                              const tb_tensor *, float);
    int (*softmax_ce_backward)(tb_backend *, tb_tensor *, const tb_tensor *, const tb_tensor *,
                               const tb_tensor *, float, float, const tb_tensor *);
    int (*soft_targets)(tb_backend *, tb_tensor *, const tb_tensor *, const tb_tensor *, const tb_tensor *, float);
    int (*softmax)(tb_backend *, tb_tensor *, const tb_tensor *, float);
    int (*argmax)(tb_backend *, tb_tensor *, const tb_tensor *);
    int (*count_equal)(tb_backend *, tb_tensor *, const tb_tensor *, const tb_tensor *);
    int (*mixup_batch)(tb_backend *, tb_tensor *, const tb_tensor *, const tb_tensor *);
    int (*cutmix_batch)(tb_backend *, tb_tensor *, const tb_tensor *, const tb_tensor *);
    int (*reverse_labels)(tb_backend *, tb_tensor *, const tb_tensor *);
    int (*fill)(tb_backend *, tb_tensor *, float);
    int (*copy)(tb_backend *, tb_tensor *, const tb_tensor *);
    int (*convert)(tb_backend *, tb_tensor *, const tb_tensor *);
    int (*axpby)(tb_backend *, tb_tensor *, float, const tb_tensor *, float);
    int (*nonfinite_check)(tb_backend *, tb_tensor *, const tb_tensor *);
    int (*sumsq)(tb_backend *, tb_tensor *, const tb_tensor *);
    int (*sgd_step)(tb_backend *, tb_tensor *, tb_tensor *, tb_tensor *, const tb_tensor *, const tb_tensor *,
                    const tb_tensor *, const tb_sgd_params *);
    int (*batchnorm_backward_eval)(tb_backend *, tb_tensor *, tb_tensor *, tb_tensor *, const tb_tensor *,
                                   const tb_tensor *, const tb_tensor *, const tb_tensor *, const tb_tensor *,
                                   float);
    /* detection; a NULL *_workspace_size slot means the op needs no workspace */
    int (*roi_align_forward)(tb_backend *, tb_tensor *, const tb_tensor *, const tb_tensor *,
                             const tb_roi_align_params *);
    int (*roi_align_backward)(tb_backend *, tb_tensor *, const tb_tensor *, const tb_tensor *,
                              const tb_roi_align_params *);
    size_t (*roi_align_workspace_size)(tb_backend *, const tb_tensor *, const tb_tensor *,
                                       const tb_roi_align_params *);
    int (*smooth_l1_forward)(tb_backend *, tb_tensor *, const tb_tensor *, const tb_tensor *, const tb_tensor *,
                             float, float);
    int (*smooth_l1_backward)(tb_backend *, tb_tensor *, const tb_tensor *, const tb_tensor *,
                              const tb_tensor *, float, float, float);
    int (*rpn_targets)(tb_backend *, tb_tensor *, tb_tensor *, tb_tensor *, const tb_tensor *, const tb_tensor *,
                       const tb_tensor *, const tb_rpn_target_params *);
    size_t (*rpn_targets_workspace_size)(tb_backend *, const tb_tensor *, const tb_tensor *,
                                         const tb_rpn_target_params *);
    int (*rpn_proposals)(tb_backend *, tb_tensor *, tb_tensor *, const tb_tensor *, const tb_tensor *,
                         const tb_tensor *, const tb_tensor *, const tb_proposal_params *);
    size_t (*rpn_proposals_workspace_size)(tb_backend *, const tb_tensor *, const tb_tensor *,
                                           const tb_proposal_params *);
    int (*roi_targets)(tb_backend *, tb_tensor *, tb_tensor *, tb_tensor *, tb_tensor *, const tb_tensor *,
                       const tb_tensor *, const tb_tensor *, const tb_tensor *, const tb_tensor *,
                       const tb_roi_target_params *);
    size_t (*roi_targets_workspace_size)(tb_backend *, const tb_tensor *, const tb_tensor *,
                                         const tb_roi_target_params *);
    int (*detect_boxes)(tb_backend *, tb_tensor *, tb_tensor *, tb_tensor *, tb_tensor *, const tb_tensor *,
                        const tb_tensor *, const tb_tensor *, const tb_tensor *, const tb_tensor *,
                        const tb_detect_params *);
    size_t (*detect_boxes_workspace_size)(tb_backend *, const tb_tensor *, const tb_tensor *,
                                          const tb_detect_params *);
    /* segmentation */
    int (*resize_bilinear_forward)(tb_backend *, tb_tensor *, const tb_tensor *);
    int (*resize_bilinear_backward)(tb_backend *, tb_tensor *, const tb_tensor *);
    /* fused batchnorm + add + relu; NULL size slots mean none needed */
    size_t (*batchnorm_relu_reserve_size)(tb_backend *, const tb_tensor *, bool);
    size_t (*batchnorm_relu_workspace_size)(tb_backend *, const tb_tensor *, bool);
    int (*batchnorm_relu_forward_train)(tb_backend *, tb_tensor *, tb_tensor *, tb_tensor *, tb_tensor *,
                                        tb_tensor *, tb_tensor *, const tb_tensor *, const tb_tensor *,
                                        const tb_tensor *, const tb_tensor *, float, float);
    int (*batchnorm_relu_forward_eval)(tb_backend *, tb_tensor *, const tb_tensor *, const tb_tensor *,
                                       const tb_tensor *, const tb_tensor *, const tb_tensor *, const tb_tensor *,
                                       float);
    int (*batchnorm_relu_backward)(tb_backend *, tb_tensor *, tb_tensor *, tb_tensor *, tb_tensor *, tb_tensor *,
                                   const tb_tensor *, const tb_tensor *, const tb_tensor *, const tb_tensor *,
                                   const tb_tensor *, const tb_tensor *, const tb_tensor *, bool, bool);
} tb_backend_iface;

struct tb_backend {
    tb_backend_iface iface;
    void *ctx;              /* backend-private state */
    tb_device_kind kind;
    char name[128];         /* e.g. "cpu (2 threads)" or "cuda:0 NVIDIA H200" */
    int threads;            /* CPU worker threads (CPU backend) */
    void *workspace;        /* scratch for ops, reserved at graph build */
    size_t workspace_size;
};

/* Creates the backend for `kind`. AUTO picks CUDA when this binary was built
 * with it and a usable GPU is present, else the CPU; *note (optional) receives
 * a sentence saying what was picked and why. threads <= 0 means all cores. */
int tb_backend_create(tb_backend **out, tb_device_kind kind, int threads, char *note, size_t note_size);
void tb_backend_destroy(tb_backend *be);
int tb_device_parse(const char *s, tb_device_kind *out);
const char *tb_device_name(tb_device_kind kind);

/* Grows the workspace to at least `bytes` (only at graph build, never in a step). */
int tb_backend_reserve_workspace(tb_backend *be, size_t bytes);

/* Convenience wrappers over the iface that add error messages. */
int tb_alloc(tb_backend *be, void **ptr, size_t bytes);
void tb_free(tb_backend *be, void *ptr);
int tb_upload(tb_backend *be, tb_tensor *dst, const void *src);
int tb_download(tb_backend *be, void *dst, const tb_tensor *src);
int tb_synchronize(tb_backend *be);
bool tb_supports_op(tb_backend *be, tb_op_id op, tb_dtype dt);
/* Device memory in use and in all; TB_ERR_UNSUPPORTED for the CPU backend. */
int tb_device_memory(tb_backend *be, size_t *used, size_t *total);

/* Overlapped uploads: the next step's input copied while this step runs.
 * tb_upload_next(dst) starts the copy once the ops issued before the last
 * tb_mark_consumed have finished reading dst's previous contents (CUDA: on
 * a second stream); tb_wait_uploaded makes the ops issued after it wait for
 * the copy. tb_mark_consumed may be captured (tb_capture_begin): the replay
 * then marks the point. src must stay untouched until the copy is waited
 * for and has run (the next synchronizing call, e.g. tb_download). */
int tb_upload_next(tb_backend *be, tb_tensor *dst, const void *src);
int tb_wait_uploaded(tb_backend *be);
int tb_mark_consumed(tb_backend *be);

/* Captured op sequences (CUDA graphs). Between tb_capture_begin and
 * tb_capture_end the ops of this backend are recorded instead of run; the
 * capture then replays them, with the same pointers and the same scalar
 * arguments, on each tb_capture_replay (values that change per replay must
 * be tensors the ops read when they run: kernels/ops.h, "Per-step scalars").
 * Nothing between begin and end may allocate, read back or synchronize, and
 * the buffers it uses (the workspace included) must outlive the capture.
 * tb_capture_end always ends the capture, also after a failed op (pass the
 * failure as `failed`: the capture is then discarded and *out is NULL). */
typedef struct tb_capture tb_capture;
bool tb_can_capture(const tb_backend *be);
int tb_capture_begin(tb_backend *be);
int tb_capture_end(tb_backend *be, bool failed, tb_capture **out);
int tb_capture_replay(tb_backend *be, tb_capture *c);
void tb_capture_free(tb_backend *be, tb_capture *c);

/* Backend constructors (kernels/cpu/backend_cpu.c, kernels/cuda/backend_cuda.cu). */
int tb_cpu_backend_create(tb_backend **out, int threads);
/* Whether a CUDA device is usable; on false, `why` says why (no driver, no device, ...). */
bool tb_cuda_available(char *why, size_t why_size);
int tb_cuda_backend_create(tb_backend **out, int device_index);

#ifdef __cplusplus
}
#endif
#endif
