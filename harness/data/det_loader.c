/* The threaded detection loader (see det_loader.h).
 *
 * The ring works as loader.c's: work is handed out as chunks of consecutive
 * positions of the epoch; batch k lives in ring slot k % prefetch and may be
 * filled only while that slot is free or already holds batch k, so workers
 * run at most `prefetch` batches ahead of the consumer. Several workers fill
 * one batch together; the one that completes it marks it ready. Workers
 * block all signals so that SIGINT/SIGTERM reach the main thread.
 */
#include "harness/data/det_loader.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/data/det_transform.h"
#include "kernels/error.h"
#include "kernels/rng.h"

#define DET_MAX_WORKERS 64
#define DET_DEFAULT_PREFETCH 3
#define DET_MAX_CHUNK 4
#define ORDER_TAG 0x64657430726472ull /* "det0rdr" */
#define FLIP_TAG 0x646574666c6970ull  /* "detflip" */

typedef enum slot_state { SLOT_FREE = 0, SLOT_FILLING, SLOT_READY, SLOT_HANDED } slot_state;

typedef struct slot {
    tb_det_batch b;
    int64_t k;        /* batch of the epoch held, -1 when free */
    slot_state state;
    int done;         /* rows finished */
} slot;

typedef struct worker {
    tb_det_loader *ld;
    pthread_t thread;
    bool started;
    tb_image img;
    tb_det_scratch scratch;
} worker;

struct tb_det_loader {
    tb_det_dataset *ds;
    tb_det_loader_options opt;
    tb_det_transform tf;
    int64_t n, steps, total;  /* images, batches, positions per epoch */
    int chunk;
    int32_t *order;           /* epoch position -> dataset image */
    slot *slots;
    int nslots;
    worker *workers;
    int nworkers;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, ready_cv;
    /* guarded by mu */
    bool started, active, stop;
    int epoch;
    uint64_t generation;      /* bumped by start_epoch: drops stale work */
    int64_t next_claim, next_consume;
    int busy;
    int err;
    char err_msg[2048];
};

static int64_t batch_rows(const tb_det_loader *ld, int64_t k)
{
    int64_t left = ld->total - k * ld->opt.batch;
    return left < ld->opt.batch ? left : ld->opt.batch;
}

static tb_det_row row_of(const tb_det_loader *ld, tb_det_batch *b, int64_t r)
{
    const tb_det_transform *t = &ld->tf;
    size_t img = (size_t)t->canvas_h * t->canvas_w * t->c, m = (size_t)t->max_objects;
    return (tb_det_row){.image = b->images + r * img, .boxes = b->boxes + r * m * 4, .labels = b->labels + r * m,
                        .difficult = b->difficult + r * m, .count = b->count + r, .im_size = b->im_size + 2 * r,
                        .scale = b->scale + r};
}

/* Reads and transforms positions [p0, p1) of batch k into slot s (no lock held). */
static int fill_rows(tb_det_loader *ld, worker *w, slot *s, int64_t k, int64_t p0, int64_t p1, int epoch)
{
    uint64_t fseed = tb_splitmix64(ld->opt.seed ^ tb_splitmix64((uint64_t)epoch + FLIP_TAG));
    for (int64_t p = p0; p < p1; p++) {
        int64_t r = p - k * ld->opt.batch;
        int64_t i = ld->order[p];
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
        tb_det_row row = row_of(ld, &s->b, r);
        TB_TRY(tb_det_transform_apply(&ld->tf, &w->img, objs, count, flip, tb_det_dataset_image_name(ld->ds, i), &row,
                                      &w->scratch));
        s->b.indices[r] = i;
        s->b.flipped[r] = flip;
    }
    return TB_OK;
}

/* Under mu: the slot the next chunk goes to, or NULL when none can start. */
static slot *claimable(tb_det_loader *ld)
{
    if (!ld->active || ld->err || ld->next_claim >= ld->total)
        return NULL;
    int64_t k = ld->next_claim / ld->opt.batch;
    slot *s = &ld->slots[k % ld->nslots];
    return s->state == SLOT_FREE || (s->state == SLOT_FILLING && s->k == k) ? s : NULL;
}

/* Under mu: batch k is complete; pad it and publish it. */
static void finish_batch(tb_det_loader *ld, slot *s, int64_t k)
{
    int rows = (int)batch_rows(ld, k);
    for (int r = rows; r < ld->opt.batch; r++) {
        tb_det_row row = row_of(ld, &s->b, r);
        tb_det_transform_pad(&ld->tf, &row);
        s->b.indices[r] = -1;
        s->b.flipped[r] = 0;
    }
    s->b.valid = rows;
    s->b.step = k;
    s->state = SLOT_READY;
    pthread_cond_broadcast(&ld->ready_cv);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    tb_det_loader *ld = w->ld;
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
    return *p ? TB_OK : tb_fail(TB_ERR_NOMEM, "detection loader: cannot allocate %zu bytes", bytes);
}

static void default_free(void *user, void *p)
{
    (void)user;
    free(p);
}

static int auto_workers(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN) / 2;
    return n < 1 ? 1 : n > 8 ? 8 : (int)n;
}

static int check_options(const tb_det_dataset *ds, const tb_det_loader_options *o)
{
    TB_CHECK(o->batch > 0, TB_ERR_INVALID, "detection loader: batch must be > 0, got %d", o->batch);
    TB_CHECK(o->workers >= 0 && o->workers <= DET_MAX_WORKERS, TB_ERR_INVALID,
             "detection loader: workers must be in 0..%d, got %d", DET_MAX_WORKERS, o->workers);
    TB_CHECK(o->prefetch >= 0 && o->prefetch <= 64, TB_ERR_INVALID,
             "detection loader: prefetch must be in 0..64, got %d", o->prefetch);
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

static int alloc_array(tb_det_loader *ld, void **p, size_t bytes, const char *what)
{
    return tb_err_context(ld->opt.alloc(ld->opt.alloc_user, p, bytes), "detection loader: batch %s", what);
}

static int alloc_slots(tb_det_loader *ld)
{
    const tb_det_transform *t = &ld->tf;
    size_t B = (size_t)ld->opt.batch, m = (size_t)t->max_objects;
    ld->slots = calloc((size_t)ld->nslots, sizeof *ld->slots);
    TB_CHECK(ld->slots, TB_ERR_NOMEM, "detection loader: out of memory");
    for (int i = 0; i < ld->nslots; i++) {
        tb_det_batch *b = &ld->slots[i].b;
        ld->slots[i].k = -1;
        *b = (tb_det_batch){.n = ld->opt.batch, .h = t->canvas_h, .w = t->canvas_w, .c = t->c,
                            .max_objects = t->max_objects};
        TB_TRY(alloc_array(ld, (void **)&b->images, B * t->canvas_h * t->canvas_w * t->c * sizeof(float), "images"));
        TB_TRY(alloc_array(ld, (void **)&b->boxes, B * m * 4 * sizeof(float), "boxes"));
        TB_TRY(alloc_array(ld, (void **)&b->labels, B * m * sizeof(int32_t), "labels"));
        TB_TRY(alloc_array(ld, (void **)&b->difficult, B * m, "difficult flags"));
        TB_TRY(alloc_array(ld, (void **)&b->count, B * sizeof(int32_t), "counts"));
        TB_TRY(alloc_array(ld, (void **)&b->im_size, B * 2 * sizeof(float), "image sizes"));
        TB_TRY(alloc_array(ld, (void **)&b->scale, B * sizeof(float), "scales"));
        b->indices = malloc(B * sizeof *b->indices);
        b->flipped = malloc(B);
        TB_CHECK(b->indices && b->flipped, TB_ERR_NOMEM, "detection loader: out of memory");
    }
    return TB_OK;
}

/* Starts the workers with every signal blocked (they inherit the mask). */
static int start_workers(tb_det_loader *ld)
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
            rc = tb_fail(TB_ERR_NOMEM, "detection loader: cannot start worker thread %d: %s", i, strerror(e));
        else
            w->started = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

int tb_det_loader_create(tb_det_loader **out, tb_det_dataset *ds, const tb_det_loader_options *opt)
{
    *out = NULL;
    TB_TRY(check_options(ds, opt));
    tb_det_loader *ld = calloc(1, sizeof *ld);
    TB_CHECK(ld, TB_ERR_NOMEM, "detection loader: out of memory");
    ld->ds = ds;
    ld->opt = *opt;
    if (!ld->opt.alloc) {
        ld->opt.alloc = default_alloc;
        ld->opt.free = default_free;
    }
    ld->nworkers = opt->workers > 0 ? opt->workers : auto_workers();
    ld->nslots = opt->prefetch > 0 ? opt->prefetch : DET_DEFAULT_PREFETCH;
    ld->n = tb_det_dataset_count(ds);
    ld->steps = opt->drop_last ? ld->n / opt->batch : (ld->n + opt->batch - 1) / opt->batch;
    ld->total = opt->drop_last ? ld->steps * opt->batch : ld->n;
    /* detection images are large: small chunks keep every worker busy */
    int chunk = opt->batch / (2 * ld->nworkers);
    ld->chunk = chunk < 1 ? 1 : chunk > DET_MAX_CHUNK ? DET_MAX_CHUNK : chunk;
    pthread_mutex_init(&ld->mu, NULL);
    pthread_cond_init(&ld->work_cv, NULL);
    pthread_cond_init(&ld->ready_cv, NULL);
    int rc = setup_transform(ld);
    if (rc == TB_OK) {
        ld->order = malloc((size_t)(ld->n > 0 ? ld->n : 1) * sizeof *ld->order);
        ld->workers = calloc((size_t)ld->nworkers, sizeof *ld->workers);
        if (!ld->order || !ld->workers)
            rc = tb_fail(TB_ERR_NOMEM, "detection loader: out of memory");
    }
    if (rc == TB_OK)
        rc = alloc_slots(ld);
    if (rc == TB_OK)
        rc = start_workers(ld);
    if (rc != TB_OK) {
        tb_det_loader_destroy(ld);
        return rc;
    }
    *out = ld;
    return TB_OK;
}

static void free_array(tb_det_loader *ld, void *p)
{
    if (p)
        ld->opt.free(ld->opt.alloc_user, p);
}

void tb_det_loader_destroy(tb_det_loader *ld)
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
        tb_det_scratch_free(&w->scratch);
    }
    for (int i = 0; ld->slots && i < ld->nslots; i++) {
        tb_det_batch *b = &ld->slots[i].b;
        free_array(ld, b->images);
        free_array(ld, b->boxes);
        free_array(ld, b->labels);
        free_array(ld, b->difficult);
        free_array(ld, b->count);
        free_array(ld, b->im_size);
        free_array(ld, b->scale);
        free(b->indices);
        free(b->flipped);
    }
    pthread_cond_destroy(&ld->work_cv);
    pthread_cond_destroy(&ld->ready_cv);
    pthread_mutex_destroy(&ld->mu);
    free(ld->slots);
    free(ld->workers);
    free(ld->order);
    free(ld);
}

static int loader_error(const tb_det_loader *ld) { return tb_fail(ld->err, "%s", ld->err_msg); }

int tb_det_loader_start_epoch(tb_det_loader *ld, int epoch)
{
    pthread_mutex_lock(&ld->mu);
    for (int i = 0; i < ld->nslots; i++)
        if (ld->slots[i].state == SLOT_HANDED) {
            pthread_mutex_unlock(&ld->mu);
            return tb_fail(TB_ERR_INVALID, "detection loader: start_epoch(%d) while batch %lld of epoch %d is still "
                           "held; release it first", epoch, (long long)ld->slots[i].k, ld->epoch);
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
    if (ld->opt.shuffle) {
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

int tb_det_loader_next(tb_det_loader *ld, tb_det_batch **batch)
{
    *batch = NULL;
    pthread_mutex_lock(&ld->mu);
    int rc = TB_OK;
    if (!ld->started) {
        rc = tb_fail(TB_ERR_INVALID, "detection loader: call tb_det_loader_start_epoch before tb_det_loader_next");
    } else if (ld->err) {
        rc = loader_error(ld);
    } else if (ld->next_consume < ld->steps) {
        int64_t k = ld->next_consume;
        slot *s = &ld->slots[k % ld->nslots];
        if (s->state == SLOT_HANDED) {
            rc = tb_fail(TB_ERR_INVALID,
                         "detection loader: all %d ring batches are held; release one before asking for the next",
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

void tb_det_loader_release(tb_det_loader *ld, tb_det_batch *batch)
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

int64_t tb_det_loader_steps_per_epoch(const tb_det_loader *ld) { return ld->steps; }

void tb_det_loader_shape(const tb_det_loader *ld, int *n, int *h, int *w, int *c, int *max_objects)
{
    *n = ld->opt.batch;
    *h = ld->tf.canvas_h;
    *w = ld->tf.canvas_w;
    *c = ld->tf.c;
    *max_objects = ld->tf.max_objects;
}

int tb_det_loader_workers(const tb_det_loader *ld) { return ld->nworkers; }
