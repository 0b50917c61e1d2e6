/* RPN training targets (torchvision's RegionProposalNetwork.assign_targets_to_anchors
 * with its Matcher and BalancedPositiveNegativeSampler).
 *
 * Per image b, with the gts i < gt_count[b]:
 *  1. match: best[j] = max_i IoU(gt_i, anchor_j), arg[j] its gt (lowest i on
 *     ties); label 1 when best >= pos_iou, 0 when best < neg_iou, else -1.
 *  2. low-quality matches: for every gt whose best IoU over the anchors is
 *     positive, each anchor reaching exactly that IoU (ties included) gets
 *     label 1; it keeps its own best gt arg[j] (as torchvision).
 *  3. an image without gts has every anchor a negative candidate.
 *  4. sampling: at most floor(samples_per_image * pos_fraction) positives
 *     ("at most" in ops.h), then negatives fill up to samples_per_image; the
 *     subsets are drawn by tb_cpu_sample_subset (box.h) with seed p->seed and
 *     key index b * a + j, the anchor's row. Unsampled candidates get -1.
 *  5. targets = encode(gt arg[j], anchor j, std 1) and weights 1 for the
 *     anchors whose final label is 1; 0 everywhere else.
 * gt_count values outside [0, g] are TB_ERR_INVALID naming the image,
 * checked before anything is written.
 *
 * IoUs are recomputed per pass (anchor-major, gt-major, anchor-major) rather
 * than stored: 3 * g * a IoUs cost less than the g x a matrix's memory
 * traffic, and tb_cpu_box_iou gives bitwise equal values each time, which the
 * equality test of step 2 relies on. Scratch (rt_layout: 20 bytes per anchor
 * and 4 per gt) comes from the workspace, reserved from
 * tb_rpn_targets_workspace_size; images run one after the other, the anchors
 * of one in parallel, so one copy serves every thread.
 */
#include <math.h>
#include <string.h>

#include "kernels/cpu/box.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/error.h"

typedef struct rt_scratch {
    float *best;        /* {a} best IoU of each anchor */
    int32_t *arg;       /* {a} its gt */
    float *gt_best;     /* {g} best IoU of each gt */
    int32_t *pos, *neg; /* {a} candidate lists */
    tb_cpu_keyed *keys; /* {a} */
} rt_scratch;

/* Carves the scratch out of base (NULL: only counts); returns its bytes. */
static size_t rt_layout(rt_scratch *s, void *base, int64_t a, int64_t g)
{
    tb_cpu_carver c = {base, 0};
    s->keys = tb_cpu_carve(&c, (size_t)a * sizeof(tb_cpu_keyed));
    s->best = tb_cpu_carve(&c, (size_t)a * sizeof(float));
    s->arg = tb_cpu_carve(&c, (size_t)a * sizeof(int32_t));
    s->pos = tb_cpu_carve(&c, (size_t)a * sizeof(int32_t));
    s->neg = tb_cpu_carve(&c, (size_t)a * sizeof(int32_t));
    s->gt_best = tb_cpu_carve(&c, (size_t)g * sizeof(float));
    return c.used;
}

size_t tb_cpu_rpn_targets_workspace_size(tb_backend *be, const tb_tensor *anchors, const tb_tensor *gt_boxes,
                                         const tb_rpn_target_params *p)
{
    (void)be, (void)p;
    rt_scratch s;
    return rt_layout(&s, NULL, anchors->shape[0], gt_boxes->shape[1]);
}

/* Steps 1-3 for one image: labels[j] in {1, 0, -1}, with best/arg filled. */
static void rt_match(tb_backend *be, int32_t *labels, rt_scratch *s, const float *anchors, int64_t a,
                     const float *gts, int64_t gtc, const tb_rpn_target_params *p)
{
    if (gtc == 0) {
        for (int64_t j = 0; j < a; j++)
            labels[j] = 0;
        return;
    }
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t j = 0; j < a; j++) {
        float best = -1.0f;
        int32_t arg = 0;
        for (int64_t i = 0; i < gtc; i++) {
            float iou = tb_cpu_box_iou(gts + 4 * i, anchors + 4 * j);
            if (iou > best)
                best = iou, arg = (int32_t)i;
        }
        s->best[j] = best;
        s->arg[j] = arg;
        labels[j] = best >= p->pos_iou ? 1 : (best < p->neg_iou ? 0 : -1);
    }
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t i = 0; i < gtc; i++) {
        float best = 0.0f;
        for (int64_t j = 0; j < a; j++) {
            float iou = tb_cpu_box_iou(gts + 4 * i, anchors + 4 * j);
            best = iou > best ? iou : best;
        }
        s->gt_best[i] = best;
    }
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t j = 0; j < a; j++)
        for (int64_t i = 0; i < gtc; i++)
            if (s->gt_best[i] > 0.0f && tb_cpu_box_iou(gts + 4 * i, anchors + 4 * j) == s->gt_best[i]) {
                labels[j] = 1;
                break;
            }
}

/* Step 4: sample, turning unsampled candidates into -1. */
static void rt_sample(int32_t *labels, rt_scratch *s, int64_t a, int64_t b, const tb_rpn_target_params *p)
{
    int64_t npos = 0, nneg = 0;
    for (int64_t j = 0; j < a; j++) {
        if (labels[j] == 1)
            s->pos[npos++] = (int32_t)j;
        else if (labels[j] == 0)
            s->neg[nneg++] = (int32_t)j;
    }
    int64_t pos_cap = (int64_t)floor((double)p->samples_per_image * (double)p->pos_fraction);
    uint64_t key_base = (uint64_t)b * (uint64_t)a;
    int64_t kpos = tb_cpu_sample_subset(s->pos, npos, pos_cap, p->seed, key_base, s->keys);
    int64_t kneg = tb_cpu_sample_subset(s->neg, nneg, p->samples_per_image - kpos, p->seed, key_base, s->keys);
    for (int64_t j = 0; j < a; j++)
        labels[j] = -1;
    for (int64_t k = 0; k < kpos; k++)
        labels[s->pos[k]] = 1;
    for (int64_t k = 0; k < kneg; k++)
        labels[s->neg[k]] = 0;
}

int tb_cpu_rpn_targets(tb_backend *be, tb_tensor *labels, tb_tensor *targets, tb_tensor *weights,
                       const tb_tensor *anchors, const tb_tensor *gt_boxes, const tb_tensor *gt_count,
                       const tb_rpn_target_params *p)
{
    int64_t n = gt_boxes->shape[0], g = gt_boxes->shape[1], a = anchors->shape[0];
    const int32_t *gtc = gt_count->data;
    for (int64_t b = 0; b < n; b++)
        if (gtc[b] < 0 || gtc[b] > g)
            return tb_fail(TB_ERR_INVALID, "rpn_targets: gt_count[%lld] = %d is outside [0, %lld]", (long long)b,
                           (int)gtc[b], (long long)g);
    rt_scratch s;
    TB_TRY(tb_cpu_workspace_check(be, "rpn_targets", "rpn_targets", rt_layout(&s, NULL, a, g)));
    rt_layout(&s, be->workspace, a, g);
    const float *anc = anchors->data, *gts = gt_boxes->data;
    int32_t *lab = labels->data;
    float *tgt = targets->data, *wgt = weights->data;
    memset(tgt, 0, tb_nbytes(targets));
    memset(wgt, 0, tb_nbytes(weights));
    for (int64_t b = 0; b < n; b++) {
        int32_t *lb = lab + b * a;
        const float *gb = gts + b * g * 4;
        rt_match(be, lb, &s, anc, a, gb, gtc[b], p);
        rt_sample(lb, &s, a, b, p);
        for (int64_t j = 0; j < a; j++) {
            if (lb[j] != 1)
                continue;
            int64_t row = b * a + j;
            static const float unit_std[4] = {1.0f, 1.0f, 1.0f, 1.0f};
            tb_cpu_box_encode(tgt + 4 * row, gb + 4 * s.arg[j], anc + 4 * j, unit_std);
            for (int k = 0; k < 4; k++)
                wgt[4 * row + k] = 1.0f;
        }
    }
    return TB_OK;
}
