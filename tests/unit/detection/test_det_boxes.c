/* Box helpers of the CPU detection ops (kernels/cpu/box.h) and NMS:
 * IoU hand values, encode/decode (hand values, round trip, the log(1000/16)
 * clamp), clipping, the random subset draw (rule, determinism, uniformity),
 * the in-place sorts against qsort, and the fast NMS against its naive twin on random boxes for several seeds,
 * thresholds, sizes (across the 256-row tile) and keep limits. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "det_unit_util.h"
#include "kernels/cpu/box.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/rng.h"

static void test_iou(void **state)
{
    (void)state;
    const float a[4] = {0, 0, 10, 10}, b[4] = {5, 5, 15, 15}, inner[4] = {2, 2, 4, 4};
    const float far[4] = {20, 20, 30, 30}, touch[4] = {10, 0, 20, 10}, empty[4] = {3, 3, 3, 8};
    assert_true(fabsf(tb_cpu_box_iou(a, b) - 25.0f / 175.0f) < 1e-7f);
    assert_true(fabsf(tb_cpu_box_iou(b, a) - 25.0f / 175.0f) < 1e-7f);
    assert_true(tb_cpu_box_iou(a, a) == 1.0f);
    assert_true(fabsf(tb_cpu_box_iou(a, inner) - 0.04f) < 1e-7f);
    assert_true(tb_cpu_box_iou(a, far) == 0.0f);
    assert_true(tb_cpu_box_iou(a, touch) == 0.0f); /* no "+1": shared edges do not overlap */
    assert_true(tb_cpu_box_iou(empty, empty) == 0.0f);
    assert_true(tb_cpu_box_area(b) == 100.0f);
}

static void test_encode_decode(void **state)
{
    (void)state;
    const float ref[4] = {0, 0, 10, 20}, g[4] = {5, 5, 15, 25};
    const float unit[4] = {1, 1, 1, 1}, std[4] = {0.1f, 0.1f, 0.2f, 0.2f};
    float d[4], back[4];
    tb_cpu_box_encode(d, g, ref, unit);
    const float want1[4] = {0.5f, 0.25f, 0.0f, 0.0f};
    du_near("encode std 1", d, want1, 4, 1e-6f);
    tb_cpu_box_encode(d, g, ref, std);
    const float want2[4] = {5.0f, 2.5f, 0.0f, 0.0f};
    du_near("encode std 0.1/0.2", d, want2, 4, 1e-5f);
    const float g2[4] = {-5, 5, 15, 15}; /* same centre, twice as wide, half as high */
    tb_cpu_box_encode(d, g2, ref, std);
    const float want3[4] = {0.0f, 0.0f, logf(2.0f) / 0.2f, logf(0.5f) / 0.2f};
    du_near("encode scale", d, want3, 4, 1e-5f);

    /* round trip on random boxes, both stds */
    tb_rng r;
    tb_rng_seed(&r, 5, 0);
    for (int i = 0; i < 500; i++) {
        float a[4], b[4];
        a[0] = tb_rng_uniform_f(&r, -50, 50), a[1] = tb_rng_uniform_f(&r, -50, 50);
        a[2] = a[0] + tb_rng_uniform_f(&r, 1, 100), a[3] = a[1] + tb_rng_uniform_f(&r, 1, 100);
        b[0] = tb_rng_uniform_f(&r, -50, 50), b[1] = tb_rng_uniform_f(&r, -50, 50);
        b[2] = b[0] + tb_rng_uniform_f(&r, 1, 100), b[3] = b[1] + tb_rng_uniform_f(&r, 1, 100);
        const float *s = i % 2 ? std : unit;
        tb_cpu_box_encode(d, b, a, s);
        tb_cpu_box_decode(back, d, a, s);
        du_near("round trip", back, b, 4, 2e-4f * 100.0f);
    }

    /* decode clamps dw, dh (after the std) at log(1000/16): a 16-wide anchor grows to at most 1000 */
    const float anchor[4] = {0, 0, 16, 16}, huge[4] = {0, 0, 10.0f, 10.0f};
    tb_cpu_box_decode(back, huge, anchor, unit);
    assert_true(fabsf((back[2] - back[0]) - 1000.0f) < 1e-2f);
    assert_true(fabsf((back[3] - back[1]) - 1000.0f) < 1e-2f);
    const float big_std[4] = {0, 0, 4.0f, 4.0f}; /* 4 * 0.2 = 0.8 stays below the clamp */
    tb_cpu_box_decode(back, big_std, anchor, std);
    assert_true(fabsf((back[2] - back[0]) - 16.0f * expf(0.8f)) < 1e-3f);
    const float shrink[4] = {0, 0, -10.0f, -10.0f}; /* only growth is clamped */
    tb_cpu_box_decode(back, shrink, anchor, unit);
    assert_true(back[2] - back[0] < 1e-2f && back[2] - back[0] > 0.0f);
}

static void test_clip(void **state)
{
    (void)state;
    float b[4] = {-5, 3, 50, 70};
    tb_cpu_box_clip(b, 60, 40);
    const float want[4] = {0, 3, 40, 60};
    du_near("clip", b, want, 4, 0.0f);
}

/* The subset draw keeps the k smallest keys tb_hash_uniform(seed, base + i),
 * in ascending index order, and is roughly uniform over seeds. */
static void test_sample_subset(void **state)
{
    (void)state;
    int32_t cand[20], ref[20];
    tb_cpu_keyed scratch[20];
    int hits[20] = {0};
    for (uint64_t seed = 0; seed < 2000; seed++) {
        for (int i = 0; i < 20; i++)
            cand[i] = 3 * i; /* ids 0, 3, 6, ... */
        int64_t k = tb_cpu_sample_subset(cand, 20, 5, seed, 100, scratch);
        assert_int_equal(k, 5);
        /* reference: rank of each candidate's key */
        int kept = 0;
        for (int i = 0; i < 20; i++) {
            float ki = tb_hash_uniform(seed, 100 + 3 * (uint64_t)i);
            int below = 0;
            for (int j = 0; j < 20; j++) {
                float kj = tb_hash_uniform(seed, 100 + 3 * (uint64_t)j);
                below += kj < ki || (kj == ki && j < i);
            }
            if (below < 5)
                ref[kept++] = 3 * i;
        }
        assert_int_equal(kept, 5);
        assert_memory_equal(cand, ref, 5 * sizeof(int32_t));
        for (int t = 0; t < 5; t++)
            hits[cand[t] / 3]++;
    }
    for (int i = 0; i < 20; i++) /* expected 500 each; 6 sigma is about 116 */
        assert_true(hits[i] > 380 && hits[i] < 620);
    /* equal keys: the lower index wins. Keys have 24 bits, so among 20000
     * indices some collide; find a colliding pair and draw 1 of the 2. */
    tb_cpu_keyed *all = malloc(20000 * sizeof *all);
    assert_non_null(all);
    for (int i = 0; i < 20000; i++)
        all[i].key = tb_hash_uniform(3, (uint64_t)i), all[i].index = i;
    tb_cpu_sort_desc(all, 20000); /* equal keys end up next to each other, lower index first */
    int32_t pair[2] = {-1, -1};
    for (int i = 1; i < 20000 && pair[0] < 0; i++)
        if (all[i].key == all[i - 1].key)
            pair[0] = all[i - 1].index, pair[1] = all[i].index;
    free(all);
    assert_true(pair[0] >= 0 && pair[0] < pair[1]);
    int32_t two[2] = {pair[0], pair[1]};
    tb_cpu_keyed s2[2];
    assert_int_equal(tb_cpu_sample_subset(two, 2, 1, 3, 0, s2), 1);
    assert_int_equal(two[0], pair[0]);

    for (int i = 0; i < 20; i++)
        cand[i] = i;
    assert_int_equal(tb_cpu_sample_subset(cand, 20, 30, 1, 0, scratch), 20); /* k >= m keeps all */
    assert_int_equal(tb_cpu_sample_subset(cand, 20, 0, 1, 0, scratch), 0);
}

/* The score order written out for qsort: descending key, NaN last, ties by ascending index. */
static int ref_desc(const void *pa, const void *pb)
{
    const tb_cpu_keyed *a = pa, *b = pb;
    int an = isnan(a->key), bn = isnan(b->key);
    if (an != bn)
        return an - bn;
    if (!an && a->key != b->key)
        return a->key > b->key ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

/* The in-place heap sorts (no qsort: glibc's mallocs) against qsort, on keys
 * with many ties and some NaNs: the full sort, and the first k for every
 * kind of k (none, one, some, half, all, more than all). */
static void test_sort_orders(void **state)
{
    (void)state;
    const int64_t sizes[] = {0, 1, 2, 3, 7, 64, 1000};
    tb_cpu_keyed v[1000], ref[1000], w[1000];
    tb_rng r;
    tb_rng_seed(&r, 9, 0);
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
        int64_t m = sizes[si];
        for (int64_t i = 0; i < m; i++) { /* a shuffled permutation of indices, keys from 8 values */
            int64_t j = (int64_t)tb_rng_below(&r, (uint64_t)i + 1);
            v[i] = v[j];
            v[j].index = (int32_t)(3 * i);
            v[j].key = tb_rng_uniform(&r) < 0.1 ? NAN : (float)tb_rng_below(&r, 8) - 3.0f;
        }
        memcpy(ref, v, (size_t)m * sizeof *v);
        if (m > 0)
            qsort(ref, (size_t)m, sizeof *ref, ref_desc);
        memcpy(w, v, (size_t)m * sizeof *v);
        tb_cpu_sort_desc(w, m);
        for (int64_t i = 0; i < m; i++)
            if (w[i].index != ref[i].index)
                fail_msg("sort_desc of %lld: entry %lld is index %d, expected %d", (long long)m, (long long)i,
                         (int)w[i].index, (int)ref[i].index);
        const int64_t ks[] = {0, 1, 5, m / 2, m, m + 3};
        for (size_t ki = 0; ki < sizeof ks / sizeof *ks; ki++) {
            int64_t k = ks[ki], top = k < m ? k : m, sum = 0;
            memcpy(w, v, (size_t)m * sizeof *v);
            tb_cpu_top_desc(w, m, k);
            for (int64_t i = 0; i < top; i++)
                if (w[i].index != ref[i].index)
                    fail_msg("top_desc %lld of %lld: entry %lld is index %d, expected %d", (long long)k,
                             (long long)m, (long long)i, (int)w[i].index, (int)ref[i].index);
            for (int64_t i = 0; i < m; i++) /* the rest is a permutation of the rest */
                sum += w[i].index - v[i].index;
            assert_int_equal(sum, 0);
        }
    }
}

/* Suppressed boxes do not suppress: A kills B, B would kill C, C stays. */
static void test_nms_hand(void **state)
{
    (void)state;
    const float boxes[5][4] = {{0, 0, 10, 10}, {6, 0, 16, 10}, {12, 0, 22, 10}, {0, 0, 10, 9.5f}, {1, 1, 11, 11}};
    int32_t keep[5];
    unsigned char sup[5];
    void *scratch = malloc(tb_cpu_nms_scratch_size(5));
    assert_non_null(scratch);
    int64_t k = tb_cpu_nms(keep, &boxes[0][0], 5, 0.2f, 5, scratch);
    assert_int_equal(k, 2);
    assert_int_equal(keep[0], 0);
    assert_int_equal(keep[1], 2);
    assert_int_equal(tb_cpu_nms_naive(keep, &boxes[0][0], 5, 0.2f, 5, sup), 2);
    /* IoU(A, B) = 0.25 exactly is not above 0.25: kept */
    k = tb_cpu_nms(keep, &boxes[0][0], 5, 0.25f, 5, scratch);
    assert_int_equal(k, 3);
    assert_int_equal(keep[1], 1);
    /* max_keep stops early */
    assert_int_equal(tb_cpu_nms(keep, &boxes[0][0], 5, 0.99f, 2, scratch), 2);
    assert_int_equal(tb_cpu_nms(keep, &boxes[0][0], 0, 0.5f, 2, scratch), 0);
    free(scratch);
}

static void random_boxes(float *b, int64_t n, tb_rng *r)
{
    for (int64_t i = 0; i < n; i++) {
        if (i > 0 && tb_rng_uniform(r) < 0.05) { /* exact duplicates: IoU 1 */
            memcpy(b + 4 * i, b + 4 * (int64_t)tb_rng_below(r, (uint64_t)i), 4 * sizeof(float));
            continue;
        }
        float cx = tb_rng_uniform_f(r, 0, 200), cy = tb_rng_uniform_f(r, 0, 200);
        float w = tb_rng_uniform_f(r, 4, 60), h = tb_rng_uniform_f(r, 4, 60);
        b[4 * i] = cx - w / 2, b[4 * i + 1] = cy - h / 2, b[4 * i + 2] = cx + w / 2, b[4 * i + 3] = cy + h / 2;
    }
}

static void test_nms_fast_vs_naive(void **state)
{
    (void)state;
    const int64_t sizes[] = {1, 7, 64, 65, 300, 700};
    const float threshs[] = {0.0f, 0.3f, 0.5f, 0.7f, 1.0f};
    float *boxes = malloc(700 * 4 * sizeof(float));
    int32_t *k1 = malloc(700 * sizeof(int32_t)), *k2 = malloc(700 * sizeof(int32_t));
    unsigned char *sup = malloc(700);
    void *scratch = malloc(tb_cpu_nms_scratch_size(700));
    assert_true(boxes && k1 && k2 && sup && scratch);
    int64_t total_kept = 0, total = 0;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        tb_rng r;
        tb_rng_seed(&r, seed, 0);
        for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
            int64_t n = sizes[si];
            random_boxes(boxes, n, &r);
            for (size_t ti = 0; ti < sizeof threshs / sizeof *threshs; ti++)
                for (int lim = 0; lim < 2; lim++) {
                    int64_t max_keep = lim ? 5 : n;
                    int64_t a = tb_cpu_nms(k1, boxes, n, threshs[ti], max_keep, scratch);
                    int64_t b = tb_cpu_nms_naive(k2, boxes, n, threshs[ti], max_keep, sup);
                    if (a != b || memcmp(k1, k2, (size_t)a * sizeof *k1) != 0)
                        fail_msg("seed %llu, n %lld, thresh %g, max_keep %lld: fast keeps %lld, naive %lld",
                                 (unsigned long long)seed, (long long)n, (double)threshs[ti], (long long)max_keep,
                                 (long long)a, (long long)b);
                    if (threshs[ti] == 1.0f && !lim)
                        assert_int_equal(a, n); /* nothing has IoU above 1 */
                    total_kept += a;
                    total += n;
                }
        }
    }
    assert_true(total_kept < total); /* the cases do suppress */
    free(boxes), free(k1), free(k2), free(sup), free(scratch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iou),
        cmocka_unit_test(test_encode_decode),
        cmocka_unit_test(test_clip),
        cmocka_unit_test(test_sample_subset),
        cmocka_unit_test(test_sort_orders),
        cmocka_unit_test(test_nms_hand),
        cmocka_unit_test(test_nms_fast_vs_naive),
    };
    return cmocka_run_group_tests(tests, du_setup, du_teardown);
}
