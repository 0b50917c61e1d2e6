/* The real Fashion-MNIST files of the Debian package dataset-fashion-mnist.
 * Exits 77 (skipped) when the package is not installed. */
#include <math.h>
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

static void test_counts_and_labels(void **state)
{
    (void)state;
    tb_data_config cfg = tdu_config("fashion-mnist", "");
    tb_dataset *tr, *te;
    assert_int_equal(tb_dataset_open(&tr, &cfg, true), TB_OK);
    assert_int_equal(tb_dataset_open(&te, &cfg, false), TB_OK);
    assert_int_equal(tb_dataset_count(tr), 60000);
    assert_int_equal(tb_dataset_count(te), 10000);
    assert_int_equal(tb_dataset_classes(tr), 10);
    assert_int_equal(tb_dataset_height(tr), 28);
    assert_int_equal(tb_dataset_width(tr), 28);
    assert_int_equal(tb_dataset_channels(tr), 1);
    const int train_first[] = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5};
    const int test_first[] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
    for (int i = 0; i < 10; i++) {
        assert_int_equal(tb_dataset_label(tr, i), train_first[i]);
        assert_int_equal(tb_dataset_label(te, i), test_first[i]);
    }
    int per_class[10] = {0};
    for (int64_t i = 0; i < 60000; i++)
        per_class[tb_dataset_label(tr, i)]++;
    for (int k = 0; k < 10; k++)
        assert_int_equal(per_class[k], 6000);
    tb_dataset_close(tr);
    tb_dataset_close(te);
}

/* The built-in constants normalise the real training set to mean 0, std 1. */
static void test_normalisation(void **state)
{
    (void)state;
    tb_data_config cfg = tdu_config("fashion-mnist", "");
    tb_dataset *ds;
    assert_int_equal(tb_dataset_open(&ds, &cfg, true), TB_OK);
    tb_loader_options opt = {.batch = 1000, .train = false, .workers = 2, .augment = "none"};
    tb_loader *ld;
    assert_int_equal(tb_loader_create(&ld, ds, &opt), TB_OK);
    assert_int_equal(tb_loader_steps_per_epoch(ld), 60);
    assert_int_equal(tb_loader_start_epoch(ld, 0), TB_OK);
    double sum = 0, sumsq = 0;
    int64_t n = 0;
    tb_batch *b;
    while (tb_loader_next(ld, &b) == TB_OK && b) {
        size_t m = (size_t)b->count * 28 * 28;
        for (size_t i = 0; i < m; i++) {
            sum += b->images[i];
            sumsq += (double)b->images[i] * b->images[i];
        }
        n += (int64_t)m;
        tb_loader_release(ld, b);
    }
    assert_int_equal(n, 60000LL * 784);
    double mean = sum / n, sd = sqrt(sumsq / n - mean * mean);
    assert_true(fabs(mean) < 1e-4);
    assert_true(fabs(sd - 1.0) < 1e-4);
    tb_loader_destroy(ld);
    tb_dataset_close(ds);
}

int main(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", TB_FASHION_MNIST_ROOT);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "skipped: %s not found (install dataset-fashion-mnist)\n", path);
        return 77;
    }
    fclose(f);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_and_labels),
        cmocka_unit_test(test_normalisation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
