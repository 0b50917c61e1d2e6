/* The threaded segmentation loader (see seg_loader.h): batch_ring.h runs
 * the workers and the ring; this file transforms the rows of a batch and
 * pads the last eval batch.
 */
#include "harness/data/seg_loader.h"

#include <stdlib.h>
#include <string.h>

#include "harness/data/batch_ring.h"
#include "harness/data/seg_transform.h"
#include "kernels/error.h"
#include "kernels/rng.h"

#define SEG_MAX_CHUNK 4
#define ORDER_TAG 0x7365676f726472ull /* "segordr" */
#define GEOM_TAG 0x73656767656f6dull  /* "seggeom" */

/* A worker's own buffers (the ring's per-worker scratch area). */
typedef struct worker_scratch {
    tb_image img, labels;
    tb_seg_scratch scratch;
} worker_scratch;

struct tb_seg_loader {
    tb_seg_dataset *ds;
    tb_seg_loader_options opt;
    tb_seg_transform tf;
    int base_size;
    tb_batch_mem mem;         /* where the batch arrays come from */
    tb_batch_ring *ring;      /* keeps the batches, one per slot */
};

static float *row_image(const tb_seg_loader *ld, tb_seg_batch *b, int64_t r)
{
    return b->images + (size_t)r * ld->tf.crop * ld->tf.crop * ld->tf.c;
}

static int32_t *row_labels(const tb_seg_loader *ld, tb_seg_batch *b, int64_t r)
{
    return b->labels + (size_t)r * ld->tf.crop * ld->tf.crop;
}

/* Ring fill: reads and transforms rows [row0, row0 + rows) of a batch (no lock held). */
static int fill_rows(void *user, void *scratch, int slot, int64_t k, int row0, int rows, const int32_t *samples,
                     int epoch)
{
    (void)k;
    tb_seg_loader *ld = user;
    worker_scratch *w = scratch;
    tb_seg_batch *b = tb_batch_ring_batch(ld->ring, slot);
    uint64_t gseed = tb_batch_ring_epoch_seed(ld->opt.seed, epoch, GEOM_TAG);
    for (int j = 0; j < rows; j++) {
        int64_t r = row0 + j;
        int64_t i = samples[j];
        TB_TRY(tb_seg_dataset_read(ld->ds, i, &w->img, &w->labels));
        tb_seg_geometry g;
        if (ld->opt.train) {
            tb_rng rng;
            tb_rng_seed(&rng, gseed, (uint64_t)i);
            tb_seg_train_geometry(w->img.h, w->img.w, ld->base_size, ld->tf.crop, &rng, &g);
        } else {
            tb_seg_eval_geometry(w->img.h, w->img.w, ld->tf.crop, &g);
        }
        TB_TRY(tb_seg_transform_apply(&ld->tf, &w->img, &w->labels, &g, tb_seg_dataset_image_name(ld->ds, i),
                                      row_image(ld, b, r), row_labels(ld, b, r), &w->scratch));
        b->indices[r] = i;
        b->flipped[r] = g.flip;
    }
    return TB_OK;
}

/* Ring finish (under its lock): pads an eval batch and stamps it. */
static void finish_batch(void *user, int slot, int64_t k, int rows)
{
    tb_seg_loader *ld = user;
    tb_seg_batch *b = tb_batch_ring_batch(ld->ring, slot);
    for (int r = rows; r < ld->opt.batch; r++)
        tb_seg_transform_pad(&ld->tf, row_image(ld, b, r), row_labels(ld, b, r));
    tb_batch_rows_finish(b->indices, b->flipped, &b->valid, &b->step, k, rows, ld->opt.batch);
}

static void free_scratch(void *scratch)
{
    worker_scratch *w = scratch;
    tb_image_free(&w->img);
    tb_image_free(&w->labels);
    tb_seg_scratch_free(&w->scratch);
}

static int check_options(const tb_seg_dataset *ds, const tb_seg_loader_options *o)
{
    TB_CHECK(o->batch > 0, TB_ERR_INVALID, "segmentation loader: batch must be > 0, got %d", o->batch);
    TB_TRY(tb_batch_ring_check("segmentation loader", o->workers, o->prefetch));
    TB_CHECK(o->base_size >= 0 && o->base_size <= 8192 && o->crop_size >= 0 && o->crop_size <= 8192,
             TB_ERR_INVALID, "segmentation loader: base_size and crop_size must be in 0..8192 (0 = default), got %d "
             "and %d", o->base_size, o->crop_size);
    TB_CHECK(!o->alloc == !o->free, TB_ERR_INVALID, "segmentation loader: give both allocation hooks or neither");
    int64_t n = tb_seg_dataset_count(ds);
    TB_CHECK(n <= INT32_MAX, TB_ERR_INVALID, "segmentation loader: %lld images is more than supported (2^31 - 1)",
             (long long)n);
    TB_CHECK(!o->train || n >= o->batch, TB_ERR_INVALID,
             "segmentation loader: %lld images, fewer than one training batch of %d", (long long)n, o->batch);
    return TB_OK;
}

static void setup_transform(tb_seg_loader *ld)
{
    const tb_seg_loader_options *o = &ld->opt;
    tb_seg_transform *t = &ld->tf;
    t->crop = o->crop_size > 0 ? o->crop_size : TB_SEG_DEFAULT_CROP_SIZE;
    t->c = tb_seg_dataset_channels(ld->ds);
    tb_seg_dataset_normalization(ld->ds, t->mean, t->std);
    ld->base_size = o->base_size > 0 ? o->base_size : TB_SEG_DEFAULT_BASE_SIZE;
}

/* Ring batch_alloc: the arrays of one batch. */
static int alloc_batch(void *user, void *batch)
{
    tb_seg_loader *ld = user;
    tb_seg_batch *b = batch;
    const tb_seg_transform *t = &ld->tf;
    size_t B = (size_t)ld->opt.batch, npix = (size_t)t->crop * t->crop;
    *b = (tb_seg_batch){.n = ld->opt.batch, .h = t->crop, .w = t->crop, .c = t->c};
    TB_TRY(tb_batch_mem_alloc(&ld->mem, (void **)&b->images, B * npix * t->c * sizeof(float), "images"));
    TB_TRY(tb_batch_mem_alloc(&ld->mem, (void **)&b->labels, B * npix * sizeof(int32_t), "labels"));
    return tb_batch_rows_alloc("segmentation loader", ld->opt.batch, &b->indices, &b->flipped);
}

/* Ring batch_free (no worker runs). */
static void free_batch(void *user, void *batch)
{
    tb_seg_loader *ld = user;
    tb_seg_batch *b = batch;
    tb_batch_mem_free(&ld->mem, b->images);
    tb_batch_mem_free(&ld->mem, b->labels);
    free(b->indices);
    free(b->flipped);
}

/* Train: shuffled, drop_last; eval: dataset order, the last batch padded. */
static int create_ring(tb_seg_loader *ld)
{
    const tb_seg_loader_options *o = &ld->opt;
    /* segmentation images are large: small chunks keep every worker busy */
    tb_batch_ring_config rc = {.name = "segmentation loader", .api = "tb_seg_loader",
                               .count = tb_seg_dataset_count(ld->ds), .batch = o->batch, .drop_last = o->train,
                               .shuffle = o->train, .order_seed = o->seed ^ ORDER_TAG, .workers = o->workers,
                               .prefetch = o->prefetch, .max_chunk = SEG_MAX_CHUNK,
                               .scratch_bytes = sizeof(worker_scratch), .fill = fill_rows, .finish = finish_batch,
                               .scratch_free = free_scratch, .batch_bytes = sizeof(tb_seg_batch),
                               .batch_alloc = alloc_batch, .batch_free = free_batch, .user = ld};
    return tb_batch_ring_create(&ld->ring, &rc);
}

int tb_seg_loader_create(tb_seg_loader **out, tb_seg_dataset *ds, const tb_seg_loader_options *opt)
{
    *out = NULL;
    TB_TRY(check_options(ds, opt));
    tb_seg_loader *ld = calloc(1, sizeof *ld);
    TB_CHECK(ld, TB_ERR_NOMEM, "segmentation loader: out of memory");
    ld->ds = ds;
    ld->opt = *opt;
    ld->mem = (tb_batch_mem){.alloc = opt->alloc, .free = opt->free, .user = opt->alloc_user,
                             .name = "segmentation loader"};
    setup_transform(ld);
    int rc = create_ring(ld);
    if (rc != TB_OK) {
        tb_seg_loader_destroy(ld);
        return rc;
    }
    *out = ld;
    return TB_OK;
}

void tb_seg_loader_destroy(tb_seg_loader *ld)
{
    if (!ld)
        return;
    tb_batch_ring_destroy(ld->ring); /* the batches too, once no worker runs */
    free(ld);
}

int tb_seg_loader_start_epoch(tb_seg_loader *ld, int epoch) { return tb_batch_ring_start(ld->ring, epoch); }

int tb_seg_loader_next(tb_seg_loader *ld, tb_seg_batch **batch)
{
    void *b;
    int rc = tb_batch_ring_next_batch(ld->ring, &b);
    *batch = b;
    return rc;
}

void tb_seg_loader_release(tb_seg_loader *ld, tb_seg_batch *batch) { tb_batch_ring_release_batch(ld->ring, batch); }

int64_t tb_seg_loader_steps_per_epoch(const tb_seg_loader *ld) { return tb_batch_ring_steps(ld->ring); }

void tb_seg_loader_shape(const tb_seg_loader *ld, int *n, int *h, int *w, int *c)
{
    *n = ld->opt.batch;
    *h = ld->tf.crop;
    *w = ld->tf.crop;
    *c = ld->tf.c;
}

int tb_seg_loader_workers(const tb_seg_loader *ld) { return tb_batch_ring_workers(ld->ring); }
