/* One training step of a classification network, shared by the trainer and
 * `trickbench bench`: upload -> mix -> forward -> loss (CE, label smoothing,
 * distillation) -> backward -> overflow check -> SGD -> EMA, with one host
 * read at the end (the loss, and the overflow flag under fp16 loss scaling).
 * Every buffer is allocated once in tb_step_init.
 *
 * Captured steps (opt.capture, on a backend that can capture: CUDA graphs):
 * everything between the upload and the read-back is recorded once and then
 * replayed by one launch per step. What changes from step to step reaches
 * the replay through device memory: the batch, the labels and the per-step
 * scalars (learning rate, mixup weight, CutMix box, step counter, fp16 loss
 * scale) are uploaded before it.
 * One capture per kind of mix (none, mixup, CutMix), each recorded on the
 * second step of its kind (the first runs op by op, so that every lazy
 * set-up happens outside the capture); all are recorded again only when the
 * backend's workspace moved. Gradient clipping is captured too (its norm stays on the
 * device, read by the SGD kernels), and dropout (its masks are seeded on the
 * device from the uploaded step counter: tb_graph_set_step_source).
 *
 * Overlapped upload: tb_step_run(..., next_images, ...) starts copying the
 * next step's images (CUDA: on the copy stream) as soon as this step has
 * read its own, so the copy runs while this step computes; the next
 * tb_step_run with those images then uploads nothing but the labels and the
 * scalars. The next images' host buffer must stay untouched until that next
 * tb_step_run returns.
 */
#ifndef TB_TRAIN_STEP_H
#define TB_TRAIN_STEP_H

#include <stdbool.h>
#include <stdint.h>

#include "kernels/backend.h"
#include "models/graph.h"
#include "tricks/distill.h"
#include "tricks/ema.h"
#include "tricks/grad_clip.h"
#include "tricks/loss_scale.h"
#include "tricks/mix.h"

typedef struct tb_step_options {
    float label_smoothing;    /* eps; 0 = hard labels */
    bool mixing;              /* mixup or cutmix may be drawn: allocate the mix buffers */
    tb_graph *teacher;        /* distillation teacher (eval mode), NULL = none */
    float temperature;        /* distillation */
    float hard_weight;
    bool fp16_scaling;        /* check gradients for overflow and skip such steps */
    bool dynamic_scale;
    double loss_scale;        /* initial (dynamic) or fixed (static) scale */
    double momentum, weight_decay;
    bool nesterov;
    double grad_clip;         /* global norm; 0 = off (computed and applied on the device) */
    double ema_decay;         /* 0 = off */
    bool capture;             /* replay captured steps where the backend can (see above) */
} tb_step_options;

enum { TB_STEP_MIX_KINDS = 3 }; /* none, mixup, CutMix: one capture each */

/* The per-step scalars as uploaded (host layout = device layout). */
typedef struct tb_step_scalars {
    float lr;
    float lam;                /* mixup / CutMix weight of the first label */
    int32_t box[4];           /* CutMix box {y0, y1, x0, x1} */
    int32_t graph_step;       /* tb_graph_step: the seed of dropout's masks */
    float loss_scale;         /* fp16 loss scaling (1 without): the loss gradient's factor, SGD's divisor */
} tb_step_scalars;

typedef struct tb_step {
    tb_backend *be;
    tb_graph *g;
    tb_step_options opt;
    int n, h, w, c, k;
    tb_tensor images;         /* f32 {n,h,w,c}: the uploaded batch */
    tb_tensor mixed;          /* f32 {n,h,w,c}: the mixed batch (when mixing) */
    tb_tensor labels, labels_b; /* i32 {n} */
    tb_tensor targets;        /* f32 {n,k}: soft targets (smoothing or mixing) */
    tb_tensor probs;          /* f32 {n,k} */
    tb_tensor pred;           /* i32 {n}: each row's class by the probabilities (hard labels) */
    tb_tensor readback;       /* u8 {12}: the loss, the flag and the hits, read back together */
    tb_tensor loss;           /* f32 {1}, readback bytes 0-3 */
    tb_tensor flag;           /* i32 {1}, readback bytes 4-7: gradient overflow */
    tb_tensor correct;        /* i32 {1}, readback bytes 8-11: top-1 hits (hard labels) */
    tb_tensor scalars;        /* u8 {sizeof(tb_step_scalars)}: uploaded each step */
    tb_tensor lr, lam, box;   /* f32 {1}, f32 {1}, i32 {4}: views of scalars */
    tb_tensor graph_step;     /* i32 {1}: a view of scalars, the graph's step source */
    tb_tensor loss_scale;     /* f32 {1}: a view of scalars */
    tb_step_scalars *host_scalars; /* pinned host memory: the upload's source */
    bool can_capture;
    tb_capture *captures[TB_STEP_MIX_KINDS];
    bool ran_eagerly[TB_STEP_MIX_KINDS];
    void *captured_workspace; /* the workspace they point into */
    int captured_steps;       /* steps run by replay (for tests and bench) */
    int recordings;           /* captures recorded (for tests) */
    const float *staged;      /* host images already uploaded into images by the last run */
    void *mem;
    tb_distill_buffers distill;
    bool have_distill;
    tb_loss_scaler scaler;
    tb_ema ema;
    bool have_ema;
    tb_grad_clip clip;
    bool have_clip;
} tb_step;

int tb_step_init(tb_step *s, tb_graph *g, const tb_step_options *opt);
void tb_step_destroy(tb_step *s);

typedef struct tb_step_result {
    float loss;
    bool skipped;             /* overflow: the optimizer step was dropped */
    int correct;              /* training top-1 hits (only without mixing; -1 otherwise) */
} tb_step_result;

/* One step on a host batch (f32 NHWC normalised images, i32 labels);
 * next_images (optional) are the next step's, uploaded while this one runs. */
int tb_step_run(tb_step *s, const float *images, const int32_t *labels, const tb_mix *mix, double lr,
                const float *next_images, tb_step_result *out);

/* Copies a host f32 batch into the graph's input (converting to its dtype);
 * drops a staged next batch (the next tb_step_run uploads its own again). */
int tb_step_set_input(tb_step *s, const float *images);

/* Waits for the upload of a staged next batch and forgets it: before the
 * caller hands back a batch it passed as next_images to a step whose
 * successor will not run (a loader may refill that memory, and a later run
 * given the same address must upload it again). */
int tb_step_drop_staged(tb_step *s);

#endif
