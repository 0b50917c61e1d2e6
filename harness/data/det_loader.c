/* The threaded detection loader (see det_loader.h): batch_ring.h runs the
 * workers and the ring; this file transforms the rows of a batch and pads
 * the last one.
 */
#include "harness/data/det_loader.h"

#include <stdlib.h>
#include <string.h>

#include "harness/data/batch_ring.h"
#include "harness/data/det_transform.h"
#include "kernels/error.h"
#include "kernels/rng.h"

#define DET_MAX_CHUNK 4
#define ORDER_TAG 0x64657430726472ull /* "det0rdr" */
#define FLIP_TAG 0x646574666c6970ull  /* "detflip" */

/* A worker's own buffers (the ring's per-worker scratch area). */
typedef struct worker_scratch {
    tb_image img;
    tb_det_scratch scratch;
} worker_scratch;

struct tb_det_loader {
    tb_det_dataset *ds;
    tb_det_loader_options opt;
    tb_det_transform tf;
    int64_t n;                /* images */
    tb_batch_mem mem;         /* where the batch arrays come from */
    tb_batch_ring *ring;      /* keeps the batches, one per slot */
};

static tb_det_row row_of(const tb_det_loader *ld, tb_det_batch *b, int64_t r)
{
    const tb_det_transform *t = &ld->tf;
    size_t img = (size_t)t->canvas_h * t->canvas_w * t->c, m = (size_t)t->max_objects;
    return (tb_det_row){.image = b->images + r * img, .boxes = b->boxes + r * m * 4, .labels = b->labels + r * m,
                        .difficult = b->difficult + r * m, .count = b->count + r, .im_size = b->im_size + 2 * r,
                        .scale = b->scale + r};
}

/* Ring fill: reads and transforms rows [row0, row0 + rows) of a batch (no lock held). */
static int fill_rows(void *user, void *scratch, int slot, int64_t k, int row0, int rows, const int32_t *samples,
                     int epoch)
{
    (void)k;
    tb_det_loader *ld = user;
    worker_scratch *w = scratch;
    tb_det_batch *b = tb_batch_ring_batch(ld->ring, slot);
    uint64_t fseed = tb_batch_ring_epoch_seed(ld->opt.seed, epoch, FLIP_TAG);
    for (int j = 0; j < rows; j++) {
        int64_t r = row0 + j;
        int64_t i = samples[j];
        TB_TRY(tb_det_dataset_read(ld->ds, i, &w->img));
        bool flip = false;
        if (ld->opt.flip) {
            tb_rng rng;
            tb_rng_seed(&rng, fseed, (uint64_t)i);
            flip = tb_rng_uniform(&rng) < 0.5;
        }
        const tb_det_object *objs;
        int count;
        tb_det_dataset_objects(ld->ds, i, &objs, &count);
        tb_det_row row = row_of(ld, b, r);
        TB_TRY(tb_det_transform_apply(&ld->tf, &w->img, objs, count, flip, tb_det_dataset_image_name(ld->ds, i), &row,
                                      &w->scratch));
        b->indices[r] = i;
        b->flipped[r] = flip;
    }
    return TB_OK;
}

/* Ring finish (under its lock): pads the last batch and stamps it. */
static void finish_batch(void *user, int slot, int64_t k, int rows)
{
    tb_det_loader *ld = user;
    tb_det_batch *b = tb_batch_ring_batch(ld->ring, slot);
    for (int r = rows; r < ld->opt.batch; r++) {
        tb_det_row row = row_of(ld, b, r);
        tb_det_transform_pad(&ld->tf, &row);
    }
    tb_batch_rows_finish(b->indices, b->flipped, &b->valid, &b->step, k, rows, ld->opt.batch);
}

static void free_scratch(void *scratch)
{
    worker_scratch *w = scratch;
    tb_image_free(&w->img);
    tb_det_scratch_free(&w->scratch);
}

static int check_options(const tb_det_dataset *ds, const tb_det_loader_options *o)
{
    TB_CHECK(o->batch > 0, TB_ERR_INVALID, "detection loader: batch must be > 0, got %d", o->batch);
    TB_TRY(tb_batch_ring_check("detection loader", o->workers, o->prefetch));
    TB_CHECK(o->min_side >= 0 && o->max_side >= 0 && o->min_side <= 8192 && o->max_side <= 8192, TB_ERR_INVALID,
             "detection loader: min_side and max_side must be in 0..8192, got %d and %d", o->min_side, o->max_side);
    TB_CHECK(o->canvas_h >= 0 && o->canvas_w >= 0 && !o->canvas_h == !o->canvas_w && o->canvas_h <= 8192 &&
                 o->canvas_w <= 8192, TB_ERR_INVALID,
             "detection loader: give both canvas sides (<= 8192) or neither, got %dx%d", o->canvas_h, o->canvas_w);
    TB_CHECK(o->max_objects >= 0 && o->max_objects <= 65536, TB_ERR_INVALID,
             "detection loader: max_objects must be in 0..65536, got %d", o->max_objects);
    TB_CHECK(!o->alloc == !o->free, TB_ERR_INVALID, "detection loader: give both allocation hooks or neither");
    int64_t n = tb_det_dataset_count(ds);
    TB_CHECK(n <= INT32_MAX, TB_ERR_INVALID, "detection loader: %lld images is more than supported (2^31 - 1)",
             (long long)n);
    TB_CHECK(!o->drop_last || n >= o->batch, TB_ERR_INVALID,
             "detection loader: %lld images, fewer than one batch of %d (drop_last)", (long long)n, o->batch);
    return TB_OK;
}

static int round_up(int v, int a) { return (v + a - 1) / a * a; }

/* The transform; every image's object count and resized size are checked
 * here, from the annotations, so that a bad image stops before training. */
static int setup_transform(tb_det_loader *ld)
{
    const tb_det_loader_options *o = &ld->opt;
    tb_det_transform *t = &ld->tf;
    t->min_side = o->min_side;
    t->max_side = o->max_side;
    t->c = tb_det_dataset_channels(ld->ds);
    tb_det_dataset_normalization(ld->ds, t->mean, t->std);
    t->max_objects = o->max_objects > 0 ? o->max_objects : tb_det_dataset_max_objects(ld->ds);
    t->max_objects = t->max_objects > 0 ? t->max_objects : 1; /* a dataset without objects: one empty slot */
    int mh, mw;
    tb_det_resized_max(ld->ds, o->min_side, o->max_side, &mh, &mw);
    t->canvas_h = o->canvas_h > 0 ? o->canvas_h : round_up(mh, TB_DET_CANVAS_ALIGN);
    t->canvas_w = o->canvas_w > 0 ? o->canvas_w : round_up(mw, TB_DET_CANVAS_ALIGN);
    for (int64_t i = 0; i < ld->n; i++) {
        const tb_det_object *objs;
        int count, h, w, nh, nw;
        float s;
        tb_det_dataset_objects(ld->ds, i, &objs, &count);
        TB_CHECK(count <= t->max_objects, TB_ERR_DATA, "%s: %d objects, more than max_objects = %d",
                 tb_det_dataset_image_name(ld->ds, i), count, t->max_objects);
        tb_det_dataset_image_size(ld->ds, i, &h, &w);
        tb_det_resize_size(h, w, t->min_side, t->max_side, &nh, &nw, &s);
        TB_CHECK(nh <= t->canvas_h && nw <= t->canvas_w, TB_ERR_INVALID,
                 "detection loader: %s (%dx%d) resized to %dx%d (height x width) does not fit the %dx%d canvas",
                 tb_det_dataset_image_name(ld->ds, i), h, w, nh, nw, t->canvas_h, t->canvas_w);
    }
    return TB_OK;
}

/* Ring batch_alloc: the arrays of one batch. */
static int alloc_batch(void *user, void *batch)
{
    tb_det_loader *ld = user;
    tb_det_batch *b = batch;
    const tb_det_transform *t = &ld->tf;
    size_t B = (size_t)ld->opt.batch, m = (size_t)t->max_objects;
    *b = (tb_det_batch){.n = ld->opt.batch, .h = t->canvas_h, .w = t->canvas_w, .c = t->c,
                        .max_objects = t->max_objects};
    size_t pixels = B * t->canvas_h * t->canvas_w;
    TB_TRY(tb_batch_mem_alloc(&ld->mem, (void **)&b->images, pixels * t->c * sizeof(float), "images"));
    TB_TRY(tb_batch_mem_alloc(&ld->mem, (void **)&b->boxes, B * m * 4 * sizeof(float), "boxes"));
    TB_TRY(tb_batch_mem_alloc(&ld->mem, (void **)&b->labels, B * m * sizeof(int32_t), "labels"));
    TB_TRY(tb_batch_mem_alloc(&ld->mem, (void **)&b->difficult, B * m, "difficult flags"));
    TB_TRY(tb_batch_mem_alloc(&ld->mem, (void **)&b->count, B * sizeof(int32_t), "counts"));
    TB_TRY(tb_batch_mem_alloc(&ld->mem, (void **)&b->im_size, B * 2 * sizeof(float), "image sizes"));
    TB_TRY(tb_batch_mem_alloc(&ld->mem, (void **)&b->scale, B * sizeof(float), "scales"));
    return tb_batch_rows_alloc("detection loader", ld->opt.batch, &b->indices, &b->flipped);
}

/* Ring batch_free (no worker runs). */
static void free_batch(void *user, void *batch)
{
    tb_det_loader *ld = user;
    tb_det_batch *b = batch;
    tb_batch_mem_free(&ld->mem, b->images);
    tb_batch_mem_free(&ld->mem, b->boxes);
    tb_batch_mem_free(&ld->mem, b->labels);
    tb_batch_mem_free(&ld->mem, b->difficult);
    tb_batch_mem_free(&ld->mem, b->count);
    tb_batch_mem_free(&ld->mem, b->im_size);
    tb_batch_mem_free(&ld->mem, b->scale);
    free(b->indices);
    free(b->flipped);
}

/* Shuffle and drop_last as the options say; the last partial batch padded otherwise. */
static int create_ring(tb_det_loader *ld)
{
    const tb_det_loader_options *o = &ld->opt;
    /* detection images are large: small chunks keep every worker busy */
    tb_batch_ring_config rc = {.name = "detection loader", .api = "tb_det_loader", .count = ld->n,
                               .batch = o->batch, .drop_last = o->drop_last, .shuffle = o->shuffle,
                               .order_seed = o->seed ^ ORDER_TAG, .workers = o->workers, .prefetch = o->prefetch,
                               .max_chunk = DET_MAX_CHUNK, .scratch_bytes = sizeof(worker_scratch),
                               .fill = fill_rows, .finish = finish_batch, .scratch_free = free_scratch,
                               .batch_bytes = sizeof(tb_det_batch), .batch_alloc = alloc_batch,
                               .batch_free = free_batch, .user = ld};
    return tb_batch_ring_create(&ld->ring, &rc);
}

int tb_det_loader_create(tb_det_loader **out, tb_det_dataset *ds, const tb_det_loader_options *opt)
{
    *out = NULL;
    TB_TRY(check_options(ds, opt));
    tb_det_loader *ld = calloc(1, sizeof *ld);
    TB_CHECK(ld, TB_ERR_NOMEM, "detection loader: out of memory");
    ld->ds = ds;
    ld->opt = *opt;
    ld->mem = (tb_batch_mem){.alloc = opt->alloc, .free = opt->free, .user = opt->alloc_user,
                             .name = "detection loader"};
    ld->n = tb_det_dataset_count(ds);
    int rc = setup_transform(ld);
    if (rc == TB_OK)
        rc = create_ring(ld);
    if (rc != TB_OK) {
        tb_det_loader_destroy(ld);
        return rc;
    }
    *out = ld;
    return TB_OK;
}

void tb_det_loader_destroy(tb_det_loader *ld)
{
    if (!ld)
        return;
    tb_batch_ring_destroy(ld->ring); /* the batches too, once no worker runs */
    free(ld);
}

int tb_det_loader_start_epoch(tb_det_loader *ld, int epoch) { return tb_batch_ring_start(ld->ring, epoch); }

int tb_det_loader_next(tb_det_loader *ld, tb_det_batch **batch)
{
    void *b;
    int rc = tb_batch_ring_next_batch(ld->ring, &b);
    *batch = b;
    return rc;
}

void tb_det_loader_release(tb_det_loader *ld, tb_det_batch *batch) { tb_batch_ring_release_batch(ld->ring, batch); }

int64_t tb_det_loader_steps_per_epoch(const tb_det_loader *ld) { return tb_batch_ring_steps(ld->ring); }

void tb_det_loader_shape(const tb_det_loader *ld, int *n, int *h, int *w, int *c, int *max_objects)
{
    *n = ld->opt.batch;
    *h = ld->tf.canvas_h;
    *w = ld->tf.canvas_w;
    *c = ld->tf.c;
    *max_objects = ld->tf.max_objects;
}

int tb_det_loader_workers(const tb_det_loader *ld) { return tb_batch_ring_workers(ld->ring); }
