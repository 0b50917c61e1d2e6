/* IDX datasets (plain and gzipped), subsets, and every bad-file case. */
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
#include "kernels/error.h"

enum { NTRAIN = 50, NTEST = 20, H = 6, W = 5 };

typedef struct fixture {
    char *dir;
    uint8_t train_px[NTRAIN * H * W], test_px[NTEST * H * W];
    uint8_t train_lb[NTRAIN], test_lb[NTEST];
} fixture;

static void fill(fixture *f)
{
    for (int i = 0; i < NTRAIN * H * W; i++)
        f->train_px[i] = (uint8_t)(i * 7 + 3);
    for (int i = 0; i < NTEST * H * W; i++)
        f->test_px[i] = (uint8_t)(i * 11 + 1);
    for (int i = 0; i < NTRAIN; i++)
        f->train_lb[i] = (uint8_t)(i % 7); /* 7 classes */
    for (int i = 0; i < NTEST; i++)
        f->test_lb[i] = (uint8_t)((i * 3) % 7);
}

/* Writes the four files; gz_mask bit k gzips file k (train img, train lbl, test img, test lbl). */
static void write_all(fixture *f, unsigned gz_mask)
{
    tdu_write_idx_images(f->dir, "train-images-idx3-ubyte", gz_mask & 1, NTRAIN, H, W, f->train_px);
    tdu_write_idx_labels(f->dir, "train-labels-idx1-ubyte", gz_mask & 2, NTRAIN, f->train_lb);
    tdu_write_idx_images(f->dir, "t10k-images-idx3-ubyte", gz_mask & 4, NTEST, H, W, f->test_px);
    tdu_write_idx_labels(f->dir, "t10k-labels-idx1-ubyte", gz_mask & 8, NTEST, f->test_lb);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = tdu_tempdir();
    fill(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    tdu_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void check_split(tb_dataset *ds, int n, const uint8_t *px, const uint8_t *lb)
{
    assert_int_equal(tb_dataset_count(ds), n);
    assert_int_equal(tb_dataset_height(ds), H);
    assert_int_equal(tb_dataset_width(ds), W);
    assert_int_equal(tb_dataset_channels(ds), 1);
    assert_int_equal(tb_dataset_classes(ds), 7);
    tb_image img = {0};
    for (int i = 0; i < n; i++) {
        int32_t label;
        assert_int_equal(tb_dataset_read(ds, i, 0, &img, &label), TB_OK);
        assert_int_equal(label, lb[i]);
        assert_int_equal(tb_dataset_label(ds, i), lb[i]);
        assert_int_equal(img.h, H);
        assert_int_equal(img.w, W);
        assert_int_equal(img.c, 1);
        assert_memory_equal(img.data, px + (size_t)i * H * W, H * W);
    }
    tb_image_free(&img);
}

static void open_both(fixture *f)
{
    tb_data_config cfg = tdu_config("idx", f->dir);
    tb_dataset *tr, *te;
    assert_int_equal(tb_dataset_open(&tr, &cfg, true), TB_OK);
    check_split(tr, NTRAIN, f->train_px, f->train_lb);
    assert_int_equal(tb_dataset_open(&te, &cfg, false), TB_OK);
    check_split(te, NTEST, f->test_px, f->test_lb);
    assert_string_equal(tb_dataset_name(tr), "idx");
    /* both splits are normalised with the training split's statistics */
    float m1[3], s1[3], m2[3], s2[3];
    tb_dataset_normalization(tr, m1, s1);
    tb_dataset_normalization(te, m2, s2);
    double sum = 0, sumsq = 0;
    for (int i = 0; i < NTRAIN * H * W; i++) {
        sum += f->train_px[i];
        sumsq += (double)f->train_px[i] * f->train_px[i];
    }
    double mean = sum / (NTRAIN * H * W), sd = sqrt(sumsq / (NTRAIN * H * W) - mean * mean);
    assert_float_equal(m1[0], mean, 1e-3);
    assert_float_equal(s1[0], sd, 1e-3);
    assert_float_equal(m2[0], m1[0], 0);
    assert_float_equal(s2[0], s1[0], 0);
    tb_dataset_close(tr);
    tb_dataset_close(te);
}

static void test_plain(void **state)
{
    fixture *f = *state;
    write_all(f, 0);
    open_both(f);
}

static void test_gzipped(void **state)
{
    fixture *f = *state;
    write_all(f, 15);
    open_both(f);
}

static void test_mixed_gz(void **state)
{
    fixture *f = *state;
    write_all(f, 5); /* images gzipped, labels plain */
    open_both(f);
}

static int open_err(fixture *f, bool train)
{
    tb_data_config cfg = tdu_config("idx", f->dir);
    tb_dataset *ds = (tb_dataset *)1;
    int rc = tb_dataset_open(&ds, &cfg, train);
    assert_int_not_equal(rc, TB_OK);
    assert_null(ds);
    return rc;
}

static void assert_msg(const char *a, const char *b)
{
    if (!strstr(tb_errmsg(), a) || (b && !strstr(tb_errmsg(), b)))
        fail_msg("message '%s' lacks '%s' / '%s'", tb_errmsg(), a, b ? b : "");
}

static void test_bad_magic(void **state)
{
    fixture *f = *state;
    write_all(f, 0);
    /* a label file where the image file should be */
    tdu_write_idx_labels(f->dir, "train-images-idx3-ubyte", false, NTRAIN, f->train_lb);
    assert_int_equal(open_err(f, true), TB_ERR_DATA);
    assert_msg("train-images-idx3-ubyte", "bad magic number 0x00000801 at offset 0");
    write_all(f, 0);
    tdu_write_idx_images(f->dir, "t10k-labels-idx1-ubyte", false, NTEST, H, W, f->test_px);
    assert_int_equal(open_err(f, false), TB_ERR_DATA);
    assert_msg("t10k-labels-idx1-ubyte", "bad magic number 0x00000803 at offset 0");
}

static void test_count_mismatch(void **state)
{
    fixture *f = *state;
    write_all(f, 0);
    tdu_write_idx_labels(f->dir, "train-labels-idx1-ubyte", false, NTRAIN - 1, f->train_lb);
    assert_int_equal(open_err(f, true), TB_ERR_DATA);
    assert_msg("train-labels-idx1-ubyte: 49 labels", "has 50 images");
}

static void test_truncated(void **state)
{
    fixture *f = *state;
    write_all(f, 0);
    /* header says 50 images, only 10 follow */
    uint8_t buf[16 + 10 * H * W];
    uint8_t hdr[16] = {0, 0, 8, 3, 0, 0, 0, NTRAIN, 0, 0, 0, H, 0, 0, 0, W};
    memcpy(buf, hdr, 16);
    memcpy(buf + 16, f->train_px, sizeof buf - 16);
    char path[4096];
    tdu_write_file(tdu_join(path, sizeof path, f->dir, "train-images-idx3-ubyte"), buf, sizeof buf);
    assert_int_equal(open_err(f, true), TB_ERR_DATA);
    assert_msg("train-images-idx3-ubyte: truncated: the header announces 1516 bytes", "the file has 316");
    /* the same, gzipped, and a header cut short */
    remove(path);
    tdu_write_gz(tdu_join(path, sizeof path, f->dir, "train-images-idx3-ubyte.gz"), buf, sizeof buf);
    assert_int_equal(open_err(f, true), TB_ERR_DATA);
    assert_msg("train-images-idx3-ubyte.gz: truncated", "got 300");
    tdu_write_gz(path, buf, 10);
    assert_int_equal(open_err(f, true), TB_ERR_DATA);
    assert_msg("train-images-idx3-ubyte.gz: truncated: expected 16 bytes of header", "got 10");
}

static void test_corrupt_gzip(void **state)
{
    fixture *f = *state;
    write_all(f, 1);
    char path[4096];
    tdu_join(path, sizeof path, f->dir, "train-images-idx3-ubyte.gz");
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    fseek(fp, 30, SEEK_SET);
    uint8_t junk[40];
    memset(junk, 0xa5, sizeof junk);
    fwrite(junk, 1, sizeof junk, fp);
    fclose(fp);
    assert_int_equal(open_err(f, true), TB_ERR_DATA);
    assert_msg("train-images-idx3-ubyte.gz", NULL);
}

static void test_label_out_of_range(void **state)
{
    fixture *f = *state;
    write_all(f, 0);
    uint8_t lb[NTEST];
    memcpy(lb, f->test_lb, sizeof lb);
    lb[5] = 9; /* training labels give 7 classes */
    tdu_write_idx_labels(f->dir, "t10k-labels-idx1-ubyte", false, NTEST, lb);
    assert_int_equal(open_err(f, false), TB_ERR_DATA);
    assert_msg("t10k-labels-idx1-ubyte: label 9 at offset 13", "out of range for 7 classes");
    /* fashion-mnist has 10 classes whatever the files say */
    tb_data_config cfg = tdu_config("fashion-mnist", f->dir);
    write_all(f, 0);
    uint8_t tl[NTRAIN];
    memcpy(tl, f->train_lb, sizeof tl);
    tl[0] = 12;
    tdu_write_idx_labels(f->dir, "train-labels-idx1-ubyte", false, NTRAIN, tl);
    tb_dataset *ds;
    assert_int_equal(tb_dataset_open(&ds, &cfg, true), TB_ERR_DATA);
    assert_msg("train-labels-idx1-ubyte: label 12 at offset 8", "out of range for 10 classes");
}

static void test_missing(void **state)
{
    fixture *f = *state;
    tb_data_config cfg = tdu_config("idx", "/nonexistent/tb-data-root");
    tb_dataset *ds;
    assert_int_equal(tb_dataset_open(&ds, &cfg, true), TB_ERR_MISSING);
    assert_msg("/nonexistent/tb-data-root", "does not exist");
    write_all(f, 0);
    char path[4096];
    remove(tdu_join(path, sizeof path, f->dir, "t10k-images-idx3-ubyte"));
    assert_int_equal(open_err(f, false), TB_ERR_MISSING);
    assert_msg("t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz exists");
    cfg = tdu_config("idx", "");
    assert_int_equal(tb_dataset_open(&ds, &cfg, true), TB_ERR_INVALID);
    assert_msg("data.root", NULL);
    cfg = tdu_config("mnist-ish", f->dir);
    assert_int_equal(tb_dataset_open(&ds, &cfg, true), TB_ERR_INVALID);
    assert_msg("unknown dataset 'mnist-ish'", NULL);
}

static int64_t *sources(tb_dataset *ds)
{
    int64_t n = tb_dataset_count(ds);
    int64_t *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++)
        v[i] = tb_dataset_source_index(ds, i);
    return v;
}

static void test_limits_and_holdout(void **state)
{
    fixture *f = *state;
    write_all(f, 0);
    tb_data_config cfg = tdu_config("idx", f->dir);
    cfg.train_limit = 12;
    cfg.val_limit = 5;
    tb_dataset *a, *b, *v;
    assert_int_equal(tb_dataset_open(&a, &cfg, true), TB_OK);
    assert_int_equal(tb_dataset_open(&b, &cfg, true), TB_OK);
    assert_int_equal(tb_dataset_open(&v, &cfg, false), TB_OK);
    assert_int_equal(tb_dataset_count(a), 12);
    assert_int_equal(tb_dataset_count(v), 5);
    int64_t *sa = sources(a), *sb = sources(b);
    assert_memory_equal(sa, sb, 12 * sizeof *sa); /* deterministic */
    bool first_n = true;
    for (int i = 0; i < 12; i++) {
        assert_true(sa[i] >= 0 && sa[i] < NTRAIN);
        if (i > 0)
            assert_true(sa[i] > sa[i - 1]); /* ascending, distinct */
        first_n &= sa[i] == i;
        /* the subset's sample i is the file's image sa[i] */
        tb_image img = {0};
        int32_t label;
        assert_int_equal(tb_dataset_read(a, i, 0, &img, &label), TB_OK);
        assert_memory_equal(img.data, f->train_px + sa[i] * H * W, H * W);
        assert_int_equal(label, f->train_lb[sa[i]]);
        tb_image_free(&img);
    }
    assert_false(first_n); /* a seeded permutation, not the first N */
    free(sa);
    free(sb);
    tb_dataset_close(a);
    tb_dataset_close(b);
    tb_dataset_close(v);

    /* holdout: the validation split is cut from the training files */
    cfg = tdu_config("idx", f->dir);
    cfg.holdout = 15;
    tb_dataset *tr, *ho;
    assert_int_equal(tb_dataset_open(&tr, &cfg, true), TB_OK);
    assert_int_equal(tb_dataset_open(&ho, &cfg, false), TB_OK);
    assert_int_equal(tb_dataset_count(tr), NTRAIN - 15);
    assert_int_equal(tb_dataset_count(ho), 15);
    int seen[NTRAIN] = {0};
    for (int64_t i = 0; i < tb_dataset_count(tr); i++)
        seen[tb_dataset_source_index(tr, i)]++;
    for (int64_t i = 0; i < tb_dataset_count(ho); i++) {
        int64_t s = tb_dataset_source_index(ho, i);
        seen[s]++;
        tb_image img = {0};
        int32_t label;
        assert_int_equal(tb_dataset_read(ho, i, 0, &img, &label), TB_OK);
        assert_memory_equal(img.data, f->train_px + s * H * W, H * W); /* training pixels */
        tb_image_free(&img);
    }
    for (int i = 0; i < NTRAIN; i++)
        assert_int_equal(seen[i], 1); /* disjoint, and together the whole split */
    /* holdout plus a training limit: still disjoint from the holdout */
    cfg.train_limit = 10;
    tb_dataset *lim;
    assert_int_equal(tb_dataset_open(&lim, &cfg, true), TB_OK);
    assert_int_equal(tb_dataset_count(lim), 10);
    for (int64_t i = 0; i < 10; i++)
        for (int64_t j = 0; j < 15; j++)
            assert_true(tb_dataset_source_index(lim, i) != tb_dataset_source_index(ho, j));
    tb_dataset_close(lim);
    tb_dataset_close(tr);
    tb_dataset_close(ho);

    cfg = tdu_config("idx", f->dir);
    cfg.holdout = NTRAIN;
    assert_int_equal(tb_dataset_open(&tr, &cfg, true), TB_ERR_INVALID);
    assert_msg("data.holdout = 50", "leaves no training images");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_plain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gzipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mixed_gz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_magic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_count_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_gzip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_label_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits_and_holdout, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
