/* The batch ring under the loaders, with a fake loader whose batches are
 * arrays of sample numbers tagged with the epoch: order and padding, the
 * same batches for any worker count, the first worker error kept, restart
 * mid-epoch with work in flight, release in any order, misuse, per-worker
 * scratch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "harness/data/batch_ring.h"
#include "kernels/error.h"

#define MAX_SLOTS 8
#define MAX_BATCH 16
#define EPOCH_TAG 1000000 /* a row holds epoch * EPOCH_TAG + sample, -1 for padding */

typedef struct fake {
    int batch;
    int64_t rows[MAX_SLOTS][MAX_BATCH];
    int64_t step[MAX_SLOTS];
    int valid[MAX_SLOTS];
    int fail_from;          /* samples >= fail_from fail; -1 = none */
    long fail_ns[2];        /* failing takes this long: [0] for sample fail_from, [1] for later ones */
    atomic_long delay_ns;   /* per row, to keep work in flight */
    atomic_int shared_scratch; /* a scratch area seen by two fills at once */
} fake;

typedef struct scratch {
    atomic_int in_use;
    int64_t rows_done;
} scratch;

static int fake_fill(void *user, void *scr, int slot, int64_t k, int row0, int rows, const int32_t *samples,
                     int epoch)
{
    (void)k;
    fake *f = user;
    scratch *s = scr;
    if (atomic_exchange(&s->in_use, 1) != 0)
        atomic_fetch_add(&f->shared_scratch, 1);
    for (int j = 0; j < rows; j++) {
        if (f->fail_from >= 0 && samples[j] >= f->fail_from) {
            long ns = f->fail_ns[samples[j] > f->fail_from];
            if (ns > 0)
                nanosleep(&(struct timespec){ns / 1000000000, ns % 1000000000}, NULL);
            atomic_store(&s->in_use, 0);
            return tb_fail(TB_ERR_DATA, "fake: sample %d is broken", samples[j]);
        }
        long delay = atomic_load(&f->delay_ns);
        if (delay > 0)
            nanosleep(&(struct timespec){0, delay}, NULL);
        f->rows[slot][row0 + j] = (int64_t)epoch * EPOCH_TAG + samples[j];
        s->rows_done++;
    }
    atomic_store(&s->in_use, 0);
    return TB_OK;
}

static void fake_finish(void *user, int slot, int64_t k, int rows)
{
    fake *f = user;
    for (int r = rows; r < f->batch; r++)
        f->rows[slot][r] = -1;
    f->step[slot] = k;
    f->valid[slot] = rows;
}

static fake *fake_new(int batch)
{
    fake *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->batch = batch;
    f->fail_from = -1;
    return f;
}

static tb_batch_ring_config config(fake *f, int64_t count, bool shuffle, bool drop_last, int workers, int prefetch,
                                   int max_chunk)
{
    return (tb_batch_ring_config){.name = "fake loader", .api = "tb_fake", .count = count, .batch = f->batch,
                                  .drop_last = drop_last, .shuffle = shuffle, .order_seed = 42, .workers = workers,
                                  .prefetch = prefetch, .max_chunk = max_chunk, .scratch_bytes = sizeof(scratch),
                                  .fill = fake_fill, .finish = fake_finish, .user = f};
}

static tb_batch_ring *ring_new(const tb_batch_ring_config *cfg)
{
    tb_batch_ring *r;
    if (tb_batch_ring_create(&r, cfg) != TB_OK)
        fail_msg("%s", tb_errmsg());
    return r;
}

/* Takes batch `step` of the epoch, checks its stamp and copies its rows. */
static void take(tb_batch_ring *r, fake *f, int64_t step, int64_t *out, int *valid)
{
    int slot;
    if (tb_batch_ring_next(r, &slot) != TB_OK)
        fail_msg("%s", tb_errmsg());
    assert_in_range(slot, 0, tb_batch_ring_slots(r) - 1);
    assert_int_equal(f->step[slot], step);
    memcpy(out, f->rows[slot], (size_t)f->batch * sizeof *out);
    *valid = f->valid[slot];
    tb_batch_ring_release(r, slot);
}

static void assert_epoch_end(tb_batch_ring *r)
{
    for (int i = 0; i < 2; i++) { /* and it stays at the end */
        int slot = 7;
        assert_int_equal(tb_batch_ring_next(r, &slot), TB_OK);
        assert_int_equal(slot, -1);
    }
}

/* Takes batches from..end of an epoch 0 in dataset order with drop_last. */
static void take_rest_in_order(tb_batch_ring *r, fake *f, int64_t from)
{
    for (int64_t k = from; k < tb_batch_ring_steps(r); k++) {
        int64_t rows[MAX_BATCH];
        int valid;
        take(r, f, k, rows, &valid);
        assert_int_equal(valid, f->batch);
        for (int i = 0; i < f->batch; i++)
            assert_int_equal(rows[i], k * f->batch + i);
    }
    assert_epoch_end(r);
}

/* Runs one epoch; rows[step * batch + r]. */
static int64_t *run_epoch(tb_batch_ring *r, fake *f, int epoch)
{
    int64_t steps = tb_batch_ring_steps(r);
    int64_t *rows = malloc((size_t)(steps > 0 ? steps : 1) * f->batch * sizeof *rows);
    assert_non_null(rows);
    if (tb_batch_ring_start(r, epoch) != TB_OK)
        fail_msg("%s", tb_errmsg());
    for (int64_t k = 0; k < steps; k++) {
        int valid;
        take(r, f, k, rows + k * f->batch, &valid);
        assert_int_equal(valid, f->batch);
    }
    assert_epoch_end(r);
    return rows;
}

static void test_order_and_padding(void **state)
{
    (void)state;
    fake *f = fake_new(8);
    tb_batch_ring_config cfg = config(f, 50, false, false, 3, 2, 3);
    tb_batch_ring *r = ring_new(&cfg);
    assert_int_equal(tb_batch_ring_steps(r), 7); /* ceil(50 / 8) */
    assert_int_equal(tb_batch_ring_slots(r), 2);
    assert_int_equal(tb_batch_ring_workers(r), 3);
    for (int epoch = 0; epoch < 2; epoch++) {
        assert_int_equal(tb_batch_ring_start(r, epoch), TB_OK);
        for (int64_t k = 0; k < 7; k++) {
            int64_t rows[MAX_BATCH];
            int valid;
            take(r, f, k, rows, &valid);
            assert_int_equal(valid, k < 6 ? 8 : 2);
            for (int i = 0; i < 8; i++)
                assert_int_equal(rows[i], i < valid ? epoch * EPOCH_TAG + k * 8 + i : -1);
        }
        assert_epoch_end(r);
    }
    tb_batch_ring_destroy(r);
    assert_int_equal(atomic_load(&f->shared_scratch), 0);
    free(f);
}

static void test_same_batches_any_workers(void **state)
{
    (void)state;
    /* 95 samples, batch 10, drop_last: 9 batches; the ring shapes differ in every way */
    int shapes[][3] = {{1, 1, 1}, {4, 5, 4}, {2, 3, 2}, {7, 2, 1}}; /* workers, prefetch, chunk */
    int64_t *ref[3] = {NULL, NULL, NULL};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        fake *f = fake_new(10);
        tb_batch_ring_config cfg = config(f, 95, true, true, shapes[s][0], shapes[s][1], shapes[s][2]);
        tb_batch_ring *r = ring_new(&cfg);
        assert_int_equal(tb_batch_ring_steps(r), 9);
        int epochs[3] = {0, 1, 0};
        for (int e = 0; e < 3; e++) {
            int64_t *rows = run_epoch(r, f, epochs[e]);
            if (!ref[e])
                ref[e] = rows;
            else {
                assert_memory_equal(rows, ref[e], 90 * sizeof *rows);
                free(rows);
            }
        }
        tb_batch_ring_destroy(r);
        free(f);
    }
    /* a permutation of distinct samples, not in order; a pure function of (seed, epoch) */
    int seen[95] = {0};
    bool in_order = true;
    for (int i = 0; i < 90; i++) {
        int64_t sample = ref[0][i] % EPOCH_TAG;
        assert_in_range(sample, 0, 94);
        assert_int_equal(seen[sample]++, 0);
        in_order = in_order && sample == i;
    }
    assert_false(in_order);
    for (int i = 0; i < 90; i++)
        assert_int_equal(ref[2][i], ref[0][i]);
    int moved = 0; /* epoch 1 is another permutation */
    for (int i = 0; i < 90; i++)
        moved += ref[1][i] % EPOCH_TAG != ref[0][i] % EPOCH_TAG;
    assert_true(moved > 0);
    for (int e = 0; e < 3; e++)
        free(ref[e]);
}

static void test_first_error_kept(void **state)
{
    (void)state;
    for (int workers = 1; workers <= 3; workers += 2) {
        fake *f = fake_new(8);
        f->fail_from = 37; /* batch 4 and every later one */
        tb_batch_ring_config cfg = config(f, 64, false, true, workers, 3, 2);
        tb_batch_ring *r = ring_new(&cfg);
        assert_int_equal(tb_batch_ring_start(r, 0), TB_OK);
        int good = 0, rc, slot;
        while ((rc = tb_batch_ring_next(r, &slot)) == TB_OK) {
            assert_int_equal(f->step[slot], good);
            assert_int_equal(f->rows[slot][7], good * 8 + 7);
            tb_batch_ring_release(r, slot);
            good++;
        }
        assert_int_equal(rc, TB_ERR_DATA);
        assert_int_equal(slot, -1);
        assert_true(good <= 4); /* batches 0..3 may come out before the failure is seen */
        if (workers == 1) /* one worker fills in order: 37 fails first, and nothing after it is tried */
            assert_non_null(strstr(tb_errmsg(), "sample 37 is broken"));
        else
            assert_non_null(strstr(tb_errmsg(), "fake: sample"));
        char first[256];
        snprintf(first, sizeof first, "%s", tb_errmsg());
        /* failed for good: next and start give the same error */
        tb_err_clear();
        assert_int_equal(tb_batch_ring_next(r, &slot), TB_ERR_DATA);
        assert_string_equal(tb_errmsg(), first);
        tb_err_clear();
        assert_int_equal(tb_batch_ring_start(r, 1), TB_ERR_DATA);
        assert_string_equal(tb_errmsg(), first);
        tb_batch_ring_destroy(r);
        free(f);
    }
}

/* Several workers fail; the first failure is the one kept, whatever
 * comes after it. */
static void test_later_errors_dropped(void **state)
{
    (void)state;
    fake *f = fake_new(8);
    /* sample 0 fails after 0.05 s, when every worker is inside a fill; the
       samples of the other workers fail 0.25 s later */
    f->fail_from = 0;
    f->fail_ns[0] = 50000000;
    f->fail_ns[1] = 300000000;
    tb_batch_ring_config cfg = config(f, 64, false, true, 3, 2, 2);
    tb_batch_ring *r = ring_new(&cfg);
    assert_int_equal(tb_batch_ring_start(r, 0), TB_OK);
    int slot;
    assert_int_equal(tb_batch_ring_next(r, &slot), TB_ERR_DATA);
    assert_non_null(strstr(tb_errmsg(), "fake: sample 0 is broken"));
    nanosleep(&(struct timespec){0, 500000000}, NULL); /* the later failures are in by now */
    assert_int_equal(tb_batch_ring_next(r, &slot), TB_ERR_DATA);
    assert_non_null(strstr(tb_errmsg(), "fake: sample 0 is broken"));
    tb_batch_ring_destroy(r);
    free(f);
}

static void test_restart_mid_epoch(void **state)
{
    (void)state;
    fake *f = fake_new(8);
    atomic_store(&f->delay_ns, 200000); /* 0.2 ms a row: workers are inside fills when the epoch restarts */
    tb_batch_ring_config cfg = config(f, 80, true, true, 3, 3, 2);
    tb_batch_ring *r = ring_new(&cfg);
    assert_int_equal(tb_batch_ring_start(r, 0), TB_OK);
    int64_t rows[MAX_BATCH];
    int valid;
    take(r, f, 0, rows, &valid);
    take(r, f, 1, rows, &valid);
    /* restart after two batches, and again at once */
    assert_int_equal(tb_batch_ring_start(r, 5), TB_OK);
    assert_int_equal(tb_batch_ring_start(r, 1), TB_OK);
    atomic_store(&f->delay_ns, 0);
    int64_t *restarted = malloc(80 * sizeof *restarted);
    assert_non_null(restarted);
    for (int64_t k = 0; k < 10; k++)
        take(r, f, k, restarted + k * 8, &valid);
    assert_epoch_end(r);
    int64_t *fresh = run_epoch(r, f, 1);
    for (int i = 0; i < 80; i++) {
        assert_int_equal(restarted[i] / EPOCH_TAG, 1); /* nothing left over from epochs 0 and 5 */
        assert_int_equal(restarted[i], fresh[i]);
    }
    free(restarted);
    free(fresh);
    tb_batch_ring_destroy(r);
    assert_int_equal(atomic_load(&f->shared_scratch), 0);
    free(f);
}

static void test_release_any_order(void **state)
{
    (void)state;
    fake *f = fake_new(4);
    tb_batch_ring_config cfg = config(f, 40, false, true, 2, 3, 4);
    tb_batch_ring *r = ring_new(&cfg);
    assert_int_equal(tb_batch_ring_start(r, 0), TB_OK);
    int held[3];
    for (int k = 0; k < 3; k++) {
        assert_int_equal(tb_batch_ring_next(r, &held[k]), TB_OK);
        assert_int_equal(f->step[held[k]], k);
    }
    /* every slot held: asking for more is an error, not a deadlock */
    int slot;
    assert_int_equal(tb_batch_ring_next(r, &slot), TB_ERR_INVALID);
    assert_int_equal(slot, -1);
    assert_non_null(strstr(tb_errmsg(), "fake loader: all 3 ring batches are held; release one"));
    /* restarting while holding is an error too */
    assert_int_equal(tb_batch_ring_start(r, 1), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "start_epoch(1) while batch"));
    /* releases out of order, twice, or of no slot are fine */
    tb_batch_ring_release(r, held[1]);
    tb_batch_ring_release(r, held[1]);
    tb_batch_ring_release(r, -1);
    tb_batch_ring_release(r, 99);
    tb_batch_ring_release(r, held[2]);
    /* batch 3 goes to the slot of batch 0, still held: it comes after that release */
    tb_batch_ring_release(r, held[0]);
    take_rest_in_order(r, f, 3);
    tb_batch_ring_destroy(r);
    free(f);
}

/* Releasing a slot that is not held (filling or ready) must not free it. */
static void test_release_of_unheld_ignored(void **state)
{
    (void)state;
    fake *f = fake_new(4);
    tb_batch_ring_config cfg = config(f, 40, false, true, 2, 2, 4);
    tb_batch_ring *r = ring_new(&cfg);
    assert_int_equal(tb_batch_ring_start(r, 0), TB_OK);
    int64_t rows[MAX_BATCH];
    int valid;
    take(r, f, 0, rows, &valid);
    nanosleep(&(struct timespec){0, 50000000}, NULL); /* batches 1 and 2 fill both slots */
    tb_batch_ring_release(r, 0);
    tb_batch_ring_release(r, 1);
    take_rest_in_order(r, f, 1);
    tb_batch_ring_destroy(r);
    free(f);
}

static void test_misuse_and_config(void **state)
{
    (void)state;
    fake *f = fake_new(8);
    tb_batch_ring_config cfg = config(f, 20, false, false, 0, 0, 4);
    tb_batch_ring *r = ring_new(&cfg);
    assert_in_range(tb_batch_ring_workers(r), 1, 8); /* automatic */
    assert_int_equal(tb_batch_ring_slots(r), 3);      /* default prefetch */
    int slot;
    assert_int_equal(tb_batch_ring_next(r, &slot), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "fake loader: call tb_fake_start_epoch before tb_fake_next"));
    tb_batch_ring_destroy(r); /* never started: no workers to join */
    tb_batch_ring_destroy(NULL);

    cfg = config(f, 0, false, false, 1, 1, 1); /* an empty dataset: an empty epoch */
    r = ring_new(&cfg);
    assert_int_equal(tb_batch_ring_steps(r), 0);
    assert_int_equal(tb_batch_ring_start(r, 0), TB_OK);
    assert_epoch_end(r);
    tb_batch_ring_destroy(r);

    struct {
        tb_batch_ring_config cfg;
        const char *msg;
    } bad[] = {
        {config(f, 20, false, false, 65, 0, 4), "fake loader: workers must be in 0..64, got 65"},
        {config(f, 20, false, false, -1, 0, 4), "workers must be in 0..64, got -1"},
        {config(f, 20, false, false, 1, 65, 4), "fake loader: prefetch must be in 0..64, got 65"},
        {config(f, 20, false, false, 1, 1, 0), "batch and chunk must be > 0"},
        {config(f, 7, false, true, 1, 1, 4), "7 samples, fewer than one batch of 8 (drop_last)"},
        {config(f, -1, false, false, 1, 1, 4), "-1 samples is outside"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = (tb_batch_ring *)1;
        assert_int_equal(tb_batch_ring_create(&r, &bad[i].cfg), TB_ERR_INVALID);
        assert_null(r);
        if (!strstr(tb_errmsg(), bad[i].msg))
            fail_msg("case %zu: '%s' does not say '%s'", i, tb_errmsg(), bad[i].msg);
    }
    cfg = config(f, 20, false, false, 1, 1, 4);
    cfg.fill = NULL;
    assert_int_equal(tb_batch_ring_create(&r, &cfg), TB_ERR_INVALID);
    assert_int_equal(tb_batch_ring_check("x loader", 64, 64), TB_OK);
    assert_int_equal(tb_batch_ring_check("x loader", 2, -1), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "x loader: prefetch must be in 0..64, got -1"));
    free(f);
}

static atomic_int scratch_freed;

static void count_scratch_free(void *scr)
{
    scratch *s = scr;
    assert_int_equal(atomic_load(&s->in_use), 0);
    atomic_fetch_add(&scratch_freed, 1);
}

static void test_scratch_per_worker(void **state)
{
    (void)state;
    fake *f = fake_new(16);
    atomic_store(&f->delay_ns, 20000);
    tb_batch_ring_config cfg = config(f, 160, true, true, 4, 4, 1);
    cfg.scratch_free = count_scratch_free;
    tb_batch_ring *r = ring_new(&cfg);
    free(run_epoch(r, f, 3));
    tb_batch_ring_destroy(r);
    assert_int_equal(atomic_load(&f->shared_scratch), 0); /* never two fills on one scratch area */
    assert_int_equal(atomic_load(&scratch_freed), 4);     /* one free per worker */
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_padding),   cmocka_unit_test(test_same_batches_any_workers),
        cmocka_unit_test(test_first_error_kept),    cmocka_unit_test(test_later_errors_dropped),
        cmocka_unit_test(test_restart_mid_epoch),   cmocka_unit_test(test_release_any_order),
        cmocka_unit_test(test_release_of_unheld_ignored), cmocka_unit_test(test_misuse_and_config),
        cmocka_unit_test(test_scratch_per_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
