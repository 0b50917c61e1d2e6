/* The ring of preallocated batches that worker threads fill: the machinery
 * shared by the threaded loaders (loader.h, det_loader.h, seg_loader.h).
 *
 * The ring knows positions, batches and slots, not what a batch holds: each
 * loader has one batch per slot and supplies a `fill` callback ("write
 * rows [row0, row0 + rows) of batch k of the epoch into slot s") and a
 * `finish` callback ("batch k in slot s is complete: pad it, stamp it").
 * The ring can keep the loader's batch structs too (batch_bytes: one per
 * slot, set up by batch_alloc at create, emptied by batch_free at destroy
 * once no worker runs), handing them out by next_batch / release_batch.
 *
 * An epoch visits the dataset in a permutation seeded from (order_seed,
 * epoch) when shuffle is on, in dataset order otherwise; batch k holds
 * positions k*batch .. k*batch + batch - 1 of it. With drop_last the last
 * partial batch is dropped, else it is finished with fewer rows. Which
 * sample lands in which row is therefore a pure function of (count, batch,
 * order_seed, epoch), whatever the number of workers; a loader that draws
 * its per-sample randomness from (seed, epoch, sample) keeps its batches so
 * too.
 *
 * Use: create; per epoch start(e) then next/release until next gives slot
 * -1; destroy. The first error a fill returns is kept (code and message)
 * and returned by next and start from then on: the ring stays failed.
 */
#ifndef TB_BATCH_RING_H
#define TB_BATCH_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Highest worker count the loaders accept. */
#define TB_BATCH_RING_MAX_WORKERS 64
/* Highest prefetch (slot count) the loaders accept. */
#define TB_BATCH_RING_MAX_SLOTS 64

/* Writes rows [row0, row0 + rows) of batch k of `epoch` into slot `slot`:
 * row row0 + j holds dataset sample samples[j]. Runs on a worker thread
 * without the ring's lock, concurrently with fills of other rows (of the
 * same batch too); `scratch` is the worker's own area (scratch_bytes, zeroed
 * at create). Returns a tb_status; on failure the message it recorded
 * (tb_fail) is what next reports. */
typedef int (*tb_batch_ring_fill_fn)(void *user, void *scratch, int slot, int64_t k, int row0, int rows,
                                     const int32_t *samples, int epoch);
/* Batch k in `slot` is complete with `rows` real rows (fewer than batch only
 * for the last batch without drop_last). Runs under the ring's lock: quick,
 * no blocking, no ring calls. */
typedef void (*tb_batch_ring_finish_fn)(void *user, int slot, int64_t k, int rows);
/* Frees what a worker's scratch holds (not the area itself); at destroy. */
typedef void (*tb_batch_ring_scratch_free_fn)(void *scratch);
/* Allocates what the (zeroed) batch struct of a slot holds; at create. */
typedef int (*tb_batch_ring_batch_alloc_fn)(void *user, void *batch);
/* Frees what a batch struct holds (not the struct; after a failed or partial
 * batch_alloc too); at destroy, after the workers stopped. */
typedef void (*tb_batch_ring_batch_free_fn)(void *user, void *batch);

typedef struct tb_batch_ring_config {
    /* name and api are kept, not copied: string literals */
    const char *name;        /* prefixes every message, e.g. "detection loader" */
    const char *api;         /* the loader's prefix, e.g. "tb_det_loader": names its start_epoch and next */
    int64_t count;           /* samples in the dataset, 0 .. INT32_MAX */
    int batch;               /* rows per batch (> 0) */
    bool drop_last;          /* drop the last partial batch (count >= batch) */
    bool shuffle;            /* a new permutation every epoch; else dataset order */
    uint64_t order_seed;     /* seeds the permutation (with the epoch) */
    int workers;             /* worker threads; 0 = automatic (half the cores, 1..8) */
    int prefetch;            /* batches in the ring; 0 = 3 */
    int max_chunk;           /* most positions a worker claims at once (> 0) */
    size_t scratch_bytes;    /* per-worker scratch area given to fill */
    tb_batch_ring_fill_fn fill;
    tb_batch_ring_finish_fn finish;
    tb_batch_ring_scratch_free_fn scratch_free; /* NULL: nothing to free */
    size_t batch_bytes;      /* the loader's batch struct, kept by the ring; 0 = the loader keeps its batches */
    tb_batch_ring_batch_alloc_fn batch_alloc; /* required with batch_bytes */
    tb_batch_ring_batch_free_fn batch_free;   /* required with batch_bytes */
    void *user;
} tb_batch_ring_config;

typedef struct tb_batch_ring tb_batch_ring;

/* Checks the workers and prefetch options of a loader named `name`; a
 * loader calls it among its own option checks, so that they keep their
 * order. */
int tb_batch_ring_check(const char *name, int workers, int prefetch);

/* Allocates the ring; the loader then allocates the batch of each slot
 * (tb_batch_ring_slots). The workers start with the first start, so no
 * thread exists before every batch does, and a loader never started costs
 * no threads. */
int tb_batch_ring_create(tb_batch_ring **out, const tb_batch_ring_config *cfg);
/* Stops and joins the workers (work in progress is finished, not used). */
void tb_batch_ring_destroy(tb_batch_ring *r);

/* Starts (or restarts) an epoch: work in progress for a previous epoch is
 * dropped. Every batch must have been released. The first call starts the
 * workers (an error there leaves the ring failed). */
int tb_batch_ring_start(tb_batch_ring *r, int epoch);
/* The slot holding the next batch of the epoch, or TB_OK with *slot = -1 at
 * its end. The slot is the caller's until released. */
int tb_batch_ring_next(tb_batch_ring *r, int *slot);
/* Hands a slot back so that it can be refilled; any order. A slot that is
 * not held is ignored. */
void tb_batch_ring_release(tb_batch_ring *r, int slot);

int tb_batch_ring_slots(const tb_batch_ring *r);
int tb_batch_ring_workers(const tb_batch_ring *r);
int64_t tb_batch_ring_steps(const tb_batch_ring *r);

/* With batch_bytes: the batch struct of a slot. */
void *tb_batch_ring_batch(const tb_batch_ring *r, int slot);
/* With batch_bytes: next, giving the slot's batch struct (NULL at the end). */
int tb_batch_ring_next_batch(tb_batch_ring *r, void **batch);
/* With batch_bytes: releases the slot of a batch struct; NULL or another
 * pointer is ignored. */
void tb_batch_ring_release_batch(tb_batch_ring *r, const void *batch);

/* The seed of a loader's per-sample draws in `epoch` (tag: which draw, e.g.
 * the flip), so that a batch does not depend on which worker fills it. */
uint64_t tb_batch_ring_epoch_seed(uint64_t seed, int epoch, uint64_t tag);

/* Allocates the row arrays of an n-row batch, the dataset index and the
 * flip flag of each row (malloc; "<name>: out of memory" on failure). */
int tb_batch_rows_alloc(const char *name, int n, int64_t **indices, uint8_t **flipped);
/* Stamps batch k, complete with `rows` real rows of n: rows [rows, n) are
 * padding (index -1, not flipped). */
void tb_batch_rows_finish(int64_t *indices, uint8_t *flipped, int *valid, int64_t *step, int64_t k, int rows, int n);

/* Where a loader's batch arrays come from: the caller's allocation hooks
 * (the signatures of loader.h's tb_loader_alloc_fn and tb_loader_free_fn;
 * the CUDA backend passes pinned host memory) or, without them, malloc. */
typedef struct tb_batch_mem {
    int (*alloc)(void *user, void **p, size_t bytes); /* returns a tb_status; NULL = malloc */
    void (*free)(void *user, void *p);
    void *user;
    const char *name;        /* the loader, in messages */
} tb_batch_mem;

/* Allocates one batch array; a failure's message reads "<name>: batch
 * <what>: ..." with `what` formatted from fmt. */
int tb_batch_mem_alloc(const tb_batch_mem *m, void **p, size_t bytes, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* Frees an array of tb_batch_mem_alloc; NULL is a no-op. */
void tb_batch_mem_free(const tb_batch_mem *m, void *p);

#ifdef __cplusplus
}
#endif
#endif
