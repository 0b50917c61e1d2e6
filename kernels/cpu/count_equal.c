/* count[0] = the number of positions where two i32 vectors agree. */
#include "kernels/cpu/cpu_ops.h"
#include "kernels/error.h"

int tb_cpu_count_equal(tb_backend *be, tb_tensor *count, const tb_tensor *a, const tb_tensor *b)
{
    (void)be; /* a batch's worth of labels: not worth a thread team */
    const int32_t *x = a->data, *y = b->data;
    int64_t n = a->shape[0], same = 0;
    for (int64_t i = 0; i < n; i++)
        same += x[i] == y[i];
    *(int32_t *)count->data = (int32_t)same;
    return TB_OK;
}
