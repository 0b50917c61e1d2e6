#include "tricks/distill.h"

#include <math.h>

#include "kernels/error.h"
#include "kernels/ops.h"

#define SLICE 64 /* floats: 256-byte aligned buffers */

static int64_t aligned(int64_t n) { return (n + SLICE - 1) / SLICE * SLICE; }

int tb_distill_buffers_alloc(tb_distill_buffers *b, tb_backend *be, int64_t n, int64_t k)
{
    *b = (tb_distill_buffers){0};
    TB_CHECK(n >= 1 && k >= 2, TB_ERR_INVALID, "distill: buffers for n = %lld, k = %lld", (long long)n,
             (long long)k);
    int64_t nk = aligned(n * k);
    TB_TRY(tb_alloc(be, &b->mem, (size_t)(3 * nk + 3 * SLICE) * sizeof(float)));
    float *at = b->mem;
    tb_tensor *mats[3] = {&b->probs, &b->soft_probs, &b->teacher_probs};
    for (int i = 0; i < 3; i++, at += nk)
        *mats[i] = tb_tensor_2d(at, TB_F32, n, k);
    tb_tensor *scalars[3] = {&b->hard_loss, &b->soft_loss, &b->loss};
    for (int i = 0; i < 3; i++, at += SLICE)
        *scalars[i] = tb_tensor_1d(at, TB_F32, 1);
    return TB_OK;
}

void tb_distill_buffers_free(tb_distill_buffers *b, tb_backend *be)
{
    tb_free(be, b->mem);
    *b = (tb_distill_buffers){0};
}

static int check_args(const tb_tensor *dlogits, const tb_distill_buffers *b, const tb_tensor *student,
                      const tb_tensor *teacher, const tb_tensor *labels, const tb_tensor *targets,
                      float temperature, float hard_weight)
{
    char s1[64], s2[64];
    TB_CHECK(isfinite(temperature) && temperature > 0, TB_ERR_INVALID,
             "tricks.distill.temperature = %g: must be positive", (double)temperature);
    TB_CHECK(isfinite(hard_weight) && hard_weight >= 0, TB_ERR_INVALID,
             "tricks.distill.hard_weight = %g: must be >= 0", (double)hard_weight);
    TB_CHECK(student->ndim == 2 && tb_same_shape(student, teacher), TB_ERR_INVALID,
             "distill: student logits %s and teacher logits %s must be the same {n,k}",
             tb_shape_str(student, s1, sizeof s1), tb_shape_str(teacher, s2, sizeof s2));
    TB_CHECK(tb_same_shape(dlogits, student) && dlogits->dtype == student->dtype, TB_ERR_INVALID,
             "distill: dlogits %s must match the student logits %s", tb_shape_str(dlogits, s1, sizeof s1),
             tb_shape_str(student, s2, sizeof s2));
    TB_CHECK(tb_same_shape(&b->probs, student), TB_ERR_INVALID,
             "distill: buffers %s were allocated for other logits than %s",
             tb_shape_str(&b->probs, s1, sizeof s1), tb_shape_str(student, s2, sizeof s2));
    TB_CHECK((labels != NULL) != (targets != NULL), TB_ERR_INVALID,
             "distill: give exactly one of hard labels and soft targets");
    return TB_OK;
}

int tb_distill_loss(tb_backend *be, tb_tensor *dlogits, tb_distill_buffers *b, const tb_tensor *student,
                    const tb_tensor *teacher, const tb_tensor *labels, const tb_tensor *targets,
                    float temperature, float hard_weight, float grad_scale, const tb_tensor *grad_scale_t)
{
    TB_TRY(check_args(dlogits, b, student, teacher, labels, targets, temperature, hard_weight));
    float t2 = temperature * temperature;
    TB_TRY(tb_softmax_ce_forward(be, &b->hard_loss, &b->probs, student, labels, targets, 1.0f));
    TB_TRY(tb_softmax(be, &b->teacher_probs, teacher, temperature));
    TB_TRY(tb_softmax_ce_forward(be, &b->soft_loss, &b->soft_probs, student, NULL, &b->teacher_probs,
                                 temperature));
    /* loss = hard_weight * hard + T^2 * soft */
    TB_TRY(tb_copy(be, &b->loss, &b->soft_loss));
    TB_TRY(tb_axpby(be, &b->loss, hard_weight, &b->hard_loss, t2));
    /* d/dz: hard_weight * (p - y) / n  +  T^2 * (q - p_teacher) / (n T) */
    TB_TRY(tb_softmax_ce_backward_scaled(be, dlogits, &b->probs, labels, targets, 1.0f, grad_scale * hard_weight,
                                         grad_scale_t));
    TB_TRY(tb_softmax_ce_backward_scaled(be, dlogits, &b->soft_probs, NULL, &b->teacher_probs, temperature,
                                         grad_scale * t2, grad_scale_t));
    return TB_OK;
}
