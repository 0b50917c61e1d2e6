/* The threaded batch loader (see loader.h): batch_ring.h runs the workers
 * and the ring; this file reads and augments the rows of a batch and pads
 * the last eval batch.
 */
#include "harness/data/loader.h"

#include <stdlib.h>
#include <string.h>

#include "harness/data/augment.h"
#include "harness/data/batch_ring.h"
#include "kernels/error.h"
#include "kernels/rng.h"

#define LOADER_MAX_CHUNK 16
#define ORDER_TAG 0x6f72646572ull   /* "order" */
#define AUGMENT_TAG 0x6175676d656eull /* "augmen" */

/* A worker's own buffers (the ring's per-worker scratch area). */
typedef struct worker_scratch {
    tb_image img;
    tb_augment_scratch scratch;
} worker_scratch;

struct tb_loader {
    tb_dataset *ds;
    tb_loader_options opt;
    tb_augment aug;
    int min_side;
    tb_batch_mem mem;        /* where batch images and labels come from */
    tb_batch *batches;       /* one per ring slot */
    int nbatches;
    tb_batch_ring *ring;
};

void tb_loader_options_from_config(tb_loader_options *opt, const tb_data_config *cfg, int batch, bool train,
                                   uint64_t seed)
{
    memset(opt, 0, sizeof *opt);
    opt->batch = batch;
    opt->train = train;
    opt->seed = seed;
    opt->workers = cfg->workers;
    opt->image_size = cfg->image_size;
    opt->augment = cfg->augment;
    opt->random_erasing = cfg->random_erasing;
}

static uint64_t augment_seed(uint64_t seed, int epoch)
{
    return tb_splitmix64(seed ^ tb_splitmix64((uint64_t)epoch + AUGMENT_TAG));
}

static size_t image_floats(const tb_loader *ld) { return (size_t)ld->aug.size * ld->aug.size * ld->aug.c; }

/* Ring fill: reads and augments rows [row0, row0 + rows) of a batch (no lock held). */
static int fill_rows(void *user, void *scratch, int slot, int64_t k, int row0, int rows, const int32_t *samples,
                     int epoch)
{
    (void)k;
    tb_loader *ld = user;
    worker_scratch *w = scratch;
    tb_batch *b = &ld->batches[slot];
    size_t stride = image_floats(ld);
    uint64_t aseed = augment_seed(ld->opt.seed, epoch);
    for (int j = 0; j < rows; j++) {
        int row = row0 + j;
        int64_t sample = samples[j];
        int32_t label;
        TB_TRY(tb_dataset_read(ld->ds, sample, ld->min_side, &w->img, &label));
        tb_rng rng;
        tb_rng_seed(&rng, aseed, (uint64_t)sample);
        TB_TRY(tb_augment_apply(&ld->aug, &w->img, &rng, b->images + row * stride, &w->scratch));
        b->labels[row] = label;
        b->indices[row] = sample;
    }
    return TB_OK;
}

/* Ring finish (under its lock): pads an eval batch and stamps it. */
static void finish_batch(void *user, int slot, int64_t k, int rows)
{
    tb_loader *ld = user;
    tb_batch *b = &ld->batches[slot];
    size_t stride = image_floats(ld);
    if (rows < ld->opt.batch) {
        memset(b->images + rows * stride, 0, (size_t)(ld->opt.batch - rows) * stride * sizeof(float));
        for (int r = rows; r < ld->opt.batch; r++) {
            b->labels[r] = 0;
            b->indices[r] = -1;
        }
    }
    b->count = rows;
    b->step = k;
}

static void free_scratch(void *scratch)
{
    worker_scratch *w = scratch;
    tb_image_free(&w->img);
    tb_augment_scratch_free(&w->scratch);
}

static int check_options(const tb_dataset *ds, const tb_loader_options *opt)
{
    TB_CHECK(opt->batch > 0, TB_ERR_INVALID, "loader: batch must be > 0, got %d", opt->batch);
    TB_TRY(tb_batch_ring_check("loader", opt->workers, opt->prefetch));
    TB_CHECK(opt->random_erasing >= 0.0f && opt->random_erasing <= 1.0f, TB_ERR_INVALID,
             "data.random_erasing must be a probability in [0, 1], got %g", (double)opt->random_erasing);
    TB_CHECK(!opt->alloc == !opt->free, TB_ERR_INVALID, "loader: give both allocation hooks or neither");
    TB_CHECK(tb_dataset_count(ds) <= INT32_MAX, TB_ERR_INVALID, "loader: %lld images is more than supported (2^31 - 1)",
             (long long)tb_dataset_count(ds));
    TB_CHECK(!opt->train || tb_dataset_count(ds) >= opt->batch, TB_ERR_INVALID,
             "loader: the %s training split has %lld images, fewer than one batch of %d (drop_last)",
             tb_dataset_name(ds), (long long)tb_dataset_count(ds), opt->batch);
    return TB_OK;
}

static int setup_augment(tb_loader *ld)
{
    const tb_dataset *ds = ld->ds;
    int h = tb_dataset_height(ds), w = tb_dataset_width(ds);
    tb_augment *a = &ld->aug;
    TB_TRY(tb_augment_resolve(ld->opt.augment, h > w ? h : w, ld->opt.image_size, &a->kind, &a->size));
    a->train = ld->opt.train;
    a->c = tb_dataset_channels(ds);
    a->random_erasing = ld->opt.random_erasing;
    tb_dataset_normalization(ds, a->mean, a->std);
    ld->min_side = tb_augment_min_side(a);
    return TB_OK;
}

/* Train: shuffled, drop_last; eval: dataset order, the last batch padded. */
static int create_ring(tb_loader *ld)
{
    const tb_loader_options *o = &ld->opt;
    tb_batch_ring_config rc = {.name = "loader", .api = "tb_loader", .count = tb_dataset_count(ld->ds),
                               .batch = o->batch, .drop_last = o->train, .shuffle = o->train,
                               .order_seed = o->seed ^ ORDER_TAG, .workers = o->workers, .prefetch = o->prefetch,
                               .max_chunk = LOADER_MAX_CHUNK, .scratch_bytes = sizeof(worker_scratch),
                               .fill = fill_rows, .finish = finish_batch, .scratch_free = free_scratch, .user = ld};
    return tb_batch_ring_create(&ld->ring, &rc);
}

static int alloc_batches(tb_loader *ld)
{
    int B = ld->opt.batch;
    size_t stride = image_floats(ld);
    ld->nbatches = tb_batch_ring_slots(ld->ring);
    ld->batches = calloc((size_t)ld->nbatches, sizeof *ld->batches);
    TB_CHECK(ld->batches, TB_ERR_NOMEM, "loader: out of memory");
    for (int i = 0; i < ld->nbatches; i++) {
        tb_batch *b = &ld->batches[i];
        b->batch = B;
        b->h = b->w = ld->aug.size;
        b->c = ld->aug.c;
        TB_TRY(tb_batch_mem_alloc(&ld->mem, (void **)&b->images, (size_t)B * stride * sizeof(float),
                                  "images (%d x %d x %d x %d floats)", B, b->h, b->w, b->c));
        TB_TRY(tb_batch_mem_alloc(&ld->mem, (void **)&b->labels, (size_t)B * sizeof(int32_t), "labels"));
        b->indices = malloc((size_t)B * sizeof *b->indices);
        TB_CHECK(b->indices, TB_ERR_NOMEM, "loader: out of memory");
    }
    return TB_OK;
}

int tb_loader_create(tb_loader **out, tb_dataset *ds, const tb_loader_options *opt)
{
    *out = NULL;
    TB_TRY(check_options(ds, opt));
    tb_loader *ld = calloc(1, sizeof *ld);
    TB_CHECK(ld, TB_ERR_NOMEM, "loader: out of memory");
    ld->ds = ds;
    ld->opt = *opt;
    ld->mem = (tb_batch_mem){.alloc = opt->alloc, .free = opt->free, .user = opt->alloc_user, .name = "loader"};
    int rc = setup_augment(ld);
    if (rc == TB_OK)
        rc = create_ring(ld);
    if (rc == TB_OK)
        rc = alloc_batches(ld);
    if (rc != TB_OK) {
        tb_loader_destroy(ld);
        return rc;
    }
    *out = ld;
    return TB_OK;
}

void tb_loader_destroy(tb_loader *ld)
{
    if (!ld)
        return;
    tb_batch_ring_destroy(ld->ring); /* first: no worker may touch a batch after this */
    for (int i = 0; ld->batches && i < ld->nbatches; i++) {
        tb_batch *b = &ld->batches[i];
        tb_batch_mem_free(&ld->mem, b->images);
        tb_batch_mem_free(&ld->mem, b->labels);
        free(b->indices);
    }
    free(ld->batches);
    free(ld);
}

int tb_loader_start_epoch(tb_loader *ld, int epoch) { return tb_batch_ring_start(ld->ring, epoch); }

int tb_loader_next(tb_loader *ld, tb_batch **batch)
{
    int slot;
    int rc = tb_batch_ring_next(ld->ring, &slot);
    *batch = slot >= 0 ? &ld->batches[slot] : NULL;
    return rc;
}

void tb_loader_release(tb_loader *ld, tb_batch *batch)
{
    if (batch && batch >= ld->batches && batch < ld->batches + ld->nbatches)
        tb_batch_ring_release(ld->ring, (int)(batch - ld->batches));
}

int64_t tb_loader_steps_per_epoch(const tb_loader *ld) { return tb_batch_ring_steps(ld->ring); }

void tb_loader_shape(const tb_loader *ld, int *batch, int *h, int *w, int *c)
{
    *batch = ld->opt.batch;
    *h = ld->aug.size;
    *w = ld->aug.size;
    *c = ld->aug.c;
}

int tb_loader_workers(const tb_loader *ld) { return tb_batch_ring_workers(ld->ring); }

int tb_loader_slots(const tb_loader *ld) { return tb_batch_ring_slots(ld->ring); }

const char *tb_loader_augment_name(const tb_loader *ld) { return tb_augment_kind_name(ld->aug.kind); }
