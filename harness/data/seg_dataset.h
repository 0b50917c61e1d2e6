/* Semantic-segmentation datasets: images with per-pixel class maps.
 *
 * Two sources:
 *
 * ADE20K (the SceneParsing challenge release, ADEChallengeData2016), split
 * "training" or "validation" ("train" and "val" are accepted as aliases):
 *   ROOT/images/SPLIT/<name>.jpg
 *   ROOT/annotations/SPLIT/<name>.png     8-bit gray label map, same size
 * ROOT may be the ADEChallengeData2016 folder itself or a folder holding it
 * (GluonCV's root). The images are the .jpg files of images/SPLIT sorted by
 * name (byte order); every one must have its annotation (checked at open).
 * 150 classes (objectInfo150 order, short names: the first synonym of
 * GluonCV's ADE20KSegmentation.CLASSES): stored value v in 1..150 is class
 * v - 1, 0 ("other objects") is ignored, as GluonCV's mask - 1 and mmseg's
 * reduce_zero_label. Images are read as RGB and normalised with the ImageNet
 * mean/std.
 *
 * A detection dataset's class masks (det_dataset.h), e.g. fashion-scenes
 * (root holding FashionScenes/, sets "FashionScenes:train" and
 * "FashionScenes:test"): classes + 1 classes, class 0 "background" and
 * class k the format's class k - 1, i.e. the stored mask value is the class;
 * VOC's 255 ("void", object borders) is ignored. Channels and
 * normalisation are the format's (fashion-scenes: gray, Fashion-MNIST
 * mean/std).
 *
 * Label maps: tb_seg_dataset_read gives a u8 map with TB_SEG_IGNORE_U8 (255)
 * for ignored pixels; the loader (seg_loader.h) hands batches i32 labels
 * with -1 (TB_SEG_IGNORE) for ignored pixels, the convention of
 * tb_softmax_ce_* (negative label = ignored).
 *
 * Errors name the file: a missing annotation (TB_ERR_DATA at open), an
 * undecodable or truncated image or PNG, a stored value above the class
 * count (other than VOC's 255 in masks), an annotation whose size is not
 * the image's (TB_ERR_DATA at read).
 */
#ifndef TB_SEG_DATASET_H
#define TB_SEG_DATASET_H

#include <stdbool.h>
#include <stdint.h>

#include "harness/data/dataset.h"
#include "harness/data/det_dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Ignored pixels: in u8 label maps of tb_seg_dataset_read, and in the i32
 * labels of a batch. */
#define TB_SEG_IGNORE_U8 255
#define TB_SEG_IGNORE (-1)
/* ADE20K's class count (SceneParsing, objectInfo150). */
#define TB_ADE20K_CLASSES 150
/* The folder an ADE20K root may hold. */
#define TB_ADE20K_FOLDER "ADEChallengeData2016"

typedef struct tb_seg_dataset tb_seg_dataset;

/* ADE20K split `split` ("training" | "validation" | "train" | "val") under
 * `root`. Errors: TB_ERR_INVALID (unknown split), TB_ERR_MISSING (root or
 * images/SPLIT absent), TB_ERR_DATA (no .jpg images, or an image without
 * its annotation, named), TB_ERR_NOMEM. */
int tb_seg_dataset_open_ade20k(tb_seg_dataset **out, const char *root, const char *split);
/* The class masks of the detection dataset tb_det_dataset_open(root, sets,
 * format) would open (its errors). */
int tb_seg_dataset_open_det(tb_seg_dataset **out, const char *root, const char *sets, const tb_det_format *format);
/* By format name: "ade20k" (split training / validation) or "fashion-scenes"
 * (sets FashionScenes:train / FashionScenes:test); train selects the split.
 * TB_ERR_INVALID for another name. */
int tb_seg_dataset_open(tb_seg_dataset **out, const char *format, const char *root, bool train);
void tb_seg_dataset_close(tb_seg_dataset *ds);

/* "ade20k" or the detection format's name ("fashion-scenes", "voc"). */
const char *tb_seg_dataset_name(const tb_seg_dataset *ds);
int64_t tb_seg_dataset_count(const tb_seg_dataset *ds);
int tb_seg_dataset_classes(const tb_seg_dataset *ds);
/* Name of class `label` (0-based), "?" outside 0..classes-1. */
const char *tb_seg_dataset_class_name(const tb_seg_dataset *ds, int label);
int tb_seg_dataset_channels(const tb_seg_dataset *ds);
/* Per-channel mean/std, 0..255 scale, 3 entries (gray repeats channel 0). */
void tb_seg_dataset_normalization(const tb_seg_dataset *ds, float mean[3], float std[3]);
/* A short name of sample i for messages: "training/ADE_train_00000001" or
 * the detection dataset's "FOLDER/ID". */
const char *tb_seg_dataset_image_name(const tb_seg_dataset *ds, int64_t i);

/* Reads sample i: img (u8 HWC, channels() channels) and labels (u8 h x w x
 * 1, the same size: class index or TB_SEG_IGNORE_U8). Thread-safe: many
 * workers read one dataset concurrently, each with its own buffers. */
int tb_seg_dataset_read(const tb_seg_dataset *ds, int64_t i, tb_image *img, tb_image *labels);

#ifdef __cplusplus
}
#endif
#endif
