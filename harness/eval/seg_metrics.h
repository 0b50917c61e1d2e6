/* Semantic segmentation metrics from a confusion histogram: pixel accuracy,
 * per-class IoU and mean IoU, accumulated batch by batch.
 *
 * The histogram is classes x classes int64, row = target class, column =
 * predicted class (torchvision's ConfusionMatrix layout): hist[t * classes + p]
 * counts the labelled pixels of target t predicted as p. A pixel whose target
 * is negative or equal to ignore_label is not labelled: it counts nowhere,
 * whatever its prediction (GluonCV zeroes the prediction there, mmseg masks it).
 *
 *   pixel accuracy = sum_c hist[c,c] / sum hist   (NaN with no labelled pixel;
 *                    GluonCV prints 0 there, its denominator has + eps)
 *   IoU_c = hist[c,c] / (row_c + col_c - hist[c,c])   (NaN when that union is 0:
 *           c is neither in the target nor predicted on a labelled pixel)
 *   mean IoU, two conventions that differ only for such absent classes:
 *     TB_SEG_MIOU_ALL: the mean over all classes, an absent class counting
 *       IoU 0 -- GluonCV's SegmentationMetric (inter / (eps + union), then
 *       .mean() over nclass), the convention of the Bag-of-Tricks FCN table.
 *     TB_SEG_MIOU_PRESENT: the mean over the classes whose union is > 0 --
 *       mmsegmentation's IoUMetric (inter / union, then np.nanmean).
 *   A class predicted but never in the target has union > 0 and IoU 0 in
 *   both. Apart from the eps (a relative 1e-16) both are exact ratios here.
 *   With no labelled pixel and no class present, ALL gives 0, PRESENT NaN.
 *
 * Labels: a labelled pixel's target must be < classes and its prediction in
 * 0..classes-1; anything else is an error (names the pixel) and adds nothing.
 */
#ifndef TB_SEG_METRICS_H
#define TB_SEG_METRICS_H

#include <stdint.h>

#include "kernels/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tb_seg_miou_mode {
    TB_SEG_MIOU_ALL = 0,  /* GluonCV: all classes, absent ones count 0 */
    TB_SEG_MIOU_PRESENT   /* mmsegmentation: nan-mean over classes with a union */
} tb_seg_miou_mode;

typedef struct tb_seg_metrics tb_seg_metrics;

/* classes > 0; ignore_label: the target value to ignore (255 for VOC/ADE20K
 * PNGs; any negative value ignores only negative targets). */
int tb_seg_metrics_create(tb_seg_metrics **out, int classes, int ignore_label);
void tb_seg_metrics_destroy(tb_seg_metrics *m);
void tb_seg_metrics_reset(tb_seg_metrics *m);  /* zeroes the histogram */
int tb_seg_metrics_classes(const tb_seg_metrics *m);
int tb_seg_metrics_ignore_label(const tb_seg_metrics *m);

/* Accumulates count pixels: pred and target are label maps of dtype TB_I32
 * or TB_U8 each (host memory, any mix). */
int tb_seg_metrics_add(tb_seg_metrics *m, const void *pred, tb_dtype pred_dtype, const void *target,
                       tb_dtype target_dtype, int64_t count);
/* The same with tensors of equal numel (e.g. pred {n, h, w}, target {n, h, w}). */
int tb_seg_metrics_add_tensors(tb_seg_metrics *m, const tb_tensor *pred, const tb_tensor *target);

/* dst += src (same classes and ignore label), e.g. histograms of several
 * workers or shards. */
int tb_seg_metrics_merge(tb_seg_metrics *dst, const tb_seg_metrics *src);

/* The histogram, classes * classes, row = target, column = prediction. */
const int64_t *tb_seg_metrics_hist(const tb_seg_metrics *m);
int64_t tb_seg_metrics_labelled(const tb_seg_metrics *m);  /* sum of the histogram */
int64_t tb_seg_metrics_correct(const tb_seg_metrics *m);   /* its trace */

double tb_seg_pixel_accuracy(const tb_seg_metrics *m);
double tb_seg_class_iou(const tb_seg_metrics *m, int cls);  /* NaN: absent class or cls out of range */
double tb_seg_miou(const tb_seg_metrics *m, tb_seg_miou_mode mode);

#ifdef __cplusplus
}
#endif
#endif
