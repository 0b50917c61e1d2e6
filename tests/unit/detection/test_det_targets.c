/* Training targets of the detection heads on hand-made boxes:
 *  - rpn_targets: a gt equal to an anchor is positive, IoU thresholds, the
 *    low-quality rule (ties included, never for a gt without overlap),
 *    images without gts, sampling caps, the documented subset rule, and
 *    determinism per seed.
 *  - roi_targets: gt boxes are foreground candidates, the 25% foreground
 *    cap, background fill and label -1 padding, class-specific target
 *    columns, bg_iou_lo, sampling per seed, and value errors.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "det_unit_util.h"
#include "kernels/error.h"
#include "kernels/ops.h"
#include "kernels/rng.h"

/* deltas of g against a (std s), written out independently of box.c */
static void encode(float *d, const float *g, const float *a, const float *s)
{
    double aw = a[2] - a[0], ah = a[3] - a[1], gw = g[2] - g[0], gh = g[3] - g[1];
    d[0] = (float)(((g[0] + 0.5 * gw) - (a[0] + 0.5 * aw)) / aw / s[0]);
    d[1] = (float)(((g[1] + 0.5 * gh) - (a[1] + 0.5 * ah)) / ah / s[1]);
    d[2] = (float)(log(gw / aw) / s[2]);
    d[3] = (float)(log(gh / ah) / s[3]);
}

/* ============================================================ rpn_targets */

#define RA 9
static const float rpn_anchors[RA][4] = {
    {0, 0, 10, 10},     /* 0: equals gt 0 */
    {5, 5, 15, 15},     /* 1: IoU 1/7 with gt 0: negative */
    {20, 20, 30, 30},   /* 2: no overlap */
    {0, 0, 10, 12},     /* 3: IoU 10/12 with gt 0: positive */
    {40, 40, 50, 50},   /* 4: IoU 81/163 with gt 1, its best: low-quality positive */
    {100, 100, 110, 110}, /* 5 */
    {55, 60, 65, 70},   /* 6: IoU 1/3 with gt 2, tied best */
    {65, 60, 75, 70},   /* 7: IoU 1/3 with gt 2, tied best */
    {0, 0, 12, 10},     /* 8: IoU 10/12 with gt 0 */
};

typedef struct rpn_io {
    tb_tensor labels, targets, weights, anchors, gt, count;
} rpn_io;

static rpn_io rpn_make(int n, int a, int g)
{
    rpn_io io;
    io.labels = du_new(TB_I32, 1, n * a, 1, 1);
    io.targets = du_new(TB_F32, 2, n * a, 4, 1);
    io.weights = du_new(TB_F32, 2, n * a, 4, 1);
    io.anchors = du_new(TB_F32, 2, a, 4, 1);
    io.gt = du_new(TB_F32, 3, n, g, 4);
    io.count = du_new(TB_I32, 1, n, 1, 1);
    return io;
}

static int rpn_run(rpn_io *io, const tb_rpn_target_params *p)
{
    du_reserve(tb_rpn_targets_workspace_size(du_be, &io->anchors, &io->gt, p));
    return tb_rpn_targets(du_be, &io->labels, &io->targets, &io->weights, &io->anchors, &io->gt, &io->count, p);
}

static void test_rpn_targets_hand(void **state)
{
    (void)state;
    rpn_io io = rpn_make(2, RA, 4);
    du_set_f(&io.anchors, &rpn_anchors[0][0], RA * 4);
    const float gts[2][4][4] = {
        {{0, 0, 10, 10}, {41, 41, 53, 53}, {60, 60, 70, 70}, {200, 200, 210, 210}}, /* gt 3 overlaps nothing */
        {{0}},
    };
    du_set_f(&io.gt, &gts[0][0][0], 2 * 4 * 4);
    const int32_t counts[2] = {4, 0};
    du_set_i(&io.count, counts, 2);
    tb_rpn_target_params p = {0.7f, 0.3f, 256, 0.5f, 1234};
    du_ok(rpn_run(&io, &p), "rpn_targets");
    /* 0 exact match; 3, 8 above 0.7; 4 low quality; 6, 7 tied low quality; 1, 2, 5 below 0.3 */
    const int32_t want[RA] = {1, 0, 0, 1, 1, 0, 1, 1, 1};
    assert_memory_equal(du_i(&io.labels), want, sizeof want);
    /* image 1 has no gt: every anchor is a negative */
    for (int j = 0; j < RA; j++)
        assert_int_equal(du_i(&io.labels)[RA + j], 0);

    const float unit[4] = {1, 1, 1, 1};
    const int match[RA] = {0, -1, -1, 0, 1, -1, 2, 2, 0};
    for (int j = 0; j < 2 * RA; j++) {
        float want_t[4] = {0, 0, 0, 0}, want_w[4] = {0, 0, 0, 0};
        if (j < RA && match[j] >= 0) {
            encode(want_t, gts[0][match[j]], rpn_anchors[j], unit);
            want_w[0] = want_w[1] = want_w[2] = want_w[3] = 1.0f;
        }
        du_near("rpn targets", du_f(&io.targets) + 4 * j, want_t, 4, 1e-5f);
        du_near("rpn weights", du_f(&io.weights) + 4 * j, want_w, 4, 0.0f);
    }
    /* the exact match encodes to zero deltas */
    for (int k = 0; k < 4; k++)
        assert_true(du_f(&io.targets)[k] == 0.0f);

    /* between the thresholds without being a gt's best: ignored (-1) */
    p.neg_iou = 0.1f; /* anchor 1 (IoU 1/7) is now between 0.1 and 0.7 */
    du_ok(rpn_run(&io, &p), "rpn_targets");
    assert_int_equal(du_i(&io.labels)[1], -1);
    du_free_all();
}

/* IoU exactly pos_iou is positive; exactly neg_iou is not negative. */
static void test_rpn_targets_thresholds(void **state)
{
    (void)state;
    rpn_io io = rpn_make(1, 3, 1);
    const float anc[3][4] = {{0, 0, 10, 20}, {0, 0, 10, 10}, {50, 50, 60, 60}}, gt[4] = {0, 0, 10, 20};
    du_set_f(&io.anchors, &anc[0][0], 12);
    du_set_f(&io.gt, gt, 4);
    du_i(&io.count)[0] = 1;
    tb_rpn_target_params p = {0.5f, 0.3f, 256, 0.5f, 1}; /* anchor 1 has IoU 0.5 exactly */
    du_ok(rpn_run(&io, &p), "rpn_targets");
    const int32_t want_pos[3] = {1, 1, 0};
    assert_memory_equal(du_i(&io.labels), want_pos, sizeof want_pos);
    p.pos_iou = 0.7f;
    p.neg_iou = 0.5f;
    du_ok(rpn_run(&io, &p), "rpn_targets");
    const int32_t want_mid[3] = {1, -1, 0};
    assert_memory_equal(du_i(&io.labels), want_mid, sizeof want_mid);
    du_free_all();
}

/* A grid of anchors with many positives: the caps, the documented subset rule, determinism. */
static void test_rpn_targets_sampling(void **state)
{
    (void)state;
    int a = 400;
    rpn_io io = rpn_make(2, a, 3);
    float *anc = du_f(&io.anchors);
    for (int j = 0; j < a; j++) { /* 20 x 20 grid of 16-px anchors with stride 4 */
        float x = (float)(j % 20) * 4, y = (float)(j / 20) * 4;
        anc[4 * j] = x, anc[4 * j + 1] = y, anc[4 * j + 2] = x + 16, anc[4 * j + 3] = y + 16;
    }
    const float gts[2][3][4] = {
        {{8, 8, 24, 24}, {40, 40, 56, 56}, {20, 44, 36, 60}},
        {{60, 0, 76, 16}, {0}, {0}},
    };
    du_set_f(&io.gt, &gts[0][0][0], 24);
    const int32_t counts[2] = {3, 1};
    du_set_i(&io.count, counts, 2);

    /* every candidate first: a budget larger than the anchors */
    tb_rpn_target_params p = {0.5f, 0.3f, 10000, 0.5f, 77};
    du_ok(rpn_run(&io, &p), "rpn_targets");
    int32_t *full = malloc(2 * (size_t)a * sizeof(int32_t));
    assert_non_null(full);
    memcpy(full, du_i(&io.labels), 2 * (size_t)a * sizeof(int32_t));
    int npos[2] = {0, 0}, nneg[2] = {0, 0};
    for (int b = 0; b < 2; b++)
        for (int j = 0; j < a; j++)
            npos[b] += full[b * a + j] == 1, nneg[b] += full[b * a + j] == 0;
    assert_true(npos[0] > 8 && npos[1] >= 1 && npos[1] < 8);

    /* 32 per image, at most 25% positive */
    p.samples_per_image = 32;
    p.pos_fraction = 0.25f;
    du_ok(rpn_run(&io, &p), "rpn_targets");
    const int32_t *lab = du_i(&io.labels);
    for (int b = 0; b < 2; b++) {
        int pos = 0, neg = 0;
        float wsum = 0;
        for (int j = 0; j < a; j++) {
            int32_t l = lab[b * a + j];
            pos += l == 1, neg += l == 0;
            if (l != -1) /* a sampled anchor keeps its full-run label */
                assert_int_equal(l, full[b * a + j]);
            for (int k = 0; k < 4; k++) {
                wsum += du_f(&io.weights)[4 * (b * a + j) + k];
                if (l != 1)
                    assert_true(du_f(&io.targets)[4 * (b * a + j) + k] == 0.0f);
            }
        }
        int want_pos = npos[b] < 8 ? npos[b] : 8;
        assert_int_equal(pos, want_pos);
        assert_int_equal(neg, 32 - want_pos);
        assert_true(wsum == 4.0f * (float)pos);
        /* the documented rule: the positives with the smallest tb_hash_uniform(seed, b * a + j) */
        int32_t cand[400];
        int m = 0;
        for (int j = 0; j < a; j++)
            if (full[b * a + j] == 1)
                cand[m++] = j;
        for (int i = 0; i < m; i++) {
            float ki = tb_hash_uniform(p.seed, (uint64_t)(b * a + cand[i]));
            int below = 0;
            for (int t = 0; t < m; t++) {
                float kt = tb_hash_uniform(p.seed, (uint64_t)(b * a + cand[t]));
                below += kt < ki || (kt == ki && t < i);
            }
            assert_int_equal(lab[b * a + cand[i]], below < want_pos ? 1 : -1);
        }
    }

    /* same seed: identical; another seed: another sample */
    int32_t *first = malloc(2 * (size_t)a * sizeof(int32_t));
    assert_non_null(first);
    memcpy(first, lab, 2 * (size_t)a * sizeof(int32_t));
    du_ok(rpn_run(&io, &p), "rpn_targets");
    assert_memory_equal(first, du_i(&io.labels), 2 * (size_t)a * sizeof(int32_t));
    p.seed = 78;
    du_ok(rpn_run(&io, &p), "rpn_targets");
    assert_memory_not_equal(first, du_i(&io.labels), 2 * (size_t)a * sizeof(int32_t));

    /* a gt_count above the capacity is an error naming the image */
    ((int32_t *)io.count.data)[1] = 4;
    assert_int_equal(rpn_run(&io, &p), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "gt_count[1]"));
    free(full), free(first);
    du_free_all();
}

/* ============================================================ roi_targets */

#define NP 6 /* proposal rows per image */
#define NG 3 /* gt rows per image */
#define NC 4 /* classes with the background */

typedef struct roi_io {
    tb_tensor rois, labels, targets, weights, props, pcount, gt, glabels, gcount;
    int per;
} roi_io;

static roi_io roi_make(int per)
{
    roi_io io;
    io.per = per;
    io.rois = du_new(TB_F32, 2, 2 * per, 5, 1);
    io.labels = du_new(TB_I32, 1, 2 * per, 1, 1);
    io.targets = du_new(TB_F32, 2, 2 * per, 4 * NC, 1);
    io.weights = du_new(TB_F32, 2, 2 * per, 4 * NC, 1);
    io.props = du_new(TB_F32, 2, 2 * NP, 5, 1);
    io.pcount = du_new(TB_I32, 1, 2, 1, 1);
    io.gt = du_new(TB_F32, 3, 2, NG, 4);
    io.glabels = du_new(TB_I32, 2, 2, NG, 1);
    io.gcount = du_new(TB_I32, 1, 2, 1, 1);
    /* image 0: 4 proposals, 2 gts; image 1: no proposals, 2 gts */
    const float props[2 * NP][5] = {
        {0, 1, 1, 11, 11},     /* IoU 81/119 with gt 0: fg, class 2 + 1 */
        {0, 50, 50, 69, 71},   /* IoU 380/419 with gt 1: fg, class 0 + 1 */
        {0, 100, 100, 120, 120}, /* IoU 0: bg */
        {0, 0, 0, 10, 30},     /* IoU 1/3 with gt 0: bg */
        {0, 9, 9, 9, 9},       /* beyond the count */
    };
    du_set_f(&io.props, &props[0][0], 2 * NP * 5);
    const float gts[2][NG][4] = {
        {{0, 0, 10, 10}, {50, 50, 70, 70}},
        {{5, 5, 25, 25}, {30, 30, 60, 60}},
    };
    du_set_f(&io.gt, &gts[0][0][0], 2 * NG * 4);
    const int32_t gl[2][NG] = {{2, 0, 0}, {1, 2, 0}}, pc[2] = {4, 0}, gc[2] = {2, 2};
    du_set_i(&io.glabels, &gl[0][0], 2 * NG);
    du_set_i(&io.pcount, pc, 2);
    du_set_i(&io.gcount, gc, 2);
    return io;
}

static int roi_run(roi_io *io, const tb_roi_target_params *p)
{
    du_reserve(tb_roi_targets_workspace_size(du_be, &io->props, &io->gt, p));
    return tb_roi_targets(du_be, &io->rois, &io->labels, &io->targets, &io->weights, &io->props, &io->pcount,
                          &io->gt, &io->glabels, &io->gcount, p);
}

/* The box and label candidate `id` of image b should have (id as the op keys them). */
static const float *cand_box(const roi_io *io, int b, int id)
{
    return id < NP ? du_f(&io->props) + 5 * (b * NP + id) + 1 : du_f(&io->gt) + 4 * (b * NG + id - NP);
}

/* Checks row r: RoI (b, box), label, and target/weight columns for a fg label. */
static void check_row(const roi_io *io, int row, int b, const float *box, int label, const float *gt,
                      const float *std)
{
    const float *r = du_f(&io->rois) + 5 * row;
    assert_true(r[0] == (float)b);
    const float zero[4] = {0, 0, 0, 0};
    du_near("roi box", r + 1, box ? box : zero, 4, 0.0f);
    assert_int_equal(du_i(&io->labels)[row], label);
    for (int c = 0; c < NC; c++) {
        float want_t[4] = {0, 0, 0, 0}, want_w[4] = {0, 0, 0, 0};
        if (label > 0 && c == label) {
            encode(want_t, gt, box, std);
            want_w[0] = want_w[1] = want_w[2] = want_w[3] = 1.0f;
        }
        du_near("roi targets", du_f(&io->targets) + row * 4 * NC + 4 * c, want_t, 4, 1e-4f);
        du_near("roi weights", du_f(&io->weights) + row * 4 * NC + 4 * c, want_w, 4, 0.0f);
    }
}

static void test_roi_targets_hand(void **state)
{
    (void)state;
    roi_io io = roi_make(16);
    tb_roi_target_params p = {16, 0.25f, 0.5f, 0.5f, 0.0f, {0.1f, 0.1f, 0.2f, 0.2f}, 9};
    du_ok(roi_run(&io, &p), "roi_targets");
    const float *g0 = du_f(&io.gt), *g1 = du_f(&io.gt) + 4;
    /* image 0: fg cap 4 keeps all 4 fg candidates in candidate order: P0, P1, gt0, gt1 */
    check_row(&io, 0, 0, cand_box(&io, 0, 0), 3, g0, p.box_std);
    check_row(&io, 1, 0, cand_box(&io, 0, 1), 1, g1, p.box_std);
    check_row(&io, 2, 0, cand_box(&io, 0, NP), 3, g0, p.box_std);
    check_row(&io, 3, 0, cand_box(&io, 0, NP + 1), 1, g1, p.box_std);
    /* then background P2, P3, then padding */
    check_row(&io, 4, 0, cand_box(&io, 0, 2), 0, NULL, p.box_std);
    check_row(&io, 5, 0, cand_box(&io, 0, 3), 0, NULL, p.box_std);
    for (int r = 6; r < 16; r++)
        check_row(&io, r, 0, NULL, -1, NULL, p.box_std);
    /* image 1 has no proposals: its gt boxes are the foreground, zero deltas */
    const float *h0 = du_f(&io.gt) + 4 * NG, *h1 = h0 + 4;
    check_row(&io, 16, 1, h0, 2, h0, p.box_std);
    check_row(&io, 17, 1, h1, 3, h1, p.box_std);
    for (int r = 18; r < 32; r++)
        check_row(&io, r, 1, NULL, -1, NULL, p.box_std);

    /* bg_iou_lo 0.1: P2 (IoU 0) is no longer background... */
    p.bg_iou_lo = 0.1f;
    /* ...but in an image without gts every candidate is (image 1: 2 proposals, no gt) */
    const float props1[2][5] = {{1, 5, 5, 15, 15}, {1, 20, 20, 30, 30}};
    memcpy(du_f(&io.props) + 5 * NP, props1, sizeof props1);
    du_i(&io.pcount)[1] = 2, du_i(&io.gcount)[1] = 0;
    du_ok(roi_run(&io, &p), "roi_targets");
    check_row(&io, 4, 0, cand_box(&io, 0, 3), 0, NULL, p.box_std);
    check_row(&io, 5, 0, NULL, -1, NULL, p.box_std);
    check_row(&io, 16, 1, props1[0] + 1, 0, NULL, p.box_std);
    check_row(&io, 17, 1, props1[1] + 1, 0, NULL, p.box_std);
    check_row(&io, 18, 1, NULL, -1, NULL, p.box_std);
    /* bg_iou_hi is exclusive: P3's IoU is 1/3 exactly */
    p.bg_iou_lo = 0.0f;
    p.bg_iou_hi = 1.0f / 3.0f;
    du_ok(roi_run(&io, &p), "roi_targets");
    check_row(&io, 4, 0, cand_box(&io, 0, 2), 0, NULL, p.box_std);
    check_row(&io, 5, 0, NULL, -1, NULL, p.box_std);
    du_free_all();
}

/* 8 RoIs per image at 25%: 2 of the 4 fg candidates, chosen by the documented keys. */
static void test_roi_targets_cap(void **state)
{
    (void)state;
    roi_io io = roi_make(8);
    tb_roi_target_params p = {8, 0.25f, 0.5f, 0.5f, 0.0f, {0.1f, 0.1f, 0.2f, 0.2f}, 0};
    const int fg_ids[4] = {0, 1, NP, NP + 1}, fg_labels[4] = {3, 1, 3, 1};
    int seen[4][4] = {{0}}; /* seen[i][j]: candidates i and j sampled together */
    for (uint64_t seed = 1; seed <= 40; seed++) {
        p.seed = seed;
        du_ok(roi_run(&io, &p), "roi_targets");
        /* reference: the 2 fg ids with the smallest keys, in id order */
        int pick[2], m = 0;
        for (int i = 0; i < 4; i++) {
            float ki = tb_hash_uniform(seed, (uint64_t)fg_ids[i]);
            int below = 0;
            for (int j = 0; j < 4; j++) {
                float kj = tb_hash_uniform(seed, (uint64_t)fg_ids[j]);
                below += kj < ki || (kj == ki && j < i);
            }
            if (below < 2)
                pick[m++] = i;
        }
        assert_int_equal(m, 2);
        seen[pick[0]][pick[1]]++;
        for (int t = 0; t < 2; t++) {
            int i = pick[t];
            const float *gt = du_f(&io.gt) + 4 * (fg_labels[i] == 3 ? 0 : 1);
            check_row(&io, t, 0, cand_box(&io, 0, fg_ids[i]), fg_labels[i], gt, p.box_std);
        }
        check_row(&io, 2, 0, cand_box(&io, 0, 2), 0, NULL, p.box_std);
        check_row(&io, 3, 0, cand_box(&io, 0, 3), 0, NULL, p.box_std);
        for (int r = 4; r < 8; r++)
            check_row(&io, r, 0, NULL, -1, NULL, p.box_std);
        /* same seed again: bitwise the same */
        float first[8 * 5];
        memcpy(first, du_f(&io.rois), sizeof first);
        du_ok(roi_run(&io, &p), "roi_targets");
        assert_memory_equal(first, du_f(&io.rois), sizeof first);
    }
    int pairs = 0;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            pairs += seen[i][j] > 0;
    assert_true(pairs >= 4); /* the seed changes the sample */

    /* a gt label outside the foreground classes names its image and row */
    ((int32_t *)io.glabels.data)[NG + 1] = NC - 1;
    assert_int_equal(roi_run(&io, &p), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "gt_labels[1,1]"));
    du_free_all();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rpn_targets_hand),
        cmocka_unit_test(test_rpn_targets_thresholds),
        cmocka_unit_test(test_rpn_targets_sampling),
        cmocka_unit_test(test_roi_targets_hand),
        cmocka_unit_test(test_roi_targets_cap),
    };
    return cmocka_run_group_tests(tests, du_setup, du_teardown);
}
