/* CIFAR-10 and CIFAR-100 binary files written by the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "data_test_util.h"
#include "harness/data/dataset.h"
#include "kernels/error.h"

enum { PIX = 1024, REC10 = 1 + 3 * PIX, REC100 = 2 + 3 * PIX };

/* Record r of a file: label, then planes R, G, B with values derived from (seed, r). */
static uint8_t pixel(int seed, int r, int ch, int i) { return (uint8_t)(seed * 31 + r * 17 + ch * 85 + i * 3); }

static void write_cifar(const char *path, int seed, int n, int label_bytes, const int *labels)
{
    size_t rec = (size_t)label_bytes + 3 * PIX;
    uint8_t *buf = malloc(rec * n);
    for (int r = 0; r < n; r++) {
        uint8_t *p = buf + rec * r;
        if (label_bytes == 2) {
            p[0] = (uint8_t)(labels[r] / 5); /* coarse */
            p[1] = (uint8_t)labels[r];       /* fine */
        } else {
            p[0] = (uint8_t)labels[r];
        }
        for (int ch = 0; ch < 3; ch++)
            for (int i = 0; i < PIX; i++)
                p[label_bytes + ch * PIX + i] = pixel(seed, r, ch, i);
    }
    tdu_write_file(path, buf, rec * n);
    free(buf);
}

static int setup(void **state)
{
    *state = tdu_tempdir();
    return 0;
}

static int teardown(void **state)
{
    tdu_rmtree(*state);
    free(*state);
    return 0;
}

static void assert_msg(const char *a, const char *b)
{
    if (!strstr(tb_errmsg(), a) || (b && !strstr(tb_errmsg(), b)))
        fail_msg("message '%s' lacks '%s' / '%s'", tb_errmsg(), a, b ? b : "");
}

/* Sample i must be record r of the file written with `seed`, in HWC order. */
static void check_sample(tb_dataset *ds, int64_t i, int seed, int r, int label)
{
    tb_image img = {0};
    int32_t got;
    assert_int_equal(tb_dataset_read(ds, i, 0, &img, &got), TB_OK);
    assert_int_equal(got, label);
    assert_int_equal(img.h, 32);
    assert_int_equal(img.w, 32);
    assert_int_equal(img.c, 3);
    for (int y = 0; y < 32; y += 5)
        for (int x = 0; x < 32; x += 3)
            for (int ch = 0; ch < 3; ch++)
                assert_int_equal(img.data[(y * 32 + x) * 3 + ch], pixel(seed, r, ch, y * 32 + x));
    tb_image_free(&img);
}

static void write_cifar10(const char *dir, int per_batch)
{
    char path[4096];
    int labels[16];
    for (int b = 1; b <= 5; b++) {
        for (int r = 0; r < per_batch; r++)
            labels[r] = (b * 3 + r) % 10;
        tdu_pathf(path, sizeof path, "%s/data_batch_%d.bin", dir, b);
        write_cifar(path, b, per_batch, 1, labels);
    }
    for (int r = 0; r < per_batch; r++)
        labels[r] = (7 * r) % 10;
    tdu_pathf(path, sizeof path, "%s/test_batch.bin", dir);
    write_cifar(path, 9, per_batch, 1, labels);
}

static void test_cifar10(void **state)
{
    const char *dir = *state;
    write_cifar10(dir, 4);
    tb_data_config cfg = tdu_config("cifar10", dir);
    tb_dataset *tr, *te;
    assert_int_equal(tb_dataset_open(&tr, &cfg, true), TB_OK);
    assert_int_equal(tb_dataset_open(&te, &cfg, false), TB_OK);
    assert_int_equal(tb_dataset_count(tr), 20);
    assert_int_equal(tb_dataset_count(te), 4);
    assert_int_equal(tb_dataset_classes(tr), 10);
    assert_int_equal(tb_dataset_channels(tr), 3);
    for (int b = 1; b <= 5; b++)
        for (int r = 0; r < 4; r++)
            check_sample(tr, (b - 1) * 4 + r, b, r, (b * 3 + r) % 10);
    for (int r = 0; r < 4; r++)
        check_sample(te, r, 9, r, (7 * r) % 10);
    float mean[3], std[3];
    tb_dataset_normalization(tr, mean, std);
    assert_float_equal(mean[0], 0.4914 * 255, 0.1);
    assert_float_equal(std[2], 0.2616 * 255, 0.1);
    tb_dataset_close(tr);
    tb_dataset_close(te);
}

static void test_cifar10_archive_folder(void **state)
{
    const char *dir = *state;
    char sub[4096];
    tdu_mkdirs(tdu_join(sub, sizeof sub, dir, "cifar-10-batches-bin"));
    write_cifar10(sub, 2);
    tb_data_config cfg = tdu_config("cifar10", dir);
    tb_dataset *tr;
    assert_int_equal(tb_dataset_open(&tr, &cfg, true), TB_OK);
    assert_int_equal(tb_dataset_count(tr), 10);
    check_sample(tr, 9, 5, 1, (5 * 3 + 1) % 10);
    tb_dataset_close(tr);
}

static void test_cifar100(void **state)
{
    const char *dir = *state;
    char path[4096];
    int labels[6] = {0, 99, 42, 57, 5, 73};
    write_cifar(tdu_join(path, sizeof path, dir, "train.bin"), 1, 6, 2, labels);
    write_cifar(tdu_join(path, sizeof path, dir, "test.bin"), 2, 3, 2, labels + 3);
    tb_data_config cfg = tdu_config("cifar100", dir);
    tb_dataset *tr, *te;
    assert_int_equal(tb_dataset_open(&tr, &cfg, true), TB_OK);
    assert_int_equal(tb_dataset_open(&te, &cfg, false), TB_OK);
    assert_int_equal(tb_dataset_classes(tr), 100);
    assert_int_equal(tb_dataset_count(tr), 6);
    assert_int_equal(tb_dataset_count(te), 3);
    for (int r = 0; r < 6; r++)
        check_sample(tr, r, 1, r, labels[r]); /* fine labels */
    for (int r = 0; r < 3; r++)
        check_sample(te, r, 2, r, labels[3 + r]);
    tb_dataset_close(tr);
    tb_dataset_close(te);
}

static void test_bad_files(void **state)
{
    const char *dir = *state;
    write_cifar10(dir, 3);
    tb_data_config cfg = tdu_config("cifar10", dir);
    tb_dataset *ds;
    char path[4096];
    /* truncated: one record minus 100 bytes */
    tdu_pathf(path, sizeof path, "%s/data_batch_3.bin", dir);
    int labels[3] = {1, 2, 3};
    write_cifar(path, 3, 3, 1, labels);
    assert_int_equal(truncate(path, 3 * REC10 - 100), 0);
    assert_int_equal(tb_dataset_open(&ds, &cfg, true), TB_ERR_DATA);
    assert_msg("data_batch_3.bin: truncated", "expected 9219 bytes for 3 records");
    /* label out of range */
    labels[1] = 10;
    write_cifar(path, 3, 3, 1, labels);
    assert_int_equal(tb_dataset_open(&ds, &cfg, true), TB_ERR_DATA);
    assert_msg("data_batch_3.bin: label 10 at offset 3073 (record 1)", "out of range for 10 classes");
    /* a missing batch */
    remove(path);
    assert_int_equal(tb_dataset_open(&ds, &cfg, true), TB_ERR_MISSING);
    assert_msg("data_batch_3.bin", NULL);
    /* nothing there at all */
    cfg = tdu_config("cifar100", dir);
    assert_int_equal(tb_dataset_open(&ds, &cfg, true), TB_ERR_MISSING);
    assert_msg("train.bin not found", NULL);
    /* CIFAR-100 fine label 100 */
    int bad[2] = {3, 100};
    write_cifar(tdu_join(path, sizeof path, dir, "train.bin"), 1, 2, 2, bad);
    assert_int_equal(tb_dataset_open(&ds, &cfg, true), TB_ERR_DATA);
    assert_msg("train.bin: label 100 at offset 3075 (record 1)", "out of range for 100 classes");
    /* an empty file */
    tdu_write_file(path, "", 0);
    assert_int_equal(tb_dataset_open(&ds, &cfg, true), TB_ERR_DATA);
    assert_msg("train.bin: truncated", "got 0 bytes");
    cfg = tdu_config("cifar10", "/nonexistent/cifar");
    assert_int_equal(tb_dataset_open(&ds, &cfg, true), TB_ERR_MISSING);
    assert_msg("/nonexistent/cifar", "does not exist");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cifar10, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cifar10_archive_folder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cifar100, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_files, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
