/* The threaded batch loader of semantic segmentation: worker threads read
 * samples of a tb_seg_dataset, transform image and label map together, and
 * fill a ring of preallocated batches of static shape (the scheme of
 * loader.h and det_loader.h).
 *
 * A batch holds f32 NHWC normalised images {n, crop, crop, c} and i32
 * labels {n, crop, crop}: the class index, or -1 (TB_SEG_IGNORE) for an
 * ignored pixel (the dataset's ignore value, padding, padding rows), which
 * tb_softmax_ce_* skips.
 *
 * Training (GluonCV's SegmentationDataset._sync_transform, the recipe of
 * its FCN/PSP models on ADE20K; seg_transform.h):
 *   - mirrored left-right with probability 0.5;
 *   - resized so that the shorter side is an integer drawn uniformly from
 *     base_size/2 .. 2*base_size (inclusive), the other side
 *     floor(side * long / short), keeping the aspect: image with
 *     antialiased bilinear (resample.h, PIL's BILINEAR), labels with
 *     nearest neighbour (PIL's NEAREST);
 *   - padded right and bottom to at least crop_size per side: image 0 after
 *     normalisation (the mean colour, as mmseg's Normalize-then-Pad;
 *     GluonCV pads black pixels), labels ignored;
 *   - a crop_size x crop_size window at a uniform random offset.
 *   GluonCV's random rotation (+-10 degrees) and Gaussian blur (p = 0.5)
 *   are not done: they are not in the FCN recipe this loader serves.
 *   Only the window is resampled, which gives the same pixels as resizing
 *   the whole image and cropping.
 * Evaluation (GluonCV's _val_sync_transform, a fixed shape for a static
 * graph): shorter side resized to crop_size (the other side truncated as
 * above), then the centre crop_size x crop_size window (offset
 * (size - crop) / 2 rounded half to even), no flip, no padding needed.
 * Pixels outside the centre window are not evaluated (GluonCV's "val"
 * mode, not its full-image "testval").
 *
 * Determinism as loader.h: in training the epoch order is a permutation
 * seeded from (seed, epoch) and the geometry of image i (flip, scale,
 * offset) is drawn from an rng seeded from (seed, epoch, i), so batches are
 * a pure function of (dataset, options, seed, epoch) whatever the number of
 * workers. Evaluation keeps the dataset order.
 *
 * Training drops the last partial batch (steps = count / batch);
 * evaluation pads it: rows past `valid` have zero images, all labels -1,
 * index -1.
 *
 * Use: create; per epoch start_epoch(e) then next/release until next gives
 * NULL; destroy. A worker's error (a bad file, named) is returned by next;
 * the loader then stays failed.
 */
#ifndef TB_SEG_LOADER_H
#define TB_SEG_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness/data/loader.h"
#include "harness/data/seg_dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

/* GluonCV's ADE20K defaults. */
#define TB_SEG_DEFAULT_BASE_SIZE 520
#define TB_SEG_DEFAULT_CROP_SIZE 480

typedef struct tb_seg_loader_options {
    int batch;               /* images per batch (> 0) */
    bool train;              /* shuffle + random transform + drop last; else in order, eval transform, padded */
    int base_size;           /* training scale: shorter side in base/2 .. 2*base; 0 = 520 (1..8192) */
    int crop_size;           /* batch images are crop x crop; 0 = 480 (1..8192) */
    uint64_t seed;
    int workers;             /* worker threads; 0 = automatic (half the cores, 1..8) */
    int prefetch;            /* batches in the ring; 0 = 3 */
    tb_loader_alloc_fn alloc; /* NULL = malloc/free; images and labels arrays */
    tb_loader_free_fn free;
    void *alloc_user;
} tb_seg_loader_options;

typedef struct tb_seg_batch {
    float *images;           /* f32 {n, h, w, c}, normalised */
    int32_t *labels;         /* i32 {n, h, w}: class, -1 = ignored */
    int64_t *indices;        /* {n}: dataset index of each row, -1 for padding */
    uint8_t *flipped;        /* {n}: 1 when the row was mirrored */
    int valid;               /* real rows (< n only for the padded last eval batch) */
    int n, h, w, c;          /* h = w = crop_size */
    int64_t step;            /* 0-based position of the batch in the epoch */
} tb_seg_batch;

typedef struct tb_seg_loader tb_seg_loader;

/* The dataset must outlive the loader. Errors: TB_ERR_INVALID (options;
 * fewer images than one training batch). */
int tb_seg_loader_create(tb_seg_loader **out, tb_seg_dataset *ds, const tb_seg_loader_options *opt);
void tb_seg_loader_destroy(tb_seg_loader *ld);

/* As loader.h: start_epoch, then next/release until next gives NULL. */
int tb_seg_loader_start_epoch(tb_seg_loader *ld, int epoch);
int tb_seg_loader_next(tb_seg_loader *ld, tb_seg_batch **batch);
void tb_seg_loader_release(tb_seg_loader *ld, tb_seg_batch *batch);

int64_t tb_seg_loader_steps_per_epoch(const tb_seg_loader *ld);
/* Shape of every batch: images {n, h, w, c}, labels {n, h, w}. */
void tb_seg_loader_shape(const tb_seg_loader *ld, int *n, int *h, int *w, int *c);
int tb_seg_loader_workers(const tb_seg_loader *ld);

#ifdef __cplusplus
}
#endif
#endif
