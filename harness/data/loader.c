/* The threaded batch loader (see loader.h).
 *
 * Work is handed out as chunks of consecutive positions of the epoch; batch
 * k lives in ring slot k % prefetch and may be filled only while that slot
 * is free or already holds batch k, so workers run at most `prefetch`
 * batches ahead of the consumer. Several workers fill one batch together;
 * the one that completes it marks it ready. Workers block all signals so
 * that SIGINT/SIGTERM reach the main thread.
 */
#include "harness/data/loader.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/data/augment.h"
#include "kernels/error.h"
#include "kernels/rng.h"

#define LOADER_MAX_WORKERS 64
#define LOADER_DEFAULT_PREFETCH 3
#define LOADER_MAX_CHUNK 16
#define ORDER_TAG 0x6f72646572ull   /* "order" */
#define AUGMENT_TAG 0x6175676d656eull /* "augmen" */

typedef enum slot_state { SLOT_FREE = 0, SLOT_FILLING, SLOT_READY, SLOT_HANDED } slot_state;

typedef struct slot {
    tb_batch b;
    int64_t k;        /* batch of the epoch held, -1 when free */
    slot_state state;
    int done;         /* rows finished */
} slot;

typedef struct worker {
    tb_loader *ld;
    pthread_t thread;
    bool started;
    tb_image img;
    tb_augment_scratch scratch;
} worker;

struct tb_loader {
    tb_dataset *ds;
    tb_loader_options opt;
    tb_augment aug;
    int min_side;
    int64_t n, steps, total; /* samples, batches, positions per epoch */
    int chunk;
    int32_t *order;          /* epoch position -> dataset sample */
    slot *slots;
    int nslots;
    worker *workers;
    int nworkers;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, ready_cv;
    /* guarded by mu */
    bool started, active, stop;
    int epoch;
    uint64_t generation;     /* bumped by start_epoch: drops stale work */
    int64_t next_claim, next_consume;
    int busy;
    int err;
    char err_msg[2048];
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

static int64_t batch_rows(const tb_loader *ld, int64_t k)
{
    int64_t left = ld->total - k * ld->opt.batch;
    return left < ld->opt.batch ? left : ld->opt.batch;
}

/* Reads and augments positions [p0, p1) of batch k into slot s (no lock held). */
static int fill_rows(tb_loader *ld, worker *w, slot *s, int64_t k, int64_t p0, int64_t p1, int epoch)
{
    size_t stride = (size_t)ld->aug.size * ld->aug.size * ld->aug.c;
    uint64_t aseed = augment_seed(ld->opt.seed, epoch);
    for (int64_t p = p0; p < p1; p++) {
        int64_t row = p - k * ld->opt.batch;
        int64_t sample = ld->opt.train ? ld->order[p] : p;
        int32_t label;
        TB_TRY(tb_dataset_read(ld->ds, sample, ld->min_side, &w->img, &label));
        tb_rng rng;
        tb_rng_seed(&rng, aseed, (uint64_t)sample);
        TB_TRY(tb_augment_apply(&ld->aug, &w->img, &rng, s->b.images + row * stride, &w->scratch));
        s->b.labels[row] = label;
        s->b.indices[row] = sample;
    }
    return TB_OK;
}

/* Under mu: the slot the next chunk goes to, or NULL when none can start. */
static slot *claimable(tb_loader *ld)
{
    if (!ld->active || ld->err || ld->next_claim >= ld->total)
        return NULL;
    int64_t k = ld->next_claim / ld->opt.batch;
    slot *s = &ld->slots[k % ld->nslots];
    return s->state == SLOT_FREE || (s->state == SLOT_FILLING && s->k == k) ? s : NULL;
}

/* Under mu: batch k is complete; pad an eval batch and publish it. */
static void finish_batch(tb_loader *ld, slot *s, int64_t k)
{
    int rows = (int)batch_rows(ld, k);
    size_t stride = (size_t)ld->aug.size * ld->aug.size * ld->aug.c;
    if (rows < ld->opt.batch) {
        memset(s->b.images + rows * stride, 0, (size_t)(ld->opt.batch - rows) * stride * sizeof(float));
        for (int r = rows; r < ld->opt.batch; r++) {
            s->b.labels[r] = 0;
            s->b.indices[r] = -1;
        }
    }
    s->b.count = rows;
    s->b.step = k;
    s->state = SLOT_READY;
    pthread_cond_broadcast(&ld->ready_cv);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    tb_loader *ld = w->ld;
    char msg[sizeof ld->err_msg];
    pthread_mutex_lock(&ld->mu);
    for (;;) {
        slot *s = NULL;
        while (!ld->stop && (s = claimable(ld)) == NULL)
            pthread_cond_wait(&ld->work_cv, &ld->mu);
        if (ld->stop)
            break;
        int64_t k = ld->next_claim / ld->opt.batch;
        if (s->state == SLOT_FREE) {
            s->k = k;
            s->state = SLOT_FILLING;
            s->done = 0;
        }
        int64_t p0 = ld->next_claim, p1 = p0 + ld->chunk;
        int64_t end = k * ld->opt.batch + batch_rows(ld, k);
        p1 = p1 < end ? p1 : end;
        ld->next_claim = p1;
        uint64_t gen = ld->generation;
        int epoch = ld->epoch;
        ld->busy++;
        pthread_mutex_unlock(&ld->mu);

        int rc = fill_rows(ld, w, s, k, p0, p1, epoch);
        if (rc != TB_OK) /* the message is thread-local: copy it before handing it over */
            snprintf(msg, sizeof msg, "%s", tb_errmsg());

        pthread_mutex_lock(&ld->mu);
        ld->busy--;
        if (gen != ld->generation) {
            pthread_cond_broadcast(&ld->ready_cv); /* start_epoch waits for busy == 0 */
            continue;
        }
        if (rc != TB_OK) {
            if (!ld->err) {
                ld->err = rc;
                memcpy(ld->err_msg, msg, sizeof msg);
            }
            pthread_cond_broadcast(&ld->ready_cv);
            continue;
        }
        s->done += (int)(p1 - p0);
        if (s->done == batch_rows(ld, k))
            finish_batch(ld, s, k);
    }
    pthread_mutex_unlock(&ld->mu);
    return NULL;
}

static int default_alloc(void *user, void **p, size_t bytes)
{
    (void)user;
    *p = malloc(bytes);
    return *p ? TB_OK : tb_fail(TB_ERR_NOMEM, "loader: cannot allocate %zu bytes", bytes);
}

static void default_free(void *user, void *p)
{
    (void)user;
    free(p);
}

static int auto_workers(void)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long n = cores / 2;
    return n < 1 ? 1 : n > 8 ? 8 : (int)n;
}

static int check_options(const tb_dataset *ds, const tb_loader_options *opt)
{
    TB_CHECK(opt->batch > 0, TB_ERR_INVALID, "loader: batch must be > 0, got %d", opt->batch);
    TB_CHECK(opt->workers >= 0 && opt->workers <= LOADER_MAX_WORKERS, TB_ERR_INVALID,
             "loader: workers must be in 0..%d, got %d", LOADER_MAX_WORKERS, opt->workers);
    TB_CHECK(opt->prefetch >= 0 && opt->prefetch <= 64, TB_ERR_INVALID, "loader: prefetch must be in 0..64, got %d",
             opt->prefetch);
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

static int alloc_slots(tb_loader *ld)
{
    int B = ld->opt.batch;
    size_t stride = (size_t)ld->aug.size * ld->aug.size * ld->aug.c;
    ld->slots = calloc((size_t)ld->nslots, sizeof *ld->slots);
    TB_CHECK(ld->slots, TB_ERR_NOMEM, "loader: out of memory");
    for (int i = 0; i < ld->nslots; i++) {
        tb_batch *b = &ld->slots[i].b;
        ld->slots[i].k = -1;
        b->batch = B;
        b->h = b->w = ld->aug.size;
        b->c = ld->aug.c;
        TB_TRY(tb_err_context(ld->opt.alloc(ld->opt.alloc_user, (void **)&b->images, (size_t)B * stride * sizeof(float)),
                              "loader: batch images (%d x %d x %d x %d floats)", B, b->h, b->w, b->c));
        TB_TRY(tb_err_context(ld->opt.alloc(ld->opt.alloc_user, (void **)&b->labels, (size_t)B * sizeof(int32_t)),
                              "loader: batch labels"));
        b->indices = malloc((size_t)B * sizeof *b->indices);
        TB_CHECK(b->indices, TB_ERR_NOMEM, "loader: out of memory");
    }
    return TB_OK;
}

/* Starts the workers with every signal blocked (they inherit the mask). */
static int start_workers(tb_loader *ld)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = TB_OK;
    for (int i = 0; i < ld->nworkers && rc == TB_OK; i++) {
        worker *w = &ld->workers[i];
        w->ld = ld;
        int e = pthread_create(&w->thread, NULL, worker_main, w);
        if (e != 0)
            rc = tb_fail(TB_ERR_NOMEM, "loader: cannot start worker thread %d: %s", i, strerror(e));
        else
            w->started = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

int tb_loader_create(tb_loader **out, tb_dataset *ds, const tb_loader_options *opt)
{
    *out = NULL;
    TB_TRY(check_options(ds, opt));
    tb_loader *ld = calloc(1, sizeof *ld);
    TB_CHECK(ld, TB_ERR_NOMEM, "loader: out of memory");
    ld->ds = ds;
    ld->opt = *opt;
    if (!ld->opt.alloc) {
        ld->opt.alloc = default_alloc;
        ld->opt.free = default_free;
    }
    ld->nworkers = opt->workers > 0 ? opt->workers : auto_workers();
    ld->nslots = opt->prefetch > 0 ? opt->prefetch : LOADER_DEFAULT_PREFETCH;
    ld->n = tb_dataset_count(ds);
    ld->steps = opt->train ? ld->n / opt->batch : (ld->n + opt->batch - 1) / opt->batch;
    ld->total = opt->train ? ld->steps * opt->batch : ld->n;
    int chunk = opt->batch / (2 * ld->nworkers);
    ld->chunk = chunk < 1 ? 1 : chunk > LOADER_MAX_CHUNK ? LOADER_MAX_CHUNK : chunk;
    pthread_mutex_init(&ld->mu, NULL);
    pthread_cond_init(&ld->work_cv, NULL);
    pthread_cond_init(&ld->ready_cv, NULL);
    int rc = setup_augment(ld);
    if (rc == TB_OK) {
        ld->order = malloc((size_t)ld->n * sizeof *ld->order);
        ld->workers = calloc((size_t)ld->nworkers, sizeof *ld->workers);
        if (!ld->order || !ld->workers)
            rc = tb_fail(TB_ERR_NOMEM, "loader: out of memory");
    }
    if (rc == TB_OK)
        rc = alloc_slots(ld);
    if (rc == TB_OK)
        rc = start_workers(ld);
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
    pthread_mutex_lock(&ld->mu);
    ld->stop = true;
    pthread_cond_broadcast(&ld->work_cv);
    pthread_mutex_unlock(&ld->mu);
    for (int i = 0; ld->workers && i < ld->nworkers; i++) {
        worker *w = &ld->workers[i];
        if (w->started)
            pthread_join(w->thread, NULL);
        tb_image_free(&w->img);
        tb_augment_scratch_free(&w->scratch);
    }
    for (int i = 0; ld->slots && i < ld->nslots; i++) {
        tb_batch *b = &ld->slots[i].b;
        if (b->images)
            ld->opt.free(ld->opt.alloc_user, b->images);
        if (b->labels)
            ld->opt.free(ld->opt.alloc_user, b->labels);
        free(b->indices);
    }
    pthread_cond_destroy(&ld->work_cv);
    pthread_cond_destroy(&ld->ready_cv);
    pthread_mutex_destroy(&ld->mu);
    free(ld->slots);
    free(ld->workers);
    free(ld->order);
    free(ld);
}

static int loader_error(const tb_loader *ld) { return tb_fail(ld->err, "%s", ld->err_msg); }

int tb_loader_start_epoch(tb_loader *ld, int epoch)
{
    pthread_mutex_lock(&ld->mu);
    for (int i = 0; i < ld->nslots; i++)
        if (ld->slots[i].state == SLOT_HANDED) {
            pthread_mutex_unlock(&ld->mu);
            return tb_fail(TB_ERR_INVALID, "loader: start_epoch(%d) while batch %lld of epoch %d is still held; "
                           "release it first", epoch, (long long)ld->slots[i].k, ld->epoch);
        }
    if (ld->err) {
        int rc = loader_error(ld);
        pthread_mutex_unlock(&ld->mu);
        return rc;
    }
    ld->active = false;
    ld->generation++;
    while (ld->busy > 0)
        pthread_cond_wait(&ld->ready_cv, &ld->mu);
    for (int i = 0; i < ld->nslots; i++) {
        ld->slots[i].state = SLOT_FREE;
        ld->slots[i].k = -1;
        ld->slots[i].done = 0;
    }
    for (int64_t i = 0; i < ld->n; i++)
        ld->order[i] = (int32_t)i;
    if (ld->opt.train) {
        tb_rng r;
        tb_rng_seed(&r, ld->opt.seed ^ ORDER_TAG, (uint64_t)epoch);
        tb_rng_shuffle_i32(&r, ld->order, ld->n);
    }
    ld->epoch = epoch;
    ld->next_claim = 0;
    ld->next_consume = 0;
    ld->started = true;
    ld->active = true;
    pthread_cond_broadcast(&ld->work_cv);
    pthread_mutex_unlock(&ld->mu);
    return TB_OK;
}

int tb_loader_next(tb_loader *ld, tb_batch **batch)
{
    *batch = NULL;
    pthread_mutex_lock(&ld->mu);
    int rc = TB_OK;
    if (!ld->started) {
        rc = tb_fail(TB_ERR_INVALID, "loader: call tb_loader_start_epoch before tb_loader_next");
    } else if (ld->err) {
        rc = loader_error(ld);
    } else if (ld->next_consume < ld->steps) {
        int64_t k = ld->next_consume;
        slot *s = &ld->slots[k % ld->nslots];
        if (s->state == SLOT_HANDED) {
            rc = tb_fail(TB_ERR_INVALID, "loader: all %d ring batches are held; release one before asking for the next",
                         ld->nslots);
        } else {
            while (!ld->err && !(s->k == k && s->state == SLOT_READY))
                pthread_cond_wait(&ld->ready_cv, &ld->mu);
            if (ld->err) {
                rc = loader_error(ld);
            } else {
                s->state = SLOT_HANDED;
                ld->next_consume++;
                *batch = &s->b;
            }
        }
    }
    pthread_mutex_unlock(&ld->mu);
    return rc;
}

void tb_loader_release(tb_loader *ld, tb_batch *batch)
{
    if (!batch)
        return;
    slot *s = (slot *)((char *)batch - offsetof(slot, b));
    pthread_mutex_lock(&ld->mu);
    if (s >= ld->slots && s < ld->slots + ld->nslots && s->state == SLOT_HANDED) {
        s->state = SLOT_FREE;
        s->k = -1;
        s->done = 0;
        pthread_cond_broadcast(&ld->work_cv);
    }
    pthread_mutex_unlock(&ld->mu);
}

int64_t tb_loader_steps_per_epoch(const tb_loader *ld) { return ld->steps; }

void tb_loader_shape(const tb_loader *ld, int *batch, int *h, int *w, int *c)
{
    *batch = ld->opt.batch;
    *h = ld->aug.size;
    *w = ld->aug.size;
    *c = ld->aug.c;
}

int tb_loader_workers(const tb_loader *ld) { return ld->nworkers; }

const char *tb_loader_augment_name(const tb_loader *ld) { return tb_augment_kind_name(ld->aug.kind); }
