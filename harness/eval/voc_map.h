/* PASCAL VOC detection evaluation: per-class average precision and mAP,
 * computed exactly as the VOC devkit (VOCevaldet.m, and its Python ports in
 * py-faster-rcnn, Detectron2 and GluonCV), accumulated image by image.
 *
 * Use: create(classes); add_image (or add_batch) for every evaluated image;
 * then class() / map(). More images may be added after reading results; the
 * next read recomputes. Memory grows with the number of detections (16 bytes
 * each, host side); ground truth is not kept, only counted.
 *
 * Matching (per class, per image, as the devkit):
 *   - Detections are taken in descending score order; equal scores keep the
 *     order in which they were added (a stable sort, as MATLAB's sort; the
 *     Python ports use an unstable argsort there).
 *   - A detection is compared with EVERY gt box of its class in its image
 *     (difficult or not, matched or not) and takes the one of highest IoU
 *     (the first one on ties).
 *   - IoU >= 0.5 (VOCopts.minoverlap; exactly 0.5 counts): if that gt is
 *     difficult the detection is ignored (neither TP nor FP); else the first
 *     detection to reach it is a TP and every later one a FP (duplicate),
 *     even when another, unmatched gt of lower IoU is near.
 *   - IoU < 0.5, or no gt of its class in the image: FP.
 *   - The recall denominator is the number of non-difficult gt boxes; a
 *     difficult gt that nothing detects costs nothing.
 * Ignored detections are dropped before the precision/recall curve is made:
 * in the devkit they add a point equal to the previous one (or (0, 0) first),
 * which changes neither AP below.
 *
 * AP from the curve rec[i] = TP_i / gt, prec[i] = TP_i / (TP_i + FP_i):
 *   11-point (VOC2007): sum over t = k * 0.1, k = 0..10, of max{prec[i] :
 *     rec[i] >= t} (0 if none) / 11. t is computed as k * 0.1 in double, as
 *     numpy's arange(0, 1.1, 0.1) in the Python ports, so t(3) is
 *     0.30000000000000004 and a recall of exactly 3/10 does not reach it.
 *   area (VOC2010+): the area under the precision envelope
 *     p(r) = max{prec[i] : rec[i] >= r}, with (0, 0) and (1, 0) added at the
 *     ends, summed over the steps where recall changes (from the end: the
 *     last bits may differ from numpy's pairwise sum).
 *   A class with gt but no detection has AP 0. A class without non-difficult
 *   gt has AP NaN (recall is undefined: the devkit divides by 0), and mAP is
 *   the mean over the classes with at least one non-difficult gt (GluonCV's
 *   nanmean; the devkit's mean would be NaN). mAP is NaN when no class has gt.
 *
 * Boxes and the "+1 pixel" choice. Boxes are f32 (x1, y1, x2, y2) with
 * continuous coordinates, covering [x1, x2) x [y1, y2), width x2 - x1, as
 * in kernels/ops.h. The devkit uses inclusive pixel indices and a width of
 * xmax - xmin + 1. The VOC data layer converts an annotation by
 * x1 = xmin - 1, y1 = ymin - 1, x2 = xmax, y2 = ymax, so that our width
 * x2 - x1 equals the devkit's xmax - xmin + 1 and our IoU (no +1) equals the
 * devkit's IoU (with +1) exactly; detections are in the same coordinates.
 * IoU is unchanged when both boxes are scaled by the same per-axis factors,
 * so gt and detections may be compared in the resized input frame too.
 * IoU is computed in double from the f32 coordinates.
 */
#ifndef TB_VOC_MAP_H
#define TB_VOC_MAP_H

#include <stdint.h>

#include "kernels/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The IoU at or above which a detection matches a gt box. */
#define TB_VOC_IOU_THRESHOLD 0.5

typedef enum tb_voc_metric {
    TB_VOC_AP_11POINT = 0,  /* VOC2007 11-point interpolated AP */
    TB_VOC_AP_AREA          /* VOC2010+ area under the precision envelope */
} tb_voc_metric;

typedef struct tb_voc_class_result {
    int64_t gt;             /* non-difficult gt boxes: the recall denominator */
    int64_t gt_difficult;   /* difficult gt boxes */
    int64_t detections;     /* detections added with this label */
    int64_t tp, fp, ignored;/* their outcomes (tp + fp + ignored = detections) */
    double ap_11point;      /* NaN when gt == 0 */
    double ap_area;         /* NaN when gt == 0 */
} tb_voc_class_result;

typedef struct tb_voc_eval tb_voc_eval;

/* classes: the number of object classes (labels 0..classes-1, no background). */
int tb_voc_eval_create(tb_voc_eval **out, int classes);
void tb_voc_eval_destroy(tb_voc_eval *ev);
/* Forgets every image added (keeps the class count and the memory). */
void tb_voc_eval_reset(tb_voc_eval *ev);
int tb_voc_eval_classes(const tb_voc_eval *ev);

/* Adds one image: its gt boxes and its detections.
 *   gt_boxes f32 [gt_count * 4], gt_labels i32 [gt_count] in 0..classes-1,
 *   gt_difficult u8 [gt_count] (nonzero = difficult; NULL = none is difficult);
 *   det_boxes f32 [det_count * 4], det_scores f32 [det_count] (finite),
 *   det_labels i32 [det_count] in 0..classes-1.
 * Pointers may be NULL when their count is 0. Bad input (a label out of
 * range, a non-finite box or score) is an error and adds nothing. */
int tb_voc_eval_add_image(tb_voc_eval *ev, const float *gt_boxes, const int32_t *gt_labels,
                          const uint8_t *gt_difficult, int gt_count, const float *det_boxes,
                          const float *det_scores, const int32_t *det_labels, int det_count);

/* Adds the first `images` images of a batch, in host memory, laid out as
 * the detection ops read and write them (kernels/ops.h):
 *   gt_boxes f32 {n, g, 4}, gt_labels i32 {n, g}, gt_difficult u8 {n, g}
 *   (NULL or data NULL: none difficult), gt_count i32 {n};
 *   det_boxes f32 {n, d, 4}, det_scores f32 {n, d}, det_labels i32 {n, d},
 *   det_count i32 {n} (tb_detect_boxes' outputs).
 * images <= n leaves out the padding rows of a last, partial eval batch.
 * On an error in image i, images before i stay added (the message names i). */
int tb_voc_eval_add_batch(tb_voc_eval *ev, const tb_tensor *gt_boxes, const tb_tensor *gt_labels,
                          const tb_tensor *gt_difficult, const tb_tensor *gt_count,
                          const tb_tensor *det_boxes, const tb_tensor *det_scores,
                          const tb_tensor *det_labels, const tb_tensor *det_count, int images);

/* Counts and both APs of class cls over every image added so far. */
int tb_voc_eval_class(tb_voc_eval *ev, int cls, tb_voc_class_result *out);
/* Mean AP over the classes with non-difficult gt (NaN if there is none);
 * counted (optional) receives the number of those classes. */
int tb_voc_eval_map(tb_voc_eval *ev, tb_voc_metric metric, double *map, int *counted);

/* The AP of one precision/recall curve (rec non-decreasing), as above; n may
 * be 0. Exposed for tests and for other evaluators. */
double tb_voc_ap(const double *rec, const double *prec, int64_t n, tb_voc_metric metric);

/* IoU of two continuous boxes (x1, y1, x2, y2), in double; 0 without overlap. */
double tb_voc_box_iou(const float *a, const float *b);

#ifdef __cplusplus
}
#endif
#endif
