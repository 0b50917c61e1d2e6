#include "tricks/label_smoothing.h"

#include <math.h>

#include "kernels/error.h"

double tb_label_smoothing_on(int k, double eps)
{
    (void)k;
    return 1.0 - eps;
}

double tb_label_smoothing_off(int k, double eps) { return k > 1 ? eps / (double)(k - 1) : 0.0; }

int tb_label_smoothing_row(float *row, int k, int label, double eps)
{
    TB_CHECK(k >= 2, TB_ERR_INVALID, "label smoothing: %d classes, need at least 2", k);
    TB_CHECK(label >= 0 && label < k, TB_ERR_INVALID, "label smoothing: label %d outside [0, %d)", label, k);
    TB_CHECK(isfinite(eps) && eps >= 0 && eps < 1, TB_ERR_INVALID,
             "tricks.label_smoothing = %g: must be in [0, 1)", eps);
    float off = (float)tb_label_smoothing_off(k, eps);
    for (int i = 0; i < k; i++)
        row[i] = off;
    row[label] = (float)tb_label_smoothing_on(k, eps);
    return TB_OK;
}
