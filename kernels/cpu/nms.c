/* Greedy non-maximum suppression (torchvision's nms): boxes come in
 * descending score order; box i is kept unless an earlier KEPT box overlaps it
 * with IoU > iou_thresh.
 *
 * Fast path: the coordinates and areas are first copied into separate arrays
 * (structure of arrays), so the inner loop, which tests every later box
 * against a newly kept one, is branch-free and vectorises; it ORs into the
 * suppression flags instead of skipping boxes already suppressed (cheaper
 * than the branch). The sweep stops once max_keep boxes are kept. Work is
 * kept x n IoUs, and nothing is computed for a box that is never kept, which
 * is why this beats a precomputed n x n bitmask (the GPU approach) on a CPU.
 * The naive twin is the textbook double loop over tb_cpu_box_iou. Both
 * compute the IoU with the same float operations in the same order
 * (box.h), so for finite boxes and thresholds in [0, 1] they agree exactly;
 * the unit tests hold them to that.
 */
#include <stdint.h>
#include <string.h>

#include "kernels/cpu/box.h"
#include "kernels/cpu/cpu_ops.h"

size_t tb_cpu_nms_scratch_size(int64_t n)
{
    /* x1, y1, x2, y2, area, and one 32-bit flag per box (the width of a float lane) */
    return (size_t)(n > 0 ? n : 0) * (5 * sizeof(float) + sizeof(int32_t)) + 64;
}

/* sup[j] |= IoU(box i, box j) > thresh for j in [i + 1, n), with the float
 * operations of tb_cpu_box_iou_areas written so that gcc vectorises the loop
 * under the default -ftrapping-math: no conditional arithmetic, only selects
 * (a non-overlap gives inter = 0, and a non-positive union is masked out at
 * the end instead of guarding the division). For thresh >= 0 every decision
 * equals the naive loop's. */
static void nms_suppress(int32_t *restrict sup, const float *restrict x1, const float *restrict y1,
                         const float *restrict x2, const float *restrict y2, const float *restrict area, int64_t i,
                         int64_t n, float thresh)
{
    float ax1 = x1[i], ay1 = y1[i], ax2 = x2[i], ay2 = y2[i], aa = area[i];
    for (int64_t j = i + 1; j < n; j++) {
        float iw = (ax2 < x2[j] ? ax2 : x2[j]) - (ax1 > x1[j] ? ax1 : x1[j]);
        float ih = (ay2 < y2[j] ? ay2 : y2[j]) - (ay1 > y1[j] ? ay1 : y1[j]);
        float inter = (iw > 0.0f ? iw : 0.0f) * (ih > 0.0f ? ih : 0.0f);
        float uni = aa + area[j] - inter;
        float q = inter / uni;
        sup[j] |= (int32_t)(uni > 0.0f) & (int32_t)(q > thresh);
    }
}

/* One sweep is inherently sequential: no threads here. */
int64_t tb_cpu_nms(int32_t *keep, const float *boxes, int64_t n, float iou_thresh, int64_t max_keep, void *scratch)
{
    if (n <= 0 || max_keep <= 0)
        return 0;
    float *x1 = scratch, *y1 = x1 + n, *x2 = y1 + n, *y2 = x2 + n, *area = y2 + n;
    int32_t *sup = (int32_t *)(area + n);
    for (int64_t i = 0; i < n; i++) {
        const float *b = boxes + 4 * i;
        x1[i] = b[0], y1[i] = b[1], x2[i] = b[2], y2[i] = b[3];
        area[i] = tb_cpu_box_area(b);
    }
    memset(sup, 0, (size_t)n * sizeof *sup);
    int64_t kept = 0;
    for (int64_t i = 0; i < n && kept < max_keep; i++) {
        if (sup[i])
            continue;
        keep[kept++] = (int32_t)i;
        if (kept < max_keep)
            nms_suppress(sup, x1, y1, x2, y2, area, i, n, iou_thresh);
    }
    return kept;
}

int64_t tb_cpu_nms_naive(int32_t *keep, const float *boxes, int64_t n, float iou_thresh, int64_t max_keep,
                         unsigned char *suppressed)
{
    int64_t kept = 0;
    memset(suppressed, 0, (size_t)(n > 0 ? n : 0));
    for (int64_t i = 0; i < n && kept < max_keep; i++) {
        if (suppressed[i])
            continue;
        keep[kept++] = (int32_t)i;
        for (int64_t j = i + 1; j < n; j++)
            if (!suppressed[j] && tb_cpu_box_iou(boxes + 4 * i, boxes + 4 * j) > iou_thresh)
                suppressed[j] = 1;
    }
    return kept;
}
