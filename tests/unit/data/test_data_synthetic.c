/* The synthetic dataset: deterministic, split-dependent, and learnable. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "data_test_util.h"
#include "harness/data/dataset.h"
#include "kernels/error.h"

static tb_dataset *open_split(const tb_data_config *cfg, bool train)
{
    tb_dataset *ds;
    if (tb_dataset_open(&ds, cfg, train) != TB_OK)
        fail_msg("%s", tb_errmsg());
    return ds;
}

static void test_shape_and_determinism(void **state)
{
    (void)state;
    tb_data_config cfg = tdu_config("synthetic", NULL);
    tb_dataset *a = open_split(&cfg, true), *b = open_split(&cfg, true), *v = open_split(&cfg, false);
    assert_int_equal(tb_dataset_count(a), 512);
    assert_int_equal(tb_dataset_count(v), 128);
    assert_int_equal(tb_dataset_classes(a), 10);
    assert_int_equal(tb_dataset_height(a), 28);
    assert_int_equal(tb_dataset_channels(a), 1);
    tb_image x = {0}, y = {0};
    int32_t lx, ly;
    for (int64_t i = 0; i < 512; i += 37) {
        assert_int_equal(tb_dataset_read(a, i, 0, &x, &lx), TB_OK);
        assert_int_equal(tb_dataset_read(b, i, 0, &y, &ly), TB_OK);
        assert_int_equal(lx, ly);
        assert_int_equal(lx, i % 10);
        assert_memory_equal(x.data, y.data, 28 * 28);
        /* reading again gives the same image */
        assert_int_equal(tb_dataset_read(a, i, 0, &y, &ly), TB_OK);
        assert_memory_equal(x.data, y.data, 28 * 28);
    }
    /* the validation split holds other images */
    assert_int_equal(tb_dataset_read(a, 3, 0, &x, &lx), TB_OK);
    assert_int_equal(tb_dataset_read(v, 3, 0, &y, &ly), TB_OK);
    assert_int_equal(lx, ly);
    assert_memory_not_equal(x.data, y.data, 28 * 28);
    /* two images of one class differ (noise) */
    assert_int_equal(tb_dataset_read(a, 13, 0, &y, &ly), TB_OK);
    assert_int_equal(ly, lx);
    assert_memory_not_equal(x.data, y.data, 28 * 28);
    tb_image_free(&x);
    tb_image_free(&y);
    tb_dataset_close(a);
    tb_dataset_close(b);
    tb_dataset_close(v);
}

/* A nearest-class-mean classifier fitted on the training split must
 * classify the validation split well: the data can be learned. */
static void test_learnable(void **state)
{
    (void)state;
    tb_data_config cfg = tdu_config("synthetic", NULL);
    cfg.synthetic_channels = 3;
    cfg.synthetic_size = 12;
    cfg.synthetic_classes = 8;
    tb_dataset *tr = open_split(&cfg, true), *va = open_split(&cfg, false);
    assert_int_equal(tb_dataset_channels(tr), 3);
    const int D = 12 * 12 * 3, K = 8;
    double *means = calloc((size_t)K * D, sizeof *means);
    int counts[8] = {0};
    tb_image img = {0};
    int32_t label;
    for (int64_t i = 0; i < tb_dataset_count(tr); i++) {
        assert_int_equal(tb_dataset_read(tr, i, 0, &img, &label), TB_OK);
        counts[label]++;
        for (int d = 0; d < D; d++)
            means[label * D + d] += img.data[d];
    }
    for (int k = 0; k < K; k++) {
        assert_int_equal(counts[k], 64); /* balanced */
        for (int d = 0; d < D; d++)
            means[k * D + d] /= counts[k];
    }
    int correct = 0;
    for (int64_t i = 0; i < tb_dataset_count(va); i++) {
        assert_int_equal(tb_dataset_read(va, i, 0, &img, &label), TB_OK);
        int best = -1;
        double best_d = INFINITY;
        for (int k = 0; k < K; k++) {
            double dist = 0;
            for (int d = 0; d < D; d++) {
                double e = img.data[d] - means[k * D + d];
                dist += e * e;
            }
            if (dist < best_d) {
                best_d = dist;
                best = k;
            }
        }
        correct += best == label;
    }
    assert_true(correct >= 0.9 * tb_dataset_count(va));
    free(means);
    tb_image_free(&img);
    tb_dataset_close(tr);
    tb_dataset_close(va);
}

static void test_bad_config(void **state)
{
    (void)state;
    tb_data_config cfg = tdu_config("synthetic", NULL);
    tb_dataset *ds;
    cfg.synthetic_channels = 2;
    assert_int_equal(tb_dataset_open(&ds, &cfg, true), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "data.synthetic_channels must be 1 or 3, got 2"));
    cfg = tdu_config("synthetic", NULL);
    cfg.synthetic_val = 0;
    assert_int_equal(tb_dataset_open(&ds, &cfg, false), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "data.synthetic_val"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape_and_determinism),
        cmocka_unit_test(test_learnable),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
