/* Workspace of the CPU box ops (rpn_targets, rpn_proposals, roi_targets,
 * detect_boxes) at realistic Faster R-CNN sizes (about 10k anchors, 6000
 * pre-NMS boxes, 2000 proposals, 21 classes):
 *  - a workspace one byte smaller than the op's query is TB_ERR_INVALID that
 *    names the op, the bytes needed and reserved, and the query, both from
 *    the front-end and from the CPU implementation itself, with nothing written;
 *  - exactly the query's bytes suffice: the op runs in a workspace of that
 *    size filled with garbage and followed by guard bytes, writes nothing
 *    past it, and gives bitwise the result of a run with a large workspace
 *    (on another thread count for rpn_proposals, whose per-thread scratch
 *    the query sizes by the backend's threads);
 *  - the queries return 0 for arguments the ops would refuse.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "det_unit_util.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/error.h"
#include "kernels/ops.h"
#include "kernels/rng.h"

#define SENTINEL 0x5a

/* One op under test: its tensors and parameters behind io, a call through
 * the front-end or straight into the CPU implementation, and its query. */
typedef struct ws_op {
    const char *name;  /* "rpn_targets": the op and its query tb_<name>_workspace_size */
    void *io;
    int (*run)(tb_backend *be, void *io, bool cpu);
    size_t (*query)(tb_backend *be, void *io);
    tb_tensor *outs[4];
    int n_outs;
} ws_op;

static void fill_outs(const ws_op *op)
{
    for (int i = 0; i < op->n_outs; i++)
        memset(op->outs[i]->data, SENTINEL, tb_nbytes(op->outs[i]));
}

static void expect_outs_untouched(const ws_op *op)
{
    for (int i = 0; i < op->n_outs; i++) {
        const unsigned char *b = op->outs[i]->data;
        for (size_t j = 0; j < tb_nbytes(op->outs[i]); j++)
            if (b[j] != SENTINEL)
                fail_msg("%s: output %d written (byte %zu) although the workspace was too small", op->name, i, j);
    }
}

static void expect_small_workspace_error(const ws_op *op, int rc, size_t need, size_t have, bool cpu)
{
    if (rc != TB_ERR_INVALID)
        fail_msg("%s%s with %zu of %zu bytes: status %s, expected TB_ERR_INVALID", cpu ? "cpu " : "", op->name, have,
                 need, tb_status_name(rc));
    char frags[4][96];
    snprintf(frags[0], sizeof frags[0], "%s%s", cpu ? "cpu " : "", op->name);
    snprintf(frags[1], sizeof frags[1], "needs %zu bytes of workspace", need);
    snprintf(frags[2], sizeof frags[2], "%zu reserved", have);
    snprintf(frags[3], sizeof frags[3], "tb_%s_workspace_size()", op->name);
    for (int i = 0; i < 4; i++)
        if (!strstr(tb_errmsg(), frags[i]))
            fail_msg("%s: message \"%s\" lacks \"%s\"", op->name, tb_errmsg(), frags[i]);
    expect_outs_untouched(op);
}

/* The whole check of one op on a fresh backend of `threads` threads. */
static void check_workspace(const ws_op *op, int threads)
{
    /* reference: du_be with (at least) its query's workspace */
    du_reserve(op->query(du_be, op->io));
    du_ok(op->run(du_be, op->io, false), op->name);
    void *ref[4];
    for (int i = 0; i < op->n_outs; i++) {
        ref[i] = malloc(tb_nbytes(op->outs[i]));
        assert_non_null(ref[i]);
        memcpy(ref[i], op->outs[i]->data, tb_nbytes(op->outs[i]));
    }

    tb_backend *be = NULL;
    du_ok(tb_cpu_backend_create(&be, threads), "cpu backend");
    size_t need = op->query(be, op->io);
    assert_true(need > 0);
    /* one byte short: an error from the front-end and from the CPU code */
    du_ok(tb_backend_reserve_workspace(be, need - 1), "reserve workspace");
    for (int cpu = 0; cpu < 2; cpu++) {
        fill_outs(op);
        expect_small_workspace_error(op, op->run(be, op->io, cpu), need, need - 1, cpu);
    }
    /* exactly the query: enough, nothing written past it, garbage never read */
    for (int rep = 0; rep < 2; rep++) {
        du_ws w;
        du_ws_begin(&w, be, need);
        fill_outs(op);
        int rc = op->run(be, op->io, rep == 1);
        du_ws_end(&w);
        du_ok(rc, op->name);
        for (int i = 0; i < op->n_outs; i++)
            if (memcmp(ref[i], op->outs[i]->data, tb_nbytes(op->outs[i])) != 0)
                fail_msg("%s: output %d in an exact %zu-byte workspace (%d threads) differs from the reference",
                         op->name, i, need, threads);
    }
    tb_backend_destroy(be);
    for (int i = 0; i < op->n_outs; i++)
        free(ref[i]);
}

/* ------------------------------------------------------------ inputs */

/* count random boxes (x1, y1, x2, y2) inside a w x h canvas, written with stride floats per box at offset. */
static void random_boxes(float *v, int64_t count, int stride, int offset, float w, float h, tb_rng *r)
{
    for (int64_t i = 0; i < count; i++) {
        float bw = tb_rng_uniform_f(r, 8, w / 3), bh = tb_rng_uniform_f(r, 8, h / 3);
        float x = tb_rng_uniform_f(r, 0, w - bw), y = tb_rng_uniform_f(r, 0, h - bh);
        float *b = v + stride * i + offset;
        b[0] = x, b[1] = y, b[2] = x + bw, b[3] = y + bh;
    }
}

/* A 30 x 40 feature grid of stride 16 with 9 anchors per cell (3 sizes x 3 ratios): 10800 anchors. */
#define GRID_H 30
#define GRID_W 40
#define ANCHORS (GRID_H * GRID_W * 9)

static void grid_anchors(const tb_tensor *t)
{
    float *v = du_f(t);
    const float sizes[3] = {32, 64, 128}, ratios[3] = {0.5f, 1.0f, 2.0f};
    int64_t j = 0;
    for (int y = 0; y < GRID_H; y++)
        for (int x = 0; x < GRID_W; x++)
            for (int s = 0; s < 3; s++)
                for (int q = 0; q < 3; q++, j++) {
                    float cx = 16.0f * (float)x + 8.0f, cy = 16.0f * (float)y + 8.0f;
                    float hw = 0.5f * sizes[s] / sqrtf(ratios[q]), hh = 0.5f * sizes[s] * sqrtf(ratios[q]);
                    float *b = v + 4 * j;
                    b[0] = cx - hw, b[1] = cy - hh, b[2] = cx + hw, b[3] = cy + hh;
                }
}

static void random_floats(const tb_tensor *t, float lo, float hi, tb_rng *r)
{
    for (int64_t i = 0; i < tb_numel(t); i++)
        tb_store_f32(t->data, t->dtype, i, tb_rng_uniform_f(r, lo, hi));
}

/* -------------------------------------------------------- rpn_targets */

typedef struct rt_io {
    tb_tensor labels, targets, weights, anchors, gt, count;
    tb_rpn_target_params p;
} rt_io;

static int rt_run(tb_backend *be, void *v, bool cpu)
{
    rt_io *io = v;
    return (cpu ? tb_cpu_rpn_targets : tb_rpn_targets)(be, &io->labels, &io->targets, &io->weights, &io->anchors,
                                                       &io->gt, &io->count, &io->p);
}

static size_t rt_query(tb_backend *be, void *v)
{
    rt_io *io = v;
    return tb_rpn_targets_workspace_size(be, &io->anchors, &io->gt, &io->p);
}

static void test_rpn_targets_workspace(void **state)
{
    (void)state;
    tb_rng r;
    tb_rng_seed(&r, 101, 0);
    int n = 2, g = 20;
    rt_io io = {.p = {0.7f, 0.3f, 256, 0.5f, 5}};
    io.labels = du_new(TB_I32, 1, n * ANCHORS, 1, 1);
    io.targets = du_new(TB_F32, 2, n * ANCHORS, 4, 1);
    io.weights = du_new(TB_F32, 2, n * ANCHORS, 4, 1);
    io.anchors = du_new(TB_F32, 2, ANCHORS, 4, 1);
    io.gt = du_new(TB_F32, 3, n, g, 4);
    io.count = du_new(TB_I32, 1, n, 1, 1);
    grid_anchors(&io.anchors);
    random_boxes(du_f(&io.gt), n * g, 4, 0, 640, 480, &r);
    du_i(&io.count)[0] = g, du_i(&io.count)[1] = 7;
    ws_op op = {"rpn_targets", &io, rt_run, rt_query, {&io.labels, &io.targets, &io.weights}, 3};
    check_workspace(&op, 2);
    /* the sample is a real one: 128 positives at most, 256 in all per image */
    int64_t sampled = 0;
    for (int64_t i = 0; i < tb_numel(&io.labels); i++)
        sampled += du_i(&io.labels)[i] >= 0;
    assert_int_equal(sampled, 2 * 256);
    du_free_all();
}

/* ------------------------------------------------------ rpn_proposals */

typedef struct rp_io {
    tb_tensor rois, count, logits, deltas, anchors, im;
    tb_proposal_params p;
} rp_io;

static int rp_run(tb_backend *be, void *v, bool cpu)
{
    rp_io *io = v;
    return (cpu ? tb_cpu_rpn_proposals : tb_rpn_proposals)(be, &io->rois, &io->count, &io->logits, &io->deltas,
                                                           &io->anchors, &io->im, &io->p);
}

static size_t rp_query(tb_backend *be, void *v)
{
    rp_io *io = v;
    return tb_rpn_proposals_workspace_size(be, &io->logits, &io->anchors, &io->p);
}

static void test_rpn_proposals_workspace(void **state)
{
    (void)state;
    tb_rng r;
    tb_rng_seed(&r, 102, 0);
    int n = 3;
    rp_io io = {.p = {6000, 300, 0.7f, 1.0f}};
    io.rois = du_new(TB_F32, 2, n * 300, 5, 1);
    io.count = du_new(TB_I32, 1, n, 1, 1);
    io.logits = du_new(TB_F32, 2, n * ANCHORS, 2, 1);
    io.deltas = du_new(TB_F32, 2, n * ANCHORS, 4, 1);
    io.anchors = du_new(TB_F32, 2, ANCHORS, 4, 1);
    io.im = du_new(TB_F32, 2, n, 2, 1);
    grid_anchors(&io.anchors);
    random_floats(&io.logits, -4, 4, &r);
    random_floats(&io.deltas, -0.5f, 0.5f, &r);
    const float im[6] = {480, 640, 400, 600, 480, 500};
    du_set_f(&io.im, im, 6);
    ws_op op = {"rpn_proposals", &io, rp_run, rp_query, {&io.rois, &io.count}, 2};
    /* 3 threads for 3 images against the 2-thread reference: the result
     * does not depend on threads. Which thread runs which image is up to
     * OpenMP, so the last copy of the scratch (next to the guard bytes) is
     * surely used only with one thread. */
    check_workspace(&op, 3);
    check_workspace(&op, 1);
    for (int b = 0; b < n; b++)
        assert_true(du_i(&io.count)[b] > 100);

    /* one copy of the per-image scratch per thread, at most one per image */
    tb_backend *b1 = NULL, *b4 = NULL;
    du_ok(tb_cpu_backend_create(&b1, 1), "cpu backend");
    du_ok(tb_cpu_backend_create(&b4, 4), "cpu backend");
    size_t one = rp_query(b1, &io);
    assert_true(rp_query(du_be, &io) == 2 * one);
    assert_true(rp_query(b4, &io) == 3 * one);
    tb_backend_destroy(b1);
    tb_backend_destroy(b4);
    du_free_all();
}

/* -------------------------------------------------------- roi_targets */

typedef struct rg_io {
    tb_tensor rois, labels, targets, weights, props, pcount, gt, glabels, gcount;
    tb_roi_target_params p;
} rg_io;

static int rg_run(tb_backend *be, void *v, bool cpu)
{
    rg_io *io = v;
    return (cpu ? tb_cpu_roi_targets : tb_roi_targets)(be, &io->rois, &io->labels, &io->targets, &io->weights,
                                                       &io->props, &io->pcount, &io->gt, &io->glabels, &io->gcount,
                                                       &io->p);
}

static size_t rg_query(tb_backend *be, void *v)
{
    rg_io *io = v;
    return tb_roi_targets_workspace_size(be, &io->props, &io->gt, &io->p);
}

static void test_roi_targets_workspace(void **state)
{
    (void)state;
    tb_rng r;
    tb_rng_seed(&r, 103, 0);
    int n = 2, np = 2000, g = 20, per = 128, classes = 21;
    rg_io io = {.p = {per, 0.25f, 0.5f, 0.5f, 0.0f, {0.1f, 0.1f, 0.2f, 0.2f}, 9}};
    io.rois = du_new(TB_F32, 2, n * per, 5, 1);
    io.labels = du_new(TB_I32, 1, n * per, 1, 1);
    io.targets = du_new(TB_F32, 2, n * per, 4 * classes, 1);
    io.weights = du_new(TB_F32, 2, n * per, 4 * classes, 1);
    io.props = du_new(TB_F32, 2, n * np, 5, 1);
    io.pcount = du_new(TB_I32, 1, n, 1, 1);
    io.gt = du_new(TB_F32, 3, n, g, 4);
    io.glabels = du_new(TB_I32, 2, n, g, 1);
    io.gcount = du_new(TB_I32, 1, n, 1, 1);
    random_boxes(du_f(&io.props), n * np, 5, 1, 640, 480, &r);
    random_boxes(du_f(&io.gt), n * g, 4, 0, 640, 480, &r);
    for (int i = 0; i < n * np; i++)
        du_f(&io.props)[5 * i] = (float)(i / np);
    for (int i = 0; i < n * g; i++)
        du_i(&io.glabels)[i] = (int32_t)tb_rng_below(&r, (uint64_t)classes - 1);
    const int32_t pc[2] = {np, 1500}, gc[2] = {g, 3};
    du_set_i(&io.pcount, pc, 2);
    du_set_i(&io.gcount, gc, 2);
    ws_op op = {"roi_targets", &io, rg_run, rg_query, {&io.rois, &io.labels, &io.targets, &io.weights}, 4};
    check_workspace(&op, 2);
    du_free_all();
}

/* ------------------------------------------------------- detect_boxes */

typedef struct db_io {
    tb_tensor boxes, scores, classes, count, probs, deltas, rois, rcount, im;
    tb_detect_params p;
} db_io;

static int db_run(tb_backend *be, void *v, bool cpu)
{
    db_io *io = v;
    return (cpu ? tb_cpu_detect_boxes : tb_detect_boxes)(be, &io->boxes, &io->scores, &io->classes, &io->count,
                                                         &io->probs, &io->deltas, &io->rois, &io->rcount, &io->im,
                                                         &io->p);
}

static size_t db_query(tb_backend *be, void *v)
{
    db_io *io = v;
    return tb_detect_boxes_workspace_size(be, &io->probs, &io->rcount, &io->p);
}

static void test_detect_boxes_workspace(void **state)
{
    (void)state;
    tb_rng r;
    tb_rng_seed(&r, 104, 0);
    int n = 2, np = 300, classes = 21, d = 100;
    db_io io = {.p = {0.05f, 0.5f, d, {0.1f, 0.1f, 0.2f, 0.2f}}};
    io.boxes = du_new(TB_F32, 3, n, d, 4);
    io.scores = du_new(TB_F32, 2, n, d, 1);
    io.classes = du_new(TB_I32, 2, n, d, 1);
    io.count = du_new(TB_I32, 1, n, 1, 1);
    io.probs = du_new(TB_F32, 2, n * np, classes, 1);
    io.deltas = du_new(TB_BF16, 2, n * np, 4 * classes, 1);
    io.rois = du_new(TB_F32, 2, n * np, 5, 1);
    io.rcount = du_new(TB_I32, 1, n, 1, 1);
    io.im = du_new(TB_F32, 2, n, 2, 1);
    random_floats(&io.probs, 0, 0.2f, &r);
    random_floats(&io.deltas, -1, 1, &r);
    random_boxes(du_f(&io.rois), n * np, 5, 1, 640, 480, &r);
    const int32_t rc[2] = {np, 123};
    du_set_i(&io.rcount, rc, 2);
    const float im[4] = {480, 640, 480, 600};
    du_set_f(&io.im, im, 4);
    ws_op op = {"detect_boxes", &io, db_run, db_query, {&io.boxes, &io.scores, &io.classes, &io.count}, 4};
    check_workspace(&op, 2);
    assert_int_equal(du_i(&io.count)[0], d); /* thousands of candidates: the cap binds */
    du_free_all();
}

/* ------------------------------------------------------------ queries */

/* 0 for what the ops refuse; the ops that need scratch report some. */
static void test_queries(void **state)
{
    (void)state;
    tb_tensor anchors = du_new(TB_F32, 2, 10, 4, 1), gt = du_new(TB_F32, 3, 2, 3, 4), gt2 = du_new(TB_F32, 2, 6, 4, 1);
    tb_tensor logits = du_new(TB_F32, 2, 20, 2, 1), logits_odd = du_new(TB_F32, 2, 21, 2, 1);
    tb_tensor props = du_new(TB_F32, 2, 8, 5, 1), probs = du_new(TB_F32, 2, 8, 3, 1);
    tb_tensor rc = du_new(TB_I32, 1, 2, 1, 1), rc3 = du_new(TB_I32, 1, 3, 1, 1);
    tb_rpn_target_params tp = {0.7f, 0.3f, 4, 0.5f, 1};
    tb_proposal_params pp = {4, 3, 0.7f, 0.0f};
    tb_roi_target_params gp = {4, 0.25f, 0.5f, 0.5f, 0.0f, {1, 1, 1, 1}, 3};
    tb_detect_params dp = {0.05f, 0.5f, 5, {1, 1, 1, 1}};

    assert_true(tb_rpn_targets_workspace_size(du_be, &anchors, &gt, &tp) > 0);
    assert_int_equal(tb_rpn_targets_workspace_size(NULL, &anchors, &gt, &tp), 0);
    assert_int_equal(tb_rpn_targets_workspace_size(du_be, &anchors, &gt2, &tp), 0);
    assert_int_equal(tb_rpn_targets_workspace_size(du_be, NULL, &gt, &tp), 0);

    assert_true(tb_rpn_proposals_workspace_size(du_be, &logits, &anchors, &pp) > 0);
    assert_int_equal(tb_rpn_proposals_workspace_size(du_be, &logits_odd, &anchors, &pp), 0);
    assert_int_equal(tb_rpn_proposals_workspace_size(du_be, &logits, &anchors, NULL), 0);
    pp.pre_nms_topk = 0;
    assert_int_equal(tb_rpn_proposals_workspace_size(du_be, &logits, &anchors, &pp), 0);

    assert_true(tb_roi_targets_workspace_size(du_be, &props, &gt, &gp) > 0);
    assert_int_equal(tb_roi_targets_workspace_size(du_be, &props, &gt2, &gp), 0);

    assert_true(tb_detect_boxes_workspace_size(du_be, &probs, &rc, &dp) > 0);
    assert_int_equal(tb_detect_boxes_workspace_size(du_be, &probs, &rc3, &dp), 0); /* 8 rows, 3 images */
    dp.max_per_image = 0;
    assert_int_equal(tb_detect_boxes_workspace_size(du_be, &probs, &rc, &dp), 0);

    /* a backend without the slot needs nothing (the CUDA backend has none of these ops) */
    tb_backend bare;
    memset(&bare, 0, sizeof bare);
    assert_int_equal(tb_rpn_targets_workspace_size(&bare, &anchors, &gt, &tp), 0);
    du_free_all();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rpn_targets_workspace),
        cmocka_unit_test(test_rpn_proposals_workspace),
        cmocka_unit_test(test_roi_targets_workspace),
        cmocka_unit_test(test_detect_boxes_workspace),
        cmocka_unit_test(test_queries),
    };
    return cmocka_run_group_tests(tests, du_setup, du_teardown);
}
