/* The threaded loader: determinism across worker counts, epochs, eval
 * padding, ring use, allocation hooks and misuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "data_test_util.h"
#include "harness/data/dataset.h"
#include "harness/data/loader.h"
#include "kernels/error.h"

typedef struct epoch_dump {
    int steps;
    size_t image_floats; /* per batch */
    float *images;
    int32_t *labels;
    int64_t *indices;
    int *counts;
} epoch_dump;

static void dump_free(epoch_dump *d)
{
    free(d->images);
    free(d->labels);
    free(d->indices);
    free(d->counts);
}

static tb_dataset *synthetic(int n, int size, int channels)
{
    tb_data_config cfg = tdu_config("synthetic", NULL);
    cfg.synthetic_train = n;
    cfg.synthetic_val = n;
    cfg.synthetic_size = size;
    cfg.synthetic_channels = channels;
    tb_dataset *ds;
    if (tb_dataset_open(&ds, &cfg, true) != TB_OK)
        fail_msg("%s", tb_errmsg());
    return ds;
}

/* Runs one epoch and copies every batch out. */
static void run_epoch(tb_loader *ld, int epoch, epoch_dump *d)
{
    int B, h, w, c;
    tb_loader_shape(ld, &B, &h, &w, &c);
    d->steps = (int)tb_loader_steps_per_epoch(ld);
    d->image_floats = (size_t)B * h * w * c;
    d->images = malloc(d->image_floats * d->steps * sizeof(float));
    d->labels = malloc((size_t)B * d->steps * sizeof(int32_t));
    d->indices = malloc((size_t)B * d->steps * sizeof(int64_t));
    d->counts = malloc((size_t)d->steps * sizeof(int));
    if (tb_loader_start_epoch(ld, epoch) != TB_OK)
        fail_msg("%s", tb_errmsg());
    for (int s = 0; s < d->steps; s++) {
        tb_batch *b;
        if (tb_loader_next(ld, &b) != TB_OK)
            fail_msg("%s", tb_errmsg());
        assert_non_null(b);
        assert_int_equal(b->step, s);
        assert_int_equal(b->batch, B);
        memcpy(d->images + d->image_floats * s, b->images, d->image_floats * sizeof(float));
        memcpy(d->labels + (size_t)B * s, b->labels, (size_t)B * sizeof(int32_t));
        memcpy(d->indices + (size_t)B * s, b->indices, (size_t)B * sizeof(int64_t));
        d->counts[s] = b->count;
        tb_loader_release(ld, b);
    }
    tb_batch *end = (tb_batch *)1;
    assert_int_equal(tb_loader_next(ld, &end), TB_OK);
    assert_null(end);
    assert_int_equal(tb_loader_next(ld, &end), TB_OK); /* and stays at the end */
    assert_null(end);
}

static tb_loader *make_loader(tb_dataset *ds, int batch, bool train, uint64_t seed, int workers, const char *augment,
                              int image_size, float erasing)
{
    tb_loader_options opt = {.batch = batch, .train = train, .seed = seed, .workers = workers, .augment = augment,
                             .image_size = image_size, .random_erasing = erasing};
    tb_loader *ld;
    if (tb_loader_create(&ld, ds, &opt) != TB_OK)
        fail_msg("%s", tb_errmsg());
    return ld;
}

static void assert_same_epoch(const epoch_dump *a, const epoch_dump *b, int batch)
{
    assert_int_equal(a->steps, b->steps);
    assert_memory_equal(a->images, b->images, a->image_floats * a->steps * sizeof(float));
    assert_memory_equal(a->labels, b->labels, (size_t)batch * a->steps * sizeof(int32_t));
    assert_memory_equal(a->indices, b->indices, (size_t)batch * a->steps * sizeof(int64_t));
}

static void workers_independent(int channels, const char *augment, int image_size, int workers_b)
{
    tb_dataset *ds = synthetic(200, 28, channels);
    for (int epoch = 0; epoch < 2; epoch++) {
        tb_loader *a = make_loader(ds, 16, true, 7, 1, augment, image_size, 0.5f);
        tb_loader *b = make_loader(ds, 16, true, 7, workers_b, augment, image_size, 0.5f);
        epoch_dump da, db;
        run_epoch(a, epoch, &da);
        run_epoch(b, epoch, &db);
        assert_int_equal(da.steps, 12); /* drop_last: 200 / 16 */
        assert_same_epoch(&da, &db, 16);
        dump_free(&da);
        dump_free(&db);
        tb_loader_destroy(a);
        tb_loader_destroy(b);
    }
    tb_dataset_close(ds);
}

static void test_same_seed_any_workers_small(void **state)
{
    (void)state;
    workers_independent(1, "small", 0, 4);
}

static void test_same_seed_any_workers_imagenet(void **state)
{
    (void)state;
    workers_independent(3, "imagenet", 24, 3);
}

static void test_epochs_and_seeds(void **state)
{
    (void)state;
    tb_dataset *ds = synthetic(100, 12, 1);
    tb_loader *ld = make_loader(ds, 10, true, 3, 2, "small", 0, 0);
    epoch_dump e0, e1, e0b;
    run_epoch(ld, 0, &e0);
    run_epoch(ld, 1, &e1);
    run_epoch(ld, 0, &e0b);
    assert_same_epoch(&e0, &e0b, 10); /* a pure function of (seed, epoch) */
    assert_memory_not_equal(e0.indices, e1.indices, 100 * sizeof(int64_t));
    /* every sample once per epoch, labels match the dataset */
    int seen[100] = {0};
    for (int i = 0; i < 100; i++) {
        seen[e1.indices[i]]++;
        assert_int_equal(e1.labels[i], tb_dataset_label(ds, e1.indices[i]));
        assert_int_equal(e1.counts[i / 10], 10);
    }
    for (int i = 0; i < 100; i++)
        assert_int_equal(seen[i], 1);
    /* shuffled, not in order */
    int in_order = 0;
    for (int i = 0; i < 100; i++)
        in_order += e0.indices[i] == i;
    assert_true(in_order < 20);
    /* another seed, another order */
    tb_loader *other = make_loader(ds, 10, true, 4, 2, "small", 0, 0);
    epoch_dump o0;
    run_epoch(other, 0, &o0);
    assert_memory_not_equal(e0.indices, o0.indices, 100 * sizeof(int64_t));
    dump_free(&e0);
    dump_free(&e1);
    dump_free(&e0b);
    dump_free(&o0);
    tb_loader_destroy(ld);
    tb_loader_destroy(other);
    tb_dataset_close(ds);
}

static void test_eval_padding(void **state)
{
    (void)state;
    tb_dataset *ds = synthetic(37, 8, 1);
    tb_loader *ld = make_loader(ds, 8, false, 1, 3, "auto", 0, 0.9f);
    assert_int_equal(tb_loader_steps_per_epoch(ld), 5);
    epoch_dump d, d2;
    run_epoch(ld, 0, &d);
    for (int s = 0; s < 4; s++)
        assert_int_equal(d.counts[s], 8);
    assert_int_equal(d.counts[4], 5);
    for (int i = 0; i < 40; i++) {
        if (i < 37) {
            assert_int_equal(d.indices[i], i); /* in order */
            assert_int_equal(d.labels[i], tb_dataset_label(ds, i));
        } else {
            assert_int_equal(d.indices[i], -1);
            assert_int_equal(d.labels[i], 0);
            for (size_t k = 0; k < 64; k++)
                assert_true(d.images[(size_t)i * 64 + k] == 0.0f);
        }
    }
    /* eval has no randomness (not even random erasing): another seed and epoch give the same batches */
    tb_loader *ld2 = make_loader(ds, 8, false, 99, 1, "auto", 0, 0.9f);
    run_epoch(ld2, 5, &d2);
    assert_same_epoch(&d, &d2, 8);
    dump_free(&d);
    dump_free(&d2);
    tb_loader_destroy(ld);
    tb_loader_destroy(ld2);
    /* a batch larger than the split: one padded batch */
    ld = make_loader(ds, 64, false, 1, 2, "none", 0, 0);
    run_epoch(ld, 0, &d);
    assert_int_equal(d.steps, 1);
    assert_int_equal(d.counts[0], 37);
    dump_free(&d);
    tb_loader_destroy(ld);
    tb_dataset_close(ds);
}

static void test_restart_and_ring(void **state)
{
    (void)state;
    tb_dataset *ds = synthetic(96, 10, 1);
    tb_loader_options opt = {.batch = 8, .train = true, .seed = 5, .workers = 2, .prefetch = 2};
    tb_loader *ld;
    assert_int_equal(tb_loader_create(&ld, ds, &opt), TB_OK);
    tb_batch *b = NULL, *c = NULL, *x = NULL;
    assert_int_equal(tb_loader_next(ld, &b), TB_ERR_INVALID); /* no epoch started */
    assert_non_null(strstr(tb_errmsg(), "start_epoch"));
    assert_int_equal(tb_loader_start_epoch(ld, 0), TB_OK);
    assert_int_equal(tb_loader_next(ld, &b), TB_OK);
    int64_t first[8];
    memcpy(first, b->indices, sizeof first);
    assert_int_equal(tb_loader_next(ld, &c), TB_OK);
    /* both ring batches held: asking for a third is an error, not a deadlock */
    assert_int_equal(tb_loader_next(ld, &x), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "release one"));
    assert_int_equal(tb_loader_start_epoch(ld, 0), TB_ERR_INVALID); /* still held */
    tb_loader_release(ld, b);
    assert_int_equal(tb_loader_next(ld, &x), TB_OK);
    assert_int_equal(x->step, 2);
    tb_loader_release(ld, c);
    tb_loader_release(ld, x);
    /* restarting mid-epoch drops the work in flight and starts over */
    assert_int_equal(tb_loader_start_epoch(ld, 0), TB_OK);
    assert_int_equal(tb_loader_next(ld, &b), TB_OK);
    assert_int_equal(b->step, 0);
    assert_memory_equal(b->indices, first, sizeof first);
    tb_loader_release(ld, b);
    tb_loader_destroy(ld); /* with work in flight */
    tb_dataset_close(ds);
}

typedef struct counting_alloc {
    int allocs, frees;
    void *blocks[64];
} counting_alloc;

static int count_alloc(void *user, void **p, size_t bytes)
{
    counting_alloc *a = user;
    *p = malloc(bytes);
    a->blocks[a->allocs++] = *p;
    return TB_OK;
}

static void count_free(void *user, void *p)
{
    counting_alloc *a = user;
    a->frees++;
    free(p);
}

static int failing_alloc(void *user, void **p, size_t bytes)
{
    (void)user;
    *p = NULL;
    return tb_fail(TB_ERR_NOMEM, "pinned allocation of %zu bytes failed", bytes);
}

static void test_alloc_hooks(void **state)
{
    (void)state;
    tb_dataset *ds = synthetic(64, 8, 1);
    counting_alloc ca = {0};
    tb_loader_options opt = {.batch = 16, .train = true, .seed = 1, .workers = 2, .prefetch = 4,
                             .alloc = count_alloc, .free = count_free, .alloc_user = &ca};
    tb_loader *ld;
    assert_int_equal(tb_loader_create(&ld, ds, &opt), TB_OK);
    assert_int_equal(ca.allocs, 8); /* images + labels per ring batch */
    assert_int_equal(tb_loader_start_epoch(ld, 0), TB_OK);
    tb_batch *b;
    while (tb_loader_next(ld, &b) == TB_OK && b) {
        bool images_ours = false, labels_ours = false;
        for (int i = 0; i < ca.allocs; i++) {
            images_ours |= ca.blocks[i] == (void *)b->images;
            labels_ours |= ca.blocks[i] == (void *)b->labels;
        }
        assert_true(images_ours && labels_ours);
        tb_loader_release(ld, b);
    }
    tb_loader_destroy(ld);
    assert_int_equal(ca.frees, 8);
    /* a failing allocator: the error names what was being allocated */
    opt.alloc = failing_alloc;
    assert_int_equal(tb_loader_create(&ld, ds, &opt), TB_ERR_NOMEM);
    assert_non_null(strstr(tb_errmsg(), "loader: batch images"));
    assert_non_null(strstr(tb_errmsg(), "pinned allocation"));
    opt.free = NULL;
    assert_int_equal(tb_loader_create(&ld, ds, &opt), TB_ERR_INVALID);
    tb_dataset_close(ds);
}

static void test_bad_options(void **state)
{
    (void)state;
    tb_dataset *ds = synthetic(20, 8, 1);
    tb_loader *ld;
    tb_loader_options opt = {.batch = 32, .train = true};
    assert_int_equal(tb_loader_create(&ld, ds, &opt), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "fewer than one batch of 32"));
    opt.batch = 0;
    assert_int_equal(tb_loader_create(&ld, ds, &opt), TB_ERR_INVALID);
    opt.batch = 4;
    opt.augment = "sparkle";
    assert_int_equal(tb_loader_create(&ld, ds, &opt), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "sparkle"));
    opt.augment = NULL;
    opt.random_erasing = 1.5f;
    assert_int_equal(tb_loader_create(&ld, ds, &opt), TB_ERR_INVALID);
    opt.random_erasing = 0;
    assert_int_equal(tb_loader_create(&ld, ds, &opt), TB_OK);
    assert_string_equal(tb_loader_augment_name(ld), "small");
    assert_true(tb_loader_workers(ld) >= 1);
    tb_loader_destroy(ld);
    /* from a config */
    tb_data_config cfg = tdu_config("synthetic", NULL);
    snprintf(cfg.augment, sizeof cfg.augment, "imagenet");
    cfg.image_size = 20;
    cfg.workers = 3;
    tb_loader_options_from_config(&opt, &cfg, 4, true, 9);
    assert_int_equal(tb_loader_create(&ld, ds, &opt), TB_OK);
    int B, h, w, c;
    tb_loader_shape(ld, &B, &h, &w, &c);
    assert_int_equal(B, 4);
    assert_int_equal(h, 20);
    assert_int_equal(w, 20);
    assert_int_equal(c, 1);
    assert_int_equal(tb_loader_workers(ld), 3);
    assert_string_equal(tb_loader_augment_name(ld), "imagenet");
    tb_loader_destroy(ld);
    tb_dataset_close(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_seed_any_workers_small),
        cmocka_unit_test(test_same_seed_any_workers_imagenet),
        cmocka_unit_test(test_epochs_and_seeds),
        cmocka_unit_test(test_eval_padding),
        cmocka_unit_test(test_restart_and_ring),
        cmocka_unit_test(test_alloc_hooks),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
