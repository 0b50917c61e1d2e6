/* Shared pieces of the cross-backend tests of the box-level detection ops
 * (test_cuda_box_targets.c: rpn_targets, roi_targets; test_cuda_box_nms.c:
 * rpn_proposals, detect_boxes): tolerances, random boxes kept off the
 * decision thresholds, workspace reservation and the too-small check. */
#ifndef TB_BOX_TEST_UTIL_H
#define TB_BOX_TEST_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cuda_test_util.h"
#include "kernels/backend.h"
#include "kernels/cpu/box.h"
#include "kernels/error.h"
#include "kernels/ops.h"
#include "models/faster_rcnn.h"

/* Decoded boxes and encoded targets go through expf / logf, whose last bits
 * may differ between glibc and CUDA: relative tolerance. */
#define BOX_TOL 1e-5

/* Random inputs keep every IoU that a decision compares with a threshold at
 * least MARGIN away from it (and decoded widths from min_size). The backends
 * compute IoUs bitwise alike (box arithmetic in the CPU's order, no FMA) and
 * decoded boxes alike but for rare last-bit differences of expf, so a 1-ulp
 * difference must not be able to flip a decision: 1e-4 of margin is far more
 * than an ulp. The VOC-scale proposals skip the check (72M pairs per image)
 * and rely on the bitwise agreement. */
#define MARGIN 1e-4
#define GUARD_PASSES 60

/* Thresholds at 0 cannot flip: IoUs are >= 0 and exactly 0 without overlap. */
static inline bool near_thr(double v, double thr) { return thr > 0.0 && fabs(v - thr) < MARGIN; }

static inline float *alloc_f(tctx *t, size_t count)
{
    float *p = calloc(count ? count : 1, sizeof(float));
    if (!p)
        tctx_fail(t, "out of host memory");
    return p;
}

/* The value dtype dt stores for v, so host-side checks see the device's inputs. */
static inline float in_dtype(tb_dtype dt, float v)
{
    uint32_t buf = 0;
    tb_store_f32(&buf, dt, 0, v);
    return tb_load_f32(&buf, dt, 0);
}

static inline float urand(tctx *t, float lo, float hi) { return tb_rng_uniform_f(&t->rng, lo, hi); }

/* A random box with sides in [lo, hi) inside a w x h canvas. */
static inline void rand_box(tctx *t, float *b, float w, float h, float lo, float hi)
{
    float bw = fminf(urand(t, lo, hi), w), bh = fminf(urand(t, lo, hi), h);
    b[0] = urand(t, 0.0f, w - bw);
    b[1] = urand(t, 0.0f, h - bh);
    b[2] = b[0] + bw;
    b[3] = b[1] + bh;
}

/* box moved and resized by up to `amount` of its size on every side. */
static inline void jitter_box(tctx *t, float *out, const float *box, float amount)
{
    float w = box[2] - box[0], h = box[3] - box[1];
    for (int q = 0; q < 4; q++)
        out[q] = box[q] + urand(t, -amount, amount) * (q % 2 ? h : w);
    if (out[2] <= out[0])
        out[2] = out[0] + 1.0f;
    if (out[3] <= out[1])
        out[3] = out[1] + 1.0f;
}

/* Whether box's IoU with one of m boxes (every `stride` floats) is near a threshold. */
static inline bool near_any(const float *box, const float *others, int64_t m, int stride, const float *thr, int nthr)
{
    for (int64_t j = 0; j < m; j++) {
        double iou = tb_cpu_box_iou(box, others + j * stride);
        for (int k = 0; k < nthr; k++)
            if (near_thr(iou, thr[k]))
                return true;
    }
    return false;
}

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Reserves on both sides the workspace a query asks for. */
#define RESERVE(t, query)                                                                               \
    for (int side_ = 0; side_ < 2; side_++)                                                             \
    tctx_rc((t), side_, "reserve workspace", tb_backend_reserve_workspace(BE, (query)))

/* `call` with the workspace one byte short of `query` fails with TB_ERR_INVALID on both sides. */
#define EXPECT_TOO_SMALL(t, query, call)                                                                \
    do {                                                                                                \
        for (int side_ = 0; side_ < 2; side_++) {                                                       \
            size_t need_ = (query), saved_ = BE->workspace_size;                                        \
            if (need_ == 0) {                                                                           \
                tctx_fail((t), "%s on %s: the workspace query says 0 bytes", #query, BE->name);             \
                continue;                                                                               \
            }                                                                                           \
            BE->workspace_size = need_ - 1;                                                             \
            int rc_ = (call);                                                                           \
            BE->workspace_size = saved_;                                                                \
            if (rc_ != TB_ERR_INVALID)                                                                  \
                tctx_fail((t), "%s with %zu of %zu bytes of workspace on %s: %s, not TB_ERR_INVALID", #call, \
                     need_ - 1, need_, BE->name, tb_status_name(rc_));                                  \
        }                                                                                               \
    } while (0)

/* Entries of the reference's i32 output equal to v (side 0 is the CPU: host memory). */
static inline int64_t count_ref(const tpair *p, int32_t v)
{
    const int32_t *x = p->t[0].data;
    int64_t c = 0;
    for (int64_t i = 0; i < tb_numel(&p->t[0]); i++)
        c += x[i] == v;
    return c;
}

/* Anchors of a fh x fw feature map, sizes size0 x {1, 2, 4}, ratios {0.5, 1, 2}: the model's layout. */
static inline float *grid_anchors(tctx *t, int fh, int fw, float stride, float size0, int64_t *a)
{
    static const float ratios[3] = {0.5f, 1.0f, 2.0f};
    const float sizes[3] = {size0, 2.0f * size0, 4.0f * size0};
    *a = (int64_t)fh * fw * 9;
    float *v = alloc_f(t, (size_t)*a * 4);
    if (v)
        tb_frcnn_anchors(v, fh, fw, stride, sizes, 3, ratios, 3);
    return v;
}

#endif
