/* The ring of batches filled by worker threads (see batch_ring.h).
 *
 * Work is handed out as chunks of consecutive positions of the epoch; batch
 * k lives in ring slot k % slots and may be filled only while that slot is
 * free or already holds batch k, so workers run at most `slots` batches
 * ahead of the consumer. Several workers fill one batch together; the one
 * that completes it finishes it and marks it ready. A restart bumps a
 * generation number: a chunk claimed before it is filled but not counted,
 * and start waits until no worker is inside a fill. Workers block all
 * signals so that SIGINT/SIGTERM reach the main thread.
 */
#include "harness/data/batch_ring.h"

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/error.h"
#include "kernels/rng.h"

#define RING_DEFAULT_SLOTS 3
#define RING_CACHE_LINE 64

typedef enum slot_state { SLOT_FREE = 0, SLOT_FILLING, SLOT_READY, SLOT_HANDED } slot_state;

typedef struct slot {
    int64_t k;        /* batch of the epoch held, -1 when free */
    slot_state state;
    int done;         /* rows finished */
} slot;

typedef struct worker {
    tb_batch_ring *r;
    pthread_t thread;
    bool started;
    void *scratch;    /* the loader's per-worker state (cfg.scratch_bytes) */
} worker;

struct tb_batch_ring {
    tb_batch_ring_config cfg;
    int64_t steps, total;    /* batches, positions per epoch */
    int chunk;
    int32_t *order;          /* epoch position -> dataset sample */
    slot *slots;
    int nslots;
    worker *workers;
    int nworkers;
    unsigned char *batches;  /* nslots loader batch structs of cfg.batch_bytes (or NULL) */
    bool launched;           /* workers started (by the first start) */
    pthread_mutex_t mu;
    pthread_cond_t work_cv, ready_cv;
    /* guarded by mu */
    bool started, active, stop;
    int epoch;
    uint64_t generation;     /* bumped by start: drops stale work */
    int64_t next_claim, next_consume;
    int busy;                /* workers inside a fill */
    int err;
    char err_msg[2048];
};

static int64_t batch_rows(const tb_batch_ring *r, int64_t k)
{
    int64_t left = r->total - k * r->cfg.batch;
    return left < r->cfg.batch ? left : r->cfg.batch;
}

/* Under mu: the slot the next chunk goes to, or NULL when none can start. */
static slot *claimable(tb_batch_ring *r)
{
    if (!r->active || r->err || r->next_claim >= r->total)
        return NULL;
    int64_t k = r->next_claim / r->cfg.batch;
    slot *s = &r->slots[k % r->nslots];
    return s->state == SLOT_FREE || (s->state == SLOT_FILLING && s->k == k) ? s : NULL;
}

/* Under mu: batch k is complete; the loader pads and stamps it, then it is published. */
static void finish_batch(tb_batch_ring *r, slot *s, int64_t k)
{
    r->cfg.finish(r->cfg.user, (int)(s - r->slots), k, (int)batch_rows(r, k));
    s->state = SLOT_READY;
    pthread_cond_broadcast(&r->ready_cv);
}

/* Under mu: a worker's failure becomes the ring's, unless one came first. */
static void keep_error(tb_batch_ring *r, int rc, const char *msg)
{
    if (!r->err) {
        r->err = rc;
        snprintf(r->err_msg, sizeof r->err_msg, "%s", msg);
    }
    pthread_cond_broadcast(&r->ready_cv);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    tb_batch_ring *r = w->r;
    char msg[sizeof r->err_msg];
    pthread_mutex_lock(&r->mu);
    for (;;) {
        slot *s = NULL;
        while (!r->stop && (s = claimable(r)) == NULL)
            pthread_cond_wait(&r->work_cv, &r->mu);
        if (r->stop)
            break;
        int64_t k = r->next_claim / r->cfg.batch;
        if (s->state == SLOT_FREE) {
            s->k = k;
            s->state = SLOT_FILLING;
            s->done = 0;
        }
        int64_t p0 = r->next_claim, p1 = p0 + r->chunk;
        int64_t end = k * r->cfg.batch + batch_rows(r, k);
        p1 = p1 < end ? p1 : end;
        r->next_claim = p1;
        uint64_t gen = r->generation;
        int epoch = r->epoch;
        r->busy++;
        pthread_mutex_unlock(&r->mu);

        int rc = r->cfg.fill(r->cfg.user, w->scratch, (int)(s - r->slots), k, (int)(p0 - k * r->cfg.batch),
                             (int)(p1 - p0), r->order + p0, epoch);
        if (rc != TB_OK) /* the message is thread-local: copy it before handing it over */
            snprintf(msg, sizeof msg, "%s", tb_errmsg());

        pthread_mutex_lock(&r->mu);
        r->busy--;
        if (gen != r->generation) {
            pthread_cond_broadcast(&r->ready_cv); /* start waits for busy == 0 */
            continue;
        }
        if (rc != TB_OK) {
            keep_error(r, rc, msg);
            continue;
        }
        s->done += (int)(p1 - p0);
        if (s->done == batch_rows(r, k))
            finish_batch(r, s, k);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static int auto_workers(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN) / 2;
    return n < 1 ? 1 : n > 8 ? 8 : (int)n;
}

int tb_batch_ring_check(const char *name, int workers, int prefetch)
{
    TB_CHECK(workers >= 0 && workers <= TB_BATCH_RING_MAX_WORKERS, TB_ERR_INVALID,
             "%s: workers must be in 0..%d, got %d", name, TB_BATCH_RING_MAX_WORKERS, workers);
    TB_CHECK(prefetch >= 0 && prefetch <= TB_BATCH_RING_MAX_SLOTS, TB_ERR_INVALID,
             "%s: prefetch must be in 0..%d, got %d", name, TB_BATCH_RING_MAX_SLOTS, prefetch);
    return TB_OK;
}

static int check_config(const tb_batch_ring_config *c)
{
    TB_CHECK(c->name && c->api && c->fill && c->finish, TB_ERR_INVALID,
             "batch ring: name, api, fill and finish are required");
    TB_CHECK(!c->batch_bytes || (c->batch_alloc && c->batch_free), TB_ERR_INVALID,
             "%s: batch_bytes needs batch_alloc and batch_free", c->name);
    TB_TRY(tb_batch_ring_check(c->name, c->workers, c->prefetch));
    TB_CHECK(c->batch > 0 && c->max_chunk > 0, TB_ERR_INVALID, "%s: batch and chunk must be > 0, got %d and %d",
             c->name, c->batch, c->max_chunk);
    TB_CHECK(c->count >= 0 && c->count <= INT32_MAX, TB_ERR_INVALID,
             "%s: %lld samples is outside the supported 0 .. 2^31 - 1", c->name, (long long)c->count);
    TB_CHECK(!c->drop_last || c->count >= c->batch, TB_ERR_INVALID,
             "%s: %lld samples, fewer than one batch of %d (drop_last)", c->name, (long long)c->count, c->batch);
    return TB_OK;
}

/* Starts the workers with every signal blocked (they inherit the mask). */
static int start_workers(tb_batch_ring *r)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = TB_OK;
    for (int i = 0; i < r->nworkers && rc == TB_OK; i++) {
        worker *w = &r->workers[i];
        int e = pthread_create(&w->thread, NULL, worker_main, w);
        if (e != 0)
            rc = tb_fail(TB_ERR_NOMEM, "%s: cannot start worker thread %d: %s", r->cfg.name, i, strerror(e));
        else
            w->started = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

/* The order, slots and workers (with their scratch areas). */
static int alloc_ring(tb_batch_ring *r)
{
    r->order = malloc((size_t)(r->cfg.count > 0 ? r->cfg.count : 1) * sizeof *r->order);
    r->slots = calloc((size_t)r->nslots, sizeof *r->slots);
    r->workers = calloc((size_t)r->nworkers, sizeof *r->workers);
    TB_CHECK(r->order && r->slots && r->workers, TB_ERR_NOMEM, "%s: out of memory", r->cfg.name);
    for (int i = 0; i < r->nslots; i++)
        r->slots[i].k = -1;
    for (int i = 0; i < r->nworkers; i++) {
        r->workers[i].r = r;
        /* whole cache lines of its own: a worker writes its scratch for every
           image, and a line shared with another worker would bounce between cores */
        size_t bytes = (r->cfg.scratch_bytes + RING_CACHE_LINE) / RING_CACHE_LINE * RING_CACHE_LINE;
        r->workers[i].scratch = aligned_alloc(RING_CACHE_LINE, bytes);
        TB_CHECK(r->workers[i].scratch, TB_ERR_NOMEM, "%s: out of memory", r->cfg.name);
        memset(r->workers[i].scratch, 0, bytes);
    }
    return TB_OK;
}

/* The loader's batch structs, each set up by batch_alloc. */
static int alloc_batches(tb_batch_ring *r)
{
    if (!r->cfg.batch_bytes)
        return TB_OK;
    r->batches = calloc((size_t)r->nslots, r->cfg.batch_bytes);
    TB_CHECK(r->batches, TB_ERR_NOMEM, "%s: out of memory", r->cfg.name);
    for (int i = 0; i < r->nslots; i++)
        TB_TRY(r->cfg.batch_alloc(r->cfg.user, tb_batch_ring_batch(r, i)));
    return TB_OK;
}

int tb_batch_ring_create(tb_batch_ring **out, const tb_batch_ring_config *cfg)
{
    *out = NULL;
    TB_TRY(check_config(cfg));
    tb_batch_ring *r = calloc(1, sizeof *r);
    TB_CHECK(r, TB_ERR_NOMEM, "%s: out of memory", cfg->name);
    r->cfg = *cfg;
    r->nworkers = cfg->workers > 0 ? cfg->workers : auto_workers();
    r->nslots = cfg->prefetch > 0 ? cfg->prefetch : RING_DEFAULT_SLOTS;
    r->steps = cfg->drop_last ? cfg->count / cfg->batch : (cfg->count + cfg->batch - 1) / cfg->batch;
    r->total = cfg->drop_last ? r->steps * cfg->batch : cfg->count;
    /* about two chunks per worker and batch keep every worker busy to the batch's end */
    int chunk = cfg->batch / (2 * r->nworkers);
    r->chunk = chunk < 1 ? 1 : chunk > cfg->max_chunk ? cfg->max_chunk : chunk;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->work_cv, NULL);
    pthread_cond_init(&r->ready_cv, NULL);
    int rc = alloc_ring(r);
    if (rc == TB_OK)
        rc = alloc_batches(r);
    if (rc != TB_OK) {
        tb_batch_ring_destroy(r);
        return rc;
    }
    *out = r;
    return TB_OK;
}

void tb_batch_ring_destroy(tb_batch_ring *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_broadcast(&r->work_cv);
    pthread_mutex_unlock(&r->mu);
    for (int i = 0; r->workers && i < r->nworkers; i++) {
        worker *w = &r->workers[i];
        if (w->started)
            pthread_join(w->thread, NULL);
        if (w->scratch && r->cfg.scratch_free)
            r->cfg.scratch_free(w->scratch);
        free(w->scratch);
    }
    for (int i = 0; r->batches && i < r->nslots; i++) /* no worker runs now */
        r->cfg.batch_free(r->cfg.user, tb_batch_ring_batch(r, i));
    free(r->batches);
    pthread_cond_destroy(&r->work_cv);
    pthread_cond_destroy(&r->ready_cv);
    pthread_mutex_destroy(&r->mu);
    free(r->slots);
    free(r->workers);
    free(r->order);
    free(r);
}

static int ring_error(const tb_batch_ring *r) { return tb_fail(r->err, "%s", r->err_msg); }

/* Under mu, no worker inside a fill: the order of `epoch`, every slot free. */
static void reset_epoch(tb_batch_ring *r, int epoch)
{
    for (int i = 0; i < r->nslots; i++) {
        r->slots[i].state = SLOT_FREE;
        r->slots[i].k = -1;
        r->slots[i].done = 0;
    }
    for (int64_t i = 0; i < r->cfg.count; i++)
        r->order[i] = (int32_t)i;
    if (r->cfg.shuffle) {
        tb_rng rng;
        tb_rng_seed(&rng, r->cfg.order_seed, (uint64_t)epoch);
        tb_rng_shuffle_i32(&rng, r->order, r->cfg.count);
    }
    r->epoch = epoch;
    r->next_claim = 0;
    r->next_consume = 0;
}

int tb_batch_ring_start(tb_batch_ring *r, int epoch)
{
    if (!r->launched) { /* the consumer's field: workers never read it */
        r->launched = true;
        int rc = start_workers(r);
        if (rc != TB_OK) {
            pthread_mutex_lock(&r->mu);
            keep_error(r, rc, tb_errmsg());
            pthread_mutex_unlock(&r->mu);
            return rc;
        }
    }
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->nslots; i++)
        if (r->slots[i].state == SLOT_HANDED) {
            pthread_mutex_unlock(&r->mu);
            return tb_fail(TB_ERR_INVALID, "%s: start_epoch(%d) while batch %lld of epoch %d is still held; "
                           "release it first", r->cfg.name, epoch, (long long)r->slots[i].k, r->epoch);
        }
    if (r->err) {
        int rc = ring_error(r);
        pthread_mutex_unlock(&r->mu);
        return rc;
    }
    r->active = false;
    r->generation++;
    while (r->busy > 0)
        pthread_cond_wait(&r->ready_cv, &r->mu);
    reset_epoch(r, epoch);
    r->started = true;
    r->active = true;
    pthread_cond_broadcast(&r->work_cv);
    pthread_mutex_unlock(&r->mu);
    return TB_OK;
}

/* Under mu: waits for batch k of the epoch and hands its slot out. */
static int take_batch(tb_batch_ring *r, int *slot_out)
{
    int64_t k = r->next_consume;
    slot *s = &r->slots[k % r->nslots];
    if (s->state == SLOT_HANDED)
        return tb_fail(TB_ERR_INVALID, "%s: all %d ring batches are held; release one before asking for the next",
                       r->cfg.name, r->nslots);
    while (!r->err && !(s->k == k && s->state == SLOT_READY))
        pthread_cond_wait(&r->ready_cv, &r->mu);
    if (r->err)
        return ring_error(r);
    s->state = SLOT_HANDED;
    r->next_consume++;
    *slot_out = (int)(s - r->slots);
    return TB_OK;
}

int tb_batch_ring_next(tb_batch_ring *r, int *slot_out)
{
    *slot_out = -1;
    pthread_mutex_lock(&r->mu);
    int rc = TB_OK;
    if (!r->started)
        rc = tb_fail(TB_ERR_INVALID, "%s: call %s_start_epoch before %s_next", r->cfg.name, r->cfg.api, r->cfg.api);
    else if (r->err)
        rc = ring_error(r);
    else if (r->next_consume < r->steps)
        rc = take_batch(r, slot_out);
    pthread_mutex_unlock(&r->mu);
    return rc;
}

void tb_batch_ring_release(tb_batch_ring *r, int slot_index)
{
    pthread_mutex_lock(&r->mu);
    if (slot_index >= 0 && slot_index < r->nslots && r->slots[slot_index].state == SLOT_HANDED) {
        slot *s = &r->slots[slot_index];
        s->state = SLOT_FREE;
        s->k = -1;
        s->done = 0;
        pthread_cond_broadcast(&r->work_cv);
    }
    pthread_mutex_unlock(&r->mu);
}

int tb_batch_ring_slots(const tb_batch_ring *r) { return r->nslots; }

int tb_batch_ring_workers(const tb_batch_ring *r) { return r->nworkers; }

int64_t tb_batch_ring_steps(const tb_batch_ring *r) { return r->steps; }

void *tb_batch_ring_batch(const tb_batch_ring *r, int slot) { return r->batches + (size_t)slot * r->cfg.batch_bytes; }

int tb_batch_ring_next_batch(tb_batch_ring *r, void **batch)
{
    int slot;
    int rc = tb_batch_ring_next(r, &slot);
    *batch = slot >= 0 ? tb_batch_ring_batch(r, slot) : NULL;
    return rc;
}

void tb_batch_ring_release_batch(tb_batch_ring *r, const void *batch)
{
    /* compared as addresses: a pointer from elsewhere is not in the array */
    uintptr_t p = (uintptr_t)batch, first = (uintptr_t)r->batches;
    size_t size = r->cfg.batch_bytes;
    if (batch && size && p >= first && p < first + (size_t)r->nslots * size && (p - first) % size == 0)
        tb_batch_ring_release(r, (int)((p - first) / size));
}

uint64_t tb_batch_ring_epoch_seed(uint64_t seed, int epoch, uint64_t tag)
{
    return tb_splitmix64(seed ^ tb_splitmix64((uint64_t)epoch + tag));
}

int tb_batch_rows_alloc(const char *name, int n, int64_t **indices, uint8_t **flipped)
{
    *indices = malloc((size_t)n * sizeof **indices);
    *flipped = malloc((size_t)n);
    TB_CHECK(*indices && *flipped, TB_ERR_NOMEM, "%s: out of memory", name);
    return TB_OK;
}

void tb_batch_rows_finish(int64_t *indices, uint8_t *flipped, int *valid, int64_t *step, int64_t k, int rows, int n)
{
    for (int r = rows; r < n; r++) {
        indices[r] = -1;
        flipped[r] = 0;
    }
    *valid = rows;
    *step = k;
}

int tb_batch_mem_alloc(const tb_batch_mem *m, void **p, size_t bytes, const char *fmt, ...)
{
    int rc;
    if (m->alloc) {
        rc = m->alloc(m->user, p, bytes);
    } else {
        *p = malloc(bytes);
        rc = *p ? TB_OK : tb_fail(TB_ERR_NOMEM, "%s: cannot allocate %zu bytes", m->name, bytes);
    }
    if (rc != TB_OK) {
        char what[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        tb_err_context(rc, "%s: batch %s", m->name, what);
    }
    return rc;
}

void tb_batch_mem_free(const tb_batch_mem *m, void *p)
{
    if (!p)
        return;
    if (m->free)
        m->free(m->user, p);
    else
        free(p);
}
