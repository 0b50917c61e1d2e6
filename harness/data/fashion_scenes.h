/* "fashion-scenes": a small detection / segmentation dataset generated from
 * Fashion-MNIST, written once in the PASCAL VOC layout so that det_dataset.h
 * reads it like VOC (format tb_det_format_fashion_scenes, sets
 * "FashionScenes:train" and "FashionScenes:test").
 *
 * Scene `index` of a split is a pure function of (options, split, index):
 *   - a size x size gray canvas of dark noise (mean 12, std 6, nearly
 *     normal: a sum of four uniforms; clamped to 0..THRESHOLD - 1, so it
 *     never reads as an item);
 *   - 1..max_items items (uniform count), each a Fashion-MNIST image of the
 *     same split (training scenes from the training images, test scenes from
 *     the test images), scaled (antialiased bilinear, resample.h) to a square
 *     of round(28 * s) pixels, s uniform in [0.75, 2], at a uniform position
 *     where it fits entirely, composited with max();
 *   - a placement is redrawn (up to 32 tries, then the item is dropped) when
 *     its box has IoU > 0.3 with an earlier item's box, or when it would
 *     leave an earlier item less than half of its mask pixels: partial
 *     overlaps only, every object stays visible;
 *   - an item's box is the tight box of its scaled pixels above
 *     TB_FASHION_SCENES_THRESHOLD (continuous, [x1, x2) as kernels/ops.h);
 *   - the mask holds 0 for background and class + 1 (1..10) where an item's
 *     scaled pixel is above the threshold, later items on top.
 *
 * On disk, under ROOT/FashionScenes (TB_FASHION_SCENES_FOLDER):
 *   JPEGImages/<id>.jpg           gray JPEG, quality 95 (libjpeg)
 *   Annotations/<id>.xml          VOC XML: filename, size, objects (name,
 *                                 difficult 0, bndbox 1-based inclusive:
 *                                 xmin = x1 + 1, xmax = x2)
 *   SegmentationClass/<id>.png    8-bit palette PNG (VOC colours), values
 *                                 = the mask
 *   ImageSets/Main/train.txt, test.txt   ids train_000000.. / test_000000..
 *   stamp.txt                     the generator version and options
 * Generation writes into ROOT/.FashionScenes.tmp-XXXXXX and renames it into
 * place, so a crash never leaves a half-written dataset behind; a ROOT whose
 * stamp differs from the options asked for is an error naming it.
 */
#ifndef TB_FASHION_SCENES_H
#define TB_FASHION_SCENES_H

#include <stdbool.h>
#include <stdint.h>

#include "harness/config.h"
#include "harness/data/dataset.h"
#include "harness/data/det_dataset.h"
#include "harness/data/resample.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TB_FASHION_SCENES_FOLDER "FashionScenes"
/* Pixels above this (0..255) belong to an item: boxes and masks. */
#define TB_FASHION_SCENES_THRESHOLD 32
/* Most items a scene may hold (the max_items option). */
#define TB_FASHION_SCENES_MAX_ITEMS 16

typedef struct tb_fashion_scenes_options {
    int64_t train_count;         /* scenes in the train set, default 10000 */
    int64_t test_count;          /* scenes in the test set, default 2000 */
    int size;                    /* canvas height = width, default 128 (32..1024) */
    int max_items;               /* 1..TB_FASHION_SCENES_MAX_ITEMS, default 5 */
    uint64_t seed;               /* default 1 */
    char source[TB_PATH_MAX];    /* Fashion-MNIST IDX directory; "" = TB_FASHION_MNIST_ROOT */
    int threads;                 /* writer threads, 0 = one per core; the files do not depend on it */
} tb_fashion_scenes_options;

void tb_fashion_scenes_defaults(tb_fashion_scenes_options *o);

/* Generates ROOT/FashionScenes unless it exists with the same stamp.
 * Errors: TB_ERR_INVALID (bad options, or an existing dataset with another
 * stamp: the message names the path and both stamps), TB_ERR_MISSING /
 * TB_ERR_DATA (the Fashion-MNIST source), TB_ERR_IO (writing). */
int tb_fashion_scenes_ensure(const tb_fashion_scenes_options *o, const char *root);

/* ---- the composition, exposed for tests ---------------------------------- */

typedef struct tb_fashion_scene {
    uint8_t *image;      /* size * size gray */
    uint8_t *mask;       /* size * size: 0 or class + 1 */
    tb_det_object objects[TB_FASHION_SCENES_MAX_ITEMS];
    int count;
    int size;            /* canvas side the buffers hold */
} tb_fashion_scene;

/* Buffers reused between scenes (one per thread); zero-initialise. */
typedef struct tb_fashion_scratch {
    tb_image item;           /* the source image */
    tb_resample_scratch rs;
    float *scaled_f;         /* 56 x 56 at most */
    uint8_t *scaled;
    uint8_t *owner;          /* size * size: 0 or item index + 1 */
    int size;
} tb_fashion_scratch;

void tb_fashion_scratch_free(tb_fashion_scratch *s);
void tb_fashion_scene_free(tb_fashion_scene *scene);

/* Composes scene `index` from the Fashion-MNIST split `items` (28x28x1;
 * tb_dataset_is_train(items) selects the split's random stream). */
int tb_fashion_scene_compose(const tb_fashion_scenes_options *o, tb_dataset *items, int64_t index,
                             tb_fashion_scene *scene, tb_fashion_scratch *s);

/* The stamp text of the options (what stamp.txt holds). */
int tb_fashion_scenes_stamp(const tb_fashion_scenes_options *o, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
