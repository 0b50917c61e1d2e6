/* The threaded batch loader of detection (and later segmentation): worker
 * threads decode, resize, flip and normalise images of a tb_det_dataset
 * into a ring of preallocated batches of static shape, the same scheme as
 * loader.h (classification).
 *
 * Per image (det_transform.h): resized (antialiased bilinear) so that its
 * shorter side is min_side unless its longer side would then exceed
 * max_side (then the longer side is max_side; torchvision's
 * GeneralizedRCNNTransform and GluonCV's FasterRCNNDefaultTrainTransform),
 * size rounded to whole pixels; min_side 0 keeps the native size (max_side
 * still caps it). The image is placed top-left on a zero canvas (zero after
 * normalisation, i.e. the mean colour) of canvas_h x canvas_w; boxes scale
 * with the image per axis (new width / width, new height / height). With
 * flip, training images are mirrored with probability 0.5 and their boxes
 * with them: x1' = W - x2, x2' = W - x1 for the resized width W.
 *
 * Determinism as loader.h: the order of an epoch is a permutation seeded
 * from (seed, epoch) when shuffle is on (dataset order otherwise), and the
 * flip of image i is drawn from an rng seeded from (seed, epoch, i), so
 * batches are a pure function of (dataset, options, seed, epoch) whatever
 * the number of workers.
 *
 * Without drop_last the last partial batch is padded: rows past `valid`
 * have zero images, count 0, im_size = the canvas size (a blank but valid
 * image, so box ops see no degenerate size), scale 1 and index -1.
 */
#ifndef TB_DET_LOADER_H
#define TB_DET_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness/data/det_dataset.h"
#include "harness/data/loader.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Rounding of a derived canvas (the stride a backbone divides by). */
#define TB_DET_CANVAS_ALIGN 32

typedef struct tb_det_loader_options {
    int batch;               /* images per batch (> 0) */
    bool shuffle;            /* a new permutation every epoch */
    bool flip;               /* random horizontal flip, p = 0.5 */
    bool drop_last;          /* drop the last partial batch instead of padding it */
    int min_side;            /* shorter side after resizing; 0 = native size */
    int max_side;            /* cap on the longer side; 0 = none */
    int canvas_h, canvas_w;  /* 0 = the largest resized image of the dataset rounded up to
                                TB_DET_CANVAS_ALIGN (give both, or neither) */
    int max_objects;         /* boxes per image; 0 = the dataset's largest count */
    uint64_t seed;
    int workers;             /* worker threads; 0 = automatic (half the cores, 1..8) */
    int prefetch;            /* batches in the ring; 0 = 3 */
    tb_loader_alloc_fn alloc; /* NULL = malloc/free; every batch array but indices and flipped */
    tb_loader_free_fn free;
    void *alloc_user;
} tb_det_loader_options;

typedef struct tb_det_batch {
    float *images;           /* f32 {n, h, w, c}, normalised */
    float *boxes;            /* f32 {n, max_objects, 4}: x1, y1, x2, y2 on the canvas; 0 past count */
    int32_t *labels;         /* i32 {n, max_objects}: 0-based class, -1 past count */
    uint8_t *difficult;      /* u8 {n, max_objects} */
    int32_t *count;          /* i32 {n}: objects of each image */
    float *im_size;          /* f32 {n, 2}: valid (height, width) of each image on the canvas */
    float *scale;            /* f32 {n}: resize factor (canvas pixels per original pixel) */
    int64_t *indices;        /* {n}: dataset index of each row, -1 for padding */
    uint8_t *flipped;        /* {n}: 1 when the row was mirrored */
    int valid;               /* real rows (< n only for the padded last batch) */
    int n, h, w, c, max_objects;
    int64_t step;            /* 0-based position of the batch in the epoch */
} tb_det_batch;

typedef struct tb_det_loader tb_det_loader;

/* The dataset must outlive the loader. Errors: TB_ERR_INVALID (options; an
 * image whose resized size does not fit the canvas, named), TB_ERR_DATA (an
 * image with more than max_objects objects, named). */
int tb_det_loader_create(tb_det_loader **out, tb_det_dataset *ds, const tb_det_loader_options *opt);
void tb_det_loader_destroy(tb_det_loader *ld);

/* As loader.h: start_epoch, then next/release until next gives NULL. */
int tb_det_loader_start_epoch(tb_det_loader *ld, int epoch);
int tb_det_loader_next(tb_det_loader *ld, tb_det_batch **batch);
void tb_det_loader_release(tb_det_loader *ld, tb_det_batch *batch);

int64_t tb_det_loader_steps_per_epoch(const tb_det_loader *ld);
/* Shape of every batch: images {n, h, w, c}, boxes {n, max_objects, 4}. */
void tb_det_loader_shape(const tb_det_loader *ld, int *n, int *h, int *w, int *c, int *max_objects);
int tb_det_loader_workers(const tb_det_loader *ld);

#ifdef __cplusplus
}
#endif
#endif
