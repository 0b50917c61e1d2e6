/* CUDA vs CPU, the box-level detection ops with NMS: rpn_proposals and
 * detect_boxes (the sampling ops are in test_cuda_box_targets.c). For each
 * op, f32, f16 and bf16 logits / deltas:
 *  - random inputs: several images, some without RoIs; widths beyond the
 *    decode clamp; every NMS IoU and min_size test kept MARGIN off its
 *    threshold (box_test_util.h), except in the VOC-scale proposals;
 *  - hand-made inputs: tied keys and scores (within and across classes), NaN
 *    and -0 keys, a score exactly at the threshold, duplicate boxes, a box
 *    clipped to nothing, cuts at pre_nms_topk / post_nms_topk / max_per_image
 *    inside a tie;
 *  - a VOC-scale case (17100 anchors, 12000 boxes before NMS, 2000 after;
 *    1000 RoIs x 21 classes, 100 detections), so the large sorts and NMS
 *    masks of many words run;
 *  - a workspace one byte short: TB_ERR_INVALID from the front-end and from
 *    the backend's own check, outputs untouched.
 * Counts, scores and classes must be bitwise equal, boxes within BOX_TOL.
 * Outputs start from random bytes inside guard bytes. Exits 77 without a
 * GPU; `test_cuda_box_nms --self-check` runs the CPU against itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "box_test_util.h"
#include "cuda_test_util.h"
#include "kernels/backend.h"
#include "kernels/ops.h"

static tb_backend *ref_be, *dut_be;
static uint64_t seed;
static const tb_dtype dtypes[] = {TB_F32, TB_F16, TB_BF16};
#define NDT 3

static const float unit_std[4] = {1.0f, 1.0f, 1.0f, 1.0f};

/* ========================================================== rpn_proposals */
typedef struct rp_inputs {
    int n;
    int64_t a;
    tb_dtype dt;
    float *anchors, *logits, *deltas, *im; /* {a,4}, {n*a,2}, {n*a,4}, {n,2}; values already in dt */
} rp_inputs;

static void rp_free(rp_inputs *in)
{
    free(in->anchors);
    free(in->logits);
    free(in->deltas);
    free(in->im);
}

static void run_rpn_proposals(tctx *t, const char *name, const rp_inputs *in, const tb_proposal_params *p,
                              bool too_small)
{
    int n = in->n;
    int64_t a = in->a, post = p->post_nms_topk;
    tctx_case(t, "rpn_proposals %s: %d images, %lld anchors, top %d / %d, %s", name, n, (long long)a,
              p->pre_nms_topk, p->post_nms_topk, tb_dtype_name(in->dt));
    tpair *anc = tp_2d(t, TB_F32, a, 4, TP_ZERO, 0, 0), *logits = tp_2d(t, in->dt, n * a, 2, TP_ZERO, 0, 0);
    tpair *deltas = tp_2d(t, in->dt, n * a, 4, TP_ZERO, 0, 0), *im = tp_2d(t, TB_F32, n, 2, TP_ZERO, 0, 0);
    tpair *rois = tp_2d(t, TB_F32, n * post, 5, TP_UNIFORM, -9, 9), *count = tp_1d(t, TB_I32, n, TP_LABELS, 0, 9);
    if (!anc || !logits || !deltas || !im || !rois || !count || !tp_set(t, anc, in->anchors) ||
        !tp_set(t, logits, in->logits) || !tp_set(t, deltas, in->deltas) || !tp_set(t, im, in->im))
        return;
    RESERVE(t, tb_rpn_proposals_workspace_size(BE, S(logits), S(anc), p));
    RUN_BOTH(t, tb_rpn_proposals(BE, S(rois), S(count), S(logits), S(deltas), S(anc), S(im), p));
    tp_check(t, "roi_count", count, 0.0);
    tp_check(t, "rois", rois, BOX_TOL);
    if (t->verbose)
        printf("  proposals kept per image: %d ...\n", ((const int32_t *)count->t[0].data)[0]);
    if (!too_small)
        return;
    EXPECT_TOO_SMALL(t, tb_rpn_proposals_workspace_size(BE, S(logits), S(anc), p),
                     tb_rpn_proposals(BE, S(rois), S(count), S(logits), S(deltas), S(anc), S(im), p));
    EXPECT_TOO_SMALL(t, tb_rpn_proposals_workspace_size(BE, S(logits), S(anc), p),
                     BE->iface.rpn_proposals(BE, S(rois), S(count), S(logits), S(deltas), S(anc), S(im), p));
    tp_check(t, "roi_count after the refused calls", count, 0.0);
    tp_check(t, "rois after the refused calls", rois, BOX_TOL);
}

/* Moves and shrinks box `row`'s decode (a box clipped on both sides only
 * changes when it shrinks). */
static void rp_nudge(rp_inputs *in, int64_t row)
{
    float *d = in->deltas + 4 * row;
    d[0] = in_dtype(in->dt, d[0] + 0.137f);
    d[1] = in_dtype(in->dt, d[1] - 0.071f);
    d[2] = in_dtype(in->dt, 0.5f * d[2] - 0.05f);
}

/* One pass of image b's check: the CPU's top k, decoded and clipped; nudges
 * every box whose width or height is near min_size or whose IoU with an
 * earlier valid box is near nms_iou. Returns whether nothing was near (the
 * ranks do not move: they depend on the logits only). */
static bool rp_check_pass(rp_inputs *in, int b, const tb_proposal_params *p, tb_cpu_keyed *order, float *boxes,
                          unsigned char *valid)
{
    int64_t a = in->a, k = min64(p->pre_nms_topk, a);
    for (int64_t j = 0; j < a; j++) {
        int64_t row = b * a + j;
        order[j].key = in->logits[2 * row + 1] - in->logits[2 * row];
        order[j].index = (int32_t)j;
    }
    tb_cpu_top_desc(order, a, k);
    bool clean = true;
    for (int64_t r = 0; r < k; r++) {
        int64_t j = order[r].index, row = b * a + j;
        float *box = boxes + 4 * r;
        tb_cpu_box_decode(box, in->deltas + 4 * row, in->anchors + 4 * j, unit_std);
        tb_cpu_box_clip(box, in->im[2 * b], in->im[2 * b + 1]);
        double w = box[2] - box[0], h = box[3] - box[1];
        valid[r] = w >= p->min_size && h >= p->min_size;
        if (near_thr(w, p->min_size) || near_thr(h, p->min_size))
            rp_nudge(in, row), clean = false;
    }
    for (int64_t r = 1; r < k; r++)
        for (int64_t u = 0; u < r && valid[r]; u++)
            if (valid[u] && near_thr(tb_cpu_box_iou(boxes + 4 * u, boxes + 4 * r), p->nms_iou)) {
                rp_nudge(in, b * a + order[r].index); /* boxes[r] is stale now: the next pass redoes all */
                clean = false;
                break;
            }
    return clean;
}

static bool rp_keep_off_thresholds(tctx *t, rp_inputs *in, const tb_proposal_params *p)
{
    tb_cpu_keyed *order = malloc(sizeof(tb_cpu_keyed) * (size_t)in->a);
    float *boxes = alloc_f(t, (size_t)in->a * 4);
    unsigned char *valid = malloc((size_t)in->a);
    bool ok = order && boxes && valid;
    for (int b = 0; b < in->n && ok; b++) {
        int pass = 0;
        while (!rp_check_pass(in, b, p, order, boxes, valid) && ++pass < GUARD_PASSES) {
        }
        if (pass >= GUARD_PASSES) {
            tctx_fail(t, "image %d: boxes still near a threshold after %d passes", b, GUARD_PASSES);
            ok = false;
        }
    }
    free(order);
    free(boxes);
    free(valid);
    return ok;
}

/* Random logits and deltas in dt (2% of the widths beyond the decode clamp). */
static bool rp_random(tctx *t, rp_inputs *in, const float *im)
{
    size_t rows = (size_t)in->n * in->a;
    in->logits = alloc_f(t, rows * 2);
    in->deltas = alloc_f(t, rows * 4);
    in->im = alloc_f(t, (size_t)in->n * 2);
    if (!in->anchors || !in->logits || !in->deltas || !in->im)
        return false;
    memcpy(in->im, im, sizeof(float) * 2 * (size_t)in->n);
    for (size_t r = 0; r < rows; r++) {
        for (int q = 0; q < 2; q++)
            in->logits[2 * r + q] = in_dtype(in->dt, urand(t, -4.0f, 4.0f));
        for (int q = 0; q < 4; q++)
            in->deltas[4 * r + q] = in_dtype(in->dt, q < 2 ? urand(t, -0.4f, 0.4f) : urand(t, -1.0f, 1.0f));
        if (tb_rng_below(&t->rng, 50) == 0)
            in->deltas[4 * r + 2] = in_dtype(in->dt, 5.0f);
    }
    return true;
}

static void test_rpn_proposals_random(void **state)
{
    (void)state;
    tctx ctx, *t = &ctx;
    tctx_init(t, ref_be, dut_be, seed ^ 0x4011);
    static const float im[3 * 2] = {128, 128, 96, 120, 128, 70}; /* (height, width) */
    for (int d = 0; d < NDT; d++) {
        tb_proposal_params p = {.pre_nms_topk = 600, .post_nms_topk = 120, .nms_iou = 0.7f, .min_size = 4.0f};
        rp_inputs in = {.n = 3, .dt = dtypes[d]};
        in.anchors = grid_anchors(t, 16, 16, 8.0f, 16.0f, &in.a);
        if (rp_random(t, &in, im) && rp_keep_off_thresholds(t, &in, &p))
            run_rpn_proposals(t, "random", &in, &p, d == 0);
        /* every anchor ranked (k = a), more rows than survivors (padding), no size filter */
        p = (tb_proposal_params){.pre_nms_topk = 5000, .post_nms_topk = 2000, .nms_iou = 0.6f, .min_size = 0.0f};
        if (rp_keep_off_thresholds(t, &in, &p))
            run_rpn_proposals(t, "all anchors, padding rows", &in, &p, false);
        rp_free(&in);
    }
    tctx_free(t);
    assert_int_equal(t->failures, 0);
}

/* Hand-made, zero deltas (boxes = anchors): image 0 ranks A4 (2, clipped to
 * nothing by im_size and dropped), A0 and A1 (1, tied: A0 first; A1 is A0's
 * duplicate and suppressed), A3 (+0) before A5 (-0: a tie), and A2 (NaN)
 * last, cut by pre_nms_topk 5; image 1 has every key tied (anchor order) and
 * one delta moving A1 onto A2. */
static void test_rpn_proposals_hand_made(void **state)
{
    (void)state;
    tctx ctx, *t = &ctx;
    tctx_init(t, ref_be, dut_be, seed ^ 0x4012);
    static const float anchors[6 * 4] = {0, 0, 10, 10,  0, 0, 10, 10,  20, 20, 30, 30,
                                         50, 50, 60, 60, 200, 200, 210, 210, 20, 20, 30, 31};
    static const float im[2 * 2] = {100, 100, 128, 128};
    for (int d = 0; d < NDT; d++) {
        rp_inputs in = {.n = 2, .a = 6, .dt = dtypes[d]};
        in.anchors = alloc_f(t, 6 * 4), in.logits = alloc_f(t, 12 * 2), in.deltas = alloc_f(t, 12 * 4);
        in.im = alloc_f(t, 4);
        if (in.anchors && in.logits && in.deltas && in.im) {
            memcpy(in.anchors, anchors, sizeof anchors);
            memcpy(in.im, im, sizeof im);
            const float l1[6] = {1.0f, 1.0f, NAN, 0.0f, 2.0f, -0.0f};
            for (int j = 0; j < 6; j++) {
                in.logits[2 * j + 1] = l1[j];      /* image 0: key l1 - 0 */
                in.logits[2 * (6 + j)] = 0.25f;     /* image 1: every key -0.25 + 0.5 */
                in.logits[2 * (6 + j) + 1] = 0.5f;
            }
            in.deltas[4 * 7] = 2.0f, in.deltas[4 * 7 + 1] = 2.0f; /* image 1, A1 -> (20, 20, 30, 30) = A2 */
            tb_proposal_params p = {.pre_nms_topk = 5, .post_nms_topk = 4, .nms_iou = 0.7f, .min_size = 1.0f};
            run_rpn_proposals(t, "hand-made", &in, &p, d == 0);
            p.post_nms_topk = 2; /* the cut at post_nms_topk */
            run_rpn_proposals(t, "hand-made, 2 kept", &in, &p, false);
        }
        rp_free(&in);
    }
    tctx_free(t);
    assert_int_equal(t->failures, 0);
}

/* VOC scale (GluonCV's training settings): 17100 anchors, 12000 before NMS, 2000 after. */
static void test_rpn_proposals_voc_scale(void **state)
{
    (void)state;
    tctx ctx, *t = &ctx;
    tctx_init(t, ref_be, dut_be, seed ^ 0x4013);
    static const float im[2 * 2] = {600, 800, 608, 750};
    tb_proposal_params p = {.pre_nms_topk = 12000, .post_nms_topk = 2000, .nms_iou = 0.7f, .min_size = 1e-3f};
    rp_inputs in = {.n = 2, .dt = TB_F32};
    in.anchors = grid_anchors(t, 38, 50, 16.0f, 128.0f, &in.a);
    if (rp_random(t, &in, im))
        run_rpn_proposals(t, "VOC scale", &in, &p, false);
    rp_free(&in);
    tctx_free(t);
    assert_int_equal(t->failures, 0);
}

/* =========================================================== detect_boxes */
typedef struct db_inputs {
    int n, np, classes;
    tb_dtype dt;
    float *probs, *deltas, *rois, *rcount, *im; /* {n*np,C}, {n*np,4C} (in dt), {n*np,5}, {n}, {n,2} */
} db_inputs;

static void db_free(db_inputs *in)
{
    free(in->probs);
    free(in->deltas);
    free(in->rois);
    free(in->rcount);
    free(in->im);
}

static void run_detect_boxes(tctx *t, const char *name, const db_inputs *in, const tb_detect_params *p,
                             bool too_small)
{
    int n = in->n, c = in->classes, d = p->max_per_image;
    int64_t rows = (int64_t)n * in->np;
    tctx_case(t, "detect_boxes %s: %d images, %d RoI rows, %d classes, %d detections, %s", name, n, in->np, c, d,
              tb_dtype_name(in->dt));
    int64_t bshape[3] = {n, d, 4};
    tpair *probs = tp_2d(t, TB_F32, rows, c, TP_ZERO, 0, 0), *deltas = tp_2d(t, in->dt, rows, 4 * c, TP_ZERO, 0, 0);
    tpair *rois = tp_2d(t, TB_F32, rows, 5, TP_ZERO, 0, 0), *rc = tp_1d(t, TB_I32, n, TP_ZERO, 0, 0);
    tpair *im = tp_2d(t, TB_F32, n, 2, TP_ZERO, 0, 0), *boxes = tp_new(t, TB_F32, 3, bshape, TP_UNIFORM, -9, 9);
    tpair *scores = tp_2d(t, TB_F32, n, d, TP_UNIFORM, -9, 9), *classes = tp_2d(t, TB_I32, n, d, TP_LABELS, 0, 9);
    tpair *count = tp_1d(t, TB_I32, n, TP_LABELS, 0, 9);
    if (!probs || !deltas || !rois || !rc || !im || !boxes || !scores || !classes || !count ||
        !tp_set(t, probs, in->probs) || !tp_set(t, deltas, in->deltas) || !tp_set(t, rois, in->rois) ||
        !tp_set(t, rc, in->rcount) || !tp_set(t, im, in->im))
        return;
    RESERVE(t, tb_detect_boxes_workspace_size(BE, S(probs), S(rc), p));
    RUN_BOTH(t, tb_detect_boxes(BE, S(boxes), S(scores), S(classes), S(count), S(probs), S(deltas), S(rois), S(rc),
                                S(im), p));
    tp_check(t, "count", count, 0.0);
    tp_check(t, "classes", classes, 0.0);
    tp_check(t, "scores", scores, 0.0);
    tp_check(t, "boxes", boxes, BOX_TOL);
    if (!too_small)
        return;
    EXPECT_TOO_SMALL(t, tb_detect_boxes_workspace_size(BE, S(probs), S(rc), p),
                     tb_detect_boxes(BE, S(boxes), S(scores), S(classes), S(count), S(probs), S(deltas), S(rois),
                                     S(rc), S(im), p));
    EXPECT_TOO_SMALL(t, tb_detect_boxes_workspace_size(BE, S(probs), S(rc), p),
                     BE->iface.detect_boxes(BE, S(boxes), S(scores), S(classes), S(count), S(probs), S(deltas),
                                            S(rois), S(rc), S(im), p));
    tp_check(t, "count after the refused calls", count, 0.0);
    tp_check(t, "boxes after the refused calls", boxes, BOX_TOL);
}

/* One pass of the check of image b, class c: nudges the deltas of every
 * candidate whose decoded box has an IoU near nms_iou with an earlier one
 * (in RoI order: NMS may compare any two). Returns whether nothing was near. */
static bool db_check_pass(db_inputs *in, int b, int c, const tb_detect_params *p, float *boxes, int32_t *which)
{
    int64_t m = 0, cols = 4 * (int64_t)in->classes;
    for (int r = 0; r < (int)in->rcount[b]; r++) {
        int64_t row = (int64_t)b * in->np + r;
        if (!(in->probs[row * in->classes + c] > p->score_thresh))
            continue;
        tb_cpu_box_decode(boxes + 4 * m, in->deltas + row * cols + 4 * c, in->rois + 5 * row + 1, p->box_std);
        tb_cpu_box_clip(boxes + 4 * m, in->im[2 * b], in->im[2 * b + 1]);
        which[m++] = (int32_t)row;
    }
    bool clean = true;
    for (int64_t i = 1; i < m; i++)
        for (int64_t j = 0; j < i; j++)
            if (near_thr(tb_cpu_box_iou(boxes + 4 * j, boxes + 4 * i), p->nms_iou)) {
                float *dx = in->deltas + which[i] * cols + 4 * c;
                *dx = in_dtype(in->dt, *dx + 0.29f);
                clean = false;
                break;
            }
    return clean;
}

static bool db_keep_off_thresholds(tctx *t, db_inputs *in, const tb_detect_params *p)
{
    float *boxes = alloc_f(t, (size_t)in->np * 4);
    int32_t *which = malloc(sizeof(int32_t) * (size_t)in->np);
    bool ok = boxes && which;
    for (int b = 0; b < in->n && ok; b++)
        for (int c = 1; c < in->classes && ok; c++) {
            int pass = 0;
            while (!db_check_pass(in, b, c, p, boxes, which) && ++pass < GUARD_PASSES) {
            }
            if (pass >= GUARD_PASSES) {
                tctx_fail(t, "image %d class %d: boxes still near the NMS threshold", b, c);
                ok = false;
            }
        }
    free(boxes);
    free(which);
    return ok;
}

/* Random probability rows (positive, summing to 1), deltas in dt, RoIs
 * anywhere in the canvas (column 0 the image). */
static bool db_random(tctx *t, db_inputs *in, const int *rcounts, const float *im)
{
    int n = in->n, np = in->np, c = in->classes;
    size_t rows = (size_t)n * np;
    in->probs = alloc_f(t, rows * c);
    in->deltas = alloc_f(t, rows * 4 * c);
    in->rois = alloc_f(t, rows * 5);
    in->rcount = alloc_f(t, (size_t)n);
    in->im = alloc_f(t, (size_t)n * 2);
    if (!in->probs || !in->deltas || !in->rois || !in->rcount || !in->im)
        return false;
    memcpy(in->im, im, sizeof(float) * 2 * (size_t)n);
    for (int b = 0; b < n; b++)
        in->rcount[b] = (float)rcounts[b];
    for (size_t r = 0; r < rows; r++) {
        int b = (int)(r / (size_t)np);
        double sum = 0.0;
        for (int k = 0; k < c; k++)
            sum += in->probs[r * c + k] = urand(t, 0.05f, 1.0f);
        for (int k = 0; k < c; k++)
            in->probs[r * c + k] = (float)(in->probs[r * c + k] / sum);
        for (int k = 0; k < 4 * c; k++)
            in->deltas[r * 4 * c + k] = in_dtype(in->dt, urand(t, -0.6f, 0.6f));
        in->rois[5 * r] = (float)b;
        rand_box(t, in->rois + 5 * r + 1, im[2 * b + 1], im[2 * b], 4.0f, 0.5f * im[2 * b + 1]);
    }
    return true;
}

static void test_detect_boxes_random(void **state)
{
    (void)state;
    tctx ctx, *t = &ctx;
    tctx_init(t, ref_be, dut_be, seed ^ 0x4031);
    static const int rcounts[3] = {60, 0, 25};
    static const float im[3 * 2] = {128, 128, 100, 120, 90, 128};
    for (int dt = 0; dt < NDT; dt++) {
        tb_detect_params p = {.score_thresh = 0.05f, .nms_iou = 0.5f, .max_per_image = 15,
                              .box_std = {0.1f, 0.1f, 0.2f, 0.2f}};
        db_inputs in = {.n = 3, .np = 60, .classes = 5, .dt = dtypes[dt]};
        if (db_random(t, &in, rcounts, im) && db_keep_off_thresholds(t, &in, &p)) {
            run_detect_boxes(t, "random", &in, &p, false);
            p.max_per_image = 400; /* more than every kept box: padding rows */
            run_detect_boxes(t, "random, 400 detections", &in, &p, false);
            p.score_thresh = 0.3f;
            p.max_per_image = 7;
            run_detect_boxes(t, "random, few above the score threshold", &in, &p, false);
        }
        db_free(&in);
    }
    tctx_free(t);
    assert_int_equal(t->failures, 0);
}

/* Hand-made, zero deltas (boxes = RoIs): class 1 has R0 and R1 tied at 0.4
 * (R0 first, R1 its duplicate: suppressed), R2 exactly at the threshold (not
 * kept) and R3 NaN (never kept); class 2 has R2 at 0.45, then R0, R1, R3
 * tied at 0.4 (R1, R3 suppressed by R0). Merged: c2 R2, then the 0.4 tie in
 * class order (c1 R0, c2 R0). */
static void test_detect_boxes_hand_made(void **state)
{
    (void)state;
    tctx ctx, *t = &ctx;
    tctx_init(t, ref_be, dut_be, seed ^ 0x4032);
    static const float rois[4 * 5] = {0, 0, 0, 10, 10, 0, 0, 0, 10, 10, 0, 20, 20, 30, 30, 0, 0, 0, 10, 10};
    const float probs[4 * 3] = {0.2f, 0.4f, 0.4f, 0.2f, 0.4f, 0.4f, 0.5f, 0.05f, 0.45f, NAN, NAN, 0.4f};
    static const float im[2] = {100, 100}, rcount[1] = {4};
    for (int dt = 0; dt < NDT; dt++) {
        db_inputs in = {.n = 1, .np = 4, .classes = 3, .dt = dtypes[dt]};
        in.probs = alloc_f(t, 12), in.deltas = alloc_f(t, 4 * 12), in.rois = alloc_f(t, 20);
        in.rcount = alloc_f(t, 1), in.im = alloc_f(t, 2);
        if (in.probs && in.deltas && in.rois && in.rcount && in.im) {
            memcpy(in.probs, probs, sizeof probs);
            memcpy(in.rois, rois, sizeof rois);
            memcpy(in.rcount, rcount, sizeof rcount);
            memcpy(in.im, im, sizeof im);
            tb_detect_params p = {.score_thresh = 0.05f, .nms_iou = 0.5f, .max_per_image = 5,
                                  .box_std = {0.1f, 0.1f, 0.2f, 0.2f}};
            run_detect_boxes(t, "hand-made", &in, &p, dt == 0);
            p.max_per_image = 2; /* the cut falls inside the 0.4 tie */
            run_detect_boxes(t, "hand-made, 2 detections", &in, &p, false);
        }
        db_free(&in);
    }
    tctx_free(t);
    assert_int_equal(t->failures, 0);
}

/* VOC scale: 1000 RoIs per image (torchvision's test proposals), 21 classes, 100 detections. */
static void test_detect_boxes_voc_scale(void **state)
{
    (void)state;
    tctx ctx, *t = &ctx;
    tctx_init(t, ref_be, dut_be, seed ^ 0x4033);
    static const int rcounts[2] = {1000, 611};
    static const float im[2 * 2] = {600, 800, 608, 750};
    tb_detect_params p = {.score_thresh = 0.05f, .nms_iou = 0.5f, .max_per_image = 100,
                          .box_std = {0.1f, 0.1f, 0.2f, 0.2f}};
    db_inputs in = {.n = 2, .np = 1000, .classes = 21, .dt = TB_F32};
    if (db_random(t, &in, rcounts, im) && db_keep_off_thresholds(t, &in, &p))
        run_detect_boxes(t, "VOC scale", &in, &p, false);
    db_free(&in);
    tctx_free(t);
    assert_int_equal(t->failures, 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rpn_proposals_hand_made),
        cmocka_unit_test(test_rpn_proposals_random),
        cmocka_unit_test(test_rpn_proposals_voc_scale),
        cmocka_unit_test(test_detect_boxes_hand_made),
        cmocka_unit_test(test_detect_boxes_random),
        cmocka_unit_test(test_detect_boxes_voc_scale),
    };
    return tctx_main(argc, argv, &ref_be, &dut_be, &seed, "cuda rpn_proposals and detect_boxes vs cpu", tests,
                     sizeof tests / sizeof tests[0]);
}
