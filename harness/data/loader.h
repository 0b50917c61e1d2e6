/* The threaded batch loader: worker threads (pthreads) read, decode and
 * augment samples into a ring of preallocated batches, so the next batches
 * are ready while the current one trains.
 *
 * A batch holds f32 NHWC normalised images {batch, h, w, c} and i32 labels.
 * Buffers come from a caller-supplied allocator (the CUDA backend passes
 * pinned host memory) or malloc.
 *
 * Determinism: the epoch order is a permutation seeded from (seed, epoch),
 * and sample i of the dataset is augmented with an rng seeded from
 * (seed, epoch, i) (kernels/rng.h), so batches are a pure function of
 * (dataset, options, seed, epoch), whatever the number of workers.
 *
 * Train mode: shuffled, augmented, drop_last (steps = count / batch).
 * Eval mode: in dataset order, no random augmentation, the last batch is
 * padded to the full batch size (zero images, label 0, index -1) and its
 * `count` says how many rows are real (the graph has a static batch shape).
 *
 * Use: create; per epoch start_epoch(e) then next/release until next gives
 * NULL; destroy. A worker's error (bad file, ...) is returned by next with
 * the worker's message; the loader then stays failed.
 */
#ifndef TB_LOADER_H
#define TB_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness/config.h"
#include "harness/data/dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Allocation hooks for batch buffers: alloc returns a tb_status. */
typedef int (*tb_loader_alloc_fn)(void *user, void **p, size_t bytes);
typedef void (*tb_loader_free_fn)(void *user, void *p);

typedef struct tb_loader_options {
    int batch;              /* images per batch (> 0) */
    bool train;             /* shuffle + augment + drop_last; else in order, padded last batch */
    uint64_t seed;
    int workers;            /* worker threads; 0 = automatic (half the cores, 1..8) */
    int prefetch;           /* batches in the ring; 0 = 3 */
    int image_size;         /* 0 = native (none/small) or 224 (imagenet) */
    const char *augment;    /* auto | none | small | imagenet; NULL = auto */
    float random_erasing;   /* probability (train only), 0 = off */
    tb_loader_alloc_fn alloc; /* NULL = malloc/free */
    tb_loader_free_fn free;
    void *alloc_user;
} tb_loader_options;

/* Fills opt from a data config (augment, image size, random erasing,
 * workers); allocation hooks NULL, prefetch default. */
void tb_loader_options_from_config(tb_loader_options *opt, const tb_data_config *cfg, int batch, bool train,
                                   uint64_t seed);

typedef struct tb_batch {
    float *images;          /* batch * h * w * c, NHWC */
    int32_t *labels;        /* batch */
    int64_t *indices;       /* dataset sample index of each row, -1 for padding */
    int count;              /* valid rows (< batch only for the last eval batch) */
    int batch, h, w, c;
    int64_t step;           /* 0-based position of the batch in the epoch */
} tb_batch;

typedef struct tb_loader tb_loader;

/* The dataset must outlive the loader. */
int tb_loader_create(tb_loader **out, tb_dataset *ds, const tb_loader_options *opt);
void tb_loader_destroy(tb_loader *ld);

/* Starts (or restarts) an epoch: work in progress for a previous epoch is
 * dropped. Every batch must have been released. */
int tb_loader_start_epoch(tb_loader *ld, int epoch);
/* The next batch of the epoch, or TB_OK with *batch = NULL at its end. */
int tb_loader_next(tb_loader *ld, tb_batch **batch);
/* Hands a batch back so its buffer can be refilled. */
void tb_loader_release(tb_loader *ld, tb_batch *batch);

int64_t tb_loader_steps_per_epoch(const tb_loader *ld);
/* Shape of every batch: {batch, h, w, c}. */
void tb_loader_shape(const tb_loader *ld, int *batch, int *h, int *w, int *c);
int tb_loader_workers(const tb_loader *ld);
/* Batches the ring holds: the most a caller may hold at once (with two or
 * more, a trainer can take the next batch before releasing this one). */
int tb_loader_slots(const tb_loader *ld);
const char *tb_loader_augment_name(const tb_loader *ld);

#ifdef __cplusplus
}
#endif
#endif
