/* RPN proposals (torchvision's RegionProposalNetwork.filter_proposals, one
 * feature level).
 *
 * Per image b:
 *  1. rank the anchors by objectness, best first, ties to the lower anchor.
 *     The fg probability softmax(logits)[1] = 1 / (1 + exp(l0 - l1)) is
 *     monotonic in l1 - l0, so the rank uses l1 - l0 itself: exact in f32,
 *     hence the same on every backend, and free of exp()'s saturation ties.
 *  2. keep the first pre_nms_topk; decode their deltas (std 1) on the anchors
 *     and clip to the image's valid (height, width) = im_size[b].
 *  3. drop boxes narrower or lower than min_size.
 *  4. greedy NMS at nms_iou in rank order, keeping at most post_nms_topk.
 *  5. rows (b, x1, y1, x2, y2) in rank order; the rest of the image's
 *     post_nms_topk rows are (b, 0, 0, 0, 0); roi_count[b] = rows kept.
 * Top-k comes before decoding and the size filter, as torchvision orders it
 * (ops.h lists the steps without fixing their order).
 * Ranking needs only the first pre_nms_topk of the order: a partial heap
 * sort (tb_cpu_top_desc), O(a + k log a), instead of sorting every anchor.
 * Images run in parallel (dynamic schedule: their NMS costs differ), each
 * OpenMP thread on its own copy of the per-image scratch (rp_layout), all
 * carved from the workspace: min(threads, n) copies, reserved from
 * tb_rpn_proposals_workspace_size. A thread rewrites every scratch element
 * it reads, so results do not depend on which thread runs an image.
 */
#include <math.h>
#include <omp.h>

#include "kernels/cpu/box.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/error.h"

/* The scratch of one image; each thread has its own. */
typedef struct rp_scratch {
    tb_cpu_keyed *order; /* {a} */
    float *boxes;        /* {k, 4} */
    int32_t *keep;       /* {k} */
    void *nms;           /* tb_cpu_nms_scratch_size(k) */
} rp_scratch;

/* Carves one image's scratch out of c (base NULL: only counts). */
static void rp_layout(rp_scratch *s, tb_cpu_carver *c, int64_t a, int64_t k)
{
    s->order = tb_cpu_carve(c, (size_t)a * sizeof(tb_cpu_keyed));
    s->boxes = tb_cpu_carve(c, (size_t)k * 4 * sizeof(float));
    s->keep = tb_cpu_carve(c, (size_t)k * sizeof(int32_t));
    s->nms = tb_cpu_carve(c, tb_cpu_nms_scratch_size(k));
}

/* Threads that run images: one per image at most. */
static int rp_threads(const tb_backend *be, int64_t n)
{
    int t = be->threads > 0 ? be->threads : 1;
    return (int)tb_cpu_min64(t, n > 0 ? n : 1);
}

/* Bytes of one image's scratch. */
static size_t rp_bytes(int64_t a, int64_t k)
{
    tb_cpu_carver c = {NULL, 0};
    rp_scratch s;
    rp_layout(&s, &c, a, k);
    return c.used;
}

size_t tb_cpu_rpn_proposals_workspace_size(tb_backend *be, const tb_tensor *logits, const tb_tensor *anchors,
                                           const tb_proposal_params *p)
{
    int64_t a = anchors->shape[0], n = logits->shape[0] / a;
    return (size_t)rp_threads(be, n) * rp_bytes(a, tb_cpu_min64(p->pre_nms_topk, a));
}

/* Steps 1-3: the ranked, decoded, clipped, big-enough boxes of image b; returns their count. */
static int64_t rp_candidates(rp_scratch *s, const tb_tensor *logits, const tb_tensor *deltas, const float *anchors,
                             int64_t a, int64_t b, const float *im, const tb_proposal_params *p)
{
    static const float unit_std[4] = {1.0f, 1.0f, 1.0f, 1.0f};
    for (int64_t j = 0; j < a; j++) {
        int64_t row = b * a + j;
        const void *l = logits->data;
        s->order[j].key = tb_load_f32(l, logits->dtype, 2 * row + 1) - tb_load_f32(l, logits->dtype, 2 * row);
        s->order[j].index = (int32_t)j;
    }
    int64_t k = tb_cpu_min64(p->pre_nms_topk, a), m = 0;
    tb_cpu_top_desc(s->order, a, k);
    for (int64_t t = 0; t < k; t++) {
        int64_t j = s->order[t].index, row = b * a + j;
        float delta[4], *box = s->boxes + 4 * m;
        for (int q = 0; q < 4; q++)
            delta[q] = tb_load_f32(deltas->data, deltas->dtype, 4 * row + q);
        tb_cpu_box_decode(box, delta, anchors + 4 * j, unit_std);
        tb_cpu_box_clip(box, im[0], im[1]);
        if (box[2] - box[0] >= p->min_size && box[3] - box[1] >= p->min_size)
            m++;
    }
    return m;
}

int tb_cpu_rpn_proposals(tb_backend *be, tb_tensor *rois, tb_tensor *roi_count, const tb_tensor *logits,
                         const tb_tensor *deltas, const tb_tensor *anchors, const tb_tensor *im_size,
                         const tb_proposal_params *p)
{
    int64_t n = im_size->shape[0], a = anchors->shape[0], post = p->post_nms_topk;
    int64_t k = tb_cpu_min64(p->pre_nms_topk, a);
    int threads = rp_threads(be, n);
    size_t per_thread = rp_bytes(a, k);
    TB_TRY(tb_cpu_workspace_check(be, "rpn_proposals", "rpn_proposals", (size_t)threads * per_thread));
    char *ws = be->workspace;
    const float *anc = anchors->data, *ims = im_size->data;
    float *out = rois->data;
    int32_t *cnt = roi_count->data;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int64_t b = 0; b < n; b++) {
        /* the team has at most `threads` threads, so the copy exists */
        tb_cpu_carver c = {ws + per_thread * (size_t)omp_get_thread_num(), 0};
        rp_scratch s;
        rp_layout(&s, &c, a, k);
        int64_t m = rp_candidates(&s, logits, deltas, anc, a, b, ims + 2 * b, p);
        int64_t kept = tb_cpu_nms(s.keep, s.boxes, m, p->nms_iou, post, s.nms);
        for (int64_t t = 0; t < post; t++) {
            float *row = out + 5 * (b * post + t);
            row[0] = (float)b;
            for (int q = 0; q < 4; q++)
                row[1 + q] = t < kept ? s.boxes[4 * s.keep[t] + q] : 0.0f;
        }
        cnt[b] = (int32_t)kept;
    }
    return TB_OK;
}
