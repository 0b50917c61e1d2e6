/* Detection datasets in the PASCAL VOC layout: images, boxes, classes (and
 * per-pixel class masks where the dataset has them).
 *
 * A dataset is a list of (folder, image set) pairs under one root, written
 * "FOLDER:SET[,FOLDER:SET...]", e.g. root = .../VOCdevkit and
 *   "VOC2007:trainval,VOC2012:trainval"  (the usual VOC07+12 training set)
 *   "VOC2007:test"                       (the VOC07 test set)
 *   "FashionScenes:train"                (fashion_scenes.h writes this layout)
 * For each pair the ids are the first word of each non-empty line of
 * ROOT/FOLDER/ImageSets/Main/SET.txt; image id reads
 *   ROOT/FOLDER/Annotations/<id>.xml          (libxml2, see voc.h)
 *   ROOT/FOLDER/JPEGImages/<id>.jpg           (the JPEG/PNG decoder of dataset.h)
 *   ROOT/FOLDER/SegmentationClass/<id>.png    (masks, only when asked for)
 * Every annotation is parsed at open, so a bad file stops a run before
 * training (TB_ERR_DATA naming the file and the object index).
 *
 * Coordinates: a VOC bndbox holds 1-based inclusive pixel indices
 * (xmin..xmax); the dataset returns the continuous boxes of kernels/ops.h
 * ("detection": [x1, x2) x [y1, y2), width x2 - x1) as
 *   x1 = xmin - 1, y1 = ymin - 1, x2 = xmax, y2 = ymax,
 * so a box covering pixel columns 1..10 of the file is [0, 10).
 */
#ifndef TB_DET_DATASET_H
#define TB_DET_DATASET_H

#include <stdbool.h>
#include <stdint.h>

#include "harness/data/dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One annotated object: box in image pixels (continuous, see above). */
typedef struct tb_det_object {
    float box[4];        /* x1, y1, x2, y2 */
    int32_t label;       /* 0-based index into the format's class list */
    uint8_t difficult;   /* VOC's difficult flag (0 when the file has none) */
} tb_det_object;

/* What a dataset's files mean: its class list (in label order), the image
 * channels it is read as, and its normalisation (0..255 scale). */
typedef struct tb_det_format {
    const char *name;
    const char *const *class_names;
    int classes;
    int channels;          /* 3 = RGB; 1 = gray (RGB files are converted with the ITU-R 601 luma) */
    float mean[3], std[3]; /* channels() entries used; gray repeats channel 0 */
} tb_det_format;

/* PASCAL VOC: the 20 classes in the standard order (aeroplane .. tvmonitor),
 * RGB, ImageNet mean/std. */
extern const tb_det_format tb_det_format_voc;
/* fashion-scenes: the 10 Fashion-MNIST classes (t-shirt .. ankle-boot),
 * gray, the Fashion-MNIST mean/std. */
extern const tb_det_format tb_det_format_fashion_scenes;
/* "voc" or "fashion-scenes"; NULL when unknown. */
const tb_det_format *tb_det_format_find(const char *name);

typedef struct tb_det_dataset tb_det_dataset;

/* Opens the set list `sets` under `root` (see above); the format is copied
 * (its class_names array must outlive the dataset: the built-in ones do).
 * Errors: TB_ERR_INVALID (malformed set list), TB_ERR_MISSING (root, an image
 * set file or an annotation absent), TB_ERR_DATA (a bad annotation: the file,
 * the object index and the problem), TB_ERR_NOMEM. */
int tb_det_dataset_open(tb_det_dataset **out, const char *root, const char *sets, const tb_det_format *format);
void tb_det_dataset_close(tb_det_dataset *ds);

int64_t tb_det_dataset_count(const tb_det_dataset *ds);
int tb_det_dataset_classes(const tb_det_dataset *ds);
const char *tb_det_dataset_class_name(const tb_det_dataset *ds, int label);
int tb_det_dataset_channels(const tb_det_dataset *ds);
const tb_det_format *tb_det_dataset_format(const tb_det_dataset *ds);
void tb_det_dataset_normalization(const tb_det_dataset *ds, float mean[3], float std[3]);

/* "FOLDER/ID" of image i, for messages and reports. */
const char *tb_det_dataset_image_name(const tb_det_dataset *ds, int64_t i);
/* Size of image i from its annotation (the decoded image must match it). */
void tb_det_dataset_image_size(const tb_det_dataset *ds, int64_t i, int *h, int *w);
/* The objects of image i (owned by the dataset, valid until close). */
void tb_det_dataset_objects(const tb_det_dataset *ds, int64_t i, const tb_det_object **objects, int *count);
/* Largest object count and largest image sides over the whole dataset. */
int tb_det_dataset_max_objects(const tb_det_dataset *ds);
void tb_det_dataset_max_size(const tb_det_dataset *ds, int *h, int *w);

/* Decodes image i into img (u8 HWC, channels() channels). A decoded size
 * other than the annotation's is TB_ERR_DATA naming the file.
 * Thread-safe: many workers read one dataset concurrently. */
int tb_det_dataset_read(const tb_det_dataset *ds, int64_t i, tb_image *img);
/* Reads the class mask of image i (SegmentationClass/<id>.png, 8-bit gray
 * or palette, raw values: 0 background, k = class k-1, 255 = VOC's "void")
 * into mask (h x w x 1). Thread-safe. */
int tb_det_dataset_read_mask(const tb_det_dataset *ds, int64_t i, tb_image *mask);

#ifdef __cplusplus
}
#endif
#endif
