/* Knowledge distillation loss (the paper, section 5.4; GluonCV's
 * DistillationSoftmaxCrossEntropyLoss):
 *
 *   loss = hard_weight * CE(softmax(z), y) + T^2 * CE(softmax(z / T), softmax(r / T))
 *
 * z the student's logits, r the teacher's, y the hard labels (or soft targets
 * when label smoothing or mixup is on: the teacher sees the same mixed batch),
 * T the temperature. The T^2 factor keeps the soft term's gradient magnitude
 * independent of T (Hinton et al.). hard_weight = 1 is the paper's equation;
 * GluonCV instead weights the two terms hard_weight and (1 - hard_weight).
 *
 * tb_distill_loss does the forward and the backward: the loss lands on the
 * device (f32 {1}) and dlogits accumulates grad_scale * d loss / d z, with
 * grad_scale the loss scale (1 without fp16 loss scaling). All buffers come
 * from tb_distill_buffers_alloc, called once; nothing is allocated per step.
 */
#ifndef TB_DISTILL_H
#define TB_DISTILL_H

#include <stdint.h>

#include "kernels/backend.h"
#include "kernels/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tb_distill_buffers {
    tb_tensor probs;          /* f32 {n,k}: softmax(z), saved for the hard backward */
    tb_tensor soft_probs;     /* f32 {n,k}: softmax(z / T) */
    tb_tensor teacher_probs;  /* f32 {n,k}: softmax(r / T) */
    tb_tensor hard_loss;      /* f32 {1}: CE(softmax(z), y), unweighted */
    tb_tensor soft_loss;      /* f32 {1}: CE(softmax(z / T), softmax(r / T)), without T^2 */
    tb_tensor loss;           /* f32 {1}: the total above */
    void *mem;                /* one device allocation for all of them */
} tb_distill_buffers;

int tb_distill_buffers_alloc(tb_distill_buffers *b, tb_backend *be, int64_t n, int64_t k);
void tb_distill_buffers_free(tb_distill_buffers *b, tb_backend *be);

/* Exactly one of labels (i32 {n}) and targets (f32 {n,k}) is given.
 * student and teacher are {n,k} logits (any float dtype); dlogits has the
 * student's shape and dtype. Errors name tricks.distill.* for bad values.
 * The gradient is that of grad_scale * loss, times grad_scale_t[0] when
 * given (f32 {1} in backend memory: a captured step's loss scale). */
int tb_distill_loss(tb_backend *be, tb_tensor *dlogits, tb_distill_buffers *b, const tb_tensor *student,
                    const tb_tensor *teacher, const tb_tensor *labels, const tb_tensor *targets,
                    float temperature, float hard_weight, float grad_scale, const tb_tensor *grad_scale_t);

#ifdef __cplusplus
}
#endif
#endif
