/* PENDING: being implemented. */
#include "kernels/cpu/cpu_ops.h"
#include "kernels/error.h"

int tb_cpu_mixup_batch(tb_backend *be, tb_tensor *y, const tb_tensor *x, float lam)
{
    (void)be;
    (void)y;
    (void)x;
    (void)lam;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu mixup_batch: not implemented yet");
}

int tb_cpu_cutmix_batch(tb_backend *be, tb_tensor *y, const tb_tensor *x, int y0, int y1, int x0, int x1)
{
    (void)be;
    (void)y;
    (void)x;
    (void)y0;
    (void)y1;
    (void)x0;
    (void)x1;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu cutmix_batch: not implemented yet");
}

int tb_cpu_reverse_labels(tb_backend *be, tb_tensor *labels_b, const tb_tensor *labels)
{
    (void)be;
    (void)labels_b;
    (void)labels;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "cpu reverse_labels: not implemented yet");
}
